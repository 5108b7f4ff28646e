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
    x = panel[list(regressors)].to_numpy(dtype=float)
    y = panel[outcome].to_numpy(dtype=float)
    u, m = sorted_codes(panel["unit"]), sorted_codes(panel["month"])
    flist = np.column_stack([u, m]).astype(np.uint64)
    aw = panel[weights].to_numpy(dtype=float) if weights else np.ones(len(panel))
    scale = np.ones(len(panel))  # d score / d residual: 1/(1 + alpha mu) for NB2
    own = means is not None and means.xtilde.shape[1] == x.shape[1]
    if own and model == "poisson" and means is not None and means.mu is not None:
        # the fit's own means; rows outside its sample are fitted exactly (mean = outcome)
        mu, xtil = y.copy(), np.zeros_like(x)
        mu[means.sample], xtil[means.sample] = means.mu, means.xtilde
        w, resid = aw * mu, y - mu
    elif own and model == "ols" and means is not None and means.resid is not None:
        xtil, resid, w = np.zeros_like(x), np.zeros(len(panel)), aw
        xtil[means.sample], resid[means.sample] = means.xtilde, means.resid
    elif model in ("poisson", "negbin"):
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
            mu[keep] = nb2_fe_means(
                y[keep], (x @ beta)[keep], flist[keep], alpha, mu[keep], w=aw[keep]
            )
            scale = 1 / (1 + alpha * mu)
            xtil[keep] = fe.residualize(x[keep], (aw * mu * scale)[keep])
        w = aw * mu * scale
        resid = y - mu
    elif model == "ols":
        both = UnitMonth(u, m).residualize(np.column_stack([x, y - x @ beta]), aw)
        xtil, resid, w = both[:, :-1], both[:, -1], aw
    else:
        raise ConfigError(f"model must be ols, poisson or negbin; got {model!r}")
    bread = np.linalg.pinv((xtil * w[:, None]).T @ xtil)
    score = xtil * (aw * resid * scale)[:, None]
    set_ = sorted_codes(panel["set"])
    person = sorted_codes(panel["person"])
    # The scores summed by unit first when each unit is in one set and is one person (the
    # matched panel): the three groupings' sums then come from the units' sums.
    first = np.full(int(u.max()) + 1, u.size)  # each unit's first row
    np.minimum.at(first, u, np.arange(u.size))
    nested = bool((set_ == set_[first[u]]).all() and (person == person[first[u]]).all())
    if nested:
        score = group_sums(u, None, score, first.size)
        set_, person = set_[first], person[first]

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
