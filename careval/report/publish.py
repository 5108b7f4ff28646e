"""Publication of a run's results under disclosure control (real data only).

Each ``publish_*`` function replaces the tables of one result object by their published
versions (:mod:`careval.report.disclosure`), in place, *after* every analysis has used the true
values. The report sections and ``results.json`` are then both built from the same published
objects, so the page, the workbook and the JSON always show the same numbers. The tables with
totals, where secondary suppression applies, are named in :data:`MARGINS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careval.design.power import DesignResult
from careval.impact.study import ImpactResult
from careval.monitoring.areas import AreaResult
from careval.monitoring.indicators import COMPARATORS, IndicatorsResult
from careval.monitoring.programme import ProgrammeResult
from careval.monitoring.spc import xmr
from careval.report.disclosure import (
    MIN_PEOPLE,
    SUPPRESSED,
    is_small,
    protect_mapping,
    protect_table,
    protect_value,
)
from careval.risk.evaluate import RiskResult

GROUPS = ("under_75_with_diabetes", "aged_75_plus_without_diabetes", "aged_75_plus_with_diabetes")
IMPACT_MARGIN = (
    ("treated_matched", "unmatched_outside_caliper", "unmatched_no_control_in_stratum"),
    "treated_alive_and_registered_at_entry",
)
PAIRED_MARGIN = (("both", "before_only", "after_only", "neither"), "n_before")
# The before/after table's estimates and tests: withheld where they rest on fewer than 8 people.
BEFORE_AFTER_RATES = (
    "before",
    "after",
    "change",
    "comparison_change",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "p_value",
)
# Tables with totals: where secondary suppression applies and what adds up to what.
MARGINS: dict[str, str] = {
    "data.people_by_area": "eligible = the three eligibility groups (in each area)",
    "monitoring.table2": "all eligible = the three groups (each area, start date and count)",
    "risk.by_subgroup": "everyone = the age bands; everyone = female + male (each count)",
    "impact.attrition": "alive and registered at entry = matched + unmatched (two reasons)",
    "indicators.diabetes.monthly": "comparison areas pooled = the four comparison areas "
    "(each month, indicator and count)",
    "indicators.before_after.table": "pairs = in control both times + before only + after "
    "only + neither (paired share rows)",
    "programme.plans_by_mdg": "total = the MDGs (each month)",
}
TARGETING_RATES = ("emergency_per_person_year_prior", "mean_risk", "share_in_top_5pct")
TABLE2_RATES = ("rate_before", "rate_after", "pct_change", "ci_low", "ci_high", "se_log_rate_ratio")
COUNT_CHARTS = ("care_plans_per_month", "mdg_meetings_per_month")


def publish_risk(r: RiskResult) -> None:
    """The targeting table as published (rules 1-3)."""
    if len(r.targeting):
        r.targeting = protect_table(
            r.targeting,
            ["people"],
            rates=[*TARGETING_RATES, "share_in_top_1pct"],
            denominator="people",
        )
    # The subgroup table is published by RiskResult itself (risk.evaluate.protect_subgroups).


def publish_areas(a: AreaResult) -> None:
    """Table 2 as published; the differences of a withheld change are withheld too."""
    t = a.table
    a.table = protect_table(
        t,
        ["people_after", "admissions_after", "admissions_before"],
        group_margin=("group", ["start", "area"], GROUPS, "all_eligible"),
        rates=TABLE2_RATES,
        denominator="people_after",
    )
    gone = {
        (g, str(s), ar)
        for g, s, ar, v in zip(
            t["group"], t["start"], t["area"], a.table["pct_change"], strict=True
        )
        if v is None or (isinstance(v, float) and np.isnan(v))
    }
    d = a.differences.copy().astype({c: object for c in ("difference", "ci_low", "ci_high")})
    drop = [
        (g, str(s), "pilot") in gone or (g, str(s), c) in gone
        for g, s, c in zip(d["group"], d["start"], d["comparator"], strict=True)
    ]
    for col in ("difference", "ci_low", "ci_high", "p_value"):
        if col in d:
            d[col] = d[col].astype(object).where(~pd.Series(drop, index=d.index), None)
    a.differences = d


def publish_impact(r: ImpactResult) -> None:
    """Attrition (with its margin) and the horizons' counts as published."""
    r.attrition = protect_mapping(r.attrition, [IMPACT_MARGIN])
    m = r.monthly_means  # Figure 2: no month's means from fewer than 8 treated people
    small = m.treated_people < MIN_PEOPLE
    m.loc[small, ["treated", "matched_controls"]] = float("nan")
    m["treated_people"] = [protect_value(int(v)) for v in m.treated_people]
    for h in r.horizons:
        n = h.get("treated_with_full_horizon")
        if is_small(n):
            for k, v in h.items():
                if isinstance(v, float):
                    h[k] = None
        h["treated_with_full_horizon"] = protect_value(n)
        if "n_obs" in h:
            h["n_obs"] = protect_value(h["n_obs"])


def impact_withheld(r: ImpactResult) -> bool:
    """Whether the matched study rests on fewer than 8 people (then it is not published)."""
    n = r.attrition.get("treated_matched")
    return n == SUPPRESSED or is_small(n)


def publish_indicators(r: IndicatorsResult) -> dict[str, Any]:
    """The ``indicators`` block as published: the module's own protection, then margins.

    The before/after table is protected by the report section itself (with the same margin,
    :func:`before_after_published`); the monthly diabetes table gets the comparators margin.
    """
    block = r.to_dict(protect=True)
    margin = comparator_margin_suppressed(r)
    for rec, hide in zip(block["diabetes"]["monthly"], margin.to_dict("records"), strict=True):
        for c in ("people", "with_reading", "in_control"):
            if hide[c] and rec[c] != SUPPRESSED:
                rec[c] = SUPPRESSED
                for s in ("share_with_reading", "share_in_control"):
                    rec[s] = rec[f"{s}_rolling"] = None
    table = before_after_published(r.before_after)
    for rec, (_, pub) in zip(block["before_after"]["table"], table.iterrows(), strict=True):
        for c in (*PAIRED_MARGIN[0], "n_before", "n_after", "comparison_n"):
            rec[c] = _plain(pub[c])
        for c in BEFORE_AFTER_RATES:
            if c in rec and _plain(pub.get(c)) is None:
                rec[c] = None
    return block


def comparator_margin_suppressed(r: IndicatorsResult) -> pd.DataFrame:
    """Which monthly diabetes counts the comparators margin suppresses (True: shown as ``*``).

    The pooled comparison areas add up the four areas (each month, indicator and count), so
    secondary suppression applies across them. The JSON and the report section both use this.
    """
    counts = ["people", "with_reading", "in_control"]
    monthly = protect_table(
        r.diabetes_monthly,
        counts,
        group_margin=(
            "area",
            ["month", "indicator"],
            list(r.settings.comparison_areas),
            COMPARATORS,
        ),
    )
    return pd.DataFrame({c: monthly[c] == SUPPRESSED for c in counts}, index=monthly.index)


def before_after_published(t: pd.DataFrame) -> pd.DataFrame:
    """The before/after table with rules 1-3: pairs margin; estimates from < 8 people withheld."""
    counts = ["n_before", "n_after", "comparison_n", *PAIRED_MARGIN[0]]
    return protect_table(
        t, counts, row_margins=[PAIRED_MARGIN], rates=BEFORE_AFTER_RATES, denominator="n_before"
    )


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def publish_programme(p: ProgrammeResult) -> None:
    """Counts by MDG (with monthly totals), meetings and the fund as published.

    The SPC charts of counts are redrawn from the published monthly counts (suppressed months
    left out), so no chart or JSON point carries a count the tables withhold.
    """
    if len(p.plans_by_mdg):
        mdgs = [c for c in p.plans_by_mdg.columns if c != "month"]
        t = p.plans_by_mdg.assign(total=p.plans_by_mdg[mdgs].sum(axis=1))
        p.plans_by_mdg = protect_table(t, [*mdgs, "total"], row_margins=[(mdgs, "total")])
    if len(p.coverage):
        p.coverage = protect_table(p.coverage, ["care_plans", "cumulative"])
    if len(p.meetings):
        counts = [c for c in p.meetings.columns if c not in ("mdg", "mean_minutes")]
        p.meetings = protect_table(p.meetings, counts)
    if len(p.fund):
        p.fund = protect_table(p.fund, ["allocations"])
    for name in COUNT_CHARTS:
        chart = p.charts.get(name)
        if chart is None:
            continue
        pts = chart.points
        values = [protect_value(v) for v in pts["value"]]
        keep = [isinstance(v, int) for v in values]
        if sum(keep) < 2:
            del p.charts[name]
            p.warnings.append(f"{name.replace('_', ' ')}: not charted (small counts)")
            continue
        p.charts[name] = xmr(
            np.array([v for v, k in zip(values, keep, strict=True) if k], dtype=float),
            pd.Series(pts["date"])[keep].to_numpy(),
            improvement=chart.improvement,  # type: ignore[arg-type]
            target=chart.target,
        )


def publish_design(d: DesignResult) -> None:
    """The number enrolled and the people with full histories as published."""
    d.enrolled = protect_value(d.enrolled)
    for row in d.rows:
        if "people_with_full_history" in row:
            row["people_with_full_history"] = protect_value(row["people_with_full_history"])
