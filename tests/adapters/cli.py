"""Running the CLI in the test's process, for the adapters' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from careval.cli import main


def exit_code(*args: str | Path) -> int:
    """``careval ARGS`` in this process: its exit code (0 when it returns)."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def run_cli_out(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``careval ARGS`` in this process: its exit code, standard output and standard error."""
    code = exit_code(*args)
    got = capsys.readouterr()
    return code, got.out, got.err


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``careval ARGS`` in this process: its exit code and standard error."""
    code, _, err = run_cli_out(capsys, *args)
    return code, err
