"""Domain errors. Every one is a ``ValueError`` the CLI turns into one message and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class CarevalError(ValueError):
    """Base class for problems with the user's input, settings or data."""


class ConfigError(CarevalError):
    """A setting or command-line option is not allowed."""


class DatasetError(CarevalError):
    """A dataset directory cannot be read (missing, not a dataset, unreadable file)."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: what is wrong, where, how often, and an example.

    ``rows`` are the numbers of the first offending rows (from 1, in the order the rows are
    stored in the table's file), ``example`` the values of the first of them. On data not
    flagged synthetic validation leaves ``example`` empty, so that a message names the row and
    column but no person id, date or code.
    """

    table: str
    column: str
    rule: str
    count: int
    example: str
    allowed: str = ""
    severity: str = "error"  # "error" stops every command; "warning" is reported only
    counts_rows: bool = True  # False for whole-table or whole-column problems
    rows: tuple[int, ...] = ()

    def line(self) -> str:
        """Human-readable one-line description."""
        text = f"{self.table}.{self.column}: {self.rule}"
        if self.counts_rows:
            text += f" ({self.count:,} {'row' if self.count == 1 else 'rows'})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.rows:
            more = ", ..." if self.counts_rows and self.count > len(self.rows) else ""
            word = "row" if len(self.rows) == 1 and not more else "rows"
            text += f"; {word} {', '.join(str(r) for r in self.rows)}{more}"
        if self.example:
            where = f"row {self.rows[0]}: " if self.rows else ""
            text += f"; e.g. {where}{self.example}"
        return text


@dataclass
class DataValidationError(CarevalError):
    """A dataset broke the canonical model; carries every problem found, not just the first."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    values_hidden: bool = False  # the data are not flagged synthetic: rows named, not values

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        warnings = [p for p in self.problems if p.severity != "error"]
        head = f"{self.path}: {len(errors)} problem{'s' if len(errors) != 1 else ''} found"
        lines = [head] + ["  - " + p.line() for p in errors]
        if warnings:  # listed too, so that one pass shows everything to fix or to look at
            lines.append(f"and {len(warnings)} warning{'s' if len(warnings) != 1 else ''}:")
            lines += ["  warning: " + p.line() for p in warnings]
        if self.values_hidden and any(p.rows for p in self.problems):
            lines.append(
                "(rows are numbered from 1 in each table's file; their values are not shown "
                "because the data are not flagged synthetic: careval --show-examples validate "
                "shows them)"
            )
        return "\n".join(lines)


# --- problems in an input file (CSV, survey files): collected, then raised as one message


def bad_rows(
    problems: list[str],
    path: Path,
    df: pd.DataFrame,
    column: str,
    bad: np.ndarray,
    rule: str,
    allowed: str,
    shown: int = 6,
) -> None:
    """Add ``file: column: rule (n rows); allowed: ...; e.g. line k: ...`` to ``problems`` when
    any row is ``bad`` (nothing when none is); the example shows the first ``shown`` columns."""
    import numpy as np

    count = int(np.asarray(bad, bool).sum())
    if not count:
        return
    pos = int(np.argmax(bad))
    example = f"e.g. line {pos + 2}"
    if SHOW_VALUES.get():
        row = ", ".join(f"{c}={brief(df[c].iloc[pos], 40)}" for c in df.columns[:shown])
        example += f": {row}" + (", ..." if len(df.columns) > shown else "")
    problems.append(
        f"{path}: column {column!r} {rule} ({count:,} row{'s' if count != 1 else ''}); "
        f"allowed: {allowed}; {example}"
    )


# Whether messages about an input file may quote its values (a row, a line of text). Off unless
# the input is flagged synthetic or the user asked (``careval --show-examples``): a survey's
# answers or a transcript's words are as identifying as any person id. The edges set it for the
# inputs they read (:func:`showing_values`); the readers only consult it.
SHOW_VALUES: ContextVar[bool] = ContextVar("careval_show_values", default=False)


@contextmanager
def showing_values(on: bool) -> Iterator[None]:
    """Within the block, messages about input files quote their values when ``on``."""
    token = SHOW_VALUES.set(on)
    try:
        yield
    finally:
        SHOW_VALUES.reset(token)


def quoted_value(where: str, value: object) -> str:
    """``where`` (``row 5``) with the value found there, only when messages may quote values."""
    return f"{where}: {brief(value, 40)}" if SHOW_VALUES.get() else where


def quoted_line(number: int, text: str) -> str:
    """``line N`` of an input file, with its text (cut to 80 characters) only when messages may
    quote values (:data:`SHOW_VALUES`)."""
    return f"line {number}: {brief(text.strip())}" if SHOW_VALUES.get() else f"line {number}"


def raise_problems(problems: list[str]) -> None:
    """Raise one ConfigError listing every problem (nothing when the list is empty)."""
    if not problems:
        return
    if len(problems) == 1:
        raise ConfigError(problems[0])
    raise ConfigError(
        f"{len(problems)} problems in the input:\n" + "\n".join(f"  - {p}" for p in problems)
    )


def brief(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters.

    A value echoed back to the user (a key, a setting, a line of a file) may be enormous in a
    malformed or hostile file; the message shows its start and how long it is.

    Examples
    --------
    >>> brief("short")
    "'short'"
    >>> brief("x" * 1000, 20)
    "'xxxxxxxxxxxxxxxxxx... (1,002 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}... ({len(text):,} characters)"


def cut(message: str, limit: int = 20_000) -> str:
    """A whole message cut to ``limit`` characters (the CLI's last guard on what it prints)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}... (message cut: {len(message):,} characters in all)"
