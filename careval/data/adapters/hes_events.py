"""HES A&E attendances and outpatient appointments into ``ae_attendances`` and
``outpatient_appointments`` (tables ``ae`` and ``op`` in the import's connection)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from careval.data.adapters.common import (
    ROW,
    Finding,
    ImportReport,
    bad_parsed_date_sql,
    date_sql,
    drop_extract,
    find_all,
    quote,
)
from careval.data.adapters.hes_rows import codes, col, dedupe, drop_where, trimmed_rows
from careval.data.adapters.hes_spells import cost_check, date_check, drop_flags
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


DATE_OF = {"ae": "arrivaldate", "op": "apptdate"}  # the file's date column


def _flags(have: set[str], table: str, parsed: str) -> tuple[str, str]:
    """The (trimmed) text columns kept for the checks (``, "x" AS "_text_x"``) and the flag
    columns computed from them (``_bad_<date>``, ``_bad_cost``) of an A&E or outpatient
    table."""
    date = DATE_OF[table]
    texts = f", {quote(date)} AS {quote('_text_' + date)}"
    bad = bad_parsed_date_sql("_text_" + date, parsed, trimmed=True)
    flags = f"coalesce({bad}, false) AS {quote('_bad_' + date)}"
    if "cost" in have:
        texts += ", cost AS _text_cost"
        # the typed cost has its unit cost in place of a blank: the text is tried again
        flags += (
            ", coalesce(_text_cost <> '' AND NOT coalesce(isfinite(TRY_CAST(_text_cost AS "
            "DOUBLE)), false), false) AS _bad_cost"  # inf and nan are no costs (as in APC)
        )
    return texts, flags


def _typed(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], select: str) -> None:
    """Table ``table`` from ``{table}_raw`` (removed once read): ``select`` (the typed
    columns, over the text trimmed once: :func:`~.hes_rows.trimmed_rows`), the text of the
    checked columns beside, then the check flags."""
    have = set(columns)
    date = DATE_OF[table]
    parsed = {"ae": "arrival_date", "op": "appointment_date"}[table]
    texts, flags = _flags(have, table, parsed)
    kept = [date] + (["cost"] if "cost" in have else [])
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT * EXCLUDE "
        f"({', '.join(quote('_text_' + c) for c in kept)}), {flags} "
        f"FROM (SELECT {select}{texts} FROM {trimmed_rows(table + '_raw', columns)})"
    )
    drop_extract(con, f"{table}_raw")


def check_file(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], path: Path, what: str
) -> list[Finding]:
    """The date and cost checks of an A&E or outpatient file (``table`` typed by
    :func:`load_ae` or :func:`load_op`; its flags are removed once read)."""
    file = f"{what} {path}"
    checks = [date_check(file, DATE_OF[table])]
    if "cost" in columns:
        checks.append(cost_check(file))
    found = [f for f in find_all(con, table, checks) if f]
    drop_flags(con, table, [c.bad_sql for c in checks])
    return found


def load_ae(con: duckdb.DuckDBPyConnection, columns: Sequence[str], person: str) -> None:
    """Table ``ae`` from the loaded ``ae_raw``: every row, typed, with the check flags."""
    have = set(columns)

    def text(name: str) -> str:
        return col(have, name, trimmed=True)

    disp = f"lpad({text('aeattenddisp')}, 2, '0')"
    mapped = " ".join(f"WHEN {disp} IN {codes(v)} THEN '{k}'" for k, v in AE_DISPOSAL.items())
    cost = f"coalesce(TRY_CAST({text('cost')} AS DOUBLE), {UNIT_COST['ae']})"
    select = (
        f"{ROW}, {text('aekey')} AS aekey, {text(person)} AS person, "
        f"{date_sql('arrivaldate', trimmed=True)} AS arrival_date, "
        f"CASE {mapped} ELSE NULL END AS disposal, {cost} AS cost, _h"
    )
    _typed(con, "ae", columns, select)


def ae_rows(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """Table ``ae`` (:func:`load_ae`): one row per attendance key with a person key."""
    _common(con, "ae", "aekey", "A&E", "attendance", report)
    other = con.execute("SELECT count(*) FROM ae WHERE disposal IS NULL").fetchall()[0][0]
    if other:
        report.step("A&E attendances whose AEATTENDDISP is no HES code (read as other)", other)
        con.execute("UPDATE ae SET disposal = 'other' WHERE disposal IS NULL")


def load_op(con: duckdb.DuckDBPyConnection, columns: Sequence[str], person: str) -> None:
    """Table ``op`` from the loaded ``op_raw``: every row, typed, with the check flags."""
    have = set(columns)

    def text(name: str) -> str:
        return col(have, name, trimmed=True)

    attended = text("attended")
    first = f"upper({text('firstatt')})"
    cost = (
        f"coalesce(TRY_CAST({text('cost')} AS DOUBLE), "
        f"CASE WHEN {attended} IN {codes(OP_ATTENDED)} THEN {UNIT_COST['outpatient']} ELSE 0 END)"
    )
    select = f"""{ROW}, {text("attendkey")} AS attendkey,
            {text(person)} AS person, {date_sql("apptdate", trimmed=True)} AS appointment_date,
            {text("tretspef")} AS specialty,
            CASE WHEN {first} IN {codes(OP_FIRST)} THEN true
                 WHEN {first} IN {codes(OP_FOLLOW_UP)} THEN false END AS first_attendance,
            CASE WHEN {attended} IN {codes(OP_ATTENDED)} THEN true
                 WHEN {attended} IN {codes(OP_NOT_ATTENDED)} THEN false END AS attended,
            {cost} AS cost, _h"""
    _typed(con, "op", columns, select)


def op_rows(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """Table ``op`` (:func:`load_op`): one row per appointment key with a person key."""
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
