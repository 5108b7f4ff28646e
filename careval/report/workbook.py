"""Every published table of a run in one .xlsx workbook that describes itself, made from
``results.json``'s blocks.

The workbook is built from the same published (disclosure-controlled) blocks as
``results.json``, so the two can never disagree. Its first sheet, ``Contents``, lists every
table with its readable name, a one-line description, its source (the path in
``results.json``), its rows and its columns' code names; ``Key figures`` holds every scalar
figure with its label and unit; ``Impact results`` the matched study, one row per outcome;
``Definitions and units`` every column's label, code name, meaning and unit. Each list of
records then becomes a sheet named after the table (31 characters at most, unique), headed by
the columns' human labels (:func:`careval.report.glossary.label`; the code name is in the
header cell's comment, on the Contents sheet and on the definitions sheet), with the number
format of its column kind (:data:`careval.report.format.EXCEL_FORMAT`: counts ``#,##0``,
shares ``0.0%``, pounds, rates, p-values shown ``< 0.001`` below 0.001), widths fitted to
the content, the header row frozen and a filter on every table. The time-to-event block
(``impact.survival``), whose curves are lists inside each arm, is laid out as tables of its
published values by :mod:`careval.report.workbook_survival` (hazard ratios, people and events,
the curves by month, the person-months lost to death).

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from careval.impact.diagnostics import DIAGNOSTICS
from careval.report.format import EXCEL_FORMAT, Kind, column_kind
from careval.report.glossary import label
from careval.report.publish.units import unit
from careval.report.workbook_catalogue import describe, meaning
from careval.report.workbook_survival import survival_tables

if TYPE_CHECKING:
    import pandas as pd

# The creation date in the document properties: no run time there. (openpyxl stamps the
# "modified" property and the zip entries with the time of saving, so the file's bytes still
# differ between runs; its cells do not.)
FIXED_TIME = dt.datetime(2000, 1, 1)
SKIP = ("provenance", "units")  # no tables: provenance's scalars are key figures
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
        if here == "units":  # the units are given beside each figure
            continue
        if isinstance(v, dict):
            yield from scalars(v, here)
        elif not isinstance(v, list):
            yield here, v


CONTENTS, FIGURES, IMPACT, DEFINITIONS = (
    "Contents",
    "Key figures",
    "Impact results",
    "Definitions and units",
)
CONTENTS_HEAD = ["Sheet", "Table", "Description", "Source in results.json", "Rows", "Columns"]
# A p-value as the page shows it: below 0.001 reads "< 0.001" (an underflowed p is 2.3e-16).
P_FORMAT = '[<0.001]"< 0.001";0.000'
MAX_NAME = 31  # Excel's limit on a sheet name
BOLD = Font(bold=True)
_UNIT_KIND: dict[str, Kind] = {
    "share (0-1)": "share",
    "p-value": "p",
    "£": "money",
    "ratio": "ratio",
    "admissions per 1,000 person-years": "rate",
    "percent change": "percent",
}


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list):
        v = json.dumps(v, default=str)
    return neutralise(v)


def _row(values: list[Any]) -> list[Any]:
    return [_cell(v) for v in values]


def number_format(kind: Kind) -> str:
    """The Excel number format of a column kind (:data:`EXCEL_FORMAT`; p-values as the page)."""
    return P_FORMAT if kind == "p" else EXCEL_FORMAT[kind]


def _kind(code: str, where: str, values: list[Any]) -> Kind:
    """The kind of a column (or figure): by its unit where that decides, else by its name and
    values (:func:`careval.report.format.column_kind`)."""
    u = unit(where)
    if u in _UNIT_KIND:
        return _UNIT_KIND[u]
    if u.startswith("£"):
        return "money"
    kind = column_kind(code, values)
    if (
        kind == "number"
        and values
        and all(isinstance(v, int) and not isinstance(v, bool) for v in values if v is not None)
    ):
        return "count"
    return kind


def sheet_name(readable: str, used: set[str]) -> str:
    """A unique sheet name from a table's readable name: Excel's forbidden characters dropped,
    31 characters at most (cut at a word), a number added to a repeated name."""
    base = re.sub(r"[\[\]:*?/\\]", " ", readable).strip(" '") or "Table"
    base = re.sub(r"\s+", " ", base)
    if len(base) > MAX_NAME:
        cut = base[:MAX_NAME]
        whole = base[MAX_NAME] == " "  # the cut falls between words
        base = cut if whole or " " not in cut[10:] else cut.rsplit(" ", 1)[0]
    name, i = base, 1
    while name.lower() in used:
        i += 1
        tail = f" ({i})"
        name = base[: MAX_NAME - len(tail)].rstrip() + tail
    used.add(name.lower())
    return name


def _headers(codes: list[str]) -> list[str]:
    """The human labels of a table's columns, unique within the table."""
    labels = [label(c) for c in codes]
    return [
        f"{lab} ({c})" if labels.count(lab) > 1 else lab
        for lab, c in zip(labels, codes, strict=True)
    ]


def _finish(ws: Worksheet, kinds: Sequence[Kind | None], n_rows: int) -> None:
    """Bold, frozen, filtered header; number formats by column; widths fitted to content."""
    for c in ws[1]:
        c.font = BOLD
        c.alignment = Alignment(wrap_text=False, vertical="top")
    ws.freeze_panes = "A2"
    if ws.max_column and n_rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(ws.max_column)}{n_rows + 1}"
    for j, col in enumerate(ws.iter_cols(min_row=1, max_row=n_rows + 1), start=1):
        kind = kinds[j - 1] if j - 1 < len(kinds) else None
        width = 8
        for i, c in enumerate(col):
            v = c.value
            if i and isinstance(v, int | float) and not isinstance(v, bool):
                c.number_format = number_format(kind if kind not in (None, "text") else "number")
                shown = 12 if kind in ("p", "share", "ratio") else len(f"{v:,.2f}")
            else:
                shown = len(str(v)) if v is not None else 0
            width = max(width, min(shown + 2, 60))
        ws.column_dimensions[get_column_letter(j)].width = width


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def column_unit(where: str, code: str, values: list[Any]) -> str:
    """The unit of a table's column: its place's unit (:func:`unit`), or ``text`` for a
    column that holds no number."""
    if values and not any(_is_number(v) for v in values) and any(v is not None for v in values):
        return "text"
    return unit(f"{where}[].{code}")


def _table_sheet(ws: Worksheet, where: str, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """One table on ``ws``; returns its columns' code names and units."""
    codes = list(dict.fromkeys(k for r in rows for k in r))
    units = [column_unit(where, k, [r.get(k) for r in rows]) for k in codes]
    ws.append(_row(_headers(codes)))
    for c, code, u in zip(ws[1], codes, units, strict=True):
        c.comment = Comment(f"Code name: {code}\nUnit: {u}", "careval")
    for r in rows:
        ws.append(_row([r.get(k) for k in codes]))
    kinds = [_kind(k, f"{where}[].{k}", [r.get(k) for r in rows]) for k in codes]
    _finish(ws, kinds, len(rows))
    return list(zip(codes, units, strict=True))


DIAGNOSTIC_LABELS = {key: text for key, text, _worse in DIAGNOSTICS}


def _impact_sheet(ws: Worksheet, results: dict[str, Any]) -> int:
    """The matched study's results, one row per outcome; returns the number of rows."""
    impact = results.get("impact", {})
    outcomes = dict(impact.get("outcomes", {}) or {})
    if isinstance(impact.get("mortality"), dict) and "rate_ratio" in impact["mortality"]:
        outcomes["deaths"] = impact["mortality"]  # deaths after entry, as a rate ratio too
    head: list[tuple[str, Kind]] = [
        ("Outcome", "text"),
        ("Rate ratio", "ratio"),
        ("95% CI low", "ratio"),
        ("95% CI high", "ratio"),
        ("Change", "share"),
        ("Difference (£ per person-month)", "money"),
        ("Difference 95% CI low", "money"),
        ("Difference 95% CI high", "money"),
        ("p-value", "p"),
        ("Calibrated 95% CI low", "ratio"),
        ("Calibrated 95% CI high", "ratio"),
        ("For decisions", "text"),
        ("Care-planned", "count"),
        ("Matched controls", "count"),
        ("Model", "text"),
    ]
    ws.append([h for h, _ in head])
    for name, e in outcomes.items():
        rr = e.get("rate_ratio")
        money = e.get("rate_ratio") is None  # a cost: a difference in £, not a ratio
        cal = e.get("calibrated") or {}
        diag = e.get("diagnostics")
        verdict = (
            None
            if not isinstance(diag, dict)
            else "no: " + "; ".join(DIAGNOSTIC_LABELS.get(k, k) for k in diag["failed"])
            if diag.get("failed")
            else "yes"
        )
        ws.append(
            _row(
                [
                    label(name),
                    rr,
                    e.get("rate_ratio_ci_low"),
                    e.get("rate_ratio_ci_high"),
                    round(rr - 1, 10) if isinstance(rr, int | float) else None,
                    e.get("estimate") if money else None,
                    e.get("ci_low") if money else None,
                    e.get("ci_high") if money else None,
                    e.get("p_value"),
                    cal.get("rate_ratio_ci_low"),
                    cal.get("rate_ratio_ci_high"),
                    verdict,
                    e.get("n_treated"),
                    e.get("n_controls"),
                    label(str(e.get("model") or "")) if e.get("model") else None,
                ]
            )
        )
    kinds: list[Kind | None] = [k for _, k in head]
    _finish(ws, kinds, len(outcomes))
    return len(outcomes)


def _figure_label(where: str) -> str:
    """A key figure's label: the human labels of its path's parts."""
    return " \u203a ".join(label(p) for p in where.split("."))


def write_workbook(results: dict[str, Any], path: Path) -> list[str]:
    """Write the tables of ``results`` to ``path``; returns the table sheets' names."""
    wb = Workbook()
    contents = wb.active
    assert contents is not None
    contents.title = CONTENTS
    contents.append(CONTENTS_HEAD)
    figures = wb.create_sheet(FIGURES)
    impact = wb.create_sheet(IMPACT)
    definitions = wb.create_sheet(DEFINITIONS)
    used = {n.lower() for n in (CONTENTS, FIGURES, IMPACT, DEFINITIONS)}
    n_impact = _impact_sheet(impact, results)
    contents.append(
        _row(
            [
                IMPACT,
                "Impact results",
                "The matched study: one row per outcome, the rate "
                "ratio with its 95% CI, the change, the p-value and the groups compared.",
                "impact.outcomes",
                n_impact,
                "",
            ]
        )
    )
    names: list[str] = []
    columns: dict[tuple[str, str], list[str]] = {}  # (code name, unit) -> sheets
    found_tables = [(w, w, rows) for w, rows in tables(results)] + survival_tables(results)
    for where, source, rows in found_tables:
        readable, text = describe(where)
        name = sheet_name(readable, used)
        names.append(name)
        described = _table_sheet(wb.create_sheet(name), where, rows)
        codes = ", ".join(c for c, _ in described)
        contents.append(_row([name, readable, text, source, len(rows), codes]))
        for code_unit in described:
            columns.setdefault(code_unit, []).append(name)
    figures.append(["Figure", "Value", "Unit", "Source in results.json"])
    found = list(scalars(results))
    for where, v in found:
        u = unit(where) if _is_number(v) else ""
        figures.append(_row([_figure_label(where), v, u, where]))
    fig_kinds: list[Kind | None] = ["text", "number", "text", "text"]
    _finish(figures, fig_kinds, len(found))
    for row, (where, v) in zip(figures.iter_rows(min_row=2, max_col=2), found, strict=True):
        if isinstance(v, int | float) and not isinstance(v, bool):
            row[1].number_format = number_format(_kind(where.rsplit(".", 1)[-1], where, [v]))
    definitions.append(["Column", "Code name", "Meaning", "Unit", "Sheets"])
    # One row per column and unit: a name whose unit differs between tables (a 95% CI in
    # percent change in Table 2, a log rate ratio in the horizons) has a row for each.
    for (code, u), sheets in sorted(
        columns.items(), key=lambda kv: (label(kv[0][0]).lower(), kv[0])
    ):
        definitions.append(_row([label(code), code, meaning(code, u), u, ", ".join(sheets)]))
    plain: list[Kind | None] = ["text"] * 5
    _finish(definitions, plain, len(columns))
    _finish(contents, [*plain[:4], "count", "text"], len(names) + 1)
    contents.column_dimensions["F"].width = 60
    contents.append([])
    contents.append(_row(["Key figures", "", "Every scalar figure with its unit.", "", len(found)]))
    contents.append(_row([DEFINITIONS, "", "Every column's label, code name, meaning and unit."]))
    contents["E" + str(contents.max_row - 1)].number_format = EXCEL_FORMAT["count"]
    wb.properties.created = FIXED_TIME
    wb.save(path)
    return names


def sheet_columns(wb: Any) -> dict[str, tuple[str, list[str]]]:
    """Each table sheet's source path and its columns' code names, from the Contents sheet
    (readable from a workbook opened read-only: for a program that needs the code names)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for row in wb[CONTENTS].iter_rows(min_row=2, values_only=True):
        if row and row[0] and len(row) >= 6 and row[3] and row[5]:
            out[str(row[0])] = (str(row[3]), str(row[5]).split(", "))
    return out
