"""Settings of the matched impact study (every default is stated in the report).

The study's outcomes are settings too: each :class:`OutcomeSettings` says what is counted or
summed per person and calendar month, from which event table, with which rows kept, and how it
is modelled. The default list (:data:`DEFAULT_OUTCOMES`) is the seven outcomes of the seed
evaluation, then four across the system (community and mental health contacts, new social care
packages, days in care homes: each skipped, with its reason, when its table is absent);
emergency admissions come first because the first outcome is the primary one, which also
carries the horizons, the event study and Figure 2.

Examples
--------
Community contacts are a built-in outcome: counted from their table, as one more outcome of a
study with only the primary outcome:

>>> contacts = OutcomeSettings(table="community_contacts")
>>> contacts.name, contacts.date_column, contacts.measure
('community_contacts', 'contact_date', 'count')
>>> st = ImpactSettings(outcomes=(DEFAULT_OUTCOMES[0], contacts))
>>> [o.name for o in st.outcomes]
['emergency_admissions', 'community_contacts']

Home care visits costed at £25 each (a linear model, in pounds a person-month):

>>> home = OutcomeSettings(
...     name="home_care_cost", table="community_contacts", where={"service": ("home_care",)},
...     unit_cost=25.0, model="ols")
>>> home.where
{'service': ('home_care',)}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, fields

from careval.cohort.eligibility import EligibilitySettings
from careval.data.areas import area_problems, overlap_problems
from careval.data.codelists import code_list
from careval.data.schema import TABLES
from careval.errors import ConfigError
from careval.impact.controls import DEFAULT_NEGATIVE_CONTROLS
from careval.impact.diagnostics import DiagnosticSettings
from careval.impact.matching import MatchSettings
from careval.impact.outcome_settings import (
    BUILTIN_OUTCOMES,
    DEFAULT_OUTCOMES,
    DEFINITION,
    PANEL_OUTCOMES,
    OutcomeSettings,
    column_problems,
)
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


# 0, 1, or 2 or more emergency admissions in the 6 months before entry: a column of the study
# population (careval.impact.population.add_use_bands) the default match is exact on.
RECENT_BAND = "emergency_admissions_6m_band"


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
            exact=("entry_month", "female", "age_band", RECENT_BAND),
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
    negative_controls: tuple[OutcomeSettings, ...] = DEFAULT_NEGATIVE_CONTROLS
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
                why = (
                    "it also feeds the matching features"
                    if o.name in PANEL_OUTCOMES
                    else "a synthetic dataset's planted truth is keyed by its name"
                )
                raise ConfigError(
                    f"outcomes: {o.name!r} is a built-in measure ({why}) and is defined "
                    f"otherwise ({', '.join(differ)} differ); give your outcome another name"
                )

    @property
    def primary(self) -> OutcomeSettings:
        """The primary outcome (the first)."""
        return self.outcomes[0]
