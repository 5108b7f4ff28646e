"""The clinical-indicators section of the report: the seed's Figures 3 and 4 and the tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from careval.data.areas import pooled_name
from careval.indicators import COMPARATORS, INDICATORS, IndicatorsResult, difference_name
from careval.report import format as fmt
from careval.report import glossary
from careval.report.charts import GREY, PALETTE, figure, hover, hover_points, tidy, zero_based
from careval.report.glossary import abbr
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    area_prose,
    fmt_count,
    svg,
    table_html,
)

TITLES = {
    "hba1c": "HbA1c",
    "total_cholesterol": "Total cholesterol",
    "bp": "Blood pressure",
}
# The programme's series first and blue, the pooled comparators black; each comparison area a
# colour of its own from the rest of the Okabe-Ito palette.
PROGRAMME_COLOUR, POOLED_COLOUR = PALETTE[0], "#000000"
AREA_COLOURS = tuple(c for c in PALETTE if c not in (PALETTE[0], "#000000", "#F0E442"))
MEASURES = re.compile(r"\b(hba1c|total_cholesterol|sbp|dbp)\b")
CODE_PART = re.compile(r"scipy|statsmodels|\w_\w|\w\.\w")  # a library's name or function
ANALYSES = {
    "paired": "Paired",
    "unpaired (as the seed)": "Unpaired (as the seed)",
    "change vs comparison": "Change against comparison",
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
    tidy(ax)


def _start_line(ax: Any, start: dt.date) -> None:
    ax.axvline(pd.Timestamp(start), color=GREY, lw=1, ls="--")


def _short(r: IndicatorsResult, ind: str) -> str:
    st = r.settings
    return {
        "hba1c": f"HbA1c \u2264 {st.hba1c_max_mmol_mol:g} mmol/mol",
        "total_cholesterol": f"Total cholesterol \u2264 {st.total_cholesterol_max_mmol_l:g} mmol/L",
        "bp": f"Blood pressure \u2264 {st.sbp_max_mmhg:g}/{st.dbp_max_mmhg:g} mmHg",
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
        others = list(r.settings.comparison_areas or ())
        for area in (*others, COMPARATORS, programme):
            s = part[part.area == area]
            x = pd.to_datetime(s.month)
            y = 100 * s.share_in_control_rolling
            if area == programme:
                ax.plot(x, y, lw=2.6, color=PROGRAMME_COLOUR, label=_chart_label(area))
                texts = [
                    f"{_chart_label(area)}, {m:%B %Y}: {fmt.number(v, 1)}%"
                    for m, v in zip(x, y, strict=True)
                ]
                hover_points(ax, x, y, texts, color=PROGRAMME_COLOUR, ms=3)
            elif area == COMPARATORS:
                ax.plot(x, y, lw=2.0, ls="--", color=POOLED_COLOUR, label=_chart_label(area))
            else:
                colour = AREA_COLOURS[others.index(area) % len(AREA_COLOURS)]
                ax.plot(x, y, lw=1.1, color=colour, label=_chart_label(area))
        zero_based(ax)
        _start_line(ax, r.settings.programme_start)
        ax.set_title(_short(r, ind), fontsize=10, loc="left")
        ax.set_ylabel("% of people with diabetes" if ind == INDICATORS[0] else "")
        ax.tick_params(axis="x", labelrotation=45, labelsize=9)
        _style(ax)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    fig.legend(
        [handles[i] for i in keep], [labels[i] for i in keep], fontsize=9, frameon=False,
        ncol=4, loc="lower center", bbox_to_anchor=(0.5, -0.14),
    )  # fmt: skip
    title = f"People with diabetes in control ({r.settings.rolling_months}-month rolling average)"
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return svg(fig, title, _diabetes_desc(r))


def _diabetes_change(r: IndicatorsResult) -> list[tuple[str, str, float, float]]:
    """Per indicator and series (programme, pooled comparators): the share in control (%)
    at the programme start and in the last month, where both are published."""
    d = r.diabetes_monthly
    if d.empty:
        return []
    months = sorted(set(d.month))
    start, last = r.settings.programme_start, months[-1]
    out = []
    for ind in INDICATORS:
        for area in (_programme(r), COMPARATORS):
            v = d[(d.indicator == ind) & (d.area == area)].set_index("month")
            v = v.share_in_control_rolling
            if start in v.index and last in v.index and pd.notna(v[start]) and pd.notna(v[last]):
                out.append((ind, area, 100 * float(v[start]), 100 * float(v[last])))
    return out


def _diabetes_desc(r: IndicatorsResult) -> str:
    """Figure 3 in words: each series' share in control at the start and at the end."""
    last = max(r.diabetes_monthly.month)
    return (
        f"Share in control from {r.settings.programme_start:%B %Y} to {last:%B %Y}: "
        + "; ".join(
            f"{TITLES[i]}, {label(a)}: {fmt.number(a0, 1)}% to {fmt.number(a1, 1)}%"
            for i, a, a0, a1 in _diabetes_change(r)
        )
        + "."
    )


def _diabetes_caption(r: IndicatorsResult) -> str:
    """Figure 3's finding: the programme's change in points against the comparators'."""
    ch = {(i, a): a1 - a0 for i, a, a0, a1 in _diabetes_change(r)}
    programme = _programme(r)
    bits = [
        f"{TITLES[i]} {fmt.points(ch[(i, programme)])} against {fmt.points(ch[(i, COMPARATORS)])}"
        for i in INDICATORS
        if (i, programme) in ch and (i, COMPARATORS) in ch
    ]
    if not bits:
        return "Share of people with diabetes in control by month (values withheld)."
    return (
        f"Change in the share in control since the programme start, {label(programme)} against "
        "the comparison areas: " + "; ".join(bits) + "."
    )


def dementia_chart(r: IndicatorsResult) -> str:
    """Figure 4: new dementia diagnoses per 1,000 aged 75+ a month, with the ITS lines."""
    d = r.dementia_monthly
    if d.empty:
        return ""
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    programme = _programme(r)
    colours = {programme: PROGRAMME_COLOUR, COMPARATORS: POOLED_COLOUR}
    f = r.its_fitted
    for area in (programme, COMPARATORS):
        s = d[d.area == area]
        x = pd.to_datetime(s.month)
        name = _chart_label(area)
        ax.plot(x, s.rate_per_1000, "o", ms=3, color=colours[area], alpha=0.7, label=name)
        texts = [
            f"{name}, {m:%B %Y}: {fmt.number(v, 2)} per 1,000"
            for m, v in zip(x, s.rate_per_1000, strict=True)
        ]
        hover_points(ax, x, s.rate_per_1000, texts, color=colours[area], ms=3, alpha=0.7)
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
                    label=f"{name}: interrupted time series" if k == 0 else None,
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
    title = f"New dementia diagnoses a month among people aged {age}+"
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylim(bottom=0)
    _style(ax)
    p = r.dementia_care_plans
    bars = ax2.bar(pd.to_datetime(p.month), p.care_plans_dementia, width=25, color=PALETTE[3])
    for b, m, n in zip(bars, pd.to_datetime(p.month), p.care_plans_dementia, strict=True):
        hover(b, f"{m:%B %Y}: {fmt.count(n)} care plans")
    _start_line(ax2, r.settings.programme_start)
    ax2.set_ylabel("care plans")
    ax2.set_title(
        "Care plans for people with a dementia diagnosis by the plan date", fontsize=9, loc="left"
    )
    ax2.tick_params(axis="x", labelrotation=45, labelsize=9)
    _style(ax2)
    fig.tight_layout()
    handles, labels = ax.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    fig.legend(
        [handles[i] for i in keep], [labels[i] for i in keep], fontsize=9, frameon=False,
        ncol=2, loc="upper center", bbox_to_anchor=(0.5, 0.0),
    )  # fmt: skip
    return svg(fig, title, _dementia_caption(r))


def _level_change(r: IndicatorsResult, name: str) -> str | None:
    """A series' ITS level change in words with its interval, or None when not estimated."""
    res = r.its.get(name)
    if not isinstance(res, dict) or "ols" not in res:
        return None
    c = res["ols"]["coefficients"]["level_change"]
    return (
        f"{fmt.number(c['estimate'], 2)} per 1,000 (95% CI {fmt.number(c['ci_low'], 2)} to "
        f"{fmt.number(c['ci_high'], 2)})"
    )


def _dementia_caption(r: IndicatorsResult) -> str:
    """Figure 4's finding: the level change of the programme against the comparators."""
    programme = _programme(r)
    own, pooled = _level_change(r, programme), _level_change(r, COMPARATORS)
    diff = _level_change(r, difference_name(programme))
    if own is None:
        return "New dementia diagnoses a month (the interrupted time series was not estimated)."
    text = (
        f"From {r.settings.programme_start:%B %Y} the monthly rate of new dementia diagnoses in "
        f"{area_prose(programme)} changed in level by {own}"
    )
    if pooled is not None:
        text += f", against {pooled} in the comparison areas"
    if diff is not None:
        text += f"; the difference is {diff}"
    return text + "."


def _test_label(text: str) -> str:
    """A test as people name it: ``"paired t-test, scipy.stats.ttest_rel"`` reads "Paired
    t-test" (the library's function names left out; the analysis column says "as the seed")."""
    text = str(text).replace("(unpaired, as the seed)", "")
    parts = [p.strip() for p in text.split(",")]
    shown = ", ".join(p for p in parts if p and not CODE_PART.search(p))
    if not shown:
        return glossary.label(str(text).strip())
    return shown[0].upper() + shown[1:]


def _quantity_label(text: str) -> str:
    """A before-after quantity in words: measures by their labels, ``<=`` as ``≤``."""

    def measure(m: re.Match[str]) -> str:
        name = glossary.label(m[1])
        return name if name[1:] != name[1:].lower() else name[0].lower() + name[1:]

    out = MEASURES.sub(measure, str(text)).replace("<=", "\u2264")
    return out[0].upper() + out[1:] if out else out


def _before_after_table(r: IndicatorsResult) -> pd.DataFrame:
    t = r.before_after.copy()
    shares = t.quantity.str.startswith("share")
    for col in ("before", "after", "change", "comparison_change", "estimate", "ci_low", "ci_high"):
        v = pd.to_numeric(t[col])  # withheld values (None) become NaN
        t[col] = np.where(shares, 100 * v, v)  # shares as percentages
    for col in ("statistic", "p_value"):
        t[col] = pd.to_numeric(t[col])
    t["quantity"] = np.where(shares, t.quantity.str.replace("share", "%", n=1), t.quantity)
    t["quantity"] = [_quantity_label(q) for q in t["quantity"]]
    t["analysis"] = [ANALYSES.get(a, str(a).capitalize()) for a in t["analysis"]]
    t["test"] = [_test_label(x) for x in t["test"]]
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


BEFORE_AFTER_LABELS = {
    "quantity": "Measure",
    "analysis": "Analysis",
    "test": "Test",
    "n_before": "People before",
    "n_after": "People after",
    "before": "Before",
    "after": "After",
    "comparison_change": "Change in comparison",
    "estimate": "Change or difference",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p_value": "p",
    "before_only": "In control before only",
    "after_only": "In control after only",
}
BEFORE_AFTER_KINDS: dict[str, fmt.Kind] = {
    **{c: "count" for c in ("n_before", "n_after", "before_only", "after_only")},
    **{
        c: "number"
        for c in ("before", "after", "comparison_change", "estimate", "ci_low", "ci_high")
    },
    "p_value": "p",
}


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
                "term": "Level change" if term == "level_change" else "Slope change a month",
                "estimate": c["estimate"],
                "ci_low": c["ci_low"],
                "ci_high": c["ci_high"],
                "p_value": c["p_value"],
                "hac_lags": res["hac_lags"],
            }
            pois = res.get("poisson", {}).get("coefficients", {}).get(term)
            if pois:
                row["poisson_rate_ratio"] = pois["rate_ratio"]
                row["rr_ci_low"] = pois["rate_ratio_ci_low"]
                row["rr_ci_high"] = pois["rate_ratio_ci_high"]
            rows.append(row)
    t = pd.DataFrame(rows).astype(object)
    return t.where(t.notna(), None)  # a missing Poisson fit shows as a dash


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
                share = v.share_in_control_rolling.iloc[0] if len(v) else None
                row[col] = None if share is None or pd.isna(share) else float(share)
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
        + "; ".join(html.escape(v.replace("<=", "\u2264")) for v in defs.values())
        + ". People with no reading in those months count as not in control (the share with a "
        f"reading is in the results file). Lines are {st.rolling_months}-month rolling averages of "
        "the monthly shares; the dashed vertical line marks the programme start "
        f"({st.programme_start:%B %Y}).</p>",
    ]
    chart = diabetes_chart(r)
    if chart:
        parts.append(figure(chart, _diabetes_caption(r), "indicators-diabetes"))
    snap = _snapshot(r)
    if not snap.empty:
        parts.append(
            table_html(
                snap,
                {"area": "Area"},
                "indicators-diabetes-snapshot",
                ("area",),
                kinds={c: "share" for c in snap.columns if c != "area"},
                caption="Share in control (rolling average) at the programme start and in the "
                "last month",
            )
        )
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
        "dates (Welch t-test of the person-level changes). Shares in control are in percent, "
        "means in their units; a negative change is a fall.</p>",
        table_html(
            _before_after_table(r),
            BEFORE_AFTER_LABELS,
            "indicators-before-after",
            ("quantity", "analysis", "test"),
            kinds=BEFORE_AFTER_KINDS,
        ),
    ]
    truth = (r.truth or {}).get("diabetes")
    if truth:
        effects = ", ".join(
            f"{_quantity_label(k)} {fmt.MINUS if truth[k] < 0 else '+'}{abs(truth[k]):g} "
            f"{truth.get('units', {}).get(k, '')}".strip()
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
        f"interrupted time series ({abbr('ITS')}: segmented regression, ordinary least squares "
        f"with {abbr('HAC')} standard errors, which allow for neighbouring months being alike; "
        "Newey-West, the number of months' lag shown in the table) "
        f"with a level and a slope change from {st.programme_start:%B %Y}, for the pilot and for "
        "the comparison areas pooled as a control series; dotted, the pre-programme line carried "
        "on. The table adds the ITS of the pilot's rate minus the comparators' (changes common "
        "to both cancel) and the Poisson version (counts with the registered as exposure, "
        f"rate ratios). {html.escape(_care_plan_note())}</p>",
    ]
    chart = dementia_chart(r)
    if chart:
        parts.append(figure(chart, _dementia_caption(r), "indicators-dementia"))
    its = _its_table(r)
    if not its.empty:
        parts.append(
            table_html(
                its,
                {
                    "series": "Series",
                    "term": "Change from the programme start",
                    "estimate": "Estimate (per 1,000)",
                    "ci_low": "95% CI low",
                    "ci_high": "95% CI high",
                    "p_value": "p",
                    "hac_lags": "Months of lag (HAC)",
                    "poisson_rate_ratio": "Poisson rate ratio",
                    "rr_ci_low": "Rate ratio 95% CI low",
                    "rr_ci_high": "Rate ratio 95% CI high",
                },
                "indicators-its",
                ("series", "term"),
                kinds={
                    "estimate": "number",
                    "ci_low": "number",
                    "ci_high": "number",
                    "hac_lags": "count",
                    "poisson_rate_ratio": "ratio",
                    "rr_ci_low": "ratio",
                    "rr_ci_high": "ratio",
                },
            )
        )
    dem_truth = (r.truth or {}).get("dementia_case_finding")
    if dem_truth:
        parts.append(
            "<p class='note'>In these synthetic data the pilot's diagnosis rate of undiagnosed "
            f"dementia is multiplied by {dem_truth.get('value')} from "
            f"{html.escape(str(dem_truth.get('diagnosis_rate_ratio_in_pilot_after')))}, and "
            f"care-planned people aged 75+ are offered a {abbr('6CIT')} at the plan.</p>"
        )
    parts += [f"<p class='banner'>{html.escape(w)}</p>" for w in r.warnings]
    return Section("indicators", "Clinical indicators", "".join(parts))


def _care_plan_note() -> str:
    return (
        "The care plans table records no content or condition, so care plans mentioning "
        "dementia are counted as plans for people with a dementia diagnosis recorded by the "
        "plan date."
    )
