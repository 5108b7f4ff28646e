"""The interrupted time series of the monthly dementia diagnosis rate (OLS and Poisson, HAC)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from careval.indicators.readings import _month_date, _month_number
from careval.indicators.settings import COMPARATORS, IndicatorSettings


def newey_west_lags(n: int) -> int:
    """The Newey-West rule of thumb ``floor(4 (n / 100) ** (2 / 9))``."""
    return int(math.floor(4 * (n / 100) ** (2 / 9)))


def its_design(months: np.ndarray, start_month: int) -> pd.DataFrame:
    """Segmented-regression terms: const, time, post (level) and time since the start (slope)."""
    t = (months - months[0]).astype(float)
    post = (months >= start_month).astype(float)
    since = np.where(post > 0, months - start_month, 0).astype(float)
    return pd.DataFrame({"const": 1.0, "time": t, "level_change": post, "slope_change": since})


def _coefs(res: Any, exp: bool) -> dict[str, dict[str, float]]:
    ci = np.asarray(res.conf_int(0.05))
    names = {
        "const": "baseline_level",
        "time": "pre_slope",
        "level_change": "level_change",
        "slope_change": "slope_change",
    }
    out = {}
    for j, col in enumerate(res.model.exog_names):
        est, lo, hi = float(res.params.iloc[j]), float(ci[j, 0]), float(ci[j, 1])
        rec = {
            "estimate": est,
            "se": float(res.bse.iloc[j]),
            "ci_low": lo,
            "ci_high": hi,
            "p_value": float(res.pvalues.iloc[j]),
        }
        if exp:
            rec.update(
                rate_ratio=math.exp(est),
                rate_ratio_ci_low=math.exp(lo),
                rate_ratio_ci_high=math.exp(hi),
            )
        out[names[col]] = rec
    return out


def fit_its(
    series: pd.DataFrame, start_month: int, lags: int, poisson: bool = True
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Segmented regression of one monthly series.

    Parameters
    ----------
    series
        Columns ``month_number``, ``rate`` (per 1,000 a month) and, for the Poisson model,
        ``count`` and ``exposure`` (people registered on the first day).
    start_month
        Month number of the interruption (``year*12 + month - 1``).
    lags
        Newey-West maximum lag of the HAC standard errors.
    poisson
        Also fit the Poisson GLM of the counts with ``log(exposure)`` as offset.

    Returns
    -------
    tuple
        The coefficients (OLS on the rate, and Poisson rate ratios) and a frame of the observed,
        fitted and counterfactual (pre-programme line carried on) rates by month.
    """
    s = series.reset_index(drop=True)
    x = its_design(s.month_number.to_numpy(), start_month)
    y = s.rate.to_numpy(float)
    ols = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    pre = x.assign(level_change=0.0, slope_change=0.0)
    out: dict[str, Any] = {
        "months": int(len(s)),
        "months_before": int((x.level_change == 0).sum()),
        "months_after": int((x.level_change == 1).sum()),
        "ols": {
            "outcome": "new diagnoses per 1,000 registered a month",
            "standard_errors": f"Newey-West HAC (Bartlett kernel), maxlags={lags}",
            "coefficients": _coefs(ols, exp=False),
            "r_squared": float(ols.rsquared),
        },
        "mean_rate_before": float(y[x.level_change.to_numpy() == 0].mean()),
        "mean_rate_after": float(y[x.level_change.to_numpy() == 1].mean()),
    }
    fitted = pd.DataFrame(
        {
            "month_number": s.month_number,
            "observed": y,
            "fitted_ols": ols.predict(x),
            "counterfactual_ols": ols.predict(pre),
        }
    )
    counts = s["count"].to_numpy(float) if poisson else np.zeros(0)
    if counts.sum() > 0:
        try:
            glm = sm.GLM(
                counts,
                x,
                family=sm.families.Poisson(),
                offset=np.log(s.exposure.to_numpy(float)),
            ).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
            out["poisson"] = {
                "outcome": "new diagnoses, exposure: registered (log offset)",
                "standard_errors": f"Newey-West HAC (Bartlett kernel), maxlags={lags}",
                "coefficients": _coefs(glm, exp=True),
            }
            per = 1000.0 / s.exposure.to_numpy(float)
            fitted["fitted_poisson"] = glm.predict(x, offset=np.log(s.exposure)) * per
            fitted["counterfactual_poisson"] = glm.predict(pre, offset=np.log(s.exposure)) * per
        except (ValueError, OverflowError, np.linalg.LinAlgError) as exc:  # degenerate data
            out["poisson"] = {"skipped": f"Poisson fit failed ({exc})"}
    return out, fitted


def difference_name(programme: str) -> str:
    """The key of the programme-minus-comparators series (``"pilot_minus_comparators"``)."""
    return f"{programme}_minus_{COMPARATORS}"


def _its(
    monthly: pd.DataFrame, st: IndicatorSettings, warnings: list[str], programme: str
) -> tuple[dict[str, Any], pd.DataFrame]:
    """ITS of the programme's (series ``programme``) and the pooled comparators' rates and of
    their difference (:func:`difference_name`)."""
    difference = difference_name(programme)
    start = _month_number(st.programme_start)
    age = st.dementia_min_age
    out: dict[str, Any] = {
        "programme_start": st.programme_start.isoformat(),
        "model": "rate = b0 + b1 time + b2 post + b3 months_since_start x post (post: from the "
        "programme start); level change b2, slope change b3 a month; rates per 1,000 "
        f"registered aged {age}+ a month",
        "series": {
            programme: "the pilot's rate",
            COMPARATORS: "the comparison areas' pooled rate (a control series)",
            difference: "the pilot's rate minus the comparators' (a controlled "
            "ITS: changes common to both areas cancel); OLS only",
        },
    }
    fitted = []
    series: dict[str, pd.DataFrame] = {}
    for area in (programme, COMPARATORS):
        s = monthly[monthly.area == area]
        series[area] = pd.DataFrame(
            {
                "month_number": s.month_number.to_numpy(),
                "rate": s.rate_per_1000.to_numpy(),
                "count": s.new_diagnoses.to_numpy(),
                "exposure": s.registered.to_numpy(),
            }
        )
    both = series[programme].merge(series[COMPARATORS], on="month_number", suffixes=("", "_c"))
    both = both[(both.exposure > 0) & (both.exposure_c > 0)]
    series[difference] = pd.DataFrame(
        {"month_number": both.month_number, "rate": both.rate - both.rate_c}
    )
    for name, s in series.items():
        if "exposure" in s:
            s = s[s.exposure > 0]
        before = int((s.month_number < start).sum())
        after = int((s.month_number >= start).sum())
        if min(before, after) < st.min_its_months:
            warnings.append(
                f"dementia ITS for {name} skipped: {before} months before and {after} from "
                f"{st.programme_start} (needs {st.min_its_months} each side)"
            )
            continue
        lags = st.hac_lags if st.hac_lags is not None else newey_west_lags(len(s))
        res, fit = fit_its(s, start, lags, poisson="count" in s)
        res["hac_lags"] = lags
        out[name] = res
        fit.insert(0, "series", name)
        fit.insert(0, "month", [_month_date(int(x)) for x in fit.month_number])
        fitted.append(fit)
    frame = pd.concat(fitted, ignore_index=True) if fitted else pd.DataFrame()
    return out, frame
