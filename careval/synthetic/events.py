"""Canonical tables of people, conditions and activity from the generator's arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from careval.data.codelists import codes_for
from careval.data.costs import TRIM_DAYS, UNIT_COST
from careval.data.schema import COMMUNITY_SERVICES, SEXES
from careval.synthetic import activity, bias
from careval.synthetic.population import CONDITION_MODEL, ETHNIC, NEVER, Population
from careval.synthetic.settings import AREAS, SynthSettings, month_start_days
from careval.synthetic.tables import NULL_DAY, build, event_days, ids

COMMUNITY_PLAN_RATIO = 1.3  # community contacts of the care-planned after the lag, x untreated
# Share of each community service among untreated contacts (the same for everyone). A care plan's
# extra contacts are of every service but mental health, so mental health contacts have a rate
# ratio of exactly 1 (a known null), all contacts exactly COMMUNITY_PLAN_RATIO, and the contacts
# other than mental health 1 + (COMMUNITY_PLAN_RATIO - 1) / (1 - mental health's share).
COMMUNITY_SHARES = (0.30, 0.10, 0.05, 0.12, 0.05, 0.12, 0.18, 0.08)
MENTAL_HEALTH_PLAN_RATIO = 1.0
MENTAL_HEALTH_SHARE = COMMUNITY_SHARES[COMMUNITY_SERVICES.index("mental_health")]
EMERGENCY_METHODS = (
    ["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D"],
    [0.64, 0.09, 0.03, 0.03, 0.01, 0.10, 0.04, 0.01, 0.05],
)
EMERGENCY_DIAGNOSES = (
    [
        "J189",
        "N390",
        "R074",
        "R104",
        "R55X",
        "S720",
        "L039",
        "A419",
        "K590",
        "R296",
        "J22X",
        "I489",
        "E875",
    ],
    [0.14, 0.12, 0.12, 0.10, 0.07, 0.05, 0.07, 0.06, 0.05, 0.06, 0.07, 0.05, 0.04],
)
CONDITION_DIAGNOSIS = {  # condition -> (ICD-10 code of an exacerbation, share of admissions)
    "heart_failure": ("I509", 0.30),
    "copd": ("J441", 0.35),
    "chd": ("I219", 0.12),
    "stroke_tia": ("I639", 0.10),
    "asthma": ("J459", 0.15),
    "ckd": ("N179", 0.08),
    "cancer": ("C349", 0.15),
    "epilepsy": ("G409", 0.20),
}
ELECTIVE_DIAGNOSES = (
    ["H251", "K409", "M171", "Z511", "K802", "N40X", "D126", "M161", "H269"],
    [0.18, 0.10, 0.10, 0.14, 0.10, 0.08, 0.12, 0.08, 0.10],
)
SPECIALTIES = (
    [
        "100",
        "101",
        "110",
        "120",
        "130",
        "300",
        "301",
        "307",
        "320",
        "330",
        "340",
        "400",
        "410",
        "430",
        "502",
    ],
    [0.08, 0.05, 0.12, 0.06, 0.12, 0.08, 0.06, 0.03, 0.08, 0.06, 0.05, 0.04, 0.04, 0.05, 0.08],
)


def _pick(rng: np.random.Generator, choices: tuple[list[str], list[float]], k: int) -> np.ndarray:
    values, p = choices
    p_arr = np.asarray(p, dtype=float)
    return np.asarray(values)[rng.choice(len(values), size=k, p=p_arr / p_arr.sum())]


def _snomed(condition: str) -> list[str]:
    return [c.code for c in codes_for(condition, "SNOMED")]


def population_tables(
    s: SynthSettings,
    pop: Population,
    pid: pa.Array,
    death_day: np.ndarray,
    dementia_diag: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pa.Table]:
    """persons, practices, registrations and conditions."""
    first, t_months = s.first_month, s.n_months
    out: dict[str, pa.Table] = {}
    lsoa_codes = ids("E01", pop.lsoa.astype(np.int64) + 1000, 6)
    out["persons"] = build(
        "persons",
        {
            "person_id": pid,
            "birth_month": month_start_days(pop.birth_month),
            "sex": np.asarray(SEXES)[np.where(pop.female, 0, 1)],
            "ethnic_group": np.asarray(ETHNIC)[pop.ethnic],
            "lsoa": lsoa_codes,
            "imd_decile": pop.imd.astype(np.int64),
            "death_date": death_day,
        },
    )
    mdg = pop.practice_mdg.astype(int)
    out["practices"] = build(
        "practices",
        {
            "practice_code": pa.array(pop.practice_code),
            "mdg": pa.array([f"MDG{m + 1:02d}" if m >= 0 else None for m in mdg], pa.string()),
            "locality": pa.array(pop.practice_locality),
            "area": np.asarray(AREAS)[pop.practice_area],
        },
    )
    start_day = month_start_days(first + pop.reg_start)
    left = pop.leave_month < t_months
    died = pop.death_month < t_months
    end_day = np.where(
        died & (pop.death_month < pop.leave_month),
        death_day,
        np.where(
            left, month_start_days(first + np.minimum(pop.leave_month, t_months)) - 1, NULL_DAY
        ),
    )
    out["registrations"] = build(
        "registrations",
        {
            "person_id": pid,
            "practice_code": pc.take(pa.array(pop.practice_code), pa.array(pop.practice)),
            "start_date": start_day,
            "end_date": end_day,
        },
    )
    # Conditions recorded by the GP (SNOMED CT) while registered, by the end of the window.
    last = np.minimum(np.minimum(pop.leave_month, pop.death_month), t_months)
    born = pop.birth_month - first
    persons, months, codes = [], [], []
    onsets = dict(pop.conditions)
    onsets["diabetes"] = pop.diabetes_onset
    onsets["dementia"] = dementia_diag
    for name, onset in onsets.items():
        who = np.flatnonzero((onset < last) & (onset < NEVER))
        choices = _snomed(name)
        weights = {"diabetes": [0.05, 0.85, 0.10], "dementia": [0.6, 0.4]}.get(
            name, [1.0] * len(choices)
        )
        persons.append(who)
        months.append(np.maximum(onset[who], born[who] + 1))
        codes.append(_pick(rng, (choices, weights), who.size))
    person = np.concatenate(persons)
    month = np.concatenate(months)
    out["conditions"] = build(
        "conditions",
        {
            "person_id": pc.take(pid, pa.array(person)),
            "code_system": np.full(person.size, "SNOMED"),
            "code": np.concatenate(codes),
            "date": event_days(first + month, death_day[person], rng),
        },
    )
    return out


def hospital_tables(
    s: SynthSettings,
    pop: Population,
    em: activity.Emergency,
    pid: pa.Array,
    death_day: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pa.Table]:
    """inpatient_spells, ae_attendances, outpatient_appointments and community_contacts."""
    first, t_months = s.first_month, s.n_months
    lo, hi = activity.exposure_bounds(pop, t_months)
    age = pop.age_months(t_months // 2, first) / 12.0
    z = pop.frailty
    n_cond = sum((pop.conditions[c] < t_months).astype(np.int8) for c in CONDITION_MODEL)
    out: dict[str, pa.Table] = {}

    def decline(
        person: np.ndarray, month: np.ndarray, rate: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The hidden decline of the care-planned (``hidden_bias``; none by default)."""
        return bias.rescale_events(person, month, rate, em.plan_month, lo, hi, s.hidden_bias, rng)

    # Emergency spells from the panel (any hidden decline is in the panel already).
    r, c = np.nonzero(em.count)
    k = em.count[r, c]
    e_person, e_month = np.repeat(r, k).astype(np.int32), np.repeat(c, k).astype(np.int32)
    e_age = (first + e_month - pop.birth_month[e_person]) / 12.0
    e_los = np.floor(rng.gamma(0.9, (1.0 + 0.1 * np.maximum(e_age - 40, 0)) / 0.9))
    e_diag = _pick(rng, EMERGENCY_DIAGNOSES, e_person.size)
    for cond, (code, share) in CONDITION_DIAGNOSIS.items():
        hit = (pop.conditions[cond][e_person] <= e_month) & (rng.random(e_person.size) < share)
        e_diag[hit] = code
    hit = (pop.diabetes_onset[e_person] <= e_month) & (rng.random(e_person.size) < 0.08)
    e_diag[hit] = "E119"
    e_method = _pick(rng, EMERGENCY_METHODS, e_person.size)
    # Elective spells, maternity and regular day attenders (excluded from spell counts).
    el_rate = (0.04 + 0.004 * np.maximum(age - 30, 0)) * np.exp(0.3 * z - 0.045)
    l_person, l_month = activity.person_events(el_rate, lo, hi, rng)
    l_person, l_month = decline(l_person, l_month, el_rate)
    day_case = rng.random(l_person.size) < 0.7
    l_los = np.where(day_case, 0, 1 + np.floor(rng.gamma(1.2, 2.5, l_person.size)))
    mat_rate = np.where(pop.female & (age >= 16) & (age < 45), 0.06, 0.0)
    m_person, m_month = activity.person_events(mat_rate, lo, hi, rng)
    dialysis = (pop.conditions["ckd"] < t_months) & (rng.random(pop.n) < 0.03)
    d_lo = np.where(dialysis, rng.integers(0, t_months, pop.n), t_months).astype(np.int32)
    d_lo = np.maximum(d_lo, lo)
    d_person = np.repeat(np.arange(pop.n, dtype=np.int32), np.maximum(hi - d_lo, 0) * dialysis)
    d_month = (d_lo[d_person] + _within_group_index(d_person)).astype(np.int32)

    parts = [
        (
            e_person,
            e_month,
            e_los,
            e_method,
            np.full(e_person.size, "1"),
            e_diag,
            UNIT_COST["non_elective"]
            + UNIT_COST["excess_bed_day"] * np.maximum(e_los - TRIM_DAYS, 0),
        ),
        (
            l_person,
            l_month,
            l_los,
            _pick(rng, (["11", "12", "13"], [0.5, 0.3, 0.2]), l_person.size),
            np.where(day_case, "2", "1"),
            _pick(rng, ELECTIVE_DIAGNOSES, l_person.size),
            np.where(
                day_case,
                UNIT_COST["day_case"],
                UNIT_COST["elective"]
                + UNIT_COST["excess_bed_day"] * np.maximum(l_los - TRIM_DAYS, 0),
            ),
        ),
        (
            m_person,
            m_month,
            np.floor(rng.gamma(2.0, 1.0, m_person.size)),
            _pick(rng, (["31", "32"], [0.8, 0.2]), m_person.size),
            np.full(m_person.size, "1"),
            np.full(m_person.size, "O800"),
            np.full(m_person.size, UNIT_COST["maternity"]),
        ),
        (
            d_person,
            d_month,
            np.zeros(d_person.size),
            np.full(d_person.size, "13"),
            np.full(d_person.size, "3"),
            np.full(d_person.size, "N185"),
            np.full(d_person.size, UNIT_COST["regular_attender"]),
        ),
    ]
    person = np.concatenate([p[0] for p in parts])
    month = np.concatenate([p[1] for p in parts])
    los = np.concatenate([p[2] for p in parts]).astype(np.int32)
    admit = event_days(first + month, death_day[person], rng)
    dd = death_day[person]
    discharge = np.where(dd != NULL_DAY, np.minimum(admit + los, dd), admit + los)
    order = np.lexsort((admit, person))
    method = np.concatenate([p[3] for p in parts])[order]
    out["inpatient_spells"] = build(
        "inpatient_spells",
        {
            "spell_id": ids("S", np.arange(1, person.size + 1), 10),
            "person_id": pc.take(pid, pa.array(person[order])),
            "admission_date": admit[order],
            "discharge_date": discharge[order],
            "admission_method": method,
            "patient_classification": np.concatenate([p[4] for p in parts])[order],
            "primary_diagnosis": np.concatenate([p[5] for p in parts])[order],
            "cost": np.round(np.concatenate([p[6] for p in parts])[order], 2),
        },
    )

    # A&E: every emergency admission via A&E (method 21) plus attendances not admitted.
    via_ae = method == "21"
    ae_rate = ae_not_admitted_rate(age, z)
    a_person, a_month = activity.person_events(ae_rate, lo, hi, rng)
    a_person, a_month = decline(a_person, a_month, ae_rate)
    a_days = event_days(first + a_month, death_day[a_person], rng)
    a_all = np.concatenate([person[order][via_ae], a_person])
    a_day = np.concatenate([admit[order][via_ae], a_days])
    disposal = np.concatenate(
        [
            np.full(int(via_ae.sum()), "admitted"),
            _pick(
                rng,
                (["discharged", "referred", "left", "other"], [0.72, 0.15, 0.05, 0.08]),
                a_person.size,
            ),
        ]
    )
    a_order = np.lexsort((a_day, a_all))
    out["ae_attendances"] = build(
        "ae_attendances",
        {
            "attendance_id": ids("A", np.arange(1, a_all.size + 1), 10),
            "person_id": pc.take(pid, pa.array(a_all[a_order])),
            "arrival_date": a_day[a_order],
            "disposal": disposal[a_order],
            "cost": np.full(a_all.size, UNIT_COST["ae"]),
        },
    )

    # Outpatients.
    op_rate = (
        (0.9 + 0.045 * np.maximum(age - 20, 0)) * np.exp(0.35 * z - 0.06) * (1 + 0.12 * n_cond)
    )
    o_person, o_month = activity.person_events(op_rate, lo, hi, rng)
    o_person, o_month = decline(o_person, o_month, op_rate)
    attended = rng.random(o_person.size) >= 0.08
    out["outpatient_appointments"] = build(
        "outpatient_appointments",
        {
            "appointment_id": ids("O", np.arange(1, o_person.size + 1), 10),
            "person_id": pc.take(pid, pa.array(o_person)),
            "appointment_date": event_days(first + o_month, death_day[o_person], rng),
            "specialty": _pick(rng, SPECIALTIES, o_person.size),
            "first_attendance": rng.random(o_person.size) < 0.3,
            "attended": attended,
            "cost": np.where(attended, UNIT_COST["outpatient"], 0.0),
        },
    )

    # Community and social care: mostly the old and frail; more after a care plan.
    cc_rate = np.where(age >= 75, 2.5, np.where(age >= 65, 0.6, 0.05)) * np.exp(0.6 * z - 0.18)
    c_person, c_month = activity.person_events(cc_rate, lo, hi, rng)
    plan_lo = np.minimum(em.plan_month + s.effect_lag_months, hi).astype(np.int32)
    x_person, x_month = activity.person_events(
        cc_rate * (COMMUNITY_PLAN_RATIO - 1), plan_lo, hi, rng
    )
    not_mh = [
        p if c != "mental_health" else 0.0
        for c, p in zip(COMMUNITY_SERVICES, COMMUNITY_SHARES, strict=True)
    ]
    service = np.concatenate(
        [
            _pick(rng, (list(COMMUNITY_SERVICES), list(COMMUNITY_SHARES)), c_person.size),
            _pick(rng, (list(COMMUNITY_SERVICES), not_mh), x_person.size),
        ]
    )
    c_person = np.concatenate([c_person, x_person])
    c_month = np.concatenate([c_month, x_month])
    sector = np.where(
        np.isin(service, ["social_care_assessment", "home_care", "reablement"]),
        "social_care",
        "health",
    )
    c_order = np.argsort(c_person, kind="stable")
    out["community_contacts"] = build(
        "community_contacts",
        {
            "contact_id": ids("K", np.arange(1, c_person.size + 1), 10),
            "person_id": pc.take(pid, pa.array(c_person[c_order])),
            "contact_date": event_days(first + c_month[c_order], death_day[c_person[c_order]], rng),
            "service": service[c_order],
            "sector": sector[c_order],
        },
    )
    return out


def ae_not_admitted_rate(age: np.ndarray, frailty: np.ndarray) -> np.ndarray:
    """A&E attendances not admitted per person-year (age at the window's middle)."""
    return np.where(age < 5, 0.55, np.where(age >= 75, 0.45, 0.33)) * np.exp(0.45 * frailty - 0.1)


def ae_truth(s: SynthSettings, pop: Population, em: activity.Emergency) -> dict[str, Any]:
    """The planted total effect of a care plan on A&E attendances, for ``truth.json``.

    The outcome counts attendances admitted (every emergency admission by method 21, a fixed
    share of them, carrying the plan's effect) and those not admitted (no effect). Over the
    care-planned's person-months from the effect's lag to the end of their exposure, with
    expected untreated counts ``A`` (admitted: that share of the untreated emergency rate) and
    ``B`` (not admitted), the plan multiplies the expected attendances by
    ``(B + (1 + effect) A) / (B + A)``: the rate ratio a matched study estimates. A hidden
    decline (``hidden_bias``) multiplies both parts alike and leaves it unchanged.
    """
    share = EMERGENCY_METHODS[1][EMERGENCY_METHODS[0].index("21")]
    treated = np.flatnonzero(em.plan_month < NEVER)
    lo, hi = activity.exposure_bounds(pop, s.n_months)
    months = np.arange(s.n_months)
    after = (months[None, :] >= em.plan_month[treated, None] + s.effect_lag_months) & (
        months[None, :] < hi[treated, None]
    )
    untreated = em.rate[treated].astype(np.float64) / (1 + s.effect)
    admitted = share * float((untreated * after).sum())
    age = pop.age_months(s.n_months // 2, s.first_month)[treated] / 12.0
    rate = ae_not_admitted_rate(age, pop.frailty[treated]) / 12.0
    not_admitted = float((rate * after.sum(axis=1)).sum())
    total = admitted + not_admitted
    rr = (not_admitted + (1 + s.effect) * admitted) / total if total > 0 else 1.0
    return {
        "rate_ratio": round(rr, 6),
        "from_months_after_care_plan": s.effect_lag_months,
        "admitted_share_untreated": round(admitted / total, 6) if total > 0 else None,
        "definition": "total effect: attendances admitted (method 21) carry the emergency "
        "admissions' rate ratio, those not admitted none; weighted by the care-planned's "
        "expected untreated attendances after the lag",
    }


def _within_group_index(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted array."""
    if group.size == 0:
        return group
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    run = np.diff(np.r_[starts, group.size])
    return np.arange(group.size) - np.repeat(starts, run)
