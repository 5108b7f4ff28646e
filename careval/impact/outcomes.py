"""The matched study's outcome models: the panel around entry and its difference-in-differences.

Per matched set, the treated person is one unit and each of their ``k`` controls another,
weighted ``1/k`` (the matching weights: a set's controls together weigh as its treated person).
The difference-in-differences has unit and calendar-month fixed effects, common terms for the
implementation months (0 to ``effect_from_month - 1``) and the months after, and the
treated-arm contrasts of both; Poisson (or negative binomial) for counts (rate ratios), linear
for costs; standard errors two-way clustered on the matched set and the person (shared
controls). Each control keeps their own fixed effect: averaging a set's living controls into one
unit (the earlier design) let the unit's make-up change as frailer controls died
or were care-planned themselves, which biased every outcome upward (outpatient attendances, a
known null, by +2.6% in the coverage grid). The same panel gives the effect by length of
follow-up (the horizons), the binned event study, the monthly means of Figure 2 and the naive
before-after contrast.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.errors import ConfigError
from careval.impact.fastfe import estimate, one_blas_thread
from careval.impact.fe import LOG_LINK, FEFit, Model, fit_fe
from careval.impact.matching import MatchResult
from careval.impact.population import StudyPopulation
from careval.impact.settings import ImpactSettings, OutcomeSettings
from careval.impact.variance import two_way_vcov

FIT_TOL = 1e-8  # convergence of the fixed-effect fits (see fit_fe)
WEIGHT = "w"  # the panel's matching weights (matched_panel)
PANEL_KEYS = ["unit", "month", "set", "treated", "person", WEIGHT]  # what every fit needs


def matched_panel(
    study: StudyPopulation, result: MatchResult, settings: ImpactSettings, measures: list[str]
) -> pd.DataFrame:
    """Long panel around each set's entry month: one unit per treated person and one per
    (set, control).

    Columns: ``set``, ``unit``, ``person`` (the person's panel row: one person in several
    sets, or a control before their own plan and treated after it, is one cluster),
    ``treated``, ``k`` (months since the set's entry), ``month``, ``w`` (1 for the treated,
    ``1/k`` for each of a set's ``k`` controls, so that each set's controls weigh as its
    treated person: the matching weights), the measures, and the DiD terms ``impl``,
    ``post``, ``impl_treated``, ``post_treated``. A row is a month inside the data on whose
    first day the person is alive and registered at a practice (:meth:`careval.impact.panel.
    Panel.followed_at`: after leaving, their activity is not in the extract); a control's rows
    stop at their own care plan.
    """
    f = study.frame
    pn = study.panel
    tr = result.treated_rows[result.pairs.treated]  # frame row of the treated, per pair
    co = result.control_rows[result.pairs.control]
    sets, set_of_pair = np.unique(tr, return_inverse=True)
    n_sets = sets.size
    k_of_set = np.bincount(set_of_pair, minlength=n_sets)
    # every unit: the sets' treated people, then the pairs' controls
    who = np.r_[f.panel_row.to_numpy()[sets], f.panel_row.to_numpy()[co]]
    set_of = np.r_[np.arange(n_sets), set_of_pair]
    entry = f.entry_month.to_numpy()[sets][set_of]
    censor = np.r_[np.full(n_sets, np.iinfo(np.int64).max), f.censor_month.to_numpy()[co]]
    weight = np.r_[np.ones(n_sets), 1.0 / k_of_set[set_of_pair]]
    is_t = np.r_[np.ones(n_sets), np.zeros(co.size)]
    lo_k = -settings.pre_months
    hi_k = pn.first_month + pn.n_months - 1 - int(entry.min())
    ks = np.arange(lo_k, hi_k + 1)
    # (unit, k) pairs inside the data, then those alive and (controls) before their own plan
    unit = np.repeat(np.arange(who.size), ks.size)
    k = np.tile(ks, who.size)
    month = entry[unit] + k
    inside = (month >= pn.first_month) & (month < pn.first_month + pn.n_months)
    unit, k, month = unit[inside], k[inside], month[inside]
    alive = pn.followed_at(who[unit], month) & (month < censor[unit])
    unit, k, month = unit[alive], k[alive], month[alive]
    j = month - pn.first_month
    out = pd.DataFrame(
        {
            "set": set_of[unit],
            "unit": unit,
            "person": who[unit],
            "treated": is_t[unit],
            "k": k,
            "month": month,
            "w": weight[unit],
        }
    )
    for name in measures:
        out[name] = pn.values[name][who[unit], j]
    lag = settings.effect_from_month
    out["impl"] = ((out.k >= 0) & (out.k < lag)).astype(float)
    out["post"] = (out.k >= lag).astype(float)
    out["impl_treated"] = out.impl * out.treated
    out["post_treated"] = out.post * out.treated
    return out


def fit_matched(
    panel: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: tuple[str, ...] = ("unit", "month"),
) -> FEFit:
    """:func:`fit_matched_vcov`'s fit alone."""
    return fit_matched_vcov(panel, outcome, regressors, model, fe)[0]


def fit_matched_vcov(
    panel: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: tuple[str, ...] = ("unit", "month"),
) -> tuple[FEFit, list[str], np.ndarray]:
    """The fit, the terms estimated (in ``regressors``' order) and their two-way covariance.

    The estimates, with the panel's matching weights ``w`` (:func:`careval.impact.fastfe.
    estimate`, those of ``fit_fe``), then
    standard errors two-way clustered on set and person (shared controls), with intervals,
    p-values and, for Poisson, the rate ratios' intervals from them (normal). For NB2 (fitted by
    ``fit_fe``) the two-way variance uses the fit's alpha (its weights and scores); for Poisson,
    the fit's own means and residualised regressors."""
    fit, means = estimate(
        panel, outcome, regressors, model, fe, tol=FIT_TOL, cluster="set", weights=WEIGHT
    )
    coefs = fit.coefficients.set_index("term")
    terms = [r for r in regressors if r in coefs.index and np.isfinite(coefs.loc[r, "estimate"])]
    beta = np.array([coefs.loc[r, "estimate"] for r in terms])
    with one_blas_thread():
        own = means if tuple(fe) == ("unit", "month") else None  # the variance's effects
        v = two_way_vcov(panel, outcome, terms, beta, model, fit.alpha, WEIGHT, own)
    z = stats.norm.ppf(0.975)
    for i, r in enumerate(terms):
        se = float(np.sqrt(v[i, i]))
        est = float(coefs.loc[r, "estimate"])
        coefs.loc[r, "se"] = se
        coefs.loc[r, "ci_low"] = est - z * se
        coefs.loc[r, "ci_high"] = est + z * se
        coefs.loc[r, "p_value"] = float(2 * stats.norm.sf(abs(est) / se)) if se > 0 else np.nan
    if "rr_ci_low" in coefs.columns:
        coefs["rr_ci_low"] = np.exp(coefs["ci_low"])
        coefs["rr_ci_high"] = np.exp(coefs["ci_high"])
    out = dataclasses.replace(
        fit,
        coefficients=coefs.reset_index(),
        vcov="CRV1 two-way",
        cluster="set+person",
        inference="normal",
    )
    return out, terms, v


def control_series(
    study: StudyPopulation, result: MatchResult, measure: str, pre: int, post: int
) -> np.ndarray:
    """Matched controls' monthly ``measure`` aligned on their set's entry month.

    One row per distinct (control, entry month); columns are months ``-pre`` .. ``post - 1``
    since entry; NaN where the month is outside the data or the person has died or left (not
    registered: :meth:`careval.impact.panel.Panel.followed_at`). These are
    untreated histories of people like the care-planned: the design module resamples them.
    """
    f, pn = study.frame, study.panel
    rows = np.unique(result.control_rows[result.pairs.control])
    entry = f.entry_month.to_numpy()[rows]
    prow = f.panel_row.to_numpy()[rows]
    ks = np.arange(-pre, post)
    month = entry[:, None] + ks[None, :]
    inside = (month >= pn.first_month) & (month < pn.first_month + pn.n_months)
    j = np.clip(month - pn.first_month, 0, pn.n_months - 1)
    alive = pn.followed_at(np.repeat(prow, ks.size), month.ravel()).reshape(month.shape)
    alive &= month < f.censor_month.to_numpy()[rows][:, None]  # untreated months only
    v = pn.values[measure][prow[:, None], j]
    return np.where(inside & alive, v, np.nan)


def coef(fit: FEFit, term: str) -> dict[str, Any]:
    row = fit.coefficients.set_index("term").loc[term]
    out = {k: float(row[k]) for k in ("estimate", "se", "ci_low", "ci_high", "p_value")}
    if fit.model in LOG_LINK:
        out["rate_ratio"] = float(np.exp(out["estimate"]))
        out["rate_ratio_ci_low"] = float(np.exp(out["ci_low"]))
        out["rate_ratio_ci_high"] = float(np.exp(out["ci_high"]))
    out["n_obs"] = int(fit.n_obs)
    return out


def subset(panel: pd.DataFrame, mask: np.ndarray, columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of the panel where ``mask`` holds: ``columns`` (with :data:`PANEL_KEYS` and ``k``)
    or all of them."""
    if columns is not None:
        keep = list(dict.fromkeys([*PANEL_KEYS, "k", *columns]))
        return pd.DataFrame({c: panel[c].to_numpy()[mask] for c in keep})
    return panel[mask].reset_index(drop=True)


def horizons(
    panel: pd.DataFrame, outcome: str, model: Model, months: tuple[int, ...]
) -> list[dict[str, Any]]:
    """The average effect over the first ``h`` months after entry, for each ``h`` in ``months``.

    Each fit keeps the months before ``h``, with one term for the months after entry and its
    treated-arm contrast; a horizon no treated person reaches is left out.
    """
    out = []
    for h in months:
        sub = subset(panel, (panel.k < h).to_numpy(), [outcome])
        sub["after"] = (sub.k >= 0).astype(float)
        sub["after_treated"] = sub.after * sub.treated
        if not (sub.after_treated > 0).any():
            continue
        fit = fit_matched(sub, outcome, ["after", "after_treated"], model)
        row = {"horizon_months": h, "outcome": outcome, **coef(fit, "after_treated")}
        row["treated_with_full_horizon"] = int(
            panel[(panel.treated == 1) & (panel.k == h - 1)]["set"].nunique()
        )
        out.append(row)
    return out


def monthly_means(panel: pd.DataFrame, outcome: str, window: tuple[int, int]) -> pd.DataFrame:
    """Figure 2: the arms' mean ``outcome`` by month since entry within ``window``, with the
    treated people behind each month (the far months rest on the early entrants) and the
    control rows (person-months) the controls' mean is taken over."""
    win = panel[(panel.k >= window[0]) & (panel.k <= window[1])]
    by = win.assign(wy=win[WEIGHT] * win[outcome]).groupby(["k", "treated"])
    monthly = (
        (by.wy.sum() / by[WEIGHT].sum())  # the controls' weighted mean: each set's weighs 1
        .unstack("treated")
        .rename(columns={0.0: "matched_controls", 1.0: "treated"})
        .reset_index()
    )
    monthly.columns.name = None
    n_k = win[win.treated == 1].groupby("k")["set"].nunique()
    monthly["treated_people"] = n_k.reindex(monthly.k, fill_value=0).to_numpy()
    rows_k = win[win.treated == 0].groupby("k").size()  # the controls' mean is over these
    monthly["control_rows"] = rows_k.reindex(monthly.k, fill_value=0).to_numpy()
    return monthly


def event_study(
    panel: pd.DataFrame, outcome: str, model: Model, settings: ImpactSettings
) -> pd.DataFrame:
    """Treated-arm contrast by months since entry, in bins of ``width`` months.

    The bin just before entry (months ``-width`` to -1) is the reference; months before and
    after the window are pooled into its end bins. Common bin terms for both arms carry the
    shared path around entry (the pre-entry rise and regression to the mean).
    """
    (lo, hi), width = settings.event_window, settings.event_bin_months
    k = panel.k.clip(lo, hi).to_numpy()
    b = np.floor_divide(k, width)  # bin -1 holds months -width..-1: the reference
    d = panel[[outcome, *PANEL_KEYS]].copy()
    regs = []
    bins = sorted(set(b.tolist()) - {-1})
    tr = d.treated.to_numpy()
    for bb in bins:
        ind = (b == bb).astype(float)
        d[f"b_{bb + 1000}"] = ind
        d[f"bt_{bb + 1000}"] = ind * tr
        regs += [f"b_{bb + 1000}", f"bt_{bb + 1000}"]
    fit = fit_matched(d, outcome, regs, model)
    coefs = fit.coefficients.set_index("term")
    rows = []
    for bb in sorted([*bins, -1]):
        first, last = max(bb * width, lo), min(bb * width + width - 1, hi)
        if bb == -1:
            est = lo_ci = hi_ci = 0.0
        else:
            r = coefs.loc[f"bt_{bb + 1000}"]
            est, lo_ci, hi_ci = float(r.estimate), float(r.ci_low), float(r.ci_high)
        rows.append(
            {
                "from_month": first,
                "to_month": last,
                "estimate": est,
                "ci_low": lo_ci,
                "ci_high": hi_ci,
            }
        )
    out = pd.DataFrame(rows)
    if model in LOG_LINK:
        for c in ("estimate", "ci_low", "ci_high"):
            out[f"rate_ratio_{c}" if c != "estimate" else "rate_ratio"] = np.exp(out[c])
    return out


def naive(panel: pd.DataFrame, outcome: str, model: Model, st: ImpactSettings) -> dict[str, Any]:
    """Treated only: the 12 months before entry against months lag..lag+11 after it."""
    lag = st.effect_from_month
    t = panel[
        (panel.treated == 1)
        & (((panel.k >= -12) & (panel.k < 0)) | ((panel.k >= lag) & (panel.k < lag + 12)))
    ].copy()
    t["after"] = (t.k >= 0).astype(float)
    fit = fit_fe(
        t,
        outcome=outcome,
        regressors=["after"],
        fe=["unit"],
        model=model,
        cluster="set",
        tol=FIT_TOL,
    )
    out = coef(fit, "after")
    out["mean_before"] = float(t[outcome][t.after == 0].mean())
    out["mean_after"] = float(t[outcome][t.after == 1].mean())
    out["description"] = (
        f"treated only: months {lag} to {lag + 11} after entry against the 12 months before"
    )
    return out


def fit_outcome(panel: pd.DataFrame, o: OutcomeSettings) -> dict[str, Any]:
    """One outcome's difference-in-differences: the effect from ``effect_from_month`` on, that
    of the implementation months, and the treated people's mean before entry."""
    if not panel[o.name].any():
        raise ConfigError("no events among the matched people in the study's months")
    fit = fit_matched(panel, o.name, ["impl", "post", "impl_treated", "post_treated"], o.model)
    if not {"post_treated", "impl_treated"} <= set(fit.coefficients.term):
        raise ConfigError(
            "too few events among the matched people to estimate the effect (the fit dropped "
            "the treated arm's term)"
        )
    out = coef(fit, "post_treated")
    out["implementation_period"] = coef(fit, "impl_treated")
    out["model"] = o.model
    out["mean_treated_before"] = float(panel[o.name][(panel.treated == 1) & (panel.k < 0)].mean())
    return out
