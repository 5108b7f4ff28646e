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
from careval.impact.absorb import UnitMonth, dense_codes, group_sums, poisson, sorted_codes
from careval.impact.fastfe import Means
from careval.impact.negbin import nb2_fe_means


def two_way_vcov(
    panel: pd.DataFrame,
    outcome: str,
    regressors: Sequence[str],
    beta: np.ndarray,
    model: str,
    alpha: float | None = None,
    weights: str | None = None,
    means: Means | None = None,
) -> np.ndarray:
    """Two-way (set, person) clustered covariance of ``beta`` for the matched panel.

    ``panel`` has columns ``unit``, ``month``, ``set``, ``person`` (who the row is about: a
    person in several sets, as a control or as both a control and a treated person, is one
    cluster), the outcome, the regressors and, if given, the analytic ``weights`` of the fit.
    ``alpha`` is NB2's overdispersion, for ``model="negbin"``. ``means``: the fit's own means
    (Poisson) or residuals (least squares) and residualised regressors at ``beta``
    (:func:`careval.impact.fastfe.estimate`), which spare computing them again.
    """
    n = len(panel)
    y = panel[outcome].to_numpy(dtype=float)
    u = sorted_codes(panel["unit"])
    aw = panel[weights].to_numpy(dtype=float) if weights else np.ones(n)
    k = len(regressors)
    # Each score row is ``xt[of] * e`` over the panel rows ``idx``, and the bread's weights are
    # ``b``: with the fit's own means, xt is per pattern row and idx the fit's sample (no n by
    # k array is made); otherwise per panel row.
    if means is not None and means.xtilde.shape[1] == k and model in ("poisson", "ols"):
        idx, xt, of = means.sample, means.xtilde, means.rows
        if model == "poisson" and means.mu is not None:
            e, b = aw[idx] * (y[idx] - means.mu), aw[idx] * means.mu
        elif model == "ols" and means.resid is not None:
            e, b = aw[idx] * means.resid, aw[idx]
        else:
            raise ConfigError(f"the fit's means do not belong to a {model} model")
    else:
        idx, of = np.arange(n), np.arange(n)
        xt, e, b = _scores(panel, y, u, aw, regressors, beta, model, alpha)
    w_of = np.bincount(of, weights=b, minlength=xt.shape[0])
    bread = np.linalg.pinv((xt * w_of[:, None]).T @ xt)
    set_ = sorted_codes(panel["set"])
    person = sorted_codes(panel["person"])

    def summed(groups: np.ndarray, n_groups: int) -> np.ndarray:
        """Per-group sums of the score rows (``groups`` per row of ``idx``), a column at a
        time."""
        out = np.empty((n_groups, k))
        for j in range(k):
            out[:, j] = np.bincount(groups, weights=xt[of, j] * e, minlength=n_groups)
        return out

    # The scores summed by unit first when each unit is in one set and is one person (the
    # matched panel): the three groupings' sums then come from the units' sums.
    first = np.full(int(u.max()) + 1, u.size)  # each unit's first row
    np.minimum.at(first, u, np.arange(u.size))
    nested = bool((set_ == set_[first[u]]).all() and (person == person[first[u]]).all())
    if nested:
        score = summed(u[idx], first.size)
        set_, person = set_[first], person[first]
    else:  # every panel row (those outside idx with no score): the groups are the panel's
        score = np.zeros((n, k))
        score[idx] = xt[of] * e[:, None]

    def meat(groups: np.ndarray) -> np.ndarray:
        inv, g = dense_codes(groups)
        sums = group_sums(inv, None, score, g)  # per-group sums of the scores
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


def _scores(
    panel: pd.DataFrame,
    y: np.ndarray,
    u: np.ndarray,
    aw: np.ndarray,
    regressors: Sequence[str],
    beta: np.ndarray,
    model: str,
    alpha: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per panel row: the regressors residualised on the effects, the score weight (the
    score is their product) and the bread's weight, the means refitted at ``beta``."""
    x = panel[list(regressors)].to_numpy(dtype=float)
    m = sorted_codes(panel["month"])
    scale = np.ones(len(panel))  # d score / d residual: 1/(1 + alpha mu) for NB2
    if model in ("poisson", "negbin"):
        # the means given beta (unit and month effects refitted, by Newton's method); rows of
        # units or months with no events get mean 0 (their effects are minus infinity; they
        # carry no information)
        wy = aw * y
        keep = (np.bincount(u, weights=wy) > 0)[u] & (np.bincount(m, weights=wy) > 0)[m]
        mu, xtil = np.zeros(len(panel)), np.zeros_like(x)
        fe = UnitMonth(dense_codes(u[keep])[0], dense_codes(m[keep])[0])
        if keep.any():
            fit = poisson(fe, y[keep], x[keep], aw[keep], beta=beta)
            mu[keep], xtil[keep] = fit.mu, fit.xtilde
        if model == "negbin":
            if alpha is None:
                raise ConfigError("model='negbin' needs the fit's alpha")
            flist = np.column_stack([u, m]).astype(np.uint64)
            mu[keep] = nb2_fe_means(
                y[keep], (x @ beta)[keep], flist[keep], alpha, mu[keep], w=aw[keep]
            )
            scale = 1 / (1 + alpha * mu)
            xtil[keep] = fe.residualize(x[keep], (aw * mu * scale)[keep])
        return xtil, aw * (y - mu) * scale, aw * mu * scale
    if model == "ols":
        both = UnitMonth(u, m).residualize(np.column_stack([x, y - x @ beta]), aw)
        return both[:, :-1], aw * both[:, -1], aw
    raise ConfigError(f"model must be ols, poisson or negbin; got {model!r}")
