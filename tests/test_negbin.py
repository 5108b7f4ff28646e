"""The negative binomial (NB2) fixed-effects model and the overdispersion test, against R.

References in tests/fixtures/negbin/ (made by make_fixtures.R): MASS::glm.nb with unit and
period dummies, sandwich::vcovCL / vcovHC, AER::dispersiontest(trafo = 2).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.impact.fe import fit_fe
from careval.impact.matching import match
from careval.impact.negbin import alpha_ml, dispersion_test
from careval.impact.outcomes import coef, fit_matched, matched_panel
from careval.impact.population import covariates, study_population
from careval.impact.settings import ImpactSettings, OutcomeSettings
from careval.impact.variance import two_way_vcov
from careval.spec import loads, resolve

FIX = Path(__file__).parent / "fixtures" / "negbin"
TERMS = ["treat", "x"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return pd.read_csv(FIX / "panel.csv")


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((FIX / "results.json").read_text())  # type: ignore[no-any-return]


def _fit(d: pd.DataFrame, y: str, model: str, **kw: object):  # type: ignore[no-untyped-def]
    return fit_fe(d, outcome=y, regressors=TERMS, fe=["unit", "period"], model=model, **kw)  # type: ignore[arg-type]


def test_coefficients_and_theta_equal_glm_nb(panel: pd.DataFrame, ref: dict) -> None:
    fit = _fit(panel, "y_nb", "negbin", cluster="unit")
    assert fit.converged and fit.n_obs == ref["n_obs"]
    est = fit.coefficients.set_index("term").loc[TERMS]
    np.testing.assert_allclose(est.estimate, ref["negbin"]["coef"], rtol=1e-5)
    assert fit.alpha is not None
    assert 1 / fit.alpha == pytest.approx(ref["negbin"]["theta"], rel=1e-5)
    np.testing.assert_allclose(est.rate_ratio, np.exp(ref["negbin"]["coef"]), rtol=1e-5)
    d = fit.to_dict()
    assert d["theta"] == pytest.approx(ref["negbin"]["theta"], rel=1e-5)
    assert d["alpha"] == pytest.approx(1 / ref["negbin"]["theta"], rel=1e-5)


def test_clustered_se_is_vcovcl_with_fixests_small_sample_factor(
    panel: pd.DataFrame, ref: dict
) -> None:
    """CRV1 = vcovCL(type = "HC0", cadjust = TRUE), i.e. G/(G-1), times (N-1)/(N-K) with
    K = 2 regressors + 8 periods: the unit effects are nested in the clusters and count as one
    parameter, the 7 further period levels as 7 (fit_fe's convention, as fixest's)."""
    fit = _fit(panel, "y_nb", "negbin", cluster="unit")
    n, k = ref["n_obs"], 2 + 8
    se = fit.coefficients.set_index("term").loc[TERMS, "se"]
    expected = np.array(ref["negbin"]["se_cl_hc0"]) * np.sqrt((n - 1) / (n - k))
    np.testing.assert_allclose(se, expected, rtol=1e-4)
    assert fit.vcov == "CRV1" and fit.n_clusters == ref["n_clusters"]


def test_heteroskedasticity_robust_se_is_vcovhc_hc1(panel: pd.DataFrame, ref: dict) -> None:
    """Without clusters every dummy counts: K = 69, R's model-matrix columns, so HC1 agrees
    with sandwich::vcovHC(type = "HC1") as it is."""
    fit = _fit(panel, "y_nb", "negbin")
    se = fit.coefficients.set_index("term").loc[TERMS, "se"]
    np.testing.assert_allclose(se, ref["negbin"]["se_hc1"], rtol=1e-4)
    assert fit.vcov == "HC1" and fit.inference == "normal"


@pytest.mark.parametrize("y", ["y_nb", "y_pois"])
def test_dispersion_test_equals_aer(panel: pd.DataFrame, ref: dict, y: str) -> None:
    want = ref["dispersion_" + y[2:]]
    fit = _fit(panel, y, "poisson", cluster="unit")
    np.testing.assert_allclose(fit.coefficients.estimate, want["poisson_coef"], rtol=1e-6)
    od = fit.overdispersion
    assert od is not None
    assert od["alpha"] == pytest.approx(want["alpha"], rel=1e-6)
    assert od["statistic"] == pytest.approx(want["statistic"], rel=1e-6)
    assert od["p_value"] == pytest.approx(want["p_value"], rel=1e-5)


def test_equidispersed_counts_do_not_reject_and_negbin_is_poisson(panel: pd.DataFrame) -> None:
    pois = _fit(panel, "y_pois", "poisson", cluster="unit")
    assert pois.overdispersion is not None and pois.overdispersion["p_value"] > 0.5
    nb = _fit(panel, "y_pois", "negbin", cluster="unit")
    assert nb.alpha is not None and nb.alpha < 0.01
    a, b = nb.coefficients.set_index("term"), pois.coefficients.set_index("term")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-6)
    np.testing.assert_allclose(a.se, b.se, rtol=1e-4)


def test_overdispersed_counts_reject_and_alpha_recovers_the_planted_one() -> None:
    """2,000 independent NB2 counts, alpha = 0.5, no fixed-effect shrinkage to speak of."""
    rng = np.random.default_rng(3)
    n = 4000
    d = pd.DataFrame({"g": np.arange(n) % 4, "x": rng.normal(size=n)})
    mu = np.exp(1.0 + 0.3 * d.x + 0.1 * d.g)
    d["y"] = rng.negative_binomial(2, 2 / (2 + mu)).astype(float)
    fit = fit_fe(d, outcome="y", regressors=["x"], fe=["g"], model="negbin")
    assert fit.alpha == pytest.approx(0.5, abs=0.05)
    assert fit.term("x")["estimate"] == pytest.approx(0.3, abs=0.03)
    pois = fit_fe(d, outcome="y", regressors=["x"], fe=["g"], model="poisson")
    assert pois.overdispersion is not None and pois.overdispersion["p_value"] < 1e-10
    assert pois.overdispersion["alpha"] == pytest.approx(0.5, abs=0.08)


def test_integer_weights_are_repeated_rows(panel: pd.DataFrame) -> None:
    """Analytic weights enter the likelihood as multiplicities: weights 1-3 give the same
    coefficients and alpha as the rows repeated that many times."""
    d = panel.assign(w=np.random.default_rng(4).integers(1, 4, len(panel)).astype(float))
    wfit = _fit(d, "y_nb", "negbin", weights="w")
    rep = d.loc[d.index.repeat(d.w.astype(int))]
    rfit = _fit(rep, "y_nb", "negbin")
    np.testing.assert_allclose(wfit.coefficients.estimate, rfit.coefficients.estimate, rtol=1e-7)
    assert wfit.alpha == pytest.approx(rfit.alpha, rel=1e-7)


def test_a_unit_without_events_is_separated_and_changes_nothing(panel: pd.DataFrame) -> None:
    """Its unit effect would be minus infinity: dropped (and counted) as for Poisson."""
    extra = panel[panel.unit == 1].assign(unit=999, y_nb=0)
    fit = _fit(pd.concat([panel, extra], ignore_index=True), "y_nb", "negbin", cluster="unit")
    base = _fit(panel, "y_nb", "negbin", cluster="unit")
    assert fit.dropped["separation"] == 8 and fit.n_obs == len(panel)
    np.testing.assert_allclose(fit.coefficients.estimate, base.coefficients.estimate, rtol=1e-9)
    assert fit.alpha == pytest.approx(base.alpha, rel=1e-9)


def test_negative_outcome_is_refused(panel: pd.DataFrame) -> None:
    d = panel.assign(y_nb=panel.y_nb.where(panel.index != 5, -1))
    with pytest.raises(ConfigError, match=r"y_nb: is negative \(1 row.*model='negbin'"):
        _fit(d, "y_nb", "negbin")


def test_alpha_is_zero_at_the_boundary() -> None:
    y = np.array([1.0, 2.0, 1.0, 2.0])
    assert alpha_ml(y, np.full(4, 1.5)) == 0.0  # variance below the mean
    t = dispersion_test(y, np.full(4, 1.5))
    assert t["alpha"] < 0 and t["p_value"] > 0.5


def _set_panel(rng: np.random.Generator, n_sets: int, k: int, pool: int | None) -> pd.DataFrame:
    """Matched sets (one treated, ``k`` controls each weighted 1/k, as the study's panel) over
    12 months, the counts NB2 with month-to-month gamma noise, controls shared when drawn from
    ``pool``."""
    months = 12
    n_people = pool if pool is not None else n_sets * k
    rate = rng.gamma(2.0, 0.5, n_people)[:, None] * rng.gamma(0.5, 2.0, (n_people, months))
    counts = rng.poisson(rate)
    ctrl = rng.integers(0, n_people, (n_sets, k)) if pool else np.arange(n_people).reshape(-1, k)
    t_rate = rng.gamma(2.0, 0.5, n_sets)[:, None] * rng.gamma(0.5, 2.0, (n_sets, months))
    y_t = rng.poisson(t_rate * np.where(np.arange(months) >= 6, 0.8, 1.0))
    s, j = np.repeat(np.arange(n_sets), months), np.tile(np.arange(months), n_sets)
    t_rows = pd.DataFrame(
        {"unit": s, "set": s, "person": n_people + s, "treated": 1.0, "month": j, "w": 1.0}
    )
    t_rows["y"] = y_t.ravel().astype(float)
    pair = np.repeat(np.arange(n_sets * k), months)
    jc = np.tile(np.arange(months), n_sets * k)
    who = ctrl.ravel()[pair]
    c_rows = pd.DataFrame(
        {"unit": n_sets + pair, "set": pair // k, "person": who, "treated": 0.0, "month": jc}
    )
    c_rows["w"], c_rows["y"] = 1.0 / k, counts[who, jc].astype(float)
    panel = pd.concat([t_rows, c_rows], ignore_index=True)
    panel["post_treated"] = ((panel.month >= 6) & (panel.treated == 1)).astype(float)
    return panel


def test_matched_two_way_variance_uses_the_nb2_weights() -> None:
    """No shared controls: the two-way (set, person) variance of fit_matched is the set-clustered
    CRV1 of the NB2 working fit (pyfixest) without its (N-1)/(N-K) factor (K = 1 + 12)."""
    panel = _set_panel(np.random.default_rng(5), 400, 3, None)
    one = fit_fe(
        panel,
        outcome="y",
        regressors=["post_treated"],
        fe=["unit", "month"],
        model="negbin",
        cluster="set",
        weights="w",
    )
    assert one.alpha is not None and one.alpha > 0.1 and one.n_clusters == 400
    two = fit_matched(panel, "y", ["post_treated"], "negbin")
    n = one.n_obs
    factor = np.sqrt((n - 1) / (n - 13))
    assert two.term("post_treated")["estimate"] == pytest.approx(
        one.term("post_treated")["estimate"], rel=1e-7
    )  # fit_matched's projections stop at 1e-8, fit_fe's at 1e-10
    assert two.term("post_treated")["se"] * factor == pytest.approx(
        one.term("post_treated")["se"], rel=1e-6
    )
    # The Poisson weights would give another answer: the NB2 ones are used.
    b = np.array([one.term("post_treated")["estimate"]])
    v_pois = two_way_vcov(panel, "y", ["post_treated"], b, "poisson", None, "w")
    assert abs(np.sqrt(v_pois[0, 0]) / two.term("post_treated")["se"] - 1) > 0.01
    with pytest.raises(ConfigError, match="alpha"):
        two_way_vcov(panel, "y", ["post_treated"], b, "negbin", None, "w")


def test_matched_shared_controls_widen_the_nb2_interval() -> None:
    panel = _set_panel(np.random.default_rng(6), 400, 4, 500)
    one = fit_fe(
        panel,
        outcome="y",
        regressors=["post_treated"],
        fe=["unit", "month"],
        model="negbin",
        cluster="set",
        weights="w",
    )
    two = fit_matched(panel, "y", ["post_treated"], "negbin")
    assert two.vcov == "CRV1 two-way" and two.alpha == pytest.approx(one.alpha, rel=1e-6)
    assert two.term("post_treated")["se"] > 1.05 * one.term("post_treated")["se"]
    out = coef(two, "post_treated")
    assert out["rate_ratio"] == pytest.approx(np.exp(out["estimate"]))


def test_matched_study_on_the_synthetic_population(synth_dir: Path) -> None:
    """The synthetic emergency admissions are Poisson given a persistent frailty (which the unit
    effects absorb) times a transient quarterly log-normal shock (SD ``SHOCK_SD``): the panel
    is overdispersed, by less than the shock's whole ``exp(SD^2) - 1`` (its persistent part
    goes into the unit effects), and NB2 and Poisson estimate the same effect. The matched
    panel's fits (careval.impact.fastfe) carry no dispersion test (their controls are
    weighted)."""
    from careval.synthetic.activity import SHOCK_SD

    st = ImpactSettings()
    window = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
    with Dataset(synth_dir) as ds:
        study = study_population(ds, window, st, None)
    res = match(study.frame, "treated", covariates(study.frame), st.match)
    panel = matched_panel(study, res, st, ["emergency_admissions"])
    regs = ["impl", "post", "impl_treated", "post_treated"]
    pois = fit_matched(panel, "emergency_admissions", regs, "poisson")
    nb = fit_matched(panel, "emergency_admissions", regs, "negbin")
    assert pois.overdispersion is None
    assert nb.alpha is not None and 0.05 < nb.alpha < np.expm1(SHOCK_SD**2)
    a, b = coef(nb, "post_treated"), coef(pois, "post_treated")
    assert abs(a["estimate"] - b["estimate"]) < 0.5 * b["se"]


def test_negbin_outcome_settings_from_a_spec() -> None:
    text = "[[outcomes]]\nname = 'ae_visits'\ntable = 'ae_attendances'\nmodel = 'negbin'\n"
    spec = loads(text).spec
    assert resolve(spec).impact.outcomes[0].model == "negbin"
    assert OutcomeSettings(name="ae_visits", table="ae_attendances", model="negbin").model
    with pytest.raises(ConfigError, match=r"outcomes\[0\]\.model: 'nb' is not one of .*'negbin'"):
        loads(text.replace("'negbin'", "'nb'"))
