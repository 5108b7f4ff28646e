"""Weighted Kaplan-Meier and Aalen-Johansen estimators, in numpy.

Both take one row per person (or per matched control pair): a follow-up ``time``, a
``status`` (0 censored, 1 the event of interest, 2 a competing event; Kaplan-Meier reads any
status above 0 as the event) and a case ``weight``. At each distinct event time ``u`` the
weighted number at risk is ``n(u) = sum of w over rows with time >= u`` and the weighted events
``d_k(u) = sum of w over rows with time == u and status k``; then

- Kaplan-Meier: ``S(u) = prod over event times <= u of (1 - d(u) / n(u))``;
- Aalen-Johansen (cumulative incidence of cause k with the others competing):
  ``F_k(u) = sum over event times <= u of S(v-) d_k(v) / n(v)``, ``S`` the all-cause
  Kaplan-Meier.

Censorings at an event time are counted at risk there (events before censorings), as in
R ``survival`` and lifelines. With unit weights these are the usual estimators; with the
matching weights (the controls of a set share a weight of 1) they are the weighted ones of R's
``survfit(..., weights = )``. lifelines has weights for Kaplan-Meier but not for
Aalen-Johansen, hence this module (tests check both against lifelines and R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    """A step function estimated at its event times: ``value[i]`` holds from ``time[i]`` on
    (before ``time[0]`` the value is ``start``)."""

    time: np.ndarray
    value: np.ndarray
    start: float

    def at(self, t: np.ndarray | float) -> np.ndarray:
        """The curve's value at times ``t`` (right-continuous)."""
        i = np.searchsorted(self.time, np.asarray(t, dtype=float), side="right") - 1
        vals = np.r_[self.start, self.value]
        return vals[i + 1]


def _tables(
    time: np.ndarray, status: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct event times, weighted at risk there, weighted cause-1 and cause-2 events."""
    t = np.asarray(time, dtype=float)
    s = np.asarray(status, dtype=np.int64)
    w = np.asarray(weight, dtype=float)
    if not (t.size == s.size == w.size):
        raise ValueError("time, status and weight differ in length")
    u = np.unique(t[s > 0])
    # At risk at u: weight of rows with time >= u (a suffix sum over the sorted times).
    order = np.argsort(t, kind="stable")
    ts, ws = t[order], w[order]
    suffix = np.r_[np.cumsum(ws[::-1])[::-1], 0.0]
    n = suffix[np.searchsorted(ts, u, side="left")]
    pos = np.searchsorted(u, t)
    d1 = np.bincount(pos[s == 1], weights=w[s == 1], minlength=u.size)[: u.size]
    d2 = np.bincount(pos[s >= 2], weights=w[s >= 2], minlength=u.size)[: u.size]
    return u, n, d1, d2


def kaplan_meier(time: np.ndarray, event: np.ndarray, weight: np.ndarray | None = None) -> Curve:
    """The (weighted) Kaplan-Meier survival curve; ``event`` > 0 is the event."""
    w = np.ones(np.size(time)) if weight is None else np.asarray(weight, dtype=float)
    u, n, d1, d2 = _tables(time, (np.asarray(event) > 0).astype(np.int64), w)
    surv = np.cumprod(1.0 - np.where(n > 0, (d1 + d2) / np.where(n > 0, n, 1.0), 0.0))
    return Curve(u, surv, 1.0)


def aalen_johansen(
    time: np.ndarray, status: np.ndarray, weight: np.ndarray | None = None, cause: int = 1
) -> Curve:
    """The (weighted) cumulative incidence of ``cause`` (1 or 2) with the other competing.

    ``status``: 0 censored, 1 and 2 the two causes.
    """
    if cause not in (1, 2):
        raise ValueError(f"cause must be 1 or 2, not {cause!r}")
    w = np.ones(np.size(time)) if weight is None else np.asarray(weight, dtype=float)
    s = np.asarray(status, dtype=np.int64)
    u, n, d1, d2 = _tables(time, s, w)
    safe = np.where(n > 0, n, 1.0)
    hazard_all = np.where(n > 0, (d1 + d2) / safe, 0.0)
    surv = np.cumprod(1.0 - hazard_all)
    before = np.r_[1.0, surv[:-1]]  # S(u-)
    dk = d1 if cause == 1 else d2
    return Curve(u, np.cumsum(before * np.where(n > 0, dk / safe, 0.0)), 0.0)


def at_risk_people(time: np.ndarray, person: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Distinct people still followed (time >= m) at each of ``months`` (a person serving as a
    control in several sets counts once)."""
    t = np.asarray(time, dtype=float)
    p = np.asarray(person)
    # A person is at risk at m when their longest follow-up row reaches m.
    _, inv = np.unique(p, return_inverse=True)
    longest = np.full(inv.max() + 1 if inv.size else 0, -np.inf)
    np.maximum.at(longest, inv, t)
    longest.sort()
    return longest.size - np.searchsorted(longest, np.asarray(months, dtype=float), side="left")


def people_with_event_by(
    time: np.ndarray, status: np.ndarray, person: np.ndarray, months: np.ndarray, cause: int = 0
) -> np.ndarray:
    """Distinct people with an event (``cause``; 0: any) by each of ``months`` (their first
    such event counts)."""
    t = np.asarray(time, dtype=float)
    s = np.asarray(status, dtype=np.int64)
    hit = s > 0 if cause == 0 else s == cause
    p = np.asarray(person)[hit]
    if not p.size:
        return np.zeros(np.size(months), dtype=np.int64)
    _, inv = np.unique(p, return_inverse=True)
    first = np.full(inv.max() + 1, np.inf)
    np.minimum.at(first, inv, t[hit])
    first.sort()
    return np.searchsorted(first, np.asarray(months, dtype=float), side="right")
