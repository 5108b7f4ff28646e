"""OMOP clinical events as canonical tables: visits, conditions, measurements, drug exposures.

Each function builds one or more temporary tables (``c_<canonical name>``) from the loaded
source (:mod:`careval.data.adapters.omop_source`) in SQL, and records in the import report what
it read, kept and dropped. The rules are in ``docs/import-omop.md``; in short:

- Visits (``visit_occurrence``): inpatient (9201) and emergency-room-and-inpatient (262) visits
  become inpatient spells, emergency room visits (9203, and 262) A&E attendances, outpatient
  visits (9202) outpatient appointments; every other visit concept is counted and left out.
- Conditions: a standard SNOMED concept gives a SNOMED code, an ICD10 or ICD10CM source concept
  an ICD-10 code (both when both are there); each person's first date per code is kept.
- Measurements: HbA1c, total cholesterol, systolic and diastolic blood pressure (by concept id,
  or by LOINC code through the concept table), converted to careval's units.
- Drug exposures: the medications table, coded by vocabulary (:mod:`.omop_vocab`).
"""

from __future__ import annotations

import duckdb

from careval.data.adapters.common import ImportReport, date_sql, literal
from careval.data.adapters.omop_source import Source, count, id_sql
from careval.data.adapters.omop_vocab import (
    code_sql,
    icd10_ok_sql,
    icd10_sql,
    system_sql,
)
from careval.data.costs import UNIT_COST, spell_cost_sql
from careval.data.schema import CODE_PATTERNS, MEASURE_RANGES, TABLES

INPATIENT, ER_INPATIENT, ER, OUTPATIENT = "9201", "262", "9203", "9202"
VISIT_NAMES = {
    INPATIENT: "inpatient visit",
    ER_INPATIENT: "emergency room and inpatient visit",
    ER: "emergency room visit",
    OUTPATIENT: "outpatient visit",
}
ER_SOURCES = ("9203", "8870")  # admitted from: emergency room visit; emergency room - hospital
# A condition that is the visit's primary diagnosis: condition status 32902 (primary diagnosis),
# 32901 (primary admission diagnosis); v5.3 condition types 38000183, 38000199 (inpatient detail
# / header, primary), 44786627 (primary condition).
PRIMARY_STATUS = ("32902", "32901")
PRIMARY_TYPES = ("38000183", "38000199", "44786627")
UNKNOWN_SPECIALTY = "999"  # no three-digit treatment function code recorded
# Measures: OMOP concept ids and LOINC codes (the latter matched through the concept table).
MEASURE_CONCEPTS = {
    "hba1c": (
        ("3004410", "3005673", "3003309", "3007263", "3034639", "40762352", "42869630"),
        ("4548-4", "17856-6", "4549-2", "59261-8"),
    ),
    "total_cholesterol": (("3027114",), ("2093-3", "14647-2")),
    "sbp": (("3004249",), ("8480-6",)),
    "dbp": (("3012888",), ("8462-4",)),
}
UNIT_CONCEPTS = {"8554": "%", "8840": "mg/dl", "8753": "mmol/l", "8876": "mm[hg]"}
HBA1C_PCT = "((v - 2.15) * 10.929)"  # DCCT % to IFCC mmol/mol
CHOLESTEROL_MG_DL = "(v / 38.67)"  # mg/dl to mmol/l


def screen(
    con: duckdb.DuckDBPyConnection,
    rep: ImportReport,
    file: str,
    table: str,
    dates: tuple[str, ...],
    limit: str,
) -> None:
    """Delete the rows of ``table`` the canonical model would refuse, counting each reason:
    a person not imported, no date, a date before 1900 or after the extract date (``limit``,
    SQL), before the person's birth month or after their death."""
    first = dates[0]
    rules = [
        (
            "person not in the imported persons",
            "person_id IS NULL OR person_id NOT IN (SELECT person_id FROM c_persons)",
        ),
        ("no date or an unparseable one", f"{first} IS NULL"),
        (
            "date before 1900 or after the extract date",
            " OR ".join(f"{d} < DATE '1900-01-01' OR {d} > {limit}" for d in dates),
        ),
    ]
    for reason, where in rules:
        n = count(con, f"DELETE FROM {table} WHERE {where}")
        rep.drop(file, reason, n)
    for reason, cond in (
        (
            "date before the person's birth month",
            " OR ".join(f"t.{d} < p.birth_month" for d in dates),
        ),
        ("date after the person's death", " OR ".join(f"t.{d} > p.death_date" for d in dates)),
    ):
        n = count(
            con,
            f"DELETE FROM {table} t USING c_persons p WHERE t.person_id = p.person_id AND ({cond})",
        )
        rep.drop(file, reason, n)


def visits(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str) -> None:
    """``c_inpatient_spells``, ``c_ae_attendances``, ``c_outpatient_appointments``."""
    f = lambda name: src.field_sql("visit_occurrence", name)  # noqa: E731
    file = "visit_occurrence"
    con.execute(
        f"CREATE TEMP TABLE v0 AS SELECT _row, {id_sql(f('visit_occurrence_id'))} AS visit_id, "
        f"{id_sql(f('person_id'))} AS person_id, {id_sql(f('visit_concept_id'))} AS concept, "
        f"{date_sql(src.col(file, 'visit_start_date') or '')} AS start, "
        f"{date_sql(src.col(file, 'visit_end_date') or '')} AS stop, "
        f"{id_sql(f('admitted_from_concept_id'))} AS admitted_from, "
        f"{id_sql(f('provider_id'))} AS provider_id FROM o_visit_occurrence"
    )
    if src.has("cost") and src.rows["cost"]:
        con.execute(
            "CREATE TEMP TABLE vc AS SELECT "
            f"{id_sql(src.field_sql('cost', 'cost_event_id'))} AS visit_id, "
            f"sum(TRY_CAST({src.field_sql('cost', 'total_cost')} AS DOUBLE)) AS cost "
            f"FROM o_cost WHERE lower(trim({src.field_sql('cost', 'cost_domain_id')})) = 'visit' "
            "GROUP BY 1"
        )
    else:
        con.execute("CREATE TEMP TABLE vc (visit_id VARCHAR, cost DOUBLE)")
    con.execute(
        "CREATE TEMP TABLE v AS SELECT v0.*, vc.cost AS own_cost FROM v0 "
        "LEFT JOIN vc USING (visit_id)"
    )
    names = "LEFT JOIN o_concept c ON c.concept_id = v.concept" if src.has("concept") else ""
    label = "c.concept_name" if src.has("concept") else "NULL"
    for concept, name, n in con.execute(
        f"SELECT v.concept, any_value({label}), count(*) FROM v {names} GROUP BY 1 ORDER BY 3 DESC"
    ).fetchall():
        what = VISIT_NAMES.get(concept) or name or "concept not in the concept table"
        used = "" if concept in VISIT_NAMES else ", not imported"
        rep.step(f"visits of concept {concept} ({what}{used})", n)
    _spells(con, rep, limit)
    _ae(con, rep, limit)
    _outpatient(con, src, rep, limit)


def _own_cost(fallback: str, table: str) -> str:
    """SQL: the visit's cost from the cost table (``t.own_cost``) when within the schema's
    range, else ``fallback``."""
    hi = TABLES[table].column("cost").max
    return f"CASE WHEN t.own_cost BETWEEN 0 AND {hi} THEN t.own_cost ELSE {fallback} END"


def _spells(con: duckdb.DuckDBPyConnection, rep: ImportReport, limit: str) -> None:
    file = "visit_occurrence (inpatient)"
    con.execute(
        "CREATE TEMP TABLE vip AS SELECT * FROM v "
        f"WHERE concept IN ('{INPATIENT}', '{ER_INPATIENT}')"
    )
    n = count(con, "UPDATE vip SET stop = start WHERE stop IS NULL AND start IS NOT NULL")
    rep.step("inpatient visits without an end date (discharged on the admission day)", n)
    rep.drop(file, "end before start", count(con, "DELETE FROM vip WHERE stop < start"))
    screen(con, rep, file, "vip", ("start", "stop"), limit)
    er = ", ".join(f"'{c}'" for c in ER_SOURCES)
    con.execute(
        "CREATE TEMP TABLE vip2 AS SELECT t.*, CASE "
        f"WHEN t.concept = '{ER_INPATIENT}' OR t.admitted_from IN ({er}) "
        f"OR EXISTS (SELECT 1 FROM v e WHERE e.concept = '{ER}' AND e.person_id = t.person_id "
        "AND e.start BETWEEN t.start - 1 AND t.start) THEN '21' ELSE '11' END AS method, "
        "d.code AS diagnosis FROM vip t LEFT JOIN dx d ON d.visit_id = t.visit_id"
    )
    rep.step(
        "emergency admissions (262, or after an emergency room visit)",
        count(con, "SELECT count(*) FROM vip2 WHERE method = '21'"),
    )
    rep.step(
        "inpatient spells without an ICD-10 diagnosis (primary_diagnosis null)",
        count(con, "SELECT count(*) FROM vip2 WHERE diagnosis IS NULL"),
    )
    unit = spell_cost_sql("t.method", "'1'", "date_diff('day', t.start, t.stop)")
    con.execute(
        "CREATE TEMP TABLE c_inpatient_spells AS SELECT t.visit_id AS spell_id, t.person_id, "
        "t.start AS admission_date, t.stop AS discharge_date, t.method AS admission_method, "
        "'1' AS patient_classification, t.diagnosis AS primary_diagnosis, "
        f"{_own_cost(unit, 'inpatient_spells')} AS cost FROM vip2 t"
    )


def _ae(con: duckdb.DuckDBPyConnection, rep: ImportReport, limit: str) -> None:
    file = "visit_occurrence (emergency room)"
    con.execute(
        f"CREATE TEMP TABLE er AS SELECT * FROM v WHERE concept IN ('{ER}', '{ER_INPATIENT}')"
    )
    screen(con, rep, file, "er", ("start",), limit)
    admitted = (
        f"t.concept = '{ER_INPATIENT}' OR EXISTS (SELECT 1 FROM v i WHERE i.concept IN "
        f"('{INPATIENT}', '{ER_INPATIENT}') AND i.person_id = t.person_id "
        "AND i.start BETWEEN t.start AND t.start + 1)"
    )
    con.execute(
        "CREATE TEMP TABLE c_ae_attendances AS SELECT t.visit_id AS attendance_id, t.person_id, "
        f"t.start AS arrival_date, CASE WHEN {admitted} THEN 'admitted' ELSE 'discharged' END "
        f"AS disposal, {_own_cost(str(UNIT_COST['ae']), 'ae_attendances')} AS cost "
        "FROM er t"
    )


def _outpatient(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str) -> None:
    file = "visit_occurrence (outpatient)"
    con.execute(f"CREATE TEMP TABLE vop AS SELECT * FROM v WHERE concept = '{OUTPATIENT}'")
    screen(con, rep, file, "vop", ("start",), limit)
    if src.has("provider") and src.col("provider", "specialty_source_value"):
        con.execute(
            "CREATE TEMP TABLE prov AS SELECT "
            f"{id_sql(src.field_sql('provider', 'provider_id'))} AS provider_id, "
            f"min(trim(CAST({src.field_sql('provider', 'specialty_source_value')} AS VARCHAR))) "
            "AS s FROM o_provider GROUP BY 1"
        )
    else:
        con.execute("CREATE TEMP TABLE prov (provider_id VARCHAR, s VARCHAR)")
    con.execute(
        "CREATE TEMP TABLE vop2 AS SELECT t.*, CASE WHEN regexp_full_match(coalesce(s, ''), "
        f"'[0-9]{{3}}') THEN s ELSE '{UNKNOWN_SPECIALTY}' END AS specialty "
        "FROM (SELECT t.*, p.s FROM vop t LEFT JOIN prov p USING (provider_id)) t"
    )
    rep.step(
        f"outpatient visits without a three-digit specialty (specialty {UNKNOWN_SPECIALTY})",
        count(con, f"SELECT count(*) FROM vop2 WHERE specialty = '{UNKNOWN_SPECIALTY}'"),
    )
    con.execute(
        "CREATE TEMP TABLE c_outpatient_appointments AS SELECT t.visit_id AS appointment_id, "
        "t.person_id, t.start AS appointment_date, t.specialty, row_number() OVER (PARTITION BY "
        "t.person_id, t.specialty ORDER BY t.start, t.visit_id) = 1 AS first_attendance, "
        "true AS attended, "
        f"{_own_cost(str(UNIT_COST['outpatient']), 'outpatient_appointments')} AS cost "
        "FROM vop2 t"
    )


def conditions(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str) -> None:
    """``dx`` (each visit's primary ICD-10 diagnosis) and ``c_conditions``."""
    t = "condition_occurrence"
    if not src.has(t):
        con.execute("CREATE TEMP TABLE dx (visit_id VARCHAR, code VARCHAR)")
        return
    f = lambda name: src.field_sql(t, name)  # noqa: E731
    status = ", ".join(f"'{s}'" for s in PRIMARY_STATUS)
    types = ", ".join(f"'{s}'" for s in PRIMARY_TYPES)
    con.execute(
        f"CREATE TEMP TABLE co0 AS SELECT _row, {id_sql(f('person_id'))} AS person_id, "
        f"{id_sql(f('visit_occurrence_id'))} AS visit_id, "
        f"{date_sql(src.col(t, 'condition_start_date') or '')} AS date, "
        f"{id_sql(f('condition_concept_id'))} AS concept, "
        f"{id_sql(f('condition_source_concept_id'))} AS source_concept, "
        f"trim(CAST({f('condition_source_value')} AS VARCHAR)) AS source_value, "
        f"({id_sql(f('condition_status_concept_id'))} IN ({status}) IS TRUE OR "
        f"{id_sql(f('condition_type_concept_id'))} IN ({types}) IS TRUE) AS is_primary, "
        f"TRY_CAST({id_sql(f('condition_occurrence_id'))} AS BIGINT) AS occ "
        "FROM o_condition_occurrence"
    )

    def snomed_ok(expr: str) -> str:
        return f"regexp_full_match(coalesce({expr}, ''), '{CODE_PATTERNS['SNOMED'][1:-1]}')"

    if src.has("concept"):
        icd = ", ".join(f"'{v}'" for v in ("ICD10", "ICD10CM"))
        con.execute(
            "CREATE TEMP TABLE co AS SELECT c.*, "
            "CASE WHEN s.vocabulary_id = 'SNOMED' THEN s.concept_code END AS snomed, "
            f"CASE WHEN sc.vocabulary_id IN ({icd}) THEN "
            f"{icd10_sql('coalesce(sc.concept_code, c.source_value)')} END AS icd10 "
            "FROM co0 c LEFT JOIN o_concept s ON s.concept_id = c.concept "
            "LEFT JOIN o_concept sc ON sc.concept_id = c.source_concept"
        )
    else:
        rep.notes.append(
            "CONDITION_OCCURRENCE: no CONCEPT table; codes taken from condition_source_value "
            "(SNOMED when 6 to 18 digits, ICD-10 when it reads as one)"
        )
        con.execute(
            "CREATE TEMP TABLE co AS SELECT c.*, "
            f"CASE WHEN {snomed_ok('c.source_value')} THEN c.source_value END AS "
            f"snomed, CASE WHEN {icd10_ok_sql(icd10_sql('c.source_value'))} THEN "
            f"{icd10_sql('c.source_value')} END AS icd10 FROM co0 c"
        )
    con.execute(
        "UPDATE co SET snomed = NULL WHERE NOT "
        + snomed_ok("snomed")
        + "; UPDATE co SET icd10 = NULL WHERE NOT "
        + icd10_ok_sql("icd10")
    )
    con.execute(
        "CREATE TEMP TABLE dx AS SELECT visit_id, "
        "arg_min(icd10, (NOT is_primary, date, occ, _row)) AS code FROM co "
        "WHERE visit_id IS NOT NULL AND icd10 IS NOT NULL GROUP BY visit_id"
    )
    file = t
    rep.drop(
        file,
        "no SNOMED concept and no ICD-10 source code",
        count(con, "DELETE FROM co WHERE snomed IS NULL AND icd10 IS NULL"),
    )
    screen(con, rep, file, "co", ("date",), limit)
    con.execute(
        "CREATE TEMP TABLE c_conditions AS SELECT person_id, code_system, code, min(date) AS date "
        "FROM (SELECT person_id, 'SNOMED' AS code_system, snomed AS code, date FROM co "
        "WHERE snomed IS NOT NULL UNION ALL SELECT person_id, 'ICD10', icd10, date FROM co "
        "WHERE icd10 IS NOT NULL) GROUP BY ALL"
    )


def measurements(
    con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str
) -> None:
    """``c_measurements``: the four measures careval reads, in its units and ranges."""
    t = "measurement"
    if not src.has(t):
        return
    f = lambda name: src.field_sql(t, name)  # noqa: E731
    loinc = f"trim(CAST({f('measurement_source_value')} AS VARCHAR))"
    unit = f"lower(trim(CAST({f('unit_source_value')} AS VARCHAR)))"
    join = ""
    if src.has("concept"):
        loinc = f"coalesce(CASE WHEN k.vocabulary_id = 'LOINC' THEN k.concept_code END, {loinc})"
        unit = f"coalesce(lower(u.concept_code), {unit})"
        join = (
            f"LEFT JOIN o_concept k ON k.concept_id = {id_sql(f('measurement_concept_id'))} "
            f"LEFT JOIN o_concept u ON u.concept_id = {id_sql(f('unit_concept_id'))}"
        )
    ids = {m: ", ".join(f"'{c}'" for c in v[0]) for m, v in MEASURE_CONCEPTS.items()}
    codes = {m: ", ".join(f"'{c}'" for c in v[1]) for m, v in MEASURE_CONCEPTS.items()}
    measure = (
        "CASE "
        + " ".join(f"WHEN concept IN ({ids[m]}) OR loinc IN ({codes[m]}) THEN '{m}'" for m in ids)
        + " END"
    )
    units = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in UNIT_CONCEPTS.items())
    con.execute(
        f"CREATE TEMP TABLE m0 AS SELECT _row, {id_sql(f('person_id'))} AS person_id, "
        f"{date_sql(src.col(t, 'measurement_date') or '')} AS date, "
        f"{id_sql(f('measurement_concept_id'))} AS concept, {loinc} AS loinc, "
        f"coalesce(CASE {id_sql(f('unit_concept_id'))} {units} END, {unit}) AS unit, "
        f"TRY_CAST({f('value_as_number')} AS DOUBLE) AS v FROM o_measurement {join}"
    )
    con.execute(f"CREATE TEMP TABLE m AS SELECT *, {measure} AS measure FROM m0")
    rep.step(
        "measurements of other kinds (not HbA1c, cholesterol or blood pressure), not imported",
        count(con, "DELETE FROM m WHERE measure IS NULL"),
    )
    rep.drop(t, "no numeric value", count(con, "DELETE FROM m WHERE v IS NULL"))
    pct = "measure = 'hba1c' AND (unit = '%' OR (unit IS DISTINCT FROM 'mmol/mol' AND v <= 20))"
    mg = (
        "measure = 'total_cholesterol' AND (unit = 'mg/dl' OR "
        "(unit IS DISTINCT FROM 'mmol/l' AND v > 25))"
    )
    rep.step(
        "HbA1c in % converted to mmol/mol ((% - 2.15) x 10.929)",
        count(con, f"SELECT count(*) FROM m WHERE {pct}"),
    )
    rep.step(
        "total cholesterol in mg/dl converted to mmol/l (/ 38.67)",
        count(con, f"SELECT count(*) FROM m WHERE {mg}"),
    )
    con.execute(
        f"UPDATE m SET v = CASE WHEN {pct} THEN {HBA1C_PCT} WHEN {mg} THEN {CHOLESTEROL_MG_DL} "
        "ELSE v END"
    )
    outside = " OR ".join(
        f"(measure = '{m}' AND NOT v BETWEEN {lo} AND {hi})"
        for m, (lo, hi) in MEASURE_RANGES.items()
    )
    for m, (lo, hi) in MEASURE_RANGES.items():
        if m in MEASURE_CONCEPTS:
            rep.drop(
                t,
                f"{m} outside the plausible range {lo:g}-{hi:g}",
                count(
                    con,
                    f"SELECT count(*) FROM m WHERE measure = '{m}' AND NOT v BETWEEN {lo} AND {hi}",
                ),
            )
    con.execute(f"DELETE FROM m WHERE {outside}")
    screen(con, rep, t, "m", ("date",), limit)
    con.execute(
        "CREATE TEMP TABLE c_measurements AS SELECT person_id, date, measure, v AS value FROM m"
    )


def medications(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport, limit: str) -> None:
    """``c_medications`` from ``drug_exposure``."""
    t = "drug_exposure"
    if not src.has(t):
        return
    f = lambda name: src.field_sql(t, name)  # noqa: E731
    concept = id_sql(f("drug_concept_id"))
    system, code, join = "'OMOP'", "d.concept", ""
    if src.has("concept"):
        system = system_sql("k.vocabulary_id")
        code = code_sql("k.vocabulary_id", "k.concept_code", "d.concept")
        join = "LEFT JOIN o_concept k ON k.concept_id = d.concept"
    else:
        rep.notes.append("DRUG_EXPOSURE: no CONCEPT table; drugs coded by OMOP concept id")
    end = src.col(t, "drug_exposure_end_date")
    con.execute(
        f"CREATE TEMP TABLE d0 AS SELECT _row, {id_sql(f('person_id'))} AS person_id, "
        f"{concept} AS concept, {date_sql(src.col(t, 'drug_exposure_start_date') or '')} AS start, "
        f"{date_sql(end) if end else 'CAST(NULL AS DATE)'} AS stop FROM o_drug_exposure"
    )
    rep.drop(
        t,
        "no drug concept (drug_concept_id 0 or empty)",
        count(con, "DELETE FROM d0 WHERE concept IS NULL OR concept = '0'"),
    )
    rep.step(
        "drug exposures whose end date is before the start or after the extract date (left empty)",
        count(con, f"UPDATE d0 SET stop = NULL WHERE stop < start OR stop > {limit}"),
    )
    con.execute(
        f"CREATE TEMP TABLE d AS SELECT d.*, {system} AS code_system, {code} AS code "
        f"FROM d0 d {join}"
    )
    screen(con, rep, t, "d", ("start",), limit)
    con.execute(
        "CREATE TEMP TABLE c_medications AS SELECT person_id, code_system, code, "
        "start AS start_date, stop AS end_date FROM d"
    )


def procedures(con: duckdb.DuckDBPyConnection, src: Source, rep: ImportReport) -> None:
    """Procedures have no canonical table: counted and reported as not imported."""
    if src.has("procedure_occurrence"):
        rep.step(
            "procedure_occurrence rows, not imported (careval has no procedures table)",
            src.rows["procedure_occurrence"],
        )


def limit_sql(date: str) -> str:
    """SQL for the extract date (an ISO date)."""
    return f"DATE {literal(date)}"
