"""Time to event in the matched study (careval.impact.km, careval.impact.survival) against R
``survival`` (tests/fixtures/survival/make_fixture.R), lifelines and the synthetic truth."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.impact.finegray import fine_gray
from careval.impact.km import aalen_johansen, at_risk_people, kaplan_meier
from careval.impact.matching import match
from careval.impact.mortality import death_rate_ratio, follow_up_rows
from careval.impact.outcome_settings import BUILTIN_OUTCOMES
from careval.impact.population import covariates, study_population
from careval.impact.settings import ImpactSettings
from careval.impact.survival import cox_sandwich, cox_treated, event_rows, survival_analysis
from careval.report.publish.rules import published_counts, small_count
from careval.report.publish.survival import survival_published

FIX = Path(__file__).parent / "fixtures" / "survival"
WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
EMERGENCY = BUILTIN_OUTCOMES["emergency_admissions"]


@pytest.fixture(scope="module")
def fixture() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(pd.read_csv(FIX / f) for f in ("data.csv", "curves.csv", "cox.csv"))  # type: ignore[return-value]


def test_weighted_km_and_aalen_johansen_equal_r_survfit(fixture: tuple) -> None:
    data, curves, _ = fixture
    for arm in (0, 1):
        d, want = data[data.treated == arm], curves[curves.treated == arm]
        t, s, w = d.time.to_numpy(), d.status.to_numpy(), d.w.to_numpy()
        np.testing.assert_allclose(kaplan_meier(t, s > 0, w).at(want.time), want.km, atol=1e-12)
        np.testing.assert_allclose(aalen_johansen(t, s, w, 1).at(want.time), want.cif_1, atol=1e-12)
        np.testing.assert_allclose(aalen_johansen(t, s, w, 2).at(want.time), want.cif_2, atol=1e-12)
        # The two causes and survival add up to one at every time.
        tot = (
            kaplan_meier(t, s > 0, w).at(want.time)
            + aalen_johansen(t, s, w, 1).at(want.time)
            + aalen_johansen(t, s, w, 2).at(want.time)
        )
        np.testing.assert_allclose(tot, 1.0, atol=1e-12)


def test_weighted_km_equals_lifelines(fixture: tuple) -> None:
    from lifelines import KaplanMeierFitter

    data, _, _ = fixture
    grid = np.linspace(0, 40, 161)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer weights: intended
        ref = KaplanMeierFitter().fit(data.time, data.status > 0, weights=data.w)
    got = kaplan_meier(data.time.to_numpy(), data.status.to_numpy() > 0, data.w.to_numpy())
    np.testing.assert_allclose(got.at(grid), ref.survival_function_at_times(grid), atol=1e-12)


def test_aalen_johansen_equals_lifelines_with_unit_weights() -> None:
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(3)
    t = rng.exponential(10, 500)  # continuous: lifelines jitters tied times
    s = rng.choice([0, 1, 2], 500, p=[0.3, 0.5, 0.2])
    for cause in (1, 2):
        ref = AalenJohansenFitter(calculate_variance=False).fit(t, s, event_of_interest=cause)
        at = ref.cumulative_density_.index.to_numpy()
        got = aalen_johansen(t, s, None, cause).at(at)
        np.testing.assert_allclose(got, ref.cumulative_density_.iloc[:, 0], atol=1e-12)


def test_cox_equals_r_coxph_with_weights_and_clusters(fixture: tuple) -> None:
    data, _, cox = fixture
    rows = data.rename(columns={"w": "weight", "id": "person"})
    for model, event in (("admission", data.status == 1), ("any_event", data.status > 0)):
        want = cox[cox.model == model].iloc[0]
        got = cox_treated(rows, "time", event.to_numpy())
        assert got["estimate"] == pytest.approx(want.coef, abs=1e-6)
        # lifelines' robust variance with Efron ties differs from R's by 0.3% here (so it does
        # with unit weights too): its score residuals, not the weights or the clusters.
        assert got["se"] == pytest.approx(want.robust_se, rel=0.01)
        assert got["se"] != pytest.approx(want.naive_se, rel=0.03)  # the robust one, clustered
        assert got["hazard_ratio"] == pytest.approx(np.exp(want.coef), rel=1e-6)


@pytest.mark.parametrize("covariates", [["treated"], ["treated", "age"]])
def test_the_linear_time_sandwich_is_lifelines_robust_variance(covariates: list[str]) -> None:
    """cox_sandwich's running totals against lifelines' quadratic loop (robust=True,
    cluster_col): tied times and events, case weights, clusters of several rows, rows in no
    particular order."""
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(7)
    n = 600
    d = pd.DataFrame(
        {
            "time": rng.integers(1, 40, n).astype(float),  # many ties
            "event": (rng.random(n) < 0.6).astype(float),
            "treated": (rng.random(n) < 0.4).astype(float),
            "age": rng.normal(80, 6, n),
            "w": rng.choice([1.0, 0.5, 1 / 3], n),
            "person": rng.integers(0, 250, n),
        }
    )
    d["time"] += np.where(d.treated == 1, rng.exponential(5, n), 0).round()
    cols = ["time", "event", *covariates, "w"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-integer weights: intended
        ref = CoxPHFitter().fit(
            d[[*cols, "person"]],
            "time",
            "event",
            weights_col="w",
            cluster_col="person",
            robust=True,
        )
        plain = CoxPHFitter().fit(d[cols], "time", "event", weights_col="w")
    got = cox_sandwich(
        d[["time", "event"]],
        d[covariates],
        d.w,
        d.person,
        plain.params_.to_numpy(),
        plain.variance_matrix_.to_numpy(),
    )
    np.testing.assert_allclose(np.sqrt(np.diag(got)), ref.standard_errors_, rtol=1e-10)
    assert not np.allclose(np.sqrt(np.diag(got)), plain.standard_errors_, rtol=0.01)


def test_fine_gray_equals_r_finegray_and_coxph(fixture: tuple) -> None:
    data, _, cox = fixture
    want = cox[cox.model == "fine_gray"].iloc[0]
    got = fine_gray(data.time, data.status, data.treated, data.w, data.id)
    assert got["estimate"] == pytest.approx(want.coef, abs=1e-8)
    assert got["se"] == pytest.approx(want.robust_se, rel=1e-6)
    assert got["se_naive"] == pytest.approx(want.naive_se, rel=1e-6)
    # With no competing events it is the cause-specific Cox model (Breslow ties).
    plain = data.assign(status=np.where(data.status == 2, 0, data.status))
    r = fine_gray(plain.time, plain.status, plain.treated, plain.w, plain.id)
    ref = cox_treated(
        plain.rename(columns={"w": "weight", "id": "person"}), "time", plain.status.to_numpy()
    )
    assert r["estimate"] == pytest.approx(ref["estimate"], abs=0.02)  # Efron against Breslow


def test_people_at_risk_count_a_shared_control_once() -> None:
    got = at_risk_people(
        np.array([5.0, 2.0, 3.0, 1.0]), np.array([1, 1, 2, 3]), np.array([0, 2.5, 4])
    )
    assert got.tolist() == [3, 2, 1]


@pytest.fixture(scope="module")
def matched(synth_dir: Path) -> dict:
    """The default study's match on the shared synthetic dataset (seed 7, 12,000 people)."""
    st = ImpactSettings()
    with Dataset(synth_dir) as ds:
        study = study_population(ds, WINDOW, st, None)
        res = match(study.frame, "treated", covariates(study.frame), st.match)
        out = survival_analysis(ds, study, res, EMERGENCY)
        rows = event_rows(ds, study, res, EMERGENCY)
        spells = ds.table("inpatient_spells").to_pandas()
    return {"study": study, "match": res, "survival": out, "rows": rows, "spells": spells}


def test_first_emergency_admission_equals_pandas_on_the_spells(matched: dict) -> None:
    rows, study, sp = matched["rows"], matched["study"], matched["spells"]
    e = sp[
        sp.admission_method.isin(EMERGENCY.where["admission_method"])
        & ~sp.patient_classification.isin(["3", "4"])
    ]
    days = e.admission_date.to_numpy(dtype="datetime64[D]").astype(np.int64)
    look = pd.DataFrame(
        {"person_id": study.panel.person_id[rows.person.to_numpy()], "start": rows.start}
    )
    ev = look.reset_index().merge(
        pd.DataFrame({"person_id": e.person_id.to_numpy(), "day": days}), on="person_id"
    )
    ev = ev[ev.day >= ev.start].groupby("index").day.min()
    first = ev.reindex(range(len(rows))).to_numpy()
    hit = ~np.isnan(first) & (first < rows.limit) & (first <= rows.death)
    assert (rows.status == 1).to_numpy().tolist() == hit.tolist()
    t = (first[hit] - rows.start.to_numpy()[hit] + 0.5) / (365.25 / 12)
    np.testing.assert_allclose(rows.event_time.to_numpy()[hit], t)
    assert hit.sum() > 100


def test_admissions_are_followed_until_the_person_leaves(matched: dict, synth_dir: Path) -> None:
    """After leaving the practices of the data, a person's admissions are not in the extract:
    the first-admission follow-up stops at the first month they are not registered on its
    1st (from registrations.parquet, read here with pandas); death's follow-up does not."""
    rows, study = matched["rows"], matched["study"]
    reg = pd.read_parquet(synth_dir / "registrations.parquet")
    ids = study.panel.person_id[rows.person.to_numpy()]
    end = reg.groupby("person_id").end_date.max().reindex(ids)  # one registration each here
    end_m = pd.to_datetime(end).dt.to_period("M")
    seen = (end_m + 1).dt.start_time.to_numpy(dtype="datetime64[D]").astype(np.int64)
    dpm = 365.25 / 12
    start, limit, death = (rows[c].to_numpy() for c in ("start", "limit", "death"))
    left = ~np.isnan(seen.astype(float)) & end.notna().to_numpy()
    left &= (seen > start) & (seen < limit) & (seen <= death)  # left alive, during follow-up
    assert left.sum() > 20
    censored = left & (rows.status.to_numpy() == 0)
    np.testing.assert_allclose(rows.event_time.to_numpy()[censored] * dpm, (seen - start)[censored])
    assert (rows.event_time.to_numpy()[left] * dpm <= (seen - start)[left] + 1e-9).all()
    # death's follow-up runs on past the leaving
    alive = left & (rows.died.to_numpy() == 0)
    np.testing.assert_allclose(rows.death_time.to_numpy()[alive] * dpm, (limit - start)[alive])


def test_death_hazard_ratio_covers_no_effect_and_agrees_with_rate_ratio(matched: dict) -> None:
    """The generator plants no effect on death: the HR's interval covers 1.0, and it is close
    to the Poisson rate ratio of the same deaths (short follow-up, a steady death rate)."""
    s = matched["survival"]
    cox = s["death"]["cox"]
    assert cox["hazard_ratio_ci_low"] <= 1.0 <= cox["hazard_ratio_ci_high"]
    rr = death_rate_ratio(follow_up_rows(matched["study"], matched["match"]))
    assert rr["rate_ratio_ci_low"] <= 1.0 <= rr["rate_ratio_ci_high"]
    assert abs(cox["estimate"] - rr["estimate"]) < 0.5 * cox["se"]
    assert s["death"]["arms"]["treated"]["events"] == rr["deaths_treated"]
    assert s["death"]["arms"]["controls"]["events"] == rr["deaths_controls"]


def test_treated_curves_equal_lifelines_on_the_study_rows(matched: dict) -> None:
    from lifelines import AalenJohansenFitter, KaplanMeierFitter

    rows, s = matched["rows"], matched["survival"]
    months = np.asarray(s["months"])
    t = rows[rows.treated == 1]
    ref = KaplanMeierFitter().fit(t.death_time, t.died)
    np.testing.assert_allclose(
        s["death"]["arms"]["treated"]["survival"], ref.survival_function_at_times(months)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties jittered: none among the treated's half-days
        aj = AalenJohansenFitter(calculate_variance=False, jitter_level=1e-9).fit(
            t.event_time, t.status, event_of_interest=1
        )
    ref_cif = aj.cumulative_density_.iloc[:, 0]
    # lifelines jitters tied times at random, so an event at exactly a month's point can land
    # just before or after it: read its curve a hair after each point (ours counts the point).
    after = months + 1e-4
    want = ref_cif.reindex(ref_cif.index.union(after)).ffill().fillna(0.0).loc[after]
    np.testing.assert_allclose(
        s["first_admission"]["arms"]["treated"]["incidence"], want, atol=1e-6
    )


def test_panel_months_lost_to_death_follow_the_deaths(matched: dict) -> None:
    rows, s = matched["rows"], matched["survival"]
    t = rows[rows.treated == 1]
    lost = s["panel_deaths"]["treated"]
    assert lost["person_months_lost_to_death"] == t.months_lost.sum() > 0
    assert (t.months_lost[t.died == 0] == 0).all()
    # Followed plus lost is every calendar month from entry to the end of the data.
    span = pd.to_datetime(t.limit, unit="D").dt.to_period("M").astype("int64") - pd.to_datetime(
        t.start, unit="D"
    ).dt.to_period("M").astype("int64")
    assert lost["person_months_followed"] + lost["person_months_lost_to_death"] == span.sum()


def test_published_survival_shows_no_small_count(matched: dict) -> None:
    s, n = matched["survival"], matched["match"].n_treated_matched
    d = DisclosureSettings()
    pub = survival_published(s, n, d)
    small = [p for p, v in published_counts(pub) if small_count(v, d)]
    assert small == []
    for part in ("death", "first_admission"):
        for arm in ("treated", "controls"):
            a, true = pub[part]["arms"][arm], s[part]["arms"][arm]
            assert any(v is None for v in a["survival"])  # some points withheld on 12k people
            # Between two published points the people with the event are none or 8+.
            shown = [i for i, v in enumerate(a["survival"]) if v is not None]
            steps = np.diff(np.asarray(true["events_by"])[shown])
            assert ((steps == 0) | (steps >= 8)).all()
    assert survival_published(s, 5, d) == {
        "time_unit": "months",
        "note": "withheld: too few people",
    }


def test_cox_gives_a_reason_not_a_number_when_it_cannot_estimate() -> None:
    rows = pd.DataFrame(
        {"time": [1.0, 2, 3, 4, 5, 6], "treated": [1, 1, 1, 0, 0, 0], "weight": 1.0}
    ).assign(person=range(6))
    none = cox_treated(rows, "time", np.array([1, 1, 1, 0, 0, 0]))
    assert none == {"model": "cox", "note": "no events in one arm"}
    apart = cox_treated(rows, "time", np.array([1, 0, 1, 0, 1, 0]))  # treated events all first
    assert "hazard_ratio" not in apart and "no finite" in apart["note"]
