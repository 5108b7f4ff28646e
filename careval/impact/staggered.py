"""Estimators of a staggered-adoption DiD that are robust to heterogeneous effects.

Used by :func:`careval.impact.did.did`; the panel it passes has the columns ``unit``,
``period``, ``y``, ``D`` (1 at and after the first treated period), ``cohort`` (the first
treated period, -1 for never-treated units), ``cluster``, optionally ``w``, and one indicator
column ``k=...`` per event-study term.

- OLS: Gardner's (2021) two-stage DiD, ``pyfixest.did2s`` (a port of Butts's R ``did2s``):
  unit and period effects fitted on the untreated rows, then the adjusted outcome regressed on
  ``D`` (or on the event-time indicators). Its standard errors are the cluster-robust GMM
  sandwich of the two stages (Gardner 2021, Butts and Gardner 2022) with no small-sample factor;
  p-values and intervals use pyfixest's t distribution with ``N - k`` degrees of freedom.
  did2s's first stage runs at pyfixest's default fixed-effect tolerance (1e-6; not an option of
  ``pyfixest.did2s``), so its estimates move in about the ninth digit with the row order.
- Poisson (and the other non-linear models of :data:`careval.impact.fe.MODELS`): Wooldridge's
  (2023) extended TWFE: one indicator per treated (cohort, period) cell in the fixed-effects fit
  of :func:`careval.impact.fe.fit_fe`, the cell effects averaged with weights proportional to
  the cell's treated row counts. The average is a coefficient of a reparametrised fit of the
  same model (the same column space), so its CRV1 standard error is exactly the delta-method
  standard error of the weighted average under the fit's covariance matrix. Poisson's pre-trend
  test adds cohort-by-pre-period leads and tests them jointly (``pyfixest.fepois`` directly:
  the engine's fits carry no covariance matrix).
- The de Chaisemartin and D'Haultfoeuille (2020) weights that TWFE puts on the treated cells,
  and Goodman-Bacon's (2021) weight on its later- against earlier-treated comparisons.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.errors import ConfigError
from careval.impact.bacon import bacon_weights
from careval.impact.fe import _FIXEF_TOL, MODELS, _pyfixest, fit_fe

ESTIMATORS: tuple[str, ...] = ("auto", "did2s", "etwfe", "twfe")


def choose_estimator(estimator: str, model: str, n_cohorts: int) -> str:
    """The estimator to run: ``auto`` is TWFE with one adoption cohort, else the robust one.

    Raises
    ------
    ConfigError
        For an unknown estimator, or ``did2s`` with a model other than OLS.
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    if estimator == "did2s" and model != "ols":
        others = ", ".join(m for m in MODELS if m != "ols")
        raise ConfigError(
            f"estimator='did2s' needs model='ols'; got model={model!r}. Allowed: did2s with ols; "
            f"etwfe (Wooldridge's extended TWFE) or twfe with any of {', '.join(MODELS)}"
            f"{f' ({others} with staggered adoption: etwfe)' if others else ''}"
        )
    if estimator != "auto":
        return estimator
    if n_cohorts < 2:
        return "twfe"
    return "did2s" if model == "ols" else "etwfe"


def identified(panel: pd.DataFrame) -> np.ndarray:
    """Rows whose unit and period both have an untreated row (``D == 0``): the rows from which
    the robust estimators can estimate the unit and period effects."""
    untreated = pd.Series(panel["D"].to_numpy() == 0)
    by_unit = untreated.groupby(panel["unit"].to_numpy()).transform("any").to_numpy()
    by_period = untreated.groupby(panel["period"].to_numpy()).transform("any").to_numpy()
    return np.asarray(by_unit & by_period, dtype=bool)


def _es_name(k: int) -> str:
    return f"es_m{-k}" if k < 0 else f"es_{k}"


def _quiet_did2s(panel: pd.DataFrame, second: str, weights: bool) -> Any:
    pf = _pyfixest()  # the engine's import: pyfixest must not configure the root logger
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return pf.did2s(
            panel,
            yname="y",
            first_stage="~ 0 | unit + period",
            second_stage=second,
            treatment="D",
            cluster="cluster",
            weights="w" if weights else None,
        )


def _row(est: float, se: float, lo: float, hi: float, p: float) -> dict[str, float]:
    return {"estimate": est, "se": se, "ci_low": lo, "ci_high": hi, "p_value": p}


def did2s_fit(
    panel: pd.DataFrame, es_terms: list[int], weights: bool, att: bool = True
) -> tuple[dict[str, float] | None, dict[int, dict[str, float]], dict[str, Any] | None]:
    """Gardner's two-stage ATT, its event study and the joint pre-trend test.

    Returns
    -------
    att : dict or None
        (None unless ``att``) ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value`` of ``D``.
    event : dict of int to dict
        The same for each event-study term ``k`` (the reference ``k = -1`` not among them).
    pretrend : dict or None
        :func:`wald` of the pre-period terms (None without any).
    """
    data = panel[["unit", "period", "y", "cluster", *(["w"] if weights else [])]].copy()
    data["D"] = panel["D"].astype(bool)
    att_row = _tidy(_quiet_did2s(data, "~ D", weights))[0] if att else None
    es_terms = [k for k in es_terms if panel[f"k={k}"].to_numpy().any()]  # in this sample
    for k in es_terms:
        data[_es_name(k)] = panel[f"k={k}"].to_numpy(float)
    es_fit = _quiet_did2s(data, "~ " + " + ".join(_es_name(k) for k in es_terms), weights)
    rows = _tidy(es_fit)
    names = [str(c) for c in es_fit._coefnames]
    event = {k: rows[names.index(_es_name(k))] for k in es_terms if _es_name(k) in names}
    pre = [names.index(_es_name(k)) for k in es_terms if k < -1 and _es_name(k) in names]
    beta = np.asarray(es_fit._beta_hat, float)
    vcov = np.asarray(es_fit._vcov, float)
    pretrend = wald(beta[pre], vcov[np.ix_(pre, pre)], [k for k in es_terms if k < -1])
    return att_row, event, pretrend


def _tidy(fit: Any) -> list[dict[str, float]]:
    t = fit.tidy()
    return [
        _row(*(float(r[c]) for c in ("Estimate", "Std. Error", "2.5%", "97.5%", "Pr(>|t|)")))
        for _, r in t.iterrows()
    ]


def wald(beta: np.ndarray, vcov: np.ndarray, ks: list[int]) -> dict[str, Any] | None:
    """Joint Wald test that the coefficients are 0: ``statistic`` (chi-square), ``df``,
    ``p_value`` and the ``terms`` (relative periods) tested; None without any."""
    if beta.size == 0:
        return None
    stat = float(beta @ np.linalg.solve(vcov, beta))
    return {
        "statistic": stat,
        "df": int(beta.size),
        "p_value": float(stats.chi2.sf(stat, beta.size)),
        "terms": [int(k) for k in ks],
        "test": "joint Wald test that every pre-period event-study coefficient is 0",
    }


def etwfe_fit(
    panel: pd.DataFrame, model: str, weights: bool, binned: np.ndarray
) -> tuple[Any, dict[str, float], dict[int, dict[str, float]], dict[str, Any]]:
    """Wooldridge's extended TWFE: the ATT and the post-period event study.

    The ATT averages the (cohort, period) cell effects with weights proportional to each
    cell's treated rows; event time ``k >= 0`` averages the cells at ``k`` (binned like the
    event window) the same way. Returns the ATT fit, the ATT, the event-time rows and a
    description of the cells.
    """
    treated = panel["D"].to_numpy() == 1
    cells = pd.DataFrame(
        {"g": panel["cohort"].to_numpy()[treated], "t": panel["period"].to_numpy()[treated]}
    )
    cells["k"] = binned[treated].astype(int)
    table = cells.value_counts(["g", "t"]).rename("n").reset_index()
    table = table.merge(cells.drop_duplicates(["g", "t"]), on=["g", "t"])
    table = table.sort_values(["g", "t"], ignore_index=True)
    key = pd.MultiIndex.from_arrays([panel["cohort"], panel["period"]])
    cell_of = pd.Index(pd.MultiIndex.from_frame(table[["g", "t"]])).get_indexer(key)
    cell_of[~treated] = -1
    x = np.zeros((len(panel), len(table)))
    x[cell_of >= 0, cell_of[cell_of >= 0]] = 1.0
    common = {
        "outcome": "y",
        "fe": ["unit", "period"],
        "model": model,
        "cluster": "cluster",
        "weights": "w" if weights else None,
    }
    groups = {"att": np.arange(len(table))}
    fit, att_rows = _averages(panel, x, table["n"].to_numpy(float), groups, common)
    by_k = {int(k): np.flatnonzero(table["k"].to_numpy() == k) for k in table["k"].unique()}
    _, k_rows = _averages(panel, x, table["n"].to_numpy(float), by_k, common)
    info = {
        "cells": int(len(table)),
        "weights": "treated rows per (cohort, period) cell",
        "cohorts": int(table["g"].nunique()),
    }
    return fit, att_rows["att"], {int(k): v for k, v in k_rows.items()}, info


def poisson_pretrend(
    panel: pd.DataFrame, binned: np.ndarray, weights: bool
) -> dict[str, Any] | None:
    """Wooldridge's (2023) pre-trend test for the Poisson extended TWFE.

    Cohort-by-relative-period lead indicators (``k <= -2``, binned like the event window; the
    reference ``k = -1``) are added to the extended TWFE (cohort-by-period cells after
    adoption) and tested jointly, with the CRV1 covariance of ``pyfixest.fepois`` at the
    engine's tolerance (:mod:`careval.impact.fe` exposes no covariance matrix). None without
    leads.
    """
    d = panel["D"].to_numpy() == 1
    g = panel["cohort"].to_numpy()
    t = panel["period"].to_numpy()
    lead = (g >= 0) & ~d & (binned <= -2)
    data = panel[["unit", "period", "y", "cluster", *(["w"] if weights else [])]].copy()
    cols: dict[str, np.ndarray] = {}
    for gi, ti in pd.DataFrame({"g": g[d], "t": t[d]}).drop_duplicates().itertuples(index=False):
        cols[f"c{len(cols)}"] = (d & (g == gi) & (t == ti)).astype(float)
    leads: dict[str, int] = {}
    pairs = pd.DataFrame({"g": g[lead], "k": binned[lead]}).drop_duplicates()
    for gi, ki in pairs.itertuples(index=False):
        leads[f"l{len(leads)}"] = int(ki)
        cols[f"l{len(leads) - 1}"] = (lead & (g == gi) & (binned == ki)).astype(float)
    if not leads:
        return None
    data = pd.concat([data, pd.DataFrame(cols)], axis=1)
    pf = _pyfixest()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = pf.fepois(
            "y ~ " + " + ".join(cols) + " | unit + period",
            data=data,
            vcov={"CRV1": "cluster"},
            weights="w" if weights else None,
            demeaner=pf.MapDemeaner(fixef_tol=_FIXEF_TOL),
            iwls_tol=1e-8,
        )
    names = [str(c) for c in fit._coefnames]
    idx = [names.index(c) for c in leads if c in names]
    beta, vcov = np.asarray(fit._beta_hat, float), np.asarray(fit._vcov, float)
    out = wald(beta[idx], vcov[np.ix_(idx, idx)], sorted({leads[names[i]] for i in idx}))
    if out is not None:
        out["test"] = (
            "joint Wald test that every cohort-by-pre-period lead is 0 in the extended TWFE"
        )
    return out


def _averages(
    panel: pd.DataFrame,
    x: np.ndarray,
    n: np.ndarray,
    groups: dict[Any, np.ndarray],
    common: dict[str, Any],
) -> tuple[Any, dict[Any, dict[str, float]]]:
    """Fit once with the cell indicators reparametrised so that, for each disjoint group of
    cells, one coefficient is the n-weighted average of the group's cell effects.

    With weights ``a_j`` (summing to 1 in a group) and reference cell ``r``, the columns
    ``x_r / a_r`` and ``x_j - (a_j / a_r) x_r`` span the same space as the ``x_j``, and the
    coefficient of ``x_r / a_r`` is ``sum_j a_j b_j``.
    """
    data = panel[[c for c in ("unit", "period", "y", "cluster", "w") if c in panel]].copy()
    names: dict[Any, str] = {}
    cols: list[str] = []
    for label, idx in groups.items():  # the groups partition the cells
        a = n[idx] / n[idx].sum()
        ref = int(np.argmax(a))
        names[label] = f"avg:{label}"
        data[names[label]] = x[:, idx[ref]] / a[ref]
        cols.append(names[label])
        for i, j in enumerate(idx):
            if i != ref:
                data[f"cell:{j}"] = x[:, j] - (a[i] / a[ref]) * x[:, idx[ref]]
                cols.append(f"cell:{j}")
    fit = fit_fe(data, regressors=cols, **common)
    if fit.collinear:  # an average over a cell whose effect is not identified means nothing
        raise ConfigError(
            f"the extended TWFE cannot estimate {len(fit.collinear)} of its {len(cols)} "
            "treated cohort-period cell effects (collinear with the fixed effects; for Poisson "
            "often a cell whose outcomes are all zero); use estimator='twfe' or coarser periods"
        )
    return fit, {g: fit.term(names[g]) for g in groups}


def twfe_weights(panel: pd.DataFrame, weights: bool) -> dict[str, Any]:
    """de Chaisemartin and D'Haultfoeuille's (2020) weights of TWFE on the treated cells.

    ``D`` is residualised on unit and period effects (weighted by ``w`` if given); the TWFE
    coefficient is ``sum_treated w_it * Y_it`` plus terms in the untreated rows, with treated
    weights ``w_it`` proportional to the residuals and summing to 1, so that with cell
    effects ``tau_it`` (and parallel trends) it estimates ``sum_treated w_it tau_it``.

    Returns
    -------
    dict
        ``n_treated_cells``, ``n_negative``, ``sum_negative`` (the negative weights' sum),
        ``bacon_later_vs_earlier`` (Goodman-Bacon's weight on later- against earlier-treated
        comparisons, :func:`careval.impact.bacon.bacon_weights`; None for an unbalanced or
        weighted panel) and ``weights`` (an array over the panel's rows, NaN for untreated
        rows).
    """
    _pyfixest()
    from pyfixest.estimation import demean

    fe = np.column_stack([pd.factorize(panel[c])[0] for c in ("unit", "period")]).astype(np.uint64)
    w = panel["w"].to_numpy(float) if weights else np.ones(len(panel))
    d = panel["D"].to_numpy(float)
    resid, _ = demean(d[:, None].copy(), fe, w, tol=1e-12, maxiter=100_000)
    eps = resid[:, 0] * w
    treated = d == 1
    cell_w = np.full(len(panel), math.nan)
    cell_w[treated] = eps[treated] / eps[treated].sum()
    neg = cell_w[treated] < 0
    bacon = None if weights else bacon_weights(panel)
    return {
        "n_treated_cells": int(treated.sum()),
        "n_negative": int(neg.sum()),
        "sum_negative": float(cell_w[treated][neg].sum()),
        "bacon_later_vs_earlier": None
        if bacon is None
        else float(bacon.loc[bacon["kind"] == "later_vs_earlier", "weight"].sum()),
        "weights": cell_w,
    }


def twfe_warning(info: dict[str, Any], n_cohorts: int) -> str:
    """The warning for TWFE on staggered adoption, from :func:`twfe_weights`."""
    return (
        f"TWFE with staggered adoption ({n_cohorts} cohorts): {info['n_negative']:,} of "
        f"{info['n_treated_cells']:,} treated unit-periods get negative weight (summing to "
        f"{info['sum_negative']:.3f}; de Chaisemartin and D'Haultfoeuille 2020), so with effects "
        "that vary over time or by cohort the ATT can be biased, even in sign"
        + (
            ""
            if info.get("bacon_later_vs_earlier") is None
            else f"; {info['bacon_later_vs_earlier']:.1%} of the TWFE weight is on later- vs "
            "earlier-treated comparisons (already-treated controls; Goodman-Bacon 2021)"
        )
        + "; use estimator='auto' for the robust estimator"
    )
