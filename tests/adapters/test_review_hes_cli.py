"""Review of ``careval import hes`` at the command line: an --encoding the reader does not
know is one message and exit 2, not a LookupError traceback; nothing is written."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.adapters.cli import run_cli as run

APC = """HESID,EPIKEY,EPISTAT,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,PROCODE3,DIAG_4_01,SEX,MYDOB
H1,E1,3,2012-01-05,2012-01-07,21,1,RYJ,J189,1,011940
"""


@pytest.mark.parametrize("encoding", ["nonsense", "cp1252"])
def test_an_unknown_encoding_is_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    apc = tmp_path / "apc.csv"
    apc.write_text(APC, encoding="utf-8")
    out = tmp_path / "ds"
    code, err = run(capsys, "import", "hes", "--apc", apc, "--out", out, "--encoding", encoding)
    assert code == 2, err
    assert f"--encoding {encoding}" in err and "latin-1" in err
    assert not out.exists()


def test_encoding_spellings_are_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """latin1 / ISO-8859-1 name the encoding the engine calls latin-1: a file with a byte that
    is no UTF-8 (a latin-1 e-acute in PROCODE3) is read with them, and refused as UTF-8."""
    apc = tmp_path / "apc.csv"
    apc.write_text(APC.replace(",RYJ,", ",RY\u00e9,"), encoding="latin-1")
    code, err = run(capsys, "import", "hes", "--apc", apc, "--out", tmp_path / "utf8")
    assert code == 2 and "line 2 is not utf-8 text" in err, err
    code, err = run(capsys, "import", "hes", "--apc", apc, "--out", tmp_path / "ds", "--encoding",
                    "ISO-8859-1")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "ds" / "inpatient_spells.parquet").is_file()
    assert pq.read_table(tmp_path / "ds" / "inpatient_spells.parquet").num_rows == 1
