"""People whose LSOA and IMD decile are not known (null), as in HES or OMOP extracts.

A small synthetic dataset is copied with ``lsoa`` and ``imd_decile`` set to null for a random
30% of people and for everyone. Each copy must validate and run; on complete data nothing may
change (the models get no new input).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.cli import main
from careval.cohort.eligibility import population_at
from careval.data.access import Dataset
from careval.data.validate import validate
from careval.features.index_date import FeatureSettings, features_at
from careval.impact.matching import match
from careval.impact.panel import build_panel, month_of
from careval.impact.population import covariates, study_population
from careval.impact.settings import ImpactSettings
from careval.risk.caselist import case_list, score_people
from careval.risk.metrics import summarise_score
from careval.risk.model import (
    IMD_RECORDED,
    IMD_UNKNOWN_VALUE,
    OUTCOME,
    UNRECORDED_VALUE,
    RiskModel,
    design_matrix,
    fit_validate,
    load_model,
    model_metadata,
    risk_frame,
    save_model,
)
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

PERSONS = 3000
TRAIN, VALID = dt.date(2011, 4, 1), dt.date(2012, 4, 1)
WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))


def _nulled(src: Path, out: Path, share: float, seed: int = 1) -> Path:
    """A copy of ``src`` with lsoa and imd_decile null for ``share`` of people (1: everyone)."""
    shutil.copytree(src, out)
    t = pq.read_table(out / "persons.parquet")
    rng = np.random.default_rng(seed)
    unknown = np.ones(t.num_rows, dtype=bool) if share >= 1 else rng.random(t.num_rows) < share
    for col in ("lsoa", "imd_decile"):
        field = t.schema.field(col).with_nullable(True)
        values = t.column(col).to_numpy(zero_copy_only=False)
        arr = pa.array(values, type=field.type, mask=unknown)
        t = t.set_column(t.schema.get_field_index(col), field, arr)
    pq.write_table(t, out / "persons.parquet")
    return out


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The complete dataset, a copy with 30% unknown and a copy with everyone unknown."""
    root = tmp_path_factory.mktemp("unknown-imd")
    full = root / "full"
    generate(full, SynthSettings(persons=PERSONS, seed=7))
    return {
        "full": full,
        "part": _nulled(full, root / "part", 0.3),
        "none": _nulled(full, root / "none", 1.0),
    }


@pytest.fixture(scope="module")
def frames(dirs: dict[str, Path]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Training and validation risk frames of each dataset."""
    out = {}
    for name, d in dirs.items():
        with Dataset(d) as ds:
            out[name] = (risk_frame(ds, TRAIN), risk_frame(ds, VALID))
    return out


def _unknown_ids(d: Path) -> set[str]:
    p = pq.read_table(d / "persons.parquet").to_pandas()
    return set(p.person_id[p.imd_decile.isna()])


def _design_matrix_before(df: pd.DataFrame) -> pd.DataFrame:
    """``design_matrix`` as it was before unknown deciles were handled (a copy of its code)."""
    cols = [c for c in df.columns if c not in ("person_id", "practice_code", "area", "mdg")]
    cols = [c for c in cols if c not in ("eligible", OUTCOME)]
    x = pd.DataFrame(
        np.ascontiguousarray(df[cols].to_numpy(dtype=float)), columns=cols, index=df.index
    )
    for c in cols:
        if c[-1] == "m" and c[-2].isdigit():
            x[c] = np.log1p(x[c].clip(lower=0))
    x["months_since_emergency"] = x["months_since_emergency"].clip(upper=25)
    x["age_squared"] = (x["age"] / 10.0) ** 2
    for c in cols:
        if c.startswith("latest_"):
            recorded = x[c].notna()
            x[f"{c}_recorded"] = recorded.astype(float)
            x[c] = x[c].where(recorded, UNRECORDED_VALUE.get(c[len("latest_") :], 0.0))
    return x


def test_unknown_lsoa_and_imd_validate(dirs: dict[str, Path]) -> None:
    for name in ("part", "none"):
        problems = validate(dirs[name])
        assert [p.line() for p in problems if p.severity == "error"] == [], name
    n = len(_unknown_ids(dirs["part"]))
    assert 0.25 * PERSONS < n < 0.35 * PERSONS
    assert len(_unknown_ids(dirs["none"])) == PERSONS


def test_features_and_cohort_carry_the_nulls(dirs: dict[str, Path]) -> None:
    unknown = _unknown_ids(dirs["part"])
    with Dataset(dirs["part"]) as ds:
        f = features_at(ds, TRAIN).to_pandas()
        pop = population_at(ds, TRAIN).to_pandas()
        ids = np.sort(f.person_id.to_numpy())
        panel = build_panel(ds, ids, month_of(WINDOW[0]), month_of(WINDOW[1]))
    with Dataset(dirs["full"]) as ds:
        full = features_at(ds, TRAIN).to_pandas().set_index("person_id")
    for frame in (f, pop):
        missing = frame.imd_decile.isna().to_numpy()
        assert set(frame.person_id[missing]) == unknown & set(frame.person_id)
        assert missing.sum() > 500  # a real share of the registered
        known = frame[~missing]
        assert (known.imd_decile.to_numpy() == full.imd_decile.loc[known.person_id]).all()
    # The panel's features (the matched study's) hold the same NaNs, as floats.
    g = panel.features(panel.rows(ids), np.full(ids.size, month_of(TRAIN)))
    assert panel.imd_decile.dtype == np.float64
    assert set(ids[np.isnan(g.imd_decile.to_numpy())]) == unknown & set(ids)


def test_complete_data_design_matrix_is_unchanged(frames: dict) -> None:
    train, _ = frames["full"]
    x = design_matrix(train)
    assert IMD_RECORDED not in x.columns
    pd.testing.assert_frame_equal(x, _design_matrix_before(train), check_exact=True)
    # With unknown deciles: the old inputs, unknowns at the middle value, the indicator last.
    part, _ = frames["part"]
    xp = design_matrix(part)
    assert list(xp.columns) == [*_design_matrix_before(part).columns, IMD_RECORDED]
    unknown = part.imd_decile.isna().to_numpy()
    assert (xp[IMD_RECORDED].to_numpy() == (~unknown).astype(float)).all()
    assert (xp.imd_decile.to_numpy()[unknown] == IMD_UNKNOWN_VALUE).all()
    assert (xp.imd_decile.to_numpy()[~unknown] == part.imd_decile.to_numpy()[~unknown]).all()
    assert not xp.isna().any().any()


def test_risk_model_with_unknown_imd(frames: dict, dirs: dict[str, Path], tmp_path: Path) -> None:
    """AUCs on 30% and on all unknown, against the complete data and a model without IMD.

    Tolerance for 30% unknown: the AUC within 0.005 of the complete data's. The two fits see
    the same people and outcomes and differ only in 30% of one weak input: the generator puts
    a deprivation gradient of x 1.06 per decile on admissions, worth about 0.002 of AUC here
    (the complete model against the same model without ``imd_decile``, asserted below). So the
    AUC must barely move (0.005 is a quarter of its standard error on these 3,000 people, about
    0.02); a larger change means the unknowns broke the fit. It cannot tell one fill value from
    another; the values the model gets are checked in the design-matrix test.
    """
    full_t, full_v = frames["full"]
    model_full, _, fig_full = fit_validate(full_t, full_v)
    part_t, part_v = frames["part"]
    model_part, _, fig_part = fit_validate(part_t, part_v)
    assert abs(fig_part["auc"] - fig_full["auc"]) < 0.005
    coef = model_part.coefficients().set_index("term").coefficient
    full_imd = model_full.coefficients().set_index("term").coefficient["imd_decile"]
    assert full_imd < 0 and coef["imd_decile"] < 0  # more deprived: more admissions
    # Everyone unknown: both IMD inputs are constant, the scaler leaves them unscaled and their
    # coefficients are 0, so the model is the complete-data model fitted without IMD.
    none_t, none_v = frames["none"]
    model_none, _, fig_none = fit_validate(none_t, none_v)
    scaler = model_none.estimator_[0]
    for term in ("imd_decile", IMD_RECORDED):
        j = model_none.features_.index(term)
        assert scaler.scale_[j] == 1.0
        assert model_none.coefficients().set_index("term").coefficient[term] == 0.0
    no_imd = RiskModel().fit(
        design_matrix(full_t).drop(columns="imd_decile"), full_t[OUTCOME].to_numpy()
    )
    p = no_imd.predict_proba(design_matrix(full_v).drop(columns="imd_decile"))[:, 1]
    auc_no_imd = summarise_score(full_v[OUTCOME].to_numpy(), p)["auc"]
    assert fig_none["auc"] == pytest.approx(auc_no_imd, abs=1e-9)
    assert fig_full["auc"] - auc_no_imd < 0.005  # the IMD term's whole worth, as said above
    # A model fitted with the indicator scores complete data (no indicator column: all 1) and
    # loads against a dataset whose deciles are all known.
    xf = design_matrix(full_v)
    np.testing.assert_array_equal(
        model_part.predict_proba(xf), model_part.predict_proba(xf.assign(**{IMD_RECORDED: 1.0}))
    )
    meta = model_metadata(model_part, TRAIN, FeatureSettings(), part_t, dirs["part"], True)
    save_model(model_part, meta, tmp_path)
    with Dataset(dirs["full"]) as ds:
        loaded, _ = load_model(tmp_path, ds)
        scored, x = score_people(ds, loaded, VALID, FeatureSettings())
        listed = case_list(scored, x, loaded, "practice_code", 5)
    assert loaded.features_[-1] == IMD_RECORDED
    assert len(listed) > 0 and listed.driver_1.notna().all()


def test_matched_study_population_with_unknown_imd(dirs: dict[str, Path]) -> None:
    st = ImpactSettings()
    studies = {}
    for name, d in dirs.items():
        with Dataset(d) as ds:
            studies[name] = study_population(ds, WINDOW, st, None)
    full, part, none = (studies[k].frame for k in ("full", "part", "none"))
    # The same treated and candidate rows whatever is known of IMD.
    assert studies["part"].attrition == studies["full"].attrition == studies["none"].attrition
    assert (part.person_id.to_numpy() == full.person_id.to_numpy()).all()
    assert int(full.treated.sum()) > 30
    # Complete data: no indicator; IMD a covariate as before.
    assert IMD_RECORDED not in full.columns
    assert "imd_decile" in covariates(full) and full.imd_decile.dtype == np.int64
    # 30% unknown: the middle value and the indicator, both covariates.
    unknown = part.person_id.isin(_unknown_ids(dirs["part"])).to_numpy()
    assert 0 < unknown.sum() < len(part)
    assert (part[IMD_RECORDED].to_numpy() == (~unknown).astype(float)).all()
    assert (part.imd_decile.to_numpy()[unknown] == IMD_UNKNOWN_VALUE).all()
    assert (part.imd_decile.to_numpy()[~unknown] == full.imd_decile.to_numpy()[~unknown]).all()
    cov = covariates(part)
    assert {"imd_decile", IMD_RECORDED} <= set(cov)
    full_cov = covariates(full)
    i = full_cov.index("imd_decile") + 1
    assert cov == [*full_cov[:i], IMD_RECORDED, *full_cov[i:]]
    # Everyone unknown: both constant, so neither enters the propensity model.
    assert not {"imd_decile", IMD_RECORDED} & set(covariates(none))
    for frame in (part, none):
        res = match(frame, "treated", covariates(frame), st.match)
        assert res.score is not None and np.isfinite(res.score).all()
        assert res.n_treated_matched > 0.5 * res.n_treated


@pytest.mark.slow
def test_careval_run_with_everyone_unknown(
    dirs: dict[str, Path], frames: dict, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(["run", "--data", str(dirs["none"]), "--out", str(out)]) is None
    results = json.loads((out / "results.json").read_text())
    assert (out / "report.html").is_file()
    # The risk model ran, and is the one fitted here on the same data.
    r = results["risk"]
    _, _, fig = fit_validate(*frames["none"])
    assert (r["train_date"], r["validate_date"]) == (TRAIN.isoformat(), VALID.isoformat())
    assert r["auc"] == pytest.approx(fig["auc"], abs=1e-6)
    # The matched study ran; IMD, unknown for all, is not among its balanced covariates.
    impact = results["impact"]
    assert impact["n_treated"] > 0
    balanced = {b["covariate"] for b in impact["balance"]}
    assert "age" in balanced and not {"imd_decile", IMD_RECORDED} & balanced
