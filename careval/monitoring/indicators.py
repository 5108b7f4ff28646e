"""Clinical indicators of the seed evaluation: diabetes control (Figure 3) and dementia (Figure 4).

Three analyses, one entry point (:func:`evaluate_indicators`):

Diabetes control by month and area (Figure 3)
    On the first day of each month, everyone registered, alive and with diabetes coded on or
    before that day. For each indicator (HbA1c <= 59 mmol/mol, total cholesterol <= 5 mmol/l,
    blood pressure <= 140/80 mmHg: systolic <= 140 *and* diastolic <= 80; all settings) the
    person's latest reading in the previous 12 months (``[day - 12 months, day)``) decides
    whether they are in control; people with no reading in those months count as not in control,
    and the share with a reading is reported too. Shares are by area and for the comparison areas
    pooled, with a rolling average over 3 months (the mean of the monthly shares). The series
    starts 12 months into the data window so the look-back lies inside it. Several readings of a
    measure on one day are averaged. Blood pressure takes the latest systolic and the latest
    diastolic value in the look-back (one reading when both are recorded together; the synthetic
    data date them on different days of the review month).

Before and after a care plan
    People with diabetes (coded on or before their first care plan) who were alive at least 3
    months after the plan, which itself falls at least 3 months before the end of the window.
    Each person's latest value in the 12 months before the plan (plan day included) is paired
    with their latest value from 3 to 15 months after it (cut at the end of the window). Means
    are compared with a paired t-test (``scipy.stats.ttest_rel``) and the share in control with
    McNemar's test (``statsmodels``; exact binomial when the discordant pairs are fewer than
    ``mcnemar_exact_below``, else chi-square with continuity correction). The seed evaluation's
    unpaired comparison (everyone with a value before against everyone with a value after:
    two-proportion z-test, Welch t-test for means) is reported alongside, labelled. A before-after
    change also holds any secular trend, so the same change is measured in a comparison group
    (people with diabetes registered in the comparison areas, each given an index date drawn at
    random from the care-planned's plan dates) and the difference in mean change is tested
    (Welch t-test on the person-level changes).

Dementia (Figure 4)
    New dementia diagnoses (first coded in the month, GP or hospital record) among people aged
    75+ registered and alive on the first day of the month, per 1,000 of them, by area; 6CIT tests
    of those people; and care plans for people with dementia. The ``care_plans`` table records no
    content or condition, so "care plans mentioning dementia" is approximated by plans made for
    people with a dementia diagnosis recorded on or before the plan date. An interrupted time
    series on the pilot's monthly rate (and on the pooled comparators' as a control series, and
    on the pilot's minus the comparators' as a controlled ITS) fits
    ``rate = b0 + b1 t + b2 post + b3 (t - t0) post`` by OLS with Newey-West (Bartlett kernel)
    HAC standard errors, the lag a setting (default ``floor(4 (n / 100) ** (2 / 9))``), and the
    same terms in a Poisson GLM of the counts with the registered 75+ as exposure (HAC errors,
    same lag): level change ``b2`` at the programme start ``t0`` and slope change ``b3`` a month.
    The synthetic dementia onsets rise through the window, so the comparators' series matters:
    a single series' level change mixes the programme with any bend in the secular trend.

The tables are read through Ibis (filters and joins, portable across engines); the month-by-month
look-ups run once over all months in numpy on the extracted rows (a few million at 1.1M people)
instead of one query per month.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest

from careval.cohort.eligibility import first_diagnosis
from careval.data.access import Dataset
from careval.data.schema import AREAS, MEASURE_RANGES
from careval.errors import ConfigError
from careval.report.publish.rules import protect_count

COMPARATORS = "comparators"  # the comparison areas pooled
INDICATORS = ("hba1c", "total_cholesterol", "bp")
MEASURES = ("hba1c", "total_cholesterol", "sbp", "dbp")
VALUE_MEASURES: dict[str, tuple[str, ...]] = {
    "hba1c": ("hba1c",),
    "total_cholesterol": ("total_cholesterol",),
    "bp": ("sbp", "dbp"),
}
UNITS = {"hba1c": "mmol/mol", "total_cholesterol": "mmol/l", "sbp": "mmHg", "dbp": "mmHg"}
DIABETES_COLUMNS = [
    "month",
    "area",
    "indicator",
    "people",
    "with_reading",
    "in_control",
    "share_with_reading",
    "share_in_control",
    "share_in_control_rolling",
    "share_with_reading_rolling",
]
CARE_PLANS_DEMENTIA_DEFINITION = (
    "care_plans records no content or condition, so care plans mentioning dementia are "
    "approximated by plans made for people with a dementia diagnosis (GP or hospital record) "
    "recorded on or before the plan date"
)
_SHIFT = np.int64(1 << 22)  # person index * _SHIFT + day key for sorted look-ups
_OFFSET = np.int64(1 << 20)  # days since 1970 shifted to be positive (any date after 1840)
_NAT_HIGH = np.int64(10**7)  # "never" as a day number (after any real date)


@dataclass(frozen=True)
class IndicatorSettings:
    """Thresholds, windows and model choices of the clinical indicators.

    Parameters
    ----------
    hba1c_max
        In control when the latest HbA1c is at most this (mmol/mol).
    cholesterol_max
        In control when the latest total cholesterol is at most this (mmol/l).
    sbp_max, dbp_max
        Blood pressure in control when systolic <= ``sbp_max`` and diastolic <= ``dbp_max``.
    lookback_months
        The latest reading counts when taken in this many months before the month start; also
        the length of the before window and of the after window of the before/after analysis.
    rolling_months
        Months in the rolling average of the monthly shares.
    comparison_areas
        Areas compared with the pilot (pooled as ``"comparators"``); also where the before/after
        comparison group is drawn.
    min_months_on_plan
        People enter the before/after analysis after this many months on a care plan; the after
        window runs from this many months to this plus ``lookback_months``.
    programme_start
        First day of the month the programme started (the first care plans): the interruption of
        the dementia time series.
    dementia_min_age
        Age from which people count in the dementia denominator.
    hac_lags
        Newey-West lag of the ITS standard errors; ``None``: ``floor(4 (n / 100) ** (2 / 9))``
        for ``n`` months.
    mcnemar_exact_below
        McNemar's test is exact (binomial) when the discordant pairs are fewer than this.
    comparison_seed
        Seed of the random index dates of the before/after comparison group.
    min_its_months
        Fewest months needed on each side of ``programme_start`` to fit the ITS.
    """

    hba1c_max: float = 59.0
    cholesterol_max: float = 5.0
    sbp_max: float = 140.0
    dbp_max: float = 80.0
    lookback_months: int = 12
    rolling_months: int = 3
    comparison_areas: tuple[str, ...] = AREAS[1:]
    min_months_on_plan: int = 3
    programme_start: dt.date = dt.date(2011, 9, 1)
    dementia_min_age: int = 75
    hac_lags: int | None = None
    mcnemar_exact_below: int = 25
    comparison_seed: int = 2011
    min_its_months: int = 6

    def __post_init__(self) -> None:
        problems = []
        for name, measure in (
            ("hba1c_max", "hba1c"),
            ("cholesterol_max", "total_cholesterol"),
            ("sbp_max", "sbp"),
            ("dbp_max", "dbp"),
        ):
            value = getattr(self, name)
            lo, hi = MEASURE_RANGES[measure]
            if not _is_number(value) or not lo <= value <= hi:
                problems.append(f"{name} must be a number from {lo:g} to {hi:g}; got {value!r}")
        for name, lo, hi in (
            ("lookback_months", 1, 60),
            ("rolling_months", 1, 12),
            ("min_months_on_plan", 0, 24),
            ("dementia_min_age", 0, 120),
            ("mcnemar_exact_below", 0, 10_000),
            ("min_its_months", 3, 120),
        ):
            value = getattr(self, name)
            if not _is_int(value) or not lo <= value <= hi:
                problems.append(f"{name} must be a whole number from {lo} to {hi}; got {value!r}")
        if self.hac_lags is not None and (
            not _is_int(self.hac_lags) or not 0 <= self.hac_lags <= 24
        ):
            problems.append(
                f"hac_lags must be None or a whole number from 0 to 24; got {self.hac_lags!r}"
            )
        if not _is_int(self.comparison_seed) or self.comparison_seed < 0:
            problems.append(
                f"comparison_seed must be a whole number >= 0; got {self.comparison_seed!r}"
            )
        areas = self.comparison_areas
        if isinstance(areas, str) or not isinstance(areas, tuple | list) or not areas:
            problems.append(
                "comparison_areas must be a non-empty tuple of areas from "
                + ", ".join(AREAS[1:])
                + f"; got {areas!r}"
            )
        else:
            bad = [a for a in areas if a not in AREAS[1:]]
            if bad or len(set(areas)) != len(areas):
                problems.append(
                    "comparison_areas must name distinct areas from "
                    + ", ".join(AREAS[1:])
                    + f" (not the pilot); got {list(areas)!r}"
                )
        start = self.programme_start
        if not isinstance(start, dt.date) or isinstance(start, dt.datetime) or start.day != 1:
            problems.append(f"programme_start must be the first day of a month; got {start!r}")
        if problems:
            raise ConfigError("indicator settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {
            "hba1c_max_mmol_mol": self.hba1c_max,
            "total_cholesterol_max_mmol_l": self.cholesterol_max,
            "sbp_max_mmhg": self.sbp_max,
            "dbp_max_mmhg": self.dbp_max,
            "lookback_months": self.lookback_months,
            "rolling_months": self.rolling_months,
            "comparison_areas": list(self.comparison_areas),
            "min_months_on_plan": self.min_months_on_plan,
            "after_window_months": [
                self.min_months_on_plan,
                self.min_months_on_plan + self.lookback_months,
            ],
            "programme_start": self.programme_start.isoformat(),
            "dementia_min_age": self.dementia_min_age,
            "hac_lags": self.hac_lags,
            "mcnemar_exact_below": self.mcnemar_exact_below,
            "comparison_seed": self.comparison_seed,
            "min_its_months": self.min_its_months,
        }

    def definitions(self) -> dict[str, str]:
        """What "in control" means for each indicator."""
        return {
            "hba1c": f"latest HbA1c <= {self.hba1c_max:g} mmol/mol",
            "total_cholesterol": f"latest total cholesterol <= {self.cholesterol_max:g} mmol/l",
            "bp": f"latest blood pressure <= {self.sbp_max:g}/{self.dbp_max:g} mmHg (systolic "
            f"<= {self.sbp_max:g} and diastolic <= {self.dbp_max:g})",
        }


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class IndicatorsResult:
    """Everything :func:`evaluate_indicators` found.

    Attributes
    ----------
    diabetes_monthly
        One row per month, area (the five areas and ``"comparators"``) and indicator: people
        with diabetes, with a reading, in control, the shares and their rolling averages.
    before_after
        One row per quantity (mean of a measure, share in control) and analysis (paired,
        unpaired as the seed, difference in change against the comparison group), naming the
        test used.
    pairs
        Person-level before and after readings per indicator (``care_planned`` and
        ``comparison`` rows); not exported.
    dementia_monthly
        One row per month and area: ``registered`` (aged ``dementia_min_age``+, registered and
        alive on the first day), ``new_diagnoses``, ``rate_per_1000`` of them and their 6CIT
        tests (``six_cit_tests``).
    dementia_care_plans
        One row per month: care plans, and care plans for people with dementia by the plan date.
    its
        Interrupted time series of the monthly rate: model description and, per series
        (``"pilot"``, ``"comparators"``, ``"pilot_minus_comparators"``), the OLS coefficients
        (baseline level, pre slope, level change, slope change) with HAC errors and, for the
        first two, the Poisson rate ratios.
    its_fitted
        Month, series, observed rate, fitted and counterfactual (pre-trend carried on) lines.
    """

    settings: IndicatorSettings
    window: tuple[dt.date, dt.date]
    diabetes_monthly: pd.DataFrame
    before_after: pd.DataFrame
    pairs: dict[str, pd.DataFrame]
    cohort: dict[str, int]
    dementia_monthly: pd.DataFrame
    dementia_care_plans: pd.DataFrame
    its: dict[str, Any]
    its_fitted: pd.DataFrame
    truth: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self, protect: bool = False) -> dict[str, Any]:
        """The ``indicators`` block of ``results.json`` (JSON-ready: NaN is ``null``).

        With ``protect`` (real data), counts of 1-7 are suppressed and others rounded to 5
        (``careval.report.publish.rules``), and a share or rate resting on a count of 1-7 is
        withheld.
        """
        diabetes, before_after, dementia, plans = (
            self.diabetes_monthly,
            self.before_after,
            self.dementia_monthly,
            self.dementia_care_plans,
        )
        cohort: dict[str, Any] = dict(self.cohort)
        if protect:
            diabetes, before_after, dementia, plans = protected_tables(self)
            cohort = {k: protect_count(int(v)) for k, v in cohort.items()}
        return _clean(
            {
                "settings": self.settings.to_dict(),
                "window": [self.window[0].isoformat(), self.window[1].isoformat()],
                "diabetes": {
                    "definitions": self.settings.definitions(),
                    "population": "people with diabetes coded on or before the first day of "
                    "the month, registered and alive that day; no reading in the look-back "
                    "counts as not in control",
                    "rolling": f"mean of the monthly shares over {self.settings.rolling_months}"
                    " months ending in the month",
                    "monthly": _records(diabetes),
                },
                "before_after": {
                    "definition": f"care-planned people with diabetes coded by their first "
                    f"plan and {self.settings.min_months_on_plan} months on it inside the window"
                    f": latest value in the {self.settings.lookback_months} months before the "
                    f"plan (plan day included) against the latest from "
                    f"{self.settings.min_months_on_plan} to "
                    f"{self.settings.min_months_on_plan + self.settings.lookback_months} months "
                    "after; comparison group: people with diabetes in the comparison areas with "
                    "index dates drawn at random from the plan dates; estimate: change after "
                    "minus before (paired, unpaired) or the care-planned's mean change minus the "
                    "comparison group's (change vs comparison)",
                    "cohort": cohort,
                    "table": _records(before_after),
                },
                "dementia": {
                    "population": f"people aged {self.settings.dementia_min_age}+ registered "
                    "and alive on the first day of the month; a new diagnosis is a first "
                    "dementia code (GP or hospital) dated in the month",
                    "monthly": _records(dementia),
                    "care_plans": _records(plans),
                    "care_plans_definition": CARE_PLANS_DEMENTIA_DEFINITION,
                    "its": self.its,
                },
                "truth": self.truth,
                "warnings": self.warnings,
            }
        )


def protected_tables(
    r: IndicatorsResult,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The published tables under small-number disclosure control."""

    def small(v: pd.Series) -> pd.Series:
        return v.between(1, 7)

    def counts(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        out = df.copy()
        for col in cols:
            if col in out:
                out[col] = pd.Series(
                    [None if pd.isna(v) else protect_count(int(v)) for v in df[col]],
                    index=df.index,
                    dtype=object,
                )
        return out

    d = r.diabetes_monthly
    hidden = small(d.people) | small(d.in_control) | small(d.with_reading)
    dm = counts(d, ["people", "with_reading", "in_control"]).astype(object)
    k = r.settings.rolling_months
    rolled = (
        hidden.groupby([d.area, d.indicator], sort=False)
        .transform(lambda s: s.rolling(k, min_periods=1).max())
        .astype(bool)
    )
    for col in ("share_with_reading", "share_in_control"):
        dm[col] = dm[col].where(~hidden, None)
        dm[f"{col}_rolling"] = dm[f"{col}_rolling"].where(~rolled, None)
    e = r.dementia_monthly
    reg = "registered"
    de = counts(e, [reg, "new_diagnoses", "six_cit_tests"]).astype(object)
    de["rate_per_1000"] = de.rate_per_1000.where(~(small(e.new_diagnoses) | small(e[reg])), None)
    b = r.before_after
    ba = counts(b, ["n_before", "n_after", "comparison_n", *MCNEMAR_COUNTS])
    plans = counts(r.dementia_care_plans, ["care_plans", "care_plans_dementia"])
    return dm, ba, de, plans


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({str(k): _scalar(v) for k, v in rec.items()})
    return out


def _scalar(v: Any) -> Any:
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.7g}") if math.isfinite(v) else None
    return v


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return _scalar(obj)


# ---------------------------------------------------------------------------------------------
# Dates as numpy day numbers


def _days(values: pd.Series) -> np.ndarray:
    """Dates (any pandas date dtype, nulls allowed) as int64 days since 1970 (null: never)."""
    d = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
    out = d.astype(np.int64)
    return np.where(np.isnat(d), _NAT_HIGH, out)


def _month_of(days: np.ndarray) -> np.ndarray:
    """Month number (``year*12 + month - 1``) of day numbers."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12


def _month_start(months: np.ndarray | int) -> np.ndarray:
    """Day number of the first day of month numbers."""
    m = np.asarray(months, dtype=np.int64) - 1970 * 12
    return m.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _first_month_on_or_after(days: np.ndarray) -> np.ndarray:
    """The first month whose first day is on or after each day."""
    m = _month_of(days)
    return m + (_month_start(m) != days)


def _add_months(days: np.ndarray, k: int) -> np.ndarray:
    """Add ``k`` calendar months to day numbers (day of month clamped, as ``DateOffset``)."""
    m = _month_of(days)
    dom = days - _month_start(m)
    length = _month_start(m + k + 1) - _month_start(m + k)
    return _month_start(m + k) + np.minimum(dom, length - 1)


def _month_number(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _month_date(m: int) -> dt.date:
    return dt.date(m // 12, m % 12 + 1, 1)


# ---------------------------------------------------------------------------------------------
# Extraction


def _person_months(
    reg: pd.DataFrame, person_index: pd.Index, from_month: np.ndarray, first_m: int, last_m: int
) -> pd.DataFrame:
    """Every (person, month) with the person registered and alive on the month's first day.

    ``reg`` has person_id, area, start_date, end_date, death_date; ``from_month`` is, per row,
    the first month the person qualifies otherwise (diagnosis, age). With overlapping
    registrations the one starting last counts, as in ``population_at``.
    """
    start = _days(reg.start_date)
    end = _days(reg.end_date)
    death = _days(reg.death_date)
    lo = np.maximum(np.maximum(_first_month_on_or_after(start), from_month), first_m)
    end_m = np.where(end >= _NAT_HIGH, last_m, _month_of(np.minimum(end, _NAT_HIGH - 1)))
    # alive on the first day: death strictly after it
    dm = _month_of(np.minimum(death, _NAT_HIGH - 1))
    death_m = np.where(death >= _NAT_HIGH, last_m, dm - (_month_start(dm) == death))
    hi = np.minimum(np.minimum(end_m, death_m), last_m)
    n = np.maximum(hi - lo + 1, 0)
    rows = np.repeat(np.arange(len(reg)), n)
    within = np.arange(rows.size) - np.repeat(np.cumsum(n) - n, n)
    month = lo[rows] + within
    pidx = person_index.get_indexer(reg.person_id.to_numpy())[rows]
    area = pd.Categorical(reg.area.to_numpy(), categories=AREAS).codes[rows]
    out = pd.DataFrame({"pidx": pidx, "month": month, "area": area.astype(np.int8)})
    if reg.person_id.duplicated().any():
        out["_start"] = start[rows]
        out = out.sort_values(["pidx", "month", "_start"], ascending=[True, True, False])
        out = out.drop_duplicates(["pidx", "month"]).drop(columns="_start")
    return out.reset_index(drop=True)


@dataclass
class _Readings:
    """One measure's readings (one a person-day, values averaged), sorted by person and day."""

    pidx: np.ndarray
    day: np.ndarray
    value: np.ndarray

    def latest(self, q_pidx: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Row of each query's latest reading with ``lo <= day <= hi`` (-1: none)."""
        if self.pidx.size == 0 or q_pidx.size == 0:
            return np.full(q_pidx.size, -1, dtype=np.int64)
        keys = self.pidx * _SHIFT + (self.day + _OFFSET)
        q = q_pidx.astype(np.int64) * _SHIFT + (hi + _OFFSET)
        pos = np.searchsorted(keys, q, side="right") - 1
        ok = pos >= 0
        safe = np.where(ok, pos, 0)
        ok &= (self.pidx[safe] == q_pidx) & (self.day[safe] >= lo) & (self.day[safe] <= hi)
        return np.where(ok, pos, -1)


def _readings(meas: pd.DataFrame, person_index: pd.Index) -> dict[str, _Readings]:
    """Per measure: readings averaged per person and day, sorted by person and day."""
    m = meas.assign(pidx=person_index.get_indexer(meas.person_id.to_numpy()), day=_days(meas.date))
    m = m[m.pidx >= 0]
    out: dict[str, _Readings] = {}
    for name in MEASURES:
        daily = m[m.measure == name].groupby(["pidx", "day"], sort=True).value.mean()
        out[name] = _Readings(
            daily.index.get_level_values(0).to_numpy(np.int64),
            daily.index.get_level_values(1).to_numpy(np.int64),
            daily.to_numpy(np.float64),
        )
    return out


@dataclass
class _Latest:
    """Each query's latest value of every measure of one indicator, and its control status."""

    day: dict[str, np.ndarray]  # -1: no reading
    value: dict[str, np.ndarray]  # NaN: no reading
    has: np.ndarray  # a reading of every measure of the indicator
    control: np.ndarray  # has and every measure within its threshold


def _latest(
    readings: dict[str, _Readings],
    indicator: str,
    q_pidx: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    st: IndicatorSettings,
) -> _Latest:
    """The latest reading of each measure of ``indicator`` with ``lo <= day <= hi``.

    Blood pressure takes the latest systolic and the latest diastolic value (one reading when
    both are recorded together).
    """
    limits = {
        "hba1c": st.hba1c_max,
        "total_cholesterol": st.cholesterol_max,
        "sbp": st.sbp_max,
        "dbp": st.dbp_max,
    }
    day, value = {}, {}
    has = np.ones(q_pidx.size, dtype=bool)
    control = np.ones(q_pidx.size, dtype=bool)
    for name in VALUE_MEASURES[indicator]:
        r = readings[name]
        pos = r.latest(q_pidx, lo, hi)
        found = pos >= 0
        safe = np.where(found, pos, 0)
        day[name] = np.where(found, r.day[safe] if r.day.size else 0, -1)
        value[name] = np.where(found, r.value[safe] if r.value.size else 0.0, np.nan)
        has &= found
        control &= found & (value[name] <= limits[name])
    return _Latest(day, value, has, control)


# ---------------------------------------------------------------------------------------------
# Diabetes by month and area


def _diabetes_monthly(
    pm: pd.DataFrame, readings: dict[str, _Readings], st: IndicatorSettings, months: np.ndarray
) -> pd.DataFrame:
    """Counts and shares by month, area and indicator (plus pooled comparators)."""
    if months.size == 0:
        return pd.DataFrame(columns=DIABETES_COLUMNS)
    n_areas = len(AREAS)
    mstart = _month_start(pm.month.to_numpy())
    lo = _month_start(pm.month.to_numpy() - st.lookback_months)
    cell = (pm.month.to_numpy() - months[0]) * n_areas + pm.area.to_numpy()
    size = months.size * n_areas
    people = np.bincount(cell, minlength=size)
    q = pm.pidx.to_numpy(np.int64)
    frames = []
    comp_codes = [AREAS.index(a) for a in st.comparison_areas]
    for ind in INDICATORS:
        latest = _latest(readings, ind, q, lo, mstart - 1, st)
        with_reading = np.bincount(cell, weights=latest.has, minlength=size)
        in_control = np.bincount(cell, weights=latest.control, minlength=size)
        grid = {
            "people": people.reshape(months.size, n_areas),
            "with_reading": with_reading.reshape(months.size, n_areas),
            "in_control": in_control.reshape(months.size, n_areas),
        }
        for k, area in enumerate((*AREAS, COMPARATORS)):
            cols = [k] if area != COMPARATORS else comp_codes
            part = {name: g[:, cols].sum(axis=1).astype(np.int64) for name, g in grid.items()}
            frames.append(
                pd.DataFrame(
                    {
                        "month": [_month_date(int(m)) for m in months],
                        "area": area,
                        "indicator": ind,
                        **part,
                    }
                )
            )
    df = pd.concat(frames, ignore_index=True)
    denom = df.people.where(df.people > 0)
    df["share_with_reading"] = df.with_reading / denom
    df["share_in_control"] = df.in_control / denom
    k = st.rolling_months
    grouped = df.groupby(["area", "indicator"], sort=False)
    for col in ("share_in_control", "share_with_reading"):
        df[f"{col}_rolling"] = grouped[col].transform(lambda s: s.rolling(k, min_periods=k).mean())
    return df


# ---------------------------------------------------------------------------------------------
# Before and after a care plan


def _pairs(
    readings: dict[str, _Readings],
    pidx: np.ndarray,
    index_day: np.ndarray,
    end_day: int,
    st: IndicatorSettings,
) -> dict[str, pd.DataFrame]:
    """Per indicator: each person's latest reading before the index and after it."""
    b_lo = _add_months(index_day, -st.lookback_months)
    a_lo = _add_months(index_day, st.min_months_on_plan)
    a_hi = np.minimum(_add_months(index_day, st.min_months_on_plan + st.lookback_months), end_day)
    out = {}
    for ind in INDICATORS:
        cols: dict[str, Any] = {"pidx": pidx, "index_day": index_day}
        for when, lo, hi in (("before", b_lo, index_day), ("after", a_lo, a_hi)):
            latest = _latest(readings, ind, pidx, lo, hi, st)
            for name in VALUE_MEASURES[ind]:
                cols[f"{when}_day_{name}"] = latest.day[name]
                cols[f"{when}_{name}"] = latest.value[name]
            cols[f"{when}_control"] = np.where(latest.has, latest.control.astype(float), np.nan)
        out[ind] = pd.DataFrame(cols)
    return out


def _nan_stats() -> dict[str, Any]:
    return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan}


def _paired_means(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """Paired t-test of after - before (``scipy.stats.ttest_rel``)."""
    n = before.size
    row: dict[str, Any] = {"n_before": n, "n_after": n, **_nan_stats()}
    if n:
        row.update(before=float(before.mean()), after=float(after.mean()))
        row["change"] = row["estimate"] = row["after"] - row["before"]
    d = after - before
    if n >= 2 and np.ptp(d) > 0:
        res = stats.ttest_rel(after, before)
        ci = res.confidence_interval(0.95)
        row.update(
            ci_low=float(ci.low),
            ci_high=float(ci.high),
            statistic=float(res.statistic),
            p_value=float(res.pvalue),
        )
    return row


def _welch(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Welch t-test of mean(a) - mean(b) (``scipy.stats.ttest_ind``, unequal variances)."""
    row: dict[str, Any] = _nan_stats()
    if a.size and b.size:
        row["estimate"] = float(a.mean() - b.mean())
    if a.size >= 2 and b.size >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(0.95)
        row.update(
            ci_low=float(ci.low),
            ci_high=float(ci.high),
            statistic=float(res.statistic),
            p_value=float(res.pvalue),
        )
    return row


def mcnemar_test(before: np.ndarray, after: np.ndarray, exact_below: int) -> dict[str, Any]:
    """McNemar's test of paired in-control flags (exact when discordant pairs < exact_below).

    Returns the 2x2 counts (``both``, ``before_only``, ``after_only``, ``neither``), the test's
    name, statistic (the smaller discordant count when exact, else chi-square) and p-value.
    """
    b = before.astype(bool)
    a = after.astype(bool)
    table = np.array([[np.sum(b & a), np.sum(b & ~a)], [np.sum(~b & a), np.sum(~b & ~a)]])
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < exact_below
    out: dict[str, Any] = {
        "both": int(table[0, 0]),
        "before_only": int(table[0, 1]),
        "after_only": int(table[1, 0]),
        "neither": int(table[1, 1]),
        "test": (
            "McNemar exact (binomial), statsmodels"
            if exact
            else "McNemar chi-square with continuity correction, statsmodels"
        ),
    }
    if discordant == 0:
        out.update(statistic=math.nan, p_value=1.0)
        return out
    res = mcnemar(table, exact=exact, correction=True)
    out.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return out


def _two_proportions(after: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """Unpaired two-proportion z-test (``proportions_ztest``) and a Wald CI of the change."""
    row: dict[str, Any] = {"n_before": before.size, "n_after": after.size, **_nan_stats()}
    if not (before.size and after.size):
        return row
    p1, p0 = float(after.mean()), float(before.mean())
    row.update(before=p0, after=p1, change=p1 - p0, estimate=p1 - p0)
    pooled = (after.sum() + before.sum()) / (after.size + before.size)
    if 0 < pooled < 1:
        z, p = proportions_ztest(
            np.array([after.sum(), before.sum()]), np.array([after.size, before.size])
        )
        se = math.sqrt(p1 * (1 - p1) / after.size + p0 * (1 - p0) / before.size)
        q = float(stats.norm.ppf(0.975))
        row.update(
            statistic=float(z),
            p_value=float(p),
            ci_low=row["estimate"] - q * se,
            ci_high=row["estimate"] + q * se,
        )
    return row


MCNEMAR_COUNTS = ["both", "before_only", "after_only", "neither"]
BEFORE_AFTER_COLUMNS = [
    "indicator",
    "quantity",
    "analysis",
    "test",
    "n_before",
    "n_after",
    "before",
    "after",
    "change",
    "comparison_n",
    "comparison_change",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "p_value",
    "both",
    "before_only",
    "after_only",
    "neither",
]


def _before_after_table(pairs: dict[str, pd.DataFrame], st: IndicatorSettings) -> pd.DataFrame:
    """Paired, unpaired and comparison-adjusted contrasts for each measure and indicator.

    ``estimate`` (with ``ci_low``, ``ci_high``, ``statistic``, ``p_value``) is the change after
    minus before in the paired and unpaired rows, and the care-planned's mean change minus the
    comparison group's in the ``change vs comparison`` rows.
    """
    rows: list[dict[str, Any]] = []
    labels = st.definitions()
    for ind, df in pairs.items():
        cp = df[df.group == "care_planned"]
        comp = df[df.group == "comparison"]
        quantities = [(f"mean {n} ({UNITS[n]})", n) for n in VALUE_MEASURES[ind]]
        quantities.append((f"share in control ({labels[ind]})", "control"))
        for quantity, col in quantities:
            base = {"indicator": ind, "quantity": quantity}
            both = cp[f"before_{col}"].notna() & cp[f"after_{col}"].notna()
            cboth = comp[f"before_{col}"].notna() & comp[f"after_{col}"].notna()
            x0 = cp.loc[both, f"before_{col}"].to_numpy(float)
            x1 = cp.loc[both, f"after_{col}"].to_numpy(float)
            b_all = cp[f"before_{col}"].dropna().to_numpy(float)
            a_all = cp[f"after_{col}"].dropna().to_numpy(float)
            if col == "control":
                paired = _paired_means(x0, x1)
                paired.update(ci_low=math.nan, ci_high=math.nan)
                paired.update(mcnemar_test(x0, x1, st.mcnemar_exact_below))
                unpaired = {
                    "test": "two-proportion z-test, statsmodels proportions_ztest "
                    "(unpaired, as the seed)",
                    **_two_proportions(a_all, b_all),
                }
            else:
                paired = {"test": "paired t-test, scipy.stats.ttest_rel", **_paired_means(x0, x1)}
                unpaired = {
                    "test": "Welch t-test, scipy.stats.ttest_ind (unpaired, as the seed)",
                    "n_before": b_all.size,
                    "n_after": a_all.size,
                    "before": float(b_all.mean()) if b_all.size else math.nan,
                    "after": float(a_all.mean()) if a_all.size else math.nan,
                    **_welch(a_all, b_all),
                }
                unpaired["change"] = unpaired["after"] - unpaired["before"]
            rows.append({**base, "analysis": "paired", **paired})
            rows.append({**base, "analysis": "unpaired (as the seed)", **unpaired})
            d_comp = (comp.loc[cboth, f"after_{col}"] - comp.loc[cboth, f"before_{col}"]).to_numpy(
                float
            )
            vs = {k: paired[k] for k in ("n_before", "n_after", "before", "after", "change")}
            rows.append(
                {
                    **base,
                    "analysis": "change vs comparison",
                    "test": "Welch t-test of person-level changes, care-planned minus comparison"
                    ", scipy.stats.ttest_ind",
                    **vs,
                    "comparison_n": d_comp.size,
                    "comparison_change": float(d_comp.mean()) if d_comp.size else math.nan,
                    **_welch(x1 - x0, d_comp),
                }
            )
    out = pd.DataFrame(rows).reindex(columns=BEFORE_AFTER_COLUMNS)
    return out.astype(
        {c: "Int64" for c in ["n_before", "n_after", "comparison_n", *MCNEMAR_COUNTS]}
    )


# ---------------------------------------------------------------------------------------------
# Dementia interrupted time series


def newey_west_lags(n: int) -> int:
    """The Newey-West rule of thumb ``floor(4 (n / 100) ** (2 / 9))``."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def its_design(months: np.ndarray, start_month: int) -> pd.DataFrame:
    """Segmented-regression terms: const, time, post (level) and time since the start (slope)."""
    t = (months - months[0]).astype(float)
    post = (months >= start_month).astype(float)
    since = np.where(post > 0, months - start_month, 0).astype(float)
    return pd.DataFrame({"const": 1.0, "time": t, "level_change": post, "slope_change": since})


def _coefs(res: Any, exp: bool) -> dict[str, dict[str, float]]:
    ci = np.asarray(res.conf_int(0.05))
    names = {
        "const": "baseline_level",
        "time": "pre_slope",
        "level_change": "level_change",
        "slope_change": "slope_change",
    }
    out = {}
    for j, col in enumerate(res.model.exog_names):
        est, lo, hi = float(res.params.iloc[j]), float(ci[j, 0]), float(ci[j, 1])
        rec = {
            "estimate": est,
            "se": float(res.bse.iloc[j]),
            "ci_low": lo,
            "ci_high": hi,
            "p_value": float(res.pvalues.iloc[j]),
        }
        if exp:
            rec.update(
                rate_ratio=math.exp(est),
                rate_ratio_ci_low=math.exp(lo),
                rate_ratio_ci_high=math.exp(hi),
            )
        out[names[col]] = rec
    return out


def fit_its(
    series: pd.DataFrame, start_month: int, lags: int, poisson: bool = True
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Segmented regression of one monthly series.

    Parameters
    ----------
    series
        Columns ``month_number``, ``rate`` (per 1,000 a month) and, for the Poisson model,
        ``count`` and ``exposure`` (people registered on the first day).
    start_month
        Month number of the interruption (``year*12 + month - 1``).
    lags
        Newey-West maximum lag of the HAC standard errors.
    poisson
        Also fit the Poisson GLM of the counts with ``log(exposure)`` as offset.

    Returns
    -------
    tuple
        The coefficients (OLS on the rate, and Poisson rate ratios) and a frame of the observed,
        fitted and counterfactual (pre-programme line carried on) rates by month.
    """
    s = series.reset_index(drop=True)
    x = its_design(s.month_number.to_numpy(), start_month)
    y = s.rate.to_numpy(float)
    ols = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    pre = x.assign(level_change=0.0, slope_change=0.0)
    out: dict[str, Any] = {
        "months": int(len(s)),
        "months_before": int((x.level_change == 0).sum()),
        "months_after": int((x.level_change == 1).sum()),
        "ols": {
            "outcome": "new diagnoses per 1,000 registered a month",
            "standard_errors": f"Newey-West HAC (Bartlett kernel), maxlags={lags}",
            "coefficients": _coefs(ols, exp=False),
            "r_squared": float(ols.rsquared),
        },
        "mean_rate_before": float(y[x.level_change.to_numpy() == 0].mean()),
        "mean_rate_after": float(y[x.level_change.to_numpy() == 1].mean()),
    }
    fitted = pd.DataFrame(
        {
            "month_number": s.month_number,
            "observed": y,
            "fitted_ols": ols.predict(x),
            "counterfactual_ols": ols.predict(pre),
        }
    )
    counts = s["count"].to_numpy(float) if poisson else np.zeros(0)
    if counts.sum() > 0:
        try:
            glm = sm.GLM(
                counts,
                x,
                family=sm.families.Poisson(),
                offset=np.log(s.exposure.to_numpy(float)),
            ).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            out["poisson"] = {
                "outcome": "new diagnoses, exposure: registered (log offset)",
                "standard_errors": f"Newey-West HAC (Bartlett kernel), maxlags={lags}",
                "coefficients": _coefs(glm, exp=True),
            }
            per = 1000.0 / s.exposure.to_numpy(float)
            fitted["fitted_poisson"] = glm.predict(x, offset=np.log(s.exposure)) * per
            fitted["counterfactual_poisson"] = glm.predict(pre, offset=np.log(s.exposure)) * per
        except (ValueError, np.linalg.LinAlgError) as exc:  # pragma: no cover - degenerate data
            out["poisson"] = {"skipped": f"Poisson fit failed ({exc})"}
    return out, fitted


# ---------------------------------------------------------------------------------------------
# The entry point


def evaluate_indicators(
    ds: Dataset, window: tuple[dt.date, dt.date], settings: IndicatorSettings | None = None
) -> IndicatorsResult:
    """Diabetes control by month and area, before/after a care plan, and dementia diagnoses.

    Parameters
    ----------
    ds
        The dataset (needs persons, practices, registrations; measurements for the diabetes
        indicators, care_plans for the before/after analysis and the plan counts).
    window
        The data window: first and last admission dates (``careval.cohort.summary.data_window``).
        Months are whole calendar months from the window's first month to its last.
    settings
        Thresholds, windows and model choices; defaults as the seed evaluation.

    Returns
    -------
    IndicatorsResult
    """
    st = settings or IndicatorSettings()
    if not isinstance(st, IndicatorSettings):
        raise ConfigError(f"settings must be IndicatorSettings; got {type(st).__name__}")
    if (
        not isinstance(window, tuple | list)
        or len(window) != 2
        or not all(isinstance(d, dt.date) for d in window)
        or window[0] > window[1]
    ):
        raise ConfigError(f"window must be two dates (first, last) in order; got {window!r}")
    lo, hi = (d.date() if isinstance(d, dt.datetime) else d for d in window)
    window = (lo, hi)
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    warnings: list[str] = []
    first_m, last_m = _month_number(window[0]), _month_number(window[1])
    end_day = (window[1] - dt.date(1970, 1, 1)).days
    p, r, pr = ds.table("persons"), ds.table("registrations"), ds.table("practices")
    rp = r.join(pr, "practice_code").join(p, "person_id")
    cols = ["person_id", "area", "start_date", "end_date", "death_date", "birth_month"]

    # --- diabetes -----------------------------------------------------------------------------
    dx = first_diagnosis(ds, "diabetes")
    dreg = rp.join(dx, "person_id").select(*cols, "first_date").to_pandas()
    person_index = pd.Index(pd.unique(dreg.person_id.to_numpy()))
    has_meas = ds.has("measurements")
    if has_meas:
        m = ds.table("measurements")
        meas = (
            m.filter(m.measure.isin(list(MEASURES)))
            .join(dx, "person_id")
            .select("person_id", "date", "measure", "value")
            .to_pandas()
        )
    else:
        meas = pd.DataFrame({"person_id": [], "date": [], "measure": [], "value": []})
        warnings.append("measurements table absent: no diabetes indicators")
    readings = _readings(meas, person_index)
    lap("diabetes extraction")

    d_first = first_m + st.lookback_months
    months = np.arange(d_first, last_m + 1)
    if months.size == 0:
        warnings.append(
            f"the window {window[0]} to {window[1]} is shorter than the {st.lookback_months}-"
            "month look-back: no monthly diabetes series"
        )
    pm = _person_months(
        dreg, person_index, _first_month_on_or_after(_days(dreg.first_date)), d_first, last_m
    )
    diabetes_monthly = _diabetes_monthly(pm, readings, st, months)
    if not has_meas:
        diabetes_monthly = diabetes_monthly.iloc[0:0]
    lap("diabetes monthly")

    # --- before / after -------------------------------------------------------------------------
    pairs, cohort = _before_after_pairs(ds, dreg, person_index, readings, end_day, st, warnings)
    before_after = _before_after_table(pairs, st)
    lap("before/after")

    # --- dementia -------------------------------------------------------------------------------
    dementia_monthly, dementia_care_plans = _dementia(ds, rp, cols, first_m, last_m, st, warnings)
    lap("dementia monthly")
    its, its_fitted = _its(dementia_monthly, st, warnings)
    lap("dementia ITS")

    return IndicatorsResult(
        settings=st,
        window=(window[0], window[1]),
        diabetes_monthly=diabetes_monthly,
        before_after=before_after,
        pairs=pairs,
        cohort=cohort,
        dementia_monthly=dementia_monthly,
        dementia_care_plans=dementia_care_plans,
        its=its,
        its_fitted=its_fitted,
        truth=_truth(ds),
        warnings=warnings,
        timings=timings,
    )


def _before_after_pairs(
    ds: Dataset,
    dreg: pd.DataFrame,
    person_index: pd.Index,
    readings: dict[str, _Readings],
    end_day: int,
    st: IndicatorSettings,
    warnings: list[str],
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Person-level pairs of the care-planned with diabetes and of the comparison group."""
    none = np.zeros(0, dtype=np.int64)
    empty = _finish(_pairs(readings, none, none, end_day, st), none.astype(str), none, none)
    cohort = {
        "care_planned": 0,
        "care_planned_with_diabetes": 0,
        "eligible": 0,
        "comparison_eligible": 0,
    }
    if not ds.has("care_plans"):
        warnings.append("care_plans table absent: no before/after analysis")
        return empty, cohort
    cp = ds.table("care_plans")
    # Ordered: the random index dates below are drawn by position in this frame.
    plans = (
        cp.group_by("person_id").agg(plan_date=cp.created_date.min()).order_by("person_id")
    ).to_pandas()
    cohort["care_planned"] = len(plans)
    planned = plans.person_id.to_numpy()
    people = dreg.drop_duplicates("person_id").set_index("person_id")
    plans = plans[plans.person_id.isin(people.index)].reset_index(drop=True)
    plan_day = _days(plans.plan_date)
    dx_day = _days(people.first_date.reindex(plans.person_id))
    death_day = _days(people.death_date.reindex(plans.person_id))
    with_dm = dx_day <= plan_day
    cohort["care_planned_with_diabetes"] = int(with_dm.sum())
    on_plan = _add_months(plan_day, st.min_months_on_plan)
    keep = with_dm & (on_plan <= end_day) & (death_day > on_plan)
    plans = plans[keep].reset_index(drop=True)
    plan_day = plan_day[keep]
    cohort["eligible"] = len(plans)
    if not len(plans):
        warnings.append(
            f"no care-planned person with diabetes has {st.min_months_on_plan} months on a plan "
            "in the window: no before/after analysis"
        )
        return empty, cohort

    # Comparison group: people with diabetes registered in the comparison areas on an index date
    # drawn at random from the care-planned's plan dates.
    rng = np.random.default_rng(st.comparison_seed)
    in_comp = dreg.area.isin(st.comparison_areas) & ~dreg.person_id.isin(planned)
    comp_people = pd.Index(pd.unique(dreg.person_id[in_comp].to_numpy())).sort_values()
    c_index = (
        plan_day[rng.integers(0, plan_day.size, comp_people.size)]
        if comp_people.size
        else plan_day[:0]
    )
    c = pd.DataFrame({"person_id": comp_people, "index_day": c_index})
    creg = dreg[in_comp].merge(c, on="person_id")
    start = _days(creg.start_date)
    end = _days(creg.end_date)
    ok = (
        (start <= creg.index_day)
        & (end >= creg.index_day)
        & (_days(creg.first_date) <= creg.index_day)
        & (_days(creg.death_date) > _add_months(creg.index_day.to_numpy(), st.min_months_on_plan))
        & (_add_months(creg.index_day.to_numpy(), st.min_months_on_plan) <= end_day)
    )
    c = creg[ok.to_numpy()].drop_duplicates("person_id")[["person_id", "index_day"]]
    cohort["comparison_eligible"] = len(c)

    ids = np.concatenate([plans.person_id.to_numpy(), c.person_id.to_numpy()])
    index_day = np.concatenate([plan_day, c.index_day.to_numpy(np.int64)])
    group = np.repeat(["care_planned", "comparison"], [len(plans), len(c)])
    pidx = person_index.get_indexer(ids).astype(np.int64)
    raw = _pairs(readings, pidx, index_day, end_day, st)
    return _finish(raw, ids, group, index_day), cohort


def _finish(
    raw: dict[str, pd.DataFrame], ids: np.ndarray, group: np.ndarray, index_day: np.ndarray
) -> dict[str, pd.DataFrame]:
    """Person ids, group and dates (instead of day numbers) on the pairs."""
    out = {}
    for ind, df in raw.items():
        df.insert(0, "group", group)
        df.insert(0, "person_id", ids)
        df.insert(2, "index_date", index_day.astype("datetime64[D]"))
        for col in [c for c in df.columns if "_day_" in c]:
            days = df.pop(col).to_numpy()
            df[col.replace("_day_", "_date_")] = np.where(
                days >= 0, days.astype("datetime64[D]"), np.datetime64("NaT")
            )
        out[ind] = df.drop(columns=["pidx", "index_day"])
    return out


def _dementia(
    ds: Dataset,
    rp: Any,
    cols: list[str],
    first_m: int,
    last_m: int,
    st: IndicatorSettings,
    warnings: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly 75+ denominators, new diagnoses and 6CIT tests by area; care plans per month."""
    age = st.dementia_min_age
    latest_birth = _month_date(last_m - 12 * age)
    old = rp.filter(rp.birth_month <= ibis.date(latest_birth)).select(*cols).to_pandas()
    index = pd.Index(pd.unique(old.person_id.to_numpy()))
    birth_m = _month_of(_days(old.birth_month))
    pm = _person_months(old, index, birth_m + 12 * age, first_m, last_m)
    dem = first_diagnosis(ds, "dementia").to_pandas()
    dem_m = pd.Series(_month_of(_days(dem.first_date)), index=dem.person_id)
    pm_dem = dem_m.reindex(index).to_numpy()
    months = np.arange(first_m, last_m + 1)
    n_areas = len(AREAS)
    size = months.size * n_areas
    cell = (pm.month.to_numpy() - first_m) * n_areas + pm.area.to_numpy()
    registered = np.bincount(cell, minlength=size)
    new = np.bincount(
        cell, weights=pm_dem[pm.pidx.to_numpy()] == pm.month.to_numpy(), minlength=size
    )
    tests = np.zeros(size)
    if ds.has("measurements"):
        m = ds.table("measurements")
        six = m.filter(m.measure == "six_cit").select("person_id", "date").to_pandas()
        six = six.assign(
            pidx=index.get_indexer(six.person_id.to_numpy()), month=_month_of(_days(six.date))
        )
        six = six[six.pidx >= 0]
        if len(six):
            where = pm.set_index(["pidx", "month"]).area
            a = where.reindex(pd.MultiIndex.from_arrays([six.pidx, six.month]))
            a = a[a.notna()]
            mo = a.index.get_level_values(1).to_numpy()
            tests = np.bincount(
                (mo - first_m) * n_areas + a.to_numpy(np.int64), minlength=size
            ).astype(float)
    frames = []
    grid = {
        "registered": registered.reshape(months.size, n_areas),
        "new_diagnoses": new.reshape(months.size, n_areas),
        "six_cit_tests": tests.reshape(months.size, n_areas),
    }
    comp_codes = [AREAS.index(a) for a in st.comparison_areas]
    for k, area in enumerate((*AREAS, COMPARATORS)):
        sel = [k] if area != COMPARATORS else comp_codes
        part = {name: g[:, sel].sum(axis=1).astype(np.int64) for name, g in grid.items()}
        frames.append(
            pd.DataFrame(
                {
                    "month": [_month_date(int(x)) for x in months],
                    "month_number": months,
                    "area": area,
                    **part,
                }
            )
        )
    monthly = pd.concat(frames, ignore_index=True)
    monthly["rate_per_1000"] = (
        1000 * monthly.new_diagnoses / monthly.registered.where(monthly.registered > 0)
    )

    plans = pd.DataFrame(
        {"month": [_month_date(int(x)) for x in months], "care_plans": 0, "care_plans_dementia": 0}
    )
    if ds.has("care_plans"):
        cp = ds.table("care_plans").select("person_id", "created_date").to_pandas()
        day = _days(cp.created_date)
        pm_ = _month_of(day) - first_m
        ddx = _days(dem.set_index("person_id").first_date.reindex(cp.person_id))
        inside = (pm_ >= 0) & (pm_ < months.size)
        plans["care_plans"] = np.bincount(pm_[inside], minlength=months.size)
        plans["care_plans_dementia"] = np.bincount(
            pm_[inside], weights=(ddx <= day)[inside], minlength=months.size
        ).astype(np.int64)
    else:
        warnings.append("care_plans table absent: no care plans for people with dementia")
    return monthly, plans


def _its(
    monthly: pd.DataFrame, st: IndicatorSettings, warnings: list[str]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """ITS of the pilot's and the pooled comparators' rates and of their difference."""
    start = _month_number(st.programme_start)
    age = st.dementia_min_age
    out: dict[str, Any] = {
        "programme_start": st.programme_start.isoformat(),
        "model": "rate = b0 + b1 time + b2 post + b3 months_since_start x post (post: from the "
        "programme start); level change b2, slope change b3 a month; rates per 1,000 "
        f"registered aged {age}+ a month",
        "series": {
            "pilot": "the pilot's rate",
            COMPARATORS: "the comparison areas' pooled rate (a control series)",
            "pilot_minus_comparators": "the pilot's rate minus the comparators' (a controlled "
            "ITS: changes common to both areas cancel); OLS only",
        },
    }
    fitted = []
    series: dict[str, pd.DataFrame] = {}
    for area in ("pilot", COMPARATORS):
        s = monthly[monthly.area == area]
        series[area] = pd.DataFrame(
            {
                "month_number": s.month_number.to_numpy(),
                "rate": s.rate_per_1000.to_numpy(),
                "count": s.new_diagnoses.to_numpy(),
                "exposure": s.registered.to_numpy(),
            }
        )
    both = series["pilot"].merge(series[COMPARATORS], on="month_number", suffixes=("", "_c"))
    both = both[(both.exposure > 0) & (both.exposure_c > 0)]
    series["pilot_minus_comparators"] = pd.DataFrame(
        {"month_number": both.month_number, "rate": both.rate - both.rate_c}
    )
    for name, s in series.items():
        if "exposure" in s:
            s = s[s.exposure > 0]
        before = int((s.month_number < start).sum())
        after = int((s.month_number >= start).sum())
        if min(before, after) < st.min_its_months:
            warnings.append(
                f"dementia ITS for {name} skipped: {before} months before and {after} from "
                f"{st.programme_start} (needs {st.min_its_months} each side)"
            )
            continue
        lags = st.hac_lags if st.hac_lags is not None else newey_west_lags(len(s))
        res, fit = fit_its(s, start, lags, poisson="count" in s)
        res["hac_lags"] = lags
        out[name] = res
        fit.insert(0, "series", name)
        fit.insert(0, "month", [_month_date(int(x)) for x in fit.month_number])
        fitted.append(fit)
    frame = pd.concat(fitted, ignore_index=True) if fitted else pd.DataFrame()
    return out, frame


def _truth(ds: Dataset) -> dict[str, Any] | None:
    """The injected diabetes and dementia effects of a synthetic dataset (``truth.json``)."""
    path = ds.path / "truth.json"
    if not ds.synthetic or not path.exists():
        return None
    try:
        effects = json.loads(path.read_text(encoding="utf-8")).get("effects", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    keep = {k: effects[k] for k in ("diabetes", "dementia_case_finding") if k in effects}
    return keep or None
