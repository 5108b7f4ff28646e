"""The clinical-indicators section of the report: the seed's Figures 3 and 4 and the tests."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import numpy as np
import pandas as pd

from careval.indicators import COMPARATORS, INDICATORS, IndicatorsResult, difference_name
from careval.report import format as fmt
from careval.report import glossary
from careval.report.charts import figure
from careval.report.glossary import abbr
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    fmt_count,
    table_html,
)
from careval.report.sections.indicator_charts import (
    LABELS,
    TITLES,
    dementia_caption,
    dementia_chart,
    diabetes_caption,
    diabetes_chart,
    label,
    programme_name,
)

__all__ = ["as_plotted", "dementia_chart", "diabetes_chart", "label", "section"]

MEASURES = re.compile(r"\b(hba1c|total_cholesterol|sbp|dbp)\b")
CODE_PART = re.compile(r"scipy|statsmodels|\w_\w|\w\.\w")  # a library's name or function
ANALYSES = {
    "paired": "Paired",
    "unpaired (as the seed)": "Unpaired (as the seed)",
    "change vs comparison": "Change against comparison",
}
COUNT_COLUMNS = ("n_before", "n_after", "comparison_n", "both", "before_only", "after_only")


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
    if "truth" in t:  # synthetic data: the planted change beside each estimate of the effect
        keep += ["truth", "truth_covered"]
        t["truth_covered"] = t.truth_covered.map({True: "yes", False: "no"})
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
    "truth": "Planted change",
    "truth_covered": "Interval covers it",
}
BEFORE_AFTER_KINDS: dict[str, fmt.Kind] = {
    **{c: "count" for c in ("n_before", "n_after", "before_only", "after_only")},
    **{
        c: "number"
        for c in ("before", "after", "comparison_change", "estimate", "ci_low", "ci_high", "truth")
    },
    "p_value": "p",
}


def _its_table(r: IndicatorsResult) -> pd.DataFrame:
    rows = []
    programme = programme_name(r)
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
    programme = programme_name(r)
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
        parts.append(figure(chart, diabetes_caption(r), "indicators-diabetes"))
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
        parts.append(figure(chart, dementia_caption(r), "indicators-dementia"))
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
