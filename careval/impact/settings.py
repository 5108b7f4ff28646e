"""Settings of the matched impact study (every default is stated in the report).

The study's outcomes are settings too: each :class:`OutcomeSettings` says what is counted or
summed per person and calendar month, from which event table, with which rows kept, and how it
is modelled. The default list (:data:`DEFAULT_OUTCOMES`) is the seven outcomes of the seed
evaluation; emergency admissions come first because the first outcome is the primary one,
which also carries the horizons, the event study and Figure 2.

Examples
--------
Community contacts, counted from their table, as one more outcome:

>>> contacts = OutcomeSettings(table="community_contacts")
>>> contacts.name, contacts.date_column, contacts.measure
('community_contacts', 'contact_date', 'count')
>>> st = ImpactSettings(outcomes=(*DEFAULT_OUTCOMES, contacts))
>>> [o.name for o in st.outcomes][-2:]
['inpatient_cost', 'community_contacts']

Home care visits costed at £25 each (a linear model, in pounds a person-month):

>>> home = OutcomeSettings(
...     name="home_care_cost", table="community_contacts", where={"service": ("home_care",)},
...     unit_cost=25.0, model="ols")
>>> home.where
{'service': ('home_care',)}
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from careval.cohort.eligibility import EligibilitySettings
from careval.data.areas import area_problems, overlap_problems
from careval.data.codelists import code_list
from careval.data.schema import ELECTIVE_METHODS, EMERGENCY_METHODS, EVENT_DATE, TABLES
from careval.errors import ConfigError
from careval.impact.diagnostics import DiagnosticSettings
from careval.impact.fe import MODELS, Model
from careval.impact.matching import MatchSettings
from careval.settings import Settings

COMPARATORS = ("south_west_london", "rest_of_england")  # outside North West London
DEFAULT_LABEL = "care plan"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class InterventionSettings(Settings):
    """What the treatment of the matched study is: the first qualifying event per person.

    An event is a row of ``table`` (any table with ``person_id`` and the date column
    ``date_column``), kept when it passes both optional filters:

    - ``codes`` with ``code_column``: the column's value is in one of the code lists (built-in
      condition names or CSV code lists, :mod:`careval.data.codelists`; exact or prefix match as
      each code says; where the table has a ``code_system`` column the system must match too).
    - ``where``: column -> allowed values, e.g. ``{"service": ("community_matron",)}``.

    The default is today's treatment: the first care plan (``care_plans.created_date``).
    ``label`` names the event in the report ("care plan", "community matron contact"); its
    last word names it alone ("their first plan", "... contact"). ``treated_label`` names the
    people who had it ("care-planned"); left empty it is "care-planned" for the default label
    and "treated" for any other.

    Examples
    --------
    >>> InterventionSettings(
    ...     table="community_contacts",
    ...     date_column="contact_date",
    ...     where={"service": ("community_matron",)},
    ...     label="community matron contact",
    ... ).treated
    'treated'
    """

    table: str = "care_plans"
    date_column: str = "created_date"
    codes: tuple[str, ...] = ()
    code_column: str | None = None
    where: dict[str, tuple[str, ...]] = field(default_factory=dict)
    label: str = DEFAULT_LABEL
    treated_label: str = ""

    def __post_init__(self) -> None:
        problems = []
        for name in ("table", "date_column"):
            if not isinstance(getattr(self, name), str) or not IDENTIFIER.match(
                getattr(self, name)
            ):
                problems.append(
                    f"{name} must be a table or column name; got {getattr(self, name)!r}"
                )
        if isinstance(self.codes, str):
            problems.append(
                f"codes must be a list of code lists, e.g. ('copd',); got {self.codes!r}"
            )
        else:
            object.__setattr__(self, "codes", tuple(self.codes))
            for ref in self.codes:
                try:
                    code_list(ref)
                except ConfigError as exc:
                    problems.append(str(exc))
        if self.codes and not self.code_column:
            problems.append("codes need code_column: the column the codes are looked up in")
        if self.code_column is not None and not self.codes:
            problems.append(f"code_column {self.code_column!r} is set but codes are not")
        if self.code_column is not None and not IDENTIFIER.match(self.code_column):
            problems.append(f"code_column must be a column name; got {self.code_column!r}")
        where = {}
        for col, values in dict(self.where).items():
            if isinstance(values, str) or not isinstance(values, tuple | list) or not values:
                problems.append(f"where.{col}: give a non-empty list of values; got {values!r}")
                continue
            where[col] = tuple(values)
        object.__setattr__(self, "where", where)
        if not self.label.strip():
            problems.append("label must not be empty (it names the intervention in the report)")
        if not problems:
            self._check_schema(problems)
        if problems:
            raise ConfigError("intervention: " + "; ".join(problems))

    def _check_schema(self, problems: list[str]) -> None:
        """The table is an event table of the data model and the columns named are its own,
        of the types they are used as (a date, a text code, filterable values)."""
        table = TABLES.get(self.table)
        if table is None or "person_id" not in table.column_names or self.table == "persons":
            events = [n for n, t in TABLES.items() if "person_id" in t.column_names]
            problems.append(
                f"table: {self.table!r} is not a table of people's events in the data model; "
                "allowed: " + ", ".join(n for n in events if n != "persons")
            )
            return
        columns = {c.name: c for c in table.columns}
        wanted: list[tuple[str, str, tuple[str, ...]]] = [
            ("date_column", self.date_column, ("date",))
        ]
        if self.code_column is not None:
            wanted.append(("code_column", self.code_column, ("string",)))
        wanted += [(f"where.{c}", c, ("string", "bool", "int")) for c in self.where]
        for role, name, types in wanted:
            problems += column_problems(self.table, columns, role, name, types)

    def __hash__(self) -> int:
        """Hashable like the other settings, although ``where`` is a dict."""
        values = [getattr(self, f.name) for f in fields(self)]
        return hash(tuple(tuple(v.items()) if isinstance(v, dict) else v for v in values))

    @property
    def treated(self) -> str:
        """How the report names the people who had the intervention ("care-planned")."""
        return treated_name(self.label, self.treated_label)

    @property
    def noun(self) -> str:
        """The event named alone: the label's last word ("plan", "contact")."""
        return self.label.split()[-1]

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns the events are read from."""
        cols = ["person_id", self.date_column]
        cols += [self.code_column] if self.code_column else []
        cols += list(self.where)
        return tuple(dict.fromkeys(cols))


def treated_name(label: str, treated_label: str = "") -> str:
    """The people who had an intervention: ``treated_label``, else "care-planned" for care
    plans and "treated" for any other."""
    if treated_label:
        return treated_label
    return "care-planned" if label == DEFAULT_LABEL else "treated"


def with_article(label: str) -> str:
    """The label with its article: "a care plan", "an admission to a virtual ward"."""
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


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
BUILTIN_OUTCOMES: dict[str, OutcomeSettings] = {
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
# The seed evaluation's outcomes, primary first.
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
    )
)


@dataclass(frozen=True)
class ImpactSettings(Settings):
    """Settings of the matched study; every default is stated in the report.

    ``programme_areas`` and ``control_areas`` name areas of the data (``practices.area``);
    :func:`careval.impact.study.evaluate_impact` checks them against the data's areas.
    """

    # The programme's areas: the treated are registered there at entry; with
    # ``not_yet_treated``, their people not yet treated are potential controls too.
    programme_areas: tuple[str, ...] = ("pilot",)
    # Where the potential controls are registered.
    control_areas: tuple[str, ...] = COMPARATORS
    # Also take eligible people of the programme's practices not yet treated at the entry
    # month (censored at their own treatment). Off: nobody ever treated is a control.
    not_yet_treated: bool = False
    entry_from: dt.date | None = None  # first month of entry (default: the first treatment)
    entry_to: dt.date | None = None  # last (default: the data's end less min_follow_up)
    min_follow_up: int = 3
    pre_months: int = 24
    effect_from_month: int = 3
    horizons: tuple[int, ...] = (3, 6, 12, 24)
    event_window: tuple[int, int] = (-12, 23)
    event_bin_months: int = 3
    match: MatchSettings = field(
        default_factory=lambda: MatchSettings(
            ratio=5,
            caliper=0.2,
            replace=True,
            exact=("entry_month", "female", "age_band"),
            distance="logit_ps",
        )
    )
    # The treatment, and who may be a control (the run's eligibility: careval.evaluation
    # passes SummarySettings.eligibility here).
    intervention: InterventionSettings = field(default_factory=InterventionSettings)
    eligibility: EligibilitySettings = field(default_factory=EligibilitySettings)
    # The outcomes, primary first: the primary one also carries the horizons, the event study
    # and Figure 2, and the study is skipped if it cannot be fitted (any other is skipped alone).
    outcomes: tuple[OutcomeSettings, ...] = DEFAULT_OUTCOMES
    # Outcomes the programme cannot plausibly change (careval.impact.controls): their estimates
    # measure residual bias and calibrate every interval. (): placebo estimates only.
    negative_controls: tuple[OutcomeSettings, ...] = field(
        default_factory=lambda: _default_negative_controls()
    )
    # Thresholds an estimate must meet to be fit for decisions (careval.impact.diagnostics).
    diagnostics: DiagnosticSettings = field(default_factory=DiagnosticSettings)
    # Re-estimate the primary outcome under other calipers, ratios, replacement and control
    # pools (careval.impact.sensitivity).
    sensitivity: bool = True

    def __post_init__(self) -> None:
        problems = area_problems("programme_areas", self.programme_areas)
        if self.control_areas or not self.not_yet_treated:  # (): the not yet treated only
            problems += area_problems("control_areas", self.control_areas)
        if not problems:
            problems += overlap_problems(self.programme_areas, self.control_areas, "control_areas")
        if not 0 <= self.effect_from_month <= 12:
            problems.append(
                f"effect_from_month (the implementation period) must be between 0 and 12; "
                f"got {self.effect_from_month}"
            )
        if not 3 <= self.pre_months <= 60:
            problems.append(f"pre_months must be between 3 and 60; got {self.pre_months}")
        if not 0 <= self.min_follow_up <= 60:
            problems.append(f"min_follow_up must be between 0 and 60; got {self.min_follow_up}")
        if not self.horizons or any(not 1 <= h <= 120 for h in self.horizons):
            problems.append(f"horizons must be months from 1 to 120; got {list(self.horizons)}")
        lo, hi = self.event_window
        if not (-self.pre_months <= lo < 0 <= hi <= 120):
            problems.append(
                f"event_window must run from a month before entry (not before -pre_months) to "
                f"one at or after it, first < last; got {list(self.event_window)}"
            )
        if not 1 <= self.event_bin_months <= 12:
            problems.append(
                f"event_bin_months must be between 1 and 12; got {self.event_bin_months}"
            )
        if "entry_month" not in self.match.exact:
            problems.append(
                "controls must be assessed at the treated person's month: keep "
                "entry_month among the exact matching variables"
            )
        if problems:
            raise ConfigError("impact settings: " + "; ".join(problems))
        if not self.outcomes:
            raise ConfigError("outcomes: at least one outcome is needed (the first is primary)")
        names = [o.name for o in self.outcomes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"outcomes: each name once; given twice: {', '.join(twice)}")
        nc = [o.name for o in self.negative_controls]
        twice = sorted({n for n in nc if nc.count(n) > 1})
        clash = sorted(
            {o.name for o in self.negative_controls}
            & {o.name for o in self.outcomes if o not in self.negative_controls}
        )
        if twice or clash:
            raise ConfigError(
                "negative_controls: each name once, and not the name of another outcome; "
                f"given twice: {', '.join(twice) or 'none'}; "
                f"clashing with outcomes: {', '.join(clash) or 'none'}"
            )
        for o in (*self.outcomes, *self.negative_controls):
            built_in = BUILTIN_OUTCOMES.get(o.name)
            if built_in is not None and o.definition != built_in.definition:
                differ = [k for k in DEFINITION if o.definition[k] != built_in.definition[k]]
                raise ConfigError(
                    f"outcomes: {o.name!r} is a built-in measure (it also feeds the matching "
                    f"features) and is defined otherwise ({', '.join(differ)} differ); give "
                    "your outcome another name"
                )

    @property
    def primary(self) -> OutcomeSettings:
        """The primary outcome (the first)."""
        return self.outcomes[0]


def _default_negative_controls() -> tuple[OutcomeSettings, ...]:
    from careval.impact.controls import DEFAULT_NEGATIVE_CONTROLS  # it builds on this module

    return DEFAULT_NEGATIVE_CONTROLS
