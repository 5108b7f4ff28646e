"""The matched study's residual bias: negative controls, empirical calibration, and the
diagnostics that gate each estimate.

1. Every negative-control outcome (:mod:`careval.impact.controls`) is estimated exactly as the
   study's outcomes are, on the same matched panel; each count outcome also gives a placebo
   estimate at a fake start before entry (:func:`careval.impact.checks.placebo`).
2. Their log rate ratios and standard errors fit the empirical null distribution (Schuemie et
   al. 2014; :func:`careval.impact.calibration.fit_null`): the systematic error the design
   leaves. Every count outcome then has a calibrated interval and p-value beside its own, and
   the study its expected absolute systematic error (EASE).
3. Each outcome is checked against the thresholds of
   :class:`~careval.impact.diagnostics.DiagnosticSettings`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.impact import calibration
from careval.impact.checks import placebo, pretrend
from careval.impact.diagnostics import diagnose, mdrr
from careval.impact.evalue import e_value
from careval.impact.fe import LOG_LINK
from careval.impact.outcomes import fit_outcome
from careval.impact.parallel import each
from careval.impact.settings import ImpactSettings, OutcomeSettings

COUNT_MODELS = LOG_LINK  # outcomes estimated as rate ratios


def _row(name: str, label: str, kind: str, est: dict[str, Any]) -> dict[str, Any]:
    keep = ("estimate", "se", "ci_low", "ci_high", "p_value", "rate_ratio")
    row: dict[str, Any] = {"name": name, "label": label, "kind": kind}
    row.update({k: est.get(k) for k in keep})
    row["rate_ratio_ci_low"] = est.get("rate_ratio_ci_low")
    row["rate_ratio_ci_high"] = est.get("rate_ratio_ci_high")
    return row


def negative_controls(
    panel: pd.DataFrame,
    st: ImpactSettings,
    results: dict[str, dict[str, Any]],
    measured: set[str],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Estimates of the negative controls (an outcome of the study reused when it is defined
    the same) and the placebo estimates of the study's count outcomes; and the controls not
    estimated, with the reason."""
    rows, skipped = [], {}
    by_name = {o.name: o for o in st.outcomes}
    reused = {
        o.name for o in st.negative_controls if o.name in results and by_name.get(o.name) == o
    }
    to_fit = [o for o in st.negative_controls if o.name not in reused and o.name in measured]

    def control(o: OutcomeSettings) -> dict[str, Any] | str:
        try:
            return fit_outcome(panel, o)
        except ValueError as exc:  # a ConfigError, or a singular fit
            return str(exc).splitlines()[0]

    counts = [n for n in results if by_name[n].model in COUNT_MODELS]

    def fake_start(name: str) -> dict[str, Any] | None:
        try:
            return placebo(panel, name, by_name[name].model, st)
        except ValueError:
            return None

    # side by side (careval.impact.parallel)
    fitted = dict(zip([o.name for o in to_fit], each(control, to_fit), strict=True))
    fakes = each(fake_start, counts)
    for o in st.negative_controls:
        if o.name in reused:
            rows.append(_row(o.name, o.title, "outcome", results[o.name]))
        elif o.name not in measured:
            skipped[o.name] = "its table is not in the data or has no rows"
        elif isinstance(got := fitted[o.name], str):
            skipped[o.name] = got
        else:
            rows.append(_row(o.name, o.title, "outcome", got))
    for name, p in zip(counts, fakes, strict=True):
        o = by_name[name]
        if p is not None:
            label = f"{o.title}: placebo start {p['fake_start_months_before_entry']} months early"
            rows.append(_row(f"placebo_{name}", label, "placebo", p))
    return [r for r in rows if _usable(r)], skipped


def _usable(row: dict[str, Any]) -> bool:
    se = row.get("se")
    return (
        isinstance(se, float)
        and math.isfinite(se)
        and se > 0
        and isinstance(row.get("rate_ratio"), float)
    )


def empirical_null(controls: list[dict[str, Any]]) -> dict[str, Any]:
    """The fitted systematic-error distribution and EASE, or ``fitted`` False with the reason
    when there are too few negative controls."""
    log_rr = np.array([r["estimate"] for r in controls], dtype=float)
    se = np.array([r["se"] for r in controls], dtype=float)
    try:
        null = calibration.fit_null(log_rr, se)
    except ConfigError as exc:
        return {"fitted": False, "n_controls": len(controls), "reason": str(exc)}
    return {
        "fitted": True,
        "n_controls": len(controls),
        "mean": float(null.mean),
        "sd": float(null.sd),
        "ease": float(calibration.ease(null)),
        "_null": null,
    }


def calibrate(est: dict[str, Any], null_info: dict[str, Any]) -> dict[str, Any] | None:
    """The calibrated rate ratio interval and p-value of one count estimate (None without a
    fitted null)."""
    null = null_info.get("_null")
    if null is None or not isinstance(est.get("se"), float):
        return None
    b, se = float(est["estimate"]), float(est["se"])
    lo, hi = (float(np.ravel(v)[0]) for v in calibration.calibrate_ci(null, b, se))
    return {
        "rate_ratio_ci_low": math.exp(lo),
        "rate_ratio_ci_high": math.exp(hi),
        "p_value": float(np.ravel(calibration.calibrate_p(null, b, se))[0]),
    }


def assess(
    panel: pd.DataFrame,
    st: ImpactSettings,
    results: dict[str, dict[str, Any]],
    null_info: dict[str, Any],
    study_level: dict[str, float],
) -> None:
    """Add to each outcome's estimate its pre-trend test, calibrated interval, E-value and
    diagnostics (in place). ``study_level`` holds the design's own diagnostics: ``max_abs_smd``,
    ``equipoise`` and ``median_follow_up``."""
    by_name = {o.name: o for o in st.outcomes}

    def trend(name: str) -> dict[str, Any]:
        try:
            return pretrend(panel, name, by_name[name].model, st)
        except ValueError:
            return {"statistic": None, "df": 0, "p_value": None, "bins": 0, "max_change": None}

    trends = each(trend, list(results))  # side by side (careval.impact.parallel)
    for (name, est), tested in zip(results.items(), trends, strict=True):
        o: OutcomeSettings = by_name[name]
        est["pretrend"] = tested
        count = o.model in COUNT_MODELS
        if count:
            est["calibrated"] = calibrate(est, null_info)
            est["e_value"] = e_value(
                est["rate_ratio"], est["rate_ratio_ci_low"], est["rate_ratio_ci_high"]
            )
        values = {
            **study_level,
            "mdrr": mdrr(est["se"]) if count else math.nan,
            "ease": null_info.get("ease", math.nan),
            "pretrend_p": est["pretrend"].get("p_value"),
            "pretrend_change": est["pretrend"].get("max_change"),
        }
        est["diagnostics"] = diagnose(values, st.diagnostics)


def public(null_info: dict[str, Any]) -> dict[str, Any]:
    """The null's summary without the fitted object."""
    return {k: v for k, v in null_info.items() if not k.startswith("_")}
