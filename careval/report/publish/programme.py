"""Publication of programme monitoring: counts by MDG with totals, meetings, fund, count charts."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.monitoring.programme import ProgrammeResult
from careval.monitoring.spc import xmr
from careval.report.publish.data import coverage_published
from careval.report.publish.derived import count_out, derived, ratio_of_published
from careval.report.publish.rules import protect_table, protect_value

COUNT_CHARTS = ("care_plans_per_month", "mdg_meetings_per_month", "emergency_admissions_per_month")


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def publish_programme(result: ProgrammeResult, d: DisclosureSettings) -> ProgrammeResult:
    """A copy of ``result`` with counts by MDG (with monthly totals), meetings and the fund as
    published under ``d``.

    The SPC charts of counts are redrawn from the published monthly counts (suppressed months
    left out), so no chart or JSON point carries a count the tables withhold.
    """
    p = copy.deepcopy(result)
    plans = None
    if len(p.plans_by_mdg):
        mdgs = [c for c in p.plans_by_mdg.columns if c != "month"]
        t = p.plans_by_mdg.assign(total=p.plans_by_mdg[mdgs].sum(axis=1))
        plans = int(t["total"].sum())
        p.plans_by_mdg = protect_table(t, [*mdgs, "total"], d, row_margins=[(mdgs, "total")])
    if len(p.coverage):
        p.coverage = coverage_published(p.coverage, d)
    if len(p.quality) and "share_of_plans" in p.quality:
        # The derived-figure rule: the (rounded) plans with the item over the (rounded) plans.
        p.quality["share_of_plans"] = pd.Series(
            [
                None if plans is None or pd.isna(v) else _round(derived(v * plans, plans, d))
                for v in p.quality["share_of_plans"]
            ],
            index=p.quality.index,
            dtype=object,
        )
    if len(p.meetings):
        counts = [c for c in p.meetings.columns if c not in ("mdg", "mean_minutes")]
        roles = [c for c in counts if c in p.attendance_share.get("role", pd.Series()).tolist()]
        totals = {r: count_out(p.meetings[r].sum(), d) for r in roles}
        everyone = count_out(sum(int(p.meetings[r].sum()) for r in roles), d)
        p.meetings = protect_table(p.meetings, counts, d)
        if len(p.attendance_share):
            # Each role's (rounded) attendances over the (rounded) attendances of all roles.
            p.attendance_share["share_of_attendees"] = pd.Series(
                [
                    _round(ratio_of_published(totals.get(r), everyone))
                    for r in p.attendance_share.role
                ],
                index=p.attendance_share.index,
                dtype=object,
            )
    if len(p.fund):
        p.fund = protect_table(p.fund, ["allocations"], d)
    for name in COUNT_CHARTS:
        chart = p.charts.get(name)
        if chart is None:
            continue
        pts = chart.points
        values = [protect_value(v, d) for v in pts["value"]]
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
    _quality_chart(p, result, d)
    return p


def _quality_chart(p: ProgrammeResult, result: ProgrammeResult, d: DisclosureSettings) -> None:
    """The quality chart redrawn from published figures (in place on ``p``).

    Each month's point is the plans' mean share of quality items met: the items met over the
    month's plans times the items. By the derived-figure rule it is the items met (rounded as
    a count) over the month's plans as published, over the number of items; a month whose
    plans or items met are suppressed is left out (a mean of fewer than 8 plans would give
    them back).
    """
    chart = p.charts.get("care_plan_quality")
    if chart is None:
        return
    items = len(result.quality)
    mdgs = [c for c in result.plans_by_mdg.columns if c != "month"]
    plans = dict(
        zip(
            result.plans_by_mdg["month"].astype(str).str[:10],
            result.plans_by_mdg[mdgs].sum(axis=1),
            strict=True,
        )
    )
    dates = pd.Series(chart.points["date"])
    values = [
        derived(v * plans.get(str(day)[:10], 0) * items, plans.get(str(day)[:10], 0), d, 1 / items)
        if items and pd.notna(v)
        else None
        for v, day in zip(chart.points["value"], dates.astype(str), strict=True)
    ]
    keep = [v is not None for v in values]
    if sum(keep) < 2:
        del p.charts["care_plan_quality"]
        p.warnings.append("care-plan quality: not charted (small counts)")
        return
    p.charts["care_plan_quality"] = xmr(
        np.array([v for v in values if v is not None], dtype=float),
        dates[keep].to_numpy(),
        improvement=chart.improvement,  # type: ignore[arg-type]
        target=chart.target,
    )
