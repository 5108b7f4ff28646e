"""Row steps every HES file shares: optional columns, counted drops, duplicate keys, codes.

Each step runs in DuckDB on a table the adapter loaded (:func:`careval.data.adapters.common.
read_extract`) and records what it dropped in the :class:`~careval.data.adapters.common.
ImportReport`, with the file and the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb

from careval.data.adapters.common import ROW, ImportReport, quote

# HES codes the importer reads as "a transfer": DISDEST / ADMISORC 49-53 (another NHS provider,
# hospice, care home...; the HES data dictionary's "transfer" destinations and sources).
TRANSFER_CODES = ("49", "50", "51", "52", "53")
UNKNOWN_PRACTICE = "V81999"  # the HES code for "practice not known"
PRACTICE_PATTERN = r"^[A-Z][0-9]{5}$"
NOT_KNOWN_PRACTICES = ("V81997", "V81998", "V81999")
PRIMARY_UNKNOWN = "R69X"  # ICD-10 "illness, unspecified": what HES cleaning puts in for none


def col(
    columns: Collection[str],
    name: str | None,
    default: str = "CAST(NULL AS VARCHAR)",
    *,
    trimmed: bool = False,
) -> str:
    """``trim(column)`` when the file has it (blank read as NULL), else ``default``.
    ``trimmed``: the column is trimmed already (:func:`trimmed_rows`)."""
    if name is None or name not in columns:
        return default
    return f"nullif({quote(name) if trimmed else f'trim({quote(name)})'}, '')"


def trimmed_rows(table: str, columns: Sequence[str], untrimmed: Collection[str] = ()) -> str:
    """A subquery of ``table``'s rows: :data:`ROW`, ``_h`` (:func:`content_hash` of the text
    as read) and every column in ``columns`` trimmed, once (those in ``untrimmed`` as read)."""
    trims = "".join(
        f", {quote(c) if c in untrimmed else f'trim({quote(c)})'} AS {quote(c)}"
        for c in columns
        if c != ROW
    )
    return f"(SELECT {ROW}, {content_hash(columns)} AS _h{trims} FROM {quote(table)})"


def codes(values: Sequence[str]) -> str:
    """``('a', 'b')`` for a SQL IN list."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def drop_where(
    con: duckdb.DuckDBPyConnection,
    table: str,
    condition: str,
    report: ImportReport,
    file: str,
    reason: str,
) -> int:
    """Delete the rows of ``table`` where ``condition`` is true; record and return their count
    (the count the DELETE gives: one pass over the table)."""
    n = int(con.execute(f"DELETE FROM {table} WHERE {condition}").fetchall()[0][0])
    report.drop(file, reason, n)
    return n


def dedupe(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    report: ImportReport,
    file: str,
    label: str,
    prefer: str = "",
) -> None:
    """Keep the first row (lowest :data:`ROW`) of each ``key`` value of ``table``; with
    ``prefer`` (a SQL expression to sort by first, e.g. finished episodes before unfinished),
    the first in that order.

    The rows left out are counted in two reasons: exact copies of the one kept (every column
    read equal: its ``_h`` content hash) and rows with the same key but other content.
    """
    order = f"{prefer}, {ROW}" if prefer else ROW
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _dups AS SELECT {ROW}, _h = first(_h) OVER w AS _same, "
        f"row_number() OVER w AS _k FROM {table} "
        f"WINDOW w AS (PARTITION BY {key} ORDER BY {order})"
    )
    con.execute("DELETE FROM _dups WHERE _k = 1")
    same, other = con.execute(
        "SELECT count(*) FILTER (WHERE _same), count(*) FILTER (WHERE NOT _same) FROM _dups"
    ).fetchall()[0]
    report.drop(file, f"duplicate {label} (same {key.upper()}, same content)", int(same))
    report.drop(
        file,
        f"duplicate {label} key, different content (same {key.upper()}; one row kept)",
        int(other),
    )
    if same or other:
        con.execute(f"DELETE FROM {table} WHERE {ROW} IN (SELECT {ROW} FROM _dups)")
    con.execute("DROP TABLE _dups")


def content_hash(columns: Sequence[str]) -> str:
    """SQL hashing every column read (not the row number): equal rows, equal hashes."""
    return "hash(" + ", ".join(quote(c) for c in columns if c != ROW) + ")"


def icd10_sql(raw: str) -> str:
    """SQL normalising a HES diagnosis to the canonical 4-character form, NULL when unusable.

    Upper case; dots, dashes and spaces removed; the first three characters must be a letter
    and two digits; a fourth character is kept when it is a digit or the HES filler ``X``;
    anything after it (a fifth character, dagger and asterisk marks ``D`` / ``A``, dashes) is
    dropped; a three-character code is padded with ``X`` (``R55`` -> ``R55X``), as HES writes
    it. ``J18.9``, ``J189-`` and ``J189`` all give ``J189``; ``I10X D`` gives ``I10X``.
    """
    clean = f"regexp_replace(upper(coalesce({raw}, '')), '[\\s.\\-]', '', 'g')"
    stem = f"regexp_extract({clean}, '^([A-Z][0-9]{{2}})([0-9X]?)', 1)"
    fourth = f"regexp_extract({clean}, '^([A-Z][0-9]{{2}})([0-9X]?)', 2)"
    return (
        f"CASE WHEN {stem} = '' THEN NULL WHEN {fourth} = '' THEN {stem} || 'X' "
        f"ELSE {stem} || {fourth} END"
    )
