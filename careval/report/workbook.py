"""Every published table of a run in one .xlsx workbook, made from ``results.json``'s blocks.

The workbook is built from the same published (disclosure-controlled) blocks as
``results.json``, so the two can never disagree: each list of records becomes a sheet, the
scalar figures go to a ``key figures`` sheet and a ``contents`` sheet maps every sheet to its
place in ``results.json``.

No string reaches a spreadsheet as a formula. Survey group labels, open-text answers and code
names come from people, and a spreadsheet evaluates a cell that begins with ``=`` (and, on
import, ``+``, ``-``, ``@``, a tab or a carriage return): ``=HYPERLINK(...)`` or
``=cmd|' /C calc'!A0``. Every string cell, in this workbook and in the CSV files careval
exports (:func:`csv_text`), is neutralised as OWASP recommends (the CSV Injection page of the
OWASP community pages, and ASVS 5.0 requirement 1.2.10): a value that begins with one of those
characters, the null character or their full-width forms is prefixed with a single quote,
which every spreadsheet shows as text. Numbers stay numbers (a negative number is written as a
number, not as text); text that looks like a number, such as ``"-5"``, stays text and is
neutralised like any other.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

if TYPE_CHECKING:
    import pandas as pd

# The creation date in the document properties: no run time there. (openpyxl stamps the
# "modified" property and the zip entries with the time of saving, so the file's bytes still
# differ between runs; its cells do not.)
FIXED_TIME = dt.datetime(2000, 1, 1)
SKIP = ("provenance",)  # not a table: its scalars go to the key figures sheet
# A cell beginning with one of these is read as a formula by some spreadsheet: OWASP's list
# (= + - @ tab, carriage return; ASVS adds the null character) and the full-width forms, which
# a spreadsheet in an East Asian locale may take for the ASCII ones.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value: Any) -> Any:
    """``value`` as a spreadsheet can hold it without evaluating it.

    A string that begins with a character of :data:`FORMULA_START` gets a leading single
    quote; control characters that an .xlsx file cannot hold become U+FFFD. Anything else
    (numbers, booleans, None) is returned unchanged.

    Examples
    --------
    >>> neutralise("=1+1"), neutralise("-5"), neutralise(-5), neutralise("ok")
    ("'=1+1", "'-5", -5, 'ok')
    """
    if not isinstance(value, str):
        return value
    return _quoted(ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` for a CSV file that someone may open in a spreadsheet.

    Column names and the strings of text columns get the single quote of :func:`neutralise`
    (control characters are kept: a CSV file can hold them); numeric columns are unchanged.
    """
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
            out[c] = out[c].map(_quoted)
    out.columns = [_quoted(c) for c in out.columns]
    return out


def csv_text(df: pd.DataFrame, float_format: str | None = None) -> str:
    """``df`` as CSV text for someone's spreadsheet: :func:`csv_safe` cells, no index, and the
    line ends and quoting of RFC 4180 (CRLF line ends, so a field holding a line break or a
    bare carriage return is quoted and stays one field)."""
    return csv_safe(df).to_csv(index=False, lineterminator="\r\n", float_format=float_format)


def _quoted(value: Any) -> Any:
    """A string beginning with a character of :data:`FORMULA_START` with a single quote first."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def tables(results: dict[str, Any], path: str = "") -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Every list of records in ``results`` with its dotted path, in document order."""
    for key, v in results.items():
        here = f"{path}.{key}" if path else str(key)
        if here in SKIP:
            continue
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            yield here, v
        elif isinstance(v, dict):
            yield from tables(v, here)


def scalars(results: dict[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar figure in ``results`` (outside tables) with its dotted path."""
    for key, v in results.items():
        here = f"{path}.{key}" if path else str(key)
        if isinstance(v, dict):
            yield from scalars(v, here)
        elif not isinstance(v, list):
            yield here, v


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        v = json.dumps(v, default=str)
    return neutralise(v)


def _row(values: list[Any]) -> list[Any]:
    return [_cell(v) for v in values]


def _sheet_name(path: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", path)[-28:].lstrip(".")
    name, i = base, 1
    while name.lower() in used:
        i += 1
        name = f"{base[:25]}~{i}"
    used.add(name.lower())
    return name


def write_workbook(results: dict[str, Any], path: Path) -> list[str]:
    """Write the tables of ``results`` to ``path``; returns the sheet names."""
    wb = Workbook()
    contents = wb.active
    assert contents is not None
    contents.title = "contents"
    contents.append(["sheet", "results.json path", "rows"])
    bold = Font(bold=True)
    for c in contents[1]:
        c.font = bold
    used = {"contents", "key figures"}
    names = []
    for where, rows in tables(results):
        name = _sheet_name(where, used)
        names.append(name)
        ws = wb.create_sheet(name)
        columns = list(dict.fromkeys(k for r in rows for k in r))
        ws.append(_row(columns))
        for c in ws[1]:
            c.font = bold
        for r in rows:
            ws.append(_row([r.get(k) for k in columns]))
        ws.freeze_panes = "A2"
        contents.append(_row([name, where, len(rows)]))
    figures = wb.create_sheet("key figures")
    figures.append(["results.json path", "value"])
    for c in figures[1]:
        c.font = bold
    for where, v in scalars(results):
        figures.append(_row([where, v]))
    wb.properties.created = FIXED_TIME
    wb.save(path)
    return names
