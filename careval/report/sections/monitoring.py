"""Report sections of population and programme monitoring."""

from __future__ import annotations

import pandas as pd

from careval.monitoring.areas import AreaResult
from careval.monitoring.programme import ProgrammeResult
from careval.monitoring.spc import xmr_chart_svg
from careval.report.page import AREA_LABELS, Section, table_html

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


def table2_section(r: AreaResult) -> Section:
    """The seed's Table 2 layout: group and area down, start dates across."""
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


SPC_TITLES = {
    "care_plans_per_month": ("Care plans created a month", "care plans"),
    "care_plan_quality": ("Care-plan quality (share of the six items met)", "share"),
    "mdg_meetings_per_month": ("MDG meetings a month", "meetings"),
}
VARIATION_TEXT = {
    "common_cause": "common-cause variation only",
    "improvement_high": "special cause: improvement (high)",
    "improvement_low": "special cause: improvement (low)",
    "concern_high": "special cause: concern (high)",
    "concern_low": "special cause: concern (low)",
    "neutral_high": "special cause (high)",
    "neutral_low": "special cause (low)",
}


def programme_section(r: ProgrammeResult) -> Section:
    """Care plans, coverage, quality, MDG meetings, the innovation fund, and SPC charts."""
    parts = []
    cov = r.coverage
    if len(cov):
        last = cov.dropna(subset=["coverage_of_eligible"])
        april = last[last.month.astype(str).str.startswith("2012-04")]
        if len(april):
            parts.append(
                f"<p>By the end of April 2012, <b id='programme-coverage-2012-04'>"
                f"{100 * float(april.coverage_of_eligible.iloc[0]):.1f}%</b> of the pilot's "
                "eligible people had a care plan (the seed reported about 30%).</p>"
            )
    if r.fund_summary:
        f = r.fund_summary
        parts.append(
            f"<p>Innovation fund: {100 * f['share_allocated_first_year']:.0f}% of the first "
            f"year's £{f['budget_first_year']:,.0f} was allocated within a year of the first "
            f"allocation (the seed: 39%); £{f['spent_total']:,.0f} of £{f['allocated_total']:,.0f}"
            " allocated has been spent.</p>"
        )
    for name, chart in r.charts.items():
        title, ylabel = SPC_TITLES.get(name, (name.replace("_", " "), ""))
        parts.append(
            f"<h3>{title}</h3><p class='note'>XmR chart, Making Data Count rules; latest point: "
            f"{VARIATION_TEXT.get(chart.variation, chart.variation)}.</p>"
            "<figure>" + xmr_chart_svg(chart, title, ylabel) + "</figure>"
        )
    if len(r.quality):
        q = r.quality.assign(share_of_plans=r.quality.share_of_plans.round(3))
        parts += [
            "<h3>Care-plan quality items</h3>",
            table_html(q, {}, "programme-quality", ("item",)),
        ]
    if len(r.meetings):
        parts += [
            "<h3>MDG meetings and attendance by role</h3>",
            table_html(r.meetings.round(1), {}, "programme-meetings", ("mdg",)),
        ]
    if len(r.attendance_share):
        s = r.attendance_share.assign(
            share_of_attendees=r.attendance_share.share_of_attendees.round(3)
        )
        parts.append(table_html(s, {}, "programme-attendance", ("role",)))
    if len(r.fund):
        parts += [
            "<h3>Innovation fund by MDG (£)</h3>",
            table_html(r.fund.round(2), {}, "programme-fund", ("mdg",)),
        ]
    for w in r.warnings:
        parts.append(f"<p class='note'>{w}</p>")
    return Section("programme", "Programme monitoring", "".join(parts))
