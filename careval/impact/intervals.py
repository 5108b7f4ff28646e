"""A log-scale estimate with its 95% interval, test and the ratio they exponentiate to."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


def log_ratio(est: float, se: float, ratio: str = "rate_ratio") -> dict[str, Any]:
    """``estimate``, ``se``, the Wald ``ci_low``/``ci_high`` and two-sided ``p_value`` of a
    log ratio, and the ratio with its interval as ``<ratio>``, ``<ratio>_ci_low`` and
    ``<ratio>_ci_high`` (``ratio``: ``rate_ratio``, ``hazard_ratio``, ...). The p-value is NaN
    when ``se`` is 0."""
    lo, hi = est - Z95 * se, est + Z95 * se
    return {
        "estimate": est,
        "se": se,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else float("nan"),
        ratio: float(np.exp(est)),
        f"{ratio}_ci_low": float(np.exp(lo)),
        f"{ratio}_ci_high": float(np.exp(hi)),
    }
