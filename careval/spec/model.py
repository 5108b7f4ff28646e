"""The study specification: one saved description of the programme and its evaluation.

A :class:`StudySpec` has one section per part of the study (the window, the programme, who is
eligible, the matched study's matching and follow-up, the risk model, the design, the clinical
indicators). Every field has a default (today's North West London pilot evaluation) and a
description in its ``metadata["doc"]``; ``docs/study-spec.md`` is generated from them
(``python -m careval.spec``) and ``careval init`` writes them as the comments of ``study.toml``.
Defaults that an analysis already declares are read from that analysis's settings class, so
each default has one home.

The spec is what a user writes; :func:`careval.spec.resolve.resolve` turns it into the settings
object of each analysis.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

from careval.cohort.eligibility import EligibilitySettings
from careval.cohort.summary import SummarySettings
from careval.design.power import DesignSettings
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.impact.controls import DEFAULT_NEGATIVE_CONTROLS
from careval.impact.diagnostics import DiagnosticSettings
from careval.impact.matching import Distance, Order
from careval.impact.settings import (
    DEFAULT_OUTCOMES,
    ImpactSettings,
    InterventionSettings,
    OutcomeSettings,
)
from careval.indicators.settings import IndicatorSettings
from careval.monitoring.areas import AreaSettings
from careval.monitoring.programme import ProgrammeSettings
from careval.qualitative.roles import DEFAULT_ROLES, check_role_names
from careval.risk.evaluate import RiskSettings
from careval.settings import Settings

_IMPACT = ImpactSettings()
_MATCH = _IMPACT.match
_IND = IndicatorSettings()
_RISK = RiskSettings()
_AREAS = AreaSettings()
_ELIG = EligibilitySettings()


def doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its description (``metadata["doc"]``)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class StudySection(Settings):
    """The study window and the dates everything is counted against."""

    name: str = doc("A title for the evaluation (recorded in `study.json`).", "")
    start: dt.date | None = doc(
        "First day of the study window. Default: the first inpatient admission in the data.",
        None,
    )
    end: dt.date | None = doc(
        "Last day of the study window: the analyses' months run to it. Default: the last "
        "inpatient admission in the data.",
        None,
    )
    extract_date: dt.date | None = doc(
        "The day the data were extracted. Validation refuses dates after it. Default: the "
        "dataset manifest's `extract_date`, else today.",
        None,
    )
    reference_date: dt.date = doc(
        "The day eligibility is counted for the data summary (people by area, attrition).",
        SummarySettings().reference_date,
    )

    def __post_init__(self) -> None:
        if self.start and self.end and self.start >= self.end:
            raise ConfigError(f"study.start ({self.start}) must be before study.end ({self.end})")


@dataclass(frozen=True)
class ProgrammeSection(Settings):
    """The programme: where and when it ran, and its budget."""

    start: dt.date = doc(
        "First day of the month the programme started (its first care plans): the "
        "interruption of the indicators' time series.",
        _IND.programme_start,
    )
    alternative_starts: tuple[dt.date, ...] = doc(
        "Start dates compared in Table 2 (hospital use in the year before and after each).",
        _AREAS.starts,
    )
    period_months: int = doc(
        "Length in months of the periods before and after each start date in Table 2.",
        _AREAS.months,
    )
    areas: tuple[str, ...] = doc(
        "The programme's areas: values of `practices.area` whose practices run the programme.",
        ("pilot",),
    )
    comparators: tuple[str, ...] | None = doc(
        "Areas compared with the programme in Table 2 and the clinical indicators. Default "
        '(`"none"` or left out): every other area in the data.',
        None,
    )
    fund_budget: float = doc(
        "The innovation fund's first-year budget in pounds (for the share allocated).",
        ProgrammeSettings().fund_budget_year_one,
    )

    def __post_init__(self) -> None:
        if not self.areas:
            raise ConfigError("programme.areas: name at least one area")
        if not self.alternative_starts:
            raise ConfigError("programme.alternative_starts: give at least one date")
        if not self.fund_budget > 0:
            raise ConfigError(
                f"programme.fund_budget must be a positive sum of pounds; got {self.fund_budget}"
            )
        if self.comparators is not None and set(self.comparators) & set(self.areas):
            both = sorted(set(self.comparators) & set(self.areas))
            raise ConfigError(f"programme.comparators: {both} are also programme areas")


@dataclass(frozen=True)
class EligibilitySection(Settings):
    """Who the programme is for."""

    min_age: int | None = doc(
        'Eligible from this age (years, at the date counted); `"none"`: no age criterion.',
        _ELIG.min_age,
    )
    conditions: tuple[str, ...] = doc(
        "Conditions that make a person eligible: names of careval's code lists "
        "(`careval/data/codelists/conditions.csv`) or paths to code-list CSV files of the same "
        "columns, relative to the spec file (see docs/cohort.md); `[]`: no condition "
        "criterion.",
        _ELIG.conditions,
    )
    combine: Literal["or", "and"] = doc(
        '`"or"`: aged `min_age` or over, or with a listed condition; `"and"`: both.',
        _ELIG.combine,
    )


@dataclass(frozen=True)
class MatchingSection(Settings):
    """How the matched study finds its controls."""

    control_areas: tuple[str, ...] = doc(
        "The control pool: areas whose eligible people may be matched controls; `[]` with "
        "`not_yet_treated = true`: the programme's people not yet treated only (one-area data).",
        _IMPACT.control_areas,
    )
    not_yet_treated: bool = doc(
        "Also take programme-area people not yet treated as controls (each censored at their "
        "own treatment).",
        _IMPACT.not_yet_treated,
    )
    exact: tuple[str, ...] = doc(
        "Variables matched exactly (`entry_month` must stay); `emergency_admissions_6m_band` is "
        "0, 1, or 2 or more emergency admissions in the 6 months before entry.",
        _MATCH.exact,
    )
    distance: Distance = doc(
        '`"ps"` (propensity score), `"logit_ps"` (its logit) or `"mahalanobis"`.',
        _MATCH.distance,
    )
    ratio: int = doc("Controls per treated person.", _MATCH.ratio)
    caliper: float | None = doc(
        'Widest distance allowed, in standard deviations of the score (`"none"`: no caliper).',
        _MATCH.caliper,
    )
    replace: bool = doc("Whether a control may serve several treated people.", _MATCH.replace)
    score: str | None = doc(
        'Match on this existing column instead of a fitted propensity score (`"none"`: fit one).',
        _MATCH.score,
    )
    order: Order = doc(
        "Order the treated are matched in (largest score first by default).", _MATCH.order
    )
    sensitivity: bool = doc(
        "Also re-estimate the primary outcome with other calipers, numbers of controls, "
        "without (or with) replacement and one comparator area at a time (the report's "
        "sensitivity table).",
        _IMPACT.sensitivity,
    )


@dataclass(frozen=True)
class FollowUpSection(Settings):
    """Entry into the matched study, the implementation period and the horizons."""

    entry_from: dt.date | None = doc(
        "First month people may enter the matched study. Default: the first treatment.", None
    )
    entry_to: dt.date | None = doc(
        "Last month of entry. Default: the data's end less `min_follow_up` months.", None
    )
    min_follow_up: int = doc(
        "Months of follow-up everyone entering has at least.", _IMPACT.min_follow_up
    )
    pre_months: int = doc("Months of history before entry in the panel.", _IMPACT.pre_months)
    implementation_months: int = doc(
        "The implementation period: months after entry before the effect is counted.",
        _IMPACT.effect_from_month,
    )
    horizons: tuple[int, ...] = doc(
        "Lengths of follow-up (months) the effect is also estimated at.", _IMPACT.horizons
    )
    event_window: tuple[int, int] = doc(
        "Months relative to entry shown in the event study (first, last).",
        _IMPACT.event_window,
    )
    event_bin_months: int = doc("Months per bin of the event study.", _IMPACT.event_bin_months)


@dataclass(frozen=True)
class RiskSection(Settings):
    """The predictive risk model's temporal validation."""

    train_date: dt.date = doc(
        "Index date of the training cohort (outcome: an emergency admission in the 12 months "
        "after).",
        _RISK.train_date,
    )
    validate_date: dt.date = doc(
        "Index date of the validation cohort (needs 12 months of data after it).",
        _RISK.validate_date,
    )
    compare_lightgbm: bool = doc(
        "Also fit a gradient-boosted model and report it beside the logistic one.",
        _RISK.compare_lightgbm,
    )


@dataclass(frozen=True)
class IndicatorsSection(Settings):
    """Targets and windows of the diabetes and dementia indicators."""

    hba1c_max_mmol_mol: float = doc(
        "HbA1c in control at or below this (mmol/mol).", _IND.hba1c_max_mmol_mol
    )
    total_cholesterol_max_mmol_l: float = doc(
        "Total cholesterol in control at or below this (mmol/l).",
        _IND.total_cholesterol_max_mmol_l,
    )
    sbp_max_mmhg: float = doc("Systolic blood pressure target (mmHg).", _IND.sbp_max_mmhg)
    dbp_max_mmhg: float = doc("Diastolic blood pressure target (mmHg).", _IND.dbp_max_mmhg)
    lookback_months: int = doc(
        "A reading counts when taken in this many months before the month.",
        _IND.lookback_months,
    )
    rolling_months: int = doc(
        "Months in the rolling average of monthly shares.", _IND.rolling_months
    )
    min_months_on_plan: int = doc(
        "Months on a care plan before the before/after comparison's after window.",
        _IND.min_months_on_plan,
    )
    dementia_min_age: int = doc(
        "Age from which people count in the dementia denominator.", _IND.dementia_min_age
    )
    min_its_months: int = doc(
        "Fewest months needed on each side of the programme start to fit the time series.",
        _IND.min_its_months,
    )


@dataclass(frozen=True)
class QualitativeSection(Settings):
    """The qualitative analysis of MDG meeting transcripts."""

    roles: tuple[str, ...] = doc(
        "Participant roles that transcripts and attendance files may name besides the built-in "
        f'ones ({", ".join(DEFAULT_ROLES)}), e.g. `["pharmacist", "care navigator"]` '
        "(compared in lower case, spaces and hyphens as underscores). A speaker of any other "
        "role is an error naming the file and line.",
        (),
    )

    def __post_init__(self) -> None:
        check_role_names(self.roles, "qualitative.roles")


@dataclass(frozen=True)
class StudySpec(Settings):
    """Everything careval needs to know about one study, beyond the data themselves."""

    study: StudySection = doc("The study window and dates.", factory=StudySection)
    programme: ProgrammeSection = doc("The programme.", factory=ProgrammeSection)
    eligibility: EligibilitySection = doc("Who is eligible.", factory=EligibilitySection)
    matching: MatchingSection = doc("The matched study's controls.", factory=MatchingSection)
    follow_up: FollowUpSection = doc("Entry and follow-up.", factory=FollowUpSection)
    risk: RiskSection = doc("The risk model.", factory=RiskSection)
    design: DesignSettings = doc("Power and follow-up planning.", factory=DesignSettings)
    indicators: IndicatorsSection = doc("Clinical indicators.", factory=IndicatorsSection)
    intervention: InterventionSettings = doc(
        "The treatment of the matched study: the first qualifying event per person in a table "
        "(by default the first care plan); see docs/cohort.md.",
        factory=InterventionSettings,
    )
    outcomes: tuple[OutcomeSettings, ...] = doc(
        "The matched study's outcomes, the primary first (it carries the horizons and the "
        "event study); each `[[outcomes]]` table one outcome. Left out: the seed evaluation's "
        "seven outcomes, then the system's four (community contacts, mental health contacts, "
        "new social care packages, days in residential or nursing care). An outcome whose "
        "table is absent or empty is skipped alone.",
        DEFAULT_OUTCOMES,
    )
    negative_controls: tuple[OutcomeSettings, ...] = doc(
        "Outcomes the programme cannot plausibly change, each `[[negative_controls]]` table "
        "one outcome as in `[[outcomes]]`: their estimates measure the study's residual bias "
        "and calibrate every interval (placebo starts before entry are added to them). Left "
        "out: elective admissions and outpatient attendances in seven specialties (see "
        "docs/impact.md); `[]`: the placebo starts only.",
        DEFAULT_NEGATIVE_CONTROLS,
    )
    diagnostics: DiagnosticSettings = doc(
        "Thresholds each matched estimate must meet to be reported as fit for decisions "
        "(CohortMethod-like defaults).",
        factory=DiagnosticSettings,
    )
    disclosure: DisclosureSettings = doc(
        "Disclosure control of everything published from data not flagged synthetic.",
        factory=DisclosureSettings,
    )
    qualitative: QualitativeSection = doc(
        "The MDG meeting transcripts (`qualitative/transcripts/` of the dataset).",
        factory=QualitativeSection,
    )


SPEC_VERSION = 1

# Descriptions of the fields of analysis settings used whole as a section (they carry no
# ``metadata["doc"]`` of their own), by class name.
FIELD_DOCS: dict[str, dict[str, str]] = {
    "InterventionSettings": {
        "table": "The table whose rows are the intervention's events (any table with "
        "`person_id` and `date_column`).",
        "date_column": "The date of each event; a person's first qualifying event is their entry.",
        "codes": "Code lists an event's `code_column` must match (built-in condition names or "
        "CSV code lists, relative to the spec file); `[]`: no code filter.",
        "code_column": 'The column holding the codes (`"none"`: no code filter).',
        "where": 'Column -> allowed values, e.g. `{ service = ["community_matron"] }`.',
        "label": 'What the report calls one event ("care plan", "community matron contact").',
        "treated_label": "What the report calls the people who had it; empty: "
        '"care-planned" for the default label, "treated" for any other.',
    },
    "DisclosureSettings": {
        "threshold": "The smallest count that may be published: smaller counts (and counts "
        "that would round below it) are suppressed, and means and rates from fewer people "
        "withheld.",
        "rounding_base": "Every other published count is rounded to a multiple of this.",
    },
    "DesignSettings": {
        "enrolled": 'People the design plans for (`"none"`: as many as were matched).',
        "ratio": "Controls per treated person assumed.",
        "followup_months": "Lengths of follow-up (months) the power is computed for.",
        "effect": "The effect to detect, as rate ratio - 1 (-0.10: a 10% reduction).",
        "alpha": "Two-sided significance level.",
        "power": "Power wanted.",
        "pre_months": "Months of history before entry in the simulated studies.",
        "replicates": "Simulated studies per design.",
        "seed": "Seed of the simulations.",
    },
}


def field_doc(cls: type, name: str) -> str:
    """The description of field ``name`` of ``cls``: its ``metadata["doc"]``, else
    :data:`FIELD_DOCS`, else the entry under "Parameters" in the class's docstring."""
    f = {g.name: g for g in dataclasses.fields(cls)}[name]  # type: ignore[arg-type]
    text = f.metadata.get("doc") or FIELD_DOCS.get(cls.__name__, {}).get(name)
    text = text or _numpy_params(cls.__doc__ or "").get(name)
    if not text:
        raise KeyError(f"{cls.__name__}.{name} has no description")
    return str(text)


def _numpy_params(docstring: str) -> dict[str, str]:
    """``{name: text}`` from a numpydoc "Parameters" section (``a, b`` lines name several)."""
    lines = inspect.cleandoc(docstring).splitlines()
    try:
        i = lines.index("Parameters") + 2
    except ValueError:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    for line in lines[i:]:
        if line and not line.startswith(" "):
            if set(line) == {"-"}:  # the next section's underline: the name above was its title
                for n in names:
                    out.pop(n, None)
                break
            names = [n.strip() for n in line.split(",")]
            for n in names:
                out[n] = ""
        elif line.strip() and names:
            for n in names:
                out[n] = f"{out[n]} {line.strip()}".strip()
    return {k: v for k, v in out.items() if v}
