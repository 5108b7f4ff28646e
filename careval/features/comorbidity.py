"""Comorbidity, frailty and latest measurements at an index date, computed in the engine.

- **Charlson comorbidity index**: the 17 categories of Quan et al.'s ICD-10 coding (Med Care
  2005;43:1130-9) with Charlson's 1987 weights, from every ICD-10 diagnosis recorded before the
  date (hospital primary diagnoses, dated at discharge, and ICD-10 rows of ``conditions``) and
  from GP-coded (SNOMED) conditions mapped to a category (:data:`GP_CATEGORIES`); ICD-10 codes
  reach a category only through Quan's list, so that, say, C44 is not a malignancy. A milder
  form does not count when its severe form is present (:data:`HIERARCHY`). Code list:
  ``codelists/charlson_icd10.csv``.
- **Hospital Frailty Risk Score** (Gilbert et al., Lancet 2018;391:1775-82): the weights of the
  109 ICD-10 three-character codes recorded in the 24 months before the date, each code counted
  once. Developed for people aged 75 and over; computed for everyone, and the report reads it
  for the 75+. Code list: ``codelists/hfrs_icd10.csv`` (the paper's weights).
- **Latest measurements**: the most recent value of each measurement in the 24 months before
  the date (on a day with two, the higher), null when none.

Only events strictly before the date count, like every other feature.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources

import ibis
import ibis.expr.types as ir

from careval.cohort.eligibility import condition_predicate
from careval.data.access import Dataset
from careval.data.schema import MEASURES
from careval.features.dates import months_before

FRAILTY_MONTHS = 24  # HFRS look-back (Gilbert et al.)
MEASUREMENT_MONTHS = 24  # how old a "latest" measurement may be
# GP-coded careval conditions that fall in a Charlson category (their ICD-10 codes are also in
# the Quan list; the GP's SNOMED codes reach the category through this map).
GP_CATEGORIES = {
    "heart_failure": "chf",
    "peripheral_arterial_disease": "pvd",
    "stroke_tia": "cerebrovascular",
    "dementia": "dementia",
    "copd": "pulmonary",
    "asthma": "pulmonary",
    "rheumatoid_arthritis": "rheumatic",
    "diabetes": "diabetes",
    "ckd": "renal",
    "cancer": "malignancy",
}
# mild form -> severe form: the mild one's weight is dropped when the severe one is present
HIERARCHY = {
    "diabetes": "diabetes_complicated",
    "mild_liver": "severe_liver",
    "malignancy": "metastatic",
}


@dataclass(frozen=True)
class ListedCode:
    """One row of a shipped ICD-10 list: code (no dot) and its weight (and category)."""

    code: str
    weight: float
    category: str = ""


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("careval.data.codelists").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def charlson_codes() -> tuple[ListedCode, ...]:
    """Quan's ICD-10 prefixes (3 or 4 characters, no dot) with category and Charlson weight."""
    return tuple(
        ListedCode(r["code"], float(r["weight"]), r["category"])
        for r in _read("charlson_icd10.csv")
    )


@cache
def charlson_weights() -> dict[str, float]:
    """Category -> weight, in the list's order."""
    return {c.category: c.weight for c in charlson_codes()}


@cache
def hfrs_codes() -> tuple[ListedCode, ...]:
    """The 109 HFRS ICD-10 three-character codes and their weights."""
    return tuple(ListedCode(r["code"], float(r["weight"])) for r in _read("hfrs_icd10.csv"))


def icd10_diagnoses(ds: Dataset) -> ir.Table:
    """Every ICD-10 diagnosis with its date: ``person_id``, ``date``, ``code`` (upper, no dot).

    A spell's diagnosis is dated by its discharge, when it is coded: a stay running over the
    index date does not tell the features what it was for.
    """
    s = ds.table("inpatient_spells")
    parts = [s.select("person_id", date=s.discharge_date, code=s.primary_diagnosis)]
    if ds.has("conditions"):
        c = ds.table("conditions")
        parts.append(c.filter(c.code_system == "ICD10").select("person_id", "date", "code"))
    u = ibis.union(*parts) if len(parts) > 1 else parts[0]
    return u.mutate(code=u.code.upper().replace(".", ""))


def charlson_first(ds: Dataset) -> ir.Table:
    """Per person and Charlson category, the first date: person_id, category, first_date."""
    dx = icd10_diagnoses(ds)
    listed = charlson_codes()
    parts = []
    for n in sorted({len(c.code) for c in listed}):
        lst = ibis.memtable(
            {
                "_code": [c.code for c in listed if len(c.code) == n],
                "category": [c.category for c in listed if len(c.code) == n],
            }
        )
        part = dx.mutate(_code=dx.code.substr(0, n)).join(lst, "_code")
        parts.append(part.select("person_id", "category", "date"))
    if ds.has("conditions"):  # GP (SNOMED) codes; ICD-10 ones went through Quan's list above
        c = ds.table("conditions")
        for condition, category in GP_CATEGORIES.items():
            gp = c.filter(condition_predicate(c, condition, "code_system", "code"))
            gp = gp.filter(gp.code_system != "ICD10")
            parts.append(gp.select("person_id", category=ibis.literal(category), date=gp.date))
    u = ibis.union(*parts)
    return u.group_by("person_id", "category").agg(first_date=u.date.min())


def charlson_expr(has: dict[str, ir.IntegerValue]) -> ir.NumericValue:
    """The index from 0/1 category indicators, with :data:`HIERARCHY` applied."""
    total: ir.NumericValue = ibis.literal(0.0)
    for category, weight in charlson_weights().items():
        term = has[category]
        if category in HIERARCHY:
            term = term * (1 - has[HIERARCHY[category]])
        total = total + weight * term
    return total


def charlson_at(ds: Dataset, index_date: dt.date) -> ir.Table:
    """``person_id``, ``charlson_index`` for people with any category recorded before the date."""
    f = charlson_first(ds)
    f = f.filter(f.first_date < ibis.date(index_date))
    wide = f.group_by("person_id").agg(
        **{f"_{c}": (f.category == c).any().cast("int64") for c in charlson_weights()}
    )
    return wide.select(
        "person_id", charlson_index=charlson_expr({c: wide[f"_{c}"] for c in charlson_weights()})
    )


def hfrs_events(ds: Dataset) -> ir.Table:
    """Diagnoses on the HFRS list: ``person_id``, ``date``, ``code`` (3 characters), ``weight``."""
    dx = icd10_diagnoses(ds)
    lst = ibis.memtable(
        {"_code": [c.code for c in hfrs_codes()], "weight": [c.weight for c in hfrs_codes()]}
    )
    j = dx.mutate(_code=dx.code.substr(0, 3)).join(lst, "_code")
    return j.select("person_id", "date", code=j._code, weight=j.weight)


def hfrs_at(ds: Dataset, index_date: dt.date, months: int = FRAILTY_MONTHS) -> ir.Table:
    """``person_id``, ``hfrs``: each listed code in the ``months`` before the date, once."""
    e = hfrs_events(ds)
    e = e.filter(
        (e.date < ibis.date(index_date)) & (e.date >= ibis.date(months_before(index_date, months)))
    )
    codes = e.group_by("person_id", "code").agg(weight=e.weight.max())
    return codes.group_by("person_id").agg(hfrs=codes.weight.sum())


def latest_measurements_at(
    ds: Dataset, index_date: dt.date, months: int = MEASUREMENT_MONTHS
) -> ir.Table:
    """``person_id`` and ``latest_<measure>`` for each measure (null when none in the window)."""
    m = ds.table("measurements")
    m = m.filter(
        (m.date < ibis.date(index_date)) & (m.date >= ibis.date(months_before(index_date, months)))
    )
    last = m.group_by("person_id", "measure").agg(_last=m.date.max())
    at = m.join(last, ["person_id", "measure"]).filter(ibis._.date == ibis._._last)
    value = at.group_by("person_id", "measure").agg(value=at.value.max())
    return value.group_by("person_id").agg(
        **{
            f"latest_{name}": value.value.max(where=value.measure == name).cast("float64")
            for name in MEASURES
        }
    )


LATEST_COLUMNS = tuple(f"latest_{name}" for name in MEASURES)
