"""The study design and power section of the report.

The minimum detectable effect (MDE) is shown as the smallest *fall* in emergency admissions the
study would detect, in percent: the line falls as follow-up lengthens, and lower is better. The
planned fall is marked on the chart, and the text says at each follow-up whether the study is
powered for it. A power chart that would be flat at 100% carries no information and is replaced
by a sentence.
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from careval.design.power import DesignResult
from careval.report import format as fmt
from careval.report.charts import PALETTE, figure, hover_points, tidy
from careval.report.glossary import abbr
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, svg, table_html

FLAT = 0.99  # power above this at every follow-up: said in words, not charted


def _fall(rr: Any) -> float | None:
    """A rate ratio as the percentage fall it is (0.93 → 7.0); None when withheld."""
    return None if rr is None or pd.isna(rr) else 100 * (1 - float(rr))


def _powered(row: dict[str, Any], planned_rr: float) -> bool | None:
    """Whether the study detects the planned effect at this follow-up: its smallest detectable
    fall is no larger than the planned fall (the MDE's rate ratio at or above the planned)."""
    mde = row.get("mde_rate_ratio")
    return None if mde is None or pd.isna(mde) else bool(mde >= planned_rr - 1e-12)


def _mde_chart(t: pd.DataFrame, planned_fall: float) -> str:
    """The smallest detectable fall by months of follow-up (lower is better), planned marked."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    x = t["followup_months"].tolist()
    series = (
        ("analytic", "Analytic", PALETTE[0], "o", "-"),
        ("simulation", "Simulation", PALETTE[1], "s", "--"),
    )
    for col, name, colour, marker, ls in series:
        ys = t[col].tolist()
        ax.plot(x, ys, color=colour, lw=2 if col == "analytic" else 1.4, ls=ls, label=name)
        hover_points(
            ax,
            x,
            ys,
            [
                f"{name}, {m} months: a fall of {fmt.number(y, 1)}%"
                for m, y in zip(x, ys, strict=True)
            ],
            color=colour,
            marker=marker,
        )
    ax.axhline(planned_fall, color=PALETTE[2], lw=1.6, ls=":")
    ax.text(
        max(x),
        planned_fall,
        f" planned fall {fmt.number(planned_fall, 0)}%",
        color="#00664a",
        va="bottom",
        ha="right",
        fontsize=9,
    )
    top = max([planned_fall, *t["analytic"].dropna(), *t["simulation"].dropna()]) * 1.15
    ax.set_ylim(0, top)
    ax.axhspan(0, planned_fall, color=PALETTE[2], alpha=0.08, lw=0)
    ax.text(
        min(x), planned_fall / 2, " below the line: powered for the planned fall",
        color="#00664a", va="center", fontsize=9,
    )  # fmt: skip
    ax.set_xticks(x)
    ax.set_xlabel("Months of follow-up")
    ax.set_ylabel("Smallest fall detectable (%)\nlower is better")
    ax.set_title("Smallest fall in emergency admissions the study can detect", loc="left")
    tidy(ax)
    ax.legend(frameon=False, fontsize=9, loc="upper right")
    desc = "; ".join(
        f"{m} months: {fmt.number(a, 1)}% (simulation {fmt.number(s, 1)}%)"
        for m, a, s in zip(x, t["analytic"], t["simulation"], strict=True)
    )
    return svg(
        fig,
        "Smallest fall in emergency admissions detectable, by months of follow-up",
        f"Smallest fall detectable with the planned power; the planned fall is "
        f"{fmt.number(planned_fall, 0)}% (below its line the study is powered for it). {desc}.",
    )


def _power_chart(t: pd.DataFrame, planned_fall: float, power: float) -> str:
    """Power for the planned effect by months of follow-up (higher is better)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    x = t["followup_months"].tolist()
    for col, name, colour, ls in (
        ("power_at_effect", "Analytic", PALETTE[0], "-"),
        ("sim_power_at_effect", "Simulation", PALETTE[1], "--"),
    ):
        ys = (100 * t[col].astype(float)).tolist()
        ax.plot(x, ys, color=colour, ls=ls, lw=2, label=name)
        hover_points(
            ax,
            x,
            ys,
            [f"{name}, {m} months: {fmt.number(y, 0)}%" for m, y in zip(x, ys, strict=True)],
            color=colour,
        )
    ax.axhline(100 * power, color=GREY_LINE, lw=1, ls=":")
    ax.text(min(x), 100 * power, f"planned power {100 * power:.0f}%", va="bottom", fontsize=9)
    ax.set_ylim(0, 100)
    ax.set_xticks(x)
    ax.set_xlabel("Months of follow-up")
    ax.set_ylabel("Power (%), higher is better")
    title = f"Power to detect the planned fall of {fmt.number(planned_fall, 0)}%"
    ax.set_title(title, loc="left")
    tidy(ax)
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    desc = "; ".join(
        f"{m} months: {fmt.pct(p, 0)}" for m, p in zip(x, t["power_at_effect"], strict=True)
    )
    return svg(fig, title + ", by months of follow-up", f"Analytic power: {desc}.")


GREY_LINE = "#6b7785"


def _verdict(rows: list[dict[str, Any]], planned_rr: float, planned_fall: float) -> str:
    """In words: at which follow-ups the study is powered for the planned fall."""
    ok = [r["followup_months"] for r in rows if _powered(r, planned_rr)]
    fall = f"the planned fall of {fmt.number(planned_fall, 0)}%"
    if len(ok) == len(rows):
        return f"The study is powered for {fall} at every follow-up modelled."
    if not ok:
        return (
            f"The study is not powered for {fall} at any follow-up modelled: a confidence "
            "interval that includes no change means &lsquo;too early to tell&rsquo;, not "
            "&lsquo;no effect&rsquo;."
        )
    return (
        f"The study is powered for {fall} from {fmt.months(min(ok))} of follow-up; with less, "
        "an interval that includes no change means &lsquo;too early to tell&rsquo;."
    )


def section(d: DesignResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """What the study can detect at each follow-up, in words, a chart and a table (with the
    seed evaluation's power beside it on seed-shaped data)."""
    st = d.settings
    rows = d.rows
    planned_rr, planned_fall = 1 + st.effect, -100 * st.effect
    power_pct = f"{100 * st.power:.0f}%"
    parts = []
    t = pd.DataFrame(
        {
            "followup_months": [r["followup_months"] for r in rows],
            "analytic": [_fall(r["mde_rate_ratio"]) for r in rows],
            "simulation": [_fall(r["sim_mde_rate_ratio"]) for r in rows],
            "power_at_effect": [r["power_at_effect"] for r in rows],
            "sim_power_at_effect": [r["sim_power_at_effect"] for r in rows],
            "sim_coverage": [r["sim_coverage"] for r in rows],
            "powered": [
                {True: "yes", False: "no", None: "\u2013"}[_powered(r, planned_rr)] for r in rows
            ],
        }
    )
    if rows:
        rate = (
            ""
            if d.baseline_rate_per_person_year is None
            else ", whose emergency admission rate was "
            f"{fmt.number(d.baseline_rate_per_person_year, 2)} a person-year"
        )
        each = "; ".join(
            f"after {fmt.months(r['followup_months'])}, a fall of "
            + (
                f"<b id='design-mde-{r['followup_months']}'>{fmt.number(f, 0)}%</b>"
                if f is not None
                else "(withheld)"
            )
            + " or more"
            for r, f in zip(rows, t["analytic"], strict=True)
        )
        parts.append(
            f"<p>The study was planned to detect a fall of {fmt.number(planned_fall, 0)}% in "
            f"emergency admissions (a rate ratio of {fmt.ratio(planned_rr)}) with "
            f"{power_pct} power at the {100 * st.alpha:.0f}% significance level. With "
            f"{fmt_count(d.enrolled)} care-planned people, each matched to {st.ratio} controls"
            f"{rate}, the smallest fall it would detect with {power_pct} power (the minimum "
            f"detectable effect, {abbr('MDE')}) is: {each}. A smaller detectable fall is better. "
            f"{_verdict(rows, planned_rr, planned_fall)}"
            + (
                f" A fall of {fmt.number(planned_fall, 0)}% would be detected with {power_pct} "
                f"power after about <b id='design-needed'>{d.followup_needed_months}</b> months."
                if d.followup_needed_months
                else ""
            )
            + f" The untreated histories come from {html.escape(d.source)}; the analytic answer "
            "and a simulation that injects the effect into resampled histories and runs the "
            "study's estimator agree as the table shows.</p>"
        )
        best = t.dropna(subset=["analytic"])
        if len(best):
            last = best.iloc[-1]
            caption = (
                f"With {fmt.months(last.followup_months)} of follow-up the study can detect a "
                f"fall of {fmt.number(last.analytic, 0)}% or more; the planned fall is "
                f"{fmt.number(planned_fall, 0)}%, so it is "
                + ("powered" if last.analytic <= planned_fall + 1e-9 else "not powered")
                + " for it then."
            )
            parts.append(figure(_mde_chart(best, planned_fall), caption, "design-mde"))
        powers = pd.concat([t["power_at_effect"], t["sim_power_at_effect"]]).dropna()
        if len(powers) and (powers > FLAT).all():
            parts.append(
                f"<p>Power for the planned fall of {fmt.number(planned_fall, 0)}% is above 99% "
                "at every follow-up (analytic and simulated), so it is not charted.</p>"
            )
        elif len(powers):
            last = t.dropna(subset=["power_at_effect"]).iloc[-1]
            caption = (
                f"Power to detect the planned fall reaches {fmt.pct(last.power_at_effect, 0)} "
                f"with {fmt.months(last.followup_months)} of follow-up, against the "
                f"{power_pct} planned."
            )
            parts.append(figure(_power_chart(t, planned_fall, st.power), caption, "design-power"))
    fall_label = f"Power for a {fmt.number(planned_fall, 0)}% fall"
    parts.append(
        table_html(
            t,
            {
                "followup_months": "Months of follow-up",
                "analytic": "Smallest fall detectable (analytic)",
                "simulation": "Smallest fall detectable (simulation)",
                "power_at_effect": f"{fall_label} (analytic)",
                "sim_power_at_effect": f"{fall_label} (simulation)",
                "sim_coverage": "95% CI coverage (simulation)",
                "powered": "Powered for the planned fall",
            },
            "design-table",
            text_columns=("powered",),
            kinds={
                "followup_months": "count",
                "analytic": "percent",
                "simulation": "percent",
                "power_at_effect": "share",
                "sim_power_at_effect": "share",
                "sim_coverage": "share",
            },
        )
    )
    if ctx.seed_shaped:
        parts.append(
            "<p class='note'>The seed evaluation matched 1,236 people to 5 controls each, with "
            "about three months of follow-up and 0.44 emergency admissions a person-year: even "
            "with pure Poisson variation it could detect only falls of about 25% or more "
            "(docs/design.md works it through).</p>"
        )
    return Section("design", "Study design and power", "".join(parts))
