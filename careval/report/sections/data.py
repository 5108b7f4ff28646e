"""Report sections of the data summary and provenance."""

from __future__ import annotations

import html
import json

import pandas as pd

from careval.cohort.summary import DataSummary
from careval.data.areas import pooled_name
from careval.disclosure import DisclosureSettings
from careval.report import format as fmt
from careval.report.page import Section, area_label, line_chart, table_html
from careval.report.publish.model import Published
from careval.report.sections.flow import COVERAGE_DEFINITION, coverage
from careval.report.sections.flow_draw import flow_figure

NOT_AREAS = ("step", "description")  # the attrition table's other columns: one per area


def data_section(
    summary: DataSummary,
    pub: Published | None = None,
    disclosure: DisclosureSettings | None = None,
) -> Section:
    """The flow diagram (from the published results ``pub``, under ``disclosure`` on real
    data), people by area and group, attrition, and activity by financial year with a chart.

    ``summary`` is the published copy on real data (:func:`~careval.report.publish.data.
    publish_summary`): its tables are shown as they are, the areas by their labels
    (:func:`~careval.report.page.area_label`).
    """
    people = _labelled(summary.people_by_area)
    attrition_areas = [c for c in summary.attrition.columns if c not in NOT_AREAS]
    programme = summary.settings.programme_areas
    labels = {
        "area": "Area",
        "registered": "Registered",
        "eligible": "Eligible",
        **{g.name: g.label for g in summary.settings.eligibility.groups()},
        "eligible_share": "Eligible share",
    }
    ref = summary.settings.reference_date
    parts = []
    if pub is not None:
        parts.append("<h3>Flow of people through the evaluation</h3>")
        parts.append(flow_figure(pub, programme, disclosure))
        share, planned, eligible = coverage(pub, programme)
        if share is not None:
            parts.append(
                f"<p id='data-coverage'>In this report {COVERAGE_DEFINITION}: "
                f"{fmt.count(planned)} of {fmt.count(eligible)}, "
                f"<b class='coverage'>{fmt.pct(share)}</b>.</p>"
            )
    parts += [
        f"<h3>People by area and eligibility group on {ref:%d %B %Y}</h3>",
        table_html(people, labels, "people-by-area", ("area",)),
        "<h3>Attrition of the eligible cohort</h3>",
        table_html(
            summary.attrition,
            {"step": "Step", "description": "Description"}
            | {a: area_label(a) for a in attrition_areas},
            "attrition",
            ("description",),
        ),
        "<h3>Activity by financial year</h3>",
    ]
    act = summary.activity_by_year  # as published: withheld rates are gaps
    if len(act):
        act = act.assign(emergency_per_1000_py=pd.to_numeric(act.emergency_per_1000_py))
        parts.append(
            "<figure>"
            + line_chart(
                act,
                "year",
                "emergency_per_1000_py",
                "area",
                "Emergency admissions per 1,000 person-years",
                "per 1,000 person-years",
                highlight=programme,
            )
            + "</figure>"
        )
    parts.append(
        table_html(
            _labelled(summary.activity_by_year),
            {"area": "Area", "year": "Year"},
            "activity-by-year",
            ("area", "year"),
        )
    )
    cov = summary.care_plan_coverage
    if len(cov):
        parts.append("<h3>Care plans made each month, cumulative</h3>")
        chart = line_chart(
            cov.assign(series=pooled_name(programme)),
            "month",
            "coverage_of_eligible",
            "series",
            f"Care plans made so far per person eligible on {ref:%d %B %Y}",
            "plans per eligible person",
            highlight=(pooled_name(programme),),
        )
        parts.append(f"<figure>{chart}</figure>")
        parts.append(
            "<p class='note'>This monthly series counts every care plan made, also for people "
            "who were not eligible on the reference date (they became eligible or registered "
            "later), over the people eligible on that date; it is therefore higher than the "
            "coverage defined above (see the flow diagram).</p>"
        )
        parts.append(
            table_html(
                summary.care_plan_coverage,
                {"month": "Month", "coverage_of_eligible": "Care plans made per eligible person"},
                "care-plan-coverage",
                ("month",),
            )
        )
    parts.append(
        "<p class='note'>Emergency admissions are spells with admission method 21-2D "
        "or 28, regular day and night attenders (patient classification 3, 4) "
        "excluded. Person-years count days registered and alive.</p>"
    )
    return Section("data", "Data and attrition", "".join(parts))


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its ``area`` column as the areas' labels."""
    return df.assign(area=df["area"].map(area_label)) if "area" in df else df


def provenance_section(provenance: dict) -> Section:
    """Version, data set, seed, disclosure control and the run's time stamp; the study
    specification, the settings and the input files' hashes (all code names) are in the
    appendix (:func:`provenance_tables`).

    The time stamp is the only part of the page that differs between two runs of the same data
    and settings; it sits in ``<span id="run-time">``.
    """
    rows = [
        ("careval version", provenance.get("careval_version")),
        ("Data set", provenance.get("dataset")),
        ("Synthetic data", "yes" if provenance.get("synthetic") else "no"),
        ("Disclosure control", "off" if provenance.get("synthetic") else "on"),
        ("Random seed of the data", provenance.get("seed")),
    ]
    body = "".join(
        f"<tr><td class='text'>{html.escape(str(k))}</td>"
        f"<td class='text'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
        if v is not None
    )
    body += (
        "<tr><td class='text'>Run at</td><td class='text'><span id='run-time'>"
        f"{html.escape(str(provenance.get('run_at', '')))}</span></td></tr>"
    )
    n_files = len(provenance.get("input_files", {}))
    return Section(
        "provenance",
        "Provenance",
        f"<table id='provenance-table'>{body}</table>"
        f"<p class='note'>The study specification, the settings of each analysis and the "
        f"{n_files} input files with their SHA-256 hashes are listed, under their code names, "
        "in the <a href='#appendix'>appendix</a>.</p>",
    )


def provenance_tables(provenance: dict) -> str:
    """The study specification (``study.json``), the settings of each analysis and the input
    files with their SHA-256 hashes: tables of code names, for the appendix."""
    files = "".join(
        f"<tr><td class='text'>{html.escape(f)}</td><td class='text'><code>{h}</code></td></tr>"
        for f, h in provenance.get("input_files", {}).items()
    )
    settings = "".join(
        f"<tr><td class='text'>{html.escape(str(k))}</td>"
        f"<td class='text'><code>{html.escape(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in _flat(provenance.get("settings", {}))
    )
    study = "".join(
        f"<tr><td class='text'>{html.escape(str(k))}</td>"
        f"<td class='text'><code>{html.escape(json.dumps(v, default=str))}</code></td></tr>"
        for k, v in _flat(provenance.get("study", {}))
        if k != "careval_spec"
    )
    return (
        "<h3>Study specification (<code>study.json</code>)</h3>"
        f"<div class='table-wrap'><table id='provenance-study'>{study}</table></div>"
        "<h3>Settings of each analysis</h3>"
        f"<div class='table-wrap'><table id='provenance-settings'>{settings}</table></div>"
        "<h3>Input files (SHA-256)</h3>"
        f"<div class='table-wrap'><table id='provenance-files'>{files}</table></div>"
    )


def _flat(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, f"{key}.")
        else:
            out.append((key, v))
    return out


def not_run_section(section_id: str, title: str, reason: str) -> Section:
    """A section whose analysis did not run, saying why (keeps the navigation complete)."""
    return Section(
        section_id,
        title,
        f"<p class='not-run' data-not-run='{html.escape(section_id)}'>Not run: "
        f"{html.escape(reason)}.</p>",
    )
