"""The report of one evaluation: publish it, render every section, write the outputs.

:func:`write_report` writes ``report.html`` (one self-contained page), ``results.json`` (every
block), ``tables.xlsx`` (every published table), ``study.json`` (the resolved study
specification) and ``figures/`` (each chart as SVG) into a new run directory of ``out`` and
makes the five current together only when all are complete (:func:`careval.folders.write_run`),
so a failed or killed run leaves the previous outputs (or nothing) behind, and the user's own
files in ``out`` stay. All of them come from the one
published copy (:func:`careval.report.publish.publish`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from careval.evaluation import NOT_RUN, Evaluation
from careval.folders import kill_point, write_run
from careval.report.page import PageContext, Section, figures, render
from careval.report.publish.audit import audit_page, audit_results
from careval.report.publish.publication import Publication, publish
from careval.report.sections import areas as areas_page
from careval.report.sections import data as data_sections
from careval.report.sections import design as design_page
from careval.report.sections import follow as follow_page
from careval.report.sections import impact as impact_page
from careval.report.sections import in_order
from careval.report.sections import indicators as indicators_page
from careval.report.sections import programme as programme_page
from careval.report.sections import qualitative as qualitative_page
from careval.report.sections import risk as risk_page
from careval.report.sections import surveys as surveys_page
from careval.report.sections.findings import (
    appendix_section,
    findings_section,
    glossary_section,
    methods_section,
    objectives_section,
)
from careval.report.workbook import write_workbook
from careval.spec.model import SPEC_VERSION

OUTPUTS = ("results.json", "report.html", "tables.xlsx", "study.json", "figures")
TITLE = "Evaluation of the integrated care programme"


def write_report(ev: Evaluation, out: str | Path) -> Path:
    """Publish ``ev`` and write the report and its companions into ``out``; the page's path."""
    out = Path(out)
    p = publish(ev)
    ctx = PageContext(disclosure=p.disclosure, seed_shaped=p.seed_shaped)
    built = analysis_sections(p, ctx)
    lo, hi = p.summary.window
    ref = p.summary.settings.reference_date
    window = (
        f"Data from {lo.day} {lo:%B %Y} to {hi.day} {hi:%B %Y}; eligibility counted on "
        f"{ref.day} {ref:%B %Y}."
    )
    built["summary"] = findings_section(
        p.results,
        window,
        p.summary.warnings,
        p.summary.settings.programme_areas,
        p.summary.settings.eligibility,
    )
    built["data"] = data_sections.data_section(p.summary, p.results, p.disclosure)
    built["objectives"] = objectives_section(p.results, ctx)
    built["methods"] = methods_section(p.results, ctx)
    built["glossary"] = glossary_section()
    study = study_json(ev)
    page_provenance = {
        **p.provenance,
        "study": study,
        "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    built["provenance"] = data_sections.provenance_section(page_provenance)
    built["appendix"] = appendix_section(
        p.results.to_json(), data_sections.provenance_tables(page_provenance)
    )
    page_sections = in_order(built, {**NOT_RUN, **p.skipped})
    page = render(TITLE, page_sections, p.synthetic, page_provenance, p.disclosure)
    if not p.synthetic:
        audit_page(page, p.disclosure)
        audit_results(p.results.to_json(), p.disclosure)
    _write(out, p.results.to_json(), page, page_sections, study)
    return out / "report.html"


def study_json(ev: Evaluation) -> dict[str, Any]:
    """The resolved study specification of the run (``study.json``): every field's value."""
    return {"careval_spec": SPEC_VERSION, **ev.spec.to_dict()}


# Each analysis's section: its id on the page and the function rendering its published result
# in the page's context.
SECTIONS: dict[str, tuple[str, Callable[[Any, PageContext], Section]]] = {
    "risk": ("risk", risk_page.section),
    "areas": ("monitoring", areas_page.section),
    "impact": ("impact", impact_page.section),
    "indicators": ("indicators", indicators_page.section),
    "programme": ("programme", programme_page.section),
    "design": ("design", design_page.section),
    "surveys": ("surveys", surveys_page.section),
    "qualitative": ("qualitative", qualitative_page.section),
    "follow": ("follow", follow_page.run_section),
}


def analysis_sections(p: Publication, ctx: PageContext) -> dict[str, Section]:
    """The section of every analysis that ran, from its published result."""
    built: dict[str, Section] = {}
    for name, (section_id, render_one) in SECTIONS.items():
        result = getattr(p, name)
        if result is not None:
            built[section_id] = render_one(result, ctx)
    return built


def _write(
    out: Path,
    results: dict[str, Any],
    page: str,
    page_sections: list[Section],
    study: dict[str, Any],
) -> None:
    """Write every output into a new run directory of ``out`` and make the set current at once.

    The run folder's rules (:func:`careval.folders.write_run`): the outputs change together, a
    kill leaves the previous set or the new one, and the user's own files in ``out`` and in
    ``out/figures`` stay.
    """

    def fill(run: Path) -> None:
        (run / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        kill_point("run-writing")
        (run / "study.json").write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")
        (run / "report.html").write_text(page, encoding="utf-8")
        write_workbook(results, run / "tables.xlsx")
        (run / "figures").mkdir()
        for name, text in figures(page_sections):
            (run / "figures" / name).write_text(text, encoding="utf-8")

    write_run(out, OUTPUTS, fill)
