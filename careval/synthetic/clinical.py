"""Diabetes measurements, 6CIT tests and dementia diagnoses.

The stated diabetes-process effect of a care plan (from ``effect_lag_months`` after the plan):
more frequent review and lower cholesterol, blood pressure and HbA1c, each scaled by
``settings.diabetes_scale`` (0 when ``effect`` is 0 unless set otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from careval.synthetic.population import NEVER, Population
from careval.synthetic.settings import SynthSettings

# Stated effects at diabetes_scale = 1 (the default effect of -0.10).
DIABETES_EFFECTS = {
    "total_cholesterol": -0.20,  # mmol/l
    "sbp": -3.0,  # mmHg
    "dbp": -1.5,  # mmHg
    "hba1c": -2.0,  # mmol/mol
    "review_probability": 0.10,  # added to the chance of a six-monthly review
}
# Diastolic pressure follows systolic (so the systolic effect also lowers it: the total effect
# on diastolic is DIABETES_EFFECTS["dbp"] + DBP_FROM_SBP * DIABETES_EFFECTS["sbp"]).
DBP_FROM_SBP = 0.45
# Person-level means, yearly secular trends and visit-to-visit noise.
MEASURE_MODEL = {
    "hba1c": (54.0, 11.0, 0.5, 6.0),
    "total_cholesterol": (4.35, 0.75, -0.03, 0.45),
    "sbp": (138.0, 11.0, -1.0, 11.0),
}
DEMENTIA_DIAGNOSIS_DELAY = 36.0  # mean months from onset to diagnosis before the programme
DEMENTIA_PILOT_SPEEDUP = 2.0  # the pilot's case-finding multiplies the diagnosis rate by this


@dataclass
class Records:
    """Rows of a table as column arrays (window months and days are resolved by the writer)."""

    person: np.ndarray
    month: np.ndarray
    columns: dict[str, np.ndarray]


def diabetes_measurements(
    s: SynthSettings, pop: Population, plan_month: np.ndarray, rng: np.random.Generator
) -> Records:
    """Six-monthly reviews of people with diabetes: HbA1c, cholesterol, SBP and DBP."""
    t_months = s.n_months
    dm = np.flatnonzero(pop.diabetes_onset < t_months)
    scale = s.diabetes_scale
    lo = np.maximum(np.maximum(pop.diabetes_onset[dm], pop.reg_start[dm]), 0)
    hi = np.minimum(np.minimum(pop.leave_month[dm], pop.death_month[dm]), t_months)
    blocks = (t_months + 5) // 6
    # One candidate review per six-month block, at a random month in it.
    person = np.repeat(dm, blocks)
    month = np.tile(np.arange(blocks) * 6, dm.size) + rng.integers(0, 6, person.size)
    lo_r, hi_r = np.repeat(lo, blocks), np.repeat(hi, blocks)
    plan = plan_month[person]
    after = month >= plan + s.effect_lag_months
    p_review = 0.78 + np.where(after, DIABETES_EFFECTS["review_probability"] * scale, 0.0)
    keep = (month >= lo_r) & (month < hi_r) & (rng.random(person.size) < np.clip(p_review, 0, 1))
    person, month, after = person[keep], month[keep], after[keep]
    years = (month - s.launch) / 12.0  # secular trends run from the pilot's launch
    cols: dict[str, np.ndarray] = {}
    level = {}
    for j, (name, (mean, sd, trend, noise)) in enumerate(MEASURE_MODEL.items()):
        person_rng = np.random.default_rng([s.seed, 7001 + j])  # stable per-person levels
        person_level = mean + sd * person_rng.standard_normal(pop.n)
        if name == "hba1c":
            person_level += 2.0 * pop.frailty  # frailer people have worse control
        value = person_level[person] + trend * years + noise * rng.standard_normal(person.size)
        value += np.where(after, DIABETES_EFFECTS[name] * scale, 0.0)
        level[name] = value
    level["dbp"] = DBP_FROM_SBP * level["sbp"] + 16.0 + 6.0 * rng.standard_normal(person.size)
    level["dbp"] += np.where(after, DIABETES_EFFECTS["dbp"] * scale, 0.0)
    bounds = {
        "hba1c": (25, 160, 0),
        "total_cholesterol": (1.5, 12, 1),
        "sbp": (80, 230, 0),
        "dbp": (40, 130, 0),
    }
    persons, months, measures, values = [], [], [], []
    for name, (lo_v, hi_v, digits) in bounds.items():
        persons.append(person)
        months.append(month)
        measures.append(np.full(person.size, name, dtype=object))
        values.append(np.round(np.clip(level[name], lo_v, hi_v), digits))
    cols["measure"] = np.concatenate(measures)
    cols["value"] = np.concatenate(values).astype(np.float64)
    return Records(np.concatenate(persons), np.concatenate(months), cols)


def dementia(
    s: SynthSettings, pop: Population, plan_month: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, Records]:
    """Dementia diagnosis month (NEVER: undiagnosed) and 6CIT tests of the 75+.

    Before the programme, diagnosis follows onset after an exponential delay. In the pilot from
    the first care plans, the diagnosis rate of undiagnosed dementia rises
    (``DEMENTIA_PILOT_SPEEDUP``), and people care-planned at 75+ are offered a 6CIT at the plan;
    a score of 10 or more with true dementia leads to a diagnosis within three months.
    """
    t_months, first, start = s.n_months, s.first_month, s.care_plans_from
    onset = pop.dementia_onset
    delay = rng.exponential(DEMENTIA_DIAGNOSIS_DELAY, pop.n)
    diag = onset + delay
    pilot = pop.area == 0
    late = pilot & (onset < NEVER) & (diag > start)
    from_ = np.maximum(onset, start)
    diag = np.where(late, from_ + (diag - from_) / DEMENTIA_PILOT_SPEEDUP, diag)
    # 6CIT: at the care plan for the 75+ (60%), and background screening of 3% a year.
    age_at_plan = pop.age_months(np.minimum(plan_month, t_months - 1), first)
    at_plan = (plan_month < t_months) & (age_at_plan >= 75 * 12) & (rng.random(pop.n) < 0.6)
    p_test, m_test = np.flatnonzero(at_plan), plan_month[at_plan]
    old = np.flatnonzero(pop.age_months(t_months // 2, first) >= 75 * 12)
    k = rng.poisson(0.03 * t_months / 12, old.size)
    p_bg = np.repeat(old, k)
    m_bg = rng.integers(0, t_months, p_bg.size)
    person = np.concatenate([p_test, p_bg]).astype(np.int32)
    month = np.concatenate([m_test, m_bg]).astype(np.int32)
    alive = (month >= np.maximum(pop.reg_start[person], 0)) & (month < pop.leave_month[person])
    alive &= month < pop.death_month[person]
    person, month = person[alive], month[alive]
    has = onset[person] <= month
    score = np.where(has, rng.normal(15, 5, person.size), rng.gamma(1.5, 1.6, person.size))
    score = np.clip(np.round(score), 0, 28)
    positive = has & (score >= 10)
    follow = month[positive] + rng.integers(1, 4, int(positive.sum()))
    np.minimum.at(diag, person[positive], follow)
    diag_month = np.where(np.isfinite(diag) & (onset < NEVER), np.floor(diag), NEVER)
    diag_month = np.where(diag_month < pop.death_month, diag_month, NEVER).astype(np.int32)
    return diag_month, Records(
        person,
        month,
        {
            "measure": np.full(person.size, "six_cit", dtype=object),
            "value": score.astype(np.float64),
        },
    )
