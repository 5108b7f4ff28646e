"""HES APC episodes into provider spells, and provider spells into continuous inpatient spells.

The rules are those of ``docs/import-hes.md``; each runs as one SQL statement over the whole
extract (window functions, no loop over rows). Tables made here, in the import's connection:

* ``ep``: the episodes kept (finished, one per EPIKEY, with a person key and an admission date),
  one row each, fields trimmed and typed, ``_sk`` the spell key within person and provider.
* ``pspell``: one row per provider spell, with its ``spell_id``.
* ``spell``: the spells written (provider spells, or continuous inpatient spells with
  ``--cips``), and ``spell_parts``: which provider spell went into which spell.
"""

from __future__ import annotations

import datetime as dt
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
    quote,
)
from careval.data.adapters.hes_rows import (
    PRIMARY_UNKNOWN,
    TRANSFER_CODES,
    codes,
    col,
    content_hash,
    dedupe,
    drop_where,
    icd10_sql,
)
from careval.data.costs import spell_cost_sql
from careval.data.schema import (
    ADMISSION_METHODS,
    EMERGENCY_METHODS,
    PATIENT_CLASSIFICATIONS,
)

FILE = "APC"
SECONDARY = tuple(f"diag_4_{i:02d}" for i in range(2, 21))
# Every APC column the importer reads (others are not loaded).
COLUMNS = (
    "hesid",
    "nhs_number",
    "newnhsno",
    "epikey",
    "epiorder",
    "epistat",
    "admidate",
    "epistart",
    "epiend",
    "disdate",
    "admimeth",
    "admisorc",
    "classpat",
    "disdest",
    "dismeth",
    "procode3",
    "procode",
    "procode5",
    "provspno",
    "diag_4_01",
    *SECONDARY,
    "diag_4_concat",
    "gpprac",
    "sex",
    "startage",
    "mydob",
    "lsoa11",
    "ethnos",
    "cost",
)
REQUIRED: tuple[str | tuple[str, ...], ...] = (
    "epikey",
    "epistat",
    "admidate",
    "disdate",
    "admimeth",
    "classpat",
    ("procode3", "procode", "procode5"),
    ("diag_4_01", "diag_4_concat"),
)
DATES = ("admidate", "epistart", "epiend", "disdate")


def check_apc(con: duckdb.DuckDBPyConnection, columns: Sequence[str], path: Path) -> list[Finding]:
    """Unparseable dates and costs that are not numbers, over every row of the APC file."""
    found: list[Finding] = []
    for c in DATES:
        if c in columns:
            f = find_rows(
                con,
                "apc_raw",
                bad_date_sql(c),
                file=f"the APC extract {path}",
                column=c,
                rule="is not a date",
                allowed=DATE_WORDS + "; blank or a HES null date (1800-01-01, 1801-01-01) for none",
            )
            found += [f] if f else []
    found += [f for f in [number_check(con, "apc_raw", columns, path, "the APC extract")] if f]
    return found


def number_check(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], path: Path, what: str
) -> Finding | None:
    """COST, when the file has it, must be a number (or blank)."""
    if "cost" not in columns:
        return None
    c = "trim(cost)"
    return find_rows(
        con,
        table,
        f"{c} <> '' AND TRY_CAST({c} AS DOUBLE) IS NULL",
        file=f"{what} {path}",
        column="cost",
        rule="is not a number",
        allowed="a cost in pounds such as 1590 or 1590.00, or blank",
    )


def episodes(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    person: str,
    report: ImportReport,
) -> None:
    """Table ``ep`` from ``apc_raw``: the episodes kept, fields typed; drops counted in order.

    Order: EPIKEY blank; duplicates (same EPIKEY: the first finished row kept, else the first
    row); unfinished (EPISTAT not 3); person key blank.
    The admission date (ADMIDATE missing) is dropped after pseudonymisation, by the caller
    (:func:`drop_undated`), so that invalid NHS numbers are counted before.
    """
    have = set(columns)
    procode = next(c for c in ("procode3", "procode", "procode5") if c in have)
    if "diag_4_01" in have:
        more = ", ".join(col(have, c) for c in SECONDARY if c in have)
        diags = f"[coalesce({col(have, 'diag_4_01')}, '')]"
        if more:  # the primary first (blank kept, in its place), then the secondaries written
            diags += f" || list_filter([{more}], x -> x IS NOT NULL)"
    else:
        diags = "string_split(coalesce(diag_4_concat, ''), ',')"
    typed = {
        "epikey": col(have, "epikey"),
        "person": col(have, person),
        "epistat": col(have, "epistat"),
        "epiorder": f"TRY_CAST({col(have, 'epiorder')} AS INTEGER)",
        **{c: date_sql(c) if c in have else "CAST(NULL AS DATE)" for c in DATES},
        "admimeth": f"upper({col(have, 'admimeth')})",
        "admisorc": col(have, "admisorc"),
        "classpat": col(have, "classpat"),
        "disdest": col(have, "disdest"),
        "dismeth": col(have, "dismeth"),
        "procode": f"upper(left({col(have, procode)}, 3))",
        "provspno": col(have, "provspno"),
        "diags": diags,
        "gpprac": f"upper({col(have, 'gpprac')})",
        "sex": col(have, "sex"),
        "startage": f"TRY_CAST({col(have, 'startage')} AS INTEGER)",
        "mydob": col(have, "mydob"),
        "lsoa": f"upper({col(have, 'lsoa11')})",
        "ethnos": f"upper({col(have, 'ethnos')})",
        "cost": f"TRY_CAST({col(have, 'cost')} AS DOUBLE)",
    }
    select = ", ".join(f"{sql} AS {quote(name)}" for name, sql in typed.items())
    sk = "coalesce('P' || provspno, 'A' || CAST(admidate AS VARCHAR))"
    con.execute(
        f"CREATE OR REPLACE TABLE ep AS SELECT *, {sk} AS _sk FROM (SELECT {ROW}, {select}, "
        f"{content_hash(columns)} AS _h FROM apc_raw)"
    )
    con.execute("DROP TABLE apc_raw")  # checked already; the episodes hold what is needed
    report.step("APC episodes read", count(con, "ep"))
    drop_where(con, "ep", "epikey IS NULL", report, FILE, "episode key (EPIKEY) blank")
    # the finished copy of an episode first: two years' extracts hold an episode unfinished at
    # the first year's end and finished in the next, under one EPIKEY
    dedupe(con, "ep", "epikey", report, FILE, "episode", prefer="epistat IS DISTINCT FROM '3'")
    drop_where(
        con,
        "ep",
        "epistat IS DISTINCT FROM '3'",
        report,
        FILE,
        "unfinished episodes (EPISTAT not 3)",
    )
    drop_where(con, "ep", "person IS NULL", report, FILE, "person key blank")


def drop_undated(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """Drop the episodes without an admission date."""
    drop_where(
        con,
        "ep",
        "admidate IS NULL",
        report,
        FILE,
        "admission date (ADMIDATE) missing: blank or a HES null date",
    )
    report.step("APC episodes kept", count(con, "ep"))


def provider_spells(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """Table ``pspell``: one row per provider spell (person, provider, spell key ``_sk``).

    Episodes are ordered by EPIORDER, then EPISTART, then their row in the file; the first
    gives the admission fields, the last the discharge fields. A spell whose last episode has
    no DISDATE is kept with the last episode's EPIEND (else its admission date) as discharge.
    """
    part = "PARTITION BY person, procode, _sk"
    given, made = _spell_ids(con, report)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE pspell AS
        WITH o AS (
            SELECT *, row_number() OVER ({part} ORDER BY epiorder NULLS LAST,
                epistart NULLS LAST, {ROW}) AS _k, count(*) OVER ({part}) AS _n
            FROM ep
        ), g AS (
            SELECT person, procode, _sk, any_value(provspno) AS provspno,
                max(admidate) FILTER (WHERE _k = 1) AS admission_date,
                max(admimeth) FILTER (WHERE _k = 1) AS admission_method,
                max(admisorc) FILTER (WHERE _k = 1) AS admission_source,
                max(classpat) FILTER (WHERE _k = 1) AS patient_classification,
                max(diags[1]) FILTER (WHERE _k = 1) AS diag_raw,
                max(gpprac) FILTER (WHERE _k = 1) AS gpprac,
                max(disdate) FILTER (WHERE _k = _n) AS disdate,
                max(epiend) FILTER (WHERE _k = _n) AS last_end,
                max(dismeth) FILTER (WHERE _k = _n) AS discharge_method,
                max(disdest) FILTER (WHERE _k = _n) AS discharge_destination,
                sum(cost) AS cost_sum, count(cost) AS cost_n, count(*) AS episodes,
                min({ROW}) AS {ROW}
            FROM o GROUP BY person, procode, _sk
        )
        SELECT *, CASE WHEN provspno IS NOT NULL THEN {given} ELSE {made} END AS spell_id,
            coalesce(disdate, last_end, admission_date) AS discharge_date,
            coalesce({icd10_sql("diag_raw")}, '{PRIMARY_UNKNOWN}') AS primary_diagnosis,
            {icd10_sql("diag_raw")} IS NULL AS _no_diagnosis
        FROM g
        """
    )
    n, multi, open_, bad = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE episodes > 1), "
        "count(*) FILTER (WHERE disdate IS NULL), count(*) FILTER (WHERE _no_diagnosis) "
        "FROM pspell"
    ).fetchall()[0]
    report.step("provider spells built", n)
    report.step("provider spells of more than one episode", multi)
    if open_:
        report.step(
            "provider spells not discharged at the extract (kept; discharge = last EPIEND)", open_
        )
    if bad:
        report.step(
            "provider spells whose primary diagnosis is no ICD-10 code (kept as "
            f"{PRIMARY_UNKNOWN})",
            bad,
        )
    _unique_ids(con, report)
    drop_where(
        con,
        "pspell",
        f"admission_method IS NULL OR admission_method NOT IN {codes(ADMISSION_METHODS)}",
        report,
        FILE,
        "provider spells whose admission method (ADMIMETH) is blank or not one the model "
        f"allows ({', '.join(ADMISSION_METHODS)})",
    )
    drop_where(
        con,
        "pspell",
        f"patient_classification IS NULL OR patient_classification NOT IN "
        f"{codes(PATIENT_CLASSIFICATIONS)}",
        report,
        FILE,
        "provider spells whose patient classification (CLASSPAT) is blank or not one of "
        + ", ".join(PATIENT_CLASSIFICATIONS),
    )
    drop_where(
        con,
        "pspell",
        "discharge_date < admission_date",
        report,
        FILE,
        "provider spells discharged before admission",
    )


def _spell_ids(con: duckdb.DuckDBPyConnection, report: ImportReport) -> tuple[str, str]:
    """SQL of ``spell_id`` with a PROVSPNO and without one.

    With: PROVSPNO; PROCODE3-PROVSPNO for every spell when some PROVSPNO is used by two
    providers. Without: ``H`` and 20 hex characters of SHA-256 of person, provider and
    admission date (the same for the same episodes; nothing of the person key readable).
    """
    shared = con.execute(
        "SELECT count(*) FROM (SELECT provspno FROM ep WHERE provspno IS NOT NULL "
        "GROUP BY provspno HAVING count(DISTINCT procode) > 1)"
    ).fetchall()[0][0]
    if shared:
        report.notes.append(
            f"{shared:,} PROVSPNO values are used by more than one provider: every spell_id is "
            "PROCODE3-PROVSPNO"
        )
    given = "procode || '-' || provspno" if shared else "provspno"
    made = (
        "'H' || left(sha256(person || '|' || procode || '|' || "
        "CAST(admission_date AS VARCHAR)), 20)"
    )
    return given, made


def _unique_ids(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """An id still shared (a PROVSPNO of two people at one provider) gets ``-1``, ``-2``... in
    order of person and admission."""
    clash = con.execute(
        "SELECT count(*) FROM (SELECT spell_id FROM pspell GROUP BY spell_id HAVING count(*) > 1)"
    ).fetchall()[0][0]
    if not clash:
        return
    con.execute(
        """
        UPDATE pspell SET spell_id = pspell.spell_id || '-' || CAST(r._k AS VARCHAR)
        FROM (SELECT person, procode, _sk, row_number() OVER (PARTITION BY spell_id
                ORDER BY person, admission_date, procode, _sk) AS _k,
                count(*) OVER (PARTITION BY spell_id) AS _n FROM pspell) r
        WHERE r._n > 1 AND pspell.person = r.person AND pspell.procode = r.procode
            AND pspell._sk = r._sk
        """
    )
    report.notes.append(
        f"{clash:,} spell ids were shared by more than one spell (one PROVSPNO for two "
        "people at a provider): numbered -1, -2, ..."
    )


def spells(con: duckdb.DuckDBPyConnection, report: ImportReport, *, cips: bool) -> None:
    """Tables ``spell`` and ``spell_parts`` from ``pspell``: provider spells as they are, or
    (``cips``) joined into continuous inpatient spells by gaps and islands.

    A provider spell continues the person's previous one (by admission date, then discharge
    date, then spell id) when it is admitted on the day of that one's discharge or the day
    after, and that one was discharged to a transfer destination (DISDEST 49-53), or this one
    was admitted from a transfer source (ADMISORC 49-53) or by transfer (ADMIMETH 81).
    """
    order = "ORDER BY admission_date, discharge_date, spell_id"
    if cips:
        transfer = codes(TRANSFER_CODES)
        con.execute(
            f"""
            CREATE OR REPLACE TABLE _chain AS
            WITH o AS (
                SELECT *, lag(discharge_date) OVER w AS _pd,
                    lag(discharge_destination) OVER w AS _pdest
                FROM pspell WINDOW w AS (PARTITION BY person {order})
            ), f AS (
                SELECT *, CASE WHEN _pd IS NOT NULL
                    AND admission_date BETWEEN _pd AND _pd + 1
                    AND (_pdest IN {transfer} OR admission_source IN {transfer}
                         OR admission_method = '81') THEN 0 ELSE 1 END AS _new
                FROM o
            )
            SELECT *, sum(_new) OVER (PARTITION BY person {order}
                ROWS UNBOUNDED PRECEDING) AS _island
            FROM f
            """
        )
        part = "PARTITION BY person, _island"
        con.execute(
            f"""
            CREATE OR REPLACE TABLE _chain AS SELECT *,
                first(spell_id) OVER ({part} {order}) AS _final,
                row_number() OVER ({part} {order}) AS _k, count(*) OVER ({part}) AS _n
            FROM _chain
            """
        )
        source = "_chain"
    else:
        con.execute(
            "CREATE OR REPLACE TABLE _chain AS "
            "SELECT *, spell_id AS _final, 1 AS _k, 1 AS _n FROM pspell"
        )
        source = "_chain"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE spell AS
        SELECT _final AS spell_id, person,
            max(admission_date) FILTER (WHERE _k = 1) AS admission_date,
            max(discharge_date) FILTER (WHERE _k = _n) AS discharge_date,
            max(admission_method) FILTER (WHERE _k = 1) AS admission_method,
            max(admission_source) FILTER (WHERE _k = 1) AS admission_source,
            max(patient_classification) FILTER (WHERE _k = 1) AS patient_classification,
            max(primary_diagnosis) FILTER (WHERE _k = 1) AS primary_diagnosis,
            max(gpprac) FILTER (WHERE _k = 1) AS gpprac,
            max(discharge_method) FILTER (WHERE _k = _n) AS discharge_method,
            sum(cost_sum) AS cost_sum, sum(cost_n) AS cost_n, count(*) AS parts,
            min({ROW}) AS {ROW}
        FROM {source} GROUP BY _final, person
        """
    )
    con.execute(
        "CREATE OR REPLACE TABLE spell_parts AS "
        f"SELECT person, procode, _sk, _final AS spell_id FROM {source}"
    )
    con.execute("DROP TABLE _chain")
    if cips:
        joined = con.execute("SELECT count(*) FROM spell WHERE parts > 1").fetchall()[0][0]
        report.step("continuous inpatient spells built", count(con, "spell"))
        report.step("continuous inpatient spells joining more than one provider spell", joined)


def cost_sql() -> str:
    """A spell's cost: the sum of its episodes' COST when any has one, else the unit cost."""
    unit = spell_cost_sql(
        "admission_method",
        "patient_classification",
        "date_diff('day', admission_date, discharge_date)",
    )
    return f"round(CASE WHEN cost_n > 0 THEN cost_sum ELSE {unit} END, 2)"


def drop_out_of_range(
    con: duckdb.DuckDBPyConnection, report: ImportReport, extract_date: dt.date
) -> None:
    """Drop the spells admitted before 1900 or discharged after the extract date."""
    drop_where(
        con,
        "spell",
        "admission_date < DATE '1900-01-01'",
        report,
        FILE,
        "spells admitted before 1900",
    )
    drop_where(
        con,
        "spell",
        f"discharge_date > DATE '{extract_date.isoformat()}'",
        report,
        FILE,
        f"spells discharged after the extract date {extract_date.isoformat()}",
    )


def emergency_count(con: duckdb.DuckDBPyConnection) -> int:
    """Emergency spells (ADMIMETH 21-25, 2A-2D, 28), regular attenders (CLASSPAT 3, 4) left
    out as the analyses leave them out."""
    return int(
        con.execute(
            f"SELECT count(*) FROM spell WHERE admission_method IN {codes(EMERGENCY_METHODS)} "
            "AND patient_classification NOT IN ('3', '4')"
        ).fetchall()[0][0]
    )


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows of ``table``."""
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
