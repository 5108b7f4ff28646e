"""tables.xlsx describes itself: a contents sheet listing every table, readable sheet names,
human headers with their code names findable, number formats by column kind, frozen headers,
filters, a definitions and units sheet, and the matched study as a proper sheet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from careval.report.format import EXCEL_FORMAT
from careval.report.glossary import label
from careval.report.workbook import (
    CONTENTS,
    DEFINITIONS,
    FIGURES,
    IMPACT,
    P_FORMAT,
    sheet_columns,
    sheet_name,
    tables,
)


@pytest.fixture(scope="module")
def run(synth_run: Path) -> tuple[Any, dict[str, Any]]:
    """The workbook (opened with comments and formats) and results.json of a synthetic run."""
    out = synth_run
    return load_workbook(out / "tables.xlsx"), json.loads((out / "results.json").read_text())


def _column(ws: Any, header: str) -> list[Any]:
    """The cells under the header ``header`` of ``ws``."""
    heads = [c.value for c in ws[1]]
    j = heads.index(header)
    return [row[j] for row in ws.iter_rows(min_row=2)]


def test_sheet_names_are_readable_short_and_unique(run: tuple[Any, dict[str, Any]]) -> None:
    wb, results = run
    names = wb.sheetnames
    assert names[:4] == [CONTENTS, FIGURES, IMPACT, DEFINITIONS]
    assert all(len(n) <= 31 for n in names) and len({n.lower() for n in names}) == len(names)
    assert not [n for n in names if "_" in n or "." in n]  # no code names or paths
    assert "People by area" in names and "Clinical indicators" in names
    assert "SPC MDG meetings per month" in names and "MDG meetings per month limits" in names
    # One sheet per table of results.json, each listed on the contents sheet with its source.
    listed = sheet_columns(wb)
    assert sorted(src for src, _ in listed.values()) == sorted(p for p, _ in tables(results))
    assert set(listed) | {CONTENTS, FIGURES, IMPACT, DEFINITIONS} == set(names)
    contents = list(wb[CONTENTS].iter_rows(min_row=2, values_only=True))
    described = {r[0]: r for r in contents if r and r[0]}
    for name in names[1:]:
        assert name in described, name
        assert described[name][2] and str(described[name][2]).endswith("."), name


def test_names_are_cut_at_a_word_and_repeats_numbered() -> None:
    used: set[str] = set()
    long = "Professionals survey answers by group and by everything"
    first = sheet_name(long, used)
    assert first == "Professionals survey answers by" and len(first) <= 31
    second = sheet_name(long, used)
    assert second.endswith(" (2)") and len(second) <= 31 and second != first
    assert sheet_name("a/b:c*d?[e]", used) == "a b c d e"


def test_headers_are_labels_with_their_code_names_findable(run: tuple[Any, dict[str, Any]]) -> None:
    wb, results = run
    ws = wb["People by area"]
    heads = [c.value for c in ws[1]]
    codes = sheet_columns(wb)["People by area"][1]
    assert heads == [label(c) for c in codes] and "Registered" in heads
    assert codes == list(results["data"]["people_by_area"][0])
    assert ws["B1"].comment is not None and "Code name: registered" in ws["B1"].comment.text
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert rows == [[r.get(c) for c in codes] for r in results["data"]["people_by_area"]]
    defs = {r[1]: r for r in wb[DEFINITIONS].iter_rows(min_row=2, values_only=True)}
    every = {c for _, cs in sheet_columns(wb).values() for c in cs}
    assert set(defs) == every
    assert defs["registered"][0] == "Registered" and defs["registered"][3] == "people"
    assert defs["coverage_of_eligible"][3] == "share (0-1)" and defs["p_value"][3] == "p-value"
    assert all(r[2] and r[3] for r in defs.values())  # a meaning and a unit for every column
    assert defs["area"][3] == "text"
    # A name whose unit differs between tables has a row for each unit.
    rows_ci = [
        r for r in wb[DEFINITIONS].iter_rows(min_row=2, values_only=True) if r[1] == "ci_low"
    ]
    units = {r[3]: r[4] for r in rows_ci}
    assert "Table 2 area comparison" in units["percent change"]
    assert "Effect by follow-up horizon" in units["log rate ratio"]


def test_number_formats_by_column_kind(run: tuple[Any, dict[str, Any]]) -> None:
    wb, _ = run
    people = wb["People by area"]
    assert {c.number_format for c in _column(people, "Registered")} == {EXCEL_FORMAT["count"]}
    shares = _column(people, "Eligible (% of registered)")
    assert {c.number_format for c in shares} == {"0.0%"}
    ps = _column(wb["Clinical indicators"], label("p_value"))
    assert {c.number_format for c in ps if c.value is not None} == {P_FORMAT}
    # No number anywhere in General format.
    general = [
        (ws.title, c.coordinate)
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if isinstance(c.value, int | float) and not isinstance(c.value, bool)
        if c.number_format == "General"
    ]
    assert general == []


def test_frozen_headers_filters_and_widths(run: tuple[Any, dict[str, Any]]) -> None:
    wb, _ = run
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        if ws.max_row > 1 and ws.title != CONTENTS:
            last = ws.cell(1, ws.max_column).column_letter
            assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}", ws.title
    assert wb[CONTENTS].auto_filter.ref.startswith("A1:F")
    people = wb["People by area"]
    widths = {k: d.width for k, d in people.column_dimensions.items()}
    assert widths["D"] >= len("Under 75 with diabetes")  # fitted to the header
    assert all(8 <= w <= 62 for w in widths.values())


def test_the_impact_sheet_is_the_matched_study(run: tuple[Any, dict[str, Any]]) -> None:
    wb, results = run
    ws = wb[IMPACT]
    head = [c.value for c in ws[1]]
    rows = {
        r[0]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)
    }
    outcomes = results["impact"]["outcomes"]
    deaths = ["Deaths"] if "rate_ratio" in results["impact"].get("mortality", {}) else []
    assert list(rows) == [label(k) for k in outcomes] + deaths
    e = outcomes["emergency_admissions"]
    row = rows["Emergency admissions"]
    assert row["Rate ratio"] == e["rate_ratio"]
    assert (row["95% CI low"], row["95% CI high"]) == (
        e["rate_ratio_ci_low"],
        e["rate_ratio_ci_high"],
    )
    assert row["Change"] == pytest.approx(e["rate_ratio"] - 1)
    assert row["p-value"] == e["p_value"] and row["Care-planned"] == e["n_treated"]
    assert row["Matched controls"] == e["n_controls"] and row["Model"] == "Poisson regression"
    cost = rows[label("inpatient_cost")]
    assert cost["Rate ratio"] is None
    assert cost["Difference (£ per person-month)"] == outcomes["inpatient_cost"]["estimate"]
    fmt = {h: c.number_format for h, c in zip(head, ws[2], strict=True)}
    assert fmt["Change"] == "0.0%" and fmt["p-value"] == P_FORMAT and fmt["Care-planned"] == "#,##0"


def test_key_figures_have_labels_units_and_sources(run: tuple[Any, dict[str, Any]]) -> None:
    wb, results = run
    rows = list(wb[FIGURES].iter_rows(min_row=2, values_only=True))
    by_source = {r[3]: r for r in rows}
    auc = by_source["risk.auc"]
    assert auc[1] == results["risk"]["auc"] and auc[2] == "area under the ROC curve (0-1)"
    assert "_" not in auc[0]
    assert by_source["schema_version"][1:3] == (results["schema_version"], None)  # text: no unit
    assert by_source["impact.follow_up.median_months"][2] == "months"
    assert not [r for r in rows if str(r[3]).startswith("units.")]
