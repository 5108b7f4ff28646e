"""results.json describes itself: a schema version, the unit of every figure, p-values never
0, no duplicated block, and a JSON Schema (docs/results.schema.json) generated from the typed
model that every run's document validates against, synthetic or flagged real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from careval.report.publish.publication import SCHEMA_VERSION
from careval.report.publish.schema import results_schema, schema_text
from careval.report.publish.units import (
    P_FLOOR,
    UNDECLARED,
    floor_p_values,
    is_p_key,
    numeric_leaves,
    unit,
)

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "results.schema.json"


@pytest.fixture(scope="module")
def synthetic(synth_run: Path) -> dict[str, Any]:
    """results.json of the session's run on the shared synthetic dataset."""
    return json.loads((synth_run / "results.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def real(real_run: Path) -> dict[str, Any]:
    """results.json of the session's run on the copy flagged real (disclosure-controlled)."""
    return json.loads((real_run / "results.json").read_text())  # type: ignore[no-any-return]


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "docs/results.schema.json is stale: python -m careval.report.publish.schema "
        "> docs/results.schema.json"
    )
    printed = subprocess.run(
        [sys.executable, "-m", "careval.report.publish.schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert printed == COMMITTED.read_text()


def test_the_schema_follows_the_model() -> None:
    """A key of the model is a property of the schema, and a key it lacks is refused."""
    schema = results_schema()
    impact = schema["$defs"]["ImpactBlock"]
    assert {"outcomes", "naive", "follow_up"} <= set(impact["properties"])
    assert impact["additionalProperties"] is False
    assert schema["properties"]["schema_version"] == {
        "const": SCHEMA_VERSION,
        "description": "the version of this layout (see the schema's description)",
    }
    assert "naive" not in schema["properties"]
    assert set(schema["required"]) >= {"schema_version", "units", "data"}
    v = jsonschema.Draft202012Validator(schema)
    bad = {"schema_version": SCHEMA_VERSION, "impact": {"outcomes": {"x": {"rate_ratio": "a"}}}}
    messages = [e.message for e in v.iter_errors(bad)]
    assert any("'units' is a required property" in m for m in messages)
    assert not v.is_valid({**bad, "naive": {}})  # the duplicated block is refused
    assert str(P_FLOOR) in schema["description"].replace("2.3e-16", str(P_FLOOR))


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_every_run_validates_against_the_schema(which: str, request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(which)
    errors = [f"{e.json_path}: {e.message[:200]}" for e in _validator().iter_errors(results)]
    assert errors == []
    assert results["synthetic"] is (which == "synthetic")
    if which == "real":  # the schema is not vacuous: suppressed figures are there, as "*"
        assert '"*"' in json.dumps(results)


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_results_carry_version_units_and_no_duplicate(
    which: str, request: pytest.FixtureRequest
) -> None:
    results = request.getfixturevalue(which)
    assert list(results)[0] == "schema_version" and results["schema_version"] == SCHEMA_VERSION
    assert "naive" not in results  # published once, under impact
    assert results["impact"]["naive"]["rate_ratio"] > 0
    units = results["units"]
    leaves = list(numeric_leaves(results))
    assert len(leaves) > 1000
    missing = sorted({p for p, _ in leaves if p not in units})
    assert missing == []
    undeclared = [p for p, u in units.items() if u == UNDECLARED]
    assert undeclared == [], "give these figures a unit in careval/report/publish/units.py RULES"
    assert units["impact.outcomes.emergency_admissions.rate_ratio"] == "ratio"
    assert units["data.people_by_area[].registered"] == "people"
    assert units["data.care_plan_coverage[].coverage_of_eligible"] == "share (0-1)"
    assert units["data.activity_by_year[].emergency_per_1000_py"] == (
        "admissions per 1,000 person-years"
    )
    assert units["impact.outcomes.emergency_cost.estimate"] == "£ per person-month"
    assert units["impact.follow_up.median_months"] == "months"


@pytest.mark.parametrize("which", ["synthetic", "real"])
def test_no_p_value_is_zero(which: str, request: pytest.FixtureRequest) -> None:
    results = request.getfixturevalue(which)
    ps = [v for p, v in numeric_leaves(results) if is_p_key(p.rsplit(".", 1)[-1])]
    assert len(ps) > 30 and 0 not in ps and min(ps) > 0
    # The synthetic transcripts' roles speak far from equal shares: a chi-square p of 0.
    if which == "synthetic":
        assert P_FLOOR in ps


def test_an_underflowed_p_value_is_published_as_its_bound() -> None:
    doc = {"a": {"p_value": 0.0, "n": 0}, "b": [{"p": 0, "auc_difference_p": 0.0}], "x": 0.0}
    assert floor_p_values(doc) == {
        "a": {"p_value": P_FLOOR, "n": 0},
        "b": [{"p": P_FLOOR, "auc_difference_p": P_FLOOR}],
        "x": 0.0,
    }
    # The bound is above any p-value computed as 0: 1 - cdf is 0 only below half an epsilon.
    assert P_FLOOR > 2 * sys.float_info.epsilon / 2


def test_a_key_name_alone_does_not_fix_the_unit() -> None:
    assert unit("programme.spc.care_plan_quality.points[].value") == "share (0-1)"
    assert unit("programme.spc.care_plans_per_month.points[].value") != "share (0-1)"
    assert unit("impact.outcomes.emergency_admissions.estimate") == "log rate ratio"
    assert unit("impact.outcomes.inpatient_cost.estimate") == "£ per person-month"
    assert unit("brand.new.thing") == UNDECLARED
