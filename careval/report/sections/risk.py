"""The report's targeting and risk section: validation, calibration, yield, subgroups, models."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from careval.report import format as fmt
from careval.report.charts import GREY, PALETTE, figure, hover_points, tidy
from careval.report.glossary import abbr, label
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, plt, svg, table_html
from careval.report.publish.rules import suppressed_range
from careval.risk.evaluate import RiskResult
from careval.risk.metrics import SUBGROUP_SHARES, share_tag


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _ranks(auc: Any) -> str:
    """How well an AUC ranks people, in words."""
    if _missing(auc):
        return "(AUC withheld)"
    return "well" if auc >= 0.7 else "moderately" if auc >= 0.6 else "poorly"


def _calibrated(f: dict[str, Any]) -> str:
    """Whether the predicted risks are right on average, in words (slope and intercept)."""
    slope, icpt = f.get("calibration_slope"), f.get("calibration_intercept")
    if _missing(slope) or _missing(icpt):
        return "Its calibration"
    if 0.8 <= float(slope) <= 1.2 and abs(float(icpt)) <= 0.2:  # type: ignore[arg-type]
        return "Its predicted risks are about right"
    return "Its predicted risks are off"


def _calibration_figure(result: RiskResult) -> str:
    """Observed against predicted share admitted by decile of risk, on equal zero-based axes."""
    cal = result.calibration_deciles
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    top = float(max(cal.predicted.max(), cal.observed.max()) * 1.08)
    ax.plot([0, top], [0, top], color=GREY, lw=1, ls="--", label="Perfect calibration")
    ax.plot(cal.predicted, cal.observed, color=PALETTE[0], lw=2, label="Model (tenths of risk)")
    texts = [
        f"Tenth {int(d)}: predicted {fmt.pct(p)}, observed {fmt.pct(o)}"
        for d, p, o in zip(cal.decile, cal.predicted, cal.observed, strict=True)
    ]
    hover_points(ax, cal.predicted, cal.observed, texts, color=PALETTE[0], ms=6)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("Predicted risk of admission (mean of the tenth)")
    ax.set_ylabel("Observed share admitted")
    title = "Calibration at validation"
    ax.set_title(title, loc="left")
    tidy(ax)
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    worst = cal.assign(gap=(cal.observed - cal.predicted).abs()).sort_values("gap").iloc[-1]
    slope = result.figures.get("calibration_slope")
    caption = (
        f"Calibration slope {fmt.number(slope, 2)} (1 is ideal); the largest gap between "
        "predicted and observed risk is in "
        f"tenth {int(worst.decile)} (predicted {fmt.pct(worst.predicted)}, observed "
        f"{fmt.pct(worst.observed)})."
    )
    desc = "Observed against predicted share admitted in 12 months, by tenth of risk: " + (
        "; ".join(texts)
    )
    return figure(svg(fig, title + ": observed against predicted risk", desc), caption, "risk-cal")


def section(result: RiskResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The report's targeting and risk section, from the result as given (the published copy
    on real data)."""
    f = result.figures
    oracle = (
        f" The best possible AUC, from the true probabilities the synthetic data were made "
        f"with, is {fmt.number(f['oracle_auc'], 3)}: the model reaches "
        f"{fmt.pct(f['auc_ratio_to_oracle'], 0)} of it."
        if "oracle_auc" in f
        else ""
    )
    st = result.settings
    text = (
        f"<p>A logistic model of an emergency admission in the next 12 months, trained on "
        f"everyone registered on {st.train_date:%d %B %Y} and validated on everyone registered "
        f"on {st.validate_date:%d %B %Y} (temporal validation). It ranks people "
        f"{_ranks(f['auc'])}: "
        f"{abbr('AUC')} <b id='risk-auc'>{f['auc']:.3f}</b> (95% {abbr('CI')} "
        f"{fmt.number(f['auc_ci_low'], 3)} to {fmt.number(f['auc_ci_high'], 3)}), where 0.5 "
        f"is chance and 1 a perfect ranking. {_calibrated(f)}: "
        f"calibration slope {fmt.number(f['calibration_slope'], 2)} (1 is ideal), intercept "
        f"{fmt.number(f['calibration_intercept'], 2)} (0 is ideal), Brier score "
        f"{fmt.number(f['brier'], 4)} (the mean squared error of the predicted risks; lower "
        f"is better).{html.escape(oracle)}</p>"
    )
    yield_rows = pd.DataFrame(
        [
            {
                "flagged": f"Top {s}% of risk",
                "ppv": f[f"ppv_top_{s.replace('.', '_')}pct"],
                "sensitivity": f[f"sensitivity_top_{s.replace('.', '_')}pct"],
            }
            for s in ("0.5", "1", "2", "5")
        ]
    )
    parts = [
        text,
        _calibration_figure(result),
        "<h3>Case-finding yield</h3>",
        f"<p>If the programme flagged the people at highest risk: the {abbr('PPV')} "
        "(positive predictive value) is the share of those flagged who were admitted in the "
        "next 12 months, and the sensitivity the share of everyone admitted who was "
        "flagged.</p>",
        table_html(
            yield_rows,
            {
                "ppv": "PPV (flagged who were admitted)",
                "flagged": "Flagged",
                "sensitivity": "Sensitivity (admitted who were flagged)",
            },
            "risk-yield",
            ("flagged",),
            kinds={"ppv": "share", "sensitivity": "share"},
        ),
    ]
    if len(result.targeting):
        tg = result.targeting.assign(group=[str(g).capitalize() for g in result.targeting["group"]])
        parts += [
            "<h3>Targeting: who got care plans</h3>",
            table_html(
                tg,
                {
                    "group": "Group",
                    "emergency_per_person_year_prior": (
                        "Emergency admissions a person-year, prior 12 months"
                    ),
                    "mean_risk": "Mean predicted risk",
                    "share_in_top_5pct": "In the top 5% of risk",
                    "share_in_top_1pct": "In the top 1% of risk",
                },
                "risk-targeting",
                ("group",),
                kinds={
                    "emergency_per_person_year_prior": "number",
                    "mean_risk": "share",
                    "share_in_top_5pct": "share",
                    "share_in_top_1pct": "share",
                },
            ),
            _targeting_note(result, ctx.seed_shaped),
        ]
    parts += _subgroup_parts(result, ctx)
    parts += _comparison_parts(result)
    coef = result.coefficients.assign(term=[label(t) for t in result.coefficients["term"]])
    parts += [
        "<h3>Published coefficients (standardised inputs)</h3>",
        "<p class='note'>Log odds of an admission per standard deviation of each input; a "
        "positive coefficient raises the risk.</p>",
        table_html(
            coef,
            {"term": "Input", "coefficient": "Coefficient"},
            "risk-coefficients",
            ("term",),
            kinds={"coefficient": "number"},
        ),
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
        f"<p class='note'>In the 12 months before, the care-planned had "
        f"{fmt.number(planned, 2)} emergency admissions a person-year against "
        f"{fmt.number(everyone, 2)} among everyone scored: {fmt.number(planned / everyone, 1)} "
        "times the population's rate.</p>"
    )


def _ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str | None:
    if _missing(est):
        return None
    return f"{est:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def _subgroup_parts(result: RiskResult, ctx: PageContext) -> list[str]:
    df = result.by_subgroup
    if df.empty:
        return []
    names = [
        f"Aged {g}" if d == "age" else str(g).capitalize()
        for d, g in zip(df.dimension, df.group, strict=True)
    ]
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
    labels = {
        "group": "Group",
        "auc": "AUC (95% CI)",
        "events": "Admitted in 12 months",
        "calibration_slope": "Calibration slope",
        "calibration_intercept": "Calibration intercept",
        "brier": "Brier score",
    }
    for s in SUBGROUP_SHARES:
        tag, pct = share_tag(s), f"{s * 100:g}%"
        labels[f"flagged_top_{tag}pct"] = f"In top {pct}"
        labels[f"ppv_top_{tag}pct"] = f"PPV, top {pct}"
        labels[f"sensitivity_top_{tag}pct"] = f"Sensitivity, top {pct}"
    return [
        "<h3>By age band and sex</h3>",
        table_html(
            show,
            labels,
            "risk-subgroups",
            ("group", "auc"),
            kinds={
                **{c: "number" for c in ("calibration_slope", "calibration_intercept", "brier")},
                **{c: "share" for c in show.columns if c.startswith(("ppv_", "sensitivity_"))},
                **{c: "count" for c in ("people", "events")},
                **{c: "count" for c in show.columns if c.startswith("flagged_")},
            },
        ),
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
    for name, fig in (("Logistic (published)", f), ("LightGBM", g)):
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
        "model": "Model",
        "auc": "AUC (95% CI)",
        "calibration_slope": "Calibration slope",
        "calibration_intercept": "Calibration intercept",
        "brier": "Brier score",
        "ppv_top_1pct": "PPV, top 1%",
        "ppv_top_5pct": "PPV, top 5%",
        "sensitivity_top_5pct": "Sensitivity, top 5%",
    }
    text = (
        f"<p>Gradient-boosted trees (LightGBM, {g['params']['n_estimators']} trees) on the same "
        f"training people and inputs, validated on the same people: AUC difference "
        f"{g['auc_difference']:+.3f} (95% CI {g['auc_difference_ci_low']:+.3f} to "
        f"{g['auc_difference_ci_high']:+.3f}, paired DeLong test, "
        f"{html.escape(fmt.p_value(g['auc_difference_p']))}). "
        "The logistic model stays the published one: each of its coefficients can be read, "
        "checked and explained to the people it flags.</p>"
    )
    return [
        "<h3>Logistic against gradient boosting</h3>",
        text,
        table_html(
            pd.DataFrame(rows),
            labels,
            "risk-models",
            ("model", "auc"),
            kinds={
                "calibration_slope": "number",
                "calibration_intercept": "number",
                "brier": "number",
                "ppv_top_1pct": "share",
                "ppv_top_5pct": "share",
                "sensitivity_top_5pct": "share",
            },
        ),
    ]
