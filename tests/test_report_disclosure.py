"""On data not flagged synthetic, no count of 1-7 survives in any published output.

A copy of the small generated dataset with its synthetic flag turned off (and its truth files
removed, as real data would have none) is run end to end. Then every count is scanned:

- ``results.json``: every value under a count key (:data:`careval.report.disclosure.COUNT_KEYS`,
  plus the per-MDG columns) and the values of the SPC charts of counts;
- ``tables.xlsx``: every cell in a column named as a count, and count figures of the
  ``key figures`` sheet;
- ``report.html``: every table cell of a count column (``data-col``), every count in prose
  (``<span class='n'>``) and every key figure that is a count.

The same scan of the synthetic run finds small counts (``test_report_run.py``), so the scan
itself is shown to work.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from careval.report.audit import small_counts
from careval.report.disclosure import (
    SUPPRESSED,
    is_count_key,
    published_counts,
    small_count,
)
from careval.report.publish import COUNT_CHARTS
from careval.run import run as run_


def scan(out: Path) -> dict[str, list[Any]]:
    """Every published count of 1-7 in the outputs in ``out``, by output."""
    results = json.loads((out / "results.json").read_text())
    found: dict[str, list[Any]] = {"json": [], "xlsx": [], "html": []}
    found["json"] = [(p, v) for p, v in published_counts(results) if small_count(v)]
    for name in COUNT_CHARTS:
        chart = results.get("programme", {}).get("spc", {}).get(name, {})
        found["json"] += [
            (name, p["value"]) for p in chart.get("points", []) if small_count(p["value"])
        ]
    wb = load_workbook(out / "tables.xlsx", read_only=True)
    for ws in wb.worksheets:
        rows = list(ws.iter_rows(values_only=True))
        if ws.title == "key figures":
            found["xlsx"] += [
                (path, v)
                for path, v in rows[1:]
                if is_count_key(str(path).rsplit(".", 1)[-1]) and small_count(v)
            ]
            continue
        if not rows:
            continue
        head = rows[0]
        chart = any(f"spc.{c}.points" in ws.title for c in COUNT_CHARTS)
        for row in rows[1:]:
            for h, v in zip(head, row, strict=False):
                if (is_count_key(h) or (chart and h == "value")) and small_count(v):
                    found["xlsx"].append((ws.title, h, v))
    found["html"] = list(small_counts((out / "report.html").read_text()))
    return found


@pytest.fixture(scope="module")
def real_run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run of a copy of the synthetic dataset flagged as real data."""
    data = tmp_path_factory.mktemp("real") / "data"
    shutil.copytree(synth_dir, data)
    for name in ("truth.json", "true_risk.parquet"):
        (data / name).unlink(missing_ok=True)
    manifest = json.loads((data / "dataset.json").read_text())
    manifest["synthetic"] = False
    (data / "dataset.json").write_text(json.dumps(manifest))
    out = tmp_path_factory.mktemp("real-run")
    run_(data, out)
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


def test_no_identifier_in_the_outputs(real_run: Path, synth_dir: Path) -> None:
    import pyarrow.parquet as pq

    ids = set(pq.read_table(synth_dir / "persons.parquet", columns=["person_id"])[0].to_pylist())
    text = (real_run / "results.json").read_text() + (real_run / "report.html").read_text()
    wb = load_workbook(real_run / "tables.xlsx", read_only=True)
    cells = {str(c) for ws in wb.worksheets for r in ws.iter_rows(values_only=True) for c in r}
    words = set(re.findall(r"[A-Za-z0-9_-]{6,}", text))
    assert not ids & words and not ids & cells
