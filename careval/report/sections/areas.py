"""The report's area comparison: Table 2 and the pilot's change minus each comparator's.

The areas are the data's, in Table 2's order (the programme first), labelled by
:func:`careval.report.page.area_label`.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd

from careval.data.areas import pooled_name
from careval.monitoring.areas import ALL, AreaResult
from careval.report import format as fmt
from careval.report.charts import GREY, LINE_COLOURS, figure, hover, tidy
from careval.report.glossary import abbr
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    area_prose,
    svg,
    table_html,
)

ALL_LABEL = "All eligible"
NOT_ESTIMATED = "\u2013"  # no admissions in a period: no change to estimate


def _missing(*vs: float | None) -> bool:
    return any(v is None or pd.isna(v) for v in vs)


def _signed(v: float) -> str:
    """A signed percentage with a true minus: ``−14.6%``, ``+0.8%``."""
    return fmt.MINUS + f"{abs(v):.1f}%" if v < 0 else f"+{v:.1f}%"


def _cell(pct: float | None, lo: float | None, hi: float | None) -> str:
    if _missing(pct, lo, hi):
        return "withheld"  # a change from fewer than 8 people (disclosure control)
    return f"{_signed(pct)} ({_signed(lo)} to {_signed(hi)})"  # type: ignore[arg-type]


def _with_truth(cell: str, truth: float | None, show: object) -> str:
    """A cell with the planted truth after it (synthetic data whose truth has area trends)."""
    if truth is None or pd.isna(truth) or cell == "withheld":
        return cell
    return f"{cell}; truth {show(truth)}"  # type: ignore[operator]


def _points(v: float) -> str:
    """A difference of percentage changes, signed, in points."""
    return (fmt.MINUS if v < 0 else "+") + f"{abs(v):.1f}"


def _diff_cell(d: float | None, lo: float | None, hi: float | None) -> str:
    if _missing(d, lo, hi):
        return "withheld"
    return f"{_points(d)} ({_points(lo)} to {_points(hi)})"  # type: ignore[arg-type]


def change_chart(r: AreaResult) -> str:
    """Each area's change for all the eligible from the last start date, with its 95% CI, as
    a dot-and-whisker chart (the programme first, in Table 2's colours), in a captioned figure.
    Empty when the programme's change is withheld."""
    t = r.table[r.table.group == ALL]
    if t.empty:
        return ""
    start = max(t["start"])
    t = t[t.start == start]
    t = t[
        [
            not _missing(a, b, c)
            for a, b, c in zip(t["pct_change"], t["ci_low"], t["ci_high"], strict=True)
        ]
    ]
    programme = pooled_name(r.settings.programme_areas)
    if programme not in set(t.area):
        return ""
    order = [programme, *[a for a in dict.fromkeys(r.table.area) if a != programme]]
    t = t.set_index("area").reindex([a for a in order if a in set(t.area)])
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(t) + 1.4))
    ys = list(range(len(t)))[::-1]
    for y, (area, row), colour in zip(ys, t.iterrows(), LINE_COLOURS, strict=False):
        name = area_label(str(area))
        (line,) = ax.plot([row["ci_low"], row["ci_high"]], [y, y], color=colour, lw=2.2)
        (dot,) = ax.plot(
            [row["pct_change"]], [y], "o", color=colour, ms=8 if area == programme else 6
        )
        text = f"{name}: {_cell(row['pct_change'], row['ci_low'], row['ci_high'])}"
        hover(dot, text)
        hover(line, text)
    ax.axvline(0, color=GREY, lw=1)
    ax.set_yticks(ys, [area_label(str(a)) for a in t.index])
    ax.set_xlabel("Change in emergency admissions per eligible person-year (%)")
    when = f"{pd.Timestamp(start):%B %Y}"
    title = f"Change over {r.settings.months} months from {when}, all eligible"
    ax.set_title(title, loc="left")
    tidy(ax)
    desc = "; ".join(
        f"{area_label(str(a))}: {_cell(row['pct_change'], row['ci_low'], row['ci_high'])}"
        for a, row in t.iterrows()
    )
    p = t.loc[programme]
    others = t.drop(index=programme)
    caption = (
        f"From {when}, emergency admissions per eligible person-year in "
        f"{area_prose(programme)} changed by {_cell(p['pct_change'], p['ci_low'], p['ci_high'])}"
        + (
            "; in the comparison areas the change ranged from "
            f"{_signed(others['pct_change'].min())} to {_signed(others['pct_change'].max())}."
            if len(others)
            else "."
        )
    )
    return figure(svg(fig, title, desc + "."), caption, "table2-chart")


def section(r: AreaResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The seed's Table 2 layout: group and area down, start dates across.

    It names its method as the seed's (a rolling cohort) on any data, and quotes no figure of
    the seed, so ``ctx`` changes nothing here.
    """
    el = r.settings.eligibility
    group_labels = {ALL: ALL_LABEL, **{g.name: g.label for g in el.groups()}}
    t = r.table.copy()
    truths = t["true_pct_change"] if "true_pct_change" in t else [None] * len(t)
    t["cell"] = [
        _with_truth(_cell(a, b, c), v, _signed)
        for a, b, c, v in zip(t["pct_change"], t["ci_low"], t["ci_high"], truths, strict=True)
    ]
    wide = t.pivot_table(index=["group", "area"], columns="start", values="cell", aggfunc="first")
    wide = wide.fillna(NOT_ESTIMATED).reset_index()
    order_g = {g: i for i, g in enumerate(group_labels)}
    order_a = {a: i for i, a in enumerate(dict.fromkeys(t["area"]))}
    wide = wide.sort_values(
        ["group", "area"],
        key=lambda c: c.map(order_g) if c.name == "group" else c.map(order_a),
        ignore_index=True,
    )
    wide["group"] = wide.group.map(group_labels).fillna(wide.group)
    wide["area"] = wide.area.map(area_label)
    starts = [c for c in wide.columns if c not in ("group", "area")]
    labels = {s: f"From {pd.Timestamp(s):%B %Y}" for s in starts}
    d = r.differences.copy()
    d = d[d.group == ALL]
    dtruths = d["true_difference"] if "true_difference" in d else [None] * len(d)
    d["difference_ci"] = [
        _with_truth(_diff_cell(a, b, c), v, _points)
        for a, b, c, v in zip(d.difference, d.ci_low, d.ci_high, dtruths, strict=True)
    ]
    dw = (
        d.pivot_table(index="comparator", columns="start", values="difference_ci", aggfunc="first")
        .fillna(NOT_ESTIMATED)
        .reset_index()
    )
    dw = dw.sort_values("comparator", key=lambda c: c.map(order_a), ignore_index=True)
    dw["comparator"] = dw.comparator.map(area_label)
    months = r.settings.months
    parts = [
        f"<p>Percentage change in emergency admissions per eligible person-year over the "
        f"{months} months from each start date against the same months a year earlier, with "
        f"95% confidence intervals ({abbr('CI')}); a negative change is a fall. Eligibility "
        f"({html.escape(el.describe())}) is taken "
        "afresh each month: a rolling cohort, as in the seed evaluation.</p>",
        table_html(
            wide, {**labels, "group": "Group", "area": "Area"}, "table2", ("group", "area", *starts)
        ),
        change_chart(r),
        f"<h3>{html.escape(area_label(pooled_name(r.settings.programme_areas)))}'s change minus "
        "each comparator's (all eligible, percentage points)</h3>",
        table_html(
            dw,
            {**labels, "comparator": "Comparator"},
            "table2-differences",
            ("comparator", *starts),
        ),
        "<p class='note'>Intervals allow for people with repeated admissions (overdispersion) "
        "and ignore the overlap of people between the two periods, which makes them "
        "conservative. An area comparison sees the whole eligible population, most of whom "
        "had no care plan; it answers a different question from the matched study.</p>",
    ]
    if "true_pct_change" in t:
        parts.append(
            "<p class='note'>Synthetic data: each cell also shows the change the population was "
            "made with (the truth: each area's designed trend, the groups' changing sizes and, "
            "in the pilot, the care plans' effect), which the interval should usually hold.</p>"
        )
    for w in r.warnings:
        parts.append(f"<p class='note'>{w}</p>")
    return Section("monitoring", "Area comparison (Table 2)", "".join(parts))
