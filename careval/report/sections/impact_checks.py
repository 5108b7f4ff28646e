"""The matched study's checks: the event study (parallel paths before entry), the overlap of
the propensity score and the balance of the matched sample (love plot and table)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from careval.impact.balance import SMD_THRESHOLD
from careval.impact.study import ImpactResult
from careval.report import format as fmt
from careval.report.charts import GREY, PALETTE, figure, hover_points, svg_document, tidy
from careval.report.glossary import label
from careval.report.page import table_html
from careval.report.sections.impact_charts import love_plot


def event_chart(r: ImpactResult) -> str:
    e, iv = r.event_study, r.settings.intervention
    if "rate_ratio" not in e or e.empty:
        return ""
    mid = ((e.from_month + e.to_month) / 2).to_numpy(float)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.vlines(mid, e.rate_ratio_ci_low, e.rate_ratio_ci_high, color=PALETTE[0], lw=2)
    texts = [
        f"months {int(a)}–{int(b)}: {fmt.change(v)} ({fmt.change_interval(lo, hi)})"
        for a, b, v, lo, hi in zip(
            e.from_month,
            e.to_month,
            e.rate_ratio,
            e.rate_ratio_ci_low,
            e.rate_ratio_ci_high,
            strict=True,
        )
    ]
    hover_points(ax, mid, e.rate_ratio, texts, color=PALETTE[0], ms=6)
    ax.axhline(1, color=GREY, lw=1)
    if r.truth_rate_ratio is not None:
        ax.axhline(r.truth_rate_ratio, color=PALETTE[2], lw=1.2, ls=":", label="planted effect")
        ax.legend(frameon=False, fontsize=9)
    ax.axvline(-0.5, color=GREY, lw=1, ls="--")
    ax.set_xlabel(f"months since the {iv.label} (bins; reference: the bin before entry)")
    ax.set_ylabel("rate ratio")
    title = f"Event study: {iv.treated} against matched controls"
    ax.set_title(title, fontsize=11, loc="left")
    tidy(ax)
    svg = svg_document(fig, title, "; ".join(texts))
    return figure(
        svg,
        "The contrast by months since entry: before entry the bins sit near "
        "no change (parallel paths), after it they show how the effect builds.",
        "impact-event-study",
    )


def overlap_chart(r: ImpactResult) -> str:
    o = r.score_overlap.dropna(subset=["score"])
    if o.empty:
        return ""
    p = np.clip(o.score.to_numpy(), 1e-9, 1 - 1e-9)
    # Rounded, so that the last digits of a refit (threads, BLAS) move no value across a bin
    # edge: the same data, the same chart in every run.
    lp = np.round(np.log(p / (1 - p)), 6)
    lo, hi = np.floor(lp.min() * 1e4) / 1e4, np.ceil(lp.max() * 1e4) / 1e4
    bins = np.linspace(lo, hi, 40).tolist()
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    t = o.treated.to_numpy() == 1
    treated = r.settings.intervention.treated
    ax.hist(lp[~t], bins=bins, density=True, alpha=0.45, color=GREY, label="potential controls")
    ax.hist(
        lp[~t & o.matched.to_numpy()],
        bins=bins,
        density=True,
        histtype="step",
        lw=1.5,
        color=PALETTE[1],
        label="matched controls",
    )
    ax.hist(lp[t], bins=bins, density=True, alpha=0.5, color=PALETTE[0], label=treated)
    ax.set_xlabel("logit of the propensity score")
    title = "Overlap of the propensity score"
    ax.set_title(title, fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=9)
    tidy(ax)
    svg = svg_document(
        fig,
        title,
        f"Distributions of the score among the {treated}, the "
        "potential controls and the matched controls.",
    )
    return figure(
        svg, f"The matched controls' scores cover the {treated}'s range.", "impact-overlap"
    )


def balance(r: ImpactResult) -> list[str]:
    b = r.balance
    if b is None or not len(b):
        return []
    worst = b.smd_after.abs().max()
    desc = "; ".join(
        f"{label(c)}: {fmt.number(abs(x), 3)} before, {fmt.number(abs(y), 3)} after"
        for c, x, y in zip(b.covariate, b.smd_before, b.smd_after, strict=True)
    )
    svg = love_plot(b, "Balance of the matched sample (love plot)", desc)
    table = b[
        [
            "covariate",
            "mean_treated",
            "mean_control_before",
            "smd_before",
            "mean_control_after",
            "smd_after",
            "imbalanced_after",
        ]
    ].copy()
    table["covariate"] = [label(c) for c in table.covariate]
    table["imbalanced_after"] = ["yes" if v else "no" for v in table.imbalanced_after]
    return [
        "<h3>Balance</h3>",
        figure(
            svg,
            f"After matching every covariate's absolute {'standardised'} difference is "
            f"at most {fmt.number(worst, 3)} (dashed line: {fmt.number(SMD_THRESHOLD, 1)}, "
            "the usual mark of balance); sorted by the difference before matching.",
            "impact-love",
        ),
        overlap_chart(r),
        table_html(
            table,
            {
                "covariate": "Covariate",
                "mean_treated": "Mean, treated",
                "mean_control_before": "Mean, controls before matching",
                "smd_before": "SMD before",
                "mean_control_after": "Mean, controls after matching",
                "smd_after": "SMD after",
                "imbalanced_after": f"|SMD| above {fmt.number(SMD_THRESHOLD, 1)}",
            },
            "impact-balance",
            ("covariate", "imbalanced_after"),
        ),
    ]
