"""Risk metrics against independent implementations, and the model against the truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from careval.data.access import Dataset
from careval.risk.metrics import auc_delong, calibration, summarise_score, top_share_yield
from careval.risk.model import OUTCOME, temporal_validation


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
