"""Who is registered, alive and eligible at a date: the building block of every cohort.

All derivations are Ibis expressions on the dataset's engine, so they run unchanged on DuckDB or
Spark. The programme's eligibility (people aged 75+ and/or with diabetes) is the default; the
age threshold, the condition code lists and how they combine are settings
(:class:`EligibilitySettings`).

Eligibility groups
------------------
The data summary and Table 2 split the eligible into groups when the rule is "aged ``A``+ or
with a listed condition" (``combine="or"`` with both an age and at least one condition): the
three groups ``under_A_with_C``, ``aged_A_plus_without_C`` and ``aged_A_plus_with_C``, where
``C`` is the conditions' names joined by ``_or_`` (the default gives
``under_75_with_diabetes``, ``aged_75_plus_without_diabetes``, ``aged_75_plus_with_diabetes``;
65 and COPD give ``under_65_with_copd`` and so on). Every other rule (``combine="and"``, an age
alone, conditions alone) makes one undivided eligible population: it has no groups, and its
tables show the eligible total only (Table 2's ``all_eligible`` rows), since a single group
would repeat the total.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from careval.data.access import Dataset, age_years
from careval.data.codelists import Code, CodeList, code_list
from careval.data.schema import EMERGENCY_METHODS
from careval.errors import ConfigError
from careval.settings import Settings

Combine = Literal["or", "and"]
COMBINE: tuple[Combine, ...] = ("or", "and")
# The default rule's groups (rows of Table 2 and columns of the data summary).
GROUPS = (
    "under_75_with_diabetes",
    "aged_75_plus_without_diabetes",
    "aged_75_plus_with_diabetes",
)
# The name of any rule's group (see the module docstring): count columns wherever published.
GROUP_NAME = re.compile(
    r"^(under_[0-9]+_with|aged_[0-9]+_plus_with|aged_[0-9]+_plus_without)_[a-z][a-z0-9_]*$"
)


@dataclass(frozen=True)
class EligibilityGroup:
    """One group of the eligible: its column or row name and its label in the report."""

    name: str
    label: str


@dataclass(frozen=True)
class EligibilitySettings(Settings):
    """Programme eligibility: an age threshold, condition code lists, and how they combine.

    Parameters
    ----------
    min_age
        Aged ``min_age`` or over on the date; None: no age criterion.
    conditions
        Code lists of the eligibility conditions: built-in names (the ``condition`` column of
        ``careval/data/codelists/conditions.csv``) or paths of CSV files in the same format
        (see :mod:`careval.data.codelists`). A person has a condition when one of its codes is
        recorded on or before the date, in GP records (``conditions``) or as the primary
        diagnosis of a hospital spell (ICD-10 codes).
    combine
        ``"or"``: aged ``min_age``+ or with any listed condition (the default, "aged 75+
        and/or with diabetes"); ``"and"``: aged ``min_age``+ and with at least one listed
        condition. With only one criterion given, that criterion alone.
    """

    min_age: int | None = 75
    conditions: tuple[str, ...] = ("diabetes",)
    combine: Combine = "or"

    def __post_init__(self) -> None:
        problems = []
        if self.min_age is not None and (
            isinstance(self.min_age, bool)
            or not isinstance(self.min_age, int)
            or not 0 <= self.min_age <= 120
        ):
            problems.append(
                f"min_age must be a whole number from 0 to 120 or None; got {self.min_age!r}"
            )
        if isinstance(self.conditions, str) or not isinstance(self.conditions, tuple | list):
            problems.append(
                f"conditions must be a list of code lists, e.g. ('copd',); got {self.conditions!r}"
            )
        else:
            object.__setattr__(self, "conditions", tuple(self.conditions))
            names: dict[str, str] = {}
            for ref in self.conditions:
                try:
                    cl = code_list(ref)
                except ConfigError as exc:
                    problems.append(str(exc))
                    continue
                if cl.name in names:
                    problems.append(
                        f"condition {cl.name!r} is listed twice ({names[cl.name]}, {ref})"
                    )
                names[cl.name] = ref
        if self.combine not in COMBINE:
            problems.append(f"combine must be 'or' or 'and'; got {self.combine!r}")
        if self.min_age is None and not self.conditions:
            problems.append(
                "eligibility needs an age threshold (min_age) or at least one condition"
            )
        if problems:
            raise ConfigError("eligibility: " + "; ".join(problems))

    def code_lists(self) -> tuple[CodeList, ...]:
        """The conditions' code lists, in order."""
        return tuple(code_list(ref) for ref in self.conditions)

    @property
    def names(self) -> tuple[str, ...]:
        """The conditions' names (``has_<name>`` columns of :func:`population_at`)."""
        return tuple(cl.name for cl in self.code_lists())

    def describe(self, short: bool = False) -> str:
        """The rule in words: "aged 75+ and/or with diabetes" (``short``: "75+ and/or
        diabetes"); "aged 65+ with COPD" for ``combine="and"``."""
        cond = " or ".join(cl.phrase for cl in self.code_lists())
        age = f"{self.min_age}+" if short else f"aged {self.min_age}+"
        with_cond = cond if short else f"with {cond}"
        if self.min_age is None:
            return with_cond
        if not self.conditions:
            return age
        if self.combine == "and":
            return f"{age} with {cond}"
        return f"{age} and/or {with_cond}"

    def groups(self) -> tuple[EligibilityGroup, ...]:
        """The groups the eligible are split into (see the module docstring); () for none.

        In order: under ``min_age`` with a condition, of age without one, of age with one.
        """
        if self.combine != "or" or self.min_age is None or not self.conditions:
            return ()
        a, lists = self.min_age, self.code_lists()
        name = "_or_".join(cl.name for cl in lists)
        cond = " or ".join(cl.phrase for cl in lists)
        return (
            EligibilityGroup(f"under_{a}_with_{name}", f"Under {a} with {cond}"),
            EligibilityGroup(f"aged_{a}_plus_without_{name}", f"{a}+ without {cond}"),
            EligibilityGroup(f"aged_{a}_plus_with_{name}", f"{a}+ with {cond}"),
        )

    def group_names(self) -> tuple[str, ...]:
        """The names of :meth:`groups`."""
        return tuple(g.name for g in self.groups())

    def eligible(self, of_age: Any, with_condition: Any) -> Any:
        """Combine the two criteria (boolean Ibis columns or arrays) as the rule says."""
        if self.min_age is None:
            return with_condition
        if not self.conditions:
            return of_age
        return of_age & with_condition if self.combine == "and" else of_age | with_condition


def condition_predicate(t: ir.Table, condition: str, system_col: str | None, code_col: str):
    """Boolean expression: the row's code belongs to ``condition``'s code list.

    ``condition`` is a built-in name or a code list's path (:func:`careval.data.codelists.
    code_list`). Without ``system_col`` the column holds ICD-10 codes, and only those apply.
    """
    return codes_predicate(t, code_list(condition).codes, system_col, code_col)


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


def diagnosis_sources(ds: Dataset) -> list[tuple[ir.Table, str | None, str, str]]:
    """Where a condition is coded: (table, code-system column or None for ICD-10 only, code
    column, date column) for GP records (when the data have them) and hospital diagnoses."""
    out: list[tuple[ir.Table, str | None, str, str]] = []
    if ds.has("conditions"):
        out.append((ds.table("conditions"), "code_system", "code", "date"))
    out.append((ds.table("inpatient_spells"), None, "primary_diagnosis", "admission_date"))
    return out


def first_diagnosis(ds: Dataset, condition: str) -> ir.Table:
    """Earliest date each person has ``condition`` coded: GP records and hospital diagnoses.

    ``condition`` is a built-in name or a code list's path. Columns: person_id, first_date.
    """
    parts = [
        t.filter(condition_predicate(t, condition, system, code)).select("person_id", date=t[day])
        for t, system, code, day in diagnosis_sources(ds)
    ]
    union = parts[0] if len(parts) == 1 else ibis.union(*parts)
    return union.group_by("person_id").agg(first_date=union.date.min())


def first_eligibility_diagnosis(ds: Dataset, settings: EligibilitySettings) -> ir.Table | None:
    """Earliest date each person has any of the eligibility conditions coded (person_id,
    first_date); None when the rule lists no condition."""
    if not settings.conditions:
        return None
    parts = [first_diagnosis(ds, ref) for ref in settings.conditions]
    if len(parts) == 1:
        return parts[0]
    union = ibis.union(*parts)
    return union.group_by("person_id").agg(first_date=union.first_date.min())


def population_at(
    ds: Dataset,
    date: dt.date,
    settings: EligibilitySettings | None = None,
    conditions: Sequence[str] = (),
) -> ir.Table:
    """Everyone registered and alive on ``date``, with practice, area, age and eligibility.

    Columns: person_id, practice_code, area, mdg, sex, imd_decile (null where not known), age,
    has_<condition> (each eligibility condition by name, then each of ``conditions``), of_age
    (``age >= min_age``; true for everyone when there is no age criterion), with_condition (any
    eligibility condition recorded by the date; true for everyone when none is listed),
    eligible, group (one of ``settings.group_names()``, or null when not eligible or the rule
    has no groups).
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
    refs = {code_list(ref).name: ref for ref in [*st.conditions, *conditions]}
    for name, ref in refs.items():
        first = first_diagnosis(ds, ref).filter(ibis._.first_date <= d)
        out = (
            out.left_join(first, "person_id")
            .mutate(**{f"has_{name}": ibis._.first_date.notnull()})
            .drop("first_date", "person_id_right")
        )
    old = out.age >= st.min_age if st.min_age is not None else ibis.literal(True)
    flags = [out[f"has_{name}"] for name in st.names]
    cond = functools.reduce(operator.or_, flags) if flags else ibis.literal(True)
    names = st.group_names()  # only for "or" with both criteria: each group is eligible
    group = (
        ibis.cases(
            (~old & cond, names[0]),
            (old & ~cond, names[1]),
            (old & cond, names[2]),
            else_=ibis.null("string"),
        )
        if names
        else ibis.null("string")
    )
    eligible = st.eligible(old, cond)
    return out.mutate(of_age=old, with_condition=cond, eligible=eligible, group=group)


def emergency_spells(ds: Dataset) -> ir.Table:
    """Emergency admission spells (ADMIMETH 21-2D, 28), regular attenders (CLASSPAT 3, 4) out."""
    s = ds.table("inpatient_spells")
    return s.filter(
        s.admission_method.isin(list(EMERGENCY_METHODS))
        & ~s.patient_classification.isin(["3", "4"])
    )
