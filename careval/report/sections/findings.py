"""The report's reading sections: summary of findings, Table 3, methods and limitations.

They are written from the published ``results.json`` blocks (never from unpublished values),
and every key figure names the place in ``results.json`` it shows (``data-path``), so a test or
a reader can check the page against the file.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from careval.cohort.eligibility import EligibilitySettings
from careval.impact.settings import DEFAULT_LABEL, treated_name, with_article
from careval.report.objectives import rules
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    area_label,
    area_prose,
    last_comparator,
    table_html,
)
from careval.report.publish.margins import MARGINS
from careval.report.publish.model import (
    ABSENT,
    DesignBlock,
    Estimate,
    ImpactBlock,
    Mde,
    MonitoringBlock,
    Published,
    RiskBlock,
)
from careval.report.publish.rules import SUPPRESSED, smallest_published, suppressed_range


def lookup(results: dict[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (list items as ``[i]``) of ``results``, or None.

    For tests and readers checking a page's ``data-path`` against ``results.json``; the
    sections themselves read the typed copy (:class:`~careval.report.publish.model.Published`).
    """
    cur: Any = results
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            i = int(part[1:-1])
            cur = cur[i] if isinstance(cur, list) and -len(cur) <= i < len(cur) else None
        else:
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def keyfig(v: Any, path: str, label: str, fmt: str, scale: float = 1) -> str:
    """One key figure: ``v`` (the value at ``path`` of results.json) formatted with ``fmt``."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        shown = SUPPRESSED if v == SUPPRESSED else "&ndash;"
    else:
        shown = html.escape(format(v * scale, fmt))
    return (
        f'<div class="keyfig" data-key="{html.escape(label)}" data-path="{html.escape(path)}" '
        f'data-scale="{scale:g}"><b>{shown}</b>{html.escape(label)}</div>'
    )


def _emergency(pub: Published) -> Estimate | None:
    """The matched estimate for emergency admissions, when the study ran and has one."""
    if not isinstance(pub.impact, ImpactBlock) or not pub.impact.outcomes:
        return None
    return pub.impact.outcomes.get("emergency_admissions")


def _intervention(pub: Published) -> tuple[str, str, str]:
    """The matched study's intervention as the page names it: label, noun, the treated.

    Read from the published ``impact.settings``; a run without the study (or from before the
    setting) has the default, care plans.
    """
    st = pub.impact.settings if isinstance(pub.impact, ImpactBlock) else None
    iv = (st or {}).get("intervention") or {}
    label = str(iv.get("label") or DEFAULT_LABEL)
    treated = treated_name(label, str(iv.get("treated_label") or ""))
    return label, label.split()[-1], treated


def findings_section(
    pub: Published,
    window: str,
    warnings: list[str],
    programme_areas: tuple[str, ...] = ("pilot",),
    eligibility: EligibilitySettings | None = None,
) -> Section:
    """Key figures, the main findings in plain words and the objectives at a glance.

    The data summary's key figures are those of the programme's areas (``programme_areas``,
    the data summary's setting), one set per area when there are several. ``eligibility`` is
    the run's rule (it names the eligible key figure; default: the programme's).
    """
    el = eligibility or EligibilitySettings()
    figs = []
    people = pub.data.people_by_area or []
    act = pub.data.activity_by_year or []
    several = len(programme_areas) > 1
    for area in programme_areas:
        of = f" ({area_label(area)})" if several else ""
        i = next((i for i, r in enumerate(people) if r.area == area), None)
        if i is not None:
            base = f"data.people_by_area[{i}]"
            row = people[i]
            figs.append(
                keyfig(
                    row.registered,
                    f"{base}.registered",
                    f"People registered with pilot practices{of}",
                    ",",
                )
            )
            figs.append(
                keyfig(
                    row.eligible,
                    f"{base}.eligible",
                    f"Eligible ({el.describe(short=True)}){of}",
                    ",",
                )
            )
    for area in programme_areas:
        of = f" ({area_label(area)})" if several else ""
        years = [i for i, r in enumerate(act) if r.area == area]
        if years:
            i = years[-1]
            figs.append(
                keyfig(
                    act[i].emergency_per_1000_py,
                    f"data.activity_by_year[{i}].emergency_per_1000_py",
                    f"Pilot emergency admissions per 1,000 person-years (latest year){of}",
                    ",.1f",
                )
            )
    cov = pub.data.care_plan_coverage or []
    ok = [i for i, r in enumerate(cov) if isinstance(r.coverage_of_eligible, float)]
    if ok:
        figs.append(
            keyfig(
                cov[ok[-1]].coverage_of_eligible,
                f"data.care_plan_coverage[{ok[-1]}].coverage_of_eligible",
                "Eligible with a care plan (%), latest month",
                ".1f",
                100,
            )
        )
    e = _emergency(pub)
    if e is not None and _given(e.rate_ratio):
        figs.append(
            keyfig(
                e.rate_ratio,
                "impact.outcomes.emergency_admissions.rate_ratio",
                "Emergency admissions, matched-control rate ratio",
                ".3f",
            )
        )
        naive = pub.naive.rate_ratio if isinstance(pub.naive, Estimate) else None
        figs.append(
            keyfig(naive, "impact.naive.rate_ratio", "Naive before-after rate ratio", ".3f")
        )
    if isinstance(pub.risk, RiskBlock) and _given(pub.risk.auc):
        figs.append(keyfig(pub.risk.auc, "risk.auc", "Risk model AUC at validation", ".3f"))
    mde = _first_mde(pub)
    if mde is not None and _given(mde.mde_rate_ratio):
        figs.append(
            keyfig(
                mde.mde_rate_ratio,
                "design.mde[0].mde_rate_ratio",
                f"Smallest detectable rate ratio with {mde.followup_months} months of follow-up",
                ".2f",
            )
        )
    points = _findings(pub)
    glance = pd.DataFrame(
        [{"objective": o.objective, "progress": o.progress} for o in pub.objectives]
    )
    parts = [
        "<div class='keyfigs'>" + "".join(figs) + "</div>",
        f"<p>{html.escape(window)}</p>",
        "<h3>Main findings</h3><ul id='findings'>"
        + "".join(f"<li>{html.escape(p)}</li>" for p in points)
        + "</ul>",
        "<h3>Progress against the eight objectives at a glance</h3>",
        table_html(glance, {}, "objectives-glance", ("objective", "progress")),
        "<p class='note'>How each judgement is reached is in "
        "<a href='#objectives'>Progress against objectives</a>.</p>",
    ]
    parts += [f"<p class='banner'>{html.escape(w)}</p>" for w in warnings]
    return Section("summary", "Summary of findings", "".join(parts))


def _given(v: Any) -> bool:
    """A value results.json holds (not null, not a key the run did not produce)."""
    return v is not None and v is not ABSENT


def _first_mde(pub: Published) -> Mde | None:
    return pub.design.mde[0] if isinstance(pub.design, DesignBlock) and pub.design.mde else None


def _findings(pub: Published) -> list[str]:
    out = []
    treated = _intervention(pub)[2]
    e = _emergency(pub)
    if e is not None and isinstance(e.rate_ratio, float):
        out.append(
            f"Among the {treated}, emergency admissions changed by a rate ratio of "
            f"{e.rate_ratio:.3f} (95% CI {e.rate_ratio_ci_low:.3f} to "
            f"{e.rate_ratio_ci_high:.3f}) against matched controls."
        )
        n = pub.naive.rate_ratio if isinstance(pub.naive, Estimate) else None
        if isinstance(n, float):
            out.append(
                f"A naive before-after comparison of the {treated} alone gives {n:.3f}; "
                "the difference is what regression to the mean and secular change would have "
                "credited to the programme."
            )
    diffs = (
        (pub.monitoring.differences or []) if isinstance(pub.monitoring, MonitoringBlock) else []
    )
    quoted = last_comparator(list(dict.fromkeys(d.comparator for d in diffs)))
    rest = [d for d in diffs if d.group == "all_eligible" and d.comparator == quoted]
    if rest and isinstance(rest[-1].difference, float):
        d = rest[-1]
        out.append(
            f"Across the whole eligible population (Table 2, from {d.start}), the pilot's "
            f"change in emergency admissions minus {area_prose(d.comparator)}'s was "
            f"{d.difference:+.1f} percentage points (95% CI {d.ci_low:+.1f} to "
            f"{d.ci_high:+.1f})."
        )
    mde = _first_mde(pub)
    if mde is not None and isinstance(mde.mde_rate_ratio, float):
        out.append(
            f"With {mde.followup_months} months of follow-up the matched study could detect "
            f"only a rate ratio of {mde.mde_rate_ratio:.2f} or below."
        )
    if not out:
        out.append("No effect estimates were produced by this run (see the sections below).")
    return out


def objectives_section(pub: Published, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The seed's Table 3 shape: objective, evidence, progress, challenges; then the rules."""
    t = pd.DataFrame([o.to_json() for o in pub.objectives])
    listed = "".join(
        f"<li><b>{html.escape(label)}</b>: {html.escape(rule)}.</li>"
        for label, rule in rules(ctx.disclosure)
    )
    return Section(
        "objectives",
        "Progress against objectives",
        "<p>The eight objectives of the pilot, with the evidence this run measured. Every "
        "judgement follows one of the rules listed below the table from the published "
        "results; where the run has no evidence, the row says so.</p>"
        + table_html(
            t,
            {"objective": "Objective", "evidence": "Evidence from this run"},
            "table3",
            ("objective", "evidence", "progress", "challenges"),
        )
        + f"<h3>Rules</h3><ul id='objective-rules'>{listed}</ul>",
    )


def methods_section(pub: Published, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """Methods, assumptions and limitations: follow-up, power, regression to the mean, privacy.

    The privacy rules are stated with the numbers of ``ctx.disclosure``; the follow-up is set
    beside the seed evaluation's only on seed-shaped data (``ctx.seed_shaped``).
    """
    synthetic, d = bool(pub.synthetic), ctx.disclosure
    label, noun, treated = (html.escape(x) for x in _intervention(pub))
    parts = ["<h3>Follow-up</h3>"]
    f = pub.impact.follow_up if isinstance(pub.impact, ImpactBlock) else None
    if f and _given(f.median_months):
        parts.append(
            f"<p id='limit-follow-up'>The {treated} were followed for a median of "
            f"{f.median_months:.0f} months (range {f.min_months:.0f} to "
            f"{f.max_months:.0f})"
            + ("; the seed evaluation had about three" if ctx.seed_shaped else "")
            + ". Effects that take longer to appear cannot be seen in a short follow-up.</p>"
        )
    else:
        parts.append("<p id='limit-follow-up'>No matched study: no follow-up to report.</p>")
    parts.append("<h3>Power</h3>")
    design = pub.design if isinstance(pub.design, DesignBlock) else None
    rows = (design.mde or []) if design else []
    if design and rows:
        first, last = rows[0], rows[-1]
        needed = design.followup_needed_months
        planned = 1 + design.settings.effect
        parts.append(
            f"<p id='limit-power'>For the planned rate ratio of {planned:.2f}, the smallest "
            f"detectable rate ratio was {first.mde_rate_ratio:.2f} with "
            f"{first.followup_months} months of follow-up and {last.mde_rate_ratio:.2f} "
            f"with {last.followup_months}. "
            + (
                f"About {needed} months would be needed. "
                if needed
                else "The planned effect could not be detected within the follow-up modelled. "
            )
            + "An interval that includes no effect from an underpowered study is reported as "
            "'too early to tell', not as evidence of no effect.</p>"
        )
    else:
        parts.append("<p id='limit-power'>No design block: power not computed.</p>")
    parts.append(
        "<h3>Regression to the mean</h3><p id='limit-rtm'>People are often given "
        f"{with_article(label)} just after a spell of heavy use, which would fall anyway. A "
        f"before-after comparison of the {treated} alone credits that fall to the programme; "
        "the matched controls, "
        "chosen with the same recent history, fall too, and only the difference is taken as the "
        "effect. The naive contrast is shown beside the matched estimate for this reason.</p>"
        "<h3>Other assumptions</h3><ul>"
        "<li>Matching balances measured characteristics only; unmeasured differences between "
        f"{treated} people and controls remain (balance table in the matched-control "
        "results).</li>"
        "<li>Difference-in-differences assumes the two groups would have followed parallel "
        f"paths; the event study shows the months before the {noun} as a check.</li>"
        "<li>Table 2 uses a rolling cohort of everyone eligible, so it shows population-level "
        "change, diluted by the many eligible people without a plan.</li>"
        "<li>Interrupted time series assume the pre-programme trend would have continued.</li>"
        "</ul>"
    )
    margins = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in MARGINS.items()
    )
    if synthetic:
        privacy = (
            "<p id='disclosure-rules'>These are synthetic data: disclosure control is "
            "<b>off</b> and exact counts are shown. On real data it is on by default.</p>"
        )
    else:
        privacy = "<p id='disclosure-rules'>Disclosure control is <b>on</b>.</p>"
    parts.append(
        "<h3>Privacy and disclosure control</h3>"
        + privacy
        + f"<p>Rules on real data: every count of {suppressed_range(d)} is shown as <b>*</b> "
        f"and other counts are rounded to the nearest {d.rounding_base}; in tables with "
        "totals, when one cell of a margin is suppressed the smallest other cell of that "
        "margin is suppressed too (or the total, when no other cell is left), repeated until "
        "no total gives a suppressed cell away; means, rates and estimates from fewer than "
        f"{smallest_published(d)} people are withheld, as are rates resting on a suppressed "
        "count. Tables with totals:</p>"
        f"<ul id='margins'>{margins}</ul>"
        "<p class='note'>No identifier (person, NHS number, date of birth) appears in the "
        "report, the workbook, results.json or the run's messages.</p>"
    )
    return Section("methods", "Methods, assumptions and limitations", "".join(parts))
