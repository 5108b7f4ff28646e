"""The judgements of Table 3 and the rules that give them (printed by the report).

Each effect is judged by where its 95% interval lies against no effect and whether the study
could have detected the planned effect; :data:`HOW_SURE` says how sure each judgement is.
"""

from __future__ import annotations

from typing import Any, Literal

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import smallest_published

Direction = Literal["decrease", "increase"]

ACHIEVED = "achieved"
PARTLY = "partly achieved"
NOT_SHOWN = "not shown"
TOO_EARLY = "too early to tell"
OPPOSITE = "moved the wrong way"
IN_PLACE = "in place"
PARTLY_IN_PLACE = "partly in place"
NOT_IN_PLACE = "not in place"
NO_EVIDENCE = "no evidence in this run"
DESCRIBED = "described, not judged"
WITHHELD = "withheld (disclosure control)"
NOT_FOR_DECISIONS = "not for decisions"

COVERAGE_IN_PLACE = 0.5  # care plans for at least half the eligible: the process is in place
COVERAGE_STARTED = 0.1  # at least a tenth: partly in place
FUND_UNDERSPENT = 0.5  # less than half the first year's budget allocated in that year
TOP_RISK_SHARE = 0.5  # fewer than half the care-planned in the top 5% of risk: low-risk targeting


# The rule of every judgement but the withheld one (whose text names the disclosure threshold;
# see :func:`rules`).

JUDGEMENT_RULES: tuple[tuple[str, str], ...] = (
    (
        ACHIEVED,
        "the 95% confidence interval of the effect lies wholly on the intended side of no effect",
    ),
    (OPPOSITE, "the interval lies wholly on the other side of no effect"),
    (
        TOO_EARLY,
        "the interval includes no effect and the study design says the smallest effect "
        "detectable with the follow-up available is larger than the effect the programme "
        "expected (minimum detectable rate ratio below the planned one)",
    ),
    (NOT_SHOWN, "the interval includes no effect although the study could have detected it"),
    (
        NOT_FOR_DECISIONS,
        "the estimate failed one of its diagnostics (power, systematic error from the negative "
        "controls, balance, equipoise, pre-trends or follow-up; named beside it): it is shown "
        "but not judged, whatever its interval",
    ),
    (
        PARTLY,
        "for objectives judged on several measures: some measures achieved, none the wrong way",
    ),
    (
        IN_PLACE,
        f"process objectives: care plans for at least {COVERAGE_IN_PLACE:.0%} of the eligible "
        f"by the last month ({PARTLY_IN_PLACE}: at least {COVERAGE_STARTED:.0%}; "
        f"{NOT_IN_PLACE}: less); governance: every MDG that made care plans held meetings",
    ),
    (NO_EVIDENCE, "nothing in this run's inputs bears on the objective"),
    (DESCRIBED, "survey and qualitative findings are shown, not scored, in their own sections"),
)


# How sure each judgement is, by the same rules (printed beside them).
HOW_SURE: dict[str, str] = {
    ACHIEVED: "strong evidence",
    OPPOSITE: "strong evidence (against)",
    PARTLY: "some evidence",
    TOO_EARLY: "weak evidence (too little follow-up or too few people)",
    NOT_SHOWN: "evidence of no large effect",
    IN_PLACE: "measured directly",
    PARTLY_IN_PLACE: "measured directly",
    NOT_IN_PLACE: "measured directly",
    NO_EVIDENCE: "no evidence in this run",
    DESCRIBED: "described, not judged",
    WITHHELD: "withheld (disclosure control)",
    NOT_FOR_DECISIONS: "unreliable: a diagnostic failed",
}


def how_sure(progress: str) -> str:
    """How sure the judgement ``progress`` is (:data:`HOW_SURE`)."""
    return HOW_SURE.get(progress, "")


def rules(d: DisclosureSettings) -> tuple[tuple[str, str], ...]:
    """Each judgement and the rule that gives it, as the report prints them; the withheld rule
    names the smallest number of people ``d`` publishes figures from."""
    withheld = (
        f"the numbers needed rest on fewer than {smallest_published(d)} people and are not "
        "published"
    )
    return (*JUDGEMENT_RULES, (WITHHELD, withheld))


def judge(
    ci_low: Any,
    ci_high: Any,
    direction: Direction,
    null: float,
    underpowered: bool = False,
    failed: bool = False,
) -> str:
    """The judgement of one effect by the rules of :func:`rules`; ``failed``: the estimate
    failed a diagnostic, so it is not for decisions whatever its interval.

    Examples
    --------
    >>> judge(0.80, 0.95, "decrease", 1.0)
    'achieved'
    >>> judge(0.85, 1.10, "decrease", 1.0, underpowered=True)
    'too early to tell'
    >>> judge(-0.01, 0.05, "increase", 0.0)
    'not shown'
    >>> judge(0.80, 0.95, "decrease", 1.0, failed=True)
    'not for decisions'
    """
    if failed:
        return NOT_FOR_DECISIONS
    if not isinstance(ci_low, int | float) or not isinstance(ci_high, int | float):
        return WITHHELD
    good = ci_high < null if direction == "decrease" else ci_low > null
    bad = ci_low > null if direction == "decrease" else ci_high < null
    if good:
        return ACHIEVED
    if bad:
        return OPPOSITE
    return TOO_EARLY if underpowered else NOT_SHOWN


def combine(judgements: list[str]) -> str:
    """One judgement of an objective from those of its measures."""
    real = [j for j in judgements if j not in (WITHHELD, NO_EVIDENCE)]
    if real and all(j == NOT_FOR_DECISIONS for j in real):
        return NOT_FOR_DECISIONS
    real = [j for j in real if j != NOT_FOR_DECISIONS]  # no evidence either way
    if not real:
        return judgements[0] if judgements else NO_EVIDENCE
    achieved = real.count(ACHIEVED)
    if achieved == len(real):
        return ACHIEVED
    if achieved and OPPOSITE not in real:
        return PARTLY
    if OPPOSITE in real and not achieved:
        return OPPOSITE
    if achieved:
        return PARTLY
    return TOO_EARLY if TOO_EARLY in real else NOT_SHOWN
