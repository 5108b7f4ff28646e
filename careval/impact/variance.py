"""Standard errors of the matched DiD when controls are shared between matched sets.

The study's panel has one unit per treated person and one per (set, control), each control
weighted 1/k in a set of k controls (:func:`careval.impact.outcomes.matched_panel`). With
matching with replacement one person can be a control in several sets (and a control before
their own care plan and treated after it), so those sets are not independent, and clustering on
the set alone understates the uncertainty (the replicate benchmark found the spread of estimates
18% wider than their standard errors).

This module recomputes the sandwich variance of the fitted coefficients from each row's score
``w x~ (y - mu)`` and the bread ``(X~' W X~)^-1`` (``W = w mu`` for Poisson, ``w`` for least
squares, ``X~`` the regressors residualised on the fixed effects with those weights), two-way
clustered on the matched set and the person (Cameron, Gelbach and Miller:
``V_set + V_person - V_set*person``, each with its ``G/(G-1)`` factor), which is what MatchIt's
vignette recommends for matching with replacement. With no shared controls it reduces to
clustering on the set (a test checks it against pyfixest's CRV1).

For the negative binomial (NB2) the score of an observation is ``w x~ (y - mu)/(1 + alpha mu)``
and ``W = w mu/(1 + alpha mu)`` (``alpha`` held at the fit's estimate;
:mod:`careval.impact.negbin`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.impact.fe import _pyfixest
from careval.impact.negbin import nb2_fe_means

_TOL = 1e-10


def _codes(s: pd.Series) -> np.ndarray:
    return pd.factorize(s, sort=False)[0].astype(np.int64)


def _poisson_fe_means(
    y: np.ndarray, eta: np.ndarray, u: np.ndarray, m: np.ndarray, w: np.ndarray
) -> np.ndarray:
    """Fitted means of a Poisson model with unit and month effects, given ``eta = X b``.

    Alternates the two sets of effects to their score equations (iterative proportional
    fitting); rows of units with no events get mean 0 (they carry no information).
    """
    nu, nm = int(u.max()) + 1, int(m.max()) + 1
    ysum_u = np.bincount(u, weights=w * y, minlength=nu)
    ysum_m = np.bincount(m, weights=w * y, minlength=nm)
    a = np.zeros(nu)
    g = np.zeros(nm)
    ok_u = ysum_u > 0
    for _ in range(2000):
        e = np.exp(eta + g[m])
        a_new = np.full(nu, -np.inf)
        a_new[ok_u] = np.log(ysum_u[ok_u]) - np.log(
            np.bincount(u, weights=w * e, minlength=nu)[ok_u]
        )
        e = np.exp(eta + np.where(ok_u[u], a_new[u], -np.inf))
        den = np.bincount(m, weights=w * e, minlength=nm)
        g_new = np.where(den > 0, np.log(np.maximum(ysum_m, 1e-300)) - np.log(den + 1e-300), 0.0)
        g_new = np.where(ysum_m > 0, g_new, -30.0)
        step_a = float(np.abs(a_new[ok_u] - a[ok_u]).max()) if ok_u.any() else 0.0
        done = step_a < _TOL and float(np.max(np.abs(g_new - g))) < _TOL
        a, g = a_new, g_new
        if done:
            break
    return np.where(ok_u[u], np.exp(eta + a[u] + g[m]), 0.0)


def two_way_vcov(
    panel: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    beta: np.ndarray,
    model: str,
    alpha: float | None = None,
    weights: str | None = None,
) -> np.ndarray:
    """Two-way (set, person) clustered covariance of ``beta`` for the matched panel.

    ``panel`` has columns ``unit``, ``month``, ``set``, ``person`` (who the row is about: a
    person in several sets, as a control or as both a control and a treated person, is one
    cluster), the outcome, the regressors and, if given, the analytic ``weights`` of the fit.
    ``alpha`` is NB2's overdispersion, for ``model="negbin"``.
    """
    _pyfixest()  # first, so that importing pyfixest leaves the root logger alone
    from pyfixest.estimation import demean

    x = panel[list(regressors)].to_numpy(dtype=float)
    y = panel[outcome].to_numpy(dtype=float)
    u, m = _codes(panel["unit"]), _codes(panel["month"])
    flist = np.column_stack([u, m]).astype(np.uint64)
    aw = panel[weights].to_numpy(dtype=float) if weights else np.ones(len(panel))
    scale = np.ones(len(panel))  # d score / d residual: 1/(1 + alpha mu) for NB2
    if model in ("poisson", "negbin"):
        mu = _poisson_fe_means(y, x @ beta, u, m, aw)
        keep = mu > 0
        if model == "negbin":
            if alpha is None:
                raise ConfigError("model='negbin' needs the fit's alpha")
            mu[keep] = nb2_fe_means(
                y[keep], (x @ beta)[keep], flist[keep], alpha, mu[keep], w=aw[keep]
            )
            scale = 1 / (1 + alpha * mu)
        w = aw * mu * scale
        xt, ok = demean(x[keep], flist[keep], w[keep], tol=_TOL)
        xtil = np.zeros_like(x)
        xtil[keep] = xt
        resid = y - mu
    elif model == "ols":
        xtil, ok = demean(x, flist, aw, tol=_TOL)
        r, ok2 = demean((y - x @ beta)[:, None], flist, aw, tol=_TOL)
        ok = ok and ok2
        w = aw
        resid = r[:, 0]
    else:
        raise ConfigError(f"model must be ols, poisson or negbin; got {model!r}")
    if not ok:
        raise ConfigError("the fixed-effect projections did not converge")
    bread = np.linalg.pinv((xtil * w[:, None]).T @ xtil)
    score = xtil * (aw * resid * scale)[:, None]
    set_ = panel["set"].to_numpy().astype(np.int64)
    person = panel["person"].to_numpy().astype(np.int64)

    def meat(groups: np.ndarray) -> np.ndarray:
        codes, inv = np.unique(groups, return_inverse=True)
        g = codes.size
        sums = np.column_stack(  # per-group sums of the scores (bincount: fast, as add.at)
            [np.bincount(inv, weights=score[:, j], minlength=g) for j in range(score.shape[1])]
        )
        return (g / (g - 1)) * (sums.T @ sums) if g > 1 else sums.T @ sums

    both = set_ * (int(person.max()) + 1) + person
    m_set, m_person = meat(set_), meat(person)
    v = bread @ (m_set + m_person - meat(both)) @ bread
    # A two-way meat can lose positive definiteness in small samples: fall back to the larger
    # of the one-way variances on the diagonal, as fixest and Cameron-Gelbach-Miller suggest.
    one = np.maximum(np.diag(bread @ m_set @ bread), np.diag(bread @ m_person @ bread))
    d = np.diag(v).copy()
    bad = d <= 0
    if bad.any():
        d[bad] = one[bad]
        np.fill_diagonal(v, d)
    return v
