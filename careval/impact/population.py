"""The study population: the treated at their entry month and the candidate controls.

The treatment is the first qualifying event of the intervention per person
(:class:`~careval.impact.settings.InterventionSettings`; by default the first care plan).
Rolling entry: everyone with the intervention enters at the month of their first event, when
alive and registered at a practice of the programme's areas (``programme_areas``) at the start
of that month; the potential controls are the eligible people (the study's eligibility rule)
of the comparator areas (``control_areas``; and, with ``not_yet_treated``, the programme's
people not yet treated) alive and registered at the start of the same month, with everyone's
history taken then. Nobody with the intervention is a control from the month of their own
first event (with ``not_yet_treated``), or at all (without).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd

from careval.cohort.eligibility import EligibilitySettings
from careval.cohort.monthly import MonthlyRegistrations
from careval.data.access import Dataset
from careval.data.areas import data_areas, resolve_areas
from careval.data.codelists import code_list
from careval.errors import ConfigError
from careval.features.index_date import WINDOWS
from careval.impact.panel import Panel, build_panel, month_of
from careval.impact.settings import (
    RECENT_BAND,
    ImpactSettings,
    InterventionSettings,
    OutcomeSettings,
)
from careval.risk.model import IMD_RECORDED, RiskModel, design_matrix, fill_unknown_imd

NEVER_MONTH = 10**9  # censor month (a month number) of someone never treated
AGE_BANDS = (0, 65, 75, 85, 200)
PS_COVARIATES = (
    "risk_logit",
    "age",
    "female",
    "imd_decile",
    IMD_RECORDED,  # only where some decile is unknown (study_population)
    "emergency_admissions_3m",
    "emergency_admissions_6m",
    "emergency_admissions_12m",
    "emergency_admissions_24m",
    "emergency_bed_days_12m",
    "emergency_cost_12m",
    "elective_admissions_12m",
    "ae_attendances_12m",
    "outpatient_attendances_12m",
    "months_since_emergency",
    "n_long_term_conditions",
)
# Recent emergency admissions enter the propensity model as bands too (at least 1, 2, 3 in the
# last 3, 6 and 12 months), and the study matches exactly on RECENT_BAND: 0, 1, 2 or more in
# the last 6 months. Programmes pick people for their recent admissions, and recent counts
# are partly chance: a treated person picked for a chance peak, matched to a control whose
# same counts are closer to their usual rate, falls further back afterwards. Matched only
# through a score linear in the counts, the treated ended with slightly more recent admissions
# than their controls (+0.007 in 6 months) and that chance excess gave the no-effect estimate
# a log rate ratio of about -0.04; the same fit on the generator's true rates showed none
# (bench/bench_recent_use.py and docs/benchmarks.md).
RECENT_BAND_CAP = 2
USE_BANDS = {3: (1, 2, 3), 6: (1, 2, 3), 12: (1, 2, 3)}  # window (months) -> at least these


@dataclass
class StudyPopulation:
    """Treated and candidate-control rows at their entry months, with covariates."""

    frame: pd.DataFrame  # one row per (person, entry month) candidate; ``treated`` 0/1
    panel: Panel
    attrition: dict[str, int]


def first_of(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def _age_band(age: pd.Series) -> pd.Series:
    labels = [
        f"{a}-{b - 1}" if b < 200 else f"{a}+"
        for a, b in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)
    ]
    labels[0] = f"under {AGE_BANDS[1]}"
    return pd.cut(age, AGE_BANDS, right=False, labels=labels).astype(str)


def candidates(
    ds: Dataset,
    entries: pd.DataFrame,
    control_areas: Sequence[str],
    eligibility: EligibilitySettings | None = None,
    treated_areas: Sequence[str] | None = None,
) -> list[pd.DataFrame]:
    """For each entry month: the treated entering then and the eligible comparator-area people.

    The same rules as :func:`careval.cohort.eligibility.population_at` (registered on the 1st
    of the month, at the practice of the latest registration starting by then; alive; eligible
    by ``eligibility``'s rule, conditions recorded by then), evaluated for every month from one
    read of the relevant registrations instead of one engine query per month (a test checks
    the two agree). An entering person is treated when registered then in one of
    ``treated_areas`` (None: any area).
    """
    el = eligibility or EligibilitySettings()
    who = ibis.memtable(pd.DataFrame({"person_id": entries.person_id.astype(str).unique()}))
    r, pr = ds.table("registrations"), ds.table("practices")
    reg = r.join(pr, "practice_code")
    cols = ["person_id", "practice_code", "area", "mdg", "start_date", "end_date"]
    reg = ibis.union(
        reg.filter(reg.area.isin(list(control_areas))).select(*cols),
        reg.semi_join(who, "person_id").select(*cols),
    ).to_pandas()
    if reg.empty:
        raise ConfigError(
            "no registrations of the people entering the study, nor of possible controls in "
            f"the control areas ({', '.join(control_areas) or 'none'}): nobody to match"
        )
    regs = MonthlyRegistrations(ds, reg, el, only_these=True)
    out = []
    for m in sorted(entries.entry_month.unique()):
        entering = set(entries.person_id[entries.entry_month == m].astype(str))
        g, of_age, with_condition = regs.on(int(m))
        eligible = np.asarray(el.eligible(of_age, with_condition), dtype=bool)
        is_t = g.person_id.isin(entering)
        if treated_areas is not None:
            is_t &= g.area.isin(list(treated_areas))
        keep = ((g.area.isin(list(control_areas)).to_numpy() & eligible) | is_t).to_numpy()
        got = g.loc[keep, ["person_id", "area", "practice_code", "mdg"]].copy()
        got["eligible"] = eligible[keep]
        got["entry_month"] = int(m)
        got["treated"] = is_t[keep].astype(np.int64).to_numpy()
        out.append(got)
    return out


def first_events(ds: Dataset, intervention: InterventionSettings) -> pd.DataFrame:
    """Each person's first qualifying event of the intervention: person_id, created (its date).

    Raises :class:`~careval.errors.ConfigError` naming the table or the columns missing.
    """
    iv = intervention
    if not ds.has(iv.table):
        raise ConfigError(f"the impact study needs the {iv.table} table (the intervention)")
    t = ds.table(iv.table)
    missing = [c for c in iv.columns if c not in t.columns]
    if missing:
        raise ConfigError(
            f"the intervention table {iv.table} has no column {', '.join(missing)} "
            f"(its columns: {', '.join(t.columns)})"
        )
    if iv.codes and iv.code_column:
        system = "code_system" if "code_system" in t.columns else None
        terms = []
        for ref in iv.codes:
            for code in code_list(ref).codes:
                col = t[iv.code_column].cast("string")
                hit = col.startswith(code.code) if code.match == "prefix" else col == code.code
                terms.append(hit & (t[system] == code.code_system) if system else hit)
        keep = terms[0]
        for term in terms[1:]:
            keep = keep | term
        t = t.filter(keep)
    for col, values in iv.where.items():
        t = t.filter(t[col].cast("string").isin(list(values)))
    t = t.filter(t[iv.date_column].notnull())
    return t.group_by("person_id").agg(created=t[iv.date_column].min()).to_pandas()


def study_population(
    ds: Dataset,
    window: tuple[dt.date, dt.date],
    settings: ImpactSettings,
    risk_model: RiskModel | None,
    outcomes: Sequence[OutcomeSettings] | None = None,
) -> StudyPopulation:
    """Treated at their entry month and eligible comparator-area people at the same months,
    with their panel measuring ``outcomes`` (default: the settings' outcomes).

    Raises :class:`~careval.errors.ConfigError` when a programme or control area is not an
    area of the data (naming it and the areas the data have).
    """
    areas = resolve_areas(
        data_areas(ds),
        settings.programme_areas,
        settings.control_areas,
        ("programme_areas", "control_areas"),
    )
    iv = settings.intervention
    first = first_events(ds, iv)
    if first.empty:
        raise ConfigError(
            f"the impact study needs {iv.label}s; no row of the {iv.table} table qualifies"
        )
    first["entry_month"] = [month_of(d) for d in pd.to_datetime(first.created).dt.date]
    plan_months = first[["person_id", "entry_month"]].copy()
    data_first, data_last = month_of(window[0]), month_of(window[1])
    lo = month_of(settings.entry_from) if settings.entry_from else int(first.entry_month.min())
    hi = (
        month_of(settings.entry_to) if settings.entry_to else data_last - settings.min_follow_up + 1
    )
    attrition = {"care_planned": int(len(first))}
    first = first[(first.entry_month >= max(lo, data_first + 12)) & (first.entry_month <= hi)]
    attrition["entered_in_study_window"] = int(len(first))
    pool = areas.comparators
    if settings.not_yet_treated:
        pool += areas.programme
    rows = candidates(ds, first, pool, settings.eligibility, treated_areas=areas.programme)
    if not rows:
        raise ConfigError(f"no {iv.label}s fall in the study window")
    # The engine returns rows in no set order: sort, so that ties break the same way each run.
    frame = pd.concat(rows, ignore_index=True).sort_values(
        ["entry_month", "person_id"], kind="stable", ignore_index=True
    )
    # A person's first treatment month, all events counted (also any outside the window).
    plan_month = plan_months.set_index("person_id").entry_month
    censor = frame.person_id.map(plan_month).fillna(NEVER_MONTH).astype(np.int64).to_numpy()
    if settings.not_yet_treated:  # controls only before their own treatment
        keep = (frame.treated == 1).to_numpy() | (censor > frame.entry_month.to_numpy())
    else:  # the ever treated are never controls (also outside the pilot, if any there)
        keep = (frame.treated == 1).to_numpy() | (censor == NEVER_MONTH)
    frame = frame[keep].reset_index(drop=True)
    frame["censor_month"] = censor[keep]
    attrition["treated_alive_and_registered_at_entry"] = int(frame.treated.sum())
    outs = settings.outcomes if outcomes is None else outcomes
    panel = build_panel(ds, frame.person_id.to_numpy(), data_first, data_last, outs)
    rows_p = panel.rows(frame.person_id.to_numpy())
    feats = panel.features(rows_p, frame.entry_month.to_numpy(), WINDOWS)
    frame = pd.concat([frame.reset_index(drop=True), feats], axis=1)
    frame["panel_row"] = rows_p
    if risk_model is not None:
        x = design_matrix(frame.drop(columns=["panel_row", "entry_month", "treated"]))
        p = np.clip(risk_model.predict_proba(x)[:, 1], 1e-6, 1 - 1e-6)
        frame["risk_score"] = p
        frame["risk_logit"] = np.log(p / (1 - p))
    else:
        frame["risk_score"] = np.nan
        frame["risk_logit"] = 0.0
    fill_unknown_imd(frame)  # where a decile is unknown: the middle value and an indicator
    frame["age_band"] = _age_band(frame.age)
    frame["months_since_emergency"] = frame.months_since_emergency.clip(upper=25)
    add_use_bands(frame)
    return StudyPopulation(frame, panel, attrition)


def use_band_columns() -> list[str]:
    """The propensity model's band indicators of recent emergency admissions."""
    return [f"emergency_admissions_{w}m_ge{j}" for w, js in USE_BANDS.items() for j in js]


def add_use_bands(frame: pd.DataFrame) -> None:
    """Add :data:`RECENT_BAND` and the band indicators (:func:`use_band_columns`) in place."""
    frame[RECENT_BAND] = np.minimum(frame.emergency_admissions_6m, RECENT_BAND_CAP).astype(np.int64)
    for w, js in USE_BANDS.items():
        count = frame[f"emergency_admissions_{w}m"]
        for j in js:
            frame[f"emergency_admissions_{w}m_ge{j}"] = (count >= j).astype(np.int64)


def covariates(frame: pd.DataFrame) -> list[str]:
    """Propensity-score covariates present (and varying) in the study frame."""
    has = sorted(c for c in frame.columns if c.startswith("has_"))
    cols = list(PS_COVARIATES) + use_band_columns() + has
    if has:  # the count of conditions is the sum of the indicators: keep it out of the model
        cols.remove("n_long_term_conditions")
    return [c for c in cols if c in frame.columns and frame[c].nunique() > 1]
