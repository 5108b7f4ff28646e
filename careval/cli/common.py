"""What every command shares: the consoles, a progress bar, argument parsing and JSON output."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from careval.errors import ConfigError

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@contextmanager
def steps(total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar advanced by a callback (plain lines when not a terminal)."""
    if not err.is_terminal:
        yield lambda step: err.print(f"careval: {step}", highlight=False)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=total)

        def advance(step: str) -> None:
            bar.update(task, advance=1, description=step)

        yield advance


def names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def validated(data: Path, extract_date: dt.date | None = None) -> None:
    """Validate a dataset (exit 2 on any error) and print its warnings.

    On data not flagged synthetic the messages name rows and columns but show no values,
    unless ``--show-examples`` was given.
    """
    from careval.data.validate import require_valid

    for w in require_valid(data, extract_date):
        err.print(f"warning: {w.line()}", highlight=False, markup=False)


def check_json(path: Path) -> None:
    """Refuse a ``--json`` path that cannot be written, before any work is done."""
    if path.is_dir():
        raise ConfigError(f"--json {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"--json {path}: the directory {path.parent} does not exist")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path`` and move it into place."""
    import json

    from careval.files import write_atomic

    check_json(path)
    text = json.dumps(payload, indent=2, default=plain) + "\n"
    write_atomic(path, text.encode("utf-8"))


def plain(v: object) -> object:
    if hasattr(v, "item"):
        return v.item()  # type: ignore[no-any-return]
    if hasattr(v, "isoformat"):
        return v.isoformat()  # type: ignore[no-any-return]
    return str(v)


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} must be a date as YYYY-MM-DD; got {text!r}") from None
