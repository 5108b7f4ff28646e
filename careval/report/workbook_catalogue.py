"""What each table of the workbook is: its readable name and a one-line description, by its
place in ``results.json``, and what the main columns mean.

:func:`describe` names a table from :data:`TABLES` (a pattern of its dotted path; a named
group, such as a survey's or an SPC chart's name, is put into the text under its human label)
and falls back to the human labels of the path's last parts, so a table added to the results
still gets a readable name. :data:`MEANINGS` says in a sentence what a column holds; a column
not listed is described by its label and unit (:mod:`careval.report.publish.units`).
"""

from __future__ import annotations

import re

from careval.report.glossary import label

_SURVEY = r"surveys\.surveys\.(?P<x>[^.]+)\."
_SPC = r"programme\.spc\.(?P<x>[^.]+)\."
TABLES: list[tuple[str, str, str]] = [
    (
        "data.people_by_area",
        "People by area",
        "Registered and eligible people in each area on the reference date, by eligibility group.",
    ),
    (
        "data.activity_by_year",
        "Activity by area and year",
        "Hospital activity and care plans by area and calendar year, with the emergency rate.",
    ),
    (
        "data.attrition",
        "Eligibility steps by area",
        "People remaining at each step of the eligibility rule, by area.",
    ),
    (
        "data.care_plan_coverage",
        "Care plan coverage by month",
        "Care plans written each month, in total so far, and the share of the eligible with one.",
    ),
    (
        "risk.targeting",
        "Targeting by risk",
        "Who got care plans: their prior emergency admissions and predicted risk.",
    ),
    (
        "risk.coefficients",
        "Risk model coefficients",
        "Coefficients (log odds) of the emergency-admission risk model.",
    ),
    (
        "risk.by_subgroup",
        "Risk model by subgroup",
        "Discrimination and calibration of the risk model in each subgroup.",
    ),
    (
        "monitoring.table2",
        "Table 2 area comparison",
        "Emergency admission rates before and after the start, by area and group (Table 2).",
    ),
    (
        "monitoring.differences",
        "Area differences",
        "The programme area's change minus each comparator's, with 95% confidence intervals.",
    ),
    (
        "impact.settings.outcomes",
        "Matched study outcomes",
        "The outcomes the matched study estimated, the tables they come from and their models.",
    ),
    (
        "impact.horizons",
        "Effect by follow-up horizon",
        "The matched estimate for people followed for at least each horizon.",
    ),
    (
        "impact.event_study",
        "Effect by month from care plan",
        "The matched difference by period before and after the care plan (event study).",
    ),
    (
        "impact.balance",
        "Balance of matched groups",
        "Each covariate's mean in the care-planned and controls, before and after matching.",
    ),
    (
        "impact.negative_controls",
        "Negative controls",
        "Outcomes the programme cannot change and placebo starts: their estimates measure bias.",
    ),
    (
        "impact.sensitivity",
        "Sensitivity to the design",
        "The primary outcome re-estimated with other calipers, ratios and control pools.",
    ),
    (
        "impact.survival.hazard_ratios",
        "Survival hazard ratios",
        "Hazard ratios of death and of a first emergency admission after entry, care-planned "
        "against matched controls (Cox; Fine-Gray with death competing).",
    ),
    (
        "impact.survival.people_and_events",
        "Survival people and events",
        "People followed from entry, people with the event and the 12- and 24-month figures, "
        "by event and group.",
    ),
    (
        "impact.survival.curves",
        "Survival curves by month",
        "Kaplan-Meier and cumulative incidence curves by month since entry, with the people at "
        "risk and with the event so far (a withheld point is empty).",
    ),
    (
        "impact.survival.panel_deaths",
        "Months lost to death",
        "Person-months after entry followed and lost to death in the monthly panel, by group.",
    ),
    (
        "indicators.diabetes.monthly",
        "Diabetes control by month",
        "People with diabetes with a reading and in control each month, by area.",
    ),
    (
        "indicators.before_after.table",
        "Clinical indicators",
        "Each clinical indicator before and after the care plan, with its test.",
    ),
    (
        "indicators.dementia.monthly",
        "Dementia diagnoses by month",
        "New dementia diagnoses and cognitive tests each month, by area.",
    ),
    (
        "indicators.dementia.care_plans",
        "Dementia care plans",
        "Care plans written for people with dementia, by month.",
    ),
    (
        "programme.plans_by_mdg",
        "Care plans by MDG",
        "Care plans written each month by each multidisciplinary group (MDG).",
    ),
    (
        "programme.coverage",
        "Programme coverage by month",
        "Care plans each month, in total so far, and the share of the eligible with one.",
    ),
    (
        "programme.quality",
        "Care plan quality",
        "The share of care plans meeting each quality criterion.",
    ),
    (
        "programme.meetings",
        "MDG meetings",
        "Meetings of each multidisciplinary group: how many, how long, cases, attendance by role.",
    ),
    (
        "programme.attendance_share",
        "MDG attendance by role",
        "Each professional role's share of those attending MDG meetings.",
    ),
    (
        "programme.fund",
        "Innovation fund",
        "Money allocated and spent from the innovation fund, by period.",
    ),
    (
        _SPC + "points",
        "SPC {x}",
        "The monthly values of the SPC chart of {x}, with its limits and signals.",
    ),
    (
        _SPC + "segments",
        "{x} limits",
        "The mean and process limits of each segment of the SPC chart of {x}.",
    ),
    (
        "design.mde",
        "Minimum detectable effects",
        "The smallest rate ratio the study can detect, by length of follow-up.",
    ),
    (
        "design.costs",
        "Detectable cost changes",
        "The smallest change in cost per person the study can detect, by length of follow-up.",
    ),
    (
        _SURVEY + "response_rates",
        "{x} survey response",
        "Invited, responded and the response rate of the {x} survey, by group.",
    ),
    (
        _SURVEY + "items",
        "{x} survey items",
        "Each question of the {x} survey: answers and the share agreeing.",
    ),
    (
        _SURVEY + "distribution",
        "{x} survey answers",
        "How the {x} survey's answers are spread over the answer options.",
    ),
    (
        _SURVEY + "by_group",
        "{x} survey by group",
        "The share agreeing with each question of the {x} survey, by group.",
    ),
    (
        _SURVEY + "comparisons",
        "{x} survey tests",
        "Tests of whether the {x} survey's answers differ between groups.",
    ),
    (
        _SURVEY + "open_text",
        "{x} survey open text",
        "The open-text answers of the {x} survey (on real data, published as counts only).",
    ),
    (
        "qualitative.transcripts.meetings",
        "MDG transcripts",
        "The MDG meeting transcripts analysed: utterances and words per meeting.",
    ),
    (
        "qualitative.transcripts.overall",
        "Who speaks",
        "Each role's share of utterances and words over all MDG meetings.",
    ),
    (
        "qualitative.transcripts.by_meeting",
        "Who speaks by meeting",
        "Each role's share of utterances and words, meeting by meeting.",
    ),
    (
        "qualitative.transcripts.tests",
        "Who speaks tests",
        "Tests of whether roles speak in proportion to their attendance.",
    ),
    (
        "qualitative.transcripts.levels.levels",
        "Talk by level",
        "Utterances and words at each level of discussion.",
    ),
    ("qualitative.coding.codebook", "Codebook", "The codes of the thematic analysis."),
    (
        "qualitative.coding.frequencies",
        "Code frequencies",
        "How often each code was applied, in how many documents and cases, by group.",
    ),
    (
        "qualitative.coding.framework",
        "Framework matrix",
        "Coded segments by theme and case (the framework matrix).",
    ),
    (
        "qualitative.coding.agreement",
        "Coder agreement",
        "Agreement between two coders on each code (percent agreement, kappa, alpha).",
    ),
    (
        "objectives",
        "Table 3 objectives",
        "The eight objectives: evidence, progress and challenges (Table 3).",
    ),
]
_COMPILED = [(re.compile(p.replace(".", r"\.") if "(" not in p else p), n, d) for p, n, d in TABLES]

MEANINGS: dict[str, str] = {
    "rate_ratio": "The outcome's rate in the care-planned relative to matched controls, after "
    "against before (below 1: fewer events).",
    "rate_ratio_ci_low": "Lower end of the 95% confidence interval of the rate ratio.",
    "rate_ratio_ci_high": "Upper end of the 95% confidence interval of the rate ratio.",
    "estimate": "The estimated difference (a log rate ratio for a count outcome).",
    "se": "Standard error of the estimate.",
    "ci_low": "Lower end of the 95% confidence interval.",
    "ci_high": "Upper end of the 95% confidence interval.",
    "p_value": "Two-sided p-value (an underflowed 0 is published as the bound 2.3e-16).",
    "n_obs": "Observations in the model.",
    "n_treated": "Care-planned people in the comparison.",
    "n_controls": "Matched controls in the comparison.",
    "registered": "People registered with a practice in the area.",
    "eligible": "Registered people who meet the eligibility rule.",
    "eligible_share": "Eligible people as a share of those registered.",
    "person_years": "Time registered, summed over people.",
    "emergency_per_1000_py": "Emergency admissions per 1,000 person-years.",
    "coverage_of_eligible": "People with a care plan so far as a share of the eligible.",
    "cumulative": "Care plans written so far.",
    "care_plans": "Care plans written.",
    "people": "People in the group.",
    "share_agree": "Share of valid answers that agree.",
    "n_valid": "Valid answers (excluding blanks and don't know).",
    "response_rate": "Responded as a share of invited.",
    "smd_before": "Standardised mean difference before matching.",
    "smd_after": "Standardised mean difference after matching (below 0.1: balanced).",
    "mde_rate_ratio": "Smallest rate ratio detectable with 80% power.",
    "power_at_effect": "Power to detect the planned effect.",
    "value": "The chart's monthly value.",
    "mean": "The process mean (centre line).",
    "lpl": "Lower process limit.",
    "upl": "Upper process limit.",
    "auc": "Area under the ROC curve: how well the risk model ranks people.",
    "pct_change": "Percentage change from before to after.",
    "difference": "Difference between the programme area's change and the comparator's.",
    # time to event (the survival sheets)
    "event": "The event followed from entry: death, or a first emergency admission.",
    "model": "The model that estimated the row.",
    "note": "Why the row has no estimate.",
    "hazard_ratio": "The hazard of the event in the care-planned relative to matched controls "
    "(below 1: the event comes later or less often).",
    "hazard_ratio_ci_low": "Lower end of the 95% confidence interval of the hazard ratio.",
    "hazard_ratio_ci_high": "Upper end of the 95% confidence interval of the hazard ratio.",
    "events": "People with the event during follow-up.",
    "people_died": "People who died (for a first admission: before any admission).",
    "at_risk": "People still followed and free of the event at the start of the month.",
    "events_by": "People with the event by the month.",
    "deaths_by": "People who died before any emergency admission by the month.",
    "survival": "Kaplan-Meier share free of the event by the month (for a first admission, "
    "death censors), weighted as matched.",
    "incidence": "Aalen-Johansen cumulative incidence of a first emergency admission by the "
    "month, death competing, weighted as matched.",
    "incidence_death": "Aalen-Johansen cumulative incidence of death before any emergency "
    "admission by the month, weighted as matched.",
    "person_months_followed": "Person-months after entry in the monthly panel, weighted as "
    "matched.",
    "person_months_lost_to_death": "Person-months from death to the end of follow-up, which "
    "the monthly panel loses, weighted as matched.",
}


def describe(path: str) -> tuple[str, str]:
    """The readable name and one-line description of the table at ``path``.

    >>> describe("surveys.surveys.gps.items")
    ('GPs survey items', 'Each question of the GPs survey: answers and the share agreeing.')
    """
    for pattern, name, text in _COMPILED:
        if m := pattern.fullmatch(path):
            x = label(m["x"]) if "x" in pattern.groupindex else ""
            return name.format(x=x), text.format(x=x)
    parts = [p for p in path.split(".") if p]
    name = " ".join(label(p) for p in parts[-2:])
    return name, f"The table published at {path} in results.json."


def meaning(code: str, unit: str) -> str:
    """What a column means: :data:`MEANINGS`, or its label and unit."""
    if code in MEANINGS:
        return MEANINGS[code]
    name = label(code)
    if not unit or unit == "text" or unit.split(" ")[0].lower() in name.lower():
        return f"{name}."
    return f"{name}, in {unit}."
