"""Clinical indicators (Figures 3 and 4) against independent pandas, scipy and statsmodels."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportions_ztest

from careval.cohort.eligibility import population_at
from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.data.codelists import codes_for
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.indicators import (
    IndicatorSettings,
    IndicatorsResult,
    evaluate_indicators,
    mcnemar_test,
    newey_west_lags,
)
from careval.indicators.readings import _add_months
from careval.report.publish.indicators import publish_indicators
from careval.report.sections.indicators import section as indicators_section
from careval.synthetic import clinical
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

DC = DisclosureSettings()  # the default disclosure rules

PERSONS = 30_000
COMPARISON = ["inner_nwl_other", "outer_nwl", "south_west_london", "rest_of_england"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30,000 people with the default effects (about 2 s to generate)."""
    out = tmp_path_factory.mktemp("ind") / "data"
    generate(out, SynthSettings(persons=PERSONS, seed=5))
    return out


@pytest.fixture(scope="module")
def null_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same population with every injected effect switched off (``effect=0``)."""
    out = tmp_path_factory.mktemp("ind0") / "data"
    generate(out, SynthSettings(persons=PERSONS, seed=5, effect=0.0))
    return out


@pytest.fixture(scope="module")
def result(data_dir: Path) -> IndicatorsResult:
    with Dataset(data_dir) as ds:
        return evaluate_indicators(ds, data_window(ds))


@pytest.fixture(scope="module")
def null_result(null_dir: Path) -> IndicatorsResult:
    with Dataset(null_dir) as ds:
        return evaluate_indicators(ds, data_window(ds))


# --- independent pandas derivations from the raw Parquet files -------------------------------


def _read(d: Path, name: str) -> pd.DataFrame:
    df = pd.read_parquet(d / f"{name}.parquet")
    for col in df.columns:
        if col.endswith("date") or col in ("birth_month", "date"):
            df[col] = pd.to_datetime(df[col])
    return df


def _first_dx(d: Path, condition: str) -> pd.Series:
    """Earliest GP (SNOMED) or hospital (ICD-10 primary diagnosis) code of ``condition``."""
    codes = codes_for(condition)
    c = _read(d, "conditions")
    snomed = {x.code for x in codes if x.code_system == "SNOMED"}
    icd = tuple(x.code for x in codes if x.code_system == "ICD10")
    gp = c[(c.code_system == "SNOMED") & c.code.isin(snomed)][["person_id", "date"]]
    gp_icd = c[(c.code_system == "ICD10") & c.code.str.startswith(icd)][["person_id", "date"]]
    s = _read(d, "inpatient_spells")
    hosp = s[s.primary_diagnosis.str.startswith(icd)][["person_id", "admission_date"]]
    both = pd.concat([gp, gp_icd, hosp.rename(columns={"admission_date": "date"})])
    return both.groupby("person_id").date.min()


def _registered(d: Path, day: pd.Timestamp) -> pd.DataFrame:
    """person_id and area of everyone registered and alive on ``day``."""
    r = _read(d, "registrations").merge(_read(d, "practices"), on="practice_code")
    p = _read(d, "persons")
    r = r[(r.start_date <= day) & (r.end_date.isna() | (r.end_date >= day))]
    r = r.sort_values("start_date").drop_duplicates("person_id", keep="last")
    r = r.merge(p, on="person_id")
    return r[r.death_date.isna() | (r.death_date > day)]


def _latest(m: pd.DataFrame, measure: str, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    """Each person's latest ``measure`` value with lo <= date < hi (day mean if several)."""
    x = m[(m.measure == measure) & (m.date >= lo) & (m.date < hi)]
    x = x.groupby(["person_id", "date"]).value.mean().reset_index()
    return x.sort_values("date").groupby("person_id").value.last()


def _control_by_pandas(d: Path, month: dt.date) -> pd.DataFrame:
    day = pd.Timestamp(month)
    reg = _registered(d, day)
    dx = _first_dx(d, "diabetes")
    dm = reg[reg.person_id.map(dx) <= day].set_index("person_id")
    m = _read(d, "measurements")
    lo = day - pd.DateOffset(months=12)
    latest = {k: _latest(m, k, lo, day) for k in ("hba1c", "total_cholesterol", "sbp", "dbp")}
    v = {k: s.reindex(dm.index) for k, s in latest.items()}
    flags = {
        "hba1c": (v["hba1c"].notna(), v["hba1c"] <= 59),
        "total_cholesterol": (v["total_cholesterol"].notna(), v["total_cholesterol"] <= 5),
        "bp": (
            v["sbp"].notna() & v["dbp"].notna(),
            (v["sbp"] <= 140) & (v["dbp"] <= 80),
        ),
    }
    rows = []
    for ind, (has, ok) in flags.items():
        for area, sel in [("pilot", dm.area == "pilot"), ("comparators", dm.area.isin(COMPARISON))]:
            rows.append(
                {
                    "indicator": ind,
                    "area": area,
                    "people": int(sel.sum()),
                    "with_reading": int((has & sel).sum()),
                    "in_control": int((ok & sel).sum()),
                }
            )
    return pd.DataFrame(rows)


# --- (a) share in control -----------------------------------------------------------------------


def test_share_in_control_equals_pandas(data_dir: Path, result: IndicatorsResult) -> None:
    months = [dt.date(2012, 4, 1), dt.date(2012, 5, 1), dt.date(2012, 6, 1)]
    want = {m: _control_by_pandas(data_dir, m) for m in months}
    got = result.diabetes_monthly
    for m, w in want.items():
        g = got[got.month == m].merge(w, on=["indicator", "area"], suffixes=("", "_pd"))
        assert len(g) == 6
        for col in ("people", "with_reading", "in_control"):
            assert (g[col] == g[f"{col}_pd"]).all(), (m, col)
        assert g.share_in_control.to_numpy() == pytest.approx(
            (g.in_control_pd / g.people_pd).to_numpy()
        )
    # the 3-month rolling average in June is the mean of April, May and June's shares
    for ind in ("hba1c", "total_cholesterol", "bp"):
        shares = []
        for m in months:
            w = want[m][(want[m].indicator == ind) & (want[m].area == "pilot")].iloc[0]
            shares.append(w.in_control / w.people)
        row = got[(got.month == months[-1]) & (got.indicator == ind) & (got.area == "pilot")]
        assert row.share_in_control_rolling.iloc[0] == pytest.approx(np.mean(shares))
    assert got.share_in_control.between(0, 1).all()
    assert (got.in_control <= got.with_reading).all()
    assert (got.with_reading <= got.people).all()


def test_denominator_matches_population_at(data_dir: Path, result: IndicatorsResult) -> None:
    day = dt.date(2013, 1, 1)
    with Dataset(data_dir) as ds:
        pop = population_at(ds, day).to_pandas()
    want = pop[pop.has_diabetes].groupby("area").size()
    got = result.diabetes_monthly
    got = got[(got.month == day) & (got.indicator == "hba1c")].set_index("area").people
    for area, n in want.items():
        assert got[area] == n
    assert got["comparators"] == want.reindex(COMPARISON).sum()


def test_series_starts_after_a_full_lookback(result: IndicatorsResult) -> None:
    months = sorted(set(result.diabetes_monthly.month))
    assert months[0] == dt.date(2010, 4, 1)  # the window starts in April 2009
    assert months[-1] == dt.date(2014, 3, 1)
    first = result.diabetes_monthly[result.diabetes_monthly.month == months[1]]
    assert first.share_in_control_rolling.isna().all()  # fewer than 3 months so far


# --- (b) before/after extraction and tests -------------------------------------------------------


def _by_hand(d: Path, person: str, measure: str, end: dt.date) -> tuple:
    plans = _read(d, "care_plans")
    plan = plans[plans.person_id == person].created_date.min()
    m = _read(d, "measurements")
    m = m[(m.person_id == person) & (m.measure == measure)].sort_values("date")
    before = m[(m.date >= plan - pd.DateOffset(months=12)) & (m.date <= plan)].iloc[-1]
    hi = min(plan + pd.DateOffset(months=15), pd.Timestamp(end))
    after = m[(m.date >= plan + pd.DateOffset(months=3)) & (m.date <= hi)].iloc[-1]
    return plan, before.date, before.value, after.date, after.value


def test_pairs_extracted_by_hand(data_dir: Path, result: IndicatorsResult) -> None:
    end = result.window[1]
    p = result.pairs["hba1c"]
    cp = p[(p.group == "care_planned") & p.before_hba1c.notna() & p.after_hba1c.notna()]
    for _, row in cp.iloc[[0, len(cp) // 2, -1]].iterrows():
        plan, b_date, b_val, a_date, a_val = _by_hand(data_dir, row.person_id, "hba1c", end)
        assert pd.Timestamp(row.index_date) == plan
        assert pd.Timestamp(row.before_date_hba1c) == b_date
        assert pd.Timestamp(row.after_date_hba1c) == a_date
        assert (row.before_hba1c, row.after_hba1c) == (b_val, a_val)
    # who is in: diabetes by the plan date, 3 months on a plan inside the window, alive then
    plans = _read(data_dir, "care_plans").groupby("person_id").created_date.min()
    dx = _first_dx(data_dir, "diabetes")
    death = _read(data_dir, "persons").set_index("person_id").death_date
    on = plans + pd.DateOffset(months=3)
    ok = (plans.index.map(dx) <= plans) & (on <= pd.Timestamp(end))
    ok &= death.reindex(plans.index).isna() | (death.reindex(plans.index) > on)
    assert set(p.person_id[p.group == "care_planned"]) == set(plans.index[ok])
    assert result.cohort["eligible"] == int(ok.sum())
    comp = p[p.group == "comparison"]
    assert len(comp) == result.cohort["comparison_eligible"] > 0
    assert not set(comp.person_id) & set(plans.index)


def test_paired_tests_equal_scipy_statsmodels(result: IndicatorsResult) -> None:
    t = result.before_after
    for ind, measures in (("hba1c", ["hba1c"]), ("bp", ["sbp", "dbp"])):
        p = result.pairs[ind]
        cp = p[p.group == "care_planned"]
        comp = p[p.group == "comparison"]
        for name in measures:
            both = cp[cp[f"before_{name}"].notna() & cp[f"after_{name}"].notna()]
            res = stats.ttest_rel(both[f"after_{name}"], both[f"before_{name}"])
            row = t[(t.quantity.str.startswith(f"mean {name} ")) & (t.analysis == "paired")].iloc[0]
            assert "ttest_rel" in row.test
            assert row.n_before == len(both)
            assert row.statistic == pytest.approx(res.statistic)
            assert row.p_value == pytest.approx(res.pvalue)
            ci = res.confidence_interval()
            assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
            unp = stats.ttest_ind(
                cp[f"after_{name}"].dropna(), cp[f"before_{name}"].dropna(), equal_var=False
            )
            row = t[(t.quantity.str.startswith(f"mean {name} ")) & (t.analysis != "paired")]
            assert row.iloc[0].p_value == pytest.approx(unp.pvalue)
            cb = comp[comp[f"before_{name}"].notna() & comp[f"after_{name}"].notna()]
            diff = stats.ttest_ind(
                both[f"after_{name}"] - both[f"before_{name}"],
                cb[f"after_{name}"] - cb[f"before_{name}"],
                equal_var=False,
            )
            assert row.iloc[1].analysis == "change vs comparison"
            assert row.iloc[1].p_value == pytest.approx(diff.pvalue)
        # share in control: McNemar (paired) and the two-proportion z-test (unpaired)
        both = cp[cp.before_control.notna() & cp.after_control.notna()]
        b, a = both.before_control.astype(bool), both.after_control.astype(bool)
        table = [[(b & a).sum(), (b & ~a).sum()], [(~b & a).sum(), (~b & ~a).sum()]]
        exact = table[0][1] + table[1][0] < 25
        want = mcnemar(np.array(table), exact=exact, correction=True)
        rows = t[t.quantity.str.startswith("share") & (t.indicator == ind)]
        paired = rows[rows.analysis == "paired"].iloc[0]
        assert paired.test.startswith("McNemar exact" if exact else "McNemar chi-square")
        assert paired.p_value == pytest.approx(want.pvalue)
        assert (paired.before_only, paired.after_only) == (table[0][1], table[1][0])
        ba, aa = cp.before_control.dropna(), cp.after_control.dropna()
        z, pz = proportions_ztest([aa.sum(), ba.sum()], [len(aa), len(ba)])
        unpaired = rows[rows.analysis.str.startswith("unpaired")].iloc[0]
        assert "proportions_ztest" in unpaired.test
        assert (unpaired.statistic, unpaired.p_value) == pytest.approx((z, pz))


def test_mcnemar_is_exact_when_discordant_pairs_are_few() -> None:
    before = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    after = np.array([1, 0, 1, 1, 1, 1, 1, 0])
    out = mcnemar_test(before, after, exact_below=25)
    assert out["test"].startswith("McNemar exact")
    assert out["p_value"] == pytest.approx(stats.binomtest(2, 5, 0.5).pvalue)
    big = mcnemar_test(np.repeat(before, 10), np.repeat(after, 10), exact_below=25)
    assert big["test"].startswith("McNemar chi-square")
    assert big["statistic"] == pytest.approx((abs(20 - 30) - 1) ** 2 / 50)


# --- (c) direction of the injected diabetes effect ----------------------------------------------


def _rows(r: IndicatorsResult, analysis: str) -> pd.DataFrame:
    t = r.before_after
    t = t[(t.analysis == analysis) & t.quantity.str.startswith("mean")]
    return t.assign(measure=t.quantity.str.split().str[1]).set_index("measure")


def test_care_planned_change_follows_truth(data_dir: Path, result: IndicatorsResult) -> None:
    truth = json.loads((data_dir / "truth.json").read_text())["effects"]["diabetes"]
    paired = _rows(result, "paired")
    vs = _rows(result, "change vs comparison")
    for name in ("hba1c", "total_cholesterol", "sbp", "dbp"):
        assert truth[name] < 0
        # The naive change holds the effect plus about 1.2 years of secular trend (clinical.py:
        # HbA1c +0.5 a year, cholesterol -0.03, SBP -1): still below zero for every measure.
        assert paired.loc[name, "change"] < 0, name
        # Against the comparison group the trend cancels: the estimate is the effect.
        assert vs.loc[name, "estimate"] < 0, name
    # truth.json's dbp is the total effect (direct plus through systolic pressure).
    for name in ("hba1c", "total_cholesterol", "sbp", "dbp"):
        se = (vs.loc[name, "ci_high"] - vs.loc[name, "ci_low"]) / (2 * 1.959964)
        assert abs(vs.loc[name, "estimate"] - truth[name]) < 3 * se, name
    # Significance is not asserted: at 30,000 people about 200 care-planned people have both
    # readings, and on seed 5 (since the care plans' monthly counts vary) HbA1c's and
    # cholesterol's intervals reach just above 0 while covering their truths. The coverage grid
    # (docs/benchmarks.md: 50 replicates a rate ratio) finds these estimates unbiased within
    # 1-7% of the effect with 86-100% coverage.
    # Each estimate of the effect carries the planted change beside it, the others none.
    for name in ("hba1c", "total_cholesterol", "sbp", "dbp"):
        row = vs.loc[name]
        assert row.truth == truth[name]
        assert row.truth_covered is bool(row.ci_low <= truth[name] <= row.ci_high)
    assert paired.truth.isna().all()
    shares = result.before_after[result.before_after.quantity.str.startswith("share")]
    assert shares.truth.isna().all() and shares.truth_covered.isna().all()


def test_no_effect_is_consistent_with_zero(null_dir: Path, null_result: IndicatorsResult) -> None:
    """With effect=0 the generator adds nothing after a plan, but person levels are stable and
    every measure has a secular trend: the naive before/after change is the trend times the time
    between the two readings (about 1.2 years), and the change against the comparison group
    (same calendar windows, same trend) is zero up to noise."""
    truth = json.loads((null_dir / "truth.json").read_text())["effects"]["diabetes"]
    assert truth["hba1c"] == 0
    vs = _rows(null_result, "change vs comparison")
    for name in ("hba1c", "total_cholesterol", "sbp", "dbp"):
        se = (vs.loc[name, "ci_high"] - vs.loc[name, "ci_low"]) / (2 * 1.959964)
        assert abs(vs.loc[name, "estimate"]) < 3 * se, name
        assert vs.loc[name, "p_value"] > 0.05, name  # no significant "improvement"
    p = null_result.pairs["hba1c"]
    cp = p[(p.group == "care_planned") & p.before_hba1c.notna() & p.after_hba1c.notna()]
    gap = ((cp.after_date_hba1c - cp.before_date_hba1c).dt.days / 365.25).mean()
    drift = clinical.MEASURE_MODEL["hba1c"][2] * gap
    paired = _rows(null_result, "paired").loc["hba1c"]
    se = (paired.ci_high - paired.ci_low) / (2 * 1.959964)
    assert abs(paired.change - drift) < 3 * se


# --- (d) dementia and the interrupted time series ------------------------------------------------


def test_dementia_counts_match_independent(data_dir: Path, result: IndicatorsResult) -> None:
    day = dt.date(2012, 2, 1)
    with Dataset(data_dir) as ds:
        pop = population_at(ds, day).to_pandas()
    old = pop[pop.of_age]
    dx = _first_dx(data_dir, "dementia")
    nxt = pd.Timestamp(day) + pd.DateOffset(months=1)
    new = old.person_id.map(dx).between(pd.Timestamp(day), nxt - pd.Timedelta(days=1))
    d = result.dementia_monthly
    got = d[d.month == day].set_index("area")
    for area in ("pilot", "outer_nwl"):
        sel = old.area == area
        assert got.loc[area, "registered"] == int(sel.sum())
        assert got.loc[area, "new_diagnoses"] == int((new & sel).sum())
        assert got.loc[area, "rate_per_1000"] == pytest.approx(1000 * (new & sel).sum() / sel.sum())


def test_its_equals_direct_statsmodels_fit(result: IndicatorsResult) -> None:
    d = result.dementia_monthly
    s = d[d.area == "pilot"].reset_index(drop=True)
    n = len(s)
    t = np.arange(n, dtype=float)
    t0 = int(np.flatnonzero(s.month == dt.date(2011, 9, 1))[0])
    post = (t >= t0).astype(float)
    x = sm.add_constant(np.column_stack([t, post, (t - t0) * post]))
    lags = math.floor(4 * (n / 100) ** (2 / 9))
    assert newey_west_lags(n) == lags == 3
    ols = sm.OLS(s.rate_per_1000.to_numpy(), x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    its = result.its["pilot"]
    assert its["hac_lags"] == lags
    assert f"maxlags={lags}" in its["ols"]["standard_errors"]
    for j, term in ((2, "level_change"), (3, "slope_change"), (1, "pre_slope")):
        c = its["ols"]["coefficients"][term]
        assert c["estimate"] == pytest.approx(ols.params[j])
        assert c["se"] == pytest.approx(ols.bse[j])
        assert (c["ci_low"], c["ci_high"]) == pytest.approx(tuple(ols.conf_int()[j]))
    glm = sm.GLM(
        s.new_diagnoses.to_numpy(float),
        x,
        family=sm.families.Poisson(),
        offset=np.log(s.registered.to_numpy(float)),
    ).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    c = its["poisson"]["coefficients"]["level_change"]
    assert c["rate_ratio"] == pytest.approx(np.exp(glm.params[2]))
    assert c["se"] == pytest.approx(glm.bse[2])
    f = result.its_fitted
    f = f[f.series == "pilot"]
    assert f.fitted_ols.to_numpy() == pytest.approx(ols.fittedvalues)


def test_pilot_dementia_diagnosis_rises_after_start(
    data_dir: Path, result: IndicatorsResult
) -> None:
    """The generator multiplies the pilot's diagnosis rate by DEMENTIA_PILOT_SPEEDUP from the
    first care plans. At 30,000 people (about 700 pilot 75+) a level change is about 1.6
    standard errors, so the check is on directions, including against the comparators, whose
    rate also rises with the generator's rising dementia onsets."""
    truth = json.loads((data_dir / "truth.json").read_text())["effects"]["dementia_case_finding"]
    assert truth["value"] == clinical.DEMENTIA_PILOT_SPEEDUP
    if truth["value"] <= 1:
        pytest.skip("no case-finding effect injected")
    its = result.its
    assert its["pilot"]["ols"]["coefficients"]["level_change"]["estimate"] > 0
    assert its["pilot"]["poisson"]["coefficients"]["level_change"]["rate_ratio"] > 1
    assert its["pilot"]["mean_rate_after"] > its["pilot"]["mean_rate_before"]
    assert its["pilot_minus_comparators"]["ols"]["coefficients"]["level_change"]["estimate"] > 0
    ratio = {k: its[k]["mean_rate_after"] / its[k]["mean_rate_before"] for k in its if k in (
        "pilot",
        "comparators",
    )}  # fmt: skip
    assert ratio["pilot"] > ratio["comparators"]


def test_dementia_care_plans_counted(data_dir: Path, result: IndicatorsResult) -> None:
    plans = _read(data_dir, "care_plans")
    dx = _first_dx(data_dir, "dementia")
    with_dem = plans.person_id.map(dx) <= plans.created_date
    p = result.dementia_care_plans
    assert p.care_plans.sum() == len(plans)
    assert p.care_plans_dementia.sum() == int(with_dem.sum())


# --- output ----------------------------------------------------------------------------------


def test_to_dict_is_json_and_section_renders(result: IndicatorsResult) -> None:
    block = result.to_dict()
    text = json.dumps(block, allow_nan=False)
    assert set(block) >= {"settings", "diabetes", "before_after", "dementia", "warnings"}
    assert block["dementia"]["its"]["pilot"]["ols"]["coefficients"]["level_change"]["ci_low"]
    assert "care_plans_definition" in block["dementia"]
    assert block["truth"]["diabetes"]["hba1c"] == -2.0
    assert '"monthly"' in text
    protected = publish_indicators(result, DC).to_dict()
    json.dumps(protected, allow_nan=False)
    for row in protected["dementia"]["monthly"]:
        assert row["new_diagnoses"] == "*" or row["new_diagnoses"] % 5 == 0
        if row["new_diagnoses"] == "*":
            assert row["rate_per_1000"] is None
    sec = indicators_section(result)
    assert (sec.id, sec.title) == ("indicators", "Clinical indicators")
    assert sec.html.count("<svg") == 2
    assert 'id="indicators-before-after"' in sec.html
    assert 'id="indicators-its"' in sec.html
    assert "McNemar" in sec.html and "Paired t-test" in sec.html


def test_tidy_and_summary(result: IndicatorsResult) -> None:
    tidy = result.tidy()
    assert list(tidy.columns) == [
        "indicator", "quantity", "analysis", "test", "n_before", "n_after", "before", "after",
        "change", "comparison_n", "comparison_change", "estimate", "ci_low", "ci_high",
        "statistic", "p_value", "both", "before_only", "after_only", "neither",
        "truth", "truth_covered",  # synthetic data: the planted change beside the estimate
    ]  # fmt: skip
    row = tidy[(tidy.quantity == "mean hba1c (mmol/mol)") & (tidy.analysis == "paired")].iloc[0]
    assert row.estimate == pytest.approx(row.after - row.before)
    assert row.estimate < 0  # the injected HbA1c fall
    tidy.loc[:, "estimate"] = 0.0  # a copy: the result keeps its table
    assert result.before_after.estimate.ne(0.0).any()
    text = result.summary()
    assert f"{result.cohort['eligible']} eligible" in text
    assert f"change {row.estimate:+.3g}" in text
    level = result.its["pilot"]["ols"]["coefficients"]["level_change"]["estimate"]
    assert f"level change {level:+.3g}" in text


def test_published_copy(result: IndicatorsResult) -> None:
    """publish_indicators returns a protected copy and leaves the true result alone."""
    before = json.dumps(result.to_dict(), allow_nan=False)
    pub = publish_indicators(result, DC)
    assert pub is not result and json.dumps(result.to_dict(), allow_nan=False) == before
    assert pub.pairs == {} and result.pairs
    assert all(v == "*" or v % 5 == 0 for v in pub.cohort.values())
    assert pub.cohort["eligible"] == 5 * round(result.cohort["eligible"] / 5)
    block = pub.to_dict()
    assert block["settings"] == result.to_dict()["settings"]
    assert all(
        rec[c] == "*" or rec[c] % 5 == 0
        for rec in block["diabetes"]["monthly"]
        for c in ("people", "with_reading", "in_control")
    )
    # The summary of the published copy quotes the published cohort, not the true one.
    assert f"{pub.cohort['eligible']} eligible care-planned people" in pub.summary()
    sec = indicators_section(pub)
    assert sec.html.count("<svg") == 2


def test_settings_round_trip_and_published_keys() -> None:
    st = IndicatorSettings(hba1c_max_mmol_mol=53.0, hac_lags=2, comparison_areas=("outer_nwl",))
    assert IndicatorSettings.from_json(st.to_json()) == st
    assert IndicatorSettings.from_dict(IndicatorSettings().to_dict()) == IndicatorSettings()
    with pytest.raises(ConfigError, match="hba1c_max_mmol_mol"):
        IndicatorSettings.from_dict({"hba1c_max": 50.0})
    assert list(IndicatorSettings().to_dict())[:4] == [
        "hba1c_max_mmol_mol",
        "total_cholesterol_max_mmol_l",
        "sbp_max_mmhg",
        "dbp_max_mmhg",
    ]
    assert st.after_window_months() == [3, 15]


def test_settings_block_keeps_the_published_keys(result: IndicatorsResult) -> None:
    block = result.to_dict()["settings"]
    assert list(block) == [
        "hba1c_max_mmol_mol", "total_cholesterol_max_mmol_l", "sbp_max_mmhg", "dbp_max_mmhg",
        "lookback_months", "rolling_months", "programme_areas", "comparison_areas",
        "min_months_on_plan",
        "after_window_months", "programme_start", "dementia_min_age", "hac_lags",
        "mcnemar_exact_below", "comparison_seed", "min_its_months",
    ]  # fmt: skip
    assert block["after_window_months"] == [3, 15]
    assert block["programme_start"] == "2011-09-01"


def test_add_months_is_dateoffset() -> None:
    dates = pd.to_datetime(["2011-01-31", "2012-02-29", "2011-08-31", "2010-12-15", "2011-03-01"])
    days = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
    for k in (-12, 3, 15):
        want = (dates + pd.DateOffset(months=k)).to_numpy().astype("datetime64[D]")
        assert (_add_months(days, k).astype("datetime64[D]") == want).all()


# --- (e) bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"hba1c_max_mmol_mol": -1.0}, "hba1c_max_mmol_mol"),
        ({"total_cholesterol_max_mmol_l": float("nan")}, "total_cholesterol_max_mmol_l"),
        ({"sbp_max_mmhg": "140"}, "sbp_max_mmhg"),
        ({"rolling_months": 0}, "rolling_months"),
        ({"lookback_months": True}, "lookback_months"),
        ({"min_months_on_plan": 36}, "min_months_on_plan"),
        ({"comparison_areas": ("pilot",)}, "comparison_areas"),
        # an area the data lack ("mars") is refused by the analysis: tests/test_area_names.py
        ({"comparison_areas": ("outer_nwl", "outer_nwl")}, "comparison_areas"),
        ({"programme_areas": ()}, "programme_areas"),
        ({"comparison_areas": "outer_nwl"}, "comparison_areas"),
        ({"comparison_areas": ()}, "comparison_areas"),
        ({"programme_start": dt.date(2011, 9, 15)}, "programme_start"),
        ({"programme_start": "2011-09-01"}, "programme_start"),
        ({"hac_lags": -1}, "hac_lags"),
        ({"dementia_min_age": 200}, "dementia_min_age"),
    ],
)
def test_bad_settings_raise(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        IndicatorSettings(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_window_raises(data_dir: Path) -> None:
    with Dataset(data_dir) as ds:
        with pytest.raises(ConfigError, match="window"):
            evaluate_indicators(ds, (dt.date(2014, 1, 1), dt.date(2010, 1, 1)))
        with pytest.raises(ConfigError, match="window"):
            evaluate_indicators(ds, ("2010-01-01", "2014-01-01"))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="IndicatorSettings"):
            evaluate_indicators(ds, data_window(ds), {"hba1c_max_mmol_mol": 50})  # type: ignore[arg-type]


def test_short_window_warns_instead_of_failing(data_dir: Path) -> None:
    with Dataset(data_dir) as ds:
        r = evaluate_indicators(ds, (dt.date(2011, 4, 1), dt.date(2012, 1, 31)))
    assert r.diabetes_monthly.empty
    assert any("look-back" in w for w in r.warnings)
    assert any("ITS" in w for w in r.warnings)
    json.dumps(r.to_dict(), allow_nan=False)
    indicators_section(r)


def _pilot_dementia_series(result: IndicatorsResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pilot's monthly dementia rows, and them as the series ``fit_its`` takes."""
    d = result.dementia_monthly
    s = d[d.area == "pilot"].reset_index(drop=True)
    series = pd.DataFrame(
        {
            "month_number": s.month_number.to_numpy(),
            "rate": s.rate_per_1000.to_numpy(),
            "count": s.new_diagnoses.to_numpy(),
            "exposure": s.registered.to_numpy(),
        }
    )
    return s, series


def test_a_failed_poisson_fit_is_reported_and_read_by_the_typed_copy(
    result: IndicatorsResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Degenerate counts make the Poisson ITS fail: the series says so (``skipped``), the OLS
    fit stands, and the published copy of the block reads it (no ResultsModelError)."""
    import careval.indicators.its as its_module
    from careval.report.publish.model import ItsSeries, Skipped

    s, series = _pilot_dementia_series(result)
    t0 = int(np.flatnonzero(s.month == dt.date(2011, 9, 1))[0])

    def singular(*args: object, **kwargs: object) -> object:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(its_module.sm, "GLM", singular)
    out, _ = its_module.fit_its(series, int(series.month_number[t0]), lags=3)
    assert out["poisson"] == {"skipped": "Poisson fit failed (Singular matrix)"}
    assert out["ols"]["coefficients"]["level_change"]["se"] > 0
    node = ItsSeries.from_json(out, "its.pilot")
    assert isinstance(node.poisson, Skipped) and node.poisson.skipped.startswith("Poisson")
    assert node.to_json() == out


def test_a_poisson_interval_too_wide_to_exponentiate_is_a_failed_fit(
    result: IndicatorsResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a small population a Poisson ITS can give an interval whose end overflows
    ``math.exp`` (seen on 3,000 people): the series' Poisson fit is skipped, not the run."""
    import math

    import careval.indicators.its as its_module

    _, series = _pilot_dementia_series(result)
    coefs = its_module._coefs

    def wide(res: object, exp: bool = False) -> object:
        if exp:
            math.exp(1e4)  # what an interval end of 10,000 on the log scale does
        return coefs(res, exp)  # type: ignore[arg-type]

    monkeypatch.setattr(its_module, "_coefs", wide)
    out, _ = its_module.fit_its(series, int(series.month_number[20]), lags=3)
    assert out["poisson"] == {"skipped": "Poisson fit failed (math range error)"}
    assert out["ols"]["coefficients"]["level_change"]["se"] > 0
