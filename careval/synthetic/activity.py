"""Hospital and community activity, care-plan selection and the injected effect.

Emergency admissions are drawn on a person-month panel from a rate that combines a persistent
frailty, age, deprivation and conditions with a transient quarterly shock (an AR(1) on the log
scale). Care plans go preferentially to people with recent admissions, whose shock is often high
and then fades: naive before-after comparisons of the care-planned show a fall even when the
plan does nothing (regression to the mean). The effect of a plan is applied by thinning the
untreated counts, so the treated rate is exactly ``(1 + effect)`` times the untreated one; a
hidden decline (``SynthSettings.hidden_bias``) multiplies the care-planned's rates and counts the
same way from the plan month on (:mod:`careval.synthetic.bias` does it for the other activity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from careval.synthetic.care_plan_schedule import monthly_plans
from careval.synthetic.population import CONDITION_MODEL, NEVER, Population
from careval.synthetic.settings import AREAS, SynthSettings

# Secular trend in emergency admissions per year by area (log scale): the area's case-mix level
# is held (HOLD_BY) and multiplied by it and a winter season.
AREA_TREND = {
    "pilot": 0.010,
    "inner_nwl_other": -0.012,
    "outer_nwl": 0.040,
    "south_west_london": 0.006,
    "rest_of_england": 0.004,
}
SHOCK_SD = 0.75  # sd of the transient log-rate shock
SHOCK_RHO = 0.45  # its correlation from one quarter to the next
FRAILTY_LOADING = 0.7  # log-rate per sd of persistent frailty
CHUNK = 250_000  # people per block when filling N x T matrices
# The product of log-normal frailty, conditions and age has an explosive tail: no one is
# admitted as an emergency more than about once a month for long (the persistent rate's cap).
MAX_MONTHLY_RATE = 1.0
MAX_SHOCKED_RATE = 5.0  # cap on the rate with its transient shock, per person-month
GROUPS = 4  # eligibility groups of the case-mix bookkeeping (see group_cells)
# Hold the case-mix level of each area ("area") or of each area and eligibility group ("group").
HOLD_BY = "area"
SEASON_AMPLITUDE = 0.08  # winter peak in January: 1 + 0.08 cos(2 pi (calendar month) / 12)


@dataclass
class Emergency:
    """The emergency-admission panel and the care plans chosen from it."""

    rate: np.ndarray  # N x T float32: true monthly rate after any treatment effect
    count: np.ndarray  # N x T uint8: emergency admissions observed
    plan_month: np.ndarray  # window month of care plan (NEVER: none)
    scale: float  # calibration constant of the rate
    eligible_at_launch: int  # pilot people eligible at launch (the ramp's denominator)
    expected: np.ndarray  # areas x GROUPS x T: untreated expected admissions (no shocks)


def eligible(pop: Population, month: int, first: int) -> np.ndarray:
    """Programme eligibility at a window month: aged 75+ or diagnosed with diabetes."""
    return (pop.age_months(month, first) >= 75 * 12) | (pop.diabetes_onset <= month)


def case_mix(
    pop: Population, persist: np.ndarray, lo: int, hi: int, t_months: int, first: int
) -> np.ndarray:
    """(hi - lo) x T persistent relative rate (age and ``persist``), 0 when not exposed."""
    age = (first + np.arange(t_months)[None, :] - pop.birth_month[lo:hi, None]) / 12.0
    block = age_factor(age).astype(np.float32)
    block *= persist[lo:hi, None]
    block *= exposed(pop, lo, hi, t_months)
    return block


def group_cells(pop: Population, lo: int, hi: int, t_months: int, first: int) -> np.ndarray:
    """(hi - lo) x T cell of each person-month: ``(area * GROUPS + group) * T + month``.

    The group is 0 not eligible, 1 under 75 with diabetes, 2 aged 75+ without, 3 with it.
    """
    m = np.arange(t_months, dtype=np.int32)[None, :]
    old = (first + m - pop.birth_month[lo:hi, None]) >= 75 * 12
    grp = 2 * old.astype(np.int32) + (pop.diabetes_onset[lo:hi, None] <= m)
    return (pop.area[lo:hi, None].astype(np.int32) * GROUPS + grp) * t_months + m


def hold_levels(
    level: np.ndarray, person_months: np.ndarray, n_areas: int, t_months: int, by: str = "area"
) -> tuple[np.ndarray, np.ndarray]:
    """The first-year mean level of each area and group (areas x GROUPS) and the factor
    (areas x GROUPS x T) that holds each month's mean level at it (1 where a cell is empty);
    ``by`` "area": the mean over the area's groups together, the same factor for each."""
    shape = (n_areas, GROUPS, t_months)
    lv, pm = level.reshape(shape), person_months.reshape(shape)
    if by == "area":
        lv = np.repeat(lv.sum(axis=1, keepdims=True), GROUPS, axis=1)
        pm = np.repeat(pm.sum(axis=1, keepdims=True), GROUPS, axis=1)
    mean = np.where(pm > 0, lv / np.maximum(pm, 1), np.nan)
    first_year = mean[:, :, :12]
    counted = np.isfinite(first_year).sum(axis=2)
    held = np.where(counted > 0, np.nansum(first_year, axis=2) / np.maximum(counted, 1), 0.0)
    steady = np.where(np.isfinite(mean) & (mean > 0), held[:, :, None] / mean, 1.0)
    return held, np.where(held[:, :, None] > 0, steady, 1.0)


def person_multiplier(pop: Population, launch: int) -> np.ndarray:
    """Persistent part of the emergency rate: frailty, deprivation and conditions."""
    mult = np.exp(FRAILTY_LOADING * pop.frailty - FRAILTY_LOADING**2 / 2).astype(np.float32)
    mult *= np.exp(0.06 * (5.5 - pop.imd)).astype(np.float32)
    for name, (_a0, _a1, rr) in CONDITION_MODEL.items():
        mult *= np.where(pop.conditions[name] <= launch, rr, 1.0).astype(np.float32)
    mult *= np.where(pop.diabetes_onset <= launch, 1.3, 1.0).astype(np.float32)
    mult *= np.where(pop.dementia_onset <= launch, 1.35, 1.0).astype(np.float32)
    return mult


def age_factor(age_years: np.ndarray) -> np.ndarray:
    """Relative emergency rate by age: flat to 45, about 3% a year after, higher under 5."""
    return np.exp(0.03 * np.maximum(age_years - 45.0, 0.0)) * np.where(age_years < 5, 1.8, 1.0)


def emergency_panel(s: SynthSettings, pop: Population, rng: np.random.Generator) -> Emergency:
    """Untreated rates, counts, care-plan selection, then the treated counts."""
    n, t_months, first, launch = pop.n, s.n_months, s.first_month, s.launch
    months = np.arange(t_months)
    cal = (first + months) % 12
    season = (1 + SEASON_AMPLITUDE * np.cos(2 * np.pi * cal / 12)).astype(np.float32)
    trend = (
        np.stack([np.exp(AREA_TREND[a] * (months - launch) / 12.0) for a in AREAS]).astype(
            np.float32
        )
        * season
    )
    n_q = (t_months + 2) // 3
    persist = person_multiplier(pop, launch)

    exp12 = exposed(pop, 0, n, 12).sum()
    # The persistent rate is capped where it would exceed MAX_MONTHLY_RATE at the baseline
    # year's calibration, before the levels are held, so the cap cannot move a group's level.
    base = sum(
        case_mix(pop, persist, lo, min(lo + CHUNK, n), 12, first).sum(dtype=np.float64)
        for lo in range(0, n, CHUNK)
    )
    ceiling = np.float32(MAX_MONTHLY_RATE / (s.emergency_rate / 12.0 * exp12 / max(base, 1e-12)))
    rate = np.empty((n, t_months), dtype=np.float32)
    cells = len(AREAS) * GROUPS * t_months
    level = np.zeros(cells)
    person_months = np.zeros(cells)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        k = hi - lo
        shock = np.empty((k, n_q), dtype=np.float32)
        shock[:, 0] = rng.standard_normal(k) * SHOCK_SD
        innov = np.sqrt(1 - SHOCK_RHO**2) * SHOCK_SD
        for q in range(1, n_q):
            shock[:, q] = SHOCK_RHO * shock[:, q - 1] + innov * rng.standard_normal(k)
        shock = np.exp(shock - SHOCK_SD**2 / 2)
        block = np.minimum(case_mix(pop, persist, lo, hi, t_months, first), ceiling)
        cell = group_cells(pop, lo, hi, t_months, first).ravel()  # case-mix level, no shocks
        level += np.bincount(cell, weights=block.ravel(), minlength=cells)
        mask = exposed(pop, lo, hi, t_months)
        person_months += np.bincount(cell, weights=mask.ravel(), minlength=cells)
        block *= np.repeat(shock, 3, axis=1)[:, :t_months]
        rate[lo:hi] = block
    # Hold each area's case-mix level at its first-year value: with a fixed frailty per person,
    # deaths of the frailest would otherwise lower the rate year by year. The eligible (a
    # rolling subgroup) still fall 6-8% a year against the design: their frail die, healthier
    # 74-year-olds age in and no new conditions accrue. HOLD_BY = "group" holds each
    # eligibility group instead (each then follows the design, but a survivor's own rate rises
    # by the group's compensation, ~8% a year at 75+, which hides regression to the mean in a
    # naive before-after contrast). truth.json records the expected admissions either way.
    _held, steady = hold_levels(level, person_months, len(AREAS), t_months, HOLD_BY)
    factor = (steady * trend[:, None, :]).astype(np.float32).ravel()
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        rate[lo:hi] *= factor[group_cells(pop, lo, hi, t_months, first)]
    scale = float(s.emergency_rate / 12.0 * exp12 / rate[:, :12].sum(dtype=np.float64))
    rate *= np.float32(scale)
    # The transient shocks on top have an explosive tail: bound them (rarely reached).
    np.minimum(rate, np.float32(MAX_SHOCKED_RATE), out=rate)

    count = draw_counts(rate, rng)
    plan_month, n_elig = select_care_plans(s, pop, count, rng)
    treated = np.flatnonzero(plan_month < NEVER)
    if treated.size and s.effect != 0:  # the plan's effect, from the lag on
        after = months[None, :] >= plan_month[treated, None] + s.effect_lag_months
        rate[treated], count[treated] = rescale(rate[treated], count[treated], after, s.effect, rng)
    if treated.size and s.hidden_bias != 0:  # the hidden decline, from the plan month on
        after = months[None, :] >= plan_month[treated, None]
        rate[treated], count[treated] = rescale(
            rate[treated], count[treated], after, s.hidden_bias, rng
        )
    expected = level.reshape(steady.shape) * factor.reshape(steady.shape) * scale
    return Emergency(rate, count, plan_month, scale, n_elig, expected)


def rescale(
    rate: np.ndarray, count: np.ndarray, after: np.ndarray, change: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rates and Poisson counts multiplied by ``1 + change`` where ``after`` holds.

    A fall thins the counts (each event kept with probability ``1 + change``), a rise adds
    Poisson events at ``change`` times the rate, so the new counts are exactly Poisson at the
    new rate. Returns the new (rate, count), of the input's dtypes.
    """
    counts = count.astype(np.int64)
    if change < 0:
        new = rng.binomial(counts, 1 + change)
    else:
        new = counts + rng.poisson(rate * change)
    new_count = np.where(after, np.minimum(new, 250), counts).astype(np.uint8)
    return np.where(after, rate * np.float32(1 + change), rate), new_count


def exposed(pop: Population, lo: int, hi: int, t_months: int) -> np.ndarray:
    """N x T mask (float32) of months registered and alive."""
    m = np.arange(t_months)[None, :]
    ok = (m >= pop.reg_start[lo:hi, None]) & (m < pop.leave_month[lo:hi, None])
    ok &= m < pop.death_month[lo:hi, None]
    return ok.astype(np.float32)


def draw_counts(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exact Poisson counts by inverse CDF: uniforms everywhere, quantiles only where non-zero."""
    count = np.zeros(rate.shape, dtype=np.uint8)
    for lo in range(0, rate.shape[0], CHUNK):
        block = rate[lo : lo + CHUNK]
        u = rng.random(block.shape, dtype=np.float32)
        r, c = np.nonzero(u > np.exp(-block))
        q = poisson.ppf(u[r, c].astype(np.float64), block[r, c].astype(np.float64))
        count[lo + r, c] = np.minimum(q, 250).astype(np.uint8)
    return count


def select_care_plans(
    s: SynthSettings, pop: Population, count: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Each month, care-plan a quota of eligible pilot people, favouring recent high users.

    The quotas come from :func:`careval.synthetic.care_plan_schedule.monthly_plans`.
    """
    first, t_months, launch = s.first_month, s.n_months, s.launch
    plan_month = np.full(pop.n, NEVER, dtype=np.int32)
    pilot = np.flatnonzero(pop.area == 0)
    n_elig = int((eligible(pop, launch, first) & pop.registered_alive(launch))[pilot].sum())
    cs = np.zeros((len(pilot), t_months + 1), dtype=np.int16)
    np.cumsum(count[pilot], axis=1, out=cs[:, 1:])
    mdg = pop.practice_mdg[pop.practice[pilot]]
    engagement = pop.practice_engagement[mdg]
    n_cond = sum((pop.conditions[c][pilot] <= launch).astype(np.int8) for c in CONDITION_MODEL)
    static = engagement * np.exp(0.08 * n_cond + 0.1 * pop.frailty[pilot])
    quotas = monthly_plans(s, n_elig, rng)  # the ramp, holidays and month-to-month variation
    for m in range(s.care_plans_from, t_months):
        quota = int(quotas[m])
        ok = eligible(pop, m, first)[pilot] & pop.registered_alive(m)[pilot]
        ok &= plan_month[pilot] == NEVER
        cand = np.flatnonzero(ok)
        if quota <= 0 or cand.size == 0:
            continue
        recent = cs[cand, m] - cs[cand, max(m - 6, 0)]
        earlier = cs[cand, max(m - 6, 0)] - cs[cand, max(m - 18, 0)]
        w = static[cand] * np.exp(0.45 * np.minimum(recent, 3) + 0.15 * np.minimum(earlier, 3))
        keys = np.log(rng.random(cand.size)) / w  # Efraimidis-Spirakis weighted sampling
        take = cand[np.argsort(-keys)[: min(quota, cand.size)]]
        plan_month[pilot[take]] = m
    return plan_month, n_elig


def person_events(
    rate_per_year: np.ndarray,
    lo_month: np.ndarray,
    hi_month: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Events at a constant personal rate over months [lo, hi): (person index, window month)."""
    span = np.maximum(hi_month - lo_month, 0)
    k = rng.poisson(rate_per_year * span / 12.0)
    person = np.repeat(np.arange(len(k), dtype=np.int32), k)
    month = lo_month[person] + np.floor(rng.random(person.size) * span[person]).astype(np.int32)
    return person, month.astype(np.int32)


def exposure_bounds(pop: Population, t_months: int) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last window month each person is registered and alive."""
    lo = np.clip(pop.reg_start, 0, t_months)
    hi = np.minimum(np.minimum(pop.leave_month, pop.death_month), t_months)
    return lo.astype(np.int32), np.maximum(hi, lo).astype(np.int32)
