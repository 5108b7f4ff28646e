"""Risk metrics against independent implementations, and the model against the truth."""

from __future__ import annotations

import datetime as dt
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.report.publish.risk import protect_subgroups, publish_risk
from careval.report.publish.rules import SUPPRESSED
from careval.report.sections.risk import section as risk_section
from careval.risk.evaluate import (
    AGE_BANDS,
    RiskSettings,
    evaluate_risk,
)
from careval.risk.metrics import (
    auc_delong,
    auc_difference_delong,
    calibration,
    subgroup_table,
    summarise_score,
    top_share_yield,
)
from careval.risk.model import OUTCOME, design_matrix, risk_frame, temporal_validation

DC = DisclosureSettings()  # the default disclosure rules


def _simulated(n: int, seed: int, slope: float = 1.0):
    rng = np.random.default_rng(seed)
    lp = rng.normal(-2.5, 1.0, n)
    p_true = 1 / (1 + np.exp(-lp))
    y = rng.random(n) < p_true
    p_model = 1 / (1 + np.exp(-lp / slope))  # a model too extreme (slope < 1) or too flat
    return y, p_true, p_model


def test_auc_matches_sklearn_and_delong_se_matches_bootstrap() -> None:
    y, p, _ = _simulated(4000, 1)
    p = np.round(p, 2)  # ties, handled as halves
    d = auc_delong(y, p)
    assert d.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    rng = np.random.default_rng(2)
    boots = []
    for _ in range(300):
        i = rng.integers(0, y.size, y.size)
        boots.append(roc_auc_score(y[i], p[i]))
    assert d.se == pytest.approx(np.std(boots), rel=0.15)
    assert d.ci_low < d.auc < d.ci_high


def test_calibration_recovers_known_slope() -> None:
    y, p_true, _ = _simulated(60_000, 3)
    intercept, slope = calibration(y, p_true)
    assert slope == pytest.approx(1.0, abs=0.05) and intercept == pytest.approx(0.0, abs=0.05)
    y, _, p_over = _simulated(60_000, 4, slope=0.5)  # logits doubled: slope should be 0.5
    assert calibration(y, p_over)[1] == pytest.approx(0.5, abs=0.03)


def test_top_share_yield_and_brier() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    p = np.linspace(1, 0, 10)
    assert top_share_yield(y, p, 0.2) == (0.5, 1 / 3)
    s = summarise_score(y, p)
    assert s["brier"] == pytest.approx(brier_score_loss(y, p))
    assert s["ppv_top_5pct"] == 1.0 and s["sensitivity_top_1pct"] == pytest.approx(1 / 3)


def test_temporal_validation_is_realistic_and_below_the_oracle(shape_dir: Path) -> None:
    with Dataset(shape_dir) as ds:
        model, valid, fig = temporal_validation(ds, dt.date(2011, 4, 1), dt.date(2012, 4, 1))
    truth = pq.read_table(shape_dir / "true_risk.parquet").to_pandas()
    truth = truth[truth.index_date.astype(str) == "2012-04-01"]
    both = valid.merge(truth, on="person_id")
    assert len(both) == len(valid)  # the truth covers everyone scored
    oracle = roc_auc_score(both[OUTCOME], both.p_emergency_12m)
    # Published administrative-data models of 12-month emergency admission: AUC about 0.70-0.83.
    assert 0.70 <= fig["auc"] <= 0.83
    assert fig["auc"] < oracle  # above it would mean leakage
    assert 0.9 <= fig["calibration_slope"] <= 1.1
    assert fig["ppv_top_1pct"] > 3 * both[OUTCOME].mean()
    coef = model.coefficients().set_index("term").coefficient
    # Nested windows are collinear, so single coefficients can take either sign; together
    # past emergency admissions must raise the risk.
    windows = [f"emergency_admissions_{w}m" for w in (3, 6, 12, 24)]
    assert coef[windows].sum() > 0


def test_subgroup_table_flags_the_top_of_everyone() -> None:
    y, p, _ = _simulated(3000, 5)
    group = np.random.default_rng(6).integers(0, 3, y.size)
    groups = [("all", "everyone", np.ones(y.size, bool))]
    groups += [("g", str(g), group == g) for g in range(3)]
    table = subgroup_table(y, p, groups).set_index("group")
    flagged = p >= np.sort(p)[-30]  # the top 1% of everyone: 30 people (no ties)
    for g in range(3):
        m = group == g
        row = table.loc[str(g)]
        assert row.people == m.sum() and row.events == y[m].sum()
        assert row.auc == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
        assert row.brier == pytest.approx(brier_score_loss(y[m], p[m]))
        assert row.flagged_top_1pct == (flagged & m).sum()
        assert row.ppv_top_1pct == pytest.approx(y[flagged & m].mean())
        assert row.sensitivity_top_1pct == pytest.approx(y[flagged & m].sum() / y[m].sum())
    assert table.flagged_top_5pct.iloc[1:].sum() == table.loc["everyone"].flagged_top_5pct == 150
    assert table.loc["everyone"].ppv_top_5pct == pytest.approx(top_share_yield(y, p, 0.05)[0])
    # A group without events has no AUC, calibration nor sensitivity; nobody flagged, no PPV.
    empty = subgroup_table(y, p, [("g", "none", (p < np.median(p)) & ~y)]).iloc[0]
    assert empty.auc is None and empty.calibration_slope is None
    assert empty.sensitivity_top_1pct is None and empty.ppv_top_1pct is None


def test_paired_auc_difference_matches_bootstrap() -> None:
    y, p_true, _ = _simulated(3000, 7)
    rng = np.random.default_rng(8)
    p_noisy = p_true * np.exp(rng.normal(0, 0.6, y.size))  # a worse, correlated score
    d = auc_difference_delong(y, p_true, p_noisy)
    assert d.difference == pytest.approx(roc_auc_score(y, p_noisy) - roc_auc_score(y, p_true))
    boots = []
    for _ in range(300):
        i = rng.integers(0, y.size, y.size)
        boots.append(roc_auc_score(y[i], p_noisy[i]) - roc_auc_score(y[i], p_true[i]))
    assert d.se == pytest.approx(np.std(boots), rel=0.2)
    assert d.ci_high < 0 and d.p_value < 0.05
    same = auc_difference_delong(y, p_true, p_true)
    assert same.difference == 0 and same.p_value == 1.0


def test_published_subgroups_protect_small_counts() -> None:
    df = pd.DataFrame(
        {
            "dimension": ["age", "age"],
            "group": ["under 65", "85+"],
            "people": [1234, 40],
            "events": [101, 6],
            "flagged_top_1pct": [3, 12],
            "flagged_top_5pct": [52, 30],
            "ppv_top_1pct": [2 / 3, 0.5],
            "sensitivity_top_1pct": [0.02, 1 / 6],
            "ppv_top_5pct": [0.3, 0.2],
            "sensitivity_top_5pct": [0.15, 0.5],
        }
    )
    raw = df.copy()
    out = protect_subgroups(df, DC)
    assert out.people.tolist() == [1235, 40] and out.events.tolist() == [100, SUPPRESSED]
    assert out.flagged_top_1pct.tolist() == [SUPPRESSED, 10]
    # 2 of 3 flagged would show the count, and so would 6 of 12 (0.5 of the 10 shown: 6 of 12)
    assert out.ppv_top_1pct.tolist() == [None, None]
    assert out.sensitivity_top_1pct.tolist()[1] is None  # 1 of 6 events likewise
    # The derived-figure rule: 0.3 x 52 = 15.6 -> 16 flagged and admitted, published as 15; over
    # the 50 flagged and the 100 events published: 15/50 and 15/100. 0.2 x 30 = 6: withheld.
    assert out.ppv_top_5pct.tolist() == [float(Fraction(15, 50)), None]
    assert out.sensitivity_top_5pct.tolist() == [float(Fraction(15, 100)), None]
    pd.testing.assert_frame_equal(df, raw)  # a protected copy; the true table is unchanged


@pytest.fixture(scope="module")
def small_risk(synth_dir: Path):
    with Dataset(synth_dir) as ds:
        result = evaluate_risk(ds)
        valid = risk_frame(ds, result.settings.validate_date)
    assert result.model is not None
    valid["risk"] = result.model.predict_proba(design_matrix(valid))[:, 1]
    return result, valid


def test_evaluate_risk_by_subgroup_equals_sklearn(small_risk) -> None:
    result, valid = small_risk
    table = result.by_subgroup.set_index("group")
    y, p, age = valid[OUTCOME].to_numpy(), valid.risk.to_numpy(), valid.age.to_numpy()
    assert table.loc["everyone"].auc == pytest.approx(result.figures["auc"], abs=1e-12)
    for label, lo, hi in AGE_BANDS:
        m = (age >= lo) & (age < (hi if hi is not None else 200))
        assert table.loc[label].people == m.sum()
        assert table.loc[label].auc == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
    for label, value in (("female", 1), ("male", 0)):
        m = valid.female.to_numpy() == value
        assert table.loc[label].auc == pytest.approx(roc_auc_score(y[m], p[m]), abs=1e-12)
    assert table.loc["female"].people + table.loc["male"].people == len(valid)
    block = result.to_dict()
    assert [r["group"] for r in block["by_subgroup"]] == list(table.index)
    assert block["auc"] == pytest.approx(result.figures["auc"], abs=1e-6)  # still the logistic


def test_evaluate_risk_compares_lightgbm(small_risk) -> None:
    result, valid = small_risk
    g = result.lightgbm
    assert 0.5 < g["auc_ci_low"] < g["auc"] < g["auc_ci_high"] < 1
    assert g["auc_difference"] == pytest.approx(g["auc"] - result.figures["auc"], abs=1e-12)
    assert g["auc_difference_ci_low"] < g["auc_difference"] < g["auc_difference_ci_high"]
    assert g["params"]["n_estimators"] == 300 and "n" not in g
    block = result.to_dict()["lightgbm"]
    assert block["auc"] == pytest.approx(g["auc"], abs=1e-6)
    page = risk_section(result).html
    assert 'id="risk-subgroups"' in page and 'id="risk-models"' in page
    assert "Aged 85+" in page and "LightGBM" in page
    off = RiskSettings(compare_lightgbm=False)
    assert not off.compare_lightgbm  # the comparison can be turned off (run on demand)


def test_run_publishes_subgroups_and_lightgbm(shape_run: Path) -> None:
    risk = json.loads((shape_run / "results.json").read_text())["risk"]
    groups = {g["group"]: g for g in risk["by_subgroup"]}
    assert list(groups) == ["everyone", "under 65", "65-74", "75-84", "85+", "female", "male"]
    assert sum(groups[b]["people"] for b in ("under 65", "65-74", "75-84", "85+")) == risk["n"]
    assert groups["everyone"]["auc"] == pytest.approx(risk["auc"], abs=1e-6)
    # The list favours the old: the oldest band's share of admissions caught is far above the
    # youngest's, and among the under-65s (most of the population) age separates little, so the
    # AUC there is below the overall one.
    assert groups["85+"]["sensitivity_top_5pct"] > 3 * groups["under 65"]["sensitivity_top_5pct"]
    assert groups["under 65"]["auc"] < risk["auc"]
    g = risk["lightgbm"]
    assert 0.68 <= g["auc"] < risk["oracle_auc"]
    assert abs(g["auc_difference"]) < 0.03  # boosting finds little the logistic model misses
    page = (shape_run / "report.html").read_text()
    assert 'id="risk-subgroups"' in page and 'id="risk-models"' in page


def test_risk_result_tidy_summary_and_publication(small_risk) -> None:
    result, _ = small_risk
    t = result.tidy()
    assert list(t.columns) == ["term", "coefficient"]
    assert t.term.iloc[0] == "intercept" and t.term.iloc[1:].tolist() == result.model.features_
    assert f"AUC {result.figures['auc']:.3f}" in result.summary()
    raw = result.by_subgroup.copy()
    published = publish_risk(result, DC)
    assert published is not result and published.disclosure_control
    assert not result.disclosure_control
    pd.testing.assert_frame_equal(result.by_subgroup, raw)  # the true table is unchanged
    pd.testing.assert_frame_equal(published.by_subgroup, protect_subgroups(raw, DC))
    everyone = published.to_dict()["by_subgroup"][0]
    assert everyone["people"] % 5 == 0
    assert result.to_dict()["by_subgroup"][0]["people"] == int(raw.people.iloc[0])
    assert "Counts are rounded to 5" in risk_section(published).html
    assert "Counts are rounded to 5" not in risk_section(result).html


def test_scores_do_not_depend_on_the_frame(small_risk) -> None:
    """A person's score is the same bit for bit in any frame (no BLAS blocking or threads)."""
    result, valid = small_risk
    model = result.model
    x = design_matrix(valid)
    full = model.predict_proba(x)[:, 1]
    for part in (x.iloc[1:], x.iloc[3:-2], x.iloc[::-1], x.iloc[[7]]):
        same = full[x.index.get_indexer(part.index)]
        assert np.array_equal(model.predict_proba(part)[:, 1], same)
    sk = model.estimator_.predict_proba(x[model.features_])[:, 1]
    np.testing.assert_allclose(full, sk, rtol=1e-12, atol=0)
    logit = model.contributions(x).sum(axis=1).to_numpy()
    np.testing.assert_allclose(model.linear_predictor(x), logit, rtol=1e-12, atol=1e-12)


def test_data_without_emergency_admissions_say_so(synth_dir: Path, tmp_path: Path) -> None:
    """An extract with no emergency admissions (OMOP's Eunomia sample has none) gives the reason
    in words, not the fitting library's "only one class"."""
    import shutil

    import pandas as pd

    from careval.errors import CarevalError

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    spells = pd.read_parquet(data / "inpatient_spells.parquet")
    spells["admission_method"] = "11"
    spells.to_parquet(data / "inpatient_spells.parquet", index=False)
    with Dataset(data) as ds, pytest.raises(CarevalError, match="nobody in the training cohort"):
        evaluate_risk(ds)
