"""The synthetic population's medicines: each condition's first-line drug, from its diagnosis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from careval.data.codelists import codes_for
from careval.synthetic.medications import MEDICINES, STOPPED, TREATED


def test_each_treated_condition_gives_its_medicine_after_its_first_record(synth_dir: Path) -> None:
    meds = pd.read_parquet(synth_dir / "medications.parquet")
    cond = pd.read_parquet(synth_dir / "conditions.parquet")
    persons = pd.read_parquet(synth_dir / "persons.parquet").set_index("person_id")
    assert set(meds["code_system"]) == {"ATC"} and set(meds["code"]) <= set(MEDICINES.values())
    for condition, atc in MEDICINES.items():
        snomed = {c.code for c in codes_for(condition, "SNOMED")}
        first = cond[cond["code"].isin(snomed)].groupby("person_id")["date"].min()
        got = meds[meds["code"] == atc].set_index("person_id")
        assert got.index.is_unique and set(got.index) <= set(first.index), condition
        share = len(got) / len(first)
        # binomial: 4 standard errors of the share treated
        assert abs(share - TREATED) < 4 * np.sqrt(TREATED * (1 - TREATED) / len(first)), condition
        lag = (pd.to_datetime(got["start_date"]) - pd.to_datetime(first[got.index])).dt.days
        assert lag.min() >= 0 and lag.max() <= 60
        death = pd.to_datetime(persons.loc[got.index, "death_date"])
        assert (death.isna() | (pd.to_datetime(got["start_date"]) <= death)).all()
    ended = meds["end_date"].notna()
    # a fifth stop; fewer are seen to, when the end would fall after the window or a death
    assert STOPPED / 2 < ended.mean() < STOPPED + 0.02
    assert (
        pd.to_datetime(meds.loc[ended, "end_date"]) > pd.to_datetime(meds.loc[ended, "start_date"])
    ).all()
