"""The HES-shaped extracts (``careval synth --format hes``) against the canonical tables.

The rules that turn episodes back into spells are implemented here again, independently of the
writer and of the importer, with pandas, as ``docs/hes-extracts.md`` states them: every canonical
spell, attendance and appointment must come back exactly, and every count the writer reports must
be what the files hold.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.data.codelists import codes, conditions
from careval.errors import ConfigError
from careval.synthetic.hes import write_hes
from careval.synthetic.hes_sql import SECONDARY_ICD10

NULL = "1800-01-01"
TRANSFER_DEST = {"49", "50", "51", "52", "53"}  # DISDEST / ADMISORC: another NHS provider
EMERGENCY = {"21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"}
AE_BACK = {
    "01": "admitted",
    "02": "discharged",
    "03": "discharged",
    **dict.fromkeys(("04", "05", "06", "07", "11"), "referred"),
    "10": "died",
    "12": "left",
    "13": "left",
    "14": "other",
    "99": "other",
}
DATES = ("ADMIDATE", "EPISTART", "EPIEND", "DISDATE")


def read(path: Path) -> pd.DataFrame:
    """A CSV extract as text, empty fields as empty strings."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def canonical(folder: Path, name: str) -> pd.DataFrame:
    return pq.read_table(folder / f"{name}.parquet").to_pandas(date_as_object=False)


def iso(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).dt.strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def hes(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("hes") / "hes"
    return out, write_hes(synth_dir, out, seed=5)


@pytest.fixture(scope="module")
def apc(hes: tuple[Path, dict]) -> pd.DataFrame:
    return read(hes[0] / "apc.csv")


def episodes(apc: pd.DataFrame) -> pd.DataFrame:
    """Each episode once (duplicates share their EPIKEY and every field)."""
    return apc.drop_duplicates("EPIKEY").assign(EPIORDER=lambda d: d.EPIORDER.astype(int))


def provider_spells(apc: pd.DataFrame) -> pd.DataFrame:
    """Finished episodes grouped by PROVSPNO: admission from the first, discharge from the last."""
    ep = episodes(apc)
    ep = ep[ep.EPISTAT == "3"].sort_values(["PROVSPNO", "EPIORDER"])
    first = ep.drop_duplicates("PROVSPNO", keep="first").set_index("PROVSPNO")
    last = ep.drop_duplicates("PROVSPNO", keep="last").set_index("PROVSPNO")
    return pd.DataFrame(
        {
            "HESID": first.HESID,
            "PROCODE3": first.PROCODE3,
            "ADMIDATE": first.ADMIDATE,
            "ADMIMETH": first.ADMIMETH,
            "ADMISORC": first.ADMISORC,
            "CLASSPAT": first.CLASSPAT,
            "DIAG": first.DIAG_4_01,
            "DISDATE": last.DISDATE,
            "DISDEST": last.DISDEST,
            "DISMETH": last.DISMETH,
            "COST": ep.assign(c=ep.COST.astype(float)).groupby("PROVSPNO").c.sum(),
        }
    ).reset_index()


def links(ps: pd.DataFrame, *, max_gap: int = 1, any_code: bool = False) -> pd.DataFrame:
    """Pairs (earlier, later) of provider spells one continuous inpatient spell joins.

    The documented rule: same person, the later admitted on the day of the earlier's discharge
    or the day after, the earlier ending in a transfer (DISDEST 49-53) and the later starting
    with one (ADMISORC 49-53 or ADMIMETH 81). ``any_code`` and ``max_gap`` loosen it to the
    NHS CIPS rule (any one of the codes, up to 3 days), which must find the same pairs.
    """
    ends = ps.DISDEST.isin(TRANSFER_DEST)
    starts = ps.ADMISORC.isin(TRANSFER_DEST) | (ps.ADMIMETH == "81")
    a = ps[ends | (any_code & starts)] if any_code else ps[ends]
    b = ps[starts | (any_code & ends)] if any_code else ps[starts]
    pairs = a.merge(b, on="HESID", suffixes=("_a", "_b"))
    pairs = pairs[pairs.PROVSPNO_a != pairs.PROVSPNO_b]
    gap = (pd.to_datetime(pairs.ADMIDATE_b) - pd.to_datetime(pairs.DISDATE_a)).dt.days
    pairs = pairs[(gap >= 0) & (gap <= max_gap)]
    if any_code:
        pairs = pairs[pairs.DISDEST_a.isin(TRANSFER_DEST) | pairs.ADMISORC_b.isin(TRANSFER_DEST)
                      | (pairs.ADMIMETH_b == "81")]  # fmt: skip
    return pairs[["PROVSPNO_a", "PROVSPNO_b"]].reset_index(drop=True)


def cips(ps: pd.DataFrame) -> pd.DataFrame:
    """Provider spells joined into continuous inpatient spells, named by their first PROVSPNO."""
    pairs = links(ps)
    assert pairs.PROVSPNO_a.is_unique and pairs.PROVSPNO_b.is_unique  # chains, never trees
    parent = dict(zip(pairs.PROVSPNO_b, pairs.PROVSPNO_a, strict=True))
    root = ps.PROVSPNO.copy()
    for _ in range(len(parent) + 1):  # follow chains back to their first spell
        up = root.map(parent)
        if up.isna().all():
            break
        root = up.fillna(root)
    ps = ps.assign(root=root.to_numpy(), ends=~ps.PROVSPNO.isin(pairs.PROVSPNO_a))
    first = ps[ps.PROVSPNO == ps.root].set_index("root")
    last = ps[ps.ends].set_index("root")
    return pd.DataFrame(
        {
            "person_id": first.HESID,
            "admission_date": first.ADMIDATE,
            "discharge_date": last.DISDATE,
            "admission_method": first.ADMIMETH,
            "patient_classification": first.CLASSPAT,
            "primary_diagnosis": first.DIAG,
            "cost": ps.groupby("root").COST.sum().round(2),
        }
    ).rename_axis("spell_id")


def test_counts_match_the_files(hes: tuple[Path, dict], apc: pd.DataFrame, synth_dir: Path):
    _, s = hes
    spells = canonical(synth_dir, "inpatient_spells")
    ep = episodes(apc)
    finished = ep[ep.EPISTAT == "3"]
    per_spell = finished.groupby("PROVSPNO").size()
    assert s["spells"] == len(spells)
    assert len(apc) == s["episode_rows"] == s["rows"]["apc"]
    assert len(apc) == (
        s["spells"] + s["transfers"] + s["extra_episodes"] + s["unfinished_episodes"]
        + s["duplicate_rows"]
    )  # fmt: skip
    assert len(apc) - len(ep) == s["duplicate_rows"]
    assert len(apc.drop_duplicates()) == len(ep)  # a duplicate is an exact copy
    assert (ep.EPISTAT == "1").sum() == s["unfinished_episodes"]
    assert set(ep.EPISTAT) == {"1", "3"}
    assert per_spell.size == s["provider_spells"] == len(spells) + s["transfers"]
    assert len(finished) - per_spell.size == s["extra_episodes"]
    by = per_spell.value_counts()
    assert {str(k): int(by.get(k, 0)) for k in (1, 2, 3)} == s["provider_spells_by_episodes"]
    # The shares aimed at, achieved.
    regular = spells.patient_classification.isin(["3", "4"]).sum()
    multi = (per_spell > 1).sum() / (per_spell.size - regular)
    assert 0.12 < multi < 0.18
    assert abs(s["duplicate_rows"] / (len(apc) - s["duplicate_rows"]) - 0.02) < 0.001
    assert abs(s["unfinished_episodes"] / len(finished) - 0.01) < 0.001
    long_emergency = spells.admission_method.isin(EMERGENCY) & (
        (spells.discharge_date - spells.admission_date).dt.days >= 2
    )
    assert s["transfer_candidates"] == long_emergency.sum()
    assert s["transfers"] == round(0.02 * long_emergency.sum()) > 20
    assert s["regular_attender_spells"] == regular > 50


def test_episodes_of_a_spell_are_contiguous(apc: pd.DataFrame):
    ep = episodes(apc)
    ep = ep[ep.EPISTAT == "3"].sort_values(["PROVSPNO", "EPIORDER"])
    g = ep.groupby("PROVSPNO")
    k = g.cumcount() + 1
    n = g.EPIORDER.transform("size")
    assert (ep.EPIORDER == k).all()  # 1, 2, ... k
    first, last = ep.EPIORDER == 1, ep.EPIORDER == n
    assert (ep.EPISTART[first] == ep.ADMIDATE[first]).all()
    assert (ep.EPIEND[last] == ep.DISDATE[last]).all()
    nxt = g.EPISTART.shift(-1)
    assert (ep.EPIEND[~last] == nxt[~last]).all()  # EPISTART of k+1 = EPIEND of k
    assert (ep.EPISTART <= ep.EPIEND).all()
    assert (ep.DISDATE[~last] == NULL).all()
    assert (ep.DISMETH[~last] == "").all() and (ep.DISDEST[~last] == "").all()
    assert (ep.DISMETH[last] != "").all() and (ep.DISDEST[last] != "").all()
    assert (ep.COST[~first].astype(float) == 0).all()
    assert (ep.OPERTN_4_01[~first] == "").all()
    for col in ("HESID", "PROCODE3", "ADMIDATE", "ADMIMETH", "CLASSPAT", "GPPRAC"):
        assert (g[col].transform("nunique") == 1).all(), col
    assert (g.DIAG_4_01.transform("nunique") > 1).any()  # later episodes have their own


def test_unfinished_episodes_are_no_spell(apc: pd.DataFrame, synth_dir: Path):
    ep = episodes(apc)
    open_ = ep[ep.EPISTAT == "1"]
    spells = canonical(synth_dir, "inpatient_spells")
    assert (open_.EPIEND == NULL).all() and (open_.DISDATE == NULL).all()
    assert not open_.PROVSPNO.isin(ep[ep.EPISTAT == "3"].PROVSPNO).any()
    assert not open_.PROVSPNO.str.rstrip("T").isin(spells.spell_id).any()
    assert open_.HESID.isin(spells.person_id).all()  # people the extract already holds
    assert (open_.EPISTART <= iso(spells.discharge_date).max()).all()


def test_spells_come_back_exactly(apc: pd.DataFrame, synth_dir: Path, hes: tuple[Path, dict]):
    spells = canonical(synth_dir, "inpatient_spells").set_index("spell_id").sort_index()
    ps = provider_spells(apc)
    back = cips(ps).sort_index()
    want = spells.assign(
        admission_date=iso(spells.admission_date), discharge_date=iso(spells.discharge_date)
    )
    pd.testing.assert_frame_equal(back, want, check_dtype=False)
    # Without joining, a transfer is two provider spells; the second's number ends in T.
    assert len(ps) == len(spells) + hes[1]["transfers"]
    assert (~ps.PROVSPNO.isin(spells.index)).sum() == hes[1]["transfers"]
    assert ps.PROVSPNO[~ps.PROVSPNO.isin(spells.index)].str.endswith("T").all()


def test_transfers_are_found_by_any_cips_rule(apc: pd.DataFrame, hes: tuple[Path, dict]):
    ps = provider_spells(apc)
    strict = links(ps)
    assert len(strict) == hes[1]["transfers"]
    loose = links(ps, max_gap=3, any_code=True)
    key = ["PROVSPNO_a", "PROVSPNO_b"]
    assert (
        strict.sort_values(key)
        .reset_index(drop=True)
        .equals(loose.sort_values(key).reset_index(drop=True))
    )
    pair = strict.merge(ps.add_suffix("_a"), on="PROVSPNO_a").merge(
        ps.add_suffix("_b"), on="PROVSPNO_b"
    )
    assert (pair.PROVSPNO_b == pair.PROVSPNO_a + "T").all()
    assert (pair.ADMIDATE_b == pair.DISDATE_a).all()  # the same day
    assert (pair.DISDEST_a == "51").all() and (pair.ADMISORC_b == "51").all()
    assert (pair.ADMIMETH_b == "81").all() and pair.ADMIMETH_a.isin(EMERGENCY).all()
    assert (pair.PROCODE3_a != pair.PROCODE3_b).all()
    assert (pair.COST_b == 0).all()
    assert (pair.ADMIDATE_a < pair.DISDATE_a).all() and (pair.ADMIDATE_b < pair.DISDATE_b).all()
    others = ps[~ps.PROVSPNO.isin(set(strict.PROVSPNO_a) | set(strict.PROVSPNO_b))]
    assert not others.DISDEST.isin(TRANSFER_DEST).any()
    assert not (others.ADMISORC.isin(TRANSFER_DEST) | (others.ADMIMETH == "81")).any()


def test_transfers_only_where_no_other_spell_is_near(tmp_path: Path):
    """A spell with another of the person's spells starting within 3 days of its discharge is
    never split into a transfer (a looser CIPS rule could join the wrong pair)."""
    n = 300
    ids = [f"P{i:04d}" for i in range(n)]
    day = dt.date(2012, 1, 10)
    persons = pa.table(
        {
            "person_id": ids,
            "birth_month": [dt.date(1950, 1, 1)] * n,
            "sex": ["F"] * n,
            "lsoa": ["E01000001"] * n,
            "death_date": pa.array([None] * n, pa.date32()),
        }
    )
    registrations = pa.table(
        {
            "person_id": ids,
            "practice_code": ["A00001"] * n,
            "start_date": [dt.date(2000, 1, 1)] * n,
            "end_date": pa.array([None] * n, pa.date32()),
        }
    )
    near = ids[::2]  # these people have a day case two days after their emergency spell
    spells = pa.table(
        {
            "spell_id": [f"S{i:04d}" for i in range(n + len(near))],
            "person_id": ids + near,
            "admission_date": [day] * n + [day + dt.timedelta(days=7)] * len(near),
            "discharge_date": [day + dt.timedelta(days=5)] * n
            + [day + dt.timedelta(days=7)] * len(near),
            "admission_method": ["21"] * n + ["11"] * len(near),
            "patient_classification": ["1"] * n + ["2"] * len(near),
            "primary_diagnosis": ["J189"] * n + ["H251"] * len(near),
            "cost": [1590.0] * n + [698.0] * len(near),
        }
    )
    tables = {"persons": persons, "registrations": registrations, "inpatient_spells": spells}
    summary = write_hes(tables, tmp_path, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apc.csv"]  # no A&E or OP tables
    assert summary["transfer_candidates"] == n and summary["transfers"] == 6
    ps = provider_spells(read(tmp_path / "apc.csv"))
    moved = ps[ps.PROVSPNO.str.endswith("T")]
    assert len(moved) == 6 and not moved.HESID.isin(near).any()
    assert read(tmp_path / "apc.csv").GPPRAC.eq("A00001").all()


def test_person_fields(apc: pd.DataFrame, synth_dir: Path):
    ep = episodes(apc)
    people = canonical(synth_dir, "persons").set_index("person_id")
    p = people.loc[ep.HESID]
    birth = pd.to_datetime(p.birth_month)
    assert (ep.SEX.to_numpy() == np.where(p.sex == "M", "1", "2")).all()
    assert (ep.MYDOB.to_numpy() == birth.dt.strftime("%m%Y").to_numpy()).all()
    assert (ep.LSOA11.to_numpy() == p.lsoa.to_numpy()).all()
    start = pd.to_datetime(ep.EPISTART).to_numpy()
    months = (pd.DatetimeIndex(start).year - birth.dt.year.to_numpy()) * 12 + (
        pd.DatetimeIndex(start).month - birth.dt.month.to_numpy()
    )
    assert (ep.STARTAGE.astype(int).to_numpy() == months // 12).all()
    # Died in hospital: DISMETH 4 and DISDEST 79 on the spell's last episode, exactly then.
    last = ep[ep.DISDATE != NULL]
    death = iso(people.death_date.loc[last.HESID]).to_numpy()
    died = last.DISDATE.to_numpy() == death
    assert died.sum() > 0
    assert ((last.DISMETH == "4").to_numpy() == died).all()
    assert ((last.DISDEST == "79").to_numpy() == died).all()


def test_practice_at_admission(apc: pd.DataFrame, synth_dir: Path):
    ep = episodes(apc).reset_index(drop=True).reset_index()
    reg = canonical(synth_dir, "registrations")
    reg = reg.assign(start=iso(reg.start_date), end=iso(reg.end_date).fillna("9999-12-31"))
    m = ep[["index", "HESID", "ADMIDATE"]].merge(reg, left_on="HESID", right_on="person_id")
    m = m[(m.start <= m.ADMIDATE) & (m.ADMIDATE <= m.end)]
    m = m.sort_values("start").drop_duplicates("index", keep="last").set_index("index")
    want = m.practice_code.reindex(ep["index"]).fillna("V81999").to_numpy()
    assert (ep.GPPRAC.to_numpy() == want).all()
    assert (want == "V81999").any() and (want != "V81999").mean() > 0.9


def test_secondary_diagnoses(apc: pd.DataFrame, synth_dir: Path):
    ep = episodes(apc).reset_index(drop=True).reset_index()
    cond = canonical(synth_dir, "conditions")
    snomed = {c.code: c.condition for c in codes() if c.code_system == "SNOMED"}
    cond = cond.assign(icd=cond.code.map(snomed).map(SECONDARY_ICD10), d=iso(cond.date))
    firsts = cond.dropna(subset=["icd"]).groupby(["person_id", "icd"], as_index=False).d.min()
    m = ep[["index", "HESID", "EPISTART", "DIAG_4_01"]].merge(
        firsts, left_on="HESID", right_on="person_id"
    )
    m = m[(m.d <= m.EPISTART) & (m.icd != m.DIAG_4_01)].sort_values(["index", "d", "icd"])
    m = m.assign(slot=m.groupby("index").cumcount())
    m = m[m.slot < 4]
    wide = m.pivot(index="index", columns="slot", values="icd").reindex(ep["index"])
    for slot in range(4):
        want = wide.get(slot, pd.Series(index=wide.index, dtype=object)).fillna("").to_numpy()
        assert (ep[f"DIAG_4_{slot + 2:02d}"].to_numpy() == want).all(), slot
    assert (ep.DIAG_4_02 != "").mean() > 0.2


def test_secondary_codes_are_in_their_condition_lists():
    for condition in conditions():
        prefixes = [
            c.code for c in codes() if c.condition == condition and c.code_system == "ICD10"
        ]
        code = SECONDARY_ICD10[condition]
        assert len(code) == 4 and any(code.startswith(p) for p in prefixes), condition


def test_ae_and_op_map_back(hes: tuple[Path, dict], synth_dir: Path):
    folder, s = hes
    ae = read(folder / "ae.csv").set_index("AEKEY").sort_index()
    want = canonical(synth_dir, "ae_attendances").set_index("attendance_id").sort_index()
    assert len(ae) == len(want) == s["rows"]["ae"] and ae.index.is_unique
    assert (ae.HESID == want.person_id).all()
    assert (ae.ARRIVALDATE == iso(want.arrival_date)).all()
    assert (ae.AEATTENDDISP.map(AE_BACK) == want.disposal).all()
    assert (ae.AEATTENDCAT == "1").all()
    assert (ae.COST.astype(float) == want.cost).all()
    assert ae.AEATTENDDISP.nunique() >= 8  # the alternatives are used
    op = read(folder / "op.csv").set_index("ATTENDKEY").sort_index()
    want = canonical(synth_dir, "outpatient_appointments").set_index("appointment_id")
    want = want.sort_index()
    assert len(op) == len(want) == s["rows"]["op"] and op.index.is_unique
    assert (op.HESID == want.person_id).all()
    assert (op.APPTDATE == iso(want.appointment_date)).all()
    assert (op.ATTENDED.isin(["5", "6"]) == want.attended).all()
    assert op.ATTENDED.isin(["2", "3", "4", "5", "6"]).all()
    assert (op.FIRSTATT.isin(["1", "3"]) == want.first_attendance).all()
    assert op.FIRSTATT.isin(["1", "2", "3", "4"]).all()
    assert (op.TRETSPEF == want.specialty).all()
    assert (op.COST.astype(float) == want.cost).all()


def test_same_seed_same_files_and_other_formats(synth_dir: Path, hes: tuple[Path, dict], tmp_path):
    folder, _ = hes
    again = write_hes(synth_dir, tmp_path / "again", seed=5)
    for name in ("apc.csv", "ae.csv", "op.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes()
    other = write_hes(synth_dir, tmp_path / "other", seed=6)
    assert (tmp_path / "other" / "apc.csv").read_bytes() != (folder / "apc.csv").read_bytes()
    assert other["spells"] == again["spells"]
    # dd/mm/yyyy and Parquet hold the same rows.
    write_hes(synth_dir, tmp_path / "dmy", seed=5, date_format="dmy")
    iso_apc, dmy_apc = read(folder / "apc.csv"), read(tmp_path / "dmy" / "apc.csv")
    assert dmy_apc.ADMIDATE.str.fullmatch(r"\d\d/\d\d/\d{4}").all()
    for col in DATES:
        dmy_apc[col] = pd.to_datetime(dmy_apc[col], format="%d/%m/%Y").dt.strftime("%Y-%m-%d")
    pd.testing.assert_frame_equal(dmy_apc, iso_apc)
    summary = write_hes(synth_dir, tmp_path / "pq", seed=5, file_format="parquet")
    assert summary["files"] == {"apc": "apc.parquet", "ae": "ae.parquet", "op": "op.parquet"}
    table = pq.read_table(tmp_path / "pq" / "apc.parquet")
    assert str(table.schema.field("ADMIDATE").type) == "date32[day]"
    frame = table.to_pandas()
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    pd.testing.assert_frame_equal(text, iso_apc)


def test_refuses_to_replace_a_file(synth_dir: Path, tmp_path: Path):
    (tmp_path / "apc.csv").write_text("mine\n")
    with pytest.raises(ConfigError, match="apc.csv"):
        write_hes(synth_dir, tmp_path, seed=1)
    assert (tmp_path / "apc.csv").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apc.csv"]
    with pytest.raises(ConfigError, match="file format"):
        write_hes(synth_dir, tmp_path / "x", seed=1, file_format="xlsx")  # type: ignore[arg-type]


def test_cli_format_hes(tmp_path: Path):
    from careval.cli import main

    plain, both = tmp_path / "plain", tmp_path / "both"
    args = ["--persons", "3000", "--seed", "3"]
    assert main(["synth", "--out", str(plain), *args]) is None
    assert main(["synth", "--out", str(both), *args, "--format", "hes"]) is None
    tables = sorted(p.name for p in plain.glob("*.parquet"))
    assert tables and tables == sorted(p.name for p in both.glob("*.parquet"))
    for name in tables:  # the canonical tables are the same, byte for byte
        assert (plain / name).read_bytes() == (both / name).read_bytes(), name
    assert not (plain / "hes").exists()
    marker = json.loads((both / ".careval.json").read_text())
    assert {"hes/apc.csv", "hes/ae.csv", "hes/op.csv"} <= set(marker["entries"])
    manifest = json.loads((both / "dataset.json").read_text())
    assert manifest["hes"]["folder"] == "hes" and manifest["hes"]["seed"] == 3
    assert manifest["hes"]["rows"]["apc"] == len(read(both / "hes" / "apc.csv"))
    assert manifest["hes"]["spells"] == manifest["rows"]["inpatient_spells"]
    assert "hes" not in json.loads((plain / "dataset.json").read_text())
