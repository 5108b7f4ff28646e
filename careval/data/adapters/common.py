"""What the adapters share: an extract read into DuckDB, dates as their users write them, the
canonical tables written from the engine, and the import report.

Every adapter works the same way. It loads each input file into a DuckDB table of text columns
(:func:`read_extract`; names in lower case, whatever case the file used), derives the canonical
tables in SQL, and writes them as Parquet straight from the engine (:func:`write_tables`) into a
folder that becomes the dataset only when everything has been written
(:func:`careval.folders.new_folder`). No row passes through Python.

A message about an input file names the file, the column, the row (data rows from 1; the CSV line
is one more, for the header) and the count, and quotes no value unless the user asked for
examples (:data:`careval.errors.SHOW_VALUES`): an extract holds identifying data.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from careval.compute import duckdb_settings
from careval.data.schema import TABLES
from careval.errors import SHOW_VALUES, ConfigError, brief

ROW = "_row"  # a loaded table's row number in its file, from 1 (data rows; the header is line 1)
DELIMITERS = (",", "|", "\t", ";")
# HES fills a date it does not have with one of these (1800-01-01 null, 1801-01-01 invalid);
# they, an empty field and the usual spellings of "no date" read as no date.
NULL_DATES = ("1800-01-01", "1801-01-01", "01/01/1800", "01/01/1801", "18000101", "18010101")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")
DATE_WORDS = "ISO yyyy-mm-dd, dd/mm/yyyy or yyyymmdd (a time of day may follow)"
SQL_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "int": "BIGINT",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
}
ROWS_SHOWN = 5


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for one import (insertion order kept: row numbers hold).

    What does not fit in memory spills to a folder of its own in the system's temporary
    directory (DuckDB makes it when it first spills and removes it on close), never to a
    ``.tmp`` in the working directory, DuckDB's default.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")  # DuckDB's own bar would print on stdout
    spill = os.path.join(
        tempfile.gettempdir(), f"careval-duckdb-{os.getpid()}-{secrets.token_hex(4)}"
    )
    con.execute(f"SET temp_directory = {literal(spill)}")
    for sql in duckdb_settings():  # CAREVAL_THREADS, CAREVAL_MEMORY_LIMIT
        con.execute(sql)
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The single row of an aggregate query (one always comes back)."""
    row = con.execute(sql).fetchone()
    assert row is not None, sql  # an aggregate without GROUP BY gives one row
    return row


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a CSV file: the candidate found most often in its header line."""
    with open(path, "rb") as f:
        head = f.readline(1 << 20)
    text = head.decode("utf-8" if _utf8(encoding) else encoding, "replace")
    counts = {d: text.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _engine_line(message: str) -> int | None:
    m = re.search(r"[Ll]ine:?\s*(\d+)", message)
    return int(m.group(1)) if m else None


def read_extract(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    *,
    what: str,
    encoding: str = "utf-8",
    only: Collection[str] | None = None,
    allow_empty: bool = False,
    view: bool = False,
) -> list[str]:
    """Load one CSV or Parquet file into the DuckDB table ``table``: text columns named in lower
    case, plus :data:`ROW`. Returns the file's column names (lower case), all of them.

    ``only``: load just the columns whose lower-case name is in it (an extract's hundred
    columns cost memory; the adapter names the ones it reads). None loads every column.

    ``what`` names the file in messages ("the APC extract"). Refused, with one message naming the
    file: a missing or empty file, a file of no rows, a CSV row with more or fewer fields than its
    header (often the wrong delimiter), text that is not in ``encoding``, two columns whose names
    differ only in case. With ``allow_empty`` a file of a header and no rows is an empty table
    (an OMOP table nobody has a row in, such as ``death``).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path}: a directory, not a file")
    if not path.is_file():
        raise ConfigError(f"{what} {path}: no such file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{what} {path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        source = f"read_parquet({literal(str(path))})"
        _names_once(_parquet_names(path, what), path, what)
    elif suffix in (".csv", ".txt", ".tsv"):
        delim = _delimiter(path, encoding)
        names = _csv_header(path, delim, encoding, what)
        _names_once(names, path, what)
        cols = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names)
        source = (
            f"read_csv({literal(str(path))}, header = false, skip = 1, auto_detect = false, "
            f"columns = {{{cols}}}, delim = {literal(delim)}, quote = '\"', escape = '\"', "
            f"strict_mode = true, null_padding = false, encoding = {literal(encoding)})"
        )
    else:
        raise ConfigError(
            f"{what} {path}: not a CSV or Parquet file (the name ends "
            f"{suffix or 'without a suffix'}; allowed: .csv, .txt, .tsv, .parquet)"
        )
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        names = [r[0] for r in described]
        kinds = [str(r[1]).upper() for r in described]
        lower = [n.lower().strip() for n in names]
        _names_once(names, path, what)
        select = (
            ", ".join(
                f"{_as_text(quote(n), kind)} AS {quote(low)}"
                for n, kind, low in zip(names, kinds, lower, strict=True)
                if only is None or low in only
            )
            or "NULL AS _none"
        )
        if view:
            data = quote(table + "_data")
            con.execute(f"CREATE OR REPLACE TABLE {data} AS SELECT {select} FROM {source}")
            con.execute(
                f"CREATE OR REPLACE VIEW {quote(table)} AS SELECT rowid + 1 AS {ROW}, * FROM {data}"
            )
        else:
            con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {select} FROM {source}")
            con.execute(
                f"CREATE OR REPLACE TABLE {quote(table)} AS "
                f"SELECT rowid + 1 AS {ROW}, * FROM {quote(table)}"
            )
    except duckdb.Error as exc:
        raise ConfigError(_read_failure(path, what, str(exc), encoding)) from None
    n = one(con, f"SELECT count(*) FROM {quote(table)}")[0]
    if not n and not allow_empty:
        raise ConfigError(f"{what} {path}: the file has a header but no rows")
    return lower


def _as_text(column: str, kind: str) -> str:
    """SQL giving a typed column (Parquet) as the text an extract's CSV would hold: whole
    numbers stored as floats (pandas writes a nullable integer column so) without ``.0``, so
    that a code such as CLASSPAT 1.0 reads as ``1``; timestamps as their date."""
    if kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL"):
        return (
            f"CASE WHEN isfinite(CAST({column} AS DOUBLE)) AND {column} = trunc({column}) "
            f"AND abs({column}) < 1e15 THEN CAST(CAST({column} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({column} AS VARCHAR) END"
        )
    if kind.startswith("TIMESTAMP"):
        return f"CAST(CAST({column} AS DATE) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"


def _parquet_names(path: Path, what: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # noqa: BLE001 - whatever pyarrow raises, the file is not Parquet
        raise ConfigError(f"{what} {path}: not a readable Parquet file") from None


def _names_once(names: Sequence[str], path: Path, what: str) -> None:
    """Refuse two columns whose names differ only in case (or blanks at their ends)."""
    lower = [n.lower().strip() for n in names]
    twice = sorted({n for n in lower if lower.count(n) > 1})
    if not twice:
        return
    shown = [n for n in twice if SHOW_VALUES.get() or name_like(n)]
    listed = ", ".join(n.upper() for n in shown) or "some"
    hidden = len(twice) - len(shown)
    more = f" (and {hidden:,} not shown: is line 1 a header?)" if hidden and shown else ""
    raise ConfigError(
        f"{what} {path}: columns named {listed} more than once{more} (names are compared in "
        "lower case)"
    )


def drop_extract(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Remove a file loaded by :func:`read_extract` with ``view`` (the view and its table)."""
    con.execute(f"DROP VIEW IF EXISTS {quote(table)}")
    con.execute(f"DROP TABLE IF EXISTS {quote(table + '_data')}")


def _csv_header(path: Path, delim: str, encoding: str, what: str) -> list[str]:
    """The names in a CSV file's first line."""
    import csv
    import io

    with open(path, "rb") as f:
        head = f.readline(1 << 20)
    try:
        text = head.decode("utf-8-sig" if _utf8(encoding) else encoding)
    except UnicodeDecodeError:
        raise ConfigError(
            f"{what} {path}: line 1 is not {encoding} text (save the file as UTF-8, or give its "
            "encoding)"
        ) from None
    names = [n.strip() for n in next(csv.reader(io.StringIO(text), delimiter=delim), [])]
    if not any(names):
        raise ConfigError(f"{what} {path}: line 1 (the header) is empty")
    if any(not n for n in names):
        raise ConfigError(f"{what} {path}: line 1 (the header) has an empty column name")
    return names


def _utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def _read_failure(path: Path, what: str, message: str, encoding: str) -> str:
    line = _engine_line(message)
    where = f"line {line}" if line else "the file"
    low = message.lower()
    if "unicode" in low or "encoding" in low or "utf" in low:
        return (
            f"{what} {path}: {where} is not {encoding} text (save the file as UTF-8, or give "
            "its encoding)"
        )
    if "expected" in low and "column" in low or "too many" in low or "fewer" in low:
        return (
            f"{what} {path}: {where} has a different number of fields from the header (a "
            "delimiter other than , | tab or ;, a stray delimiter or an unclosed quote)"
        )
    detail = f": {brief(message.splitlines()[0], 200)}" if SHOW_VALUES.get() else ""
    return (
        f"{what} {path}: cannot be read at {where} (not a well-formed CSV or Parquet file){detail}"
    )


def name_like(text: str) -> bool:
    """Whether a header's name looks like a column name (up to 40 letters, digits and
    underscores, starting with a letter or underscore, no run of three digits)."""
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", text)) and not re.search(
        r"[0-9]{3}", text
    )


def require_columns(
    columns: Sequence[str], path: Path, what: str, needed: Sequence[str | tuple[str, ...]]
) -> dict[str, str]:
    """The file's column for each needed field (a tuple: any one of these names, first found).

    Missing fields are refused in one message naming the file, each missing field and the
    columns the file has.
    """
    have = set(columns)
    found: dict[str, str] = {}
    missing: list[str] = []
    for need in needed:
        names = (need,) if isinstance(need, str) else need
        hit = next((n for n in names if n in have), None)
        if hit is None:
            missing.append(" or ".join(n.upper() for n in names))
        else:
            found[names[0]] = hit
    if missing:
        # A file without a header line has a person's values as its "names" (an NHS number,
        # a date of birth, an LSOA): on real data only names that look like names are listed.
        listed = [c for c in columns if SHOW_VALUES.get() or name_like(c)]
        hidden = len(columns) - len(listed)
        shown = ", ".join(c.upper() for c in listed[:40]) or "no name that looks like one"
        more = f" and {len(listed) - 40} more" if len(listed) > 40 else ""
        if hidden:
            more += (
                f" ({hidden:,} not shown, which do not look like column names: is line 1 a "
                "header? careval --show-examples shows them)"
            )
        raise ConfigError(
            f"{what} {path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (names in any case); the file has {shown}{more}"
        )
    return found


def date_sql(column: str, nulls: Sequence[str] = NULL_DATES, *, trimmed: bool = False) -> str:
    """SQL turning the text column ``column`` into a DATE: ISO, dd/mm/yyyy or yyyymmdd (with an
    optional time), NULL for a blank field or a HES null date (``nulls``, :data:`NULL_DATES` by
    default; none for the canonical tables, whose dates before 1900 validation refuses), NULL too
    for text that is no date (find those with :func:`bad_date_sql`). ``trimmed``: the column
    holds text trimmed already (trimming it again, five times over, costs more than the
    parse)."""
    c = quote(column) if trimmed else f"trim({quote(column)})"
    given = f" OR {c} IN ({', '.join(literal(d) for d in nulls)})" if nulls else ""
    # The formats a text can match, picked by its separator: the same answer as trying every
    # format in turn, several times faster (a failed try_strptime is slow: ten times on dd/mm).
    slash = [f for f in DATE_FORMATS if "/" in f]
    dash = [f for f in DATE_FORMATS if "-" in f]
    plain = [f for f in DATE_FORMATS if "/" not in f and "-" not in f]

    def parse(formats: list[str]) -> str:
        listed = "[" + ", ".join(literal(f) for f in formats) + "]"
        return f"CAST(try_strptime({c}, {listed}) AS DATE)" if formats else "NULL"

    return (
        f"CASE WHEN {c} IS NULL OR {c} = ''{given} THEN NULL "
        f"WHEN contains({c}, '/') THEN {parse(slash)} "
        f"WHEN contains({c}, '-') THEN {parse(dash)} "
        f"ELSE {parse(plain)} END"
    )


def bad_date_sql(column: str, nulls: Sequence[str] = NULL_DATES) -> str:
    """SQL true where ``column`` holds text that is neither a date nor a way of saying none."""
    c = f"trim({quote(column)})"
    given = f" AND {c} NOT IN ({', '.join(literal(d) for d in nulls)})" if nulls else ""
    return f"({c} IS NOT NULL AND {c} <> '' AND ({date_sql(column, nulls)}) IS NULL{given})"


def bad_parsed_date_sql(
    column: str, parsed: str, nulls: Sequence[str] = NULL_DATES, *, trimmed: bool = False
) -> str:
    """:func:`bad_date_sql` when the date is parsed already: SQL true where ``parsed`` (the
    column ``column`` through :func:`date_sql`) is NULL though the text is neither blank nor a
    way of saying none. The text is not parsed a second time (``trimmed``: nor trimmed)."""
    c = quote(column) if trimmed else f"trim({quote(column)})"
    given = f" AND {c} NOT IN ({', '.join(literal(d) for d in nulls)})" if nulls else ""
    return f"({c} IS NOT NULL AND {c} <> '' AND {parsed} IS NULL{given})"


@dataclass(frozen=True)
class Check:
    """A rule :func:`find_all` checks: rows where ``bad_sql`` is true break it (the other
    fields as :func:`find_rows` takes them)."""

    bad_sql: str
    file: str
    column: str
    rule: str
    allowed: str = ""
    value: str | None = None


@dataclass(frozen=True)
class Finding:
    """A check of an input file: how many rows break ``rule`` in ``column``, and the first ones."""

    file: str
    column: str
    rule: str
    count: int
    rows: tuple[int, ...]
    allowed: str = ""
    example: str = ""  # the first offending value, quoted only when values may be shown

    def line(self) -> str:
        """One line: file, column, rule, count, allowed, first rows (and the first value)."""
        text = f"{self.file}: column {self.column.upper()} {self.rule} ({self.count:,} row"
        text += "s)" if self.count != 1 else ")"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.rows:
            more = ", ..." if self.count > len(self.rows) else ""
            text += f"; row{'s' if len(self.rows) > 1 or more else ''} "
            text += ", ".join(str(r) for r in self.rows) + more
            text += (
                " (data rows from 1)"
                if self.file.lower().endswith(".parquet")
                else " (data rows from 1; the file's line is one more)"
            )
        if self.example and self.rows:
            text += f"; e.g. row {self.rows[0]}: {self.example}"
        return text


def find_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    bad_sql: str,
    *,
    file: str,
    column: str,
    rule: str,
    allowed: str = "",
    value: str | None = None,
) -> Finding | None:
    """Count the rows of ``table`` where ``bad_sql`` is true; None when there are none.

    ``value``: a column of ``table`` whose text in the first offending row the finding quotes,
    only when messages may quote values (:data:`careval.errors.SHOW_VALUES`); never give an
    identifying column.
    """
    shown = value is not None and SHOW_VALUES.get()
    first = f", arg_min({quote(value)}, {ROW})" if shown and value is not None else ", NULL"
    n, rows, example = one(
        con,
        f"SELECT count(*), list({ROW} ORDER BY {ROW})[1:{ROWS_SHOWN}]{first} "
        f"FROM {quote(table)} WHERE {bad_sql}",
    )
    if not n:
        return None
    text = brief(example, 40) if shown and example is not None else ""
    return Finding(file, column, rule, int(n), tuple(int(r) for r in rows), allowed, text)


def find_all(
    con: duckdb.DuckDBPyConnection, table: str, checks: Sequence[Check]
) -> list[Finding | None]:
    """:func:`find_rows` of every check, in one pass over ``table`` for the counts; the rows
    (and example) of a check are looked up only when it has any. None for a check no row
    breaks."""
    if not checks:
        return []
    counts = one(
        con,
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {c.bad_sql})" for c in checks)
        + f" FROM {quote(table)}",
    )
    return [
        find_rows(
            con,
            table,
            c.bad_sql,
            file=c.file,
            column=c.column,
            rule=c.rule,
            allowed=c.allowed,
            value=c.value,
        )
        if n
        else None
        for c, n in zip(checks, counts, strict=True)
    ]


def raise_findings(findings: Sequence[Finding | None]) -> None:
    """One ConfigError listing every finding (nothing when all are None)."""
    real = [f for f in findings if f is not None]
    if not real:
        return
    if len(real) == 1:
        raise ConfigError(real[0].line())
    raise ConfigError(
        f"{len(real)} problems in the input:\n" + "\n".join(f"  - {f.line()}" for f in real)
    )


def write_tables(
    con: duckdb.DuckDBPyConnection, folder: Path, tables: Mapping[str, str]
) -> dict[str, int]:
    """Write each canonical table (name -> a SQL query giving its columns) as Parquet into
    ``folder``, its columns in the schema's order and types. Returns rows per table."""
    rows: dict[str, int] = {}
    for name, query in tables.items():
        spec = TABLES[name]
        cols = ", ".join(
            f"CAST({quote(c.name)} AS {SQL_TYPES[c.type]}) AS {quote(c.name)}" for c in spec.columns
        )
        target = folder / f"{name}.parquet"
        written = one(  # COPY answers the rows it wrote: the file is not read back
            con,
            f"COPY (SELECT {cols} FROM ({query})) TO {literal(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)",
        )
        rows[name] = int(written[0])
    return rows


@dataclass
class ImportReport:
    """What an import read, kept, built and dropped (true counts: an analyst's check of the
    import, inside the environment that holds the data; it is not published)."""

    source: str  # "hes", "omop", "csv"
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> path, rows read
    steps: list[tuple[str, int]] = field(default_factory=list)  # "episodes kept", count
    dropped: list[tuple[str, str, int]] = field(default_factory=list)  # file, reason, count
    tables: dict[str, int] = field(default_factory=dict)  # canonical table -> rows written
    linkage: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    key_fingerprint: str | None = None

    def read(self, name: str, path: Path, rows: int) -> None:
        """Record a file read."""
        self.files[name] = {"path": str(path), "rows": int(rows)}

    def step(self, what: str, count: int) -> None:
        """Record a count along the way ("spells built", 1,234)."""
        self.steps.append((what, int(count)))

    def drop(self, file: str, reason: str, count: int) -> None:
        """Record rows dropped for a reason (nothing when none were)."""
        if count:
            self.dropped.append((file, reason, int(count)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON block (``import_report.json`` in the dataset)."""
        return {
            "source": self.source,
            "files": self.files,
            "steps": [{"what": w, "count": c} for w, c in self.steps],
            "dropped": [{"file": f, "reason": r, "count": c} for f, r, c in self.dropped],
            "tables": self.tables,
            "linkage": self.linkage,
            "notes": self.notes,
            "key_fingerprint": self.key_fingerprint,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        lines = [f"{name}: {f['rows']:,} rows read ({f['path']})" for name, f in self.files.items()]
        lines += [f"{what}: {count:,}" for what, count in self.steps]
        lines += [f"dropped from {f}: {c:,} ({r})" for f, r, c in self.dropped]
        lines += [f"{name}: {n:,} rows written" for name, n in self.tables.items()]
        for name, link in self.linkage.items():
            lines.append(f"linkage, {name}: {link.get('share', 0):.1%} of rows matched")
        lines += self.notes
        if self.key_fingerprint:
            lines.append(f"pseudonymised with the key of fingerprint {self.key_fingerprint}")
        return "\n".join(lines)

    def write(self, folder: Path) -> None:
        """Write ``import_report.json`` into the dataset folder."""
        (folder / "import_report.json").write_text(
            json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8"
        )


def write_manifest(
    folder: Path,
    *,
    generator: str,
    synthetic: bool,
    extract_date: str | None,
    rows: Mapping[str, int],
    more: Mapping[str, Any] | None = None,
) -> None:
    """Write ``dataset.json``. An imported dataset is real (``synthetic: false``) unless the
    user says otherwise: disclosure control is then on everywhere."""
    manifest: dict[str, Any] = {
        "careval_dataset": 1,
        "synthetic": bool(synthetic),
        "generator": generator,
        "rows": dict(rows),
    }
    if extract_date:
        manifest["extract_date"] = extract_date
    manifest.update(more or {})
    (folder / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
