"""What every validation rule shares: a rule bound to a relation, one query that counts many rules,
the context of one validation run, and short example rows that never show an identifying value.

A problem names its first offending rows by number: validation reads each table with its row
number in the file (:data:`ROW`, from 1), so a message can point at a row without showing what
it holds. Values (ids, dates, codes) are shown only when the context allows them: for data
flagged synthetic, or when the user asked for examples (``careval --show-examples``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir

from careval.data.access import Dataset
from careval.data.schema import TABLES, Severity
from careval.errors import Problem

EXAMPLE_CHARS = 200  # an example row is never longer than this
VALUE_CHARS = 40  # nor any one value in it
# Quasi-identifiers (birth month, death date, LSOA) are never shown: an example names the row by
# its pseudonymous identifiers and the values at fault.
HIDDEN = frozenset(c.name for t in TABLES.values() for c in t.columns if c.identifying)
ROW = "_careval_row"  # a row's number in its table's file, from 1 (not a column of the model)
ROWS_SHOWN = 5  # a problem names at most this many of its rows


@dataclass(frozen=True)
class Rule:
    """One row rule bound to a relation: ``bad`` is true on the offending rows."""

    column: str
    rule: str
    allowed: str
    bad: ir.BooleanValue
    show: tuple[str, ...]  # columns named in the example besides the row's key
    severity: Severity = "error"


@dataclass
class Context:
    """What the rules of one validation run share.

    ``ok`` holds each present table's usable columns (present and of the right type; none for
    an empty required table), ``people`` each person's birth month and death date once persons
    is checked, and ``extract`` the latest date allowed, with ``extract_source`` saying where it
    came from.
    """

    ds: Dataset
    extract: dt.date
    extract_source: str
    values: bool = True  # whether examples may show values (synthetic data, or asked for)
    ok: dict[str, set[str]] = field(default_factory=dict)
    empty: set[str] = field(default_factory=set)
    people: ir.Table | None = None
    _numbered: dict[str, ir.Table] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> ir.Table:
        """Table ``name`` with its row numbers in :data:`ROW` (without them where the engine
        cannot number a file's rows: PySpark, or a file with a column named
        ``file_row_number``)."""
        if name not in self._numbered:
            self._numbered[name] = _numbered(self.ds, name)
        return self._numbered[name]

    def usable(self, table: str, *columns: str) -> bool:
        """Whether ``table`` is present, not empty, and has every one of ``columns`` usable."""
        return set(columns) <= self.ok.get(table, set())

    def key(self, table: str) -> list[str]:
        """The usable key columns of ``table``, and person_id when it has one: an example's id."""
        usable = self.ok.get(table, set())
        key = [k for k in TABLES[table].key if k in usable]
        if "person_id" in usable and "person_id" not in key:
            key.append("person_id")
        return key

    @property
    def bound(self) -> str:
        """The extract date and where it came from, for a rule's ``allowed`` text."""
        return f"{self.extract.isoformat()} ({self.extract_source})"


def _numbered(ds: Dataset, name: str) -> ir.Table:
    """``ds.table(name)`` with :data:`ROW`, read by DuckDB's ``file_row_number``."""
    t = ds.table(name)  # raises DatasetError when the table is absent
    # A column of the file with the name of ROW is not in the model: no rule reads it, and it
    # is never taken for the row numbers.
    unnumbered = t.drop(ROW) if ROW in t.columns else t
    if ds.backend != "duckdb":
        return unnumbered
    try:
        n = ds.con.read_parquet(
            str(ds.file(name)), table_name=f"_careval_numbered_{name}", file_row_number=True
        )
    except Exception:  # e.g. the file has a column named file_row_number
        return unnumbered
    return n.mutate(**{ROW: n.file_row_number + 1}).drop("file_row_number")


def clip(text: str, chars: int = EXAMPLE_CHARS) -> str:
    """``text`` cut to ``chars`` characters, with an ellipsis when cut."""
    return text if len(text) <= chars else text[: chars - 3] + "..."


def render(row: dict[str, Any]) -> str:
    """One row as ``col=value, col=value``, at most :data:`EXAMPLE_CHARS` long."""
    return clip(
        ", ".join(
            f"{k}={clip('null' if v is None else str(v), VALUE_CHARS)}" for k, v in row.items()
        )
    )


def example(
    ctx: Context, rel: ir.Table, bad: ir.BooleanValue | None, cols: list[str]
) -> tuple[tuple[int, ...], str]:
    """The first rows of ``rel`` where ``bad`` holds: their numbers (up to :data:`ROWS_SHOWN`)
    and, when ``ctx.values`` allows, the first one's ``cols`` (never a hidden one)."""
    shown = [c for c in dict.fromkeys(cols) if c not in HIDDEN] if ctx.values else []
    numbered = ROW in rel.columns
    if not shown and not numbered:
        return (), ""
    rel = rel if bad is None else rel.filter(bad)
    if numbered:
        rel = rel.order_by(ROW)
    found = rel.select(*([ROW] if numbered else []), *shown).limit(ROWS_SHOWN if numbered else 1)
    first = found.to_pyarrow().to_pylist()
    rows = tuple(int(r[ROW]) for r in first) if numbered else ()
    values = render({c: first[0][c] for c in shown}) if first and shown else ""
    return rows, values


def run(
    ctx: Context, table: str, rel: ir.Table, rules: list[Rule], key: list[str]
) -> list[Problem]:
    """Count every rule in one query over ``rel``; fetch an example for each that fails."""
    if not rules:
        return []
    counts = (
        rel.aggregate(
            **{f"r{i}": rel.count(where=r.bad.fill_null(False)) for i, r in enumerate(rules)}
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    out = []
    for i, r in enumerate(rules):
        if n := int(counts[f"r{i}"] or 0):
            rows, ex = example(ctx, rel, r.bad.fill_null(False), [*key, *r.show])
            out.append(
                Problem(table, r.column, r.rule, n, ex, r.allowed, severity=r.severity, rows=rows)
            )
    return out


def rows_of(
    ctx: Context,
    table: str,
    rel: ir.Table,
    column: str,
    rule: str,
    allowed: str,
    cols: list[str],
    severity: Severity = "error",
) -> list[Problem]:
    """One problem counting every row of ``rel`` (the offending rows, found by a join)."""
    if not (n := int(rel.count().to_pyarrow().as_py())):
        return []
    rows, ex = example(ctx, rel, None, cols)
    return [Problem(table, column, rule, n, ex, allowed, severity=severity, rows=rows)]
