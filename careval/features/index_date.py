"""Person features at an index date, computed in the engine, with nothing from after the date.

Every event is filtered to ``date < index_date`` before it is counted, so the features of a
dataset and of the same dataset cut at the index date are identical (a test proves it). The
outcome (an emergency admission in the 12 months from the index date) is computed separately by
:func:`outcome_12m` and never joined into the feature expression.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from careval.cohort.eligibility import (
    EligibilitySettings,
    condition_predicate,
    diagnosis_sources,
    emergency_spells,
    population_at,
)
from careval.data.access import Dataset
from careval.data.codelists import HEALTH_NEEDS
from careval.data.schema import ELECTIVE_METHODS
from careval.features.comorbidity import (
    LATEST_COLUMNS,
    charlson_at,
    hfrs_at,
    latest_measurements_at,
)
from careval.features.dates import months_before
from careval.settings import Settings

WINDOWS = (3, 6, 12, 24)  # months of history counted before the index date
# The conditions flagged (has_<condition>) and counted (n_long_term_conditions): the 15 health
# needs, dementia and diabetes, whatever the eligibility rule.
FEATURE_CONDITIONS = HEALTH_NEEDS + ("dementia", "diabetes")


@dataclass(frozen=True)
class FeatureSettings(Settings):
    """Which history windows and conditions feed the features, and who is eligible.

    ``eligibility`` decides the ``eligible`` column only (who a case list or targeting table
    counts as eligible); the model inputs are the same whatever the rule, so a risk model
    scores any cohort (the matched study's panel computes the same features).
    """

    windows: tuple[int, ...] = WINDOWS
    conditions: tuple[str, ...] = FEATURE_CONDITIONS
    eligibility: EligibilitySettings = EligibilitySettings()


def _windowed(
    events: ir.Table,
    date_col: str,
    index_date: dt.date,
    windows: Sequence[int],
    measures: dict[str, ir.Value | None],
    prefix: str,
) -> ir.Table:
    """Per person: for each window, the count (and sums of ``measures``) of events before."""
    d = ibis.date(index_date)
    start = ibis.date(months_before(index_date, max(windows)))
    e = events.filter((events[date_col] < d) & (events[date_col] >= start))
    aggs = {}
    for w in windows:
        inside = e[date_col] >= ibis.date(months_before(index_date, w))
        aggs[f"{prefix}_{w}m"] = inside.cast("int64").sum()
        for name, value in measures.items():
            aggs[f"{name}_{w}m"] = ibis.ifelse(
                inside, e[value] if isinstance(value, str) else value, 0
            ).sum()
    return e.group_by("person_id").agg(**aggs)


def _occupied(
    spells: ir.Table, index_date: dt.date, windows: Sequence[int], prefix: str
) -> ir.Table:
    """Per person: for each window, the days spent in hospital inside it (occupied bed days).

    A night counts in the window it falls in, so the figures over months add up, and a stay
    still going on at the index date counts only up to it (the rest is not yet known).
    """
    d = ibis.date(index_date)
    lo = ibis.date(months_before(index_date, max(windows)))
    s = spells.filter((spells.admission_date < d) & (spells.discharge_date > lo))
    aggs = {}
    for w in windows:
        start = ibis.date(months_before(index_date, w))
        days = ibis.least(s.discharge_date, d).delta(
            ibis.greatest(s.admission_date, start), unit="day"
        )
        aggs[f"{prefix}_{w}m"] = ibis.greatest(days, 0).sum()
    return s.group_by("person_id").agg(**aggs)


def conditions_before(ds: Dataset, conditions: Sequence[str], d: ir.DateValue) -> ir.Table:
    """Per person with any of ``conditions`` coded before ``d`` (GP records and hospital
    diagnoses: :func:`~careval.cohort.eligibility.diagnosis_sources`): person_id
    and ``has_<condition>`` (1 when coded before ``d``, else 0), one column per condition.

    One pass over each source with a column per condition, rather than one query and one join
    per condition: the same answer as ``first_diagnosis(ds, c).first_date < d`` for each.
    """
    cols = [f"has_{c}" for c in conditions]
    parts = []
    for t, system, code, day in diagnosis_sources(ds):
        t = t.filter(t[day] < d)
        flags = {
            col: condition_predicate(t, cond, system, code)
            for col, cond in zip(cols, conditions, strict=True)
        }
        parts.append(t.select("person_id", **flags))
    union = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return union.group_by("person_id").agg(
        **{col: ibis.coalesce(union[col].cast("int64").max(), 0) for col in cols}
    )


def features_at(
    ds: Dataset, index_date: dt.date, settings: FeatureSettings | None = None
) -> ir.Table:
    """One row per person registered and alive on ``index_date``, with history features."""
    st = settings or FeatureSettings()
    d = ibis.date(index_date)
    base = population_at(ds, index_date, st.eligibility)
    base = base.select(
        "person_id",
        "practice_code",
        "area",
        "mdg",
        "age",
        "imd_decile",
        "eligible",
        female=(base.sex == "F").cast("int64"),
    )
    emerg = emergency_spells(ds)
    parts = [
        _windowed(
            emerg,
            "admission_date",
            index_date,
            st.windows,
            {"emergency_cost": "cost"},
            "emergency_admissions",
        ),
        _occupied(emerg, index_date, st.windows, "emergency_bed_days"),
    ]
    s = ds.table("inpatient_spells")
    elective = s.filter(
        s.admission_method.isin(list(ELECTIVE_METHODS)) & ~s.patient_classification.isin(["3", "4"])
    )
    parts.append(
        _windowed(
            elective,
            "admission_date",
            index_date,
            st.windows,
            {"elective_cost": "cost"},
            "elective_admissions",
        )
    )
    if ds.has("ae_attendances"):
        parts.append(
            _windowed(
                ds.table("ae_attendances"),
                "arrival_date",
                index_date,
                st.windows,
                {},
                "ae_attendances",
            )
        )
    if ds.has("outpatient_appointments"):
        op = ds.table("outpatient_appointments")
        parts.append(
            _windowed(
                op.filter(op.attended),
                "appointment_date",
                index_date,
                st.windows,
                {},
                "outpatient_attendances",
            )
        )
    out = base
    for part in parts:
        out = out.left_join(part, "person_id").drop("person_id_right")
    last = (
        emerg.filter(emerg.admission_date < d)
        .group_by("person_id")
        .agg(_last=emerg.admission_date.max())
    )
    out = out.left_join(last, "person_id").drop("person_id_right")
    months = (d.year() * 12 + d.month()) - (out._last.year() * 12 + out._last.month())
    out = out.mutate(months_since_emergency=ibis.coalesce(months, 999).cast("int64")).drop("_last")
    cond_cols = [f"has_{cond}" for cond in st.conditions]
    if cond_cols:
        flags = conditions_before(ds, st.conditions, d)
        out = out.left_join(flags, "person_id").drop("person_id_right")
        out = out.mutate(**{c: ibis.coalesce(out[c], 0) for c in cond_cols})
    n_ltc = sum((out[c] for c in cond_cols), ibis.literal(0))
    numeric = [c for c in out.columns if c.endswith("m") and c[-2:-1].isdigit()]
    out = out.mutate(n_long_term_conditions=n_ltc, **{c: ibis.coalesce(out[c], 0) for c in numeric})
    for part in (charlson_at(ds, index_date), hfrs_at(ds, index_date)):
        out = out.left_join(part, "person_id").drop("person_id_right")
    out = out.mutate(
        charlson_index=ibis.coalesce(out.charlson_index, 0.0),
        hfrs=ibis.coalesce(out.hfrs, 0.0),
    )
    if ds.has("measurements"):
        latest = latest_measurements_at(ds, index_date)
        out = out.left_join(latest, "person_id").drop("person_id_right")
    else:
        out = out.mutate(**{c: ibis.null("float64") for c in LATEST_COLUMNS})
    return out


def outcome_12m(ds: Dataset, index_date: dt.date) -> ir.Table:
    """Per person with any: 1 when an emergency admission falls in the 12 months from the date.

    People who die in the year without an admission count as 0; they stay in the denominator
    (the list is for the living on the index date, and death is not an admission).
    """
    d = ibis.date(index_date)
    end = ibis.date(months_before(index_date, -12))
    e = emergency_spells(ds)
    return (
        e.filter((e.admission_date >= d) & (e.admission_date < end))
        .select("person_id")
        .distinct()
        .mutate(emergency_12m=ibis.literal(1))
    )
