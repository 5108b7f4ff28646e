"""The clinical-indicators section of the report: the seed's Figures 3 and 4 and the tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from careval.data.areas import pooled_name
from careval.indicators import COMPARATORS, INDICATORS, IndicatorsResult, difference_name
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    fmt_count,
    svg,
    table_html,
)

TITLES = {
    "hba1c": "HbA1c",
    "total_cholesterol": "Total cholesterol",
    "bp": "Blood pressure",
}
# The pooled series' labels (and the seed's programme-minus-comparators); areas: area_label.
LABELS = {
    COMPARATORS: "Comparison areas (pooled)",
    difference_name("pilot"): "Pilot minus comparison areas",
}


def label(name: str) -> str:
    """A series' label: a pooled series' own, else its area's (:func:`area_label`)."""
    return LABELS.get(name) or area_label(name)


def _chart_label(name: str) -> str:
    """:func:`label` for a chart legend (a ``$`` would start matplotlib's mathtext)."""
    return label(name).replace("$", r"\$")


def _programme(r: IndicatorsResult) -> str:
    """The programme series' name (``"pilot"`` by default)."""
    return pooled_name(r.settings.programme_areas)


COUNT_COLUMNS = ("n_before", "n_after", "comparison_n", "both", "before_only", "after_only")


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(alpha=0.3)


def _start_line(ax: Any, start: dt.date) -> None:
    ax.axvline(pd.Timestamp(start), color="grey", lw=1, ls="--")


def _short(r: IndicatorsResult, ind: str) -> str:
    st = r.settings
    return {
        "hba1c": f"HbA1c <= {st.hba1c_max_mmol_mol:g} mmol/mol",
        "total_cholesterol": f"Total cholesterol <= {st.total_cholesterol_max_mmol_l:g} mmol/l",
        "bp": f"Blood pressure <= {st.sbp_max_mmhg:g}/{st.dbp_max_mmhg:g} mmHg",
    }[ind]


def diabetes_chart(r: IndicatorsResult) -> str:
    """Figure 3: share in control by month (rolling average), pilot against comparators."""
    d = r.diabetes_monthly
    if d.empty:
        return ""
    programme = _programme(r)
    fig, axes = plt.subplots(1, len(INDICATORS), figsize=(11, 3.6), sharey=False)
    for ax, ind in zip(np.atleast_1d(axes), INDICATORS, strict=True):
        part = d[d.indicator == ind]
        for area in (*(r.settings.comparison_areas or ()), COMPARATORS, programme):
            s = part[part.area == area]
            x = pd.to_datetime(s.month)
            y = 100 * s.share_in_control_rolling
            if area == programme:
                ax.plot(x, y, lw=2.4, color="tab:blue", label=_chart_label(area))
            elif area == COMPARATORS:
                ax.plot(x, y, lw=2.0, ls="--", color="black", label=_chart_label(area))
            else:
                ax.plot(x, y, lw=0.9, alpha=0.55, label=_chart_label(area))
        _start_line(ax, r.settings.programme_start)
        ax.set_title(_short(r, ind), fontsize=10, loc="left")
        ax.set_ylabel("% of people with diabetes" if ind == INDICATORS[0] else "")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        _style(ax)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, fontsize=8, frameon=False, ncol=4, loc="lower center",
        bbox_to_anchor=(0.5, -0.12),
    )  # fmt: skip
    fig.suptitle(
        f"People with diabetes in control ({r.settings.rolling_months}-month rolling average)",
        fontsize=11,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    return svg(fig)


def dementia_chart(r: IndicatorsResult) -> str:
    """Figure 4: new dementia diagnoses per 1,000 aged 75+ a month, with the ITS lines."""
    d = r.dementia_monthly
    if d.empty:
        return ""
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    programme = _programme(r)
    colours = {programme: "tab:blue", COMPARATORS: "black"}
    f = r.its_fitted
    for area in (programme, COMPARATORS):
        s = d[d.area == area]
        x = pd.to_datetime(s.month)
        name = _chart_label(area)
        ax.plot(x, s.rate_per_1000, "o", ms=3, color=colours[area], alpha=0.7, label=name)
        if not f.empty and area in set(f.series):
            fs = f[f.series == area]
            fx = pd.to_datetime(fs.month)
            post = (fs.month >= r.settings.programme_start).to_numpy()
            for k, seg in enumerate((~post, post)):  # the two segments, not joined
                ax.plot(
                    fx[seg],
                    fs.fitted_ols[seg],
                    lw=2,
                    color=colours[area],
                    label=f"{name}: ITS" if k == 0 else None,
                )
            ax.plot(
                fx[post],
                fs.counterfactual_ols[post],
                lw=1.2,
                ls=":",
                color=colours[area],
                label=f"{name}: pre-programme trend carried on",
            )
    _start_line(ax, r.settings.programme_start)
    age = r.settings.dementia_min_age
    ax.set_ylabel(f"per 1,000 aged {age}+")
    ax.set_title(
        f"New dementia diagnoses a month among people aged {age}+", fontsize=11, loc="left"
    )
    ax.legend(fontsize=7.5, frameon=False, ncol=2)
    _style(ax)
    p = r.dementia_care_plans
    ax2.bar(pd.to_datetime(p.month), p.care_plans_dementia, width=25, color="tab:purple")
    _start_line(ax2, r.settings.programme_start)
    ax2.set_ylabel("care plans")
    ax2.set_title(
        "Care plans for people with a dementia diagnosis by the plan date", fontsize=9, loc="left"
    )
    ax2.tick_params(axis="x", labelrotation=45, labelsize=8)
    _style(ax2)
    fig.tight_layout()
    return svg(fig)


def _before_after_table(r: IndicatorsResult) -> pd.DataFrame:
    t = r.before_after.copy()
    shares = t.quantity.str.startswith("share")
    for col in ("before", "after", "change", "comparison_change", "estimate", "ci_low", "ci_high"):
        v = pd.to_numeric(t[col])  # withheld values (None) become NaN
        t[col] = np.where(shares, 100 * v, v)  # shares as percentages
    for col in ("statistic", "p_value"):
        t[col] = pd.to_numeric(t[col])
    t["quantity"] = np.where(shares, t.quantity.str.replace("share", "%", n=1), t.quantity)
    t = t.round({c: 3 for c in ("before", "after", "change", "comparison_change", "estimate")})
    t = t.round({"ci_low": 3, "ci_high": 3, "statistic": 3, "p_value": 4})
    keep = [
        "quantity",
        "analysis",
        "test",
        "n_before",
        "n_after",
        "before",
        "after",
        "comparison_change",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "before_only",
        "after_only",
    ]
    t = t[keep].astype(object)
    return t.where(t.notna(), None)


def _its_table(r: IndicatorsResult) -> pd.DataFrame:
    rows = []
    programme = _programme(r)
    difference = difference_name(programme)
    for name in (programme, COMPARATORS, difference):
        res = r.its.get(name)
        if not isinstance(res, dict) or "ols" not in res:
            continue
        shown = LABELS.get(name) or (
            f"{area_label(programme)} minus comparison areas" if name == difference else label(name)
        )
        for term in ("level_change", "slope_change"):
            c = res["ols"]["coefficients"][term]
            row: dict[str, Any] = {
                "series": shown,
                "term": term.replace("_", " ") + (" a month" if term == "slope_change" else ""),
                "estimate": round(c["estimate"], 4),
                "ci_low": round(c["ci_low"], 4),
                "ci_high": round(c["ci_high"], 4),
                "p_value": round(c["p_value"], 4),
                "hac_lags": res["hac_lags"],
            }
            pois = res.get("poisson", {}).get("coefficients", {}).get(term)
            if pois:
                row["poisson_rate_ratio"] = round(pois["rate_ratio"], 3)
                row["rr_ci_low"] = round(pois["rate_ratio_ci_low"], 3)
                row["rr_ci_high"] = round(pois["rate_ratio_ci_high"], 3)
            rows.append(row)
    return pd.DataFrame(rows)


def _snapshot(r: IndicatorsResult) -> pd.DataFrame:
    """Share in control (rolling) at the programme start and at the last month."""
    d = r.diabetes_monthly
    if d.empty:
        return pd.DataFrame()
    months = sorted(set(d.month))
    at = [m for m in (r.settings.programme_start, months[-1]) if m in set(months)]
    rows = []
    programme = _programme(r)
    others = [a for a in dict.fromkeys(d.area) if a not in (programme, COMPARATORS)]
    for area in (programme, COMPARATORS, *others):
        row: dict[str, Any] = {"area": label(area)}
        for ind in INDICATORS:
            for m in at:
                v = d[(d.area == area) & (d.indicator == ind) & (d.month == m)]
                col = f"{TITLES[ind]} {m:%b %Y}"
                row[col] = (
                    round(100 * float(v.share_in_control_rolling.iloc[0]), 1) if len(v) else None
                )
        rows.append(row)
    return pd.DataFrame(rows)


LABEL_COLUMNS = ("month", "area", "indicator")


def as_plotted(r: IndicatorsResult) -> IndicatorsResult:
    """``r`` with its monthly tables numeric for the charts and the snapshot.

    On the published copy a suppressed count (``*``) or a withheld share or rate (``None``)
    becomes NaN, so the charts and the snapshot show gaps exactly where ``results.json``
    withholds; true numbers (synthetic data) pass through unchanged.
    """

    def numeric(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for col in out.columns:
            if col not in LABEL_COLUMNS and out[col].dtype == object:
                out[col] = pd.to_numeric(out[col], errors="coerce")
        return out

    return dataclasses.replace(
        r,
        diabetes_monthly=numeric(r.diabetes_monthly),
        dementia_monthly=numeric(r.dementia_monthly),
        dementia_care_plans=numeric(r.dementia_care_plans),
    )


def section(r: IndicatorsResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """Figure 3 (diabetes control), the before/after table and Figure 4 (dementia, ITS).

    Parameters
    ----------
    r
        The result of :func:`careval.indicators.evaluate_indicators`; on real data its
        published copy (:func:`careval.report.publish.indicators.publish_indicators`).
    ctx
        The page's context. Nothing here depends on it: the section quotes no figure of the
        seed (its "unpaired (as the seed)" rows name a method, as their label in results.json
        does, on any data).
    """
    r = as_plotted(r)
    st = r.settings
    defs = st.definitions()
    parts = [
        "<p>People with diabetes registered and alive on the first day of each month, in "
        "control when their latest reading in the previous "
        f"{st.lookback_months} months meets the target: "
        + "; ".join(html.escape(v) for v in defs.values())
        + ". People with no reading in those months count as not in control (the share with a "
        f"reading is in results.json). Lines are {st.rolling_months}-month rolling averages of "
        "the monthly shares; the dashed vertical line marks the programme start "
        f"({st.programme_start:%B %Y}).</p>",
        "<figure>" + diabetes_chart(r) + "</figure>",
    ]
    snap = _snapshot(r)
    if not snap.empty:
        parts.append(table_html(snap, {"area": "area"}, "indicators-diabetes-snapshot", ("area",)))
    c = r.cohort
    comp = ", ".join(area_label(a) for a in st.comparison_areas or ())
    parts += [
        "<h3>Before and after a care plan</h3>",
        f"<p>Of {fmt_count(c['care_planned'])} care-planned people, "
        f"{fmt_count(c['care_planned_with_diabetes'])} had diabetes coded by the plan date "
        f"and <b>{fmt_count(c['eligible'])}</b> had at least "
        f"{st.min_months_on_plan} months on a plan within the data. Each person's latest value "
        f"in the {st.lookback_months} months before the plan is compared with their latest "
        f"from {st.min_months_on_plan} to {st.min_months_on_plan + st.lookback_months} months "
        "after it. <i>Paired</i> rows use the people with both values (paired t-test for "
        "means, McNemar's test for the share in control, exact when discordant pairs are fewer "
        f"than {st.mcnemar_exact_below}); <i>unpaired (as the seed)</i> rows use everyone with "
        "a value before against everyone with a value after (Welch t-test, two-proportion "
        "z-test). A before-after change also contains any secular trend, so <i>change vs "
        "comparison</i> rows subtract the change among "
        f"{fmt_count(c['comparison_eligible'])} people with diabetes in {html.escape(comp)} "
        "given random index dates drawn from the plan "
        "dates (Welch t-test of the person-level changes). Shares are in percent.</p>",
        table_html(
            _before_after_table(r),
            {
                "n_before": "n before",
                "n_after": "n after",
                "comparison_change": "comparison change",
                "estimate": "change or difference",
                "ci_low": "95% CI low",
                "ci_high": "95% CI high",
                "p_value": "p",
                "before_only": "in control before only",
                "after_only": "in control after only",
            },
            "indicators-before-after",
            ("quantity", "analysis", "test"),
        ),
    ]
    truth = (r.truth or {}).get("diabetes")
    if truth:
        effects = ", ".join(
            f"{k.replace('_', ' ')} {truth[k]:+g} {truth.get('units', {}).get(k, '')}".strip()
            for k in ("hba1c", "total_cholesterol", "sbp", "dbp")
            if k in truth
        )
        parts.append(
            "<p class='note'>True effects built into these synthetic data, from "
            f"{truth.get('from_months_after_care_plan', '?')} months after the plan: "
            f"{html.escape(effects)}.</p>"
        )
    parts += [
        "<h3>Dementia diagnosis</h3>",
        f"<p>New dementia diagnoses (first code, GP or hospital) a month per 1,000 people aged "
        f"{st.dementia_min_age}+ registered on the first day of the month. Lines: an "
        "interrupted time series (segmented regression, OLS with Newey-West standard errors) "
        f"with a level and a slope change from {st.programme_start:%B %Y}, for the pilot and for "
        "the comparison areas pooled as a control series; dotted, the pre-programme line carried "
        "on. The table adds the ITS of the pilot's rate minus the comparators' (changes common "
        "to both cancel) and the Poisson version (counts with the registered as exposure, "
        f"rate ratios). {html.escape(_care_plan_note())}</p>",
        "<figure>" + dementia_chart(r) + "</figure>",
    ]
    its = _its_table(r)
    if not its.empty:
        parts.append(
            table_html(
                its,
                {
                    "ci_low": "95% CI low",
                    "ci_high": "95% CI high",
                    "p_value": "p",
                    "hac_lags": "HAC lags",
                    "poisson_rate_ratio": "Poisson rate ratio",
                    "rr_ci_low": "RR 95% CI low",
                    "rr_ci_high": "RR 95% CI high",
                },
                "indicators-its",
                ("series", "term"),
            )
        )
    dem_truth = (r.truth or {}).get("dementia_case_finding")
    if dem_truth:
        parts.append(
            "<p class='note'>In these synthetic data the pilot's diagnosis rate of undiagnosed "
            f"dementia is multiplied by {dem_truth.get('value')} from "
            f"{html.escape(str(dem_truth.get('diagnosis_rate_ratio_in_pilot_after')))}, and "
            "care-planned people aged 75+ are offered a 6CIT at the plan.</p>"
        )
    parts += [f"<p class='banner'>{html.escape(w)}</p>" for w in r.warnings]
    return Section("indicators", "Clinical indicators", "".join(parts))


def _care_plan_note() -> str:
    return (
        "The care_plans table records no content or condition, so care plans mentioning "
        "dementia are counted as plans for people with a dementia diagnosis recorded by the "
        "plan date."
    )
