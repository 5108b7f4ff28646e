"""Check a dataset against the canonical model and report every problem at once.

Every rule comes from :mod:`careval.data.schema`; nothing here names a particular table. Row
rules of one table are counted in a single aggregate query in the engine; an example row is
fetched only for the rules that fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from careval.data.access import Dataset
from careval.data.schema import TABLES, Column, Table
from careval.errors import DataValidationError, Problem

EXAMPLE_CHARS = 200


@dataclass(frozen=True)
class _Rule:
    column: str
    rule: str
    allowed: str
    bad: Callable[..., ir.BooleanValue]  # called with the table; true on offending rows
    show: tuple[str, ...]  # columns to show in the example


def _type_ok(expected: str, found: pa.DataType) -> bool:
    return {
        "string": pa.types.is_string(found) or pa.types.is_large_string(found),
        "int": pa.types.is_integer(found),
        "float": pa.types.is_floating(found) or pa.types.is_integer(found),
        "date": pa.types.is_date(found),
        "bool": pa.types.is_boolean(found),
    }[expected]


def _column_rules(col: Column) -> list[_Rule]:
    n = col.name
    rules = []
    if not col.nullable:
        rules.append(
            _Rule(n, "missing values", "a value in every row", lambda t, n=n: t[n].isnull(), (n,))
        )
    if col.allowed:
        allowed = list(col.allowed)
        rules.append(
            _Rule(
                n,
                "value not allowed",
                "one of " + ", ".join(allowed),
                lambda t, n=n, a=allowed: t[n].notnull() & ~t[n].isin(a),
                (n,),
            )
        )
    if col.min is not None or col.max is not None:
        lo, hi = col.min, col.max
        text = f"{lo:g} to {hi:g}" if lo is not None and hi is not None else f"at least {lo:g}"

        def out_of_range(
            t: ir.Table, n: str = n, lo: float | None = lo, hi: float | None = hi
        ) -> ir.BooleanValue:
            bad = ibis.literal(False)
            if lo is not None:
                bad = bad | (t[n] < lo)
            if hi is not None:
                bad = bad | (t[n] > hi)
            return bad

        rules.append(_Rule(n, "value out of range", text, out_of_range, (n,)))
    if col.pattern:
        pat = col.pattern
        rules.append(
            _Rule(
                n,
                "malformed value",
                f"matches {pat}",
                lambda t, n=n, p=pat: t[n].notnull() & ~t[n].re_search(p),
                (n,),
            )
        )
    return rules


def _table_rules(table: Table, cols: set[str]) -> list[_Rule]:
    rules = [r for c in table.columns if c.name in cols for r in _column_rules(c)]
    for a, b in table.date_order:
        if {a, b} <= cols:
            rules.append(
                _Rule(
                    f"{a},{b}",
                    f"{b} before {a}",
                    f"{b} on or after {a}",
                    lambda t, a=a, b=b: t[b] < t[a],
                    (a, b),
                )
            )
    for a, b in table.value_le:
        if {a, b} <= cols:
            rules.append(
                _Rule(
                    f"{a},{b}",
                    f"{a} greater than {b}",
                    f"{a} at most {b}",
                    lambda t, a=a, b=b: t[a] > t[b],
                    (a, b),
                )
            )
    if table.code_patterns and {table.code_patterns[0], table.code_patterns[1]} <= cols:
        sys_col, code_col, pats = table.code_patterns

        def bad_code(t: ir.Table, s: str = sys_col, c: str = code_col) -> ir.BooleanValue:
            bad = ibis.literal(False)
            for system, pat in pats.items():
                bad = bad | ((t[s] == system) & ~t[c].re_search(pat))
            return bad

        text = "; ".join(f"{k}: {v}" for k, v in pats.items())
        rules.append(
            _Rule(
                code_col, f"code malformed for its {sys_col}", text, bad_code, (sys_col, code_col)
            )
        )
    if table.ranges_by and {table.ranges_by[0], table.ranges_by[1]} <= cols:
        by, val, ranges = table.ranges_by

        def implausible(t: ir.Table, by: str = by, val: str = val) -> ir.BooleanValue:
            bad = ibis.literal(False)
            for cat, (lo, hi) in ranges.items():
                bad = bad | ((t[by] == cat) & ((t[val] < lo) | (t[val] > hi)))
            return bad

        text = "; ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in ranges.items())
        rules.append(_Rule(val, f"{val} implausible for its {by}", text, implausible, (by, val)))
    return rules


def _example(t: ir.Table, bad: ir.BooleanValue, show: tuple[str, ...], key: tuple[str, ...]) -> str:
    cols = list(dict.fromkeys([*key, *show]))
    row = t.filter(bad).select(*cols).limit(1).to_pyarrow().to_pylist()
    if not row:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in row[0].items())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 3] + "..."


def _key_of(table: Table, cols: set[str]) -> tuple[str, ...]:
    key = tuple(k for k in table.key if k in cols)
    if not key and "person_id" in cols:
        key = ("person_id",)
    return key


def _check_table(ds: Dataset, table: Table) -> list[Problem]:
    name = table.name
    schema = pq.read_schema(ds.file(name))
    found = {f.name: f.type for f in schema}
    problems: list[Problem] = []
    usable: set[str] = set()
    for col in table.columns:
        if col.name not in found:
            problems.append(
                Problem(
                    name,
                    col.name,
                    "required column missing",
                    1,
                    f"columns present: {', '.join(found)}"[:EXAMPLE_CHARS],
                    f"a {col.type} column",
                )
            )
        elif not _type_ok(col.type, found[col.name]):
            problems.append(
                Problem(
                    name, col.name, "wrong type", 1, "", f"{col.type} (found {found[col.name]})"
                )
            )
        else:
            usable.add(col.name)
    extra = [c for c in found if c not in table.column_names]
    if extra:
        problems.append(
            Problem(
                name,
                ",".join(extra),
                "columns not in the model (ignored)",
                len(extra),
                "",
                "",
                severity="warning",
            )
        )
    t = ds.table(name)
    key = _key_of(table, usable)
    rules = _table_rules(table, usable)
    if rules:
        counts = (
            t.aggregate(
                **{
                    f"r{i}": r.bad(t).fill_null(False).cast("int64").sum()
                    for i, r in enumerate(rules)
                }
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        for i, r in enumerate(rules):
            n = int(counts[f"r{i}"] or 0)
            if n:
                ex = _example(t, r.bad(t).fill_null(False), r.show, key)
                problems.append(Problem(name, r.column, r.rule, n, ex, r.allowed))
    if table.key and set(table.key) <= usable:
        k = list(table.key)
        dup = t.group_by(k).agg(_n=ibis._.count()).filter(ibis._._n > 1)
        n = int(dup._n.sum().execute() or 0)
        if n:
            ex = ", ".join(
                f"{c}={v}" for c, v in dup.limit(1).to_pyarrow().to_pylist()[0].items() if c != "_n"
            )
            problems.append(
                Problem(
                    name,
                    ",".join(k),
                    "duplicate key",
                    n,
                    ex,
                    "each key once (count: rows sharing a key)",
                )
            )
    problems += _links(ds, table, t, usable, key)
    return problems


def _links(
    ds: Dataset, table: Table, t: ir.Table, usable: set[str], key: tuple[str, ...]
) -> list[Problem]:
    problems = []
    for col in table.columns:
        if not col.references or col.name not in usable:
            continue
        ref_table, ref_col = col.references.split(".")
        if not ds.has(ref_table):
            problems.append(
                Problem(
                    table.name,
                    col.name,
                    f"cannot check: {ref_table} absent",
                    1,
                    "",
                    "",
                    severity="warning",
                )
            )
            continue
        ref = ds.table(ref_table).select(_ref=ds.table(ref_table)[ref_col]).distinct()
        orphans = t.filter(t[col.name].notnull()).anti_join(ref, t[col.name] == ref._ref)
        n = int(orphans.count().execute())
        if n:
            row = orphans.select(*dict.fromkeys([*key, col.name])).limit(1).to_pyarrow()
            ex = ", ".join(f"{c}={v}" for c, v in row.to_pylist()[0].items())
            problems.append(
                Problem(
                    table.name,
                    col.name,
                    f"not found in {col.references}",
                    n,
                    ex,
                    f"values present in {col.references}",
                )
            )
    if table.life_events and ds.has("persons") and "person_id" in usable:
        p = ds.table("persons").select("person_id", _birth="birth_month", _death="death_date")
        joined = t.join(p, "person_id")
        for d in table.life_events:
            if d not in usable:
                continue
            rules = (
                (
                    f"{d} after death",
                    "on or before death_date",
                    joined[d] > joined._death,
                    "_death",
                ),
                (
                    f"{d} before birth month",
                    "on or after birth_month",
                    joined[d] < joined._birth,
                    "_birth",
                ),
            )
            for rule, allowed, bad, other in rules:
                rows = joined.filter(bad.fill_null(False))
                n = int(rows.count().execute())
                if n:
                    cols = list(dict.fromkeys([*key, "person_id", d, other]))
                    first = rows.select(*cols).limit(1).to_pyarrow().to_pylist()[0]
                    ex = ", ".join(
                        f"{c.lstrip('_')}{'_date' if c == '_death' else ''}={v}"
                        for c, v in first.items()
                    )
                    problems.append(Problem(table.name, d, rule, n, ex, allowed))
    return problems


def validate(path: str | Path) -> list[Problem]:
    """Every problem in the dataset at ``path`` (errors and warnings), in model order."""
    problems: list[Problem] = []
    with Dataset(Path(path)) as ds:
        for table in TABLES.values():
            if not ds.has(table.name):
                if table.required:
                    problems.append(
                        Problem(
                            table.name,
                            "*",
                            "required table missing",
                            1,
                            "",
                            f"{table.name}.parquet in {path}",
                        )
                    )
                continue
            problems += _check_table(ds, table)
    return problems


def require_valid(path: str | Path) -> list[Problem]:
    """Raise :class:`DataValidationError` listing every error; otherwise return the warnings."""
    problems = validate(path)
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(str(path), problems)
    return problems
