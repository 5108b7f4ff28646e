"""The people of a HES import: from the extract (persons, registrations, practices, conditions)
or from a base dataset, and the rows of every HES table matched to them.

Tables made here, in the import's connection: ``people`` (``person_id``, ``birth_month``,
``death_date`` and, from the extract, the persons table's other columns), ``reg``
(registrations) and ``prac`` (practices).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from careval.data.adapters.common import (
    ROW,
    ImportReport,
    find_rows,
    literal,
    raise_findings,
    read_extract,
    require_columns,
)
from careval.data.adapters.hes_rows import (
    NOT_KNOWN_PRACTICES,
    PRACTICE_PATTERN,
    UNKNOWN_PRACTICE,
    codes,
    col,
    drop_where,
)

# HES ETHNOS (2001 census categories) -> the canonical broad group; others are "unknown".
ETHNOS = {
    "white": ("A", "B", "C"),
    "mixed": ("D", "E", "F", "G"),
    "asian": ("H", "J", "K", "L"),
    "black": ("M", "N", "P"),
    "other": ("R", "S"),
}
# HES STARTAGE codes for a baby under one year -> months since birth (about the middle).
INFANT_MONTHS = {7001: 0, 7002: 0, 7003: 0, 7004: 1, 7005: 4, 7006: 7, 7007: 10}
LSOA_PATTERN = r"^[EW]01[0-9]{6}$"


def _order() -> str:
    """An episode's order in time (its start, else admission; then its row)."""
    return f"(coalesce(epistart, admidate), {ROW})"


def _small_rows(con: duckdb.DuckDBPyConnection) -> bool:
    """Every row number of ``ep`` is below 2^32 (and none is below 1)."""
    low, high = con.execute(f"SELECT min({ROW}), max({ROW}) FROM ep").fetchall()[0]
    return low is None or (low >= 1 and high < 2**32)


def extract_people(con: duckdb.DuckDBPyConnection, report: ImportReport, imd: bool) -> None:
    """Table ``people`` from the episodes of the people with a spell (see docs/import-hes.md).

    Sex, LSOA and ethnic group from the person's latest episode that has a usable one; birth
    month from the latest usable MYDOB (mmyyyy), else estimated from STARTAGE at the person's
    first episode with one (start minus the age in years minus six months, to the first of
    the month; the HES codes 7001-7007 of a baby by their months); death from the spells.
    People without a sex (SEX 1 or 2) or a birth month are dropped with their records.
    """
    ethnic = " ".join(f"WHEN ethnos IN {codes(v)} THEN '{k}'" for k, v in ETHNOS.items())
    infant = " ".join(f"WHEN {a} THEN {m}" for a, m in INFANT_MONTHS.items())
    at = "coalesce(epistart, admidate)"
    est = (
        f"CASE WHEN startage BETWEEN 0 AND 120 THEN "
        f"CAST(date_trunc('month', {at} - to_months(startage * 12 + 6)) AS DATE) "
        f"WHEN startage IN {codes([str(a) for a in INFANT_MONTHS])} THEN CAST(date_trunc("
        f"'month', {at} - to_months(CASE startage {infant} END)) AS DATE) END"
    )
    dob = "CAST(try_strptime('01' || lpad(mydob, 6, '0'), '%d%m%Y') AS DATE)"
    order = _order()
    if _small_rows(con):
        # the same order as one number: the day, then the row (below 2^32), in 64 bits; a
        # number compares faster than a pair
        order = f"(date_diff('day', DATE '1970-01-01', {at}) * 4294967296 + {ROW})"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE people AS
        WITH d AS (
            SELECT person, {order} AS _o, {at} AS _at, sex, startage, lsoa, ethnos,
                {dob} AS _dob, epistart, admidate
            FROM ep WHERE person IN (SELECT person FROM spell)
        ), e AS (
            SELECT person, _o,
                CASE WHEN sex IN ('1', 'M') THEN 'M' WHEN sex IN ('2', 'F') THEN 'F' END AS _sex,
                CASE WHEN _dob BETWEEN DATE '1900-01-01' AND _at THEN _dob END AS _dob,
                {est} AS _est,
                CASE WHEN regexp_full_match(lsoa, '{LSOA_PATTERN[1:-1]}') THEN lsoa END AS _lsoa,
                CASE {ethnic} ELSE NULL END AS _eth
            FROM d
        )
        SELECT person AS person_id,
            coalesce(arg_max(_dob, _o) FILTER (WHERE _dob IS NOT NULL),
                     arg_min(_est, _o) FILTER (WHERE _est IS NOT NULL)) AS birth_month,
            arg_max(_sex, _o) FILTER (WHERE _sex IS NOT NULL) AS sex,
            coalesce(arg_max(_eth, _o) FILTER (WHERE _eth IS NOT NULL), 'unknown')
                AS ethnic_group,
            arg_max(_lsoa, _o) FILTER (WHERE _lsoa IS NOT NULL) AS lsoa,
            CAST(NULL AS BIGINT) AS imd_decile, CAST(NULL AS DATE) AS death_date
        FROM e GROUP BY person
        """
    )
    if imd:
        con.execute(
            "UPDATE people SET imd_decile = i.imd_decile FROM imd i WHERE people.lsoa = i.lsoa"
        )
    drop_where(
        con,
        "people",
        "sex IS NULL",
        report,
        "APC",
        "persons whose SEX is never 1 or 2 (dropped with their records)",
    )
    drop_where(
        con,
        "people",
        "birth_month IS NULL",
        report,
        "APC",
        "persons with no usable MYDOB or STARTAGE (dropped with their records)",
    )
    drop_where(
        con,
        "spell",
        "person NOT IN (SELECT person_id FROM people)",
        report,
        "APC",
        "spells of the persons dropped",
    )


def base_people(con: duckdb.DuckDBPyConnection, base: Path) -> None:
    """Table ``people`` from the base dataset's persons (read, never altered)."""
    path = literal(str(base / "persons.parquet"))
    con.execute(
        "CREATE OR REPLACE TABLE people AS SELECT CAST(person_id AS VARCHAR) AS person_id, "
        f"CAST(birth_month AS DATE) AS birth_month, CAST(death_date AS DATE) AS death_date "
        f"FROM read_parquet({path})"
    )


def match(
    con: duckdb.DuckDBPyConnection,
    table: str,
    file: str,
    report: ImportReport,
    against: str,
) -> dict[str, Any]:
    """Drop the rows of ``table`` whose person is not in ``people``; their linkage."""
    before = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    drop_where(
        con,
        table,
        "person NOT IN (SELECT person_id FROM people)",
        report,
        file,
        f"person not in the {against}",
    )
    after = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    return {
        "rows": before,
        "matched": after,
        "share": after / before if before else 0.0,
        "against": against,
    }


def set_deaths(con: duckdb.DuckDBPyConnection) -> None:
    """Death from the spells: the latest discharge of a spell ending in death (DISMETH 4)."""
    con.execute(
        """
        UPDATE people SET death_date = d.death FROM (
            SELECT person, max(discharge_date) AS death FROM spell
            WHERE discharge_method = '4' GROUP BY person) d
        WHERE people.person_id = d.person
        """
    )


def outside_life(
    con: duckdb.DuckDBPyConnection,
    table: str,
    first: str,
    last: str,
    file: str,
    report: ImportReport,
) -> None:
    """Drop the rows of ``table`` dated before the person's birth month or after their death
    (a DELETE joined to ``people``: each row has one person)."""
    drop_where(
        con,
        f"{table} USING people p",
        f"p.person_id = {table}.person AND {table}.{first} < p.birth_month",
        report,
        file,
        "dated before the person's birth",
    )
    drop_where(
        con,
        f"{table} USING people p",
        f"p.person_id = {table}.person AND {table}.{last} > p.death_date",
        report,
        file,
        "dated after the person's death",
    )


def registrations(con: duckdb.DuckDBPyConnection, start: dt.date) -> None:
    """Table ``reg``: one period per person and run of admissions at one GPPRAC.

    The first period starts on ``start`` (the first day of the month of the import's earliest
    event), or the birth month when later; a later admission at another practice starts a new
    period on its admission date and ends the previous one the day before; the last is open.
    Admissions whose GPPRAC is blank, malformed or a "not known" code (V81997-V81999) change
    nothing; people with no other are registered with V81999 throughout. Of two spells
    admitted on one day, the first in the file gives the practice.
    """
    known = (
        f"gpprac IS NOT NULL AND regexp_full_match(gpprac, '{PRACTICE_PATTERN[1:-1]}') "
        f"AND gpprac NOT IN {codes(NOT_KNOWN_PRACTICES)}"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE reg AS
        WITH s AS (
            SELECT person, admission_date, arg_min(gpprac, {ROW}) AS gpprac
            FROM spell WHERE {known} GROUP BY person, admission_date
        ), c AS (
            SELECT *, CASE WHEN gpprac IS DISTINCT FROM lag(gpprac) OVER w THEN 1 ELSE 0 END
                AS _new
            FROM s WINDOW w AS (PARTITION BY person ORDER BY admission_date)
        ), i AS (
            SELECT *, sum(_new) OVER (PARTITION BY person ORDER BY admission_date
                ROWS UNBOUNDED PRECEDING) AS _i
            FROM c
        ), p AS (
            SELECT person, _i, any_value(gpprac) AS practice_code, min(admission_date) AS _first
            FROM i GROUP BY person, _i
        )
        SELECT p.person AS person_id, p.practice_code,
            CASE WHEN _i = 1 THEN greatest(DATE '{start.isoformat()}', b.birth_month)
                 ELSE _first END AS start_date,
            lead(_first) OVER (PARTITION BY p.person ORDER BY _i) - 1 AS end_date
        FROM p JOIN people b ON b.person_id = p.person
        UNION ALL
        SELECT person_id, '{UNKNOWN_PRACTICE}',
            greatest(DATE '{start.isoformat()}', birth_month), NULL
        FROM people WHERE person_id NOT IN (SELECT person FROM s)
        """
    )


def read_practices(con: duckdb.DuckDBPyConnection, path: Path, encoding: str) -> None:
    """Table ``prac_map`` from the --practices CSV (practice_code, area; locality, mdg)."""
    what = "the --practices file"
    columns = read_extract(con, path, "prac_raw", what=what, encoding=encoding)
    require_columns(columns, path, what, ("practice_code", "area"))
    have = set(columns)
    file = f"{what} {path}"
    raise_findings(
        [
            find_rows(
                con,
                "prac_raw",
                f"NOT regexp_full_match(coalesce(upper(trim(practice_code)), ''), "
                f"'{PRACTICE_PATTERN[1:-1]}')",
                file=file,
                column="practice_code",
                rule="is not an ODS practice code",
                allowed="a letter and five digits, such as E85001",
            ),
            find_rows(
                con,
                "prac_raw",
                "coalesce(trim(area), '') = ''",
                file=file,
                column="area",
                rule="is blank",
                allowed="any name",
            ),
            find_rows(
                con,
                "prac_raw",
                f"{ROW} IN (SELECT {ROW} FROM (SELECT {ROW}, row_number() OVER (PARTITION BY "
                f"upper(trim(practice_code)) ORDER BY {ROW}) AS k FROM prac_raw) WHERE k > 1)",
                file=file,
                column="practice_code",
                rule="repeats a practice already listed",
                allowed="each practice once",
            ),
            find_rows(
                con,
                "prac_raw",
                "mdg IS NOT NULL AND trim(mdg) <> '' AND NOT regexp_full_match(trim(mdg), "
                "'MDG[0-9]{2}')",
                file=file,
                column="mdg",
                rule="is not an MDG code",
                allowed="MDG and two digits, such as MDG01, or blank",
            )
            if "mdg" in have
            else None,
        ]
    )
    con.execute(
        "CREATE OR REPLACE TABLE prac_map AS SELECT upper(trim(practice_code)) AS practice_code, "
        f"trim(area) AS area, {col(have, 'locality')} AS locality, {col(have, 'mdg')} AS mdg "
        "FROM prac_raw"
    )


def practices(con: duckdb.DuckDBPyConnection, mapped: bool) -> None:
    """Table ``prac``: every practice registered with, its area from ``prac_map`` when given
    (else ``unmapped``, locality ``unknown``)."""
    join = "LEFT JOIN prac_map m USING (practice_code)" if mapped else ""
    area = "coalesce(m.area, 'unmapped')" if mapped else "'unmapped'"
    locality = "coalesce(m.locality, 'unknown')" if mapped else "'unknown'"
    mdg = "m.mdg" if mapped else "NULL"
    con.execute(
        f"CREATE OR REPLACE TABLE prac AS SELECT practice_code, {mdg} AS mdg, "
        f"{locality} AS locality, {area} AS area "
        f"FROM (SELECT DISTINCT practice_code FROM reg) r {join}"
    )


def read_imd(con: duckdb.DuckDBPyConnection, path: Path, encoding: str) -> None:
    """Table ``imd`` (lsoa, imd_decile) from the --imd-lookup CSV."""
    what = "the --imd-lookup file"
    columns = read_extract(con, path, "imd_raw", what=what, encoding=encoding)
    found = require_columns(
        columns, path, what, (("lsoa11", "lsoa", "lsoa11cd", "lsoa_code"), "imd_decile")
    )
    lsoa = found["lsoa11"]
    raise_findings(
        [
            find_rows(
                con,
                "imd_raw",
                "coalesce(TRY_CAST(trim(imd_decile) AS INTEGER), 0) NOT BETWEEN 1 AND 10",
                file=f"{what} {path}",
                column="imd_decile",
                rule="is not a decile",
                allowed="a whole number 1 to 10",
            )
        ]
    )
    con.execute(
        f"CREATE OR REPLACE TABLE imd AS SELECT upper(trim({lsoa})) AS lsoa, "
        "any_value(CAST(trim(imd_decile) AS INTEGER)) AS imd_decile FROM imd_raw GROUP BY 1"
    )


def conditions_sql() -> str:
    """The conditions rows: every ICD-10 diagnosis of every episode of a spell kept, per person
    and code, dated by the discharge of the first spell (by discharge) holding it (the texts
    of each provider spell's episodes from ``spell_parts``, their codes from ``dxmap``,
    :func:`~.hes_spells.diagnosis_map`)."""
    return """
        SELECT e.person AS person_id, 'ICD10' AS code_system, m.code,
            min(s.discharge_date) AS date
        FROM (SELECT person, spell_id, unnest(_dx) AS d FROM spell_parts) e
        JOIN (SELECT d, code FROM dxmap WHERE code IS NOT NULL) m ON m.d = e.d
        JOIN spell s ON s.spell_id = e.spell_id
        GROUP BY e.person, m.code
    """


def unusable_diagnoses(con: duckdb.DuckDBPyConnection) -> int:
    """Diagnoses written in episodes that are no ICD-10 code (left out of conditions)."""
    return int(
        con.execute(
            "SELECT coalesce(sum(n), 0) FROM dxmap "
            "WHERE nullif(trim(d), '') IS NOT NULL AND code IS NULL"
        ).fetchall()[0][0]
    )
