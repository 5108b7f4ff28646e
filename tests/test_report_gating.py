"""A failing diagnostic changes the verdict: Table 3 does not call the estimate achieved, the
summary says it is not for decisions, and the impact section flags it (issue: gated
estimates). Hand-made published results, so each case differs only in its diagnostics."""

from __future__ import annotations

import re
from typing import Any

import pytest

from careval.impact.diagnostics import DiagnosticSettings, diagnose
from careval.report.judgements import ACHIEVED, NOT_FOR_DECISIONS, combine

GOOD = {
    "mdrr": 1.2,
    "ease": 0.03,
    "max_abs_smd": 0.02,
    "equipoise": 0.7,
    "pretrend_p": 0.5,
    "median_follow_up": 22.0,
}


def _doc(diagnostics: dict[str, Any]) -> dict[str, Any]:
    """A matched estimate wholly below 1 (achieved on its interval alone), its diagnostics
    and a design that says the study was well powered."""
    return {
        "impact": {
            "outcomes": {
                "emergency_admissions": {
                    "rate_ratio": 0.89,
                    "rate_ratio_ci_low": 0.86,
                    "rate_ratio_ci_high": 0.93,
                    "mean_treated_before": 0.05,
                    "n_treated": 2000,
                    "diagnostics": diagnostics,
                    "calibrated": {
                        "rate_ratio_ci_low": 0.80,
                        "rate_ratio_ci_high": 0.99,
                        "p_value": 0.03,
                    },
                }
            },
            "follow_up": {"median_months": 22.0},
            "max_abs_smd_after": diagnostics["checks"][2]["value"],
        },
        "design": {
            "settings": {"effect": -0.1},
            "mde": [{"followup_months": 18, "mde_rate_ratio": 0.95}],
        },
    }


def _admissions(doc: dict[str, Any]) -> Any:
    from careval.report.objectives import table3
    from careval.report.publish.model import Published

    rows = table3(Published.read(doc))
    return next(r for r in rows if r.objective == "Reduce emergency admissions to hospital")


def _text(h: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h)).strip()


def test_passing_diagnostics_leave_the_verdict_to_the_interval() -> None:
    row = _admissions(_doc(diagnose(GOOD, DiagnosticSettings())))
    assert row.progress == ACHIEVED


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("max_abs_smd", 0.246, "largest absolute standardised difference after matching 0.246"),
        ("ease", 0.4, "expected absolute systematic error 0.4"),
        ("pretrend_p", 0.001, "p-value of the pre-trend test 0.001"),
    ],
)
def test_a_failing_diagnostic_changes_the_verdict(key: str, value: float, words: str) -> None:
    from careval.report.publish.model import Published
    from careval.report.sections.board import board

    diag = diagnose(GOOD | {key: value}, DiagnosticSettings())
    doc = _doc(diag)
    row = _admissions(doc)
    assert row.progress == NOT_FOR_DECISIONS
    assert words in row.challenges
    summary = _text(board(Published.read(doc), ("pilot",), "care-planned"))
    assert "so it is not for decisions" in summary and words in summary
    # The calibrated interval is in the summary too, as changes.
    shown = "allowing for the bias the negative controls show, the interval is 20% fewer to 1% "
    shown += "fewer"
    assert shown in summary


def test_stricter_thresholds_in_the_spec_fail_the_same_values() -> None:
    """The thresholds are settings: the same values pass the defaults and fail stricter ones."""
    strict = DiagnosticSettings(max_mdrr=1.1, min_median_follow_up=24)
    d = diagnose(GOOD, strict)
    assert d["failed"] == ["mdrr", "median_follow_up"]
    assert _admissions(_doc(d)).progress == NOT_FOR_DECISIONS


def test_combine_ignores_estimates_not_for_decisions_unless_all_are() -> None:
    assert combine([NOT_FOR_DECISIONS, NOT_FOR_DECISIONS]) == NOT_FOR_DECISIONS
    assert combine([NOT_FOR_DECISIONS, ACHIEVED]) == ACHIEVED
