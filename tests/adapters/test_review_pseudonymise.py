"""Review of ``careval pseudonymise``: a file without a header line, and column names that
differ only in case, give one message and exit 2, quoting no value from the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from careval.data.adapters.pseudonymise import keygen
from tests.adapters.cli import run_cli_out as run

NHS = ("9434765919", "9434765870")  # valid NHS numbers (Modulus 11)


def test_headerless_file_names_no_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose first line is data (no header): the message must not list line 1's
    values as "its columns" (they are NHS numbers, a date of birth, an LSOA)."""
    key = tmp_path / "k.key"
    keygen(key)
    src = tmp_path / "extract.csv"
    src.write_text(
        f"{NHS[0]},01/02/1950,E01000001\n{NHS[1]},03/04/1960,E01000002\n", encoding="utf-8"
    )
    code, out, err = run(
        capsys, "pseudonymise", "--key-file", key, "--in", src, "--columns", "NHS_NUMBER",
        "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert code == 2
    text = out + err
    assert "NHS_NUMBER" in text  # the column asked for is named
    for value in (NHS[0], "01/02/1950", "E01000001"):
        assert value not in text
    assert "header" in text  # says what is likely wrong
    assert not (tmp_path / "o.csv").exists()
    # asked for, the names are shown
    code, out, err = run(
        capsys, "--show-examples", "pseudonymise", "--key-file", key, "--in", src,
        "--columns", "NHS_NUMBER", "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert code == 2 and NHS[0] in out + err


def test_names_differing_in_case_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """NHS_NUMBER and nhs_number in one header: one message (the engine's names are
    case-insensitive), not a traceback; nothing written."""
    key = tmp_path / "k.key"
    keygen(key)
    src = tmp_path / "extract.csv"
    src.write_text(f"NHS_NUMBER,nhs_number\n{NHS[0]},{NHS[1]}\n", encoding="utf-8")
    code, out, err = run(
        capsys, "pseudonymise", "--key-file", key, "--in", src, "--columns", "NHS_NUMBER",
        "--out", tmp_path / "o.csv",
    )  # fmt: skip
    assert code == 2
    assert "more than once" in err and "NHS_NUMBER" in err.upper()
    assert NHS[0] not in out + err and NHS[1] not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extract.csv", "k.key"]


def test_parquet_names_differing_in_case_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Parquet file with NHS_NUMBER and nhs_number: the engine renamed the second
    nhs_number_1, --columns nhs_number tokenised only the first, and the second column's NHS
    numbers were written out as they were. Refused, as for a CSV file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    key = tmp_path / "k.key"
    keygen(key)
    src = tmp_path / "extract.parquet"
    pq.write_table(
        pa.table([pa.array([NHS[0]]), pa.array([NHS[1]])], names=["NHS_NUMBER", "nhs_number"]),
        src,
    )
    out = tmp_path / "o.parquet"
    code, _, err = run(
        capsys, "pseudonymise", "--key-file", key, "--in", src, "--columns", "nhs_number",
        "--out", out,
    )  # fmt: skip
    assert code == 2, err
    assert "more than once" in err
    assert not out.exists()


def test_a_column_named_twice_in_columns_is_tokenised_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--columns nhs_number,NHS_NUMBER names one column: it was tokenised twice, the tokens
    then failed the check digit and every row was dropped (exit 0, an empty output)."""
    from careval.data.adapters.pseudonymise import read_key, token

    key_file = tmp_path / "k.key"
    keygen(key_file)
    src = tmp_path / "extract.csv"
    src.write_text(f"NHS_NUMBER,X\n{NHS[0]},a\n{NHS[1]},b\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    code, _, err = run(
        capsys, "pseudonymise", "--key-file", key_file, "--in", src, "--columns",
        "nhs_number,NHS_NUMBER", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    key = read_key(key_file)
    assert out.read_text().splitlines() == [
        "NHS_NUMBER,X",
        f"{token(key, NHS[0])},a",
        f"{token(key, NHS[1])},b",
    ]


def test_a_column_with_no_valid_number_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pseudonymising a file twice (its tokens fail the check digit) wrote an empty file with
    exit 0; it is refused, naming the column and the counts, and nothing is written."""
    key = tmp_path / "k.key"
    keygen(key)
    src = tmp_path / "extract.csv"
    src.write_text(f"NHS_NUMBER,X\n{NHS[0]},a\n{NHS[1]},b\n", encoding="utf-8")
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    args = ("pseudonymise", "--key-file", key, "--columns", "NHS_NUMBER")
    assert run(capsys, *args, "--in", src, "--out", once)[0] == 0
    code, _, err = run(capsys, *args, "--in", once, "--out", twice)
    assert code == 2, err
    assert "NHS_NUMBER holds no valid NHS number (2 invalid, 0 missing)" in err
    assert not twice.exists()
