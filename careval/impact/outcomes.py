"""The matched study's outcome models: the panel around entry and its difference-in-differences.

Per matched set and month, the treated person is one unit and the mean of their living controls
another. The difference-in-differences has unit and calendar-month fixed effects, common terms
for the implementation months (0 to ``effect_from_month - 1``) and the months after, and the
treated-arm contrasts of both; Poisson (or negative binomial) for counts (rate ratios), linear
for costs; standard errors two-way clustered on the matched set and the person (shared
controls). Averaging a set's controls into one unit leaves the estimating equations of the
treatment terms unchanged (every control in a set shares the same regressors) and makes the fit
several times faster than one unit per control. The same panel gives the effect by length of
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
from careval.impact.fastfe import fit_points, one_blas_thread
from careval.impact.fe import LOG_LINK, FEFit, Model, fit_fe
from careval.impact.matching import MatchResult
from careval.impact.population import StudyPopulation
from careval.impact.settings import ImpactSettings, OutcomeSettings
from careval.impact.variance import two_way_vcov

FIT_TOL = 1e-8  # convergence of the fixed-effect fits (see fit_fe)


def matched_panel(
    study: StudyPopulation, result: MatchResult, settings: ImpactSettings, measures: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long panel around each set's entry month, and the people behind its control units.

    Per matched set and month: the treated person as one unit and the mean of the set's living
    controls as another (``person`` is the treated person's panel row, -1 on control units).
    The second frame has one row per living control behind each control-unit row (``row``,
    ``person``, ``n_alive`` and the measures), for standard errors that see controls shared
    between sets (:mod:`careval.impact.variance`).
    """
    f = study.frame
    pn = study.panel
    tr = result.treated_rows[result.pairs.treated]  # frame row of the treated, per pair
    co = result.control_rows[result.pairs.control]
    sets, set_of_pair = np.unique(tr, return_inverse=True)
    entry = f.entry_month.to_numpy()[sets]
    t_row = f.panel_row.to_numpy()[sets]
    c_row = f.panel_row.to_numpy()[co]
    c_censor = f.censor_month.to_numpy()[co]  # a control's own plan month (or NEVER_MONTH)
    lo_k = -settings.pre_months
    hi_k = pn.first_month + pn.n_months - 1 - int(entry.min())
    n_sets = sets.size
    parts, piece_parts = [], []
    offset = 0
    for k in range(lo_k, hi_k + 1):
        month = entry + k
        inside = (month >= pn.first_month) & (month < pn.first_month + pn.n_months)
        if not inside.any():
            continue
        j = np.clip(month - pn.first_month, 0, pn.n_months - 1)
        t_alive = inside & pn.alive_at(t_row, month)
        c_month = month[set_of_pair]
        c_alive = inside[set_of_pair] & pn.alive_at(c_row, c_month) & (c_month < c_censor)
        n_alive = np.bincount(set_of_pair, weights=c_alive, minlength=n_sets)
        both = t_alive & (n_alive > 0)
        if not both.any():
            continue
        idx = np.flatnonzero(both)
        jc = j[set_of_pair]
        block: dict[str, np.ndarray] = {
            "set": np.r_[idx, idx],
            "unit": np.r_[2 * idx + 1, 2 * idx],
            "person": np.r_[t_row[idx], np.full(idx.size, -1)],
            "treated": np.r_[np.ones(idx.size), np.zeros(idx.size)],
            "k": np.full(2 * idx.size, k),
            "month": np.r_[month[idx], month[idx]],
        }
        pidx = np.flatnonzero(both[set_of_pair] & c_alive)
        ps = set_of_pair[pidx]
        piece: dict[str, np.ndarray] = {
            "row": offset + idx.size + np.searchsorted(idx, ps),
            "person": c_row[pidx],
            "n_alive": n_alive[ps],
        }
        for name in measures:
            v = pn.values[name]
            cv = np.bincount(
                set_of_pair, weights=np.where(c_alive, v[c_row, jc], 0.0), minlength=n_sets
            ) / np.maximum(n_alive, 1)
            block[name] = np.r_[v[t_row, j][idx], cv[idx]]
            piece[name] = v[c_row[pidx], jc[pidx]]
        parts.append(pd.DataFrame(block))
        piece_parts.append(pd.DataFrame(piece))
        offset += 2 * idx.size
    out = pd.concat(parts, ignore_index=True)
    lag = settings.effect_from_month
    out["impl"] = ((out.k >= 0) & (out.k < lag)).astype(float)
    out["post"] = (out.k >= lag).astype(float)
    out["impl_treated"] = out.impl * out.treated
    out["post_treated"] = out.post * out.treated
    return out, pd.concat(piece_parts, ignore_index=True)


def fit_matched(
    panel: pd.DataFrame,
    pieces: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: tuple[str, ...] = ("unit", "month"),
) -> FEFit:
    """:func:`fit_matched_vcov`'s fit alone."""
    return fit_matched_vcov(panel, pieces, outcome, regressors, model, fe)[0]


def fit_matched_vcov(
    panel: pd.DataFrame,
    pieces: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    model: Model,
    fe: tuple[str, ...] = ("unit", "month"),
) -> tuple[FEFit, list[str], np.ndarray]:
    """The fit, the terms estimated (in ``regressors``' order) and their two-way covariance.

    The estimates (:func:`careval.impact.fastfe.fit_points`, those of ``fit_fe``), then
    standard errors two-way clustered on set and person (shared controls), with intervals,
    p-values and, for Poisson, the rate ratios' intervals from them (normal). For NB2 (fitted by
    ``fit_fe``) the two-way variance uses the fit's alpha (its weights and scores)."""
    fit = fit_points(panel, outcome, regressors, model, fe, tol=FIT_TOL, cluster="set")
    coefs = fit.coefficients.set_index("term")
    terms = [r for r in regressors if r in coefs.index and np.isfinite(coefs.loc[r, "estimate"])]
    beta = np.array([coefs.loc[r, "estimate"] for r in terms])
    with one_blas_thread():
        v = two_way_vcov(panel, pieces, outcome, terms, beta, model, fit.alpha)
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
    since entry; NaN where the month is outside the data or the person has died. These are
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
    alive = pn.alive_at(np.repeat(prow, ks.size), month.ravel()).reshape(month.shape)
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


def subset(
    panel: pd.DataFrame, pieces: pd.DataFrame, mask: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the panel where ``mask`` holds, with the pieces re-pointed at them."""
    new_pos = np.cumsum(mask) - 1
    keep = mask[pieces["row"].to_numpy()]
    sub_pieces = pieces[keep].copy()
    sub_pieces["row"] = new_pos[sub_pieces["row"].to_numpy()]
    return panel[mask].reset_index(drop=True), sub_pieces.reset_index(drop=True)


def horizons(
    panel: pd.DataFrame, pieces: pd.DataFrame, outcome: str, model: Model, months: tuple[int, ...]
) -> list[dict[str, Any]]:
    """The average effect over the first ``h`` months after entry, for each ``h`` in ``months``.

    Each fit keeps the months before ``h``, with one term for the months after entry and its
    treated-arm contrast; a horizon no treated person reaches is left out.
    """
    out = []
    for h in months:
        sub, sub_pieces = subset(panel, pieces, (panel.k < h).to_numpy())
        sub["after"] = (sub.k >= 0).astype(float)
        sub["after_treated"] = sub.after * sub.treated
        if not (sub.after_treated > 0).any():
            continue
        fit = fit_matched(sub, sub_pieces, outcome, ["after", "after_treated"], model)
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
    monthly = (
        win.groupby(["k", "treated"])[outcome]
        .mean()
        .unstack("treated")
        .rename(columns={0.0: "matched_controls", 1.0: "treated"})
        .reset_index()
    )
    n_k = win[win.treated == 1].groupby("k")["set"].nunique()
    monthly["treated_people"] = n_k.reindex(monthly.k, fill_value=0).to_numpy()
    rows_k = win[win.treated == 0].groupby("k").size()  # the controls' mean is over these
    monthly["control_rows"] = rows_k.reindex(monthly.k, fill_value=0).to_numpy()
    return monthly


def event_study(
    panel: pd.DataFrame, pieces: pd.DataFrame, outcome: str, model: Model, settings: ImpactSettings
) -> pd.DataFrame:
    """Treated-arm contrast by months since entry, in bins of ``width`` months.

    The bin just before entry (months ``-width`` to -1) is the reference; months before and
    after the window are pooled into its end bins. Common bin terms for both arms carry the
    shared path around entry (the pre-entry rise and regression to the mean).
    """
    (lo, hi), width = settings.event_window, settings.event_bin_months
    k = panel.k.clip(lo, hi).to_numpy()
    b = np.floor_divide(k, width)  # bin -1 holds months -width..-1: the reference
    d = panel[[outcome, "unit", "month", "set", "treated", "person"]].copy()
    regs = []
    bins = sorted(set(b.tolist()) - {-1})
    tr = d.treated.to_numpy()
    for bb in bins:
        ind = (b == bb).astype(float)
        d[f"b_{bb + 1000}"] = ind
        d[f"bt_{bb + 1000}"] = ind * tr
        regs += [f"b_{bb + 1000}", f"bt_{bb + 1000}"]
    fit = fit_matched(d, pieces, outcome, regs, model)
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


def fit_outcome(panel: pd.DataFrame, pieces: pd.DataFrame, o: OutcomeSettings) -> dict[str, Any]:
    """One outcome's difference-in-differences: the effect from ``effect_from_month`` on, that
    of the implementation months, and the treated people's mean before entry."""
    if not panel[o.name].any():
        raise ConfigError("no events among the matched people in the study's months")
    fit = fit_matched(
        panel, pieces, o.name, ["impl", "post", "impl_treated", "post_treated"], o.model
    )
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
