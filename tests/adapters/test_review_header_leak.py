"""A file without a header line: its first line is a person's
values, and the missing-column message must not list them as the file's columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adapters.cli import run_cli as run


def test_headerless_apc_quotes_no_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apc = tmp_path / "apc.csv"
    apc.write_text("9434765919,01/02/1950,E01000001\n9434765870,03/04/1960,E01000002\n")
    code, err = run(capsys, "import", "hes", "--apc", apc, "--out", tmp_path / "ds")
    assert code == 2 and "missing required column" in err
    for value in ("9434765919", "01/02/1950", "E01000001"):
        assert value not in err
    assert "header" in err
