"""Can the matched estimates be trusted? The report's diagnostics, negative controls and
sensitivity analyses (from :mod:`careval.impact.bias` and :mod:`careval.impact.sensitivity`).

Three parts: a diagnostics table per outcome (each check against its threshold, and whether the
estimate is fit for decisions), the negative controls as a forest plot with the interval each
outcome has once calibrated by them, and the primary outcome under other designs with its
E-value and the placebo test.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from careval.impact.diagnostics import DIAGNOSTICS, failure_text
from careval.impact.study import ImpactResult
from careval.report import format as fmt
from careval.report.charts import figure
from careval.report.glossary import abbr, label
from careval.report.page import area_label, table_html
from careval.report.sections.impact_charts import forest, ratio_row

FOR_DECISIONS = "for decisions"
NOT_FOR_DECISIONS = "not for decisions"
_SHORT = {
    "mdrr": "Smallest detectable rate ratio",
    "ease": "Systematic error (EASE)",
    "max_abs_smd": "Largest SMD after matching",
    "equipoise": "Share in equipoise",
    "pretrend_p": "Pre-trend test p",
    "pretrend_change": "Largest difference before entry",
    "median_follow_up": "Median follow-up (months)",
}
_KINDS: dict[str, fmt.Kind] = {
    "mdrr": "ratio",
    "ease": "number",
    "max_abs_smd": "number",
    "equipoise": "share",
    "pretrend_p": "p",
    "pretrend_change": "share",
    "median_follow_up": "number",
}


def _titles(r: ImpactResult) -> dict[str, str]:
    return {o.name: o.title for o in r.settings.outcomes}


def verdict(o: dict[str, Any]) -> str:
    """``"for decisions"`` or ``"not for decisions"`` (an estimate without diagnostics, from a
    results file of an older careval, counts as for decisions)."""
    d = o.get("diagnostics") or {}
    return NOT_FOR_DECISIONS if d.get("failed") else FOR_DECISIONS


def diagnostics_table(r: ImpactResult) -> str:
    """One row per outcome: each diagnostic's value and the verdict, failures named."""
    titles, rows = _titles(r), []
    for name, o in r.outcomes.items():
        d = o.get("diagnostics") or {}
        checks = {c["diagnostic"]: c for c in d.get("checks", [])}
        row: dict[str, Any] = {"outcome": titles.get(name, label(name))}
        for key, _text, _worse in DIAGNOSTICS:
            row[key] = checks.get(key, {}).get("value")
            if key == "pretrend_p":
                row["pretrend_change"] = checks.get(key, {}).get("largest_change")
        row["verdict"] = verdict(o)
        row["failing"] = failure_text(d) or "none"
        rows.append(row)
    if not rows:
        return ""
    df = pd.DataFrame(rows)
    df = df.astype(object).where(df.notna(), None)
    th = r.settings.diagnostics
    rules = (
        f"smallest detectable rate ratio at most {th.max_mdrr:g} (a fall as its inverse); "
        f"systematic error at most {th.max_ease:g}; largest absolute standardised difference "
        f"at most {th.max_abs_smd:g}; at least {fmt.pct(th.min_equipoise, 0)} of the study "
        f"population in equipoise (preference score 0.3 to 0.7); pre-trend test p at least "
        f"{th.min_pretrend_p:g} unless the largest difference before entry is under "
        f"{fmt.pct(th.max_pretrend_change, 0)} (with many people the test finds differences too "
        "small to matter); median follow-up at least "
        f"{fmt.months(th.min_median_follow_up)}"
    )
    n_bad = sum(1 for o in r.outcomes.values() if verdict(o) == NOT_FOR_DECISIONS)
    lead = (
        f"{n_bad} of {len(rows)} estimates failed a diagnostic and are not for decisions."
        if n_bad
        else f"All {len(rows)} estimates passed every diagnostic assessed."
    )
    return (
        "<h3 id='impact-diagnostics'>Diagnostics: which estimates to rely on</h3>"
        f"<p>{html.escape(lead)} Each estimate is checked, as OHDSI's CohortMethod checks "
        f"its own, before it may be judged: {html.escape(rules)}. An estimate that fails one "
        "is shown but not for decisions, and the progress table does not count it as "
        "achieved. A dash: not assessed (no rate ratio, or too few negative controls).</p>"
        + table_html(
            df,
            {**_SHORT, "verdict": "Verdict", "failing": "Failed"},
            "impact-diagnostics-table",
            ("outcome", "verdict", "failing"),
            _KINDS,
        )
    )


def negative_controls(r: ImpactResult) -> list[str]:
    """The negative controls' forest plot, the empirical null, and each count outcome's
    calibrated interval beside its own."""
    rows = [
        ratio_row(
            c["label"], c.get("rate_ratio"), c.get("rate_ratio_ci_low"), c.get("rate_ratio_ci_high")
        )
        for c in r.negative_controls
    ]
    got = [x for x in rows if x is not None]
    if not got:
        return []
    null = r.empirical_null or {}
    if null.get("fitted"):
        mean, sd = null.get("mean"), null.get("sd")
        null_text = (
            f"Fitted to them, the systematic error has mean {fmt.number(mean, 3)} and standard "
            f"deviation {fmt.number(sd, 3)} on the log scale (a bias of "
            f"{fmt.signed_pct_change(_exp(mean))} on average); its expected absolute value "
            f"({abbr('EASE')}) is {fmt.number(null.get('ease'), 3)}."
        )
    else:
        null_text = (
            "There were too few of them to fit the systematic error, so no interval is calibrated."
        )
    off = [c for c in r.negative_controls if _excludes_one(c)]
    n_placebo = sum(1 for c in r.negative_controls if c.get("kind") == "placebo")
    lead = (
        f"{len(got)} negative controls: {len(got) - n_placebo} outcomes the "
        f"{r.settings.intervention.noun} cannot plausibly change and {n_placebo} placebo starts "
        "before entry, when nobody was treated. Their true rate ratio is 1, so they measure the "
        f"bias the matching left: {len(off)} of them exclude 1 at the 95% level, against about "
        "1 in 20 expected by chance."
    )
    desc = "; ".join(x.hover for x in got)
    svg = forest(got, "Negative controls (true rate ratio 1)", desc, "Change against controls")
    parts = [
        "<h3 id='impact-negative-controls'>Negative controls and calibrated intervals</h3>",
        f"<p>{html.escape(lead)} {null_text}</p>",
        figure(
            svg,
            f"{len(off)} of {len(got)} negative controls exclude no change; bars are 95% "
            "intervals (dashed line: no change).",
            "impact-negative-controls-plot",
        ),
    ]
    table = _calibrated_table(r)
    if table:
        parts.append(table)
    return parts


def _exp(v: Any) -> float | None:
    return math.exp(v) if isinstance(v, int | float) else None


def _interval(c: dict[str, Any]) -> str:
    return fmt.change_interval(c.get("rate_ratio_ci_low"), c.get("rate_ratio_ci_high"))


def _excludes_one(c: dict[str, Any]) -> bool:
    lo, hi = c.get("rate_ratio_ci_low"), c.get("rate_ratio_ci_high")
    return isinstance(lo, float) and isinstance(hi, float) and (lo > 1 or hi < 1)


def _calibrated_table(r: ImpactResult) -> str:
    titles, rows = _titles(r), []
    for name, o in r.outcomes.items():
        cal = o.get("calibrated")
        if not cal:
            continue
        e = o.get("e_value") or {}
        rows.append(
            {
                "outcome": titles.get(name, label(name)),
                "rate_ratio": o.get("rate_ratio"),
                "interval": fmt.change_interval(
                    o.get("rate_ratio_ci_low"), o.get("rate_ratio_ci_high")
                ),
                "p_value": o.get("p_value"),
                "calibrated": fmt.change_interval(
                    cal.get("rate_ratio_ci_low"), cal.get("rate_ratio_ci_high")
                ),
                "calibrated_p": cal.get("p_value"),
                "e_value": e.get("e_value"),
                "e_value_ci": e.get("e_value_ci"),
            }
        )
    if not rows:
        return ""
    df = pd.DataFrame(rows)
    df = df.astype(object).where(df.notna(), None)
    return (
        "<p>Calibrated by the negative controls (Schuemie and colleagues' empirical "
        "calibration), each interval widens and shifts by the systematic error they show. The "
        "E-value is how strongly an unmeasured confounder would have to be associated with both "
        f"the {html.escape(r.settings.intervention.noun)} and the outcome (as a rate ratio) to "
        "explain the estimate away, or to "
        "move its interval to include no change.</p>"
        + table_html(
            df,
            {
                "rate_ratio": "Rate ratio",
                "interval": "95% interval",
                "p_value": "p",
                "calibrated": "Calibrated 95% interval",
                "calibrated_p": "Calibrated p",
                "e_value": "E-value",
                "e_value_ci": "E-value of the interval",
            },
            "impact-calibrated-table",
            ("outcome", "interval", "calibrated"),
            {
                "rate_ratio": "ratio",
                "p_value": "p",
                "calibrated_p": "p",
                "e_value": "ratio",
                "e_value_ci": "ratio",
            },
        )
    )


def sensitivity(r: ImpactResult) -> list[str]:
    """The primary outcome under other designs, and its placebo test."""
    rows = r.sensitivity
    if not rows:
        return []
    primary = r.settings.primary
    count = primary.model in ("poisson", "negbin")
    table_rows = []
    for s in rows:
        est = (
            fmt.change(s.get("rate_ratio"))
            if count and s.get("estimated")
            else fmt.money(s.get("estimate"), 2)
            if s.get("estimated")
            else s.get("note") or "withheld"
        )
        table_rows.append(
            {
                "design": (
                    f"controls from {area_label(s['control_area'])} only"
                    if s.get("control_area")
                    else s["design"]
                ),
                "treated_matched": s.get("treated_matched"),
                "controls_matched": s.get("controls_matched"),
                "max_abs_smd_after": s.get("max_abs_smd_after"),
                "effect": est,
                "interval": (
                    fmt.change_interval(s.get("rate_ratio_ci_low"), s.get("rate_ratio_ci_high"))
                    if count
                    else f"{fmt.money(s.get('ci_low'), 2)} to {fmt.money(s.get('ci_high'), 2)}"
                )
                if s.get("estimated")
                else None,
            }
        )
    df = pd.DataFrame(table_rows)
    df = df.astype(object).where(df.notna(), None)
    ratios = [float(s["rate_ratio"]) for s in rows if s.get("estimated") and s.get("rate_ratio")]
    spread = (
        f" Across the {len(ratios)} designs estimated the rate ratio ran from "
        f"{fmt.ratio(min(ratios))} to {fmt.ratio(max(ratios))}."
        if count and len(ratios) > 1
        else ""
    )
    placebo = next(
        (c for c in r.negative_controls if c.get("name") == f"placebo_{primary.name}"), None
    )
    placebo_text = ""
    if placebo:
        placebo_text = (
            f" With a fake start before entry (when nobody was treated) the same contrast was "
            f"{fmt.change(placebo.get('rate_ratio'))} (95% CI "
            f"{_interval(placebo)})"
            "; a placebo far from no change would point to bias."
        )
    return [
        "<h3 id='impact-sensitivity'>Sensitivity to the design</h3>",
        f"<p>{html.escape(primary.title)} re-estimated with other choices of controls: "
        "calipers, numbers of controls, without replacement and one comparator area at a time."
        f"{html.escape(spread)}{html.escape(placebo_text)}</p>",
        table_html(
            df,
            {
                "design": "Design",
                "treated_matched": "Treated matched",
                "controls_matched": "Controls matched",
                "max_abs_smd_after": "Largest SMD after",
                "effect": "Change",
                "interval": "95% interval",
            },
            "impact-sensitivity-table",
            ("design", "effect", "interval"),
            {"max_abs_smd_after": "number"},
        ),
    ]
