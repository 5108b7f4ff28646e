"""The outcomes of the matched study as settings: what is counted or summed per person and
calendar month, from which event table, with which rows kept, and how it is modelled; the
built-in outcomes (which also feed the matching features) and the seed evaluation's default
list. :mod:`careval.impact.settings` re-exports them."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from careval.data.codelists import code_list
from careval.data.schema import (
    CARE_HOME_SETTINGS,
    ELECTIVE_METHODS,
    EMERGENCY_METHODS,
    EVENT_DATE,
    TABLES,
)
from careval.errors import ConfigError
from careval.impact.fe import MODELS, Model
from careval.settings import Settings

# What an outcome measures per person-month: events, the sum of a value column, or the days
# between two dates (a spell's occupied bed days, split over the calendar months it spans).
Measure = Literal["count", "sum", "bed_days"]
# Where an event table keeps its codes: (system column or None for ICD-10 only, code column).
CODE_COLUMNS = {
    "inpatient_spells": (None, "primary_diagnosis"),
    "conditions": ("code_system", "code"),
    "medications": ("code_system", "code"),
}
# The fields that define what an outcome measures (not how it is modelled or labelled).
DEFINITION = (
    "table",
    "date_column",
    "where",
    "exclude",
    "codes",
    "code_column",
    "measure",
    "value_column",
    "end_column",
    "unit_cost",
)
NAME = re.compile(r"^[a-z][a-z0-9_]{0,59}$")


@dataclass(frozen=True)
class OutcomeSettings(Settings):
    """One outcome of the matched study, measured per person and calendar month.

    Parameters
    ----------
    name
        The outcome's key in ``results.json`` (``impact.outcomes.<name>``); lower case, digits
        and underscores. Empty: the table's name.
    table
        An event table of the data model with ``person_id`` and a date column.
    date_column
        The date that places an event in a month. Empty: the table's event date
        (``admission_date``, ``arrival_date``, ``appointment_date``, ``contact_date``, ...).
    where
        Rows kept: column -> allowed values (as text; ``"true"``/``"false"`` for a yes/no
        column), every column's condition applying.
    exclude
        Rows dropped: column -> values.
    codes
        Keep only rows coded with this code list: a built-in condition (``"copd"``) or the path
        of a CSV code list in the format of ``careval/data/codelists/conditions.csv``.
    code_column
        The column holding the codes. Empty: ``primary_diagnosis`` for inpatient spells,
        ``code`` (with ``code_system``) for conditions.
    measure
        ``count`` of events (default), ``sum`` of ``value_column``, or ``bed_days``: the days
        from ``date_column`` to ``end_column``, split over the calendar months they span.
    value_column
        The numeric column summed by ``measure="sum"`` (e.g. ``cost``).
    end_column
        The date ending each event's days, for ``measure="bed_days"``.
    unit_cost
        Pounds per unit of the measure (per event, per bed day); the outcome is then a cost.
    model
        ``poisson`` for counts (reported as rate ratios), ``negbin`` for overdispersed counts
        (negative binomial, NB2: rate ratios too, the observations weighted by their variance
        ``mu + alpha mu^2``), ``ols`` for costs (pounds a person-month).
    label
        How the report names the outcome. Empty: its name.
    """

    name: str = ""
    table: str = "inpatient_spells"
    date_column: str = ""
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: dict[str, tuple[str, ...]] = field(default_factory=dict)
    codes: str | None = None
    code_column: str = ""
    measure: Measure = "count"
    value_column: str | None = None
    end_column: str | None = None
    unit_cost: float | None = None
    model: Model = "poisson"
    label: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []
        put = object.__setattr__  # frozen: the defaults resolved once, here
        put(self, "where", _filters(self.where, "where", problems))
        put(self, "exclude", _filters(self.exclude, "exclude", problems))
        table = TABLES.get(self.table)
        if table is None or "person_id" not in table.column_names:
            events = [n for n, t in TABLES.items() if "person_id" in t.column_names]
            events = [n for n in events if n != "persons" and n != "registrations"]
            problems.append(
                f"table: {self.table!r} is not an event table of the data model; allowed: "
                + ", ".join(events)
            )
            raise ConfigError(f"outcome {self.name or self.table!r}: " + "; ".join(problems))
        if not self.name:
            put(self, "name", self.table)
        if not self.date_column:
            put(self, "date_column", EVENT_DATE.get(self.table, ""))
        if not self.code_column and self.codes is not None and self.table in CODE_COLUMNS:
            put(self, "code_column", CODE_COLUMNS[self.table][1])
        if not NAME.match(self.name):
            problems.append(
                f"name: {self.name!r} must be lower case letters, digits and underscores, "
                "starting with a letter"
            )
        columns = {c.name: c for c in table.columns}

        def column(role: str, name: str | None, types: tuple[str, ...]) -> None:
            if name is None:
                problems.append(f"{role}: needed for measure={self.measure!r}")
            else:
                problems.extend(column_problems(self.table, columns, role, name, types))

        column("date_column", self.date_column or None, ("date",))
        for role, filters in (("where", self.where), ("exclude", self.exclude)):
            for name, values in filters.items():
                column(f"{role}.{name}", name, ("string", "bool", "int"))
                col = columns.get(name)
                if col is None:
                    continue
                allowed = col.allowed or (("true", "false") if col.type == "bool" else None)
                bad = [v for v in values if allowed is not None and v not in allowed]
                if col.type == "int":
                    bad = [v for v in values if not re.fullmatch(r"-?[0-9]+", v)]
                if bad:
                    problems.append(
                        f"{role}.{name}: {', '.join(map(repr, bad))} not allowed"
                        + (f"; allowed: {', '.join(allowed)}" if allowed else "")
                    )
        if self.measure == "sum":
            column("value_column", self.value_column, ("int", "float"))
        elif self.value_column is not None:
            problems.append("value_column: only for measure='sum'")
        if self.measure == "bed_days":
            column("end_column", self.end_column, ("date",))
        elif self.end_column is not None:
            problems.append("end_column: only for measure='bed_days'")
        if self.unit_cost is not None and not (0 < self.unit_cost < 1e7):
            problems.append(f"unit_cost: must be a positive number of pounds; got {self.unit_cost}")
        if self.codes is not None:
            self._check_codes(columns, problems)
        if self.model not in MODELS:
            problems.append(f"model: {self.model!r} is not one of {', '.join(map(repr, MODELS))}")
        if problems:
            raise ConfigError(f"outcome {self.name!r}: " + "; ".join(problems))

    def _check_codes(self, columns: dict[str, Any], problems: list[str]) -> None:
        if not self.code_column:
            problems.append(
                f"code_column: {self.table} has no default code column; name the one to match"
            )
            return
        if self.code_column not in columns or columns[self.code_column].type != "string":
            problems.append(f"code_column: {self.table} has no text column {self.code_column!r}")
            return
        try:
            codes = code_list(self.codes or "").codes
        except ConfigError as exc:
            problems.append(str(exc))
            return
        if self.system_column is None and not any(c.code_system == "ICD10" for c in codes):
            problems.append(
                f"codes: {self.table}.{self.code_column} holds ICD-10 codes and the list "
                f"{self.codes!r} has none"
            )

    @property
    def system_column(self) -> str | None:
        """The column naming each code's system (None: the codes are ICD-10)."""
        system, code = CODE_COLUMNS.get(self.table, (None, ""))
        return system if code == self.code_column else None

    @property
    def definition(self) -> dict[str, Any]:
        """What the outcome measures: every field but its name, model and label."""
        return {k: getattr(self, k) for k in DEFINITION}

    @property
    def title(self) -> str:
        """The outcome's name on the page."""
        return self.label or self.name.replace("_", " ").capitalize()


def _filters(value: Any, role: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    """``where``/``exclude`` with each value a tuple of text (one value or true/false accepted)."""
    if not isinstance(value, dict):
        problems.append(f"{role}: expected column -> values; got {value!r}")
        return {}
    out = {}
    for k, v in value.items():
        items = v if isinstance(v, list | tuple) else (v,)
        out[str(k)] = tuple(str(x).lower() if isinstance(x, bool) else str(x) for x in items)
        if not items:
            problems.append(f"{role}.{k}: no values")
    return out


def column_problems(
    table: str, columns: dict[str, Any], role: str, name: str, types: tuple[str, ...]
) -> list[str]:
    """Why column ``name`` of ``table`` (its ``columns`` in the data model) cannot serve as
    ``role``: absent (with the nearest name) or of none of ``types``; [] when it can."""
    if name not in columns:
        near = difflib.get_close_matches(name, list(columns), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return [f"{role}: {table} has no column {name!r}{hint}"]
    if columns[name].type not in types:
        return [
            f"{role}: {table}.{name} is {_a(columns[name].type)} column; "
            f"needed: {' or '.join(types)}"
        ]
    return []


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


_SPELLS = "inpatient_spells"
Filters = dict[str, tuple[str, ...]]
_REGULAR_ATTENDERS: Filters = {"patient_classification": ("3", "4")}  # CLASSPAT 3, 4: not spells
_EMERGENCY: Filters = {"admission_method": EMERGENCY_METHODS}
_ELECTIVE: Filters = {"admission_method": ELECTIVE_METHODS}
_BED_DAYS: dict[str, Any] = {"measure": "bed_days", "end_column": "discharge_date"}
_COST: dict[str, Any] = {"measure": "sum", "value_column": "cost", "model": "ols"}
# The measures of the study's panel (careval.impact.panel.MEASURES), as outcomes. They also feed
# the matching features, so an outcome under one of these names must be defined as here.
PANEL_OUTCOMES: dict[str, OutcomeSettings] = {
    o.name: o
    for o in (
        OutcomeSettings(
            "emergency_admissions",
            _SPELLS,
            where=_EMERGENCY,
            exclude=_REGULAR_ATTENDERS,
            label="Emergency admissions",
        ),
        OutcomeSettings(
            "emergency_bed_days",
            _SPELLS,
            where=_EMERGENCY,
            exclude=_REGULAR_ATTENDERS,
            label="Emergency bed days",
            **_BED_DAYS,
        ),
        OutcomeSettings(
            "emergency_cost",
            _SPELLS,
            where=_EMERGENCY,
            exclude=_REGULAR_ATTENDERS,
            label="Emergency admission costs (£ a person-month)",
            **_COST,
        ),
        OutcomeSettings(
            "elective_admissions",
            _SPELLS,
            where=_ELECTIVE,
            exclude=_REGULAR_ATTENDERS,
            label="Elective admissions",
        ),
        OutcomeSettings(
            "elective_cost",
            _SPELLS,
            where=_ELECTIVE,
            exclude=_REGULAR_ATTENDERS,
            label="Elective admission costs (£ a person-month)",
            **_COST,
        ),
        OutcomeSettings("ae_attendances", "ae_attendances", label="A&E attendances"),
        OutcomeSettings(
            "outpatient_attendances",
            "outpatient_appointments",
            where={"attended": ("true",)},
            label="Outpatient attendances",
        ),
        OutcomeSettings("bed_days", _SPELLS, label="Bed days", **_BED_DAYS),
        OutcomeSettings(
            "inpatient_cost", _SPELLS, label="Total inpatient costs (£ a person-month)", **_COST
        ),
    )
}
_SOCIAL_CARE = "social_care_services"
# Outcomes across the system beyond the hospital: community and mental health contacts, social
# care packages and days in care homes. They are measured only when a study asks for them (from
# their tables, when present); a synthetic dataset's truth.json plants an effect on each under
# the same name (careval.impact.study.TRUTH_KEYS), so each must be defined as here too. All are
# Poisson: the rate ratio is the Poisson quasi-likelihood's, consistent however overdispersed
# the counts (care home days are: a month in care is 28-31 days, most months none), with the
# standard errors clustered on the matched set.
SYSTEM_OUTCOMES: dict[str, OutcomeSettings] = {
    o.name: o
    for o in (
        OutcomeSettings(
            "community_contacts", "community_contacts", label="Community contacts (all services)"
        ),
        OutcomeSettings(
            "mental_health_contacts",
            "community_contacts",
            where={"service": ("mental_health",)},
            label="Mental health contacts (community)",
        ),
        OutcomeSettings(
            "social_care_packages",
            _SOCIAL_CARE,
            exclude={"setting": CARE_HOME_SETTINGS},
            label="New social care packages (at home)",
        ),
        OutcomeSettings(
            "care_home_days",
            _SOCIAL_CARE,
            where={"setting": CARE_HOME_SETTINGS},
            measure="bed_days",
            end_column="end_date",
            label="Days in residential or nursing care",
        ),
    )
}
BUILTIN_OUTCOMES: dict[str, OutcomeSettings] = PANEL_OUTCOMES | SYSTEM_OUTCOMES
# The seed evaluation's outcomes, primary first, then the system's.
DEFAULT_OUTCOMES = tuple(
    BUILTIN_OUTCOMES[n]
    for n in (
        "emergency_admissions",
        "ae_attendances",
        "elective_admissions",
        "outpatient_attendances",
        "bed_days",
        "emergency_cost",
        "inpatient_cost",
        *SYSTEM_OUTCOMES,
    )
)
