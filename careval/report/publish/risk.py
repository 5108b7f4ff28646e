"""Publication of the risk analysis: the targeting table and the subgroup table (rules 1-3).

The subgroup rule (:func:`protect_subgroups`) is the same for the run and for
``careval risk validate``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report.publish.derived import count_out, derived, ratio_of_published
from careval.report.publish.rules import SUPPRESSED, is_suppressed, protect_table
from careval.risk.evaluate import RiskResult
from careval.risk.metrics import SUBGROUP_SHARES, TOP_SHARES, share_tag, top_flags

TARGETING_RATES = ("emergency_per_person_year_prior", "mean_risk", "share_in_top_5pct")
SUBGROUP_RATES = ("auc", "auc_ci_low", "auc_ci_high", "calibration_slope", "brier")
# The model's figures on a population (the risk block, its LightGBM comparison, a subgroup row):
# the AUC is a Mann-Whitney count over events x non-events and the calibration and Brier score
# rest on the events too, so they are withheld when the events or the non-events are 1-7.
MODEL_FIGURES = (
    *SUBGROUP_RATES,
    "calibration_intercept",
    "auc_difference",
    "auc_difference_ci_low",
    "auc_difference_ci_high",
    "auc_difference_p",
)
# Targeting: figure -> the comparison that marks the people it counts (a mean of prior
# admissions is a count of admissions over the group's people).
TARGETING_SHARES = ("emergency_per_person_year_prior", "share_in_top_5pct", "share_in_top_1pct")


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
        ).astype({c: object for c in TARGETING_SHARES if c in targeting})
        for i, row in r.targeting.iterrows():
            for c in TARGETING_SHARES:
                if c in row and row[c] is not None and pd.notna(row[c]):
                    targeting.at[i, c] = derived(float(row[c]) * row["people"], row["people"], d)
    figures = publish_figures(r.figures, d)
    lightgbm: dict = {}
    if r.lightgbm:
        whole = {**r.lightgbm, "n": r.figures.get("n"), "events": r.figures.get("events")}
        lightgbm = {k: v for k, v in publish_figures(whole, d).items() if k in r.lightgbm}
    return dataclasses.replace(
        r,
        figures=figures,
        calibration_deciles=protect_deciles(r.calibration_deciles, d),
        lightgbm=lightgbm,
        targeting=targeting,
        by_subgroup=protect_subgroups(r.by_subgroup, d),
        warnings=list(r.warnings),
        disclosure_control=True,
    )


def protect_deciles(df: pd.DataFrame, d: DisclosureSettings) -> pd.DataFrame:
    """The calibration table by tenth of risk as published (the page's calibration chart).

    People are protected (rule 1) and the observed share admitted is the (rounded) people
    admitted over the (rounded) people of the tenth, withheld when they are 1-7; the mean
    predicted risk is a model figure and is left. A withheld share is NaN (a gap in the
    chart).
    """
    if df.empty or "observed" not in df:
        return df
    out = df.copy().astype({"people": object})
    observed = [
        None if pd.isna(o) else derived(float(o) * int(n), int(n), d)
        for o, n in zip(df["observed"], df["people"], strict=True)
    ]
    out["observed"] = [np.nan if v is None else v for v in observed]  # a gap in the chart
    out["people"] = [count_out(int(n), d) for n in df["people"]]
    return out


def publish_figures(f: dict, d: DisclosureSettings) -> dict:
    """The model's figures on the whole validation population under the derived-figure rule.

    PPV and sensitivity of the top ``x`` % are the (rounded) people flagged and admitted over the
    (rounded) people flagged and the (rounded) events; the AUC, calibration and Brier score
    are withheld when the events or the non-events are 1-7.
    """
    out = dict(f)
    n, events = f.get("n"), f.get("events")
    if not isinstance(n, int) or not isinstance(events, int):
        return out
    for share in TOP_SHARES:
        tag = share_tag(share)
        ppv, sens = f.get(f"ppv_top_{tag}pct"), f.get(f"sensitivity_top_{tag}pct")
        if ppv is None or sens is None:
            continue
        flagged = int(top_flags(np.zeros(n), share).sum())
        hits = round(float(ppv) * flagged)
        out[f"ppv_top_{tag}pct"] = derived(hits, flagged, d)
        out[f"sensitivity_top_{tag}pct"] = ratio_of_published(
            count_out(hits, d), count_out(events, d)
        )
    if is_suppressed(events, d) or is_suppressed(n - events, d):
        for k in MODEL_FIGURES:
            if k in out:
                out[k] = None
    return out


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
    out = protect_table(
        df.assign(**{c: published[c] for c in counts}),
        [],
        d,
        rates=[*SUBGROUP_RATES, "calibration_intercept", *rates],
        denominator="people",
        rate_counts=rates,
    ).astype({c: object for c in [*rates, *MODEL_FIGURES] if c in df})
    for i, row in df.iterrows():
        for s in SUBGROUP_SHARES:
            tag = share_tag(s)
            ppv, flagged = row[f"ppv_top_{tag}pct"], row[f"flagged_top_{tag}pct"]
            if not flagged:
                hits: int | str | None = 0
            elif ppv is None or pd.isna(ppv):
                hits = None
            else:
                hits = count_out(float(ppv) * flagged, d)
            pub = out.loc[i]
            out.at[i, f"ppv_top_{tag}pct"] = ratio_of_published(hits, pub[f"flagged_top_{tag}pct"])
            out.at[i, f"sensitivity_top_{tag}pct"] = ratio_of_published(hits, pub["events"])
        events, people = int(row["events"]), int(row["people"])
        if (
            is_suppressed(events, d)
            or is_suppressed(people - events, d)
            or out.at[i, "events"] == SUPPRESSED
        ):
            for c in MODEL_FIGURES:
                if c in out:
                    out.at[i, c] = None
    return out


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
