"""Publication of the data summary and the validation warnings."""

from __future__ import annotations

import dataclasses

from careval.cohort.summary import DataSummary
from careval.disclosure import DisclosureSettings
from careval.errors import Problem
from careval.report.publish.rules import protect_table, protect_value

COUNT_COLUMNS_PEOPLE = ["registered", "eligible"]  # and the eligibility groups' columns


def publish_summary(summary: DataSummary, d: DisclosureSettings) -> DataSummary:
    """A copy of ``summary`` with its tables as published (rules 1-3, the numbers of ``d``).

    People by area has a margin when the rule splits the eligible into groups (eligible = the
    three groups), so it gets secondary suppression; a share from fewer than 8 people, or from
    a suppressed count, is withheld. The attrition table has one count column per area of the
    data.
    """
    per_area = [c for c in summary.attrition.columns if c not in ("step", "description")]
    groups = list(summary.settings.eligibility.group_names())
    people = protect_table(
        summary.people_by_area,
        [*COUNT_COLUMNS_PEOPLE, *groups],
        d,
        row_margins=[(groups, "eligible")] if groups else [],
        rates=["eligible_share"],
        denominator="eligible",
        rate_counts={"eligible_share": ["eligible", "registered"]},
    )
    activity = summary.activity_by_year
    counts = [
        c
        for c in activity.columns
        if c not in ("area", "year", "person_years") and not c.endswith("_py")
    ]
    activity = protect_table(
        activity, counts, d, rates=["emergency_per_1000_py"], denominator="emergency_admissions"
    )
    return dataclasses.replace(
        summary,
        people_by_area=people,
        activity_by_year=activity,
        attrition=protect_table(summary.attrition, per_area, d),
        care_plan_coverage=protect_table(
            summary.care_plan_coverage, ["care_plans", "cumulative"], d
        ),
        warnings=list(summary.warnings),
    )


def published_warning(p: Problem, synthetic: bool, d: DisclosureSettings) -> str:
    """A validation warning as published: on real data no example row, its count protected."""
    if synthetic:
        return p.line()
    text = f"{p.table}.{p.column}: {p.rule}"
    if p.counts_rows:
        count = protect_value(p.count, d)
        text += f" ({f'{count:,}' if isinstance(count, int) else count} rows)"
    return text + (f"; allowed: {p.allowed}" if p.allowed else "")
