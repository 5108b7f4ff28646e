"""Review of ``careval import omop``: a year or month of birth that no whole number of the
engine holds (``1e10``, ``inf``) is one message and exit 2, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.cli import run_cli as run

PERSON = """person_id,gender_concept_id,year_of_birth,month_of_birth
1,8507,1940,3
2,8532,{year},{month}
"""
OBSERVATION = """person_id,observation_period_start_date,observation_period_end_date
1,2000-01-01,2020-12-31
2,2000-01-01,2020-12-31
"""
VISITS = """visit_occurrence_id,person_id,visit_concept_id,visit_start_date,visit_end_date
100,1,9201,2010-03-02,2010-03-05
101,2,9201,2011-01-10,2011-01-12
"""


def write(folder: Path, year: str, month: str) -> Path:
    folder.mkdir()
    (folder / "person.csv").write_text(PERSON.format(year=year, month=month), encoding="utf-8")
    (folder / "observation_period.csv").write_text(OBSERVATION, encoding="utf-8")
    (folder / "visit_occurrence.csv").write_text(VISITS, encoding="utf-8")
    return folder


@pytest.mark.parametrize("year", ["1e10", "inf", "1948.5", "-1e300"])
def test_a_year_of_birth_no_year_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], year: str
) -> None:
    src = write(tmp_path / "omop", year, "5")
    out = tmp_path / "ds"
    code, err = run(capsys, "import", "omop", "--dir", src, "--out", out, "--extract-date",
                    "2021-06-30")  # fmt: skip
    assert code == 2, err
    assert "column YEAR_OF_BIRTH is empty or not a year" in err and "row 2" in err
    assert year not in err  # real data: no value quoted
    assert not out.exists()


@pytest.mark.parametrize("month", ["1e10", "inf", "13"])
def test_a_month_of_birth_no_month_is_january(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], month: str
) -> None:
    """A month that is no month 1-12 is counted and read as January (docs/import-omop.md),
    whatever its size."""
    import pyarrow.parquet as pq

    src = write(tmp_path / "omop", "1950", month)
    out = tmp_path / "ds"
    code, err = run(capsys, "import", "omop", "--dir", src, "--out", out, "--extract-date",
                    "2021-06-30")  # fmt: skip
    assert code == 0, err
    births = pq.read_table(out / "persons.parquet").to_pydict()
    got = dict(zip(births["person_id"], births["birth_month"], strict=True))
    assert str(got["2"]) == "1950-01-01" and str(got["1"]) == "1940-03-01"


def test_out_inside_the_source_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out inside --dir would add a folder to the source: refused, the source unchanged."""
    src = write(tmp_path / "omop", "1950", "5")
    before = sorted(p.name for p in src.iterdir())
    code, err = run(capsys, "import", "omop", "--dir", src, "--out", src / "ds")
    assert code == 2 and "--out" in err and "inside" in err, err
    assert sorted(p.name for p in src.iterdir()) == before


def test_schema_without_a_database_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--schema with --dir was silently ignored; it names a schema of a --db only."""
    src = write(tmp_path / "omop", "1950", "5")
    code, err = run(capsys, "import", "omop", "--dir", src, "--schema", "cdm", "--out",
                    tmp_path / "ds")  # fmt: skip
    assert code == 2 and "--schema" in err, err
    assert not (tmp_path / "ds").exists()


def test_every_problem_of_the_source_in_one_message_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad visit date, a visit twice, a bad year and a person twice: four problems in three
    tables, in one message, dates first, then each table's own checks."""
    src = write(tmp_path / "omop", "19x0", "5")
    person = src / "person.csv"
    person.write_text(person.read_text() + "1,8507,1940,3\n", encoding="utf-8")
    visits = src / "visit_occurrence.csv"
    visits.write_text(
        visits.read_text().replace("2011-01-10,", "2011-13-10,") + "100,1,9201,2010-03-02,"
        "2010-03-05\n",
        encoding="utf-8",
    )
    out = tmp_path / "ds"
    code, err = run(capsys, "import", "omop", "--dir", src, "--out", out, "--extract-date",
                    "2021-06-30")  # fmt: skip
    assert code == 2, err
    assert "4 problems in the input" in err, err
    order = [
        "column VISIT_START_DATE is not a date (1 row)",
        "column VISIT_OCCURRENCE_ID holds a visit more than once (2 rows)",
        "column YEAR_OF_BIRTH is empty or not a year (1 row)",
        "column PERSON_ID holds a person more than once (2 rows)",
    ]
    at = [err.find(text) for text in order]
    assert -1 not in at and at == sorted(at), err
    assert not out.exists()


def test_every_problem_of_the_practices_file_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A code that is no ODS code, a practice named twice and an empty area: three lines."""
    src = write(tmp_path / "omop", "1950", "5")
    practices = tmp_path / "practices.csv"
    practices.write_text(
        "practice_code,area\nE85001,north\nE85001,south\nXYZ,north\nE85002,\n", encoding="utf-8"
    )
    out = tmp_path / "ds"
    code, err = run(capsys, "import", "omop", "--dir", src, "--out", out, "--practices",
                    practices, "--extract-date", "2021-06-30")  # fmt: skip
    assert code == 2, err
    assert "3 problems in the input" in err, err
    order = [
        "column PRACTICE_CODE is not an ODS practice code (1 row); allowed: a letter and five "
        "digits, e.g. E85001; row 3 ",
        "column PRACTICE_CODE names a practice more than once (2 rows); rows 1, 2 ",
        "column AREA is empty (1 row); row 4 ",
    ]
    at = [err.find(text) for text in order]
    assert -1 not in at and at == sorted(at), err
    assert not out.exists()
