"""The evaluation of one dataset: validate it, run every analysis, return their results.

:func:`evaluate` computes and returns true numbers only; it prints nothing and writes nothing.
Publishing (disclosure control, the report, ``results.json``) is the edges' work:
:func:`careval.report.build.write_report` turns an :class:`Evaluation` into the report, and
``careval run`` (:func:`careval.run.run`) does both.

Each analysis that cannot run on the data it was given (too short a window, no care plans, no
comparator area) is recorded in :attr:`Evaluation.skipped` with the reason, and the others run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from careval.cohort.summary import DataSummary, SummarySettings, summarise
from careval.data.access import Dataset
from careval.data.validate import require_valid
from careval.design.power import DesignResult, DesignSettings, plan
from careval.disclosure import DisclosureSettings
from careval.errors import Problem
from careval.impact.study import DESIGN_PRE_MONTHS, ImpactResult, ImpactSettings, evaluate_impact
from careval.indicators import IndicatorsResult, evaluate_indicators
from careval.monitoring.areas import AreaResult, evaluate_areas
from careval.monitoring.programme import ProgrammeResult, evaluate_programme
from careval.qualitative.evaluate import QualitativeResult, evaluate_qualitative
from careval.risk.evaluate import RiskResult, RiskSettings, evaluate_risk
from careval.risk.model import follow_up_end
from careval.surveys.evaluate import SurveysResult, evaluate_surveys

Progress = Callable[[str], None]
STEPS = 8  # calls of ``progress`` in one evaluation (for a progress bar's total)
NOT_RUN = {"surveys": "no survey inputs", "qualitative": "no qualitative inputs"}


@dataclass(kw_only=True)
class Analyses:
    """One result object per analysis (None where it did not run, with the reason in
    ``skipped``): the true results of an :class:`Evaluation`, or their published copies."""

    risk: RiskResult | None = None
    areas: AreaResult | None = None
    impact: ImpactResult | None = None
    indicators: IndicatorsResult | None = None
    programme: ProgrammeResult | None = None
    design: DesignResult | None = None
    surveys: SurveysResult | None = None
    qualitative: QualitativeResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)


ANALYSES = tuple(f.name for f in fields(Analyses) if f.name != "skipped")


@dataclass(kw_only=True)
class Evaluation(Analyses):
    """The result objects of one run, with the settings and inputs they came from.

    Everything here holds true numbers; nothing is published yet. ``disclosure`` holds the
    numbers of the disclosure control its publication applies (on data not flagged synthetic).
    """

    dataset: str
    synthetic: bool
    manifest: dict[str, Any]
    summary_settings: SummarySettings
    risk_settings: RiskSettings
    design_settings: DesignSettings
    impact_settings: ImpactSettings
    summary: DataSummary
    validation_warnings: list[Problem]
    input_files: dict[str, str]
    disclosure: DisclosureSettings = field(default_factory=DisclosureSettings)


def evaluate(
    data: str | Path,
    settings: SummarySettings | None = None,
    progress: Progress | None = None,
    impact_settings: ImpactSettings | None = None,
    disclosure: DisclosureSettings | None = None,
) -> Evaluation:
    """Validate the dataset in ``data`` and run every analysis that its tables allow.

    ``disclosure`` (default :class:`~careval.disclosure.DisclosureSettings`) is not used here:
    it is kept in the :class:`Evaluation` for its publication.
    """
    say = progress or (lambda _step: None)
    data = Path(data)
    st = settings or SummarySettings()
    impact_st = impact_settings or ImpactSettings()
    risk_st, design_st = RiskSettings(), DesignSettings()
    say("validating the dataset")
    warnings = require_valid(data)
    # Surveys and transcripts first: they are quick, and a broken file should stop the run
    # before the long analyses rather than after them.
    say("surveys and qualitative analysis")
    surveys = evaluate_surveys(data)
    qualitative = evaluate_qualitative(data)
    skipped: dict[str, str] = {}
    say("summarising the data")
    with Dataset(data) as ds:
        summary = summarise(ds, st)
        say("risk model and targeting")
        risk, skipped["risk"] = _risk(ds, summary.window, risk_st)
        say("area comparison and programme monitoring")
        areas, skipped["monitoring"] = _areas(ds, summary.window)
        programme = evaluate_programme(ds, summary)
        say("clinical indicators")
        indicators, skipped["indicators"] = _indicators(ds, summary.window)
        say("matched-control impact study")
        impact, skipped["impact"] = _impact(ds, summary.window, risk, impact_st)
        synthetic, manifest = ds.synthetic, ds.manifest
        files = {f"{name}.parquet": _sha256(ds.file(name)) for name in ds.tables}
    files.update(
        {
            str(f.relative_to(data)): _sha256(f)
            for sub in ("surveys", "qualitative")
            for f in sorted((data / sub).rglob("*"))
            if f.is_file()
        }
    )
    say("study design and power")
    design, skipped["design"] = _design(impact, design_st)
    return Evaluation(
        dataset=data.name,
        synthetic=synthetic,
        manifest=manifest,
        summary_settings=st,
        risk_settings=risk_st,
        design_settings=design_st,
        impact_settings=impact_st,
        summary=summary,
        validation_warnings=warnings,
        input_files=files,
        disclosure=disclosure or DisclosureSettings(),
        risk=risk,
        areas=areas,
        impact=impact,
        indicators=indicators,
        programme=programme,
        design=design,
        surveys=surveys,
        qualitative=qualitative,
        skipped=skipped,
    )


def _risk(
    ds: Dataset, window: tuple[dt.date, dt.date], st: RiskSettings
) -> tuple[RiskResult | None, str]:
    """Temporal validation when the data cover both index dates and a year of follow-up."""
    follow_end = follow_up_end(st.validate_date)
    if st.train_date < window[0] or follow_end > window[1] + dt.timedelta(days=1):
        return None, (
            f"the data ({window[0]} to {window[1]}) do not cover training on {st.train_date} "
            f"and validation on {st.validate_date} with 12 months of follow-up"
        )
    try:
        return evaluate_risk(ds, st), ""
    except ValueError as exc:  # e.g. no outcomes at all in a tiny dataset
        return None, f"risk model not fitted: {exc}"


def _impact(
    ds: Dataset, window: tuple[dt.date, dt.date], risk: RiskResult | None, st: ImpactSettings
) -> tuple[ImpactResult | None, str]:
    """The matched study when there are care plans and comparator-area people to match."""
    if not ds.has("care_plans"):
        return None, "no care_plans table: the matched study needs care plans"
    try:
        return evaluate_impact(ds, window, st, risk_model=risk.model if risk else None), ""
    except ValueError as exc:  # too few people, no comparator area, no plans in the window
        return None, f"matched study not run: {exc}"


def _areas(ds: Dataset, window: tuple[dt.date, dt.date]) -> tuple[AreaResult | None, str]:
    """Table 2 when the data cover at least one start date with a year before it."""
    try:
        return evaluate_areas(ds, window), ""
    except ValueError as exc:
        return None, f"area comparison not run: {exc}"


def _indicators(
    ds: Dataset, window: tuple[dt.date, dt.date]
) -> tuple[IndicatorsResult | None, str]:
    """Diabetes and dementia indicators when the measurements and conditions are there."""
    try:
        return evaluate_indicators(ds, window), ""
    except ValueError as exc:
        return None, f"clinical indicators not computed: {exc}"


def _design(impact: ImpactResult | None, st: DesignSettings) -> tuple[DesignResult | None, str]:
    """Power and minimum detectable effects from the matched controls' untreated histories."""
    if impact is None or not impact.untreated:
        return None, "no matched study: the design needs untreated histories of matched people"
    try:
        return design_plan(impact, st), ""
    except ValueError as exc:
        return None, f"design not computed: {exc}"


def design_plan(impact: ImpactResult, st: DesignSettings) -> DesignResult:
    """The power analysis planned on the matched study's controls (their untreated histories),
    for as many people as were matched unless ``st.enrolled`` says otherwise."""
    return plan(
        impact.untreated,
        DESIGN_PRE_MONTHS,
        st,
        impact.attrition["treated_matched"],
        "the matched controls (untreated people like the care-planned)",
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
