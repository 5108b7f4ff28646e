"""Empirical calibration of estimates with negative controls (Schuemie et al. 2014, 2018).

A negative control is an exposure-outcome pair whose true relative risk is 1. Its estimate
``log_rr_i`` (with standard error ``se_i``) still differs from 0 by random error and by the
systematic error of the design. Following OHDSI EmpiricalCalibration's ``fitNull``, the
systematic error is modelled as Gaussian, ``log_rr_i ~ N(mean, sd^2 + se_i^2)``, and ``mean`` and
``sd`` are fitted by maximum likelihood. The fitted "empirical null" then calibrates p-values
(``calibrateP``) and confidence intervals (``calibrateConfidenceInterval``), and summarises the
design's bias in one number, the expected absolute systematic error (EASE).

What ``fitNull`` does (EmpiricalCalibration 3.1.4, commit 03d4747; ``fitNull`` in
``R/EmpiricalCalibrationUsingAsymptotics.R``, objective ``logLikelihoodNull`` in
``src/RcppWrapper.cpp``): it drops estimates with infinite or missing values and those with
``|log_rr| > log(100)`` (with a warning), then minimises the negative log-likelihood above with
``optim``'s default Nelder-Mead over ``theta = (mean, precision)``, ``precision = 1 / sd^2``,
starting from ``(0, 1)`` (that is mean 0, sd 1). There is no prior or penalty on ``sd`` (a weak
gamma prior on the precision appears only in the MCMC variant); when ``sd < 1e-6`` the
likelihood is evaluated with ``sd = 0``. ``fit_null`` minimises the same objective, but to a
tighter tolerance: for a given ``sd`` the optimal ``mean`` is the inverse-variance weighted mean,
so it profiles ``mean`` out and finds ``sd >= 0`` by a grid and a bounded Brent search, which
also reaches the boundary ``sd = 0`` exactly. Nelder-Mead's default ``reltol = 1e-8`` leaves
``fitNull``'s answers some ``1e-5`` from that optimum (the committed R fixture shows it); the
tests compare with both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats

from careval.errors import ConfigError

#: Fewest negative controls ``fit_null`` accepts. The null has two parameters; with one control
#: the fit is exact (sd = 0) and with two it has no degree of freedom left to estimate spread.
#: Three is the least that can say anything; OHDSI practice uses tens of controls.
MIN_CONTROLS = 3
#: ``fitNull`` drops estimates further than this from 0 (relative risk below 0.01 or above 100).
MAX_ABS_LOG_RR = math.log(100.0)

_GRID = 201


@dataclass(frozen=True)
class EmpiricalNull:
    """The fitted systematic-error distribution ``N(mean, sd^2)`` on the log relative risk scale.

    Attributes
    ----------
    mean, sd : float
        Mean and standard deviation of the systematic error.
    n : int
        Number of negative controls the fit used.
    log_likelihood : float
        Maximised log-likelihood (the negative of ``logLikelihoodNull`` at the optimum).
    converged : bool
        Whether the one-dimensional search for ``sd`` met its tolerance.
    warnings : tuple of str
        Controls left out (``|log_rr| > log(100)``, as ``fitNull`` does).
    """

    mean: float
    sd: float
    n: int
    log_likelihood: float
    converged: bool
    warnings: tuple[str, ...] = ()


def _as_pair(log_rr: npt.ArrayLike, se: npt.ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.atleast_1d(np.asarray(log_rr, dtype=np.float64))
    s = np.atleast_1d(np.asarray(se, dtype=np.float64))
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ConfigError(
            f"{what}: log_rr and se must be one-dimensional and of equal length "
            f"(got shapes {y.shape} and {s.shape})"
        )
    return y, s


def _neg_log_lik(mean: np.ndarray, sd: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``-sum_i log N(y_i; mean, sd^2 + s_i^2)`` for each (mean, sd) pair (vectorised)."""
    var = sd[:, None] ** 2 + s[None, :] ** 2
    return 0.5 * np.sum(np.log(2.0 * np.pi * var) + (y[None, :] - mean[:, None]) ** 2 / var, axis=1)


def _profile_mean(sd: np.ndarray, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    w = 1.0 / (sd[:, None] ** 2 + s[None, :] ** 2)
    return np.asarray((w @ y) / w.sum(axis=1))


def _profile(sd: float, y: np.ndarray, s: np.ndarray) -> float:
    sds = np.array([sd])
    return float(_neg_log_lik(_profile_mean(sds, y, s), sds, y, s)[0])


def _score_at_zero(y: np.ndarray, s: np.ndarray) -> float:
    """Derivative of the profile negative log-likelihood in ``sd^2`` at ``sd = 0`` (times 2)."""
    w = 1.0 / s**2
    r = y - float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w) - np.sum(w**2 * r**2))


def fit_null(log_rr: npt.ArrayLike, se: npt.ArrayLike) -> EmpiricalNull:
    """Fit the empirical null distribution to negative-control estimates (``fitNull``).

    Parameters
    ----------
    log_rr : array_like
        Negative controls' estimated log relative risks (finite).
    se : array_like
        Their standard errors (finite and positive).

    Returns
    -------
    EmpiricalNull
        Maximum-likelihood ``mean`` and ``sd`` of ``log_rr_i ~ N(mean, sd^2 + se_i^2)``.

    Raises
    ------
    ConfigError
        Unequal lengths, a non-finite estimate, a non-finite or non-positive standard error, or
        fewer than ``MIN_CONTROLS`` controls left after dropping ``|log_rr| > log(100)``.
    """
    y, s = _as_pair(log_rr, se, "fit_null")
    problems = []
    bad_y = np.flatnonzero(~np.isfinite(y))
    if bad_y.size:
        problems.append(
            f"{bad_y.size} log_rr value(s) are not finite (first at position {bad_y[0]})"
        )
    bad_s = np.flatnonzero(~(np.isfinite(s) & (s > 0)))
    if bad_s.size:
        problems.append(
            f"{bad_s.size} se value(s) are not finite and positive (first at position {bad_s[0]})"
        )
    if problems:
        raise ConfigError("fit_null: negative controls: " + "; ".join(problems))
    warnings: list[str] = []
    keep = np.abs(y) <= MAX_ABS_LOG_RR
    if not keep.all():
        warnings.append(
            f"{int((~keep).sum())} negative control(s) with |log RR| > log(100) left out of "
            "the empirical null, as EmpiricalCalibration's fitNull does"
        )
        y, s = y[keep], s[keep]
    if y.size < MIN_CONTROLS:
        raise ConfigError(
            f"fit_null: {y.size} usable negative control(s); at least {MIN_CONTROLS} are needed "
            "to fit the empirical null"
        )
    # At the optimum some control has (y_i - mean)^2 > sd^2 + se_i^2, so sd < the range of y.
    upper = float(np.ptp(y))
    if upper == 0.0:
        sd_hat, converged = 0.0, True
    else:
        grid = np.linspace(0.0, upper, _GRID)
        values = _neg_log_lik(_profile_mean(grid, y, s), grid, y, s)
        k = int(np.argmin(values))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, _GRID - 1)]
        res = optimize.minimize_scalar(
            _profile, bounds=(lo, hi), args=(y, s), method="bounded", options={"xatol": 1e-10}
        )
        sd_hat, converged = float(res.x), bool(res.success)
        if values[k] < float(res.fun):
            sd_hat = float(grid[k])
        if (
            lo == 0.0
            and _score_at_zero(y, s) >= 0.0
            and _profile(0.0, y, s) <= _profile(sd_hat, y, s) + 1e-12
        ):
            sd_hat = 0.0  # the likelihood falls as sd^2 leaves 0: the MLE is on the boundary
    sds = np.array([sd_hat])
    mean_hat = float(_profile_mean(sds, y, s)[0])
    nll = float(_neg_log_lik(np.array([mean_hat]), sds, y, s)[0])
    return EmpiricalNull(
        mean=mean_hat,
        sd=sd_hat,
        n=int(y.size),
        log_likelihood=-nll,
        converged=converged,
        warnings=tuple(warnings),
    )


def _check_se(s: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(s < 0)
    if bad.size:
        raise ConfigError(
            f"{what}: {bad.size} se value(s) are negative (first at position {bad[0]}); "
            "standard errors must be >= 0"
        )


def _z_scale(null: EmpiricalNull, s: np.ndarray) -> np.ndarray:
    return np.sqrt(null.sd**2 + s**2)


@overload
def calibrate_p(null: EmpiricalNull, log_rr: float, se: float) -> float: ...
@overload
def calibrate_p(
    null: EmpiricalNull, log_rr: npt.ArrayLike, se: npt.ArrayLike
) -> npt.NDArray[np.float64]: ...
def calibrate_p(
    null: EmpiricalNull, log_rr: npt.ArrayLike, se: npt.ArrayLike
) -> float | npt.NDArray[np.float64]:
    """Two-sided calibrated p-value of estimates under the empirical null (``calibrateP``).

    ``p = 2 * min(Phi(z), Phi(-z))`` with ``z = (log_rr - mean) / sqrt(sd^2 + se^2)``: the
    probability of an estimate at least this far from the null's mean when the true effect is
    null and the systematic error is distributed as the negative controls say.

    Parameters
    ----------
    null : EmpiricalNull
        From :func:`fit_null`.
    log_rr, se : float or array_like
        Estimates to calibrate and their standard errors. A missing or infinite value gives NaN,
        as ``calibrateP`` gives NA.

    Returns
    -------
    float or numpy.ndarray
        A float for scalar input, else an array of the input's length.
    """
    scalar = np.ndim(log_rr) == 0 and np.ndim(se) == 0
    y, s = _as_pair(log_rr, se, "calibrate_p")
    _check_se(s, "calibrate_p")
    ok = np.isfinite(y) & np.isfinite(s)
    z = np.full(y.shape, np.nan)
    z[ok] = (y[ok] - null.mean) / _z_scale(null, s[ok])
    p = 2.0 * stats.norm.sf(np.abs(z))
    return float(p[0]) if scalar else np.asarray(p, dtype=np.float64)


def calibrate_log_rr(null: EmpiricalNull, log_rr: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Calibrated point estimate, ``log_rr - mean`` (the ``logRr`` column of
    ``calibrateConfidenceInterval`` under the negative-control-only model, see
    :func:`calibrate_ci`)."""
    return np.atleast_1d(np.asarray(log_rr, dtype=np.float64)) - null.mean


def calibrate_ci(
    null: EmpiricalNull, log_rr: npt.ArrayLike, se: npt.ArrayLike, alpha: float = 0.05
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Calibrated ``1 - alpha`` log-scale confidence interval (``calibrateConfidenceInterval``).

    EmpiricalCalibration's systematic error model (``fitSystematicErrorModel``) lets the error's
    mean and sd grow with the true effect ``x``: ``log_rr ~ N(a + b x, (c + d |x|)^2 + se^2)``.
    Fitted on negative controls only, every ``x`` is 0, so the likelihood depends on ``a`` and
    ``c`` alone and is exactly ``fitNull``'s; ``b`` and ``d`` have zero gradient and BFGS leaves
    them at their starting values 1 and 0. The model is then ``(mean, 1, sd, 0)``, which is
    also what ``convertNullToErrorModel(null)`` (the vignette's route with negative controls
    only) returns: systematic error does not change with the true effect size. The interval
    ``calibrateConfidenceInterval`` finds by root-finding then has a closed form,

        ``log_rr - mean -/+ z_{1 - alpha/2} * sqrt(sd^2 + se^2)``,

    the set of true effects ``x`` whose error model does not reject the estimate at ``alpha``.

    Parameters
    ----------
    null : EmpiricalNull
        From :func:`fit_null`.
    log_rr, se : float or array_like
        Estimates and their standard errors. Missing or infinite values give NaN limits.
    alpha : float
        One minus the interval's coverage, in (0, 1).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper limits of the calibrated interval on the log scale.
    """
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ConfigError(f"calibrate_ci: alpha must be between 0 and 1 (got {alpha!r})")
    y, s = _as_pair(log_rr, se, "calibrate_ci")
    _check_se(s, "calibrate_ci")
    ok = np.isfinite(y) & np.isfinite(s)
    half = np.where(ok, stats.norm.isf(alpha / 2.0) * _z_scale(null, np.where(ok, s, 0.0)), np.nan)
    centre = np.where(ok, y - null.mean, np.nan)
    return centre - half, centre + half


def ease(null: EmpiricalNull) -> float:
    """Expected absolute systematic error, ``E|X|`` for ``X ~ N(mean, sd^2)``.

    ``computeExpectedAbsoluteSystematicError`` integrates ``|x|`` against the null in closed
    form; this is the folded normal mean ``sd * sqrt(2/pi) * exp(-mean^2 / (2 sd^2)) +
    mean * (1 - 2 Phi(-mean / sd))``, which is ``|mean|`` when ``sd = 0``.

    Parameters
    ----------
    null : EmpiricalNull
        From :func:`fit_null`.

    Returns
    -------
    float
        EASE on the log relative risk scale (0 means no systematic error).
    """
    m, sd = null.mean, null.sd
    if sd == 0.0:
        return abs(m)
    return float(
        sd * math.sqrt(2.0 / math.pi) * math.exp(-(m**2) / (2.0 * sd**2))
        + m * (1.0 - 2.0 * stats.norm.cdf(-m / sd))
    )
