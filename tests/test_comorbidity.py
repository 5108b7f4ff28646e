"""Charlson index, Hospital Frailty Risk Score and latest measurements at an index date.

The engine's figures are checked against a plain pandas reading of the same rules on the raw
tables, and the shipped lists against the published weights.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.data.codelists import codes_for
from careval.features.comorbidity import (
    GP_CATEGORIES,
    charlson_codes,
    charlson_expr,
    charlson_weights,
    hfrs_codes,
)
from careval.features.index_date import features_at

INDEX = dt.date(2012, 1, 1)


def test_charlson_list_has_quan_categories_with_charlson_weights() -> None:
    # Charlson et al. 1987 weights for the 17 categories of Quan et al. 2005.
    want = {
        "mi": 1, "chf": 1, "pvd": 1, "cerebrovascular": 1, "dementia": 1, "pulmonary": 1,
        "rheumatic": 1, "peptic_ulcer": 1, "mild_liver": 1, "diabetes": 1,
        "diabetes_complicated": 2, "hemiplegia": 2, "renal": 2, "malignancy": 2,
        "severe_liver": 3, "metastatic": 6, "hiv": 6,
    }  # fmt: skip
    assert charlson_weights() == want
    by_code = {c.code: c.category for c in charlson_codes()}
    assert len(by_code) == len(charlson_codes())  # no code in two categories
    spot = [("I21", "mi"), ("I252", "mi"), ("I50", "chf"), ("G30", "dementia"),
            ("J44", "pulmonary"), ("E112", "diabetes_complicated"), ("E119", "diabetes"),
            ("N18", "renal"), ("C34", "malignancy"), ("C78", "metastatic"),
            ("K721", "severe_liver"), ("B20", "hiv")]  # fmt: skip
    for code, category in spot:
        assert by_code[code] == category
    assert "C77" not in {c.code for c in charlson_codes() if c.category == "malignancy"}


def test_charlson_hierarchy() -> None:
    con = ibis.duckdb.connect()

    def score(**present: int) -> float:
        has = {c: ibis.literal(present.get(c, 0)) for c in charlson_weights()}
        return float(con.execute(charlson_expr(has)))  # type: ignore[arg-type]

    assert score() == 0
    assert score(diabetes=1, diabetes_complicated=1) == 2  # the severe form only
    assert score(malignancy=1, metastatic=1) == 6
    assert score(mild_liver=1, severe_liver=1, mi=1) == 4
    assert score(mi=1, chf=1, renal=1, dementia=1) == 5


def test_hfrs_list_has_the_published_weights() -> None:
    codes = {c.code: c.weight for c in hfrs_codes()}
    assert len(codes) == 109  # Gilbert et al. 2018: 109 ICD-10 codes
    # The highest weights in the paper's table.
    assert codes["F00"] == 7.1 and codes["G81"] == 4.4 and codes["G30"] == 4.0
    assert codes["I69"] == 3.7 and codes["R29"] == 3.6 and codes["N39"] == 3.2
    assert all(len(c) == 3 for c in codes) and min(codes.values()) > 0


def _months_before(d: dt.date, months: int) -> pd.Timestamp:
    m = d.year * 12 + d.month - 1 - months
    return pd.Timestamp(m // 12, m % 12 + 1, min(d.day, 28))


def _diagnoses(data: Path) -> pd.DataFrame:
    s = pd.read_parquet(data / "inpatient_spells.parquet")
    c = pd.read_parquet(data / "conditions.parquet")
    icd = c[c.code_system == "ICD10"]
    dx = pd.concat(
        [
            pd.DataFrame({"person_id": s.person_id, "date": s.discharge_date,
                          "code": s.primary_diagnosis}),
            pd.DataFrame({"person_id": icd.person_id, "date": icd.date, "code": icd.code}),
        ]
    )  # fmt: skip
    dx["date"] = pd.to_datetime(dx.date)
    dx["code"] = dx.code.str.upper().str.replace(".", "", regex=False)
    return dx


def test_engine_matches_a_pandas_reading(synth_dir: Path) -> None:
    with Dataset(synth_dir) as ds:
        f = features_at(ds, INDEX).to_pandas().set_index("person_id").sort_index()
    d = pd.Timestamp(INDEX)
    dx = _diagnoses(synth_dir)
    before = dx[dx.date < d]

    # HFRS: listed three-character codes in the 24 months before, each once.
    weight = {c.code: c.weight for c in hfrs_codes()}
    win = before[before.date >= _months_before(INDEX, 24)].copy()
    win["code3"] = win.code.str[:3]
    win = win[win.code3.isin(weight)].drop_duplicates(["person_id", "code3"])
    hfrs = win.code3.map(weight).groupby(win.person_id).sum()
    want = hfrs.reindex(f.index, fill_value=0.0)
    np.testing.assert_allclose(f.hfrs.to_numpy(), want.to_numpy(), atol=1e-9)
    assert (f.hfrs > 0).sum() > 100

    # Charlson: any listed ICD-10 prefix before the date, or a GP (SNOMED) code of a mapped
    # condition.
    present: dict[str, set[str]] = {c: set() for c in charlson_weights()}
    for code in charlson_codes():
        hit = before[before.code.str.startswith(code.code)]
        present[code.category] |= set(hit.person_id)
    gp = pd.read_parquet(synth_dir / "conditions.parquet")
    gp["date"] = pd.to_datetime(gp.date)
    gp = gp[(gp.date < d) & (gp.code_system == "SNOMED")]
    for condition, category in GP_CATEGORIES.items():
        for code in codes_for(condition, "SNOMED"):
            hit = gp.code.str.startswith(code.code) if code.match == "prefix" else (
                gp.code == code.code)  # fmt: skip
            present[category] |= set(gp.person_id[hit])
    # Quan leaves out non-melanoma skin cancer: a C44 alone scores nothing.
    assert not any(c.code.startswith("C44") for c in charlson_codes())
    severe = {"diabetes": "diabetes_complicated", "mild_liver": "severe_liver",
              "malignancy": "metastatic"}  # fmt: skip
    score = pd.Series(0.0, index=f.index)
    for category, w in charlson_weights().items():
        who = present[category] - present.get(severe.get(category, ""), set())
        score[score.index.isin(who)] += w
    np.testing.assert_allclose(f.charlson_index.to_numpy(), score.to_numpy(), atol=1e-9)
    assert (f.charlson_index >= 2).sum() > 100

    # Latest measurements: the last in the 24 months before (the higher on a tie), else null.
    m = pd.read_parquet(synth_dir / "measurements.parquet")
    m["date"] = pd.to_datetime(m.date)
    m = m[(m.date < d) & (m.date >= _months_before(INDEX, 24))]
    last = m.sort_values(["date", "value"]).groupby(["person_id", "measure"]).value.last()
    for measure in ("hba1c", "total_cholesterol", "sbp", "dbp", "six_cit"):
        want = last.xs(measure, level="measure").reindex(f.index)
        got = f[f"latest_{measure}"]
        assert got.isna().equals(want.isna())
        np.testing.assert_allclose(got.dropna().to_numpy(), want.dropna().to_numpy())
    assert f.latest_hba1c.notna().sum() > 100


@pytest.mark.parametrize("measure", ["hba1c"])
def test_unrecorded_measurements_get_an_indicator(synth_dir: Path, measure: str) -> None:
    from careval.risk.model import UNRECORDED_VALUE, design_matrix

    with Dataset(synth_dir) as ds:
        f = features_at(ds, INDEX).to_pandas()
    x = design_matrix(f)
    col = f"latest_{measure}"
    assert x[col].notna().all()
    assert (x[f"{col}_recorded"] == f[col].notna()).all()
    assert (x.loc[f[col].isna(), col] == UNRECORDED_VALUE[measure]).all()
