"""Publication of the data summary and the validation warnings."""

from __future__ import annotations

import dataclasses

import pandas as pd

from careval.cohort.summary import DataSummary
from careval.disclosure import DisclosureSettings
from careval.errors import Problem
from careval.report.publish.derived import (
    count_out,
    derived_column,
    person_time_out,
    rate_of_published,
    ratio_of_published,
)
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
    # The derived-figure rule: shares and rates from the published counts and person-time.
    people["eligible_share"] = derived_column(people["eligible"], people["registered"]).map(
        lambda v: None if v is None else round(v, 4)
    )
    if len(activity):
        activity["person_years"] = [person_time_out(v) for v in activity["person_years"]]
        activity["emergency_per_1000_py"] = pd.Series(
            [
                None if r is None or pd.isna(r) else _round(rate_of_published(n, py, 1000.0), 2)
                for r, n, py in zip(
                    activity["emergency_per_1000_py"],
                    activity["emergency_admissions"],
                    activity["person_years"],
                    strict=True,
                )
            ],
            index=activity.index,
            dtype=object,
        )
    return dataclasses.replace(
        summary,
        people_by_area=people,
        activity_by_year=activity,
        attrition=protect_table(summary.attrition, per_area, d),
        care_plan_coverage=coverage_published(summary.care_plan_coverage, d),
        warnings=list(summary.warnings),
    )


def coverage_published(coverage: pd.DataFrame, d: DisclosureSettings) -> pd.DataFrame:
    """The care-plan coverage table as published: counts protected, and each month's coverage
    the published cumulative plans over the published number of eligible people (withheld
    when the cumulative count is suppressed).

    The eligible people behind the coverage are the cumulative plans over the coverage of the
    month with the most plans (the table holds no count of them), so that the data summary and
    programme monitoring publish the same figures.
    """
    out = protect_table(coverage, ["care_plans", "cumulative"], d)
    if not len(coverage) or "coverage_of_eligible" not in coverage:
        return out
    known = coverage[coverage["coverage_of_eligible"].fillna(0) > 0]
    if not len(known):
        return out
    last = known.loc[known["cumulative"].idxmax()]
    eligible = count_out(round(float(last["cumulative"]) / float(last["coverage_of_eligible"])), d)
    out["coverage_of_eligible"] = pd.Series(
        [
            None if pd.isna(c) else _round(ratio_of_published(n, eligible), 4)
            for c, n in zip(coverage["coverage_of_eligible"], out["cumulative"], strict=True)
        ],
        index=out.index,
        dtype=object,
    )
    return out


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def published_warning(p: Problem, synthetic: bool, d: DisclosureSettings) -> str:
    """A validation warning as published: on real data no example row, its count protected."""
    if synthetic:
        return p.line()
    text = f"{p.table}.{p.column}: {p.rule}"
    if p.counts_rows:
        count = protect_value(p.count, d)
        text += f" ({f'{count:,}' if isinstance(count, int) else count} rows)"
    return text + (f"; allowed: {p.allowed}" if p.allowed else "")
