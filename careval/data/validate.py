"""Check a dataset against the canonical model and report every problem at once.

Every rule comes from :mod:`careval.data.schema`; nothing here names a particular table. The
checks run in the engine through the Ibis tables of :class:`~careval.data.access.Dataset`: the
row rules of one table are counted in a single aggregate query, and an example row is fetched
only for the rules that fail. Columns that are missing or of the wrong type are reported once
and left out of every value rule, so one broken column never hides the others' problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from careval.data.access import Dataset
from careval.data.schema import TABLES, Column, Table
from careval.errors import DataValidationError, Problem

EXAMPLE_CHARS = 200  # an example row is never longer than this
VALUE_CHARS = 40  # nor any one value in it
BIRTH, DEATH = "person_birth_month", "person_death_date"  # persons' dates joined to events

_TYPE_OK = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "int": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "date": pa.types.is_date,
    "bool": pa.types.is_boolean,
}


@dataclass(frozen=True)
class _Rule:
    """One row rule bound to a relation: ``bad`` is true on the offending rows."""

    column: str
    rule: str
    allowed: str
    bad: ir.BooleanValue
    show: tuple[str, ...]  # columns named in the example besides the row's key


def _arrow_types(file: Path) -> dict[str, pa.DataType]:
    """Column name -> Arrow type from the Parquet schema (dictionaries as their values)."""
    out = {}
    for f in pq.read_schema(file):
        out[f.name] = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
    return out


def _clip(text: str, chars: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 3] + "..."


def _render(row: dict[str, Any]) -> str:
    """One row as ``col=value, col=value``, at most :data:`EXAMPLE_CHARS` long."""
    return _clip(
        ", ".join(
            f"{k}={_clip('null' if v is None else str(v), VALUE_CHARS)}" for k, v in row.items()
        )
    )


def _example(rel: ir.Table, bad: ir.BooleanValue | None, cols: list[str]) -> str:
    """The first row of ``rel`` where ``bad`` holds, showing ``cols``."""
    rows = (rel if bad is None else rel.filter(bad)).select(*dict.fromkeys(cols)).limit(1)
    first = rows.to_pyarrow().to_pylist()
    return _render(first[0]) if first else ""


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f"at least {lo:g}" if lo is not None else f"at most {hi:g}"


def _outside(v: ir.NumericValue, lo: float | None, hi: float | None) -> ir.BooleanValue:
    if lo is not None and hi is not None:
        return (v < lo) | (v > hi)
    return v < lo if lo is not None else v > hi


def _matches(v: ir.StringValue, pattern: str) -> ir.BooleanValue:
    """Whether the whole value matches ``pattern`` (anchored, whatever the pattern says)."""
    return v.re_search(f"^(?:{pattern})$")


def _column_rules(col: Column, t: ir.Table) -> list[_Rule]:
    v, n, rules = t[col.name], col.name, []
    if not col.nullable:
        rules.append(_Rule(n, "missing values", "a value in every row", v.isnull(), (n,)))
    if col.type == "float":  # NaN is not null, and would slip past range checks
        rules.append(_Rule(n, "not a number (NaN)", "a number", v.isnan(), (n,)))
    if col.allowed:
        rules.append(
            _Rule(
                n,
                "value not allowed",
                "one of " + ", ".join(col.allowed),
                v.notnull() & ~v.isin(col.allowed),
                (n,),
            )
        )
    if col.min is not None or col.max is not None:
        rules.append(
            _Rule(
                n,
                "value out of range",
                _bounds(col.min, col.max),
                _outside(v, col.min, col.max),
                (n,),
            )
        )
    if col.pattern:
        text = v if col.type == "string" else v.cast("string")
        rules.append(
            _Rule(
                n,
                "malformed value",
                f"matches {col.pattern}",
                v.notnull() & ~_matches(text, col.pattern),
                (n,),
            )
        )
    return rules


def _row_rules(table: Table, t: ir.Table, ok: set[str]) -> list[_Rule]:
    """Column rules and the table's row rules on the usable columns ``ok``."""
    rules = [r for c in table.columns if c.name in ok for r in _column_rules(c, t)]
    for a, b in table.date_order:
        if {a, b} <= ok:
            rules.append(
                _Rule(f"{a},{b}", f"{b} before {a}", f"{b} on or after {a}", t[b] < t[a], (a, b))
            )
    for a, b in table.value_le:
        if {a, b} <= ok:
            rules.append(
                _Rule(f"{a},{b}", f"{a} greater than {b}", f"{a} at most {b}", t[a] > t[b], (a, b))
            )
    if table.code_patterns and set(table.code_patterns[:2]) <= ok:
        s, c, pats = table.code_patterns
        bad = [(t[s] == k) & ~_matches(t[c], p) for k, p in pats.items()]
        rules.append(
            _Rule(
                c,
                f"{c} malformed for its {s}",
                "; ".join(f"{k}: {p}" for k, p in pats.items()),
                _any(bad),
                (s, c),
            )
        )
    if table.ranges_by and set(table.ranges_by[:2]) <= ok:
        by, val, ranges = table.ranges_by
        bad = [(t[by] == k) & _outside(t[val], lo, hi) for k, (lo, hi) in ranges.items()]
        rules.append(
            _Rule(
                val,
                f"{val} implausible for its {by}",
                "; ".join(f"{k} {lo:g} to {hi:g}" for k, (lo, hi) in ranges.items()),
                _any(bad),
                (by, val),
            )
        )
    return rules


def _any(conditions: list[ir.BooleanValue]) -> ir.BooleanValue:
    out = conditions[0]
    for c in conditions[1:]:
        out = out | c
    return out


def _run(table: str, rel: ir.Table, rules: list[_Rule], key: list[str]) -> list[Problem]:
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
            ex = _example(rel, r.bad.fill_null(False), [*key, *r.show])
            out.append(Problem(table, r.column, r.rule, n, ex, r.allowed))
    return out


def _columns(
    table: Table, t: ir.Table, found: dict[str, pa.DataType]
) -> tuple[list[Problem], set[str]]:
    """Missing, mistyped and unknown columns; and the set of usable (present, typed) ones."""
    problems, ok = [], set()
    key = [k for k in (*table.key, "person_id") if k in found]
    for col in table.columns:
        if col.name not in found:
            problems.append(
                Problem(
                    table.name,
                    col.name,
                    "required column missing",
                    1,
                    _clip("columns present: " + ", ".join(found)),
                    f"{_a(col.type)} column",
                    counts_rows=False,
                )
            )
        elif not _TYPE_OK[col.type](found[col.name]):
            ex = _example(t, t[col.name].notnull(), [*key, col.name])
            problems.append(
                Problem(
                    table.name,
                    col.name,
                    "wrong type",
                    1,
                    ex,
                    f"{_a(col.type)} (found {found[col.name]})",
                    counts_rows=False,
                )
            )
        else:
            ok.add(col.name)
    extra = [c for c in found if c not in table.column_names]
    if extra:
        problems.append(
            Problem(
                table.name,
                ",".join(extra),
                "columns not in the model (ignored)",
                len(extra),
                "",
                "",
                severity="warning",
                counts_rows=False,
            )
        )
    return problems, ok


def _duplicates(table: Table, t: ir.Table) -> list[Problem]:
    """Rows that share their key with another row (count: rows, not distinct keys)."""
    k = list(table.key)
    # Rows with a null key part are reported as missing values, not as duplicates.
    keyed = t.filter(*[t[c].notnull() for c in k])
    dup = keyed.group_by(k).aggregate(_n=keyed.count()).filter(lambda g: g._n > 1)
    n = int(dup.aggregate(rows=dup._n.sum()).to_pyarrow().to_pylist()[0]["rows"] or 0)
    if not n:
        return []
    ex = _example(dup.rename(rows_with_this_key="_n"), None, [*k, "rows_with_this_key"])
    return [
        Problem(
            table.name,
            ",".join(k),
            "duplicate key",
            n,
            ex,
            "each key in one row only (count: rows that share a key)",
        )
    ]


def _references(
    ds: Dataset, table: Table, t: ir.Table, ok: dict[str, set[str]], key: list[str]
) -> list[Problem]:
    """Non-null values with no match in the referenced table (anti-join)."""
    out = []
    for col in table.columns:
        if not col.references or col.name not in ok[table.name]:
            continue
        rt, rc = col.references.split(".")
        if rc not in ok.get(rt, set()):
            why = "absent" if rt not in ok else f"has no usable {rc}"
            out.append(
                Problem(
                    table.name,
                    col.name,
                    f"cannot check: {rt} {why}",
                    1,
                    "",
                    f"values present in {col.references}",
                    severity="warning",
                    counts_rows=False,
                )
            )
            continue
        ref = ds.table(rt)
        orphans = t.filter(t[col.name].notnull()).anti_join(ref, t[col.name] == ref[rc])
        if n := int(orphans.count().to_pyarrow().as_py()):
            out.append(
                Problem(
                    table.name,
                    col.name,
                    f"not found in {col.references}",
                    n,
                    _example(orphans, None, [*key, col.name]),
                    f"values present in {col.references}",
                )
            )
    return out


def _people(ds: Dataset, ok: dict[str, set[str]], unique: bool) -> ir.Table | None:
    """Each person's birth month and death date, or None when persons cannot be used."""
    if not {"person_id", "birth_month", "death_date"} <= ok.get("persons", set()):
        return None
    p = ds.table("persons")
    if unique:
        return p.select("person_id", **{BIRTH: p.birth_month, DEATH: p.death_date})
    # Duplicate persons (reported there): one row each, the most lenient dates.
    return p.group_by("person_id").aggregate(
        **{BIRTH: p.birth_month.min(), DEATH: p.death_date.max()}
    )


def _life_events(
    table: Table, t: ir.Table, people: ir.Table | None, ok: set[str], key: list[str]
) -> list[Problem]:
    """Event dates before the person's birth month or after their death, in one query."""
    dates = [d for d in table.life_events if d in ok]
    if not dates or people is None or "person_id" not in ok:
        return []
    j = t.join(people, "person_id")
    rules = []
    for d in dates:
        rules.append(
            _Rule(
                d,
                f"{d} before birth month",
                f"on or after {BIRTH}",
                j[d] < j[BIRTH],
                ("person_id", d, BIRTH),
            )
        )
        rules.append(
            _Rule(
                d,
                f"{d} after death",
                f"on or before {DEATH}",
                j[d] > j[DEATH],
                ("person_id", d, DEATH),
            )
        )
    return _run(table.name, j, rules, key)


def _check(
    ds: Dataset, table: Table, ok: dict[str, set[str]], people: ir.Table | None
) -> list[Problem]:
    """Every value rule of one table on its usable columns."""
    t, usable = ds.table(table.name), ok[table.name]
    key = [k for k in table.key if k in usable]
    if "person_id" in usable and "person_id" not in key:
        key.append("person_id")
    problems = _run(table.name, t, _row_rules(table, t, usable), key)
    if table.key and set(table.key) <= usable:
        problems += _duplicates(table, t)
    problems += _references(ds, table, t, ok, key)
    problems += _life_events(table, t, people, usable, key)
    return problems


def validate(path: str | Path) -> list[Problem]:
    """Check every table present in a dataset against the canonical model.

    Parameters
    ----------
    path
        Dataset directory (one ``<table>.parquet`` per canonical table).

    Returns
    -------
    list of Problem
        Every problem found, errors and warnings, table by table in model order; empty when
        the dataset is valid.

    Raises
    ------
    DatasetError
        The directory is missing, holds no canonical table or has an unreadable file.
    """
    with Dataset(Path(path)) as ds:
        if ds.backend == "duckdb":
            ds.con.raw_sql("SET enable_progress_bar = false")
        found: dict[str, list[Problem]] = {}
        ok: dict[str, set[str]] = {}
        for table in TABLES.values():
            if ds.has(table.name):
                types = _arrow_types(ds.file(table.name))
                found[table.name], ok[table.name] = _columns(table, ds.table(table.name), types)
            elif table.required:
                found[table.name] = [
                    Problem(
                        table.name,
                        "*",
                        "required table missing",
                        1,
                        "",
                        f"{table.name}.parquet in the dataset directory",
                        counts_rows=False,
                    )
                ]
        people = None  # persons' dates, known once persons is checked (first)
        for name in sorted(ok, key=lambda n: n != "persons"):
            found[name] += _check(ds, TABLES[name], ok, people)
            if name == "persons":
                dup = any(p.rule == "duplicate key" for p in found[name])
                people = _people(ds, ok, unique=not dup)
    return [p for name in TABLES for p in found.get(name, [])]


def require_valid(path: str | Path) -> list[Problem]:
    """Validate a dataset and stop on any error.

    Parameters
    ----------
    path
        Dataset directory.

    Returns
    -------
    list of Problem
        The warnings (severity ``"warning"``), when there is no error.

    Raises
    ------
    DataValidationError
        Listing every error, when the dataset breaks any rule of the model.
    """
    problems = validate(path)
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(str(path), problems)
    return problems
