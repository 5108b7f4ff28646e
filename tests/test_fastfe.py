"""fit_points gives pyfixest's estimates and estimation sample (fit_fe) without its overhead.

Its two-fixed-effect fits are exact (Newton's method for Poisson, exact absorption for least
squares: careval.impact.absorb), so their estimates are compared with fit_fe converged to
``TIGHT``; pyfixest at the study's tolerance stops within about 1e-8 of them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.impact.fastfe import fit_points
from careval.impact.fe import FEFit, fit_fe
from careval.impact.matching import match
from careval.impact.outcomes import FIT_TOL, fit_matched, matched_panel
from careval.impact.population import covariates, study_population
from careval.impact.settings import ImpactSettings

REGS = ["impl", "post", "impl_treated", "post_treated"]
WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
TIGHT = 1e-13  # fit_fe's tolerance for the reference estimates


def _panel(seed: int, n_sets: int = 150) -> pd.DataFrame:
    """A panel shaped like the matched one: per set a treated and a control unit over months
    around a staggered entry; counts with unit frailty (many units never have an event, so the
    fixed effects separate them) and a continuous cost."""
    rng = np.random.default_rng(seed)
    months = 18
    entry = rng.integers(30, 50, n_sets)
    k = np.tile(np.arange(-6, months - 6), 2 * n_sets)
    s = np.repeat(np.arange(n_sets), 2 * months)
    treated = np.tile(np.repeat([1.0, 0.0], months), n_sets)
    d = pd.DataFrame(
        {
            "set": s,
            "unit": 2 * s + treated.astype(int),
            "treated": treated,
            "k": k,
            "month": entry[s] + k,
        }
    )
    d["impl"] = ((d.k >= 0) & (d.k < 3)).astype(float)
    d["post"] = (d.k >= 3).astype(float)
    d["impl_treated"] = d.impl * d.treated
    d["post_treated"] = d.post * d.treated
    frailty = rng.gamma(0.4, 0.2, 2 * n_sets)[d.unit]
    rate = frailty * np.exp(0.3 * d.impl - 0.2 * d.post_treated + 0.01 * (d.month - 40))
    d["count"] = rng.poisson(rate).astype(float)
    d["cost"] = 50 * frailty + 20 * d.post - 15 * d.post_treated + rng.normal(0, 10, len(d))
    return d


def _same(got: FEFit, want: FEFit, inference: bool = True) -> None:
    a = got.coefficients.set_index("term")
    b = want.coefficients.set_index("term")
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-9, atol=0)
    if want.model == "poisson":
        np.testing.assert_allclose(a.rate_ratio, b.rate_ratio, rtol=1e-9, atol=0)
    assert got.n_obs == want.n_obs and got.n_dropped == want.n_dropped
    assert dict(got.dropped) == dict(want.dropped)
    assert got.collinear == want.collinear
    assert got.converged == want.converged
    assert got.n_clusters == want.n_clusters
    if inference:
        assert got.inference == want.inference


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("model", "y"), [("poisson", "count"), ("ols", "cost")])
def test_estimates_and_sample_equal_pyfixest(seed: int, model: str, y: str) -> None:
    d = _panel(seed)
    kw = {"outcome": y, "regressors": REGS, "fe": ["unit", "month"], "model": model}
    want = fit_fe(d, cluster="set", tol=TIGHT, **kw)  # type: ignore[arg-type]
    got = fit_points(d, y, REGS, model, ("unit", "month"), tol=FIT_TOL, cluster="set")  # type: ignore[arg-type]
    _same(got, want)
    if model == "poisson":
        assert got.dropped["separation"] > 0  # never-event units are in the panel
    assert got.coefficients[["se", "ci_low", "p_value"]].isna().all().all()
    assert d.equals(_panel(seed))  # the input is not modified


@pytest.mark.parametrize("seed", [7, 8])
@pytest.mark.parametrize(("model", "y"), [("poisson", "count"), ("ols", "cost")])
def test_weighted_estimates_equal_pyfixest(seed: int, model: str, y: str) -> None:
    """Analytic weights (the matched study's 1/k on each control): pyfixest's weighted fit."""
    d = _panel(seed)
    d["w"] = np.where(d.treated == 1, 1.0, 1.0 / (1 + d["set"] % 5))
    kw = {"outcome": y, "regressors": REGS, "fe": ["unit", "month"], "model": model}
    want = fit_fe(d, cluster="set", weights="w", tol=TIGHT, **kw)  # type: ignore[arg-type]
    got = fit_points(d, y, REGS, model, ("unit", "month"), tol=FIT_TOL, cluster="set", weights="w")  # type: ignore[arg-type]
    _same(got, want)
    plain = fit_points(d, y, REGS, model, ("unit", "month"), tol=FIT_TOL)  # type: ignore[arg-type]
    diff = got.coefficients.estimate.to_numpy() - plain.coefficients.estimate.to_numpy()
    assert np.abs(diff).max() > 1e-4  # the weights matter here
    assert got.weights == "w"


@pytest.mark.parametrize(("model", "y"), [("poisson", "count"), ("ols", "cost")])
def test_collinear_terms_singletons_separation_and_missing_rows_as_pyfixest(
    model: str, y: str
) -> None:
    d = _panel(4)
    d["treated_copy"] = d.treated  # constant within unit: collinear with the unit effects
    d["impl_post"] = d.impl + d.post  # collinear with impl and post
    d.loc[d.unit == 7, y] = 0.0  # a separated unit
    d = d[~((d.unit == 9) & (d.k != 0))]  # a singleton unit
    d.loc[d.index[[5, 40]], "post"] = np.nan  # missing values
    d.loc[d.index[60], "month"] = np.nan
    d = d.reset_index(drop=True)
    regs = ["treated_copy", *REGS, "impl_post"]
    want = fit_fe(
        d,
        outcome=y,
        regressors=regs,
        fe=["unit", "month"],
        model=model,  # type: ignore[arg-type]
        tol=TIGHT,
    )
    got = fit_points(d, y, regs, model, ("unit", "month"), tol=FIT_TOL)  # type: ignore[arg-type]
    _same(got, want)
    assert got.collinear == ("treated_copy", "impl_post")
    assert got.dropped["missing"] == 3 and got.dropped["singleton"] >= 1
    assert (got.dropped["separation"] > 0) == (model == "poisson")


def test_three_fixed_effects() -> None:
    d = _panel(5)
    d["arm_month"] = d.treated.astype(int) * 1000 + d.month
    kw = {"outcome": "count", "regressors": REGS, "model": "poisson", "tol": 1e-10}
    want = fit_fe(d, fe=["unit", "month", "arm_month"], **kw)  # type: ignore[arg-type]
    got = fit_points(d, "count", REGS, "poisson", ("unit", "month", "arm_month"), tol=1e-10)
    _same(got, want)


def test_other_models_and_bad_input_go_to_fit_fe() -> None:
    d = _panel(6)
    with pytest.raises(ConfigError) as ours:
        fit_points(d, "count", REGS, "logit", cluster="set")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as theirs:
        fit_fe(d, outcome="count", regressors=REGS, fe=["unit", "month"], model="logit")  # type: ignore[arg-type]
    assert str(ours.value) == str(theirs.value)
    d.loc[3, "count"] = -1.0
    with pytest.raises(ConfigError, match="is negative"):
        fit_points(d, "count", REGS, "poisson")
    d.loc[3, "count"] = np.inf
    with pytest.raises(ConfigError, match="is infinite"):
        fit_points(d, "count", REGS, "ols")
    d["count"] = 0.0
    with pytest.raises(ConfigError, match="every value is zero"):
        fit_points(d, "count", REGS, "poisson")
    with pytest.raises(ConfigError, match="every regressor .* is collinear"):
        fit_points(d, "cost", ["treated"], "ols")


@pytest.fixture(scope="module")
def matched(synth_dir: Path) -> pd.DataFrame:
    """The matched panel of the small synthetic population (the default study)."""
    st = ImpactSettings()
    names = [o.name for o in st.outcomes]
    with Dataset(synth_dir) as ds:
        study = study_population(ds, WINDOW, st, None)
    res = match(study.frame, "treated", covariates(study.frame), st.match)
    return matched_panel(study, res, st, names)


@pytest.mark.parametrize(
    ("outcome", "model"), [("emergency_admissions", "poisson"), ("emergency_cost", "ols")]
)
def test_fit_matched_estimates_equal_pyfixest_on_the_matched_panel(
    matched: pd.DataFrame, outcome: str, model: str
) -> None:
    panel = matched
    got = fit_matched(panel, outcome, REGS, model)  # type: ignore[arg-type]
    want = fit_fe(
        panel,
        outcome=outcome,
        regressors=REGS,
        fe=["unit", "month"],
        model=model,  # type: ignore[arg-type]
        cluster="set",
        weights="w",
        tol=TIGHT,
    )
    _same(got, want, inference=False)  # fit_matched's intervals are normal
    assert got.inference == "normal"
    assert got.n_obs > 1000 and (got.dropped["separation"] > 0) == (model == "poisson")
    c = got.coefficients.set_index("term")
    assert (c.se > 0).all() and (c.ci_low < c.estimate).all()
    if model == "poisson":
        np.testing.assert_allclose(c.rr_ci_low, np.exp(c.ci_low))


def test_fitting_leaves_the_root_logger_alone() -> None:
    """pyfixest 0.60 calls logging.basicConfig(level=INFO) on import; the first import through
    fit_points (or the two-way variance) must undo it, or every library's INFO messages reach
    the user's terminal (matplotlib's did, in the demo). A fresh interpreter, so the import is
    the first."""
    import subprocess
    import sys

    code = (
        "import logging, numpy as np, pandas as pd\n"
        "from careval.impact.fastfe import fit_points\n"
        "d = pd.DataFrame({'unit': np.repeat(np.arange(40), 4), 'month': np.tile(range(4), 40)})\n"
        "d['x'] = np.random.default_rng(0).normal(size=160)\n"
        "d['y'] = np.random.default_rng(1).poisson(1.0, 160).astype(float)\n"
        "fit_points(d, 'y', ['x'], 'poisson', ('unit', 'month'))\n"
        "root = logging.getLogger()\n"
        "print(root.level, len(root.handlers))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(logging.WARNING), "0"]
