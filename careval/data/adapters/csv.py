"""The canonical tables as CSV (or Parquet) files in, a validated careval dataset out.

``careval import csv DIR --out DATASET`` is for the analyst who has the data in the shape of
``docs/data-model.md`` already (an export from a warehouse, a spreadsheet saved as CSV, tables
written by hand) but not as Parquet files of exactly the model's types. Each file is named after
its table (``persons.csv``, ``PRACTICES.CSV``, ``inpatient_spells.parquet``); each column is
read as text and converted in the engine to the model's type:

* dates: ISO ``yyyy-mm-dd``, ``dd/mm/yyyy`` or ``yyyymmdd``, a time of day may follow
  (:func:`careval.data.adapters.common.date_sql`; HES's null dates are not special here: an
  ``1800-01-01`` is a date, and validation refuses it as before 1900);
* whole numbers: digits with an optional sign (``3.0`` reads as 3); decimals: digits with a point
  and an optional exponent. A comma is refused (``1,5`` and ``1,234`` alike: a decimal comma
  and a thousands separator cannot be told apart), as are currency signs, units, ``NaN`` and
  infinities;
* true/false: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``y``/``n``, in any case;
* text: spaces, tabs and line ends around a value removed.

An empty field (or one of only spaces) is a missing value, in every type; ``NA`` or ``NULL`` is
text, and no date or number. Every column of the model must be in the file (a column that may be
empty still needs its header); a column the model does not have is left out and named in the
report. The dataset is then validated as ``careval validate`` does, in its temporary folder:
an error stops the import and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from careval import __version__
from careval.data.adapters.common import (
    ROW,
    Finding,
    ImportReport,
    connect,
    date_sql,
    find_rows,
    literal,
    one,
    quote,
    read_extract,
    require_columns,
    write_manifest,
    write_tables,
)
from careval.data.adapters.person_keys import NHS_ALLOWED, NHS_RULE, PersonKeys, invalid_nhs_sql
from careval.data.schema import TABLES, Column
from careval.data.validate import require_valid
from careval.errors import (
    SHOW_VALUES,
    ConfigError,
    DataValidationError,
    Problem,
    raise_problems,
    showing_values,
)
from careval.files import sha256
from careval.folders import check_replaceable, new_folder

SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")  # what read_extract reads
COPIED = ("surveys", "qualitative")  # a dataset's folders, copied unchanged when present
WHITESPACE = " \t\r\n\u00a0"  # trimmed from every value (the last: Excel's no-break space)
ENCODINGS = {  # the names DuckDB's CSV reader takes, by the spellings people use
    **dict.fromkeys(("utf-8", "utf8"), "utf-8"),
    **dict.fromkeys(("utf-16", "utf16"), "utf-16"),
    **dict.fromkeys(("latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1"), "latin-1"),
}
TRUE_WORDS = ("true", "1", "yes", "y")
FALSE_WORDS = ("false", "0", "no", "n")
INT_PATTERN = r"[+-]?[0-9]+(\.0*)?"
FLOAT_PATTERN = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
ALLOWED = {
    "date": "ISO yyyy-mm-dd, dd/mm/yyyy or yyyymmdd (a time of day may follow); empty for none",
    "int": "a whole number such as 1234 (3.0 reads as 3); empty for none",
    "float": "a number such as 1234.5 or 1.2e3, with a point for decimals and no thousands "
    "separator, currency sign or unit; empty for none",
    "bool": "true/false, 1/0, yes/no or y/n, in any case; empty for none",
}
RULES = {
    "date": "is not a date",
    "int": "is not a whole number",
    "float": "is not a number",
    "bool": "is not true or false",
}
FLAG = "_bad_"  # in a converted table: true where the column's text did not convert
COMMA_RULE = "holds numbers written with a comma"
COMMA_ALLOWED = (
    "a point for decimals and no thousands separator (1,5 must be 1.5, and 1,234 must be 1234: "
    "the two cannot be told apart)"
)


@dataclass
class CsvImport:
    """What an import did: the dataset written, its import report, validation's warnings."""

    path: Path
    report: ImportReport
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Inputs:
    """What the input directory holds: a file per table, folders to copy, the rest ignored."""

    tables: dict[str, Path] = field(default_factory=dict)
    copied: dict[str, Path] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def import_csv(
    src: str | Path,
    out: str | Path,
    *,
    extract_date: dt.date | None = None,
    synthetic: bool = False,
    encoding: str = "utf-8",
    overwrite: bool = False,
    threads: int | None = None,
    key_file: str | Path | None = None,
    any_id: bool = False,
) -> CsvImport:
    """Import the canonical tables from CSV or Parquet files in ``src`` as the dataset ``out``.

    Parameters
    ----------
    src
        Directory with one file per table, named after it in any case (``persons.csv``); the
        required tables must be there. ``surveys/`` and ``qualitative/`` are copied unchanged.
    out
        Dataset directory to create (written whole or not at all,
        :func:`careval.folders.new_folder`).
    extract_date
        The day the extract was taken, written to ``dataset.json``; validation bounds every
        date by it (by today's date when None).
    synthetic
        Flag the dataset synthetic (disclosure control off, values shown in messages). Only
        for data that describe no real person.
    encoding
        Text encoding of the CSV files (DuckDB reads ``utf-8``, ``utf-16`` and ``latin-1``).
    overwrite
        Replace a dataset careval wrote at ``out`` before (never anyone else's folder).
    threads
        DuckDB threads (None: DuckDB's default).
    key_file
        A key (``careval keygen``): ``person_id`` in every table becomes its keyed token, the
        same token as ``careval pseudonymise`` and ``careval import hes`` give the value with
        that key. The values must be valid NHS numbers (a table with any that is not is
        refused, with the count and first rows, no values), unless ``any_id``. The key's
        fingerprint is written to ``dataset.json`` and the import report; the key never is.
    any_id
        With ``key_file``: the ``person_id`` values are not NHS numbers; each is hashed as
        written, stripped of blanks at both ends.

    Returns
    -------
    CsvImport
        The dataset's path, the import report (also written as ``import_report.json``) and the
        warnings validation found.

    Raises
    ------
    ConfigError
        Bad input, in one message naming every problem found: file, column, rule, count and
        first rows (and, when values may be shown, the first value). Nothing is written.
    DataValidationError
        The imported tables break the canonical model (validation's message). Nothing is
        written.
    """
    src, out = Path(src), Path(out)
    _check_places(src, out, extract_date)
    encoding = engine_encoding(encoding)
    check_replaceable(out, "dataset", overwrite)
    if any_id and key_file is None:
        raise ConfigError("--any-id says how --key-file hashes person_id; give --key-file too")
    key = None
    if key_file is not None:
        from careval.data.adapters.pseudonymise import read_key

        key = read_key(key_file)
    inputs = _inputs(src)
    raise_problems(inputs.problems)
    hashes = {p.name: sha256(p) for p in inputs.tables.values()}
    for name, folder in inputs.copied.items():
        for file in _files(folder):
            hashes[f"{name}/{file.relative_to(folder).as_posix()}"] = sha256(file)
    report = ImportReport("csv")
    with showing_values(SHOW_VALUES.get() or synthetic):
        con = connect(threads)
        try:
            keys = None if key is None else PersonKeys(con, key, nhs=not any_id)
            with new_folder(out, "dataset", overwrite=overwrite) as tmp:
                _load(con, inputs, report, encoding, tmp, keys)
                for name, folder in inputs.copied.items():
                    shutil.copytree(folder, tmp / name)
                    report.notes.append(
                        f"copied {folder.name}/ unchanged as {name}/ "
                        f"({len(_files(folder)):,} files)"
                    )
                write_manifest(
                    tmp,
                    generator=f"careval {__version__} import csv",
                    synthetic=synthetic,
                    extract_date=extract_date.isoformat() if extract_date else None,
                    rows=report.tables,
                    more={"import": _provenance(src, inputs, hashes)}
                    | ({"key_fingerprint": keys.fingerprint} if keys else {}),
                )
                warnings = _validated(tmp, src, extract_date)
                report.notes += [f"validation warning: {w.line()}" for w in warnings]
                report.write(tmp)
        finally:
            con.close()
    return CsvImport(out, report, warnings)


def engine_encoding(name: str) -> str:
    """The engine's name of the encoding ``name``; refused when the engine cannot read it."""
    key = name.lower().replace("_", "-")
    if key in ENCODINGS:
        return ENCODINGS[key]
    raise ConfigError(
        f"--encoding {name}: the CSV reader takes utf-8, utf-16 or latin-1 (iso-8859-1); save "
        "the files as UTF-8 (Excel: CSV UTF-8) or, for Windows text, give latin-1 (its curly "
        "quotes, dashes and the euro sign then read as other characters)"
    )


def _check_places(src: Path, out: Path, extract_date: dt.date | None) -> None:
    """Refuse a missing input directory, an --out inside it (or holding it) and a future date."""
    if not src.is_dir():
        if src.exists():
            raise ConfigError(f"{src}: a file; give the directory holding the table files")
        raise ConfigError(f"{src}: no such directory")
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents:
        raise ConfigError(
            f"--out {out} is the input directory {src} or inside it: an import adds nothing to "
            "its input; choose an --out outside it"
        )
    if o in s.parents:
        raise ConfigError(
            f"the input directory {src} lies inside --out {out}, which the import would "
            "replace; choose another --out"
        )
    if extract_date is not None and extract_date > dt.date.today():
        raise ConfigError(
            f"--extract-date {extract_date.isoformat()} is after today, "
            f"{dt.date.today().isoformat()}"
        )


def _inputs(src: Path) -> _Inputs:
    """Sort the entries of ``src`` into table files, folders to copy and the rest.

    A file is a table's when its name before the first dot is the table's name, in any case
    (``Persons.CSV``; ``persons.csv.gz`` too, which the reader then refuses by its suffix). A
    data file named like no table but close to one (``persns.csv``) is refused, naming the
    table meant, and so is a folder named after a table; other entries (hidden ones, a
    spreadsheet's ``~$`` lock files, other folders) are listed in the report as ignored.
    """
    found = _Inputs()
    for entry in sorted(src.iterdir(), key=lambda e: e.name):
        base = entry.name.split(".")[0].lower()
        if entry.name.startswith((".", "~")):  # hidden, or a spreadsheet's lock file
            found.ignored.append(entry.name)
        elif entry.is_dir() and base in TABLES:
            found.problems.append(
                f"{entry}: a folder, not a file; write the {base} table as one CSV or Parquet "
                f"file named {base}.csv or {base}.parquet (a folder of Parquet parts, as Spark "
                "writes: combine the parts into one file)"
            )
        elif entry.is_dir():
            if entry.name.lower() in COPIED and not entry.is_symlink():
                if entry.name.lower() in found.copied:
                    found.problems.append(
                        f"{src}: two folders named {entry.name.lower()} (in different case); "
                        "keep one"
                    )
                found.copied[entry.name.lower()] = entry
                found.problems += _links(entry)
            else:
                found.ignored.append(entry.name + "/")
        elif base in TABLES:
            if base in found.tables:
                found.problems.append(
                    f"{src}: two files for the table {base}: {found.tables[base].name} and "
                    f"{entry.name}; keep one"
                )
            found.tables[base] = entry
        elif entry.suffix.lower() in SUFFIXES and (near := _nearest(base)):
            found.problems.append(
                f"{entry}: no table of the model is called {base}; did you mean {near} "
                f"({near}{entry.suffix})? (the tables: docs/data-model.md)"
            )
        else:
            found.ignored.append(entry.name)
    missing = [t.name for t in TABLES.values() if t.required and t.name not in found.tables]
    if missing:
        others = [n for n in found.ignored if n.lower().endswith(SUFFIXES)]
        also = f"; files not taken as tables: {', '.join(others)}" if others else ""
        found.problems.append(
            f"{src}: required table{'s' if len(missing) > 1 else ''} missing: "
            + ", ".join(f"{m} (no {m}.csv or {m}.parquet)" for m in missing)
            + f"{also} (names in any case; the tables: docs/data-model.md)"
        )
    return found


def _nearest(name: str) -> str | None:
    """The table whose name ``name`` most likely misspells, if any."""
    near = difflib.get_close_matches(name, list(TABLES), n=1, cutoff=0.75)
    return near[0] if near else None


def _links(folder: Path) -> list[str]:
    """A problem for each link in a folder to copy: its target would come in with it."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            if (Path(root) / name).is_symlink():
                found.append(
                    f"{Path(root) / name}: a link; a copied folder must hold the files "
                    "themselves (copy the file in place of the link)"
                )
    return found


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder``, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _load(
    con: duckdb.DuckDBPyConnection,
    inputs: _Inputs,
    report: ImportReport,
    encoding: str,
    folder: Path,
    keys: PersonKeys | None = None,
) -> None:
    """Read every table file, check its columns and values, and write it into ``folder`` as
    the canonical table (while no file has a problem), its ``person_id`` tokenised by
    ``keys`` when given. Every problem of every file is refused in one message. One file is
    in the engine at a time."""
    problems: list[str] = []
    findings: list[Finding] = []
    for name in TABLES:
        if name not in inputs.tables:
            continue
        path = inputs.tables[name]
        staged = f"input_{name}"
        try:
            columns = read_extract(con, path, staged, what=f"the {name} table", encoding=encoding)
            require_columns(columns, path, f"the {name} table", TABLES[name].column_names)
        except ConfigError as exc:
            problems.append(str(exc))
            con.execute(f"DROP TABLE IF EXISTS {quote(staged)}")
            continue
        rows = int(one(con, f"SELECT count(*) FROM {quote(staged)}")[0])
        report.read(path.name, path, rows)
        extra = [c for c in columns if c not in TABLES[name].column_names]
        if extra:
            report.notes.append(
                f"{path.name}: {len(extra)} column{'s' if len(extra) > 1 else ''} the model "
                f"does not have, left out: {', '.join(extra)}"
            )
        clean, typed = f"clean_{name}", f"typed_{name}"
        table = TABLES[name]
        con.execute(
            f"CREATE OR REPLACE VIEW {quote(clean)} AS SELECT {ROW}, "
            + ", ".join(
                f"NULLIF(trim({quote(c)}, {literal(WHITESPACE)}), '') AS {quote(c)}"
                for c in table.column_names
            )
            + f" FROM {quote(staged)}"
        )
        # One pass converts every column and flags each text that did not convert.
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(typed)} AS SELECT {ROW}, "
            + ", ".join(f"{_convert(c)} AS {quote(c.name)}" for c in table.columns)
            + "".join(
                f", ({quote(c.name)} IS NOT NULL AND ({_convert(c)}) IS NULL) AS "
                f"{quote(FLAG + c.name)}"
                for c in table.columns
                if c.type != "string"
            )
            + f" FROM {quote(clean)}"
        )
        findings += _bad_values(con, clean, typed, path, table.columns)
        keyed = keys is not None and "person_id" in table.column_names
        if keyed and keys is not None and keys.nhs:
            hit = find_rows(
                con,
                clean,
                invalid_nhs_sql(),
                file=str(path),
                column="person_id",
                rule=NHS_RULE,
                allowed=NHS_ALLOWED,
            )
            findings += [hit] if hit is not None else []
        if not problems and not findings:
            if keyed and keys is not None:
                keys.tokenise(typed)
            query = f"SELECT {', '.join(map(quote, table.column_names))} FROM {quote(typed)}"
            report.tables.update(write_tables(con, folder, {name: query}))
        con.execute(f"DROP TABLE {quote(typed)}")
        con.execute(f"DROP VIEW {quote(clean)}")
        con.execute(f"DROP TABLE {quote(staged)}")
    raise_problems(problems + [f.line() for f in findings])
    if keys is not None:
        report.key_fingerprint = keys.fingerprint
        how = "NHS numbers, Modulus 11 checked" if keys.nhs else "any id, hashed as written"
        report.step(f"people given keyed tokens (person_id: {how})", keys.people)
    if inputs.ignored:
        report.notes.append(f"ignored (not a table of the model): {', '.join(inputs.ignored)}")
    report.notes.append(
        "tables absent (optional): "
        + (", ".join(n for n in TABLES if n not in inputs.tables) or "none")
    )


def _convert(col: Column) -> str:
    """SQL giving ``col`` in its type from the trimmed text (NULL where it does not convert).

    The engine's casts are quick but lenient (``1.5`` casts to the whole number 2, ``1_000``
    and ``NaN`` to numbers), so a cast is taken only where the text is what the rule allows: a
    whole number as the engine writes it, else a text matching :data:`INT_PATTERN`; a finite
    number with no ``_`` and no two signs in a row (the texts :data:`FLOAT_PATTERN` matches,
    without a regular expression on every row).
    """
    c = quote(col.name)
    if col.type == "date":
        return date_sql(col.name, nulls=())
    if col.type == "int":
        whole = f"TRY_CAST({c} AS BIGINT)"
        return (
            f"CASE WHEN CAST({whole} AS VARCHAR) = {c} THEN {whole} "
            f"WHEN regexp_full_match({c}, {literal(INT_PATTERN)}) THEN "
            f"TRY_CAST(regexp_replace({c}, '\\.0*$', '') AS BIGINT) END"
        )
    if col.type == "float":
        number = f"TRY_CAST({c} AS DOUBLE)"
        odd = " OR ".join(f"contains({c}, {literal(t)})" for t in ("_", "+-", "-+"))
        return f"CASE WHEN isfinite({number}) AND NOT ({odd}) THEN {number} END"
    if col.type == "bool":
        low = f"lower({c})"
        words = ", ".join(literal(w) for w in TRUE_WORDS)
        nots = ", ".join(literal(w) for w in FALSE_WORDS)
        return f"CASE WHEN {low} IN ({words}) THEN true WHEN {low} IN ({nots}) THEN false END"
    return c


def _bad_values(
    con: duckdb.DuckDBPyConnection,
    clean: str,
    typed: str,
    path: Path,
    columns: tuple[Column, ...],
) -> list[Finding]:
    """The texts that did not convert to their column's type, column by column: counted from
    the flags of ``typed``; the rows of a column with any are then found in ``clean``."""
    flagged = [c for c in columns if c.type != "string"]
    if not flagged:
        return []
    counts = one(
        con,
        "SELECT "
        + ", ".join(f"count_if({quote(FLAG + c.name)})" for c in flagged)
        + f" FROM {quote(typed)}",
    )
    found = []
    for col, n in zip(flagged, counts, strict=True):
        if not n:
            continue
        bad = f"({quote(col.name)} IS NOT NULL AND ({_convert(col)}) IS NULL)"
        checks = [(RULES[col.type], ALLOWED[col.type], bad)]
        if col.type in ("int", "float"):
            comma = f"contains({quote(col.name)}, ',')"
            checks = [
                (COMMA_RULE, COMMA_ALLOWED, f"({bad} AND {comma})"),
                (RULES[col.type], ALLOWED[col.type], f"({bad} AND NOT {comma})"),
            ]
        for rule, allowed, sql in checks:
            hit = find_rows(
                con,
                clean,
                sql,
                file=str(path),
                column=col.name,
                rule=rule,
                allowed=allowed,
                value=None if col.identifying else col.name,
            )
            if hit is not None:
                found.append(hit)
    return found


def _provenance(src: Path, inputs: _Inputs, hashes: dict[str, str]) -> dict[str, Any]:
    """The ``import`` block of ``dataset.json``: where the tables came from, each file's hash."""
    return {
        "source": "csv",
        "directory": str(src.resolve()),
        "tables": {name: path.name for name, path in inputs.tables.items()},
        "copied": sorted(inputs.copied),
        "ignored": inputs.ignored,
        "sha256": hashes,
    }


def _validated(tmp: Path, src: Path, extract_date: dt.date | None) -> list[Problem]:
    """Validate the written tables; an error stops the import with validation's message."""
    try:
        return require_valid(tmp, extract_date)
    except DataValidationError as exc:
        raise DataValidationError(
            f"{src} (the imported tables; rows are the files' data rows)",
            exc.problems,
            values_hidden=exc.values_hidden,
        ) from None
