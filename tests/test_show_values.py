"""Messages about bad input quote no values of data flagged real, at any edge, unless the user
asks with ``careval --show-examples``; synthetic data are quoted as before."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from careval.errors import bad_rows, quoted_line, showing_values

SECRET = "Mrs Example of 12 Acacia Avenue"


def _real(synth_dir: Path, to: Path) -> Path:
    shutil.copytree(synth_dir, to)
    manifest = json.loads((to / "dataset.json").read_text())
    (to / "dataset.json").write_text(json.dumps({**manifest, "synthetic": False}))
    return to


def test_a_bad_row_is_quoted_only_when_values_may_be_shown() -> None:
    df = pd.DataFrame({"respondent_id": ["R1", "R2"], "answer": ["Agree", SECRET]})
    bad = df.answer.ne("Agree").to_numpy()
    hidden: list[str] = []
    bad_rows(hidden, Path("s.csv"), df, "answer", bad, "is not a label", "Agree")
    assert hidden == ["s.csv: column 'answer' is not a label (1 row); allowed: Agree; e.g. line 3"]
    with showing_values(True):
        shown: list[str] = []
        bad_rows(shown, Path("s.csv"), df, "answer", bad, "is not a label", "Agree")
        assert quoted_line(4, f"  {SECRET}  ") == f"line 4: {SECRET!r}"
    assert shown[0].endswith(f"e.g. line 3: respondent_id='R2', answer={SECRET!r}")
    assert quoted_line(4, SECRET) == "line 4"  # the block is over


def _transcript(data: Path) -> tuple[Path, int]:
    """A line no speaker says, last in a transcript; the file and the line's number."""
    path = next((data / "qualitative" / "transcripts").glob("*.txt"))
    path.write_text(path.read_text() + f"{SECRET} said nothing useful\n")
    return path, len(path.read_text().splitlines())


def _survey(data: Path) -> tuple[Path, int]:
    """An answer no scale has, in the fourth respondent's row (line 5, after the header)."""
    path = data / "surveys" / "patients.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[3, "favourable_integration"] = SECRET
    df.to_csv(path, index=False)
    return path, 5


@pytest.mark.parametrize("plant", [_transcript, _survey])
def test_run_on_real_data_names_the_line_not_its_words(
    synth_dir: Path,
    tmp_path: Path,
    cli: Callable[..., Any],
    plant: Callable[[Path], tuple[Path, int]],
) -> None:
    data = _real(synth_dir, tmp_path / "data")
    bad, line = plant(data)
    res = cli("run", "--data", str(data), "--out", str(tmp_path / "out"))
    assert res.returncode == 2, res.stderr[-2000:]
    assert bad.name in res.stderr and re.search(rf"\bline {line}\b", res.stderr), res.stderr
    assert SECRET not in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
    shown = cli("--show-examples", "run", "--data", str(data), "--out", str(tmp_path / "out"))
    assert shown.returncode == 2 and SECRET in shown.stderr
    assert not (tmp_path / "out" / "report.html").exists()


def test_run_and_design_pass_show_examples_to_validation(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    data = _real(synth_dir, tmp_path / "data")
    persons = pd.read_parquet(data / "persons.parquet")
    persons.loc[4, "sex"] = "X"
    persons.to_parquet(data / "persons.parquet", index=False)
    pid = str(persons.person_id.iloc[4])
    for command in (
        ["run", "--data", str(data), "--out", str(tmp_path / "o")],
        ["design", "--data", str(data), "--json", str(tmp_path / "d.json")],
    ):
        res = cli(*command)
        assert res.returncode == 2 and "persons.sex" in res.stderr and "row 5" in res.stderr
        assert pid not in res.stderr, command
        shown = cli("--show-examples", *command)
        assert shown.returncode == 2 and pid in shown.stderr, command


def test_text_that_is_not_utf8_is_named_by_its_file_not_quoted(
    synth_dir: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = _real(synth_dir, tmp_path / "data")
    file = data / "practices.parquet"
    t = pq.read_table(file)
    i = t.schema.get_field_index("practice_code")
    raw = [c.encode() for c in t.column(i).to_pylist()]
    raw[0] += b"\xff"  # one byte that is no UTF-8
    pq.write_table(t.set_column(i, t.schema.field(i), pa.array(raw).view(pa.string())), file)
    res = cli("validate", str(data))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "practices.parquet: table 'practices' cannot be read" in res.stderr
    assert "UTF8" in res.stderr and raw[0][:-1].decode() not in res.stderr  # the code itself
