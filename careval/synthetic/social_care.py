"""Adult social care services: community packages and care home stays, mostly of the old and frail.

Each person has at most one care home stay (residential or nursing), admitted at a rate that
rises steeply with age, frailty and dementia, over the window and the two years before it (so
people are already in care when the window opens). A long stay lasts until death, or ends when
the person leaves; a short stay (respite) lasts weeks. Community packages (home care,
reablement, day care, direct payments, supported living, equipment) start at a personal rate
while the person lives at home: a package that would start during a care home stay is not
drawn, and a package still open at admission ends that day.

The planted effects of a care plan, from ``effect_lag_months`` after it (recorded in
``truth.json``):

- new community packages: :data:`PACKAGE_PLAN_RATIO` (1.20: care planning finds unmet need).
  Extra packages are drawn at ``0.20`` times the untreated rate from the lag on, then every
  package is kept or not by the same care home rule, so the ratio holds in every person-month.
- care home admissions and stays: no effect (1.0, a known null): stays are drawn before and
  without regard to plans, so days in residential or nursing care have a rate ratio of 1.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from careval.data.schema import CARE_HOME_SETTINGS, SOCIAL_CARE_SETTINGS
from careval.synthetic import activity
from careval.synthetic.population import NEVER, Population
from careval.synthetic.settings import SynthSettings, month_start_days
from careval.synthetic.tables import NULL_DAY, build, event_days, ids

PACKAGE_PLAN_RATIO = 1.20  # new community packages of the care-planned after the lag
CARE_HOME_PLAN_RATIO = 1.0  # care home admissions and days: a known null
PRIOR_MONTHS = 24  # care home admissions drawn from this long before the window
LONG_STAY_SHARE = 0.7  # of care home stays; the rest are short (respite) stays
LONG_STAY_MEAN_DAYS = 800.0
# Community settings: share of new packages, mean duration in days (0: a one-off), weekly cost.
COMMUNITY = {
    "home_care": (0.40, 240.0, 170.0),
    "reablement": (0.20, 28.0, 260.0),
    "day_care": (0.08, 300.0, 120.0),
    "direct_payment": (0.12, 400.0, 230.0),
    "supported_living": (0.03, 600.0, 900.0),
    "equipment": (0.17, 0.0, np.nan),
}
SHORT_TERM = ("reablement", "equipment")  # SALT short-term support; the rest long-term
CARE_HOME_WEEKLY = {"residential": 640.0, "nursing": 800.0}  # pounds a week, about 2012
REASONS = ("physical_support", "sensory_support", "memory_and_cognition", "mental_health")
REASON_P = {False: (0.82, 0.05, 0.08, 0.05), True: (0.25, 0.02, 0.70, 0.03)}  # by dementia
REASON_MISSING = 0.04
BIG = np.int64(2**31 - 1)  # no such day
assert set(COMMUNITY) | set(CARE_HOME_SETTINGS) == set(SOCIAL_CARE_SETTINGS)


def _age_rate(age: np.ndarray, rates: tuple[float, float, float]) -> np.ndarray:
    """Per person-year rate at 65-74, 75-84 and 85+ (none under 65)."""
    return np.select([age >= 85, age >= 75, age >= 65], list(rates), 0.0)


def social_care_services(
    s: SynthSettings,
    pop: Population,
    plan_month: np.ndarray,
    pid: pa.Array,
    death_day: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    """The ``social_care_services`` table: care home stays and community packages."""
    first, t_months = s.first_month, s.n_months
    lo, hi = activity.exposure_bounds(pop, t_months)
    end_of_window = month_start_days(np.array([first + t_months]))[0] - 1
    age = pop.age_months(t_months // 2, first) / 12.0
    dementia = pop.dementia_onset < t_months
    frail = np.exp(0.6 * pop.frailty - 0.18)

    # Care home stays: the first admission of each person, if any.
    ch_rate = _age_rate(age, (0.002, 0.010, 0.040)) * frail * np.where(dementia, 2.5, 1.0)
    h_person, h_month = activity.person_events(ch_rate, lo - PRIOR_MONTHS, hi, rng)
    order = np.lexsort((h_month, h_person))
    h_person, h_month = h_person[order], h_month[order]
    keep = np.r_[True, h_person[1:] != h_person[:-1]] if h_person.size else h_person.astype(bool)
    h_person, h_month = h_person[keep], h_month[keep]
    h_start = event_days(first + h_month, death_day[h_person], rng)
    long_stay = rng.random(h_person.size) < LONG_STAY_SHARE
    h_days = np.where(
        long_stay,
        rng.exponential(LONG_STAY_MEAN_DAYS, h_person.size),
        rng.gamma(2.0, 10.0, h_person.size),
    )
    h_end = _ended(h_start, h_days, death_day[h_person], end_of_window)
    nursing = rng.random(h_person.size) < 1 / (1 + np.exp(-(pop.frailty[h_person] - 0.3)))
    h_setting = np.where(nursing, "nursing", "residential")
    # Days at home: admission day of each person's stay (NEVER when none) and its end.
    home_until = np.full(pop.n, BIG, dtype=np.int64)
    home_from = np.full(pop.n, BIG, dtype=np.int64)
    home_until[h_person] = h_start
    home_from[h_person] = np.where(h_end == NULL_DAY, BIG, h_end)

    # Community packages, and the care plan's extra ones from the lag on.
    pk_rate = _age_rate(age, (0.03, 0.10, 0.25)) * frail * np.where(dementia, 1.5, 1.0)
    p_person, p_month = activity.person_events(pk_rate, lo, hi, rng)
    treated_lo = np.where(plan_month < NEVER, plan_month + s.effect_lag_months, hi)
    x_person, x_month = activity.person_events(
        pk_rate * (PACKAGE_PLAN_RATIO - 1), np.minimum(treated_lo, hi).astype(np.int32), hi, rng
    )
    p_person = np.concatenate([p_person, x_person])
    p_start = event_days(first + np.concatenate([p_month, x_month]), death_day[p_person], rng)
    at_home = (p_start < home_until[p_person]) | (p_start >= home_from[p_person])
    p_person, p_start = p_person[at_home], p_start[at_home]
    names = list(COMMUNITY)
    share = np.array([COMMUNITY[n][0] for n in names])
    kind = rng.choice(len(names), size=p_person.size, p=share / share.sum())
    mean_days = np.array([COMMUNITY[n][1] for n in names])[kind]
    p_days = rng.exponential(1.0, p_person.size) * mean_days
    p_days = np.where(np.asarray(names)[kind] == "reablement", np.minimum(p_days, 42), p_days)
    died = death_day[p_person]
    admitted = home_until[p_person]  # a package open at admission ends that day
    cap = np.minimum(
        np.where(died == NULL_DAY, BIG, died), np.where(p_start < admitted, admitted, BIG)
    )
    p_end = _ended(p_start, p_days, np.where(cap == BIG, NULL_DAY, cap), end_of_window)
    p_weekly = np.array([COMMUNITY[n][2] for n in names])[kind]

    person = np.concatenate([h_person, p_person])
    setting = np.concatenate([h_setting, np.asarray(names)[kind]])
    weekly = np.concatenate([[CARE_HOME_WEEKLY[x] for x in h_setting], p_weekly])
    weekly = np.round(weekly * rng.lognormal(0.0, 0.15, person.size), 2)
    short = np.isin(setting, SHORT_TERM) | np.concatenate(
        [~long_stay, np.zeros(p_person.size, bool)]
    )
    probs = np.array([REASON_P[d] for d in (False, True)])[dementia[person].astype(int)]
    reason = np.asarray(REASONS)[(rng.random(person.size)[:, None] > probs.cumsum(1)).sum(1)]
    reason = np.where(rng.random(person.size) < REASON_MISSING, None, reason)
    start = np.concatenate([h_start, p_start])
    end = np.concatenate([h_end, p_end])
    o = np.lexsort((start, person))
    return build(
        "social_care_services",
        {
            "service_id": ids("L", np.arange(1, person.size + 1), 10),
            "person_id": pc.take(pid, pa.array(person[o])),
            "start_date": start[o],
            "end_date": end[o],
            "setting": setting[o],
            "support_type": np.where(short[o], "short_term", "long_term"),
            "support_reason": pa.array(reason[o], type=pa.string()),
            "weekly_cost": pa.array(weekly[o], mask=np.isnan(weekly[o])),
        },
    )


def _ended(start: np.ndarray, length: np.ndarray, cap: np.ndarray, last: int) -> np.ndarray:
    """End day of services of ``length`` days from ``start``, not after ``cap`` (a death or an
    admission; NULL_DAY: none); NULL_DAY when still open after the window's ``last`` day."""
    end = start + np.floor(length).astype(np.int64)
    end = np.where((cap != NULL_DAY) & (cap < end), np.maximum(cap, start), end)
    return np.where(end > last, NULL_DAY, end).astype(np.int32)
