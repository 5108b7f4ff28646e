"""The output audit: a count of 1-7 planted in each kind of published table is caught.

Each test builds a small published result by hand, the way ``results.json`` holds it, with one
count of 1-7 recoverable by arithmetic (share x base, rate x person-time, a total minus its
parts), and checks that :func:`careval.report.publish.audit.audit_results` refuses it, naming
the table; the same table published by the derived-figure rule passes. The figures are made
with :mod:`fractions` from the counts, not copied from a run. The audit of the small dataset
flagged as real (it must pass) is in ``tests/test_report_disclosure.py``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from careval.disclosure import DisclosureSettings
from careval.errors import CarevalError
from careval.report.publish.audit import DisclosureError, audit_results
from careval.report.publish.derived import derived, ratio_of_published
from careval.report.publish.recovery import count_range, half_unit, recoveries

DC = DisclosureSettings()


def share(n: int, b: int, digits: int = 6) -> float:
    """n / b printed to ``digits`` decimals, as the analyses publish their shares."""
    return round(float(Fraction(n, b)), digits)


def refused(results: dict[str, Any], table: str, *words: str) -> str:
    """The audit's message for ``results``, which must name ``table`` and ``words``."""
    with pytest.raises(DisclosureError) as e:
        audit_results(results, DC)
    msg = str(e.value)
    assert isinstance(e.value, CarevalError)  # the CLI prints it in one line and exits 2
    assert table in msg and "nothing was written" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_count_ranges_of_published_counts() -> None:
    assert count_range(65, DC) == (63, 67)  # the counts that round to 65
    assert count_range(10, DC) == (8, 12)
    assert count_range("*", DC) == (1, 7)
    assert count_range(0, DC) == (0, 0)
    assert count_range(66, DC) == (66, 66)  # no multiple of 5: an unrounded count, exact
    assert half_unit(0.890625) == 5e-07 and half_unit(118.84) == pytest.approx(0.005)


def test_indicators_monthly_57_of_64() -> None:
    """The issue's example: 0.890625 beside 65 people and 55 with a reading is 57 of 64, so 7
    without a reading. From the published counts: 55/65, which gives back nothing."""
    assert Fraction(57, 64) == Fraction("0.890625")
    row = {"month": "2010-04-01", "area": "pilot", "indicator": "hba1c", "people": 65}
    row |= {"with_reading": 55, "share_with_reading": 0.890625, "in_control": 40}
    row |= {"share_in_control": share(40, 65, 7)}
    results = {"indicators": {"diabetes": {"monthly": [row]}}}
    msg = refused(results, "indicators.diabetes.monthly", "share_with_reading", "minus numerator 7")
    assert "1 count(s)" in msg
    row["share_with_reading"] = derived(57, 64, DC)
    assert row["share_with_reading"] == float(Fraction(55, 65))
    audit_results(results, DC)


def test_risk_subgroup_ppv() -> None:
    """7 of 9 flagged people admitted, beside 10 flagged: 7/9 is the only pair of 8-12 flagged
    that gives 0.777778, so the 7 (and the 2 not admitted) come back."""
    row = {"dimension": "age", "group": "85+", "people": 40, "events": 20}
    row |= {"flagged_top_1pct": 10, "ppv_top_1pct": share(7, 9), "sensitivity_top_1pct": None}
    results = {"risk": {"by_subgroup": [row]}}
    refused(results, "risk.by_subgroup", "ppv_top_1pct", "numerator 7")
    row["ppv_top_1pct"] = derived(7, 9, DC)  # 7 is suppressed: withheld
    assert row["ppv_top_1pct"] is None
    audit_results(results, DC)
    row |= {"events": "*", "auc": 0.71}  # an AUC of 1-7 events (a count over events x others)
    refused(results, "risk.by_subgroup", "auc", "events")


def test_table_2_rate_times_person_time() -> None:
    """5 admissions in 1,234 person-years, published as * beside the rate 0.004052: the
    person-years times the rate give back 5."""
    rate = round(float(Fraction(5, 1234)), 6)
    row = {"group": "all_eligible", "start": "2011-04-01", "area": "outer_nwl"}
    row |= {"people_after": 400, "admissions_after": "*", "person_years_after": 1234.0}
    row |= {"rate_after": rate, "admissions_before": 20, "person_years_before": 1240.0}
    row |= {"rate_before": round(float(Fraction(20, 1240)), 6), "pct_change": None}
    results = {"monitoring": {"table2": [row]}}
    refused(results, "monitoring.table2", "rate_after", "rate x person-time gives 5")
    row["rate_after"] = ratio_of_published("*", 1234.0)
    assert row["rate_after"] is None
    audit_results(results, DC)
    row["pct_change"] = -12.5  # a change resting on the suppressed admissions
    refused(results, "monitoring.table2", "pct_change", "suppressed count")


def test_data_summary_rate_per_1000_person_years() -> None:
    """A rate per 1,000 person-years printed to 2 decimals from 6 admissions (not published)
    in 5,217.3 person-years gives 6 back; from the published * it is withheld."""
    row = {"area": "pilot", "year": "2009/10", "person_years": 5217.0}
    row |= {"emergency_admissions": "*"}
    row |= {"emergency_per_1000_py": round(float(1000 * Fraction(6) / Fraction("5217")), 2)}
    results = {"data": {"activity_by_year": [row]}}
    refused(results, "data.activity_by_year", "rate x person-time gives 6")


def test_matched_study_balance_mean_of_a_binary_covariate() -> None:
    """1 of 186 matched treated people with epilepsy: 0.005376 beside 185 matched treated."""
    row = {"covariate": "has_epilepsy", "type": "binary", "mean_treated_after": share(1, 186)}
    results = {"impact": {"attrition": {"treated_matched": 185}, "balance": [row]}}
    refused(results, "impact.balance", "mean_treated_after", "numerator 1")
    row["mean_treated_after"] = derived(1, 186, DC)
    assert row["mean_treated_after"] is None
    audit_results(results, DC)
    # A count covariate (admissions in 3 months) is a mean of a count over people too.
    row2 = {"covariate": "emergency_admissions_3m", "type": "continuous"}
    row2["mean_treated_after"] = share(4, 186)
    results["impact"]["balance"] = [row2]
    refused(results, "impact.balance", "numerator 4")
    row2["covariate"] = "age"  # a mean age is no count
    audit_results(results, DC)


def test_programme_total_minus_the_mdgs() -> None:
    """Unrounded counts beside a suppressed MDG: the month's total minus the others gives 2."""
    row = {"month": "2012-01-01", "MDG01": "*", "MDG02": 23, "MDG03": 41, "total": 66}
    results = {"programme": {"plans_by_mdg": [row]}}
    refused(results, "programme.plans_by_mdg", "MDG01", "other parts gives 2")
    row |= {"MDG02": 25, "MDG03": 40, "total": 65}  # rounded: 66-63 could be 1 to 9
    audit_results(results, DC)


def test_total_minus_parts_across_rows_and_in_a_block() -> None:
    """The matched study's attrition (a block) and Table 2's groups (rows) with exact counts."""
    attrition = {
        "treated_alive_and_registered_at_entry": 233,
        "treated_matched": 186,
        "unmatched_outside_caliper": 44,
        "unmatched_no_control_in_stratum": "*",
    }
    results: dict[str, Any] = {"impact": {"attrition": attrition}}
    refused(results, "impact.attrition", "unmatched_no_control_in_stratum", "gives 3")
    attrition |= {"treated_alive_and_registered_at_entry": 235, "treated_matched": 185}
    attrition["unmatched_outside_caliper"] = 45
    audit_results(results, DC)
    key = {"start": "2011-04-01", "area": "pilot"}
    rows = [
        {**key, "group": "all_eligible", "people_after": 101, "admissions_after": 30},
        {**key, "group": "under_75_with_diabetes", "people_after": "*", "admissions_after": 10},
        {**key, "group": "aged_75_plus_with_diabetes", "people_after": 96, "admissions_after": 20},
    ]
    results = {"monitoring": {"table2": rows}}
    refused(results, "monitoring.table2", "under_75_with_diabetes.people_after", "gives 5")


def test_surveys_and_qualitative_shares() -> None:
    """37 of 39 agreeing, published as 35 of 40 with the share of the true counts: 2 did not."""
    item = {"question": "q1", "n_valid": 40, "n_agree": 35, "share_agree": share(37, 39, 4)}
    results: dict[str, Any] = {"surveys": {"surveys": {"gps": {"items": [item]}}}}
    refused(results, "surveys.surveys.gps.items", "share_agree", "minus numerator 2")
    item["share_agree"] = round(float(Fraction(35, 40)), 4)
    audit_results(results, DC)
    overall = [{"role": "chair", "utterances": "*", "share_utterances": share(3, 400, 4)}]
    transcripts = {"n_utterances": 400, "overall": overall}
    results = {"qualitative": {"transcripts": transcripts}}
    refused(results, "qualitative.transcripts.overall", "share_utterances")


def test_rolling_share_must_be_the_mean_of_the_published_months() -> None:
    months = [share(55, 65, 7), share(60, 65, 7), share(50, 65, 7)]
    rows = [
        {
            "area": "pilot",
            "indicator": "bp",
            "share_in_control": v,
            "share_in_control_rolling": None,
        }
        for v in months
    ]
    results = {"indicators": {"settings": {"rolling_months": 3}, "diabetes": {"monthly": rows}}}
    rows[2]["share_in_control_rolling"] = sum(months) / 3
    audit_results(results, DC)
    # The mean of the true monthly shares (57 of 64, 61 of 66, 50 of 64) gives a month back.
    rows[2]["share_in_control_rolling"] = float(
        (Fraction(57, 64) + Fraction(61, 66) + Fraction(50, 64)) / 3
    )
    refused(results, "indicators.diabetes.monthly", "share_in_control_rolling")


def test_the_audit_reports_every_recovery_with_its_place() -> None:
    rows = [
        {"month": f"2010-0{m}-01", "area": "pilot", "indicator": "hba1c", "people": 65}
        | {"with_reading": 55, "share_with_reading": 0.890625}
        for m in (1, 2)
    ]
    found = recoveries({"indicators": {"diabetes": {"monthly": rows}}}, DC)
    assert [f.row.split(" [")[0] for f in found] == ["row 0", "row 1"]
    assert found[0].columns == ("share_with_reading", "with_reading", "people")
    assert "month=2010-01-01" in found[0].row
    # 0.890625 is 57 of 64 only (bases 63-67, readings 53-57): the 64 - 57 without a reading
    assert {f.how for f in found} == {"share x base gives base minus numerator 7"}


def test_calibration_deciles_follow_the_rule() -> None:
    """The calibration chart's observed share: 3 of 1,006 admitted (a count of 1-7) withheld;
    61 of 1,006 published as 60 of 1,005 (rounded counts)."""
    import pandas as pd

    from careval.report.publish.risk import protect_deciles

    df = pd.DataFrame(
        {
            "decile": [1, 2],
            "predicted": [0.004, 0.06],
            "observed": [float(Fraction(3, 1006)), float(Fraction(61, 1006))],
            "people": [1006, 1006],
        }
    )
    out = protect_deciles(df, DC)
    assert out.people.tolist() == [1005, 1005]
    assert pd.isna(out.observed[0]) and out.observed[1] == float(Fraction(60, 1005))
    assert out.predicted.tolist() == [0.004, 0.06]  # a model figure, left
    assert df.observed[0] == float(Fraction(3, 1006))  # a copy


def test_balance_means_from_the_published_attrition() -> None:
    """Binary and count covariates: the rounded number over the people as published (a
    suppressed base withholds them); SMDs of a binary covariate from the published means."""
    import pandas as pd

    from careval.report.publish.impact import balance_published

    true = {"treated_alive_and_registered_at_entry": 233, "candidate_control_rows": 8027}
    true |= {"treated_matched": 186}
    shown = {"treated_alive_and_registered_at_entry": "*", "candidate_control_rows": 8025}
    shown |= {"treated_matched": 185}
    row = {"type": "binary", "smd_before": 0.3, "smd_after": 0.2, "imbalanced_after": True}
    row |= {"mean_treated": 112 / 233, "mean_control_before": 4246 / 8027}
    row |= {"mean_treated_after": 90 / 186, "mean_control_after": 88 / 186}
    df = pd.DataFrame(
        [
            {"covariate": "female", **row},
            {"covariate": "age", **row, "type": "continuous", "mean_treated_after": 79.5},
        ]
    )
    out = balance_published(df, true, shown, DC).set_index("covariate")
    female = out.loc["female"]
    assert female.mean_treated is None  # its base is published as *
    assert female.mean_control_before == float(Fraction(4245, 8025))
    assert female.mean_treated_after == float(Fraction(90, 185))
    assert female.mean_control_after == float(Fraction(90, 185))  # 88 rounds to 90
    assert pd.isna(female.smd_before) and pd.isna(female.smd_after)  # no published p
    assert out.loc["age"].mean_treated_after == 79.5  # no count: unchanged


def test_matched_study_mean_before_entry_over_person_months() -> None:
    """5 elective admissions in the 24 months before entry of 186 matched treated people:
    the mean per person-month beside 185 matched gives the 5 back (only 186 x 24 fits)."""
    mean = round(float(Fraction(5, 186 * 24)), 6)
    outcome = {"model": "poisson", "mean_treated_before": mean}
    results = {
        "impact": {
            "settings": {"pre_months": 24},
            "attrition": {"treated_matched": 185},
            "outcomes": {"elective_admissions": outcome},
        }
    }
    refused(results, "impact.outcomes.elective_admissions", "mean_treated_before", "numerator 5")
    outcome["mean_treated_before"] = round(float(Fraction(100, 185 * 24)), 6)  # 100 published
    audit_results(results, DC)


def test_naive_means_from_the_published_counts() -> None:
    """The naive comparison: 76 admissions in the 12 months before entry of 186 matched treated
    (published 185) give 75 / (185 x 12); the mean after (its months unknown) is withheld."""
    from types import SimpleNamespace

    from careval.report.publish.impact import _naive_means

    attrition = {"treated_matched": 186}
    true = SimpleNamespace(attrition=attrition)
    naive = {"mean_before": float(Fraction(76, 186 * 12)), "mean_after": 0.04, "n_obs": 1670}
    r = SimpleNamespace(attrition={"treated_matched": 185}, naive=naive)
    _naive_means(r, true, DC)  # type: ignore[arg-type]
    assert naive["mean_before"] == float(Fraction(75, 185 * 12)) and naive["mean_after"] is None
    results = {"impact": {"attrition": {"treated_matched": 185}, "naive": naive}}
    audit_results(results, DC)
    naive["mean_before"] = round(float(Fraction(6, 186 * 12)), 6)  # 6 admissions before
    refused(results, "impact.naive", "mean_before", "numerator 6")


def test_design_baseline_rate_over_the_histories() -> None:
    """The design's baseline rate is 12 x the histories' admissions in their first month over
    the histories: 3 admissions among 64 histories (0.5625 a person-year) gives the 3 back
    beside 65 published histories; by the rule it is withheld, and 40 of 64 is 40 of 65."""
    results = {"design": {"baseline_people": 65, "baseline_rate_per_person_year": 0.5625}}
    assert Fraction("0.5625") == 12 * Fraction(3, 64)
    refused(results, "design", "baseline_rate_per_person_year", "numerator 3")
    assert derived(3, 64, DC, scale=12) is None
    results["design"]["baseline_rate_per_person_year"] = derived(40, 64, DC, scale=12)
    assert results["design"]["baseline_rate_per_person_year"] == float(12 * Fraction(40, 65))
    audit_results(results, DC)


def test_publish_design_and_figure_2_follow_the_rule() -> None:
    """The publication of the design and of Figure 2's control arm: from published counts."""
    import pandas as pd

    from careval.design.power import DesignResult, DesignSettings
    from careval.report.publish.design import publish_design

    res = DesignResult(DesignSettings(), 300, 12 * 40 / 64, [], None, [], "test", 64)
    out = publish_design(res, DC)
    assert out.baseline_people == 65
    assert out.baseline_rate_per_person_year == pytest.approx(float(12 * Fraction(40, 65)))
    assert res.baseline_rate_per_person_year == 12 * 40 / 64  # the true result unchanged
    few = publish_design(DesignResult(DesignSettings(), 300, 12 * 3 / 64, [], None, [], "", 64), DC)
    assert few.baseline_rate_per_person_year is None

    from careval.impact.outcomes import monthly_means

    panel = pd.DataFrame(
        {
            "k": [0] * 12,
            "treated": [1.0] * 2 + [0.0] * 10,
            "set": [1, 2] + [1] * 5 + [2] * 5,
            "y": [1, 0] + [1, 1, 1, 0, 0] + [0, 0, 0, 0, 1],
            "w": [1.0] * 2 + [0.2] * 10,  # each set's 5 controls weigh 1/5
        }
    )
    m = monthly_means(panel, "y", (0, 0))
    assert m.control_rows.tolist() == [10] and m.matched_controls.tolist() == [0.4]
    assert m.treated_people.tolist() == [2]


def test_the_quality_chart_is_redrawn_from_published_figures() -> None:
    """Each month's quality point is the items met over plans x items: from the published
    (rounded) counts, a month of fewer than 8 plans left out, the chart redrawn on the rest."""
    import pandas as pd

    from careval.monitoring.programme import ProgrammeResult, ProgrammeSettings
    from careval.monitoring.spc import xmr
    from careval.report.publish.programme import publish_programme

    months = ["2012-01-01", "2012-02-01", "2012-03-01", "2012-04-01"]
    plans = [5, 64, 40, 23]  # January's 5 plans: a mean of fewer than 8 is withheld
    met = [7, 150, 61, 50]  # quality items met, out of plans x 3 items
    true = [m / (3 * n) for m, n in zip(met, plans, strict=True)]
    chart = xmr(true, pd.to_datetime(months).to_numpy(), improvement="increase")
    result = ProgrammeResult(
        ProgrammeSettings(),
        pd.DataFrame({"month": months, "MDG01": plans}),
        pd.DataFrame(),
        pd.DataFrame({"item": ["a", "b", "c"], "share_of_plans": [0.5, 0.6, 0.7]}),
        pd.DataFrame(),
        pd.DataFrame(),
        pd.DataFrame(),
        {},
        charts={"care_plan_quality": chart},
    )
    out = publish_programme(result, DC).charts["care_plan_quality"]
    want = [Fraction(150, 3 * 65), Fraction(60, 3 * 40), Fraction(50, 3 * 25)]
    assert list(out.points["value"]) == pytest.approx([float(w) for w in want])
    assert len(out.points) == 3  # January (5 plans) left out
    assert result.charts["care_plan_quality"].points["value"][0] == pytest.approx(7 / 15)
