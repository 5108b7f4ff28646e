"""Group-sequential boundaries for repeated looks at an accumulating estimate.

Each look ``k`` gives a z statistic ``Z_k = log(rate ratio) / se`` with information
``I_k = 1 / se**2``; with independent increments ``Z_1 .. Z_K`` are jointly normal with
``corr(Z_i, Z_j) = sqrt(I_i / I_j)`` (``i <= j``), a Brownian motion observed at the
information fractions ``t_k = I_k / I_max``. The boundary spends the type I error ``alpha`` as
the information accrues (Lan & DeMets 1983): by fraction ``t`` at most ``alpha*(t)`` has been
spent, with

* O'Brien-Fleming type (the default): ``alpha*(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t))``,
* Pocock type: ``alpha*(t) = alpha log(1 + (e - 1) t)``,

and ``alpha*(t) = alpha`` from ``t = 1`` on (the final look spends whatever is left). Two-sided
bounds at level ``alpha`` are symmetric, each side spending ``alpha / 2`` by its own function
(the convention of ldbounds, gsDesign and Reboussin et al. 2000, whose tables give, for five
equally spaced looks at two-sided 0.05, 4.877, 3.357, 2.680, 2.290, 2.031); ``|Z_k| >= c_k``
crosses, and a path stops at its first crossing of either side. One-sided bounds cross for
benefit only, ``-Z_k >= c_k`` (a rate ratio below 1).

The critical values come from the recursive numerical integration of Armitage, McPherson &
Rowe (1969) as Jennison & Turnbull (2000, ch. 19) set it out: the sub-density of the score
``S_k = Z_k sqrt(t_k)`` on the continuation region is carried from look to look by convolving
with the normal density of the increment, on a Simpson's-rule grid, and at each look the
critical value solving "probability of first crossing here = alpha*(t_k) - alpha*(t_{k-1})" is
found by root finding (:func:`scipy.optimize.brentq`). No simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from careval.errors import ConfigError

Spending = Literal["obrien_fleming", "pocock"]
SPENDING: tuple[str, ...] = ("obrien_fleming", "pocock")
TRUNCATE = 8.0  # standard deviations: where the grid of a one-sided continuation region stops
MIN_POINTS = 401  # Simpson points per look (odd); more when an increment is small
MAX_POINTS = 4001
NO_BOUND = float("inf")  # the critical value of a look that spends nothing


def spent(t: float | np.ndarray, alpha: float, spending: Spending) -> np.ndarray:
    """The type I error spent by information fraction ``t`` (``alpha`` from ``t >= 1`` on)."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if spending == "obrien_fleming":
        z = stats.norm.isf(alpha / 2)
        with np.errstate(divide="ignore"):
            out = 2 * stats.norm.sf(z / np.sqrt(t))
        return np.where(t > 0, out, 0.0)
    if spending == "pocock":
        return np.asarray(alpha * np.log1p((np.e - 1) * t))
    raise ConfigError(f"spending must be one of {', '.join(SPENDING)}; got {spending!r}")


@dataclass(frozen=True)
class Boundaries:
    """Critical values of the z statistic at each look, and the error spent by then."""

    fractions: np.ndarray  # information fractions of the looks, increasing, capped at 1
    critical: np.ndarray  # |Z| (two-sided) or -Z (one-sided) at or beyond this crosses
    spent: np.ndarray  # cumulative type I error spent by each look
    alpha: float
    sides: int
    spending: str


def _simpson(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights of Simpson's rule on [lo, hi] with ``n`` (odd) points."""
    x = np.linspace(lo, hi, n)
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (hi - lo) / (3 * (n - 1))


def _points(width: float, step_sd: float) -> int:
    n = int(np.ceil(width / (step_sd / 8.0)))
    n = min(max(n, MIN_POINTS), MAX_POINTS)
    return n + (n % 2 == 0)


def boundaries(
    fractions: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    spending: Spending = "obrien_fleming",
    sides: int = 2,
) -> Boundaries:
    """Lan-DeMets critical values for looks at ``fractions`` of the planned information.

    Parameters
    ----------
    fractions
        Information fractions ``I_k / I_max`` of the looks so far, strictly increasing and
        positive; values above 1 count as 1 (the final look), and none may follow one.
    alpha
        The overall type I error (two-sided when ``sides`` is 2).
    spending
        ``"obrien_fleming"`` or ``"pocock"`` (Lan-DeMets types).
    sides
        2: symmetric two-sided bounds; 1: one-sided, crossing for benefit (``-Z >= c``).

    Returns
    -------
    Boundaries
        The critical value of each look (``inf`` where the spending gives nothing to spend).

    Raises
    ------
    ConfigError
        For fractions not increasing, non-positive, or continuing after the final look; an
        alpha outside (0, 0.5); sides other than 1 or 2.
    """
    t = np.asarray(fractions, dtype=float)
    if not 0 < alpha < 0.5:
        raise ConfigError(f"alpha must be between 0 and 0.5; got {alpha}")
    if sides not in (1, 2):
        raise ConfigError(f"sides must be 1 or 2; got {sides}")
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] <= 0:
        raise ConfigError("information fractions must be positive finite numbers, one per look")
    if np.any(np.diff(t) <= 0):
        raise ConfigError("information fractions must increase from look to look")
    if np.any(t[:-1] >= 1):
        raise ConfigError("no look may follow the final one (information fraction 1)")
    t = np.minimum(t, 1.0)
    cum = sides * spent(t, alpha / sides, spending)  # each side spends its share
    crit = np.empty(t.size)
    x = w = g = np.empty(0)  # grid, weights and sub-density of the score at the last look
    prev = 0.0
    for k, tk in enumerate(t):
        target = cum[k] - (cum[k - 1] if k else 0.0)
        sd = np.sqrt(tk - prev)
        if k == 0:
            cross = _first_crossing(tk, sides)
        else:
            cross = _crossing(x, w * g, sd, tk, sides)
        crit[k] = NO_BOUND if target <= 0 else _solve(cross, target)
        b = crit[k] * np.sqrt(tk) if np.isfinite(crit[k]) else TRUNCATE * np.sqrt(tk)
        lo = -b if sides == 2 else -TRUNCATE * np.sqrt(tk)
        hi = min(b, TRUNCATE * np.sqrt(tk))
        lo = max(lo, -TRUNCATE * np.sqrt(tk))
        nxt = sd if k + 1 == t.size else np.sqrt(max(t[k + 1] - tk, 1e-12))
        y, wy = _simpson(lo, hi, _points(hi - lo, min(sd, nxt)))
        if k == 0:
            g = stats.norm.pdf(y, scale=np.sqrt(tk))
        else:
            kern = stats.norm.pdf((y[:, None] - x[None, :]) / sd) / sd
            g = kern @ (w * g)
        x, w, prev = y, wy, tk
    return Boundaries(t, crit, cum, alpha, sides, spending)


def _first_crossing(t1: float, sides: int):  # type: ignore[no-untyped-def]
    def cross(c: float) -> float:
        return float(sides * stats.norm.sf(c))

    return cross


def _crossing(x: np.ndarray, mass: np.ndarray, sd: float, tk: float, sides: int):  # type: ignore[no-untyped-def]
    """Probability of first crossing at this look as a function of its critical value."""
    root = np.sqrt(tk)

    def cross(c: float) -> float:
        b = c * root
        up = stats.norm.sf((b - x) / sd)
        if sides == 2:
            up = up + stats.norm.cdf((-b - x) / sd)
        return float(mass @ up)

    return cross


def _solve(cross, target: float) -> float:  # type: ignore[no-untyped-def]
    """The critical value whose crossing probability is ``target``."""
    lo, hi = 0.0, 40.0
    if cross(hi) >= target:
        return hi
    if cross(lo) <= target:
        return lo
    return float(optimize.brentq(lambda c: cross(c) - target, lo, hi, xtol=1e-10))


def crossing_probability(
    fractions: Sequence[float] | np.ndarray,
    critical: Sequence[float] | np.ndarray,
    sides: int = 2,
    drift: float = 0.0,
) -> float:
    """Probability that a Brownian motion with ``drift`` (per unit information, on the z
    scale: ``E[Z_k] = drift sqrt(t_k)``) crosses the bounds at some look, by the same recursion.

    For a one-sided bound a benefit is a negative drift (``-Z`` crosses ``c``). With
    ``drift=0`` it is the overall type I error of the bounds.
    """
    t = np.minimum(np.asarray(fractions, dtype=float), 1.0)
    c = np.asarray(critical, dtype=float)
    mu = -drift if sides == 1 else drift
    total, prev = 0.0, 0.0
    x = w = g = np.empty(0)
    for k, tk in enumerate(t):
        sd = np.sqrt(tk - prev)
        b = c[k] * np.sqrt(tk) if np.isfinite(c[k]) else TRUNCATE * np.sqrt(tk) + abs(mu) * tk
        lo = -b if sides == 2 else -TRUNCATE * np.sqrt(tk) + mu * tk
        if k == 0:
            up = stats.norm.sf(b, loc=mu * tk, scale=sd)
            down = stats.norm.cdf(-b, loc=mu * tk, scale=sd) if sides == 2 else 0.0
            total += float(up + down) if np.isfinite(c[k]) else 0.0
        elif np.isfinite(c[k]):
            m = x + mu * (tk - prev)
            up = stats.norm.sf((b - m) / sd)
            if sides == 2:
                up = up + stats.norm.cdf((-b - m) / sd)
            total += float((w * g) @ up)
        y, wy = _simpson(lo, b, _points(b - lo, sd if k + 1 == t.size else np.sqrt(t[k + 1] - tk)))
        if k == 0:
            g = stats.norm.pdf(y, loc=mu * tk, scale=sd)
        else:
            kern = stats.norm.pdf((y[:, None] - x[None, :] - mu * (tk - prev)) / sd) / sd
            g = kern @ (w * g)
        x, w, prev = y, wy, tk
    return total


def planned_information(effect: float, alpha: float, power: float, sides: int = 2) -> float:
    """The information (``1 / se**2`` of the log rate ratio) a single final analysis needs to
    detect a rate ratio of ``1 + effect`` with ``power`` at level ``alpha``:
    ``((z_{1 - alpha/sides} + z_power) / log(1 + effect))**2``."""
    z = stats.norm.isf(alpha / sides) + stats.norm.ppf(power)
    return float((z / np.log1p(effect)) ** 2)
