"""Survey statistics: Wilson score intervals, Kish's effective n, tests of independence.

Pearson's chi-square test of independence (no continuity correction) when every expected count
is at least 5, otherwise Fisher's exact test (2 x 2 tables) or the Fisher-Freeman-Halton exact
test by Monte Carlo (larger tables; 9,999 random tables, fixed seed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054
MIN_EXPECTED = 5.0
MONTE_CARLO_TABLES = 9_999
MONTE_CARLO_SEED = 20111


def wilson_interval(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``p`` from an (effective) sample size ``n``.

    Parameters
    ----------
    p : float
        Observed proportion, 0 to 1.
    n : float
        Sample size (may be an effective, non-integer size); ``inf`` gives ``(p, p)``.
    z : float
        Normal quantile (1.96 for 95%).

    Returns
    -------
    tuple of float
        Lower and upper limits.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(0.5, 100)]
    [0.4038, 0.5962]
    """
    if n <= 0 or not math.isfinite(p):
        return (math.nan, math.nan)
    if math.isinf(n):
        return (p, p)
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def effective_n(weights: np.ndarray, population: int | None = None) -> float:
    """Kish's effective sample size, divided by the finite population correction if given."""
    w = np.asarray(weights, float)
    if w.size == 0 or w.sum() <= 0:
        return 0.0
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    if population:
        n = w.size
        if n >= population:
            return math.inf
        n_eff /= (population - n) / (population - 1)
    return n_eff


def contingency_test(table: np.ndarray) -> dict[str, Any]:
    """Chi-square or Fisher test of independence for a table of counts (rows x columns).

    Pearson's chi-square (no continuity correction) when every expected count is at least 5;
    otherwise Fisher's exact test for a 2 x 2 table, or the Fisher-Freeman-Halton exact test by
    Monte Carlo (9,999 tables, fixed seed) for a larger one.

    Returns
    -------
    dict
        ``test``, ``statistic`` (chi-square, or the odds ratio for 2 x 2 Fisher, or None),
        ``dof``, ``p_value``, ``min_expected``.
    """
    from scipy import stats

    t = np.asarray(table, dtype=np.int64)
    expected = stats.contingency.expected_freq(t)
    min_exp = float(expected.min())
    if min_exp >= MIN_EXPECTED:
        res = stats.chi2_contingency(t, correction=False)
        return {
            "test": "Pearson chi-square",
            "statistic": float(res.statistic),
            "dof": int(res.dof),
            "p_value": float(res.pvalue),
            "min_expected": min_exp,
        }
    if t.shape == (2, 2):
        odds, p = stats.fisher_exact(t)
        return {
            "test": "Fisher's exact test",
            "statistic": float(odds),
            "dof": None,
            "p_value": float(p),
            "min_expected": min_exp,
        }
    method = stats.MonteCarloMethod(
        n_resamples=MONTE_CARLO_TABLES, rng=np.random.default_rng(MONTE_CARLO_SEED)
    )
    res = stats.fisher_exact(t, method=method)
    return {
        "test": "Fisher-Freeman-Halton exact test (Monte Carlo, 9,999 tables)",
        "statistic": None,
        "dof": None,
        "p_value": float(np.asarray(res.pvalue).ravel()[0]),  # scipy may return shape (1,)
        "min_expected": min_exp,
    }
