"""The XmR chart drawn for the page (matplotlib, inline SVG), with the MDC colours."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import StrMethodFormatter

from careval.monitoring.spc import ASSURANCE_LABELS, POINT_TYPES, VARIATION_LABELS, SPCResult
from careval.report.page import plt, svg

# MDC colours for the chart.
COLOURS = {
    "common_cause": "#7b7d7d",
    "special_cause_improvement": "#289de0",
    "special_cause_concern": "#fab428",
    "special_cause_neutral": "#361475",
    "target": "#de1b1b",
}


def xmr_chart_svg(result: SPCResult, title: str, ylabel: str) -> str:
    """The XmR chart as inline SVG text.

    Parameters
    ----------
    result : SPCResult
        From :func:`xmr`.
    title : str
        Chart title.
    ylabel : str
        Y-axis label.

    Returns
    -------
    str
        An ``<svg>`` element: values joined by a grey line, points coloured by point type (MDC
        colours), mean solid and process limits dashed for each segment, the target (if any) as a
        red line, and the variation and assurance icons spelled out under the title.
    """
    p = result.points
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(p["date"], p["value"], color=COLOURS["common_cause"], lw=1.2, zorder=1)
    for _, seg in p.groupby("segment", sort=True):
        d = seg["date"]
        ax.plot(d, seg["mean"], color="black", lw=1.1, zorder=2)
        ax.plot(d, seg["lpl"], color="#7b7d7d", lw=1.0, ls="--", zorder=2)
        ax.plot(d, seg["upl"], color="#7b7d7d", lw=1.0, ls="--", zorder=2)
    handles = [
        Line2D([], [], color="black", lw=1.1, label="Mean"),
        Line2D([], [], color="#7b7d7d", lw=1.0, ls="--", label="Process limits"),
    ]
    for kind in POINT_TYPES:
        part = p[p["point_type"] == kind]
        if len(part):
            ax.scatter(part["date"], part["value"], s=22, color=COLOURS[kind], zorder=3)
            label = kind.replace("_", " ").capitalize()
            handles.append(
                Line2D([], [], ls="", marker="o", color=COLOURS[kind], label=label, markersize=5)
            )
    if result.target is not None:
        ax.axhline(result.target, color=COLOURS["target"], lw=1.2, ls="-.", zorder=2)
        handles.append(Line2D([], [], color=COLOURS["target"], lw=1.2, ls="-.", label="Target"))
    subtitle = VARIATION_LABELS[result.variation]
    if result.assurance:
        subtitle += "\n" + ASSURANCE_LABELS[result.assurance]
    ax.set_title(f"{title}\n{subtitle}", fontsize=10, loc="left")
    ax.set_ylabel(ylabel)
    if np.nanmax(np.abs(p[["value", "lpl", "upl"]].to_numpy(float))) >= 1000:
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    fig.autofmt_xdate()
    return svg(fig)
