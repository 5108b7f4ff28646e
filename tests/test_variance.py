"""Two-way (set, person) standard errors of the set-mean panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from careval.impact.fe import fit_fe
from careval.impact.variance import two_way_vcov


def _panel(rng: np.random.Generator, n_sets: int, k: int, pool: int | None):
    """Sets of one treated and ``k`` controls over 16 months (8 before entry); controls drawn
    from a pool of ``pool`` people (shared between sets) or unique when ``pool`` is None."""
    months = 16
    n_people = pool if pool is not None else n_sets * k
    frailty = rng.gamma(1.0, 0.05, n_people)
    counts = rng.poisson(frailty[:, None] * np.ones(months))  # one history per control person
    ctrl = (
        rng.integers(0, n_people, (n_sets, k)) if pool else np.arange(n_sets * k).reshape(n_sets, k)
    )
    t_rate = rng.gamma(1.0, 0.05, n_sets)
    rows, pieces = [], []
    for s in range(n_sets):
        y_t = rng.poisson(t_rate[s] * np.where(np.arange(months) >= 8, 0.9, 1.0))
        y_c = counts[ctrl[s]]
        for j in range(months):
            rows.append((2 * s + 1, s, s, 1.0, j, float(y_t[j])))
            pos = len(rows)
            rows.append((2 * s, s, -1, 0.0, j, float(y_c[:, j].mean())))
            pieces += [(pos, int(c), k, float(counts[c, j])) for c in ctrl[s]]
    panel = pd.DataFrame(rows, columns=["unit", "set", "person", "treated", "month", "y"])
    panel["post_treated"] = ((panel.month >= 8) & (panel.treated == 1)).astype(float)
    panel["post"] = (panel.month >= 8).astype(float)
    return panel, pd.DataFrame(pieces, columns=["row", "person", "n_alive", "y"])


@pytest.mark.parametrize("model", ["poisson", "ols"])
def test_without_shared_controls_it_is_clustering_on_the_set(model: str) -> None:
    panel, pieces = _panel(np.random.default_rng(1), 600, 3, None)
    fit = fit_fe(
        panel,
        outcome="y",
        regressors=["post_treated"],
        fe=["unit", "month"],
        model=model,
        cluster="set",
    )
    row = fit.coefficients.set_index("term").loc["post_treated"]
    v = two_way_vcov(panel, pieces, "y", ["post_treated"], np.array([row.estimate]), model)
    # pyfixest's CRV1 carries a (N-1)/(N-K) factor for OLS; the two agree to within it.
    assert np.sqrt(v[0, 0]) == pytest.approx(row.se, rel=0.02)


def test_shared_controls_widen_the_interval() -> None:
    panel, pieces = _panel(np.random.default_rng(2), 600, 5, 700)
    fit = fit_fe(
        panel,
        outcome="y",
        regressors=["post_treated"],
        fe=["unit", "month"],
        model="poisson",
        cluster="set",
    )
    row = fit.coefficients.set_index("term").loc["post_treated"]
    v = two_way_vcov(panel, pieces, "y", ["post_treated"], np.array([row.estimate]), "poisson")
    assert np.sqrt(v[0, 0]) > 1.05 * row.se
