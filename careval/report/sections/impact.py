"""The matched-control results section of the report."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from careval.impact.balance import SMD_THRESHOLD
from careval.impact.settings import with_article
from careval.impact.study import ImpactResult
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    fmt_count,
    svg,
    table_html,
)

EXACT_LABELS = {"entry_month": "month of entry", "female": "sex", "age_band": "age band"}


def _r3(v: object) -> float | None:
    return round(float(v), 3) if isinstance(v, int | float) else None


def _titles(r: ImpactResult) -> dict[str, str]:
    """Each outcome's name on the page (its settings' label)."""
    return {o.name: o.title for o in r.settings.outcomes}


def _effect_table(r: ImpactResult) -> pd.DataFrame:
    rows, titles = [], _titles(r)
    for name, o in r.outcomes.items():
        ratio = o["model"] == "poisson"
        est = o["rate_ratio"] if ratio else o["estimate"]
        lo = o["rate_ratio_ci_low"] if ratio else o["ci_low"]
        hi = o["rate_ratio_ci_high"] if ratio else o["ci_high"]
        rows.append(
            {
                "outcome": titles.get(name, name),
                "measure": "rate ratio" if ratio else "difference",
                "estimate": round(est, 3),
                "ci_low": round(lo, 3),
                "ci_high": round(hi, 3),
                "p_value": round(o["p_value"], 4),
                "mean_before_treated": round(o["mean_treated_before"], 4),
            }
        )
    return pd.DataFrame(rows)


def _monthly_chart(r: ImpactResult) -> str:
    m, iv = r.monthly_means, r.settings.intervention
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.plot(m.k, 1000 * m.treated, marker="o", ms=3, lw=2, label=iv.treated)
    ax.plot(m.k, 1000 * m.matched_controls, marker="o", ms=3, lw=1.5, label="matched controls")
    ax.axvline(-0.5, color="grey", lw=1, ls="--")
    ax.axvspan(-0.5, r.settings.effect_from_month - 0.5, color="grey", alpha=0.12)
    ax.set_xlabel(f"months since the {iv.label} (0 = the {iv.noun}'s month)")
    ax.set_ylabel("per 1,000 a month")
    title = f"{r.settings.primary.title} around the {iv.label}"
    ax.set_title(title, fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg(fig)


def _event_chart(r: ImpactResult) -> str:
    e, iv = r.event_study, r.settings.intervention
    if "rate_ratio" not in e:
        return ""
    mid = (e.from_month + e.to_month) / 2
    fig, ax = plt.subplots(figsize=(8, 3.0))
    ax.errorbar(
        mid,
        e.rate_ratio,
        yerr=[e.rate_ratio - e.rate_ratio_ci_low, e.rate_ratio_ci_high - e.rate_ratio],
        fmt="o",
        capsize=3,
    )
    ax.axhline(1, color="grey", lw=1)
    if r.truth_rate_ratio is not None:
        ax.axhline(r.truth_rate_ratio, color="tab:green", lw=1, ls=":", label="true effect")
        ax.legend(frameon=False, fontsize=8)
    ax.axvline(-0.5, color="grey", lw=1, ls="--")
    ax.set_xlabel(f"months since the {iv.label} (bins; reference: the bin before the {iv.noun})")
    ax.set_ylabel("rate ratio")
    ax.set_title(f"Event study: {iv.treated} against matched controls", fontsize=11, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg(fig)


def _love_plot(r: ImpactResult) -> str:
    b = r.balance.iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.22 * len(b))))
    y = np.arange(len(b))
    ax.scatter(
        b.smd_before.abs(), y, marker="o", facecolors="none", edgecolors="tab:red", label="before"
    )
    ax.scatter(b.smd_after.abs(), y, marker="o", color="tab:blue", label="after")
    ax.axvline(SMD_THRESHOLD, color="grey", ls="--", lw=1)
    ax.set_yticks(y, [c.replace("_", " ") for c in b.covariate], fontsize=7)
    ax.set_xlabel("absolute standardised mean difference")
    ax.set_title("Balance (love plot)", fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg(fig)


def _overlap_chart(r: ImpactResult) -> str:
    o = r.score_overlap.dropna(subset=["score"])
    if o.empty:
        return ""
    p = np.clip(o.score.to_numpy(), 1e-9, 1 - 1e-9)
    lp = np.log(p / (1 - p))
    bins = np.linspace(lp.min(), lp.max(), 40).tolist()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    t = o.treated.to_numpy() == 1
    ax.hist(lp[~t], bins=bins, density=True, alpha=0.5, label="potential controls")
    ax.hist(
        lp[~t & o.matched.to_numpy()],
        bins=bins,
        density=True,
        histtype="step",
        lw=1.5,
        label="matched controls",
    )
    ax.hist(lp[t], bins=bins, density=True, alpha=0.5, label=r.settings.intervention.treated)
    ax.set_xlabel("logit of the propensity score")
    ax.set_title("Score overlap", fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return svg(fig)


def section(r: ImpactResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """Balance, the Figure 2-style monthly plot, the impact table and the naive contrast."""
    a, f = r.attrition, r.follow_up
    e = r.outcomes.get("emergency_admissions")
    st = r.settings
    iv = st.intervention
    label, noun, treated = (html.escape(x) for x in (iv.label, iv.noun, iv.treated))
    parts = [
        f"<p>Each person with {with_article(label)} enters the study in the month of their "
        f"first {noun}. "
        "Potential controls are eligible people in "
        f"{' and '.join(html.escape(area_label(a)) for a in st.control_areas)}"
        " alive and registered at the start of the same month, with their history taken then. "
        f"Matching: exact on {', '.join(EXACT_LABELS.get(x, x) for x in st.match.exact)}, "
        "then up to "
        f"{st.match.ratio} nearest neighbours on the logit of a propensity score (caliper "
        f"{st.match.caliper} SD, {'with' if st.match.replace else 'without'} replacement). "
        f"<b>{fmt_count(a['treated_matched'])}</b> of "
        f"{fmt_count(a['treated_alive_and_registered_at_entry'])} "
        f"{treated} people were matched to <b>{fmt_count(a['controls_matched'])}</b> "
        f"controls; {fmt_count(a['unmatched_outside_caliper'])} had no control within the "
        f"caliper and {fmt_count(a['unmatched_no_control_in_stratum'])} none in their exact "
        "stratum. Entry ran "
        f"from {f['first_entry']} to {f['last_entry']}; median follow-up "
        f"{f['median_months']:.0f} months (range {f['min_months']:.0f} to "
        f"{f['max_months']:.0f}).</p>"
    ]
    if e is not None:
        truth = (
            f" The true effect built into these synthetic data is a rate ratio of "
            f"{r.truth_rate_ratio:.2f}; the interval "
            f"{'covers' if e['rate_ratio_ci_low'] <= r.truth_rate_ratio <= e['rate_ratio_ci_high'] else 'does not cover'} it."  # noqa: E501
            if r.truth_rate_ratio is not None
            else ""
        )
        n = r.naive
        clustered = "the matched set and the person (controls are shared between sets)"
        parts.append(
            "<p>Difference-in-differences on the matched panel (unit and calendar-month fixed "
            f"effects, Poisson, standard errors clustered on {clustered}): from month "
            f"{st.effect_from_month} after the {noun}, emergency admissions changed by a rate "
            f"ratio of <b id='impact-rr'>{e['rate_ratio']:.3f}</b> (95% CI "
            f"{e['rate_ratio_ci_low']:.3f} to {e['rate_ratio_ci_high']:.3f}, p = "
            f"{e['p_value']:.3g}).{html.escape(truth)}</p>"
            f"<p>The naive before-after comparison of the {treated} alone gives a rate ratio "
            f"of <b id='impact-naive-rr'>{n['rate_ratio']:.3f}</b> (95% CI "
            f"{n['rate_ratio_ci_low']:.3f} to {n['rate_ratio_ci_high']:.3f}). People are often "
            f"given {with_article(noun)} just after a spell of high use, which would have "
            "fallen anyway (regression to the mean); the matched controls, chosen with the "
            f"same recent history, fall too, and only the difference is credited to the {noun}."
            "</p>"
        )
    parts += [
        "<figure>" + _monthly_chart(r) + "</figure>",
        "<h3>Impact by outcome</h3>",
        table_html(
            _effect_table(r),
            {"ci_low": "95% CI low", "ci_high": "95% CI high", "p_value": "p"},
            "impact-table",
            ("outcome", "measure"),
        ),
        "<p class='note'>Rate ratios for counts (Poisson), differences in pounds a "
        f"person-month for costs (linear), from month {st.effect_from_month} after the {noun}; "
        f"months 0 to {st.effect_from_month - 1} are estimated separately as an implementation "
        "period.</p>",
    ]
    if r.skipped_outcomes:
        titles = _titles(r)
        parts.append(
            "<p class='note' id='impact-skipped-outcomes'>Not estimated: "
            + "; ".join(
                f"{html.escape(titles.get(name, name))} ({html.escape(why)})"
                for name, why in r.skipped_outcomes.items()
            )
            + ". The other outcomes are estimated as above.</p>"
        )
    if r.horizons:
        h = pd.DataFrame(
            [
                {
                    "follow_up_months": x["horizon_months"],
                    "rate_ratio": _r3(x.get("rate_ratio")),
                    "ci_low": _r3(x.get("rate_ratio_ci_low")),
                    "ci_high": _r3(x.get("rate_ratio_ci_high")),
                    "treated_with_full_follow_up": x["treated_with_full_horizon"],
                }
                for x in r.horizons
            ]
        )
        parts += [
            "<h3>By length of follow-up</h3>",
            f"<p>The average effect over the first 3, 6, 12 and 24 months after the {noun}"
            + (" (the seed evaluation had about three)" if ctx.seed_shaped else "")
            + ".</p>",
            table_html(h, {"ci_low": "95% CI low", "ci_high": "95% CI high"}, "impact-horizons"),
        ]
    parts += [
        "<figure>" + _event_chart(r) + "</figure>",
        "<h3>Balance</h3>",
        "<figure>" + _love_plot(r) + "</figure>",
        "<figure>" + _overlap_chart(r) + "</figure>",
        table_html(
            r.balance[
                [
                    "covariate",
                    "mean_treated",
                    "mean_control_before",
                    "smd_before",
                    "mean_control_after",
                    "smd_after",
                    "imbalanced_after",
                ]
            ].round(4),
            {
                "smd_before": "SMD before",
                "smd_after": "SMD after",
                "imbalanced_after": f"|SMD| > {SMD_THRESHOLD}",
            },
            "impact-balance",
            ("covariate",),
        ),
    ]
    return Section("impact", "Matched-control results", "".join(parts))
