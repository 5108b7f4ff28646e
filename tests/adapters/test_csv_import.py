"""``careval import csv``: the canonical tables as CSV files in, the same tables out, and one
clear message (exit 2, nothing written, inputs untouched) for every kind of bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.data.schema import TABLES
from careval.data.validate import validate
from tests.adapters.cli import exit_code as run

EXTRACT = "2014-04-01"

# A dataset an analyst writes by hand from docs/data-model.md: the required tables and one
# optional table, dates as dd/mm/yyyy (and ISO in the spells), true/false as yes/no in any case.
HAND = {
    "persons.csv": """\
person_id,birth_month,sex,ethnic_group,lsoa,imd_decile,death_date
P01,01/03/1938,F,white,E01000001,3,
P02,01/11/1945,M,asian,E01000002,1,14/02/2013
P03,01/07/1950,F,black,E01000003,5,
P04,01/01/1929,M,white,E01000004,7,02/09/2012
P05,01/05/1960,F,mixed,E01000005,10,
P06,01/12/1933,M,other,E01000006,2,
P07,01/08/1941,F,unknown,E01000007,4,
P08,01/02/1952,M,white,E01000008,6,
""",
    "practices.csv": """\
practice_code,mdg,locality,area
E85001,MDG01,Ealing,pilot
E85002,MDG01,Ealing,pilot
E85003,,Hounslow,outer_nwl
E85004,MDG02,Brent,pilot
E85005,,Hounslow,outer_nwl
""",
    "registrations.csv": """\
person_id,practice_code,start_date,end_date
P01,E85001,01/04/1990,
P02,E85002,15/06/1985,14/02/2013
P03,E85003,01/01/2000,
P04,E85004,10/10/1975,30/09/2012
P05,E85005,01/09/2005,
P06,E85001,01/03/1995,31/12/2010
P06,E85002,31/12/2010,
P07,E85004,20/05/2008,
P08,E85003,01/01/1999,
""",
    "inpatient_spells.csv": """\
spell_id,person_id,admission_date,discharge_date,admission_method,patient_classification,\
primary_diagnosis,cost
S01,P01,2012-01-05,2012-01-09,21,1,J18.9,1590
S02,P02,2012-11-20,2012-11-28,22,1,I50.0,2217.5
S03,P02,2013-01-30,2013-02-14,21,1,C34.9,3100
S04,P04,2011-06-01,2011-06-01,11,2,K80.2,698
S05,P05,2013-03-12,2013-03-15,2A,1,S72.0,1590
S06,P06,2010-08-08,2010-08-10,12,1,M17.1,3684
S07,P07,2013-09-01,2013-09-01,13,3,D64.9,402
S08,P08,2012-04-17,2012-04-19,28,1,R55X,1590
""",
    "outpatient_appointments.csv": """\
appointment_id,person_id,appointment_date,specialty,first_attendance,attended,cost
O01,P01,03/02/2012,300,yes,yes,120
O02,P01,10/03/2012,300,no,no,0
O03,P03,21/06/2013,502,Yes,Y,120
O04,P05,05/04/2013,110,N,yes,120
O05,P08,30/05/2012,101,TRUE,0,0
""",
}


def write_hand(folder: Path) -> Path:
    folder.mkdir()
    for name, text in HAND.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def replace_line(path: Path, number: int, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in line ``number`` (from 1, the header being 1)."""
    lines = path.read_text("utf-8").splitlines(keepends=True)
    assert old in lines[number - 1], (old, lines[number - 1])
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


def export_csv(src: Path, dst: Path) -> None:
    """Write a dataset's canonical tables as CSV as an analyst's tools would: dates dd/mm/yyyy
    in some tables and ISO in others, true/false as yes/no, persons with upper-case names."""
    dst.mkdir()
    ddmm = {"persons", "registrations", "inpatient_spells", "care_plans", "mdg_meetings"}
    for name, table in TABLES.items():
        df = pq.read_table(src / f"{name}.parquet").to_pandas()
        for col in table.columns:
            if col.type == "date":
                fmt = "%d/%m/%Y" if name in ddmm else "%Y-%m-%d"
                df[col.name] = pd.to_datetime(df[col.name]).dt.strftime(fmt)
            elif col.type == "bool":
                df[col.name] = df[col.name].map({True: "yes", False: "no"})
        if name == "persons":
            df.columns = [c.upper() for c in df.columns]
        file = "PRACTICES.CSV" if name == "practices" else f"{name}.csv"
        df.to_csv(dst / file, index=False)


def assert_same_tables(original: Path, imported: Path) -> None:
    """Table by table: the same columns, types, rows and values, in the same order."""
    for name in TABLES:
        a = pq.read_table(original / f"{name}.parquet")
        b = pq.read_table(imported / f"{name}.parquet")
        assert b.schema.names == a.schema.names, name
        assert b.schema.types == a.schema.types, name
        assert b.num_rows == a.num_rows > 0, name
        assert b.cast(a.schema).equals(a), name


# --- round trips --------------------------------------------------------------------------


def test_round_trip_of_the_synthetic_dataset_as_csv(synth_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "csv"
    export_csv(synth_dir, src)
    shutil.copytree(synth_dir / "surveys", src / "surveys")
    assert (src / "persons.csv").read_text().startswith("PERSON_ID,BIRTH_MONTH,")
    before = hashes(src)
    out = tmp_path / "ds"
    extract = json.loads((synth_dir / "dataset.json").read_text())["extract_date"]
    assert run("import", "csv", str(src), "--out", str(out), "--extract-date", extract) == 0
    assert_same_tables(synth_dir, out)
    assert hashes(src) == before  # the input is untouched
    # surveys/ copied byte for byte; nothing else of the synthetic dataset was in the input
    assert hashes(out / "surveys") == hashes(synth_dir / "surveys")
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["synthetic"] is False and manifest["extract_date"] == extract
    assert manifest["import"]["sha256"] == before  # every input file, surveys/ too
    report = json.loads((out / "import_report.json").read_text())
    for name in TABLES:
        rows = pq.read_metadata(synth_dir / f"{name}.parquet").num_rows
        assert report["tables"][name] == rows == manifest["rows"][name]
        file = "PRACTICES.CSV" if name == "practices" else f"{name}.csv"
        assert report["files"][file]["rows"] == rows
    assert not [p for p in validate(out) if p.severity == "error"]


def test_a_dataset_of_parquet_files_imports_as_itself(synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    assert run("import", "csv", str(synth_dir), "--out", str(out), "--synthetic") == 0
    assert_same_tables(synth_dir, out)
    assert json.loads((out / "dataset.json").read_text())["synthetic"] is True
    assert hashes(out / "qualitative") == hashes(synth_dir / "qualitative")
    notes = " ".join(json.loads((out / "import_report.json").read_text())["notes"])
    assert "true_risk.parquet" in notes and "truth.json" in notes  # listed as ignored
    assert not (out / "true_risk.parquet").exists()


def test_a_hand_made_dataset_imports_and_validates(tmp_path: Path) -> None:
    src = write_hand(tmp_path / "hand")
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out), "--extract-date", EXTRACT) == 0
    assert validate(out) == []
    persons = pq.read_table(out / "persons.parquet")
    assert persons.schema.field("birth_month").type == pa.date32()
    assert persons.schema.field("imd_decile").type == pa.int64()
    p = {r["person_id"]: r for r in persons.to_pylist()}
    assert p["P02"]["birth_month"] == dt.date(1945, 11, 1)  # dd/mm/yyyy, not mm/dd
    assert p["P02"]["death_date"] == dt.date(2013, 2, 14)
    assert p["P01"]["death_date"] is None  # an empty field
    assert p["P05"]["imd_decile"] == 10
    regs = pq.read_table(out / "registrations.parquet").to_pylist()
    assert [r["end_date"] for r in regs][:2] == [None, dt.date(2013, 2, 14)]
    spells = pq.read_table(out / "inpatient_spells.parquet")
    assert spells.column("cost").to_pylist() == [1590, 2217.5, 3100, 698, 1590, 3684, 402, 1590]
    assert spells.column("admission_date").to_pylist()[0] == dt.date(2012, 1, 5)
    op = pq.read_table(out / "outpatient_appointments.parquet")
    assert op.column("first_attendance").to_pylist() == [True, False, True, False, True]
    assert op.column("attended").to_pylist() == [True, False, True, True, False]
    for name, text in HAND.items():
        rows = pq.read_metadata(out / name.replace(".csv", ".parquet")).num_rows
        assert rows == len(text.splitlines()) - 1
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["extract_date"] == EXTRACT and manifest["synthetic"] is False
    assert set(manifest["rows"]) == {n.removesuffix(".csv") for n in HAND}


def test_names_in_any_case_and_other_delimiters(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    assert run("import", "csv", str(write_hand(tmp_path / "a")), "--out", str(plain)) == 0
    src = write_hand(tmp_path / "b")
    persons = src / "persons.csv"
    text = persons.read_text().splitlines()
    (src / "PERSONS.CSV").write_text(
        "\n".join([text[0].upper().replace(",", ";")] + [t.replace(",", ";") for t in text[1:]])
    )
    persons.unlink()
    regs = src / "registrations.csv"
    regs.write_text(regs.read_text().replace(",", "\t"))
    # Excel's "CSV UTF-8": a byte-order mark, and Windows line ends
    practices = (src / "practices.csv").read_text().replace("\n", "\r\n")
    (src / "Practices.csv").write_bytes(practices.encode("utf-8-sig"))
    (src / "practices.csv").unlink()
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out)) == 0
    for name in ("persons", "practices", "registrations"):
        a = pq.read_table(plain / f"{name}.parquet")
        assert pq.read_table(out / f"{name}.parquet").equals(a)


def test_spaces_and_extra_columns(tmp_path: Path) -> None:
    src = write_hand(tmp_path / "hand")
    (src / "~$persons.csv").write_bytes(b"\x00lock")  # Excel's lock file while it is open
    (src / "README.txt").write_text("exported from the warehouse on 1 April")
    persons = src / "persons.csv"
    lines = persons.read_text().splitlines()
    lines[0] += ",nhs_number,postcode"
    lines[1:] = [ln + ",9434765919,W5 1AA" for ln in lines[1:]]
    lines[1] = lines[1].replace("P01,", " P01 ,").replace(",3,", ", 3 ,")
    persons.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out)) == 0
    t = pq.read_table(out / "persons.parquet")
    assert t.schema.names == TABLES["persons"].column_names  # the extra columns left out
    assert t.to_pylist()[0]["person_id"] == "P01" and t.to_pylist()[0]["imd_decile"] == 3
    notes = json.loads((out / "import_report.json").read_text())["notes"]
    assert any("nhs_number, postcode" in n and "left out" in n for n in notes)
    assert any("README.txt" in n and "~$persons.csv" in n for n in notes if "ignored" in n)
    assert "9434765919" not in "".join(p.read_text(errors="ignore") for p in out.glob("*.json"))


def test_a_warning_is_shown_and_the_import_proceeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_hand(tmp_path / "hand")
    with open(src / "practices.csv", "a") as f:
        f.write("E85006,,Hounslow,outer_nwl\n")  # a practice no registration names
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert "warning: practices.practice_code" in err
    notes = json.loads((out / "import_report.json").read_text())["notes"]
    assert any(n.startswith("validation warning: practices.practice_code") for n in notes)


def test_encoding_option_reads_latin_1(tmp_path: Path) -> None:
    src = write_hand(tmp_path / "hand")
    text = (src / "practices.csv").read_text().replace("Brent", "Brent Café")
    (src / "practices.csv").write_bytes(text.encode("latin-1"))
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out), "--encoding", "latin-1") == 0
    assert "Brent Café" in pq.read_table(out / "practices.parquet").column("locality").to_pylist()


def test_an_encoding_the_reader_cannot_read_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_hand(tmp_path / "hand")
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out), "--encoding", "cp1252") == 2
    assert "--encoding cp1252: the CSV reader takes utf-8, utf-16 or latin-1" in (
        capsys.readouterr().err
    )
    assert not out.exists()
    assert run("import", "csv", str(src), "--out", str(out), "--encoding", "ISO-8859-1") == 0


# --- bad input: one message, exit 2, nothing written, inputs untouched ----------------------


def _date(src: Path) -> None:
    replace_line(src / "registrations.csv", 4, "01/01/2000", "31/02/2000")
    replace_line(src / "registrations.csv", 6, "01/09/2005", "2005-13-01")


def _number(src: Path) -> None:
    replace_line(src / "persons.csv", 3, ",1,", ",high,")


def _float(src: Path) -> None:
    replace_line(src / "inpatient_spells.csv", 5, ",698", ",£698")


def _comma(src: Path) -> None:
    replace_line(src / "inpatient_spells.csv", 3, ",2217.5", ',"2217,5"')


def _bool(src: Path) -> None:
    replace_line(src / "outpatient_appointments.csv", 4, ",Yes,Y,", ",Yes,maybe,")


def _column(src: Path) -> None:
    lines = (src / "persons.csv").read_text().splitlines()
    cut = [",".join(f for i, f in enumerate(ln.split(",")) if i != 4) for ln in lines]
    (src / "persons.csv").write_text("\n".join(cut) + "\n")


def _table(src: Path) -> None:
    (src / "practices.csv").unlink()


def _empty(src: Path) -> None:
    (src / "registrations.csv").write_text("")


def _header_only(src: Path) -> None:
    (src / "registrations.csv").write_text(HAND["registrations.csv"].splitlines()[0] + "\n")


def _delimiter(src: Path) -> None:
    lines = (src / "persons.csv").read_text().splitlines()
    rows = [lines[0]] + [ln.replace(",", ";") for ln in lines[1:]]
    (src / "persons.csv").write_text("\n".join(rows) + "\n")


def _encoding(src: Path) -> None:
    text = (src / "practices.csv").read_text().replace("Brent", "Brent Café")
    (src / "practices.csv").write_bytes(text.encode("latin-1"))


def _misspelt(src: Path) -> None:
    (src / "outpatient_appointments.csv").rename(src / "outpatient_apointments.csv")


def _folder(src: Path) -> None:
    (src / "inpatient_spells.csv").unlink()
    (src / "inpatient_spells.parquet").mkdir()  # as Spark writes a table
    (src / "inpatient_spells.parquet" / "part-0000.parquet").write_bytes(b"PAR1")


def _invalid(src: Path) -> None:
    replace_line(src / "registrations.csv", 3, "E85002", "E85009")  # no such practice


def _two_files(src: Path) -> None:
    _date(src)
    _bool(src)


BAD: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "unparseable date": (
        _date,
        ["registrations.csv: column START_DATE is not a date (2 rows)", "rows 3, 5", "dd/mm/yyyy"],
    ),
    "not a whole number": (
        _number,
        ["persons.csv: column IMD_DECILE is not a whole number (1 row)", "row 2"],
    ),
    "not a number": (_float, ["inpatient_spells.csv: column COST is not a number", "row 4"]),
    "decimal comma": (
        _comma,
        ["inpatient_spells.csv: column COST holds numbers written with a comma", "1,5 must be 1.5"],
    ),
    "bad bool": (
        _bool,
        ["outpatient_appointments.csv: column ATTENDED is not true or false (1 row)", "row 3"],
    ),
    "missing column": (
        _column,
        ["persons.csv: missing required column LSOA", "the file has PERSON_ID, BIRTH_MONTH, SEX"],
    ),
    "missing table": (_table, ["required table missing: practices (no practices.csv"]),
    "empty file": (_empty, ["registrations.csv: the file is empty"]),
    "header only": (_header_only, ["registrations.csv: the file has a header but no rows"]),
    "wrong delimiter": (
        _delimiter,
        ["persons.csv: line 2 has a different number of fields from the header"],
    ),
    "not utf-8": (_encoding, ["practices.csv: line 5 is not utf-8 text"]),
    "misspelt table name": (
        _misspelt,
        [
            "outpatient_apointments.csv: no table of the model",
            "did you mean outpatient_appointments",
        ],
    ),
    "a folder for a table": (
        _folder,
        ["inpatient_spells.parquet: a folder, not a file", "combine the parts into one file"],
    ),
    "validation error": (
        _invalid,
        ["(the imported tables", "registrations.practice_code", "1 problem found"],
    ),
    "two files": (_two_files, ["2 problems in the input", "START_DATE", "ATTENDED"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_one_message_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, expected = BAD[case]
    src = write_hand(tmp_path / "hand")
    mutate(src)
    before = hashes(src)
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("careval: error:") == 1 and "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand"]  # no temporary folder left
    assert hashes(src) == before


def test_values_are_quoted_only_when_asked_and_never_identifying_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_hand(tmp_path / "hand")
    _number(src)
    replace_line(src / "persons.csv", 5, "01/01/1929", "1929-01-xx")  # birth_month: identifying
    out = str(tmp_path / "ds")
    assert run("import", "csv", str(src), "--out", out) == 2
    err = capsys.readouterr().err
    assert "IMD_DECILE" in err and "BIRTH_MONTH" in err
    assert "high" not in err and "1929" not in err  # data flagged real: no value
    assert run("--show-examples", "import", "csv", str(src), "--out", out) == 2
    err = capsys.readouterr().err
    assert "e.g. row 2: 'high'" in err and "1929" not in err
    assert run("import", "csv", str(src), "--out", out, "--synthetic") == 2
    err = capsys.readouterr().err
    assert "e.g. row 2: 'high'" in err and "1929" not in err


def test_out_must_be_new_or_careval_s_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    src = write_hand(tmp_path / "hand")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert run("import", "csv", str(src), "--out", str(theirs), *extra) == 2
        assert "careval: error: --out" in capsys.readouterr().err
        assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
    out = tmp_path / "ds"
    assert run("import", "csv", str(src), "--out", str(out)) == 0
    assert run("import", "csv", str(src), "--out", str(out)) == 2  # no --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    replace_line(src / "persons.csv", 3, ",1,", ",2,")
    assert run("import", "csv", str(src), "--out", str(out), "--overwrite") == 0
    assert pq.read_table(out / "persons.parquet").column("imd_decile").to_pylist()[1] == 2
    inside = src / "ds"
    assert run("import", "csv", str(src), "--out", str(inside)) == 2
    assert "inside it" in capsys.readouterr().err and not inside.exists()


def test_a_bad_input_exits_2_from_the_shell(tmp_path: Path, cli: Callable) -> None:
    src = write_hand(tmp_path / "hand")
    _date(src)
    res = cli("import", "csv", str(src), "--out", str(tmp_path / "ds"))
    assert res.returncode == 2, res.stderr
    assert "START_DATE is not a date" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "ds").exists()


def test_number_rules_match_their_patterns() -> None:
    """The quick conversions of whole numbers and decimals accept exactly the texts their
    regular expressions describe, with the values Python reads from them."""
    import random
    import re

    import duckdb

    from careval.data.adapters.csv import FLOAT_PATTERN, INT_PATTERN, _convert
    from careval.data.schema import Column

    rng = random.Random(3)
    texts = ["1.5", "3.0", "007", "+7", "-0", ".5", "5.", "1e3", "1E-2", "nan", "inf", "1_000"]
    texts += ["+-1", "-+1", "1,5", "0x10", "9223372036854775808", "1e999", "٣", "１２", "½"]
    texts += [
        "".join(rng.choice("0123456789.+-eE_x,") for _ in range(rng.randint(1, 6)))
        for _ in range(5000)
    ]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[t] for t in texts])
    i = _convert(Column("v", "int", "")).replace('"v"', "v")
    f = _convert(Column("v", "float", "")).replace('"v"', "v")
    got = con.execute(f"SELECT v, {i}, {f} FROM t").fetchall()
    for text, whole, number in got:
        want_f = float(text) if re.fullmatch(FLOAT_PATTERN, text) else None
        if want_f is not None and abs(want_f) == float("inf"):
            want_f = None
        want_i = int(text.split(".")[0]) if re.fullmatch(INT_PATTERN, text) else None
        if want_i is not None and not -(2**63) <= want_i < 2**63:
            want_i = None
        assert (whole, number) == (want_i, want_f), text


def test_dates_read_as_python_reads_them() -> None:
    """Every text is the date Python's strptime makes of it with the first format that fits
    (ISO, dd/mm/yyyy, yyyymmdd, with or without a time), or no date when none fits."""
    import random

    import duckdb

    from careval.data.adapters.common import DATE_FORMATS, date_sql

    rng = random.Random(5)
    texts = ["2012-02-30", "29/02/2011", "29/02/2012", "1/13/2012", "2012/01/05", "2012-01-5x"]
    texts += ["05/01/2012 10:11:12", "2012-01-05T10:30:00", "1800-01-01", "18000101", "x"]
    for _ in range(3000):
        y, m, d = rng.randint(1890, 2030), rng.randint(1, 13), rng.randint(1, 31)
        fmt = rng.choice(
            ["{y}-{m:02d}-{d:02d}", "{d:02d}/{m:02d}/{y}", "{d}/{m}/{y}", "{y}{m:02d}{d:02d}"]
        )
        texts.append(fmt.format(y=y, m=m, d=d) + rng.choice(["", "", " 08:30:00"]))

    def python(text: str) -> dt.date | None:
        for fmt in DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        return None

    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[t] for t in texts])
    got = con.execute(f"SELECT v, {date_sql('v', nulls=())} FROM t").fetchall()
    assert sum(d is not None for _, d in got) > 2000  # most of them are dates
    for text, date in got:
        assert date == python(text), text
