"""Findings of the review of the adapters' shared layer and the HES import: names equal but for
case, whole numbers stored as floats in Parquet, an import that would leave no spell, files keyed
by different person keys."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from careval.data.adapters.hes import HesFiles, import_hes
from careval.data.adapters.pseudonymise import keygen
from careval.errors import ConfigError
from tests.adapters.test_hes_import import episodes, run, table, write


def test_two_columns_named_alike_but_for_case_are_refused_in_csv_and_parquet(
    tmp_path: Path,
) -> None:
    rows = episodes({})
    path = tmp_path / "apc.csv"
    names = [*rows[0], "hesid"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerow([*rows[0].values(), "P2"])
    with pytest.raises(ConfigError, match="columns named HESID more than once"):
        import_hes(tmp_path / "out", HesFiles(path))
    frame = pd.DataFrame([{**rows[0]}])
    frame["hesid"] = "P2"
    frame.to_parquet(tmp_path / "apc.parquet", index=False)
    with pytest.raises(ConfigError, match="columns named HESID more than once"):
        import_hes(tmp_path / "out", HesFiles(tmp_path / "apc.parquet"))
    assert not (tmp_path / "out").exists()


def test_whole_numbers_stored_as_floats_in_parquet_read_as_codes(tmp_path: Path) -> None:
    """pandas writes a nullable integer column as float64: CLASSPAT 1.0 is the code 1, as the
    same extract as CSV gives."""
    rows = episodes({}, {"HESID": "P2", "PROVSPNO": "S2", "ADMIMETH": "11", "CLASSPAT": "2"})
    report_csv, out_csv = run(tmp_path / "csv", rows)
    frame = pd.DataFrame(rows)
    for c in ("EPIORDER", "EPISTAT", "CLASSPAT", "SEX", "ADMISORC", "DISDEST", "DISMETH"):
        frame[c] = frame[c].astype(float)
    frame.to_parquet(tmp_path / "apc.parquet", index=False)
    assert pq.read_schema(tmp_path / "apc.parquet").field("CLASSPAT").type == "double"
    import_hes(tmp_path / "pq", HesFiles(tmp_path / "apc.parquet"))
    got = table(tmp_path / "pq", "inpatient_spells", "spell_id")
    assert len(got) == 2
    assert got == table(out_csv, "inpatient_spells", "spell_id")
    assert [r["patient_classification"] for r in got] == ["1", "2"]


def test_an_import_that_leaves_no_spell_is_refused_with_the_reasons(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no spell is left to import.*extract date"):
        run(tmp_path, episodes({}), extract_date=pd.Timestamp("2000-01-01").date())
    assert not (tmp_path / "out").exists()


def test_files_keyed_by_different_person_keys_are_refused(tmp_path: Path) -> None:
    """With a key, an APC file keyed by HESID and an A&E file by NHS number would give tokens
    that never match: 0% linkage, every A&E row dropped. Refused, naming each file's key."""
    key = tmp_path / "k.key"
    keygen(key)
    apc = write(tmp_path / "apc.csv", episodes({}))
    ae = write(
        tmp_path / "ae.csv",
        [
            {
                "NHS_NUMBER": "9434765919",
                "AEKEY": "A1",
                "ARRIVALDATE": "2012-01-05",
                "AEATTENDDISP": "01",
            }
        ],
    )
    with pytest.raises(ConfigError, match=r"APC: HESID, A&E: NHS numbers"):
        import_hes(tmp_path / "out", HesFiles(apc, ae), key_file=key)
    assert not (tmp_path / "out").exists()


def test_a_cost_of_inf_or_nan_is_no_number(tmp_path: Path) -> None:
    rows = episodes({"COST": "inf"}, {"HESID": "P2", "PROVSPNO": "S2", "COST": "nan"})
    with pytest.raises(ConfigError, match=r"column COST .*\(2 rows\)"):
        run(tmp_path, rows)


def test_a_dataset_is_never_written_inside_the_base_nor_a_directory_read_as_a_file(
    tmp_path: Path, synth_dir: Path
) -> None:
    import shutil

    base = tmp_path / "base"
    shutil.copytree(synth_dir, base)
    before = sorted(p.name for p in base.iterdir())
    apc = write(tmp_path / "apc.csv", episodes({}))
    with pytest.raises(ConfigError, match="inside the input"):
        import_hes(base / "sub", HesFiles(apc), base=base)
    assert sorted(p.name for p in base.iterdir()) == before
    with pytest.raises(ConfigError, match="a directory, not a file"):
        import_hes(tmp_path / "out", HesFiles(tmp_path))


def test_an_ae_or_outpatient_cost_of_inf_is_no_number_either(tmp_path: Path) -> None:
    ae = [
        {
            "HESID": "P1",
            "AEKEY": "A1",
            "ARRIVALDATE": "2012-01-05",
            "AEATTENDDISP": "01",
            "COST": "inf",
        },
        {
            "HESID": "P1",
            "AEKEY": "A2",
            "ARRIVALDATE": "2012-01-06",
            "AEATTENDDISP": "01",
            "COST": "",
        },
    ]
    with pytest.raises(ConfigError, match=r"column COST .*\(1 row\)"):
        run(tmp_path, episodes({}), ae=ae)
