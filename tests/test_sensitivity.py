"""The matched study's sensitivity table (careval.impact.sensitivity) on the shared small
population: the study's own design reproduces its headline exactly, and each alternative is
the design it names."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from careval.data.access import Dataset
from careval.impact.settings import ImpactSettings
from careval.impact.study import ImpactResult, evaluate_impact

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))


@pytest.fixture(scope="module")
def result(synth_dir: Path) -> ImpactResult:
    with Dataset(synth_dir) as ds:
        return evaluate_impact(ds, WINDOW, ImpactSettings(negative_controls=()))


def test_the_design_as_analysed_reproduces_the_headline(result: ImpactResult) -> None:
    first = result.sensitivity[0]
    e = result.outcomes["emergency_admissions"]
    assert first["design"] == "as analysed" and first["estimated"]
    assert first["rate_ratio"] == pytest.approx(e["rate_ratio"], rel=1e-12)
    assert first["rate_ratio_ci_low"] == pytest.approx(e["rate_ratio_ci_low"], rel=1e-12)
    assert first["treated_matched"] == result.attrition["treated_matched"]
    assert first["controls_matched"] == result.attrition["controls_matched"]


def test_each_alternative_is_the_design_it_names(result: ImpactResult) -> None:
    st = result.settings.match
    rows = {r["design"]: r for r in result.sensitivity}
    assert {"caliper 0.1 SD of the score", "caliper 0.5 SD of the score", "no caliper"} <= set(rows)
    assert rows["no caliper"]["caliper"] is None
    # A wider caliper can only match more treated people, a narrower one fewer.
    base = rows["as analysed"]["treated_matched"]
    assert rows["caliper 0.1 SD of the score"]["treated_matched"] <= base
    assert rows["no caliper"]["treated_matched"] >= base
    one = rows["1 control per treated person"]
    assert one["ratio"] == 1 and one["controls_matched"] <= one["treated_matched"]
    assert rows["without replacement"]["replace"] is False and st.replace is True
    areas = [r for r in result.sensitivity if r["control_area"]]
    assert len(areas) == len(result.settings.control_areas) == 2
    for r in areas:  # the score is refitted on the smaller pool, so no order is implied
        assert r["caliper"] == st.caliper and r["ratio"] == st.ratio
    assert all(r["estimated"] for r in result.sensitivity)


def test_sensitivity_can_be_turned_off(synth_dir: Path) -> None:
    st = dataclasses.replace(ImpactSettings(negative_controls=()), sensitivity=False)
    with Dataset(synth_dir) as ds:
        assert evaluate_impact(ds, WINDOW, st).sensitivity == []
