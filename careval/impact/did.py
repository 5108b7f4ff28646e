"""Two-way fixed-effects difference-in-differences and event studies on pyfixest.

``fit_fe`` is a thin, checked wrapper on ``pyfixest.feols`` / ``pyfixest.fepois`` with the fixed
effects absorbed; ``did`` builds the staggered-adoption design on top of it: the ATT as the
coefficient of ``D_it = 1[time >= first_treated]`` with unit and period fixed effects, and an
event study on relative time binned at the window's ends (``k = -1`` is the reference).

Conventions (pyfixest 0.60, the same as R fixest's defaults and Stata's reghdfe):

- Standard errors are CRV1 when a cluster column is given, otherwise HC1. The small-sample factor
  is ``G/(G-1) * (N-1)/(N-K)`` (CRV1) or ``N/(N-K)`` (HC1) where ``K`` counts the regressors plus
  the fixed-effect levels (one level fewer per extra fixed effect), except that a fixed effect
  nested in the clusters counts as a single parameter. With unit fixed effects and clustering on
  the unit, ``K`` is the number of regressors plus the number of periods, smaller than the
  ``K`` of a regression on explicit dummies.
- OLS p-values and intervals use a t distribution (``G - 1`` degrees of freedom when clustered,
  ``N - K`` otherwise); Poisson ones the normal distribution. Intervals are 95%.
- Observations pyfixest drops are counted: singletons (a fixed-effect level with one
  observation) and, for Poisson, observations separated by the fixed effects (for example every
  observation of a unit whose outcome is always zero).
- Weights are analytic (precision) weights, for Poisson too: pyfixest 0.60's ``fepois`` accepts
  them and gives the same estimates and sandwich as statsmodels' GLM with ``var_weights``.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from careval.errors import ConfigError

Model = Literal["ols", "poisson"]
MODELS: tuple[str, ...] = ("ols", "poisson")

_FIXEF_TOL = 1e-10  # alternating-projections tolerance (pyfixest's default 1e-6 is too loose)
_IWLS_MAXITER = 100
_HANDLED_WARNINGS = (
    "The inplace keyword",  # pandas 3 deprecations raised inside pyfixest 0.60
    "singleton fixed effect",  # counted in FEFit.dropped
    "removed because of separation",  # counted in FEFit.dropped
    "dropped due to multicollinearity",  # listed in FEFit.collinear
)


@dataclass(frozen=True, eq=False)
class FEFit:
    """A fixed-effects regression fitted by :func:`fit_fe`.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per estimated regressor: ``term``, ``estimate``, ``se``, ``ci_low``, ``ci_high``
        (95%), ``p_value``; for Poisson also ``rate_ratio``, ``rr_ci_low``, ``rr_ci_high`` (the
        exponentiated estimate and interval).
    model : {"ols", "poisson"}
    vcov : str
        ``"CRV1"`` (clustered) or ``"HC1"`` (heteroskedasticity-robust).
    cluster, weights : str or None
        The columns used.
    n_obs : int
        Observations in the estimation sample.
    n_clusters : int or None
        Clusters in the estimation sample (None without clustering).
    n_dropped : int
        Input rows not in the estimation sample; ``dropped`` splits them into ``missing`` (a
        used column is missing), ``singleton`` and ``separation`` (Poisson only).
    collinear : tuple of str
        Regressors dropped as collinear with the others or the fixed effects.
    inference : str
        The reference distribution of p-values and intervals, e.g. ``"t(199)"`` or ``"normal"``.
    converged : bool
        False if Poisson's IWLS stopped at its iteration limit.
    """

    coefficients: pd.DataFrame
    model: Model
    vcov: str
    cluster: str | None
    weights: str | None
    n_obs: int
    n_clusters: int | None
    n_dropped: int
    dropped: Mapping[str, int]
    collinear: tuple[str, ...] = ()
    inference: str = "normal"
    converged: bool = True

    def tidy(self) -> pd.DataFrame:
        """Return a copy of the coefficient table."""
        return self.coefficients.copy()

    def term(self, name: str) -> dict[str, float]:
        """Return one term's row of the coefficient table as a dict of floats.

        Parameters
        ----------
        name : str
            A regressor's column name as given to :func:`fit_fe`.

        Returns
        -------
        dict of str to float
        """
        rows = self.coefficients[self.coefficients["term"] == name]
        if rows.empty:
            why = " (dropped as collinear)" if name in self.collinear else ""
            raise KeyError(f"no coefficient for {name!r}{why}")
        return {k: float(v) for k, v in rows.iloc[0].items() if k != "term"}


def fit_fe(
    df: pd.DataFrame,
    *,
    outcome: str,
    regressors: Sequence[str],
    fe: Sequence[str],
    model: Model = "ols",
    cluster: str | None = None,
    weights: str | None = None,
    tol: float = _FIXEF_TOL,
    cluster2: str | None = None,
) -> FEFit:
    """Fit ``outcome ~ regressors | fe`` by OLS or Poisson with the fixed effects absorbed.

    ``cluster2`` adds a second clustering dimension (two-way CRV1, as fixest's
    ``cluster = ~a + b``): for matching with replacement, the matched set and the person.
    ``tol`` is the convergence tolerance of the fixed-effect projections and of Poisson's
    IWLS (default 1e-10, for comparisons with other software; 1e-8 halves the time of a
    large Poisson fit and changes estimates only in the eighth digit).

    Parameters
    ----------
    df : pandas.DataFrame
        The data; it is not modified. Column names need not be valid identifiers: they are
        renamed internally and the coefficient table uses the original names.
    outcome : str
        Numeric outcome column; for Poisson non-negative (counts, or rates with an exposure
        weight).
    regressors : sequence of str
        Numeric (or boolean) columns; interactions must be made beforehand as columns.
    fe : sequence of str
        At least one fixed-effect column (any type; each distinct value is a level).
    model : {"ols", "poisson"}
        ``pyfixest.feols`` or ``pyfixest.fepois``.
    cluster : str, optional
        Cluster column for CRV1 standard errors; without it HC1 standard errors.
    weights : str, optional
        Column of positive analytic weights (OLS: weighted least squares; Poisson: weighted
        pseudo-likelihood, as statsmodels' GLM with ``var_weights``).

    Returns
    -------
    FEFit

    Raises
    ------
    ConfigError
        A column is missing or of the wrong type, values are infinite, a Poisson outcome is
        negative, weights are not positive, or every regressor is collinear.

    Notes
    -----
    Rows where a used column is missing are dropped (as pyfixest and fixest do) and counted in
    ``dropped["missing"]``. Nothing is printed; pyfixest's warnings about what it dropped are
    turned into the counts of the result, other warnings are passed on.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"unit": np.repeat(np.arange(50), 4), "period": np.tile(range(4), 50)})
    >>> d["x"] = rng.normal(size=200)
    >>> d["y"] = 2 * d["x"] + rng.normal(size=200)
    >>> fit = fit_fe(d, outcome="y", regressors=["x"], fe=["unit", "period"], cluster="unit")
    >>> round(fit.term("x")["estimate"], 1), fit.vcov, fit.n_clusters
    (2.0, 'CRV1', 50)
    """
    regressors, fe = list(regressors), list(fe)
    _check_choice("model", model, MODELS)
    if not regressors:
        raise ConfigError("regressors: at least one regressor column is required")
    if not fe:
        raise ConfigError("fe: at least one fixed-effect column is required")
    roles = [outcome, *regressors, *fe]
    repeated = sorted({c for c in roles if roles.count(c) > 1})
    if repeated:
        raise ConfigError(
            "each column may have one role among outcome, regressors and fixed effects; "
            f"repeated: {', '.join(map(repr, repeated))}"
        )
    if cluster2 and not cluster:
        raise ConfigError("cluster2 needs cluster: give the first clustering column too")
    extra = [c for c in (cluster, cluster2, weights) if c]
    _require_columns(df, [*roles, *extra])

    problems: list[str] = []
    work = pd.DataFrame(index=pd.RangeIndex(len(df)))
    names = {"cv_y": outcome}
    work["cv_y"] = _as_float(df[outcome], outcome, "outcome", problems)
    if model == "poisson":
        _check_rule(
            work["cv_y"] < 0,
            df[outcome],
            outcome,
            "is negative",
            "values >= 0 for model='poisson'",
            problems,
        )
    for i, col in enumerate(regressors):
        names[f"cv_x{i}"] = col
        work[f"cv_x{i}"] = _as_float(df[col], col, "regressor", problems)
    for i, col in enumerate(fe):
        work[f"cv_fe{i}"] = _codes(df[col])
    if cluster:
        work["cv_cluster"] = _codes(df[cluster])
    if cluster2:
        work["cv_cluster2"] = _codes(df[cluster2])
    if weights:
        work["cv_w"] = _as_float(df[weights], weights, "weights", problems)
        _check_rule(
            work["cv_w"] <= 0,
            df[weights],
            weights,
            "is zero or negative",
            "weights > 0 (drop the rows instead)",
            problems,
        )
    if problems:
        raise ConfigError(_join(problems))

    missing = work.isna().any(axis=1) | (work.filter(like="cv_fe") < 0).any(axis=1)
    if cluster:
        missing |= work["cv_cluster"] < 0
    if cluster2:
        missing |= work["cv_cluster2"] < 0
    work = work.loc[~missing.to_numpy()].reset_index(drop=True)
    if work.empty:
        raise ConfigError(f"no complete rows: every row has a missing value in {roles}")
    if model == "poisson" and not (work["cv_y"] > 0).any():
        raise ConfigError(f"{outcome}: every value is zero; model='poisson' needs positive counts")

    fml = "cv_y ~ " + " + ".join(f"cv_x{i}" for i in range(len(regressors)))
    fml += " | " + " + ".join(f"cv_fe{i}" for i in range(len(fe)))
    fit = _run_pyfixest(fml, work, model, cluster, weights, regressors, fe, tol, bool(cluster2))

    coefs = _coefficient_table(fit, names, model)
    n_obs = int(fit._N)
    n_separation = int(getattr(fit, "n_separation_na", 0) or 0)
    dropped = {
        "missing": int(missing.sum()),
        "singleton": len(work) - n_obs - n_separation,
        "separation": n_separation,
    }
    kept = {names[str(c)] for c in fit._coefnames}
    is_t = model == "ols"
    return FEFit(
        coefficients=coefs,
        model=model,
        vcov="CRV1" if cluster else "HC1",
        cluster=f"{cluster}+{cluster2}" if cluster2 else cluster,
        weights=weights,
        n_obs=n_obs,
        n_clusters=int(np.min(fit._G)) if cluster else None,
        n_dropped=len(df) - n_obs,
        dropped=dropped,
        collinear=tuple(c for c in regressors if c not in kept),
        inference=f"t({int(fit._df_t)})" if is_t else "normal",
        converged=bool(getattr(fit, "convergence", True)),
    )


def _pyfixest() -> Any:
    """Import pyfixest without letting it configure the root logger.

    pyfixest 0.60's ``feols_compressed_`` calls ``logging.basicConfig(level=INFO)`` when first
    imported, which would send every library's INFO messages to the user's terminal.
    """
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import pyfixest as pf
    import pyfixest.estimation.models.feols_compressed_  # noqa: F401

    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    return pf


def _run_pyfixest(
    fml: str,
    work: pd.DataFrame,
    model: Model,
    cluster: str | None,
    weights: str | None,
    regressors: list[str],
    fe: list[str],
    tol: float = _FIXEF_TOL,
    two_way: bool = False,
) -> Any:
    pf = _pyfixest()
    kwargs: dict[str, Any] = {
        "data": work,
        "vcov": (
            {"CRV1": "cv_cluster+cv_cluster2" if two_way else "cv_cluster"} if cluster else "hetero"
        ),
        "weights": "cv_w" if weights else None,
        "demeaner": pf.MapDemeaner(fixef_tol=tol),
        "copy_data": False,  # ``work`` is ours
    }
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            if model == "ols":
                fit = pf.feols(fml, **kwargs)
            else:
                fit = pf.fepois(fml, iwls_tol=min(tol, 1e-8), iwls_maxiter=_IWLS_MAXITER, **kwargs)
        except ValueError as exc:
            if "collinear" not in str(exc):
                raise
            raise ConfigError(
                f"every regressor ({', '.join(regressors)}) is collinear with the fixed effects "
                f"({', '.join(fe)}) or constant; nothing can be estimated"
            ) from None
    for w in caught:
        text = str(w.message).strip()
        if not any(h in text for h in _HANDLED_WARNINGS):
            warnings.warn(f"pyfixest: {text}", w.category, stacklevel=3)
    if model == "poisson" and not getattr(fit, "convergence", True):
        warnings.warn(f"Poisson IWLS did not converge in {_IWLS_MAXITER} iterations", stacklevel=3)
    return fit


def _coefficient_table(fit: Any, names: dict[str, str], model: Model) -> pd.DataFrame:
    tidy = fit.tidy()
    out = pd.DataFrame(
        {
            "term": [names.get(str(c), str(c)) for c in tidy.index],
            "estimate": tidy["Estimate"].to_numpy(float),
            "se": tidy["Std. Error"].to_numpy(float),
            "ci_low": tidy["2.5%"].to_numpy(float),
            "ci_high": tidy["97.5%"].to_numpy(float),
        }
    )
    # pyfixest computes 2 * (1 - cdf), which is 0 below about 1e-16; the survival function
    # keeps small p-values (the same otherwise)
    z = np.abs(out["estimate"] / out["se"]).to_numpy(float)
    if model == "ols":
        out["p_value"] = 2 * stats.t.sf(z, float(fit._df_t))
    else:
        out["p_value"] = 2 * stats.norm.sf(z)
    if model == "poisson":
        out["rate_ratio"] = np.exp(out["estimate"])
        out["rr_ci_low"] = np.exp(out["ci_low"])
        out["rr_ci_high"] = np.exp(out["ci_high"])
    return out


# ---------------------------------------------------------------- difference-in-differences


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

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (floats rounded to 6 decimals, NaN as None)."""
        records = self.event_study.to_dict(orient="records")
        return _jsonable(
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
    _check_choice("model", model, MODELS)
    lo, hi = _check_window(event_window)
    cluster_col = cluster or unit
    _require_columns(df, _unique([unit, time, outcome, first_treated, cluster_col, weights]))

    problems: list[str] = []
    unit_codes = _codes(df[unit])
    _check_rule(
        unit_codes < 0, df[unit], unit, "is missing", "an identifier in every row", problems
    )
    y = _as_float(df[outcome], outcome, "outcome", problems)
    _check_rule(
        _blank(df[outcome]), df[outcome], outcome, "is missing", "a number in every row", problems
    )
    if model == "poisson":
        _check_rule(
            y < 0, df[outcome], outcome, "is negative", "values >= 0 for model='poisson'", problems
        )
    if weights:
        w = _as_float(df[weights], weights, "weights", problems)
        _check_rule(
            _blank(df[weights]) | (w <= 0).to_numpy(),
            df[weights],
            weights,
            "is missing, zero or negative",
            "weights > 0",
            problems,
        )
    cluster_codes = _codes(df[cluster_col])
    if cluster:
        _check_rule(
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
    _check_rule(
        dup,
        df[time],
        f"{unit}, {time}",
        "repeats a (unit, time) pair",
        "one row per unit and period",
        problems,
        example=lambda i: f"{unit}={_show(df[unit].iloc[i])}, {time}={_show(df[time].iloc[i])}",
    )
    if not problems:
        _check_constant_within_unit(df, unit, first_treated, unit_codes, start, problems)
    if problems:
        raise ConfigError(_join(problems))

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
    blank = _blank(start)
    as_dates = pd.api.types.is_datetime64_any_dtype(time)
    t_num: pd.Series | None = None
    if not as_dates:
        t_num = _to_numeric(time)
        if (t_num.isna() & time.notna()).any():  # not numbers: try ISO dates
            t_num, as_dates = None, True
    if as_dates:
        t_val = _to_dates(time)
        bad = t_val.isna() & time.notna()
        _check_rule(
            bad,
            time,
            time_name,
            "is neither an integer nor an ISO date",
            "integers, or dates such as 2020-01-31 or 2020-01",
            problems,
        )
        s_val = _to_dates(start.mask(blank))
        _check_rule(
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
        s_val = _to_numeric(start.mask(blank))
        _check_rule(
            s_val.isna() & ~blank,
            start,
            start_name,
            "is not a number like time",
            "numbers, or empty for never treated",
            problems,
        )
    _check_rule(time.isna(), time, time_name, "is missing", "a period in every row", problems)

    t_ok = t_val.notna().to_numpy()
    integer = not as_dates and bool(np.all(np.mod(t_val[t_ok].to_numpy(float), 1) == 0))
    if integer:
        s_float = s_val.to_numpy(float)
        s_ok = ~np.isnan(s_float)
        _check_rule(
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
        values = ", ".join(_show(v) for v in pd.unique(shown)[:4])
        problems.append(
            f"{first_treated}: varies within a unit ({_n(varying.size, 'unit')}, "
            f"{_n(int(rows.sum()), 'row')}); allowed: one first treated period per unit "
            f"(empty throughout for never treated); e.g. {unit}={_show(example_unit)} has {values}"
        )


# ---------------------------------------------------------------------------- small helpers


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


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


def _unique(cols: list[str | None]) -> list[str]:
    return list(dict.fromkeys(c for c in cols if c))


def _require_columns(df: pd.DataFrame, cols: list[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame; got {type(df).__name__}")
    absent = [c for c in cols if c not in df.columns]
    if absent:
        have = [str(c) for c in df.columns]
        shown = ", ".join(have[:30]) + (f", ... ({len(have)} in all)" if len(have) > 30 else "")
        raise ConfigError(
            f"column{'s' if len(absent) > 1 else ''} not found: {', '.join(map(repr, absent))}; "
            f"the data has: {shown or '(no columns)'}"
        )
    if len(df) == 0:
        raise ConfigError("the data has no rows")


def _check_rule(
    mask: pd.Series | np.ndarray,
    values: pd.Series,
    column: str,
    rule: str,
    allowed: str,
    problems: list[str],
    example: Callable[[int], str] | None = None,
) -> None:
    """Add ``column: rule (n rows); allowed: ...; e.g. ...`` to problems if any row fails.

    ``mask`` is positional; ``example`` turns the first failing position into text (default:
    the row's index label and value).
    """
    flags = np.asarray(mask, dtype=bool)
    count = int(flags.sum())
    if not count:
        return
    pos = int(np.argmax(flags))
    shown = example(pos) if example else f"row {values.index[pos]}: {_show(values.iloc[pos])}"
    problems.append(f"{column}: {rule} ({_n(count, 'row')}); allowed: {allowed}; e.g. {shown}")


def _show(value: object) -> str:
    """A value for a message: strings quoted, numpy scalars as plain Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _blank(s: pd.Series) -> np.ndarray:
    """Missing values, and empty or all-space strings, as a boolean array."""
    text = s.astype("string").str.strip()
    return (s.isna() | (text == "").fillna(False)).to_numpy(bool)


def _join(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the input:\n" + "\n".join(f"  - {p}" for p in problems)


def _to_numeric(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)
    text = s.astype("string").str.strip()
    return pd.to_numeric(text.mask(text == ""), errors="coerce").astype(float)


def _to_dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    text = s.astype("string").str.strip()
    return pd.to_datetime(text.mask(text == ""), format="ISO8601", errors="coerce")


def _as_float(s: pd.Series, column: str, role: str, problems: list[str]) -> pd.Series:
    """The column as floats (NaN where missing); non-numbers and infinities become problems."""
    out = _to_numeric(s)
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        _check_rule(
            out.isna().to_numpy() & ~_blank(s),
            s,
            column,
            f"is not a number ({role})",
            "numbers",
            problems,
        )
    _check_rule(
        np.isinf(out.to_numpy(float)),
        s,
        column,
        f"is infinite ({role})",
        "finite numbers",
        problems,
    )
    return out.set_axis(pd.RangeIndex(len(s)))


def _codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's values, -1 where missing."""
    return pd.factorize(s, use_na_sentinel=True)[0].astype(np.int64)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else None
    return value
