"""How many care plans the synthetic pilot makes each month.

The mean follows the seed's ramp (:data:`~careval.synthetic.settings.CARE_PLAN_RAMP`, a share
of the eligible at launch each month, then :data:`~careval.synthetic.settings.
CARE_PLAN_STEADY`), with fewer plans in the holiday months (:data:`HOLIDAYS`, by calendar
month). The dips are spread back over their stretch so that the seed's totals hold in
expectation: the plans to December 2011 (the seed's 1,494 at the default size), those of
January to April 2012 (about 30% covered by April) and a steady year's 12 x 1.2%. Each
month's count is then drawn as gamma-Poisson (negative binomial): a month's underlying
activity varies by a coefficient of variation ``1 / sqrt(DISPERSION)`` (10%) around its mean
(staff leave, MDG meetings moved), and plans arrive as Poisson events at that rate; the
programme's first month (``SynthSettings.programme_start``) has at least one.
"""

from __future__ import annotations

import numpy as np

from careval.synthetic.settings import (
    CARE_PLAN_RAMP,
    CARE_PLAN_STEADY,
    SynthSettings,
    month_text,
    parse_month,
)

HOLIDAYS = {8: 0.8, 12: 0.75}  # calendar month -> relative activity (summer, Christmas)
DISPERSION = 100.0  # gamma shape of a month's activity: CV 1/sqrt(100) = 10%
RAMP_BREAK = "2011-12"  # the ramp's first stretch ends here (the seed's 1,494 plans)


def holiday_factor(calendar_month: np.ndarray) -> np.ndarray:
    """Relative activity by calendar month (1-12): :data:`HOLIDAYS`, 1 elsewhere."""
    out = np.ones(np.shape(calendar_month))
    for month, f in HOLIDAYS.items():
        out = np.where(np.asarray(calendar_month) == month, f, out)
    return out


def mean_plans(s: SynthSettings, n_eligible: int) -> np.ndarray:
    """Expected care plans in each window month (0 before the first)."""
    t, first = s.n_months, s.first_month
    m = np.arange(s.care_plans_from, t)
    seed_months = [month_text(int(x)) for x in first - s.programme_offset + m]
    share = np.array([CARE_PLAN_RAMP.get(k, CARE_PLAN_STEADY) for k in seed_months])
    h = holiday_factor((first + m) % 12 + 1)
    stretch = np.array(
        [0 if k <= RAMP_BREAK else 1 if k in CARE_PLAN_RAMP else 2 for k in seed_months]
    )
    norm = np.ones(m.size)
    for k in (0, 1):  # each stretch of the ramp keeps its total
        on = stretch == k
        if on.any():
            norm[on] = share[on].sum() / (share[on] * h[on]).sum()
    norm[stretch == 2] = 1 / holiday_factor(np.arange(1, 13)).mean()  # a steady year's total
    out = np.zeros(t)
    out[m] = n_eligible * share * h * norm
    return out


def monthly_plans(s: SynthSettings, n_eligible: int, rng: np.random.Generator) -> np.ndarray:
    """Care plans to make in each window month: gamma-Poisson around :func:`mean_plans`."""
    mean = mean_plans(s, n_eligible)
    activity = rng.gamma(DISPERSION, np.maximum(mean, 1e-12) / DISPERSION)
    out = np.where(mean > 0, rng.poisson(activity), 0).astype(np.int64)
    out[s.care_plans_from] = max(out[s.care_plans_from], 1)  # the month of the first plans
    return out


def ramp_end(s: SynthSettings) -> int:
    """Window month of the ramp's last month (the seed's April 2012)."""
    return parse_month(max(CARE_PLAN_RAMP), "ramp") + s.programme_offset - s.first_month
