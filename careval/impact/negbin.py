"""Negative binomial (NB2) regression with absorbed fixed effects, and the overdispersion test.

pyfixest 0.60 has no negative binomial (``feglm`` offers gaussian, logit and probit), so
:func:`careval.impact.fe.fit_fe` with ``model="negbin"`` fits it here: the log-link model
``E[y] = mu = exp(x'b + fixed effects)``, ``Var[y] = mu + alpha mu^2``, by maximum likelihood
(as R's ``MASS::glm.nb`` with the fixed effects as dummies; Allison and Waterman, 2002, call
it the unconditional negative binomial fixed-effects model).

The fit alternates two steps from the Poisson fit's means (``pyfixest.fepois``, which also
drops the singletons and the observations separated by the fixed effects):

1. ``alpha`` by maximum likelihood given ``mu`` (a one-dimensional maximisation of the NB2
   log-likelihood, :func:`alpha_ml`; 0 when the likelihood is largest there, see below);
2. one Fisher-scoring (IRLS) step for ``b`` and the fixed effects given ``alpha``: a weighted
   least-squares fit of the working response ``z = eta + (y - mu)/mu`` on the regressors with
   the fixed effects absorbed and weights ``W = mu/(1 + alpha mu)`` (times any analytic weights).
   ``eta`` is the whole linear predictor, fixed effects included: ``z`` minus the residual of the
   absorbed fit.

``b`` and ``alpha`` are orthogonal parameters of NB2 (the expected cross-derivative is zero),
so the alternation converges about as fast as IRLS alone. It stops when the linear predictor
moves less than ``1e-9`` and ``alpha`` less than ``1e-9`` relatively (``10 tol`` when the
fixed-effect projections' tolerance ``tol`` is looser than ``1e-10``).

Standard errors are those of the converged weighted fit (``pyfixest.feols`` of ``z`` with weights
``W``: CRV1 or HC1, with fit_fe's small-sample factors). They are the NB2 sandwich at fixed
``alpha``. Write ``X~`` for the regressors residualised on the fixed effects with weights ``W``
(what absorbing them does). The weighted least-squares sandwich is
``(X~' W X~)^-1 [sum_g s_g s_g'] (X~' W X~)^-1`` with ``s_g`` the sum over cluster ``g`` of
``W_i x~_i e_i`` and working residual ``e_i = z_i - eta_i = (y_i - mu_i)/mu_i``. Then
``W_i e_i = (y_i - mu_i)/(1 + alpha mu_i)``, which is the NB2 score of ``b`` for observation
``i``; and ``X~' W X~`` is the NB2 expected information for ``b`` with the fixed effects
profiled out, since ``-E[d2 l/db db'] = sum_i x_i x_i' mu_i/(1 + alpha mu_i)``. Residualising
changes neither: the fixed effects' score equations make ``sum_i W_i d_i e_i = 0`` for each
fixed-effect dummy ``d``, so ``sum_i W_i x~_i e_i = sum_i W_i x_i e_i``. The sandwich treats
``alpha`` as known; by the orthogonality, estimating it does not change ``b``'s asymptotic
variance (``sandwich::vcovCL`` on a ``glm.nb`` fit does the same).

With a fixed effect per unit and few periods the fitted means follow each unit's counts a
little too closely, which biases ``alpha`` (and the overdispersion test below) downwards, the
same incidental-parameter effect as a residual variance without its degrees-of-freedom
correction.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from careval.errors import ConfigError

ALPHA_RANGE = (1e-6, 1e4)  # where alpha's score is solved for (see alpha_ml)
_MAXITER = 100
_STEP_TOL = 1e-9


def nb2_loglik(y: np.ndarray, mu: np.ndarray, alpha: float, w: np.ndarray | None = None) -> float:
    """The NB2 log-likelihood ``sum_i w_i log f(y_i; mu_i, alpha)``; ``alpha = 0`` is Poisson.

    ``f = Gamma(y + 1/alpha) / (Gamma(1/alpha) y!) (1/(1 + alpha mu))^(1/alpha)
    (alpha mu/(1 + alpha mu))^y``, defined for non-integer ``y >= 0`` too (set means).
    """
    w = np.ones_like(y) if w is None else w
    if alpha <= 0:
        return float(np.sum(w * (special.xlogy(y, mu) - mu - special.gammaln(y + 1))))
    theta = 1.0 / alpha
    am = alpha * mu
    ll = (
        special.gammaln(y + theta)
        - special.gammaln(theta)
        - special.gammaln(y + 1)
        - theta * np.log1p(am)
        + special.xlogy(y, am / (1 + am))
    )
    return float(np.sum(w * ll))


def alpha_score(y: np.ndarray, mu: np.ndarray, alpha: float, w: np.ndarray) -> float:
    """The derivative of :func:`nb2_loglik` in ``alpha``: ``sum_i w_i [(log(1 + alpha mu_i) -
    psi(y_i + 1/alpha) + psi(1/alpha))/alpha^2 + (y_i - mu_i)/(alpha (1 + alpha mu_i))]``."""
    theta = 1.0 / alpha
    am = alpha * mu
    dig = special.digamma(y + theta) - special.digamma(theta)
    s = (np.log1p(am) - dig) / alpha**2 + (y - mu) / (alpha * (1 + am))
    return float(np.sum(w * s))


def alpha_ml(y: np.ndarray, mu: np.ndarray, w: np.ndarray | None = None) -> float:
    """The maximum-likelihood ``alpha >= 0`` of NB2 given the means ``mu``.

    The log-likelihood's slope at ``alpha = 0`` is ``s0 = sum_i w_i ((y_i - mu_i)^2 - y_i)/2``;
    when it is not positive the data are no more dispersed than Poisson and the estimate is 0
    (the boundary). Otherwise the root of the score (:func:`alpha_score`, Brent's method) in
    :data:`ALPHA_RANGE`; the likelihood is too flat there for its maximiser to be found to
    better than about ``1e-6`` relatively, the score's root is found to ``1e-12``. Below the
    range's lower end, where the digamma differences lose their precision, the root is
    interpolated linearly between 0 (slope ``s0``) and the lower end; above it, the upper end.
    """
    w = np.ones_like(y) if w is None else w
    s0 = float(np.sum(w * ((y - mu) ** 2 - y))) / 2
    if s0 <= 0:
        return 0.0
    lo, hi = ALPHA_RANGE
    s_lo = alpha_score(y, mu, lo, w)
    if s_lo <= 0:
        return lo * s0 / (s0 - s_lo)
    if alpha_score(y, mu, hi, w) >= 0:
        return hi
    root = optimize.brentq(
        lambda la: alpha_score(y, mu, float(np.exp(la)), w),
        np.log(lo),
        np.log(hi),
        xtol=1e-13,
        rtol=1e-14,
        maxiter=200,
    )
    return float(np.exp(root))


def dispersion_test(y: np.ndarray, mu: np.ndarray) -> dict[str, float]:
    """Cameron and Trivedi's (1990) regression test of Poisson against NB2 overdispersion.

    ``H0: Var[y] = mu`` against ``H1: Var[y] = mu + alpha mu^2`` with ``alpha > 0``: the
    least-squares regression without intercept of ``((y - mu)^2 - y)/mu`` on ``mu``, the Poisson
    fit's means, and the one-sided test of its slope by its t statistic against the normal
    distribution, as R's ``AER::dispersiontest(fit, trafo = 2)``.

    Parameters
    ----------
    y, mu : numpy.ndarray
        The outcome and the Poisson fit's means (positive) on the estimation sample.

    Returns
    -------
    dict
        ``alpha`` (the slope: negative under underdispersion), ``statistic`` (its t statistic,
        ``n - 1`` degrees of freedom in the residual variance) and ``p_value`` (upper tail of the
        normal distribution).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> mu = np.full(20_000, 3.0)
    >>> y = rng.negative_binomial(2, 2 / (2 + mu))  # alpha = 1/2
    >>> t = dispersion_test(y.astype(float), mu)
    >>> round(t["alpha"], 2), t["p_value"] < 1e-6
    (0.51, True)
    """
    aux = ((y - mu) ** 2 - y) / mu
    sxx = float(mu @ mu)
    slope = float(mu @ aux) / sxx
    resid = aux - slope * mu
    se = float(np.sqrt((resid @ resid) / (y.size - 1) / sxx))
    stat = slope / se if se > 0 else np.nan
    return {"alpha": slope, "statistic": stat, "p_value": float(stats.norm.sf(stat))}


def poisson_dispersion(poisson: Any, work: pd.DataFrame) -> dict[str, float]:
    """:func:`dispersion_test` of a ``pyfixest.fepois`` fit of ``work``'s ``cv_y``."""
    y = work["cv_y"].to_numpy(float)[poisson._data.index.to_numpy()]
    return dispersion_test(y, np.asarray(poisson._Y_hat_response, dtype=float).ravel())


@dataclass(frozen=True)
class NB2Fit:
    """The converged weighted fit whose coefficients and sandwich are the NB2 ones."""

    fit: Any  # pyfixest Feols of the working response
    alpha: float
    converged: bool
    iterations: int
    loglik: float


def fe_codes(work: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """Fixed-effect columns as 0-based codes with no empty level, for ``pyfixest`` ``demean``."""
    return np.column_stack([pd.factorize(work[c], sort=False)[0].astype(np.uint64) for c in cols])


def _demean(a: np.ndarray, flist: np.ndarray, w: np.ndarray, tol: float) -> np.ndarray:
    from pyfixest.estimation import demean

    out, ok = demean(np.ascontiguousarray(a, dtype=float), flist, w, tol=tol)
    if not ok:
        raise ConfigError("negbin: the fixed-effect projections did not converge")
    return np.asarray(out)


def fit_nb2(
    poisson: Any,
    work: pd.DataFrame,
    fml: str,
    run: Callable[[str, pd.DataFrame], Any],
    tol: float,
    prior_weights: bool,
) -> NB2Fit:
    """NB2 by alternating ML ``alpha`` and IRLS steps, from a ``pyfixest.fepois`` fit.

    ``work`` holds the columns named ``cv_y``, ``cv_x*``, ``cv_fe*`` (and ``cv_w`` if
    ``prior_weights``); its rows in ``poisson``'s estimation sample are fitted. ``run(fml,
    data)`` fits the final weighted least squares (``fml`` with ``cv_z`` for ``cv_y``, weights
    ``cv_w``) and returns the pyfixest fit that carries the standard errors.
    """
    data = work.loc[poisson._data.index].reset_index(drop=True)
    y = data["cv_y"].to_numpy(float)
    xcols = [str(c) for c in poisson._coefnames]
    x = data[xcols].to_numpy(float)
    flist = fe_codes(data, [c for c in data.columns if c.startswith("cv_fe")])
    pw = data["cv_w"].to_numpy(float) if prior_weights else np.ones(y.size)
    mu = np.asarray(poisson._Y_hat_response, dtype=float).ravel()
    eta = np.log(mu)
    alpha = alpha_ml(y, mu, pw)
    ll = nb2_loglik(y, mu, alpha, pw)
    converged, iterations = False, 0
    step_tol = max(_STEP_TOL, 10 * tol)  # the projections' noise moves eta by about tol
    for it in range(1, _MAXITER + 1):
        iterations = it
        wt = pw * mu / (1 + alpha * mu)
        z = eta + (y - mu) / mu
        dm = _demean(np.column_stack([z, x]), flist, wt, tol)
        sw = np.sqrt(wt)[:, None]
        beta = np.linalg.lstsq(dm[:, 1:] * sw, dm[:, :1] * sw, rcond=None)[0]
        eta_new = z - (dm[:, 0] - dm[:, 1:] @ beta[:, 0])
        for _ in range(30):  # step halving, should the likelihood fall (rare)
            mu_new = np.exp(eta_new)
            ll_new = nb2_loglik(y, mu_new, alpha, pw)
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            eta_new = (eta + eta_new) / 2
        alpha_new = alpha_ml(y, mu_new, pw)
        step = float(np.max(np.abs(eta_new - eta)))
        moved = abs(alpha_new - alpha) / max(alpha, 1e-8)
        eta, mu, alpha = eta_new, mu_new, alpha_new
        ll = nb2_loglik(y, mu, alpha, pw)
        if step < step_tol and moved < step_tol:
            converged = True
            break
    data["cv_z"] = eta + (y - mu) / mu
    data["cv_w"] = pw * mu / (1 + alpha * mu)
    if not converged:
        warnings.warn(f"NB2 did not converge in {_MAXITER} iterations", stacklevel=3)
    fit = run(fml.replace("cv_y ~", "cv_z ~", 1), data)
    return NB2Fit(fit=fit, alpha=alpha, converged=converged, iterations=iterations, loglik=ll)


def nb2_fe_means(
    y: np.ndarray,
    offset: np.ndarray,
    flist: np.ndarray,
    alpha: float,
    mu_start: np.ndarray,
    tol: float = 1e-10,
    w: np.ndarray | None = None,
) -> np.ndarray:
    """NB2 means ``exp(offset + fixed effects)`` with the fixed effects fitted given ``alpha``.

    IRLS for the fixed effects alone (the regressors' part ``offset = X b`` held), from
    ``mu_start`` (positive; Poisson means are a good start); ``w`` are analytic weights. Used
    by the matched study's two-way variance (:mod:`careval.impact.variance`), which recomputes
    the means from ``b``.
    """
    mu = mu_start.astype(float)
    eta = np.log(mu)
    aw = np.ones(mu.size) if w is None else w
    for _ in range(_MAXITER):
        wt = aw * mu / (1 + alpha * mu)
        z = eta + (y - mu) / mu
        r = _demean((z - offset)[:, None], flist, wt, tol)[:, 0]
        eta_new = z - r
        step = float(np.max(np.abs(eta_new - eta)))
        eta, mu = eta_new, np.exp(eta_new)
        if step < _STEP_TOL:
            break
    return mu
