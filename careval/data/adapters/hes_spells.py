"""HES APC episodes into provider spells, and provider spells into continuous inpatient spells.

The rules are those of ``docs/import-hes.md``; each runs as one SQL statement over the whole
extract (window functions, no loop over rows). Tables made here, in the import's connection:

* ``ep``: the episodes kept (finished, one per EPIKEY, with a person key and an admission date),
  one row each, fields trimmed and typed, ``_sk`` the spell key within person and provider.
* ``pspell``: one row per provider spell, with its ``spell_id``.
* ``spell``: the spells written (provider spells, or continuous inpatient spells with
  ``--cips``), and ``spell_parts``: which provider spell went into which spell (with the
  provider spell's diagnosis texts ``_dx``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import duckdb

from careval.data.adapters.common import (
    DATE_WORDS,
    ROW,
    Check,
    Finding,
    ImportReport,
    bad_parsed_date_sql,
    date_sql,
    drop_extract,
    find_all,
    one,
    quote,
)
from careval.data.adapters.hes_rows import (
    PRIMARY_UNKNOWN,
    TRANSFER_CODES,
    codes,
    col,
    dedupe,
    drop_where,
    icd10_sql,
    trimmed_rows,
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


def load_episodes(con: duckdb.DuckDBPyConnection, columns: Sequence[str], person: str) -> None:
    """Table ``ep`` from the loaded APC file ``apc_raw`` (removed once read): every row, fields
    trimmed and typed, each date parsed once, and for :func:`check_apc` the flags
    ``_bad_<date>`` (text that is no date) and ``_bad_cost`` (a COST that is no number).
    """
    have = set(columns)

    def text(name: str) -> str:
        return col(have, name, trimmed=True)

    procode = next(c for c in ("procode3", "procode", "procode5") if c in have)
    if "diag_4_01" in have:
        more = ", ".join(text(c) for c in SECONDARY if c in have)
        diags = f"[coalesce({text('diag_4_01')}, '')]"
        if more:  # the primary first (blank kept, in its place), then the secondaries written
            diags += f" || list_filter([{more}], x -> x IS NOT NULL)"
    else:
        diags = "string_split(coalesce(diag_4_concat, ''), ',')"
    typed = {
        "epikey": text("epikey"),
        "person": text(person),
        "epistat": text("epistat"),
        "epiorder": f"TRY_CAST({text('epiorder')} AS INTEGER)",
        **{c: date_sql(c, trimmed=True) if c in have else "CAST(NULL AS DATE)" for c in DATES},
        "admimeth": f"upper({text('admimeth')})",
        "admisorc": text("admisorc"),
        "classpat": text("classpat"),
        "disdest": text("disdest"),
        "dismeth": text("dismeth"),
        "procode": f"upper(left({text(procode)}, 3))",
        "provspno": text("provspno"),
        "diags": diags,
        "gpprac": f"upper({text('gpprac')})",
        "sex": text("sex"),
        "startage": f"TRY_CAST({text('startage')} AS INTEGER)",
        "mydob": text("mydob"),
        "lsoa": f"upper({text('lsoa11')})",
        "ethnos": f"upper({text('ethnos')})",
        "cost": f"CASE WHEN isfinite(TRY_CAST({text('cost')} AS DOUBLE)) "
        f"THEN TRY_CAST({text('cost')} AS DOUBLE) END",  # inf and nan are no costs
    }
    select = ", ".join(f"{sql} AS {quote(name)}" for name, sql in typed.items())
    # the (trimmed) text of the checked columns, kept under other names for the flags
    checked = [c for c in (*DATES, "cost") if c in have]
    texts = "".join(f", {quote(c)} AS {quote('_text_' + c)}" for c in checked)
    flags = [
        f"coalesce({bad_parsed_date_sql('_text_' + c, quote(c), trimmed=True)}, false) "
        f"AS {quote('_bad_' + c)}"
        for c in DATES
        if c in have
    ]
    if "cost" in have:
        flags.append("coalesce(_text_cost <> '' AND cost IS NULL, false) AS _bad_cost")
    sk = "coalesce('P' || provspno, 'A' || CAST(admidate AS VARCHAR))"
    drop = f" EXCLUDE ({', '.join(quote('_text_' + c) for c in checked)})" if checked else ""
    con.execute(
        f"CREATE OR REPLACE TABLE ep AS SELECT *{drop}, {sk} AS _sk"
        + "".join(f", {f}" for f in flags)
        + f" FROM (SELECT {ROW}, {select}, _h{texts} FROM "
        + trimmed_rows("apc_raw", columns, ("diag_4_concat",))
        + ")"
    )
    drop_extract(con, "apc_raw")  # the episodes hold what is needed


def check_apc(con: duckdb.DuckDBPyConnection, columns: Sequence[str], path: Path) -> list[Finding]:
    """Unparseable dates and costs that are not numbers, over every row of the APC file (the
    flags of :func:`load_episodes`, removed once read)."""
    file = f"the APC extract {path}"
    checks = [date_check(file, c) for c in DATES if c in columns]
    if "cost" in columns:
        checks.append(cost_check(file))
    found = [f for f in find_all(con, "ep", checks) if f]
    drop_flags(con, "ep", [c.bad_sql for c in checks])
    return found


def date_check(file: str, column: str) -> Check:
    """The date ``column`` must be a date (or blank, or a HES null date): the flag
    ``_bad_<column>``."""
    return Check(
        f"_bad_{column}",
        file=file,
        column=column,
        rule="is not a date",
        allowed=DATE_WORDS + "; blank or a HES null date (1800-01-01, 1801-01-01) for none",
    )


def cost_check(file: str) -> Check:
    """COST, when the file has it, must be a number (or blank): the flag ``_bad_cost``."""
    return Check(
        "_bad_cost",
        file=file,
        column="cost",
        rule="is not a number",
        allowed="a cost in pounds such as 1590 or 1590.00, or blank",
    )


def drop_flags(con: duckdb.DuckDBPyConnection, table: str, flags: Sequence[str]) -> None:
    """Remove the check flags (or other columns no longer needed) from ``table``."""
    for flag in flags:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {quote(flag)}")


def episodes(con: duckdb.DuckDBPyConnection, report: ImportReport) -> None:
    """The episodes kept in ``ep`` (:func:`load_episodes`); drops counted in order.

    Order: EPIKEY blank; duplicates (same EPIKEY: the first finished row kept, else the first
    row); unfinished (EPISTAT not 3); person key blank.
    The admission date (ADMIDATE missing) is dropped after pseudonymisation, by the caller
    (:func:`drop_undated`), so that invalid NHS numbers are counted before.
    """
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
    drop_flags(con, "ep", ["_h", "epikey", "epistat"])  # used: memory back for the spells


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


def provider_spells(con: duckdb.DuckDBPyConnection, report: ImportReport) -> bool:
    """Table ``pspell``: one row per provider spell (person, provider, spell key ``_sk``).

    Episodes are ordered by EPIORDER, then EPISTART, then their row in the file; the first
    gives the admission fields, the last the discharge fields. A spell whose last episode has
    no DISDATE is kept with the last episode's EPIEND (else its admission date) as discharge.
    Table ``dxmap`` (:func:`diagnosis_map`) is made first; ``_dx`` lists the diagnosis texts
    of every episode of the spell (for the conditions). Returns whether every ``spell_id`` is
    unique.
    """
    given, made = _spell_ids(con, report)
    diagnosis_map(con)
    # The first and last episodes by one aggregate each (arg_min / arg_max of the episode's
    # place in that order: the row breaks ties, so each is one episode), not a window.
    place = (
        "struct_pack(o1 := epiorder IS NULL, o2 := coalesce(epiorder, 0), "
        f"s1 := epistart IS NULL, s2 := coalesce(epistart, DATE '0001-01-01'), r := {ROW})"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE pspell AS
        WITH g AS (
            SELECT person, procode, _sk, any_value(provspno) AS provspno,
                arg_min_null(struct_pack(admidate, admimeth, admisorc, classpat,
                    d := diags[1], gpprac), {place}) AS _first,
                arg_max_null(struct_pack(disdate, epiend, dismeth, disdest), {place}) AS _last,
                sum(cost) AS cost_sum, count(cost) AS cost_n, count(*) AS episodes,
                min({ROW}) AS {ROW}, flatten(list(diags)) AS _dx
            FROM ep GROUP BY person, procode, _sk
        ), f AS (
            SELECT person, procode, _sk, provspno,
                _first.admidate AS admission_date,
                _first.admimeth AS admission_method,
                _first.admisorc AS admission_source,
                _first.classpat AS patient_classification,
                _first.d AS diag_raw,
                _first.gpprac AS gpprac,
                _last.disdate AS disdate,
                _last.epiend AS last_end,
                _last.dismeth AS discharge_method,
                _last.disdest AS discharge_destination,
                cost_sum, cost_n, episodes, {ROW}, _dx
            FROM g
        )
        SELECT f.*, CASE WHEN provspno IS NOT NULL THEN {given} ELSE {made} END AS spell_id,
            coalesce(disdate, last_end, admission_date) AS discharge_date,
            coalesce(m.code, '{PRIMARY_UNKNOWN}') AS primary_diagnosis,
            m.code IS NULL AS _no_diagnosis
        FROM f LEFT JOIN dxmap m ON m.d = f.diag_raw
        """
    )
    con.execute("ALTER TABLE ep DROP COLUMN diags")  # in the spells now (memory)
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
    unique = _unique_ids(con, report)
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
    return unique


def diagnosis_map(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``dxmap``: each diagnosis text written in the episodes kept (``d``), how often
    (``n``) and its ICD-10 code (:func:`~.hes_rows.icd10_sql`, NULL when unusable): the codes
    are normalised once per distinct text, not once per diagnosis."""
    con.execute(
        f"CREATE OR REPLACE TABLE dxmap AS SELECT d, n, {icd10_sql('d')} AS code "
        "FROM (SELECT d, count(*) AS n FROM (SELECT unnest(diags) AS d FROM ep) GROUP BY d)"
    )


def _spell_ids(con: duckdb.DuckDBPyConnection, report: ImportReport) -> tuple[str, str]:
    """SQL of ``spell_id`` with a PROVSPNO and without one.

    With: PROVSPNO; PROCODE3-PROVSPNO for every spell when some PROVSPNO is used by two
    providers. Without: ``H`` and 20 hex characters of SHA-256 of person, provider and
    admission date (the same for the same episodes; nothing of the person key readable).
    """
    shared = con.execute(
        # min <> max: more than one provider (NULLs left out, as count(DISTINCT) leaves them),
        # without a set of distinct values kept for each PROVSPNO
        "SELECT count(*) FROM (SELECT provspno FROM ep WHERE provspno IS NOT NULL "
        "GROUP BY provspno HAVING min(procode) <> max(procode))"
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


def _unique_ids(con: duckdb.DuckDBPyConnection, report: ImportReport) -> bool:
    """An id still shared (a PROVSPNO of two people at one provider) gets ``-1``, ``-2``... in
    order of person and admission. Returns whether every id is unique then (a numbered id can
    meet an id written so in the extract)."""
    clash = con.execute(
        "SELECT count(*) FROM (SELECT spell_id FROM pspell GROUP BY spell_id HAVING count(*) > 1)"
    ).fetchall()[0][0]
    if not clash:
        return True
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
    return bool(one(con, "SELECT count(*) = count(DISTINCT spell_id) FROM pspell")[0])


def spells(
    con: duckdb.DuckDBPyConnection, report: ImportReport, *, cips: bool, unique_ids: bool = False
) -> None:
    """Tables ``spell`` and ``spell_parts`` from ``pspell``: provider spells as they are, or
    (``cips``) joined into continuous inpatient spells by gaps and islands.

    A provider spell continues the person's previous one (by admission date, then discharge
    date, then spell id) when it is admitted on the day of that one's discharge or the day
    after, and that one was discharged to a transfer destination (DISDEST 49-53), or this one
    was admitted from a transfer source (ADMISORC 49-53) or by transfer (ADMIMETH 81).

    ``unique_ids``: every ``spell_id`` of ``pspell`` is unique (:func:`provider_spells`), so
    without ``cips`` each spell is one provider spell as it is (no grouping needed).
    """
    if not cips and unique_ids:
        con.execute(
            "CREATE OR REPLACE TABLE spell AS SELECT spell_id, person, admission_date, "
            "discharge_date, admission_method, admission_source, patient_classification, "
            "primary_diagnosis, gpprac, discharge_method, cost_sum, cost_n, 1 AS parts, "
            f"{ROW} FROM pspell"
        )
        con.execute(
            "CREATE OR REPLACE VIEW spell_parts AS "
            "SELECT person, procode, _sk, spell_id, _dx FROM pspell"
        )
        return
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
        f"SELECT person, procode, _sk, _final AS spell_id, _dx FROM {source}"
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
