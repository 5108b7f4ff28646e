"""``careval pseudonymise`` and ``careval keygen``: NHS numbers in an extract replaced by keyed
tokens, and the key made.

The file reading and its messages are here; the check digits, the tokens and the key files are
:mod:`careval.data.adapters.pseudonymise`'s. A message names the file, column and line, never a
value: the input holds NHS numbers.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import duckdb
import typer

from careval.cli.common import err, names, out
from careval.data.adapters import pseudonymise as ps
from careval.data.adapters.common import connect, literal, name_like
from careval.errors import SHOW_VALUES, ConfigError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_HEADER_BYTES = 1024 * 1024  # a header line longer than this is not one
_LINE = re.compile(r"CSV Error on Line: (\d+)")
# A header's name shown in a message on real data: up to 40 letters, digits and underscores,
# no run of three digits. Anything else may be a value (in a file without a header line the
# first line is a person's NHS number, date of birth, LSOA), shown only with --show-examples.
# What DuckDB says about a CSV line, in words that quote nothing from it.
_CSV_KINDS = (
    (
        re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)"),
        "has {1} fields; the header has {0} (a comma inside a value must be within double quotes)",
    ),
    (re.compile(r"Invalid unicode"), "is not UTF-8 text: save the file as CSV UTF-8"),
    (re.compile(r"unterminated quote", re.I), "has a value with an unterminated quote"),
)


def keygen(
    out_path: Annotated[Path, typer.Option("--out", help="The key file to make (never replaced)")],
) -> None:
    """Make a key file for careval pseudonymise: 32 random bytes, readable by you only."""
    key = ps.keygen(out_path)
    out.print(
        f"{out_path}: key made; fingerprint {ps.fingerprint(key)}", highlight=False, markup=False
    )
    err.print(
        "warning: keep the key file away from the data and every output: never beside "
        "pseudonymised files, in a shared folder or under version control. Anyone with the key "
        "and an NHS number can find that person's token. Keep a safe copy: without it, later "
        "extracts cannot be linked to those pseudonymised now.",
        highlight=False,
        markup=False,
    )


def pseudonymise(
    key_file: Annotated[Path, typer.Option("--key-file", help="Key file (careval keygen)")],
    in_path: Annotated[Path, typer.Option("--in", help="Extract to read: CSV or Parquet")],
    columns: Annotated[
        str, typer.Option("--columns", help="Columns of NHS numbers, comma-separated (any case)")
    ],
    out_path: Annotated[
        Path, typer.Option("--out", help="File to write, in the format of --in (never replaced)")
    ],
    any_id: Annotated[
        bool,
        typer.Option(
            "--any-id",
            help="The columns hold person keys other than NHS numbers (HESID, a local id): no "
            "check digit; each value is hashed as written, blanks at its ends removed",
        ),
    ] = False,
    keep_invalid: Annotated[
        bool,
        typer.Option(
            "--keep-invalid", help="Keep rows with an invalid NHS number, with an empty token"
        ),
    ] = False,
    keep_missing: Annotated[
        bool,
        typer.Option("--keep-missing", help="Keep rows with no value, with an empty token"),
    ] = False,
) -> None:
    """Replace NHS numbers by keyed tokens (HMAC-SHA256); every other column is untouched.

    Rows whose NHS number is missing or fails the Modulus 11 check are counted and dropped
    (kept with an empty token with --keep-invalid / --keep-missing).
    """
    key = ps.read_key(key_file)
    reports = pseudonymise_file(
        key, in_path, names(columns), out_path, any_id, keep_invalid, keep_missing
    )
    for r in reports:
        out.print(r.summary(), highlight=False, markup=False)
    out.print(
        f"{out_path}: written ({reports[-1].rows_written:,} rows)", highlight=False, markup=False
    )
    if key_file.resolve().parent == out_path.resolve().parent:
        err.print(
            f"warning: the key file {key_file} is in the folder of the output; move it away "
            "before the output is shared",
            highlight=False,
            markup=False,
        )


def pseudonymise_file(
    key: bytes,
    in_path: Path,
    columns: list[str],
    out_path: Path,
    any_id: bool = False,
    keep_invalid: bool = False,
    keep_missing: bool = False,
) -> list[ps.PseudonymiseReport]:
    """Pseudonymise ``columns`` of one CSV or Parquet file into ``out_path`` (same format),
    written beside it and moved into place when complete; one report per column."""
    kind = _check_paths(in_path, out_path)
    if not columns:
        raise ConfigError("--columns: give at least one column name")
    con = connect()
    try:
        rel = _read(con, in_path, kind)
        chosen = _columns(in_path, rel.columns, columns)
        # Written in a folder of its own beside --out: whatever the engine leaves there on a
        # failure goes with it.
        work = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
        tmp = work / out_path.name
        try:
            reports: list[ps.PseudonymiseReport] = []
            try:
                for c in chosen:
                    rel, report = ps.pseudonymise_column(
                        con,
                        rel,
                        c,
                        key,
                        nhs=not any_id,
                        keep_invalid=keep_invalid,
                        keep_missing=keep_missing,
                    )
                    if not report.rows_read and not reports:
                        raise ConfigError(f"--in {in_path}: the file holds no rows (a header only)")
                    if report.invalid and report.invalid + report.missing == report.rows_read:
                        raise ConfigError(
                            f"--in {in_path}: column {c} holds no valid NHS number "
                            f"({report.invalid:,} invalid, {report.missing:,} missing): is it "
                            "pseudonymised already, or the wrong column? (--any-id for person "
                            "keys other than NHS numbers)"
                        )
                    reports.append(report)
            except duckdb.Error as exc:
                raise _read_error(in_path, kind, exc) from None
            try:
                if kind == "csv":
                    rel.write_csv(str(tmp), header=True)
                else:
                    rel.write_parquet(str(tmp))
            except duckdb.Error as exc:  # the columns the counts did not need are read here
                text = str(exc)
                if _LINE.search(text) or str(in_path) in text:
                    raise _read_error(in_path, kind, exc) from None
                why = text.splitlines()[0] if text else type(exc).__name__
                raise ConfigError(f"--out {out_path}: could not be written: {why}") from None
            _place(tmp, out_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        con.close()
    return reports


def _check_paths(in_path: Path, out_path: Path) -> str:
    """The format of ``in_path``, once both paths are allowed."""
    if not in_path.exists():
        raise ConfigError(f"--in {in_path}: no such file")
    if not in_path.is_file():
        raise ConfigError(f"--in {in_path}: not a file")
    kind = FORMATS.get(in_path.suffix.lower())
    if kind is None:
        raise ConfigError(f"--in {in_path}: a CSV (.csv) or Parquet (.parquet) file is needed")
    if FORMATS.get(out_path.suffix.lower()) != kind:
        raise ConfigError(f"--out {out_path}: the output is {kind} like --in; name it *.{kind}")
    if os.path.lexists(out_path):
        same = out_path.exists() and os.path.samefile(in_path, out_path)
        raise ConfigError(
            f"--out {out_path}: "
            + ("is the input file" if same else "already exists; careval never replaces it")
            + "; give a new file name"
        )
    if not out_path.parent.is_dir():
        raise ConfigError(f"--out {out_path}: the directory {out_path.parent} does not exist")
    if in_path.stat().st_size == 0:
        raise ConfigError(f"--in {in_path}: the file is empty")
    return kind


def _read(con: duckdb.DuckDBPyConnection, path: Path, kind: str) -> duckdb.DuckDBPyRelation:
    source = literal(str(path))
    if kind == "parquet":
        try:
            rel = con.sql(f"SELECT * FROM read_parquet({source})")
        except duckdb.Error:
            raise ConfigError(f"--in {path}: not a readable Parquet file") from None
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names  # the file's own names (the engine renames)
        except Exception:  # pyarrow's errors for a damaged file are of several kinds
            raise ConfigError(f"--in {path}: not a readable Parquet file") from None
        _unique_names(path, names)
        return rel
    header = _header(path)
    spec = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header)
    return con.sql(
        f"SELECT * FROM read_csv({source}, header = true, auto_detect = false, delim = ',', "
        f"quote = '\"', escape = '\"', strict_mode = true, columns = {{{spec}}})"
    )


def _header(path: Path) -> list[str]:
    """The column names on the first line of a CSV file (comma-separated, UTF-8)."""
    with open(path, "rb") as f:
        raw = f.readline(_HEADER_BYTES)
    try:
        line = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(
            f"--in {path}: line 1 (the header) is not UTF-8 text: save the file as CSV UTF-8"
        ) from None
    header = next(csv.reader([line]), [])
    if not header or not any(h.strip() for h in header):
        raise ConfigError(f"--in {path}: line 1 holds no column names")
    _unique_names(path, header)
    return header


def _unique_names(path: Path, names: list[str]) -> None:
    """Refuse a file naming a column twice in any case: the engine's names are
    case-insensitive (it renames a Parquet file's second ``nhs_number`` ``nhs_number_1``,
    which --columns would then miss, leaving its NHS numbers in the output)."""
    seen: set[str] = set()
    for h in names:
        if h.lower() in seen:
            raise ConfigError(
                f"--in {path}: the column name {_shown(h)} is used more than once (names are "
                "compared in any case)"
            )
        seen.add(h.lower())


def _shown(name: str) -> str:
    """A header's name for a message: quoted when it looks like a column name or values may
    be shown, else a placeholder (it may be a value from a line of data)."""
    if SHOW_VALUES.get() or name_like(name):
        return repr(name)
    return "(a name not shown: it does not look like a column name)"


def _listed(present: list[str]) -> str:
    """The file's column names for a message; those that may be values only counted."""
    if SHOW_VALUES.get():
        return ", ".join(repr(c) for c in present)
    names = [repr(c) for c in present if name_like(c)]
    hidden = len(present) - len(names)
    if not hidden:
        return ", ".join(names)
    more = (
        f"{hidden:,} name{'s' if hidden > 1 else ''} not shown, which "
        f"do{'es' if hidden == 1 else ''} not look like a column name (is line 1 a header? "
        "careval --show-examples shows them)"
    )
    return ", ".join(names) + ("; and " if names else "") + more


def _columns(path: Path, present: list[str], wanted: list[str]) -> list[str]:
    """The columns of the file named by ``wanted``, whatever their case."""
    by_lower: dict[str, list[str]] = {}
    for c in present:
        by_lower.setdefault(c.lower(), []).append(c)
    chosen, problems = [], []
    named: dict[str, str] = {}  # one column, however often and in whatever case it is named
    for n in wanted:
        named.setdefault(n.lower(), n)
    for w in named.values():
        found = by_lower.get(w.lower(), [])
        if len(found) == 1:
            chosen.append(found[0])
        elif found:
            problems.append(f"{w!r} matches {len(found)} columns ({_listed(found)})")
        else:
            problems.append(f"no column {w!r}")
    if problems:
        there = _listed(present)
        hint = ""
        if len(present) == 1:
            for d, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
                if d in present[0]:
                    hint = f"; the file seems to be separated by {word}: save it with commas"
        raise ConfigError(f"--in {path}: {'; '.join(problems)}; its columns are {there}{hint}")
    return chosen


def _read_error(path: Path, kind: str, exc: duckdb.Error) -> ConfigError:
    """One message for a file the engine could not read, quoting nothing from it."""
    text = str(exc)
    if kind == "parquet":
        return ConfigError(f"--in {path}: not a readable Parquet file")
    line = _LINE.search(text)
    where = f"line {line.group(1)}" if line else "a line"
    for pattern, words in _CSV_KINDS:
        if m := pattern.search(text):
            return ConfigError(f"--in {path}: {where} {words.format(*m.groups())}")
    return ConfigError(f"--in {path}: {where} cannot be read as comma-separated UTF-8 CSV")


def _place(tmp: Path, out_path: Path) -> None:
    """Move the finished ``tmp`` to ``out_path``, never replacing a file that appeared there."""
    try:
        os.link(tmp, out_path)  # fails, atomically, when out_path exists
    except FileExistsError:
        raise ConfigError(f"--out {out_path}: appeared while writing; left as it is") from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(out_path):
            raise ConfigError(f"--out {out_path}: appeared while writing; left as it is") from None
        os.replace(tmp, out_path)
