"""Every published table of a run in one .xlsx workbook, made from ``results.json``'s blocks.

The workbook is built from the same published (disclosure-controlled) blocks as
``results.json``, so the two can never disagree: each list of records becomes a sheet, the
scalar figures go to a ``key figures`` sheet and a ``contents`` sheet maps every sheet to its
place in ``results.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

# The creation date in the document properties: no run time there. (openpyxl stamps the
# "modified" property and the zip entries with the time of saving, so the file's bytes still
# differ between runs; its cells do not.)
FIXED_TIME = dt.datetime(2000, 1, 1)
SKIP = ("provenance",)  # not a table: its scalars go to the key figures sheet


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
        return json.dumps(v, default=str)
    return v


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
        ws.append(columns)
        for c in ws[1]:
            c.font = bold
        for r in rows:
            ws.append([_cell(r.get(k)) for k in columns])
        ws.freeze_panes = "A2"
        contents.append([name, where, len(rows)])
    figures = wb.create_sheet("key figures")
    figures.append(["results.json path", "value"])
    for c in figures[1]:
        c.font = bold
    for where, v in scalars(results):
        figures.append([where, _cell(v)])
    wb.properties.created = FIXED_TIME
    wb.save(path)
    return names
