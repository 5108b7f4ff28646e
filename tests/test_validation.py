"""Validation lists every kind of problem at once, with counts and examples, and exits 2."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from careval.data.validate import require_valid, validate
from careval.errors import DataValidationError


def _edit(d: Path, table: str, fn) -> None:
    t = pq.read_table(d / f"{table}.parquet")
    pq.write_table(fn(t), d / f"{table}.parquet")


def _set(t: pa.Table, col: str, rows: list[int], value) -> pa.Table:
    values = t.column(col).to_pylist()
    for i in rows:
        values[i] = value(values[i]) if callable(value) else value
    field = t.schema.field(col).with_nullable(True)
    return t.set_column(t.schema.get_field_index(col), field, pa.array(values, field.type))


def _rows_where(t: pa.Table, mask: pa.ChunkedArray, k: int) -> list[int]:
    return pc.indices_nonzero(mask).to_pylist()[:k]


def corrupt(d: Path) -> dict[tuple[str, str, str], int]:
    """Ten different corruptions; returns (table, column, rule) -> rows corrupted."""
    expected: dict[tuple[str, str, str], int] = {}

    # 1. A required column missing.
    _edit(d, "ae_attendances", lambda t: t.drop_columns(["disposal"]))
    expected[("ae_attendances", "disposal", "required column missing")] = 1
    # 2. A column of the wrong type (cost as text).
    _edit(
        d,
        "outpatient_appointments",
        lambda t: t.set_column(
            t.schema.get_field_index("cost"), "cost", pc.cast(t.column("cost"), pa.string())
        ),
    )
    expected[("outpatient_appointments", "cost", "wrong type")] = 1
    # 3. Missing values in a non-nullable column (3 rows).
    _edit(d, "persons", lambda t: _set(t, "sex", [0, 5, 9], None))
    expected[("persons", "sex", "missing values")] = 3

    # 4. Duplicate key: two spells share an id (2 rows share one key).
    def dup(t: pa.Table) -> pa.Table:
        sid = t.column("spell_id").to_pylist()
        return _set(t, "spell_id", [1], sid[0])

    _edit(d, "inpatient_spells", dup)
    expected[("inpatient_spells", "spell_id", "duplicate key")] = 2
    # 5. A value not allowed (admission method 99, 4 rows).
    _edit(d, "inpatient_spells", lambda t: _set(t, "admission_method", [10, 11, 12, 13], "99"))
    expected[("inpatient_spells", "admission_method", "value not allowed")] = 4
    # 6. Out of range (IMD decile 11, 2 rows).
    _edit(d, "persons", lambda t: _set(t, "imd_decile", [20, 21], 11))
    expected[("persons", "imd_decile", "value out of range")] = 2
    # 7. Malformed ICD-10 primary diagnosis (3 rows).
    _edit(d, "inpatient_spells", lambda t: _set(t, "primary_diagnosis", [30, 31, 32], "9X9"))
    expected[("inpatient_spells", "primary_diagnosis", "malformed value")] = 3
    # 8. Discharge before admission (2 rows).
    _edit(
        d,
        "inpatient_spells",
        lambda t: _set(t, "discharge_date", [40, 41], lambda v: v.replace(year=v.year - 1)),
    )
    expected[
        (
            "inpatient_spells",
            "admission_date,discharge_date",
            "discharge_date before admission_date",
        )
    ] = 2
    # 9. Orphan: measurements of a person who does not exist (5 rows).
    _edit(d, "measurements", lambda t: _set(t, "person_id", [0, 1, 2, 3, 4], "P999999999"))
    expected[("measurements", "person_id", "not found in persons.person_id")] = 5
    # 10. Events after death: A&E arrivals after the person died (2 rows).
    persons = pq.read_table(d / "persons.parquet")
    dead = persons.filter(pc.is_valid(persons.column("death_date")))
    death = dict(
        zip(
            dead.column("person_id").to_pylist(), dead.column("death_date").to_pylist(), strict=True
        )
    )
    ae = pq.read_table(d / "ae_attendances.parquet")
    ids = ae.column("person_id").to_pylist()
    # After death but not after the extract date (a 2015 arrival would be both).
    late = date(2014, 3, 31)
    rows = [i for i, p in enumerate(ids) if p in death and death[p] < late][:2]
    assert len(rows) == 2
    _edit(d, "ae_attendances", lambda t: _set(t, "arrival_date", rows, late))
    expected[("ae_attendances", "arrival_date", "arrival_date after death")] = 2
    # 11. Implausible measurement for its kind (HbA1c of 500, 1 row).
    m = pq.read_table(d / "measurements.parquet")
    hb = _rows_where(m, pc.equal(m.column("measure"), "hba1c"), 1)
    _edit(d, "measurements", lambda t: _set(t, "value", hb, 500.0))
    expected[("measurements", "value", "value implausible for its measure")] = 1
    # 12. Spent more than allocated (1 row).
    _edit(d, "innovation_fund", lambda t: _set(t, "spent", [0], 10_000_000.0))
    expected[("innovation_fund", "spent,amount", "spent greater than amount")] = 1
    return expected


def _hashes(d: Path) -> dict[str, str]:
    return {
        str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(d.rglob("*"))
        if f.is_file()
    }


def test_generated_dataset_has_no_problems(synth_dir: Path) -> None:
    assert [p for p in validate(synth_dir) if p.severity == "error"] == []


def test_every_corruption_is_listed_with_its_count(synth_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    shutil.copytree(synth_dir, d)
    expected = corrupt(d)
    before = _hashes(d)
    found = {(p.table, p.column, p.rule): p for p in validate(d) if p.severity == "error"}
    assert _hashes(d) == before  # validation changes nothing
    assert set(found) == set(expected), set(found) ^ set(expected)
    for k, n in expected.items():
        assert found[k].count == n, (k, found[k].count, n)
    for k in expected:  # examples name the offending row (except whole-column problems)
        if found[k].rule not in ("required column missing", "wrong type"):
            assert "=" in found[k].example, found[k]
    assert (
        "P999999999"
        in found[("measurements", "person_id", "not found in persons.person_id")].example
    )
    with pytest.raises(DataValidationError) as info:
        require_valid(d)
    message = str(info.value)
    assert f"{len(expected)} problems found" in message
    for table, column, rule in expected:
        assert f"{table}.{column}: {rule}" in message


def test_validate_command_lists_all_and_exits_2(synth_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    shutil.copytree(synth_dir, d)
    expected = corrupt(d)
    exe = Path(sys.executable).with_name("careval")
    res = subprocess.run(
        [str(exe), "validate", str(d)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("  - ")]
    assert len(lines) == len(expected) >= 10


def test_missing_required_table_is_reported(synth_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    shutil.copytree(synth_dir, d)
    (d / "practices.parquet").unlink()
    problems = validate(d)
    assert any(p.table == "practices" and p.rule == "required table missing" for p in problems)
    # Registrations can no longer be checked against practices: a warning, not a crash.
    assert any(p.table == "registrations" and p.severity == "warning" for p in problems)


def test_extra_columns_are_a_warning_only(synth_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    shutil.copytree(synth_dir, d)
    _edit(d, "practices", lambda t: t.append_column("note", pa.array(["x"] * t.num_rows)))
    warnings = require_valid(d)
    assert [(w.table, w.column) for w in warnings] == [("practices", "note")]


def test_nan_costs_are_reported(synth_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    shutil.copytree(synth_dir, d)
    _edit(d, "inpatient_spells", lambda t: _set(t, "cost", [3, 4], float("nan")))
    found = {(p.table, p.column, p.rule): p.count for p in validate(d)}
    assert found[("inpatient_spells", "cost", "not a number (NaN)")] == 2
