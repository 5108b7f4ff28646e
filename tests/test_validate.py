"""Validation reports every breach of the canonical model at once, with exact counts, examples."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from careval.data.schema import TABLES
from careval.data.validate import require_valid, validate
from careval.errors import DatasetError, DataValidationError

PEOPLE = 20
DEATH = date(2012, 6, 30)  # every fourth person died on this day


def _pid(i: int) -> str:
    return f"P{i + 1:04d}"


def _write(d: Path, name: str, rows: dict[str, list[Any]]) -> None:
    pq.write_table(pa.table(rows, schema=TABLES[name].arrow_schema()), d / f"{name}.parquet")


def _write_minimal(d: Path) -> Path:
    """A tiny dataset that obeys every rule of the model."""
    d.mkdir(parents=True, exist_ok=True)
    ids = [_pid(i) for i in range(PEOPLE)]
    dead = [DEATH if i % 4 == 3 else None for i in range(PEOPLE)]
    _write(
        d,
        "persons",
        {
            "person_id": ids,
            "birth_month": [date(1930 + i, 1 + i % 12, 1) for i in range(PEOPLE)],
            "sex": ["F", "M"] * (PEOPLE // 2),
            "ethnic_group": ["white", "asian", "black", "unknown"] * (PEOPLE // 4),
            "lsoa": [f"E01{i:06d}" for i in range(PEOPLE)],
            "imd_decile": [1 + i % 10 for i in range(PEOPLE)],
            "death_date": dead,
        },
    )
    practices = ["A00001", "A00002", "B00003"]
    _write(
        d,
        "practices",
        {
            "practice_code": practices,
            "mdg": ["MDG01", "MDG02", None],
            "locality": ["Brent", "Ealing", "Merton"],
            "area": ["pilot", "pilot", "outer_nwl"],
        },
    )
    _write(
        d,
        "registrations",
        {
            "person_id": ids,
            "practice_code": [practices[i % 3] for i in range(PEOPLE)],
            "start_date": [date(2009, 4, 1)] * PEOPLE,
            "end_date": dead,
        },
    )
    n = 2 * PEOPLE
    admitted = [date(2010, 1, 1 + i % 28) for i in range(n)]
    _write(
        d,
        "inpatient_spells",
        {
            "spell_id": [f"S{i:04d}" for i in range(n)],
            "person_id": [_pid(i % PEOPLE) for i in range(n)],
            "admission_date": admitted,
            "discharge_date": [a + timedelta(days=3) for a in admitted],
            "admission_method": ["21", "11"] * PEOPLE,
            "patient_classification": ["1", "2"] * PEOPLE,
            "primary_diagnosis": ["I10", "J44.1"] * PEOPLE,
            "cost": [1500.0] * n,
        },
    )
    _write(
        d,
        "conditions",
        {
            "person_id": ids,
            "code_system": ["SNOMED", "ICD10"] * (PEOPLE // 2),
            "code": ["44054006", "E11.9"] * (PEOPLE // 2),
            "date": [date(2010, 5, 1)] * PEOPLE,
        },
    )
    _write(
        d,
        "measurements",
        {
            "person_id": ids,
            "date": [date(2010, 6, 1)] * PEOPLE,
            "measure": ["hba1c", "sbp"] * (PEOPLE // 2),
            "value": [48.0, 130.0] * (PEOPLE // 2),
        },
    )
    meetings = ["M01", "M02", "M03", "M04"]
    _write(
        d,
        "mdg_meetings",
        {
            "meeting_id": meetings,
            "mdg": ["MDG01", "MDG02"] * 2,
            "meeting_date": [date(2011, m, 10) for m in range(1, 5)],
            "duration_minutes": [90] * 4,
            "cases_discussed": [8, 10, 12, 9],
        },
    )
    _write(
        d,
        "mdg_attendance",
        {
            "meeting_id": [m for m in meetings for _ in range(2)],
            "role": ["chair", "nurse"] * 4,
            "attendees": [1, 2] * 4,
        },
    )
    _write(
        d,
        "innovation_fund",
        {
            "allocation_id": ["F1", "F2", "F3"],
            "mdg": ["MDG01", "MDG02", "MDG01"],
            "allocation_date": [date(2011, 4, 1)] * 3,
            "amount": [10_000.0, 25_000.0, 5_000.0],
            "purpose": ["falls clinic", "carer support", "training"],
            "spent": [5_000.0, 0.0, 5_000.0],
        },
    )
    (d / "dataset.json").write_text('{"synthetic": true}')  # made up: examples are shown
    return d


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return _write_minimal(tmp_path / "clean")


def _edit(d: Path, name: str, fn: Callable[[pa.Table], pa.Table]) -> None:
    file = d / f"{name}.parquet"
    pq.write_table(fn(pq.read_table(file)), file)


def _set(col: str, rows: list[int], value: Any) -> Callable[[pa.Table], pa.Table]:
    """Set ``col`` in ``rows`` to ``value`` (or ``value(old)`` when callable)."""

    def fn(t: pa.Table) -> pa.Table:
        values = t.column(col).to_pylist()
        for i in rows:
            values[i] = value(values[i]) if callable(value) else value
        field = t.schema.field(col).with_nullable(True)
        return t.set_column(t.schema.get_field_index(col), field, pa.array(values, field.type))

    return fn


def _hashes(d: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir())}


# (table, column, rule) -> (rows corrupted, text the example must contain)
Expected = dict[tuple[str, str, str], tuple[int, str]]


def corrupt(d: Path) -> Expected:
    """Thirteen different kinds of corruption of the minimal dataset."""
    ex: Expected = {}
    _edit(d, "practices", lambda t: t.drop_columns(["locality"]))
    ex["practices", "locality", "required column missing"] = (1, "columns present")
    _edit(
        d,
        "conditions",
        lambda t: t.set_column(3, "date", pc.cast(t.column("date"), pa.timestamp("us"))),
    )
    ex["conditions", "date", "wrong type"] = (1, "date=2010-05-01")
    _edit(d, "persons", _set("sex", [4, 9], None))
    ex["persons", "sex", "missing values"] = (2, "sex=null")
    _edit(d, "persons", _set("ethnic_group", [0, 1, 2], "martian"))
    ex["persons", "ethnic_group", "value not allowed"] = (3, "ethnic_group=martian")
    _edit(d, "mdg_meetings", _set("duration_minutes", [1, 3], 700))
    ex["mdg_meetings", "duration_minutes", "value out of range"] = (2, "duration_minutes=700")
    _edit(d, "inpatient_spells", _set("spell_id", [1, 2], "S0000"))
    ex["inpatient_spells", "spell_id", "duplicate key"] = (3, "spell_id=S0000")
    _edit(d, "inpatient_spells", _set("primary_diagnosis", [8, 9], "10I"))
    ex["inpatient_spells", "primary_diagnosis", "malformed value"] = (2, "primary_diagnosis=10I")
    _edit(d, "inpatient_spells", _set("discharge_date", [5, 6], lambda v: v - timedelta(10)))
    ex[
        "inpatient_spells", "admission_date,discharge_date", "discharge_date before admission_date"
    ] = (2, "spell_id=S000")
    _edit(d, "conditions", _set("code", [1], "e11"))
    ex["conditions", "code", "code malformed for its code_system"] = (1, "code=e11")
    _edit(d, "measurements", _set("person_id", [0, 1], "P9999"))
    ex["measurements", "person_id", "not found in persons.person_id"] = (2, "person_id=P9999")
    _edit(d, "measurements", _set("date", [3, 7], date(2013, 1, 1)))  # P0004, P0008 died
    ex["measurements", "date", "date after death"] = (2, "date=2013-01-01")
    _edit(d, "measurements", _set("value", [2], 500.0))  # an HbA1c
    ex["measurements", "value", "value implausible for its measure"] = (1, "value=500.0")
    _edit(d, "innovation_fund", _set("spent", [0], 20_000.0))
    ex["innovation_fund", "spent,amount", "spent greater than amount"] = (1, "allocation_id=F1")
    return ex


def test_clean_dataset_has_no_problems(clean: Path) -> None:
    assert validate(clean) == []
    assert require_valid(clean) == []


def test_every_corruption_is_listed_with_its_exact_count(clean: Path) -> None:
    expected = corrupt(clean)
    assert len({(t, r) for t, _, r in expected}) >= 10
    before = _hashes(clean)
    problems = validate(clean)
    assert _hashes(clean) == before  # validation never writes to the dataset
    found = {(p.table, p.column, p.rule): p for p in problems}
    assert all(p.severity == "error" for p in problems)
    assert set(found) == set(expected), set(found) ^ set(expected)
    for k, (count, shown) in expected.items():
        p = found[k]
        assert p.count == count, (k, p.count, count)
        assert shown in p.example, p  # the example names an offending row
        assert len(p.example) <= 200 and p.allowed
    assert "a date (found timestamp[us])" == found["conditions", "date", "wrong type"].allowed
    after_death = found["measurements", "date", "date after death"].example
    assert "P0004" in after_death or "P0008" in after_death
    with pytest.raises(DataValidationError) as info:
        require_valid(clean)
    message = str(info.value)
    assert f"{len(expected)} problems found" in message
    for table, column, rule in expected:
        assert f"{table}.{column}: {rule}" in message


def test_mistyped_column_is_reported_once_and_skips_its_value_rules(clean: Path) -> None:
    _edit(clean, "persons", lambda t: t.set_column(5, "imd_decile", pa.array(["11"] * t.num_rows)))
    assert [(p.column, p.rule, p.allowed) for p in validate(clean)] == [
        ("imd_decile", "wrong type", "an int (found string)")
    ]


def test_example_rows_are_short(clean: Path) -> None:
    _edit(clean, "persons", _set("lsoa", [7], "X" * 5000))
    [p] = validate(clean)
    assert (p.column, p.rule, p.count) == ("lsoa", "malformed value", 1)
    assert "person_id=P0008" in p.example and len(p.example) <= 200


def test_missing_table_and_extra_column(clean: Path, tmp_path: Path) -> None:
    (clean / "practices.parquet").unlink()
    _edit(clean, "persons", lambda t: t.append_column("note", pa.array(["x"] * t.num_rows)))
    problems = {(p.table, p.column, p.rule, p.severity) for p in validate(clean)}
    assert problems == {
        ("persons", "note", "columns not in the model (ignored)", "warning"),
        ("practices", "*", "required table missing", "error"),
        ("registrations", "practice_code", "cannot check: practices absent", "warning"),
        # MDGs are checked against practices.mdg: they cannot be checked either.
        ("mdg_meetings", "mdg", "cannot check: practices absent", "warning"),
        ("innovation_fund", "mdg", "cannot check: practices absent", "warning"),
    }
    with pytest.raises(DataValidationError, match="practices"):
        require_valid(clean)
    spare = _write_minimal(tmp_path / "spare")
    shutil.copy(spare / "practices.parquet", clean)  # practices back: only the warning remains
    assert [(w.table, w.column) for w in require_valid(clean)] == [("persons", "note")]


def test_unreadable_dataset_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        validate(tmp_path / "nowhere")


def test_generated_dataset(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The generator's clean dataset passes; a corrupted copy shows each breach exactly."""
    try:
        synth_dir: Path = request.getfixturevalue("synth_dir")
    except pytest.FixtureLookupError:
        pytest.skip("no synth_dir fixture (generator tests not present)")
    assert [p.line() for p in validate(synth_dir) if p.severity == "error"] == []
    d = tmp_path / "bad"
    shutil.copytree(synth_dir, d)
    _edit(d, "inpatient_spells", _set("discharge_date", [0, 1, 2], lambda v: v - timedelta(400)))
    _edit(d, "ae_attendances", _set("person_id", [5], "P_UNKNOWN"))
    _edit(d, "outpatient_appointments", _set("cost", [0, 1], -1.0))
    found = {(p.table, p.column, p.rule): p.count for p in validate(d) if p.severity == "error"}
    assert found == {
        (
            "inpatient_spells",
            "admission_date,discharge_date",
            "discharge_date before admission_date",
        ): 3,
        ("ae_attendances", "person_id", "not found in persons.person_id"): 1,
        ("outpatient_appointments", "cost", "value out of range"): 2,
    }
