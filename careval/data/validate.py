"""Check a dataset against the canonical model and report every problem at once.

Every rule comes from :mod:`careval.data.schema`; nothing here names a particular table. The
checks run in the engine through the Ibis tables of :class:`~careval.data.access.Dataset`: the
row rules of one table are counted in a single aggregate query, and an example row is fetched
only for the rules that fail. Columns that are missing or of the wrong type are reported once
and left out of every value rule, so one broken column never hides the others' problems; a
required table with no rows is reported once and left out of every rule that would read it.
A problem names its first offending rows by number; their values (ids, dates, codes) are
shown only for data flagged synthetic (``"synthetic": true`` in ``dataset.json``), or when the
caller asks for them (``show_examples``, the CLI's ``--show-examples``).
The rules across rows and tables (lives, ages, registration periods, care plans) are in
:mod:`careval.data.crosscheck`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from careval.data import crosscheck
from careval.data.access import MANIFEST, Dataset
from careval.data.adapters.pseudonymise import nhs_valid_expr
from careval.data.checks import Context, Rule, clip, example, run
from careval.data.schema import EARLIEST_DATE, TABLES, Column, Table
from careval.errors import SHOW_VALUES, ConfigError, DataValidationError, Problem

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_TYPE_OK = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "int": pa.types.is_integer,
    "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "date": pa.types.is_date,
    "bool": pa.types.is_boolean,
}


def _arrow_types(file: Path) -> dict[str, pa.DataType]:
    """Column name -> Arrow type from the Parquet schema (dictionaries as their values)."""
    out = {}
    for f in pq.read_schema(file):
        out[f.name] = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
    return out


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


def _column_rules(col: Column, t: ir.Table, ctx: Context) -> list[Rule]:
    v, n, rules = t[col.name], col.name, []
    if not col.nullable:
        rules.append(Rule(n, "missing values", "a value in every row", v.isnull(), (n,)))
    if col.type == "float":  # NaN is not null, and would slip past range checks
        rules.append(Rule(n, "not a number (NaN)", "a number", v.isnan(), (n,)))
    if col.allowed:
        rules.append(
            Rule(
                n,
                "value not allowed",
                "one of " + ", ".join(col.allowed),
                v.notnull() & ~v.isin(col.allowed),
                (n,),
            )
        )
    if col.min is not None or col.max is not None:
        rules.append(
            Rule(
                n,
                "value out of range",
                _bounds(col.min, col.max),
                _outside(v, col.min, col.max),
                (n,),
            )
        )
    if col.type == "date":
        rules.append(
            Rule(
                n,
                f"date before {EARLIEST_DATE.isoformat()}",
                f"on or after {EARLIEST_DATE.isoformat()}",
                v < EARLIEST_DATE,
                (n,),
            )
        )
        rules.append(
            Rule(
                n,
                "date after the extract date",
                f"on or before {ctx.bound}",
                v > ctx.extract,
                (n,),
            )
        )
    if col.pattern:
        text = v if col.type == "string" else v.cast("string")
        rules.append(
            Rule(
                n,
                "malformed value",
                f"matches {col.pattern}",
                v.notnull() & ~_matches(text, col.pattern),
                (n,),
            )
        )
    return rules


def _row_rules(table: Table, t: ir.Table, ctx: Context) -> list[Rule]:
    """Column rules and the table's row rules on its usable columns."""
    ok = ctx.ok[table.name]
    rules = [r for c in table.columns if c.name in ok for r in _column_rules(c, t, ctx)]
    for a, b in table.date_order:
        if {a, b} <= ok:
            rules.append(
                Rule(f"{a},{b}", f"{b} before {a}", f"{b} on or after {a}", t[b] < t[a], (a, b))
            )
    for a, b in table.value_le:
        if {a, b} <= ok:
            rules.append(
                Rule(f"{a},{b}", f"{a} greater than {b}", f"{a} at most {b}", t[a] > t[b], (a, b))
            )
    if table.code_patterns and set(table.code_patterns[:2]) <= ok:
        s, c, pats = table.code_patterns
        bad = [(t[s] == k) & ~_matches(t[c], p) for k, p in pats.items()]
        rules.append(
            Rule(
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
            Rule(
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


def _columns(
    ctx: Context, table: Table, t: ir.Table, found: dict[str, pa.DataType]
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
                    clip("columns present: " + ", ".join(found)),
                    f"{_a(col.type)} column",
                    counts_rows=False,
                )
            )
        elif not _TYPE_OK[col.type](found[col.name]):
            rows, ex = example(ctx, t, t[col.name].notnull(), [*key, col.name])
            problems.append(
                Problem(
                    table.name,
                    col.name,
                    "wrong type",
                    1,
                    ex,
                    f"{_a(col.type)} (found {found[col.name]})",
                    counts_rows=False,
                    rows=rows[:1],
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


def _duplicates(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Rows that share their key with another row (count: rows, not distinct keys)."""
    k = list(table.key)
    # Rows with a null key part are reported as missing values, not as duplicates.
    keyed = t.filter(*[t[c].notnull() for c in k])
    dup = keyed.group_by(k).aggregate(_n=keyed.count()).filter(lambda g: g._n > 1)
    n = int(dup.aggregate(rows=dup._n.sum()).to_pyarrow().to_pylist()[0]["rows"] or 0)
    if not n:
        return []
    shared = keyed.join(dup.rename(rows_with_this_key="_n"), k)
    rows, ex = example(ctx, shared, None, [*k, "rows_with_this_key"])
    return [
        Problem(
            table.name,
            ",".join(k),
            "duplicate key",
            n,
            ex,
            "each key in one row only (count: rows that share a key)",
            rows=rows,
        )
    ]


def _references(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Non-null values with no match in the referenced table (anti-join)."""
    out, ok = [], ctx.ok
    for col in table.columns:
        if not col.references or col.name not in ok[table.name]:
            continue
        rt, rc = col.references.split(".")
        if rc not in ok.get(rt, set()):
            why = (
                "absent" if rt not in ok else "empty" if rt in ctx.empty else f"has no usable {rc}"
            )
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
        ref = ctx.table(rt)
        orphans = t.filter(t[col.name].notnull()).anti_join(ref, t[col.name] == ref[rc])
        if n := int(orphans.count().to_pyarrow().as_py()):
            rows, ex = example(ctx, orphans, None, [*ctx.key(table.name), col.name])
            out.append(
                Problem(
                    table.name,
                    col.name,
                    f"not found in {col.references}",
                    n,
                    ex,
                    f"values present in {col.references}",
                    rows=rows,
                )
            )
    return out


def _check(ctx: Context, table: Table) -> list[Problem]:
    """Every rule of one table on its usable columns."""
    t, usable = ctx.table(table.name), ctx.ok[table.name]
    problems = run(ctx, table.name, t, _row_rules(table, t, ctx), ctx.key(table.name))
    if table.key and set(table.key) <= usable:
        problems += _duplicates(ctx, table, t)
    problems += _references(ctx, table, t)
    problems += _nhs_numbers(ctx, table, t)
    return problems + crosscheck.check(ctx, table, t)


def _nhs_numbers(ctx: Context, table: Table, t: ir.Table) -> list[Problem]:
    """Id columns of data not flagged synthetic that hold what look like NHS numbers: a warning
    naming the count and rows, never a value (not even with ``show_examples``)."""
    if ctx.ds.synthetic:
        return []
    ids = [
        c.name
        for c in table.columns
        if c.type == "string" and c.name.endswith("_id") and c.name in ctx.ok[table.name]
    ]
    if not ids:
        return []
    looks = [nhs_valid_expr(t[c]) for c in ids]
    counts = t.aggregate(**{f"n{i}": t.count(where=x) for i, x in enumerate(looks)})
    found = counts.to_pyarrow().to_pylist()[0]
    out = []
    for i, (c, x) in enumerate(zip(ids, looks, strict=True)):
        if n := int(found[f"n{i}"] or 0):
            rows, _ = example(ctx, t, x, [])
            out.append(
                Problem(
                    table.name,
                    c,
                    "values that look like NHS numbers (10 digits passing the Modulus 11 check)",
                    n,
                    "",
                    "pseudonymous ids: replace NHS numbers in the extract with careval "
                    "pseudonymise --key-file K --in FILE --columns COLUMN --out FILE",
                    severity="warning",
                    rows=rows,
                )
            )
    return out


def _extract_date(ds: Dataset, given: dt.date | None) -> tuple[dt.date, str, list[Problem]]:
    """The latest date allowed, where it came from, and any problem with the one declared.

    The date given to validation wins over ``extract_date`` in the manifest; without either,
    today's date is the bound and the messages say so.
    """
    problems = []
    today = dt.date.today()
    if given is not None:
        if not isinstance(given, dt.date):
            raise ConfigError(f"extract_date must be a date; got {given!r}")
        if isinstance(given, dt.datetime):
            given = given.date()
        if given > today:  # it would let dates that cannot have happened yet pass
            raise ConfigError(f"the extract date {given} is after today, {today}")
        found, source = given, "the extract date given"
    else:
        raw, found, source = ds.manifest.get("extract_date"), None, f"extract_date in {MANIFEST}"
        if isinstance(raw, str) and _ISO_DATE.match(raw):
            try:
                found = dt.date.fromisoformat(raw)
            except ValueError:
                pass
        if raw is not None and found is None:
            problems.append(
                Problem(
                    MANIFEST,
                    "extract_date",
                    "not a date",
                    1,
                    clip(f"extract_date={raw!r}"),
                    "a date as YYYY-MM-DD",
                    counts_rows=False,
                )
            )
    if found is None:
        why = "is not a date" if problems else "is absent"
        return today, f"today's date: none given, and extract_date in {MANIFEST} {why}", problems
    if found > today:  # it would let dates that cannot have happened yet pass
        problems.append(
            Problem(
                MANIFEST,
                "extract_date",
                "extract date after today",
                1,
                f"extract_date={found.isoformat()}",
                f"on or before today, {today.isoformat()}",
                counts_rows=False,
            )
        )
    return found, source, problems


_JSON_TYPE = {
    str: "a string",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
}


def _synthetic_flag(ds: Dataset) -> list[Problem]:
    """A ``synthetic`` in the manifest that is not a JSON boolean.

    ``"false"`` in quotes is a string, and a string is true to Python's ``bool``: read that
    way, real data would be published without disclosure control. Only ``true`` turns it off
    (:attr:`~careval.data.access.Dataset.synthetic`); the key absent means real data.
    """
    if "synthetic" not in ds.manifest or isinstance(raw := ds.manifest["synthetic"], bool):
        return []
    what = (
        "null"
        if raw is None
        else f"{clip(json.dumps(raw), 60)} is " + _JSON_TYPE.get(type(raw), type(raw).__name__)
    )
    return [
        Problem(
            MANIFEST,
            "synthetic",
            f"not a JSON boolean: {what}",
            1,
            "",
            "true or false, without quotes (true turns disclosure control off; without the key "
            "the data are treated as real)",
            counts_rows=False,
        )
    ]


def _empty(ctx: Context, table: Table) -> list[Problem]:
    """A required table with no rows: one error, and the table left out of every other rule."""
    if not table.required or ctx.ds.table(table.name).count().to_pyarrow().as_py():
        return []
    ctx.ok[table.name] = set()
    ctx.empty.add(table.name)
    return [
        Problem(
            table.name,
            "*",
            "required table is empty",
            0,
            "",
            f"at least one row in {table.name}.parquet",
            counts_rows=False,
        )
    ]


def validate(
    path: str | Path, extract_date: dt.date | None = None, show_examples: bool | None = None
) -> list[Problem]:
    """Check every table present in a dataset against the canonical model.

    Parameters
    ----------
    path
        Dataset directory (one ``<table>.parquet`` per canonical table).
    extract_date
        The day the extract was taken: no date may be later, and ages are counted at it. When
        None, ``extract_date`` in the dataset's ``dataset.json``; when that is absent too,
        today's date (and the messages say so).
    show_examples
        Give each problem the values of its first offending row even when the data are not
        flagged synthetic (they always are for synthetic data). Without it, a problem of real
        data names its rows by number only. None: as the edge asked
        (:data:`careval.errors.SHOW_VALUES`, set by ``careval --show-examples``).

    Returns
    -------
    list of Problem
        Every problem found, errors and warnings, table by table in model order (problems of
        ``dataset.json`` first); empty when the dataset is valid.

    Raises
    ------
    DatasetError
        The directory is missing, holds no canonical table or has an unreadable file (one
        whose pages cannot be decoded included).
    ConfigError
        ``extract_date`` is not a date, or is after today.
    """
    return _validate(Path(path), extract_date, show_examples)[0]


def _validate(
    path: Path, extract_date: dt.date | None, show_examples: bool | None
) -> tuple[list[Problem], bool]:
    """:func:`validate`'s problems, and whether they show values."""
    with Dataset(path) as ds:
        if ds.backend == "duckdb":
            ds.con.raw_sql("SET enable_progress_bar = false")
        ds.verify()  # every page decoded once: a corrupt file is named, not met mid-query
        bound, source, first = _extract_date(ds, extract_date)
        first = _synthetic_flag(ds) + first
        asked = SHOW_VALUES.get() if show_examples is None else show_examples
        ctx = Context(ds, bound, source, values=ds.synthetic or asked)
        found: dict[str, list[Problem]] = {}
        for table in TABLES.values():
            if ds.has(table.name):
                types = _arrow_types(ds.file(table.name))
                with ds.reading(table.name):
                    found[table.name], ctx.ok[table.name] = _columns(
                        ctx, table, ctx.table(table.name), types
                    )
                    found[table.name] += _empty(ctx, table)
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
        # persons first: its dates are joined to every event once it is checked.
        for name in sorted(ctx.ok, key=lambda n: n != "persons"):
            with ds.reading(name):  # names the file when the engine fails on it all the same
                found[name] += _check(ctx, TABLES[name])
                if name == "persons":
                    dup = any(p.rule == "duplicate key" for p in found[name])
                    ctx.people = crosscheck.people(ctx, unique=not dup)
    return first + [p for name in TABLES for p in found.get(name, [])], ctx.values


def require_valid(
    path: str | Path, extract_date: dt.date | None = None, show_examples: bool | None = None
) -> list[Problem]:
    """Validate a dataset and stop on any error.

    Parameters
    ----------
    path
        Dataset directory.
    extract_date
        The day the extract was taken (see :func:`validate`).
    show_examples
        Show example values on data not flagged synthetic too (see :func:`validate`).

    Returns
    -------
    list of Problem
        The warnings (severity ``"warning"``), when there is no error.

    Raises
    ------
    DataValidationError
        Listing every error, when the dataset breaks any rule of the model.
    """
    problems, shown = _validate(Path(path), extract_date, show_examples)
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(str(path), problems, values_hidden=not shown)
    return problems
