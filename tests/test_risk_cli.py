"""``careval risk train|validate|score`` end to end on the small synthetic dataset."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from careval.cli import main
from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.features.index_date import FeatureSettings
from careval.report.publish.caselist import publish_score_summary
from careval.report.publish.rules import SUPPRESSED
from careval.risk.caselist import score_summary
from careval.risk.evaluate import AGE_BANDS
from careval.risk.model import (
    BASELINE,
    OUTCOME,
    RiskModel,
    design_matrix,
    load_model,
    risk_frame,
    settings_from_dict,
)

DC = DisclosureSettings()  # the default disclosure rules

TRAIN, VALID = "2011-04-01", "2012-04-01"
TOP = 5  # --top of the shared run


@pytest.fixture(scope="module")
def trip(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Train, validate and score once, through the command line."""
    tmp = tmp_path_factory.mktemp("risk-cli")
    paths = {"model": tmp / "model", "json": tmp / "valid.json", "score": tmp / "score"}
    data = str(synth_dir)
    _ok("train", "--data", data, "--index-date", TRAIN, "--out", paths["model"])
    m = paths["model"]
    _ok("validate", "--data", data, "--model", m, "--index-date", VALID, "--json", paths["json"])
    _ok("score", "--data", data, "--model", m, "--date", VALID, "--out", paths["score"], "--top", 5)
    return paths


def _ok(*args: object) -> None:
    """``careval risk ARGS`` succeeds."""
    assert main(["risk", *map(str, args)]) is None


@pytest.fixture(scope="module")
def in_memory(synth_dir: Path) -> tuple[RiskModel, pd.DataFrame, pd.DataFrame]:
    """The same logistic model fitted in memory, its training frame and everyone at VALID.

    Both frames are :func:`risk_frame`'s: features (as ``features_at``) and outcome, one row
    per person registered on the date, sorted by person_id.
    """
    with Dataset(synth_dir) as ds:
        train = risk_frame(ds, dt.date.fromisoformat(TRAIN))
        valid = risk_frame(ds, dt.date.fromisoformat(VALID))
    model = RiskModel("logistic").fit(design_matrix(train), train[OUTCOME].to_numpy())
    return model, train, valid


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command line, expect exit 2, return what it printed on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "careval: error:" in err
    return err


def test_model_json_describes_the_model(
    trip: dict[str, Path], in_memory: tuple[RiskModel, pd.DataFrame, pd.DataFrame]
) -> None:
    meta = json.loads((trip["model"] / "model.json").read_text())
    _, train, _ = in_memory
    x = design_matrix(train)
    assert meta["model_kind"] == "logistic" and meta["index_date"] == TRAIN
    assert meta["careval_version"]
    assert meta["features"] == list(x.columns)
    st = FeatureSettings()
    fs = meta["feature_settings"]
    assert fs["windows"] == list(st.windows) and fs["conditions"] == list(st.conditions)
    assert fs["eligibility"] == {"min_age": 75, "conditions": ["diabetes"], "combine": "or"}
    assert settings_from_dict(fs) == st
    t = meta["training"]
    assert t["people"] == len(train) and t["events"] == int(train[OUTCOME].sum())
    assert t["outcome_prevalence"] == pytest.approx(train[OUTCOME].mean())
    terms = [c["term"] for c in meta["coefficients"]]
    assert terms == ["intercept", *meta["features"]]
    model = joblib.load(trip["model"] / "model.joblib")
    assert isinstance(model, RiskModel) and model.features_ == meta["features"]
    coef = model.coefficients()
    assert [c["coefficient"] for c in meta["coefficients"]] == coef.coefficient.tolist()
    assert list(meta["standardisation"]["sd"]) == meta["features"]
    assert not list(trip["model"].parent.glob(".careval-*"))  # no temporary directory left


def test_model_files_of_earlier_versions_read_with_the_same_features() -> None:
    """Before eligibility took a list, a model file's eligibility had one ``condition``, which
    the features flagged after ``conditions``: it reads as the same features."""
    st = FeatureSettings()
    old = {
        "windows": list(st.windows),
        "conditions": [c for c in st.conditions if c != "diabetes"],
        "eligibility": {"min_age": 75, "condition": "diabetes"},
    }
    assert settings_from_dict(old) == st


def test_model_from_disk_scores_like_the_one_in_memory(
    trip: dict[str, Path],
    in_memory: tuple[RiskModel, pd.DataFrame, pd.DataFrame],
    synth_dir: Path,
) -> None:
    fitted, _, frame = in_memory
    x = design_matrix(frame)
    with Dataset(synth_dir) as ds:
        loaded, _ = load_model(trip["model"], ds)
    expected = fitted.predict_proba(x)[:, 1]
    # Two fits of the same data agree to the optimiser's tolerance, not bit for bit: when other
    # tests in the process have changed the BLAS thread pool, sums run in another order and
    # L-BFGS stops a hair away (seen: 3e-10 relative). Any real difference (data, features,
    # their order, the settings) moves scores by far more than 1e-7.
    from_disk = loaded.predict_proba(x)[:, 1]
    np.testing.assert_allclose(from_disk, expected, rtol=1e-7, atol=0)
    scores = pd.read_parquet(trip["score"] / "scores.parquet")
    assert list(scores.columns) == [
        "person_id",
        "practice_code",
        "mdg",
        "eligible",
        "on_care_plan",
        "risk",
    ]
    assert scores.person_id.tolist() == frame.person_id.tolist()
    assert np.array_equal(scores.risk.to_numpy(), from_disk)  # the saved model, exactly
    assert (scores.eligible == frame.eligible.astype(bool)).all()


def test_validate_reports_the_figures_and_subgroups(
    trip: dict[str, Path], in_memory: tuple[RiskModel, pd.DataFrame, pd.DataFrame]
) -> None:
    res = json.loads(trip["json"].read_text())
    model, _, valid = in_memory
    p = model.predict_proba(design_matrix(valid))[:, 1]
    y = valid[OUTCOME].to_numpy()
    assert res["model"]["kind"] == "logistic" and res["model"]["trained_on"] == TRAIN
    assert res["n"] == len(y) and res["events"] == int(y.sum())
    assert res["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert res["auc_ci_low"] < res["auc"] < res["auc_ci_high"]
    for tag in ("0_5", "1", "2", "5"):
        assert 0 < res[f"ppv_top_{tag}pct"] <= 1 and 0 < res[f"sensitivity_top_{tag}pct"] < 1
    assert res["oracle_auc"] > res["auc"]  # the synthetic data carry their true risks
    groups = {g["group"]: g for g in res["by_subgroup"]}
    assert list(groups) == ["everyone", *(b[0] for b in AGE_BANDS), "female", "male"]
    age = valid.age.to_numpy()
    for label, lo, hi in AGE_BANDS:
        m = (age >= lo) & (age < (hi if hi is not None else 999))
        assert groups[label]["people"] == int(m.sum())
        assert groups[label]["auc"] == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-6)
    f = valid.female.to_numpy() == 1
    assert groups["female"]["auc"] == pytest.approx(roc_auc_score(y[f], p[f]), abs=1e-6)
    assert groups["everyone"]["auc"] == pytest.approx(res["auc"], abs=1e-6)
    assert groups["everyone"]["ppv_top_1pct"] == pytest.approx(res["ppv_top_1pct"], abs=1e-6)
    assert sum(d["people"] for d in res["calibration_deciles"]) == len(y)


def test_case_lists_hold_the_top_eligible_people_without_a_plan(
    trip: dict[str, Path], synth_dir: Path
) -> None:
    scores = pd.read_parquet(trip["score"] / "scores.parquet")
    cp = pd.read_parquet(synth_dir / "care_plans.parquet")
    planned = set(cp.person_id[pd.to_datetime(cp.created_date) < pd.Timestamp(VALID)])
    assert scores.on_care_plan.tolist() == scores.person_id.isin(planned).tolist()
    pool = scores[scores.eligible & ~scores.on_care_plan]
    for by, name in (("practice_code", "by_practice"), ("mdg", "by_mdg")):
        lst = pd.read_csv(trip["score"] / f"case_list_{name}.csv")
        assert len(lst) and lst.person_id.is_unique
        assert set(lst.person_id) <= set(pool.person_id)  # eligible, no plan before the date
        assert not set(lst.person_id) & planned
        for unit, part in lst.groupby(by):
            assert len(part) <= TOP
            assert part["rank"].tolist() == list(range(1, len(part) + 1))
            assert part.risk.is_monotonic_decreasing
            rest = pool[(pool[by] == unit) & ~pool.person_id.isin(part.person_id)]
            assert len(part) == TOP or rest.empty  # fewer only when the pool runs out
            if len(rest):
                assert part.risk.min() >= rest.risk.max() - 1e-6
        exact = scores.set_index("person_id").risk.loc[lst.person_id]
        assert np.allclose(lst.risk, exact, rtol=1e-5)
    assert lst.mdg.notna().all()


def test_drivers_are_the_largest_contributions(
    trip: dict[str, Path], in_memory: tuple[RiskModel, pd.DataFrame, pd.DataFrame]
) -> None:
    """One listed person's contributions by hand from model.json's coefficients and scaler."""
    meta = json.loads((trip["model"] / "model.json").read_text())
    _, _, frame = in_memory
    lst = pd.read_csv(trip["score"] / "case_list_by_practice.csv")
    row = lst.iloc[0]
    x = design_matrix(frame).loc[frame.person_id == row.person_id].iloc[0]
    coef = {c["term"]: c["coefficient"] for c in meta["coefficients"]}
    mean, sd = meta["standardisation"]["mean"], meta["standardisation"]["sd"]
    contrib = {f: coef[f] * (x[f] - mean[f]) / sd[f] for f in meta["features"]}
    top3 = sorted(contrib, key=lambda f: -contrib[f])[:3]
    assert [row[f"driver_{k}"] for k in (1, 2, 3)] == top3
    for k, f in enumerate(top3, start=1):
        assert row[f"driver_{k}_contribution"] == pytest.approx(contrib[f], rel=1e-5)
    raw = frame.loc[frame.person_id == row.person_id].iloc[0]
    assert row.driver_1_value == pytest.approx(raw.get(top3[0], x[top3[0]]), rel=1e-5)
    logit = coef["intercept"] + sum(contrib.values())
    assert row.risk == pytest.approx(1 / (1 + np.exp(-logit)), rel=1e-5)


def test_summary_counts_and_disclosure(trip: dict[str, Path]) -> None:
    summary = json.loads((trip["score"] / "summary.json").read_text())
    scores = pd.read_parquet(trip["score"] / "scores.parquet")
    by_practice = pd.read_csv(trip["score"] / "case_list_by_practice.csv")
    by_mdg = pd.read_csv(trip["score"] / "case_list_by_mdg.csv")
    c = summary["counts"]
    assert summary["synthetic"] and not summary["disclosure_control"]
    assert c["registered"] == len(scores) and c["eligible"] == int(scores.eligible.sum())
    assert c["eligible_without_plan"] == int((scores.eligible & ~scores.on_care_plan).sum())
    assert c["listed_by_practice"] == len(by_practice) and c["listed_by_mdg"] == len(by_mdg)
    assert sum(r["listed"] for r in summary["by_practice"]) == len(by_practice)
    # On real data every count of people is suppressed (1-7) or rounded to 5.
    true = score_summary(scores, by_practice, by_mdg, TOP)
    assert true.to_dict()["counts"] == c  # what the command wrote (synthetic: unprotected)
    assert true.tidy().listed.sum() == len(by_practice) and "people registered" in true.summary()
    shown = publish_score_summary(true, DC).to_dict()
    assert true.to_dict()["counts"] == c  # published as a copy
    values = [v for k, v in shown["counts"].items() if k not in ("practices", "mdgs")]
    for rows in (shown["by_practice"], shown["by_mdg"]):
        for r in rows:
            values += [r[k] for k in ("registered", "eligible", "on_care_plan", "listed")]
            values.append(r["eligible_without_plan"])
    assert SUPPRESSED in values
    assert all(v == SUPPRESSED or (isinstance(v, int) and v % 5 == 0) for v in values)
    assert shown["counts"]["registered"] == 5 * round(len(scores) / 5)


def test_lightgbm_round_trip_with_shap_drivers(
    synth_dir: Path, tmp_path: Path, in_memory: tuple[RiskModel, pd.DataFrame, pd.DataFrame]
) -> None:
    data = str(synth_dir)
    model_dir, out = tmp_path / "gbm", tmp_path / "out"
    _ok("train", "--data", data, "--index-date", TRAIN, "--model", "lightgbm", "--out", model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["model_kind"] == "lightgbm" and "coefficients" not in meta
    assert set(meta["feature_importance_gain"]) == set(meta["features"])
    _ok("score", "--data", data, "--model", model_dir, "--date", VALID, "--out", out, "--top", 2)
    lst = pd.read_csv(out / "case_list_by_mdg.csv")
    with Dataset(synth_dir) as ds:
        model, _ = load_model(model_dir, ds)
    frame = in_memory[2].drop(columns=[OUTCOME])
    x = design_matrix(frame.set_index("person_id").loc[lst.person_id].reset_index())
    shap = model.contributions(x)
    logit = shap.sum(axis=1).to_numpy()  # SHAP values plus the baseline: the raw score
    assert np.allclose(1 / (1 + np.exp(-logit)), lst.risk, rtol=1e-5)
    drivers = shap.drop(columns=[BASELINE])
    for i in range(len(lst)):
        best = drivers.iloc[i].sort_values(ascending=False, kind="stable")
        assert lst.driver_1[i] == best.index[0]
        assert lst.driver_1_contribution[i] == pytest.approx(best.iloc[0], rel=1e-5)
        assert lst.driver_1_contribution[i] >= lst.driver_2_contribution[i]


def test_validation_date_not_after_training_is_refused(
    trip: dict[str, Path], synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for date in ("2011-04-01", "2010-10-01"):
        argv = ["risk", "validate", "--data", str(synth_dir), "--model", str(trip["model"])]
        msg = _fails([*argv, "--index-date", date, "--json", str(tmp_path / "v.json")], capsys)
        assert "must be after the model's training date 2011-04-01" in msg
    assert not (tmp_path / "v.json").exists()


def test_validation_without_a_year_of_follow_up_is_refused(
    trip: dict[str, Path], synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["risk", "validate", "--data", str(synth_dir), "--model", str(trip["model"])]
    msg = _fails([*argv, "--index-date", "2013-06-01", "--json", str(tmp_path / "v.json")], capsys)
    assert "do not cover the 12 months of follow-up" in msg
    assert not (tmp_path / "v.json").exists()


def test_missing_model_directory_is_refused(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    msg = _fails(
        ["risk", "score", "--data", str(synth_dir), "--model", str(tmp_path / "nope")]
        + ["--date", VALID, "--out", str(out)],
        capsys,
    )
    assert "no such model directory" in msg
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_model_kind_is_refused(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    msg = _fails(
        ["risk", "train", "--data", str(synth_dir), "--index-date", TRAIN]
        + ["--model", "xgboost", "--out", str(out)],
        capsys,
    )
    assert "--model must be logistic or lightgbm; got 'xgboost'" in msg
    assert list(tmp_path.iterdir()) == []


def test_model_refused_when_the_features_differ(
    trip: dict[str, Path], synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dataset without A&E attendances gives no ae_* features: the model must not load."""
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    (data / "ae_attendances.parquet").unlink()
    out = tmp_path / "out"
    msg = _fails(
        ["risk", "score", "--data", str(data), "--model", str(trip["model"])]
        + ["--date", VALID, "--out", str(out)],
        capsys,
    )
    assert "inputs differ" in msg and "missing now: ae_attendances_3m" in msg
    assert "careval risk train" in msg
    assert not out.exists()


def test_broken_model_files_are_refused(
    trip: dict[str, Path], synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(trip["model"], bad)
    (bad / "model.joblib").write_bytes(b"not a pickle")
    argv = ["risk", "score", "--data", str(synth_dir), "--model", str(bad), "--date", VALID]
    assert "model.joblib cannot be read" in _fails([*argv, "--out", str(tmp_path / "o")], capsys)
    meta = json.loads((trip["model"] / "model.json").read_text())
    meta["features"] = meta["features"][::-1]
    shutil.copy(trip["model"] / "model.joblib", bad / "model.joblib")
    (bad / "model.json").write_text(json.dumps(meta))
    assert "disagree" in _fails([*argv, "--out", str(tmp_path / "o")], capsys)
    assert not (tmp_path / "o").exists()


def test_outputs_are_not_overwritten_and_failures_leave_nothing(
    trip: dict[str, Path],
    synth_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    msg = _fails(
        ["risk", "train", "--data", str(synth_dir), "--index-date", TRAIN]
        + ["--out", str(trip["model"])],
        capsys,
    )
    assert "exists and is not empty; pass --overwrite" in msg
    import careval.risk.caselist as caselist

    def broken(scored: pd.DataFrame) -> pd.DataFrame:
        raise OSError("disk full")

    monkeypatch.setattr(caselist, "scores_table", broken)
    out = tmp_path / "out"
    _fails(
        ["risk", "score", "--data", str(synth_dir), "--model", str(trip["model"])]
        + ["--date", VALID, "--out", str(out)],
        capsys,
    )
    assert list(tmp_path.iterdir()) == []  # neither the directory nor its temporary twin


def test_on_real_data_the_terminal_shows_counts_as_published(
    synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """risk train and validate on data flagged real print the people and admissions rounded
    to 5 (the default rules) and no share; on synthetic data, exactly."""
    import re
    import shutil

    real = tmp_path / "real"
    shutil.copytree(synth_dir, real)
    manifest = json.loads((real / "dataset.json").read_text())
    (real / "dataset.json").write_text(json.dumps({**manifest, "synthetic": False}))
    with Dataset(synth_dir) as ds:
        y = risk_frame(ds, dt.date.fromisoformat(TRAIN))[OUTCOME]
    n, events = len(y), int(y.sum())
    assert n % 5 and events % 5  # the fixture's counts are not already multiples of 5
    capsys.readouterr()
    _ok("train", "--data", real, "--index-date", TRAIN, "--out", tmp_path / "m")
    said = capsys.readouterr().out
    assert f"on {5 * round(n / 5):,} people" in said
    assert f"({5 * round(events / 5):,} admitted in 12 months)" in said and "%" not in said
    _ok(
        "validate",
        "--data",
        real,
        "--model",
        tmp_path / "m",
        "--index-date",
        VALID,
        "--json",
        tmp_path / "v.json",
    )
    said = capsys.readouterr().out
    shown = int(re.search(r"validated on ([\d,]+) people", said)[1].replace(",", ""))
    assert shown % 5 == 0
