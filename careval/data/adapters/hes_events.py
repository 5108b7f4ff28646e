"""HES A&E attendances and outpatient appointments into ``ae_attendances`` and
``outpatient_appointments`` (tables ``ae`` and ``op`` in the import's connection)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from careval.data.adapters.common import (
    DATE_WORDS,
    ROW,
    Finding,
    ImportReport,
    bad_date_sql,
    date_sql,
    find_rows,
)
from careval.data.adapters.hes_rows import codes, col, content_hash, dedupe, drop_where
from careval.data.adapters.hes_spells import number_check
from careval.data.costs import UNIT_COST

PERSON_KEYS = ("hesid", "nhs_number", "newnhsno")
AE_COLUMNS = (*PERSON_KEYS, "aekey", "arrivaldate", "aeattenddisp", "aeattendcat", "cost")
AE_REQUIRED = ("aekey", "arrivaldate", "aeattenddisp")
OP_COLUMNS = (
    *PERSON_KEYS,
    "attendkey",
    "apptdate",
    "tretspef",
    "firstatt",
    "attended",
    "cost",
)
OP_REQUIRED = ("attendkey", "apptdate", "tretspef", "firstatt", "attended")
# HES AEATTENDDISP -> the canonical disposal (codes read with a leading zero: 1 is 01).
AE_DISPOSAL = {
    "admitted": ("01",),
    "discharged": ("02", "03"),
    "referred": ("04", "05", "06", "07", "11"),
    "died": ("10",),
    "left": ("12", "13"),
    "other": ("14", "99"),
}
OP_ATTENDED = ("5", "6")  # seen (on time, or late but seen)
OP_NOT_ATTENDED = ("0", "2", "3", "4", "7")  # cancelled, did not attend, late and not seen
OP_FIRST = ("1", "3")  # first attendance, face to face or by telephone / telemedicine
OP_FOLLOW_UP = ("2", "4")


def check_dates(
    con: duckdb.DuckDBPyConnection, table: str, column: str, path: Path, what: str
) -> Finding | None:
    """Text in the date column that is no date, over every row."""
    return find_rows(
        con,
        table,
        bad_date_sql(column),
        file=f"{what} {path}",
        column=column,
        rule="is not a date",
        allowed=DATE_WORDS + "; blank or a HES null date (1800-01-01, 1801-01-01) for none",
    )


def check_file(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], path: Path, what: str
) -> list[Finding]:
    """The date and cost checks of an A&E or outpatient file."""
    date = "arrivaldate" if table == "ae_raw" else "apptdate"
    return [
        f
        for f in (
            check_dates(con, table, date, path, what),
            number_check(con, table, columns, path, what),
        )
        if f
    ]


def ae_rows(
    con: duckdb.DuckDBPyConnection, columns: Sequence[str], person: str, report: ImportReport
) -> None:
    """Table ``ae`` from ``ae_raw``: one row per attendance key with a person key."""
    have = set(columns)
    disp = f"lpad({col(have, 'aeattenddisp')}, 2, '0')"
    mapped = " ".join(f"WHEN {disp} IN {codes(v)} THEN '{k}'" for k, v in AE_DISPOSAL.items())
    cost = f"coalesce(TRY_CAST({col(have, 'cost')} AS DOUBLE), {UNIT_COST['ae']})"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE ae AS SELECT {ROW}, {col(have, "aekey")} AS aekey,
            {col(have, person)} AS person, {date_sql("arrivaldate")} AS arrival_date,
            CASE {mapped} ELSE NULL END AS disposal, {cost} AS cost,
            {content_hash(columns)} AS _h
        FROM ae_raw
        """
    )
    con.execute("DROP TABLE ae_raw")
    _common(con, "ae", "aekey", "A&E", "attendance", report)
    other = con.execute("SELECT count(*) FROM ae WHERE disposal IS NULL").fetchall()[0][0]
    if other:
        report.step("A&E attendances whose AEATTENDDISP is no HES code (read as other)", other)
        con.execute("UPDATE ae SET disposal = 'other' WHERE disposal IS NULL")


def op_rows(
    con: duckdb.DuckDBPyConnection, columns: Sequence[str], person: str, report: ImportReport
) -> None:
    """Table ``op`` from ``op_raw``: one row per appointment key with a person key."""
    have = set(columns)
    attended = col(have, "attended")
    first = f"upper({col(have, 'firstatt')})"
    cost = (
        f"coalesce(TRY_CAST({col(have, 'cost')} AS DOUBLE), "
        f"CASE WHEN {attended} IN {codes(OP_ATTENDED)} THEN {UNIT_COST['outpatient']} ELSE 0 END)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE op AS SELECT {ROW}, {col(have, "attendkey")} AS attendkey,
            {col(have, person)} AS person, {date_sql("apptdate")} AS appointment_date,
            {col(have, "tretspef")} AS specialty,
            CASE WHEN {first} IN {codes(OP_FIRST)} THEN true
                 WHEN {first} IN {codes(OP_FOLLOW_UP)} THEN false END AS first_attendance,
            CASE WHEN {attended} IN {codes(OP_ATTENDED)} THEN true
                 WHEN {attended} IN {codes(OP_NOT_ATTENDED)} THEN false END AS attended,
            {cost} AS cost, {content_hash(columns)} AS _h
        FROM op_raw
        """
    )
    con.execute("DROP TABLE op_raw")
    _common(con, "op", "attendkey", "OP", "appointment", report)
    drop_where(
        con,
        "op",
        "specialty IS NULL OR NOT regexp_full_match(specialty, '[0-9]{3}')",
        report,
        "OP",
        "appointments whose treatment function (TRETSPEF) is blank, & or not 3 digits",
    )
    drop_where(
        con,
        "op",
        "attended IS NULL",
        report,
        "OP",
        "appointments whose ATTENDED is blank or not a HES code (0, 2-7)",
    )
    unknown = con.execute("SELECT count(*) FROM op WHERE first_attendance IS NULL").fetchall()[0][0]
    if unknown:
        report.step(
            "OP appointments whose FIRSTATT is not 1-4 (read as not a first attendance)", unknown
        )
        con.execute("UPDATE op SET first_attendance = false WHERE first_attendance IS NULL")


def _common(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    file: str,
    label: str,
    report: ImportReport,
) -> None:
    """Key blank, duplicate keys, person key blank."""
    drop_where(con, table, f"{key} IS NULL", report, file, f"{label} key ({key.upper()}) blank")
    dedupe(con, table, key, report, file, label)
    drop_where(con, table, "person IS NULL", report, file, "person key blank")


def drop_undated(con: duckdb.DuckDBPyConnection, table: str, report: ImportReport) -> None:
    """Rows without a date (blank or a HES null date), after pseudonymisation."""
    file, date, name = (
        ("A&E", "arrival_date", "ARRIVALDATE")
        if table == "ae"
        else ("OP", "appointment_date", "APPTDATE")
    )
    drop_where(
        con, table, f"{date} IS NULL", report, file, f"{name} missing: blank or a HES null date"
    )
