"""The E-value (VanderWeele and Ding 2017) for a risk or rate ratio and its confidence interval.

The E-value is the minimum strength of association, on the risk ratio scale, that an unmeasured
confounder would need with both the exposure and the outcome, beyond the measured covariates, to
explain away an observed risk ratio: ``E = RR + sqrt(RR * (RR - 1))`` for ``RR >= 1``, and the
same of ``1 / RR`` for ``RR < 1``. The E-value of the confidence interval is that of the limit
closest to 1, and 1 when the interval includes 1.

VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the E-value.
Annals of Internal Medicine 2017;167(4):268-274. doi:10.7326/M16-2607.
"""

from __future__ import annotations

import math

from careval.errors import ConfigError


def _e(rr: float) -> float:
    r = rr if rr >= 1.0 else 1.0 / rr
    return r + math.sqrt(r * (r - 1.0))


def _check(name: str, value: float | None, limit: bool) -> None:
    """A ratio must be finite and positive; a limit may be 0 or infinite (a ratio's interval
    reaches them when a fit is separated and its standard error huge)."""
    if value is None:
        return
    if limit and not (value >= 0.0):  # NaN fails too
        raise ConfigError(f"e_value: {name} must be a ratio from 0 to infinity (got {value!r})")
    if not limit and not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"e_value: {name} must be a finite positive ratio (got {value!r})")


def e_value(rr: float, lo: float | None = None, hi: float | None = None) -> dict[str, float | None]:
    """E-value of a risk (or rate) ratio and of its confidence limit closest to 1.

    Parameters
    ----------
    rr : float
        Point estimate of the ratio (> 0).
    lo, hi : float, optional
        Confidence limits (``lo <= rr <= hi``; 0 and infinity allowed). For ``rr > 1`` the
        lower limit matters, for
        ``rr < 1`` the upper; a limit that is not given leaves ``e_value_ci`` as None.

    Returns
    -------
    dict
        ``rr``; ``e_value`` for the point estimate; ``e_value_ci`` for the limit closest to 1
        (1.0 when the interval includes 1, None when that limit is not given).

    Raises
    ------
    ConfigError
        A non-finite or non-positive ratio, a negative or missing limit, or limits that do not
        bracket ``rr``.
    """
    for name, value, limit in (("rr", rr, False), ("lo", lo, True), ("hi", hi, True)):
        _check(name, value, limit)
    if (lo is not None and lo > rr) or (hi is not None and hi < rr):
        raise ConfigError(f"e_value: the limits must bracket rr (got lo={lo}, rr={rr}, hi={hi})")
    ci: float | None
    if rr > 1.0:
        ci = None if lo is None else (1.0 if lo <= 1.0 else _e(lo))
    elif rr < 1.0:
        ci = None if hi is None else (1.0 if hi >= 1.0 else _e(hi))
    else:
        ci = 1.0
    return {"rr": float(rr), "e_value": _e(float(rr)), "e_value_ci": ci}
