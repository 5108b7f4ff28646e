"""The report's area comparison: Table 2 and the pilot's change minus each comparator's."""

from __future__ import annotations

import pandas as pd

from careval.monitoring.areas import AreaResult
from careval.report.page import AREA_LABELS, DEFAULT_CONTEXT, PageContext, Section, table_html

GROUP_LABELS = {
    "all_eligible": "All eligible",
    "under_75_with_diabetes": "Under 75 with diabetes",
    "aged_75_plus_without_diabetes": "75+ without diabetes",
    "aged_75_plus_with_diabetes": "75+ with diabetes",
}


def _cell(pct: float | None, lo: float | None, hi: float | None) -> str:
    if any(v is None or pd.isna(v) for v in (pct, lo, hi)):
        return "withheld"  # a change from fewer than 8 people (disclosure control)
    return f"{pct:+.1f}% ({lo:+.1f} to {hi:+.1f})"


def section(r: AreaResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The seed's Table 2 layout: group and area down, start dates across.

    It names its method as the seed's (a rolling cohort) on any data, and quotes no figure of
    the seed, so ``ctx`` changes nothing here.
    """
    t = r.table.copy()
    t["cell"] = [
        _cell(a, b, c) for a, b, c in zip(t["pct_change"], t["ci_low"], t["ci_high"], strict=True)
    ]
    wide = t.pivot_table(index=["group", "area"], columns="start", values="cell", aggfunc="first")
    wide = wide.reset_index()
    order_g = {g: i for i, g in enumerate(GROUP_LABELS)}
    order_a = {a: i for i, a in enumerate(AREA_LABELS)}
    wide = wide.sort_values(
        ["group", "area"],
        key=lambda c: c.map(order_g) if c.name == "group" else c.map(order_a),
        ignore_index=True,
    )
    wide["group"] = wide.group.map(GROUP_LABELS).fillna(wide.group)
    starts = [c for c in wide.columns if c not in ("group", "area")]
    labels = {s: f"from {pd.Timestamp(s):%B %Y}" for s in starts}
    d = r.differences.copy()
    d = d[d.group == "all_eligible"]
    d["difference_ci"] = [
        _cell(a, b, c) for a, b, c in zip(d.difference, d.ci_low, d.ci_high, strict=True)
    ]
    dw = d.pivot_table(
        index="comparator", columns="start", values="difference_ci", aggfunc="first"
    ).reset_index()
    dw = dw.sort_values("comparator", key=lambda c: c.map(order_a), ignore_index=True)
    months = r.settings.months
    parts = [
        f"<p>Percentage change in emergency admissions per eligible person-year over the "
        f"{months} months from each start date against the same months a year earlier, with "
        "95% confidence intervals. Eligibility (aged 75+ and/or diabetes) is taken afresh each "
        "month: a rolling cohort, as in the seed evaluation.</p>",
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
