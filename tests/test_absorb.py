"""Exact absorption of unit and month effects and Poisson by Newton's method (careval.impact.absorb)
against pyfixest: its demeaner and fepois converged far tighter than the study asks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.impact import absorb
from careval.impact.absorb import Patterns, UnitMonth, poisson
from careval.impact.fe import FEFit, _pyfixest, fit_fe

TIGHT = 1e-13
FIXTURES = Path(__file__).parent / "fixtures" / "absorb"


def _demean(x: np.ndarray, u: np.ndarray, m: np.ndarray, v: np.ndarray) -> np.ndarray:
    _pyfixest()
    from pyfixest.estimation import demean

    out, ok = demean(x, np.column_stack([u, m]).astype(np.uint64), v, tol=TIGHT, maxiter=100_000)
    assert ok
    return np.asarray(out)


def _panel(seed: int, n_units: int = 400, weights: str = "unit") -> pd.DataFrame:
    """Units of a staggered study over 40 months, sorted by unit and month: each from its entry
    minus 6 months to an end (death or the data's end), many ending together, so many units
    share their rows' pattern; treated units' effect terms; counts with unit frailty, some units
    never with an event. ``weights``: "unit" (1 for the treated, 1/k for controls, as the
    matched panel), "row" (varying within units) or "none"."""
    rng = np.random.default_rng(seed)
    entry = rng.integers(8, 30, n_units)
    end = np.where(rng.random(n_units) < 0.7, 39, rng.integers(10, 39, n_units))
    end = np.maximum(end, entry - 4)
    rows = [(i, t) for i in range(n_units) for t in range(entry[i] - 6, end[i] + 1)]
    d = pd.DataFrame(rows, columns=["unit", "month"])
    treated = (np.arange(n_units) % 3 == 0).astype(float)
    d["treated"] = treated[d.unit]
    k = d.month - entry[d.unit]
    d["post"] = (k >= 0).astype(float)
    d["post_treated"] = d.post * d.treated
    d["late_treated"] = ((k >= 6) & (d.treated == 1)).astype(float)
    frail = rng.gamma(0.6, 0.3, n_units)[d.unit]
    rate = frail * np.exp(0.02 * (d.month - 20) + 0.2 * d.post - 0.25 * d.post_treated)
    d["y"] = rng.poisson(rate).astype(float)
    if weights == "unit":
        d["w"] = np.where(d.treated == 1, 1.0, 1.0 / (1 + d.unit % 4))
    elif weights == "row":
        d["w"] = 0.5 + rng.random(len(d))
    else:
        d["w"] = 1.0
    return d


REGS = ["post", "post_treated", "late_treated"]


def _with_events(d: pd.DataFrame) -> pd.DataFrame:
    """Rows of units with an event (Poisson's unit effect of the others is minus infinity)."""
    has = d.groupby("unit").y.transform("sum") > 0
    d = d[has].reset_index(drop=True)
    d["unit"] = pd.factorize(d.unit, sort=True)[0]
    return d


def _reference(d: pd.DataFrame, regs: list[str], tol: float) -> FEFit:
    """pyfixest's weighted Poisson fit with unit and month effects, converged to ``tol``."""
    return fit_fe(
        d, outcome="y", regressors=regs, fe=["unit", "month"], model="poisson", weights="w", tol=tol
    )


def _fe(d: pd.DataFrame) -> UnitMonth:
    return UnitMonth(pd.factorize(d.unit, sort=True)[0], pd.factorize(d.month, sort=True)[0])


@pytest.mark.parametrize("seed", [1, 2])
def test_residualising_is_pyfixest_demeaning_converged(seed: int) -> None:
    d = _panel(seed, weights="row").sample(frac=1.0, random_state=seed)  # any row order
    x = np.column_stack([d[REGS].to_numpy(), np.random.default_rng(seed).normal(size=len(d))])
    fe = _fe(d)
    v = d.w.to_numpy()
    got = fe.residualize(x, v)
    want = _demean(x, fe.unit, fe.month, v)
    np.testing.assert_allclose(got, want, atol=1e-9)
    # the residuals are orthogonal to both sets of dummies with the weights
    for g in (fe.unit, fe.month):
        sums = np.column_stack([np.bincount(g, weights=v * got[:, j]) for j in range(4)])
        assert np.abs(sums).max() < 1e-9


@pytest.mark.parametrize("weights", ["unit", "row", "none"])
def test_poisson_is_the_maximum_likelihood_fit_fe_converges_to(weights: str) -> None:
    d = _with_events(_panel(3, weights=weights))
    fe = _fe(d)
    y, x, w = d.y.to_numpy(), d[REGS].to_numpy(), d.w.to_numpy()
    fit = poisson(fe, y, x, w)
    want = _reference(d, REGS, TIGHT)
    assert fit.converged and fit.iterations < 15
    np.testing.assert_allclose(fit.beta, want.coefficients.estimate, rtol=1e-9)
    # the score equations hold: every unit's and month's weighted residuals sum to zero
    r = w * (y - fit.mu)
    for g in (fe.unit, fe.month):
        assert np.abs(np.bincount(g, weights=r)).max() < 1e-8
    assert np.abs(x.T @ r).max() < 1e-8
    # X~: the regressors residualised with the fit's weights w mu
    np.testing.assert_allclose(fit.xtilde, _demean(x, fe.unit, fe.month, w * fit.mu), atol=1e-8)


def test_units_with_the_same_rows_are_one_pattern_and_the_answer_is_the_same() -> None:
    d = _with_events(_panel(4, n_units=600))
    fe = _fe(d)
    y, x, w = d.y.to_numpy(), d[REGS].to_numpy(), d.w.to_numpy()
    pt = Patterns.of(fe, w, list(x.T))
    assert not pt.weighted  # the weights are constant within units: not part of the pattern
    assert pt.fe.n_units < fe.n_units / 3 and pt.take.size < y.size / 3
    # each unit's rows are its pattern's rows
    np.testing.assert_array_equal(d.month.to_numpy(), d.month.to_numpy()[pt.take][pt.of_row])
    np.testing.assert_array_equal(x, x[pt.take][pt.of_row])
    fit = poisson(fe, y, x, w)
    # shuffled rows are not grouped (every unit is its own pattern): the same fit
    order = np.random.default_rng(0).permutation(y.size)
    fe_s = UnitMonth(fe.unit[order], fe.month[order])
    assert Patterns.of(fe_s, w[order], list(x[order].T)).fe.n_units == fe.n_units
    shuffled = poisson(fe_s, y[order], x[order], w[order])
    np.testing.assert_allclose(shuffled.beta, fit.beta, rtol=1e-10)
    np.testing.assert_allclose(shuffled.mu, fit.mu[order], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(shuffled.xtilde, fit.xtilde[order], atol=1e-9)


def test_means_of_given_coefficients() -> None:
    d = _with_events(_panel(5))
    fe = _fe(d)
    y, x, w = d.y.to_numpy(), d[REGS].to_numpy(), d.w.to_numpy()
    fit = poisson(fe, y, x, w)
    held = poisson(fe, y, x, w, beta=fit.beta)
    np.testing.assert_array_equal(held.beta, fit.beta)
    np.testing.assert_allclose(held.mu, fit.mu, rtol=1e-8)
    other = poisson(fe, y, x, w, beta=fit.beta + 0.1)
    r = w * (y - other.mu)  # the effects' score equations hold at the held coefficients
    assert np.abs(np.bincount(fe.unit, weights=r)).max() < 1e-8
    assert np.abs(np.bincount(fe.month, weights=r)).max() < 1e-8
    assert np.abs(x.T @ r).max() > 1e-2  # and the regressors' do not


def test_separation_by_a_regressor_stops_as_pyfixest() -> None:
    """A regressor whose rows never have an event: the estimate runs to minus infinity. Newton
    stops when the likelihood stops gaining (as IWLS's deviance criterion), with a large
    negative estimate and the other terms those of pyfixest."""
    d = _with_events(_panel(6))
    d["never"] = ((d.unit % 7 == 0) & (d.month % 5 == 0)).astype(float)
    d.loc[d.never == 1, "y"] = 0.0
    d = _with_events(d)
    regs = [*REGS, "never"]
    fit = poisson(_fe(d), d.y.to_numpy(), d[regs].to_numpy(), d.w.to_numpy())
    want = _reference(d, regs, 1e-10)
    assert fit.converged and fit.beta[-1] < -10
    assert want.coefficients.estimate.iloc[-1] < -5
    np.testing.assert_allclose(fit.beta[:-1], want.coefficients.estimate.iloc[:-1], rtol=1e-6)


def test_a_month_whose_events_are_only_in_units_ending_there() -> None:
    """A case from the small synthetic run (tests/fixtures/absorb/README.md): the means of given
    coefficients converge, finite, with every unit's and month's score equation holding."""
    f = np.load(FIXTURES / "sparse_last_month.npz")
    fe = UnitMonth(f["unit"], f["month"])
    fit = poisson(fe, f["y"], f["x"], f["w"], beta=f["beta"])
    assert fit.converged and np.isfinite(fit.mu).all() and np.isfinite(fit.xtilde).all()
    r = f["w"] * (f["y"] - fit.mu)
    assert np.abs(np.bincount(fe.unit, weights=r)).max() < 1e-9
    assert np.abs(np.bincount(fe.month, weights=r)).max() < 1e-9


def test_the_sparse_gram_is_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past _DENSE_CELLS units by months the months' Gram matrix is built sparse: the same
    residuals, on an unbalanced panel with weights."""
    rng = np.random.default_rng(3)
    n_units, n_months = 400, 30
    u = np.repeat(np.arange(n_units), rng.integers(1, n_months, n_units))
    m = np.concatenate([rng.permutation(n_months)[:c] for c in np.bincount(u)])
    x = rng.normal(size=(u.size, 3)) + m[:, None] * 0.1
    v = rng.uniform(0.2, 2.0, u.size)
    fe = UnitMonth(u, m)
    dense = fe.residualize(x, v)
    monkeypatch.setattr(absorb, "_DENSE_CELLS", 0)
    sparse = fe.residualize(x, v)
    np.testing.assert_allclose(sparse, dense, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.bincount(m, weights=v * sparse[:, 0]), 0, atol=1e-9)
    p = rng.permutation(u.size)  # rows in no order
    shuffled = UnitMonth(u[p], m[p]).residualize(x[p], v[p])
    np.testing.assert_allclose(shuffled, dense[p], rtol=1e-10, atol=1e-12)
