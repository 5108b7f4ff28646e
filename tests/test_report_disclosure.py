"""On data not flagged synthetic, no count of 1-7 survives in any published output.

A copy of the small generated dataset with its synthetic flag turned off (and its truth files
removed, as real data would have none) is run end to end. Then every count is scanned:

- ``results.json``: every value under a count key (:data:`careval.report.publish.rules.COUNT_KEYS`,
  plus the per-MDG columns) and the values of the SPC charts of counts;
- ``tables.xlsx``: every cell in a column named as a count, and count figures of the
  ``key figures`` sheet;
- ``report.html``: every table cell of a count column (``data-col``) or of a table of counts
  (:data:`careval.report.publish.audit.COUNT_TABLES`), every count in prose
  (``<span class='n'>``) and every key figure that is a count;
- the surveys and qualitative blocks: no share (or rate) is published beside a suppressed
  count it is a share of, every share published is the published count over the published base
  (weighted survey shares: rounded to what their base allows), and the survey charts in
  ``figures/`` show no share that ``results.json`` withholds.

The surveys and qualitative inputs of the synthetic dataset (``surveys/``, ``qualitative/``) are
part of the run, and the scan is checked to have reached their blocks, sheets and sections.

The same scan of the synthetic run finds small counts (``test_report_run.py``), so the scan
itself is shown to work.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import flagged_real
from openpyxl import load_workbook

from careval.disclosure import DisclosureSettings
from careval.report.publish.audit import DisclosureError, audit_page, audit_results, small_counts
from careval.report.publish.indicators import publish_indicators
from careval.report.publish.programme import COUNT_CHARTS
from careval.report.publish.recovery import recoveries
from careval.report.publish.rules import (
    SUPPRESSED,
    is_count_key,
    is_count_path,
    protect_count,
    published_counts,
    small_count,
)
from careval.report.publish.shares import weighted_share_step
from careval.report.workbook import FIGURES, IMPACT, sheet_columns
from careval.run import run as run_
from careval.spec import StudySpec

DC = DisclosureSettings()  # the default disclosure rules
STRICT = DisclosureSettings(threshold=11, rounding_base=10)
# Under these settings every count from 1 up is "suppressed": scan() with them lists every
# published count other than 0 (and the audit's scan every count in a count position).
EVERY_COUNT = DisclosureSettings(threshold=10**12, rounding_base=1)


def scan(out: Path, d: DisclosureSettings = DC) -> dict[str, list[Any]]:
    """Every published count that ``d`` suppresses (1-7) in the outputs in ``out``, by output."""
    results = json.loads((out / "results.json").read_text())
    found: dict[str, list[Any]] = {"json": [], "xlsx": [], "html": []}
    found["json"] = [(p, v) for p, v in published_counts(results) if small_count(v, d)]
    for name in COUNT_CHARTS:
        chart = results.get("programme", {}).get("spc", {}).get(name, {})
        found["json"] += [
            (name, p["value"]) for p in chart.get("points", []) if small_count(p["value"], d)
        ]
    wb = load_workbook(out / "tables.xlsx", read_only=True)
    columns = sheet_columns(wb)  # each table sheet's source and its columns' code names
    for ws in wb.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        if ws.title == FIGURES:  # figure, value, unit, source
            found["xlsx"] += [
                (path, v)
                for _, v, _, path in rows[1:]
                if is_count_path(str(path)) and small_count(v, d)
            ]
            continue
        if ws.title == IMPACT:  # the matched study's groups: counts too, found by heading
            at = [i for i, h in enumerate(rows[0]) if h in ("Care-planned", "Matched controls")]
            assert len(at) == 2, rows[0]
            found["xlsx"] += [
                (ws.title, r[i]) for r in rows[1:] for i in at if small_count(r[i], d)
            ]
            continue
        if not rows or ws.title not in columns:
            continue
        where, head = columns[ws.title]
        assert len(head) == len(rows[0]), ws.title
        chart = any(f"spc.{c}.points" == where[-len(f"spc.{c}.points") :] for c in COUNT_CHARTS)
        for row in rows[1:]:
            for h, v in zip(head, row, strict=False):
                if (is_count_key(h) or (chart and h == "value")) and small_count(v, d):
                    found["xlsx"].append((ws.title, h, v))
                elif isinstance(v, str) and v[:1] in "[{":  # a nested table, as JSON text
                    found["xlsx"] += [
                        (ws.title, p, x)
                        for p, x in published_counts({h: json.loads(v)})
                        if small_count(x, d)
                    ]
    found["html"] = list(small_counts((out / "report.html").read_text(), d))
    return found


# Share (or rate) -> the count it is a share of, in the surveys and qualitative blocks.
SHARE_OF = {
    "share_agree": "n_agree",
    "ci_low": "n_agree",
    "ci_high": "n_agree",
    "share_dont_know": "n_dont_know",
    "share_of_valid": "count",
    "share_of_respondents": "count",
    "response_rate": "responded",
    "share_utterances": "utterances",
    "share_words": "words",
    "share_attendees": "attendees",
}


def shares_of_suppressed_counts(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every share published beside a suppressed count it is a share of (share x base = it)."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            out += shares_of_suppressed_counts(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict | list):
                out += shares_of_suppressed_counts(v, f"{path}.{k}")
            elif k in SHARE_OF and obj.get(SHARE_OF[k]) == SUPPRESSED and v is not None:
                out.append((f"{path}.{k}", v))
    return out


def chart_shares_withheld(out: Path, results: dict[str, Any]) -> list[tuple[str, str]]:
    """Shares drawn in a survey chart (``figures/``) that ``results.json`` withholds."""
    surveys = results["surveys"]["surveys"]
    by_title = {s["title"]: s for s in surveys.values()}
    bad = []
    for f in sorted((out / "figures").glob("surveys-*.svg")):
        text = f.read_text()
        m = re.search(r'<title id="[^"]+">(.*?): answers per item</title>', text)
        assert m is not None, f.name
        title = html.unescape(m[1])
        shown = {
            (d["label"], f"{100 * d['share_of_valid']:.1f}")
            for d in by_title[title]["distribution"]
            if d["share_of_valid"] is not None
        }
        for label, pct in re.findall(r"<title>([^<]*): ([0-9.]+)%</title></rect>", text):
            if (html.unescape(label), pct) not in shown:
                bad.append((f.name, f"{label}: {pct}%"))
    return bad


@pytest.fixture(scope="module")
def strict_run(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run of the copy flagged as real data, with counts of 1-10 suppressed (and 11-14,
    which would round to 10) and the others rounded to 10."""
    out = tmp_path_factory.mktemp("strict-run")
    run_(real_data, out, dataclasses.replace(StudySpec(), disclosure=STRICT))
    return out


def test_no_count_of_1_to_7_in_any_published_output(real_run: Path) -> None:
    found = scan(real_run)
    assert found == {"json": [], "xlsx": [], "html": []}
    results = json.loads((real_run / "results.json").read_text())
    assert results["synthetic"] is False and results["disclosure_control"] is True
    counts = [v for _, v in published_counts(results) if not isinstance(v, str) or v == "*"]
    assert SUPPRESSED in counts  # small counts were there, and were suppressed
    assert all(v is None or v == SUPPRESSED or (isinstance(v, int) and v % 5 == 0) for v in counts)
    page = (real_run / "report.html").read_text()
    assert "disclosure-banner" in page and "synthetic-banner" not in page
    assert "Disclosure control is <b>on</b>" in page
    assert "counts of 1-7 are shown as <b>*</b>, other counts are rounded to the nearest 5" in page
    assert results["provenance"]["settings"]["disclosure"] == {"threshold": 8, "rounding_base": 5}


def _number(text: str) -> float:
    return float(re.sub(r"<[^>]+>", "", str(text)).replace(",", ""))


def test_disclosure_settings_rule_every_published_output(strict_run: Path) -> None:
    """Threshold 11 and base 10: no published count of 1-14 (11-14 would show as 10), every
    count a multiple of 10, and the page and results.json state those rules."""
    assert scan(strict_run, STRICT) == {"json": [], "xlsx": [], "html": []}
    published = scan(strict_run, EVERY_COUNT)  # every count other than 0, in every output
    assert published["json"] and published["xlsx"] and published["html"]
    for where, shown in published.items():
        values = [_number(found[-1]) for found in shown]
        assert [v for v in values if v % 10 or v < 20] == [], where
    results = json.loads((strict_run / "results.json").read_text())
    counts = [v for _, v in published_counts(results) if not isinstance(v, str) or v == "*"]
    assert SUPPRESSED in counts and all(v is None or v == SUPPRESSED or v % 10 == 0 for v in counts)
    assert results["provenance"]["settings"]["disclosure"] == {"threshold": 11, "rounding_base": 10}
    page = (strict_run / "report.html").read_text()
    assert (
        "counts of 1-14 are shown as <b>*</b>, other counts are rounded to the nearest 10" in page
    )
    assert "every count of 1-14 is shown as <b>*</b>" in page  # the methods
    assert "means, rates and estimates from fewer than 15 people are withheld" in page
    assert "Counts 1&ndash;14 are shown as *, others rounded to 10" in page  # the surveys
    assert "fewer than 15 people and are not published" in page  # Table 3's rules
    for default in ("counts of 1-7", "count of 1-7", "1&ndash;7", "1 to 7", "than 8 people"):
        assert default not in page, default


def test_the_audit_follows_the_disclosure_settings(strict_run: Path) -> None:
    """A 9 in a count cell of the strict run's page: refused under its settings, though it is
    no count of 1-7."""
    page = (strict_run / "report.html").read_text()
    audit_page(page, STRICT)
    bad, n = re.subn(
        r'(<td data-col="people" data-v=")[\d.]+(">)[\d,]+(</td>)',
        r"\g<1>9\g<2>9\g<3>",
        page,
        count=1,
    )
    assert n == 1
    with pytest.raises(DisclosureError, match="count.s. of 1-14 .*people: 9"):
        audit_page(bad, STRICT)
    audit_page(bad, DC)
    # The raw value a cell carries for sorting and CSV is published too, and audited.
    raw_only, n = re.subn(
        r'(<td data-col="people" data-v=")[\d.]+(">)', r"\g<1>9\g<2>", page, count=1
    )
    assert n == 1
    with pytest.raises(DisclosureError, match="count.s. of 1-14"):
        audit_page(raw_only, STRICT)


def test_surveys_and_qualitative_outputs_are_scanned_and_protected(real_run: Path) -> None:
    results = json.loads((real_run / "results.json").read_text())
    surveys, qual = results["surveys"], results["qualitative"]
    assert surveys["disclosure_control"] is True and len(surveys["surveys"]) >= 4
    assert qual["transcripts"] is not None and qual["coding"] is not None
    # The scan reaches every kind of count in these blocks...
    paths = [p for p, _ in published_counts({"surveys": surveys, "qualitative": qual})]
    for part in (
        ".n_effective",
        ".n_valid",
        ".n_agree",
        ".responded",
        ".count",
        ".table.counts[",
        ".utterances",
        ".words",
        ".attendees",
        ".observed[",
        ".turns.",
        ".segments",
        ".group:",
        ".cooccurrence.",
    ):
        assert any(part in p for p in paths), part
    # ...and they are all published protected (scan() covers json, xlsx and html).
    suppressed = [p for p, v in published_counts(surveys) if v == SUPPRESSED]
    assert suppressed and any(".distribution" in p for p in suppressed)
    wb = load_workbook(real_run / "tables.xlsx", read_only=True)
    where = {r[3] for r in wb["Contents"].iter_rows(min_row=2, values_only=True) if r}
    assert any(w.startswith("surveys.surveys.") and w.endswith(".items") for w in where)
    assert any(w.startswith("qualitative.") for w in where)
    page = (real_run / "report.html").read_text()
    for table in ("survey-professionals-rates", "mdg-utterances", "mdg-turns", "qda-frequencies"):
        assert f'id="{table}"' in page, table
    # No share or rate is published beside a suppressed count it is a share of.
    assert shares_of_suppressed_counts(surveys) == []
    assert shares_of_suppressed_counts(qual) == []
    # Kish's effective n is a count too: never a number of 1-7, never unrounded.
    for s in surveys["surveys"].values():
        for item in s["items"]:
            assert item["n_effective"] is None or item["n_effective"] % 5 == 0, item
    # The survey charts draw only shares that results.json publishes.
    assert sorted((real_run / "figures").glob("surveys-*.svg"))
    assert chart_shares_withheld(real_run, results) == []
    # Warnings carry no exact count either.
    for w in surveys["warnings"] + (qual["transcripts"] or {}).get("warnings", []):
        for n in re.findall(r"\b\d[\d,]*\b", w):
            v = int(n.replace(",", ""))
            assert not 1 <= v <= 7 and (v == 0 or v % 5 == 0), w


def test_published_shares_are_of_the_published_counts(real_run: Path) -> None:
    """A share x its published base gives back only the rounded count (survey, transcripts)."""
    results = json.loads((real_run / "results.json").read_text())
    checked: list[tuple[str, Any, Any, Any]] = []  # (where, share, count, base)
    weighted: list[tuple[str, Any, Any]] = []  # (where, share, unweighted base)
    for name, s in results["surveys"]["surveys"].items():
        agree = weighted if s["weighted"] else None
        for i in s["items"]:
            where = f"{name}.{i['question']}"
            if agree is not None:
                agree.append((where, i["share_agree"], i["n_valid"]))
            else:
                checked.append((where, i["share_agree"], i["n_agree"], i["n_valid"]))
            if i["share_dont_know"] is not None:  # withheld when either count is suppressed
                base = i["n_valid"] + i["n_dont_know"]
                checked.append((where, i["share_dont_know"], i["n_dont_know"], base))
        valid = {i["question"]: i["n_valid"] for i in s["items"]}
        resp = {i["question"]: i["n_respondents"] for i in s["items"]}
        for d in s["distribution"]:
            where = f"{name}.{d['question']}.{d['code']}"
            if d["kind"] == "answer" and agree is not None:
                agree.append((where, d["share_of_valid"], valid[d["question"]]))
            elif d["kind"] == "answer":
                checked.append((where, d["share_of_valid"], d["count"], valid[d["question"]]))
            checked.append((where, d["share_of_respondents"], d["count"], resp[d["question"]]))
        for g in s["by_group"]:
            where = f"{name}.{g['question']}.{g['group']}"
            if agree is not None:
                agree.append((where, g["share_agree"], g["n_valid"]))
            else:
                checked.append((where, g["share_agree"], g["n_agree"], g["n_valid"]))
        for r in s["response_rates"]:
            checked.append(
                (f"{name}.rate.{r['group']}", r["response_rate"], r["responded"], r["invited"])
            )
    t = results["qualitative"]["transcripts"]
    for rec in t["overall"]:
        checked.append(
            ("mdg." + rec["role"], rec["share_utterances"], rec["utterances"], t["n_utterances"])
        )
    lv = t["levels"]
    for rec in lv["levels"]:
        where = "level." + rec["level"]
        checked.append(
            (where, rec["share_utterances"], rec["utterances"], lv["n_coded_utterances"])
        )
    checked.append(
        ("coded", lv["share_of_utterances_coded"], lv["n_coded_utterances"], t["n_utterances"])
    )
    meetings = {m["meeting"]: m for m in t["meetings"]}
    for rec in t["by_meeting"]:
        for k in ("utterances", "words"):
            base = meetings[rec["meeting"]][k]
            checked.append((f"{rec['meeting']}.{rec['role']}", rec[f"share_{k}"], rec[k], base))
    shown = [c for c in checked if c[1] is not None]
    assert len(shown) > 50 and weighted and any(w[1] is not None for w in weighted)
    for where, share, count, base in shown:
        assert share == round(count / base, 4), (where, share, count, base)
        assert round(share * base) % 5 == 0, where
    for where, share, base in weighted:
        if share is not None:
            steps = share / weighted_share_step(base, DC)
            assert abs(steps - round(steps)) < 1e-9, (where, share, base)
    # The page shows the same shares: e.g. every published share of utterances.
    page = (real_run / "report.html").read_text()
    for rec in t["overall"]:
        if rec["share_utterances"] is not None:
            assert f"{100 * rec['share_utterances']:.1f}%" in page, rec


def test_secondary_suppression_holds_in_the_published_tables(real_run: Path) -> None:
    results = json.loads((real_run / "results.json").read_text())
    # Care plans by MDG: in each month the total and the MDG cells never have exactly one
    # suppressed entry, so no suppressed cell is the total minus the others.
    for row in results["programme"]["plans_by_mdg"]:
        cells = [v for k, v in row.items() if k.startswith("MDG") or k == "total"]
        assert sum(v == SUPPRESSED for v in cells) != 1, row
    # Table 2: all eligible = the three groups, in each area and start date.
    t2: dict[tuple[str, str], list[Any]] = {}
    for r in results["monitoring"]["table2"]:
        t2.setdefault((r["area"], r["start"]), []).append(r)
    for rows in t2.values():
        for col in ("people_after", "admissions_after", "admissions_before"):
            assert sum(r[col] == SUPPRESSED for r in rows) != 1, (col, rows)
    # Means and rates from fewer than 8 people are withheld.
    for r in results["monitoring"]["table2"]:
        if r["people_after"] == SUPPRESSED:
            assert r["pct_change"] is None and r["rate_after"] is None
    # Survey response rates: the groups add up to "all respondents".
    for s in results["surveys"]["surveys"].values():
        rows = s["response_rates"]
        if len(rows) > 1:
            cells = [r["responded"] for r in rows]
            assert sum(v == SUPPRESSED for v in cells) != 1, rows


def test_no_identifier_in_the_outputs(real_run: Path, synth_dir: Path) -> None:
    import pyarrow.parquet as pq

    ids = set(pq.read_table(synth_dir / "persons.parquet", columns=["person_id"])[0].to_pylist())
    text = (real_run / "results.json").read_text() + (real_run / "report.html").read_text()
    wb = load_workbook(real_run / "tables.xlsx", read_only=True)
    cells = {str(c) for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for c in r}
    words = set(re.findall(r"[A-Za-z0-9_-]{6,}", text))
    assert not ids & words and not ids & cells


def test_audit_and_json_protection_cover_count_tables_lists_and_matrices() -> None:
    from careval.report.publish.rules import protect_json

    page = (
        '<table id="mdg-turns"><tbody><tr><td class="text" data-col="speaker">Chair</td>'
        '<td data-col="Nurse">3</td></tr></tbody></table>'
        '<table id="survey-s-items"><tbody><tr><td data-col="n_valid">4</td></tr></tbody></table>'
    )
    assert [w for w, _ in small_counts(page, DC)] == ["table column n_valid", "table mdg-turns"]
    block = {
        "turns": {"chair": {"nurse": 3, "chair": 12}},
        "cooccurrence": {"A": {"B": 2}},
        "tests": [{"observed": [3, 40], "n": 43}],
        "comparisons": [{"table": {"rows": ["a"], "counts": [[2, 9]]}, "n": 11}],
        "frequencies": [{"code": "A", "segments": 6, "group:Nurse": 4}],
        "items": [{"n_effective": 5.0, "n_valid": 5}],
    }
    assert sorted(v for _, v in published_counts(block) if small_count(v, DC)) == [
        2,
        2,
        3,
        3,
        4,
        5,
        5,
        6,
    ]
    protected = protect_json(block, DC)
    assert not [p for p, v in published_counts(protected) if small_count(v, DC)]
    assert protected["turns"]["chair"] == {"nurse": "*", "chair": 10}
    assert protected["comparisons"][0]["table"]["counts"] == [["*", 10]]
    assert is_count_path("qualitative.coding.cooccurrence.A.B")
    assert is_count_path("surveys.surveys.s.n_responses")
    assert not is_count_path("qualitative.coding.primary_coder")


def test_indicator_charts_show_what_results_json_publishes(synth_dir: Path) -> None:
    """The page's monthly diabetes data (charts, snapshot) withholds what the JSON withholds,
    the comparators' secondary suppression included."""
    import math

    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.indicators import evaluate_indicators
    from careval.report.publish.indicators import comparator_margin_suppressed, publish_indicators
    from careval.report.sections.indicators import as_plotted

    with Dataset(synth_dir) as ds:
        r = evaluate_indicators(ds, data_window(ds))
    margin = comparator_margin_suppressed(r, DC)
    published = publish_indicators(r, DC)
    page = as_plotted(published).diabetes_monthly
    records = published.to_dict()["diabetes"]["monthly"]
    assert len(records) == len(page) and margin.to_numpy().any()  # the margin bites here
    for rec, (_, shown) in zip(records, page.iterrows(), strict=True):
        for c in ("people", "with_reading", "in_control"):
            if rec[c] == SUPPRESSED:
                assert math.isnan(shown[c]), (rec, c)
            else:
                assert shown[c] == rec[c], (rec, c)
        for c in ("share_with_reading", "share_in_control"):
            for col in (c, f"{c}_rolling"):
                assert (rec[col] is None) == math.isnan(shown[col]), (rec, col)


def test_the_typed_copy_reads_the_whole_real_results_and_gives_them_back(real_run: Path) -> None:
    """Every key of a real-data results.json is declared in the typed model, and its copy
    gives back the document byte for byte (the page and the workbook read that copy)."""
    from careval.report.publish.model import ImpactBlock, Published, Skipped

    text = (real_run / "results.json").read_text()
    doc = json.loads(text)
    pub = Published.read(doc)
    assert json.dumps(pub.to_json(), indent=2) + "\n" == text
    # The small dataset's matched study is published or withheld, never half of each.
    assert isinstance(pub.impact, ImpactBlock | Skipped)
    assert isinstance(pub.naive, Skipped) == isinstance(pub.impact, Skipped)


@pytest.mark.slow
def test_another_cohort_and_intervention_publish_no_small_count(
    synth_dir: Path, tmp_path: Path
) -> None:
    """Aged 65+ or with COPD, treated by a first community matron contact, on data flagged
    real: the rule's own group names are protected like the default's, and the page names the
    cohort and the intervention."""
    from careval.cohort.eligibility import EligibilitySettings
    from careval.impact.settings import InterventionSettings

    data = flagged_real(synth_dir, tmp_path / "data")
    el = EligibilitySettings(min_age=65, conditions=("copd",), combine="or")
    matron = InterventionSettings(
        table="community_contacts",
        date_column="contact_date",
        where={"service": ("community_matron",)},
        label="community matron contact",
    )
    out = tmp_path / "out"
    spec = StudySpec()
    spec = dataclasses.replace(
        spec,
        eligibility=dataclasses.replace(spec.eligibility, min_age=65, conditions=("copd",)),
        intervention=matron,
    )
    run_(data, out, spec)
    assert scan(out) == {"json": [], "xlsx": [], "html": []}
    results = json.loads((out / "results.json").read_text())
    groups = el.group_names()
    for row in results["data"]["people_by_area"]:
        assert list(row)[3:6] == list(groups)
        cells = [row[g] for g in groups] + [row["eligible"]]
        assert all(v == SUPPRESSED or v % 5 == 0 for v in cells)
        assert sum(v == SUPPRESSED for v in cells) != 1, row
    assert {r["group"] for r in results["monitoring"]["table2"]} == {"all_eligible", *groups}
    assert results["provenance"]["settings"]["eligibility"] == el.to_dict()
    assert results["impact"]["settings"]["intervention"]["label"] == "community matron contact"
    assert results["impact"]["settings"]["eligibility"] == el.to_dict()
    page = (out / "report.html").read_text()
    assert "Eligible (65+ and/or COPD)" in page and "65+ without COPD" in page
    assert "Each person with a community matron contact enters the study" in page


# Published figure -> (its table, numerator, base, scale): shares and rates the derived-figure
# rule computes from the counts published beside them.
FROM_PUBLISHED = (
    ("indicators.diabetes.monthly", "share_with_reading", "with_reading", "people", 1),
    ("indicators.diabetes.monthly", "share_in_control", "in_control", "people", 1),
    ("indicators.dementia.monthly", "rate_per_1000", "new_diagnoses", "registered", 1000),
    ("data.people_by_area", "eligible_share", "eligible", "registered", 1),
    (
        "data.activity_by_year",
        "emergency_per_1000_py",
        "emergency_admissions",
        "person_years",
        1000,
    ),
    ("monitoring.table2", "rate_after", "admissions_after", "person_years_after", 1),
    ("monitoring.table2", "rate_before", "admissions_before", "person_years_before", 1),
)


def _table(results: dict[str, Any], path: str) -> list[dict[str, Any]]:
    node: Any = results
    for k in path.split("."):
        node = node[k]
    return node


def _half_unit(v: float) -> Fraction:
    """Half a unit of the last decimal ``v`` is printed with in results.json."""
    exponent = Decimal(repr(v)).as_tuple().exponent
    assert isinstance(exponent, int)
    return Fraction(1, 2 * 10 ** max(0, -exponent))


def test_every_published_share_is_the_published_counts_ratio(real_run: Path) -> None:
    """The 57/64 kind of recovery is gone: every share and rate published beside its counts
    is the published numerator over the published base at its printed digits (checked with
    fractions), and none is published beside a suppressed count."""
    results = json.loads((real_run / "results.json").read_text())
    for path, figure, num, base, scale in FROM_PUBLISHED:
        shown = 0
        for row in _table(results, path):
            v, n, b = row[figure], row[num], row[base]
            if v is None:
                continue
            assert SUPPRESSED not in (n, b), (path, row)
            exact = scale * Fraction(n) / Fraction(repr(b) if isinstance(b, float) else b)
            printed = Fraction(repr(v))
            assert abs(printed - exact) <= _half_unit(v), (
                path,
                figure,
                row,
            )
            shown += 1
        assert shown, (path, figure)  # the check reached published figures
    monthly = _table(results, "indicators.diabetes.monthly")
    assert any(r["share_in_control"] is None and r["in_control"] == SUPPRESSED for r in monthly)


def test_the_published_results_pass_the_output_audit(real_run: Path, strict_run: Path) -> None:
    """No count of 1-7 (1-14 under the stricter settings) comes back by arithmetic."""
    results = json.loads((real_run / "results.json").read_text())
    assert recoveries(results, DC) == []
    audit_results(results, DC)
    strict = json.loads((strict_run / "results.json").read_text())
    assert recoveries(strict, STRICT) == []
    # A share of the true counts planted in the real run's monthly table is caught there:
    # 7 people of the base without a reading (as 57 of 64 beside 55 and 65).
    row = next(
        r
        for r in _table(results, "indicators.diabetes.monthly")
        if isinstance(r["people"], int) and r["people"] >= 30
    )
    base = row["people"] - 1  # a true base the published one stands for
    row["with_reading"] = protect_count(base - 7, DC)
    row["share_with_reading"] = round(float(Fraction(base - 7, base)), 7)
    found = recoveries(results, DC)
    assert any(
        f.table == "indicators.diabetes.monthly"
        and f.columns[0] == "share_with_reading"
        and f.how == "share x base gives base minus numerator 7"
        for f in found
    ), found


def test_the_run_refuses_results_that_give_a_count_back(
    real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monthly indicator shares published from the true counts (as before the rule): the
    run stops with one message naming the table, and writes nothing."""
    import careval.report.publish.publication as publication

    def true_shares(r: Any, d: DisclosureSettings) -> Any:
        out = publish_indicators(r, d)
        true = r.diabetes_monthly
        for c in ("share_with_reading", "share_in_control"):
            out.diabetes_monthly[c] = true[c].astype(object)
        return out

    monkeypatch.setitem(publication.PUBLISHERS, "indicators", true_shares)
    out = tmp_path / "out"
    with pytest.raises(
        DisclosureError, match=r"indicators\.diabetes\.monthly .*nothing was written"
    ):
        run_(real_data, out)
    assert not (out / "results.json").exists() and not (out / "report.html").exists()


def test_the_interrupted_time_series_rests_on_published_rates(real_run: Path) -> None:
    """Each ITS series is withheld whole (fewer than 8 new diagnoses before or after the
    start) or its mean rates are the means of the published monthly rates of its months."""
    dementia = json.loads((real_run / "results.json").read_text())["indicators"]["dementia"]
    its, monthly = dementia["its"], pd.DataFrame(dementia["monthly"])
    start = its["programme_start"]
    fits = {k: v for k, v in its.items() if isinstance(v, dict) and "months" in v}
    assert fits, "no series to check"
    for name, fit in fits.items():
        if "withheld" in fit:
            assert "ols" not in fit and "mean_rate_before" not in fit
            continue
        for area in [name] if name in set(monthly.area) else []:
            rows = monthly[monthly.area == area]
            before = rows[rows.month < start].rate_per_1000
            if before.notna().all():
                assert fit["mean_rate_before"] == pytest.approx(before.mean(), abs=1e-6)
            else:
                assert fit["mean_rate_before"] is None
