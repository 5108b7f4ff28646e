"""How good is a risk score: discrimination, calibration and case-finding yield."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy.stats import norm, rankdata

TOP_SHARES = (0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class Discrimination:
    """AUC with its DeLong standard error and 95% CI."""

    auc: float
    se: float
    ci_low: float
    ci_high: float


def auc_delong(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> Discrimination:
    """AUC (Mann-Whitney, ties as half) and DeLong's variance via midranks (Sun and Xu 2014)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    pos, neg = p[y], p[~y]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise ValueError("AUC needs both outcomes present")
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos, r_neg = rankdata(pos), rankdata(neg)
    auc = (r_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (r_all[:m] - r_pos) / n  # structural components of the positives
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # and of the negatives
    se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
    z = norm.ppf(0.5 + level / 2)
    return Discrimination(
        float(auc), se, float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se))
    )


def calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration intercept (in the large, slope fixed at 1) and slope on the logit scale."""
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    lp = np.log(p / (1 - p))
    y = np.asarray(y, dtype=float)
    fam = sm.families.Binomial()
    slope = sm.GLM(y, sm.add_constant(lp), family=fam).fit().params[1]
    intercept = sm.GLM(y, np.ones_like(lp), family=fam, offset=lp).fit().params[0]
    return float(intercept), float(slope)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of the probabilities."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def top_share_yield(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """PPV and sensitivity when the top ``share`` of scores is flagged (ties broken by order)."""
    y = np.asarray(y).astype(bool)
    k = max(1, int(round(share * y.size)))
    top = np.argsort(-np.asarray(p, dtype=float), kind="stable")[:k]
    hits = int(y[top].sum())
    return hits / k, hits / max(int(y.sum()), 1)


def summarise_score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """All the figures reported for one score on one population."""
    d = auc_delong(y, p)
    intercept, slope = calibration(y, p)
    out = {
        "n": int(len(y)),
        "events": int(np.sum(y)),
        "auc": d.auc,
        "auc_ci_low": d.ci_low,
        "auc_ci_high": d.ci_high,
        "brier": brier(y, p),
        "calibration_intercept": intercept,
        "calibration_slope": slope,
    }
    for share in TOP_SHARES:
        ppv, sens = top_share_yield(y, p, share)
        tag = f"{share * 100:g}".replace(".", "_")
        out[f"ppv_top_{tag}pct"] = ppv
        out[f"sensitivity_top_{tag}pct"] = sens
    return out
