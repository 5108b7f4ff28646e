"""The unit of every figure in ``results.json``, and the p-values' floor.

A key name alone does not say a figure's unit: ``value`` is a share on one SPC chart and a
count on another, ``estimate`` a log rate ratio for a count outcome and pounds for a cost, ``n``
people in one block and answers in another. So units are given by *place*: :func:`generic_path`
names a figure by its dotted path with every list index written ``[]``
(``impact.outcomes.emergency_admissions.rate_ratio``, ``data.people_by_area[].registered``),
and :func:`unit` finds its unit from :data:`RULES`, a list of (path pattern, unit) tried in
order (the first pattern that matches the end of the path decides). The published document
carries the result as its top-level ``units`` object: every numeric figure's generic path and
its unit (:func:`units_of`), so a reader of the JSON, or a program, need not guess.

A figure that no rule covers gets :data:`UNDECLARED`; the tests fail on any such figure of a
synthetic run, so a new key gets its unit when it lands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from careval.report.format import column_kind

UNDECLARED = "unit not declared"
# A p-value computed as 0 underflowed: the true value is below the smallest difference from 1
# that a double can show (the machine epsilon, 2.22e-16), whichever way it was computed (1 -
# cdf rounds to 0 below half of it; a survival function underflows only far below). It is
# published as this bound, never as 0.0, as R prints "p < 2.2e-16".
P_FLOOR = 2.3e-16

PEOPLE = "people"
SHARE = "share (0-1)"
RATIO = "ratio"
P = "p-value"
MONTHS = "months"
POUNDS = "£"
PER_PERSON_MONTH = "per person-month"
LOG_RR = "log rate ratio"
SMD = "standardised mean difference"
ATTENDANCES = "attendances"
ADMISSIONS = "admissions"
PER_1000_PY = "admissions per 1,000 person-years"
COUNT = "count"
SETTING = "setting (number)"

# (pattern, unit): a pattern is a regular expression matched against the end of a generic
# path; the first that matches decides. Specific places first, then key names.
_RULES: list[tuple[str, str]] = [
    # --- places where a key's unit is not the usual one
    (r"(^|\.)p_value$|(^|\.)p$|_p$", P),
    (
        r"programme\.spc\.(care_plan_quality)\.(points\[\]|segments\[\])\."
        r"(value|mean|lpl|upl|near_lpl|near_upl|moving_range|mr_bar|mr_bar_unscreened)$",
        SHARE,
    ),
    (
        r"programme\.spc\.[a-z_]+\.(points\[\]|segments\[\])\."
        r"(value|mean|lpl|upl|near_lpl|near_upl|moving_range|mr_bar|mr_bar_unscreened)$",
        "per month (the chart's measure)",
    ),
    (r"programme\.spc\.[a-z_]+\.points\[\]\.relative_to_mean$", "sign (-1, 0, 1)"),
    (r"programme\.spc\.[a-z_]+\.(points\[\]|segments\[\])\.segment$", "index"),
    (r"programme\.spc\.[a-z_]+\.point_type_counts\.[a-z_]+$", "months"),
    (
        r"impact\.outcomes\.[a-z_]*cost\.(implementation_period\.)?(estimate|se|ci_low|ci_high)$",
        "£ per person-month",
    ),
    (r"impact\.outcomes\.[a-z_]*cost\.mean_treated_before$", "£ per person-month"),
    (r"impact\.outcomes\.[a-z_]*days\.mean_treated_before$", "days per person-month"),
    (r"impact\.outcomes\.[a-z_]+\.mean_treated_before$", "events per person-month"),
    (
        r"(impact\.(outcomes\.[a-z_]+(\.implementation_period)?|naive|horizons\[\]|event_study\[\])"
        r"|\.coefficients\.[a-z_]+)"
        r"\.(estimate|se|ci_low|ci_high)$",
        LOG_RR,
    ),
    # the real-time evaluation (careval follow's looks): on the primary outcome's scale
    (
        r"follow\.(looks\[\]|detected)\.(estimate|ci_low|ci_high|se)$",
        "log rate ratio (a difference when the primary outcome is not a count)",
    ),
    (
        r"follow\.(looks\[\]|detected)\.(rate_ratio(_ci_low|_ci_high)?|bound_low|bound_high)$",
        RATIO,
    ),
    (r"follow\.looks\[\]\.(z|critical)$", "z statistic"),
    (r"follow\.looks\[\]\.information$", "information (1 / se squared)"),
    (r"follow\.looks\[\]\.fraction$", "information fraction (of the planned maximum)"),
    (r"follow\.looks\[\]\.spent$", "alpha spent (cumulative probability)"),
    (r"follow\.looks\[\]\.(n_treated|n_controls)$", PEOPLE),
    (r"follow\.looks\[\]\.median_follow_up_months$", MONTHS),
    (r"follow\.settings\.planned_information$", "information (1 / se squared)"),
    (r"follow\.settings\.[a-z_]+$", SETTING),
    (r"impact\.truth\.[a-z_]+$", "rate ratio (planted)"),
    (r"impact\.(outcomes\.[a-z_]+|mortality)\.truth$", "rate ratio (planted)"),
    (r"impact\.empirical_null\.(mean|sd|ease)$", "log rate ratio (systematic error)"),
    (r"impact\.negative_controls\[\]\.(estimate|se|ci_low|ci_high)$", LOG_RR),
    (r"impact\.negative_controls\[\]\.truth$", "rate ratio (planted)"),
    (
        r"impact\.outcomes\.[a-z_]+\.diagnostics\.checks\[\]\.(value|threshold)$",
        "the diagnostic's own unit (its label names it)",
    ),
    (r"impact\.outcomes\.[a-z_]+\.e_value\.(rr|e_value|e_value_ci)$", RATIO),
    (r"impact\.outcomes\.[a-z_]+\.pretrend\.statistic$", "chi-square statistic"),
    (r"impact\.outcomes\.[a-z_]+\.pretrend\.df$", "degrees of freedom"),
    (r"impact\.outcomes\.[a-z_]+\.pretrend\.bins$", "pre-entry bins tested"),
    (r"impact\.outcomes\.[a-z_]+\.pretrend\.max_change$", SHARE),
    (
        r"impact\.outcomes\.[a-z_]+\.diagnostics\.checks\[\]\.(largest_change|max_change)$",
        SHARE,
    ),
    (r"impact\.sensitivity\[\]\.caliper$", "standard deviations of the score"),
    (r"impact\.sensitivity\[\]\.ratio$", "controls per treated person"),
    (
        r"impact\.sensitivity\[\]\.(estimate|se|ci_low|ci_high)$",
        "log rate ratio (£ per person-month when the primary outcome is a cost)",
    ),
    (r"impact\.study_diagnostics\.equipoise$", SHARE),
    (r"impact\.study_diagnostics\.max_abs_smd$", SMD),
    (r"impact\.study_diagnostics\.median_follow_up$", MONTHS),
    (r"impact\.mortality\.(estimate|se|ci_low|ci_high)$", LOG_RR),
    (r"impact\.mortality\.(rate_treated|rate_controls)$", "deaths per 1,000 person-years"),
    (r"impact\.mortality\.(deaths_treated|deaths_controls)$", "deaths"),
    (r"impact\.mortality\.(person_years_treated|person_years_controls)$", "person-years"),
    # time to event (careval.impact.survival): curves by month since entry, per arm
    (r"impact\.survival\.(months|landmarks)\[\]$", "months since entry"),
    (
        r"impact\.survival\.\w+\.arms\.\w+\.(survival|incidence|incidence_death)(_\d+)?(\[\])?$",
        SHARE,
    ),
    (r"impact\.survival\.\w+\.arms\.\w+\.(at_risk|events_by|deaths_by)\[\]$", PEOPLE),
    (r"impact\.survival\.\w+\.arms\.\w+\.(people|events|people_died)$", PEOPLE),
    (r"impact\.survival\.\w+\.cox\.(estimate|se|ci_low|ci_high)$", "log hazard ratio"),
    (
        r"impact\.survival\.\w+\.fine_gray\.(estimate|se|se_naive|ci_low|ci_high)$",
        "log subdistribution hazard ratio",
    ),
    (r"impact\.survival\.\w+\.(cox|fine_gray)\.hazard_ratio(_ci_low|_ci_high)?$", RATIO),
    (r"impact\.survival\.panel_deaths\.\w+\.person_months_\w+$", "person-months"),
    (r"impact\.survival\.panel_deaths\.\w+\.people_died$", PEOPLE),
    # the workbook's tables of the block (careval.report.workbook_survival)
    (r"impact\.survival\.hazard_ratios\[\]\.hazard_ratio(_ci_low|_ci_high)?$", RATIO),
    (
        r"impact\.survival\.(people_and_events|curves|panel_deaths)\[\]\.(at_risk|events_by"
        r"|deaths_by|people|events|people_died)$",
        PEOPLE,
    ),
    (
        r"impact\.survival\.(people_and_events|curves)\[\]\.(survival|incidence|incidence_death)"
        r"(_\d+)?$",
        SHARE,
    ),
    (r"impact\.survival\.curves\[\]\.month$", "months since entry"),
    (r"impact\.survival\.panel_deaths\[\]\.person_months_\w+$", "person-months"),
    (r"impact\.subgroups\[\]\.(estimate|se|ci_low|ci_high)$", LOG_RR),
    (
        r"impact\.trajectories\[\]\.(mean|ci_low|ci_high)$",
        "the row's outcome per person-month (£ for a cost)",
    ),
    (
        r"dementia\.its\.[a-z_]+\.ols\.coefficients\.[a-z_]+\.(estimate|se|ci_low|ci_high)$",
        "new diagnoses per 1,000 registered a month",
    ),
    (r"impact\.naive\.(mean_before|mean_after)$", "emergency admissions per person-month"),
    (
        r"before_after\.table\[\]\.(before|after|change|comparison_change|estimate|ci_low|ci_high|truth)$",
        "the row's quantity (a share 0-1, or a mean in the unit it names)",
    ),
    (r"before_after\.table\[\]\.statistic$", "test statistic"),
    (r"\.statistic$", "test statistic"),
    (r"\.dof$", "degrees of freedom"),
    (r"monitoring\.table2\[\]\.(pct_change|ci_low|ci_high|true_pct_change)$", "percent change"),
    (r"monitoring\.table2\[\]\.(rate_before|rate_after)$", "admissions per person-year"),
    (
        r"monitoring\.differences\[\]\.(difference|ci_low|ci_high|true_difference)$",
        "percentage points",
    ),
    (r"surveys\..*\.(ci_low|ci_high)$", SHARE),
    (r"surveys\..*\.comparisons\[\]\.table\.counts(\[\])*$", PEOPLE),
    (r"surveys\..*\.min_expected$", PEOPLE),
    (r"surveys\..*\.(n|n_[a-z_]+|count|invited|responded|population)$", PEOPLE),
    (r"qualitative\.coding\.cooccurrence\..+$", "coded segments"),
    (r"qualitative\.coding\.frequencies\[\]\.(group:.+|segments)$", "coded segments"),
    (r"qualitative\.coding\.frequencies\[\]\.depth$", "level"),
    (r"qualitative\.coding\.frequencies\[\]\.(documents|cases)$", COUNT),
    (r"qualitative\.coding\.framework\[\]\.segments$", "coded segments"),
    (r"qualitative\.coding\.agreement\[\]\.(units|n_a|n_b|both)$", "coded units"),
    (r"qualitative\.coding\.agreement\[\]\.(kappa|alpha)$", "agreement coefficient"),
    (r"qualitative\.transcripts\.turns\..+$", "turns"),
    (r"qualitative\.transcripts\.tests\[\]\.(observed|expected)(\[\])?$", "utterances"),
    (r"qualitative\.transcripts\.tests\[\]\.n$", "utterances"),
    (r"qualitative\.transcripts\.[a-z_.\[\]]*(utterances|n_coded_utterances)$", "utterances"),
    (r"qualitative\.transcripts\.[a-z_.\[\]]*words$", "words"),
    (r"qualitative\.transcripts\.[a-z_.\[\]]*attendees$", PEOPLE),
    (r"qualitative\.(transcripts\.n_meetings|coding\.n_segments)$", COUNT),
    (r"programme\.meetings\[\]\.mean_minutes$", "minutes"),
    (r"programme\.meetings\[\]\.(meetings|cases_discussed)$", COUNT),
    (r"programme\.meetings\[\]\.[a-z_]+$", "attendances"),
    (r"programme\.plans_by_mdg\[\]\..+$", "care plans"),
    (r"programme\.fund\[\]\.allocations$", COUNT),
    (r"data\.attrition\[\]\.step$", "step number"),
    (r"data\.attrition\[\]\.[a-z_]+$", PEOPLE),
    (r"(^|\.)n_obs$", "observations (person-periods)"),
    (
        r"(^|\.)(candidate_control_rows|controls_matched)$",
        "person-months (a person at an entry month)",
    ),
    (r"settings(\.[a-z_]+)*\.[a-z_]*seed$", "random seed"),
    (r"settings(\.[a-z_]+)*\.after_window_months(\[\])?$", MONTHS),
    (r"settings(\.[a-z_]+)*\.[a-z0-9_]+_mmol_mol$", "mmol/mol"),
    (r"lightgbm\.params\.learning_rate$", "learning rate"),
    (r"lightgbm\.params\.(min_child_samples)$", PEOPLE),
    (r"lightgbm\.params\.(n_estimators|num_leaves)$", "trees or leaves"),
    (r"indicators\.truth\.diabetes\.(total_cholesterol)$", "mmol/l (planted change)"),
    (r"indicators\.truth\.diabetes\.(sbp|dbp|dbp_direct)$", "mmHg (planted change)"),
    (r"indicators\.truth\.diabetes\.hba1c$", "mmol/mol (planted change)"),
    (r"indicators\.truth\.diabetes\.review_probability$", "probability (planted)"),
    (r"indicators\.truth\.diabetes\.from_months_after_care_plan$", MONTHS),
    (r"indicators\.truth\.dementia_case_finding\.value$", "rate ratio (planted)"),
    (
        r"indicators\.truth\.dementia_case_finding\.six_cit_at_care_plan_for_75_plus$",
        "probability (planted)",
    ),
    (
        r"dementia\.its\.[a-z_]+\.(mean_rate_before|mean_rate_after)$",
        "new diagnoses per 1,000 registered a month",
    ),
    (r"dementia\.its\.[a-z_]+\.(months|months_before|months_after)$", MONTHS),
    (r"dementia\.its\.[a-z_]+\.hac_lags$", MONTHS),
    (r"dementia\.monthly\[\]\.month_number$", "month number"),
    (r"dementia\.monthly\[\]\.rate_per_1000$", "new diagnoses per 1,000 registered a month"),
    (r"design\.costs\[\]\.(se_change_pounds|mde_change_pounds_per_person)$", "£ per person"),
    (r"design\.baseline_rate_per_person_year$", "emergency admissions per person-year"),
    (r"risk\.coefficients\[\]\.coefficient$", "log odds"),
    (
        r"risk\.targeting\[\]\.emergency_per_person_year_prior$",
        "emergency admissions per person-year",
    ),
    (
        r"risk\.(lightgbm\.)?(by_subgroup\[\]\.)?(auc|auc_ci_low|auc_ci_high|oracle_auc)$",
        "area under the ROC curve (0-1)",
    ),
    (r"auc_difference(_ci_low|_ci_high)?$", "difference in AUC"),
    (r"\.brier$", "Brier score (0-1)"),
    (r"calibration_intercept$", "log odds"),
    (r"calibration_slope$", RATIO),
    (r"(ppv|sensitivity)_top_[0-9_]+pct$", SHARE),
    (r"flagged_top_[0-9_]+pct$", PEOPLE),
    (r"impact\.balance\[\]\.(mean_[a-z_]+)$", "covariate's own unit (a share for a yes/no one)"),
    (r"(smd_before|smd_after|max_abs_smd_after)$", SMD),
    (r"caliper_width_logit$", "logit of the propensity score"),
    (r"(^|\.)(se_log_rate_ratio|sim_sd_log_rate_ratio)$", LOG_RR),
    (r"\.r_squared$", SHARE),
    (r"impact\.follow_up\.treated_person_months_after$", "person-months"),
    (r"(^|\.)(from_month|to_month)$", "months from the care plan"),
    # --- key names
    (
        r"(^|\.)(truth_rate_ratio|rate_ratio[a-z_]*|mde_rate_ratio|sim_mde_rate_ratio"
        r"|sim_mean_rate_ratio|variance_ratio_after|auc_ratio_to_oracle)$",
        RATIO,
    ),
    (r"(^|\.)(power_at_effect|sim_power_at_effect|sim_coverage|mde_share_of_mean_after)$", SHARE),
    (r"(^|\.)sim_replicates$", "replicates"),
    (r"per_1000_py$", PER_1000_PY),
    (r"(^|\.)[a-z_]*(share|coverage)[a-z_]*$", SHARE),
    (r"(^|\.)(percent_agreement|mean_risk|response_rate|spent_share)$", SHARE),
    (r"(^|\.)[a-z_]*months?[a-z_]*$", MONTHS),
    (
        r"(^|\.)(allocated|spent|budget_first_year|allocated_first_year|allocated_total"
        r"|spent_total)$",
        POUNDS,
    ),
    (r"(^|\.)person_years(_before|_after)?$", "person-years"),
    (
        r"(^|\.)(emergency_admissions|elective_admissions|admissions_before|admissions_after)$",
        ADMISSIONS,
    ),
    (r"(^|\.)(ae_attendances|outpatient_attendances)$", ATTENDANCES),
    (r"(^|\.)community_contacts$", "contacts"),
    (r"(^|\.)(care_plans|care_plans_dementia|cumulative)$", "care plans"),
    (r"(^|\.)(six_cit_tests)$", "tests"),
    (r"(^|\.)(new_diagnoses)$", "diagnoses"),
    (r"(^|\.)(events)$", "people with an emergency admission"),
    (
        r"(^|\.)(n_points|n_points_for_limits|moving_ranges_used|moving_ranges_screened_out)$",
        MONTHS,
    ),
    (
        r"(^|\.)(registered|eligible|people|people_after|people_with_full_history|baseline_people"
        r"|enrolled|n|n_obs|n_treated|n_controls|n_before|n_after|comparison_n|both|before_only"
        r"|after_only|neither|in_control|with_reading|treated_with_full_horizon|care_planned"
        r"|care_planned_with_diabetes|comparison_eligible|entered_in_study_window|[a-z_]*(treated|control|controls)"
        r"[a-z_]*|unmatched_[a-z_]+|under_75_with_diabetes|aged_75_plus_[a-z_]+)$",
        PEOPLE,
    ),
    (r"(^|\.)year$", "calendar year"),
    (r"(^|\.)seed$", SETTING),
    (r"settings(\.[a-z_]+)*\.alpha$", "significance level (0-1)"),
    (r"settings(\.[a-z_]+)*\.power$", SHARE),
    (r"settings(\.[a-z_]+)*\.effect$", RATIO),
    (r"settings\.match\.ratio$|design\.settings\.ratio$", "controls per care-planned person"),
    (r"settings(\.[a-z_]+)*\.replicates$", "replicates"),
    (r"settings(\.[a-z_]+)*\.[a-z_]*min_age$", "years"),
    (r"settings(\.[a-z_]+)*\.caliper$", "standard deviations of the logit of the propensity score"),
    (
        r"settings(\.[a-z_]+)*\.(horizons|event_window|min_follow_up|followup_months)(\[\])?$",
        MONTHS,
    ),
    (r"settings(\.[a-z_]+)*\.[a-z_]+_mmhg$", "mmHg"),
    (r"settings(\.[a-z_]+)*\.[a-z_]+_mmol_mol$", "mmol/mol"),
    (r"settings(\.[a-z_]+)*\.[a-z_]+_mmol_l$", "mmol/l"),
    (r"settings(\.[a-z_]+)*\.mcnemar_exact_below$", "discordant pairs"),
    (r"spc\.[a-z_]+\.settings\.(shift_length|trend_length)$", MONTHS),
    (
        r"spc\.[a-z_]+\.settings\.(limit_multiplier|screen_multiplier)$",
        "multiple of the mean moving range",
    ),
    (r"\.settings(\..+)?\.[a-z_0-9]+(\[\])?$", SETTING),
    (r"^provenance\..*", SETTING),
    (r"lightgbm\.params\.[a-z_]+$", SETTING),
]
RULES: list[tuple[re.Pattern[str], str]] = [(re.compile(p + "$"), u) for p, u in _RULES]

_KIND_UNIT = {"p": P, "share": SHARE, "money": POUNDS, "ratio": RATIO, "rate": PER_1000_PY}


def unit(path: str) -> str:
    """The unit of the figure at ``path`` (a generic path: list indices as ``[]``).

    >>> unit("impact.outcomes.emergency_admissions.rate_ratio")
    'ratio'
    >>> unit("data.people_by_area[].registered"), unit("risk.targeting[].share_in_top_5pct")
    ('people', 'share (0-1)')
    """
    for pattern, u in RULES:
        if pattern.search(path):
            return u
    kind = column_kind(path.rsplit(".", 1)[-1].removesuffix("[]"))
    return _KIND_UNIT.get(kind, UNDECLARED)


def is_p_key(key: str) -> bool:
    """Whether a key names a p-value (``p_value``, ``p``, ``auc_difference_p``)."""
    return key in ("p", "p_value") or key.endswith("_p") or key.endswith("_p_value")


def numeric_leaves(doc: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every number in ``doc`` (not a bool) with its generic path, in document order."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from numeric_leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(doc, list):
        for v in doc:
            yield from numeric_leaves(v, path + "[]")
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        yield path, doc


def leaf_paths(doc: Any, path: str = "") -> set[str]:
    """The generic path of every value in ``doc`` that is neither an object nor a list."""
    if isinstance(doc, dict):
        return set().union(
            *(leaf_paths(v, f"{path}.{k}" if path else str(k)) for k, v in doc.items())
        )
    if isinstance(doc, list):
        return set().union(*(leaf_paths(v, path + "[]") for v in doc))
    return {path}


def units_of(doc: Any) -> dict[str, str]:
    """The ``units`` block of a document: every numeric figure's generic path and its unit,
    sorted by path."""
    return {p: unit(p) for p in sorted({p for p, _ in numeric_leaves(doc)})}


def floor_p_values(doc: Any) -> Any:
    """``doc`` with every p-value that underflowed to 0 published as :data:`P_FLOOR`."""
    if isinstance(doc, dict):
        return {
            k: P_FLOOR if is_p_key(k) and _zero(v) else floor_p_values(v) for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [floor_p_values(v) for v in doc]
    return doc


def _zero(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == 0
