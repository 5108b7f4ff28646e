"""tables.xlsx describes itself: a contents sheet listing every table, readable sheet names,
human headers with their code names findable, number formats by column kind, frozen headers,
filters, a definitions and units sheet, and the matched study as a proper sheet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from careval.disclosure import DisclosureSettings
from careval.report.format import EXCEL_FORMAT
from careval.report.glossary import label
from careval.report.publish.rules import SUPPRESSED
from careval.report.publish.survival import survival_published
from careval.report.workbook import (
    CONTENTS,
    DEFINITIONS,
    FIGURES,
    IMPACT,
    P_FORMAT,
    sheet_columns,
    sheet_name,
    tables,
    write_workbook,
)
from careval.report.workbook_survival import ARMS, EVENTS, MODELS, survival_tables


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
    sources = [p for p, _ in tables(results)] + [src for _, src, _ in survival_tables(results)]
    assert sorted(src for src, _ in listed.values()) == sorted(sources)
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


SURVIVAL_SHEETS = {
    "hazard_ratios": "Survival hazard ratios",
    "people_and_events": "Survival people and events",
    "curves": "Survival curves by month",
    "panel_deaths": "Months lost to death",
}


def _records(wb: Any, name: str) -> list[dict[str, Any]]:
    """A table sheet's rows keyed by its columns' code names (from the Contents sheet)."""
    codes = sheet_columns(wb)[name][1]
    rows = list(wb[name].iter_rows(min_row=2, values_only=True))
    return [dict(zip(codes, r, strict=True)) for r in rows]


def assert_sheets_hold(wb: Any, s: dict[str, Any]) -> None:
    """The survival sheets of ``wb`` hold exactly the values of the published block ``s``."""
    events, groups = dict(EVENTS), dict(ARMS)
    assert set(SURVIVAL_SHEETS.values()) <= set(wb.sheetnames)
    hrs = {(r["event"], r["model"]): r for r in _records(wb, SURVIVAL_SHEETS["hazard_ratios"])}
    assert len(hrs) == len(MODELS)
    for part, model, name in MODELS:
        fit, row = s[part][model], hrs[(events[part], name)]
        for k in ("hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high", "p_value"):
            assert row[k] == fit.get(k), (part, model, k)
    people = _records(wb, SURVIVAL_SHEETS["people_and_events"])
    curves = _records(wb, SURVIVAL_SHEETS["curves"])
    months = s["months"]
    assert len(people) == 4 and len(curves) == 4 * len(months)
    for part, event in events.items():
        for arm, group in groups.items():
            a = s[part]["arms"][arm]
            (row,) = [r for r in people if (r["event"], r["group"]) == (event, group)]
            for k in ("people", "events", "people_died", "survival_12", "incidence_24"):
                assert row.get(k) == a.get(k), (part, arm, k)
            mine = [r for r in curves if (r["event"], r["group"]) == (event, group)]
            assert [r["month"] for r in mine] == months
            for k in ("survival", "at_risk", "events_by", "incidence", "deaths_by"):
                assert [r[k] for r in mine] == a.get(k, [None] * len(months)), (part, arm, k)
    panel = {r["group"]: r for r in _records(wb, SURVIVAL_SHEETS["panel_deaths"])}
    for arm, group in groups.items():
        assert {k: panel[group][k] for k in s["panel_deaths"][arm]} == s["panel_deaths"][arm]


def test_the_survival_sheets_hold_the_published_survival_block(
    run: tuple[Any, dict[str, Any]],
) -> None:
    wb, results = run
    s = results["impact"]["survival"]
    assert_sheets_hold(wb, s)
    contents = {r[0]: r for r in wb[CONTENTS].iter_rows(min_row=2, values_only=True) if r}
    hr = contents[SURVIVAL_SHEETS["hazard_ratios"]]
    assert hr[3].startswith("impact.survival.") and hr[4] == len(MODELS)
    assert "hazard_ratio_ci_low" in hr[5] and str(hr[2]).endswith(".")
    defs = {r[1]: r for r in wb[DEFINITIONS].iter_rows(min_row=2, values_only=True)}
    assert defs["hazard_ratio"][3] == "ratio" and defs["at_risk"][3] == "people"
    assert defs["survival"][3] == "share (0-1)" and "Kaplan-Meier" in defs["survival"][2]
    curves = wb[SURVIVAL_SHEETS["curves"]]
    formats = {h.value: c.number_format for h, c in zip(curves[1], curves[2], strict=True)}
    assert formats["Survival"] == "0.0%" and formats["At risk"] == EXCEL_FORMAT["count"]


def _raw_survival() -> dict[str, Any]:
    """A small time-to-event block as :func:`careval.impact.survival.survival` returns it:
    40 care-planned people of whom 5 die (2 in the first month), 50 controls."""

    def arm(n: int, at_risk: list[int], died: list[int], km: list[float]) -> dict[str, Any]:
        return {
            "people": n,
            "events": died[-1],
            "survival": km,
            "at_risk": at_risk,
            "events_by": died,
            "survival_12": km[-1],
        }

    def admission(n: int, at_risk: list[int], admitted: list[int]) -> dict[str, Any]:
        inc = [a / n for a in admitted]
        return {
            **arm(n, at_risk, admitted, [1 - x for x in inc]),
            "people_died": 3,
            "incidence": inc,
            "incidence_death": [0.0, 0.025, 0.05, 0.075],
            "deaths_by": [0, 1, 2, 3],
            "incidence_12": inc[-1],
        }

    fit = {"model": "cox", "hazard_ratio": 0.8, "hazard_ratio_ci_low": 0.5}
    fit |= {"hazard_ratio_ci_high": 1.3, "p_value": 0.37}
    return {
        "time_unit": "months",
        "months": [0.0, 1.0, 2.0, 3.0],
        "landmarks": [12, 24],
        "death": {
            "arms": {
                "treated": arm(40, [40, 38, 37, 35], [0, 2, 3, 5], [1.0, 0.95, 0.925, 0.875]),
                "controls": arm(50, [50, 50, 49, 40], [0, 0, 1, 10], [1.0, 1.0, 0.98, 0.8]),
            },
            "cox": fit,
        },
        "first_admission": {
            "outcome": "emergency_admissions",
            "arms": {
                "treated": admission(40, [40, 30, 25, 20], [0, 10, 14, 20]),
                "controls": admission(50, [50, 41, 30, 24], [0, 9, 20, 26]),
            },
            "cox": {**fit, "hazard_ratio": 0.9},
            "fine_gray": {**fit, "model": "fine_gray", "hazard_ratio": 0.95},
        },
        "panel_deaths": {
            arm: {"person_months_followed": 100.4, "person_months_lost_to_death": 6.2}
            | {"people_died": died}
            for arm, died in (("treated", 5), ("controls", 10))
        },
    }


def test_the_survival_sheets_show_small_counts_suppressed_as_published(tmp_path: Path) -> None:
    raw = _raw_survival()
    d = DisclosureSettings()
    published = survival_published(raw, 40, d)
    write_workbook({"impact": {"survival": published}}, tmp_path / "t.xlsx")
    wb = load_workbook(tmp_path / "t.xlsx")
    assert_sheets_hold(wb, published)
    # The 5 care-planned deaths (1-7) are suppressed in publishing and in the sheet; so are
    # the 2 and 3 dead by months 1 and 2, and the curve's points there are withheld.
    people = _records(wb, SURVIVAL_SHEETS["people_and_events"])
    deaths = [
        r for r in people if r["event"] == "Death (any cause)" and r["group"] == "Care-planned"
    ]
    assert raw["death"]["arms"]["treated"]["events"] == 5 and deaths[0]["events"] == SUPPRESSED
    curve = [
        r
        for r in _records(wb, SURVIVAL_SHEETS["curves"])
        if r["event"] == "Death (any cause)" and r["group"] == "Care-planned"
    ]
    assert [r["events_by"] for r in curve] == [0, SUPPRESSED, SUPPRESSED, SUPPRESSED]
    assert [r["survival"] for r in curve][1:3] == [None, None]
    panel = {r["group"]: r for r in _records(wb, SURVIVAL_SHEETS["panel_deaths"])}
    assert panel["Care-planned"]["people_died"] == SUPPRESSED
    assert panel["Care-planned"]["person_months_lost_to_death"] is None  # 1-7 deaths
    # No raw count of 1-7 anywhere in the survival sheets' count columns.
    counts = ("people", "events", "people_died", "at_risk", "events_by", "deaths_by")
    cells = [
        r[k]
        for name in SURVIVAL_SHEETS.values()
        for r in _records(wb, name)
        for k in counts
        if k in r
    ]
    assert not [v for v in cells if isinstance(v, int) and 1 <= v <= 7]
    # Withheld whole when the matched care-planned are fewer than 8: no survival sheet.
    names = write_workbook(
        {"impact": {"survival": survival_published(raw, 6, d)}}, tmp_path / "w.xlsx"
    )
    assert not set(SURVIVAL_SHEETS.values()) & set(names)


def test_the_real_runs_survival_sheets_hold_its_suppressed_counts(real_run: Path) -> None:
    wb = load_workbook(real_run / "tables.xlsx")
    s = json.loads((real_run / "results.json").read_text())["impact"]["survival"]
    assert_sheets_hold(wb, s)
    by = [
        v
        for part in ("death", "first_admission")
        for a in s[part]["arms"].values()
        for v in a["events_by"]
    ]
    assert SUPPRESSED in by  # small counts were there, and the sheet has them suppressed
