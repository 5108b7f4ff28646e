"""The report's programme monitoring: care plans, coverage, MDG meetings, the fund, SPC charts.

Every monthly series is an XmR chart (:mod:`careval.report.sections.spc`) with its Making Data
Count reading in words, among them the monthly emergency admissions of the programme's
population (the eligible people of its areas, Table 2's rolling cohort).
"""

from __future__ import annotations

import html

from careval.monitoring.programme import EMERGENCY_CHART, ProgrammeResult
from careval.monitoring.spc import VARIATION_LABELS, SPCResult
from careval.report import format as fmt
from careval.report.charts import figure
from careval.report.glossary import abbr, label
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, table_html
from careval.report.sections.qualitative import ROLE_LABELS, role_label
from careval.report.sections.spc import xmr_chart_svg

# Each chart: its title, the y axis, whether its values are shares, and what it counts.
SPC_TITLES: dict[str, tuple[str, str, bool]] = {
    EMERGENCY_CHART: ("Emergency admissions a month", "emergency admissions", False),
    "care_plans_per_month": ("Care plans created a month", "care plans", False),
    "care_plan_quality": ("Care-plan quality (share of the six items met)", "items met", True),
    "mdg_meetings_per_month": ("MDG meetings a month", "meetings", False),
}
SPC_NOTES = {
    EMERGENCY_CHART: (
        "All emergency admissions in each month of the people who were eligible (registered, "
        "alive and eligible on the month's first day) in the programme's areas, with or "
        "without a care plan: the whole population the programme serves, as Table 2 counts "
        "it. Fewer admissions are better."
    ),
    "care_plans_per_month": "Care plans created each month in the programme's MDGs.",
    "care_plan_quality": "The mean share of the quality items met by each month's care plans.",
    "mdg_meetings_per_month": "MDG meetings held each month.",
}


def _caption(name: str, chart: SPCResult, title: str) -> str:
    """The chart's finding: the latest month's MDC reading, with the last segment's limits."""
    last = chart.segments[-1]
    share = SPC_TITLES.get(name, ("", "", False))[2]
    v = (lambda x: fmt.pct(x)) if share else (lambda x: fmt.number(x, 1))
    return (
        f"{title}, latest month {chart.points['date'].iloc[-1]:%B %Y}: "
        f"{VARIATION_LABELS[chart.variation]}. Mean {v(last['mean'])} a month, process limits "
        f"{v(last['lpl'])} to {v(last['upl'])}."
    )


def _spc_parts(r: ProgrammeResult) -> list[str]:
    """One heading, note and captioned XmR chart per series, emergency admissions first."""
    parts = [
        f"<p>Monthly series are {abbr('SPC')} charts ({abbr('XmR', 'XmR charts')}) read with "
        "NHS England's Making Data Count rules: a point outside the process limits, a run of "
        "7 on one side of the mean, 7 rising or falling, or 2 of 3 near a limit is a special "
        "cause; anything else is the process's common-cause variation.</p>"
    ]
    order = [n for n in SPC_TITLES if n in r.charts] + [n for n in r.charts if n not in SPC_TITLES]
    for name in order:
        chart = r.charts[name]
        title, ylabel, share = SPC_TITLES.get(name, (label(name), "", False))
        note = SPC_NOTES.get(name, "")
        parts.append(
            f"<h3>{html.escape(title)}</h3>"
            + (f"<p class='note'>{html.escape(note)}</p>" if note else "")
            + figure(
                xmr_chart_svg(chart, title, ylabel, share),
                _caption(name, chart, title),
                f"spc-{name.replace('_', '-')}",
            )
        )
    return parts


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
                f"{fmt.pct(float(april.coverage_of_eligible.iloc[0]))}</b> of the pilot's "
                "eligible people had a care plan"
                + (" (the seed reported about 30%)" if ctx.seed_shaped else "")
                + ".</p>"
            )
    if r.fund_summary:
        f = r.fund_summary
        parts.append(
            f"<p>Innovation fund: {fmt.pct(f['share_allocated_first_year'], 0)} of the first "
            f"year's {fmt.money(f['budget_first_year'])} was allocated within a year of the "
            "first allocation"
            + (" (the seed: 39%)" if ctx.seed_shaped else "")
            + f"; {fmt.money(f['spent_total'])} of {fmt.money(f['allocated_total'])} allocated "
            "has been spent.</p>"
        )
    parts += _spc_parts(r)
    if len(r.quality):
        q = r.quality.assign(item=[str(i).capitalize() for i in r.quality["item"]])
        parts += [
            "<h3>Care-plan quality items</h3>",
            table_html(
                q,
                {"item": "Item", "share_of_plans": "Plans meeting it"},
                "programme-quality",
                ("item",),
            ),
        ]
    if len(r.meetings):
        parts += [
            f"<h3>{abbr('MDG')} meetings and attendance by role</h3>",
            table_html(
                r.meetings,
                {"mdg": "MDG", "mean_minutes": "Mean length (minutes)", **ROLE_LABELS},
                "programme-meetings",
                ("mdg",),
                kinds={"mean_minutes": "number"},
            ),
        ]
    if len(r.attendance_share):
        s = r.attendance_share.assign(role=[role_label(x) for x in r.attendance_share["role"]])
        parts.append(
            table_html(
                s,
                {"role": "Role", "share_of_attendees": "Share of attendees"},
                "programme-attendance",
                ("role",),
            )
        )
    if len(r.fund):
        parts += [
            "<h3>Innovation fund by MDG</h3>",
            table_html(
                r.fund,
                {
                    "mdg": "MDG",
                    "allocated": "Allocated (£)",
                    "spent": "Spent (£)",
                    "spent_share": "Share spent",
                },
                "programme-fund",
                ("mdg",),
                kinds={"allocated": "money", "spent": "money", "spent_share": "share"},
            ),
        ]
    for w in r.warnings:
        parts.append(f"<p class='note'>{html.escape(w)}</p>")
    return Section("programme", "Programme monitoring", "".join(parts))
