"""Input checks of :func:`careval.impact.did.did`: time encoding, cohorts, window, design."""

from __future__ import annotations

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.impact.inputs import check_rule, is_blank, plural, show, to_dates, to_numeric


def check_design(d: np.ndarray, period: np.ndarray, rel: np.ndarray, first_treated: str) -> None:
    if not d.any():
        raise ConfigError(
            f"{first_treated}: no row is treated (time >= {first_treated} in 0 rows); "
            "need at least one unit observed at or after its first treated period"
        )
    by_period = pd.DataFrame({"p": period, "d": d}).groupby("p")["d"].agg(["min", "max"])
    if not ((by_period["min"] == 0) & (by_period["max"] == 1)).any():
        raise ConfigError(
            f"{first_treated}: no comparison units: in no period are some units treated and "
            "others not; need at least one never-treated or not-yet-treated unit"
        )
    if not (rel == -1).any():
        raise ConfigError(
            f"{first_treated}: no treated unit is observed in the period before its first "
            "treated period (k = -1), the event study's reference"
        )


def encode_time(
    time: pd.Series, start: pd.Series, time_name: str, start_name: str, problems: list[str]
) -> tuple[np.ndarray, np.ndarray, str]:
    """Periods and first-treated periods as float arrays (NaN where missing) and a note."""
    n = len(time)
    blank = is_blank(start)
    as_dates = pd.api.types.is_datetime64_any_dtype(time)
    t_num: pd.Series | None = None
    if not as_dates:
        t_num = to_numeric(time)
        if (t_num.isna() & time.notna()).any():  # not numbers: try ISO dates
            t_num, as_dates = None, True
    if as_dates:
        t_val = to_dates(time)
        bad = t_val.isna() & time.notna()
        check_rule(
            bad,
            time,
            time_name,
            "is neither an integer nor an ISO date",
            "integers, or dates such as 2020-01-31 or 2020-01",
            problems,
        )
        s_val = to_dates(start.mask(blank))
        check_rule(
            s_val.isna() & ~blank,
            start,
            start_name,
            "is not an ISO date like time",
            "dates such as 2020-01-31, or empty for never treated",
            problems,
        )
    else:
        assert t_num is not None
        t_val = t_num
        s_val = to_numeric(start.mask(blank))
        check_rule(
            s_val.isna() & ~blank,
            start,
            start_name,
            "is not a number like time",
            "numbers, or empty for never treated",
            problems,
        )
    check_rule(time.isna(), time, time_name, "is missing", "a period in every row", problems)

    t_ok = t_val.notna().to_numpy()
    integer = not as_dates and bool(np.all(np.mod(t_val[t_ok].to_numpy(float), 1) == 0))
    if integer:
        s_float = s_val.to_numpy(float)
        s_ok = ~np.isnan(s_float)
        check_rule(
            pd.Series(s_ok & (np.mod(np.where(s_ok, s_float, 0), 1) != 0), index=start.index),
            start,
            start_name,
            "is not a whole number though time is",
            "integer periods like time",
            problems,
        )
        return t_val.to_numpy(float), s_float, "integer periods as given"
    if not t_ok.any():
        return np.full(n, np.nan), np.full(n, np.nan), "no periods"
    values = t_val.to_numpy()
    levels = np.unique(values[t_ok])
    period = np.full(n, np.nan)
    period[t_ok] = np.searchsorted(levels, values[t_ok])
    s_vals = s_val.to_numpy()
    s_ok = s_val.notna().to_numpy()
    first = np.full(n, np.nan)
    first[s_ok] = np.searchsorted(levels, s_vals[s_ok], side="left")  # first period >= start
    kind = "dates" if as_dates else "values"
    shown = [str(pd.Timestamp(v).date()) if as_dates else str(v) for v in levels[[0, -1]]]
    note = (
        f"{kind} of {time_name} ranked: period 0 = {shown[0]} ... period {levels.size - 1} = "
        f"{shown[1]}; relative time counts observed periods, not calendar intervals"
    )
    return period, first, note


def check_constant_within_unit(
    df: pd.DataFrame,
    unit: str,
    first_treated: str,
    unit_codes: np.ndarray,
    start: np.ndarray,
    problems: list[str],
) -> None:
    key = pd.Series(np.where(np.isnan(start), -np.inf, start))
    n_values = key.groupby(unit_codes).nunique()
    varying = n_values.index[n_values > 1]
    if varying.size:
        rows = np.isin(unit_codes, varying)
        first = int(np.flatnonzero(rows)[0])
        example_unit = df[unit].iloc[first]
        shown = df[first_treated].iloc[np.flatnonzero(unit_codes == unit_codes[first])]
        values = ", ".join(show(v) for v in pd.unique(shown)[:4])
        problems.append(
            f"{first_treated}: varies within a unit ({plural(varying.size, 'unit')}, "
            f"{plural(int(rows.sum()), 'row')}); allowed: one first treated period per unit "
            f"(empty throughout for never treated); e.g. {unit}={show(example_unit)} has {values}"
        )


def check_window(window: tuple[int, int]) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in window)
        valid = lo == window[0] and hi == window[1] and lo <= -2 and hi >= 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"event_window must be (lo, hi) integers with lo <= -2 and hi >= 0; got {window!r}"
        )
    return lo, hi
