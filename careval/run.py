"""The main job: validate a dataset, run every analysis, write the report and its companions.

Outputs (``report.html``, ``results.json``, ``tables.xlsx``, ``figures/``) are written to a
temporary directory inside ``OUT`` and moved into place only when all of them are complete, so
a failed run leaves the previous outputs (or nothing) behind. On data not flagged synthetic,
disclosure control (:mod:`careval.report.publish.rules`) is applied to the result objects after
every analysis has run, so the page, the workbook and the JSON publish the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval import __version__
from careval.cohort.summary import DataSummary, SummarySettings, summarise
from careval.data.access import Dataset
from careval.data.validate import require_valid
from careval.design.power import DesignResult, DesignSettings, plan
from careval.errors import ConfigError, Problem
from careval.impact.study import (
    DESIGN_PRE_MONTHS,
    ImpactResult,
    ImpactSettings,
    evaluate_impact,
)
from careval.monitoring.areas import AreaResult, evaluate_areas
from careval.monitoring.indicators import IndicatorsResult, evaluate_indicators
from careval.monitoring.programme import ProgrammeResult, evaluate_programme
from careval.qualitative.evaluate import (
    QualitativeResult,
    evaluate_qualitative,
    qualitative_section,
)
from careval.report.objectives import table3
from careval.report.page import Section, figures, render
from careval.report.publish.areas import publish_areas
from careval.report.publish.audit import audit_page
from careval.report.publish.design import publish_design
from careval.report.publish.impact import impact_withheld, publish_impact
from careval.report.publish.indicators import publish_indicators
from careval.report.publish.programme import publish_programme
from careval.report.publish.risk import publish_risk
from careval.report.publish.rules import protect_json, protect_value
from careval.report.sections import areas as areas_section
from careval.report.sections import data as sections
from careval.report.sections import programme as programme_section
from careval.report.sections import risk as risk_section
from careval.report.sections.data import not_run_section
from careval.report.sections.design import design_section
from careval.report.sections.findings import findings_section, methods_section, objectives_section
from careval.report.sections.impact import impact_section
from careval.report.sections.indicators import indicators_section
from careval.report.workbook import write_workbook
from careval.risk.evaluate import RiskResult, RiskSettings, evaluate_risk
from careval.risk.model import follow_up_end
from careval.surveys.evaluate import SurveysResult, evaluate_surveys, surveys_section
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

OUTPUTS = ("results.json", "report.html", "tables.xlsx", "figures")
DEMO_DIR = Path("careval-demo")
SIGNIFICANT_DIGITS = 10  # of every float in results.json (see canonical)
RUN_STEPS = 9  # calls of ``progress`` in one run (for a progress bar's total)
Progress = Callable[[str], None]
# The report's sections in navigation order, with the title used when one did not run.
SECTION_ORDER: tuple[tuple[str, str], ...] = (
    ("summary", "Summary of findings"),
    ("data", "Data and attrition"),
    ("risk", "Targeting and risk"),
    ("monitoring", "Area comparison (Table 2)"),
    ("impact", "Matched-control results"),
    ("indicators", "Clinical indicators"),
    ("programme", "Programme monitoring"),
    ("surveys", "Surveys"),
    ("qualitative", "Qualitative findings"),
    ("design", "Study design and power"),
    ("objectives", "Progress against objectives"),
    ("methods", "Methods, assumptions and limitations"),
    ("provenance", "Provenance"),
)
NOT_RUN = {"surveys": "no survey inputs", "qualitative": "no qualitative inputs"}


@dataclass
class Analyses:
    """The result objects of one run (None where an analysis did not run, with the reason)."""

    risk: RiskResult | None = None
    areas: AreaResult | None = None
    impact: ImpactResult | None = None
    indicators: IndicatorsResult | None = None
    programme: ProgrammeResult | None = None
    design: DesignResult | None = None
    surveys: SurveysResult | None = None
    qualitative: QualitativeResult | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def run(
    data: str | Path,
    out: str | Path,
    settings: SummarySettings | None = None,
    progress: Progress | None = None,
    impact_settings: ImpactSettings | None = None,
) -> Path:
    """Evaluate the dataset in ``data`` into ``out``; returns the path of the report.

    Writes ``report.html`` (one self-contained page), ``results.json`` (every block),
    ``tables.xlsx`` (every published table) and ``figures/`` (each chart as SVG), all under
    disclosure control unless the dataset is flagged synthetic.
    """
    say = progress or (lambda _step: None)
    data, out = Path(data), Path(out)
    st = settings or SummarySettings()
    impact_st = impact_settings or ImpactSettings()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a directory")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must not be the dataset directory")
    say("validating the dataset")
    warnings = require_valid(data)
    # Surveys and transcripts first: they are quick, and a broken file should stop the run
    # before the long analyses rather than after them.
    say("surveys and qualitative analysis")
    a = Analyses()
    a.surveys = evaluate_surveys(data)
    a.qualitative = evaluate_qualitative(data)
    risk_st, design_st = RiskSettings(), DesignSettings()
    say("summarising the data")
    with Dataset(data) as ds:
        summary = summarise(ds, st)
        say("risk model and targeting")
        a.risk, a.skipped["risk"] = _risk(ds, summary.window, risk_st)
        say("area comparison and programme monitoring")
        a.areas, a.skipped["monitoring"] = _areas(ds, summary.window)
        a.programme = evaluate_programme(ds, summary)
        say("clinical indicators")
        a.indicators, a.skipped["indicators"] = _indicators(ds, summary.window)
        say("matched-control impact study")
        a.impact, a.skipped["impact"] = _impact(ds, summary.window, a.risk, impact_st)
        synthetic = ds.synthetic
        dataset_manifest = ds.manifest
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
    a.design, a.skipped["design"] = _design(a.impact, design_st)
    say("writing the report")
    provenance: dict[str, Any] = {
        "careval_version": __version__,
        "dataset": data.name,
        "synthetic": synthetic,
        "seed": dataset_manifest.get("settings", {}).get("seed"),
        "settings": {
            "reference_date": st.reference_date.isoformat(),
            "eligibility_min_age": st.eligibility.min_age,
            "eligibility_condition": st.eligibility.condition,
            "risk": _settings_dict(risk_st),
            "design": design_st.to_dict(),
            "impact": impact_st.to_dict(),
            "disclosure_control": not synthetic,
        },
        "input_files": files,
    }
    if not synthetic:
        _publish(a)
    tables = sections.published(summary, synthetic)
    results, built = _blocks(a, summary, tables, warnings, synthetic)
    results["provenance"] = {k: v for k, v in provenance.items() if k != "dataset"}
    if not synthetic:
        # Rules 1 and 3 on every block, whatever its source. Not only a safety net: it is the
        # one protection of counts no publish_* function touches (risk.n and risk.events, the
        # n_obs of impact.outcomes and naive). Idempotent, so published tables are unchanged.
        results = protect_json(results)
    results = canonical(results)
    objectives = table3(results)
    results["objectives"] = [o.to_dict() for o in objectives]
    lo, hi = summary.window
    window = (
        f"Data from {lo:%d %B %Y} to {hi:%d %B %Y}; eligibility counted on "
        f"{st.reference_date:%d %B %Y}."
    )
    built["summary"] = findings_section(results, objectives, window, summary.warnings)
    built["data"] = sections.data_section(summary, tables)
    built["objectives"] = objectives_section(objectives)
    built["methods"] = methods_section(results, synthetic)
    page_provenance = {
        **provenance,
        "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    built["provenance"] = sections.provenance_section(page_provenance)
    page_sections = in_order(built, {**NOT_RUN, **a.skipped})
    page = render(
        "Evaluation of the integrated care programme", page_sections, synthetic, page_provenance
    )
    if not synthetic:
        audit_page(page)
    _write(out, results, page, page_sections)
    return out / "report.html"


def in_order(built: dict[str, Section], skipped: dict[str, str]) -> list[Section]:
    """The sections in :data:`SECTION_ORDER`; one that did not run says why."""
    out = []
    for sid, title in SECTION_ORDER:
        if sid in built:
            out.append(built[sid])
        else:
            out.append(not_run_section(sid, title, skipped.get(sid) or "not available"))
    return out


def _publish(a: Analyses) -> None:
    """Disclosure control on the result objects (real data), after every analysis ran."""
    if a.risk is not None:
        a.risk = publish_risk(a.risk)
    if a.areas is not None:
        a.areas = publish_areas(a.areas)
    if a.impact is not None:
        publish_impact(a.impact)
    if a.programme is not None:
        a.programme = publish_programme(a.programme)
    if a.design is not None:
        publish_design(a.design)


def _blocks(
    a: Analyses,
    summary: DataSummary,
    tables: dict[str, pd.DataFrame],
    warnings: list[Problem],
    synthetic: bool,
) -> tuple[dict[str, Any], dict[str, Section]]:
    """The ``results.json`` blocks and the analysis sections, from the same result objects."""
    data_block = summary.to_dict()
    for name, df in tables.items():
        data_block[name] = [_record(r) for r in df.to_dict(orient="records")]
    data_block["validation_warnings"] = [_warning_line(p, synthetic) for p in warnings]
    results: dict[str, Any] = {
        "careval_version": __version__,
        "synthetic": synthetic,
        "disclosure_control": not synthetic,
        "data": data_block,
    }
    built: dict[str, Section] = {}
    if a.risk is not None:
        results["risk"] = a.risk.to_dict()
        built["risk"] = risk_section.section(a.risk)
    else:
        results["risk"] = {"skipped": a.skipped["risk"]}
    if a.areas is not None:
        results["monitoring"] = a.areas.to_dict()
        built["monitoring"] = areas_section.section(a.areas)
    else:
        results["monitoring"] = {"skipped": a.skipped["monitoring"]}
    if a.impact is not None and (synthetic or not impact_withheld(a.impact)):
        block = a.impact.to_dict()
        results["impact"] = block
        results["naive"] = block["naive"]
        built["impact"] = impact_section(a.impact)
    else:
        reason = a.skipped.get("impact") or "withheld: fewer than 8 matched care-planned people"
        a.skipped["impact"] = reason
        results["impact"] = results["naive"] = {"skipped": reason}
    if a.indicators is not None:
        results["indicators"] = (
            a.indicators.to_dict() if synthetic else publish_indicators(a.indicators)
        )
        built["indicators"] = indicators_section(a.indicators, protect=not synthetic)
    else:
        results["indicators"] = {"skipped": a.skipped["indicators"]}
    if a.programme is not None:
        results["programme"] = a.programme.to_dict()
        built["programme"] = programme_section.section(a.programme)
    if a.design is not None:
        results["design"] = a.design.to_dict()
        built["design"] = design_section(a.design)
    else:
        results["design"] = {"skipped": a.skipped["design"]}
    if a.surveys is not None:
        results["surveys"] = a.surveys.to_dict(protect=not synthetic)
        built["surveys"] = surveys_section(a.surveys, protect=not synthetic)
    else:
        results["surveys"] = {"skipped": NOT_RUN["surveys"]}
    if a.qualitative is not None:
        results["qualitative"] = a.qualitative.to_dict(protect=not synthetic)
        built["qualitative"] = qualitative_section(a.qualitative, protect=not synthetic)
    else:
        results["qualitative"] = {"skipped": NOT_RUN["qualitative"]}
    return results, built


def canonical(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """``obj`` with every float rounded to ``digits`` significant digits (NaN and inf: null).

    Multithreaded numerical libraries can sum in a different order from one run to the next,
    which changes the last bits of a result; rounding the published figures keeps two runs of
    the same data, settings and seed byte-identical.
    """
    if isinstance(obj, dict):
        return {k: canonical(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [canonical(v, digits) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if np.isfinite(obj) else None
    return obj


def _warning_line(p: Problem, synthetic: bool) -> str:
    """A validation warning as published: on real data no example row, its count protected."""
    if synthetic:
        return p.line()
    text = f"{p.table}.{p.column}: {p.rule}"
    if p.counts_rows:
        text += f" ({fmt_plain(protect_value(p.count))} rows)"
    return text + (f"; allowed: {p.allowed}" if p.allowed else "")


def fmt_plain(v: Any) -> str:
    """A published count as plain text."""
    return f"{v:,}" if isinstance(v, int) else str(v)


def _record(r: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}


def _settings_dict(st: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(st).items()}


def _write(out: Path, results: dict[str, Any], page: str, page_sections: list[Section]) -> None:
    """Write every output to a temporary directory in ``out``, then move each into place."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".careval-run.", dir=out))
    try:
        (tmp / "results.json").write_text(
            json.dumps(results, indent=2, default=_json_default) + "\n", encoding="utf-8"
        )
        (tmp / "report.html").write_text(page, encoding="utf-8")
        write_workbook(results, tmp / "tables.xlsx")
        (tmp / "figures").mkdir()
        for name, text in figures(page_sections):
            (tmp / "figures" / name).write_text(text, encoding="utf-8")
        if (out / "figures").is_dir():
            shutil.rmtree(out / "figures")
        for name in OUTPUTS:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def demo(
    out: str | Path = DEMO_DIR, persons: int | None = None, progress: Progress | None = None
) -> Path:
    """Make (or reuse) the default synthetic dataset in ``out/data`` and run on it into ``out``."""
    out = Path(out)
    data = out / "data"
    settings = SynthSettings() if persons is None else SynthSettings(persons=persons)
    manifest = data / "dataset.json"
    reuse = False
    if manifest.exists():
        try:
            reuse = json.loads(manifest.read_text("utf-8")).get("settings") == settings.to_dict()
        except (json.JSONDecodeError, UnicodeDecodeError):
            reuse = False
    if not reuse:
        generate(data, settings, overwrite=True, progress=progress)
    return run(data, out, progress=progress)


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
        return (
            plan(
                impact.untreated,
                DESIGN_PRE_MONTHS,
                st,
                impact.attrition["treated_matched"],
                "the matched controls (untreated people like the care-planned)",
            ),
            "",
        )
    except ValueError as exc:
        return None, f"design not computed: {exc}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_default(v: object) -> object:
    if hasattr(v, "isoformat"):
        return v.isoformat()  # type: ignore[no-any-return]
    if hasattr(v, "item"):
        return v.item()  # type: ignore[no-any-return]
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
