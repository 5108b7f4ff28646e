"""From the study specification to the settings object of each analysis.

:func:`resolve` is the one place a spec field becomes an analysis setting, so a field that
several analyses share (the programme start, the areas, who is eligible) is set once.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from careval.cohort.eligibility import EligibilitySettings
from careval.cohort.summary import SummarySettings
from careval.design.power import DesignSettings
from careval.errors import ConfigError
from careval.impact.matching import MatchSettings
from careval.impact.settings import ImpactSettings
from careval.indicators.settings import IndicatorSettings
from careval.monitoring.areas import AreaSettings
from careval.monitoring.programme import ProgrammeSettings
from careval.qualitative.roles import DEFAULT_ROLES, TranscriptSettings
from careval.risk.evaluate import RiskSettings
from careval.settings import Settings
from careval.spec.model import FollowUpSection, MatchingSection, RiskSection, StudySpec


@dataclass(frozen=True)
class RunSettings(Settings):
    """The settings of every analysis of one run, resolved from one :class:`StudySpec`
    (the defaults are the default spec's)."""

    spec: StudySpec = field(default_factory=StudySpec)
    summary: SummarySettings = field(default_factory=SummarySettings)
    risk: RiskSettings = field(default_factory=RiskSettings)
    areas: AreaSettings = field(default_factory=AreaSettings)
    programme: ProgrammeSettings = field(default_factory=ProgrammeSettings)
    indicators: IndicatorSettings = field(default_factory=IndicatorSettings)
    impact: ImpactSettings = field(default_factory=ImpactSettings)
    design: DesignSettings = field(default_factory=DesignSettings)
    transcripts: TranscriptSettings = field(default_factory=TranscriptSettings)


def eligibility(spec: StudySpec) -> EligibilitySettings:
    """The one eligibility rule of the run (passed to every analysis that selects the
    eligible: the data summary, Table 2, the risk model's targeting, the matched study)."""
    el = spec.eligibility
    return EligibilitySettings(min_age=el.min_age, conditions=el.conditions, combine=el.combine)


def transcript_settings(spec: StudySpec) -> TranscriptSettings:
    """The transcript analysis's settings: the built-in roles and those the spec adds."""
    return TranscriptSettings(roles=(*DEFAULT_ROLES, *spec.qualitative.roles))  # normalised there


def resolve(spec: StudySpec | None = None) -> RunSettings:
    """Each analysis's settings from ``spec`` (the defaults when None).

    An analysis's own checks (ranges, combinations) speak of its fields; a problem found in
    them is raised naming the spec's key instead (``matching.ratio``, not ``ratio``), so the
    user knows which line of ``study.toml`` to change.
    """
    try:
        return _resolve(spec or StudySpec())
    except ConfigError as exc:
        raise ConfigError(spec_keys(str(exc))) from None


# Analysis field -> the spec key it comes from, where the two differ or the section is not
# plain from the message; fields of the same name in one spec section are added below.
RENAMED = {
    "effect_from_month": "follow_up.implementation_months",
    "programme_areas": "programme.areas",
    "comparator_areas": "programme.comparators",
    "comparison_areas": "programme.comparators",
    "control_areas": "matching.control_areas",
    "not_yet_treated": "matching.not_yet_treated",
    "starts": "programme.alternative_starts",
    "months": "programme.period_months",
    "fund_budget_year_one": "programme.fund_budget",
    "programme_start": "programme.start",
}
SECTION_OF = {
    **{f.name: f"follow_up.{f.name}" for f in dataclasses.fields(FollowUpSection)},
    **{f.name: f"matching.{f.name}" for f in dataclasses.fields(MatchingSection)},
    **{f.name: f"risk.{f.name}" for f in dataclasses.fields(RiskSection)},
    **RENAMED,
}
_FIELD = re.compile(
    r"^(?P<prefix>(?:impact settings|indicators|areas|programme): )?(?P<name>\w+)\b"
)


def spec_keys(message: str) -> str:
    """``message`` with each problem that starts with an analysis field named by its spec key.

    Examples
    --------
    >>> spec_keys("impact settings: pre_months must be between 3 and 60; got 2")
    'follow_up.pre_months must be between 3 and 60; got 2'
    >>> spec_keys("ratio must be a whole number from 1 to 100; got 500")
    'matching.ratio must be a whole number from 1 to 100; got 500'
    """
    parts = []
    for part in message.split("; "):
        m = _FIELD.match(part)
        if m and m["name"] in SECTION_OF:
            part = SECTION_OF[m["name"]] + part[m.end() :]
        parts.append(part)
    return "; ".join(parts)


def _resolve(spec: StudySpec) -> RunSettings:
    el = eligibility(spec)
    pr, mt, fu = spec.programme, spec.matching, spec.follow_up
    impact = ImpactSettings(
        eligibility=el,
        intervention=spec.intervention,
        outcomes=spec.outcomes,
        negative_controls=spec.negative_controls,
        diagnostics=spec.diagnostics,
        sensitivity=mt.sensitivity,
        programme_areas=pr.areas,
        control_areas=mt.control_areas,
        not_yet_treated=mt.not_yet_treated,
        entry_from=fu.entry_from,
        entry_to=fu.entry_to,
        min_follow_up=fu.min_follow_up,
        pre_months=fu.pre_months,
        effect_from_month=fu.implementation_months,
        horizons=fu.horizons,
        event_window=fu.event_window,
        event_bin_months=fu.event_bin_months,
        match=MatchSettings(
            ratio=mt.ratio,
            caliper=mt.caliper,
            replace=mt.replace,
            exact=mt.exact,
            distance=mt.distance,
            score=mt.score,
            order=mt.order,
        ),
    )
    indicators = dataclasses.replace(
        IndicatorSettings(),
        programme_start=pr.start,
        programme_areas=pr.areas,
        comparison_areas=pr.comparators,
        **dataclasses.asdict(spec.indicators),
    )
    return RunSettings(
        spec=spec,
        summary=SummarySettings(
            reference_date=spec.study.reference_date, eligibility=el, programme_areas=pr.areas
        ),
        risk=RiskSettings(
            train_date=spec.risk.train_date,
            validate_date=spec.risk.validate_date,
            compare_lightgbm=spec.risk.compare_lightgbm,
        ),
        areas=AreaSettings(
            starts=pr.alternative_starts,
            months=pr.period_months,
            eligibility=el,
            programme_areas=pr.areas,
            comparator_areas=pr.comparators,
        ),
        programme=ProgrammeSettings(fund_budget_year_one=pr.fund_budget),
        indicators=indicators,
        impact=impact,
        design=spec.design,
        transcripts=transcript_settings(spec),
    )
