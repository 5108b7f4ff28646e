"""Words for people: the one table of human labels and the glossary of terms.

Every variable, test and method the report shows is named by :func:`label`, which the page,
the workbook and the text all use, so ``has_chd`` reads "Coronary heart disease" and
``scipy.stats.ttest_rel`` "Paired t-test" wherever it appears. A name not in the table falls
back to a readable form of itself (underscores as spaces, first letter capitalised), and a
family of names (``emergency_admissions_12m``, ``latest_hba1c_recorded``) is labelled from its
parts. :data:`TERMS` explains each abbreviation and technical term: the page's glossary section
lists them and :func:`abbr` marks a use of one for hover.

The labels are grouped by the part of the report that introduces them; a label used by
several parts is defined once, in the first group.
"""

from __future__ import annotations

import html
import re

# ---- data and people ------------------------------------------------------------------
_DATA: dict[str, str] = {
    "area": "Area",
    "year": "Year",
    "month": "Month",
    "people": "People",
    "registered": "Registered",
    "eligible": "Eligible",
    "eligible_share": "Eligible (% of registered)",
    "under_75_with_diabetes": "Under 75 with diabetes",
    "aged_75_plus_without_diabetes": "75+ without diabetes",
    "aged_75_plus_with_diabetes": "75+ with diabetes",
    "person_years": "Person-years",
    "emergency_admissions": "Emergency admissions",
    "elective_admissions": "Elective admissions",
    "ae_attendances": "A&E attendances",
    "outpatient_attendances": "Outpatient attendances",
    "outpatient_appointments": "Outpatient appointments",
    "community_contacts": "Community contacts",
    "mental_health_contacts": "Mental health contacts (community)",
    "social_care_services": "Social care services",
    "social_care_packages": "New social care packages (at home)",
    "care_home_days": "Days in residential or nursing care",
    "care_plans": "Care plans",
    "cumulative": "Cumulative care plans",
    "coverage_of_eligible": "Eligible with a care plan",
    "emergency_per_1000_py": "Emergency admissions per 1,000 person-years",
    "inpatient_spells": "Inpatient spells",
    "bed_days": "Bed days",
    "emergency_bed_days": "Emergency bed days",
    "emergency_cost": "Emergency admission cost",
    "elective_cost": "Elective admission cost",
    "inpatient_cost": "Inpatient cost",
    "total_cost": "Total hospital cost",
    "deaths": "Deaths",
    "mortality": "Deaths",
    "age": "Age",
    "age_band": "Age band",
    "age_squared": "Age squared",
    "sex": "Sex",
    "imd_decile": "Deprivation decile (IMD)",
    "lsoa": "Neighbourhood (LSOA)",
    "practice_id": "GP practice",
    "mdg": "Multidisciplinary group",
    "step": "Step",
    "description": "Description",
    "admission_date": "Admission date",
    "admission_method": "Admission method",
    "discharge_date": "Discharge date",
    "arrival_date": "Arrival date",
    "appointment_date": "Appointment date",
    "created_date": "Date created",
    "patient_classification": "Patient classification",
    "reference_date": "Reference date",
    "extract_date": "Extract date",
    "rest_of_england": "Rest of England",
    "south_west_london": "South-west London",
}

# ---- conditions and clinical measures ----------------------------------------------------
_CLINICAL: dict[str, str] = {
    "has_asthma": "Asthma",
    "has_atrial_fibrillation": "Atrial fibrillation",
    "has_cancer": "Cancer",
    "has_chd": "Coronary heart disease",
    "has_ckd": "Chronic kidney disease",
    "has_copd": "COPD",
    "has_dementia": "Dementia",
    "has_depression": "Depression",
    "has_diabetes": "Diabetes",
    "has_epilepsy": "Epilepsy",
    "has_heart_failure": "Heart failure",
    "has_hypertension": "Hypertension",
    "has_hypothyroidism": "Hypothyroidism",
    "has_osteoarthritis": "Osteoarthritis",
    "has_peripheral_arterial_disease": "Peripheral arterial disease",
    "has_serious_mental_illness": "Serious mental illness",
    "has_stroke_tia": "Stroke or TIA",
    "charlson_index": "Charlson comorbidity index",
    "n_long_term_conditions": "Number of long-term conditions",
    "months_since_emergency": "Months since last emergency admission",
    "emergency_admissions_6m_band": "Emergency admissions in the last 6 months (0, 1, 2 or more)",
    "risk_score": "Risk score",
    "hba1c": "HbA1c",
    "sbp": "Systolic blood pressure",
    "dbp": "Diastolic blood pressure",
    "total_cholesterol": "Total cholesterol",
    "six_cit": "6CIT score",
    "hba1c_max_mmol_mol": "HbA1c target (mmol/mol, at most)",
    "sbp_max_mmhg": "Systolic target (mmHg, at most)",
    "dbp_max_mmhg": "Diastolic target (mmHg, at most)",
    "total_cholesterol_max_mmol_l": "Cholesterol target (mmol/L, at most)",
    "dementia_min_age": "Dementia screening from age",
}

# ---- methods and tests ---------------------------------------------------------------------
_METHODS: dict[str, str] = {
    "scipy.stats.ttest_rel": "Paired t-test",
    "scipy.stats.ttest_ind": "Two-sample t-test",
    "ttest_rel": "Paired t-test",
    "ttest_ind": "Two-sample t-test",
    "proportions_ztest": "Two-proportion z-test",
    "statsmodels.stats.proportion.proportions_ztest": "Two-proportion z-test",
    "mcnemar": "McNemar's test",
    "wilcoxon": "Wilcoxon signed-rank test",
    "chi2_contingency": "Chi-squared test",
    "poisson": "Poisson regression",
    "ols": "Linear regression (OLS)",
    "logit_ps": "Logit of the propensity score",
    "ps": "Propensity score",
    "mahalanobis": "Mahalanobis distance",
    "rate_ratio": "Rate ratio",
    "p_value": "p",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "estimate": "Estimate",
    "se": "Standard error",
    "n_obs": "Observations",
    "n_treated": "Care-planned",
    "n_controls": "Matched controls",
    "smd": "Standardised mean difference",
    "max_abs_smd_after": "Largest standardised difference after matching",
    "mean_before": "Mean before",
    "mean_after": "Mean after",
    "before_after": "Before and after",
    "by_subgroup": "By subgroup",
    "coder_a": "Coder A",
    "coder_b": "Coder B",
    "coded_segments": "Coded segments",
    "follow_up": "Follow-up",
    "followup_months": "Months of follow-up",
}

# ---- settings of the study (shown where a section states what it assumed) -----------------
_SETTINGS: dict[str, str] = {
    "control_areas": "Control areas",
    "programme_areas": "Programme areas",
    "not_yet_treated": "Not-yet-treated controls",
    "lookback_months": "Months of history matched on",
    "min_follow_up": "Shortest follow-up",
    "min_months_on_plan": "Shortest time on a plan",
    "min_its_months": "Shortest interrupted time series (months)",
    "implementation_months": "Implementation period (months)",
    "period_months": "Period (months)",
    "pre_months": "Months before",
    "rolling_months": "Rolling window (months)",
    "event_window": "Event-study window",
    "event_bin_months": "Event-study bin (months)",
    "entry_from": "Entry from",
    "entry_to": "Entry to",
    "entry_month": "Month of entry",
    "effect_from_month": "Effect from month",
    "train_date": "Model trained on",
    "validate_date": "Model validated on",
    "rounding_base": "Rounding base",
    "disclosure_control": "Disclosure control",
    "treated_label": "Name of the treated",
    "unit_cost": "Unit cost",
    "innovation_fund": "Innovation fund",
    "fund_budget": "Fund budget",
    "mdg_meetings": "MDG meetings",
    "mdg_attendance": "MDG attendance",
    "plans_by_mdg": "Care plans by MDG",
    "people_by_area": "People by area",
    "early_adopters": "Early adopters",
    "alternative_starts": "Alternative start dates",
    "compare_lightgbm": "Gradient-boosting comparison",
    "min_age": "Minimum age",
    "mental_health": "Mental health",
    "social_worker": "Social worker",
    "allied_health_professional": "Allied health professional",
    "presenting_gp": "Presenting GP",
    "non_presenting_gp": "Non-presenting GP",
    "date_column": "Date column",
    "value_column": "Value column",
    "code_column": "Code column",
    "end_column": "End column",
}

# ---- the board summary, Table 3 and the flow diagram -------------------------------------
_SUMMARY: dict[str, str] = {
    "objective": "Objective",
    "evidence": "Evidence from this run",
    "progress": "Progress",
    "how_sure": "How sure",
    "challenges": "Challenges",
    "focus": "Focus for development",
    "care_planned": "Everyone with a care plan",
    "entered_in_study_window": "First care plan in the study's entry window",
    "treated_alive_and_registered_at_entry": "Alive, registered and eligible at entry",
    "candidate_control_rows": "Candidate controls (person-months)",
    "candidate_control_people": "Candidate controls (people)",
    "treated_matched": "Care-planned matched to controls",
    "controls_matched": "Matched controls (person-months)",
    "unmatched_no_control_in_stratum": "Unmatched: no control in the same stratum",
    "unmatched_outside_caliper": "Unmatched: no control within the caliper",
    "caliper_width_logit": "Caliper width (logit of the propensity score)",
    "mean_treated_before": "Mean among the care-planned before",
}

# ---- the matched study (impact section and its published tables) ---------------------------
_IMPACT: dict[str, str] = {
    "negative_controls": "Negative controls",
    "sensitivity": "Sensitivity to the design",
    "kind": "Kind (outcome or placebo start)",
    "truth": "True rate ratio",
    "ratio": "Controls per treated person",
    "replace": "With replacement",
    "control_area": "Control area",
    "estimated": "Estimated",
    "subgroup": "Subgroup",
    "subgroups": "By subgroup",
    "level": "Group",
    "group": "Group",
    "trajectories": "Use by month since entry",
    "horizon_months": "Follow-up (months)",
    "treated_with_full_horizon": "Followed that long",
    "implementation_period": "Implementation period",
    "mean_treated": "Mean, treated",
    "mean_treated_after": "Mean, treated (matched)",
    "mean_control_before": "Mean, controls before matching",
    "mean_control_after": "Mean, controls after matching",
    "smd_before": "SMD before matching",
    "smd_after": "SMD after matching",
    "variance_ratio_after": "Variance ratio after matching",
    "imbalanced_after": "Imbalanced after matching",
    "deaths_treated": "Deaths, treated",
    "deaths_controls": "Deaths, matched controls",
    "person_years_treated": "Person-years, treated",
    "person_years_controls": "Person-years, matched controls (weighted)",
    "rate_treated": "Deaths per 1,000 person-years, treated",
    "rate_controls": "Deaths per 1,000 person-years, matched controls",
    "truth_rate_ratio": "Planted rate ratio",
    "planted": "Planted rate ratio",
    "covered": "Interval covers the truth",
    "cost_difference": "Difference (£ a person-month)",
    "rate_ratio_ci_low": "95% CI low",
    "rate_ratio_ci_high": "95% CI high",
    # time to event (impact.survival)
    "hazard_ratio": "Hazard ratio",
    "hazard_ratio_ci_low": "95% CI low",
    "hazard_ratio_ci_high": "95% CI high",
    "at_risk": "At risk",
    "events_by": "With the event so far",
    "deaths_by": "Died before an admission so far",
    "incidence": "Cumulative incidence",
    "incidence_death": "Cumulative incidence of death first",
    "people_died": "Died",
    "person_months_followed": "Person-months followed",
    "person_months_lost_to_death": "Person-months lost to death",
}

# ---- the workbook and results.json (names of surveys and charts in sheet names) ----------
_WORKBOOK: dict[str, str] = {
    "gps": "GPs",
    "care_plans_per_month": "Care plans per month",
    "care_plan_quality": "Care plan quality",
    "mdg_meetings_per_month": "MDG meetings per month",
}

LABELS: dict[str, str] = {
    **_DATA,
    **_CLINICAL,
    **_METHODS,
    **_SETTINGS,
    **_SUMMARY,
    **_IMPACT,
    **_WORKBOOK,
}

# Abbreviations and technical terms: the short form, what it stands for, what it means.
TERMS: dict[str, tuple[str, str]] = {
    "A&E": ("Accident and emergency", "A hospital's emergency department."),
    "EASE": (
        "Expected absolute systematic error",
        "How far, on average, the negative controls put an estimate from the truth by bias "
        "rather than chance (log scale; 0 is none, 0.25 about a 28% error).",
    ),
    "E-value": (
        "E-value",
        "How strongly an unmeasured confounder would have to be tied to both the intervention "
        "and the outcome, as a rate ratio, to explain an estimate away.",
    ),
    "MDRR": (
        "Minimum detectable rate ratio",
        "The smallest change (as a rate ratio) the study would detect with 80% power at the 5% "
        "level, from its own standard error.",
    ),
    "negative control": (
        "Negative-control outcome",
        "An outcome the programme cannot change: its estimate should be no change, so any "
        "departure measures bias.",
    ),
    "ATT": (
        "Average treatment effect on the treated",
        "The effect among the people who got the intervention, against what would have "
        "happened to them without it.",
    ),
    "AUC": (
        "Area under the ROC curve",
        "How well a risk score ranks people: 0.5 is no better than chance, 1.0 puts everyone "
        "who will be admitted above everyone who will not.",
    ),
    "caliper": (
        "Caliper",
        "The largest difference in propensity score allowed between a person and their "
        "matched control.",
    ),
    "CI": (
        "Confidence interval",
        "The range of effects compatible with the data; a 95% interval would contain the true "
        "value in 95 of 100 repeated studies.",
    ),
    "DiD": (
        "Difference-in-differences",
        "The change among the treated minus the change among the controls over the same time, "
        "which removes what would have changed anyway.",
    ),
    "HAC": (
        "Heteroskedasticity and autocorrelation consistent",
        "Standard errors that allow for a monthly series' months being correlated (Newey-West).",
    ),
    "HbA1c": (
        "Glycated haemoglobin",
        "A blood test of average blood sugar over about three months, in mmol/mol.",
    ),
    "IMD": (
        "Index of Multiple Deprivation",
        "England's official measure of neighbourhood deprivation; decile 1 is the most "
        "deprived tenth.",
    ),
    "ITS": (
        "Interrupted time series",
        "A model of a monthly series' level and trend before a change and the jump and change "
        "of trend after it.",
    ),
    "LSOA": (
        "Lower-layer super output area",
        "A census neighbourhood of about 1,500 people.",
    ),
    "MDE": (
        "Minimum detectable effect",
        "The smallest true effect the study would detect with the planned power (80%) at the "
        "5% significance level.",
    ),
    "MDG": (
        "Multidisciplinary group",
        "The GPs, community and social care staff of a locality who meet to plan the care of "
        "people at high risk.",
    ),
    "PPV": (
        "Positive predictive value",
        "Of the people a risk score flags, the share who were admitted.",
    ),
    "SMD": (
        "Standardised mean difference",
        "The difference between two groups' means in standard deviations; below 0.1 is "
        "usually taken as balanced.",
    ),
    "SPC": (
        "Statistical process control",
        "Charts that separate real change in a monthly measure from its usual variation.",
    ),
    "XmR": (
        "Individuals and moving range chart",
        "An SPC chart of single values with limits from the average month-to-month change.",
    ),
    "6CIT": (
        "Six-item cognitive impairment test",
        "A short memory test scored 0 to 28; 8 or more suggests cognitive impairment.",
    ),
    "COPD": ("Chronic obstructive pulmonary disease", "A long-term lung disease."),
    "coverage": (
        "Coverage",
        "The share of the people eligible on the reference date who had a care plan by the end "
        "of the data (the care-planned of the eligible, one definition throughout the report).",
    ),
    "person-month": (
        "Person-month",
        "One person followed for one month; the matched study's outcomes are counted per "
        "person-month.",
    ),
    "TIA": ("Transient ischaemic attack", "A mini-stroke."),
}

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
_HORIZON = re.compile(r"^(?P<base>.+)_(?P<n>\d+)m$")
_AT_LEAST = re.compile(r"^(?P<base>.+)_(?P<n>\d+)m_ge(?P<j>\d+)$")
_LANDMARK = re.compile(r"^(?P<base>survival|incidence|incidence_death)_(?P<n>\d+)$")


def label(name: str) -> str:
    """The human label of a variable, test or method name.

    >>> label("has_chd"), label("emergency_admissions_12m"), label("scipy.stats.ttest_rel")
    ('Coronary heart disease', 'Emergency admissions (12 months)', 'Paired t-test')
    >>> label("emergency_admissions_3m_ge2")
    'Emergency admissions: 2 or more (3 months)'
    >>> label("latest_hba1c_recorded"), label("latest_sbp"), label("north_central_london")
    ('HbA1c recorded', 'Latest systolic blood pressure', 'North central london')
    """
    if name in LABELS:
        return LABELS[name]
    if m := _AT_LEAST.match(name):  # a band indicator: at least j in the last n months
        return f"{label(m['base'])}: {m['j']} or more ({m['n']} months)"
    if m := _HORIZON.match(name):
        return f"{label(m['base'])} ({m['n']} months)"
    if m := _LANDMARK.match(name):  # a survival curve's figure at a landmark month
        return f"{label(m['base'])} at {m['n']} months"
    if name.startswith("latest_") and name.endswith("_recorded"):
        return f"{label(name[len('latest_') : -len('_recorded')])} recorded"
    if name.startswith("latest_"):
        inner = label(name[len("latest_") :])
        return "Latest " + (inner if inner[:2].isupper() else inner[0].lower() + inner[1:])
    if name.startswith("has_"):
        return label(name[len("has_") :])
    if "." in name and name.rsplit(".", 1)[-1] in LABELS:
        return LABELS[name.rsplit(".", 1)[-1]]
    text = name.replace("_", " ").strip()
    return (text[0].upper() + text[1:]) if text else name


def is_code_name(text: str) -> bool:
    """Whether ``text`` is written like a code name (``has_chd``), not for people to read."""
    return bool(_IDENTIFIER.match(text))


def abbr(term: str, shown: str | None = None) -> str:
    """``term`` as HTML, explained on hover: ``<abbr title="Area under the ROC curve: ...">``.

    ``shown`` is the text on the page (default: the term). A term not in :data:`TERMS` is
    returned escaped, without the hover.
    """
    text = html.escape(shown or term)
    if term not in TERMS:
        return text
    long, meaning = TERMS[term]
    return f'<abbr title="{html.escape(f"{long}: {meaning}")}">{text}</abbr>'


def glossary_html() -> str:
    """The glossary section's body: every term, what it stands for and what it means."""
    rows = "".join(
        f"<dt id='term-{re.sub(r'[^a-z0-9]+', '-', t.lower()).strip('-')}'>{html.escape(t)}"
        f"</dt><dd><b>{html.escape(long)}.</b> {html.escape(meaning)}</dd>"
        for t, (long, meaning) in sorted(TERMS.items(), key=lambda kv: kv[0].lower())
    )
    return f"<dl class='glossary'>{rows}</dl>"
