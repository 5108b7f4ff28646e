"""``careval import hes``: each spell rule on tiny hand-written episode files, the people built
from the extract, pseudonymisation, bad input (exit 2, nothing written, inputs untouched), and
the round trip through a base dataset (``careval synth --format hes`` written back exactly).

Expected values are worked out by hand from the rows written in each test (docs/import-hes.md
gives the rules), or are the canonical tables the HES files were written from.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from careval.cli import main
from careval.data.adapters.common import ImportReport
from careval.data.adapters.hes import HesFiles, import_hes
from careval.data.adapters.pseudonymise import keygen, read_key, token
from careval.data.costs import UNIT_COST
from careval.data.validate import require_valid
from careval.synthetic.hes import write_hes

DEFAULTS = {
    "HESID": "P1",
    "EPIKEY": "",
    "EPIORDER": "1",
    "EPISTAT": "3",
    "ADMIDATE": "2012-01-05",
    "EPISTART": "2012-01-05",
    "EPIEND": "2012-01-07",
    "DISDATE": "2012-01-07",
    "ADMIMETH": "21",
    "ADMISORC": "19",
    "CLASSPAT": "1",
    "DISDEST": "19",
    "DISMETH": "1",
    "PROCODE3": "RYJ",
    "PROVSPNO": "S1",
    "DIAG_4_01": "J189",
    "DIAG_4_02": "",
    "SEX": "1",
    "MYDOB": "011940",
    "LSOA11": "E01000001",
    "GPPRAC": "A12345",
}
NON_ELECTIVE = UNIT_COST["non_elective"]


def episodes(*rows: dict[str, str], drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Episode rows: the defaults, each row's fields, EPIKEY E1, E2... where not given."""
    out = []
    for i, row in enumerate(rows, 1):
        r = {**DEFAULTS, **row}
        r["EPIKEY"] = r["EPIKEY"] or f"E{i}"
        out.append({k: v for k, v in r.items() if k not in drop})
    return out


def write(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    names = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, names, delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


def run(tmp_path: Path, rows: list[dict[str, str]], **options: Any) -> tuple[ImportReport, Path]:
    """Import ``rows`` as the APC file (and any A&E / OP rows given) into tmp_path/out."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ae = options.pop("ae", None)
    op = options.pop("op", None)
    files = HesFiles(
        write(tmp_path / "apc.csv", rows),
        write(tmp_path / "ae.csv", ae) if ae else None,
        write(tmp_path / "op.csv", op) if op else None,
    )
    out = tmp_path / "out"
    return import_hes(out, files, **options), out


def table(out: Path, name: str, key: str | None = None) -> list[dict[str, Any]]:
    rows = pq.read_table(out / f"{name}.parquet").to_pylist()
    return sorted(rows, key=lambda r: r[key]) if key else rows


def dropped(report: ImportReport) -> dict[str, int]:
    return {reason: n for _, reason, n in report.dropped}


def steps(report: ImportReport) -> dict[str, int]:
    return dict(report.steps)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --- spell rules ---------------------------------------------------------------------------------


def test_a_multi_episode_spell_takes_admission_from_the_first_and_discharge_from_the_last(
    tmp_path: Path,
) -> None:
    # Written out of order: EPIORDER decides. Episode 1 has no DISDATE (HES null date).
    rows = episodes(
        {
            "EPIORDER": "3",
            "EPISTART": "2012-01-09",
            "EPIEND": "2012-01-12",
            "DISDATE": "2012-01-12",
            "ADMIMETH": "81",
            "CLASSPAT": "2",
            "DIAG_4_01": "Z501",
            "DISMETH": "4",
            "DISDEST": "79",
        },
        {
            "EPIORDER": "1",
            "EPIEND": "2012-01-07",
            "DISDATE": "1800-01-01",
            "DIAG_4_01": "J189",
            "DISMETH": "",
            "DISDEST": "",
        },
        {
            "EPIORDER": "2",
            "EPISTART": "2012-01-07",
            "EPIEND": "2012-01-09",
            "DISDATE": "",
            "DIAG_4_01": "R55X",
        },
    )
    report, out = run(tmp_path, rows)
    (spell,) = table(out, "inpatient_spells")
    assert spell["spell_id"] == "S1"
    assert spell["admission_date"] == day("2012-01-05")
    assert spell["discharge_date"] == day("2012-01-12")
    assert (spell["admission_method"], spell["patient_classification"]) == ("21", "1")
    assert spell["primary_diagnosis"] == "J189"
    # no COST column: the non-elective tariff and 2 excess bed days (7 days, trim 5)
    assert spell["cost"] == NON_ELECTIVE + 2 * UNIT_COST["excess_bed_day"]
    assert steps(report)["provider spells of more than one episode"] == 1
    (person,) = table(out, "persons")
    assert person["death_date"] == day("2012-01-12")  # DISMETH 4 on the last episode
    codes = {c["code"] for c in table(out, "conditions")}
    assert codes == {"J189", "R55X", "Z501"}


def test_duplicates_are_counted_once_and_a_changed_copy_is_counted_apart(tmp_path: Path) -> None:
    base = {"EPIKEY": "E1"}
    rows = episodes(
        base,
        base,
        base,
        {"EPIKEY": "E1", "DIAG_4_01": "I10X"},
        {
            "PROVSPNO": "S2",
            "ADMIDATE": "2012-02-01",
            "EPISTART": "2012-02-01",
            "EPIEND": "2012-02-02",
            "DISDATE": "2012-02-02",
        },
    )
    report, out = run(tmp_path, rows)
    assert dropped(report) == {
        "duplicate episode (same EPIKEY, same content)": 2,
        "duplicate episode key, different content (same EPIKEY; one row kept)": 1,
    }
    spells = table(out, "inpatient_spells", "spell_id")
    assert [s["spell_id"] for s in spells] == ["S1", "S2"]
    assert spells[0]["primary_diagnosis"] == "J189"  # the first row of E1 is the one kept


def test_of_two_copies_of_an_episode_the_finished_one_is_kept(tmp_path: Path) -> None:
    # an extract of two years: the episode unfinished at the first year's end, then finished
    rows = episodes(
        {"EPIKEY": "E1", "EPISTAT": "1", "EPIEND": "1800-01-01", "DISDATE": "1800-01-01"},
        {"EPIKEY": "E1", "EPISTAT": "3", "EPIEND": "2012-01-09", "DISDATE": "2012-01-09"},
    )
    report, out = run(tmp_path, rows)
    (spell,) = table(out, "inpatient_spells")
    assert spell["discharge_date"] == day("2012-01-09")
    assert dropped(report) == {
        "duplicate episode key, different content (same EPIKEY; one row kept)": 1
    }


def test_unfinished_episodes_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = episodes(
        {},
        {
            "EPISTAT": "1",
            "PROVSPNO": "S2",
            "ADMIDATE": "2012-03-01",
            "EPISTART": "2012-03-01",
            "EPIEND": "1800-01-01",
            "DISDATE": "1800-01-01",
        },
        {"EPISTAT": "9", "PROVSPNO": "S3"},
    )
    report, out = run(tmp_path, rows)
    assert dropped(report) == {"unfinished episodes (EPISTAT not 3)": 2}
    assert [s["spell_id"] for s in table(out, "inpatient_spells")] == ["S1"]


def test_a_spell_not_yet_discharged_ends_at_its_last_episode(tmp_path: Path) -> None:
    rows = episodes({"EPIEND": "2012-01-20", "DISDATE": "1800-01-01"})
    report, out = run(tmp_path, rows)
    (spell,) = table(out, "inpatient_spells")
    assert spell["discharge_date"] == day("2012-01-20")
    assert (
        steps(report)[
            "provider spells not discharged at the extract (kept; discharge = last EPIEND)"
        ]
        == 1
    )


def test_regular_attenders_are_kept_but_not_emergency_spells(tmp_path: Path) -> None:
    rows = episodes(
        {"CLASSPAT": "3", "ADMIMETH": "13", "EPIEND": "2012-01-05", "DISDATE": "2012-01-05"},
        {"CLASSPAT": "4", "ADMIMETH": "21", "PROVSPNO": "S2"},
        {"CLASSPAT": "1", "ADMIMETH": "2A", "PROVSPNO": "S3"},
        {"CLASSPAT": "1", "ADMIMETH": "11", "PROVSPNO": "S4"},
    )
    report, out = run(tmp_path, rows)
    spells = table(out, "inpatient_spells", "spell_id")
    assert [s["patient_classification"] for s in spells] == ["3", "4", "1", "1"]
    assert spells[0]["cost"] == UNIT_COST["regular_attender"]
    assert steps(report)["emergency spells (regular attenders left out)"] == 1  # S3 only


TRANSFER = episodes(
    {
        "EPIKEY": "A1",
        "PROVSPNO": "S9",
        "PROCODE3": "RYJ",
        "EPIEND": "2012-01-07",
        "DISDATE": "2012-01-07",
        "DISDEST": "51",
    },
    {
        "EPIKEY": "B1",
        "PROVSPNO": "S9T",
        "PROCODE3": "RRV",
        "ADMIDATE": "2012-01-07",
        "EPISTART": "2012-01-07",
        "EPIEND": "2012-01-15",
        "DISDATE": "2012-01-15",
        "ADMIMETH": "81",
        "ADMISORC": "51",
        "DIAG_4_01": "I639",
        "DISMETH": "1",
    },
    # The same person's later spell, admitted the day after, from home: not a transfer.
    {
        "EPIKEY": "C1",
        "PROVSPNO": "S10",
        "ADMIDATE": "2012-01-16",
        "EPISTART": "2012-01-16",
        "EPIEND": "2012-01-17",
        "DISDATE": "2012-01-17",
        "ADMIMETH": "22",
    },
)


def test_a_transfer_is_two_provider_spells_without_cips(tmp_path: Path) -> None:
    report, out = run(tmp_path, TRANSFER)
    spells = table(out, "inpatient_spells", "spell_id")
    assert [s["spell_id"] for s in spells] == ["S10", "S9", "S9T"]
    assert spells[2]["admission_method"] == "81"
    assert steps(report)["spells written"] == 3


def test_cips_joins_a_transfer_into_one_spell(tmp_path: Path) -> None:
    report, out = run(tmp_path, TRANSFER, cips=True)
    spells = table(out, "inpatient_spells", "spell_id")
    assert [s["spell_id"] for s in spells] == ["S10", "S9"]
    joined = spells[1]
    assert (joined["admission_date"], joined["discharge_date"]) == (
        day("2012-01-05"),
        day("2012-01-15"),
    )
    assert (joined["admission_method"], joined["primary_diagnosis"]) == ("21", "J189")
    # costed as one stay of 10 days: 5 excess bed days
    assert joined["cost"] == NON_ELECTIVE + 5 * UNIT_COST["excess_bed_day"]
    assert steps(report)["continuous inpatient spells joining more than one provider spell"] == 1


def test_cips_joins_on_any_one_transfer_code_and_only_within_a_day(tmp_path: Path) -> None:
    rows = episodes(
        # discharged to a transfer destination only (ADMISORC and ADMIMETH ordinary): joined
        {"EPIKEY": "A", "PROVSPNO": "S1", "DISDEST": "49"},
        {
            "EPIKEY": "B",
            "PROVSPNO": "S2",
            "ADMIDATE": "2012-01-08",
            "EPISTART": "2012-01-08",
            "EPIEND": "2012-01-09",
            "DISDATE": "2012-01-09",
            "PROCODE3": "RRV",
        },
        # admitted two days after a transfer discharge: a new spell
        {
            "EPIKEY": "C",
            "PROVSPNO": "S3",
            "ADMIDATE": "2012-01-11",
            "EPISTART": "2012-01-11",
            "EPIEND": "2012-01-12",
            "DISDATE": "2012-01-12",
            "ADMISORC": "51",
            "ADMIMETH": "81",
        },
    )
    report, out = run(tmp_path, rows, cips=True)
    spells = table(out, "inpatient_spells", "spell_id")
    assert [(s["spell_id"], s["discharge_date"]) for s in spells] == [
        ("S1", day("2012-01-09")),
        ("S3", day("2012-01-12")),
    ]


def test_costs_come_from_cost_when_the_extract_has_them(tmp_path: Path) -> None:
    rows = episodes(
        {"EPIKEY": "A", "COST": "1000.5"},
        {"EPIKEY": "B", "EPIORDER": "2", "COST": "200"},
        {"EPIKEY": "C", "PROVSPNO": "S2", "ADMIMETH": "11", "COST": ""},
    )
    _, out = run(tmp_path, rows)
    spells = table(out, "inpatient_spells", "spell_id")
    assert spells[0]["cost"] == 1200.5
    assert spells[1]["cost"] == UNIT_COST["elective"]  # no COST on any episode: unit cost


def test_dates_as_dd_mm_yyyy_and_names_in_lower_case(tmp_path: Path) -> None:
    rows = [
        {k.lower(): v for k, v in r.items()}
        for r in episodes(
            {
                "ADMIDATE": "05/01/2012",
                "EPISTART": "05/01/2012",
                "EPIEND": "09/01/2012",
                "DISDATE": "09/01/2012",
            }
        )
    ]
    _, out = run(tmp_path, rows)
    (spell,) = table(out, "inpatient_spells")
    assert (spell["admission_date"], spell["discharge_date"]) == (
        day("2012-01-05"),
        day("2012-01-09"),
    )


def test_parquet_with_typed_columns_reads_as_hes_codes(tmp_path: Path) -> None:
    import pyarrow as pa

    apc = pa.table(
        {
            "HESID": ["P1", "P1"],
            "EPIKEY": [1, 2],
            "EPIORDER": [1, 2],
            "EPISTAT": [3, 3],
            "ADMIDATE": pa.array([dt.date(2012, 1, 5)] * 2),
            "EPISTART": pa.array([dt.date(2012, 1, 5), dt.date(2012, 1, 6)]),
            "EPIEND": pa.array([dt.date(2012, 1, 6), dt.date(2012, 1, 8)]),
            "DISDATE": pa.array([None, dt.datetime(2012, 1, 8)], pa.timestamp("s")),
            "ADMIMETH": [21, 21],
            "CLASSPAT": [1, 1],
            "DISMETH": [None, 1],
            "PROCODE3": ["RYJ", "RYJ"],
            "PROVSPNO": [77, 77],
            "DIAG_4_01": ["J189", "R55X"],
            "SEX": [2, 2],
            "MYDOB": [31950, 31950],  # mmyyyy whose leading zero a number lost
            "COST": [1000.0, 0.0],
        }
    )
    ae = pa.table(
        {
            "HESID": ["P1"],
            "AEKEY": [9],
            "ARRIVALDATE": pa.array([dt.date(2012, 1, 5)]),
            "AEATTENDDISP": [1],
        }
    )
    pq.write_table(apc, tmp_path / "apc.parquet")
    pq.write_table(ae, tmp_path / "ae.parquet")
    import_hes(tmp_path / "out", HesFiles(tmp_path / "apc.parquet", tmp_path / "ae.parquet"))
    (spell,) = table(tmp_path / "out", "inpatient_spells")
    assert (spell["spell_id"], spell["discharge_date"], spell["cost"]) == (
        "77",
        day("2012-01-08"),
        1000.0,
    )
    assert table(tmp_path / "out", "persons")[0]["birth_month"] == day("1950-03-01")
    assert table(tmp_path / "out", "ae_attendances")[0]["disposal"] == "admitted"


def test_pipe_delimited_latin_1_files_are_read(tmp_path: Path) -> None:
    rows = episodes({"ETHNOS": "A", "HESID": "Pé1"})
    path = tmp_path / "apc.csv"
    write(path, rows, delimiter="|")
    path.write_bytes(path.read_text("utf-8").encode("latin-1"))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="is not utf-8 text"):
        import_hes(out, HesFiles(path))
    import_hes(out, HesFiles(path), encoding="latin-1")
    (person,) = table(out, "persons")
    assert (person["person_id"], person["ethnic_group"]) == ("Pé1", "white")


def test_a_missing_admission_date_drops_the_episode(tmp_path: Path) -> None:
    rows = episodes(
        {}, {"PROVSPNO": "S2", "ADMIDATE": "1800-01-01"}, {"PROVSPNO": "S3", "ADMIDATE": ""}
    )
    report, out = run(tmp_path, rows)
    assert dropped(report) == {"admission date (ADMIDATE) missing: blank or a HES null date": 2}
    assert len(table(out, "inpatient_spells")) == 1


def test_diag_4_concat_and_diagnoses_normalised(tmp_path: Path) -> None:
    rows = episodes(
        {"DIAG_4_CONCAT": "J18.9,I10X D,R55,E11-9,??"},
        {"PROVSPNO": "S2", "DIAG_4_CONCAT": "junk,J189"},
        drop=("DIAG_4_01", "DIAG_4_02"),
    )
    report, out = run(tmp_path, rows)
    spells = table(out, "inpatient_spells", "spell_id")
    assert [s["primary_diagnosis"] for s in spells] == ["J189", "R69X"]
    conditions = {(c["code"], c["date"]) for c in table(out, "conditions")}
    assert conditions == {
        ("J189", day("2012-01-07")),
        ("I10X", day("2012-01-07")),
        ("R55X", day("2012-01-07")),
        ("E119", day("2012-01-07")),
    }
    assert steps(report)["episode diagnoses that are no ICD-10 code (left out of conditions)"] == 2
    assert (
        steps(report)["provider spells whose primary diagnosis is no ICD-10 code (kept as R69X)"]
        == 1
    )


def test_without_provspno_a_spell_is_person_provider_and_admission_date(tmp_path: Path) -> None:
    rows = episodes(
        {"EPIKEY": "A", "EPIEND": "2012-01-06", "DISDATE": ""},
        {"EPIKEY": "B", "EPIORDER": "2", "EPISTART": "2012-01-06"},
        {"EPIKEY": "C", "PROCODE3": "RRV"},  # another provider, same day: another spell
        {"EPIKEY": "D", "HESID": "P2"},  # another person: another spell
        drop=("PROVSPNO",),
    )
    _, out = run(tmp_path, rows)
    spells = table(out, "inpatient_spells", "spell_id")
    assert len(spells) == 3
    ids = [s["spell_id"] for s in spells]
    assert all(len(i) == 21 and i.startswith("H") and "P1" not in i for i in ids)
    _, out2 = run(tmp_path / "again", rows)  # the same ids from the same extract
    assert sorted(s["spell_id"] for s in table(out2, "inpatient_spells")) == sorted(ids)


def test_a_provspno_shared_by_two_providers_is_prefixed_everywhere(tmp_path: Path) -> None:
    rows = episodes(
        {"PROVSPNO": "100", "PROCODE3": "RYJ"},
        {"PROVSPNO": "100", "PROCODE3": "RRV", "HESID": "P2"},
        {"PROVSPNO": "200", "PROCODE3": "RYJ", "HESID": "P3"},
    )
    _, out = run(tmp_path, rows)
    assert sorted(s["spell_id"] for s in table(out, "inpatient_spells")) == [
        "RRV-100",
        "RYJ-100",
        "RYJ-200",
    ]


def test_spells_that_break_the_model_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = episodes(
        {},
        {"PROVSPNO": "S2", "ADMIMETH": "99"},
        {"PROVSPNO": "S3", "CLASSPAT": "7"},
        {"PROVSPNO": "S4", "DISDATE": "2012-01-01", "EPIEND": "2012-01-01"},
        {"PROVSPNO": "S5", "HESID": " "},
    )
    report, out = run(tmp_path, rows)
    d = dropped(report)
    assert d["person key blank"] == 1
    assert sum(n for r, n in d.items() if "admission method" in r) == 1
    assert sum(n for r, n in d.items() if "patient classification" in r) == 1
    assert d["provider spells discharged before admission"] == 1
    assert [s["spell_id"] for s in table(out, "inpatient_spells")] == ["S1"]


def test_spells_after_the_extract_date_are_dropped(tmp_path: Path) -> None:
    rows = episodes(
        {},
        {
            "PROVSPNO": "S2",
            "ADMIDATE": "2012-06-01",
            "EPISTART": "2012-06-01",
            "EPIEND": "2012-06-02",
            "DISDATE": "2012-06-02",
        },
    )
    report, out = run(tmp_path, rows, extract_date=day("2012-03-31"))
    assert dropped(report) == {"spells discharged after the extract date 2012-03-31": 1}
    assert json.loads((out / "dataset.json").read_text())["extract_date"] == "2012-03-31"


# --- people from the extract ---------------------------------------------------------------------


def test_persons_from_the_extract(tmp_path: Path) -> None:
    rows = episodes(
        {"HESID": "P1", "SEX": "1", "MYDOB": "031950", "ETHNOS": "H", "LSOA11": "e01000002"},
        # a later episode of P1: its SEX and LSOA are kept; ETHNOS Z (not known) and no MYDOB
        # leave the first episode's
        {
            "HESID": "P1",
            "PROVSPNO": "S2",
            "ADMIDATE": "2012-02-01",
            "EPISTART": "2012-02-01",
            "SEX": "2",
            "MYDOB": "",
            "ETHNOS": "Z",
            "LSOA11": "E01000003",
        },
        # no MYDOB: the birth estimated from STARTAGE at the first episode
        {
            "HESID": "P2",
            "PROVSPNO": "S3",
            "MYDOB": "",
            "STARTAGE": "70",
            "ETHNOS": "M",
            "EPISTART": "2012-01-05",
            "LSOA11": "bad",
        },
        {"HESID": "P3", "PROVSPNO": "S4", "MYDOB": "", "STARTAGE": "7005", "ETHNOS": "99"},
        {"HESID": "P4", "PROVSPNO": "S5", "SEX": "9"},  # sex not known: dropped
        {"HESID": "P5", "PROVSPNO": "S6", "MYDOB": "", "STARTAGE": ""},  # no birth: dropped
    )
    report, out = run(tmp_path, rows)
    people = {p["person_id"]: p for p in table(out, "persons")}
    assert set(people) == {"P1", "P2", "P3"}
    p1, p2, p3 = people["P1"], people["P2"], people["P3"]
    assert (p1["sex"], p1["birth_month"], p1["ethnic_group"], p1["lsoa"]) == (
        "F",
        day("1950-03-01"),
        "asian",
        "E01000003",
    )
    # 2012-01-05 minus 70 years and 6 months: 1941-07-05, to its month
    assert (p2["birth_month"], p2["ethnic_group"], p2["lsoa"]) == (day("1941-07-01"), "black", None)
    # a baby of 3-6 months (7005): four months before the episode
    assert (p3["birth_month"], p3["ethnic_group"]) == (day("2011-09-01"), "unknown")
    d = dropped(report)
    assert d["persons whose SEX is never 1 or 2 (dropped with their records)"] == 1
    assert d["persons with no usable MYDOB or STARTAGE (dropped with their records)"] == 1
    assert d["spells of the persons dropped"] == 2


def test_registrations_follow_runs_of_gpprac(tmp_path: Path) -> None:
    def adm(date: str, gp: str, sp: str) -> dict[str, str]:
        return {
            "PROVSPNO": sp,
            "ADMIDATE": date,
            "EPISTART": date,
            "EPIEND": date,
            "DISDATE": date,
            "GPPRAC": gp,
        }

    rows = episodes(
        adm("2012-01-05", "A12345", "S1"),
        adm("2012-02-10", "A12345", "S2"),
        adm("2012-03-15", "V81999", "S3"),  # not known: changes nothing
        adm("2012-04-20", "B12345", "S4"),
        adm("2012-05-25", "A12345", "S5"),
        {**adm("2012-03-01", "", "S6"), "HESID": "P2"},  # never known: V81999
    )
    practices = write(
        tmp_path / "practices.csv",
        [{"practice_code": "A12345", "area": "Pilot", "locality": "Ealing", "mdg": "MDG01"}],
    )
    _, out = run(tmp_path, rows, practices=practices)
    regs = [
        (r["person_id"], r["practice_code"], r["start_date"], r["end_date"])
        for r in table(out, "registrations")
    ]
    assert regs == [
        ("P1", "A12345", day("2012-01-01"), day("2012-04-19")),
        ("P1", "B12345", day("2012-04-20"), day("2012-05-24")),
        ("P1", "A12345", day("2012-05-25"), None),
        ("P2", "V81999", day("2012-01-01"), None),
    ]
    pr = {p["practice_code"]: p for p in table(out, "practices")}
    assert (pr["A12345"]["area"], pr["A12345"]["locality"], pr["A12345"]["mdg"]) == (
        "Pilot",
        "Ealing",
        "MDG01",
    )
    assert (pr["B12345"]["area"], pr["B12345"]["locality"]) == ("unmapped", "unknown")
    assert set(pr) == {"A12345", "B12345", "V81999"}


AE = [
    {"HESID": "P1", "AEKEY": "A1", "ARRIVALDATE": "2012-01-05", "AEATTENDDISP": "01"},
    {"HESID": "P1", "AEKEY": "A2", "ARRIVALDATE": "06/01/2012", "AEATTENDDISP": "3"},
    {"HESID": "P1", "AEKEY": "A3", "ARRIVALDATE": "2012-01-08", "AEATTENDDISP": "10"},
    {"HESID": "P1", "AEKEY": "A4", "ARRIVALDATE": "2012-01-08", "AEATTENDDISP": "13"},
    {"HESID": "P1", "AEKEY": "A5", "ARRIVALDATE": "2012-01-08", "AEATTENDDISP": "77"},
    {"HESID": "P9", "AEKEY": "A6", "ARRIVALDATE": "2012-01-08", "AEATTENDDISP": "02"},
    {"HESID": "P1", "AEKEY": "A1", "ARRIVALDATE": "2012-01-05", "AEATTENDDISP": "01"},
]
OP = [
    {
        "HESID": "P1",
        "ATTENDKEY": "O1",
        "APPTDATE": "2012-01-02",
        "TRETSPEF": "300",
        "FIRSTATT": "1",
        "ATTENDED": "5",
    },
    {
        "HESID": "P1",
        "ATTENDKEY": "O2",
        "APPTDATE": "2012-01-03",
        "TRETSPEF": "300",
        "FIRSTATT": "4",
        "ATTENDED": "3",
    },
    {
        "HESID": "P1",
        "ATTENDKEY": "O3",
        "APPTDATE": "2012-01-03",
        "TRETSPEF": "&",
        "FIRSTATT": "2",
        "ATTENDED": "6",
    },
    {
        "HESID": "P1",
        "ATTENDKEY": "O4",
        "APPTDATE": "2012-01-04",
        "TRETSPEF": "101",
        "FIRSTATT": "X",
        "ATTENDED": "6",
    },
    {
        "HESID": "P1",
        "ATTENDKEY": "O5",
        "APPTDATE": "2012-01-04",
        "TRETSPEF": "101",
        "FIRSTATT": "1",
        "ATTENDED": "9",
    },
]


def test_ae_and_outpatients_mapped_and_linked(tmp_path: Path) -> None:
    report, out = run(tmp_path, episodes({}), ae=AE, op=OP)
    ae = {a["attendance_id"]: (a["disposal"], a["cost"]) for a in table(out, "ae_attendances")}
    assert ae == {
        "A1": ("admitted", 148.0),
        "A2": ("discharged", 148.0),
        "A3": ("died", 148.0),
        "A4": ("left", 148.0),
        "A5": ("other", 148.0),
    }
    op = {
        o["appointment_id"]: (o["specialty"], o["first_attendance"], o["attended"], o["cost"])
        for o in table(out, "outpatient_appointments")
    }
    assert op == {
        "O1": ("300", True, True, 120.0),
        "O2": ("300", False, False, 0.0),
        "O4": ("101", False, True, 120.0),
    }
    assert report.linkage["A&E"]["share"] == pytest.approx(5 / 6)  # after the duplicate
    assert report.linkage["OP"]["share"] == 1.0
    d = dropped(report)
    assert d["person not in the APC persons"] == 1
    assert d["appointments whose treatment function (TRETSPEF) is blank, & or not 3 digits"] == 1
    assert d["appointments whose ATTENDED is blank or not a HES code (0, 2-7)"] == 1
    # the rows written, as the report and the manifest give them, are the files' rows
    written = {f.stem: len(table(out, f.stem)) for f in out.glob("*.parquet")}
    assert written["ae_attendances"] == 5 and written["outpatient_appointments"] == 3
    assert report.tables == written
    assert json.loads((out / "dataset.json").read_text())["rows"] == written


def test_the_imported_dataset_validates(tmp_path: Path) -> None:
    imd = write(tmp_path / "imd.csv", [{"LSOA11": "E01000001", "IMD_DECILE": "3"}])
    rows = episodes({}, {"PROVSPNO": "S2", "HESID": "P2", "DISMETH": "4", "SEX": "2"})
    _, out = run(tmp_path, rows, ae=AE, op=OP, imd_lookup=imd)
    require_valid(out)  # raises on any error of the model
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["synthetic"] is False
    assert manifest["extract_date"] == "2012-01-08"  # the latest date in the extract
    apc = tmp_path / "apc.csv"
    assert manifest["inputs"]["APC"]["sha256"] == hashlib.sha256(apc.read_bytes()).hexdigest()
    assert json.loads((out / "import_report.json").read_text())["source"] == "hes"


def test_without_lsoa_or_imd_the_dataset_validates(tmp_path: Path) -> None:
    rows = episodes({}, {"PROVSPNO": "S2", "HESID": "P2"}, drop=("LSOA11",))
    _, out = run(tmp_path, rows)
    require_valid(out)
    assert {(p["lsoa"], p["imd_decile"]) for p in table(out, "persons")} == {(None, None)}


# --- pseudonymisation ----------------------------------------------------------------------------

VALID = ("9434765919", "4010232137")  # NHS numbers whose Modulus 11 check digit holds


def test_nhs_numbers_become_tokens_and_invalid_ones_are_dropped(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    keygen(key_file)
    rows = episodes(
        {"NHS_NUMBER": VALID[0]},
        {"NHS_NUMBER": "943 476 5919", "PROVSPNO": "S2"},  # the same number, spaced
        {"NHS_NUMBER": VALID[1], "PROVSPNO": "S3"},
        {"NHS_NUMBER": "9434765918", "PROVSPNO": "S4"},  # check digit wrong
        drop=("HESID",),
    )
    ae = [{"NEWNHSNO": VALID[1], "AEKEY": "A1", "ARRIVALDATE": "2012-01-05", "AEATTENDDISP": "02"}]
    report, out = run(tmp_path, rows, ae=ae, key_file=key_file)
    key = read_key(key_file)
    people = {p["person_id"] for p in table(out, "persons")}
    assert people == {token(key, VALID[0]), token(key, VALID[1])}
    assert report.linkage["A&E"]["share"] == 1.0
    assert dropped(report) == {"NHS number invalid: fails the Modulus 11 check digit": 1}
    assert report.key_fingerprint
    hexkey = key_file.read_text().strip()
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert hexkey.encode() not in data and key not in data
            assert VALID[0].encode() not in data and VALID[1].encode() not in data


def test_with_a_key_a_hesid_is_tokenised_too(tmp_path: Path) -> None:
    key_file = tmp_path / "k.key"
    keygen(key_file)
    report, out = run(tmp_path, episodes({"HESID": "H1"}), key_file=key_file)
    (person,) = table(out, "persons")
    assert person["person_id"] == token(read_key(key_file), "H1", nhs=False)
    assert person["person_id"] != "H1"


def test_nhs_numbers_without_a_key_are_refused(tmp_path: Path, capsys: Any) -> None:
    apc = write(tmp_path / "apc.csv", episodes({"NHS_NUMBER": VALID[0]}, drop=("HESID",)))
    code = cli(["import", "hes", "--apc", str(apc), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--key-file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- bad input: one message, exit 2, nothing written, inputs untouched ----------------------


def cli(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _missing_column(d: Path) -> Path:
    return write(d / "apc.csv", episodes({}, drop=("CLASSPAT",)))


def _bad_date(d: Path) -> Path:
    return write(
        d / "apc.csv",
        episodes(
            {},
            {"PROVSPNO": "S2", "ADMIDATE": "2012-13-45"},
            {"PROVSPNO": "S3", "ADMIDATE": "1/2/12x"},
        ),
    )


def _wrong_delimiter(d: Path) -> Path:
    p = write(d / "apc.csv", episodes({}, {"PROVSPNO": "S2"}))
    lines = p.read_text().splitlines()
    lines[2] = lines[2].replace(",", ";", 3)
    p.write_text("\n".join(lines) + "\n")
    return p


def _bad_encoding(d: Path) -> Path:
    p = write(d / "apc.csv", episodes({}, {"PROVSPNO": "S2"}))
    p.write_bytes(p.read_bytes().replace(b"RYJ", b"R\xe9J"))
    return p


def _empty(d: Path) -> Path:
    p = d / "apc.csv"
    p.write_bytes(b"")
    return p


def _header_only(d: Path) -> Path:
    p = d / "apc.csv"
    p.write_text(",".join(DEFAULTS) + "\n")
    return p


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_missing_column, ["apc.csv", "missing required column CLASSPAT"]),
        (_bad_date, ["apc.csv", "column ADMIDATE is not a date (2 rows)", "rows 2, 3"]),
        (_wrong_delimiter, ["apc.csv", "line 3", "different number of fields"]),
        (_bad_encoding, ["apc.csv", "is not utf-8 text"]),
        (_empty, ["apc.csv", "the file is empty"]),
        (_header_only, ["apc.csv", "a header but no rows"]),
    ],
)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(
    tmp_path: Path, capsys: Any, make: Any, expected: list[str]
) -> None:
    apc = make(tmp_path)
    before = hashlib.sha256(apc.read_bytes()).hexdigest()
    out = tmp_path / "out"
    code = cli(["import", "hes", "--apc", str(apc), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("careval: error:") == 1 and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [apc.name]  # no temporary folder left
    assert hashlib.sha256(apc.read_bytes()).hexdigest() == before


def test_bad_dates_in_the_ae_file_are_named(tmp_path: Path, capsys: Any) -> None:
    apc = write(tmp_path / "apc.csv", episodes({}))
    ae = write(tmp_path / "ae.csv", [{**AE[0], "ARRIVALDATE": "yesterday"}])
    code = cli(["import", "hes", "--apc", str(apc), "--ae", str(ae), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "ae.csv: column ARRIVALDATE is not a date (1 row)" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("option", "rows", "missing"),
    [
        ("--ae", [{k: v for k, v in AE[0].items() if k != "AEATTENDDISP"}], "AEATTENDDISP"),
        ("--op", [{k: v for k, v in OP[0].items() if k != "ATTENDED"}], "ATTENDED"),
    ],
)
def test_a_missing_column_of_the_ae_or_op_file_is_named(
    tmp_path: Path, capsys: Any, option: str, rows: list[dict[str, str]], missing: str
) -> None:
    apc = write(tmp_path / "apc.csv", episodes({}))
    other = write(tmp_path / "other.csv", rows)
    code = cli(
        ["import", "hes", "--apc", str(apc), option, str(other), "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"other.csv: missing required column {missing}" in err
    assert not (tmp_path / "o").exists()


def test_the_cli_prints_the_report(tmp_path: Path, capsys: Any) -> None:
    apc = write(tmp_path / "apc.csv", episodes({}, {"EPISTAT": "1", "PROVSPNO": "S2"}))
    code = cli(["import", "hes", "--apc", str(apc), "--out", str(tmp_path / "o")])
    text = capsys.readouterr().out
    assert code == 0
    assert "dropped from APC: 1 (unfinished episodes (EPISTAT not 3))" in text
    assert "inpatient_spells: 1 rows written" in text


# --- the round trip through a base dataset ---------------------------------------------


@pytest.fixture(scope="module")
def hes_files(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hes-in") / "hes"
    write_hes(synth_dir, out, seed=5)
    return out


def test_round_trip_gives_back_the_canonical_hospital_tables(
    synth_dir: Path, hes_files: Path, tmp_path: Path
) -> None:
    before = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in synth_dir.iterdir()
        if p.is_file()
    }
    out = tmp_path / "out"
    report = import_hes(
        out,
        HesFiles(hes_files / "apc.csv", hes_files / "ae.csv", hes_files / "op.csv"),
        base=synth_dir,
        cips=True,
        synthetic=True,
    )
    for name in ("inpatient_spells", "ae_attendances", "outpatient_appointments"):
        # row for row, in the canonical order too (the writer shuffled the rows)
        assert table(out, name) == table(synth_dir, name), name
    for name in ("persons", "registrations", "practices", "conditions", "care_plans"):
        assert (out / f"{name}.parquet").read_bytes() == (
            synth_dir / f"{name}.parquet"
        ).read_bytes()
    assert {k: v["share"] for k, v in report.linkage.items()} == {"APC": 1.0, "A&E": 1.0, "OP": 1.0}
    assert require_valid(out) is not None
    manifest = json.loads((out / "dataset.json").read_text())
    base_manifest = json.loads((synth_dir / "dataset.json").read_text())
    assert manifest["synthetic"] is True
    assert manifest["extract_date"] == base_manifest["extract_date"]
    assert manifest["settings"] == base_manifest["settings"]
    assert (out / "truth.json").read_bytes() == (synth_dir / "truth.json").read_bytes()
    after = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in synth_dir.iterdir()
        if p.is_file()
    }
    assert after == before  # the base is read, never altered


def test_round_trip_without_cips_keeps_the_transfers_apart(
    synth_dir: Path, hes_files: Path, tmp_path: Path
) -> None:
    report = import_hes(tmp_path / "out", HesFiles(hes_files / "apc.csv"), base=synth_dir)
    for name in ("ae_attendances", "outpatient_appointments"):  # no --ae, --op: the base's
        assert (tmp_path / "out" / f"{name}.parquet").read_bytes() == (
            synth_dir / f"{name}.parquet"
        ).read_bytes()
    canonical = pq.read_metadata(synth_dir / "inpatient_spells.parquet").num_rows
    transfers = transfer_spells(hes_files)
    assert transfers > 0
    assert steps(report)["spells written"] == canonical + transfers
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["synthetic"] is False  # real unless asked


def transfer_spells(hes_files: Path) -> int:
    """The second halves of transfers in the file: distinct PROVSPNO ending in T."""
    keys = {
        r["PROVSPNO"]
        for r in csv.DictReader(open(hes_files / "apc.csv"))
        if r["PROVSPNO"].endswith("T") and r["EPISTAT"] == "3"
    }
    return len(keys)


def test_without_a_base_the_people_come_back_from_the_extract(
    synth_dir: Path, hes_files: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    import_hes(
        out,
        HesFiles(hes_files / "apc.csv", hes_files / "ae.csv", hes_files / "op.csv"),
        cips=True,
        synthetic=True,
    )
    require_valid(out)
    spells = table(out, "inpatient_spells")
    assert spells == table(synth_dir, "inpatient_spells")
    truth = {p["person_id"]: p for p in table(synth_dir, "persons")}
    people = table(out, "persons")
    assert {p["person_id"] for p in people} == {s["person_id"] for s in spells}
    for p in people:
        t = truth[p["person_id"]]
        assert (p["birth_month"], p["sex"], p["lsoa"]) == (t["birth_month"], t["sex"], t["lsoa"])
        # a death in hospital is known, and is the canonical one; a death elsewhere is not
        assert p["death_date"] in (None, t["death_date"])
    assert sum(p["death_date"] is not None for p in people) > 0
    practices = {(r["person_id"], r["practice_code"]) for r in table(synth_dir, "registrations")}
    assert {(r["person_id"], r["practice_code"]) for r in table(out, "registrations")} <= (
        practices
    )


def test_hes_rows_of_people_not_in_the_base_are_dropped(synth_dir: Path, tmp_path: Path) -> None:
    person = pq.read_table(synth_dir / "persons.parquet").column("person_id")[0].as_py()
    birth = pq.read_table(synth_dir / "persons.parquet").column("birth_month")[0].as_py()
    when = max(birth, dt.date(2012, 1, 1)).isoformat()
    rows = episodes(
        {
            "HESID": person,
            "PROVSPNO": "X1",
            "ADMIDATE": when,
            "EPISTART": when,
            "EPIEND": when,
            "DISDATE": when,
        },
        {"HESID": "NOBODY", "PROVSPNO": "X2"},
    )
    report, out = run(tmp_path, rows, base=synth_dir)
    assert report.linkage["APC"]["share"] == 0.5
    assert dropped(report)["person not in the base persons"] == 1
    assert [s["spell_id"] for s in table(out, "inpatient_spells")] == ["X1"]
    assert not (out / "truth.json").exists()  # real output: the synthetic truth is not copied


def test_options_that_do_not_go_together_are_refused(synth_dir: Path, tmp_path: Path) -> None:
    apc = write(tmp_path / "apc.csv", episodes({}))
    with pytest.raises(ValueError, match="without --base"):
        import_hes(tmp_path / "out", HesFiles(apc), base=synth_dir, practices=apc)
    with pytest.raises(ValueError, match="after today"):
        import_hes(tmp_path / "out", HesFiles(apc), extract_date=dt.date.today() + dt.timedelta(1))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="holds the input"):
        import_hes(tmp_path, HesFiles(apc), overwrite=True)
    import_hes(tmp_path / "out", HesFiles(apc), synthetic=True)  # a synthetic extract, no base
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["synthetic"] is True


def test_synthetic_is_refused_with_a_real_base(synth_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(synth_dir, real)
    m = json.loads((real / "dataset.json").read_text())
    (real / "dataset.json").write_text(json.dumps({**m, "synthetic": False}))
    apc = write(tmp_path / "apc.csv", episodes({}))
    with pytest.raises(ValueError, match="not flagged synthetic"):
        import_hes(tmp_path / "out", HesFiles(apc), base=real, synthetic=True)
    assert not (tmp_path / "out").exists()
