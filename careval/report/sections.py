"""Report sections of the data summary and provenance."""

from __future__ import annotations

import html

import pandas as pd

from careval.cohort.eligibility import GROUPS
from careval.cohort.summary import DataSummary
from careval.data.schema import AREAS
from careval.report.disclosure import protect_counts
from careval.report.render import AREA_LABELS, Section, line_chart, table_html

COUNT_COLUMNS_PEOPLE = ["registered", "eligible", *GROUPS]


def published(summary: DataSummary, synthetic: bool) -> dict[str, pd.DataFrame]:
    """The summary tables as published: counts protected unless the data are synthetic."""
    protect = not synthetic
    people = protect_counts(summary.people_by_area, COUNT_COLUMNS_PEOPLE, protect)
    if protect:  # a share from a suppressed or tiny count is withheld
        small = summary.people_by_area["eligible"] < 8
        people["eligible_share"] = people["eligible_share"].where(~small, None)
    activity = summary.activity_by_year.copy()
    counts = [
        c
        for c in activity.columns
        if c not in ("area", "year", "person_years") and not c.endswith("_py")
    ]
    activity = protect_counts(activity, counts, protect)
    if protect:
        small = summary.activity_by_year["emergency_admissions"] < 8
        activity["emergency_per_1000_py"] = activity["emergency_per_1000_py"].where(~small, None)
    attrition = protect_counts(summary.attrition, list(AREAS), protect)
    coverage = protect_counts(summary.care_plan_coverage, ["care_plans", "cumulative"], protect)
    return {
        "people_by_area": people,
        "activity_by_year": activity,
        "attrition": attrition,
        "care_plan_coverage": coverage,
    }


def summary_section(summary: DataSummary, tables: dict[str, pd.DataFrame]) -> Section:
    """Key figures at the top of the report."""
    rows = {r["area"]: r for r in tables["people_by_area"].to_dict(orient="records")}
    pilot = rows.get("pilot")
    items: list[tuple[str, object]] = []
    if pilot is not None:  # counts keep their own type (int, or "*" when suppressed)
        items.append(("People registered with pilot practices", pilot["registered"]))
        items.append(("Eligible (75+ and/or diabetes)", pilot["eligible"]))
    act = summary.activity_by_year
    rate = act.loc[act["area"] == "pilot", "emergency_per_1000_py"]
    if len(rate):
        items.append(
            (
                "Pilot emergency admissions per 1,000 person-years (latest year)",
                float(rate.iloc[-1]),
            )
        )
    figs = "".join(
        f'<div class="keyfig" data-key="{html.escape(k)}"><b>{_num(v)}</b>{html.escape(k)}</div>'
        for k, v in items
    )
    lo, hi = summary.window
    text = (
        f"<p>Data from {lo:%d %B %Y} to {hi:%d %B %Y}; eligibility counted on "
        f"{summary.settings.reference_date:%d %B %Y}.</p>"
    )
    warn = "".join(f"<p class='banner'>{html.escape(w)}</p>" for w in summary.warnings)
    return Section("summary", "Summary", figs + text + warn)


def _num(v: object) -> str:
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def data_section(summary: DataSummary, tables: dict[str, pd.DataFrame]) -> Section:
    """People by area and group, attrition, and activity by financial year with a chart."""
    people = tables["people_by_area"]
    labels = {
        "area": "Area",
        "registered": "Registered",
        "eligible": "Eligible",
        "under_75_with_diabetes": "Under 75 with diabetes",
        "aged_75_plus_without_diabetes": "75+ without diabetes",
        "aged_75_plus_with_diabetes": "75+ with diabetes",
        "eligible_share": "Eligible share",
    }
    ref = summary.settings.reference_date
    parts = [
        f"<h3>People by area and eligibility group on {ref:%d %B %Y}</h3>",
        table_html(people, labels, "people-by-area", ("area",)),
        "<h3>Attrition of the eligible cohort</h3>",
        table_html(
            tables["attrition"],
            {"step": "Step", "description": "Description", **{a: AREA_LABELS[a] for a in AREAS}},
            "attrition",
            ("description",),
        ),
        "<h3>Activity by financial year</h3>",
    ]
    act = summary.activity_by_year
    if len(act):
        parts.append(
            "<figure>"
            + line_chart(
                act,
                "year",
                "emergency_per_1000_py",
                "area",
                "Emergency admissions per 1,000 person-years",
                "per 1,000 person-years",
            )
            + "</figure>"
        )
    parts.append(
        table_html(
            tables["activity_by_year"],
            {"area": "Area", "year": "Year"},
            "activity-by-year",
            ("area", "year"),
        )
    )
    cov = summary.care_plan_coverage
    if len(cov):
        parts.append("<h3>Care plans: cumulative coverage of the pilot's eligible people</h3>")
        chart = line_chart(
            cov.assign(series="pilot"),
            "month",
            "coverage_of_eligible",
            "series",
            f"Share of the eligible (on {ref:%d %B %Y}) with a care plan",
            "share",
        )
        parts.append(f"<figure>{chart}</figure>")
        parts.append(
            table_html(
                tables["care_plan_coverage"], {"month": "Month"}, "care-plan-coverage", ("month",)
            )
        )
    parts.append(
        "<p class='note'>Emergency admissions are spells with admission method 21-2D "
        "or 28, regular day and night attenders (patient classification 3, 4) "
        "excluded. Person-years count days registered and alive.</p>"
    )
    return Section("data", "Data and attrition", "".join(parts))


def provenance_section(provenance: dict) -> Section:
    """Version, settings, input files and their hashes, run time."""
    rows = [(k, v) for k, v in provenance.items() if k not in ("input_files", "settings")]
    body = "".join(
        f"<tr><td class='text'>{html.escape(str(k))}</td>"
        f"<td class='text'>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    files = "".join(
        f"<tr><td class='text'>{html.escape(f)}</td><td class='text'><code>{h}</code></td></tr>"
        for f, h in provenance.get("input_files", {}).items()
    )
    settings = html.escape(str(provenance.get("settings", {})))
    return Section(
        "provenance",
        "Provenance",
        f"<table>{body}</table><h3>Input files (SHA-256)</h3><table>{files}</table>"
        f"<h3>Settings</h3><p><code>{settings}</code></p>",
    )
