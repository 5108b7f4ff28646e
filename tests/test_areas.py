"""Table 2: rolling-cohort rates by area against an independent derivation and statsmodels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.rates import confint_poisson_2indep

from careval.cohort.eligibility import emergency_spells, population_at
from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.monitoring.areas import AreaSettings, evaluate_areas, log_rate_ratio

DC = DisclosureSettings()  # the default disclosure rules


def test_poisson_interval_is_statsmodels_wald_log() -> None:
    lrr, se = log_rate_ratio(130, 10.0, 1.0, 100, 11.0, 1.0)
    lo, hi = confint_poisson_2indep(130, 10.0, 100, 11.0, method="wald-log", compare="ratio")
    assert np.exp(lrr - 1.959963984540054 * se) == pytest.approx(lo, rel=1e-9)
    assert np.exp(lrr + 1.959963984540054 * se) == pytest.approx(hi, rel=1e-9)


def _rate(ds: Dataset, months: list[dt.date]) -> float:
    """Admissions per eligible pilot person-year, from population_at month by month."""
    spells = emergency_spells(ds).to_pandas()
    adm = pd.to_datetime(spells.admission_date)
    n = a = 0
    for d in months:
        pop = population_at(ds, d).to_pandas()
        ids = set(pop.person_id[(pop.area == "pilot") & pop.eligible])
        nxt = (pd.Timestamp(d) + pd.DateOffset(months=1)).date()
        inside = (adm >= pd.Timestamp(d)) & (adm < pd.Timestamp(nxt))
        a += int(spells.person_id[inside].isin(ids).sum())
        n += len(ids)
    return a / (n / 12)


def test_pilot_change_equals_independent_derivation(synth_dir: Path) -> None:
    st = AreaSettings(starts=(dt.date(2011, 9, 1),), months=6)
    with Dataset(synth_dir) as ds:
        res = evaluate_areas(ds, data_window(ds), st)
        after = [dt.date(2011, 9 + i, 1) if i < 4 else dt.date(2012, i - 3, 1) for i in range(6)]
        before = [dt.date(d.year - 1, d.month, 1) for d in after]
        want = 100 * (_rate(ds, after) / _rate(ds, before) - 1)
    t = res.table
    row = t[(t.group == "all_eligible") & (t.area == "pilot")].iloc[0]
    assert row["pct_change"] == pytest.approx(want, rel=1e-9)
    assert row["ci_low"] < row["pct_change"] < row["ci_high"]
    assert set(t.area) == {
        "pilot",
        "inner_nwl_other",
        "outer_nwl",
        "south_west_london",
        "rest_of_england",
    }
    d = res.differences
    assert len(d[(d.group == "all_eligible")]) == 4
    block = res.to_dict()
    for r in block["table2"]:
        assert {"group", "start", "area", "pct_change", "ci_low", "ci_high"} <= set(r)


def test_starts_outside_the_data_are_skipped_with_a_warning(synth_dir: Path) -> None:
    st = AreaSettings(starts=(dt.date(2009, 6, 1), dt.date(2011, 7, 1)))
    with Dataset(synth_dir) as ds:
        res = evaluate_areas(ds, data_window(ds), st)
        assert set(res.table.start) == {"2011-07-01"}
        assert any("2009-06-01" in w for w in res.warnings)
        with pytest.raises(ConfigError):
            evaluate_areas(ds, data_window(ds), AreaSettings(starts=(dt.date(2009, 6, 1),)))
    with pytest.raises(ConfigError):
        AreaSettings(months=0)


def test_area_result_tidy_summary_and_publication(synth_dir: Path) -> None:
    from careval.report.publish.areas import publish_areas
    from careval.report.sections.areas import section

    st = AreaSettings(starts=(dt.date(2011, 9, 1),), months=6)
    with Dataset(synth_dir) as ds:
        res = evaluate_areas(ds, data_window(ds), st)
    t = res.tidy()
    assert {"group", "start", "area", "pct_change", "ci_low", "ci_high"} <= set(t.columns)
    pilot = t[(t.area == "pilot") & (t.group == "all_eligible")].iloc[0]
    assert pilot.start == "2011-09-01" and pilot.ci_low <= pilot["pct_change"] <= pilot.ci_high
    assert f"{pilot['pct_change']:+.1f}%" in res.summary()
    assert res.to_dict()["settings"] == {"starts": ["2011-09-01"], "months": 6}
    raw = res.table.copy()
    pub = publish_areas(res, DC)
    assert pub is not res
    pd.testing.assert_frame_equal(res.table, raw)  # the true table is unchanged
    assert all(v == "*" or v % 5 == 0 for v in pub.table.people_after)
    assert section(pub).id == "monitoring" and 'id="table2"' in section(pub).html
