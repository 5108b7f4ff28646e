"""Covariate balance before and after matching, and the matched ATT of an outcome.

Standardised mean differences follow MatchIt and cobalt for the ATT: the (weighted) difference
in means divided by the treated group's standard deviation in the unmatched sample (``sd`` with
n-1 for continuous covariates, ``sqrt(p(1-p))`` for 0/1 ones), the same divisor before and
after matching, so the two columns are comparable. Above 0.1 in absolute value is flagged, the
threshold the seed evaluation and most of the literature use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.errors import ConfigError

SMD_THRESHOLD = 0.1


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    s = w.sum()
    return float((x * w).sum() / s) if s > 0 else float("nan")


def balance_table(
    df: pd.DataFrame,
    treatment: str,
    covariates: list[str],
    weights: np.ndarray,
    threshold: float = SMD_THRESHOLD,
) -> pd.DataFrame:
    """One row per covariate: means, SMD before and after, variance ratio after, flag.

    ``weights`` are the matching weights per row of ``df`` (0 for unmatched rows).
    """
    t = df[treatment].to_numpy() == 1
    w = np.asarray(weights, dtype=float)
    rows = []
    for c in covariates:
        x = df[c].to_numpy(dtype=float)
        xt, xc = x[t], x[~t]
        binary = bool(np.isin(np.unique(x[np.isfinite(x)]), (0.0, 1.0)).all())
        if binary:
            p = xt.mean()
            sd = float(np.sqrt(p * (1 - p)))
        else:
            sd = float(np.std(xt, ddof=1)) if xt.size > 1 else float("nan")
        mt, mc = float(xt.mean()), float(xc.mean())
        mt_after = _wmean(xt, w[t])
        mc_after = _wmean(xc, w[~t])
        smd_before = (mt - mc) / sd if sd > 0 else 0.0
        smd_after = (mt_after - mc_after) / sd if sd > 0 else 0.0
        if binary:
            vr = float("nan")
        else:
            vt = np.cov(xt, aweights=w[t]) if (w[t] > 0).sum() > 1 else float("nan")
            vc = np.cov(xc, aweights=w[~t]) if (w[~t] > 0).sum() > 1 else float("nan")
            vr = float(vt / vc) if vc and vc > 0 else float("nan")
        rows.append(
            {
                "covariate": c,
                "type": "binary" if binary else "continuous",
                "mean_treated": mt,
                "mean_control_before": mc,
                "smd_before": smd_before,
                "mean_treated_after": mt_after,
                "mean_control_after": mc_after,
                "smd_after": smd_after,
                "variance_ratio_after": vr,
                "imbalanced_after": bool(abs(smd_after) > threshold),
            }
        )
    return pd.DataFrame(rows)


def matched_att(
    y: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray,
    subclass: np.ndarray | None,
    replace: bool,
) -> dict[str, Any]:
    """ATT as the weighted difference in means of ``y`` over the matched sample.

    Standard error as MatchIt's vignettes recommend: cluster-robust on the matched pair or set
    (HC1-type adjustment, as ``sandwich::vcovCL``) without replacement; HC3 with replacement.
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=float)
    keep = np.asarray(weights) > 0
    if not np.isfinite(y[keep]).all():
        raise ConfigError(f"the outcome has {int((~np.isfinite(y[keep])).sum())} missing values")
    t = np.asarray(treated, dtype=float)[keep]
    if t.min() == t.max():
        raise ConfigError("no matched pairs: the ATT needs matched treated and control units")
    x = sm.add_constant(t, has_constant="add")
    model = sm.WLS(y[keep], x, weights=np.asarray(weights)[keep])
    if replace or subclass is None:
        fit = model.fit(cov_type="HC3")
        se_type = "HC3 (matching with replacement)"
    else:
        groups = np.asarray(subclass)[keep]
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
        se_type = "cluster-robust on the matched set (HC1-type small-sample adjustment)"
    est, se = float(fit.params[1]), float(fit.bse[1])
    df_resid = float(fit.df_resid)
    z = stats.norm.ppf(0.975)
    return {
        "estimate": est,
        "se": se,
        "ci_low": est - z * se,
        "ci_high": est + z * se,
        "p_value": float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan"),
        "se_type": se_type,
        "df_resid": df_resid,
    }
