"""Who is registered, alive and eligible at a date: the building block of every cohort.

All derivations are Ibis expressions on the dataset's engine, so they run unchanged on DuckDB or
Spark. The programme's eligibility (people aged 75+ and/or with diabetes) is the default; the age
and conditions are settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from careval.data.access import Dataset, age_years
from careval.data.codelists import Code, codes_for
from careval.data.schema import EMERGENCY_METHODS
from careval.errors import ConfigError
from careval.settings import Settings

GROUPS = (
    "under_75_with_diabetes",
    "aged_75_plus_without_diabetes",
    "aged_75_plus_with_diabetes",
)


@dataclass(frozen=True)
class EligibilitySettings(Settings):
    """Programme eligibility: aged ``min_age`` or over, and/or with diabetes."""

    min_age: int = 75
    condition: str = "diabetes"

    def __post_init__(self) -> None:
        if not 0 <= self.min_age <= 120:
            raise ConfigError(f"min_age must be between 0 and 120; got {self.min_age}")
        codes_for(self.condition)  # raises KeyError for an unknown condition


def condition_predicate(t: ir.Table, condition: str, system_col: str | None, code_col: str):
    """Boolean expression: the row's code belongs to ``condition``'s code list."""
    return codes_predicate(t, codes_for(condition), system_col, code_col)


def codes_predicate(t: ir.Table, codes: Sequence[Code], system_col: str | None, code_col: str):
    """Boolean expression: the row's code is one of ``codes`` (exact or prefix, as each says).

    With no ``system_col`` the column holds ICD-10 codes (hospital diagnoses), and only the
    list's ICD-10 codes apply.
    """
    terms = []
    for code in codes:
        col = t[code_col]
        hit = col.startswith(code.code) if code.match == "prefix" else col == code.code
        if system_col is not None:
            hit = (t[system_col] == code.code_system) & hit
        elif code.code_system != "ICD10":
            continue
        terms.append(hit)
    if not terms:
        return ibis.literal(False)
    out = terms[0]
    for term in terms[1:]:
        out = out | term
    return out


def first_diagnosis(ds: Dataset, condition: str) -> ir.Table:
    """Earliest date each person has ``condition`` coded: GP records and hospital diagnoses."""
    parts = []
    if ds.has("conditions"):
        c = ds.table("conditions")
        parts.append(
            c.filter(condition_predicate(c, condition, "code_system", "code")).select(
                "person_id", date=c.date
            )
        )
    s = ds.table("inpatient_spells")
    parts.append(
        s.filter(condition_predicate(s, condition, None, "primary_diagnosis")).select(
            "person_id", date=s.admission_date
        )
    )
    union = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return union.group_by("person_id").agg(first_date=union.date.min())


def population_at(
    ds: Dataset,
    date: dt.date,
    settings: EligibilitySettings | None = None,
    conditions: Sequence[str] = (),
) -> ir.Table:
    """Everyone registered and alive on ``date``, with practice, area, age and eligibility.

    Columns: person_id, practice_code, area, mdg, sex, imd_decile, age, aged_75_plus (named for
    the default; it means ``age >= min_age``), has_<condition> (the eligibility condition, then
    each of ``conditions``), eligible, group (one of ``GROUPS`` or null when not eligible).
    """
    st = settings or EligibilitySettings()
    d = ibis.date(date)
    p, r, pr = ds.table("persons"), ds.table("registrations"), ds.table("practices")
    reg = r.filter((r.start_date <= d) & (r.end_date.isnull() | (r.end_date >= d)))
    # One practice per person on the date: the latest registration starting on or before it.
    reg = reg.mutate(
        _rn=ibis.row_number().over(
            ibis.window(group_by="person_id", order_by=ibis.desc("start_date"))
        )
    ).filter(ibis._._rn == 0)
    alive = p.filter(p.death_date.isnull() | (p.death_date > d))
    base = alive.join(reg, "person_id").join(pr, "practice_code")
    out = base.select(
        "person_id",
        "practice_code",
        "area",
        "mdg",
        "sex",
        "imd_decile",
        age=age_years(base.birth_month, d),
    )
    for cond in dict.fromkeys([st.condition, *conditions]):
        first = first_diagnosis(ds, cond).filter(ibis._.first_date <= d)
        out = (
            out.left_join(first, "person_id")
            .mutate(**{f"has_{cond}": ibis._.first_date.notnull()})
            .drop("first_date", "person_id_right")
        )
    old = out.age >= st.min_age
    cond = out[f"has_{st.condition}"]
    return out.mutate(
        aged_75_plus=old,
        eligible=old | cond,
        group=ibis.cases(
            (~old & cond, GROUPS[0]),
            (old & ~cond, GROUPS[1]),
            (old & cond, GROUPS[2]),
            else_=ibis.null("string"),
        ),
    )


def emergency_spells(ds: Dataset) -> ir.Table:
    """Emergency admission spells (ADMIMETH 21-2D, 28), regular attenders (CLASSPAT 3, 4) out."""
    s = ds.table("inpatient_spells")
    return s.filter(
        s.admission_method.isin(list(EMERGENCY_METHODS))
        & ~s.patient_classification.isin(["3", "4"])
    )
