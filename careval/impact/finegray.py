"""The Fine-Gray subdistribution hazard ratio of a binary arm, with case weights and robust
errors clustered on the person, in numpy.

No maintained Python package fits it with weights (lifelines has none; R's ``cmprsk::crr``
takes no case weights), so this follows R ``survival``'s construction: ``finegray()`` keeps a
person with the competing event in the risk set after it, weighted by the censoring
distribution ``G(u-) / G(T-)`` (``G`` the unweighted Kaplan-Meier of censoring, censorings
tied with events coming after them), and ``coxph(..., weights =, cluster =, ties =
"breslow")`` fits the expanded data. With one binary covariate every risk-set sum splits into
the two arms' weighted at-risk mass, which depends on no coefficient, so the partial likelihood
is maximised by Newton's method on one number, and the robust variance is the sum over
persons of their squared weighted score residuals (R's ``dfbeta`` residuals summed by
cluster). ``tests/test_survival.py`` checks the estimate and both standard errors against R
(``tests/fixtures/survival/make_fixture.R``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from careval.impact.intervals import log_ratio

MAX_ITER = 50
TOL = 1e-10


def _censoring_before(time: np.ndarray, status: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``G(at-)``: the unweighted Kaplan-Meier of censoring just before each of ``at``
    (events at a censoring's time leave the risk set before it)."""
    c = np.unique(time[status == 0])
    ts = np.sort(time)
    at_risk = ts.size - np.searchsorted(ts, c, side="left")  # T >= c
    ev = np.sort(time[status > 0])
    events_at = np.searchsorted(ev, c, side="right") - np.searchsorted(ev, c, side="left")
    cs = np.sort(time[status == 0])
    cens_at = np.searchsorted(cs, c, side="right") - np.searchsorted(cs, c, side="left")
    g = np.cumprod(1.0 - cens_at / (at_risk - events_at))
    i = np.searchsorted(c, at, side="left")  # censorings strictly before
    return np.r_[1.0, g][i]


def fine_gray(
    time: np.ndarray,
    status: np.ndarray,
    treated: np.ndarray,
    weight: np.ndarray,
    person: np.ndarray,
) -> dict[str, Any]:
    """The subdistribution hazard ratio of cause 1 (``status`` 1; 2 competing; 0 censored)
    for ``treated`` (0/1), as R ``finegray()`` + ``coxph(ties = "breslow", cluster =)``.

    Returns ``estimate`` and ``se`` (log scale, robust, clustered on ``person``),
    ``se_naive``, the 95% interval, ``p_value`` and ``hazard_ratio`` with its interval; a
    ``note`` instead when one arm has no cause-1 event.
    """
    t = np.asarray(time, dtype=float)
    s = np.asarray(status, dtype=np.int64)
    x = np.asarray(treated, dtype=np.int64)
    w = np.asarray(weight, dtype=float)
    ev = s == 1
    if not (ev & (x == 1)).any() or not (ev & (x == 0)).any():
        return {"model": "fine_gray", "note": "no events in one arm"}
    u = np.unique(t[ev])  # cause-1 event times
    g_u = _censoring_before(t, s, u)
    comp = s == 2
    inv_g = np.where(comp, 1.0 / _censoring_before(t, s, t), 0.0)
    # Each arm's weighted mass at risk at u: still followed (T >= u), plus the competing
    # (T < u) carried on at G(u-) / G(T-).
    mass = np.zeros((2, u.size))
    for arm in (0, 1):
        a = x == arm
        ta, wa = t[a], w[a]
        order = np.argsort(ta)
        suffix = np.r_[np.cumsum(wa[order][::-1])[::-1], 0.0]
        followed = suffix[np.searchsorted(ta[order], u, side="left")]
        c = a & comp
        tc = t[c]
        oc = np.argsort(tc)
        prefix = np.r_[0.0, np.cumsum((w * inv_g)[c][oc])]
        carried = g_u * prefix[np.searchsorted(tc[oc], u, side="left")]
        mass[arm] = followed + carried
    pos = np.searchsorted(u, t[ev])
    d = np.bincount(pos, weights=w[ev], minlength=u.size)  # weighted events at u
    d1 = np.bincount(pos[x[ev] == 1], weights=w[ev][x[ev] == 1], minlength=u.size)
    beta = 0.0
    for _ in range(MAX_ITER):
        r1 = np.exp(beta) * mass[1]
        p = r1 / (mass[0] + r1)  # x-bar(u)
        score = float(d1.sum() - (d * p).sum())
        info = float((d * p * (1 - p)).sum())
        step = score / info
        beta += step
        if abs(step) < TOL:
            break
    r1 = np.exp(beta) * mass[1]
    s0 = mass[0] + r1
    p = r1 / s0
    info = float((d * p * (1 - p)).sum())
    dlam = d / s0
    # Score residual of each person: their event's term less their compensator over the
    # event times they are at risk (with their weight), as R's dfbeta residuals.
    risk = np.exp(beta * x)
    pieces = {}
    for arm in (0, 1):
        inc = (arm - p) * dlam
        pieces[arm] = (np.r_[0.0, np.cumsum(inc)], np.r_[np.cumsum((g_u * inc)[::-1])[::-1], 0.0])
    k_at = np.searchsorted(u, t, side="right")  # event times <= T
    comp_part = np.zeros(t.size)
    own_part = np.zeros(t.size)
    for arm in (0, 1):
        a = x == arm
        prefix, g_suffix = pieces[arm]
        own_part[a] = prefix[k_at[a]]
        comp_part[a] = g_suffix[k_at[a]]
    compensator = risk * (own_part + np.where(comp, inv_g * comp_part, 0.0))
    p_at = np.zeros(t.size)
    p_at[ev] = p[pos]
    resid = w * (np.where(ev, x - p_at, 0.0) - compensator) / info
    _, cluster = np.unique(np.asarray(person), return_inverse=True)
    se = float(np.sqrt((np.bincount(cluster, weights=resid) ** 2).sum()))
    return {
        "model": "fine_gray",
        **log_ratio(beta, se, "hazard_ratio"),
        "se_naive": float(np.sqrt(1.0 / info)),
    }
