"""The matched study on synthetic data with a known effect, and the generic CLI entry points."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.cli import main
from careval.cohort.eligibility import population_at
from careval.data.access import Dataset
from careval.features.index_date import features_at
from careval.impact.did import did
from careval.impact.matching import match
from careval.impact.outcomes import matched_panel
from careval.impact.panel import build_panel, month_of
from careval.impact.population import (
    NEVER_MONTH,
    RECENT_BAND,
    candidates,
    covariates,
    study_population,
    use_band_columns,
)
from careval.impact.settings import COMPARATORS, ImpactSettings
from careval.impact.study import ImpactResult, evaluate_impact
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

FIX = Path(__file__).parent / "fixtures" / "matchit"
WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))


def test_panel_features_equal_features_at(synth_dir: Path) -> None:
    index = dt.date(2012, 1, 1)
    with Dataset(synth_dir) as ds:
        f = features_at(ds, index).to_pandas().sort_values("person_id", ignore_index=True)
        panel = build_panel(ds, f.person_id.to_numpy(), month_of(WINDOW[0]), month_of(WINDOW[1]))
    g = panel.features(panel.rows(f.person_id.to_numpy()), np.full(len(f), month_of(index)))
    assert set(f.columns) - set(g.columns) == {
        "person_id",
        "practice_code",
        "area",
        "mdg",
        "eligible",
    }
    for c in g.columns:
        np.testing.assert_allclose(g[c].to_numpy(float), f[c].to_numpy(float), err_msg=c)
    assert g.emergency_bed_days_12m.sum() > 0


def test_candidates_follow_population_at(synth_dir: Path) -> None:
    month = month_of(dt.date(2012, 2, 1))
    with Dataset(synth_dir) as ds:
        cp = ds.table("care_plans").to_pandas()
        cp["entry_month"] = [month_of(d) for d in pd.to_datetime(cp.created_date).dt.date]
        entries = cp[cp.entry_month == month][["person_id", "entry_month"]]
        got = candidates(ds, entries, COMPARATORS)[0]
        pop = population_at(ds, dt.date(2012, 2, 1)).to_pandas()
    want = pop[(pop.area.isin(COMPARATORS) & pop.eligible) | pop.person_id.isin(entries.person_id)]
    cols = ["person_id", "area", "practice_code", "mdg", "eligible"]
    a = got[cols].sort_values("person_id", ignore_index=True)
    b = want[cols].sort_values("person_id", ignore_index=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert len(entries) > 0 and got.treated.sum() == len(entries)


def test_default_study_covers_the_true_effect(shape_run: Path, shape_truth: dict) -> None:
    r = json.loads((shape_run / "results.json").read_text())
    imp = r["impact"]
    truth = shape_truth["effects"]["emergency_admissions"]["rate_ratio"]
    e = imp["outcomes"]["emergency_admissions"]
    assert e["rate_ratio_ci_low"] <= truth <= e["rate_ratio_ci_high"]
    assert imp["truth_rate_ratio"] == truth
    for name in (
        "ae_attendances",
        "elective_admissions",
        "outpatient_attendances",
        "bed_days",
        "emergency_cost",
        "inpatient_cost",
    ):
        o = imp["outcomes"][name]
        for key in (
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "n_treated",
            "n_controls",
            "max_abs_smd_after",
        ):
            assert o[key] is not None, (name, key)
        assert o["ci_low"] <= o["estimate"] <= o["ci_high"]
    assert imp["n_treated"] > 1000 and imp["n_controls"] > imp["n_treated"]
    assert imp["max_abs_smd_after"] < 0.1
    before = max(abs(b["smd_before"]) for b in imp["balance"])
    assert before > 0.1  # the care-planned were not like the comparator population
    assert [h["horizon_months"] for h in imp["horizons"]] == [3, 6, 12, 24]
    assert imp["naive"]["rate_ratio"] < e["rate_ratio"]  # regression to the mean adds a fall
    page = (shape_run / "report.html").read_text()
    assert 'id="impact"' in page and f"{e['rate_ratio']:.3f}" in page


@pytest.fixture(scope="module")
def null_result(tmp_path_factory: pytest.TempPathFactory) -> ImpactResult:
    out = tmp_path_factory.mktemp("null") / "data"
    generate(out, SynthSettings(persons=120_000, seed=11, effect=0.0))
    with Dataset(out) as ds:
        return evaluate_impact(ds, WINDOW)


def test_no_effect_covers_one_while_naive_falls(null_result: ImpactResult) -> None:
    e = null_result.outcomes["emergency_admissions"]
    assert e["rate_ratio_ci_low"] <= 1.0 <= e["rate_ratio_ci_high"]
    n = null_result.naive
    assert n["rate_ratio_ci_high"] < 1.0  # a spurious fall: regression to the mean
    assert null_result.truth_rate_ratio == 1.0
    pre = null_result.event_study[null_result.event_study.to_month < -1]
    assert (pre.ci_low <= 0).all() and (pre.ci_high >= 0).all()  # no pre-trend


def test_impact_result_tidy_summary_and_settings(null_result: ImpactResult) -> None:
    t = null_result.tidy()
    assert list(t.columns[:7]) == [
        "outcome",
        "model",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    e = null_result.outcomes["emergency_admissions"]
    row = t.set_index("outcome").loc["emergency_admissions"]
    assert row.rate_ratio == e["rate_ratio"] and row.model == "poisson"
    assert np.isnan(t.set_index("outcome").loc["emergency_cost", "rate_ratio"])
    assert f"rate ratio {e['rate_ratio']:.3f}" in null_result.summary()
    assert f"{null_result.attrition['treated_matched']:,}" in null_result.summary()
    st = null_result.settings
    assert ImpactSettings.from_json(st.to_json()) == st
    block = null_result.to_dict()["settings"]
    assert block["event_window"] == [-12, 23] and block["match"]["caliper"] == 0.2


def _model_b(out: Path, *extra: str) -> list[str]:
    """``careval match`` as the MatchIt fixture's model B: 2:1 with replacement, caliper 0.1."""
    return [
        "match",
        "--csv",
        str(FIX / "lalonde.csv"),
        "--treatment",
        "treat",
        "--covariates",
        "age,educ,hispan,white,married,nodegree,re74,re75",
        "--ratio",
        "2",
        "--caliper",
        "0.1",
        "--replace",
        *extra,
        "--json",
        str(out),
    ]


def test_match_cli_reproduces_matchit(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    ref = json.loads((FIX / "results.json").read_text())["models"]["B"]
    assert main(_model_b(out, "--outcome", "re78")) is None
    got = json.loads(out.read_text())
    assert got["att"]["estimate"] == pytest.approx(ref["att"], rel=1e-9)
    assert got["att"]["se"] == pytest.approx(ref["se"], rel=1e-6)
    assert got["n_treated_matched"] == ref["n_treated_matched"]
    assert got["n_controls_matched"] == ref["n_controls_matched"]
    assert {b["covariate"] for b in got["balance"]} >= {"age", "re74"}


def test_match_cli_warns_and_records_failing_balance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Model B of the MatchIt fixture leaves |SMD| 0.137 on age (MatchIt's own balance): above
    the 0.1 threshold, so the command warns and its JSON records the failed diagnostic."""
    smd = pd.read_csv(FIX / "smd_B.csv")
    worst = float(smd.smd_matched.abs().max())
    assert worst > 0.1
    out = tmp_path / "m.json"
    assert main(_model_b(out)) is None
    got = json.loads(out.read_text())
    checks = {c["diagnostic"]: c for c in got["diagnostics"]["checks"]}
    assert checks["max_abs_smd"]["value"] == pytest.approx(worst, rel=1e-6)
    assert (
        checks["max_abs_smd"]["status"] == "fail" and got["diagnostics"]["for_decisions"] is False
    )
    assert 0 < checks["equipoise"]["value"] < 1
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "not for decisions" in err and "0.137" in err


def test_match_cli_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.csv"
    df = pd.read_csv(FIX / "lalonde.csv")
    df.loc[3, "treat"] = 2
    df.loc[[5, 9], "age"] = np.nan
    df.to_csv(bad, index=False)
    out = tmp_path / "m.json"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "match",
                "--csv",
                str(bad),
                "--treatment",
                "treat",
                "--covariates",
                "age,educ",
                "--json",
                str(out),
            ]
        )
    assert exc.value.code == 2
    msg = capsys.readouterr().err
    assert "'age'" in msg and "2 rows" in msg and "'treat'" in msg and "row 5" in msg
    assert not out.exists()


def test_did_cli_equals_the_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    units, periods = 300, 10
    u = np.repeat(np.arange(units), periods)
    t = np.tile(np.arange(periods), units)
    first = np.where(np.arange(units) % 2 == 0, rng.integers(4, 8, units), np.nan)[u]
    y = rng.poisson(np.exp(rng.normal(-1, 0.5, units)[u] + np.log(0.8) * (t >= first)))
    df = pd.DataFrame({"id": u, "period": t, "y": y, "first": first})
    df.to_csv(tmp_path / "p.csv", index=False)
    assert (
        main(
            [
                "did",
                "--csv",
                str(tmp_path / "p.csv"),
                "--unit",
                "id",
                "--time",
                "period",
                "--outcome",
                "y",
                "--first-treated",
                "first",
                "--model",
                "poisson",
                "--json",
                str(tmp_path / "d.json"),
            ]
        )
        is None
    )
    got = json.loads((tmp_path / "d.json").read_text())
    want = did(
        df, unit="id", time="period", outcome="y", first_treated="first", model="poisson"
    ).to_dict()
    assert got["att"] == want["att"]
    assert len(got["event_study"]) == len(want["event_study"])


def test_not_yet_treated_controls_are_censored_at_their_own_plan(shape_dir: Path) -> None:
    st = ImpactSettings(not_yet_treated=True)
    with Dataset(shape_dir) as ds:
        study = study_population(ds, WINDOW, st, None)
        result = evaluate_impact(ds, WINDOW, st)
        default = study_population(ds, WINDOW, ImpactSettings(), None).frame
    f = study.frame
    res = match(f, "treated", covariates(f), st.match)
    panel = matched_panel(study, res, st, ["emergency_admissions"])
    controls = f.iloc[res.control_rows[res.pairs.control]]
    # Pilot people not yet care-planned are in the pool and some are matched; some of those
    # are care-planned later, so the censoring is exercised.
    assert (controls.area == "pilot").sum() > 100
    later = controls[controls.censor_month < NEVER_MONTH]
    assert len(later) > 10 and (later.censor_month > later.entry_month).all()
    # No control month at or after the control's own plan enters the panel.
    censor = pd.Series(f.censor_month.to_numpy(), index=f.panel_row.to_numpy())
    censor = censor[~censor.index.duplicated()]
    c = panel[panel.treated == 0]
    assert (c.month.to_numpy() < censor.loc[c.person.to_numpy()].to_numpy()).all()
    # Without the option nobody with a plan is a control.
    assert (default[default.treated == 0].censor_month == NEVER_MONTH).all()
    assert (default.treated == 0).sum() > 1000
    # The estimate still finds the truth.
    e = result.outcomes["emergency_admissions"]
    assert e["rate_ratio_ci_low"] <= result.truth_rate_ratio <= e["rate_ratio_ci_high"]
    assert result.settings.not_yet_treated


# ---- subgroups, trajectories (Figure 2) and deaths after entry ------------------------------


@pytest.fixture(scope="module")
def matched(synth_dir: Path) -> dict:
    """The default study on the shared dataset, with what is behind it: its result, the
    study population, the match and the matched panel."""
    st = ImpactSettings()
    with Dataset(synth_dir) as ds:
        result = evaluate_impact(ds, WINDOW, st)
        study = study_population(ds, WINDOW, st, None)
        persons = ds.table("persons").to_pandas()
    f = study.frame
    res = match(f, "treated", covariates(f), st.match)
    names = list(result.outcomes)
    panel = matched_panel(study, res, st, names)
    return {"result": result, "study": study, "match": res, "panel": panel, "persons": persons}


def test_the_panel_has_a_unit_per_control_weighted_as_matched(matched: dict) -> None:
    """One unit per treated person and per (set, control); a set's k controls weigh 1/k each
    (the matching weights); every unit is one person in one set, followed month by month from
    the panel's start until they die, are care-planned themselves or the data end."""
    panel, res, study = matched["panel"], matched["match"], matched["study"]
    units = panel.groupby("unit").agg(
        set=("set", "nunique"),
        person=("person", "nunique"),
        w=("w", "first"),
        treated=("treated", "first"),
        s=("set", "first"),
        n=("k", "size"),
        lo=("k", "min"),
        hi=("k", "max"),
    )
    assert (units.set == 1).all() and (units.person == 1).all()
    assert (units.n == units.hi - units.lo + 1).all()  # no gaps: months until the end
    assert not panel.duplicated(["unit", "k"]).any()
    assert int((units.treated == 1).sum()) == matched["result"].attrition["treated_matched"]
    c = units[units.treated == 0]
    assert len(c) == len(res.pairs.treated)
    np.testing.assert_allclose(c.groupby("s").w.sum(), 1.0)
    assert (units[units.treated == 1].w == 1.0).all()
    sizes = c.groupby("s").size()
    np.testing.assert_allclose(c.w, 1.0 / sizes.loc[c.s].to_numpy())
    # A unit stops only at the person's death or leaving, their own plan or the data's end.
    pn, f = study.panel, study.frame
    by_unit = panel.groupby("unit").agg(person=("person", "first"), last=("month", "max"))
    censor = pd.Series(f.censor_month.to_numpy(), index=f.panel_row.to_numpy())
    censor = censor[~censor.index.duplicated()]
    person, after = by_unit.person.to_numpy(), by_unit["last"].to_numpy() + 1
    stopped = after < pn.first_month + pn.n_months
    died = ~pn.alive_at(person, after)
    planned = (units.treated.to_numpy() == 0) & (after == censor.loc[person].to_numpy())
    left = ~pn.registered[
        person, np.minimum(after, pn.first_month + pn.n_months - 1) - pn.first_month
    ]
    assert stopped.sum() > 20 and died[stopped].sum() > 20 and (left & ~died)[stopped].sum() > 5
    assert (died | planned | left)[stopped].all()


def test_controls_share_their_treated_persons_recent_admissions_band(matched: dict) -> None:
    """Every matched control had the same 0, 1, or 2 or more emergency admissions in the six
    months before entry as their treated person (exact matching on the band), and the bands
    and the score's band indicators are read from the features' own counts."""
    f, res = matched["study"].frame, matched["match"]
    six = f.emergency_admissions_6m.to_numpy()
    np.testing.assert_array_equal(f[RECENT_BAND].to_numpy(), np.minimum(six, 2))
    for w in (3, 6, 12):
        for j in (1, 2, 3):
            got = f[f"emergency_admissions_{w}m_ge{j}"].to_numpy()
            np.testing.assert_array_equal(got, f[f"emergency_admissions_{w}m"].to_numpy() >= j)
    varying = [c for c in use_band_columns() if f[c].nunique() > 1]
    assert len(varying) >= 6 and set(varying) <= set(covariates(f))
    band = f[RECENT_BAND].to_numpy()
    t = res.treated_rows[res.pairs.treated]
    c = res.control_rows[res.pairs.control]
    np.testing.assert_array_equal(band[t], band[c])
    assert set(band[t]) == {0, 1, 2}  # the treated span all three bands


def test_the_panel_follows_people_while_registered(matched: dict, synth_dir: Path) -> None:
    """A month is followed while the person is registered at a practice on its first day, as
    the registrations table says (read here with pandas, month by month)."""
    pn = matched["study"].panel
    reg = pd.read_parquet(synth_dir / "registrations.parquet")
    reg = reg[reg.person_id.isin(pn.person_id)]
    firsts = pd.DataFrame({"j": np.arange(pn.n_months)})
    firsts["day"] = pd.to_datetime(
        [f"{(pn.first_month + j) // 12}-{(pn.first_month + j) % 12 + 1:02d}-01" for j in firsts.j]
    )
    x = reg.merge(firsts, how="cross")
    start, end = pd.to_datetime(x.start_date), pd.to_datetime(x.end_date)
    x = x[(start <= x.day) & (end.isna() | (end >= x.day))]
    want = np.zeros_like(pn.registered)
    want[pn.rows(x.person_id.to_numpy()), x.j.to_numpy()] = True
    np.testing.assert_array_equal(pn.registered, want)
    assert 0.02 < 1 - want.mean() < 0.5  # some months are unregistered: the check can fail
    # registered_until: the first unregistered month from each month on
    rows = np.arange(pn.person_id.size)
    m0 = pn.first_month + 3
    got = pn.registered_until(rows, np.full(rows.size, m0))
    off = ~want[:, 3:]
    first_off = np.where(off.any(axis=1), off.argmax(axis=1) + m0, pn.first_month + pn.n_months)
    np.testing.assert_array_equal(got, first_off)


def _glm_poisson_fe(d: pd.DataFrame, y: str, regs: list[str]) -> pd.Series:
    """Poisson with unit and month dummies and the matching weights by statsmodels (units and
    months without any event dropped first: they carry no information on the other
    coefficients)."""
    import statsmodels.api as sm

    for _ in range(3):
        d = d[d.groupby("unit")[y].transform("sum") > 0]
        d = d[d.groupby("month")[y].transform("sum") > 0]
    x = pd.concat(
        [
            d[regs].astype(float),
            pd.get_dummies(d.unit, prefix="u", dtype=float),
            pd.get_dummies(d.month, prefix="m", drop_first=True, dtype=float),
        ],
        axis=1,
    )
    fit = sm.GLM(
        d[y].to_numpy(float), x, family=sm.families.Poisson(), var_weights=d.w.to_numpy()
    ).fit(tol=1e-12)
    return fit.params[regs]


def test_subgroup_estimate_equals_statsmodels_on_the_same_subset(matched: dict) -> None:
    from careval.impact.subgroups import set_attributes

    r, panel = matched["result"], matched["panel"]
    people = set_attributes(matched["study"].frame, matched["match"])
    row = next(x for x in r.subgroups if x["level"] == "with diabetes")
    in_level = people.has_diabetes.to_numpy() == 1
    assert row["n_treated"] == int(in_level.sum()) > 30
    sub = panel[in_level[panel["set"].to_numpy()]]
    assert sub[sub.treated == 1]["set"].nunique() == row["n_treated"]
    want = _glm_poisson_fe(
        sub, "emergency_admissions", ["impl", "post", "impl_treated", "post_treated"]
    )
    assert row["estimate"] == pytest.approx(want["post_treated"], abs=1e-5)
    assert row["rate_ratio"] == pytest.approx(np.exp(want["post_treated"]), rel=1e-5)
    assert row["rate_ratio_ci_low"] < row["rate_ratio"] < row["rate_ratio_ci_high"]
    levels = {(x["subgroup"], x["level"]): x["n_treated"] for x in r.subgroups}
    n = r.attrition["treated_matched"]
    assert levels[("sex", "women")] + levels[("sex", "men")] == n
    assert levels[("age", "under 75")] + levels[("age", "75 and over")] == n


def test_trajectories_are_the_panel_means_with_controls_weighted_as_matched(
    matched: dict,
) -> None:
    r, panel = matched["result"], matched["panel"]
    t = r.trajectories
    lo, hi = r.settings.event_window
    assert set(t.outcome) == set(r.outcomes) and t.month.between(lo, hi).all()
    for name, k in (("emergency_admissions", 6), ("bed_days", -3), ("inpatient_cost", 12)):
        at = panel[panel.k == k]
        tr = at[at.treated == 1][name]
        got = t[(t.outcome == name) & (t.month == k)].set_index("group")
        assert got.loc["treated", "mean"] == pytest.approx(tr.mean(), rel=1e-12)
        assert got.loc["treated", "people"] == len(tr)
        half = 1.959964 * tr.std(ddof=1) / np.sqrt(len(tr))
        assert got.loc["treated", "ci_high"] - got.loc["treated", "mean"] == pytest.approx(
            half, rel=1e-5
        )
        # The controls' mean weights each by 1/k, as the DiD does (each set's controls weigh 1).
        c = at[at.treated == 0]
        assert got.loc["control", "mean"] == pytest.approx(
            np.average(c[name], weights=c.w), rel=1e-9
        )
        assert got.loc["control", "people"] == c.person.nunique()
        assert got.loc["control", "ci_low"] < got.loc["control", "mean"]
    # The primary outcome's Figure 2 of before agrees.
    m = r.monthly_means.set_index("k")
    e = t[(t.outcome == "emergency_admissions") & (t.group == "treated")].set_index("month")
    np.testing.assert_allclose(e["mean"], m.treated.reindex(e.index))


@pytest.mark.filterwarnings("ignore:cov_type not fully supported")
def test_deaths_after_entry_cover_no_effect_and_equal_statsmodels(matched: dict) -> None:
    import statsmodels.api as sm

    from careval.impact.mortality import follow_up_rows
    from careval.impact.population import first_of

    r, study, res = matched["result"], matched["study"], matched["match"]
    m = r.mortality
    assert r.truth["deaths"] == 1.0  # the generator draws deaths without regard to plans
    assert m["rate_ratio_ci_low"] <= 1.0 <= m["rate_ratio_ci_high"]
    rows = follow_up_rows(study, res)
    x = sm.add_constant(rows[["treated"]])
    fit = sm.GLM(
        rows.deaths,
        x,
        family=sm.families.Poisson(),
        offset=np.log(rows.years),
        var_weights=rows.weight,
    ).fit(cov_type="cluster", cov_kwds={"groups": rows.person.to_numpy()})
    assert m["estimate"] == pytest.approx(fit.params["treated"], abs=1e-9)
    assert m["se"] == pytest.approx(fit.bse["treated"], rel=0.05)  # small-sample factor aside
    # The treated's deaths, straight from persons.death_date.
    f = study.frame
    sets = np.unique(res.treated_rows[res.pairs.treated])
    who = f.iloc[sets][["person_id", "entry_month"]]
    died = who.merge(matched["persons"][["person_id", "death_date"]], on="person_id")
    # Followed from the landmark, the first day of the month after entry.
    start = pd.to_datetime([first_of(int(k) + 1) for k in died.entry_month])
    end = pd.Timestamp(first_of(study.panel.first_month + study.panel.n_months))
    dd = pd.to_datetime(died.death_date)
    assert m["deaths_treated"] == int(((dd > start) & (dd < end)).sum()) > 0
    followed = (start < end) & ~(dd <= start)
    assert m["n_treated"] == int(followed.sum()) <= r.attrition["treated_matched"]
    # No one in the rows died before the landmark or has no time after it.
    assert (rows.death > rows.start).all() and (rows.years > 0).all()


def test_planted_truth_for_every_outcome_with_one(matched: dict, synth_dir: Path) -> None:
    truth = json.loads((synth_dir / "truth.json").read_text())["effects"]
    r = matched["result"]
    assert r.truth == {
        "emergency_admissions": truth["emergency_admissions"]["rate_ratio"],
        "ae_attendances": truth["ae_attendances"]["rate_ratio"],
        "elective_admissions": truth["elective_admissions"]["rate_ratio"],
        "outpatient_attendances": truth["outpatient_appointments"]["rate_ratio"],
        "community_contacts": truth["community_contacts"]["rate_ratio"],
        "mental_health_contacts": truth["mental_health_contacts"]["rate_ratio"],
        "social_care_packages": truth["social_care_packages"]["rate_ratio"],
        "care_home_days": truth["care_home_days"]["rate_ratio"],
        "deaths": 1.0,
    }
    d = r.to_dict()
    assert d["truth"] == r.truth and len(d["trajectories"]) == len(r.trajectories)
    assert d["mortality"]["rate_ratio"] == pytest.approx(r.mortality["rate_ratio"], abs=1e-6)
    # Each estimate carries its truth beside it, and whether its interval covers it.
    for name, planted in r.truth.items():
        o = d["mortality"] if name == "deaths" else d["outcomes"][name]
        assert o["truth"] == planted
        lo, hi = o["rate_ratio_ci_low"], o["rate_ratio_ci_high"]
        assert o["truth_covered"] is (lo <= planted <= hi)
    assert not {"truth", "truth_covered"} & set(d["outcomes"]["bed_days"])
