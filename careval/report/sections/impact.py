"""The matched-control results section of the report.

Everything here is drawn from the published :class:`~careval.impact.study.ImpactResult`: the
outcomes' forest plot (counts and deaths as % change, costs in £ a person-month in their own
panel), Figure 2 as small multiples, the follow-up horizons and the subgroups as forest plots,
deaths after entry, survival and time to the first emergency admission
(:mod:`careval.report.sections.impact_survival`), the planted truth against the estimate
(synthetic data only), the event study and the balance (love plot, overlap, table).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.impact.fe import LOG_LINK
from careval.impact.study import ImpactResult
from careval.report import format as fmt
from careval.report.charts import figure
from careval.report.glossary import label
from careval.report.page import DEFAULT_CONTEXT, PageContext, Section, table_html
from careval.report.sections import impact_bias
from careval.report.sections.impact_charts import (
    Row,
    forest,
    forest_with_costs,
    ratio_row,
    small_multiples,
)
from careval.report.sections.impact_checks import balance, event_chart
from careval.report.sections.impact_survival import survival_parts
from careval.report.sections.impact_text import (
    design_text,
    headline_text,
    mortality_text,
    truth_panel,
)

# Figure 2's panels: outcome, the per-person-month scale shown and its unit.
FIGURE2 = (
    ("emergency_admissions", 1000.0, "per 1,000 people a month"),
    ("elective_admissions", 1000.0, "per 1,000 people a month"),
    ("ae_attendances", 1000.0, "per 1,000 people a month"),
    ("outpatient_attendances", 1000.0, "per 1,000 people a month"),
    ("bed_days", 1000.0, "per 1,000 people a month"),
    ("inpatient_cost", 1.0, "£ a person-month"),
)
SUBGROUP_NAMES = {"sex": "Sex", "age": "Age", "diabetes": "Diabetes"}


def _titles(r: ImpactResult) -> dict[str, str]:
    """Each outcome's name on the page (its settings' label)."""
    return {o.name: o.title for o in r.settings.outcomes}


def _is_ratio(o: dict[str, Any]) -> bool:
    return o.get("model") in LOG_LINK


def _effect_words(o: dict[str, Any]) -> str:
    """An outcome's effect in words: "10% fewer (14% fewer to 7% fewer)", or for a cost
    "−£12 a person-month (−£20 to −£4)"."""
    if _is_ratio(o):
        return (
            f"{fmt.change(o.get('rate_ratio'))} "
            f"({fmt.change_interval(o.get('rate_ratio_ci_low'), o.get('rate_ratio_ci_high'))})"
        )
    return (
        f"{fmt.money(o.get('estimate'), 2)} a person-month "
        f"({fmt.money(o.get('ci_low'), 2)} to {fmt.money(o.get('ci_high'), 2)})"
    )


def _effect_table(r: ImpactResult) -> pd.DataFrame:
    """One row per outcome (and deaths): the change in words, the rate ratio with its
    interval (counts) or the difference in £ a person-month (costs), and the p-value."""
    titles, rows = _titles(r), []
    items = [(titles.get(n, label(n)), o) for n, o in r.outcomes.items()]
    if r.mortality.get("rate_ratio") is not None:
        items.append(("Deaths", r.mortality | {"model": "poisson"}))
    for title, o in items:
        ratio = _is_ratio(o)
        rows.append(
            {
                "outcome": title,
                "effect": _effect_words(o),
                "rate_ratio": o.get("rate_ratio") if ratio else None,
                "ci_low": o.get("rate_ratio_ci_low") if ratio else None,
                "ci_high": o.get("rate_ratio_ci_high") if ratio else None,
                "cost_difference": None if ratio else o.get("estimate"),
                "p_value": o.get("p_value"),
            }
        )
    return _blank(pd.DataFrame(rows))


def _blank(df: pd.DataFrame) -> pd.DataFrame:
    """Missing cells as None (shown as a dash), not NaN."""
    return df.astype(object).where(df.notna(), None)


EFFECT_LABELS = {
    "effect": "Change (95% interval)",
    "cost_difference": "Difference (£ a person-month)",
}
EFFECT_KINDS: dict[str, fmt.Kind] = {"ci_low": "ratio", "ci_high": "ratio"}


def _outcome_forest(r: ImpactResult) -> str:
    titles, ratios, costs = _titles(r), [], []
    for name, o in r.outcomes.items():
        title = titles.get(name, label(name))
        if _is_ratio(o):
            row = ratio_row(
                title,
                o.get("rate_ratio"),
                o.get("rate_ratio_ci_low"),
                o.get("rate_ratio_ci_high"),
                fmt.p_value(o.get("p_value")),
            )
            ratios += [row] if row else []
        elif all(isinstance(o.get(k), float) for k in ("estimate", "ci_low", "ci_high")):
            short = title.split(" (")[0]
            text = f"{short}: {_effect_words(o)}; {fmt.p_value(o.get('p_value'))}"
            costs.append(Row(short, o["estimate"], o["ci_low"], o["ci_high"], text))
    m = r.mortality
    dead = ratio_row(
        "Deaths",
        m.get("rate_ratio"),
        m.get("rate_ratio_ci_low"),
        m.get("rate_ratio_ci_high"),
        fmt.p_value(m.get("p_value")),
    )
    ratios += [dead] if dead else []
    if not ratios:
        return ""
    desc = "; ".join(x.hover for x in ratios + costs)
    svg = forest_with_costs(
        ratios, costs, "Effect on every outcome, against matched controls", desc
    )
    e = r.outcomes.get(r.settings.primary.name)
    finding = (
        f"{r.settings.primary.title}: {_effect_words(e)} among the "
        f"{r.settings.intervention.treated} than their matched controls"
        if e and e.get("rate_ratio") is not None
        else "Effects against matched controls"
    )
    return figure(
        svg,
        f"{finding}. Counts and deaths as % change on a ratio scale (left; dashed line: no "
        "change); costs as differences in £ a person-month in their own panel (right); bars "
        "are 95% intervals.",
        "impact-forest",
    )


def _figure2(r: ImpactResult) -> str:
    t, titles = r.trajectories, _titles(r)
    if not isinstance(t, pd.DataFrame) or t.empty:
        return ""
    panels = [
        (n, titles.get(n, label(n)).split(" (")[0], s, u)
        for n, s, u in FIGURE2
        if n in set(t.outcome)
    ]
    if not panels:
        return ""
    treated = r.settings.intervention.treated
    after = t[(t.month >= r.settings.effect_from_month)]
    words = []
    for name, ptitle, scale, unit in panels:
        g = after[after.outcome == name].groupby("group")["mean"].mean() * scale
        if {"treated", "control"} <= set(g.index) and g.notna().all():
            if scale == 1.0:  # pounds
                pair = f"{fmt.money(g['treated'], 2)} against {fmt.money(g['control'], 2)}"
                words.append(f"{ptitle}: {pair} a person-month")
            else:
                pair = f"{fmt.number(g['treated'], 1)} against {fmt.number(g['control'], 1)}"
                words.append(f"{ptitle}: {pair} {unit}")
    desc = (
        f"Mean use a person-month of the {treated} and their matched controls by month "
        "since entry, with 95% bands. Average after the implementation period: "
        + "; ".join(words)
        + "."
    )
    svg = small_multiples(
        t,
        panels,
        treated,
        r.settings.effect_from_month,
        f"Use of services by month since entry: {treated} against matched controls",
        desc,
    )
    return figure(
        svg,
        f"Average use after the implementation period (shaded), {treated} against matched "
        "controls: " + "; ".join(words) + ". Bands are 95% intervals; dashed line: entry; "
        "the controls are weighted as the difference-in-differences weights them.",
        "impact-figure2",
    )


def _horizons(r: ImpactResult, ctx: PageContext = DEFAULT_CONTEXT) -> list[str]:
    """The horizons' forest plot, why they differ from the headline, and their table; on
    seed-shaped data the seed evaluation's follow-up beside them."""
    st, noun = r.settings, html.escape(r.settings.intervention.noun)
    rows = [
        ratio_row(
            f"First {fmt.months(h['horizon_months'])}",
            h.get("rate_ratio"),
            h.get("rate_ratio_ci_low"),
            h.get("rate_ratio_ci_high"),
            f"{fmt.count(h.get('treated_with_full_horizon'))} followed that long",
        )
        for h in r.horizons
    ]
    e = r.outcomes.get(st.primary.name, {})
    head = ratio_row(
        f"From month {st.effect_from_month} to the end",
        e.get("rate_ratio"),
        e.get("rate_ratio_ci_low"),
        e.get("rate_ratio_ci_high"),
        "the headline",
    )
    got = [x for x in [*rows, head] if x]
    if not got:
        return []
    impl = e.get("implementation_period") or {}
    weaker = head is not None and all(
        abs(np.log(x.estimate)) < abs(np.log(head.estimate)) for x in rows if x
    )
    why = (
        f"The headline counts from month {st.effect_from_month} after the {noun} to the end "
        f"of follow-up (up to {fmt.months(r.follow_up.get('max_months'))}), with months 0 to "
        f"{st.effect_from_month - 1} estimated apart as the implementation period "
        f"({fmt.change(impl.get('rate_ratio'))} there); each horizon counts from month 0, so "
        "it takes in those implementation months with no term of their own and stops at its "
        "length"
        + (
            ", which is why every horizon's estimate is weaker than the headline."
            if weaker
            else ", so the horizons and the headline measure different spans."
        )
    )
    desc = "; ".join(x.hover for x in got)
    svg = forest(
        got,
        f"{st.primary.title} by length of follow-up",
        desc,
        "change against matched controls (95% interval)",
    )
    table = pd.DataFrame(
        [
            {
                "follow_up": f"First {fmt.months(h['horizon_months'])}",
                "effect": fmt.change(h.get("rate_ratio")),
                "rate_ratio": h.get("rate_ratio"),
                "ci_low": h.get("rate_ratio_ci_low"),
                "ci_high": h.get("rate_ratio_ci_high"),
                "p_value": h.get("p_value"),
                "treated_with_full_follow_up": h.get("treated_with_full_horizon"),
            }
            for h in r.horizons
        ]
    )
    seed = " (the seed evaluation had about three)" if ctx.seed_shaped else ""
    return [
        "<h3>By length of follow-up</h3>",
        f"<p>The effect over the first {_and(st.horizons)} months after the {noun}{seed}.</p>",
        figure(svg, _horizon_finding(got), "impact-horizons-plot"),
        f"<p id='impact-horizons-why'>{html.escape(why)}</p>",
        table_html(
            table,
            {
                "follow_up": "Follow-up",
                "effect": "Change",
                "treated_with_full_follow_up": "Followed that long",
            },
            "impact-horizons",
            ("follow_up", "effect"),
        ),
    ]


def _and(items: tuple[int, ...] | list[int]) -> str:
    """``3, 6, 12 and 24``."""
    words = [str(x) for x in items]
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _horizon_finding(rows: list[Row]) -> str:
    """The horizons' caption: the range of the estimates and the headline."""
    first, last, head = rows[0], rows[-2] if len(rows) > 1 else rows[0], rows[-1]
    return (
        f"{first.label}: {fmt.change(first.estimate)}; {last.label.lower()}: "
        f"{fmt.change(last.estimate)}; the headline, {head.label.lower()}: "
        f"{fmt.change(head.estimate)} (95% intervals as bars; dashed line: no change)."
    )


def _differences(rows: list[dict[str, Any]]) -> list[str]:
    """The subgroups whose two levels' estimates differ at p < 0.05 (a z-test of the
    difference of the log rate ratios, the levels taken as independent samples)."""
    out = []
    for group in dict.fromkeys(x["subgroup"] for x in rows):
        pair = [x for x in rows if x["subgroup"] == group and x.get("se")]
        if len(pair) != 2:
            continue
        a, b = pair
        z = (a["estimate"] - b["estimate"]) / np.hypot(a["se"], b["se"])
        if 2 * stats.norm.sf(abs(z)) < 0.05:
            out.append(SUBGROUP_NAMES.get(group, group).lower())
    return out


def _subgroups(r: ImpactResult) -> list[str]:
    rows = [x for x in r.subgroups if x.get("rate_ratio") is not None]
    if not rows:
        return []
    primary = r.settings.primary.title
    made = [
        ratio_row(
            f"{SUBGROUP_NAMES.get(x['subgroup'], x['subgroup'])}: {x['level'].capitalize()}",
            x["rate_ratio"],
            x["rate_ratio_ci_low"],
            x["rate_ratio_ci_high"],
            f"{fmt.count(x.get('n_treated'))} {r.settings.intervention.treated}; "
            f"{fmt.p_value(x.get('p_value'))}",
        )
        for x in rows
    ]
    got = [g for g in made if g is not None]
    differ = _differences(rows)
    desc = "; ".join(g.hover for g in got)
    svg = forest(
        got, f"{primary} by subgroup", desc, "change against matched controls (95% interval)"
    )
    table = _blank(
        pd.DataFrame(
            [
                {
                    "subgroup": SUBGROUP_NAMES.get(x["subgroup"], x["subgroup"]),
                    "level": x["level"].capitalize(),
                    "n_treated": x.get("n_treated"),
                    "effect": fmt.change(x.get("rate_ratio")),
                    "rate_ratio": x.get("rate_ratio"),
                    "ci_low": x.get("rate_ratio_ci_low"),
                    "ci_high": x.get("rate_ratio_ci_high"),
                    "p_value": x.get("p_value"),
                }
                for x in r.subgroups
            ]
        )
    )
    return [
        "<h3>By subgroup</h3>",
        figure(
            svg,
            f"{primary} within subgroups of the {r.settings.intervention.treated} (each with "
            "its own matched controls): "
            + (
                f"the two groups' effects differ (p < 0.05) by {' and '.join(differ)}"
                if differ
                else "no subgroup's two groups differ at p < 0.05"
            )
            + "; each estimate is less precise than the whole sample's.",
            "impact-subgroups-plot",
        ),
        table_html(
            table,
            {"level": "Group", "effect": "Change"},
            "impact-subgroups",
            ("subgroup", "level", "effect"),
        ),
    ]


def section(r: ImpactResult, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The matched study for its readers: who was matched, the effects in words and charts,
    follow-up, subgroups, deaths, the planted truth (synthetic data) and the balance."""
    st = r.settings
    parts = [
        design_text(r),
        headline_text(r, ctx),
        mortality_text(r),
        _outcome_forest(r),
        "<h3>Impact by outcome</h3>",
        table_html(
            _effect_table(r), EFFECT_LABELS, "impact-table", ("outcome", "effect"), EFFECT_KINDS
        ),
        "<p class='note'>Rate ratios for counts (Poisson), differences in pounds a "
        f"person-month for costs (linear), from month {st.effect_from_month} after the "
        f"{html.escape(st.intervention.noun)}; months 0 to {st.effect_from_month - 1} are "
        "estimated separately as an implementation period.</p>",
    ]
    if r.skipped_outcomes:
        titles = _titles(r)
        parts.append(
            "<p class='note' id='impact-skipped-outcomes'>Not estimated: "
            + "; ".join(
                f"{html.escape(titles.get(n, label(n)))} ({html.escape(why)})"
                for n, why in r.skipped_outcomes.items()
            )
            + ". The other outcomes are estimated as above.</p>"
        )
    parts += [
        _figure2(r),
        *_horizons(r, ctx),
        *_subgroups(r),
        *survival_parts(r),
        *truth_panel(r),
        impact_bias.diagnostics_table(r),
        *impact_bias.negative_controls(r),
        *impact_bias.sensitivity(r),
        event_chart(r),
        *balance(r),
    ]
    return Section("impact", "Matched-control results", "".join(p for p in parts if p))
