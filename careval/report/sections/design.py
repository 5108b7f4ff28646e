"""The study design and power section of the report."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd

from careval.design.power import DesignResult
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, fmt_count, svg, table_html


def _chart(d: DesignResult) -> str:
    t = pd.DataFrame(d.rows)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.plot(t.followup_months, t.mde_rate_ratio, marker="o", lw=2, label="analytic")
    a1.plot(t.followup_months, t.sim_mde_rate_ratio, marker="s", lw=1, ls="--", label="simulation")
    a1.axhline(
        1 + d.settings.effect,
        color="tab:green",
        lw=1,
        ls=":",
        label=f"planned effect ({1 + d.settings.effect:.2f})",
    )
    a1.set_xlabel("months of follow-up")
    a1.set_ylabel("smallest detectable rate ratio")
    a1.set_title("Minimum detectable effect", fontsize=11, loc="left")
    a1.legend(frameon=False, fontsize=8)
    a2.plot(t.followup_months, t.power_at_effect, marker="o", lw=2, label="analytic")
    a2.plot(t.followup_months, t.sim_power_at_effect, marker="s", lw=1, ls="--", label="simulation")
    a2.axhline(d.settings.power, color="grey", lw=1, ls=":")
    a2.set_ylim(0, 1)
    a2.set_xlabel("months of follow-up")
    a2.set_ylabel("power")
    a2.set_title(f"Power for a rate ratio of {1 + d.settings.effect:.2f}", fontsize=11, loc="left")
    for ax in (a1, a2):
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    return svg(fig)


def section(d: DesignResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """Power curve, the table and a plain-language paragraph (with the seed evaluation's power
    beside it on seed-shaped data)."""
    st = d.settings
    rows = d.rows
    three = next((r for r in rows if r["followup_months"] == 3), rows[0] if rows else None)
    longest = rows[-1] if rows else None
    parts = []
    if three is not None and longest is not None:
        needed = (
            f"A fall of {100 * -st.effect:.0f}% would be detected with {100 * st.power:.0f}% "
            f"power after about <b id='design-needed'>{d.followup_needed_months}</b> months."
            if d.followup_needed_months
            else f"A fall of {100 * -st.effect:.0f}% could not be detected with "
            f"{100 * st.power:.0f}% power within the follow-up these data allow."
        )
        parts.append(
            f"<p>With {fmt_count(d.enrolled)} care-planned people, each matched to {st.ratio} "
            "controls"
            + (
                ""
                if d.baseline_rate_per_person_year is None
                else ", and their emergency admission rate of "
                f"{d.baseline_rate_per_person_year:.2f} a person-year"
            )
            + f", a matched study with {three['followup_months']} months of follow-up "
            f"could only detect a rate ratio of <b id='design-mde-3'>"
            f"{three['mde_rate_ratio']:.2f}</b> or below (a fall of "
            f"{100 * (1 - three['mde_rate_ratio']):.0f}%) with {100 * st.power:.0f}% power at "
            f"the {100 * st.alpha:.0f}% level; with {longest['followup_months']} months, "
            f"{longest['mde_rate_ratio']:.2f}. {needed} The untreated histories come from "
            f"{html.escape(d.source)}; the analytic answer and a simulation that injects the "
            "effect into resampled histories and runs the study's estimator agree as the "
            "table shows.</p>"
        )
    parts.append("<figure>" + _chart(d) + "</figure>")
    table = pd.DataFrame(
        [
            {
                "followup_months": r["followup_months"],
                "mde_rate_ratio": round(r["mde_rate_ratio"], 3),
                "sim_mde_rate_ratio": round(r["sim_mde_rate_ratio"], 3),
                "power_at_effect": round(r["power_at_effect"], 3),
                "sim_power_at_effect": round(r["sim_power_at_effect"], 3),
                "sim_coverage": round(r["sim_coverage"], 3),
            }
            for r in rows
        ]
    )
    parts.append(
        table_html(
            table,
            {
                "mde_rate_ratio": "MDE (analytic)",
                "sim_mde_rate_ratio": "MDE (simulation)",
                "power_at_effect": "power (analytic)",
                "sim_power_at_effect": "power (simulation)",
                "sim_coverage": "95% CI coverage (simulation)",
            },
            "design-table",
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
