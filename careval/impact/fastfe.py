"""Point estimates of fixed-effects regressions without pyfixest's per-fit overhead.

The matched study fits some forty models per run and keeps only their point estimates (its
standard errors come from :func:`careval.impact.variance.two_way_vcov`). Through
:func:`careval.impact.fe.fit_fe` each fit pays pyfixest's formula parsing (formulaic) and its
cross-tabulating separation check, several times the cost of the estimation itself.
:func:`fit_points` does the same estimation on arrays with pyfixest's own numerical routines
(the alternating-projections demeaner, the singleton and collinearity detectors), following
pyfixest 0.60's ``feols`` and ``fepois`` step by step, so that the estimation sample, the dropped
counts, the collinear terms and the estimates are those of ``fit_fe`` (the tests check them to
1e-9 against it):

- rows with a missing value in a used column are dropped, then singletons (a fixed-effect level
  with one observation, as pyfixest's default ``fixef_rm="singleton"``), then, for Poisson, the
  observations of every fixed-effect level whose outcome is always zero (pyfixest's default
  ``separation_check=["fe"]``: one pass over each fixed effect on the sample left by the
  singletons, not repeated);
- OLS demeans the outcome and the regressors together, drops regressors collinear with the
  others or the fixed effects (fixest's Cholesky rule on ``X'X`` with tolerance 1e-9) and solves
  the normal equations;
- Poisson drops regressors by the same rule after demeaning with IWLS's first weights
  ``w (y + mean(y)) / 2``, as pyfixest does.

With one fixed effect, or two of which the smaller has at most ``_MAX_DUMMIES`` levels (the
matched study's unit and calendar month), the demeaning is exact linear algebra and Poisson is
fitted by Newton's method on the likelihood concentrated over the units
(:mod:`careval.impact.absorb`): the maximum likelihood estimate itself, which pyfixest's IWLS,
stopped by its deviance criterion at ``tol``, reaches to about 1e-8 (the tests compare both with
``fit_fe`` converged to 1e-13). Otherwise, as pyfixest: alternating projections and ppmlhdfe's
iteratively reweighted least squares, starting from ``mu = (y + mean(y)) / 2``, the working
response ``z = eta + (y - mu) / mu`` and the regressors demeaned with weights ``mu``, ``beta``
their weighted least squares coefficient and the linear predictor ``z - (z~ - X~ beta)``,
stopping when the deviance changes by less than ``tol`` relative to ``0.1 + |deviance|``
(fixest's criterion), at most 100 iterations.

Any other model (or input that ``fit_fe`` would refuse, such as infinite values or a negative
count) goes to ``fit_fe``, which fits it or raises its usual error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from careval.errors import ConfigError
from careval.impact import absorb
from careval.impact.absorb import Patterns, UnitMonth, dense_codes, pinv_solve, sorted_codes
from careval.impact.fe import _IWLS_MAXITER, FEFit, Model, _pyfixest, fit_fe
from careval.impact.inputs import codes

_COLLIN_TOL = 1e-9  # pyfixest's default collin_tol for feols and fepois
_FIXEF_MAXITER = 10_000  # pyfixest's default fixef_maxiter
_MAX_DUMMIES = 1_000  # the most levels of the smaller of two fixed effects absorbed exactly


def fit_points(
    panel: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    model: Model,
    fe: Sequence[str] = ("unit", "month"),
    tol: float = 1e-8,
    cluster: str | None = None,
    weights: str | None = None,
) -> FEFit:
    """Estimates of ``outcome ~ regressors | fe`` (OLS or Poisson), as :func:`fit_fe` gives them.

    Parameters
    ----------
    panel : pandas.DataFrame
        The data; it is not modified.
    outcome : str
        Numeric outcome column (for Poisson non-negative).
    regressors : sequence of str
        Numeric or boolean regressor columns.
    model : {"ols", "poisson"}
        Any other model is fitted by :func:`fit_fe`.
    fe : sequence of str
        Fixed-effect columns (each distinct value a level).
    tol : float
        Tolerance of the fixed-effect projections and of Poisson's deviance criterion, with the
        meaning it has in :func:`fit_fe`.
    cluster : str, optional
        A cluster column: its missing rows are dropped, and ``n_clusters`` and the OLS
        reference distribution are those of ``fit_fe`` with this cluster.
    weights : str, optional
        A column of positive analytic weights, as ``fit_fe``'s: weighted least squares, or the
        Poisson pseudo-likelihood with each row's score multiplied by its weight (pyfixest's
        IWLS with working weights ``weight * mu``).

    Returns
    -------
    FEFit
        With ``estimate`` (and for Poisson ``rate_ratio``) filled and the standard errors,
        intervals and p-values NaN; ``vcov`` is ``"none"``.

    Raises
    ------
    ConfigError
        As :func:`fit_fe`: bad columns or values, no complete rows, a Poisson outcome that is
        always zero, every regressor collinear; or fixed-effect projections that do not
        converge.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"unit": np.repeat(np.arange(50), 4), "period": np.tile(range(4), 50)})
    >>> d["x"] = rng.normal(size=200)
    >>> d["y"] = 2 * d["x"] + rng.normal(size=200)
    >>> fit = fit_points(d, "y", ["x"], "ols", fe=("unit", "period"))
    >>> round(fit.term("x")["estimate"], 1), fit.n_obs
    (2.0, 200)
    """
    return estimate(panel, outcome, regressors, model, fe, tol, cluster, weights)[0]


@dataclasses.dataclass(frozen=True)
class Means:
    """A fit's state at its estimate, for the variance (:func:`careval.impact.variance.
    two_way_vcov`): ``sample``, the panel rows of the estimation sample (in order); ``xtilde``,
    the kept regressors residualised on the fixed effects (with weights ``w mu`` for Poisson,
    ``w`` for least squares), the same for every unit of a pattern and so kept per pattern row,
    with ``rows`` each sample row's; ``mu``, Poisson's fitted means; ``resid``, least squares'
    residuals (per sample row). Every row outside the sample is fitted exactly (a singleton's
    own effect, or a level whose outcome is always zero: mean zero), with no score and no
    information."""

    sample: np.ndarray
    xtilde: np.ndarray
    rows: np.ndarray
    mu: np.ndarray | None = None
    resid: np.ndarray | None = None


def estimate(
    panel: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    model: Model,
    fe: Sequence[str] = ("unit", "month"),
    tol: float = 1e-8,
    cluster: str | None = None,
    weights: str | None = None,
) -> tuple[FEFit, Means | None]:
    """:func:`fit_points`'s fit and, for a fit with exact absorption and no incomplete rows,
    its :class:`Means` (else None)."""
    regressors, fe = list(regressors), list(fe)
    refer = functools.partial(
        _by_fit_fe, panel, outcome, regressors, model, fe, tol, cluster, weights
    )
    if model not in ("ols", "poisson") or not _plain(
        panel, outcome, regressors, fe, cluster, weights
    ):
        return refer(), None
    y = panel[outcome].to_numpy(dtype=float)
    x = np.column_stack([panel[c].to_numpy(dtype=float) for c in regressors])
    w = panel[weights].to_numpy(dtype=float) if weights else np.ones(y.size)
    if (
        np.isinf(y).any()
        or np.isinf(x).any()
        or (model == "poisson" and (y < 0).any())
        or not (np.isfinite(w) & (w > 0)).all()
    ):
        return refer(), None
    # sorted codes: exact absorption groups units by their rows in month order
    fcodes = np.column_stack([sorted_codes(panel[c]) for c in fe])
    cl = codes(panel[cluster]) if cluster else np.zeros(len(panel), dtype=np.int64)
    missing = np.isnan(y) | np.isnan(x).any(axis=1) | (fcodes < 0).any(axis=1) | (cl < 0)
    keep = ~missing
    if not keep.any() or (model == "poisson" and not (y[keep] > 0).any()):
        return refer(), None
    # pyfixest factorises the fixed effects on the complete rows and keeps those codes after
    # dropping singletons and separated rows (levels left empty carry no weight)
    if missing.any():
        y, x, cl, w = y[keep], x[keep], cl[keep], w[keep]
        fcodes = np.column_stack([dense_codes(f[keep])[0] for f in fcodes.T])
    flist = fcodes.astype(np.uint64)

    _pyfixest()  # first, so that importing pyfixest leaves the root logger alone
    from pyfixest.core.detect_singletons import detect_singletons

    sample = ~detect_singletons(flist)
    n_single = int(y.size - sample.sum())
    n_sep = 0
    if model == "poisson":
        separated = _separated(y[sample], flist[sample])
        n_sep = int(separated.sum())
        sample[np.flatnonzero(sample)[separated]] = False
    y, x, flist, w = y[sample], x[sample], flist[sample], w[sample]
    exact = _unit_month(flist)
    means = None
    with one_blas_thread():
        if model == "ols" and exact is not None:
            beta, kept, xt, of_row, resid = _ols_exact(y, x, exact, w)
            converged = True
            if not missing.any():
                means = Means(np.flatnonzero(sample), xt, of_row, resid=resid)
        elif model == "ols":
            beta, kept = _ols(y, x, flist, tol, w, exact)
            converged = True
        elif exact is not None:
            beta, kept, converged, pf = _poisson_newton(y, x, exact, w)
            if pf is not None and not missing.any():
                means = Means(np.flatnonzero(sample), pf.pattern_xtilde, pf.of_row, mu=pf.mu)
        else:
            beta, kept, converged = _poisson(y, x, flist, tol, w)
    if not kept.any():
        raise ConfigError(
            f"every regressor ({', '.join(regressors)}) is collinear with the fixed effects "
            f"({', '.join(fe)}) or constant; nothing can be estimated"
        )
    if not converged:
        warnings.warn(f"Poisson did not converge in {_IWLS_MAXITER} iterations", stacklevel=2)
    terms = [r for r, k in zip(regressors, kept, strict=True) if k]
    n_obs = int(y.size)
    n_clusters = int(np.unique(cl[sample]).size) if cluster else None
    fit = FEFit(
        coefficients=_table(terms, beta, model),
        model=model,
        vcov="none",
        cluster=cluster,
        weights=weights,
        n_obs=n_obs,
        n_clusters=n_clusters,
        n_dropped=len(panel) - n_obs,
        dropped={"missing": int(missing.sum()), "singleton": n_single, "separation": n_sep},
        collinear=tuple(r for r, k in zip(regressors, kept, strict=True) if not k),
        inference=_inference(model, n_obs, int(kept.sum()), flist, n_clusters),
        converged=converged,
    )
    return fit, means


def _plain(
    panel: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    fe: list[str],
    cluster: str | None,
    weights: str | None,
) -> bool:
    """Whether the input is one this module fits; anything else goes to ``fit_fe``'s checks."""
    roles = [outcome, *regressors, *fe]
    used = [*roles, *([cluster] if cluster else []), *([weights] if weights else [])]
    if not regressors or not fe or len(set(roles)) < len(roles) or weights in roles:
        return False
    if not all(c in panel.columns for c in used):
        return False
    for c in [outcome, *regressors, *([weights] if weights else [])]:
        s = panel[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            return False
    return True


def _by_fit_fe(
    panel: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: list[str],
    tol: float,
    cluster: str | None,
    weights: str | None,
) -> FEFit:
    return fit_fe(
        panel,
        outcome=outcome,
        regressors=regressors,
        fe=fe,
        model=model,
        cluster=cluster,
        weights=weights,
        tol=tol,
    )


@dataclasses.dataclass
class _BlasLimit:
    """The process's one-thread BLAS limit while a thread holds it (:func:`one_blas_thread`)."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    owner: threading.Thread | None = None  # the thread that set it
    limiter: Any = None  # threadpoolctl's, which restores the original limits


_BLAS_LIMIT = _BlasLimit()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """A context in which BLAS (numpy, scipy) uses one thread.

    The matched study's products have a few dozen columns: one thread does them as fast, and
    threads waiting for busy cores made a fit several times slower on a loaded machine. The
    limit is the process's, and threadpoolctl lets only the thread that set it change it back:
    the first thread in sets it and restores the original when it leaves; inside, nested uses
    and other threads' (:mod:`careval.impact.parallel`, which holds it around its pool) change
    nothing.
    """
    state, me = _BLAS_LIMIT, threading.current_thread()
    with state.lock:
        mine = state.owner is None
        if mine:
            state.owner, state.limiter = me, _blas().limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        if mine:
            with state.lock:
                state.limiter.restore_original_limits()
                state.owner = state.limiter = None


@functools.cache
def _blas() -> Any:
    """The loaded BLAS thread pools (threadpoolctl, a dependency of scikit-learn)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _separated(y: np.ndarray, flist: np.ndarray) -> np.ndarray:
    """Rows of a fixed-effect level whose outcome is zero throughout (any fixed effect)."""
    out = np.zeros(y.size, dtype=bool)
    if (y > 0).all():
        return out
    pos = (y > 0).astype(float)
    for j in range(flist.shape[1]):
        f = flist[:, j].astype(np.int64)
        n_pos = np.bincount(f, weights=pos)
        out |= n_pos[f] == 0
    return out


def _demean(x: np.ndarray, flist: np.ndarray, weights: np.ndarray, tol: float) -> np.ndarray:
    _pyfixest()  # first, so that importing pyfixest leaves the root logger alone
    from pyfixest.estimation import demean

    out, ok = demean(x, flist, weights, tol=tol, maxiter=_FIXEF_MAXITER)
    if not ok:
        raise ConfigError(
            f"the fixed-effect projections did not converge in {_FIXEF_MAXITER:,} iterations"
        )
    return np.asarray(out)


def _independent(xd: np.ndarray) -> np.ndarray:
    """Columns of the demeaned regressors kept by fixest's collinearity rule (True = kept)."""
    return _independent_gram(xd.T @ xd)


def _independent_gram(txx: np.ndarray) -> np.ndarray:
    """:func:`_independent` from the cross-products ``X~' X~``."""
    _pyfixest()  # first, so that importing pyfixest leaves the root logger alone
    from pyfixest.core.collinear import find_collinear_variables

    txx = np.ascontiguousarray(txx, dtype=np.float64)
    excluded, _, _ = find_collinear_variables(txx, _COLLIN_TOL)
    return ~np.asarray(excluded, dtype=bool)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(scipy.linalg.solve(a, b, assume_a="pos")).ravel()


def _unit_month(flist: np.ndarray) -> UnitMonth | None:
    """The sample's fixed effects for exact absorption (:mod:`careval.impact.absorb`): one
    fixed effect, or two of which the smaller has at most ``_MAX_DUMMIES`` levels; else None."""
    if flist.shape[1] > 2 or flist.shape[0] == 0:
        return None
    cols = [dense_codes(flist[:, j].astype(np.int64))[0] for j in range(flist.shape[1])]
    if len(cols) == 1:
        return UnitMonth(cols[0], np.zeros(cols[0].size, dtype=np.int64))
    n0, n1 = (int(c.max()) + 1 for c in cols)
    unit, month = (cols[0], cols[1]) if n0 >= n1 else (cols[1], cols[0])
    return UnitMonth(unit, month) if min(n0, n1) <= _MAX_DUMMIES else None


def _ols(
    y: np.ndarray,
    x: np.ndarray,
    flist: np.ndarray,
    tol: float,
    w: np.ndarray,
    exact: UnitMonth | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares after weighted demeaning, as pyfixest's ``feols`` (the
    demeaning exact where the fixed effects allow: :func:`_ols_exact`)."""
    if exact is not None:
        beta, kept, _, _, _ = _ols_exact(y, x, exact, w)
        return beta, kept
    yx = _demean(np.column_stack([y, x]), flist, w, tol)
    sw = np.sqrt(w)[:, None]
    yd, xd = sw * yx[:, :1], sw * yx[:, 1:]
    kept = _independent(xd)
    if not kept.any():
        return np.array([]), kept
    xd = xd[:, kept]
    return _solve(xd.T @ xd, xd.T @ yd), kept


def _ols_exact(
    y: np.ndarray, x: np.ndarray, fe: UnitMonth, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least squares with exact absorption on the units' patterns: (beta, kept columns, the
    kept regressors residualised on the effects per pattern row, each row's pattern row, the
    residuals per row).

    The regressors residualised on the effects (``X~``) are the same for every unit of a
    pattern, and the months' Gram matrix of the pattern rows (each weighing its units'
    summed weights) is the rows' own, so ``X~`` and ``X~' W X~`` come from the patterns and
    ``X~' W y`` from the rows' ``w y`` summed per pattern row (``X~' W y~ = X~' W y``: ``X~`` is
    orthogonal to the effects)."""
    pt = Patterns.of(fe, w, list(x.T))
    vp = pt.row_weights(w, np.ones(fe.n_units))
    bp = pt.fe.blocks(vp, x[pt.take])
    xt = bp.xu - pt.fe.month_part(bp, pinv_solve(bp.gram, bp.cross))
    txx = (xt * vp[:, None]).T @ xt
    kept = _independent_gram(txx)
    if not kept.any():
        return np.array([]), kept, np.zeros((pt.take.size, 0)), pt.of_row, np.zeros(y.size)
    xt = xt[:, kept]
    xty = xt.T @ np.bincount(pt.of_row, weights=w * y, minlength=pt.take.size)
    beta = _solve(txx[np.ix_(kept, kept)], xty)
    # the residuals: y - x beta residualised on the effects (the rows' Gram matrix is the
    # patterns')
    resid = fe.residualize((y - x[:, kept] @ beta)[:, None], w, bp.gram)[:, 0]
    return beta, kept, xt, pt.of_row, resid


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(2 * np.sum(np.where(y == 0, 0, y * np.log(y / mu)) - (y - mu)))


def _poisson(
    y: np.ndarray, x: np.ndarray, flist: np.ndarray, tol: float, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """ppmlhdfe's IWLS as pyfixest 0.60 runs it: (beta, kept columns, converged). Analytic
    weights ``w`` multiply the working weights ``mu``; the start and the deviance criterion
    ignore them, as pyfixest's."""
    y = y[:, None]
    iwls_tol = min(tol, 1e-8)  # as fit_fe passes it
    mu = (y + np.mean(y)) / 2
    eta = np.log(mu)
    last = _deviance(y, mu)
    kept = np.ones(x.shape[1], dtype=bool)
    beta = np.array([])
    converged = stop = False
    for i in range(_IWLS_MAXITER):
        if stop:
            converged = True
            break
        z = eta + y / mu - 1
        cw = w * mu.ravel()
        zx = _demean(np.concatenate([z, x], axis=1), flist, cw, tol)
        zd, xd = zx[:, :1], zx[:, 1:]
        if i == 0:  # collinearity after the first demeaning, as pyfixest
            kept = _independent(xd)
            if not kept.any():
                return beta, kept, True
            x, xd = x[:, kept], xd[:, kept]
        sw = np.sqrt(cw)[:, None]
        wx, wz = sw * xd, sw * zd
        beta = _solve(wx.T @ wx, wx.T @ wz)
        resid = zd - xd @ beta[:, None]
        eta = z - resid
        mu = np.exp(eta)
        dev = _deviance(y, mu)
        stop = abs(dev - last) / (0.1 + abs(last)) < iwls_tol
        last = dev
    return beta, kept, converged


def _poisson_newton(
    y: np.ndarray, x: np.ndarray, fe: UnitMonth, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool, absorb.PoissonFit | None]:
    """The Poisson maximum likelihood estimate by Newton's method (:func:`careval.impact.absorb.
    poisson`): (beta, kept columns, converged, the fit; None when nothing is kept).

    Regressors are dropped by fixest's collinearity rule on the regressors residualised with
    weights near IWLS's first ones: pyfixest's ``w (y + mean(y)) / 2`` with each row's ``y``
    replaced by its unit's mean, so that the units' patterns serve this step too. Exact
    collinearity does not depend on the weights; only a nearly collinear regressor could be
    judged differently.
    """
    pt = Patterns.of(fe, w, list(x.T))
    n_rows = np.bincount(fe.unit, minlength=fe.n_units)
    unit_mean = np.bincount(fe.unit, weights=y, minlength=fe.n_units) / np.maximum(n_rows, 1)
    xp = x[pt.take]
    xd = pt.fe.residualize(xp, pt.row_weights(w, (unit_mean + np.mean(y)) / 2))
    kept = _independent_gram((xd * pt.multiplicity()[:, None]).T @ xd)
    if not kept.any():
        return np.array([]), kept, True, None
    fit = absorb.poisson(fe, y, x[:, kept], w, patterns=pt)
    return fit.beta, kept, fit.converged, fit


def _table(terms: list[str], beta: np.ndarray, model: str) -> pd.DataFrame:
    nan = np.full(len(terms), np.nan)
    out = pd.DataFrame(
        {
            "term": terms,
            "estimate": beta.astype(float),
            "se": nan,
            "ci_low": nan,
            "ci_high": nan,
            "p_value": nan,
        }
    )
    if model == "poisson":
        out["rate_ratio"] = np.exp(out["estimate"])
        out["rr_ci_low"] = nan
        out["rr_ci_high"] = nan
    return out


def _inference(model: str, n_obs: int, k: int, flist: np.ndarray, n_clusters: int | None) -> str:
    """fit_fe's reference distribution: normal for Poisson; for OLS t with ``G - 1`` degrees
    of freedom when clustered, otherwise ``N - K`` (regressors plus fixed-effect levels, one
    fewer per extra fixed effect)."""
    if model != "ols":
        return "normal"
    if n_clusters is not None:
        return f"t({n_clusters - 1})"
    levels = sum(int(np.unique(flist[:, j]).size) for j in range(flist.shape[1]))
    return f"t({n_obs - k - levels + flist.shape[1] - 1})"
