"""Matching against R MatchIt on the LaLonde data, and against brute force; balance; speed-free."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.errors import ConfigError
from careval.impact.balance import balance_table, matched_att
from careval.impact.matching import MatchSettings, match, nearest

FIX = Path(__file__).parent / "fixtures" / "matchit"
COVARIATES = ["age", "educ", "hispan", "white", "married", "nodegree", "re74", "re75"]
SETTINGS = {
    "A": MatchSettings(),
    "B": MatchSettings(ratio=2, caliper=0.1, replace=True),
    "C": MatchSettings(exact=("married",)),
}


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    return pd.read_csv(FIX / "lalonde.csv")


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((FIX / "results.json").read_text())


@pytest.mark.parametrize("model", ["A", "B", "C"])
def test_matches_matchit(lalonde: pd.DataFrame, reference: dict, model: str) -> None:
    ref = pd.read_csv(FIX / f"match_{model}.csv")
    res = match(lalonde, "treat", COVARIATES, SETTINGS[model])
    # The propensity score is R's glm to its convergence tolerance (IRLS stops at 1e-8).
    assert res.score is not None
    np.testing.assert_allclose(res.score, ref.distance.to_numpy(), rtol=0, atol=1e-8)
    # The same pairs (as sets per treated unit: the order of tied slots is arbitrary).
    ids = lalonde.id.to_numpy()
    got = {
        (ids[res.treated_rows[t]], ids[res.control_rows[c]])
        for t, c in zip(res.pairs.treated, res.pairs.control, strict=True)
    }
    pairs = pd.read_csv(FIX / f"match_{model}_pairs.csv")
    want = set(zip(pairs.treated_id, pairs.control_id, strict=True))
    assert got == want
    np.testing.assert_allclose(res.weights, ref.weights.to_numpy(), atol=1e-12)
    r = reference["models"][model]
    assert res.n_treated_matched == r["n_treated_matched"]
    assert res.n_controls_matched == r["n_controls_matched"]
    if r["caliper_width"] is not None:
        assert res.caliper_width == pytest.approx(r["caliper_width"], rel=1e-7)
    att = matched_att(
        lalonde.re78.to_numpy(),
        lalonde.treat.to_numpy(),
        res.weights,
        None if SETTINGS[model].replace else res.subclass,
        SETTINGS[model].replace,
    )
    assert att["estimate"] == pytest.approx(r["att"], rel=1e-9)
    assert att["se"] == pytest.approx(r["se"], rel=1e-6)


@pytest.mark.parametrize("model", ["A", "B", "C"])
def test_balance_matches_matchit_summary(lalonde: pd.DataFrame, model: str) -> None:
    res = match(lalonde, "treat", COVARIATES, SETTINGS[model])
    df = lalonde.assign(black=lalonde.black)
    bal = balance_table(df, "treat", ["age", "educ", "black", "re74", "re75"], res.weights)
    ref = pd.read_csv(FIX / f"smd_{model}.csv").set_index("covariate")
    names = {"black": "raceblack"}
    for row in bal.itertuples():
        r = ref.loc[names.get(row.covariate, row.covariate)]
        assert row.smd_before == pytest.approx(r.smd_all, abs=1e-9)
        assert row.smd_after == pytest.approx(r.smd_matched, abs=1e-9)
    assert bal.imbalanced_after.tolist() == (bal.smd_after.abs() > 0.1).tolist()


def _brute(st, sc, kt, kc, ratio, cal):
    used = np.zeros(sc.size, bool)
    out = []
    for r in range(1, ratio + 1):
        for t in np.argsort(-st, kind="stable"):
            d = np.where((~used) & (kc == kt[t]), np.abs(sc - st[t]), np.inf)
            j = int(np.argmin(d))
            if np.isfinite(d[j]) and d[j] <= cal:
                used[j] = True
                out.append((int(t), j, r))
    return sorted(out)


@pytest.mark.parametrize("seed", range(12))
def test_greedy_equals_brute_force_with_ties_and_strata(seed: int) -> None:
    rng = np.random.default_rng(seed)
    nt, nc = int(rng.integers(5, 60)), int(rng.integers(5, 200))
    st, sc = np.round(rng.random(nt), 2), np.round(rng.random(nc), 2)  # many exact ties
    kt, kc = rng.integers(0, 3, nt), rng.integers(0, 3, nc)
    ratio = int(rng.integers(1, 4))
    cal = 0.05 if seed % 2 else None
    p = nearest(st, sc, strata_t=kt, strata_c=kc, ratio=ratio, caliper=cal)
    got = sorted(zip(p.treated.tolist(), p.control.tolist(), p.round.tolist(), strict=True))
    assert got == _brute(st, sc, kt, kc, ratio, np.inf if cal is None else cal)
    unmatched = set(range(nt)) - set(p.treated.tolist())
    assert all(p.reason[t] != "" for t in unmatched)


def test_with_replacement_takes_the_k_nearest() -> None:
    rng = np.random.default_rng(5)
    st, sc = rng.random(300), rng.random(2000)
    p = nearest(st, sc, ratio=3, replace=True)
    for t in range(0, 300, 37):
        mine = p.control[p.treated == t]
        want = np.argsort(np.abs(sc - st[t]), kind="stable")[:3]
        assert set(mine.tolist()) == set(want.tolist())


def test_bad_settings_are_refused(lalonde: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="ratio"):
        MatchSettings(ratio=0)
    with pytest.raises(ConfigError, match="caliper"):
        MatchSettings(distance="mahalanobis", caliper=0.2)
    with pytest.raises(ConfigError, match="both treated"):
        match(lalonde.assign(treat=1), "treat", COVARIATES)


def test_mahalanobis_pairs_are_nearest(lalonde: pd.DataFrame) -> None:
    res = match(lalonde, "treat", ["age", "educ"], MatchSettings(distance="mahalanobis"))
    assert res.n_treated_matched == 185
    assert res.n_controls_matched == 185  # without replacement: all distinct


def test_match_result_tidy_summary_and_settings_round_trip(lalonde: pd.DataFrame) -> None:
    from careval.impact.generic import match_table

    st = SETTINGS["B"]
    assert MatchSettings.from_json(st.to_json()) == st
    assert list(st.to_dict()) == [
        "ratio",
        "caliper",
        "replace",
        "exact",
        "distance",
        "score",
        "order",
    ]
    res = match_table(lalonde, "treat", COVARIATES, st, outcome="re78")
    t = res.tidy()
    assert list(t.columns) == [
        "treated_row",
        "control_row",
        "round",
        "treated_weight",
        "control_weight",
    ]
    assert len(t) == res.pairs.treated.size and set(t["round"]) == {1, 2}
    assert t.treated_weight.eq(1.0).all()
    text = res.summary()
    assert f"matched {res.n_treated_matched:,} of {res.n_treated:,}" in text
    assert f"{res.att['estimate']:.4g}" in text  # type: ignore[index]
    d = res.to_dict()
    assert d["settings"]["caliper_sd"] == 0.1 and d["att"]["outcome"] == "re78"
    assert d["max_abs_smd_after"] == res.max_abs_smd_after
