"""Table 2's truth: ``truth.json`` ``area_trends`` and ``expected_area_changes``.

References are independent of :mod:`careval.monitoring.truth`: the designed trend in closed
form (``exp(trend) - 1``) on a hand-made truth, and the generator's own matrix of true monthly
rates (with the transient shocks switched off, so the realised rates are the expected ones),
summed over the person-months Table 2 counts.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from careval.cohort.eligibility import EligibilitySettings
from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.monitoring.areas import AreaSettings, evaluate_areas
from careval.monitoring.truth import expected_area_changes
from careval.synthetic import activity, area_truth
from careval.synthetic.population import make_population
from careval.synthetic.settings import AREAS, SynthSettings

GROUPS = list(area_truth.GROUP_NAMES)


def _doc(trends: dict[str, float], t: int = 36, factor: float = 1.0, from_month: int = 24):
    """A hand-made truth: constant person-months and case mix, the area's trend, no season."""
    pm = {g: [1000] * t for g in GROUPS}
    m = np.arange(t)
    pilot_f = [1.0] * from_month + [factor] * (t - from_month)
    return {
        "area_trends": {
            "log_trend_per_year": trends,
            "eligibility": {"min_age": 75, "conditions": ["diabetes"], "combine": "or"},
            "groups": GROUPS,
            "first_month": "2009-04",
            "expected_admissions": {
                a: {g: list(20 * np.exp(r * (m - 12) / 12)) for g in GROUPS}
                for a, r in trends.items()
            },
            "person_months": {a: pm for a in trends},
            "effect_area": "pilot",
            "pilot_effect_factor": dict.fromkeys(GROUPS, pilot_f),
        }
    }


def test_expected_changes_are_the_designed_trend_in_closed_form() -> None:
    doc = _doc({"pilot": 0.01, "north": -0.05, "south": 0.03})
    st = AreaSettings(starts=(dt.date(2010, 4, 1), dt.date(2011, 4, 1)), months=12)
    out = expected_area_changes(doc, st)
    assert len(out["table2"]) == 2 * 4 * 3 and len(out["differences"]) == 2 * 4 * 2
    for r in out["table2"]:
        g = doc["area_trends"]["log_trend_per_year"][r["area"]]
        assert r["true_pct_change"] == pytest.approx(100 * np.expm1(g), abs=1e-9)
    d = {(r["start"], r["comparator"]): r["true_difference"] for r in out["differences"]}
    assert d["2010-04-01", "north"] == pytest.approx(100 * (np.exp(0.01) - np.exp(-0.05)))
    # a start the window cannot hold is left out (2009-04: no year before it)
    assert not expected_area_changes(doc, AreaSettings(starts=(dt.date(2009, 4, 1),)))["table2"]
    # another eligibility rule: no truth
    other = AreaSettings(eligibility=EligibilitySettings(min_age=65))
    assert expected_area_changes(doc, other) == {"table2": [], "differences": []}


def test_the_plans_factor_enters_the_pilot_only() -> None:
    # plans multiply the pilot's expected admissions by 0.9 from window month 24 (2011-04)
    doc = _doc({"pilot": 0.01, "north": 0.0}, factor=0.9)
    out = expected_area_changes(doc, AreaSettings(starts=(dt.date(2011, 4, 1),), months=12))
    got = {(r["group"], r["area"]): r["true_pct_change"] for r in out["table2"]}
    assert got["all_eligible", "pilot"] == pytest.approx(100 * (np.exp(0.01) * 0.9 - 1))
    assert got["all_eligible", "north"] == pytest.approx(0.0, abs=1e-12)
    # half the after period under the factor
    doc = _doc({"pilot": 0.0, "north": 0.0}, factor=0.9, from_month=30)
    out = expected_area_changes(doc, AreaSettings(starts=(dt.date(2011, 4, 1),), months=12))
    assert out["table2"][0]["true_pct_change"] == pytest.approx(-5.0)


def _panel(hold_by: str) -> tuple:
    """60,000 people's population and emergency panel with no transient shocks."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(activity, "SHOCK_SD", 0.0)
        mp.setattr(activity, "HOLD_BY", hold_by)
        s = SynthSettings(persons=60_000, seed=5)
        rng = [np.random.default_rng(x) for x in np.random.SeedSequence(s.seed).spawn(8)]
        pop = make_population(s, rng[0])
        em = activity.emergency_panel(s, pop, rng[1])
        return s, pop, em, {"area_trends": area_truth.area_trends(s, pop, em)}


def _from_rates(s, pop, em, area: int, groups: list[int], m0: int, k: int) -> float:
    """% change of admissions per counted eligible person-month, from the true-rate matrix."""
    t = s.n_months
    m = np.arange(t)[None, :]
    old = (s.first_month + m - pop.birth_month[:, None]) >= 75 * 12
    grp = 2 * old + (pop.diabetes_onset[:, None] <= m)
    on = (m >= pop.reg_start[:, None]) & (m < pop.leave_month[:, None])
    on &= (m <= pop.death_month[:, None]) & np.isin(grp, groups) & (pop.area[:, None] == area)
    rate = [
        em.rate[:, p][on[:, p]].sum(dtype=np.float64) / on[:, p].sum()
        for p in (slice(m0, m0 + k), slice(m0 - 12, m0 - 12 + k))
    ]
    return 100 * (rate[0] / rate[1] - 1)


@pytest.mark.parametrize("hold_by", ["area", "group"])
def test_expected_changes_match_the_generators_true_rates(hold_by: str) -> None:
    s, pop, em, doc = _panel(hold_by)
    st = AreaSettings(starts=(dt.date(2011, 9, 1), dt.date(2012, 4, 1)), months=12)
    want = expected_area_changes(doc, st)["table2"]
    assert len(want) == 2 * 4 * len(AREAS)
    codes = {"all_eligible": [1, 2, 3], **{g: [i + 1] for i, g in enumerate(GROUPS)}}
    drift = []
    for r in want:
        start = dt.date.fromisoformat(r["start"])
        m0 = start.year * 12 + start.month - 1 - s.first_month
        got = _from_rates(s, pop, em, AREAS.index(r["area"]), codes[r["group"]], m0, 12)
        assert r["true_pct_change"] == pytest.approx(got, abs=0.3), r
        if r["group"] == "aged_75_plus_without_diabetes" and r["area"] != "pilot":
            drift.append(got - 100 * np.expm1(activity.AREA_TREND[r["area"]]))
    if hold_by == "group":  # each group follows its designed trend (death months aside)
        assert np.abs(drift).max() < 1.0
    else:  # the area's hold leaves the 75+ falling against the design: the truth says so
        assert np.mean(drift) < -3.0


def test_truth_json_records_the_area_trends(synth_dir: Path) -> None:
    doc = json.loads((synth_dir / "truth.json").read_text())
    at = doc["area_trends"]
    assert at["log_trend_per_year"] == activity.AREA_TREND
    assert set(at["person_months"]) == set(AREAS) and at["groups"] == GROUPS
    assert len(at["pilot_effect_factor"][GROUPS[0]]) == 60
    # the plans' factor: 1 before the first plan's effect, then falling towards 0.9
    f = np.array(at["pilot_effect_factor"]["aged_75_plus_without_diabetes"])
    assert np.all(f[:32] == 1.0) and 0.9 <= f[-1] < 1.0


@pytest.mark.parametrize("seed", [21])
def test_table2_covers_its_truth(tmp_path: Path, seed: int) -> None:
    from careval.synthetic.generate import generate

    generate(tmp_path / "d", SynthSettings(persons=40_000, seed=seed))
    with Dataset(tmp_path / "d") as ds:
        r = evaluate_areas(ds, data_window(ds), AreaSettings(starts=(dt.date(2012, 4, 1),)))
    t = r.table[r.table.group == "all_eligible"]
    assert len(t) == len(AREAS) and t.true_pct_change.notna().all()
    assert ((t.ci_low <= t.true_pct_change) & (t.true_pct_change <= t.ci_high)).all()
    d = r.differences[r.differences.group == "all_eligible"]
    assert ((d.ci_low <= d.true_difference) & (d.true_difference <= d.ci_high)).all()
    # the report shows each change beside its truth; results.json carries both
    from careval.disclosure import DisclosureSettings
    from careval.report.publish.areas import publish_areas
    from careval.report.sections.areas import section

    pub = publish_areas(r, DisclosureSettings())
    p = t[t.area == "pilot"].iloc[0]
    truth = f"{abs(p.true_pct_change):.1f}%"
    assert f"; truth {'+' if p.true_pct_change >= 0 else chr(0x2212)}{truth}" in section(pub).html
    rows = pub.to_dict()["table2"]
    assert all("true_pct_change" in row for row in rows)
    assert all("true_difference" in row for row in pub.to_dict()["differences"])
