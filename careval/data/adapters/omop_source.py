"""An OMOP CDM source loaded into the import's DuckDB connection.

Two kinds of source: a DuckDB database opened read only (``--db``, tables of one schema), or a
directory of CSV or Parquet files named after the tables (``--dir``: ``person.csv``,
``PERSON.parquet``, ...). Table and column names are matched in any case. Each clinical table
becomes the text table ``o_<name>`` (lower-case column names, :data:`~careval.data.adapters.
common.ROW` the row number in the table as read); the vocabulary tables (``concept``,
``concept_ancestor``) become typed views, so that a full vocabulary is not copied.

OMOP CDM v5.3 and v5.4 differ in a few field names (``admitting_source_concept_id`` became
``admitted_from_concept_id``, ``discharge_to_concept_id`` ``discharged_to_concept_id``); the
tables below list each field under both names, and the first present is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from careval.data.adapters.common import (
    ROW,
    literal,
    quote,
    read_extract,
    require_columns,
)
from careval.errors import ConfigError

# Table -> the fields it must have (a tuple: any one of these names). Other fields are optional.
REQUIRED: dict[str, tuple[str | tuple[str, ...], ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth"),
    "observation_period": (
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
    ),
    "visit_occurrence": (
        "visit_occurrence_id",
        "person_id",
        "visit_concept_id",
        "visit_start_date",
        "visit_end_date",
    ),
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_start_date"),
    "measurement": ("person_id", "measurement_concept_id", "measurement_date", "value_as_number"),
    "drug_exposure": ("person_id", "drug_concept_id", "drug_exposure_start_date"),
    "death": ("person_id", "death_date"),
    "procedure_occurrence": ("person_id",),
    "care_site": ("care_site_id",),
    "provider": ("provider_id",),
    "cost": ("cost_event_id", "cost_domain_id", "total_cost"),
    "cdm_source": (),
    "concept": ("concept_id", "vocabulary_id", "concept_code"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
}
MUST_HAVE = ("person", "observation_period", "visit_occurrence")
VOCABULARY = ("concept", "concept_ancestor")
# Fields read when present, with their v5.3 and v5.4 spellings (the canonical name first).
OPTIONAL: dict[str, dict[str, tuple[str, ...]]] = {
    "person": {
        "month_of_birth": ("month_of_birth",),
        "race_concept_id": ("race_concept_id",),
        "ethnicity_concept_id": ("ethnicity_concept_id",),
        "gender_source_value": ("gender_source_value",),
        "care_site_id": ("care_site_id",),
    },
    "visit_occurrence": {
        "admitted_from_concept_id": ("admitted_from_concept_id", "admitting_source_concept_id"),
        "discharged_to_concept_id": ("discharged_to_concept_id", "discharge_to_concept_id"),
        "provider_id": ("provider_id",),
        "care_site_id": ("care_site_id",),
    },
    "condition_occurrence": {
        "visit_occurrence_id": ("visit_occurrence_id",),
        "condition_source_value": ("condition_source_value",),
        "condition_source_concept_id": ("condition_source_concept_id",),
        "condition_status_concept_id": ("condition_status_concept_id",),
        "condition_type_concept_id": ("condition_type_concept_id",),
        "condition_occurrence_id": ("condition_occurrence_id",),
    },
    "measurement": {
        "unit_concept_id": ("unit_concept_id",),
        "unit_source_value": ("unit_source_value",),
        "measurement_source_value": ("measurement_source_value",),
    },
    "drug_exposure": {"drug_exposure_end_date": ("drug_exposure_end_date",)},
    "care_site": {"care_site_source_value": ("care_site_source_value",)},
    "provider": {"specialty_source_value": ("specialty_source_value",)},
    "cdm_source": {"source_release_date": ("source_release_date",)},
    "concept": {
        "concept_name": ("concept_name",),
        "standard_concept": ("standard_concept",),
    },
}
SUFFIXES = (".parquet", ".csv", ".txt", ".tsv")
GENERATED = re.compile(r"^column[0-9]+$")


def fields_of(table: str) -> set[str]:
    """Every name, in either CDM version, of the fields careval reads from ``table``."""
    names: set[str] = set()
    for need in REQUIRED[table]:
        names.update((need,) if isinstance(need, str) else need)
    for spellings in OPTIONAL.get(table, {}).values():
        names.update(spellings)
    return names


def count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    """The first value of the first row of ``sql`` as an int (a count; rows changed)."""
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def id_sql(expr: str) -> str:
    """SQL: an OMOP identifier as text (``1118084.0``, a float column's, as ``1118084``)."""
    return f"nullif(regexp_replace(trim(CAST({expr} AS VARCHAR)), '\\.0+$', ''), '')"


@dataclass
class Source:
    """The OMOP tables found and loaded: table -> rows, and what each field is called."""

    label: str  # "OMOP database x.duckdb" or "OMOP directory d"
    rows: dict[str, int] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # table -> how a message names it
    paths: dict[str, Path] = field(default_factory=dict)  # table -> its file (or database)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> field -> column
    columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def has(self, table: str) -> bool:
        """Whether the source has the table (possibly empty)."""
        return table in self.rows

    def col(self, table: str, name: str) -> str | None:
        """The table's column for the field ``name`` (either spelling), or None."""
        return self.fields.get(table, {}).get(name)

    def field_sql(self, table: str, name: str) -> str:
        """SQL for the field: its column quoted, or NULL when the table lacks it."""
        c = self.col(table, name)
        return quote(c) if c else "NULL"


def load(
    con: duckdb.DuckDBPyConnection,
    *,
    db: Path | None = None,
    directory: Path | None = None,
    schema: str | None = None,
) -> Source:
    """Load the OMOP tables careval reads from a DuckDB file or a directory of files.

    Refused with one message: no such file or directory, no ``person`` table (or several schemas
    with one, without ``--schema``), a missing required table or field, an unreadable file.
    """
    if (db is None) == (directory is None):
        raise ConfigError("give one OMOP source: --db FILE.duckdb or --dir DIRECTORY")
    if db is not None:
        return _load_db(con, Path(db), schema)
    assert directory is not None
    return _load_dir(con, Path(directory))


def _load_db(con: duckdb.DuckDBPyConnection, db: Path, schema: str | None) -> Source:
    if not db.is_file():
        raise ConfigError(f"--db {db}: no such file")
    try:
        con.execute(f"ATTACH {literal(str(db))} AS omop_src (READ_ONLY)")
    except duckdb.Error as exc:
        raise ConfigError(
            f"--db {db}: not a DuckDB database that can be opened read only "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    found = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'omop_src' "
        "UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = 'omop_src' AND NOT internal"
    ).fetchall()
    schemas = sorted({s for s, t in found if t.lower() == "person"})
    if schema is not None:
        chosen = [s for s in {s for s, _ in found} if s.lower() == schema.lower()]
        if not chosen:
            raise ConfigError(
                f"--db {db}: no schema {schema}; its schemas: "
                + ", ".join(sorted({s for s, _ in found}))
            )
        pick = chosen[0]
    elif len(schemas) == 1:
        pick = schemas[0]
    elif not schemas:
        raise ConfigError(f"--db {db}: no PERSON table in any schema (is it an OMOP CDM?)")
    else:
        raise ConfigError(
            f"--db {db}: PERSON tables in schemas {', '.join(schemas)}; name one with --schema"
        )
    names = {t.lower(): t for s, t in found if s == pick}
    src = Source(f"OMOP database {db}")
    for table in REQUIRED:
        if table not in names:
            continue
        ref = f"omop_src.{quote(pick)}.{quote(names[table])}"
        what = f"OMOP table {table.upper()} in schema {pick} of"
        described = con.execute(f"DESCRIBE SELECT * FROM {ref}").fetchall()
        cols = [r[0] for r in described]
        header = _header_row(con, ref, cols)
        if header is not None:  # an empty table stored as its header line (Eunomia's)
            select = ", ".join(f"CAST(NULL AS VARCHAR) AS {quote(n)}" for n in header)
            empty = ("t_" if table in VOCABULARY else "o_") + table
            con.execute(
                f"CREATE TABLE {quote(empty)} AS SELECT CAST(NULL AS BIGINT) AS {ROW}, "
                f"{select} LIMIT 0"
            )
            if table in VOCABULARY:
                _vocabulary_view(con, table, quote(empty), {c: c for c in header})
            src.notes.append(
                f"{table.upper()}: a table of one row holding its column names (columns "
                "column0, column1, ...), read as an empty table"
            )
            lower = header
        else:
            lower = [c.lower() for c in cols]
            twice = sorted({n for n in lower if lower.count(n) > 1})
            if twice:
                raise ConfigError(f"{what} {db}: columns named {', '.join(twice)} more than once")
            if table in VOCABULARY:
                _vocabulary_view(con, table, ref, dict(zip(lower, cols, strict=True)))
            else:
                used = fields_of(table)  # only the fields read: a full table is big
                select = ", ".join(
                    f"CAST({quote(c)} AS VARCHAR) AS {quote(low)}"
                    for c, low in zip(cols, lower, strict=True)
                    if low in used
                )
                select = select or f"CAST(NULL AS VARCHAR) AS {quote(lower[0])}"
                con.execute(
                    f"CREATE TABLE {quote('o_' + table)} AS "
                    f"SELECT row_number() OVER () AS {ROW}, {select} FROM {ref}"
                )
        _register(con, src, table, lower, what, db)
    _require(src, f"--db {db} (schema {pick})", sorted(names))
    return src


def _header_row(con: duckdb.DuckDBPyConnection, ref: str, cols: list[str]) -> list[str] | None:
    """The column names of a table stored as a single row of them, or None."""
    if not cols or not all(GENERATED.match(c) for c in cols):
        return None
    rows = con.execute(f"SELECT * FROM {ref} LIMIT 2").fetchall()
    if len(rows) != 1 or not all(isinstance(v, str) and v.strip() for v in rows[0]):
        return None
    return [str(v).strip().lower() for v in rows[0]]


def _vocabulary_view(
    con: duckdb.DuckDBPyConnection, table: str, ref: str, cols: dict[str, str]
) -> None:
    """``o_concept`` or ``o_concept_ancestor`` as a typed view over the source table."""
    if table == "concept_ancestor":
        if "ancestor_concept_id" not in cols or "descendant_concept_id" not in cols:
            select = "NULL AS ancestor, NULL AS descendant"
        else:
            a, d = cols["ancestor_concept_id"], cols["descendant_concept_id"]
            select = f"{id_sql(quote(a))} AS ancestor, {id_sql(quote(d))} AS descendant"
    else:
        parts = (
            [f"{id_sql(quote(cols['concept_id']))} AS concept_id"] if "concept_id" in cols else []
        )
        for name in ("vocabulary_id", "concept_code", "concept_name", "standard_concept"):
            parts.append(
                f"CAST({quote(cols[name])} AS VARCHAR) AS {name}"
                if name in cols
                else f"CAST(NULL AS VARCHAR) AS {name}"
            )
        select = ", ".join(parts) or "NULL AS concept_id"
    con.execute(f"CREATE VIEW {quote('o_' + table)} AS SELECT {select} FROM {ref}")


def _load_dir(con: duckdb.DuckDBPyConnection, directory: Path) -> Source:
    if not directory.is_dir():
        raise ConfigError(f"--dir {directory}: no such directory")
    files: dict[str, list[Path]] = {}
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.suffix.lower() in SUFFIXES:
            files.setdefault(p.stem.lower(), []).append(p)
    src = Source(f"OMOP directory {directory}")
    for table in REQUIRED:
        paths = files.get(table, [])
        if len(paths) > 1:
            raise ConfigError(
                f"--dir {directory}: table {table.upper()} is in more than one file "
                f"({', '.join(p.name for p in paths)}); keep one"
            )
        if not paths:
            continue
        path = paths[0]
        what = f"OMOP table {table.upper()}"
        lower = read_extract(
            con, path, "o_" + table, what=what, allow_empty=table not in ("person",)
        )
        if table in VOCABULARY:
            con.execute(f"ALTER TABLE {quote('o_' + table)} RENAME TO {quote('t_' + table)}")
            _vocabulary_view(con, table, quote("t_" + table), {c: c for c in lower})
        _register(con, src, table, lower, what, path)
    _require(src, f"--dir {directory}", sorted(files))
    return src


def _register(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    table: str,
    columns: list[str],
    what: str,
    path: Path,
) -> None:
    """Record a loaded table: its rows, fields (required ones checked) and message name."""
    found = require_columns(columns, path, what, REQUIRED[table])
    for name, spellings in OPTIONAL.get(table, {}).items():
        hit = next((s for s in spellings if s in columns), None)
        if hit:
            found[name] = hit
    real = "t_" + table if table in VOCABULARY else "o_" + table
    exists = count(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = 'memory'",
        [real],
    )
    source = quote(real) if exists else quote("o_" + table)
    src.rows[table] = count(con, f"SELECT count(*) FROM {source}")
    src.fields[table] = found
    src.columns[table] = columns
    src.where[table] = f"{what} {path}"
    src.paths[table] = path


def _require(src: Source, where: str, present: list[str]) -> None:
    missing = [t.upper() for t in MUST_HAVE if t not in src.rows]
    if missing:
        raise ConfigError(
            f"{where}: missing OMOP table{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (names in any case"
            + ("; files .csv or .parquet named after the table" if "--dir" in where else "")
            + f"); found: {', '.join(p.upper() for p in present) or 'nothing'}"
        )
