"""Staggered adoption: the robust estimators against pyfixest, statsmodels and planted truth.

- pyfixest's heterogeneous-effects example ``df_het.csv`` (shipped with pyfixest): the outcome
  is exactly ``unit_fe + year_fe + (te + te_dynamic) * treat + error`` (checked below), so the
  true ATT is the mean of ``te + te_dynamic`` over the treated rows (``treat``): 2.2202 on the
  full file. The tests use every fifth unit (300 units, 9,300 rows; true ATT 2.1872) to stay
  fast; on the full file TWFE gives 1.9825 and the two-stage DiD 2.2305.
- Our two-stage wiring is checked against ``pyfixest.did2s`` called directly; the correctness
  of did2s itself rests on pyfixest's own tests against Butts's R package did2s.
- The organ-donation example (Kessler and Roth 2014; Huntington-Klein, *The Effect*, ch. 18,
  data from the ``causaldata`` package, ``tests/fixtures/organ_donations/README.md``): one
  adoption cohort (California from 2011 Q3), so TWFE and the two-stage DiD agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import statsmodels.api as sm

from careval.cli import main
from careval.errors import ConfigError
from careval.impact.bacon import bacon_weights
from careval.impact.did import did
from careval.impact.staggered import twfe_weights

HET = Path(pf.__file__).parent / "did" / "data" / "df_het.csv"
ORGAN = Path(__file__).parent / "fixtures" / "organ_donations" / "organ_donation.csv"


@pytest.fixture(scope="module")
def het() -> pd.DataFrame:
    df = pd.read_csv(HET)
    df = df[df["unit"] % 5 == 0].reset_index(drop=True)
    return df.assign(first=df["g"].where(df["g"] > 0))


def _did(df: pd.DataFrame, **kw: object):  # type: ignore[no-untyped-def]
    return did(df, unit="unit", time="year", outcome="dep_var", first_treated="first", **kw)


def test_df_het_outcome_is_the_planted_sum() -> None:
    df = pd.read_csv(HET)
    planted = df.unit_fe + df.year_fe + (df.te + df.te_dynamic) * df.treat + df.error
    assert np.abs(planted - df.dep_var).max() < 1e-10
    assert (df.te + df.te_dynamic)[df.treat].mean() == pytest.approx(2.2202, abs=1e-4)


def test_df_het_auto_is_did2s_covers_the_truth_and_equals_pyfixest(het: pd.DataFrame) -> None:
    truth = float((het.te + het.te_dynamic)[het.treat].mean())
    res = _did(het)
    assert res.estimator == "did2s" and res.n_cohorts == 2
    assert res.att["ci_low"] < truth < res.att["ci_high"]
    assert abs(res.att["estimate"] - truth) < 0.02
    assert not any("TWFE" in w for w in res.warnings)

    ref = pf.did2s(
        het,
        yname="dep_var",
        first_stage="~ 0 | unit + year",
        second_stage="~ treat",
        treatment="treat",
        cluster="unit",
    ).tidy()
    assert res.att["estimate"] == pytest.approx(ref["Estimate"].iloc[0], abs=1e-10)
    assert res.att["se"] == pytest.approx(ref["Std. Error"].iloc[0], rel=1e-8)
    assert res.att["ci_low"] == pytest.approx(ref["2.5%"].iloc[0], abs=1e-10)

    # The event study: flat pre-periods (no pre-trends planted), the reference, the Wald test.
    es = res.event_study.set_index("k")
    assert es.loc[-1, "reference"] and es.loc[-1, "estimate"] == 0.0
    post = es.loc[0:5]
    true_k = (het.te + het.te_dynamic)[het.treat].groupby(het.rel_year[het.treat]).mean()
    assert (post["ci_low"] < true_k.loc[0:5].to_numpy()).all()
    assert (true_k.loc[0:5].to_numpy() < post["ci_high"]).all()
    pre = res.pretrend
    assert pre is not None and pre["df"] == 5 and pre["terms"] == [-6, -5, -4, -3, -2]
    assert pre["p_value"] > 0.05
    out = json.loads(json.dumps(res.to_dict()))
    assert out["estimator"] == "did2s" and out["pretrend"]["df"] == 5


def test_df_het_weights_and_cluster_pass_through_to_did2s(het: pd.DataFrame) -> None:
    df = het.assign(w=np.random.default_rng(11).uniform(0.5, 2.0, len(het)))
    res = _did(df, weights="w", cluster="state")
    ref = pf.did2s(
        df,
        yname="dep_var",
        first_stage="~ 0 | unit + year",
        second_stage="~ treat",
        treatment="treat",
        cluster="state",
        weights="w",
    ).tidy()
    assert res.att["estimate"] == pytest.approx(ref["Estimate"].iloc[0], abs=1e-10)
    assert res.att["se"] == pytest.approx(ref["Std. Error"].iloc[0], rel=1e-8)
    assert res.cluster == "state"


def test_df_het_twfe_equals_feols_and_warns_of_negative_weights(het: pd.DataFrame) -> None:
    res = _did(het, estimator="twfe")
    ref = pf.feols("dep_var ~ treat | unit + year", het, vcov={"CRV1": "unit"})
    assert res.att["estimate"] == pytest.approx(ref.coef()["treat"], abs=1e-8)
    assert res.att["se"] == pytest.approx(ref.se()["treat"], rel=1e-8)
    truth = float((het.te + het.te_dynamic)[het.treat].mean())
    assert res.att["ci_high"] < truth  # biased downwards: 1.970 against 2.187
    assert res.estimator == "twfe" and res.twfe_weights is not None
    assert res.twfe_weights["n_negative"] > 0 and res.twfe_weights["sum_negative"] < 0
    assert res.warnings[0].startswith("TWFE with staggered adoption (2 cohorts)")
    assert "negative weight" in res.warnings[0]
    share = res.twfe_weights["bacon_later_vs_earlier"]
    assert 0 < share < 1 and f"{share:.1%} of the TWFE weight is on later- vs" in res.warnings[0]
    assert res.pretrend is not None  # from the two-stage event study


def _cells(n_per: int, cohorts: list[float], n_periods: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = np.repeat(cohorts, n_per)
    unit = np.repeat(np.arange(first.size), n_periods)
    period = np.tile(np.arange(n_periods), first.size)
    g = first[unit]
    d = (period >= g).astype(float)
    tau = np.where(d == 1, 1.0 + 0.5 * (period - np.nan_to_num(g)) + 0.2 * np.nan_to_num(g), 0)
    y = rng.normal(size=first.size)[unit] + rng.normal(size=n_periods)[period] + tau * d
    cohort = np.nan_to_num(g, nan=-1.0)
    return pd.DataFrame(
        {"unit": unit, "period": period, "D": d, "y": y, "tau": tau, "g": g, "cohort": cohort}
    )


def test_dcdh_weights_reproduce_twfe_exactly_with_known_cell_effects() -> None:
    # No noise and no never-treated units: TWFE = sum over treated cells of weight x effect.
    df = _cells(5, [2.0, 4.0, 6.0], 8, seed=1)
    info = twfe_weights(df, weights=False)
    w = info["weights"]
    treated = df["D"].to_numpy() == 1
    twfe = pf.feols("y ~ D | unit + period", df).coef()["D"]
    assert np.nansum(w) == pytest.approx(1.0, abs=1e-12)
    assert np.sum(w[treated] * df["tau"].to_numpy()[treated]) == pytest.approx(twfe, abs=1e-8)
    assert info["n_negative"] > 0  # the late periods of the early cohort
    assert info["sum_negative"] == pytest.approx(w[treated][w[treated] < 0].sum())


def test_bacon_weights_decompose_twfe_exactly_into_the_2x2_comparisons() -> None:
    """Goodman-Bacon (2021): in a balanced panel TWFE = sum of weight x 2x2 DiD, each 2x2 here
    a TWFE fit by pyfixest on its own units and periods (with noise, so nothing is trivial).
    Groups: treated throughout (0), cohorts 3 and 5, never treated, and treated after the end."""
    rng = np.random.default_rng(7)
    first = np.repeat([0.0, 3.0, 5.0, -1.0, 20.0], [4, 6, 5, 7, 3])
    unit = np.repeat(np.arange(first.size), 8)
    period = np.tile(np.arange(8), first.size)
    g = first[unit]
    d = ((g >= 0) & (period >= g)).astype(float)
    y = rng.normal(size=unit.size) + d * (1 + 0.3 * (period - g))
    df = pd.DataFrame({"unit": unit, "period": period, "D": d, "cohort": g, "y": y})
    b = bacon_weights(df)
    assert b is not None and b["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert bacon_weights(df.iloc[1:]) is None  # unbalanced

    def two_by_two(groups: list[float], periods: range) -> float:
        sub = df[df["cohort"].isin(groups) & df["period"].isin(periods)]
        return float(pf.feols("y ~ D | unit + period", sub).coef()["D"])

    total = 0.0
    for r in b.itertuples():
        if r.kind == "treated_vs_untreated":
            beta = two_by_two([r.treated, -1.0, 20.0], range(8))
        elif r.kind == "earlier_vs_later":
            beta = two_by_two([r.treated, r.control], range(int(r.control)))
        else:
            beta = two_by_two([r.treated, r.control], range(int(r.control), 8))
        total += r.weight * beta
    assert total == pytest.approx(pf.feols("y ~ D | unit + period", df).coef()["D"], abs=1e-8)
    forbidden = b.loc[b["kind"] == "later_vs_earlier", "weight"].sum()
    assert twfe_weights(df, weights=False)["bacon_later_vs_earlier"] == pytest.approx(forbidden)


def test_one_cohort_robust_and_twfe_agree_and_auto_is_twfe() -> None:
    df = _cells(20, [4.0, np.nan], 9, seed=2)
    df["y"] += np.random.default_rng(3).normal(size=len(df))
    df["first"] = df["g"]
    kw = {"unit": "unit", "time": "period", "outcome": "y", "first_treated": "first"}
    auto, twfe = did(df, **kw), did(df, **kw, estimator="twfe")
    two, ext = did(df, **kw, estimator="did2s"), did(df, **kw, estimator="etwfe")
    assert auto.estimator == "twfe" and not auto.warnings and auto.twfe_weights is None
    for other in (two, ext):
        assert other.att["estimate"] == pytest.approx(twfe.att["estimate"], abs=1e-8)
    assert auto.att == twfe.att


def test_units_never_untreated_are_left_out_of_the_robust_estimators() -> None:
    # Units treated from the first period have no untreated row for their unit effect.
    df = _cells(8, [0.0, 3.0, 5.0, np.nan], 8, seed=8).assign(first=lambda d: d["g"])
    df["y"] += np.random.default_rng(9).normal(size=len(df))
    kw = {"unit": "unit", "time": "period", "outcome": "y", "first_treated": "first"}
    res = did(df, **kw)
    kept = df[df["g"] != 0]
    ref = pf.did2s(
        kept,
        yname="y",
        first_stage="~ 0 | unit + period",
        second_stage="~ D",
        treatment="D",
        cluster="unit",
    ).tidy()
    assert res.att["estimate"] == pytest.approx(ref["Estimate"].iloc[0], abs=1e-10)
    assert res.att["se"] == pytest.approx(ref["Std. Error"].iloc[0], rel=1e-8)
    assert (res.n_obs, res.dropped) == (len(kept), {"no untreated row": 64})
    assert any(
        w.startswith("64 rows of units or periods never observed untreated") for w in res.warnings
    )
    es = res.event_study.set_index("k")
    assert es.loc[7, "estimate"] != es.loc[7, "estimate"]  # only the left-out units reach k = 7
    counts = df.assign(y=np.random.default_rng(10).poisson(3.0, len(df)))
    ext = did(counts, **kw, model="poisson")
    assert ext.estimator == "etwfe" and ext.dropped["no untreated row"] == 64


def test_organ_donations_twfe_and_two_stage_agree_with_the_published_estimate() -> None:
    """Huntington-Klein, *The Effect* (2021), ch. 18 (difference-in-differences,
    https://theeffectbook.net/ch-DifferenceinDifference.html), regresses ``Rate`` on ``Treated``
    with state and quarter fixed effects and state-clustered errors: about -0.0225 (SE about
    0.006). That page was not in the search corpus, so the figure is the one quoted to us and the
    exact reference is pyfixest's feols on the same data. We get -0.022459 (CRV1 SE 0.006131, as
    pyfixest and fixest); the two-stage DiD gives the same estimate (one cohort) with its GMM SE
    0.005903. One treated state: the few-treated-clusters warning must be there."""
    df = pd.read_csv(ORGAN)
    assert len(df) == 162 and df["State"].nunique() == 27
    quarter = df["Quarter"].str[1].astype(int) + 4 * (df["Quarter"].str[2:].astype(int) - 2011)
    df["t"] = quarter  # Q4 2010 = 0 ... Q1 2012 = 5; California treated from Q3 2011 = 3
    df["first"] = np.where(df["State"] == "California", 3.0, np.nan)
    df["Treated"] = ((df["State"] == "California") & (df["t"] >= 3)).astype(int)
    kw = {"unit": "State", "time": "t", "outcome": "Rate", "first_treated": "first"}
    res = did(df, **kw)
    ref = pf.feols("Rate ~ Treated | State + Quarter", df, vcov={"CRV1": "State"})
    assert res.estimator == "twfe" and res.n_treated_units == 1
    assert res.att["estimate"] == pytest.approx(ref.coef()["Treated"], abs=1e-10)
    assert res.att["se"] == pytest.approx(ref.se()["Treated"], rel=1e-8)
    assert res.att["estimate"] == pytest.approx(-0.0225, abs=1e-4)
    assert res.att["se"] == pytest.approx(0.0061, abs=1e-4)
    two = did(df, **kw, estimator="did2s")
    assert two.att["estimate"] == pytest.approx(res.att["estimate"], abs=1e-10)
    assert any("treated cluster" in w for w in res.warnings)


def _poisson(n_units: int, seed: int) -> tuple[pd.DataFrame, float]:
    """Cohorts at 3 and 5 of 8 periods and never treated; log rate ratios by cohort and time."""
    rng = np.random.default_rng(seed)
    first = rng.choice([3.0, 5.0, np.nan], size=n_units, p=[0.35, 0.35, 0.3])
    unit = np.repeat(np.arange(n_units), 8)
    period = np.tile(np.arange(8), n_units)
    g = first[unit]
    d = period >= g
    effect = np.where(d, np.where(g == 3, -0.4, -0.1) - 0.05 * (period - np.nan_to_num(g)), 0)
    mu = np.exp(0.8 + rng.normal(0, 0.4, n_units)[unit] + 0.04 * period + effect)
    df = pd.DataFrame({"unit": unit, "time": period, "y": rng.poisson(mu), "first": g})
    return df, float(effect[d].mean())


def test_poisson_staggered_is_extended_twfe_near_the_truth() -> None:
    df, truth = _poisson(3000, seed=4)
    kw = {"unit": "unit", "time": "time", "outcome": "y", "first_treated": "first"}
    res = did(df, **kw, model="poisson")
    assert res.estimator == "etwfe"
    assert res.pretrend is not None and res.pretrend["p_value"] > 0.05  # none planted
    assert res.pretrend["terms"] == [-5, -4, -3, -2]
    assert res.att["ci_low"] < truth < res.att["ci_high"]
    assert res.att["rate_ratio"] == pytest.approx(np.exp(res.att["estimate"]))
    assert list(res.event_study["k"]) == list(range(0, 5))  # cohort 3 of periods 0-7
    assert res.event_study.loc[0, "estimate"] == pytest.approx(-0.25, abs=0.05)  # (-0.4-0.1)/2
    with pytest.raises(ConfigError, match=r"estimator='did2s' needs model='ols'.*etwfe"):
        did(df, **kw, model="poisson", estimator="did2s")


def test_poisson_pretrend_detects_planted_anticipation() -> None:
    df, _ = _poisson(3000, seed=4)
    g, t = df["first"].to_numpy(), df["time"].to_numpy()
    rng = np.random.default_rng(12)
    mu = np.exp(0.8 + 0.04 * t + 0.15 * ((t == g - 2) | (t == g - 3)))  # two periods early
    df["y"] = rng.poisson(mu)
    res = did(df, unit="unit", time="time", outcome="y", first_treated="first", model="poisson")
    assert res.pretrend is not None and res.pretrend["p_value"] < 0.001


def test_poisson_extended_twfe_equals_glm_with_dummies_and_delta_method() -> None:
    df, _ = _poisson(60, seed=5)
    res = did(df, unit="unit", time="time", outcome="y", first_treated="first", model="poisson")
    treated = df["time"] >= df["first"]
    cell = np.where(treated, df["first"].fillna(0).astype(int) * 10 + df["time"], 0)
    cells = pd.get_dummies(pd.Series(cell), prefix="c", dtype=float).drop(columns="c_0")
    fe = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True, dtype=float)
    design = sm.add_constant(pd.concat([cells, fe], axis=1))
    glm = sm.GLM(df["y"], design, family=sm.families.Poisson())
    ref = glm.fit(cov_type="cluster", cov_kwds={"groups": df["unit"]}, tol=1e-12)
    n = cells.sum().to_numpy()
    a = n / n.sum()  # treated rows per cell
    att = float(a @ ref.params[cells.columns])
    se = float(np.sqrt(a @ ref.cov_params().loc[cells.columns, cells.columns] @ a))
    k_pf = cells.shape[1] + df["time"].nunique()  # pyfixest's K (unit FE nested in clusters)
    factor = np.sqrt((len(df) - design.shape[1]) / (len(df) - k_pf))
    assert res.att["estimate"] == pytest.approx(att, abs=1e-8)
    assert res.att["se"] == pytest.approx(se * factor, rel=1e-6)

    # The pre-trend test: cohort-by-pre-period leads (k <= -2; k = -1 the reference) added to
    # the same GLM, tested jointly with its clustered covariance (pyfixest's = GLM's x factor^2).
    k = df["time"] - df["first"]
    lead = np.where(k <= -2, df["first"].fillna(0) * 100 + k.fillna(0) + 50, 0).astype(int)
    leads = pd.get_dummies(pd.Series(lead), prefix="l", dtype=float).drop(columns="l_0")
    design2 = sm.add_constant(pd.concat([cells, leads, fe], axis=1))
    glm2 = sm.GLM(df["y"], design2, family=sm.families.Poisson())
    ref2 = glm2.fit(cov_type="cluster", cov_kwds={"groups": df["unit"]}, tol=1e-12)
    b = ref2.params[leads.columns].to_numpy()
    v = ref2.cov_params().loc[leads.columns, leads.columns].to_numpy()
    k_pf2 = cells.shape[1] + leads.shape[1] + df["time"].nunique()
    factor2 = (len(df) - design2.shape[1]) / (len(df) - k_pf2)
    stat = float(b @ np.linalg.solve(v, b)) / factor2
    assert res.pretrend is not None and res.pretrend["df"] == leads.shape[1]
    assert res.pretrend["statistic"] == pytest.approx(stat, rel=1e-5)


def _cli(tmp_path: Path, df: pd.DataFrame, *extra: str) -> list[str]:
    df.to_csv(tmp_path / "p.csv", index=False)
    return [
        "did",
        "--csv",
        str(tmp_path / "p.csv"),
        "--unit",
        "unit",
        "--time",
        "period",
        "--outcome",
        "y",
        "--first-treated",
        "first",
        "--json",
        str(tmp_path / "d.json"),
        *extra,
    ]


def test_cli_estimator_choice_warning_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    df = _cells(10, [2.0, 4.0, np.nan], 7, seed=6).assign(first=lambda d: d["g"])
    with pytest.raises(SystemExit) as exc:
        main(_cli(tmp_path, df, "--estimator", "bogus"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--estimator must be one of auto, did2s, etwfe, twfe; got 'bogus'" in err
    assert err.count("error") == 1 and not (tmp_path / "d.json").exists()

    assert main(_cli(tmp_path, df, "--estimator", "twfe")) is None
    captured = capsys.readouterr()
    assert "warning: TWFE with staggered adoption (2 cohorts)" in captured.err
    assert "twfe" in captured.out and "pre-trends chi-square" in captured.out
    got = json.loads((tmp_path / "d.json").read_text())
    assert got["estimator"] == "twfe" and got["pretrend"]["df"] >= 1
    assert got["twfe_weights"]["n_negative"] >= 0

    assert main(_cli(tmp_path, df)) is None
    assert json.loads((tmp_path / "d.json").read_text())["estimator"] == "did2s"


@pytest.mark.slow
def test_full_df_het_twfe_is_biased_and_did2s_covers_the_true_att() -> None:
    """The whole file (1,500 units, 46,500 rows): true ATT 2.2202; TWFE 1.9825, did2s 2.2305."""
    df = pd.read_csv(HET)
    df["first"] = df["g"].where(df["g"] > 0)
    truth = float((df.te + df.te_dynamic)[df.treat].mean())
    twfe = _did(df, estimator="twfe")
    assert twfe.att["estimate"] == pytest.approx(
        pf.feols("dep_var ~ treat | unit + year", df).coef()["treat"], abs=1e-8
    )
    assert twfe.att["estimate"] == pytest.approx(1.9825, abs=1e-4) and twfe.att["ci_high"] < truth
    robust = _did(df)
    assert robust.estimator == "did2s" and robust.att["ci_low"] < truth < robust.att["ci_high"]
    assert robust.att["estimate"] == pytest.approx(2.2305, abs=1e-4)


def test_cli_records_the_pretrend_diagnostic_and_warns_when_it_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Parallel pre-trends pass; a rise planted in the treated units' last two pre-periods
    fails the joint test, and the command says the ATT is not for decisions."""
    df = _cells(40, [3.0, 5.0, np.nan], 8, seed=8).assign(first=lambda d: d["g"])
    df["y"] += np.random.default_rng(9).normal(size=len(df))  # _cells has no noise of its own
    assert main(_cli(tmp_path, df)) is None
    got = json.loads((tmp_path / "d.json").read_text())
    assert got["diagnostics"]["for_decisions"] is True
    assert "not for decisions" not in capsys.readouterr().err
    lead = (df["period"] >= df["g"] - 2) & (df["period"] < df["g"])
    df.loc[lead, "y"] += 1.5
    assert main(_cli(tmp_path, df)) is None
    got = json.loads((tmp_path / "d.json").read_text())
    assert got["diagnostics"]["failed"] == ["pretrend_p"] and got["pretrend"]["p_value"] < 0.05
    err = capsys.readouterr().err
    assert "warning: the ATT is not for decisions: p-value of the pre-trend test" in err


def test_count_models_report_overdispersion_and_negbin_its_alpha() -> None:
    """Overdispersed counts (NB2, theta 2) under staggered adoption: the Poisson fit's
    overdispersion test rejects, negbin estimates alpha > 0, and both ATTs cover the planted
    log rate ratio -0.2 (one common effect, so the cohort cells agree)."""
    rng = np.random.default_rng(1)
    n, t_n = 600, 8
    u = np.repeat(np.arange(n), t_n)
    t = np.tile(np.arange(t_n), n)
    g = np.where(np.arange(n) % 3 == 0, 3.0, np.where(np.arange(n) % 3 == 1, 5.0, np.nan))[u]
    d = (t >= np.nan_to_num(g, nan=99)).astype(float)
    mu = np.exp(0.5 + 0.3 * rng.normal(size=n)[u] + 0.05 * t - 0.2 * d)
    y = rng.negative_binomial(2, 2 / (2 + mu))
    df = pd.DataFrame({"u": u, "t": t, "y": y, "g": g})
    fits = {
        m: did(df, unit="u", time="t", outcome="y", first_treated="g", model=m)
        for m in ("poisson", "negbin")
    }
    assert fits["poisson"].overdispersion["p_value"] < 1e-6
    assert fits["poisson"].alpha is None and 0.1 < fits["negbin"].alpha < 1.0
    for r in fits.values():
        assert r.estimator == "etwfe" and r.att["ci_low"] < -0.2 < r.att["ci_high"]
    assert "alpha" in fits["negbin"].to_dict()
