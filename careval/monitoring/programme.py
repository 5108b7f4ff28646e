"""Programme monitoring: what the board watched, as monthly series with SPC charts.

Care plans created each month by MDG and cumulative coverage of the eligible population;
care-plan quality items; MDG meetings and attendance by professional role; the innovation fund
allocated and spent by MDG. Each monthly series is an XmR chart with the Making Data Count rules
(:mod:`careval.monitoring.spc`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from careval.cohort.summary import DataSummary
from careval.data.access import Dataset
from careval.monitoring.areas import AreaSettings, monthly_eligible
from careval.monitoring.spc import VARIATION_LABELS, SPCResult, xmr
from careval.settings import Settings

MIN_POINTS = 12  # an XmR chart needs at least this many months


@dataclass(frozen=True)
class ProgrammeSettings(Settings):
    """The innovation fund's first-year budget (pounds) for the share allocated."""

    fund_budget_year_one: float = 450_000.0


@dataclass
class ProgrammeResult:
    """Tables and SPC charts of the programme's own records."""

    settings: ProgrammeSettings
    plans_by_mdg: pd.DataFrame  # month x MDG counts
    coverage: pd.DataFrame  # month, care_plans, cumulative, coverage_of_eligible
    quality: pd.DataFrame  # item, share of plans
    meetings: pd.DataFrame  # MDG: meetings, mean duration, cases discussed, attendance by role
    attendance_share: pd.DataFrame  # role, share of attendees
    fund: pd.DataFrame  # MDG: allocated, spent, allocations
    fund_summary: dict[str, Any]
    charts: dict[str, SPCResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """Care-plan coverage by month: ``month``, ``care_plans``, ``cumulative`` and
        ``coverage_of_eligible`` (the pilot's eligible people with a plan)."""
        return self.coverage.reset_index(drop=True)

    def summary(self) -> str:
        """Latest coverage, the fund's first-year share, and the latest point of each chart."""
        lines = []
        cov = self.coverage.dropna(subset=["coverage_of_eligible"]) if len(self.coverage) else None
        if cov is not None and len(cov):
            last = cov.iloc[-1]
            lines.append(
                f"care-plan coverage {100 * float(last.coverage_of_eligible):.1f}% of the "
                f"eligible by {last.month}"
            )
        if self.fund_summary:
            f = self.fund_summary
            lines.append(
                f"innovation fund: {100 * f['share_allocated_first_year']:.0f}% of the first "
                f"year's budget allocated within a year"
            )
        for name, chart in self.charts.items():
            lines.append(f"{name}: {VARIATION_LABELS[chart.variation].lower()}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines) or "programme monitoring: no records"

    def to_dict(self) -> dict[str, Any]:
        """The ``programme`` block of ``results.json``."""

        def recs(df: pd.DataFrame) -> list[dict[str, Any]]:
            out = []
            for r in df.to_dict(orient="records"):
                out.append(
                    {str(k): (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                )
            return out

        return {
            "plans_by_mdg": recs(self.plans_by_mdg),
            "coverage": recs(self.coverage),
            "quality": recs(self.quality),
            "meetings": recs(self.meetings),
            "attendance_share": recs(self.attendance_share),
            "fund": recs(self.fund),
            "fund_summary": {
                k: (round(v, 6) if isinstance(v, float) else v)
                for k, v in self.fund_summary.items()
            },
            "spc": {name: c.to_dict() for name, c in self.charts.items()},
            "warnings": self.warnings,
        }


def _month_col(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.to_period("M").dt.to_timestamp()


def _chart(series: pd.Series, improvement: str, warnings: list[str], name: str) -> SPCResult | None:
    s = series.dropna()
    if len(s) < MIN_POINTS:
        warnings.append(f"{name}: {len(s)} months; an SPC chart needs at least {MIN_POINTS}")
        return None
    return xmr(s.to_numpy(dtype=float), s.index, improvement=improvement)  # type: ignore[arg-type]


def evaluate_programme(
    ds: Dataset, summary: DataSummary, settings: ProgrammeSettings | None = None
) -> ProgrammeResult:
    """Summaries and SPC charts of care plans, MDG meetings and the innovation fund."""
    st = settings or ProgrammeSettings()
    warnings: list[str] = []
    charts: dict[str, SPCResult] = {}
    plans_by_mdg = pd.DataFrame()
    quality = pd.DataFrame()
    if ds.has("care_plans"):
        cp = ds.table("care_plans").to_pandas()
        if len(cp):
            cp["month"] = _month_col(cp.created_date)
            plans_by_mdg = (
                cp.pivot_table(
                    index="month",
                    columns="mdg",
                    values="care_plan_id",
                    aggfunc="count",
                    fill_value=0,
                )
                .astype(int)
                .sort_index()
            )
            full = pd.date_range(plans_by_mdg.index.min(), plans_by_mdg.index.max(), freq="MS")
            plans_by_mdg = plans_by_mdg.reindex(full, fill_value=0)
            plans_by_mdg.index.name = "month"
            total = plans_by_mdg.sum(axis=1)
            c = _chart(total, "increase", warnings, "care plans a month")
            if c is not None:
                charts["care_plans_per_month"] = c
            items = [col for col in cp.columns if col.startswith("q_")]
            quality = pd.DataFrame(
                {
                    "item": [i[2:].replace("_", " ") for i in items],
                    "share_of_plans": [float(cp[i].mean()) for i in items],
                }
            )
            if items:
                cp["quality_score"] = cp[items].mean(axis=1)
                q = cp.groupby("month").quality_score.mean()
                c = _chart(q, "increase", warnings, "care-plan quality")
                if c is not None:
                    charts["care_plan_quality"] = c
            plans_by_mdg = plans_by_mdg.reset_index()
            plans_by_mdg["month"] = plans_by_mdg.month.dt.date.map(dt.date.isoformat)
    meetings = pd.DataFrame()
    share = pd.DataFrame()
    if ds.has("mdg_meetings"):
        m = ds.table("mdg_meetings").to_pandas()
        if len(m):
            m["month"] = _month_col(m.meeting_date)
            meetings = (
                m.groupby("mdg")
                .agg(
                    meetings=("meeting_id", "count"),
                    mean_minutes=("duration_minutes", "mean"),
                    cases_discussed=("cases_discussed", "sum"),
                )
                .reset_index()
            )
            per_month = m.groupby("month").meeting_id.count()
            per_month = per_month.reindex(
                pd.date_range(per_month.index.min(), per_month.index.max(), freq="MS"),
                fill_value=0,
            )
            c = _chart(per_month, "increase", warnings, "MDG meetings a month")
            if c is not None:
                charts["mdg_meetings_per_month"] = c
            if ds.has("mdg_attendance"):
                a = ds.table("mdg_attendance").to_pandas().merge(m[["meeting_id", "mdg"]])
                by_role = a.pivot_table(
                    index="mdg", columns="role", values="attendees", aggfunc="sum", fill_value=0
                )
                meetings = meetings.merge(by_role.reset_index(), on="mdg", how="left")
                tot = a.groupby("role").attendees.sum()
                share = (tot / tot.sum()).rename("share_of_attendees").reset_index()
    fund = pd.DataFrame()
    fund_summary: dict[str, Any] = {}
    if ds.has("innovation_fund"):
        f = ds.table("innovation_fund").to_pandas()
        if len(f):
            fund = (
                f.groupby("mdg")
                .agg(
                    allocations=("allocation_id", "count"),
                    allocated=("amount", "sum"),
                    spent=("spent", "sum"),
                )
                .reset_index()
            )
            fund["spent_share"] = fund.spent / fund.allocated.where(fund.allocated > 0)
            first = pd.to_datetime(f.allocation_date).min()
            year = f[pd.to_datetime(f.allocation_date) < first + pd.DateOffset(years=1)]
            fund_summary = {
                "first_allocation": first.date().isoformat(),
                "allocated_first_year": float(year.amount.sum()),
                "budget_first_year": st.fund_budget_year_one,
                "share_allocated_first_year": float(year.amount.sum() / st.fund_budget_year_one),
                "allocated_total": float(f.amount.sum()),
                "spent_total": float(f.spent.sum()),
            }
    return ProgrammeResult(
        st,
        plans_by_mdg,
        summary.care_plan_coverage,
        quality,
        meetings,
        share,
        fund,
        fund_summary,
        charts,
        warnings,
    )


EMERGENCY_CHART = "emergency_admissions_per_month"


def emergency_admissions_chart(
    ds: Dataset, window: tuple[dt.date, dt.date], areas: AreaSettings
) -> tuple[SPCResult | None, str]:
    """An XmR chart of the monthly emergency admissions of the programme's population.

    The population is Table 2's rolling cohort (:func:`careval.monitoring.areas.monthly_eligible`):
    each month, the people registered, alive and eligible on its first day in the programme's
    areas (``areas.programme_areas``), whether or not they
    have a care plan; a month's value is their emergency admissions that month. Only months
    wholly inside ``window`` are charted. Fewer admissions are better (improvement
    "decrease"). Returns the chart, or None and why not (too few months, no admissions).
    """
    first = window[0].year * 12 + window[0].month - 1 + (window[0].day > 1)
    end = window[1] + dt.timedelta(days=1)  # a month counts when its last day is covered
    last = end.year * 12 + end.month - 2
    months = list(range(first, last + 1))
    if len(months) < MIN_POINTS:
        return None, (
            f"emergency admissions a month: {len(months)} whole months; an SPC chart needs at "
            f"least {MIN_POINTS}"
        )
    pm = monthly_eligible(ds, months, areas.eligibility)
    pm = pm[pm.area.isin(areas.programme_areas)]
    per_month = pm.groupby("month").admissions.sum().reindex(months, fill_value=0)
    if per_month.sum() == 0:
        return None, "emergency admissions a month: no emergency admissions to chart"
    dates = [dt.date(m // 12, m % 12 + 1, 1) for m in months]
    return xmr(per_month.to_numpy(dtype=float), dates, improvement="decrease"), ""
