"""The report's building blocks: disclosure rules, secondary suppression, Table 3 rules, outputs.

Hand-made tables check each rule where the answer is known; the run-based tests (browser,
reproducibility) are in ``test_report_run.py`` and the real-data disclosure test in
``test_report_disclosure.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.report.objectives import (
    ACHIEVED,
    NO_EVIDENCE,
    NOT_SHOWN,
    OPPOSITE,
    PARTLY,
    TOO_EARLY,
    WITHHELD,
    combine,
    judge,
    table3,
)
from careval.report.page import Section, fmt_count, table_html
from careval.report.publish.audit import DisclosureError, audit_page
from careval.report.publish.model import ABSENT, Published, ResultsModelError
from careval.report.publish.publication import canonical
from careval.report.publish.rules import (
    SUPPRESSED,
    Margin,
    is_small,
    protect_json,
    protect_mapping,
    protect_table,
    protect_value,
    secondary_suppression,
    smallest_published,
    suppressed_range,
)
from careval.report.sections import SECTION_ORDER, in_order
from careval.report.seed import seed_shaped
from careval.report.workbook import write_workbook
from careval.synthetic.settings import SynthSettings

DC = DisclosureSettings()  # the default disclosure rules
STRICT = DisclosureSettings(threshold=11, rounding_base=10)


def test_primary_rule_suppresses_1_to_7_and_rounds_the_rest() -> None:
    assert [protect_value(v, DC) for v in (0, 1, 7, 8, 12, 13, 1234)] == [
        0,
        SUPPRESSED,
        SUPPRESSED,
        10,
        10,
        15,
        1235,
    ]
    # Idempotent: a published value is published unchanged.
    assert [protect_value(protect_value(v, DC), DC) for v in range(40)] == [
        protect_value(v, DC) for v in range(40)
    ]
    assert protect_value(None, DC) is None and protect_value(float("nan"), DC) is None


def test_secondary_suppression_stops_recovery_by_subtraction() -> None:
    # 3 + 40 + 55 = 98: with only "a" hidden, 98 - 40 - 55 would give it away.
    raw = {"a": 3, "b": 40, "c": 55, "total": 98}
    hidden = secondary_suppression(raw, {"a"}, [Margin(("a", "b", "c"), "total")])
    assert hidden == {"a", "b"}  # the smallest other part
    # Two hidden already: nothing more to do.
    assert secondary_suppression({**raw, "b": 5}, {"a", "b"}, [Margin(("a", "b", "c"), "total")])
    assert secondary_suppression(
        {**raw, "b": 5}, {"a", "b"}, [Margin(("a", "b", "c"), "total")]
    ) == {"a", "b"}
    # A single part: the total goes (it equals the part).
    assert secondary_suppression({"a": 4, "t": 4}, {"a"}, [Margin(("a",), "t")]) == {"a", "t"}


def test_secondary_suppression_in_a_two_way_table_cascades_until_safe() -> None:
    # Rows r1, r2 with a total column; and a total row. r1c1 = 2 is small.
    raw = {
        ("r1", "c1"): 2, ("r1", "c2"): 30, ("r1", "t"): 32,
        ("r2", "c1"): 20, ("r2", "c2"): 50, ("r2", "t"): 70,
        ("t", "c1"): 22, ("t", "c2"): 80, ("t", "t"): 102,
    }  # fmt: skip
    margins = [Margin(((r, "c1"), (r, "c2")), (r, "t")) for r in ("r1", "r2", "t")] + [
        Margin((("r1", c), ("r2", c)), ("t", c)) for c in ("c1", "c2", "t")
    ]
    hidden = secondary_suppression(raw, {("r1", "c1")}, margins)
    # Every margin now has none or at least two hidden entries.
    for m in margins:
        assert sum(c in hidden for c in (*m.parts, m.total)) != 1
    # In particular r1c1 cannot be had from its row or its column.
    assert ("r1", "c2") in hidden and ("r2", "c1") in hidden


def test_protect_table_with_row_and_group_margins() -> None:
    people = pd.DataFrame(
        {
            "area": ["a", "b"],
            "eligible": [48, 200],
            "g1": [3, 100],
            "g2": [20, 60],
            "g3": [25, 40],
            "share": [0.2, 0.3],
        }
    )
    out = protect_table(
        people,
        ["eligible", "g1", "g2", "g3"],
        DC,
        row_margins=[(["g1", "g2", "g3"], "eligible")],
        rate_counts={"share": ["eligible"]},
    )
    first = out.iloc[0].to_dict()
    assert first["g1"] == SUPPRESSED and first["g2"] == SUPPRESSED  # 20 < 25: the smaller
    assert first["g3"] == 25 and first["eligible"] == 50
    assert out.iloc[1].tolist()[1:5] == [200, 100, 60, 40]
    # Across rows: "all" is the sum of the groups within each area.
    t2 = pd.DataFrame(
        {
            "area": ["x"] * 4,
            "group": ["all", "g1", "g2", "g3"],
            "people_after": [90, 6, 44, 40],
            "rate": [0.1, 0.2, 0.3, 0.4],
        }
    )
    pub = protect_table(
        t2,
        ["people_after"],
        DC,
        group_margin=("group", ["area"], ["g1", "g2", "g3"], "all"),
        rates=["rate"],
        denominator="people_after",
    )
    assert pub.people_after.tolist() == [90, SUPPRESSED, 45, SUPPRESSED]
    assert pub.rate.tolist() == [0.1, None, 0.3, 0.4]  # withheld: from fewer than 8 people


def test_protect_mapping_and_json() -> None:
    attrition = {
        "treated_alive_and_registered_at_entry": 230,
        "treated_matched": 185,
        "unmatched_outside_caliper": 45,
        "unmatched_no_control_in_stratum": 0,
        "care_planned": 3,
    }
    # 0 is shown, so one hidden part would be recoverable: the rule hides the next smallest.
    attrition["unmatched_outside_caliper"] = 5
    attrition["treated_alive_and_registered_at_entry"] = 190
    pub = protect_mapping(
        attrition,
        DC,
        [
            (
                ("treated_matched", "unmatched_outside_caliper", "unmatched_no_control_in_stratum"),
                "treated_alive_and_registered_at_entry",
            )
        ],
    )
    assert pub["unmatched_outside_caliper"] == SUPPRESSED
    assert pub["unmatched_no_control_in_stratum"] == SUPPRESSED
    assert pub["care_planned"] == SUPPRESSED and pub["treated_matched"] == 185
    block = {
        "n": 5,
        "auc": 0.7,
        "rows": [{"people": 100, "events": 3, "mean": 0.5}, {"people": 4, "mean": 0.25}],
        "settings": {"replicates": 5},
    }
    out = protect_json(block, DC)
    assert out["n"] == SUPPRESSED and out["auc"] is None  # a figure from fewer than 8
    assert out["rows"][0] == {"people": 100, "events": SUPPRESSED, "mean": 0.5}
    assert out["rows"][1] == {"people": SUPPRESSED, "mean": None}
    assert out["settings"] == {"replicates": 5}  # settings are not counts
    assert protect_json(out, DC) == out


def test_audit_refuses_a_page_with_a_small_count() -> None:
    df = pd.DataFrame({"area": ["pilot"], "people": [4]})
    with pytest.raises(DisclosureError, match="people"):
        audit_page(table_html(df), DC)
    audit_page(table_html(pd.DataFrame({"area": ["pilot"], "people": [SUPPRESSED]})), DC)
    with pytest.raises(DisclosureError):
        audit_page("<p>Of <span class='n'>6</span> people</p>", DC)


def test_judgement_rules() -> None:
    assert judge(0.80, 0.95, "decrease", 1.0) == ACHIEVED
    assert judge(1.05, 1.30, "decrease", 1.0) == OPPOSITE
    assert judge(0.85, 1.10, "decrease", 1.0) == NOT_SHOWN
    assert judge(0.85, 1.10, "decrease", 1.0, underpowered=True) == TOO_EARLY
    assert judge(0.01, 0.2, "increase", 0.0) == ACHIEVED
    assert combine([ACHIEVED, NOT_SHOWN]) == PARTLY
    assert combine([ACHIEVED, ACHIEVED]) == ACHIEVED
    assert combine([NOT_SHOWN, TOO_EARLY]) == TOO_EARLY
    assert combine([]) == NO_EVIDENCE


def _results(rr_ci: tuple[float, float], mde: float) -> dict:
    return {
        "impact": {
            "outcomes": {
                "emergency_admissions": {
                    "rate_ratio": sum(rr_ci) / 2,
                    "rate_ratio_ci_low": rr_ci[0],
                    "rate_ratio_ci_high": rr_ci[1],
                }
            },
            "follow_up": {"median_months": 3.0},
            "naive": {"rate_ratio": 0.7},
        },
        "design": {
            "settings": {"effect": -0.1},
            "mde": [{"followup_months": 3, "mde_rate_ratio": mde}],
        },
        "surveys": {"skipped": "no survey inputs"},
    }


def test_table3_has_the_eight_objectives_judged_by_the_rules() -> None:
    rows = table3(Published.read(_results((0.8, 1.2), mde=0.6)))
    assert len(rows) == 8
    assert rows[6].objective.startswith("Reduce emergency admissions")
    assert rows[6].progress == TOO_EARLY  # MDE 0.6 is a larger fall than the planned 0.9
    assert table3(Published.read(_results((0.8, 1.2), mde=0.95)))[6].progress == NOT_SHOWN
    assert table3(Published.read(_results((0.8, 0.95), mde=0.6)))[6].progress == ACHIEVED
    patient = rows[3]
    assert patient.objective == "Improve patient experience"
    assert patient.progress == NO_EVIDENCE and "no survey inputs" in patient.evidence
    # No matched study, no Table 2, no risk block: the admissions row says so.
    admissions = table3(Published.read({"impact": {"skipped": "no care_plans table"}}))[6]
    assert admissions.progress == NO_EVIDENCE
    assert admissions.evidence == "the matched study was not run"
    assert admissions.challenges == "none measured"


def test_a_renamed_key_fails_instead_of_reading_as_withheld() -> None:
    """The typed copy refuses a key it does not declare, wherever it is typed."""
    doc = _results((0.8, 0.95), mde=0.6)
    est = doc["impact"]["outcomes"]["emergency_admissions"]
    est["rr_ci_low"] = est.pop("rate_ratio_ci_low")  # a rename in the analysis's to_dict
    with pytest.raises(
        ResultsModelError, match=r"impact\.outcomes\.emergency_admissions.*rr_ci_low"
    ):
        Published.read(doc)
    # A declared key the run did not produce reads as ABSENT (falsy, not a number), and the
    # objective it feeds is then judged withheld, not achieved.
    del est["rr_ci_low"]
    pub = Published.read(doc)
    assert pub.impact.outcomes["emergency_admissions"].rate_ratio_ci_low is ABSENT
    assert table3(pub)[6].progress == WITHHELD
    assert pub.to_json() == doc  # and the copy gives back the document it was read from


def test_sections_keep_their_order_and_say_why_one_did_not_run() -> None:
    built = {"summary": Section("summary", "Summary of findings", "<p>x</p>")}
    out = in_order(built, {"surveys": "no survey inputs"})
    assert [s.id for s in out] == [sid for sid, _ in SECTION_ORDER]
    surveys = next(s for s in out if s.id == "surveys")
    assert "Not run: no survey inputs" in surveys.html
    assert out.index(surveys) < [s.id for s in out].index("qualitative")


def test_fmt_count_shows_counts_suppressed_and_withheld() -> None:
    assert fmt_count(1234) == "<span class='n'>1,234</span>"
    assert fmt_count(np.int64(15)) == "<span class='n'>15</span>"
    assert fmt_count(20.0) == "<span class='n'>20</span>"
    assert fmt_count(SUPPRESSED) == "<span class='n'>*</span>"
    assert fmt_count(None) == fmt_count(float("nan")) == "&ndash;"


def test_canonical_rounds_floats_to_significant_digits() -> None:
    a = canonical({"x": [0.1 + 0.2, 1e-12 * (0.1 + 0.2)], "y": float("nan"), "n": 3})
    assert a == {"x": [0.3, 3e-13], "y": None, "n": 3}


def test_workbook_holds_every_table_of_the_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    results = {
        "data": {"people_by_area": [{"area": "pilot", "registered": 100}], "window": ["a", "b"]},
        "risk": {"auc": 0.7, "targeting": [{"group": "all", "people": SUPPRESSED}]},
        "provenance": {"seed": 7},
    }
    names = write_workbook(results, tmp_path / "t.xlsx")
    wb = load_workbook(tmp_path / "t.xlsx")
    assert names == ["People by area", "Targeting by risk"]
    assert [c.value for c in wb["Targeting by risk"][2]] == ["all", SUPPRESSED]
    contents = [tuple(c.value for c in r) for r in wb["Contents"].iter_rows(min_row=2)]
    tables = [r for r in contents if r[3] and r[3] != "impact.outcomes"]
    assert tables[0][:2] == ("People by area", "People by area")
    assert tables[0][3:] == ("data.people_by_area", 1, "area, registered")
    assert len(tables) == 2  # provenance is no sheet
    assert [c.value for c in wb["People by area"][1]] == ["Area", "Registered"]
    assert [c.value for c in wb["People by area"][2]] == ["pilot", 100]
    figures = {r[3].value: r[1].value for r in wb["Key figures"].iter_rows(min_row=2)}
    assert figures["risk.auc"] == 0.7 and figures["provenance.seed"] == 7


def test_figure_2_withholds_months_from_fewer_than_8_treated() -> None:
    from types import SimpleNamespace

    from careval.report.publish.impact import publish_impact

    months = pd.DataFrame(
        {
            "k": [-1, 0, 1, 2],
            "treated": [0.5, 0.75, 1.0, 2.0],
            "matched_controls": [0.05, 0.05, 0.04, 0.04],
            "treated_people": [40, 12, 8, 7],
        }
    )
    attrition = {
        "treated_alive_and_registered_at_entry": 40,
        "treated_matched": 40,
        "unmatched_outside_caliper": 0,
        "unmatched_no_control_in_stratum": 0,
    }
    r = SimpleNamespace(attrition=attrition, horizons=[], monthly_means=months)
    published = publish_impact(r, DC)  # type: ignore[arg-type]
    assert r.monthly_means.treated_people.tolist() == [40, 12, 8, 7]  # a copy: input unchanged
    m = published.monthly_means
    assert m.treated.isna().tolist() == [False, False, False, True]
    assert m.matched_controls.isna().tolist() == [False, False, False, True]
    assert m.treated_people.tolist() == [40, 10, 10, "*"]
    # The derived-figure rule: the events (20 of 40, 9 of 12, 8 of 8) rounded to 5 over the
    # people rounded to 5: 20/40, 10/10, 10/10.
    assert m.treated.tolist()[:3] == [0.5, 1.0, 1.0]
    few = months.assign(treated=[0.125, 0.75, 1.0, 2.0])  # 5 events of 40: withheld
    assert publish_impact(SimpleNamespace(**{**vars(r), "monthly_means": few}), DC).monthly_means[
        "treated"
    ].isna().tolist() == [True, False, False, True]


def test_the_typed_copy_takes_null_for_any_block_and_skipped_for_a_failed_fit() -> None:
    doc = _results((0.8, 0.95), mde=0.6)
    doc["impact"]["follow_up"] = None  # a figure not computed is null, not a shape error
    doc["indicators"] = {"dementia": {"its": {"pilot": {"poisson": {"skipped": "fit failed"}}}}}
    pub = Published.read(doc)
    assert pub.impact.follow_up is None
    assert pub.indicators.dementia.its.fits["pilot"].poisson.skipped == "fit failed"
    assert table3(pub)[6].evidence.startswith(
        "The care-planned had 12% fewer emergency admissions than matched controls "
        "(95% CI 20% fewer to 5% fewer)."
    )
    assert pub.to_json() == doc


def test_disclosure_settings_are_checked_and_default_to_1_to_7_and_5() -> None:
    assert (DC.threshold, DC.rounding_base) == (8, 5)
    assert (smallest_published(DC), suppressed_range(DC)) == (8, "1-7")
    assert DisclosureSettings.from_json(STRICT.to_json()) == STRICT
    with pytest.raises(ConfigError) as e:
        DisclosureSettings(threshold=1, rounding_base=0)
    assert "threshold must be a whole number of at least 2; got 1" in str(e.value)
    assert "rounding_base must be a whole number of at least 1; got 0" in str(e.value)
    with pytest.raises(ConfigError, match="threshold"):
        DisclosureSettings(threshold=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="did you mean 'threshold'"):
        DisclosureSettings.from_dict({"treshold": 11})


def test_the_rules_take_their_numbers_from_the_settings() -> None:
    # Threshold 11, base 10: 11-14 would show as 10, below the threshold, so they go too.
    assert (smallest_published(STRICT), suppressed_range(STRICT, " to ")) == (15, "1 to 14")
    values = (0, 1, 7, 9, 10, 11, 14, 15, 24, 25, 26, 1234)
    assert [protect_value(v, STRICT) for v in values] == [
        0, *[SUPPRESSED] * 6, 20, 20, 20, 30, 1230,
    ]  # fmt: skip
    assert [protect_value(protect_value(v, STRICT), STRICT) for v in range(60)] == [
        protect_value(v, STRICT) for v in range(60)
    ]
    assert smallest_published(DisclosureSettings(threshold=2, rounding_base=1)) == 2
    assert is_small(14, STRICT) and not is_small(15, STRICT) and not is_small(8, DC)
    # Rules 1-3 on a table: a rate from 12 people is withheld under the strict settings only.
    df = pd.DataFrame({"area": ["a", "b"], "people": [12, 300], "rate": [0.5, 0.25]})
    strict = protect_table(df, ["people"], STRICT, rates=["rate"], denominator="people")
    assert strict.people.tolist() == [SUPPRESSED, 300] and strict.rate.tolist() == [None, 0.25]
    default = protect_table(df, ["people"], DC, rates=["rate"], denominator="people")
    assert default.people.tolist() == [10, 300] and default.rate.tolist() == [0.5, 0.25]
    # Secondary suppression starts from the counts the settings suppress.
    attrition = {
        "treated_alive_and_registered_at_entry": 49,
        "treated_matched": 40,
        "unmatched_outside_caliper": 9,
        "unmatched_no_control_in_stratum": 0,
    }
    margin = [(tuple(list(attrition)[1:]), "treated_alive_and_registered_at_entry")]
    assert list(protect_mapping(attrition, STRICT, margin).values()) == [50, 40, "*", "*"]
    assert list(protect_mapping(attrition, DC, margin).values()) == [50, 40, 10, 0]
    block = {"n": 12, "auc": 0.7, "events": 9}
    assert protect_json(block, STRICT) == {"n": SUPPRESSED, "auc": None, "events": SUPPRESSED}
    assert protect_json(block, DC) == {"n": 10, "auc": 0.7, "events": 10}


def test_audit_refuses_the_counts_the_settings_suppress() -> None:
    page = table_html(pd.DataFrame({"area": ["pilot"], "people": [9]}))
    audit_page(page, DC)  # 9 is no count of 1-7
    with pytest.raises(DisclosureError, match=r"count\(s\) of 1-14 .*people: 9"):
        audit_page(page, STRICT)
    audit_page(table_html(pd.DataFrame({"area": ["pilot"], "people": [20]})), STRICT)


def _manifest(**settings: object) -> dict:
    return {
        "careval_dataset": 1,
        "synthetic": True,
        "settings": {**SynthSettings(persons=12_000, seed=7).to_dict(), **settings},
    }


def test_seed_shaped_is_the_synthetic_default_but_for_its_size_and_seed() -> None:
    assert seed_shaped(_manifest())
    assert seed_shaped(_manifest(persons=1_100_000, seed=2011))
    assert not seed_shaped({**_manifest(), "synthetic": False})
    assert not seed_shaped({k: v for k, v in _manifest().items() if k != "synthetic"})
    for change in (
        {"effect": 0.0},
        {"emergency_rate": 0.2},
        {"start": "2010-04"},
        {"diabetes_effect": 1.0},
        {"comparator_shares": {"inner_nwl_other": 1.0}},
        {"some_new_setting": 1},  # another generator's settings
    ):
        assert not seed_shaped(_manifest(**change)), change
    settings = _manifest()["settings"]
    del settings["pilot_share"]  # a setting missing: another version of the generator
    assert not seed_shaped({"synthetic": True, "settings": settings})
    assert not seed_shaped({"synthetic": True})  # no settings: not known to be the default
    assert not seed_shaped({})
