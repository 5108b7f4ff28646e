"""Extraction: dates as numpy day numbers, the person-months of a population, latest readings.

Day numbers are days since 1970; month numbers are ``year*12 + month - 1``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from careval.indicators.settings import MEASURES, VALUE_MEASURES, IndicatorSettings

_SHIFT = np.int64(1 << 22)  # person index * _SHIFT + day key for sorted look-ups
_OFFSET = np.int64(1 << 20)  # days since 1970 shifted to be positive (any date after 1840)
_NAT_HIGH = np.int64(10**7)  # "never" as a day number (after any real date)


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
    reg: pd.DataFrame,
    person_index: pd.Index,
    from_month: np.ndarray,
    first_m: int,
    last_m: int,
    areas: Sequence[str],
) -> pd.DataFrame:
    """Every (person, month) with the person registered and alive on the month's first day.

    ``reg`` has person_id, area, start_date, end_date, death_date; ``from_month`` is, per row,
    the first month the person qualifies otherwise (diagnosis, age); ``area`` in the result is
    the position of the person's area in ``areas`` (the data's areas). With overlapping
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
    area = pd.Categorical(reg.area.to_numpy(), categories=list(areas)).codes[rows]
    out = pd.DataFrame({"pidx": pidx, "month": month, "area": area.astype(np.int32)})
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
    limits = st.limits()
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
