"""``careval import omop``: an OMOP CDM v5.3 or v5.4 database as a careval dataset.

The source (a DuckDB file opened read only, or a directory of CSV or Parquet files named after
the tables; :mod:`.omop_source`) is checked first: a missing required table or field, or a date
that cannot be read, stops the import with one message naming the table, column, rows and count
(every problem at once), before anything is written. The canonical tables are then derived in
DuckDB SQL (people and registrations here, events in :mod:`.omop_events`), written as Parquet
into a folder that becomes the dataset only when complete, with ``dataset.json``, the import
report (``import_report.json``) and the concept sets as code lists (``codelists/NAME.csv``,
:mod:`.omop_vocab`). The mapping, table by table, is in ``docs/import-omop.md``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import duckdb

from careval.data.adapters import omop_events as events
from careval.data.adapters.common import (
    DATE_WORDS,
    Check,
    Finding,
    ImportReport,
    bad_date_sql,
    connect,
    date_sql,
    find_all,
    quote,
    raise_findings,
    read_extract,
    require_columns,
    write_manifest,
    write_tables,
)
from careval.data.adapters.omop_source import Source, count, id_sql, load
from careval.data.adapters.omop_vocab import Item, expand, parse_concept_set, write_code_list
from careval.data.schema import TABLES
from careval.errors import ConfigError
from careval.folders import new_folder

NOT_KNOWN_PRACTICE = "V81999"  # the ODS code for a practice not known
UNMAPPED = "unmapped"  # the area of a practice the --practices file does not name
ODS = "[A-Z][0-9]{5}"
MALE, FEMALE = "8507", "8532"
RACES = {"8527": "white", "8516": "black", "8515": "asian", "8522": "other", "8657": "other",
         "8557": "other"}  # fmt: skip
HISPANIC = "38003563"
DATES = {  # the date fields read from each table (checked for dates that cannot be read)
    "observation_period": ("observation_period_start_date", "observation_period_end_date"),
    "visit_occurrence": ("visit_start_date", "visit_end_date"),
    "condition_occurrence": ("condition_start_date",),
    "measurement": ("measurement_date",),
    "drug_exposure": ("drug_exposure_start_date", "drug_exposure_end_date"),
    "death": ("death_date",),
}
OUTPUTS = (
    "persons",
    "practices",
    "registrations",
    "conditions",
    "measurements",
    "medications",
    "inpatient_spells",
    "ae_attendances",
    "outpatient_appointments",
)


def import_omop(
    out: Path,
    *,
    db: Path | None = None,
    directory: Path | None = None,
    schema: str | None = None,
    concept_sets: Sequence[tuple[str, Path]] = (),
    practices: Path | None = None,
    extract_date: dt.date | None = None,
    synthetic: bool = False,
    overwrite: bool = False,
    threads: int | None = None,
    key_file: Path | None = None,
) -> ImportReport:
    """Import an OMOP CDM source into the new dataset ``out``; returns the import report.

    With ``key_file`` (``careval keygen``) every ``person_id``, as text, becomes its keyed
    token (hashed as written: OMOP person ids are not NHS numbers), the token
    ``careval pseudonymise --any-id`` gives the same text with that key; the key's fingerprint
    is written to ``dataset.json`` and ``import_report.json``, the key never is.

    Raises
    ------
    ConfigError
        For a source that cannot be read or breaks the rules above (nothing is written).
    """
    _check_places(Path(out), db, directory, schema, [practices, *(p for _, p in concept_sets)])
    key = None
    if key_file is not None:
        from careval.data.adapters.pseudonymise import read_key

        key = read_key(key_file)
    con = connect(threads)
    try:
        src = load(con, db=db, directory=directory, schema=schema)
        sets = _concept_sets(concept_sets)
        raise_findings(_check(con, src))
        rep = ImportReport("omop")
        for table, n in src.rows.items():
            rep.read(table, src.paths[table], n)
        rep.notes += src.notes
        limit = events.limit_sql((extract_date or dt.date.today()).isoformat())
        if practices is not None:
            _practices_file(con, practices)
        _persons(con, src, rep, limit)
        _registrations(con, src, rep, limit, practices is not None)
        events.conditions(con, src, rep, limit)
        events.visits(con, src, rep, limit)
        events.measurements(con, src, rep, limit)
        events.medications(con, src, rep, limit)
        events.procedures(con, src, rep)
        made = [
            n
            for n in OUTPUTS
            if count(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [f"c_{n}"])
        ]
        if key is not None:
            _tokenise(con, rep, key, made)
        tables = {n: f"SELECT * FROM c_{n} ORDER BY ALL" for n in made}
        ancestors = src.has("concept_ancestor") and src.rows["concept_ancestor"] > 0
        with new_folder(out, "dataset", overwrite=overwrite) as folder:
            rep.tables = write_tables(con, folder, tables)
            lists = {}
            for name, items in sets:
                rows, sizes = expand(
                    con,
                    name,
                    items,
                    has_concept=src.has("concept"),
                    has_ancestor=ancestors,
                )
                if not rows:
                    raise ConfigError(
                        f"--concept-set {name}: no concepts left after expansion (every listed "
                        "concept excluded)"
                    )
                path = write_code_list(folder, name, rows)
                sizes["file"] = f"codelists/{path.name}"
                lists[name] = sizes
                rep.step(f"concept set {name}: codes written to codelists/{path.name}", len(rows))
            if sets and not ancestors:
                rep.notes.append(
                    "no CONCEPT_ANCESTOR table: concept sets hold the listed concepts only "
                    "(no descendants)"
                )
            report = rep.to_dict() | {"concept_sets": lists}
            write_manifest(
                folder,
                generator="careval import omop",
                synthetic=synthetic,
                extract_date=extract_date.isoformat() if extract_date else None,
                rows=rep.tables,
                more={"source": src.label}
                | ({"key_fingerprint": rep.key_fingerprint} if rep.key_fingerprint else {}),
            )
            (folder / "import_report.json").write_text(
                json.dumps(report, indent=2) + "\n", encoding="utf-8"
            )
        return rep
    finally:
        con.close()


def _tokenise(
    con: duckdb.DuckDBPyConnection, rep: ImportReport, key: bytes, made: Sequence[str]
) -> None:
    """Replace ``person_id`` in every canonical table made (``c_NAME`` for each name of
    ``made``) by its keyed token."""
    from careval.data.adapters.person_keys import PersonKeys

    keys = PersonKeys(con, key, nhs=False)
    for name in made:
        if "person_id" in TABLES[name].column_names:
            keys.tokenise(f"c_{name}")
    rep.key_fingerprint = keys.fingerprint
    rep.step("people given keyed tokens (person_id as text, hashed as written)", keys.people)


def _check_places(
    out: Path,
    db: Path | None,
    directory: Path | None,
    schema: str | None,
    files: Sequence[Path | None],
) -> None:
    """Refuse an --out inside the source directory (the import would add to its input) or
    holding any input (replacing it would remove the input), and --schema without --db."""
    if schema is not None and db is None:
        raise ConfigError("--schema names a schema of the --db database; a --dir has none")
    where = out.resolve()
    if directory is not None and where.is_relative_to(Path(directory).resolve()):
        raise ConfigError(
            f"--out {out} is the --dir {directory} or inside it: the source is never altered; "
            "choose an --out outside it"
        )
    for path in [db, directory, *files]:
        if path is not None and Path(path).resolve().is_relative_to(where):
            raise ConfigError(
                f"--out {out} holds the input {path}: write the dataset somewhere else (the "
                "inputs are never altered or removed)"
            )


def _concept_sets(given: Sequence[tuple[str, Path]]) -> list[tuple[str, list[Item]]]:
    names = [n for n, _ in given]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--concept-set: {', '.join(twice)} given more than once")
    return [(name, parse_concept_set(name, Path(path))) for name, path in given]


def _check(con: duckdb.DuckDBPyConnection, src: Source) -> list[Finding | None]:
    """Every date field that holds text no date reads, year of birth not a whole number, and a
    person listed twice: findings naming table, column, rows and count (one pass over each
    table for the counts, :func:`find_all`)."""
    checks: list[tuple[str, Check]] = []
    for table, fields in DATES.items():
        if not src.has(table):
            continue
        for name in fields:
            col = src.col(table, name)
            if col is not None:
                checks.append(
                    (
                        f"o_{table}",
                        Check(
                            bad_date_sql(col), src.where[table], col, "is not a date", DATE_WORDS
                        ),
                    )
                )
    vcol = src.col("visit_occurrence", "visit_occurrence_id") or ""
    vid = quote(vcol)
    p = src.where["person"]
    year = src.col("person", "year_of_birth") or ""
    pcol = src.col("person", "person_id") or ""
    pid = quote(pcol)
    checks += [
        (
            "o_visit_occurrence",
            Check(
                f"{vid} IN (SELECT {vid} FROM o_visit_occurrence GROUP BY 1 HAVING count(*) > 1)",
                src.where["visit_occurrence"],
                vcol,
                "holds a visit more than once",
                "one row per visit",
            ),
        ),
        (
            "o_person",
            Check(
                f"NOT coalesce({_whole_sql(quote(year))} BETWEEN 1 AND 9999, false)",
                p,
                year,
                "is empty or not a year",
                "a year such as 1948",
            ),
        ),
        (
            "o_person",
            Check(
                f"{pid} IN (SELECT {pid} FROM o_person GROUP BY 1 HAVING count(*) > 1)",
                p,
                pcol,
                "holds a person more than once",
                "one row per person",
            ),
        ),
        ("o_person", Check(f"{id_sql(pid)} IS NULL", p, pcol, "is empty")),
    ]
    by_table: dict[str, list[Check]] = {}
    for table, check in checks:
        by_table.setdefault(table, []).append(check)
    found = {t: iter(find_all(con, t, cs)) for t, cs in by_table.items()}
    return [next(found[table]) for table, _ in checks]


def _whole_sql(expr: str) -> str:
    """SQL: the text of ``expr`` as a whole number (``1948``, ``1948.0``), NULL for anything
    else: a fraction, text, or a number too large for a year or month (``1e10``, ``inf``)."""
    v = f"TRY_CAST(trim(CAST({expr} AS VARCHAR)) AS DOUBLE)"
    return f"CASE WHEN abs({v}) < 1e6 AND {v} = floor({v}) THEN CAST({v} AS INTEGER) END"


def _persons(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str) -> None:
    """``c_persons``: birth month, sex, ethnic group and death of each person."""
    f = lambda name: src.field_sql("person", name)  # noqa: E731
    races = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in RACES.items())
    con.execute(
        f"CREATE TEMP TABLE p0 AS SELECT {id_sql(f('person_id'))} AS person_id, "
        f"{_whole_sql(f('year_of_birth'))} AS y, "
        f"{_whole_sql(f('month_of_birth'))} AS m, "
        f"{id_sql(f('gender_concept_id'))} AS g, "
        f"upper(trim(CAST({f('gender_source_value')} AS VARCHAR))) AS gs, "
        f"CASE {id_sql(f('race_concept_id'))} {races} ELSE NULL END AS race, "
        f"{id_sql(f('ethnicity_concept_id'))} AS eth, "
        f"{id_sql(f('care_site_id'))} AS care_site FROM o_person"
    )
    rep.step(
        "people without a month of birth (born in January taken)",
        count(con, "SELECT count(*) FROM p0 WHERE m IS NULL OR m NOT BETWEEN 1 AND 12"),
    )
    con.execute(
        "CREATE TEMP TABLE p1 AS SELECT *, make_date(y, CASE WHEN m BETWEEN 1 AND 12 THEN m "
        "ELSE 1 END, 1) AS birth_month, CASE "
        f"WHEN g = '{MALE}' THEN 'M' WHEN g = '{FEMALE}' THEN 'F' "
        "WHEN gs IN ('M', 'MALE') THEN 'M' WHEN gs IN ('F', 'FEMALE') THEN 'F' END AS sex, "
        "coalesce(race, CASE WHEN eth = '" + HISPANIC + "' THEN 'other' END, 'unknown') "
        "AS ethnic_group FROM p0"
    )
    rep.step(
        "people whose gender concept is not 8507/8532 but whose gender source value is M or F",
        count(con, f"SELECT count(*) FROM p1 WHERE g NOT IN ('{MALE}', '{FEMALE}') AND sex <> ''"),
    )
    for reason, where in (
        ("gender neither male (8507) nor female (8532)", "sex IS NULL"),
        (
            "born before 1900 or after the extract date",
            f"birth_month < DATE '1900-01-01' OR birth_month > {limit}",
        ),
    ):
        rep.drop("person", reason, count(con, f"DELETE FROM p1 WHERE {where}"))
    death = "SELECT NULL::VARCHAR AS person_id, NULL::DATE AS death_date LIMIT 0"
    if src.has("death"):
        dcol = src.col("death", "death_date") or ""
        death = (
            f"SELECT {id_sql(src.field_sql('death', 'person_id'))} AS person_id, "
            f"min({date_sql(dcol)}) AS death_date FROM o_death GROUP BY 1"
        )
    con.execute(f"CREATE TEMP TABLE dd AS {death}")
    for reason, where in (
        ("death before the birth month (death ignored)", "d.death_date < p.birth_month"),
        ("death after the extract date (death ignored)", f"d.death_date > {limit}"),
    ):
        n = count(con, f"DELETE FROM dd d USING p1 p WHERE d.person_id = p.person_id AND ({where})")
        rep.drop("death", reason, int(n))
    con.execute(
        "CREATE TEMP TABLE c_persons AS SELECT p.person_id, p.birth_month, p.sex, "
        "p.ethnic_group, NULL AS lsoa, NULL AS imd_decile, d.death_date, p.care_site "
        "FROM p1 p LEFT JOIN dd d ON d.person_id = p.person_id"
    )


def _practices_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Load ``--practices`` (practice_code, area; optional locality, mdg) as ``x_practices``."""
    what = "the practices file"
    cols = read_extract(con, path, "x_practices", what=what)
    found = require_columns(cols, path, what, ("practice_code", "area"))
    loc = quote("locality") if "locality" in cols else "NULL"
    mdg = quote("mdg") if "mdg" in cols else "NULL"
    code, area = quote(found["practice_code"]), quote(found["area"])
    where = f"{what} {path}"
    raise_findings(
        find_all(
            con,
            "x_practices",
            [
                Check(
                    f"NOT regexp_full_match(coalesce(trim({code}), ''), '{ODS}')",
                    where,
                    "practice_code",
                    "is not an ODS practice code",
                    "a letter and five digits, e.g. E85001",
                ),
                Check(
                    f"trim({code}) IN (SELECT trim({code}) FROM x_practices GROUP BY 1 "
                    "HAVING count(*) > 1)",
                    where,
                    "practice_code",
                    "names a practice more than once",
                ),
                Check(f"coalesce(trim({area}), '') = ''", where, "area", "is empty"),
            ],
        )
    )
    con.execute(
        f"CREATE TEMP TABLE xp AS SELECT trim({code}) AS practice_code, trim({area}) AS area, "
        f"coalesce(nullif(trim({loc}), ''), trim({area})) AS locality, "
        f"nullif(trim({mdg}), '') AS mdg FROM x_practices"
    )


def _registrations(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    rep: ImportReport,
    limit: str,
    mapped: bool,
) -> None:
    """``c_registrations`` from observation periods, ``c_practices`` from their practices."""
    t = "observation_period"
    if src.has("care_site") and src.col("care_site", "care_site_source_value"):
        cs_id = id_sql(src.field_sql("care_site", "care_site_id"))
        cs_code = f"upper(trim({src.field_sql('care_site', 'care_site_source_value')}))"
        site = f"SELECT {cs_id} AS care_site, {cs_code} AS code FROM o_care_site"
    else:
        site = "SELECT NULL::VARCHAR AS care_site, NULL::VARCHAR AS code LIMIT 0"
    con.execute(
        "CREATE TEMP TABLE pp AS SELECT p.person_id, CASE WHEN regexp_full_match("
        f"coalesce(s.code, ''), '{ODS}') THEN s.code ELSE '{NOT_KNOWN_PRACTICE}' END AS practice "
        f"FROM c_persons p LEFT JOIN ({site}) s ON s.care_site = p.care_site"
    )
    rep.step(
        f"people whose care site is no ODS practice code (practice {NOT_KNOWN_PRACTICE})",
        count(con, f"SELECT count(*) FROM pp WHERE practice = '{NOT_KNOWN_PRACTICE}'"),
    )
    f = lambda name: src.col(t, name) or ""  # noqa: E731
    con.execute(
        f"CREATE TEMP TABLE obs0 AS SELECT _row, {id_sql(quote(f('person_id')))} AS person_id, "
        f"{date_sql(f('observation_period_start_date'))} AS start, "
        f"{date_sql(f('observation_period_end_date'))} AS stop FROM o_observation_period"
    )
    drops = (
        ("person not in the imported persons",
         "person_id IS NULL OR person_id NOT IN (SELECT person_id FROM c_persons)"),
        ("no start date", "start IS NULL"),
        ("start after the extract date", f"start > {limit}"),
        ("end before start", "stop < start"),
    )  # fmt: skip
    for reason, where in drops:
        n = count(con, f"DELETE FROM obs0 WHERE {where}")
        rep.drop(t, reason, int(n))
    n = count(con, f"UPDATE obs0 SET stop = NULL WHERE stop > {limit}")
    rep.step("observation periods ending after the extract date (still registered)", int(n))
    n = count(
        con,
        "UPDATE obs0 o SET start = p.birth_month FROM c_persons p WHERE o.person_id = p.person_id "
        "AND o.start < p.birth_month",
    )
    rep.step("observation periods starting before the birth month (moved to it)", int(n))
    rep.drop(
        t,
        "ends before the birth month",
        count(con, "DELETE FROM obs0 WHERE stop < start"),
    )
    con.execute(
        "CREATE TEMP TABLE obs1 AS SELECT person_id, start, coalesce(stop, DATE '9999-12-31') AS e "
        "FROM obs0"
    )
    con.execute(
        "CREATE TEMP TABLE obs2 AS SELECT person_id, min(start) AS start, max(e) AS e FROM ("
        "SELECT *, sum(CASE WHEN prev IS NULL OR start > prev THEN 1 ELSE 0 END) OVER (PARTITION "
        "BY person_id ORDER BY start, e ROWS UNBOUNDED PRECEDING) AS grp FROM (SELECT *, max(e) "
        "OVER (PARTITION BY person_id ORDER BY start, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 "
        "PRECEDING) AS prev FROM obs1)) GROUP BY person_id, grp"
    )
    merged = count(con, "SELECT (SELECT count(*) FROM obs1) - (SELECT count(*) FROM obs2)")
    rep.step("overlapping observation periods merged into one registration", merged)
    con.execute(
        "CREATE TEMP TABLE c_registrations AS SELECT o.person_id, pp.practice AS practice_code, "
        "o.start AS start_date, CASE WHEN o.e = DATE '9999-12-31' THEN NULL ELSE o.e END "
        "AS end_date FROM obs2 o JOIN pp USING (person_id)"
    )
    used = "SELECT DISTINCT practice_code FROM c_registrations"
    if mapped:
        con.execute(
            f"CREATE TEMP TABLE c_practices AS SELECT u.practice_code, x.mdg, "
            f"coalesce(x.locality, '{UNMAPPED}') AS locality, coalesce(x.area, '{UNMAPPED}') AS "
            f"area FROM ({used}) u LEFT JOIN xp x USING (practice_code)"
        )
    else:
        con.execute(
            f"CREATE TEMP TABLE c_practices AS SELECT practice_code, NULL AS mdg, "
            f"'{UNMAPPED}' AS locality, '{UNMAPPED}' AS area FROM ({used})"
        )
    rep.step(
        f"practices in area {UNMAPPED} (not in the practices file)",
        count(con, f"SELECT count(*) FROM c_practices WHERE area = '{UNMAPPED}'"),
    )
