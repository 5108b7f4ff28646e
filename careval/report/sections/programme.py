"""The report's programme monitoring: care plans, coverage, MDG meetings, the fund, SPC charts."""

from __future__ import annotations

from careval.monitoring.programme import ProgrammeResult
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, table_html
from careval.report.sections.spc import xmr_chart_svg

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


def section(r: ProgrammeResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """Care plans, coverage, quality, MDG meetings, the innovation fund, and SPC charts (with
    the seed's coverage and fund figures beside them on seed-shaped data)."""
    parts = []
    cov = r.coverage
    if len(cov):
        last = cov.dropna(subset=["coverage_of_eligible"])
        april = last[last.month.astype(str).str.startswith("2012-04")]
        if len(april):
            parts.append(
                f"<p>By the end of April 2012, <b id='programme-coverage-2012-04'>"
                f"{100 * float(april.coverage_of_eligible.iloc[0]):.1f}%</b> of the pilot's "
                "eligible people had a care plan"
                + (" (the seed reported about 30%)" if ctx.seed_shaped else "")
                + ".</p>"
            )
    if r.fund_summary:
        f = r.fund_summary
        parts.append(
            f"<p>Innovation fund: {100 * f['share_allocated_first_year']:.0f}% of the first "
            f"year's £{f['budget_first_year']:,.0f} was allocated within a year of the first "
            "allocation"
            + (" (the seed: 39%)" if ctx.seed_shaped else "")
            + f"; £{f['spent_total']:,.0f} of £{f['allocated_total']:,.0f} allocated has been "
            "spent.</p>"
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
