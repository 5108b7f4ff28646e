"""The before/after tests: paired and Welch t-tests, McNemar's test, two proportions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest


def _nan_stats() -> dict[str, Any]:
    return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan}


def _paired_means(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """Paired t-test of after - before (``scipy.stats.ttest_rel``)."""
    n = before.size
    row: dict[str, Any] = {"n_before": n, "n_after": n, **_nan_stats()}
    row.update(before=math.nan, after=math.nan, change=math.nan)  # no pairs: no means
    if n:
        row.update(before=float(before.mean()), after=float(after.mean()))
        row["change"] = row["estimate"] = row["after"] - row["before"]
    d = after - before
    if n >= 2 and np.ptp(d) > 0:
        row.update(_t_test(stats.ttest_rel(after, before)))
    return row


def _welch(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Welch t-test of mean(a) - mean(b) (``scipy.stats.ttest_ind``, unequal variances)."""
    row: dict[str, Any] = _nan_stats()
    if a.size and b.size:
        row["estimate"] = float(a.mean() - b.mean())
    if a.size >= 2 and b.size >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
        row.update(_t_test(stats.ttest_ind(a, b, equal_var=False)))
    return row


def _t_test(res: Any) -> dict[str, float]:
    """The 95% interval, statistic and p-value of a scipy t-test result."""
    ci = res.confidence_interval(0.95)
    return {
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
    }


def mcnemar_test(before: np.ndarray, after: np.ndarray, exact_below: int) -> dict[str, Any]:
    """McNemar's test of paired in-control flags (exact when discordant pairs < exact_below).

    Returns the 2x2 counts (``both``, ``before_only``, ``after_only``, ``neither``), the test's
    name, statistic (the smaller discordant count when exact, else chi-square) and p-value.
    """
    b = before.astype(bool)
    a = after.astype(bool)
    table = np.array([[np.sum(b & a), np.sum(b & ~a)], [np.sum(~b & a), np.sum(~b & ~a)]])
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < exact_below
    out: dict[str, Any] = {
        "both": int(table[0, 0]),
        "before_only": int(table[0, 1]),
        "after_only": int(table[1, 0]),
        "neither": int(table[1, 1]),
        "test": (
            "McNemar exact (binomial), statsmodels"
            if exact
            else "McNemar chi-square with continuity correction, statsmodels"
        ),
    }
    if discordant == 0:
        out.update(statistic=math.nan, p_value=1.0)
        return out
    res = mcnemar(table, exact=exact, correction=True)
    out.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return out


def _two_proportions(after: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """Unpaired two-proportion z-test (``proportions_ztest``) and a Wald CI of the change."""
    row: dict[str, Any] = {"n_before": before.size, "n_after": after.size, **_nan_stats()}
    if not (before.size and after.size):
        return row
    p1, p0 = float(after.mean()), float(before.mean())
    row.update(before=p0, after=p1, change=p1 - p0, estimate=p1 - p0)
    pooled = (after.sum() + before.sum()) / (after.size + before.size)
    if 0 < pooled < 1:
        z, p = proportions_ztest(
            np.array([after.sum(), before.sum()]), np.array([after.size, before.size])
        )
        se = math.sqrt(p1 * (1 - p1) / after.size + p0 * (1 - p0) / before.size)
        q = float(stats.norm.ppf(0.975))
        row.update(
            statistic=float(z),
            p_value=float(p),
            ci_low=row["estimate"] - q * se,
            ci_high=row["estimate"] + q * se,
        )
    return row
