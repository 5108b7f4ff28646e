"""Staggered-adoption difference-in-differences and its event study (``careval did``).

``did`` estimates the ATT of ``D_it = 1[time >= first_treated]`` with unit and period effects
and an event study on relative time binned at the window's ends (``k = -1`` the reference), by
one of three estimators (``estimator``):

- ``"twfe"``: two-way fixed effects on :func:`careval.impact.fe.fit_fe` (its conventions of
  standard errors, p-values and dropped observations). With staggered adoption and effects that
  vary by cohort or over time it is biased (Goodman-Bacon 2021; de Chaisemartin and
  D'Haultfoeuille 2020), and the result warns with the share of negative weights.
- ``"did2s"`` (OLS): Gardner's (2021) two-stage DiD, robust to such heterogeneity.
- ``"etwfe"`` (any model, the robust choice for Poisson): Wooldridge's (2023) extended TWFE.

``"auto"`` (the default) is TWFE with one adoption cohort (where, with never-treated or
not-yet-treated controls, TWFE and the robust estimators agree) and the robust estimator with
two or more. See :mod:`careval.impact.staggered`. For OLS the event study and the pre-trend
test always come from the two-stage estimator; for Poisson the extended TWFE gives the
post-period event study and a test of cohort-by-pre-period leads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.impact.did_inputs import (
    check_constant_within_unit,
    check_design,
    check_window,
    encode_time,
)
from careval.impact.fe import MODELS, Model, fit_fe
from careval.impact.inputs import (
    as_float,
    check_choice,
    check_rule,
    codes,
    is_blank,
    join_problems,
    jsonable,
    require_columns,
    show,
    unique,
)
from careval.impact.staggered import (
    choose_estimator,
    did2s_fit,
    etwfe_fit,
    identified,
    poisson_pretrend,
    twfe_warning,
    twfe_weights,
)

_ESTIMANDS = {
    "twfe": "ATT: coefficient of D = 1[time >= first_treated], unit and time FE (TWFE)",
    "did2s": "ATT: mean effect over treated unit-periods, Gardner (2021) two-stage DiD",
    "etwfe": "ATT: treated-row-weighted mean of cohort-by-period effects, Wooldridge (2023)",
}


@dataclass(eq=False)
class DidResult:
    """Staggered-adoption DiD: the ATT, the event study and the pre-trend test.

    Attributes
    ----------
    att : dict of str to float
        ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value`` of the ATT; for Poisson
        (and the other log-link models) also ``rate_ratio``, ``rr_ci_low``, ``rr_ci_high``.
    event_study : pandas.DataFrame
        One row per relative period ``k`` estimated: ``k``, ``label`` (``"<=-6"`` and
        ``">=12"`` at the binned ends), the estimate columns of ``att``, ``n_obs`` and
        ``n_units`` (treated-unit rows and units at that ``k``) and ``reference`` (True for
        ``k = -1``, whose estimate is 0 by construction). The extended TWFE has post-periods
        only.
    estimator : {"twfe", "did2s", "etwfe"}
        The estimator run (``"auto"`` resolved).
    pretrend : dict or None
        Joint Wald test of no pre-trends: ``statistic`` (chi-square), ``df``, ``p_value``,
        ``terms`` (the relative periods tested), ``test``. OLS: every pre-period coefficient of
        the two-stage event study is 0. Poisson: every cohort-by-pre-period lead added to the
        extended TWFE is 0 (Wooldridge 2023); with TWFE, none. None for other models or
        without pre-periods.
    twfe_weights : dict or None
        With TWFE on staggered adoption: ``n_treated_cells``, ``n_negative`` and
        ``sum_negative`` of de Chaisemartin and D'Haultfoeuille's (2020) weights.
    n_cohorts : int
        Distinct first treated periods among units observed treated.
    n_units, n_treated_units, n_never_treated_units, n_periods : int
        Units in the data; units observed treated; units without a ``first_treated``; distinct
        periods.
    model : str
        One of :data:`careval.impact.fe.MODELS`.
    cluster : str
        The cluster column (the unit column unless another was given).
    vcov : str
    n_obs, n_dropped : int
        Rows in the ATT regression, and rows pyfixest dropped from it (``dropped`` splits them).
    time_encoding : str
        How ``time`` became integer periods.
    """

    att: dict[str, float]
    event_study: pd.DataFrame
    n_units: int
    n_treated_units: int
    n_periods: int
    model: Model
    cluster: str
    n_never_treated_units: int = 0
    vcov: str = "CRV1"
    n_obs: int = 0
    n_dropped: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    weights: str | None = None
    event_window: tuple[int, int] = (-6, 12)
    time_encoding: str = "integer periods as given"
    warnings: list[str] = field(default_factory=list)
    estimator: str = "twfe"
    pretrend: dict[str, Any] | None = None
    twfe_weights: dict[str, Any] | None = None
    n_cohorts: int = 1
    # Count models: the Poisson fit's overdispersion test (Cameron-Trivedi) and, for negbin,
    # the NB2 alpha of the ATT fit (careval.impact.negbin).
    overdispersion: dict[str, Any] | None = None
    alpha: float | None = None

    def tidy(self) -> pd.DataFrame:
        """One row per term: ``att`` then the event-study periods (``k=-6``, ...)."""
        att = pd.DataFrame([{"term": "att", **self.att}])
        es = self.event_study.drop(columns=["label", "n_obs", "n_units", "reference"])
        es.insert(0, "term", [f"k={k}" for k in es.pop("k")])
        return pd.concat([att, es], ignore_index=True)

    def summary(self) -> str:
        """The ATT with its interval, the design and what was dropped, in a few lines."""
        a = self.att
        lines = [
            f"ATT {a['estimate']:.4g} (95% CI {a['ci_low']:.4g} to {a['ci_high']:.4g}, "
            f"p = {a['p_value']:.3g}), {self.model}, {self.estimator}"
        ]
        if "rate_ratio" in a:
            lines.append(
                f"rate ratio {a['rate_ratio']:.4g} "
                f"(95% CI {a['rr_ci_low']:.4g} to {a['rr_ci_high']:.4g})"
            )
        lines.append(
            f"{self.n_units:,} units ({self.n_treated_units:,} treated in "
            f"{self.n_cohorts:,} cohorts, {self.n_never_treated_units:,} never treated), "
            f"{self.n_periods:,} periods, {self.n_obs:,} rows; {self.vcov} standard errors "
            f"clustered on {self.cluster}"
        )
        if self.pretrend:
            p = self.pretrend
            lines.append(
                f"pre-trends: chi-square {p['statistic']:.3g} on {p['df']} df, "
                f"p = {p['p_value']:.3g}"
            )
        lines += self.warnings
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (floats rounded to 6 decimals, NaN as None)."""
        records = self.event_study.to_dict(orient="records")
        return jsonable(
            {
                "estimand": _ESTIMANDS[self.estimator],
                "estimator": self.estimator,
                "model": self.model,
                "att": self.att,
                "event_study": records,
                "pretrend": self.pretrend,
                "twfe_weights": self.twfe_weights,
                "n_cohorts": self.n_cohorts,
                "overdispersion": self.overdispersion,
                "alpha": self.alpha,
                "n_obs": self.n_obs,
                "n_units": self.n_units,
                "n_treated_units": self.n_treated_units,
                "n_never_treated_units": self.n_never_treated_units,
                "n_periods": self.n_periods,
                "n_dropped": self.n_dropped,
                "dropped": self.dropped,
                "cluster": self.cluster,
                "vcov": self.vcov,
                "weights": self.weights,
                "event_window": list(self.event_window),
                "time_encoding": self.time_encoding,
                "warnings": self.warnings,
            }
        )


def did(
    df: pd.DataFrame,
    *,
    unit: str,
    time: str,
    outcome: str,
    first_treated: str,
    model: Model = "ols",
    cluster: str | None = None,
    weights: str | None = None,
    event_window: tuple[int, int] = (-6, 12),
    estimator: str = "auto",
) -> DidResult:
    """Estimate a staggered-adoption difference-in-differences and its event study.

    The ATT is that of ``D_it = 1[time_it >= first_treated_i]`` with unit and period effects.
    The event study uses indicators of relative time ``k = time - first_treated``, with
    ``k <= lo`` binned into ``lo`` and ``k >= hi`` into ``hi``, ``k = -1`` the omitted
    reference and never-treated units zero throughout. ``estimator`` chooses TWFE, Gardner's
    two-stage DiD or Wooldridge's extended TWFE (see the module's docstring).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per unit and period (not modified).
    unit : str
        Unit identifier column (no missing values).
    time : str
        Period column: integers, used as they are, or anything else ordered (dates, ISO date
        strings such as ``2020-01``, non-integer numbers), converted to integers by ranking the
        sorted distinct values, so that relative time counts observed periods.
    outcome : str
        Numeric, finite outcome; for the count models non-negative.
    first_treated : str
        First treated period, in the same units as ``time``; missing (NaN, None or empty) for
        never-treated units; constant within a unit.
    model : str
        One of :data:`careval.impact.fe.MODELS`; the count models give rate ratios too.
    cluster : str, optional
        Cluster column for cluster-robust standard errors; the unit column when not given (a
        DiD without clustering on the unit understates its uncertainty).
    weights : str, optional
        Column of positive analytic weights.
    event_window : tuple of int
        ``(lo, hi)`` with ``lo <= -2`` and ``hi >= 0``.
    estimator : {"auto", "did2s", "etwfe", "twfe"}
        ``"auto"``: TWFE with one adoption cohort, otherwise ``"did2s"`` for OLS and
        ``"etwfe"`` for the other models. ``"did2s"`` needs OLS.

    Returns
    -------
    DidResult

    Raises
    ------
    ConfigError
        For missing columns, bad values, duplicated unit-periods, ``first_treated`` varying
        within a unit, no treated or no comparison observations, no treated unit observed at
        ``k = -1``, or an estimator that does not fit the model.
    """
    check_choice("model", model, MODELS)
    lo, hi = check_window(event_window)
    cluster_col = cluster or unit
    require_columns(df, unique([unit, time, outcome, first_treated, cluster_col, weights]))

    problems: list[str] = []
    unit_codes = codes(df[unit])
    check_rule(unit_codes < 0, df[unit], unit, "is missing", "an identifier in every row", problems)
    y = as_float(df[outcome], outcome, "outcome", problems)
    check_rule(
        is_blank(df[outcome]), df[outcome], outcome, "is missing", "a number in every row", problems
    )
    if model != "ols":
        check_rule(
            y < 0, df[outcome], outcome, "is negative", f"values >= 0 for model={model!r}", problems
        )
    if weights:
        w = as_float(df[weights], weights, "weights", problems)
        check_rule(
            is_blank(df[weights]) | (w <= 0).to_numpy(),
            df[weights],
            weights,
            "is missing, zero or negative",
            "weights > 0",
            problems,
        )
    cluster_codes = codes(df[cluster_col])
    if cluster:
        check_rule(
            cluster_codes < 0,
            df[cluster],
            cluster,
            "is missing",
            "a cluster identifier in every row",
            problems,
        )
    period, start, encoding = encode_time(
        df[time], df[first_treated], time, first_treated, problems
    )
    keys = pd.DataFrame({"u": unit_codes, "t": period})
    dup = (unit_codes >= 0) & ~np.isnan(period) & keys.duplicated(keep=False).to_numpy()
    check_rule(
        dup,
        df[time],
        f"{unit}, {time}",
        "repeats a (unit, time) pair",
        "one row per unit and period",
        problems,
        example=lambda i: f"{unit}={show(df[unit].iloc[i])}, {time}={show(df[time].iloc[i])}",
    )
    if not problems:
        check_constant_within_unit(df, unit, first_treated, unit_codes, start, problems)
    if problems:
        raise ConfigError(join_problems(problems))

    period_i = period.astype(np.int64)
    treated_row = ~np.isnan(start)
    rel = np.where(treated_row, period - np.where(treated_row, start, 0.0), np.nan)
    d = (treated_row & (rel >= 0)).astype(float)
    check_design(d, period_i, rel, first_treated)
    n_cohorts = int(np.unique(start[d == 1]).size)
    chosen = choose_estimator(estimator, model, n_cohorts)

    panel = pd.DataFrame(
        {
            "unit": unit_codes,
            "period": period_i,
            "y": y.to_numpy(float),
            "D": d,
            "cohort": np.where(treated_row, start, -1.0),
            "cluster": cluster_codes,
        }
    )
    if weights:
        panel["w"] = w.to_numpy(float)
    binned = np.clip(rel, lo, hi)
    ks = sorted(int(k) for k in np.unique(binned[treated_row]))
    es_terms = [k for k in ks if k != -1]
    for k in es_terms:
        panel[f"k={k}"] = (binned == k).astype(float)

    common: dict[str, Any] = {
        "outcome": "y",
        "fe": ["unit", "period"],
        "model": model,
        "cluster": "cluster",
        "weights": "w" if weights else None,
    }
    notes: list[str] = []
    pretrend = None
    event: dict[int, dict[str, float]] = {}
    # The robust estimators take unit and period effects from untreated rows: units or periods
    # without one are left out of them.
    ok = identified(panel)
    robust, robust_binned = panel[ok].reset_index(drop=True), binned[ok]
    if (chosen != "twfe" or model == "ols") and not ok.all():
        notes.append(
            f"{int((~ok).sum()):,} rows of units or periods never observed untreated left out "
            "of the robust estimator (no untreated row to estimate their fixed effect)"
        )
    excluded = len(panel) - len(robust)
    att_fit = None
    if chosen == "etwfe":
        att_fit, att, event, info = etwfe_fit(robust, model, bool(weights), robust_binned)
        notes.append(
            f"extended TWFE: {info['cells']} treated cohort-period cells in {info['cohorts']} "
            f"cohorts, averaged with weights = {info['weights']}"
        )
        if model == "poisson":
            pretrend = poisson_pretrend(robust, robust_binned, bool(weights))
    elif chosen == "twfe":
        att_fit = fit_fe(panel, regressors=["D"], **common)
        att = att_fit.term("D")
    if att_fit is not None:
        n_obs, n_dropped, dropped = att_fit.n_obs, att_fit.n_dropped, dict(att_fit.dropped)
        vcov = att_fit.vcov
        if att_fit.n_dropped:
            parts = [f"{n:,} {why}" for why, n in att_fit.dropped.items() if n]
            notes.append(f"{att_fit.n_dropped:,} rows dropped from the ATT fit: {', '.join(parts)}")
        if chosen == "etwfe":
            n_dropped, dropped["no untreated row"] = n_dropped + excluded, excluded
    if model == "ols":
        robust_att, event, pretrend = did2s_fit(robust, es_terms, bool(weights), chosen == "did2s")
        if robust_att is not None:
            att, vcov = robust_att, "cluster-robust GMM (did2s, no small-sample factor)"
            n_obs, n_dropped, dropped = len(robust), excluded, {"no untreated row": excluded}
    elif chosen == "twfe":
        es_fit = fit_fe(panel, regressors=[f"k={k}" for k in es_terms], **common)
        event = {k: es_fit.term(f"k={k}") for k in es_terms if f"k={k}" not in es_fit.collinear}
        if es_fit.collinear:
            notes.append(f"event-study terms dropped as collinear: {', '.join(es_fit.collinear)}")
    weights_info = None
    if chosen == "twfe" and n_cohorts >= 2:
        info_w = twfe_weights(panel, bool(weights))
        weights_info = {k: v for k, v in info_w.items() if k != "weights"}
        notes.insert(0, twfe_warning(info_w, n_cohorts))

    n_treated_clusters = int(np.unique(cluster_codes[d == 1]).size)
    if n_treated_clusters < _FEW_CLUSTERS:
        notes.append(
            f"only {n_treated_clusters} treated cluster{'s' if n_treated_clusters > 1 else ''} "
            f"(fewer than {_FEW_CLUSTERS}): cluster-robust standard errors and the pre-trend "
            "test are unreliable with few treated clusters (MacKinnon and Webb 2017)"
        )
    est_cols = list(att)
    rows = []
    for k in ks:
        if chosen == "etwfe" and model != "ols" and k < 0:
            continue
        at_k = treated_row & (binned == k)
        label = f"<={k}" if k == lo else f">={k}" if k == hi else str(k)
        vals = dict(event.get(k, dict.fromkeys(est_cols, math.nan)))
        if "rate_ratio" in est_cols and "rate_ratio" not in vals:
            vals |= {c: math.exp(vals[s]) for c, s in _RR.items()}
        if k == -1:
            vals = dict.fromkeys(est_cols, math.nan) | {"estimate": 0.0}
            vals |= {"rate_ratio": 1.0} if "rate_ratio" in est_cols else {}
        rows.append(
            {
                "k": k,
                "label": label,
                **{c: vals.get(c, math.nan) for c in est_cols},
                "n_obs": int(at_k.sum()),
                "n_units": int(np.unique(unit_codes[at_k]).size),
                "reference": k == -1,
            }
        )
    observed_treated = pd.Series(d).groupby(unit_codes).max()
    has_start = pd.Series(treated_row).groupby(unit_codes).max().astype(bool)
    return DidResult(
        att=att,
        event_study=pd.DataFrame(rows),
        n_units=int(observed_treated.size),
        n_treated_units=int(observed_treated.sum()),
        n_periods=int(np.unique(period_i).size),
        model=model,
        cluster=cluster_col,
        n_never_treated_units=int((~has_start).sum()),
        vcov=vcov,
        n_obs=n_obs,
        n_dropped=n_dropped,
        dropped=dropped,
        weights=weights,
        event_window=(lo, hi),
        time_encoding=encoding,
        warnings=notes,
        estimator=chosen,
        pretrend=pretrend,
        twfe_weights=weights_info,
        n_cohorts=n_cohorts,
        overdispersion=dict(att_fit.overdispersion)
        if att_fit is not None and att_fit.overdispersion
        else None,
        alpha=att_fit.alpha if att_fit is not None else None,
    )


_FEW_CLUSTERS = 10
_RR = {"rate_ratio": "estimate", "rr_ci_low": "ci_low", "rr_ci_high": "ci_high"}
