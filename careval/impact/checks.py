"""Checks of the matched study's design on the months before entry: the pre-trend test and the
placebo (fake programme start).

Both use only months before entry, when nobody had been treated, so any contrast between the
treated and their matched controls there is bias, not effect. The pre-trend test fits the
event study's pre-entry bins (treated-arm contrast per bin of ``event_bin_months``, the bin just
before entry the reference) and tests them jointly; the placebo moves the start to
``placebo_months`` before entry and estimates the usual contrast of after against before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careval.impact.diagnostics import wald_test
from careval.impact.fe import LOG_LINK, Model
from careval.impact.outcomes import coef, fit_matched, fit_matched_vcov, subset
from careval.impact.settings import ImpactSettings

MIN_PLACEBO_MONTHS = 6  # months needed on each side of the fake start


def placebo_months(settings: ImpactSettings) -> int:
    """Months before entry of the fake start: half the history the panel keeps."""
    return settings.pre_months // 2


def pretrend(
    panel: pd.DataFrame,
    outcome: str,
    model: Model,
    settings: ImpactSettings,
) -> dict[str, Any]:
    """Joint Wald test that the treated-arm contrasts of the pre-entry bins are all zero.

    Returns ``statistic``, ``df``, ``p_value`` and ``bins`` (the number of contrasts); with
    fewer than two pre-entry bins, NaN and ``df`` 0.
    """
    width = settings.event_bin_months
    mask = (panel.k < 0).to_numpy()
    sub = subset(panel, mask, [outcome])
    b = np.floor_divide(sub.k.to_numpy(), width)
    bins = sorted(set(b.tolist()) - {-1})
    if not bins:
        nan = float("nan")
        return {"statistic": nan, "df": 0, "p_value": nan, "bins": 0, "max_change": nan}
    d = sub  # its own copy of the columns the fit needs
    tr = d.treated.to_numpy()
    regs, contrasts = [], []
    for bb in bins:
        ind = (b == bb).astype(float)
        d[f"b_{-bb}"] = ind
        d[f"bt_{-bb}"] = ind * tr
        regs.append(f"b_{-bb}")
        contrasts.append(f"bt_{-bb}")
    fit, terms, v = fit_matched_vcov(d, outcome, [*regs, *contrasts], model)
    coefs = fit.coefficients.set_index("term")
    beta = np.array([coefs.loc[t, "estimate"] for t in terms])
    pick = [i for i, t in enumerate(terms) if t.startswith("bt_")]
    out = wald_test(beta[pick], v[np.ix_(pick, pick)])
    out["bins"] = len(pick)
    out["max_change"] = _largest_change(beta[pick], model, d, outcome)
    return out


def _largest_change(contrasts: np.ndarray, model: Model, d: pd.DataFrame, outcome: str) -> float:
    """The largest pre-entry difference between the arms as a share: ``|rate ratio - 1|`` for
    a count, ``|difference|`` over the treated arm's pre-entry mean for a linear outcome (NaN
    when that mean is 0)."""
    if contrasts.size == 0:
        return float("nan")
    if model in LOG_LINK:
        return float(np.max(np.abs(np.expm1(contrasts))))
    mean = float(d.loc[d.treated == 1, outcome].mean())
    return float(np.max(np.abs(contrasts)) / abs(mean)) if mean else float("nan")


def placebo(
    panel: pd.DataFrame,
    outcome: str,
    model: Model,
    settings: ImpactSettings,
) -> dict[str, Any] | None:
    """The contrast at a fake start :func:`placebo_months` before entry, on pre-entry months
    only (its true effect is nil); None when the panel keeps too little history for it."""
    fake = placebo_months(settings)
    if fake < MIN_PLACEBO_MONTHS or settings.pre_months - fake < MIN_PLACEBO_MONTHS:
        return None
    sub = subset(panel, (panel.k < 0).to_numpy(), [outcome])
    sub["after"] = (sub.k >= -fake).astype(float)
    sub["after_treated"] = sub.after * sub.treated
    if not sub[outcome].any():
        return None
    fit = fit_matched(sub, outcome, ["after", "after_treated"], model)
    if "after_treated" not in set(fit.coefficients.term):  # dropped: a rare outcome separated
        return None
    out = coef(fit, "after_treated")
    out["fake_start_months_before_entry"] = fake
    out["model"] = model
    return out
