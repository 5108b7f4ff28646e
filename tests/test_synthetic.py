"""The synthetic population: deterministic, valid, and shaped like the seed's pilot.

Figures are recomputed here with pandas straight from the Parquet files, independently of the
generator's own bookkeeping and of careval's engine derivations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from careval.data.codelists import codes_for
from careval.data.schema import EMERGENCY_METHODS, TABLES
from careval.errors import ConfigError
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

LAUNCH = pd.Timestamp("2011-07-01")


def read(d: Path, name: str) -> pd.DataFrame:
    return pq.read_table(d / f"{name}.parquet").to_pandas()


def at_launch(d: Path) -> pd.DataFrame:
    """Pilot people registered and alive at launch, with age and diabetes, by pandas."""
    p, r, pr = read(d, "persons"), read(d, "registrations"), read(d, "practices")
    c = read(d, "conditions")
    for col in ("birth_month", "death_date"):
        p[col] = pd.to_datetime(p[col])
    r["start_date"], r["end_date"] = pd.to_datetime(r["start_date"]), pd.to_datetime(r["end_date"])
    reg = r[(r.start_date <= LAUNCH) & (r.end_date.isna() | (r.end_date >= LAUNCH))]
    df = reg.merge(pr, on="practice_code").merge(p, on="person_id")
    df = df[(df.area == "pilot") & (df.death_date.isna() | (df.death_date > LAUNCH))]
    months = (LAUNCH.year - df.birth_month.dt.year) * 12 + (LAUNCH.month - df.birth_month.dt.month)
    df = df.assign(age=months // 12)
    dm_codes = {x.code for x in codes_for("diabetes", "SNOMED")}
    dm = c[c.code.isin(dm_codes) & (pd.to_datetime(c.date) <= LAUNCH)].person_id.unique()
    return df.assign(diabetes=df.person_id.isin(dm))


def test_same_seed_gives_identical_tables(tmp_path: Path) -> None:
    s = SynthSettings(persons=3000, seed=3)
    generate(tmp_path / "a", s)
    generate(tmp_path / "b", s)
    generate(tmp_path / "c", SynthSettings(persons=3000, seed=4))
    for name in TABLES:
        a = pq.read_table(tmp_path / "a" / f"{name}.parquet")
        assert a.equals(pq.read_table(tmp_path / "b" / f"{name}.parquet")), name
    for extra in ("truth.json", "dataset.json"):
        assert (tmp_path / "a" / extra).read_bytes() == (tmp_path / "b" / extra).read_bytes()
    assert pq.read_table(tmp_path / "a" / "true_risk.parquet").equals(
        pq.read_table(tmp_path / "b" / "true_risk.parquet")
    )
    other = pq.read_table(tmp_path / "c" / "inpatient_spells.parquet")
    assert not other.equals(pq.read_table(tmp_path / "a" / "inpatient_spells.parquet"))


def test_tables_follow_the_schema(synth_dir: Path) -> None:
    for name, table in TABLES.items():
        schema = pq.read_schema(synth_dir / f"{name}.parquet")
        assert schema.names == table.column_names, name
        for col in table.columns:
            assert schema.field(col.name).type == col.arrow_type, (name, col.name)


def test_eligible_counts_echo_the_business_case(shape_dir: Path) -> None:
    df = at_launch(shape_dir)
    per = 380_000 / len(df)
    old, dm = df.age >= 75, df.diabetes
    # Business case per 380,000: 15,200 with diabetes, 22,800 aged 75+, 8,700 both.
    # Tolerances are about three binomial standard errors at 60,000 pilot people.
    assert (dm.sum() * per) == pytest.approx(15_200, rel=0.10)
    assert (old.sum() * per) == pytest.approx(22_800, rel=0.08)
    assert ((old & dm).sum() * per) == pytest.approx(8_700, rel=0.12)


def test_emergency_admission_rate_is_about_011(shape_dir: Path) -> None:
    s = read(shape_dir, "inpatient_spells")
    em = s[s.admission_method.isin(EMERGENCY_METHODS) & ~s.patient_classification.isin(["3", "4"])]
    r, p = read(shape_dir, "registrations"), read(shape_dir, "persons")
    lo, hi = pd.Timestamp("2009-04-01"), pd.Timestamp("2014-03-31")
    r = r.merge(p[["person_id", "death_date"]], on="person_id")
    start = pd.to_datetime(r.start_date).clip(lower=lo)
    end = pd.concat(
        [
            pd.to_datetime(r.end_date).fillna(hi),
            pd.to_datetime(r.death_date).fillna(hi),
            pd.Series(hi, index=r.index),
        ],
        axis=1,
    ).min(axis=1)
    person_years = ((end - start).dt.days + 1).clip(lower=0).sum() / 365.25
    rate = len(em) / person_years
    assert 0.10 <= rate <= 0.125
    # A&E about 0.43 attendances per person-year.
    assert 0.36 <= len(read(shape_dir, "ae_attendances")) / person_years <= 0.50


def test_care_plan_ramp_follows_the_seed(shape_dir: Path) -> None:
    df = at_launch(shape_dir)
    eligible = int(((df.age >= 75) | df.diabetes).sum())
    plans = pd.to_datetime(read(shape_dir, "care_plans").created_date)
    assert plans.min() >= pd.Timestamp("2011-09-01")
    by_dec = (plans <= pd.Timestamp("2011-12-31")).sum() / eligible
    by_apr = (plans <= pd.Timestamp("2012-04-30")).sum() / eligible
    jan_apr = ((plans >= pd.Timestamp("2012-01-01")) & (plans <= pd.Timestamp("2012-04-30"))).sum()
    assert 0.03 <= by_dec <= 0.08  # the seed: 1,494 plans by December 2011 (about 5%)
    assert 0.26 <= by_apr <= 0.34  # the seed: 30% by April 2012
    assert jan_apr > 0.5 * (plans <= pd.Timestamp("2012-04-30")).sum()  # most in Jan-Apr 2012


def _rate_around_plan(d: Path) -> tuple[float, float, float]:
    """Emergency admissions per person-year of the care-planned: year before, months 3-15 after."""
    cp = read(d, "care_plans")[["person_id", "created_date"]]
    cp["plan"] = pd.to_datetime(cp.created_date)
    cp = cp[cp.plan <= pd.Timestamp("2012-12-31")]
    s = read(d, "inpatient_spells")
    s = s[s.admission_method.isin(EMERGENCY_METHODS)].merge(cp, on="person_id")
    days = (pd.to_datetime(s.admission_date) - s.plan).dt.days
    before = ((days < 0) & (days >= -365)).sum() / len(cp)
    after = ((days >= 91) & (days < 91 + 365)).sum() / len(cp)
    return before, after, len(cp)


def test_care_planned_are_moderate_users(shape_dir: Path) -> None:
    before, _after, n = _rate_around_plan(shape_dir)
    # The seed: 0.44 a year among the care-planned against 0.11 for everyone.
    assert n > 500
    assert 0.30 <= before <= 0.80


def test_naive_before_after_falls_without_any_effect(tmp_path: Path) -> None:
    d = tmp_path / "null"
    truth = generate(d, SynthSettings(persons=60_000, seed=21, effect=0.0))
    assert truth["effects"]["emergency_admissions"]["rate_ratio"] == 1.0
    assert truth["effects"]["diabetes"]["total_cholesterol"] == 0.0
    before, after, n = _rate_around_plan(d)
    # Selection on recent admissions: a spurious fall of at least 10% with no true effect.
    assert after < 0.9 * before, (before, after, n)


def test_true_risk_is_calibrated_to_the_outcomes(shape_dir: Path, shape_truth: dict) -> None:
    risk = pq.read_table(shape_dir / shape_truth["true_risk_file"]).to_pandas()
    assert sorted(risk.index_date.astype(str).unique()) == [
        "2009-04-01",
        "2010-04-01",
        "2011-04-01",
        "2012-04-01",
        "2013-04-01",
    ]
    r = risk[risk.index_date.astype(str) == "2011-04-01"]
    s = read(shape_dir, "inpatient_spells")
    s = s[s.admission_method.isin(EMERGENCY_METHODS)]
    adm = pd.to_datetime(s.admission_date)
    hit = s[(adm >= pd.Timestamp("2011-04-01")) & (adm < pd.Timestamp("2012-04-01"))].person_id
    y = r.person_id.isin(set(hit))
    se = np.sqrt((r.p_emergency_12m * (1 - r.p_emergency_12m)).sum()) / len(r)
    assert abs(y.mean() - r.p_emergency_12m.mean()) < 3 * se + 0.002
    assert r.p_emergency_12m.between(0, 1).all()
    # Higher true risk, more admissions: top decile's observed rate far above the bottom's.
    dec = pd.qcut(r.p_emergency_12m, 10, labels=False)
    assert y[dec == 9].mean() > 5 * y[dec == 0].mean()


def test_deaths_by_age_match_england(shape_dir: Path) -> None:
    p = read(shape_dir, "persons")
    age = (LAUNCH - pd.to_datetime(p.birth_month)).dt.days / 365.25
    death = pd.to_datetime(p.death_date)
    alive = death.isna() | (death > LAUNCH)
    died = (death > LAUNCH) & (death <= LAUNCH + pd.DateOffset(years=1))
    q75 = died[alive & age.between(75, 85, inclusive="left")].mean()
    q85 = died[alive & (age >= 85)].mean()
    assert 0.025 <= q75 <= 0.05  # England: about 3.6% a year at 75-84
    assert 0.09 <= q85 <= 0.18  # and 13.6% at 85+


def test_truth_records_the_injected_effects(tmp_path: Path) -> None:
    truth = generate(tmp_path / "d", SynthSettings(persons=2000, seed=1, effect=-0.2))
    on_disk = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert on_disk == truth
    assert truth["effects"]["emergency_admissions"]["rate_ratio"] == pytest.approx(0.8)
    assert truth["effects"]["diabetes"]["total_cholesterol"] == pytest.approx(-0.4)
    assert truth["settings"]["effect"] == -0.2
    manifest = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert manifest["synthetic"] is True


def test_bad_settings_are_refused_together() -> None:
    with pytest.raises(ConfigError) as info:
        SynthSettings(persons=10, effect=-3, start="2009-13")
    text = str(info.value)
    assert "persons" in text and "effect" in text and "start" in text


def test_settings_survive_a_json_round_trip() -> None:
    s = SynthSettings(
        persons=5000, seed=9, effect=0.05, diabetes_effect=0.5, programme_start="2012-01"
    )
    assert SynthSettings(**json.loads(json.dumps(s.to_dict()))) == s


def test_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        generate(out, SynthSettings(persons=1000))
    assert (out / "keep.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary directory left behind


def _months_since(dates: pd.Series, start: str) -> pd.Series:
    """Rows per month since ``start`` (month 0 is ``start``'s month)."""
    d, s = pd.to_datetime(dates), pd.Timestamp(start)
    return ((d.dt.year - s.year) * 12 + d.dt.month - s.month).value_counts().sort_index()


def test_the_programme_follows_the_data_window(tmp_path: Path) -> None:
    # 6,000 people: about 200 eligible, so the first month's 0.5% quota is one plan, not zero.
    seed = generate(tmp_path / "seed", SynthSettings(persons=6000, seed=3))
    later = generate(
        tmp_path / "later", SynthSettings(persons=6000, seed=3, start="2013-01", end="2017-12")
    )
    plans = pd.to_datetime(read(tmp_path / "later", "care_plans").created_date)
    assert plans.min().strftime("%Y-%m") == "2015-06"  # 29 months in, as 2009-04 to 2011-09
    # truth.json's months moved by the same 45 months.
    assert later["calibration"]["launch_month"] == "2015-04"
    assert later["effects"]["dementia_case_finding"]["diagnosis_rate_ratio_in_pilot_after"] == (
        "2015-06"
    )
    assert seed["calibration"]["care_plan_coverage_april_2012"] > 0.2
    assert "care_plan_coverage_april_2012" not in later["calibration"]
    # The ramp's expected totals move with the programme; the counts are drawn around them and
    # the holiday dips stay in August and December: about 60 plans, a Poisson sd of 4 points.
    assert later["calibration"]["care_plan_coverage_january_2016"] == pytest.approx(
        seed["calibration"]["care_plan_coverage_april_2012"], abs=0.1
    )
    meetings = read(tmp_path / "later", "mdg_meetings")
    fund = read(tmp_path / "later", "innovation_fund")
    assert pd.to_datetime(meetings.meeting_date).min() >= pd.Timestamp("2015-04-01")
    assert pd.to_datetime(fund.allocation_date).min() >= pd.Timestamp("2015-07-01")
    observed = [
        line.removeprefix("# date: ")
        for f in (tmp_path / "later" / "qualitative" / "transcripts").glob("*.txt")
        for line in f.read_text().splitlines()
        if line.startswith("# date: ")
    ]
    assert len(observed) == 8 and all("2015-08-01" <= d < "2016-02-01" for d in observed)
    # The population and the programme are the seed window's, moved: the same counts in every
    # month since the start. Hospital activity is not (its winter season follows the calendar),
    # so neither is who gets the plans nor the measurements that follow them, nor how many
    # plans a month (they dip in the calendar's August and December).
    for table, column in (
        ("mdg_meetings", "meeting_date"),
        ("innovation_fund", "allocation_date"),
        ("persons", "birth_month"),
        ("persons", "death_date"),
        ("registrations", "start_date"),
    ):
        a = _months_since(read(tmp_path / "seed", table)[column], "2009-04")
        b = _months_since(read(tmp_path / "later", table)[column], "2013-01")
        assert a.equals(b), (table, column)
    spells = [
        _months_since(read(tmp_path / d, "inpatient_spells").admission_date, start)
        for d, start in (("seed", "2009-04"), ("later", "2013-01"))
    ]
    assert not spells[0].equals(spells[1])


def test_an_explicit_programme_start_moves_the_programme_there(tmp_path: Path) -> None:
    truth = generate(tmp_path / "d", SynthSettings(persons=6000, seed=3, programme_start="2012-03"))
    assert truth["settings"]["programme_start"] == "2012-03"
    plans = pd.to_datetime(read(tmp_path / "d", "care_plans").created_date)
    assert plans.min().strftime("%Y-%m") == "2012-03"
    assert truth["calibration"]["launch_month"] == "2012-01"
    assert "care_plan_coverage_october_2012" in truth["calibration"]
    meetings = pd.to_datetime(read(tmp_path / "d", "mdg_meetings").meeting_date)
    assert meetings.min().strftime("%Y-%m") == "2012-01"
    fund = pd.to_datetime(read(tmp_path / "d", "innovation_fund").allocation_date)
    assert fund.min() >= pd.Timestamp("2012-04-01")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"programme_start": "2011-03"}, "programme_start 2011-03 leaves 23 months"),
        ({"programme_start": "2013-04"}, "and 11 after it (to 2014-03)"),
        (
            {"start": "2012-01", "end": "2014-12"},
            "the default programme start (29 months after start) 2014-06 leaves 29 months",
        ),
    ],
)
def test_a_programme_start_without_data_around_it_is_refused(
    settings: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        SynthSettings(**settings)
    assert expected in str(info.value)
    assert "at least 24 months before it and 12 after" in str(info.value)
    with pytest.raises(ConfigError, match="programme_start must be a month as YYYY-MM"):
        SynthSettings(programme_start="2011-9")


def test_a_programme_start_at_the_limits_is_accepted() -> None:
    assert SynthSettings(programme_start="2011-04").care_plans_from == 24
    assert SynthSettings(programme_start="2013-03").care_plans_from == 59 - 12
    assert SynthSettings().programme_offset == 0  # the default is the seed's calendar


@pytest.mark.parametrize("month", ["2010-06", "2013-09"])
def test_synth_refuses_a_programme_start_near_either_end(cli, tmp_path: Path, month: str) -> None:
    res = cli(
        "synth", "--out", str(tmp_path / "d"), "--persons", "2000", "--programme-start", month
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"programme_start {month} leaves" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "d").exists()
