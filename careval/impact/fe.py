"""The fixed-effects estimation engine: checked regressions on pyfixest.

``fit_fe`` is a thin, checked wrapper on ``pyfixest.feols`` / ``pyfixest.fepois`` with the fixed
effects absorbed; the negative binomial (NB2), which pyfixest lacks, is fitted from the Poisson
fit by :mod:`careval.impact.negbin`. The DiD products built on it are in
:mod:`careval.impact.did` (the generic staggered-adoption DiD and its event study) and
:mod:`careval.impact.outcomes` (the matched study's outcome models).

Conventions (pyfixest 0.60, the same as R fixest's defaults and Stata's reghdfe):

- Standard errors are CRV1 when a cluster column is given, otherwise HC1. The small-sample factor
  is ``G/(G-1) * (N-1)/(N-K)`` (CRV1) or ``N/(N-K)`` (HC1) where ``K`` counts the regressors plus
  the fixed-effect levels (one level fewer per extra fixed effect), except that a fixed effect
  nested in the clusters counts as a single parameter (for NB2 too; alpha is not counted). With
  unit fixed effects and clustering on the unit, ``K`` is the number of regressors plus the
  number of periods, smaller than the ``K`` of a regression on explicit dummies.
- OLS p-values and intervals use a t distribution (``G - 1`` degrees of freedom when clustered,
  ``N - K`` otherwise); Poisson and NB2 ones the normal distribution. Intervals are 95%.
- Observations pyfixest drops are counted: singletons (a fixed-effect level with one
  observation) and, for Poisson and NB2, observations separated by the fixed effects (for
  example every observation of a unit whose outcome is always zero).
- Weights are analytic (precision) weights, for Poisson too: pyfixest 0.60's ``fepois`` accepts
  them and gives the same estimates and sandwich as statsmodels' GLM with ``var_weights``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from careval.compute import WARNING_FILTERS
from careval.errors import ConfigError
from careval.impact import negbin as nb
from careval.impact.inputs import (
    as_float,
    check_choice,
    check_rule,
    codes,
    join_problems,
    jsonable,
    require_columns,
)

Model = Literal["ols", "poisson", "negbin"]
MODELS: tuple[str, ...] = ("ols", "poisson", "negbin")
LOG_LINK: tuple[str, ...] = ("poisson", "negbin")  # reported as rate ratios

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
        (95%), ``p_value``; for Poisson and NB2 also ``rate_ratio``, ``rr_ci_low``,
        ``rr_ci_high`` (the exponentiated estimate and interval).
    model : {"ols", "poisson", "negbin"}
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
        False if Poisson's IWLS (or NB2's) stopped at its iteration limit.
    alpha : float or None
        NB2's overdispersion, ``Var[y] = mu + alpha mu^2`` (maximum likelihood; ``theta =
        1/alpha`` in R's ``glm.nb``); None for other models.
    overdispersion : dict or None
        Poisson and NB2 without weights: the Poisson fit's overdispersion test (``alpha``,
        ``statistic``, one-sided ``p_value``; :func:`careval.impact.negbin.dispersion_test`).
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
    alpha: float | None = None
    overdispersion: Mapping[str, float] | None = None

    def tidy(self) -> pd.DataFrame:
        """Return a copy of the coefficient table."""
        return self.coefficients.copy()

    def summary(self) -> str:
        """The model, the sample and each term's estimate with its interval, in a few lines."""
        head = (
            f"{self.model} fixed-effects fit: {self.n_obs:,} observations"
            + (f", {self.n_clusters:,} clusters ({self.cluster})" if self.n_clusters else "")
            + f", {self.vcov} standard errors, {self.inference} inference"
        )
        lines = [head]
        if od := self.overdispersion:
            lines.append(f"overdispersion test: z = {od['statistic']:.3g}, p = {od['p_value']:.3g}")
        if self.alpha is not None:
            lines.append(f"NB2 alpha {self.alpha:.4g}")
        ratio = self.model in LOG_LINK
        for r in self.coefficients.to_dict(orient="records"):
            est, lo, hi = (
                (r["rate_ratio"], r["rr_ci_low"], r["rr_ci_high"])
                if ratio
                else (r["estimate"], r["ci_low"], r["ci_high"])
            )
            lines.append(
                f"{r['term']}: {'rate ratio ' if ratio else ''}{est:.4g} "
                f"(95% CI {lo:.4g} to {hi:.4g}), p = {r['p_value']:.3g}"
            )
        if self.n_dropped:
            lines.append(f"{self.n_dropped:,} rows dropped")
        if self.collinear:
            lines.append(f"dropped as collinear: {', '.join(self.collinear)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fit: the coefficient table as records and the sample (floats rounded to
        6 decimals, NaN as None)."""
        return jsonable(
            {
                "model": self.model,
                "vcov": self.vcov,
                "cluster": self.cluster,
                "weights": self.weights,
                "n_obs": self.n_obs,
                "n_clusters": self.n_clusters,
                "n_dropped": self.n_dropped,
                "dropped": dict(self.dropped),
                "collinear": list(self.collinear),
                "inference": self.inference,
                "converged": self.converged,
                "alpha": self.alpha,
                "theta": 1 / self.alpha if self.alpha else None,
                "overdispersion": dict(self.overdispersion) if self.overdispersion else None,
                "coefficients": self.coefficients.to_dict(orient="records"),
            }
        )

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
    """Fit ``outcome ~ regressors | fe`` by OLS, Poisson or NB2 with the fixed effects absorbed.

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
        Numeric outcome column; for Poisson and NB2 non-negative (counts, or rates with an
        exposure weight).
    regressors : sequence of str
        Numeric (or boolean) columns; interactions must be made beforehand as columns.
    fe : sequence of str
        At least one fixed-effect column (any type; each distinct value is a level).
    model : {"ols", "poisson", "negbin"}
        ``pyfixest.feols``, ``pyfixest.fepois`` or the negative binomial (NB2, log link, alpha
        by maximum likelihood; :mod:`careval.impact.negbin`).
    cluster : str, optional
        Cluster column for CRV1 standard errors; without it HC1 standard errors.
    weights : str, optional
        Column of positive analytic weights (OLS: weighted least squares; Poisson and NB2:
        weighted (pseudo-)likelihood, as statsmodels' GLM with ``var_weights``).

    Returns
    -------
    FEFit

    Raises
    ------
    ConfigError
        A column is missing or of the wrong type, values are infinite, a Poisson or NB2 outcome is
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
    check_choice("model", model, MODELS)
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
    require_columns(df, [*roles, *extra])

    problems: list[str] = []
    work = pd.DataFrame(index=pd.RangeIndex(len(df)))
    names = {"cv_y": outcome}
    work["cv_y"] = as_float(df[outcome], outcome, "outcome", problems)
    if model in LOG_LINK:
        check_rule(
            work["cv_y"] < 0,
            df[outcome],
            outcome,
            "is negative",
            f"values >= 0 for model={model!r}",
            problems,
        )
    for i, col in enumerate(regressors):
        names[f"cv_x{i}"] = col
        work[f"cv_x{i}"] = as_float(df[col], col, "regressor", problems)
    for i, col in enumerate(fe):
        work[f"cv_fe{i}"] = codes(df[col])
    if cluster:
        work["cv_cluster"] = codes(df[cluster])
    if cluster2:
        work["cv_cluster2"] = codes(df[cluster2])
    if weights:
        work["cv_w"] = as_float(df[weights], weights, "weights", problems)
        check_rule(
            work["cv_w"] <= 0,
            df[weights],
            weights,
            "is zero or negative",
            "weights > 0 (drop the rows instead)",
            problems,
        )
    if problems:
        raise ConfigError(join_problems(problems))

    missing = work.isna().any(axis=1) | (work.filter(like="cv_fe") < 0).any(axis=1)
    if cluster:
        missing |= work["cv_cluster"] < 0
    if cluster2:
        missing |= work["cv_cluster2"] < 0
    work = work.loc[~missing.to_numpy()].reset_index(drop=True)
    if work.empty:
        raise ConfigError(f"no complete rows: every row has a missing value in {roles}")
    if model in LOG_LINK and not (work["cv_y"] > 0).any():
        raise ConfigError(f"{outcome}: every value is zero; model={model!r} needs positive counts")

    fml = "cv_y ~ " + " + ".join(f"cv_x{i}" for i in range(len(regressors)))
    fml += " | " + " + ".join(f"cv_fe{i}" for i in range(len(fe)))
    base: Model = "ols" if model == "ols" else "poisson"
    fit = _run_pyfixest(fml, work, base, cluster, weights, regressors, fe, tol, bool(cluster2))
    n_separation = int(getattr(fit, "n_separation_na", 0) or 0)
    converged = bool(getattr(fit, "convergence", True))
    overdispersion, alpha = None, None
    if base == "poisson" and not weights:
        overdispersion = nb.poisson_dispersion(fit, work)
    if model == "negbin":  # the weighted least squares of the working response, by feols
        args = (cluster, "nb2", regressors, fe, tol, bool(cluster2))
        run: Any = lambda f, d: _run_pyfixest(f, d, "ols", *args)  # noqa: E731
        nb2 = nb.fit_nb2(fit, work, fml, run, tol, bool(weights))
        fit, alpha, converged = nb2.fit, nb2.alpha, converged and nb2.converged

    coefs = _coefficient_table(fit, names, model)
    n_obs = int(fit._N)
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
        converged=converged,
        alpha=alpha,
        overdispersion=overdispersion,
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
    with (
        WARNING_FILTERS,
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(io.StringIO()),
    ):
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
    if model == "negbin":  # the working fit is feols (t intervals): normal ones, as glm.nb's
        half = stats.norm.ppf(0.975) * out["se"]
        out["ci_low"], out["ci_high"] = out["estimate"] - half, out["estimate"] + half
    if model in LOG_LINK:
        out["rate_ratio"] = np.exp(out["estimate"])
        out["rr_ci_low"] = np.exp(out["ci_low"])
        out["rr_ci_high"] = np.exp(out["ci_high"])
    return out
