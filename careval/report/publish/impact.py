"""Publication of the matched study: attrition with its margin, Figure 2, the horizons."""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.impact.balance import SMD_THRESHOLD
from careval.impact.study import ImpactResult
from careval.report.publish.derived import count_out, derived, ratio_of_published
from careval.report.publish.rules import (
    SUPPRESSED,
    is_small,
    protect_mapping,
    protect_value,
)
from careval.report.publish.survival import survival_published

IMPACT_MARGIN = (
    ("treated_matched", "unmatched_outside_caliper", "unmatched_no_control_in_stratum"),
    "treated_alive_and_registered_at_entry",
)


def publish_impact(result: ImpactResult, d: DisclosureSettings) -> ImpactResult:
    """A copy with the attrition (with its margin) and the horizons' counts as published under
    ``d``, and no month of Figure 2 from fewer than 8 treated people or 1-7 of their events
    (a treated mean is the rounded events over the rounded people); the balance table's means
    of binary and count covariates by the derived-figure rule (:func:`balance_published`);
    ``result`` is not changed."""
    r = copy.deepcopy(result)
    r.attrition = protect_mapping(r.attrition, d, [IMPACT_MARGIN])
    if getattr(r, "balance", None) is not None:
        r.balance = balance_published(r.balance, result.attrition, r.attrition, d)
    if getattr(r, "outcomes", None):
        _means_before(r, result, d)
    if getattr(r, "naive", None):
        _naive_means(r, result, d)
    m = r.monthly_means
    small = m.treated_people.map(lambda v: is_small(v, d)).astype(bool)
    m.loc[small, ["treated", "matched_controls"]] = float("nan")
    # The derived-figure rule: the treated arm's mean is its (rounded) events of the month over
    # its (rounded) people, withheld (NaN) when the events are 1-7.
    treated = [
        derived(v * n, n, d) if pd.notna(v) else None
        for v, n in zip(m.treated, m.treated_people, strict=True)
    ]
    m["treated"] = [float("nan") if v is None else v for v in treated]
    if "control_rows" in m:  # the same for the controls: events over control rows, published
        controls = [
            derived(v * n, n, d) if pd.notna(v) else None
            for v, n in zip(m.matched_controls, m.control_rows, strict=True)
        ]
        m["matched_controls"] = [float("nan") if v is None else v for v in controls]
        m["control_rows"] = [protect_value(int(v), d) for v in m.control_rows]
    m.loc[m.treated.isna(), "matched_controls"] = float("nan")
    m["treated_people"] = [protect_value(int(v), d) for v in m.treated_people]
    for h in r.horizons:
        n = h.get("treated_with_full_horizon")
        if is_small(n, d):
            for k, v in h.items():
                if isinstance(v, float):
                    h[k] = None
        h["treated_with_full_horizon"] = protect_value(n, d)
        if "n_obs" in h:
            h["n_obs"] = protect_value(h["n_obs"], d)
    _subgroups(r, d)
    if isinstance(getattr(r, "trajectories", None), pd.DataFrame) and len(r.trajectories):
        sums = {o.name for o in result.settings.outcomes if o.measure == "sum"}
        r.trajectories = trajectories_published(r.trajectories, sums, d)
    if getattr(r, "mortality", None):
        r.mortality = mortality_published(r.mortality, d)
    if getattr(r, "survival", None):
        r.survival = survival_published(r.survival, result.attrition.get("treated_matched"), d)
    r.sensitivity = [sensitivity_published(row, d) for row in getattr(r, "sensitivity", [])]
    return r


def sensitivity_published(row: dict[str, Any], d: DisclosureSettings) -> dict[str, Any]:
    """One alternative design's row: its people are counts (rule 1); its estimate withheld
    when fewer than the smallest published treated people were matched (rule 3)."""
    n = row.get("treated_matched")
    out = _withhold(row, keep=("caliper",)) if is_small(n, d) else dict(row)
    for key in ("treated_matched", "controls_matched", "n_obs"):
        if isinstance(row.get(key), int):
            out[key] = protect_value(row[key], d)
    return out


def _withhold(row: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """``row`` with every float (estimate, interval, rate) withheld (None), but ``keep``."""
    return {k: None if isinstance(v, float) and k not in keep else v for k, v in row.items()}


def _subgroups(r: ImpactResult, d: DisclosureSettings) -> None:
    """Subgroups of fewer than the smallest published people: estimates withheld (rule 3);
    their people counts as published (rule 1)."""
    rows = []
    for row in getattr(r, "subgroups", None) or []:
        n = row.get("n_treated")
        out = _withhold(row) if is_small(n, d) else dict(row)
        for key in ("n_treated", "n_obs"):
            if isinstance(out.get(key), int):
                out[key] = protect_value(out[key], d)
        rows.append(out)
    r.subgroups = rows


def trajectories_published(t: pd.DataFrame, sums: set[str], d: DisclosureSettings) -> pd.DataFrame:
    """Figure 2's table under disclosure control.

    ``people`` is a count (rule 1). A mean (and its interval) from fewer than the smallest
    published people is withheld (rule 3). The treated arm's mean of a count outcome is a
    count of events over people, so it follows the derived-figure rule as the primary
    outcome's Figure 2 does: the (rounded) events over the (rounded) people, withheld when the
    events are 1-7, its interval moved with it. Cost outcomes (``sums``) and the controls'
    weighted means (no whole number of events) keep their value.
    """
    out = t.copy().astype({"people": object})
    small = np.array([is_small(int(n), d) for n in t.people], dtype=bool)
    values = ["mean", "ci_low", "ci_high"]
    out.loc[small, values] = float("nan")
    counts = ~small & (t.group == "treated").to_numpy() & ~t.outcome.isin(sums).to_numpy()
    for i in np.flatnonzero(counts):
        mean, n = float(t["mean"].iat[i]), int(t.people.iat[i])
        shown = derived(mean * n, n, d)
        if shown is None:
            out.iloc[i, [out.columns.get_loc(c) for c in values]] = float("nan")
        else:
            shift = shown - mean
            for c in values:
                out.iat[i, out.columns.get_loc(c)] = float(t[c].iat[i]) + shift
    out["people"] = [protect_value(int(n), d) for n in t.people]
    return out


def mortality_published(m: dict[str, Any], d: DisclosureSettings) -> dict[str, Any]:
    """Deaths after entry under disclosure control: people and deaths are counts (rule 1);
    everything withheld when the matched treated are fewer than the smallest published; an
    arm's death rate withheld when its deaths are suppressed (it would give them back with
    the person-years)."""
    out = _withhold(m) if is_small(m.get("n_treated"), d) else dict(m)
    for arm in ("treated", "controls"):
        deaths = m.get(f"deaths_{arm}")
        if isinstance(deaths, int):
            out[f"deaths_{arm}"] = protect_value(deaths, d)
            if deaths > 0 and is_small(deaths, d):
                out[f"rate_{arm}"] = None
    # The treated arm's rate by the derived-figure rule: published deaths over person-years.
    years, shown = m.get("person_years_treated"), out.get("deaths_treated")
    if out.get("rate_treated") is not None and isinstance(shown, int) and years:
        out["rate_treated"] = 1000 * shown / float(years)
    for key in ("n_treated", "n_controls"):
        if isinstance(m.get(key), int):
            out[key] = protect_value(m[key], d)
    return out


def impact_withheld(r: ImpactResult, d: DisclosureSettings) -> bool:
    """Whether the matched study rests on fewer than 8 people (then it is not published)."""
    n = r.attrition.get("treated_matched")
    return n == SUPPRESSED or is_small(n, d)


# Covariates of the balance table that count people's events (admissions, attendances, bed
# days, contacts): their means are a count over the people, like a binary covariate's.
COUNT_COVARIATE = re.compile(r"(admissions|attendances|bed_days|contacts)")
# Mean column -> the attrition count of the people it is a mean over: the treated at entry,
# the candidate control rows (before matching), the matched treated (after matching; the
# controls' matching weights add up to one per matched treated person).
BALANCE_BASES = {
    "mean_treated": "treated_alive_and_registered_at_entry",
    "mean_control_before": "candidate_control_rows",
    "mean_treated_after": "treated_matched",
    "mean_control_after": "treated_matched",
}


def balance_published(
    balance: pd.DataFrame,
    attrition: dict[str, Any],
    published: dict[str, Any],
    d: DisclosureSettings,
) -> pd.DataFrame:
    """The balance table under the derived-figure rule.

    A binary covariate's mean is a share of people, and a count covariate's mean a count of
    events over people: each is published as the (rounded) number over the people it is a
    mean over as the ``published`` attrition shows them (:data:`BALANCE_BASES`; ``attrition``
    holds the true counts), withheld when either is suppressed. A binary
    covariate's SMDs are recomputed from the published means (the pooled SD
    ``sqrt(p (1 - p))`` of the published treated share), and so is the imbalance flag; the
    other covariates (age, deprivation, risk, costs, months) are no counts and are unchanged.
    """
    if not len(balance):
        return balance
    out = balance.copy().astype(
        {c: object for c in [*BALANCE_BASES, "smd_before", "smd_after"] if c in balance}
    )
    for i, row in balance.iterrows():
        binary = row.get("type") == "binary"
        if not (binary or COUNT_COVARIATE.search(str(row["covariate"]))):
            continue
        for col, base_key in BALANCE_BASES.items():
            base = attrition.get(base_key)
            v = row.get(col)
            if col not in balance or base is None or v is None or pd.isna(v):
                continue
            out.at[i, col] = ratio_of_published(
                count_out(float(v) * float(base), d), published.get(base_key)
            )
        if binary:
            p = out.at[i, "mean_treated"]
            sd = math.sqrt(p * (1 - p)) if p is not None else None

            def smd(a: Any, b: Any, sd: float | None = sd) -> float | None:
                if a is None or b is None or sd is None:
                    return None
                return (a - b) / sd if sd > 0 else 0.0

            out.at[i, "smd_before"] = smd(p, out.at[i, "mean_control_before"])
            after = smd(out.at[i, "mean_treated_after"], out.at[i, "mean_control_after"])
            out.at[i, "smd_after"] = after
            if "imbalanced_after" in out:
                out.at[i, "imbalanced_after"] = bool(
                    after is not None and abs(after) > SMD_THRESHOLD
                )
    for c in ("smd_before", "smd_after"):
        if c in out:
            out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def _means_before(r: ImpactResult, true: ImpactResult, d: DisclosureSettings) -> None:
    """The treated people's mean of each count outcome before entry, by the derived-figure
    rule: their events over their person-months before entry (each matched treated person has
    the study's ``pre_months``), both as published; NaN (withheld) when the events are 1-7.

    The events are the mean times the matched treated's months; when that is no whole number
    (the months are not all there), the mean is withheld, as its base is then not known. Cost
    outcomes (sums of money) are no counts and are left.
    """
    measures = {o.name: o.measure for o in true.settings.outcomes}
    matched = true.attrition.get("treated_matched")
    months = int(true.settings.pre_months)
    shown = r.attrition.get("treated_matched")
    if not isinstance(matched, int):
        return
    for name, o in r.outcomes.items():
        mean = o.get("mean_treated_before")
        if measures.get(name) == "sum" or mean is None or pd.isna(mean):
            continue
        events = float(mean) * matched * months
        whole = abs(events - round(events)) < 1e-6 * max(1.0, events)
        value = None
        if whole and isinstance(shown, int):
            value = ratio_of_published(count_out(events, d), shown * months)
        o["mean_treated_before"] = float("nan") if value is None else value


NAIVE_MONTHS = 12  # the naive comparison: the 12 months before entry against 12 after the lag


def _naive_means(r: ImpactResult, true: ImpactResult, d: DisclosureSettings) -> None:
    """The naive comparison's means by the derived-figure rule.

    ``mean_before`` is the treated people's events over their 12 months before entry (matched
    treated x 12, both as published; withheld when that is no whole number of events or they
    are 1-7); ``mean_after`` is withheld, its person-months (those followed up through the
    window) being neither published nor known here.
    """
    matched, shown = true.attrition.get("treated_matched"), r.attrition.get("treated_matched")
    mean = r.naive.get("mean_before")
    value = None
    if isinstance(matched, int) and isinstance(shown, int) and mean is not None:
        events = float(mean) * matched * NAIVE_MONTHS
        if abs(events - round(events)) < 1e-6 * max(1.0, events):
            value = ratio_of_published(count_out(events, d), shown * NAIVE_MONTHS)
    if "mean_before" in r.naive:
        r.naive["mean_before"] = value
    if "mean_after" in r.naive:
        r.naive["mean_after"] = None
