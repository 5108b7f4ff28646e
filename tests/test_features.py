"""Features at an index date: nothing from after it leaks in; counts match pandas."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from careval.data.access import Dataset
from careval.data.schema import EMERGENCY_METHODS, EVENT_DATE
from careval.features.index_date import features_at, outcome_12m

INDEX = dt.date(2011, 4, 1)


def _cut(src: Path, dst: Path, day: dt.date) -> None:
    """The dataset as it would have looked on ``day``: later events and facts removed."""
    shutil.copytree(src, dst)
    d = pa.scalar(day, pa.date32())
    for table, col in EVENT_DATE.items():
        f = dst / f"{table}.parquet"
        if f.exists():
            t = pq.read_table(f)
            pq.write_table(t.filter(pc.less(t.column(col), d)), f)
    spells = pq.read_table(dst / "inpatient_spells.parquet")
    clipped = pc.min_element_wise(spells.column("discharge_date"), d)
    _replace(dst, "inpatient_spells", spells, "discharge_date", clipped)
    reg = pq.read_table(dst / "registrations.parquet")
    reg = reg.filter(pc.less_equal(reg.column("start_date"), d))
    _replace(dst, "registrations", reg, "end_date", _unknown_yet(reg, "end_date", d, True))
    p = pq.read_table(dst / "persons.parquet")
    _replace(dst, "persons", p, "death_date", _unknown_yet(p, "death_date", d, False))


def _unknown_yet(t: pa.Table, col: str, d: pa.Scalar, same_day: bool) -> pa.Array:
    """The date column with dates after ``d`` (or on it, when ``same_day``) made null."""
    later = (pc.greater_equal if same_day else pc.greater)(t.column(col), d)
    return pc.if_else(pc.fill_null(later, False), pa.scalar(None, pa.date32()), t.column(col))


def _replace(dst: Path, name: str, t: pa.Table, col: str, values: pa.Array) -> None:
    i = t.schema.get_field_index(col)
    pq.write_table(t.set_column(i, t.schema.field(i), values), dst / f"{name}.parquet")


def _frame(d: Path) -> pd.DataFrame:
    with Dataset(d) as ds:
        return features_at(ds, INDEX).to_pandas().sort_values("person_id").reset_index(drop=True)


def test_no_information_from_after_the_index_date(synth_dir: Path, tmp_path: Path) -> None:
    full = _frame(synth_dir)
    _cut(synth_dir, tmp_path / "cut", INDEX)
    cut = _frame(tmp_path / "cut")
    assert len(full) > 1000
    pd.testing.assert_frame_equal(full, cut, check_dtype=False)
    # And the outcome does depend on the future: the cut dataset has none.
    with Dataset(tmp_path / "cut") as ds:
        assert outcome_12m(ds, INDEX).count().execute() == 0


def test_counts_and_outcome_match_pandas(synth_dir: Path) -> None:
    f = _frame(synth_dir).set_index("person_id")
    s = pq.read_table(synth_dir / "inpatient_spells.parquet").to_pandas()
    s = s[s.admission_method.isin(EMERGENCY_METHODS) & ~s.patient_classification.isin(["3", "4"])]
    adm = pd.to_datetime(s.admission_date)
    ts = pd.Timestamp(INDEX)
    prior = s[(adm < ts) & (adm >= ts - pd.DateOffset(months=12))].groupby("person_id").size()
    got = f["emergency_admissions_12m"]
    want = prior.reindex(got.index, fill_value=0)
    assert (got.to_numpy() == want.to_numpy()).all()
    assert got.sum() > 50
    after = set(s[(adm >= ts) & (adm < ts + pd.DateOffset(months=12))].person_id)
    with Dataset(synth_dir) as ds:
        y = outcome_12m(ds, INDEX).to_pandas()
    assert set(y.person_id) == after
    assert (y.emergency_12m == 1).all()


@pytest.mark.parametrize("window", [3, 6, 12, 24])
def test_longer_windows_never_count_less(synth_dir: Path, window: int) -> None:
    f = _frame(synth_dir)
    longer = {3: 6, 6: 12, 12: 24, 24: 24}[window]
    assert (f[f"emergency_admissions_{window}m"] <= f[f"emergency_admissions_{longer}m"]).all()
    assert (f[f"emergency_bed_days_{window}m"] >= 0).all()


def test_condition_flags_are_each_conditions_first_diagnosis_before_the_date(
    synth_dir: Path,
) -> None:
    """conditions_before's one pass gives, for every condition, what first_diagnosis's own
    query gives: coded (GP record or hospital diagnosis) before the date."""
    import ibis

    from careval.cohort.eligibility import first_diagnosis
    from careval.features.index_date import FeatureSettings, conditions_before

    conds = FeatureSettings().conditions
    with Dataset(synth_dir) as ds:
        flags = conditions_before(ds, conds, ibis.date(INDEX)).to_pandas().set_index("person_id")
        for cond in conds:
            first = first_diagnosis(ds, cond).to_pandas()
            want = set(first.person_id[pd.to_datetime(first.first_date) < pd.Timestamp(INDEX)])
            got = set(flags.index[flags[f"has_{cond}"] == 1])
            assert got == want, cond
            assert len(want) > 0, cond  # the small population has every condition
    assert set(flags.columns) == {f"has_{c}" for c in conds}
