"""The report's targeting and risk section: validation, calibration, yield, subgroups, models."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, plt, svg, table_html
from careval.report.publish.rules import suppressed_range
from careval.risk.evaluate import RiskResult
from careval.risk.metrics import SUBGROUP_SHARES, share_tag


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def section(result: RiskResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The report's targeting and risk section, from the result as given (the published copy
    on real data)."""
    f = result.figures
    oracle = (
        f" The best possible AUC, from the true probabilities the synthetic data were made "
        f"with, is {f['oracle_auc']:.3f}: the model reaches "
        f"{100 * f['auc_ratio_to_oracle']:.0f}% of it."
        if "oracle_auc" in f
        else ""
    )
    st = result.settings
    text = (
        f"<p>A logistic model of an emergency admission in the next 12 months, trained on "
        f"everyone registered on {st.train_date:%d %B %Y} and validated on everyone registered "
        f"on {st.validate_date:%d %B %Y} (temporal validation): AUC <b id='risk-auc'>"
        f"{f['auc']:.3f}</b> (95% CI {f['auc_ci_low']:.3f} to {f['auc_ci_high']:.3f}), "
        f"calibration slope {f['calibration_slope']:.2f}, intercept "
        f"{f['calibration_intercept']:.2f}, Brier score {f['brier']:.4f}.{html.escape(oracle)}</p>"
    )
    yield_rows = pd.DataFrame(
        [
            {
                "flagged": f"top {s}%",
                "ppv": f[f"ppv_top_{s.replace('.', '_')}pct"],
                "sensitivity": f[f"sensitivity_top_{s.replace('.', '_')}pct"],
            }
            for s in ("0.5", "1", "2", "5")
        ]
    )
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    cal = result.calibration_deciles
    top = float(max(cal.predicted.max(), cal.observed.max()) * 1.05)
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    ax.plot(cal.predicted, cal.observed, marker="o", lw=2)
    ax.set_xlabel("predicted (decile mean)")
    ax.set_ylabel("observed share admitted")
    ax.set_title("Calibration at validation", fontsize=11, loc="left")
    parts = [
        text,
        "<figure>" + svg(fig) + "</figure>",
        "<h3>Case-finding yield</h3>",
        table_html(yield_rows, {"ppv": "PPV", "flagged": "Flagged"}, "risk-yield", ("flagged",)),
    ]
    if len(result.targeting):
        parts += [
            "<h3>Targeting: who got care plans</h3>",
            table_html(
                result.targeting,
                {"emergency_per_person_year_prior": "emergency admissions, prior 12 months"},
                "risk-targeting",
                ("group",),
            ),
            _targeting_note(result, ctx.seed_shaped),
        ]
    parts += _subgroup_parts(result, ctx)
    parts += _comparison_parts(result)
    parts += [
        "<h3>Published coefficients (standardised inputs)</h3>",
        table_html(result.coefficients, {}, "risk-coefficients", ("term",)),
    ]
    return Section("risk", "Targeting and risk", "".join(parts))


def _targeting_note(result: RiskResult, seed_shaped: bool) -> str:
    """The care-planned's prior admission rate against everyone's: beside the seed's figures
    on seed-shaped data, as a ratio of this run's own figures otherwise (none when withheld)."""
    if seed_shaped:
        return (
            "<p class='note'>The seed evaluation found 0.44 emergency admissions a "
            "person-year among the care-planned against 0.11 in the population, where "
            "schemes elsewhere targeted rates 16 times the population's.</p>"
        )
    rates = dict(
        zip(result.targeting.group, result.targeting.emergency_per_person_year_prior, strict=True)
    )
    planned, everyone = rates.get("care-planned"), rates.get("everyone")
    if planned is None or everyone is None or _missing(planned) or not everyone > 0:
        return ""  # a rate withheld (or none to compare with)
    return (
        f"<p class='note'>In the 12 months before, the care-planned had {planned:.2f} "
        f"emergency admissions a person-year against {everyone:.2f} among everyone scored: "
        f"{planned / everyone:.1f} times the population's rate.</p>"
    )


def _ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str | None:
    if _missing(est):
        return None
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def _subgroup_parts(result: RiskResult, ctx: PageContext) -> list[str]:
    df = result.by_subgroup
    if df.empty:
        return []
    names = [g if d != "age" else f"aged {g}" for d, g in zip(df.dimension, df.group, strict=True)]
    show = pd.DataFrame(
        {
            "group": names,
            "people": df.people,
            "events": df.events,
            "auc": [_ci(*r) for r in zip(df.auc, df.auc_ci_low, df.auc_ci_high, strict=True)],
            "calibration_slope": df.calibration_slope,
            "calibration_intercept": df.calibration_intercept,
            "brier": df.brier,
        }
    )
    for s in SUBGROUP_SHARES:
        tag = share_tag(s)
        show[f"flagged_top_{tag}pct"] = df[f"flagged_top_{tag}pct"]
        show[f"ppv_top_{tag}pct"] = df[f"ppv_top_{tag}pct"]
        show[f"sensitivity_top_{tag}pct"] = df[f"sensitivity_top_{tag}pct"]
    labels = {"auc": "AUC (95% CI)", "events": "admitted in 12 months"}
    for s in SUBGROUP_SHARES:
        tag, pct = share_tag(s), f"{s * 100:g}%"
        labels[f"flagged_top_{tag}pct"] = f"in top {pct}"
        labels[f"ppv_top_{tag}pct"] = f"PPV top {pct}"
        labels[f"sensitivity_top_{tag}pct"] = f"sensitivity top {pct}"
    return [
        "<h3>By age band and sex</h3>",
        table_html(show, labels, "risk-subgroups", ("group", "auc")),
        "<p class='note'>The top 1% and 5% are of everyone scored: one list for the whole "
        "population, as the programme would use it. Within each group, <i>in top</i> counts "
        "its people on that list, PPV is the share of them admitted in the 12 months, and "
        "sensitivity the share of the group's admitted people who are on the list. AUC, "
        "calibration and Brier score are of the group alone: within a narrow age band age "
        "itself no longer separates people, so its AUC measures the rest of the model."
        + (
            f" Counts are rounded to {ctx.disclosure.rounding_base}, "
            f"{suppressed_range(ctx.disclosure, ' to ')} suppressed."
            if result.disclosure_control
            else ""
        )
        + "</p>",
    ]


def _comparison_parts(result: RiskResult) -> list[str]:
    g, f = result.lightgbm, result.figures
    if not g:
        return []
    rows = []
    for name, fig in (("logistic (published)", f), ("LightGBM", g)):
        rows.append(
            {
                "model": name,
                "auc": _ci(fig["auc"], fig["auc_ci_low"], fig["auc_ci_high"]),
                "calibration_slope": fig["calibration_slope"],
                "calibration_intercept": fig["calibration_intercept"],
                "brier": fig["brier"],
                "ppv_top_1pct": fig["ppv_top_1pct"],
                "ppv_top_5pct": fig["ppv_top_5pct"],
                "sensitivity_top_5pct": fig["sensitivity_top_5pct"],
            }
        )
    labels = {
        "auc": "AUC (95% CI)",
        "ppv_top_1pct": "PPV top 1%",
        "ppv_top_5pct": "PPV top 5%",
        "sensitivity_top_5pct": "sensitivity top 5%",
    }
    text = (
        f"<p>Gradient-boosted trees (LightGBM, {g['params']['n_estimators']} trees) on the same "
        f"training people and inputs, validated on the same people: AUC difference "
        f"{g['auc_difference']:+.3f} (95% CI {g['auc_difference_ci_low']:+.3f} to "
        f"{g['auc_difference_ci_high']:+.3f}, paired DeLong p = {g['auc_difference_p']:.2g}). "
        "The logistic model stays the published one: each of its coefficients can be read, "
        "checked and explained to the people it flags.</p>"
    )
    return [
        "<h3>Logistic against gradient boosting</h3>",
        text,
        table_html(pd.DataFrame(rows), labels, "risk-models", ("model", "auc")),
    ]
