"""The XmR chart drawn for the page (matplotlib, inline SVG), with Making Data Count's words.

Making Data Count (MDC) marks each point by its variation (common cause, special cause of an
improving or a concerning nature) and summarises the chart with an icon; the page spells the
icon out ("Special cause variation of an improving nature: lower values") under the title and
in the caption, so no reader has to know the icons. Each point carries its value on hover;
points of each kind have their own colour and marker shape (told apart without colour).
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import StrMethodFormatter

from careval.monitoring.spc import ASSURANCE_LABELS, POINT_TYPES, VARIATION_LABELS, SPCResult
from careval.report import format as fmt
from careval.report.charts import GREY, hover_points, tidy, zero_based
from careval.report.page import plt, svg

# MDC's colours for the kinds of point (blue improvement, orange concern, purple neither),
# with a marker shape each so that the kinds differ without colour too.
COLOURS = {
    "common_cause": "#7b7d7d",
    "special_cause_improvement": "#289de0",
    "special_cause_concern": "#fab428",
    "special_cause_neutral": "#361475",
    "target": "#de1b1b",
}
MARKERS = {
    "common_cause": "o",
    "special_cause_improvement": "^",
    "special_cause_concern": "v",
    "special_cause_neutral": "D",
}
POINT_LABELS = {
    "common_cause": "Common cause variation",
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral": "Special cause: neither",
}
DIRECTION = {"increase": "higher is better", "decrease": "lower is better", "neutral": ""}


def _value(v: float, share: bool) -> str:
    """A point's value as the chart's text gives it: a share as %, else one decimal."""
    return fmt.pct(v) if share else fmt.number(v, 1)


def xmr_description(result: SPCResult, what: str, share: bool = False) -> str:
    """The chart in words: points, the last segment's mean and limits, the MDC icon in words."""
    last = result.segments[-1]
    p = result.points
    first, final = p["date"].iloc[0], p["date"].iloc[-1]
    v = lambda x: _value(float(x), share)  # noqa: E731
    text = (
        f"{what} for {len(p)} months, {first:%B %Y} to {final:%B %Y}: mean {v(last['mean'])}, "
        f"process limits {v(last['lpl'])} to {v(last['upl'])}; latest month "
        f"{v(p['value'].iloc[-1])}. {VARIATION_LABELS[result.variation]}."
    )
    if result.assurance:
        text += f" {ASSURANCE_LABELS[result.assurance]}."
    return text


def xmr_chart_svg(result: SPCResult, title: str, ylabel: str, share: bool = False) -> str:
    """The XmR chart as inline SVG text with its title and description.

    Parameters
    ----------
    result : SPCResult
        From :func:`careval.monitoring.spc.xmr`.
    title : str
        Chart title (what is plotted).
    ylabel : str
        Y-axis label.
    share : bool
        Whether the values are shares (0 to 1), shown as percentages.

    Returns
    -------
    str
        An ``<svg>`` element: values joined by a grey line, points coloured and shaped by point
        type, the mean solid and the process limits dashed for each segment, the target (if any),
        and the variation (and assurance) icon spelled out under the title. The y axis starts
        at zero; each point shows its month, value and kind on hover.
    """
    p = result.points
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(p["date"], p["value"], color=COLOURS["common_cause"], lw=1.2, zorder=1)
    for _, seg in p.groupby("segment", sort=True):
        d = seg["date"]
        ax.plot(d, seg["mean"], color="black", lw=1.1, zorder=2)
        ax.plot(d, seg["lpl"], color=GREY, lw=1.0, ls="--", zorder=2)
        ax.plot(d, seg["upl"], color=GREY, lw=1.0, ls="--", zorder=2)
    handles = [
        Line2D([], [], color="black", lw=1.1, label="Mean"),
        Line2D([], [], color=GREY, lw=1.0, ls="--", label="Process limits"),
    ]
    for kind in POINT_TYPES:
        part = p[p["point_type"] == kind]
        if not len(part):
            continue
        texts = [
            f"{d:%B %Y}: {_value(float(v), share)} ({POINT_LABELS[kind].lower()})"
            for d, v in zip(part["date"], part["value"], strict=True)
        ]
        colour, marker = COLOURS[kind], MARKERS[kind]
        hover_points(
            ax, part["date"], part["value"], texts, color=colour, marker=marker, ms=5, zorder=3
        )
        handles.append(
            Line2D([], [], ls="", label=POINT_LABELS[kind], color=colour, marker=marker, ms=5)
        )
    if result.target is not None:
        ax.axhline(result.target, color=COLOURS["target"], lw=1.2, ls="-.", zorder=2)
        handles.append(Line2D([], [], color=COLOURS["target"], lw=1.2, ls="-.", label="Target"))
    subtitle = VARIATION_LABELS[result.variation]
    if result.assurance:
        subtitle += "\n" + ASSURANCE_LABELS[result.assurance]
    direction = DIRECTION.get(result.improvement, "")
    ax.set_title(f"{title}\n{subtitle}", fontsize=10, loc="left")
    ax.set_ylabel(ylabel + (f" ({direction})" if direction else ""))
    zero_based(ax)
    if share:
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.0%}"))
    elif np.nanmax(np.abs(p[["value", "lpl", "upl"]].to_numpy(float))) >= 1000:
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    tidy(ax)
    ax.legend(handles=handles, fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    fig.autofmt_xdate()
    return svg(fig, title, xmr_description(result, title, share))
