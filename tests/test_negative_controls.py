"""Negative controls and empirical calibration in the matched study, against the synthetic
population's planted truth: with a hidden confounder switched on (``hidden_bias``: unrecorded
decline that raises every hospital activity of the care-planned from their plan), the usual
interval misses the planted rate ratio, the calibrated one covers it, EASE rises and the
estimate is not for decisions; without it, the negative controls centre on no effect."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from careval.data.access import Dataset
from careval.impact.settings import ImpactSettings
from careval.impact.study import ImpactResult, evaluate_impact
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
PERSONS = 30_000
TRUTH = 0.9  # the default planted effect on emergency admissions


def _study(tmp: Path, hidden_bias: float) -> ImpactResult:
    generate(tmp, SynthSettings(persons=PERSONS, seed=5, hidden_bias=hidden_bias))
    with Dataset(tmp) as ds:
        return evaluate_impact(ds, WINDOW, ImpactSettings(sensitivity=False))


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> ImpactResult:
    return _study(tmp_path_factory.mktemp("biased") / "d", 1.0)


@pytest.fixture(scope="module")
def unbiased(tmp_path_factory: pytest.TempPathFactory) -> ImpactResult:
    return _study(tmp_path_factory.mktemp("unbiased") / "d", 0.0)


@pytest.mark.slow
def test_calibration_recovers_the_truth_that_hidden_bias_hides(
    biased: ImpactResult, unbiased: ImpactResult
) -> None:
    e = biased.outcomes["emergency_admissions"]
    assert e["rate_ratio_ci_low"] > TRUTH  # the usual interval misses the planted 0.9
    cal = e["calibrated"]
    assert cal["rate_ratio_ci_low"] <= TRUTH <= cal["rate_ratio_ci_high"]
    # The outcome negative controls carry the planted doubling; the placebo starts (before the
    # plan, so before the decline) do not.
    outcome_nc = [c for c in biased.negative_controls if c["kind"] == "outcome"]
    placebo = [c for c in biased.negative_controls if c["kind"] == "placebo"]
    assert len(outcome_nc) == 8 and len(placebo) >= 4
    geo = math.exp(sum(c["estimate"] for c in outcome_nc) / len(outcome_nc))
    assert 1.6 < geo < 2.5
    assert all(0.6 < c["rate_ratio"] < 1.6 for c in placebo)
    null = biased.empirical_null
    assert null["fitted"] and null["ease"] > 0.25 > unbiased.empirical_null["ease"]
    assert null["mean"] > unbiased.empirical_null["mean"] + 0.2
    assert e["diagnostics"]["for_decisions"] is False
    assert "ease" in e["diagnostics"]["failed"]
    assert any("not for decisions" in w for w in biased.warnings)


@pytest.mark.slow
def test_without_hidden_bias_the_controls_centre_on_no_effect(unbiased: ImpactResult) -> None:
    nc = unbiased.negative_controls
    excluding = [c for c in nc if c["rate_ratio_ci_low"] > 1 or c["rate_ratio_ci_high"] < 1]
    assert len(excluding) <= 2  # of 13; about 0.65 expected by chance
    e = unbiased.outcomes["emergency_admissions"]
    assert e["calibrated"]["rate_ratio_ci_low"] <= TRUTH <= e["calibrated"]["rate_ratio_ci_high"]
    # Calibration never narrows an interval.
    width = math.log(e["rate_ratio_ci_high"] / e["rate_ratio_ci_low"])
    cal_width = math.log(
        e["calibrated"]["rate_ratio_ci_high"] / e["calibrated"]["rate_ratio_ci_low"]
    )
    assert cal_width >= width - 1e-9
