"""The evaluation of one dataset: validate it, run every analysis, return their results.

:func:`evaluate` computes and returns true numbers only; it prints nothing and writes nothing.
Publishing (disclosure control, the report, ``results.json``) is the edges' work:
:func:`careval.report.build.write_report` turns an :class:`Evaluation` into the report, and
``careval run`` (:func:`careval.run.run`) does both.

Each analysis declares the tables it needs (:data:`NEEDS`). One whose tables are absent or
empty is not called; one that finds its data cannot support it (too short a window, no
comparator area) raises a ``ValueError``. Either way the reason is recorded in
:attr:`Evaluation.skipped`, and the others run.

The settings of every analysis come from one study specification
(:func:`careval.spec.resolve.resolve`): one eligibility rule, one set of programme areas, one
programme start, passed to every analysis that uses them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from careval.cohort.eligibility import EligibilitySettings
from careval.cohort.summary import DataSummary, summarise
from careval.data.access import Dataset
from careval.data.validate import require_valid
from careval.design.power import DesignResult, DesignSettings, plan
from careval.disclosure import DisclosureSettings, because
from careval.errors import SHOW_VALUES, ConfigError, Problem, showing_values
from careval.files import sha256
from careval.impact.follow_state import HISTORY, SETTINGS, FollowResult, read_follow
from careval.impact.study import DESIGN_PRE_MONTHS, ImpactResult, ImpactSettings, evaluate_impact
from careval.indicators import IndicatorSettings, IndicatorsResult, evaluate_indicators
from careval.monitoring.areas import AreaResult, AreaSettings, evaluate_areas
from careval.monitoring.programme import (
    EMERGENCY_CHART,
    ProgrammeResult,
    ProgrammeSettings,
    emergency_admissions_chart,
    evaluate_programme,
)
from careval.qualitative.evaluate import QualitativeResult, evaluate_qualitative
from careval.risk.evaluate import RiskResult, RiskSettings, evaluate_risk
from careval.risk.model import follow_up_end
from careval.spec.check import check, window
from careval.spec.model import StudySpec
from careval.spec.resolve import RunSettings, resolve, transcript_settings
from careval.spec.toml import LoadedSpec
from careval.surveys.evaluate import SurveysResult, evaluate_surveys

Progress = Callable[[str], None]
STEPS = 8  # calls of ``progress`` in one evaluation (for a progress bar's total)
FOLLOW_FILES = "(follow state)"  # input_files' prefix for the files of ``--follow``
NOT_RUN = {
    "surveys": "no survey inputs",
    "qualitative": "no qualitative inputs",
    "follow": "no follow history given (careval follow --state DIR, then careval run --follow DIR)",
}


@dataclass(frozen=True)
class Needs:
    """The tables an analysis needs, each present with at least one row: every one of
    ``tables``, and at least one of ``any_of`` (when given).

    Columns need no declaring: validation has checked every column of each table present.
    """

    what: str  # the analysis, as the reason names it ("the matched study")
    tables: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()


PEOPLE = ("persons", "practices", "registrations")  # who is registered where, and when
# Each analysis (by its key in ``skipped``) and the tables it needs. The matched study also
# needs its primary outcome's table (see :func:`needs`); the design needs the matched study.
NEEDS: dict[str, Needs] = {
    "risk": Needs("the risk model", (*PEOPLE, "inpatient_spells")),
    "monitoring": Needs("the area comparison", (*PEOPLE, "inpatient_spells")),
    "programme": Needs(
        "programme monitoring", any_of=("care_plans", "mdg_meetings", "innovation_fund")
    ),
    "indicators": Needs("the clinical indicators", (*PEOPLE, "inpatient_spells")),
    # By default: the intervention's table is care_plans (see :func:`needs`).
    "impact": Needs("the matched study", (*PEOPLE, "inpatient_spells", "care_plans")),
    "design": Needs("the design", (*PEOPLE, "inpatient_spells", "care_plans")),
}


def needs(impact: ImpactSettings) -> dict[str, Needs]:
    """:data:`NEEDS` with the matched study's (and so the design's) tables set by its
    settings: the intervention's table in place of ``care_plans``, and the primary outcome's."""
    out = dict(NEEDS)
    for name in ("impact", "design"):
        n = NEEDS[name]
        base = [t for t in n.tables if t != "care_plans"]
        tables = (*base, impact.intervention.table, impact.primary.table)
        out[name] = Needs(n.what, tuple(dict.fromkeys(tables)))
    return out


def unmet(ds: Dataset, n: Needs) -> str:
    """Why ``ds`` cannot support an analysis needing ``n`` (a table absent or empty); "" if it
    can."""
    for name in n.tables:
        noun = name.replace("_", " ")
        if not ds.has(name):
            return f"no {name} table: {n.what} needs {noun}"
        if ds.rows(name) == 0:
            return f"the {name} table is empty: {n.what} needs {noun}"
    if n.any_of and not any(ds.rows(name) for name in n.any_of):
        names = f"{', '.join(n.any_of[:-1])} or {n.any_of[-1]}"
        return f"no {names} records: {n.what} needs at least one of them"
    return ""


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
    follow: FollowResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)


ANALYSES = tuple(f.name for f in fields(Analyses) if f.name != "skipped")


@dataclass(kw_only=True)
class Evaluation(Analyses):
    """The result objects of one run, with the settings and inputs they came from.

    Everything here holds true numbers; nothing is published yet. ``settings`` holds the study
    specification and each analysis's settings resolved from it; its ``spec.disclosure`` the
    numbers of the disclosure control the publication applies (on data not flagged synthetic).
    """

    dataset: str
    synthetic: bool
    manifest: dict[str, Any]
    settings: RunSettings
    summary: DataSummary
    validation_warnings: list[Problem]
    input_files: dict[str, str]

    @property
    def spec(self) -> StudySpec:
        """The study specification of the run."""
        return self.settings.spec

    @property
    def disclosure(self) -> DisclosureSettings:
        """The disclosure settings its publication applies."""
        return self.settings.spec.disclosure


def evaluate(
    data: str | Path,
    spec: StudySpec | LoadedSpec | None = None,
    progress: Progress | None = None,
    follow: Path | None = None,
) -> Evaluation:
    """Validate the dataset in ``data`` and run every analysis that its tables allow.

    ``spec`` is the study specification (the defaults when None). A spec read from a file
    (:class:`~careval.spec.toml.LoadedSpec`) is first checked against the data: every key it
    set must fit them (dates inside the data, areas that practices have). The spec's
    ``[disclosure]`` is not used here: it is kept in the :class:`Evaluation` for its
    publication. ``follow`` is a ``careval follow`` state folder whose looks the run carries
    (read, never written: :func:`careval.impact.follow_state.read_follow`).
    """
    say = progress or (lambda _step: None)
    data = Path(data)
    given = spec.spec if isinstance(spec, LoadedSpec) else spec or StudySpec()
    study = given.study
    say("validating the dataset")
    warnings = require_valid(data, extract_date=study.extract_date)
    # Surveys and transcripts first: they are quick, and a broken file should stop the run
    # before the long analyses rather than after them.
    skipped: dict[str, str] = {}
    with Dataset(data) as ds:  # validated: a manifest's synthetic flag is true or false
        say("surveys and qualitative analysis")
        with showing_values(ds.synthetic or SHOW_VALUES.get()):  # messages quote answers, words
            surveys = evaluate_surveys(data)
            qualitative = evaluate_qualitative(data, transcript_settings(given))
        say("summarising the data")
        rs = _resolved(spec, ds)
        st, impact_st, risk_st, design_st = rs.summary, rs.impact, rs.risk, rs.design
        unmet_here = {name: unmet(ds, n) for name, n in needs(impact_st).items()}

        checked = functools.partial(_checked, unmet_here)

        summary = summarise(ds, st, window(rs.spec, ds))
        span = summary.window
        shown = SHOW_VALUES.get()
        with contextlib.ExitStack() as stack:
            side: Future[Side] | None = None
            if people(ds) >= SIDE_PROCESS_PEOPLE:
                pool = stack.enter_context(
                    ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
                )
                side = pool.submit(side_analyses, data, span, rs, summary, unmet_here, shown)
            say("risk model and targeting")
            risk, skipped["risk"] = checked(
                "risk", lambda: _risk(ds, span, risk_st, st.eligibility)
            )
            say("area comparison and programme monitoring")
            done = side.result() if side is not None else _side(ds, span, rs, summary, unmet_here)
        areas, programme, indicators = done.areas, done.programme, done.indicators
        skipped |= {"monitoring": done.why_areas, "programme": done.why_programme}
        say("clinical indicators")
        skipped["indicators"] = done.why_indicators
        say("matched-control impact study")
        impact, skipped["impact"] = checked("impact", lambda: _impact(ds, span, risk, impact_st))
        follow_result = (
            read_follow(follow, data, impact_st, rs.spec.risk.train_date, ds, rs.spec.study.end)
            if follow is not None
            else None
        )
        synthetic, manifest = ds.synthetic, ds.manifest
        files = {f"{name}.parquet": sha256(ds.file(name)) for name in ds.tables}
    files.update(input_hashes(data, surveys, qualitative))
    if follow is not None:  # the looks the run carries are an input too, from outside the data
        kept = (SETTINGS, HISTORY)
        files.update(
            {f"{FOLLOW_FILES}/{n}": sha256(follow / n) for n in kept if (follow / n).is_file()}
        )
    say("study design and power")
    design, skipped["design"] = (
        (None, unmet_here["design"]) if unmet_here["design"] else _design(impact, design_st)
    )
    return Evaluation(
        dataset=data.name,
        synthetic=synthetic,
        manifest=manifest,
        settings=rs,
        summary=summary,
        validation_warnings=warnings,
        input_files=files,
        risk=risk,
        areas=areas,
        impact=impact,
        indicators=indicators,
        programme=programme,
        design=design,
        surveys=surveys,
        qualitative=qualitative,
        follow=follow_result,
        skipped=skipped,
    )


SIDE_PROCESS_PEOPLE = 200_000  # from this many people the side analyses get a process


@dataclass(frozen=True)
class Side:
    """The analyses that need neither the risk model nor the matched study: Table 2, the
    programme's monitoring and the clinical indicators, with why any was not run."""

    areas: AreaResult | None
    why_areas: str
    programme: ProgrammeResult | None
    why_programme: str
    indicators: IndicatorsResult | None
    why_indicators: str


def people(ds: Dataset) -> int:
    """The people in the dataset (0 without a persons table)."""
    return int(ds.table("persons").count().to_pyarrow().as_py()) if "persons" in ds.tables else 0


def side_analyses(
    data: Path,
    span: tuple[dt.date, dt.date],
    rs: RunSettings,
    summary: DataSummary,
    unmet_here: dict[str, str],
    shown: bool,
) -> Side:
    """:func:`_side` on its own connection to ``data``, in a process of its own: on a large
    dataset it then runs beside the risk model (the two use both cores, and neither the
    interpreter's lock nor the warning filters are shared). ``shown``: whether messages may
    quote values (the caller's :data:`~careval.errors.SHOW_VALUES`)."""
    with showing_values(shown), Dataset(data) as ds:
        return _side(ds, span, rs, summary, unmet_here)


def _checked(
    unmet_here: dict[str, str], name: str, run: Callable[[], tuple[Any, str]]
) -> tuple[Any, str]:
    """``run()`` when the analysis's tables are there (``unmet_here[name]`` empty); else None
    and why not."""
    return (None, unmet_here[name]) if unmet_here[name] else run()


def _side(
    ds: Dataset,
    span: tuple[dt.date, dt.date],
    rs: RunSettings,
    summary: DataSummary,
    unmet_here: dict[str, str],
) -> Side:
    """Table 2, the programme's monitoring (with the emergency admissions chart) and the
    clinical indicators, each when its tables are there."""

    checked = functools.partial(_checked, unmet_here)

    areas, why_areas = checked("monitoring", lambda: _areas(ds, span, rs.areas))
    programme, why_programme = checked("programme", lambda: _programme(ds, summary, rs.programme))
    if programme is not None and not unmet_here["monitoring"]:
        chart, why = emergency_admissions_chart(ds, span, rs.areas)
        if chart is not None:
            programme.charts[EMERGENCY_CHART] = chart
        else:
            programme.warnings.append(why)
    indicators, why_indicators = checked("indicators", lambda: _indicators(ds, span, rs.indicators))
    return Side(areas, why_areas, programme, why_programme, indicators, why_indicators)


def input_hashes(
    data: Path, surveys: SurveysResult | None, qualitative: QualitativeResult | None
) -> dict[str, str]:
    """SHA-256 of every file of ``surveys/`` and ``qualitative/`` and of every file the two
    analyses read (a survey's data file may lie anywhere inside the dataset), keyed by its path
    relative to the dataset. The readers refuse a file outside the dataset; a symbolic link
    there pointing out of it, which no analysis read, is not followed."""
    root = data.resolve()
    read = {
        f.relative_to(data).as_posix(): f
        for sub in ("surveys", "qualitative")
        for f in sorted((data / sub).rglob("*"))
        if f.is_file() and f.resolve().is_relative_to(root)
    }
    for f in [*(surveys.inputs if surveys else []), *(qualitative.inputs if qualitative else [])]:
        read.setdefault(f.relative_to(root).as_posix(), f)
    return {name: sha256(f) for name, f in sorted(read.items())}


def _risk(
    ds: Dataset, window: tuple[dt.date, dt.date], st: RiskSettings, el: EligibilitySettings
) -> tuple[RiskResult | None, str]:
    """Temporal validation when the data cover both index dates and a year of follow-up."""
    follow_end = follow_up_end(st.validate_date)
    if st.train_date < window[0] or follow_end > window[1] + dt.timedelta(days=1):
        return None, (
            f"the data ({window[0]} to {window[1]}) do not cover training on {st.train_date} "
            f"and validation on {st.validate_date} with 12 months of follow-up"
        )
    try:
        return evaluate_risk(ds, st, eligibility=el), ""
    except ValueError as exc:  # e.g. no outcomes at all in a tiny dataset
        return None, because("risk model not fitted: ", exc)


def _resolved(spec: StudySpec | LoadedSpec | None, ds: Dataset) -> RunSettings:
    """Each analysis's settings from ``spec``, with a spec file first checked against the data:
    the problems of both (a key the data contradict, a setting an analysis refuses) in one
    message."""
    problems = []
    if isinstance(spec, LoadedSpec):
        try:
            check(spec, ds)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        rs = resolve(spec.spec if isinstance(spec, LoadedSpec) else spec)
    except ConfigError as exc:
        problems.append(f"the spec's settings: {exc}")
    if problems:
        raise ConfigError("; ".join(problems))
    return rs


def _impact(
    ds: Dataset, window: tuple[dt.date, dt.date], risk: RiskResult | None, st: ImpactSettings
) -> tuple[ImpactResult | None, str]:
    """The matched study when there are treated people (by default the care-planned) and
    comparator-area people to match."""
    try:
        return evaluate_impact(ds, window, st, risk_model=risk.model if risk else None), ""
    except ValueError as exc:  # too few people, no comparator area, no plans in the window
        return None, because("matched study not run: ", exc)


def _areas(
    ds: Dataset, window: tuple[dt.date, dt.date], st: AreaSettings
) -> tuple[AreaResult | None, str]:
    """Table 2 when the data cover at least one start date with a year before it."""
    try:
        return evaluate_areas(ds, window, st), ""
    except ValueError as exc:
        return None, because("area comparison not run: ", exc)


def _programme(
    ds: Dataset, summary: DataSummary, st: ProgrammeSettings
) -> tuple[ProgrammeResult | None, str]:
    """Care plans, MDG meetings and the innovation fund, with their SPC charts."""
    try:
        return evaluate_programme(ds, summary, st), ""
    except ValueError as exc:
        return None, because("programme monitoring not run: ", exc)


def _indicators(
    ds: Dataset, window: tuple[dt.date, dt.date], st: IndicatorSettings
) -> tuple[IndicatorsResult | None, str]:
    """Diabetes and dementia indicators when the measurements and conditions are there."""
    try:
        return evaluate_indicators(ds, window, st), ""
    except ValueError as exc:
        return None, because("clinical indicators not computed: ", exc)


def _design(impact: ImpactResult | None, st: DesignSettings) -> tuple[DesignResult | None, str]:
    """Power and minimum detectable effects from the matched controls' untreated histories."""
    if impact is None or not impact.untreated:
        return None, "no matched study: the design needs untreated histories of matched people"
    try:
        return design_plan(impact, st), ""
    except ValueError as exc:
        return None, because("design not computed: ", exc)


def design_plan(impact: ImpactResult, st: DesignSettings) -> DesignResult:
    """The power analysis planned on the matched study's controls (their untreated histories),
    for as many people as were matched unless ``st.enrolled`` says otherwise."""
    return plan(
        impact.untreated,
        DESIGN_PRE_MONTHS,
        st,
        impact.attrition["treated_matched"],
        f"the matched controls (untreated people like the {impact.settings.intervention.treated})",
    )
