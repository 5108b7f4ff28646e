"""Two-way (set, person) standard errors of the matched panel (one unit per treated person and
per (set, control), controls weighted 1/k), against pyfixest's weighted CRV1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from careval.impact.fe import fit_fe
from careval.impact.variance import two_way_vcov


def _panel(rng: np.random.Generator, n_sets: int, k: int, pool: int | None) -> pd.DataFrame:
    """Sets of one treated person and ``k`` controls over 16 months (8 before entry), in the
    matched panel's layout; controls drawn from a pool of ``pool`` people (shared between
    sets) or unique when ``pool`` is None. A third of the treated were controls of other sets
    first (the same person, so the same cluster)."""
    months = 16
    n_people = pool if pool is not None else n_sets * k
    frailty = rng.gamma(1.0, 0.05, n_people)
    counts = rng.poisson(frailty[:, None] * np.ones(months))  # one history per control person
    ctrl = (
        rng.integers(0, n_people, (n_sets, k)) if pool else np.arange(n_sets * k).reshape(n_sets, k)
    )
    t_rate = rng.gamma(1.0, 0.05, n_sets)
    y_t = rng.poisson(t_rate[:, None] * np.where(np.arange(months) >= 8, 0.9, 1.0))
    s, j = np.repeat(np.arange(n_sets), months), np.tile(np.arange(months), n_sets)
    t_person = np.where(np.arange(n_sets) % 3 == 0, ctrl[:, 0][::-1], n_people + np.arange(n_sets))
    t = pd.DataFrame({"unit": s, "set": s, "person": t_person[s], "treated": 1.0, "month": j})
    t["w"], t["y"] = 1.0, y_t.ravel().astype(float)
    pair = np.repeat(np.arange(n_sets * k), months)
    jc = np.tile(np.arange(months), n_sets * k)
    who = ctrl.ravel()[pair]
    c = pd.DataFrame({"unit": n_sets + pair, "set": pair // k, "person": who, "treated": 0.0})
    c["month"], c["w"], c["y"] = jc, 1.0 / k, counts[who, jc].astype(float)
    panel = pd.concat([t, c], ignore_index=True)
    panel["post_treated"] = ((panel.month >= 8) & (panel.treated == 1)).astype(float)
    return panel


def _se(panel: pd.DataFrame, model: str, two_way: bool) -> tuple[float, float]:
    """(our two-way SE, pyfixest's weighted CRV1 SE: on the set, or on set and person)."""
    fit = fit_fe(
        panel,
        outcome="y",
        regressors=["post_treated"],
        fe=["unit", "month"],
        model=model,  # type: ignore[arg-type]
        cluster="set",
        cluster2="person" if two_way else None,
        weights="w",
    )
    row = fit.term("post_treated")
    v = two_way_vcov(panel, "y", ["post_treated"], np.array([row["estimate"]]), model, None, "w")
    return float(np.sqrt(v[0, 0])), float(row["se"])


@pytest.mark.parametrize("model", ["poisson", "ols"])
@pytest.mark.parametrize("pool", [None, 700])
def test_it_is_pyfixests_weighted_two_way_crv1(model: str, pool: int | None) -> None:
    """pyfixest's CRV1 carries a (N-1)/(N-K) factor ours leaves out: they agree within it."""
    ours, theirs = _se(_panel(np.random.default_rng(2), 600, 5, pool), model, two_way=True)
    assert ours == pytest.approx(theirs, rel=1e-3)


def test_without_shared_controls_it_is_clustering_on_the_set() -> None:
    """Unique controls and treated people: every person sits in one set, so the two-way meat is
    the set's; only the treated who were controls elsewhere join two sets."""
    panel = _panel(np.random.default_rng(1), 600, 3, None)
    panel["person"] = np.where(panel.treated == 1, 10_000 + panel["set"], panel["person"])
    ours, theirs = _se(panel, "poisson", two_way=False)
    assert ours == pytest.approx(theirs, rel=1e-3)


def test_shared_controls_widen_the_interval() -> None:
    panel = _panel(np.random.default_rng(2), 600, 5, 700)
    ours, one_way = _se(panel, "poisson", two_way=False)
    assert ours > 1.05 * one_way


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("model", ["poisson", "ols"])
def test_the_fits_own_means_give_the_refitted_variance(model: str, nested: bool) -> None:
    """Given the fit's means or residuals (fastfe.estimate), the variance skips computing them
    again and treats rows outside the fit's sample as fitted exactly: the same covariance as
    computing them, here with singleton units (one row) and units whose outcome is always
    zero; with each unit one person (the matched panel) or not (scores then by row)."""
    from careval.impact.fastfe import estimate

    panel = _panel(np.random.default_rng(4), 400, 3, 500)
    panel["age"] = np.random.default_rng(5).normal(size=len(panel))  # a row-level regressor
    one = panel.groupby("unit").head(1).iloc[:30].assign(unit=lambda d: 10_000 + d.unit, y=1.0)
    zero = panel[panel.unit.isin(panel.unit.unique()[:20])].assign(
        unit=lambda d: 20_000 + d.unit, y=0.0
    )
    panel = pd.concat([panel, one, zero]).sort_values(["unit", "month"], ignore_index=True)
    if not nested:  # some units' first months are another person's
        panel.loc[panel.month == 0, "person"] = panel.person.max() + 1 + panel.unit % 7
    regs = ["age", "post_treated"]
    fit, means = estimate(panel, "y", regs, model, cluster="set", weights="w")  # type: ignore[arg-type]
    assert means is not None
    assert fit.dropped["singleton"] == 30
    assert fit.dropped["separation"] >= (zero.shape[0] if model == "poisson" else 0)
    assert list(fit.coefficients.term) == regs
    beta = fit.coefficients.estimate.to_numpy()
    refit = two_way_vcov(panel, "y", regs, beta, model, None, "w")
    own = two_way_vcov(panel, "y", regs, beta, model, None, "w", means)
    np.testing.assert_allclose(own, refit, rtol=1e-8)
