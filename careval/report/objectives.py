"""Progress against the pilot's eight objectives (the seed's Table 3), judged by stated rules.

Each objective is a row: the evidence this run measured, a progress judgement and the
challenges the results point to. Judgements come only from the published results
(the typed copy of ``results.json``) through the rules of :func:`rules`, which the report
prints, so a reader can check every one. Where the run has no evidence (no survey inputs, no
qualitative data, nothing in routine data), the row says so rather than guessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from careval.data.areas import pooled_name
from careval.impact.diagnostics import failure_text
from careval.indicators import difference_name
from careval.report import format as fmt
from careval.report.glossary import label
from careval.report.judgements import (
    ACHIEVED,
    COVERAGE_IN_PLACE,
    COVERAGE_STARTED,
    DESCRIBED,
    FUND_UNDERSPENT,
    HOW_SURE,
    IN_PLACE,
    JUDGEMENT_RULES,
    NO_EVIDENCE,
    NOT_IN_PLACE,
    NOT_SHOWN,
    OPPOSITE,
    PARTLY,
    PARTLY_IN_PLACE,
    TOO_EARLY,
    TOP_RISK_SHARE,
    WITHHELD,
    Direction,
    combine,
    how_sure,
    judge,
    rules,
)
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
from careval.report.sections.flow import coverage


@dataclass(frozen=True)
class Objective:
    """One row of Table 3."""

    objective: str
    evidence: str
    progress: str
    challenges: str
    how_sure: str = ""
    focus: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return asdict(self)


__all__ = [
    "ACHIEVED",
    "COVERAGE_IN_PLACE",
    "COVERAGE_STARTED",
    "DESCRIBED",
    "FUND_UNDERSPENT",
    "HOW_SURE",
    "IN_PLACE",
    "JUDGEMENT_RULES",
    "NOT_IN_PLACE",
    "NOT_SHOWN",
    "NO_EVIDENCE",
    "OPPOSITE",
    "PARTLY",
    "PARTLY_IN_PLACE",
    "TOO_EARLY",
    "TOP_RISK_SHARE",
    "WITHHELD",
    "Direction",
    "Objective",
    "combine",
    "how_sure",
    "judge",
    "rules",
    "table3",
]


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


def programme_areas(pub: Published) -> tuple[str, ...]:
    """The programme's areas as the published settings name them (default: the pilot)."""
    for block in (pub.impact, pub.indicators):
        st = getattr(block, "settings", None)
        if isinstance(st, dict) and st.get("programme_areas"):
            return tuple(st["programme_areas"])
    return ("pilot",)


def _shift_care(pub: Published) -> Objective:
    prog = pub.programme if isinstance(pub.programme, ProgrammeBlock) else None
    evidence, challenges, focus = [], [], []
    progress = NO_EVIDENCE
    share, planned, eligible = coverage(pub, programme_areas(pub))
    if share is not None:
        evidence.append(
            f"Care plans reached {fmt.count(planned)} of the {fmt.count(eligible)} people "
            f"eligible on the reference date ({fmt.pct(share)}) by the end of the data."
        )
        progress = (
            IN_PLACE
            if share >= COVERAGE_IN_PLACE
            else PARTLY_IN_PLACE
            if share >= COVERAGE_STARTED
            else NOT_IN_PLACE
        )
        if share < COVERAGE_IN_PLACE:
            challenges.append("care planning reached less than half the eligible")
            focus.append("extend care planning to more of the eligible")
    spc = (prog.spc or {}).get("care_plans_per_month") if prog else None
    if spc is not None and spc.variation_label:
        evidence.append(
            f"The latest month's number of care plans shows {spc.variation_label.lower()}."
        )
        if str(spc.variation or "").startswith("concern"):
            challenges.append("the monthly number of care plans shows special cause concern")
            focus.append("find out why fewer care plans are made each month")
    fund = prog.fund_summary if prog else None
    if fund and isinstance(fund.share_allocated_first_year, float):
        s = fund.share_allocated_first_year
        evidence.append(f"The innovation fund allocated {fmt.pct(s)} of its first year's budget.")
        if s < FUND_UNDERSPENT:
            challenges.append("the innovation fund was underspent in its first year")
            focus.append("understand why the groups are slow to use the innovation fund")
    return Objective(
        "Shift care out of hospital (MDGs, risk stratification, care planning, innovation fund)",
        " ".join(evidence) or "No care-plan or fund records.",
        progress,
        "; ".join(challenges) or "none measured",
        focus="; ".join(focus) or "ensure the quality as well as the quantity of care plans",
    )


def _admissions(pub: Published) -> Objective:
    slow, _ = underpowered(pub)
    evidence, challenges, judgements, focus = [], [], [], []
    impact = pub.impact if isinstance(pub.impact, ImpactBlock) else None
    outcomes = (impact.outcomes or {}) if impact else {}
    treated = "care-planned"
    if "emergency_admissions" in outcomes:
        e = outcomes["emergency_admissions"]
        lo, hi = e.rate_ratio_ci_low, e.rate_ratio_ci_high
        if isinstance(e.rate_ratio, int | float):
            evidence.append(
                f"The {treated} had {fmt.change(e.rate_ratio)} emergency admissions than "
                f"matched controls (95% CI {fmt.change_interval(lo, hi)})."
            )
        else:
            evidence.append("The matched estimate is withheld.")
        diag = e.diagnostics if isinstance(e.diagnostics, dict) else {}
        failed = bool(diag.get("failed"))
        judgements.append(judge(lo, hi, "decrease", 1.0, slow, failed))
        if failed:
            challenges.append(
                "the matched estimate failed its diagnostics (" + failure_text(diag) + ")"
            )
            focus.append("remedy the failing diagnostic before relying on the estimate")
        months = impact.follow_up.median_months if impact and impact.follow_up else None
        if isinstance(months, int | float):
            evidence.append(f"Median follow-up was {fmt.months(months)}.")
        if slow:
            challenges.append("too few people or too short a follow-up to detect the planned fall")
            needed = (
                pub.design.followup_needed_months if isinstance(pub.design, DesignBlock) else None
            )
            focus.append(
                "follow people up for longer"
                + (f" (about {fmt.months(needed)})" if isinstance(needed, int) else "")
            )
        naive = pub.naive.rate_ratio if isinstance(pub.naive, Estimate) else None
        if isinstance(naive, float):
            evidence.append(
                f"A before-after comparison of the {treated} alone would have shown "
                f"{fmt.change(naive)}."
            )
    if isinstance(pub.monitoring, MonitoringBlock):
        rows = [r for r in (pub.monitoring.differences or []) if r.group == "all_eligible"]
        quoted = last_comparator(list(dict.fromkeys(r.comparator for r in rows)))
        if rows:
            latest = max(r.start for r in rows)
            for r in rows:
                if r.start == latest and r.comparator == quoted and isinstance(r.difference, float):
                    against = area_prose(r.comparator)
                    evidence.append(
                        f"Across all eligible people (Table 2, from "
                        f"{fmt.date_words(latest)}) the pilot's "
                        "change "
                        f"was {abs(r.difference):.1f} percentage points "
                        f"{'lower' if r.difference < 0 else 'higher'} than {against}'s."
                    )
    if isinstance(pub.risk, RiskBlock):
        groups = {t.group: t for t in (pub.risk.targeting or [])}
        cp = groups["care-planned"].share_in_top_5pct if "care-planned" in groups else None
        if isinstance(cp, float):
            evidence.append(f"{fmt.pct(cp)} of the {treated} were in the top 5% of risk.")
            if cp < TOP_RISK_SHARE:
                challenges.append("care plans went mostly to people at lower risk of admission")
                focus.append("focus care plans on people at higher risk of admission")
    return Objective(
        "Reduce emergency admissions to hospital",
        " ".join(evidence) or "the matched study was not run",
        combine(judgements),  # no evidence when there are no judgements
        "; ".join(challenges) or "none measured",
        focus="; ".join(focus) or "keep measuring over a longer period",
    )


def _quantity(q: str) -> tuple[str, str]:
    """A before-after quantity in words and its unit: ``mean hba1c (mmol/mol)`` reads
    ("HbA1c", "mmol/mol"); ``share in control (latest HbA1c <= 59 mmol/mol)`` reads
    ("people with HbA1c at most 59 mmol/mol", "%")."""
    if q.startswith("share in control ("):
        inner = q[len("share in control (") : -1].split(" (")[0]
        inner = inner.removeprefix("latest ").replace("<=", "at most").replace(">=", "at least")
        return f"People with {inner}", "%"
    name, _, unit = q.removeprefix("mean ").partition(" (")
    return label(name.strip()), unit.rstrip(")")


def _sentence(row: Any, judgement: str) -> str:
    """One clinical indicator's change against the comparison group, as a sentence."""
    what, unit = _quantity(str(row.quantity))
    share = unit == "%"

    def val(v: Any) -> str:
        if not isinstance(v, int | float):
            return "withheld"
        return fmt.pct(v) if share else f"{fmt.number(v, 1)} {unit}".strip()

    went = "fell" if isinstance(row.change, int | float) and row.change < 0 else "rose"
    plain = what[1:] == what[1:].lower()  # not an abbreviation such as HbA1c
    subject = what if share else f"Mean {what[0].lower() + what[1:] if plain else what}"
    est = row.estimate
    beyond = ""
    if isinstance(est, int | float):
        size = fmt.points(est * 100) if share else f"{fmt.number(abs(est), 1)} {unit}".strip()
        beyond = (
            f", {size.lstrip('+−-')} {'more' if est > 0 else 'less'} than in the comparison group"
        )
    return (
        f"{subject} among the care-planned {went} from {val(row.before)} to {val(row.after)}"
        f"{beyond} ({fmt.p_value(row.p_value)}): {judgement}."
    )


def _processes(pub: Published) -> Objective:
    if not isinstance(pub.indicators, IndicatorsBlock):
        return Objective(
            "Improve care processes and clinical outcomes",
            "Clinical indicators were not computed.",
            NO_EVIDENCE,
            "none measured",
            focus="measure clinical indicators",
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
        evidence.append(_sentence(row, j))
    its = ind.dementia.its if ind.dementia else None
    settings = ind.settings if isinstance(ind.settings, dict) else {}
    programme = pooled_name(settings.get("programme_areas") or ("pilot",))
    series = its.fits.get(difference_name(programme)) if its else None
    ols = series.ols if series else None
    level = (ols.coefficients or {}).get("level_change") if ols else None
    if level:
        j = judge(level.ci_low, level.ci_high, "increase", 0.0)
        judgements.append(j)
        evidence.append(
            f"Dementia diagnoses against the comparison areas ({fmt.p_value(level.p_value)}): {j}."
        )
    progress = combine(judgements)
    return Objective(
        "Improve care processes and clinical outcomes",
        " ".join(evidence) or "No comparisons.",
        progress,
        "few measures improved beyond the comparison group"
        if progress != ACHIEVED
        else "sustain the improvement",
        focus="care plans of consistent quality; measure outcomes over a longer period",
    )


def _governance(pub: Published) -> Objective:
    prog = pub.programme if isinstance(pub.programme, ProgrammeBlock) else None
    meetings = (prog.meetings or []) if prog else []
    plans = (prog.plans_by_mdg or []) if prog else []
    planned = {k for r in plans for k in r if k.startswith("MDG")}
    met = {r["mdg"] for r in meetings}
    if not meetings:
        progress, evidence = NO_EVIDENCE, "No MDG meeting records."
    else:
        progress = IN_PLACE if planned <= met else PARTLY_IN_PLACE
        evidence = (
            f"{len(met)} multidisciplinary groups recorded meetings; {len(planned)} made care "
            "plans."
        )
    return Objective(
        "Establish governance structures following a network approach",
        evidence + _qualitative_note(pub),
        progress,
        "decision-making and accountability need interviews or observation",
        focus="clearer decision-making; stronger accountability of the groups",
    )


def _qualitative_note(pub: Published) -> str:
    return (
        " See the qualitative findings."
        if isinstance(pub.qualitative, QualitativeBlock)
        else " The qualitative findings were not run."
    )


def _survey_row(pub: Published, objective: str, what: str, focus: str) -> Objective:
    if isinstance(pub.surveys, SurveysBlock):
        return Objective(
            objective, f"See the survey findings ({what}).", DESCRIBED, "", focus=focus
        )
    return Objective(
        objective, "Not run: no survey inputs.", NO_EVIDENCE, f"needs {what}", focus=focus
    )


def table3(pub: Published) -> list[Objective]:
    """The eight objectives of the seed's Table 3, in its order, judged from ``pub``; each
    with how sure its judgement is (:data:`HOW_SURE`) and the focus for development (the
    seed's, or what this run's results point to)."""
    culture = _survey_row(
        pub,
        "Bring about cultural change and create a shared vision",
        "professionals' and steering committees' surveys, interviews",
        "spread the vision to clinical and middle-management levels",
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
        culture = replace(
            culture,
            evidence=f"{culture.evidence} GPs presenting and consultants were {fmt.pct(top)} "
            "of the groups' attendees.",
        )
    rows = [
        _governance(pub),
        Objective(
            "Align financial incentives across all organisations",
            "Not in routine data (needs the pilot's agreements on shared savings).",
            NO_EVIDENCE,
            "needs documents and interviews",
            focus="share financial risk across all organisations",
        ),
        culture,
        _survey_row(
            pub,
            "Improve patient experience",
            "the patient survey",
            "make sure patients know about the programme; involve them in care planning",
        ),
        Objective(
            "Facilitate information sharing",
            "Not in routine data (needs records of the information-sharing tool).",
            NO_EVIDENCE,
            "needs system logs and interviews",
            focus="roll out the information-sharing tool faster and fix its faults",
        ),
        _shift_care(pub),
        _admissions(pub),
        _processes(pub),
    ]
    return [replace(r, how_sure=how_sure(r.progress)) for r in rows]
