"""Fixed-effects DiD against statsmodels with explicit dummies, and known effects recovered.

Small-sample factors. pyfixest 0.60 (like R fixest and Stata reghdfe) scales CRV1 variances by
``G/(G-1) * (N-1)/(N-K)`` with ``K`` = regressors + fixed-effect levels, except that a fixed
effect nested in the clusters counts once. With unit and period fixed effects and clustering on
the unit that is ``K_pf = k + T``; statsmodels with an intercept and explicit dummies uses
``K_sm = k + U + T - 1``. So ``se_pf = se_sm * sqrt((N - K_sm) / (N - K_pf))`` exactly, and the
tests compare after that correction. HC1 (``N/(N-K)``, no nesting) needs none for OLS.
statsmodels' GLM applies no ``N/(N-K)`` factor to HC1 (only to cluster), so Poisson is compared
with clustered errors.

Tolerances (achieved in parentheses, pyfixest fixef_tol 1e-10 and iwls_tol 1e-10):
OLS/WLS estimate 1e-8 absolute (about 1e-15), SE 1e-8 relative (about 1e-15);
Poisson estimate 1e-8 absolute (about 1e-15), SE 1e-6 relative (about 5e-9; IWLS stopping rules).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from careval.errors import ConfigError
from careval.impact.did import did
from careval.impact.fe import fit_fe

X = "dose (mg)"  # not an identifier: fit_fe must rename it internally and name it back


def _panel(n_units: int, n_periods: int, seed: int) -> pd.DataFrame:
    """A balanced panel: a regressor correlated with the unit effect, serially correlated
    heteroskedastic errors, a count outcome and positive weights."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    a = rng.normal(size=n_units)
    x = rng.normal(size=unit.size) + 0.5 * a[unit]
    e = 0.7 * rng.normal(size=n_units)[unit] + rng.normal(size=unit.size) * (1 + 0.5 * np.abs(x))
    return pd.DataFrame(
        {
            "unit": unit,
            "period": period,
            X: x,
            "y": 0.3 * x + a[unit] + 0.1 * period + e,
            "count": rng.poisson(np.exp(0.5 + 0.2 * x + 0.3 * a[unit] + 0.05 * period)),
            "w": rng.uniform(0.5, 2.0, unit.size),
        }
    )


def _dummies(df: pd.DataFrame) -> pd.DataFrame:
    """Intercept, the regressor and full-rank unit and period dummies (K_sm columns)."""
    d = pd.get_dummies(df[["unit", "period"]].astype(str), drop_first=True, dtype=float)
    d.insert(0, X, df[X].to_numpy())
    return sm.add_constant(d)


def _crv_factor(df: pd.DataFrame, design: pd.DataFrame, k: int = 1) -> float:
    """se_pyfixest / se_statsmodels implied by the two CRV1 small-sample conventions."""
    n, k_sm = design.shape
    k_pf = k + df["period"].nunique()  # unit FE nested in the unit clusters: counted once
    return float(np.sqrt((n - k_sm) / (n - k_pf)))


# ----------------------------------------------------------------------------- (a) OLS


def test_ols_matches_statsmodels_dummies_clustered_and_hc1() -> None:
    df = _panel(300, 8, seed=1)
    design = _dummies(df)
    fit = fit_fe(df, outcome="y", regressors=[X], fe=["unit", "period"], cluster="unit")
    ref = sm.OLS(df["y"], design).fit(cov_type="cluster", cov_kwds={"groups": df["unit"]})
    row = fit.term(X)
    assert row["estimate"] == pytest.approx(ref.params[X], abs=1e-8)
    assert row["se"] == pytest.approx(ref.bse[X] * _crv_factor(df, design), rel=1e-8)
    assert (fit.vcov, fit.n_clusters, fit.n_obs, fit.n_dropped) == ("CRV1", 300, 2400, 0)
    assert fit.inference == "t(299)"
    assert list(fit.coefficients["term"]) == [X]

    hc1 = fit_fe(df, outcome="y", regressors=[X], fe=["unit", "period"])
    ref_hc1 = sm.OLS(df["y"], design).fit(cov_type="HC1")
    assert hc1.vcov == "HC1" and hc1.n_clusters is None
    assert hc1.term(X)["se"] == pytest.approx(ref_hc1.bse[X], rel=1e-8)


def test_fit_fe_prints_nothing_and_counts_what_it_drops(capsys: pytest.CaptureFixture) -> None:
    df = _panel(60, 5, seed=2)
    df.loc[3, X] = np.nan  # missing regressor
    df = df[~((df["unit"] == 7) & (df["period"] > 0))]  # unit 7 observed once: a singleton
    df["const_in_unit"] = df["unit"] % 2  # collinear with the unit fixed effects
    fit = fit_fe(
        df, outcome="y", regressors=[X, "const_in_unit"], fe=["unit", "period"], cluster="unit"
    )
    assert capsys.readouterr().out == ""
    assert dict(fit.dropped) == {"missing": 1, "singleton": 1, "separation": 0}
    assert fit.n_dropped == 2 and fit.n_obs == len(df) - 2
    assert fit.collinear == ("const_in_unit",)
    assert list(fit.coefficients["term"]) == [X]


# ------------------------------------------------------------------------- (b) Poisson


def test_poisson_matches_statsmodels_glm_with_dummies() -> None:
    df = _panel(200, 6, seed=3)
    design = _dummies(df)
    fit = fit_fe(
        df, outcome="count", regressors=[X], fe=["unit", "period"], model="poisson", cluster="unit"
    )
    glm = sm.GLM(df["count"], design, family=sm.families.Poisson())
    ref = glm.fit(cov_type="cluster", cov_kwds={"groups": df["unit"]}, tol=1e-12)
    row = fit.term(X)
    assert row["estimate"] == pytest.approx(ref.params[X], abs=1e-8)
    assert row["se"] == pytest.approx(ref.bse[X] * _crv_factor(df, design), rel=1e-6)
    assert row["rate_ratio"] == pytest.approx(np.exp(ref.params[X]), rel=1e-8)
    assert row["rr_ci_low"] == pytest.approx(np.exp(row["ci_low"]))
    assert fit.inference == "normal" and fit.converged


def test_poisson_drops_units_with_all_zero_outcomes_and_reports_them() -> None:
    df = _panel(150, 6, seed=4)
    zero_units = [0, 1, 2, 3, 4]
    df.loc[df["unit"].isin(zero_units), "count"] = 0
    df = df[df.groupby("unit")["count"].transform("sum").gt(0) | df["unit"].isin(zero_units)]
    fit = fit_fe(
        df, outcome="count", regressors=[X], fe=["unit", "period"], model="poisson", cluster="unit"
    )
    assert dict(fit.dropped) == {"missing": 0, "singleton": 0, "separation": 30}
    assert fit.n_dropped == 30 and fit.n_clusters == 145

    kept = df[~df["unit"].isin(zero_units)]
    design = _dummies(kept)
    ref = sm.GLM(kept["count"], design, family=sm.families.Poisson()).fit(
        cov_type="cluster", cov_kwds={"groups": kept["unit"]}, tol=1e-12
    )
    assert fit.term(X)["estimate"] == pytest.approx(ref.params[X], abs=1e-8)
    assert fit.term(X)["se"] == pytest.approx(ref.bse[X] * _crv_factor(kept, design), rel=1e-6)


# ------------------------------------------------------------------------- (e) weights


def test_weighted_ols_matches_statsmodels_wls_with_dummies() -> None:
    df = _panel(300, 8, seed=5)
    design = _dummies(df)
    wls = sm.WLS(df["y"], design, weights=df["w"])
    kw = {"outcome": "y", "regressors": [X], "fe": ["unit", "period"], "weights": "w"}
    hc1 = fit_fe(df, **kw)
    ref = wls.fit(cov_type="HC1")
    assert hc1.term(X)["estimate"] == pytest.approx(ref.params[X], abs=1e-8)
    assert hc1.term(X)["se"] == pytest.approx(ref.bse[X], rel=1e-8)
    crv = fit_fe(df, **kw, cluster="unit")
    ref = wls.fit(cov_type="cluster", cov_kwds={"groups": df["unit"]})
    assert crv.term(X)["se"] == pytest.approx(ref.bse[X] * _crv_factor(df, design), rel=1e-8)


# statsmodels warns that robust covariances are "not fully supported" with var_weights; the
# cluster sandwich it gives agrees with pyfixest's to 1e-7, so the warning is silenced here.
@pytest.mark.filterwarnings("ignore:cov_type not fully supported with var_weights")
def test_weighted_poisson_matches_glm_with_var_weights() -> None:
    df = _panel(200, 6, seed=6)
    design = _dummies(df)
    fit = fit_fe(
        df,
        outcome="count",
        regressors=[X],
        fe=["unit", "period"],
        model="poisson",
        cluster="unit",
        weights="w",
    )
    glm = sm.GLM(df["count"], design, family=sm.families.Poisson(), var_weights=df["w"])
    ref = glm.fit(cov_type="cluster", cov_kwds={"groups": df["unit"]}, tol=1e-12)
    assert fit.term(X)["estimate"] == pytest.approx(ref.params[X], abs=1e-8)
    assert fit.term(X)["se"] == pytest.approx(ref.bse[X] * _crv_factor(df, design), rel=1e-6)


# ----------------------------------------------------------------- (c) did: known effects


def _staggered(n_units: int, seed: int, effect: float, model: str) -> pd.DataFrame:
    """12 periods; cohorts first treated at 4, 6, 8, and 40% never treated (first empty).
    Poisson: rate ratio ``effect``; OLS: additive ``effect``. Homogeneous, so TWFE is unbiased."""
    rng = np.random.default_rng(seed)
    n_periods = 12
    unit = np.repeat(np.arange(n_units), n_periods)
    period = np.tile(np.arange(n_periods), n_units)
    cohort = rng.choice([4.0, 6.0, 8.0, np.nan], size=n_units, p=[0.2, 0.2, 0.2, 0.4])
    a = rng.normal(0.0, 0.5, n_units) + 0.2 * np.nan_to_num(cohort, nan=10.0) / 10
    trend = 0.03 * period
    treated = period >= cohort[unit]
    if model == "poisson":
        y = rng.poisson(np.exp(1.0 + a[unit] + trend + np.log(effect) * treated))
    else:
        y = a[unit] + trend + effect * treated + rng.normal(size=unit.size)
    return pd.DataFrame({"unit": unit, "time": period, "y": y, "first": cohort[unit]})


def test_did_poisson_recovers_rate_ratio_and_flat_pre_trends() -> None:
    df = _staggered(2000, seed=7, effect=0.9, model="poisson")
    before = df.copy()
    res = did(
        df,
        unit="unit",
        time="time",
        outcome="y",
        first_treated="first",
        model="poisson",
        estimator="twfe",  # homogeneous effects: TWFE is unbiased and has pre-periods
    )
    pd.testing.assert_frame_equal(df, before)  # input not mutated
    att = res.att
    assert att["rr_ci_low"] < 0.9 < att["rr_ci_high"]
    assert att["rate_ratio"] == pytest.approx(0.9, abs=0.03)
    assert (res.n_units, res.n_periods, res.cluster, res.vcov) == (2000, 12, "unit", "CRV1")
    assert res.n_treated_units + res.n_never_treated_units == res.n_units

    es = res.event_study.set_index("k")
    assert list(es.index) == list(range(-6, 8))  # -8..-7 binned into -6; no k beyond 7
    assert es.loc[-6, "label"] == "<=-6" and es.loc[-1, "reference"]
    assert es.loc[-1, "estimate"] == 0.0 and es.loc[-1, "rate_ratio"] == 1.0
    pre = es.loc[[-6, -5, -4, -3, -2]]
    assert (pre["estimate"].abs() < 3 * pre["se"]).all()
    assert pre["estimate"].abs().max() < 0.06
    post = es.loc[0:7]
    assert post["rate_ratio"].between(0.8, 1.0).all()

    out = json.loads(json.dumps(res.to_dict()))
    assert out["att"]["rate_ratio"] == round(att["rate_ratio"], 6)
    assert out["event_study"][5]["se"] is None  # the reference period
    assert res.tidy()["term"].iloc[0] == "att"


def test_did_ols_recovers_att_and_is_invariant_to_row_order_and_time_coding() -> None:
    df = _staggered(600, seed=8, effect=2.0, model="ols")
    res = did(df, unit="unit", time="time", outcome="y", first_treated="first")
    assert res.att["ci_low"] < 2.0 < res.att["ci_high"]
    assert res.time_encoding == "integer periods as given"

    shuffled = df.sample(frac=1.0, random_state=1)
    again = did(shuffled, unit="unit", time="time", outcome="y", first_treated="first")
    # the two-stage DiD (auto: 3 cohorts): pyfixest.did2s's first stage stops at its own
    # fixed-effect tolerance (1e-6), so the estimate moves in about the ninth digit.
    assert res.estimator == "did2s"
    assert again.att["estimate"] == pytest.approx(res.att["estimate"], abs=1e-8)
    assert again.att["se"] == pytest.approx(res.att["se"], rel=1e-6)

    dated = df.assign(
        time=[f"2020-{m + 1:02d}" for m in df["time"]],
        first=["" if np.isnan(f) else f"2020-{int(f) + 1:02d}-01" for f in df["first"]],
    )
    by_date = did(dated, unit="unit", time="time", outcome="y", first_treated="first")
    assert by_date.att["estimate"] == pytest.approx(res.att["estimate"], abs=1e-10)
    pd.testing.assert_frame_equal(by_date.event_study, res.event_study)
    assert by_date.time_encoding.startswith("dates of time ranked: period 0 = 2020-01-01")


def test_did_weights_and_own_cluster_column() -> None:
    df = _staggered(400, seed=9, effect=1.0, model="ols")
    df["w"] = 1.0
    df["region"] = df["unit"] % 40
    plain = did(df, unit="unit", time="time", outcome="y", first_treated="first")
    weighted = did(df, unit="unit", time="time", outcome="y", first_treated="first", weights="w")
    assert weighted.att["estimate"] == pytest.approx(plain.att["estimate"], abs=1e-10)
    assert weighted.att["se"] == pytest.approx(plain.att["se"], rel=1e-8)
    by_region = did(
        df, unit="unit", time="time", outcome="y", first_treated="first", cluster="region"
    )
    assert by_region.cluster == "region"
    assert by_region.att["estimate"] == pytest.approx(plain.att["estimate"], abs=1e-10)


# --------------------------------------------------------------------------- (d) bad input


def _small() -> pd.DataFrame:
    return _staggered(40, seed=10, effect=1.0, model="poisson")


def _did(df: pd.DataFrame, **kw: object) -> None:
    did(df, unit="unit", time="time", outcome="y", first_treated="first", **kw)  # type: ignore[arg-type]


def test_missing_column_lists_the_columns_there_are() -> None:
    with pytest.raises(ConfigError, match=r"not found: 'first'; the data has: unit, time, y"):
        _did(_small().drop(columns="first"))


def test_first_treated_must_be_constant_within_unit() -> None:
    df = _small()
    treated = df.loc[df["first"].notna(), "unit"].iloc[0]
    df.loc[(df["unit"] == treated) & (df["time"] == 11), "first"] = np.nan
    with pytest.raises(ConfigError) as err:
        _did(df)
    msg = str(err.value)
    assert msg.startswith("first: varies within a unit (1 unit, 12 rows)")
    assert f"e.g. unit={treated}" in msg and "nan" in msg and "allowed:" in msg


def test_negative_outcome_is_refused_for_poisson_only() -> None:
    df = _small()
    df["y"] = df["y"].astype(float)
    df.loc[[5, 17], "y"] = -1.0
    expected = r"^y: is negative \(2 rows\); allowed: values >= 0.*; e\.g\. row 5: -1\.0$"
    with pytest.raises(ConfigError, match=expected):
        _did(df, model="poisson")
    _did(df, model="ols")


def test_duplicate_unit_time_is_refused() -> None:
    df = _small()
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    with pytest.raises(ConfigError, match=r"unit, time: repeats a \(unit, time\) pair \(2 rows\)"):
        _did(df)


def test_several_problems_are_reported_together() -> None:
    df = _small()
    df["y"] = df["y"].astype(float)
    df.loc[0, "y"] = np.inf
    df.loc[1, "unit"] = np.nan
    with pytest.raises(ConfigError, match=r"2 problems in the input") as err:
        _did(df)
    assert "y: is infinite (outcome) (1 row)" in str(err.value)
    assert "unit: is missing (1 row)" in str(err.value)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.assign(first=4.0), "no comparison units"),
        (lambda d: d.assign(first=np.nan), "no row is treated"),
        (lambda d: d.assign(first=d["first"] + 0.5), "not a whole number"),
        (lambda d: d.assign(time=d["time"].astype(str) + "x"), "neither an integer nor an ISO"),
    ],
)
def test_design_problems(change, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _did(change(_small()))


def test_bad_options_and_fit_fe_inputs() -> None:
    with pytest.raises(ConfigError, match="model must be one of ols, poisson, negbin; got 'logit'"):
        _did(_small(), model="logit")
    with pytest.raises(ConfigError, match="event_window must be"):
        _did(_small(), event_window=(-1, 5))
    df = _panel(20, 4, seed=11)
    df.loc[2, "w"] = 0.0
    with pytest.raises(ConfigError, match=r"w: is zero or negative \(1 row\)"):
        fit_fe(df, outcome="y", regressors=[X], fe=["unit"], weights="w")
    with pytest.raises(ConfigError, match="repeated: 'unit'"):
        fit_fe(df, outcome="y", regressors=["unit"], fe=["unit"])
    with pytest.raises(ConfigError, match="is not a number"):
        fit_fe(df.assign(**{X: "a"}), outcome="y", regressors=[X], fe=["unit"])
    with pytest.raises(ConfigError, match="collinear with the fixed effects"):
        fit_fe(df.assign(c=1.0), outcome="y", regressors=["c"], fe=["unit"])


def test_fe_fit_tidy_summary_and_to_dict() -> None:
    df = _panel(60, 5, seed=4)
    fit = fit_fe(df, outcome="y", regressors=[X], fe=["unit", "period"], cluster="unit")
    t = fit.tidy()
    assert list(t.columns) == ["term", "estimate", "se", "ci_low", "ci_high", "p_value"]
    est = fit.term(X)["estimate"]
    assert t.loc[t.term == X, "estimate"].item() == est
    assert f"{est:.4g}" in fit.summary() and "60 clusters" in fit.summary()
    d = json.loads(json.dumps(fit.to_dict()))
    assert d["n_clusters"] == 60 and d["coefficients"][0]["estimate"] == round(est, 6)


def test_did_result_summary_names_the_att() -> None:
    df = _staggered(300, seed=9, effect=2.0, model="ols")
    res = did(df, unit="unit", time="time", outcome="y", first_treated="first")
    t = res.tidy()
    assert list(t.columns[:6]) == ["term", "estimate", "se", "ci_low", "ci_high", "p_value"]
    assert t.estimate.iloc[0] == res.att["estimate"]
    assert f"ATT {res.att['estimate']:.4g}" in res.summary()
    assert "300 units" in res.summary()
