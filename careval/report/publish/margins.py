"""The published tables with totals: where secondary suppression applies and what adds to what."""

from __future__ import annotations

MARGINS: dict[str, str] = {
    "data.people_by_area": "eligible = the three eligibility groups (in each area)",
    "monitoring.table2": "all eligible = the three groups (each area, start date and count)",
    "risk.by_subgroup": "everyone = the age bands; everyone = female + male (each count)",
    "impact.attrition": "alive and registered at entry = matched + unmatched (two reasons)",
    "indicators.diabetes.monthly": "comparison areas pooled = the four comparison areas "
    "(each month, indicator and count)",
    "indicators.before_after.table": "pairs = in control both times + before only + after "
    "only + neither (paired share rows)",
    "programme.plans_by_mdg": "total = the MDGs (each month)",
}
