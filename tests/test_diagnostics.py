"""The diagnostics that gate an estimate (careval.impact.diagnostics), against independent
computations: the power of a z-test (scipy), statsmodels' Wald test, and the preference score
written from Walker et al.'s definition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from careval.errors import ConfigError
from careval.impact.diagnostics import (
    DiagnosticSettings,
    diagnose,
    equipoise,
    failure_text,
    mdrr,
    wald_test,
)


@pytest.mark.parametrize("se", [0.02, 0.1, 0.3])
def test_mdrr_is_the_rate_ratio_detected_with_80_percent_power(se: float) -> None:
    """At the true log rate ratio log(MDRR), a two-sided 5% z-test rejects with power 0.8
    (the power computed directly from the normal distribution, both tails)."""
    b = math.log(mdrr(se))
    z = stats.norm.ppf(0.975)
    power = stats.norm.sf(z - b / se) + stats.norm.cdf(-z - b / se)
    assert power == pytest.approx(0.80, abs=1e-4)
    assert math.isnan(mdrr(float("nan"))) and math.isnan(mdrr(0.0))


def test_mdrr_of_a_separated_fit_is_infinite() -> None:
    """A standard error in the hundreds (the Eunomia run's separated fit: about 390) detects no
    ratio; just below the float range the formula still holds."""
    assert mdrr(390.0) == math.inf
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert math.log(mdrr(700.0 / z)) == pytest.approx(700.0, rel=1e-12)


def test_wald_test_matches_statsmodels() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = x @ np.array([0.1, -0.05, 0.0]) + rng.normal(size=400)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    ours = wald_test(fit.params[1:], fit.cov_params()[1:, 1:])
    theirs = fit.wald_test(np.eye(4)[1:], scalar=True, use_f=False)
    assert ours["statistic"] == pytest.approx(float(theirs.statistic), rel=1e-10)
    assert ours["p_value"] == pytest.approx(float(theirs.pvalue), rel=1e-8)
    assert ours["df"] == 3


def _walker_preference(ps: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Walker et al. (2013): ln(F / (1 - F)) = ln(ps / (1 - ps)) - ln(P / (1 - P))."""
    p = treated.mean()
    odds = (ps / (1 - ps)) / (p / (1 - p))
    return odds / (1 + odds)


def test_equipoise_is_the_share_with_preference_in_the_band() -> None:
    rng = np.random.default_rng(5)
    t = (rng.random(5000) < 0.1).astype(int)
    ps = np.clip(rng.beta(1, 9, 5000) + 0.1 * t, 1e-3, 0.999)
    f = _walker_preference(ps, t)
    expected = float(((f >= 0.3) & (f <= 0.7)).mean())
    assert equipoise(ps, t) == pytest.approx(expected, abs=1e-12)
    # Scores all at the treated share: everyone at preference 0.5, in equipoise.
    assert equipoise(np.full(5000, t.mean()), t) == 1.0
    assert math.isnan(equipoise(ps, np.zeros(5000, int)))


def test_diagnose_fails_exactly_the_values_beyond_their_thresholds() -> None:
    th = DiagnosticSettings()
    ok = {
        "mdrr": 1.3,
        "ease": 0.05,
        "max_abs_smd": 0.04,
        "equipoise": 0.6,
        "pretrend_p": 0.4,
        "median_follow_up": 22.0,
    }
    assert diagnose(ok, th)["for_decisions"] is True
    bad = ok | {"max_abs_smd": 0.246, "pretrend_p": 0.01}
    d = diagnose(bad, th)
    assert d["failed"] == ["max_abs_smd", "pretrend_p"] and d["for_decisions"] is False
    text = failure_text(d)
    assert text.startswith("largest absolute standardised difference after matching 0.246")
    missing = diagnose({"mdrr": float("nan"), "ease": None}, th)
    assert missing["for_decisions"] is True
    assert {c["status"] for c in missing["checks"]} == {"not assessed"}
    # At the threshold passes: the rule is "at most" / "at least".
    edge = diagnose({"max_abs_smd": 0.1, "equipoise": 0.2}, th)
    assert edge["failed"] == []


def test_a_significant_pretrend_fails_only_when_it_is_material() -> None:
    """The demo's case: 20,000 care-planned, pre-entry bins within 4% of the controls, joint
    test p = 0.023. Significant but immaterial passes; 8% fails; unknown size (a panel without
    a natural scale) falls back to the test alone."""
    th = DiagnosticSettings()
    small = diagnose({"pretrend_p": 0.023, "pretrend_change": 0.04}, th)
    assert small["failed"] == []
    check = next(c for c in small["checks"] if c["diagnostic"] == "pretrend_p")
    assert check["status"] == "pass" and check["largest_change"] == 0.04
    big = diagnose({"pretrend_p": 0.023, "pretrend_change": 0.08}, th)
    assert big["failed"] == ["pretrend_p"]
    assert "with a pre-entry difference of 8.0% (more than 5%)" in failure_text(big)
    assert diagnose({"pretrend_p": 0.023}, th)["failed"] == ["pretrend_p"]
    assert diagnose({"pretrend_p": 0.3, "pretrend_change": 0.5}, th)["failed"] == []
    strict = DiagnosticSettings(max_pretrend_change=0.01)
    assert diagnose({"pretrend_p": 0.023, "pretrend_change": 0.04}, strict)["failed"] == [
        "pretrend_p"
    ]


def test_thresholds_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_mdrr must be above 1"):
        DiagnosticSettings(max_mdrr=0.9)
    with pytest.raises(ConfigError, match="min_equipoise must be from 0 to below 1"):
        DiagnosticSettings(min_equipoise=1.5)
    assert DiagnosticSettings.from_dict({"max_abs_smd": 0.2}).max_abs_smd == 0.2


def test_pretrend_and_placebo_on_a_panel_without_effect() -> None:
    """On a matched-style panel where treated and control units share every month's rate,
    neither the pre-trend test nor the placebo finds anything (p > 0.01, RR near 1), and a
    pre-entry rise planted in the treated arm is found by both."""
    from careval.impact.checks import placebo, pretrend
    from careval.impact.settings import ImpactSettings

    rng = np.random.default_rng(11)
    n_sets, ks = 600, np.arange(-24, 12)
    rows = []
    for s in range(n_sets):
        for k in ks:
            for treated in (1, 0):
                rows.append((s, 2 * s + treated, treated, k, 200 + s % 24 + k))
    p = pd.DataFrame(rows, columns=["set", "unit", "treated", "k", "month"])
    p["person"] = np.where(p.treated == 1, p.set, p.set + 10_000)
    p["w"] = 1.0
    rate = 0.3 * np.ones(len(p))
    p["y"] = rng.poisson(rate).astype(float)
    st = ImpactSettings()
    flat = pretrend(p, "y", "poisson", st)
    assert flat["bins"] == 7 and flat["p_value"] > 0.01 and flat["max_change"] < 0.2
    pl = placebo(p, "y", "poisson", st)
    assert pl is not None and 0.85 < pl["rate_ratio"] < 1.15
    assert pl["rate_ratio_ci_low"] < 1 < pl["rate_ratio_ci_high"]
    rise = (p.treated == 1) & (p.k >= -12) & (p.k < 0)
    p.loc[rise, "y"] = rng.poisson(0.3 * 1.5, int(rise.sum()))
    risen = pretrend(p, "y", "poisson", st)
    assert risen["p_value"] < 1e-6 and 0.3 < risen["max_change"] < 0.7  # planted: 1.5
    moved = placebo(p, "y", "poisson", st)
    assert moved is not None and moved["rate_ratio_ci_low"] > 1.2
