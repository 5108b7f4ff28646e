"""The synthetic North West London population: ``generate(out, settings)``.

Writes one Parquet file per canonical table, ``dataset.json`` (with the extract date that
validation bounds dates and ages by), ``truth.json`` (every injected effect, the settings and the
calibration figures) and ``true_risk.parquet`` (each person's true probability of an emergency
admission in the 12 months after each April index date); with ``hes``, also the hospital tables
as HES-shaped extracts in ``hes/`` (:mod:`careval.synthetic.hes`), recorded in ``dataset.json``.
The output directory appears only when complete, carries careval's marker, and replaces (with
``overwrite``) only a dataset careval wrote (:mod:`careval.folders`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from careval import __version__
from careval.data.schema import ETHNIC_GROUPS, SEXES
from careval.folders import check_replaceable, kill_point, new_folder
from careval.synthetic import activity, area_truth, bias, clinical, events, programme, social_care
from careval.synthetic.medications import medications
from careval.synthetic.population import NEVER, make_population
from careval.synthetic.settings import (
    AREAS,
    CARE_PLAN_RAMP,
    SynthSettings,
    month_start_days,
    month_text,
)
from careval.synthetic.surveys import write_surveys
from careval.synthetic.tables import NULL_DAY, build, event_days, ids

Progress = Callable[[str], None]
STEPS = 8  # calls to progress, for a progress bar (one more with ``hes``)
HES_FOLDER = "hes"
MONTH_NAMES = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


def generate(
    out: str | Path,
    settings: SynthSettings | None = None,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    hes: bool = False,
) -> dict[str, Any]:
    """Generate a synthetic dataset into ``out``; returns the truth written to ``truth.json``.

    With ``hes`` the dataset also holds ``hes/apc.csv``, ``hes/ae.csv`` and ``hes/op.csv``
    (:func:`careval.synthetic.hes.write_hes`, seeded with the dataset's seed), and
    ``dataset.json`` records them under ``hes``; the canonical tables are the same either way.
    """
    s = settings or SynthSettings()
    out = Path(out)
    check_replaceable(out, "dataset", overwrite)  # before the work; again before the swap
    say = progress or (lambda _step: None)
    # The ninth stream: social care; the tenth: MDG meetings and the fund, whose draws must not
    # follow the plans' count (SeedSequence children are fixed by their index: adding one
    # leaves the others' draws as they were).
    streams = np.random.SeedSequence(s.seed).spawn(10)
    rng = [np.random.default_rng(x) for x in streams]
    first, t_months = s.first_month, s.n_months

    say("people, practices and registrations")
    pop = make_population(s, rng[0])
    say("emergency admissions and care plans")
    em = activity.emergency_panel(s, pop, rng[1])
    say("clinical records")
    dem_diag, six_cit = clinical.dementia(s, pop, em.plan_month, rng[2])
    dm_meas = clinical.diabetes_measurements(s, pop, em.plan_month, rng[3])

    out.parent.mkdir(parents=True, exist_ok=True)
    with new_folder(out, "dataset", overwrite=overwrite) as tmp:
        pid = ids("P", rng[4].permutation(pop.n) + 1, 9)
        death_day = np.where(
            pop.death_month < t_months,
            event_days(first + np.minimum(pop.death_month, t_months - 1), None, rng[4]),
            NULL_DAY,
        )
        tables: dict[str, pa.Table] = {}
        say("people and conditions tables")
        tables.update(events.population_tables(s, pop, pid, death_day, dem_diag, rng[4]))
        say("hospital activity tables")
        tables.update(events.hospital_tables(s, pop, em, pid, death_day, rng[5]))
        say("programme and clinical tables")
        plan_p, plan_m, plan_cols = programme.care_plans(s, pop, em.plan_month, rng[6])
        plan_days = event_days(first + plan_m, death_day[plan_p], rng[6])
        tables["care_plans"] = build(
            "care_plans",
            {
                "care_plan_id": ids("C", np.arange(1, plan_p.size + 1), 8),
                "person_id": pc.take(pid, pa.array(plan_p)),
                "created_date": plan_days,
                **plan_cols,
            },
        )
        tables["social_care_services"] = social_care.social_care_services(
            s, pop, em.plan_month, pid, death_day, rng[8]
        )
        meetings, attendance = programme.mdg_meetings(s, rng[9])
        meetings["meeting_date"] = event_days(first + meetings.pop("month"), None, rng[9])
        tables["mdg_meetings"] = build("mdg_meetings", meetings)
        tables["mdg_attendance"] = build("mdg_attendance", attendance)
        fund = programme.innovation_fund(s, pop, rng[9])
        fund["allocation_date"] = event_days(first + fund.pop("month").astype(int), None, rng[9])
        tables["innovation_fund"] = build("innovation_fund", fund)
        tables["medications"] = medications(s, tables["conditions"], tables["persons"])
        meas = [dm_meas, six_cit]
        m_person = np.concatenate([r.person for r in meas])
        m_month = np.concatenate([r.month for r in meas])
        tables["measurements"] = build(
            "measurements",
            {
                "person_id": pc.take(pid, pa.array(m_person)),
                "date": event_days(first + m_month, death_day[m_person], rng[7]),
                "measure": np.concatenate([r.columns["measure"] for r in meas]).astype(str),
                "value": np.concatenate([r.columns["value"] for r in meas]),
            },
        )
        say("writing Parquet files and truth")
        for name, table in tables.items():
            pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
            kill_point("synth-writing")
        write_surveys(  # surveys/ and qualitative/
            tmp,
            s.seed,
            tables["mdg_meetings"].to_pandas(),
            tables["mdg_attendance"].to_pandas(),
            programme_offset=s.programme_offset,
        )
        truth = _truth(s, pop, em, tables)
        pq.write_table(
            _true_risk(s, pop, em, pid, death_day), tmp / "true_risk.parquet", compression="zstd"
        )
        (tmp / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
        manifest = {
            "careval_dataset": 1,
            "synthetic": True,
            "generator": f"careval {__version__} synth",
            "settings": s.to_dict(),
            "extract_date": _extract_date(s, tables).isoformat(),
            "rows": {name: t.num_rows for name, t in tables.items()},
        }
        if hes:
            from careval.synthetic.hes import write_hes

            say("HES-shaped extracts")
            manifest["hes"] = {"folder": HES_FOLDER, **write_hes(tables, tmp / HES_FOLDER, s.seed)}
        (tmp / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return truth


def _true_risk(
    s: SynthSettings, pop, em: activity.Emergency, pid: pa.Array, death_day: np.ndarray
) -> pa.Table:
    """True 12-month emergency-admission probability at each April index date with follow-up.

    Everyone registered and alive on the 1st of April is included, those who die later that
    month too (their true rate is zero from their death month).
    """
    first, t_months = s.first_month, s.n_months
    parts = []
    for k in range(t_months - 11):
        if (first + k) % 12 != 3:  # April
            continue
        day = month_start_days(np.array([first + k]))[0]
        dies_later = (pop.death_month == k) & (death_day > day) & (pop.reg_start <= k)
        who = np.flatnonzero(pop.registered_alive(k) | (dies_later & (pop.leave_month > k)))
        expected = em.rate[who, k : k + 12].sum(axis=1, dtype=np.float64)
        parts.append(
            pa.table(
                {
                    "person_id": pc.take(pid, pa.array(who)),
                    "index_date": pa.array(
                        np.full(who.size, month_start_days(np.array([first + k]))[0]),
                        type=pa.date32(),
                    ),
                    "p_emergency_12m": -np.expm1(-expected),
                    "expected_emergency_12m": expected,
                }
            )
        )
    return pa.concat_tables(parts)


def _extract_date(s: SynthSettings, tables: dict[str, pa.Table]) -> dt.date:
    """The day the synthetic extract is taken: the last day of the window, or the latest date
    in any table when later (spells admitted in the last month are discharged after it).

    Validation bounds every date and age by it; without it today's date would be used, so a
    window reaching past today would fail and old survivors would age with the calendar.
    """
    last = s.first_month + s.n_months  # the month after the window
    day = dt.date(last // 12, last % 12 + 1, 1) - dt.timedelta(days=1)
    for t in tables.values():
        for name in t.column_names:
            if pa.types.is_date(t.schema.field(name).type):
                latest = pc.max(t.column(name)).as_py()
                if latest is not None and latest > day:
                    day = latest
    return day


def _truth(s: SynthSettings, pop, em: activity.Emergency, tables: dict[str, pa.Table]) -> dict:
    """Every injected effect, the parameters used and the calibration achieved."""
    first, t_months, launch = s.first_month, s.n_months, s.launch
    at = pop.registered_alive(launch)
    pilot = at & (pop.area == 0)
    old = pop.age_months(launch, first) >= 75 * 12
    dm = pop.diabetes_onset <= launch
    per380 = 380_000 / max(int(pilot.sum()), 1)
    exposure = activity.exposed(pop, 0, pop.n, t_months)
    plans = em.plan_month < NEVER
    ramp_end = s.moved(max(CARE_PLAN_RAMP))  # the seed's April 2012: about 30% covered
    by_ramp_end = int((em.plan_month <= ramp_end).sum())
    ramp_end_key = "care_plan_coverage_" + _month_words(first + ramp_end)
    scale = s.diabetes_scale
    return {
        "careval_version": __version__,
        "settings": s.to_dict(),
        "effects": {
            "emergency_admissions": {
                "rate_ratio": 1 + s.effect,
                "from_months_after_care_plan": s.effect_lag_months,
                "applies_to": "people with a care plan, from that many months after the plan",
            },
            "ae_attendances_not_admitted": {"rate_ratio": 1.0},
            "ae_attendances": events.ae_truth(s, pop, em),
            "elective_admissions": {"rate_ratio": 1.0},
            "outpatient_appointments": {"rate_ratio": 1.0},
            "community_contacts": {
                "rate_ratio": events.COMMUNITY_PLAN_RATIO,
                "from_months_after_care_plan": s.effect_lag_months,
                "applies_to": "all community contacts (every service and sector)",
            },
            "mental_health_contacts": {
                "rate_ratio": events.MENTAL_HEALTH_PLAN_RATIO,
                "applies_to": "community contacts of service mental_health (a known null)",
            },
            "community_contacts_not_mental_health": {
                "rate_ratio": round(
                    1 + (events.COMMUNITY_PLAN_RATIO - 1) / (1 - events.MENTAL_HEALTH_SHARE), 6
                ),
                "applies_to": "community contacts of every service but mental_health",
            },
            "social_care_packages": {
                "rate_ratio": social_care.PACKAGE_PLAN_RATIO,
                "from_months_after_care_plan": s.effect_lag_months,
                "applies_to": "new community social care packages (social_care_services rows "
                "by start_date, every setting but residential and nursing)",
            },
            "care_home_days": {
                "rate_ratio": social_care.CARE_HOME_PLAN_RATIO,
                "applies_to": "days in residential or nursing care (social_care_services, "
                "start_date to end_date; admissions and stays drawn without regard to plans)",
            },
            "hidden_bias": bias.truth_entry(s),
            "diabetes": {
                "from_months_after_care_plan": s.effect_lag_months,
                **{k: v * scale for k, v in clinical.DIABETES_EFFECTS.items()},
                # Diastolic follows systolic, so its total effect includes the systolic one.
                "dbp": scale
                * (
                    clinical.DIABETES_EFFECTS["dbp"]
                    + clinical.DBP_FROM_SBP * clinical.DIABETES_EFFECTS["sbp"]
                ),
                "dbp_direct": clinical.DIABETES_EFFECTS["dbp"] * scale,
                "units": {
                    "total_cholesterol": "mmol/l",
                    "sbp": "mmHg",
                    "dbp": "mmHg",
                    "hba1c": "mmol/mol",
                    "review_probability": "added probability of a six-monthly review",
                },
            },
            "dementia_case_finding": {
                "diagnosis_rate_ratio_in_pilot_after": month_text(first + s.care_plans_from),
                "value": clinical.DEMENTIA_PILOT_SPEEDUP,
                "six_cit_at_care_plan_for_75_plus": 0.6,
            },
        },
        "selection": {
            "care_plans": "eligible pilot people, weighted towards recent emergency admissions "
            "(last 6 months), earlier admissions (7-18 months), conditions, frailty and MDG "
            "engagement: naive before-after contrasts are biased by regression to the mean",
            "transient_shock": {
                "sd": activity.SHOCK_SD,
                "quarterly_correlation": activity.SHOCK_RHO,
            },
            "frailty_loading": activity.FRAILTY_LOADING,
            "max_monthly_emergency_rate": activity.MAX_MONTHLY_RATE,
            "max_monthly_emergency_rate_with_shock": activity.MAX_SHOCKED_RATE,
        },
        "calibration": {
            "emergency_rate_scale": em.scale,
            "launch_month": month_text(first + launch),
            "pilot_registered_at_launch": int(pilot.sum()),
            "per_380000_at_launch": {
                "diabetes": round(float((pilot & dm).sum() * per380), 1),
                "aged_75_plus": round(float((pilot & old).sum() * per380), 1),
                "both": round(float((pilot & dm & old).sum() * per380), 1),
            },
            "emergency_admissions_per_person_year": round(
                float(em.count.sum() / exposure.sum() * 12), 4
            ),
            "eligible_at_launch": em.eligible_at_launch,
            "care_plans": int(plans.sum()),
            ramp_end_key: round(by_ramp_end / max(em.eligible_at_launch, 1), 4),
        },
        "areas": list(AREAS),
        "area_trends": area_truth.area_trends(s, pop, em),
        "true_risk_file": "true_risk.parquet",
        "true_risk_definition": "1 - exp(-sum of the person's true monthly emergency-admission "
        "rate over the 12 months from the index date, while registered and alive), the rate "
        "including the transient shocks, any care-plan effect and any hidden decline "
        "(effects.hidden_bias) in those months: the "
        "probability given the latent rate path, so no model using only information up to the "
        "index date can exceed its AUC in expectation",
        "rows": {name: t.num_rows for name, t in tables.items()},
        "codes": {"sexes": list(SEXES), "ethnic_groups": list(ETHNIC_GROUPS)},
    }


def _month_words(month: int) -> str:
    """Month number as ``april_2012`` (not the locale's month names)."""
    return f"{MONTH_NAMES[month % 12]}_{month // 12}"
