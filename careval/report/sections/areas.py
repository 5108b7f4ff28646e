"""The report's area comparison: Table 2 and the pilot's change minus each comparator's.

The areas are the data's, in Table 2's order (the programme first), labelled by
:func:`careval.report.page.area_label`.
"""

from __future__ import annotations

import html

import pandas as pd

from careval.monitoring.areas import ALL, AreaResult
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, area_label, table_html

ALL_LABEL = "All eligible"


def _cell(pct: float | None, lo: float | None, hi: float | None) -> str:
    if any(v is None or pd.isna(v) for v in (pct, lo, hi)):
        return "withheld"  # a change from fewer than 8 people (disclosure control)
    return f"{pct:+.1f}% ({lo:+.1f} to {hi:+.1f})"


def section(r: AreaResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The seed's Table 2 layout: group and area down, start dates across.

    It names its method as the seed's (a rolling cohort) on any data, and quotes no figure of
    the seed, so ``ctx`` changes nothing here.
    """
    el = r.settings.eligibility
    group_labels = {ALL: ALL_LABEL, **{g.name: g.label for g in el.groups()}}
    t = r.table.copy()
    t["cell"] = [
        _cell(a, b, c) for a, b, c in zip(t["pct_change"], t["ci_low"], t["ci_high"], strict=True)
    ]
    wide = t.pivot_table(index=["group", "area"], columns="start", values="cell", aggfunc="first")
    wide = wide.reset_index()
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
    labels = {s: f"from {pd.Timestamp(s):%B %Y}" for s in starts}
    d = r.differences.copy()
    d = d[d.group == ALL]
    d["difference_ci"] = [
        _cell(a, b, c) for a, b, c in zip(d.difference, d.ci_low, d.ci_high, strict=True)
    ]
    dw = d.pivot_table(
        index="comparator", columns="start", values="difference_ci", aggfunc="first"
    ).reset_index()
    dw = dw.sort_values("comparator", key=lambda c: c.map(order_a), ignore_index=True)
    dw["comparator"] = dw.comparator.map(area_label)
    months = r.settings.months
    parts = [
        f"<p>Percentage change in emergency admissions per eligible person-year over the "
        f"{months} months from each start date against the same months a year earlier, with "
        f"95% confidence intervals. Eligibility ({html.escape(el.describe())}) is taken "
        "afresh each month: a rolling cohort, as in the seed evaluation.</p>",
        table_html(
            wide, {**labels, "group": "Group", "area": "Area"}, "table2", ("group", "area", *starts)
        ),
        "<h3>The pilot's change minus each comparator's (all eligible, percentage points)</h3>",
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
    for w in r.warnings:
        parts.append(f"<p class='note'>{w}</p>")
    return Section("monitoring", "Area comparison (Table 2)", "".join(parts))
