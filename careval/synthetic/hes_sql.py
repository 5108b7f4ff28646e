"""The engine's part of the HES-shaped extracts (:mod:`careval.synthetic.hes`): the person fields,
practices and secondary diagnoses joined on, and the files written, all in DuckDB SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from careval.data.codelists import codes

DATE_FORMATS = {"iso": "%Y-%m-%d", "dmy": "%d/%m/%Y"}
HES_NULL_DATE = "1800-01-01"
NO_PRACTICE = "V81999"  # HES: patient not registered
SECONDARY_ICD10 = {  # a long-term condition as the 4-character code of a secondary diagnosis
    "diabetes": "E119", "dementia": "F03X", "hypertension": "I10X", "chd": "I251",
    "heart_failure": "I509", "atrial_fibrillation": "I489", "stroke_tia": "I64X",
    "copd": "J449", "asthma": "J459", "ckd": "N183", "cancer": "C349", "depression": "F329",
    "serious_mental_illness": "F209", "epilepsy": "G409", "osteoarthritis": "M199",
    "hypothyroidism": "E039", "peripheral_arterial_disease": "I739",
    "rheumatoid_arthritis": "M069",
}  # fmt: skip
SECONDARY_SLOTS = 4  # DIAG_4_02 .. DIAG_4_05


def secondary_codes() -> pa.Table:
    """SNOMED CT codes of the shipped condition lists with their secondary ICD-10 code."""
    pairs = [
        (c.code, SECONDARY_ICD10[c.condition])
        for c in codes()
        if c.code_system == "SNOMED" and c.match == "exact" and c.condition in SECONDARY_ICD10
    ]
    return pa.table({"code": [p[0] for p in pairs], "icd": [p[1] for p in pairs]})


def register_conditions(con: duckdb.DuckDBPyConnection, conditions: pa.Table | None) -> None:
    """``pcond``: each person's long-term conditions as ICD-10 codes with the date each was first
    recorded, as a list ordered by date and code (SNOMED CT codes through the shipped code lists;
    ICD-10 codes as written, without a dot, padded with ``X`` to 4 characters)."""
    if conditions is None:
        conditions = pa.table(
            {n: pa.array([], pa.string()) for n in ("person_id", "code_system", "code")}
        ).append_column("date", pa.array([], pa.date32()))
    con.register("conditions", conditions.select(["person_id", "code_system", "code", "date"]))
    con.register("snomed_icd", secondary_codes())
    con.execute(
        """
        CREATE TEMP TABLE pcond AS
        WITH coded AS (
            SELECT c.person_id, c.date,
                CASE WHEN c.code_system = 'ICD10'
                    THEN left(rpad(upper(replace(c.code, '.', '')), 4, 'X'), 4)
                    ELSE m.icd END AS icd
            FROM conditions c LEFT JOIN snomed_icd m
                ON c.code_system = 'SNOMED' AND c.code = m.code
        ), firsts AS (
            SELECT person_id, icd, min(date) AS d FROM coded WHERE icd IS NOT NULL GROUP BY ALL
        )
        SELECT person_id, list(struct_pack(d := d, c := icd) ORDER BY d, icd) AS l
        FROM firsts GROUP BY person_id
        """
    )


def register_registrations(con: duckdb.DuckDBPyConnection, registrations: pa.Table) -> None:
    """``reg``: registration periods with the last day each one applies: its ``end_date`` (open:
    9999-12-31), or the day before the person's next period starts when that is sooner (on a
    same-day transfer the new practice applies), so a date falls in at most one period."""
    con.register("registrations", registrations)
    con.execute(
        """
        CREATE TEMP TABLE reg AS
        SELECT person_id, practice_code, start_date,
            CASE WHEN next_start <= coalesce(end_date, DATE '9999-12-31') THEN next_start - 1
                ELSE coalesce(end_date, DATE '9999-12-31') END AS last_day
        FROM (
            SELECT person_id, practice_code, start_date, end_date,
                lead(start_date) OVER (PARTITION BY person_id ORDER BY start_date) AS next_start
            FROM registrations
        )
        """
    )


def _date(expr: str, file_format: str, date_format: str) -> str:
    """SQL of a date column as written: the HES null date for null, formatted for CSV."""
    value = f"coalesce({expr}, DATE '{HES_NULL_DATE}')"
    if file_format == "parquet" and date_format == "iso":
        return value
    return f"strftime({value}, '{DATE_FORMATS[date_format]}')"


def _person_sql(date: str) -> str:
    """SEX, STARTAGE (whole years at ``date``), MYDOB, LSOA11, and GPPRAC from the registration
    :func:`_joins` finds."""
    return f"""
        CASE p.sex WHEN 'M' THEN '1' WHEN 'F' THEN '2' ELSE '9' END AS SEX,
        ((year({date}) - year(p.birth_month)) * 12 + month({date}) - month(p.birth_month)) // 12
            AS STARTAGE,
        strftime(p.birth_month, '%m%Y') AS MYDOB,
        p.lsoa AS LSOA11,
        coalesce(r.practice_code, '{NO_PRACTICE}') AS GPPRAC"""


def _joins(alias: str, key: str, date: str) -> str:
    return f"""
        LEFT JOIN people p ON p.person_id = {alias}.{key}
        LEFT JOIN reg r
            ON r.person_id = {alias}.{key} AND {date} BETWEEN r.start_date AND r.last_day"""


def apc_sql(file_format: str, date_format: str) -> str:
    def d(c: str) -> str:
        return f"{_date(f'e.{c}', file_format, date_format)} AS {c}"

    secondary = ",\n".join(f"f[{i}].c AS DIAG_4_{i + 1:02d}" for i in range(1, SECONDARY_SLOTS + 1))
    return f"""
        WITH x AS (
            SELECT e.*, {_person_sql("e.EPISTART")},
                list_filter(c.l, lambda v: v.d <= e.EPISTART AND v.c <> e.DIAG_4_01) AS f
            FROM apc e {_joins("e", "HESID", "e.ADMIDATE")}
            LEFT JOIN pcond c ON c.person_id = e.HESID
        )
        SELECT HESID, EPIKEY, EPIORDER, EPISTAT, PROVSPNO, PROCODE3,
            {d("ADMIDATE")}, {d("EPISTART")}, {d("EPIEND")}, {d("DISDATE")},
            ADMIMETH, ADMISORC, CLASSPAT, DISDEST, DISMETH, DIAG_4_01,
            {secondary},
            OPERTN_4_01, STARTAGE, MYDOB, SEX, LSOA11, GPPRAC, COST
        FROM x e ORDER BY pos
    """


def ae_sql(file_format: str, date_format: str) -> str:
    return f"""
        SELECT a.person_id AS HESID, a.attendance_id AS AEKEY,
            {_date("a.arrival_date", file_format, date_format)} AS ARRIVALDATE,
            a.x_disp AS AEATTENDDISP, '1' AS AEATTENDCAT, a.x_provider AS PROCODE3,
            {_person_sql("a.arrival_date")},
            a.cost AS COST
        FROM ae a {_joins("a", "person_id", "a.arrival_date")}
        ORDER BY a.pos
    """


def op_sql(file_format: str, date_format: str) -> str:
    return f"""
        SELECT o.person_id AS HESID, o.appointment_id AS ATTENDKEY,
            {_date("o.appointment_date", file_format, date_format)} AS APPTDATE,
            o.x_attended AS ATTENDED, o.x_first AS FIRSTATT, o.specialty AS TRETSPEF,
            o.x_provider AS PROCODE3,
            {_person_sql("o.appointment_date")}, o.cost AS COST
        FROM op o {_joins("o", "person_id", "o.appointment_date")}
        ORDER BY o.pos
    """


def copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, file_format: str) -> None:
    """Write the query's rows, in its order, to ``path``."""
    target = str(path).replace("'", "''")
    options = "FORMAT csv, HEADER true" if file_format == "csv" else "FORMAT parquet"
    con.execute(f"COPY ({sql}) TO '{target}' ({options})")
