"""Publication of the risk analysis: the targeting table (rules 1-3)."""

from __future__ import annotations

from careval.report.publish.rules import protect_table
from careval.risk.evaluate import RiskResult

TARGETING_RATES = ("emergency_per_person_year_prior", "mean_risk", "share_in_top_5pct")


def publish_risk(r: RiskResult) -> None:
    """The targeting table as published (rules 1-3)."""
    if len(r.targeting):
        r.targeting = protect_table(
            r.targeting,
            ["people"],
            rates=[*TARGETING_RATES, "share_in_top_1pct"],
            denominator="people",
        )
    # The subgroup table is published by RiskResult itself (risk.evaluate.protect_subgroups).
