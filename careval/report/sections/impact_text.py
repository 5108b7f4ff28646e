"""The matched study's text for people: the design in words and the headline effect.

Settings are named by their glossary labels, effects as % change with their intervals
(:mod:`careval.report.format`), and DiD, SMD, caliper and ATT explained on first use
(:func:`careval.report.glossary.abbr`).
"""

from __future__ import annotations

import html

import pandas as pd

from careval.impact.diagnostics import failure_text
from careval.impact.settings import with_article
from careval.impact.study import DEATHS, ImpactResult
from careval.report import format as fmt
from careval.report.glossary import abbr, label
from careval.report.page import DEFAULT_CONTEXT, PageContext, area_label, table_html

EXACT = {"female": "sex", "entry_month": "month of entry", "age_band": "age band"}


def design_text(r: ImpactResult) -> str:
    """Who entered, how they were matched and how many: one paragraph."""
    a, f, st = r.attrition, r.follow_up, r.settings
    iv = st.intervention
    label_, noun, treated = (html.escape(x) for x in (iv.label, iv.noun, iv.treated))
    exact = ", ".join(EXACT.get(x, label(x).lower()) for x in st.match.exact)
    areas = " and ".join(html.escape(area_label(x)) for x in st.control_areas)
    return (
        f"<p>Each person with {with_article(label_)} enters the study in the month of their "
        f"first {noun}. Potential controls are eligible people in {areas} alive and "
        "registered at the start of the same month, with their history taken then. "
        f"Matching: exact on {html.escape(exact)}, then up to {st.match.ratio} nearest "
        "neighbours on the logit of a propensity score (a "
        f"{abbr('caliper', 'caliper')} of {fmt.number(st.match.caliper, 1)} standard "
        f"deviations, {'with' if st.match.replace else 'without'} replacement). "
        f"<b>{fmt.count(a.get('treated_matched'))}</b> of "
        f"{fmt.count(a.get('treated_alive_and_registered_at_entry'))} {treated} people were "
        f"matched to <b>{fmt.count(a.get('controls_matched'))}</b> controls; "
        f"{fmt.count(a.get('unmatched_outside_caliper'))} had no control within the caliper "
        f"and {fmt.count(a.get('unmatched_no_control_in_stratum'))} none in their exact "
        "stratum. Everyone is followed month by month while alive and registered with a "
        "practice, each control weighing one over their set's number of controls. "
        f"Entry ran from {html.escape(str(f.get('first_entry')))} to "
        f"{html.escape(str(f.get('last_entry')))}; median follow-up "
        f"{fmt.months(f.get('median_months'))} (range {fmt.months(f.get('min_months'))} to "
        f"{fmt.months(f.get('max_months'))}). The largest {abbr('SMD')} after matching is "
        f"{fmt.number(r.max_abs_smd_after, 3)}.</p>"
    )


def headline_text(r: ImpactResult, ctx: PageContext = DEFAULT_CONTEXT) -> str:
    """The primary outcome's effect in words, the planted truth (synthetic data) and the
    naive before-after contrast beside it."""
    st = r.settings
    e = r.outcomes.get(st.primary.name)
    if not e or e.get("rate_ratio") is None:
        return ""
    noun, treated = html.escape(st.intervention.noun), html.escape(st.intervention.treated)
    lo, hi = e["rate_ratio_ci_low"], e["rate_ratio_ci_high"]
    truth = ""
    if r.truth_rate_ratio is not None:
        covers = "covers" if lo <= r.truth_rate_ratio <= hi else "does not cover"
        truth = (
            " The effect planted in these synthetic data is "
            f"{fmt.change(r.truth_rate_ratio)} (a rate ratio of "
            f"{fmt.ratio(r.truth_rate_ratio)}); the interval {covers} it."
        )
    n = r.naive
    naive = ""
    if n.get("rate_ratio") is not None:
        naive = (
            f"<p>The naive before-after comparison of the {treated} alone gives "
            f"{fmt.change(n['rate_ratio'])} (rate ratio <b id='impact-naive-rr'>"
            f"{n['rate_ratio']:.3f}</b>; "
            f"{fmt.change_interval(n.get('rate_ratio_ci_low'), n.get('rate_ratio_ci_high'))})."
            f" People are often given {with_article(noun)} just after a spell of high use, "
            "which would have fallen anyway (regression to the mean); the matched controls, "
            "chosen with the same recent history, fall too, and only the difference is "
            f"credited to the {noun}.</p>"
        )
    diag = e.get("diagnostics") or {}
    gate = ""
    if diag.get("failed"):
        gate = (
            "<p class='warning' id='impact-not-for-decisions'><b>Not for decisions:</b> this "
            "estimate failed its diagnostics ("
            + html.escape(failure_text(diag))
            + "); see the diagnostics table below before quoting it.</p>"
        )
    cal = e.get("calibrated") or {}
    calibrated = ""
    if cal.get("rate_ratio_ci_low") is not None:
        calibrated = (
            " Calibrated by the negative controls, the interval is "
            f"{fmt.change_interval(cal['rate_ratio_ci_low'], cal['rate_ratio_ci_high'])} "
            f"({fmt.p_value(cal.get('p_value'))})."
        )
    return gate + (
        f"<p>Difference-in-differences ({abbr('DiD')}) on the matched panel (each person "
        "and calendar month with its own level, Poisson regression, standard errors "
        "clustered on the matched set and the person, as controls are shared between sets) "
        f"gives the {abbr('ATT')}: from month {st.effect_from_month} after the {noun}, "
        f"{html.escape(_lower(st.primary.title))} were <b>{fmt.change(e['rate_ratio'])}</b> "
        f"({fmt.change_interval(lo, hi)}; rate ratio <b id='impact-rr'>"
        f"{e['rate_ratio']:.3f}</b>, {fmt.p_value(e.get('p_value'))}) among the {treated} "
        f"than among their matched controls.{html.escape(calibrated)}{html.escape(truth)}</p>"
        f"{naive}"
    )


def _lower(title: str) -> str:
    """A label in running text: first letter lower case unless it starts an abbreviation."""
    return title[0].lower() + title[1:] if title[1:2].islower() else title


def mortality_text(r: ImpactResult) -> str:
    m, treated = r.mortality, html.escape(r.settings.intervention.treated)
    if not m or m.get("rate_ratio") is None:
        return ""
    return (
        f"<p id='impact-mortality'>Deaths after entry: {fmt.count(m.get('deaths_treated'))} "
        f"of the {treated} ({fmt.rate(m.get('rate_treated'))}) and "
        f"{fmt.count(m.get('deaths_controls'))} matched controls "
        f"({fmt.rate(m.get('rate_controls'))}, weighted as matched); "
        f"{fmt.change(m['rate_ratio'])} deaths per person-year "
        f"({fmt.change_interval(m['rate_ratio_ci_low'], m['rate_ratio_ci_high'])}, "
        f"{fmt.p_value(m.get('p_value'))}), from a Poisson model of deaths with person-years as "
        "offset and standard errors clustered on the person (controls serve several sets).</p>"
    )


def truth_panel(r: ImpactResult) -> list[str]:
    if not r.truth:
        return []
    titles, rows = {o.name: o.title for o in r.settings.outcomes}, []
    for name, planted in r.truth.items():
        o = r.mortality if name == DEATHS else r.outcomes.get(name)
        if not o or o.get("rate_ratio") is None:
            continue
        lo, hi = o["rate_ratio_ci_low"], o["rate_ratio_ci_high"]
        rows.append(
            {
                "outcome": "Deaths" if name == DEATHS else titles.get(name, label(name)),
                "planted": planted,
                "estimate": o["rate_ratio"],
                "ci_low": lo,
                "ci_high": hi,
                "covered": "yes" if lo <= planted <= hi else "no",
            }
        )
    if not rows:
        return []
    t = pd.DataFrame(rows)
    return [
        "<h3>Planted truth against estimate</h3>",
        "<p>These data are synthetic: the generator planted a known rate ratio for these "
        "outcomes (1.0 is no effect; deaths are drawn without regard to plans). A&amp;E "
        "attendances' truth is a total effect: those admitted carry the emergency admissions' "
        "effect, those not admitted none, so it lies between the two. "
        f"{int((t.covered == 'yes').sum())} of {len(t)} intervals cover the truth.</p>",
        table_html(
            t,
            {
                "planted": "Planted rate ratio",
                "estimate": "Estimated rate ratio",
                "covered": "Interval covers the truth",
            },
            "impact-truth",
            ("outcome", "covered"),
        ),
    ]
