"""The truth behind Table 2: ``truth.json``'s ``area_trends`` object.

Each person-month's emergency rate is ``case mix x hold factor x exp(trend x years from
launch) x season x transient shock`` (:func:`careval.synthetic.activity.emergency_panel`),
then in the pilot the care plans' effect (and any hidden decline) from their months on. The
object records what a reader needs to compute the change Table 2 estimates for any start date
(:func:`careval.monitoring.truth.expected_area_changes`): the designed log trends and season,
what is held constant, the expected admissions without shocks or plans in each area,
eligibility group and month, the person-months Table 2 counts in each (registered and alive on
the month's first day), and month by month the factor by which the pilot's plans multiply each
group's expected admissions (the treated's share of them weighted by their effect).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from careval.synthetic import activity
from careval.synthetic.population import NEVER, Population
from careval.synthetic.settings import AREAS, SynthSettings, month_text

# Table 2's eligibility groups (careval.cohort.eligibility, the default rule), in the order of
# the generator's groups 1-3 (see activity.group_cells; 0 is not eligible).
GROUP_NAMES = (
    "under_75_with_diabetes",
    "aged_75_plus_without_diabetes",
    "aged_75_plus_with_diabetes",
)
HELD = {
    "area": "each area's mean case-mix rate (age, frailty, deprivation, conditions; before the "
    "transient shocks) per registered, living person-month, held at its value over the "
    "window's first 12 months; the eligible's case mix still falls (their frail die, healthier "
    "people age in, no conditions accrue), which expected_admissions carries",
    "group": "each area's and eligibility group's mean case-mix rate (before the transient "
    "shocks) per registered, living person-month, held at its first-12-months value: each "
    "group follows the designed trend and season alone",
}


def untreated_rate(s: SynthSettings, em: activity.Emergency, rows: np.ndarray) -> np.ndarray:
    """The emergency rates of ``rows`` without the plans' effect and any hidden decline."""
    m = np.arange(s.n_months)[None, :]
    plan = em.plan_month[rows, None]
    f = np.where((plan < NEVER) & (m >= plan + s.effect_lag_months), 1 + s.effect, 1.0)
    f = f * np.where((plan < NEVER) & (m >= plan), 1 + s.hidden_bias, 1.0)
    return em.rate[rows] / np.maximum(f, 1e-9)


def _sums(cells: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(cells.ravel(), weights=weights.ravel(), minlength=size)


def area_trends(s: SynthSettings, pop: Population, em: activity.Emergency) -> dict[str, Any]:
    """The ``area_trends`` object of ``truth.json`` (see the module docstring)."""
    t, first, n_areas, g = s.n_months, s.first_month, len(AREAS), activity.GROUPS
    size = n_areas * g * t
    m = np.arange(t)[None, :]
    counted = np.zeros(size)
    treated = np.zeros(size)
    untreated = np.zeros(size)
    for lo in range(0, pop.n, activity.CHUNK):
        hi = min(lo + activity.CHUNK, pop.n)
        cells = activity.group_cells(pop, lo, hi, t, first)
        # Table 2 counts a person-month when registered and alive on its first day: the death
        # month too (the generator's rate is 0 from it; deaths on the 1st are ignored here).
        on = (m >= pop.reg_start[lo:hi, None]) & (m < pop.leave_month[lo:hi, None])
        on &= m <= pop.death_month[lo:hi, None]
        counted += _sums(cells, on.astype(np.float64), size)
        pilot = np.flatnonzero(pop.area[lo:hi] == 0) + lo
        pc = cells[pilot - lo]
        treated += _sums(pc, em.rate[pilot].astype(np.float64), size)
        untreated += _sums(pc, untreated_rate(s, em, pilot).astype(np.float64), size)
    shape = (n_areas, g, t)
    cnt = counted.reshape(shape)
    tr, un = treated.reshape(shape)[0], untreated.reshape(shape)[0]
    factor = np.where(un > 0, tr / np.maximum(un, 1e-300), 1.0)
    return {
        "log_trend_per_year": dict(activity.AREA_TREND),
        "trend_reference_month": month_text(first + s.launch),
        "season": {
            "amplitude": activity.SEASON_AMPLITUDE,
            "peak_month": 1,
            "form": "1 + amplitude * cos(2 * pi * (calendar month - peak_month) / 12)",
        },
        "held_constant": HELD[activity.HOLD_BY],
        "eligibility": {"min_age": 75, "conditions": ["diabetes"], "combine": "or"},
        "groups": list(GROUP_NAMES),
        "first_month": month_text(first),
        "maximum_monthly_rate_with_shock": activity.MAX_SHOCKED_RATE,
        "expected_admissions": {
            a: {
                name: np.round(em.expected[i, k + 1], 4).tolist()
                for k, name in enumerate(GROUP_NAMES)
            }
            for i, a in enumerate(AREAS)
        },
        "person_months": {
            a: {name: cnt[i, k + 1].astype(int).tolist() for k, name in enumerate(GROUP_NAMES)}
            for i, a in enumerate(AREAS)
        },
        "effect_area": AREAS[0],
        "pilot_effect_factor": {
            name: [round(float(x), 6) for x in factor[k + 1]] for k, name in enumerate(GROUP_NAMES)
        },
    }
