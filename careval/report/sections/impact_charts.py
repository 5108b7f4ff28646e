"""The matched study's charts: forest plots, Figure 2 as small multiples, the love plot.

Each function draws from published values only and returns the chart's SVG (with its title
and description); the section wraps it with :func:`careval.report.charts.figure` and a caption
that states the finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator

from careval.impact.balance import SMD_THRESHOLD
from careval.report import format as fmt
from careval.report.charts import GREY, PALETTE, hover, hover_points, svg_document, tidy
from careval.report.glossary import label

RATIO_TICKS = (0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)


@dataclass
class Row:
    """One row of a forest plot: its label in words, the estimate and its 95% interval."""

    label: str
    estimate: float
    low: float
    high: float
    hover: str


def _finite(*v: Any) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(float(x)) for x in v)


def ratio_row(name: str, est: Any, lo: Any, hi: Any, extra: str = "") -> Row | None:
    """A rate ratio's row, its hover text the change in words with its interval."""
    if not _finite(est, lo, hi):
        return None
    text = f"{name}: {fmt.change(est)} ({fmt.change_interval(lo, hi)})"
    return Row(name, float(est), float(lo), float(hi), text + (f"; {extra}" if extra else ""))


def _spaced(ticks: list[float]) -> list[float]:
    """Ticks at least a sixth of the axis' log range apart (1.0 always kept), so that their
    labels do not overlap."""
    span = math.log(max(ticks) / min(ticks)) or 1.0
    kept = [1.0]
    for t in sorted(ticks, key=lambda t: abs(math.log(t))):
        if all(abs(math.log(t / k)) >= span / 6 for k in kept):
            kept.append(t)
    return sorted(kept)


def _forest_axis(ax: plt.Axes, rows: list[Row], colour: str, ratio: bool) -> None:
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows, strict=True):
        (line,) = ax.plot([r.low, r.high], [yi, yi], color=colour, lw=2)
        hover(line, r.hover)
    hover_points(ax, [r.estimate for r in rows], y, [r.hover for r in rows], color=colour, ms=7)
    ax.axvline(1.0 if ratio else 0.0, color=GREY, lw=1.2, ls="--")
    ax.set_yticks(y, [r.label for r in rows], fontsize=9)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if ratio:
        ax.set_xscale("log")
        lo = min(r.low for r in rows + [Row("", 1, 1, 1, "")])
        hi = max(r.high for r in rows + [Row("", 1, 1, 1, "")])
        ax.set_xlim(min(lo, 0.8) / 1.08, max(hi, 1.25) * 1.08)
        ticks = _spaced([t for t in RATIO_TICKS if lo / 1.1 <= t <= hi * 1.1 or t == 1.0])
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels(
            ["0%" if t == 1.0 else fmt.signed_pct_change(t) for t in ticks], fontsize=9
        )
    tidy(ax)
    ax.grid(axis="y", visible=False)


def forest(rows: list[Row], title: str, desc: str, xlabel: str) -> str:
    """A forest plot of rate ratios on a log axis labelled as % change, a line at no change."""
    fig, ax = plt.subplots(figsize=(7.5, 0.75 + 0.42 * len(rows)))
    _forest_axis(ax, rows, PALETTE[0], ratio=True)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(title, fontsize=11, loc="left")
    return svg_document(fig, title, desc)


def forest_with_costs(ratios: list[Row], costs: list[Row], title: str, desc: str) -> str:
    """The outcomes' forest plot: counts (and deaths) as % change in one panel, the cost
    outcomes as differences in £ a person-month in their own panel beside it."""
    if not costs:
        return forest(ratios, title, desc, "change against matched controls (95% interval)")
    fig, (a, b) = plt.subplots(
        1,
        2,
        figsize=(9.5, 0.9 + 0.42 * max(len(ratios), len(costs))),
        gridspec_kw={"width_ratios": [3, 2], "wspace": 0.9},
    )
    _forest_axis(a, ratios, PALETTE[0], ratio=True)
    a.set_xlabel("change against matched controls", fontsize=9)
    a.set_title("Use of services and deaths", fontsize=10, loc="left")
    _forest_axis(b, costs, PALETTE[1], ratio=False)
    b.set_xlabel("difference, £ a person-month", fontsize=9)
    b.set_title("Costs", fontsize=10, loc="left")
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    return svg_document(fig, title, desc)


def small_multiples(
    t: pd.DataFrame,
    panels: list[tuple[str, str, float, str]],
    treated: str,
    effect_from: int,
    title: str,
    desc: str,
) -> str:
    """Figure 2: one panel per outcome, treated against matched controls by month since entry.

    ``panels`` holds (outcome, title, scale, unit): the mean is multiplied by ``scale`` (1,000
    for counts: per 1,000 people a month) and the axis says ``unit``. Bands are the 95%
    intervals; the y axes start at zero; a dashed line marks entry and a shade the months
    before the effect is expected (the implementation period).
    """
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(9, 2.6 * rows), squeeze=False)
    groups = (("treated", treated, PALETTE[0]), ("control", "matched controls", PALETTE[1]))
    for ax, (name, ptitle, scale, unit) in zip(axes.flat, panels, strict=False):
        d = t[t.outcome == name]
        for group, shown, colour in groups:
            g = d[d.group == group].sort_values("month")
            g = g[g["mean"].notna()]
            if g.empty:
                continue
            x = g.month.to_numpy(float)
            m = g["mean"].to_numpy(float) * scale
            lo = np.maximum(g.ci_low.to_numpy(float) * scale, 0.0)
            hi = g.ci_high.to_numpy(float) * scale
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, lw=0)
            ax.plot(x, m, color=colour, lw=1.8, label=shown)
            texts = [
                f"{shown}, month {int(k)}: {fmt.number(v, 2)} {unit} "
                f"(95% interval {fmt.number(a, 2)}–{fmt.number(b, 2)}), {fmt.count(n)} people"
                for k, v, a, b, n in zip(x, m, lo, hi, g.people, strict=True)
            ]
            hover_points(ax, x, m, texts, color=colour, ms=2.5)
        ax.axvline(-0.5, color=GREY, lw=1, ls="--")
        ax.axvspan(-0.5, effect_from - 0.5, color=GREY, alpha=0.1, lw=0)
        ax.set_ylim(bottom=0)
        ax.set_title(ptitle, fontsize=10, loc="left")
        ax.set_ylabel(unit, fontsize=9)
        ax.tick_params(labelsize=9)
        tidy(ax)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("months since entry (0 = entry)", fontsize=9)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", frameon=False, fontsize=9, ncol=2)
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return svg_document(fig, title, desc)


def love_plot(balance: pd.DataFrame, title: str, desc: str) -> str:
    """Absolute standardised differences before and after matching, one row per covariate
    under its glossary label, sorted by the difference before matching (largest at the top),
    with the 0.1 line and hover values."""
    b = balance.assign(before=balance.smd_before.abs(), after=balance.smd_after.abs())
    b = b[b.before.notna() | b.after.notna()].sort_values("before", na_position="first")
    names = [label(c) for c in b.covariate]
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.27 * len(b)))
    y = np.arange(len(b))
    for yi, name, bf, af in zip(y, names, b.before, b.after, strict=True):
        text = f"{name}: {fmt.number(bf, 3)} before matching, {fmt.number(af, 3)} after"
        if pd.notna(bf):
            (p,) = ax.plot([bf], [yi], "o", mfc="none", mec=PALETTE[5], ms=6)
            hover(p, text)
        if pd.notna(af):
            (q,) = ax.plot([af], [yi], "o", color=PALETTE[0], ms=6)
            hover(q, text)
    ax.plot([], [], "o", mfc="none", mec=PALETTE[5], label="before matching")
    ax.plot([], [], "o", color=PALETTE[0], label="after matching")
    ax.axvline(SMD_THRESHOLD, color=GREY, ls="--", lw=1)
    ax.text(SMD_THRESHOLD, len(b) - 0.4, f" {fmt.number(SMD_THRESHOLD, 1)}", fontsize=9)
    ax.set_yticks(y, names, fontsize=9)
    ax.set_xlim(left=0)
    ax.set_xlabel("absolute standardised mean difference", fontsize=9)
    ax.set_title(title, fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    tidy(ax)
    return svg_document(fig, title, desc)
