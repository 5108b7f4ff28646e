"""Running the CLI in the test's process, for the adapters' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from careval.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``careval ARGS`` in this process: its exit code and standard error."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err
