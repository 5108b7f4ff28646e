"""Pseudonymisation: NHS numbers checked by their Modulus 11 check digit and replaced by keyed
tokens, the same for the same person in every file pseudonymised with the same key.

A token is ``"P"`` followed by the first 32 hexadecimal characters (128 bits) of the
HMAC-SHA256 of the normalised NHS number under a secret key of 32 random bytes
(:func:`keygen`). Without the key a token cannot be traced back to its number, nor made from
one; with the same key the same number always gives the same token, so files pseudonymised
apart still link. The key is identified by its :func:`fingerprint` (a hash of it, never the
key).

The work runs in DuckDB (:func:`pseudonymise_column`): the check digits are computed in SQL
(:func:`nhs_valid_sql`), only the distinct valid numbers pass through Python to be hashed, and
the tokens are joined back in the engine. A number that fails the check is counted by its reason
and never kept: its row is dropped, or kept with an empty (null) token when asked. See
``docs/pseudonymisation.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from careval.data.adapters.common import quote
from careval.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

KEY_BYTES = 32  # a key is 32 random bytes, written as 64 hexadecimal characters
TOKEN_PREFIX = "P"
TOKEN_HEX = 32  # 128 bits of the HMAC kept in a token
_FINGERPRINT_SALT = b"careval-key-fingerprint"
_MAX_KEY_FILE = 4096  # bytes: a key file is one line; anything larger is not one
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_BLANK = " \t\r\n"  # stripped from both ends of a value before it is checked
# The layouts of an NHS number: 10 digits, or 3-3-4 with spaces or hyphens between the groups.
_LAYOUT = r"^[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}$"
_LAYOUT_RE = re.compile(_LAYOUT)
_NOT_ALLOWED_RE = re.compile(r"[^0-9 -]")
# Why a value is not a valid NHS number, in the order they are tested.
REASONS = {
    "non_digit": "a character other than a digit, space or hyphen",
    "wrong_length": "not 10 digits",
    "layout": "10 digits, but spaced other than 3-3-4",
    "check_digit": "fails the Modulus 11 check digit",
}
_BATCH = 100_000  # distinct values hashed, and inserted into the engine, at a time


# --- NHS numbers ------------------------------------------------------------------------------


def nhs_problem(value: str | int | None) -> str | None:
    """Why ``value`` is not a valid NHS number (a key of :data:`REASONS`, or ``"missing"``),
    or None when it is one.

    The value is stripped of blanks at both ends; its digits may be grouped 3-3-4 by spaces or
    hyphens. The tenth digit must be the Modulus 11 check digit of the first nine: weights 10
    down to 2, the check is 11 less the remainder of the weighted sum by 11 (11 reads as 0;
    10 means the number can never be issued).

    Examples
    --------
    >>> nhs_problem("943 476 5919") is None
    True
    >>> nhs_problem("9434765918")
    'check_digit'
    >>> nhs_problem("94347659")
    'wrong_length'
    """
    if value is None:
        return "missing"
    text = str(value).strip(_BLANK)
    if not text:
        return "missing"
    if _NOT_ALLOWED_RE.search(text):
        return "non_digit"
    digits = text.replace(" ", "").replace("-", "")
    if len(digits) != 10:
        return "wrong_length"
    if not _LAYOUT_RE.match(text):
        return "layout"
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11  # 11 becomes 0; 10 matches no digit
    return None if check == int(digits[9]) else "check_digit"


def nhs_number_valid(value: str | int | None) -> bool:
    """Whether ``value`` is a valid NHS number (see :func:`nhs_problem`).

    Examples
    --------
    >>> nhs_number_valid("9434765919"), nhs_number_valid("943-476-5919")
    (True, True)
    >>> nhs_number_valid("9434765918"), nhs_number_valid("94347659190")
    (False, False)
    """
    return nhs_problem(value) is None


def normalise(value: str, nhs: bool = True) -> str:
    """The form a value is hashed in: stripped of blanks at both ends, and for an NHS number
    without the spaces or hyphens between its groups.

    Examples
    --------
    >>> normalise(" 943 476 5919 ")
    '9434765919'
    >>> normalise(" HES-123 ", nhs=False)
    'HES-123'
    """
    text = value.strip(_BLANK)
    return text.replace(" ", "").replace("-", "") if nhs else text


def _trimmed_sql(column_sql: str) -> str:
    blanks = " || ".join(f"chr({ord(c)})" for c in _BLANK)
    return f"trim(CAST({column_sql} AS VARCHAR), {blanks})"


def _mod11_sql(digits_sql: str) -> str:
    """True when the 10 ASCII digits of ``digits_sql`` end in their Modulus 11 check digit."""
    d = [f"(ascii(substr({digits_sql}, {i}, 1)) - 48)" for i in range(1, 11)]
    total = " + ".join(f"{x} * {w}" for x, w in zip(d[:9], range(10, 1, -1), strict=True))
    return f"((11 - ({total}) % 11) % 11 = {d[9]})"


def nhs_reason_sql(column_sql: str) -> str:
    """A DuckDB SQL expression: :func:`nhs_problem` of ``column_sql`` (null when valid).

    ``column_sql`` is any SQL expression (a quoted column name); a non-text one is cast to
    text. The check digit is computed from the digits' character codes, so no value can make
    the expression fail.
    """
    t = _trimmed_sql(column_sql)
    digits = f"replace(replace({t}, ' ', ''), '-', '')"
    return (
        f"CASE WHEN {column_sql} IS NULL OR {t} = '' THEN 'missing' "
        f"WHEN regexp_matches({t}, '[^0-9 -]') THEN 'non_digit' "
        f"WHEN length({digits}) <> 10 THEN 'wrong_length' "
        f"WHEN NOT regexp_matches({t}, '{_LAYOUT}') THEN 'layout' "
        f"WHEN NOT {_mod11_sql(digits)} THEN 'check_digit' END"
    )


def nhs_valid_sql(column_sql: str) -> str:
    """A DuckDB SQL expression, true where ``column_sql`` holds a valid NHS number (never null).

    Examples
    --------
    >>> import duckdb
    >>> duckdb.sql(f"SELECT {nhs_valid_sql(repr('943 476 5919'))}").fetchone()
    (True,)
    """
    return f"({nhs_reason_sql(column_sql)} IS NULL)"


def normalised_sql(column_sql: str, nhs: bool = True) -> str:
    """A DuckDB SQL expression: :func:`normalise` of ``column_sql`` (as text)."""
    t = _trimmed_sql(column_sql)
    return f"replace(replace({t}, ' ', ''), '-', '')" if nhs else t


def nhs_valid_expr(value: ir.StringValue) -> ir.BooleanValue:
    """An Ibis expression, true where the string ``value`` is a valid NHS number (validation's
    own check, in whatever engine the dataset is read by)."""
    text = value.strip()
    digits = text.re_replace("[ -]", "")
    d = [digits.substr(i, 1).ascii_str() - 48 for i in range(10)]
    total = d[0] * 10
    for x, w in zip(d[1:9], range(9, 1, -1), strict=True):
        total = total + x * w
    return (
        value.notnull() & text.re_search(_LAYOUT) & (((11 - total % 11) % 11) == d[9])
    ).fill_null(False)


# --- keys --------------------------------------------------------------------------------------


def keygen(path: str | Path) -> bytes:
    """Make a new key file at ``path``: 32 random bytes as 64 hexadecimal characters, readable
    by its owner only (mode 0600). Returns the key.

    Raises
    ------
    ConfigError
        ``path`` exists (a key file is never overwritten: everything pseudonymised with the old
        key would no longer link), or its directory does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: the directory {path.parent} does not exist")
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; careval never overwrites a key file (everything "
            "pseudonymised with the old key would no longer link). Give a new file name."
        ) from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask allowed
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return key


def read_key(path: str | Path) -> bytes:
    """The key in the key file at ``path``.

    The file must hold 64 hexadecimal characters (blanks around them allowed) and, on POSIX
    systems, be readable and writable by its owner only: a key other users can read protects
    nothing, so such a file is refused rather than warned about.

    Raises
    ------
    ConfigError
        The file is missing, is not a file, can be read or written by group or others, or does
        not hold a key (the message says what is wrong, never what the file holds).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--key-file {path}: no such file; make a key with careval keygen --out")
    if not path.is_file():
        raise ConfigError(f"--key-file {path}: not a file")
    mode = path.stat().st_mode
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"--key-file {path}: other users can read or change it (permissions "
            f"{stat.filemode(mode)}); a key must be private to its owner: chmod 600 {path}"
        )
    with open(path, "rb") as f:
        raw = f.read(_MAX_KEY_FILE + 1)
    what = "not a careval key file: expected 64 hexadecimal characters (32 bytes) on one line"
    if len(raw) > _MAX_KEY_FILE:
        raise ConfigError(f"--key-file {path}: {what}; the file is larger than {_MAX_KEY_FILE}")
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"--key-file {path}: {what}; it holds non-ASCII bytes") from None
    if not _HEX.fullmatch(text):
        found = f"{len(text)} characters" if text else "an empty file"
        raise ConfigError(f"--key-file {path}: {what}; found {found}")
    return bytes.fromhex(text)


def fingerprint(key: bytes) -> str:
    """A name for ``key`` that can be recorded and compared (16 hexadecimal characters of a
    SHA-256 of it); the key cannot be found from it.

    Examples
    --------
    >>> len(fingerprint(bytes(32)))
    16
    """
    return hashlib.sha256(_FINGERPRINT_SALT + key).hexdigest()[:16]


# --- tokens ------------------------------------------------------------------------------------


class Tokeniser:
    """Keyed tokens of person keys: ``"P"`` + 32 hex characters of their HMAC-SHA256.

    The HMAC's inner and outer states are computed once for the key and copied for each value.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"a key is {KEY_BYTES} bytes; got {len(key)}")
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.fingerprint = fingerprint(key)

    def token(self, value: str) -> str:
        """The token of one (already normalised) value."""
        return self.tokens([value])[0]

    def tokens(self, values: Iterable[str]) -> list[str]:
        """The tokens of many values, in order."""
        copy, out = self._base.copy, []
        for v in values:
            h = copy()
            h.update(v.encode("utf-8"))
            out.append(TOKEN_PREFIX + h.hexdigest()[:TOKEN_HEX])
        return out


def token(key: bytes, value: str, nhs: bool = True) -> str:
    """The token of one person key (normalised first, see :func:`normalise`)."""
    return Tokeniser(key).token(normalise(value, nhs))


# --- in the engine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudonymiseReport:
    """What pseudonymising one column did: rows read and written, values missing or invalid
    (by reason), distinct people, and the key's fingerprint (never the key)."""

    column: str
    rows_read: int
    rows_written: int
    missing: int
    invalid: int
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    distinct_people: int = 0
    key_fingerprint: str = ""
    nhs_numbers: bool = True  # checked as NHS numbers (else any person key, trimmed)
    kept_invalid: bool = False  # rows with an invalid value kept, with a null token
    kept_missing: bool = False  # rows with no value kept, with a null token

    @property
    def dropped(self) -> int:
        """Rows left out of the output."""
        return self.rows_read - self.rows_written

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return asdict(self)

    def summary(self) -> str:
        """One line: counts only, never a value."""
        why = ", ".join(
            f"{n:,} {r.replace('_', ' ')}" for r, n in self.invalid_by_reason.items() if n
        )
        invalid = f"{self.invalid:,} invalid" + (f" ({why})" if why else "")
        return (
            f"{self.column}: {self.rows_read:,} rows read, {self.rows_written:,} written; "
            f"{invalid}, {_fate(self.kept_invalid)}; {self.missing:,} missing, "
            f"{_fate(self.kept_missing)}; {self.distinct_people:,} distinct people; "
            f"key fingerprint {self.key_fingerprint}"
        )


def _fate(kept: bool) -> str:
    return "kept with no token" if kept else "dropped"


Source = duckdb.DuckDBPyRelation | str


def _relation(con: duckdb.DuckDBPyConnection, source: Source) -> duckdb.DuckDBPyRelation:
    return con.table(source) if isinstance(source, str) else source


def pseudonymise_column(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    column: str,
    key: bytes,
    *,
    nhs: bool = True,
    keep_invalid: bool = False,
    keep_missing: bool = False,
) -> tuple[duckdb.DuckDBPyRelation, PseudonymiseReport]:
    """Replace ``column`` of a relation by keyed tokens, in the engine.

    Parameters
    ----------
    con
        The DuckDB connection ``source`` belongs to; temporary views and one temporary table
        of values and tokens are made on it (never the key).
    source
        A relation, or the name of a table or view on ``con``.
    column
        The column of person keys (exact name); any type, read as text.
    key
        The secret key (:func:`read_key`).
    nhs
        The values are NHS numbers: a value failing :func:`nhs_problem` is invalid. When
        False (a HESID, a local id) every non-blank value is valid and hashed as trimmed.
    keep_invalid, keep_missing
        Keep the rows whose value is invalid (or missing: null or blank) with a null token.
        By default they are dropped; either way they are counted.

    Returns
    -------
    relation, PseudonymiseReport
        The rows in their order, every other column untouched, ``column`` holding tokens (text);
        and the counts.
    """
    rel = _relation(con, source)
    if column not in rel.columns:
        raise ConfigError(f"no column {column!r}; the columns are {', '.join(rel.columns)}")
    tag = secrets.token_hex(6)
    src, classified, mapping = (f"_careval_ps_{k}_{tag}" for k in ("src", "cls", "map"))
    order, norm, why = (f"_careval_{k}_{tag}" for k in ("ord", "norm", "why"))
    c = quote(column)
    blank = f"{c} IS NULL OR {_trimmed_sql(c)} = ''"
    reason = nhs_reason_sql(c) if nhs else f"CASE WHEN {blank} THEN 'missing' END"
    rel.create_view(src, replace=True)
    con.execute(
        f"CREATE TEMP VIEW {classified} AS SELECT *, row_number() OVER () AS {order}, "
        f"{normalised_sql(c, nhs)} AS {norm}, {reason} AS {why} FROM {src}"
    )
    names = ["missing", *REASONS]
    counted = con.execute(
        "SELECT count(*), "
        + ", ".join(f"count(*) FILTER (WHERE {why} = '{r}')" for r in names)
        + f" FROM {classified}"
    ).fetchall()[0]
    rows, missing, *bad = (int(n) for n in counted)
    by_reason = dict(zip(REASONS, bad, strict=True)) if nhs else {}
    tokeniser = Tokeniser(key)
    con.execute(f"CREATE TEMP TABLE {mapping} (value VARCHAR, token VARCHAR)")
    people = insert_tokens(
        con,
        mapping,
        f"SELECT DISTINCT {norm} AS value FROM {classified} WHERE {why} IS NULL",
        tokeniser,
    )
    kept = [f"{why} IS NULL"]
    if keep_invalid:
        kept.append(f"{why} <> 'missing'")
    if keep_missing:
        kept.append(f"{why} = 'missing'")
    out = con.sql(
        # A plain equality join (a hash join); the token only where the value is valid (an
        # invalid number can normalise to a valid one: "94347 65919").
        f"SELECT s.* EXCLUDE ({order}, {norm}, {why}) "
        f"REPLACE (CASE WHEN s.{why} IS NULL THEN m.token END AS {c}) "
        f"FROM {classified} s LEFT JOIN {mapping} m ON s.{norm} = m.value "
        f"WHERE {' OR '.join(kept)} ORDER BY s.{order}"
    )
    invalid = sum(bad)
    written = rows - (0 if keep_invalid else invalid) - (0 if keep_missing else missing)
    report = PseudonymiseReport(
        column=column,
        rows_read=rows,
        rows_written=written,
        missing=missing,
        invalid=invalid,
        invalid_by_reason=by_reason,
        distinct_people=people,
        key_fingerprint=tokeniser.fingerprint,
        nhs_numbers=nhs,
        kept_invalid=keep_invalid,
        kept_missing=keep_missing,
    )
    return out, report


def insert_tokens(
    con: duckdb.DuckDBPyConnection, mapping: str, values_sql: str, tokeniser: Tokeniser
) -> int:
    """Hash the values of the query ``values_sql`` (one column, ``value``: distinct, already
    normalised) and append them with their tokens to the table ``mapping`` (value, token), a
    batch at a time; returns how many there were."""
    values = con.execute(values_sql).to_arrow_table().column("value")
    batch = f"{mapping}_batch"
    for start in range(0, len(values), _BATCH):
        chunk = values.slice(start, _BATCH)
        tokens = tokeniser.tokens(chunk.to_pylist())
        con.register(batch, pa.table({"value": chunk, "token": pa.array(tokens, pa.string())}))
        try:
            con.execute(f"INSERT INTO {mapping} SELECT value, token FROM {batch}")
        finally:
            con.unregister(batch)
    return len(values)


# --- linkage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkageReport:
    """How many rows (and people) of one table have their person in another."""

    rows: int
    matched_rows: int
    missing_rows: int  # rows with no person key (never matched)
    people: int
    matched_people: int

    @property
    def share(self) -> float | None:
        """Share of rows whose person is found (None for no rows)."""
        return self.matched_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        """The counts and the share, as JSON-ready values."""
        return {**asdict(self), "share": self.share}


def linkage(
    con: duckdb.DuckDBPyConnection,
    left: Source,
    right: Source | Sequence[Source],
    key_col: str,
    right_key_col: str | None = None,
) -> LinkageReport:
    """The share of rows of ``left`` whose person (``key_col``) is a person of ``right``.

    ``right`` may be several relations (e.g. admitted patient care and the GP tables): a person
    found in any of them is matched. ``right_key_col`` names their person column when it is
    not ``key_col``. A row with a null key is never matched and is counted in ``missing_rows``.
    """
    rights = [right] if isinstance(right, duckdb.DuckDBPyRelation | str) else list(right)
    if not rights:
        raise ConfigError("linkage needs at least one table to match against")
    tag = secrets.token_hex(6)
    k, rk = quote(key_col), quote(right_key_col or key_col)
    views = []
    for i, r in enumerate([left, *rights]):
        rel = _relation(con, r)
        want = key_col if i == 0 else (right_key_col or key_col)
        if want not in rel.columns:
            raise ConfigError(f"no column {want!r}; the columns are {', '.join(rel.columns)}")
        views.append(f"_careval_link_{i}_{tag}")
        rel.create_view(views[-1], replace=True)
    known = " UNION ".join(f"SELECT {rk} AS k FROM {v} WHERE {rk} IS NOT NULL" for v in views[1:])
    found = f"{k} IN (SELECT k FROM ({known}))"
    counted = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {found}), count(*) FILTER (WHERE {k} IS NULL), "
        f"count(DISTINCT {k}), count(DISTINCT {k}) FILTER (WHERE {found}) FROM {views[0]}"
    ).fetchall()[0]
    rows, matched, missing, people, matched_people = (int(n or 0) for n in counted)
    for v in views:
        con.execute(f"DROP VIEW IF EXISTS {v}")
    return LinkageReport(rows, matched, missing, people, matched_people)
