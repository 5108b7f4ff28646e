"""Staggered-adoption difference-in-differences and its event study (``careval did``).

``did`` builds the staggered-adoption design on the fixed-effects engine
(:func:`careval.impact.fe.fit_fe`): the ATT as the coefficient of ``D_it = 1[time >=
first_treated]`` with unit and period fixed effects, and an event study on relative time binned
at the window's ends (``k = -1`` is the reference). The conventions of standard errors, p-values
and dropped observations are the engine's (see :mod:`careval.impact.fe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.impact.fe import MODELS, Model, fit_fe
from careval.impact.inputs import (
    as_float,
    check_choice,
    check_rule,
    codes,
    is_blank,
    join_problems,
    jsonable,
    plural,
    require_columns,
    show,
    to_dates,
    to_numeric,
    unique,
)


@dataclass(eq=False)
class DidResult:
    """Staggered-adoption two-way fixed-effects DiD: the ATT and the event study.

    Attributes
    ----------
    att : dict of str to float
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value`` of ``D``; for Poisson also
        ``rate_ratio``, ``rr_ci_low``, ``rr_ci_high``.
    event_study : pandas.DataFrame
        One row per relative period ``k`` present in the data: ``k``, ``label`` (``"<=-6"``
        and ``">=12"`` at the binned ends), the estimate columns of ``att``, ``n_obs`` and
        ``n_units`` (treated unit-periods and units at that ``k``) and ``reference`` (True for
        ``k = -1``, whose estimate is 0 by construction).
    n_units, n_treated_units, n_never_treated_units, n_periods : int
        Units in the data; units observed treated; units without a ``first_treated``; distinct
        periods.
    model : {"ols", "poisson"}
    cluster : str
        The cluster column (the unit column unless another was given).
    vcov : str
    n_obs, n_dropped : int
        Rows in the ATT regression, and rows pyfixest dropped from it (``dropped`` splits them).
    time_encoding : str
        How ``time`` became integer periods.
    """

    att: dict[str, float]
    event_study: pd.DataFrame
    n_units: int
    n_treated_units: int
    n_periods: int
    model: Model
    cluster: str
    n_never_treated_units: int = 0
    vcov: str = "CRV1"
    n_obs: int = 0
    n_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    weights: str | None = None
    event_window: tuple[int, int] = (-6, 12)
    time_encoding: str = "integer periods as given"
    warnings: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """One row per term: ``att`` then the event-study periods (``k=-6``, ...)."""
        att = pd.DataFrame([{"term": "att", **self.att}])
        es = self.event_study.drop(columns=["label", "n_obs", "n_units", "reference"])
        es.insert(0, "term", [f"k={k}" for k in es.pop("k")])
        return pd.concat([att, es], ignore_index=True)

    def summary(self) -> str:
        """The ATT with its interval, the design and what was dropped, in a few lines."""
        a = self.att
        lines = [
            f"ATT {a['estimate']:.4g} (95% CI {a['ci_low']:.4g} to {a['ci_high']:.4g}, "
            f"p = {a['p_value']:.3g}), {self.model}"
        ]
        if self.model == "poisson":
            lines.append(
                f"rate ratio {a['rate_ratio']:.4g} "
                f"(95% CI {a['rr_ci_low']:.4g} to {a['rr_ci_high']:.4g})"
            )
        lines.append(
            f"{self.n_units:,} units ({self.n_treated_units:,} treated, "
            f"{self.n_never_treated_units:,} never treated), {self.n_periods:,} periods, "
            f"{self.n_obs:,} rows; {self.vcov} standard errors clustered on {self.cluster}"
        )
        lines += self.warnings
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (floats rounded to 6 decimals, NaN as None)."""
        records = self.event_study.to_dict(orient="records")
        return jsonable(
            {
                "estimand": "ATT: coefficient of D = 1[time >= first_treated], unit and time FE",
                "model": self.model,
                "att": self.att,
                "event_study": records,
                "n_obs": self.n_obs,
                "n_units": self.n_units,
                "n_treated_units": self.n_treated_units,
                "n_never_treated_units": self.n_never_treated_units,
                "n_periods": self.n_periods,
                "n_dropped": self.n_dropped,
                "dropped": self.dropped,
                "cluster": self.cluster,
                "vcov": self.vcov,
                "weights": self.weights,
                "event_window": list(self.event_window),
                "time_encoding": self.time_encoding,
                "warnings": self.warnings,
            }
        )


def did(
    df: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    model: Model = "ols",
    cluster: str | None = None,
    weights: str | None = None,
    event_window: tuple[int, int] = (-6, 12),
) -> DidResult:
    """Estimate a staggered-adoption difference-in-differences by two-way fixed effects.

    The ATT is the coefficient of ``D_it = 1[time_it >= first_treated_i]`` in
    ``outcome ~ D | unit + time``. The event study replaces ``D`` by indicators of relative time
    ``k = time - first_treated``, with ``k <= lo`` binned into ``lo`` and ``k >= hi`` into
    ``hi``, ``k = -1`` the omitted reference and never-treated units zero throughout. With
    effects that differ by cohort or over time these TWFE coefficients are weighted averages
    that can mislead (Goodman-Bacon 2021; Sun and Abraham 2021); the event study's
    pre-periods are the check on parallel trends.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit and period (not modified).
    unit : str
        Unit identifier column (no missing values).
    time : str
        Period column: integers, used as they are, or anything else ordered (dates, ISO date
        strings such as ``2020-01``, non-integer numbers), converted to integers by ranking the
        sorted distinct values, so that relative time counts observed periods.
    outcome : str
        Numeric, finite outcome; for Poisson non-negative.
    first_treated : str
        First treated period, in the same units as ``time``; missing (NaN, None or empty) for
        never-treated units; constant within a unit.
    model : {"ols", "poisson"}
        Poisson gives rate ratios too.
    cluster : str, optional
        Cluster column for CRV1 standard errors; the unit column when not given (a DiD without
        clustering on the unit understates its uncertainty).
    weights : str, optional
        Column of positive analytic weights.
    event_window : tuple of int
        ``(lo, hi)`` with ``lo <= -2`` and ``hi >= 0``.

    Returns
    -------
    DidResult

    Raises
    ------
    ConfigError
        For missing columns, bad values, duplicated unit-periods, ``first_treated`` varying
        within a unit, no treated or no comparison observations, or no treated unit observed at
        ``k = -1``.
    """
    check_choice("model", model, MODELS)
    lo, hi = _check_window(event_window)
    cluster_col = cluster or unit
    require_columns(df, unique([unit, time, outcome, first_treated, cluster_col, weights]))

    problems: list[str] = []
    unit_codes = codes(df[unit])
    check_rule(unit_codes < 0, df[unit], unit, "is missing", "an identifier in every row", problems)
    y = as_float(df[outcome], outcome, "outcome", problems)
    check_rule(
        is_blank(df[outcome]), df[outcome], outcome, "is missing", "a number in every row", problems
    )
    if model == "poisson":
        check_rule(
            y < 0, df[outcome], outcome, "is negative", "values >= 0 for model='poisson'", problems
        )
    if weights:
        w = as_float(df[weights], weights, "weights", problems)
        check_rule(
            is_blank(df[weights]) | (w <= 0).to_numpy(),
            df[weights],
            weights,
            "is missing, zero or negative",
            "weights > 0",
            problems,
        )
    cluster_codes = codes(df[cluster_col])
    if cluster:
        check_rule(
            cluster_codes < 0,
            df[cluster],
            cluster,
            "is missing",
            "a cluster identifier in every row",
            problems,
        )
    period, start, encoding = _encode_time(
        df[time], df[first_treated], time, first_treated, problems
    )
    keys = pd.DataFrame({"u": unit_codes, "t": period})
    dup = (unit_codes >= 0) & ~np.isnan(period) & keys.duplicated(keep=False).to_numpy()
    check_rule(
        dup,
        df[time],
        f"{unit}, {time}",
        "repeats a (unit, time) pair",
        "one row per unit and period",
        problems,
        example=lambda i: f"{unit}={show(df[unit].iloc[i])}, {time}={show(df[time].iloc[i])}",
    )
    if not problems:
        _check_constant_within_unit(df, unit, first_treated, unit_codes, start, problems)
    if problems:
        raise ConfigError(join_problems(problems))

    period_i = period.astype(np.int64)
    treated_row = ~np.isnan(start)
    rel = np.where(treated_row, period - np.where(treated_row, start, 0.0), np.nan)
    d = (treated_row & (rel >= 0)).astype(float)
    _check_design(d, period_i, rel, first_treated)

    panel = pd.DataFrame(
        {
            "unit": unit_codes,
            "period": period_i,
            "y": y.to_numpy(float),
            "D": d,
            "cluster": cluster_codes,
        }
    )
    if weights:
        panel["w"] = w.to_numpy(float)
    binned = np.clip(rel, lo, hi)
    ks = sorted(int(k) for k in np.unique(binned[treated_row]))
    es_terms = [k for k in ks if k != -1]
    for k in es_terms:
        panel[f"k={k}"] = (binned == k).astype(float)

    common: dict[str, Any] = {
        "outcome": "y",
        "fe": ["unit", "period"],
        "model": model,
        "cluster": "cluster",
        "weights": "w" if weights else None,
    }
    att_fit = fit_fe(panel, regressors=["D"], **common)
    es_fit = fit_fe(panel, regressors=[f"k={k}" for k in es_terms], **common)

    att = att_fit.term("D")
    est_cols = [c for c in att_fit.coefficients.columns if c != "term"]
    rows = []
    for k in ks:
        at_k = treated_row & (binned == k)
        label = f"<={k}" if k == lo else f">={k}" if k == hi else str(k)
        if k == -1:
            vals = {c: math.nan for c in est_cols}
            vals.update({"estimate": 0.0} | ({"rate_ratio": 1.0} if model == "poisson" else {}))
        elif f"k={k}" in es_fit.collinear:
            vals = {c: math.nan for c in est_cols}
        else:
            vals = es_fit.term(f"k={k}")
        rows.append(
            {
                "k": k,
                "label": label,
                **vals,
                "n_obs": int(at_k.sum()),
                "n_units": int(np.unique(unit_codes[at_k]).size),
                "reference": k == -1,
            }
        )
    event_study = pd.DataFrame(rows)

    notes = []
    if att_fit.n_dropped:
        parts = [f"{n:,} {why}" for why, n in att_fit.dropped.items() if n]
        notes.append(f"{att_fit.n_dropped:,} rows dropped from the regression: {', '.join(parts)}")
    if es_fit.collinear:
        notes.append(f"event-study terms dropped as collinear: {', '.join(es_fit.collinear)}")
    observed_treated = pd.Series(d).groupby(unit_codes).max()
    has_start = pd.Series(treated_row).groupby(unit_codes).max().astype(bool)
    return DidResult(
        att=att,
        event_study=event_study,
        n_units=int(observed_treated.size),
        n_treated_units=int(observed_treated.sum()),
        n_periods=int(np.unique(period_i).size),
        model=model,
        cluster=cluster_col,
        n_never_treated_units=int((~has_start).sum()),
        vcov=att_fit.vcov,
        n_obs=att_fit.n_obs,
        n_dropped=att_fit.n_dropped,
        dropped=dict(att_fit.dropped),
        weights=weights,
        event_window=(lo, hi),
        time_encoding=encoding,
        warnings=notes,
    )


def _check_design(d: np.ndarray, period: np.ndarray, rel: np.ndarray, first_treated: str) -> None:
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


def _encode_time(
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


def _check_constant_within_unit(
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


def _check_window(window: tuple[int, int]) -> tuple[int, int]:
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
