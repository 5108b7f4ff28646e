"""How good is a risk score: discrimination, calibration and case-finding yield."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import norm, rankdata

TOP_SHARES = (0.005, 0.01, 0.02, 0.05)
SUBGROUP_SHARES = (0.01, 0.05)  # shares flagged in the subgroup table


@dataclass(frozen=True)
class Discrimination:
    """AUC with its DeLong standard error and 95% CI."""

    auc: float
    se: float
    ci_low: float
    ci_high: float


def _delong_components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and its structural components over the positives and the negatives (midranks)."""
    pos, neg = p[y], p[~y]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise ValueError("AUC needs both outcomes present")
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos, r_neg = rankdata(pos), rankdata(neg)
    auc = (r_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (r_all[:m] - r_pos) / n  # structural components of the positives
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # and of the negatives
    return float(auc), v10, v01


def auc_delong(y: np.ndarray, p: np.ndarray, level: float = 0.95) -> Discrimination:
    """AUC (Mann-Whitney, ties as half) and DeLong's variance via midranks (Sun and Xu 2014)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    auc, v10, v01 = _delong_components(y, p)
    m, n = v10.size, v01.size
    se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
    z = norm.ppf(0.5 + level / 2)
    return Discrimination(
        float(auc), se, float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se))
    )


@dataclass(frozen=True)
class AucDifference:
    """Difference of two AUCs on the same people (second minus first), DeLong paired test."""

    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def auc_difference_delong(
    y: np.ndarray, p_first: np.ndarray, p_second: np.ndarray, level: float = 0.95
) -> AucDifference:
    """DeLong's test of two correlated AUCs (both scores on the same people).

    Parameters
    ----------
    y
        0/1 outcomes.
    p_first, p_second
        The two scores of each person.
    level
        Confidence level of the interval.

    Returns
    -------
    AucDifference
        ``AUC(p_second) - AUC(p_first)`` with its standard error, CI and two-sided p-value.
    """
    y = np.asarray(y).astype(bool)
    a1, v10_1, v01_1 = _delong_components(y, np.asarray(p_first, dtype=float))
    a2, v10_2, v01_2 = _delong_components(y, np.asarray(p_second, dtype=float))
    s10 = np.cov(np.vstack([v10_1, v10_2]), ddof=1)
    s01 = np.cov(np.vstack([v01_1, v01_2]), ddof=1)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / v10_1.size + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / v01_1.size
    se = float(np.sqrt(max(var, 0.0)))
    diff = a2 - a1
    z = norm.ppf(0.5 + level / 2)
    p_value = float(2 * norm.sf(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return AucDifference(float(diff), se, float(diff - z * se), float(diff + z * se), p_value)


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


def top_flags(p: np.ndarray, share: float) -> np.ndarray:
    """Boolean flags of the top ``share`` of scores: ``round(share * n)`` people, at least one.

    Ties at the threshold are broken by order (the first listed is flagged), so exactly that
    many are flagged whatever the ties.
    """
    p = np.asarray(p, dtype=float)
    k = max(1, int(round(share * p.size)))
    flags = np.zeros(p.size, dtype=bool)
    flags[np.argsort(-p, kind="stable")[:k]] = True
    return flags


def top_share_yield(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """PPV and sensitivity when the top ``share`` of scores is flagged (ties broken by order)."""
    y = np.asarray(y).astype(bool)
    flags = top_flags(p, share)
    hits = int(y[flags].sum())
    return hits / int(flags.sum()), hits / max(int(y.sum()), 1)


def summarise_score(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
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
        tag = share_tag(share)
        out[f"ppv_top_{tag}pct"] = ppv
        out[f"sensitivity_top_{tag}pct"] = sens
    return out


def share_tag(share: float) -> str:
    """``0.005`` -> ``"0_5"``, ``0.01`` -> ``"1"``: the suffix of ``ppv_top_<tag>pct``."""
    return f"{share * 100:g}".replace(".", "_")


def subgroup_table(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[tuple[str, str, np.ndarray]],
    shares: Sequence[float] = SUBGROUP_SHARES,
) -> pd.DataFrame:
    """Validation figures of one score within subgroups of the people scored.

    The case-finding figures use one list for everyone: the top ``share`` of the **whole**
    population is flagged (as a programme would flag it), and then, within each subgroup,
    ``ppv`` is the share of its flagged people admitted and ``sensitivity`` the share of its
    admitted people flagged. A subgroup the list passes over (the young, say) thus shows a low
    sensitivity and few ``flagged``, which the subgroup's own top ``share`` would hide.

    Parameters
    ----------
    y
        0/1 outcomes of everyone scored.
    p
        Their scores.
    groups
        ``(dimension, group, mask)`` for each row of the table, ``mask`` selecting the people.
    shares
        Shares of the whole population flagged.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``dimension``, ``group``, ``people``, ``events``, ``flagged_top_<t>pct``
        per share, ``auc`` with ``auc_ci_low``/``auc_ci_high`` (DeLong), ``calibration_slope``,
        ``calibration_intercept``, ``brier``, and ``ppv_top_<t>pct``/``sensitivity_top_<t>pct``
        per share. Figures that cannot be computed (no events, nobody flagged) are ``None``.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    flags = {s: top_flags(p, s) for s in shares}
    rows = []
    for dimension, group, mask in groups:
        mask = np.asarray(mask, dtype=bool)
        yg, pg = y[mask], p[mask]
        events = int(yg.sum())
        row: dict[str, Any] = {
            "dimension": dimension,
            "group": group,
            "people": int(mask.sum()),
            "events": events,
        }
        for s in shares:
            row[f"flagged_top_{share_tag(s)}pct"] = int(flags[s][mask].sum())
        row.update(auc=None, auc_ci_low=None, auc_ci_high=None)
        row.update(calibration_slope=None, calibration_intercept=None, brier=None)
        if 0 < events < yg.size:
            d = auc_delong(yg, pg)
            row.update(auc=d.auc, auc_ci_low=d.ci_low, auc_ci_high=d.ci_high)
            cal = _quiet_calibration(yg, pg)
            if cal is not None:
                row.update(calibration_intercept=cal[0], calibration_slope=cal[1])
        if yg.size:
            row["brier"] = brier(yg, pg)
        for s in shares:
            fg = flags[s][mask]
            hits = int(yg[fg].sum())
            tag = share_tag(s)
            row[f"ppv_top_{tag}pct"] = hits / int(fg.sum()) if fg.any() else None
            row[f"sensitivity_top_{tag}pct"] = hits / events if events else None
        rows.append(row)
    return pd.DataFrame(rows)


def _quiet_calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float] | None:
    """:func:`calibration`, or ``None`` when its fits warn (no convergence, separation) or fail."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            intercept, slope = calibration(y, p)
        except (ValueError, np.linalg.LinAlgError):
            return None
    if caught or not (np.isfinite(slope) and np.isfinite(intercept)):
        return None
    return intercept, slope
