"""The main job: validate a dataset, run every analysis, write ``results.json`` and ``report.html``.

Outputs are written to a temporary directory beside ``OUT`` and moved into place only when all
of them are complete, so a failed run leaves the previous outputs (or nothing) behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from careval import __version__
from careval.cohort.summary import SummarySettings, summarise
from careval.data.access import Dataset
from careval.data.validate import require_valid
from careval.design.power import DesignResult, DesignSettings, plan
from careval.design.report import design_section
from careval.errors import ConfigError
from careval.impact.report import impact_section
from careval.impact.study import DESIGN_PRE_MONTHS, ImpactResult, evaluate_impact
from careval.monitoring.areas import AreaResult, evaluate_areas
from careval.monitoring.indicators import IndicatorsResult, evaluate_indicators
from careval.monitoring.indicators_report import indicators_section
from careval.monitoring.programme import evaluate_programme
from careval.monitoring.report import programme_section, table2_section
from careval.report import sections
from careval.report.disclosure import protect_counts
from careval.report.render import render
from careval.risk.evaluate import RiskResult, RiskSettings, evaluate_risk, risk_section
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

OUTPUTS = ("results.json", "report.html")
DEMO_DIR = Path("careval-demo")
Progress = Callable[[str], None]


def run(
    data: str | Path,
    out: str | Path,
    settings: SummarySettings | None = None,
    progress: Progress | None = None,
) -> Path:
    """Evaluate the dataset in ``data`` into ``out``; returns the path of the report."""
    say = progress or (lambda _step: None)
    data, out = Path(data), Path(out)
    st = settings or SummarySettings()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a directory")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must not be the dataset directory")
    started = time.time()
    say("validating the dataset")
    warnings = require_valid(data)
    say("summarising the data")
    with Dataset(data) as ds:
        summary = summarise(ds, st)
        say("risk model and targeting")
        risk, risk_warning = _risk(ds, summary.window)
        say("area comparison and programme monitoring")
        areas, areas_warning = _areas(ds, summary.window)
        programme = evaluate_programme(ds, summary)
        say("clinical indicators")
        indicators, indicators_warning = _indicators(ds, summary.window)
        say("matched-control impact study")
        impact, impact_warning = _impact(ds, summary.window, risk)
        synthetic = ds.synthetic
        dataset_manifest = ds.manifest
        files = {f"{name}.parquet": _sha256(ds.file(name)) for name in ds.tables}
    say("writing the report")
    provenance: dict[str, Any] = {
        "careval_version": __version__,
        "dataset": str(data),
        "synthetic": synthetic,
        "seed": dataset_manifest.get("settings", {}).get("seed"),
        "settings": {
            "reference_date": st.reference_date.isoformat(),
            "eligibility_min_age": st.eligibility.min_age,
            "eligibility_condition": st.eligibility.condition,
        },
        "input_files": files,
    }
    tables = sections.published(summary, synthetic)
    data_block = summary.to_dict()
    for name, df in tables.items():
        data_block[name] = [dict(r) for r in df.to_dict(orient="records")]
    data_block["validation_warnings"] = [p.line() for p in warnings]
    results = {
        "careval_version": __version__,
        "synthetic": synthetic,
        "provenance": {k: v for k, v in provenance.items() if k != "dataset"},
        "data": data_block,
    }
    page_sections = [
        sections.summary_section(summary, tables),
        sections.data_section(summary, tables),
    ]
    if risk is not None:
        if not synthetic and len(risk.targeting):
            risk.targeting = protect_counts(risk.targeting, ["people"])
        results["risk"] = risk.to_dict()
        page_sections.append(risk_section(risk))
    else:
        results["risk"] = {"skipped": risk_warning}
    if areas is not None:
        if not synthetic:
            _protect_table2(areas)
        results["monitoring"] = areas.to_dict()
        page_sections.append(table2_section(areas))
    else:
        results["monitoring"] = {"skipped": areas_warning}
    if impact is not None:
        block = impact.to_dict()
        if not synthetic:
            block["attrition"] = _protect_dict(block["attrition"])
        results["impact"] = block
        results["naive"] = block["naive"]
        page_sections.append(impact_section(impact))
    else:
        results["impact"] = {"skipped": impact_warning}
    if indicators is not None:
        results["indicators"] = indicators.to_dict(protect=not synthetic)
        page_sections.append(indicators_section(indicators, protect=not synthetic))
    else:
        results["indicators"] = {"skipped": indicators_warning}
    results["programme"] = programme.to_dict()
    page_sections.append(programme_section(programme))
    design, design_warning = _design(impact)
    if design is not None:
        results["design"] = design.to_dict()
        page_sections.append(design_section(design))
    else:
        results["design"] = {"skipped": design_warning}
    page_provenance = {
        **provenance,
        "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "run_seconds": round(time.time() - started, 1),
    }
    page = render(
        "Evaluation of the integrated care programme",
        [*page_sections, sections.provenance_section(page_provenance)],
        synthetic,
        page_provenance,
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".careval-run.", dir=out))
    try:
        (tmp / "results.json").write_text(
            json.dumps(results, indent=2, default=_json_default) + "\n", encoding="utf-8"
        )
        (tmp / "report.html").write_text(page, encoding="utf-8")
        for name in OUTPUTS:
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "report.html"


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


def _risk(ds: Dataset, window: tuple[dt.date, dt.date]) -> tuple[RiskResult | None, str]:
    """Temporal validation when the data cover both index dates and a year of follow-up."""
    st = RiskSettings()
    follow_end = dt.date(st.validate_date.year + 1, st.validate_date.month, 1)
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
    ds: Dataset, window: tuple[dt.date, dt.date], risk: RiskResult | None
) -> tuple[ImpactResult | None, str]:
    """The matched study when there are care plans and comparator-area people to match."""
    if not ds.has("care_plans"):
        return None, "no care_plans table: the matched study needs care plans"
    try:
        return evaluate_impact(ds, window, risk_model=risk.model if risk else None), ""
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


def _protect_table2(areas: AreaResult) -> None:
    """Counts in Table 2 made safe to publish; rates from fewer than 8 people withheld."""
    t = areas.table
    small = t.people_after < 8
    for col in ("pct_change", "ci_low", "ci_high", "rate_before", "rate_after"):
        t.loc[small, col] = float("nan")
    for col in ("people_after", "admissions_after", "admissions_before"):
        t[col] = [None if 1 <= v <= 7 else int(5 * round(v / 5)) for v in t[col]]


def _design(impact: ImpactResult | None) -> tuple[DesignResult | None, str]:
    """Power and minimum detectable effects from the matched controls' untreated histories."""
    if impact is None or not impact.untreated:
        return None, "no matched study: the design needs untreated histories of matched people"
    try:
        return (
            plan(
                impact.untreated,
                DESIGN_PRE_MONTHS,
                DesignSettings(),
                impact.attrition["treated_matched"],
                "the matched controls (untreated people like the care-planned)",
            ),
            "",
        )
    except ValueError as exc:
        return None, f"design not computed: {exc}"


def _protect_dict(d: dict[str, Any]) -> dict[str, Any]:
    """Counts of people in a dict made safe to publish (suppress 1-7, round to 5)."""
    out = dict(d)
    for k, v in d.items():
        if isinstance(v, int) and not isinstance(v, bool):
            out[k] = None if 1 <= v <= 7 else int(5 * round(v / 5))
    return out


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
