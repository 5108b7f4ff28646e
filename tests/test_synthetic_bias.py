"""The hidden confounder (``SynthSettings.hidden_bias``): the care-planned's hospital activity runs
at ``1 + hidden_bias`` times its rate from the plan month on, and nothing changes at 0.

The emergency panel keeps its true rates, so its ratio is checked exactly. The other activity is
counted with pandas from the Parquet files of two datasets that differ only in ``hidden_bias``:
given their total, the care-planned's events after the plan in the biased dataset are
Binomial(total, r / (1 + r)) at a rate ratio r, an exact test that needs no rate (scipy).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.stats import binomtest, chi2_contingency

from careval.data.access import Dataset
from careval.data.schema import ELECTIVE_METHODS, EMERGENCY_METHODS, TABLES
from careval.data.truth import known_effects
from careval.errors import ConfigError
from careval.synthetic import activity
from careval.synthetic.generate import generate
from careval.synthetic.population import NEVER, make_population
from careval.synthetic.settings import SynthSettings

BIAS = 0.25
ALPHA = 1e-3  # two-sided level of the exact tests
# Long enough after the programme's start for about 1,500 elective admissions of the
# care-planned after their plans, so that a ratio of 1.25 is told from 1 (the test's power).
LONG = SynthSettings(persons=100_000, seed=5, effect=0.0, end="2016-03")


def _panel(s: SynthSettings) -> activity.Emergency:
    """The emergency panel as :func:`careval.synthetic.generate.generate` draws it."""
    streams = np.random.SeedSequence(s.seed).spawn(8)
    rng = [np.random.default_rng(x) for x in streams]
    return activity.emergency_panel(s, make_population(s, rng[0]), rng[1])


def _after_plan(plan: np.ndarray, t_months: int, lag: int = 0) -> np.ndarray:
    return np.arange(t_months)[None, :] >= plan[:, None] + lag


@pytest.mark.parametrize("effect", [0.0, -0.10])
def test_emergency_rates_of_the_care_planned_rise_by_the_factor(effect: float) -> None:
    s = SynthSettings(persons=20_000, seed=3, effect=effect)
    base, biased = _panel(s), _panel(dataclasses.replace(s, hidden_bias=BIAS))
    np.testing.assert_array_equal(base.plan_month, biased.plan_month)
    treated = base.plan_month < NEVER
    assert treated.sum() > 300
    after = _after_plan(base.plan_month[treated], s.n_months)
    ratio = biased.rate[treated] / np.where(base.rate[treated] > 0, base.rate[treated], np.nan)
    seen = ~np.isnan(ratio)
    np.testing.assert_allclose(ratio[after & seen], 1 + BIAS, rtol=1e-6)
    np.testing.assert_array_equal(ratio[~after & seen], 1.0)
    np.testing.assert_array_equal(biased.rate[~treated], base.rate[~treated])
    np.testing.assert_array_equal(biased.count[~treated], base.count[~treated])
    # The plan's own effect stays on top: (1 + effect)(1 + bias) from the lag on, against a
    # panel without either (the same draws up to the plans).
    none = _panel(dataclasses.replace(s, effect=0.0))
    lagged = _after_plan(base.plan_month[treated], s.n_months, s.effect_lag_months)
    both = biased.rate[treated][lagged & seen] / none.rate[treated][lagged & seen]
    np.testing.assert_allclose(both, (1 + effect) * (1 + BIAS), rtol=1e-6)
    # Counts: the biased panel adds Poisson admissions at BIAS x the rate after the plan.
    extra = biased.count[treated].astype(int) - base.count[treated].astype(int)
    assert (extra[~after] == 0).all() and (extra >= 0).all()
    mean = BIAS * base.rate[treated][after].sum(dtype=np.float64)
    assert abs(extra.sum() - mean) < 4 * np.sqrt(mean)


def test_a_negative_bias_thins_the_emergency_admissions_after_the_plan() -> None:
    s = SynthSettings(persons=20_000, seed=3, effect=0.0)
    base, biased = _panel(s), _panel(dataclasses.replace(s, hidden_bias=-0.2))
    treated = base.plan_month < NEVER
    after = _after_plan(base.plan_month[treated], s.n_months)
    b, k = base.count[treated].astype(int), biased.count[treated].astype(int)
    assert (k <= b).all() and (k[~after] == b[~after]).all()
    test = binomtest(int(k[after].sum()), int(b[after].sum()), 0.8)
    assert test.pvalue > ALPHA
    np.testing.assert_allclose(biased.rate[treated][after], 0.8 * base.rate[treated][after])


def _month(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    return d.dt.year * 12 + d.dt.month


def _counts(d: Path) -> dict[str, pd.DataFrame]:
    """Each activity's events with ``when``: after (the person's first plan month on), before
    the plan, or never planned; outpatients with their specialty."""
    plans = pq.read_table(d / "care_plans.parquet").to_pandas()
    plan = plans.assign(m=_month(plans.created_date)).groupby("person_id").m.min()
    spells = pq.read_table(d / "inpatient_spells.parquet").to_pandas()
    not_regular = ~spells.patient_classification.isin(["3", "4"])
    ae = pq.read_table(d / "ae_attendances.parquet").to_pandas()
    op = pq.read_table(d / "outpatient_appointments.parquet").to_pandas()
    tables = {
        "emergency_admissions": (spells[spells.admission_method.isin(EMERGENCY_METHODS)], "ad"),
        "elective_admissions": (
            spells[spells.admission_method.isin(ELECTIVE_METHODS) & not_regular],
            "ad",
        ),
        "maternity": (spells[spells.admission_method.isin(["31", "32"])], "ad"),
        "ae_attendances_not_admitted": (ae[ae.disposal != "admitted"], "arrival_date"),
        "outpatient_appointments": (op, "appointment_date"),
        "outpatient_attendances": (op[op.attended], "appointment_date"),
    }
    out = {}
    for name, (df, col) in tables.items():
        when = _month(df["admission_date" if col == "ad" else col])
        p = df.person_id.map(plan)
        out[name] = df.assign(
            when=np.where(p.isna(), "never", np.where(when >= p, "after", "before"))
        )
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two datasets (100,000 people, about 3 s each) differing only in hidden_bias."""
    root = tmp_path_factory.mktemp("bias")
    generate(root / "base", LONG)
    generate(root / "biased", dataclasses.replace(LONG, hidden_bias=BIAS))
    return root / "base", root / "biased"


@pytest.fixture(scope="module")
def counted(pair: tuple[Path, Path]) -> tuple[dict[str, pd.DataFrame], ...]:
    return tuple(_counts(d) for d in pair)


@pytest.mark.parametrize(
    "name",
    [
        "elective_admissions",
        "outpatient_appointments",
        "outpatient_attendances",
        "ae_attendances_not_admitted",
    ],
)
def test_other_hospital_activity_of_the_care_planned_rises_by_the_factor(
    counted: tuple[dict[str, pd.DataFrame], ...], name: str
) -> None:
    base, biased = (c[name].when.value_counts() for c in counted)
    n0, n1 = int(base["after"]), int(biased["after"])
    assert n0 > 1000
    assert binomtest(n1, n0 + n1, (1 + BIAS) / (2 + BIAS)).pvalue > ALPHA
    assert binomtest(n1, n0 + n1, 0.5).pvalue < ALPHA  # the test tells 1.25 from 1
    for when in ("before", "never"):  # nothing else changes
        assert binomtest(int(biased[when]), int(base[when] + biased[when]), 0.5).pvalue > ALPHA


def test_every_specialty_rises_alike_and_maternity_not(
    counted: tuple[dict[str, pd.DataFrame], ...],
) -> None:
    base, biased = counted
    op = [c["outpatient_appointments"] for c in (base, biased)]
    after = [o[o.when == "after"].specialty.value_counts() for o in op]
    table = pd.concat(after, axis=1).fillna(0).to_numpy()
    assert table.shape == (15, 2)
    assert chi2_contingency(table).pvalue > ALPHA  # the same share of each specialty
    m0, m1 = (len(c["maternity"]) for c in (base, biased))
    assert binomtest(m1, m0 + m1, 0.5).pvalue > ALPHA


def test_the_bias_touches_nothing_but_the_hospital_activity(pair: tuple[Path, Path]) -> None:
    for name in TABLES:
        a, b = (pq.read_table(d / f"{name}.parquet") for d in pair)
        changed = name in {"inpatient_spells", "ae_attendances", "outpatient_appointments"}
        changed |= name == "community_contacts"  # drawn after them from the same stream
        assert a.equals(b) != changed, name


def test_truth_records_the_bias_beside_the_planted_effects(pair: tuple[Path, Path]) -> None:
    base, biased = (json.loads((d / "truth.json").read_text()) for d in pair)
    with Dataset(pair[1]) as ds:
        effects = known_effects(ds)
    assert effects == biased["effects"]
    hidden = effects["hidden_bias"]
    assert hidden["rate_ratio"] == pytest.approx(1 + BIAS)
    assert hidden["from_months_after_care_plan"] == 0
    assert set(hidden["applies_to"]) == {
        "emergency_admissions",
        "elective_admissions",
        "outpatient_appointments",
        "ae_attendances_not_admitted",
    }
    assert base["effects"]["hidden_bias"]["rate_ratio"] == 1.0
    for key in ("emergency_admissions", "elective_admissions", "outpatient_appointments"):
        assert effects[key] == base["effects"][key]  # the causal truth is left as it was
    assert effects["emergency_admissions"]["rate_ratio"] == 1.0
    assert SynthSettings.from_dict(biased["settings"]).hidden_bias == BIAS


@pytest.mark.parametrize("value", [-0.6, 1.5, float("nan")])
def test_an_out_of_range_bias_is_one_clear_error(value: float) -> None:
    with pytest.raises(ConfigError, match=r"^hidden_bias must be between -0.5 and 1.0 .*got"):
        SynthSettings(persons=2000, hidden_bias=value)


def test_the_bounds_are_allowed() -> None:
    assert SynthSettings(hidden_bias=-0.5).hidden_bias == -0.5
    assert SynthSettings(hidden_bias=1.0).hidden_bias == 1.0
    assert SynthSettings().hidden_bias == 0.0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("careval")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_synth_command_takes_the_bias(tmp_path: Path) -> None:
    res = _cli("synth", "--out", str(tmp_path / "d"), "--persons", "2000", "--hidden-bias", "0.2")
    assert res.returncode == 0, res.stderr
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert truth["effects"]["hidden_bias"]["rate_ratio"] == pytest.approx(1.2)
    assert truth["settings"]["hidden_bias"] == 0.2
    bad = _cli("synth", "--out", str(tmp_path / "e"), "--hidden-bias", "2")
    assert bad.returncode == 2 and "hidden_bias must be between -0.5 and 1.0" in bad.stderr
    assert not (tmp_path / "e").exists()
