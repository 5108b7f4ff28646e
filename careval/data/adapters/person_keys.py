"""Keyed tokens for the person key of the canonical tables, shared by ``careval import csv``
and ``careval import omop`` (``--key-file``).

The tokens are those of :mod:`careval.data.adapters.pseudonymise` (and so of
``careval pseudonymise`` and ``careval import hes``): the same key and the same value give
the same token whichever command made it, so extracts imported apart with one key link. A
value is hashed once per import however many tables hold it: the distinct values of each
table not seen before are hashed into one temporary mapping table, and each table's
``person_id`` is replaced by a join in the engine. The key is never written anywhere.
"""

from __future__ import annotations

import duckdb

from careval.data.adapters.common import quote
from careval.data.adapters.pseudonymise import (
    Tokeniser,
    insert_tokens,
    nhs_reason_sql,
    normalised_sql,
)

COLUMN = "person_id"
NHS_RULE = "is not a valid NHS number"
NHS_ALLOWED = (
    "10 digits (3-3-4 spacing allowed) ending in their Modulus 11 check digit; a row cannot be "
    "dropped without breaking the references to its person, so the import stops (--any-id when "
    "person_id is not an NHS number)"
)
_MAP = "_careval_person_tokens"


def invalid_nhs_sql(column: str = COLUMN) -> str:
    """SQL, true where ``column`` holds a value that is not a valid NHS number (a missing
    value is not invalid: it is left to validation)."""
    return f"coalesce({nhs_reason_sql(quote(column))} NOT IN ('missing'), false)"


class PersonKeys:
    """Replace ``person_id`` in tables of one DuckDB connection by keyed tokens.

    Parameters
    ----------
    con
        The connection holding the tables; one temporary table of values and tokens is made
        on it (never the key).
    key
        The secret key (:func:`careval.data.adapters.pseudonymise.read_key`).
    nhs
        The values are NHS numbers: hashed without the spaces or hyphens between their groups
        (check them first with :func:`invalid_nhs_sql`). Otherwise any value is hashed as
        written, stripped of blanks at both ends (``careval pseudonymise --any-id``).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, key: bytes, *, nhs: bool) -> None:
        self._con = con
        self._tokeniser = Tokeniser(key)
        self.fingerprint = self._tokeniser.fingerprint
        self.nhs = nhs
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_MAP} (value VARCHAR, token VARCHAR)")

    @property
    def people(self) -> int:
        """Distinct values hashed so far."""
        row = self._con.execute(f"SELECT count(*) FROM {_MAP}").fetchone()
        return int(row[0]) if row else 0

    def tokenise(self, table: str, column: str = COLUMN) -> None:
        """Replace ``column`` of the table ``table`` by tokens (a missing or blank value stays
        missing); the other columns, and the rows' order when the table has a ``_row``
        column, are kept."""
        con, c, t = self._con, quote(column), quote(table)
        norm = normalised_sql(f"s.{c}", self.nhs)
        insert_tokens(
            con,
            _MAP,
            f"SELECT DISTINCT {norm} AS value FROM {t} s WHERE s.{c} IS NOT NULL "
            f"AND {norm} <> '' AND {norm} NOT IN (SELECT value FROM {_MAP})",
            self._tokeniser,
        )
        cols = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
        order = " ORDER BY s._row" if "_row" in cols else ""
        keyed = quote(f"{table}_keyed")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {keyed} AS SELECT s.* REPLACE (m.token AS {c}) "
            f"FROM {t} s LEFT JOIN {_MAP} m ON {norm} = m.value{order}"
        )
        con.execute(f"DROP TABLE {t}")
        con.execute(f"ALTER TABLE {keyed} RENAME TO {t}")
