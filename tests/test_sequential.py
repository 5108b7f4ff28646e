"""Group-sequential boundaries: published tables, an independent multivariate-normal
integration (scipy's Genz algorithm) and a Monte Carlo check under Brownian motion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from careval.errors import ConfigError
from careval.impact.sequential import (
    boundaries,
    crossing_probability,
    planned_information,
    spent,
)

FIVE = np.arange(1, 6) / 5
# Lan-DeMets O'Brien-Fleming type, five equally spaced looks, two-sided 0.05 (symmetric, 0.025
# a side): Reboussin, DeMets, Kim & Lan (2000), Controlled Clinical Trials 21:190-207, as the
# ldbounds R package prints them; the same as gsDesign's sfLDOF at one-sided 0.025.
OBF_5 = (4.877, 3.357, 2.680, 2.290, 2.031)
# Pocock type, the same looks (ldbounds, iuse=2).
POCOCK_5 = (2.438, 2.427, 2.410, 2.397, 2.386)


def test_obrien_fleming_five_looks_match_the_published_table() -> None:
    b = boundaries(FIVE, alpha=0.05, spending="obrien_fleming", sides=2)
    np.testing.assert_allclose(b.critical, OBF_5, atol=6e-4)
    one = boundaries(FIVE, alpha=0.025, sides=1)  # one side of the same design
    np.testing.assert_allclose(one.critical, OBF_5, atol=6e-4)


def test_pocock_five_looks_match_the_published_table() -> None:
    b = boundaries(FIVE, alpha=0.05, spending="pocock", sides=2)
    np.testing.assert_allclose(b.critical, POCOCK_5, atol=6e-4)


def _mvn_continue(t: np.ndarray, c: np.ndarray, sides: int) -> float:
    """P(no crossing at any look) by scipy's multivariate normal CDF (Genz), corr sqrt(ti/tj)."""
    corr = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    mvn = stats.multivariate_normal(mean=np.zeros(t.size), cov=corr)
    lower = -c if sides == 2 else np.full(t.size, -np.inf)
    return float(mvn.cdf(c, lower_limit=lower, rng=np.random.default_rng(3)))


@pytest.mark.parametrize("spending", ["obrien_fleming", "pocock"])
@pytest.mark.parametrize("sides", [1, 2])
def test_unequal_looks_spend_as_the_multivariate_normal_says(spending: str, sides: int) -> None:
    t = np.array([0.13, 0.31, 0.44, 0.7, 0.83, 1.0])
    b = boundaries(t, alpha=0.05, spending=spending, sides=sides)  # type: ignore[arg-type]
    for k in range(1, t.size + 1):  # after each look, 1 - spent so far
        p = _mvn_continue(t[:k], b.critical[:k], sides)
        assert p == pytest.approx(1 - b.spent[k - 1], abs=2e-4)
    assert b.spent[-1] == pytest.approx(0.05)


def test_brownian_motion_crosses_with_probability_alpha() -> None:
    """20,000 seeded Brownian paths at 24 monthly looks: ever crossing = alpha +- MC error."""
    t = np.linspace(1 / 24, 1, 24) ** 1.3  # uneven increments, as accrual gives
    b = boundaries(t, alpha=0.05, sides=2)
    rng = np.random.default_rng(20260)
    n = 20_000
    steps = rng.standard_normal((n, t.size)) * np.sqrt(np.diff(t, prepend=0.0))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    ever = (np.abs(z) >= b.critical).any(axis=1).mean()
    se = np.sqrt(0.05 * 0.95 / n)
    assert abs(ever - 0.05) < 3 * se
    assert crossing_probability(t, b.critical, sides=2) == pytest.approx(0.05, abs=1e-6)
    one = boundaries(t, alpha=0.05, sides=1)
    assert (-z >= one.critical).any(axis=1).mean() == pytest.approx(0.05, abs=3 * se)


def test_power_under_drift_agrees_with_simulation() -> None:
    t = FIVE
    b = boundaries(t, alpha=0.05, sides=1)
    drift = -2.5  # E[Z_k] = drift sqrt(t_k): a benefit
    rng = np.random.default_rng(7)
    n = 20_000
    s = np.cumsum(rng.standard_normal((n, 5)) * np.sqrt(0.2) + drift * 0.2, axis=1)
    sim = (-s / np.sqrt(t) >= b.critical).any(axis=1).mean()
    exact = crossing_probability(t, b.critical, sides=1, drift=drift)
    assert exact == pytest.approx(sim, abs=3 * np.sqrt(sim * (1 - sim) / n))


def test_a_single_look_is_the_fixed_test_and_spending_reaches_alpha() -> None:
    assert boundaries([1.0], 0.05).critical[0] == pytest.approx(stats.norm.isf(0.025))
    assert boundaries([1.0], 0.05, sides=1).critical[0] == pytest.approx(stats.norm.isf(0.05))
    assert float(spent(1.0, 0.05, "obrien_fleming")) == pytest.approx(0.05)
    assert float(spent(1.0, 0.05, "pocock")) == pytest.approx(0.05)
    # A look past the planned information is the final one and spends what is left.
    b = boundaries([0.5, 1.4], 0.05)
    assert b.fractions[-1] == 1.0 and b.spent[-1] == pytest.approx(0.05)


def test_planned_information_is_the_fixed_sample_formula() -> None:
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    assert planned_information(-0.1, 0.05, 0.8) == pytest.approx((z / np.log(0.9)) ** 2)


@pytest.mark.parametrize(
    ("fractions", "words"),
    [([0.5, 0.4], "increase"), ([0.0, 0.5], "positive"), ([1.0, 1.2], "follow the final")],
)
def test_bad_fractions_are_refused(fractions: list[float], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        boundaries(fractions)
