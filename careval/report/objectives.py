"""Progress against the pilot's eight objectives (the seed's Table 3), judged by stated rules.

Each objective is a row: the evidence this run measured, a progress judgement and the
challenges the results point to. Judgements come only from the published results
(the typed copy of ``results.json``) through the rules of :func:`rules`, which the report
prints, so a reader can check every one. Where the run has no evidence (no survey inputs, no
qualitative data, nothing in routine data), the row says so rather than guessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from careval.data.areas import pooled_name
from careval.disclosure import DisclosureSettings
from careval.indicators import difference_name
from careval.report.page import area_prose, last_comparator
from careval.report.publish.model import (
    DesignBlock,
    Estimate,
    ImpactBlock,
    IndicatorsBlock,
    MonitoringBlock,
    ProgrammeBlock,
    Published,
    QualitativeBlock,
    RiskBlock,
    SurveysBlock,
)
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


def rules(d: DisclosureSettings) -> tuple[tuple[str, str], ...]:
    """Each judgement and the rule that gives it, as the report prints them; the withheld rule
    names the smallest number of people ``d`` publishes figures from."""
    withheld = (
        f"the numbers needed rest on fewer than {smallest_published(d)} people and are not "
        "published"
    )
    return (*JUDGEMENT_RULES, (WITHHELD, withheld))


@dataclass(frozen=True)
class Objective:
    """One row of Table 3."""

    objective: str
    evidence: str
    progress: str
    challenges: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return asdict(self)


def judge(
    ci_low: Any, ci_high: Any, direction: Direction, null: float, underpowered: bool = False
) -> str:
    """The judgement of one effect by the rules of :func:`rules`.

    Examples
    --------
    >>> judge(0.80, 0.95, "decrease", 1.0)
    'achieved'
    >>> judge(0.85, 1.10, "decrease", 1.0, underpowered=True)
    'too early to tell'
    >>> judge(-0.01, 0.05, "increase", 0.0)
    'not shown'
    """
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


def _num(v: Any, fmt: str = ".2f") -> str:
    return format(v, fmt) if isinstance(v, int | float) else "withheld"


def underpowered(pub: Published) -> tuple[bool, str]:
    """Whether the matched study was too small or too short for the expected effect."""
    impact, design = pub.impact, pub.design
    if not isinstance(impact, ImpactBlock) or not isinstance(design, DesignBlock):
        return False, ""
    if not design.mde:
        return False, ""
    months = impact.follow_up.median_months if impact.follow_up else None
    rows = design.mde
    usable = [r for r in rows if isinstance(months, int | float) and r.followup_months <= months]
    row = usable[-1] if usable else rows[0]
    planned = 1 + design.settings.effect
    mde = row.mde_rate_ratio
    if not isinstance(mde, int | float):
        return False, ""
    text = (
        f"with {row.followup_months} months of follow-up the smallest detectable rate "
        f"ratio is {mde:.2f}, against a planned {planned:.2f}"
    )
    return mde < planned, text


def _shift_care(pub: Published) -> Objective:
    prog = pub.programme if isinstance(pub.programme, ProgrammeBlock) else None
    evidence, challenges = [], []
    progress = NO_EVIDENCE
    last: tuple[str, float] | None = None
    for r in (prog.coverage or []) if prog else []:
        if isinstance(r.coverage_of_eligible, float):
            last = (r.month, r.coverage_of_eligible)
    if last is not None:
        month, share = last
        evidence.append(f"care plans for {share:.0%} of the eligible by {month}")
        progress = (
            IN_PLACE
            if share >= COVERAGE_IN_PLACE
            else PARTLY_IN_PLACE
            if share >= COVERAGE_STARTED
            else NOT_IN_PLACE
        )
        if share < COVERAGE_IN_PLACE:
            challenges.append("care planning reached less than half the eligible")
    spc = (prog.spc or {}).get("care_plans_per_month") if prog else None
    if spc is not None and spc.variation_label:
        evidence.append(f"care plans a month, latest point: {spc.variation_label.lower()}")
        if str(spc.variation or "").startswith("concern"):
            challenges.append("the monthly number of care plans shows special cause concern")
    fund = prog.fund_summary if prog else None
    if fund and isinstance(fund.share_allocated_first_year, float):
        s = fund.share_allocated_first_year
        evidence.append(f"innovation fund: {s:.0%} of the first year's budget allocated")
        if s < FUND_UNDERSPENT:
            challenges.append("the innovation fund was underspent in its first year")
    return Objective(
        "Shift care out of hospital (MDGs, risk stratification, care planning, innovation fund)",
        "; ".join(evidence) or "no care-plan or fund records",
        progress,
        "; ".join(challenges) or "none measured",
    )


def _admissions(pub: Published) -> Objective:
    slow, power_text = underpowered(pub)
    evidence, challenges, judgements = [], [], []
    impact = pub.impact if isinstance(pub.impact, ImpactBlock) else None
    outcomes = (impact.outcomes or {}) if impact else {}
    if "emergency_admissions" in outcomes:
        e = outcomes["emergency_admissions"]
        lo, hi = e.rate_ratio_ci_low, e.rate_ratio_ci_high
        evidence.append(
            f"matched-control rate ratio {_num(e.rate_ratio)} (95% CI {_num(lo)} to {_num(hi)})"
        )
        judgements.append(judge(lo, hi, "decrease", 1.0, slow))
        months = impact.follow_up.median_months if impact and impact.follow_up else None
        if isinstance(months, int | float):
            evidence.append(f"median follow-up {months:.0f} months")
        if power_text:
            evidence.append(power_text)
        if slow:
            challenges.append("too few people or too short a follow-up to detect the planned fall")
        naive = pub.naive.rate_ratio if isinstance(pub.naive, Estimate) else None
        if isinstance(naive, float):
            evidence.append(f"naive before-after rate ratio {naive:.2f}")
    if isinstance(pub.monitoring, MonitoringBlock):
        rows = [r for r in (pub.monitoring.differences or []) if r.group == "all_eligible"]
        quoted = last_comparator(list(dict.fromkeys(r.comparator for r in rows)))
        if rows:
            latest = max(r.start for r in rows)
            for r in rows:
                if r.start == latest and r.comparator == quoted:
                    against = area_prose(r.comparator).removeprefix("the ")
                    evidence.append(
                        f"Table 2 (from {latest}): pilot change minus {against} "
                        f"{_num(r.difference, '+.1f')} points"
                    )
    if isinstance(pub.risk, RiskBlock):
        groups = {t.group: t for t in (pub.risk.targeting or [])}
        cp = groups["care-planned"].share_in_top_5pct if "care-planned" in groups else None
        if isinstance(cp, float):
            evidence.append(f"{cp:.0%} of the care-planned were in the top 5% of risk")
            if cp < TOP_RISK_SHARE:
                challenges.append("care plans went mostly to people at lower risk of admission")
    return Objective(
        "Reduce emergency admissions to hospital",
        "; ".join(evidence) or "the matched study was not run",
        combine(judgements),  # no evidence when there are no judgements
        "; ".join(challenges) or "none measured",
    )


def _processes(pub: Published) -> Objective:
    if not isinstance(pub.indicators, IndicatorsBlock):
        return Objective(
            "Improve care processes and clinical outcomes",
            "clinical indicators not computed",
            NO_EVIDENCE,
            "none measured",
        )
    ind = pub.indicators
    evidence, judgements = [], []
    table = (ind.before_after.table or []) if ind.before_after else []
    for row in table:
        if row.analysis != "change vs comparison":
            continue
        q = str(row.quantity)
        direction: Direction = "increase" if q.startswith("share") else "decrease"
        j = judge(row.ci_low, row.ci_high, direction, 0.0)
        judgements.append(j)
        name = q.split(" (")[0] if not q.startswith("share") else q.replace("share in control ", "")
        evidence.append(f"{name}: {j}")
    its = ind.dementia.its if ind.dementia else None
    settings = ind.settings if isinstance(ind.settings, dict) else {}
    programme = pooled_name(settings.get("programme_areas") or ("pilot",))
    series = its.fits.get(difference_name(programme)) if its else None
    ols = series.ols if series else None
    level = (ols.coefficients or {}).get("level_change") if ols else None
    if level:
        j = judge(level.ci_low, level.ci_high, "increase", 0.0)
        judgements.append(j)
        evidence.append(f"dementia diagnoses (level change against comparators): {j}")
    progress = combine(judgements)
    return Objective(
        "Improve care processes and clinical outcomes",
        "; ".join(evidence) or "no comparisons",
        progress,
        "few measures improved beyond the comparison group"
        if progress != ACHIEVED
        else "sustain the improvement",
    )


def _governance(pub: Published) -> Objective:
    prog = pub.programme if isinstance(pub.programme, ProgrammeBlock) else None
    meetings = (prog.meetings or []) if prog else []
    plans = (prog.plans_by_mdg or []) if prog else []
    planned = {k for r in plans for k in r if k.startswith("MDG")}
    met = {r["mdg"] for r in meetings}
    if not meetings:
        progress, evidence = NO_EVIDENCE, "no MDG meeting records"
    else:
        progress = IN_PLACE if planned <= met else PARTLY_IN_PLACE
        evidence = f"{len(met)} MDGs recorded meetings ({len(planned)} made care plans)"
    return Objective(
        "Establish governance structures following a network approach",
        evidence + _qualitative_note(pub),
        progress,
        "decision-making and accountability need interviews or observation",
    )


def _qualitative_note(pub: Published) -> str:
    return (
        "; see the qualitative findings"
        if isinstance(pub.qualitative, QualitativeBlock)
        else "; qualitative findings not run"
    )


def _survey_row(pub: Published, objective: str, what: str) -> Objective:
    if isinstance(pub.surveys, SurveysBlock):
        return Objective(objective, f"see the survey findings ({what})", DESCRIBED, "")
    return Objective(objective, "not run: no survey inputs", NO_EVIDENCE, f"needs {what}")


def table3(pub: Published) -> list[Objective]:
    """The eight objectives of the seed's Table 3, in its order, judged from ``pub``."""
    culture = _survey_row(
        pub,
        "Bring about cultural change and create a shared vision",
        "professionals' and steering committees' surveys, interviews",
    )
    att = (
        (pub.programme.attendance_share or []) if isinstance(pub.programme, ProgrammeBlock) else []
    )
    if att:
        shares = {r.role: r.share_of_attendees for r in att}
        top = sum(
            v
            for k, v in shares.items()
            if k in ("presenting_gp", "consultant") and isinstance(v, int | float)
        )
        culture = Objective(
            culture.objective,
            f"{culture.evidence}; GPs presenting and consultants were {top:.0%} of MDG attendees",
            culture.progress,
            culture.challenges,
        )
    return [
        _governance(pub),
        Objective(
            "Align financial incentives across all organisations",
            "not in routine data (needs the pilot's agreements on shared savings)",
            NO_EVIDENCE,
            "needs documents and interviews",
        ),
        culture,
        _survey_row(pub, "Improve patient experience", "the patient survey"),
        Objective(
            "Facilitate information sharing",
            "not in routine data (needs records of the information-sharing tool)",
            NO_EVIDENCE,
            "needs system logs and interviews",
        ),
        _shift_care(pub),
        _admissions(pub),
        _processes(pub),
    ]
