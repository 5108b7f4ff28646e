"""Publication of a scoring run's summary (``careval risk score``'s ``summary.json``, real data).

Every count of people is suppressed (1-7) or rounded to 5; a mean risk of fewer than 8 people
is withheld. The case lists themselves name people and are never published.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import is_small, protect_count, protect_counts
from careval.risk.caselist import UNIT_COUNTS, ScoreSummary

# The people behind each mean of the summary (a key of its counts).
MEAN_PEOPLE = {
    "mean_risk_everyone": "registered",
    "mean_risk_eligible_without_plan": "eligible_without_plan",
    "mean_risk_listed_by_practice": "listed_by_practice",
}
UNPROTECTED = ("practices", "mdgs")  # counts of practices and MDGs, not of people


def publish_score_summary(s: ScoreSummary, d: DisclosureSettings) -> ScoreSummary:
    """A copy of ``s`` with its counts protected and the means of fewer than 8 people withheld
    (the numbers of ``d``)."""
    counts = {k: (v if k in UNPROTECTED else protect_count(int(v), d)) for k, v in s.counts.items()}
    means = {
        k: (None if k in MEAN_PEOPLE and is_small(s.counts[MEAN_PEOPLE[k]], d) else v)
        for k, v in s.means.items()
    }
    units = []
    for df in (s.by_practice, s.by_mdg):
        df = df.copy()
        df.loc[df.listed.map(lambda v: is_small(v, d)).astype(bool), "mean_risk_listed"] = np.nan
        units.append(protect_counts(df, list(UNIT_COUNTS), d))
    return dataclasses.replace(s, counts=counts, means=means, by_practice=units[0], by_mdg=units[1])
