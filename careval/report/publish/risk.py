"""Publication of the risk analysis: the targeting table and the subgroup table (rules 1-3).

The subgroup rule (:func:`protect_subgroups`) is the same for the run and for
``careval risk validate``.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import SUPPRESSED, protect_table
from careval.risk.evaluate import RiskResult
from careval.risk.metrics import SUBGROUP_SHARES, share_tag

TARGETING_RATES = ("emergency_per_person_year_prior", "mean_risk", "share_in_top_5pct")
SUBGROUP_RATES = ("auc", "auc_ci_low", "auc_ci_high", "calibration_slope", "brier")


def publish_risk(r: RiskResult, d: DisclosureSettings) -> RiskResult:
    """A copy of ``r`` with the targeting and subgroup tables as published (rules 1-3), its
    ``disclosure_control`` set."""
    targeting = r.targeting
    if len(targeting):
        targeting = protect_table(
            targeting,
            ["people"],
            d,
            rates=[*TARGETING_RATES, "share_in_top_1pct"],
            denominator="people",
        )
    return dataclasses.replace(
        r,
        targeting=targeting,
        by_subgroup=protect_subgroups(r.by_subgroup, d),
        warnings=list(r.warnings),
        disclosure_control=True,
    )


def protect_subgroups(df: pd.DataFrame, d: DisclosureSettings) -> pd.DataFrame:
    """The subgroup table (:func:`careval.risk.metrics.subgroup_table`) as published.

    Rules 1-3 of :mod:`careval.report.publish.rules`: people, events and flagged counts are
    suppressed (1-7) or rounded to 5, with secondary suppression of each breakdown (age bands,
    sexes) against the ``everyone`` row; AUC, calibration and Brier of fewer than 8 people are
    withheld, and so are a PPV whose flagged count and a sensitivity whose event count is
    suppressed (each would give its small count away).
    """
    if df.empty:
        return df
    flagged = [f"flagged_top_{share_tag(s)}pct" for s in SUBGROUP_SHARES]
    counts = ["people", "events", *flagged]
    rates: dict[str, list[str]] = {}
    for s in SUBGROUP_SHARES:
        tag = share_tag(s)
        rates[f"ppv_top_{tag}pct"] = [f"flagged_top_{tag}pct"]
        rates[f"sensitivity_top_{tag}pct"] = ["events"]
    published = df
    for dim in ("age", "sex"):
        published = _subgroup_margin(published, df, counts, dim, d)
    return protect_table(
        df.assign(**{c: published[c] for c in counts}),
        [],
        d,
        rates=[*SUBGROUP_RATES, "calibration_intercept", *rates],
        denominator="people",
        rate_counts=rates,
    )


def _subgroup_margin(
    published: pd.DataFrame, raw: pd.DataFrame, counts: list[str], dim: str, d: DisclosureSettings
) -> pd.DataFrame:
    """Secondary suppression of one breakdown (age or sex) against the ``all`` row."""
    part = raw[raw["dimension"].isin(["all", dim])]
    done = protect_table(part, counts, d, group_margin=("dimension", [], [dim], "all"))
    out = published.copy().astype({c: object for c in counts})
    for c in counts:
        for i in done.index:
            if out.at[i, c] != SUPPRESSED:
                out.at[i, c] = done.at[i, c]
    return out
