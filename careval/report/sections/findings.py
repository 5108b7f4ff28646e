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
from careval.report import format as fmt
from careval.report.glossary import LABELS, abbr, glossary_html, is_code_name
from careval.report.glossary import label as glossary_label
from careval.report.objectives import HOW_SURE, rules
from careval.report.page import (
    DEFAULT_CONTEXT,
    PageContext,
    Section,
    table_html,
)
from careval.report.publish.margins import MARGINS
from careval.report.publish.model import (
    Estimate,
    ImpactBlock,
    Published,
)
from careval.report.publish.rules import SUPPRESSED, smallest_published, suppressed_range
from careval.report.sections.board import board, power_sentence
from careval.report.sections.flow import COVERAGE_DEFINITION, coverage, coverage_paths


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
    """The board summary: the answer in plain words (:func:`~careval.report.sections.board.
    board`), the eight objectives at a glance and a strip of background counts.

    The background counts are those of the programme's areas (``programme_areas``) together;
    ``eligibility`` is the run's rule (it names the eligible count; default: the programme's).
    """
    el = eligibility or EligibilitySettings()
    treated = _intervention(pub)[2]
    glance = pd.DataFrame(
        [
            {
                "objective": o.objective,
                "progress": o.progress,
                "how_sure": o.how_sure or "",
                "focus": o.focus or "",
            }
            for o in pub.objectives
        ]
    )
    parts = [
        board(pub, programme_areas, treated),
        "<h3>The eight objectives</h3>",
        table_html(
            glance,
            OBJECTIVE_LABELS,
            "objectives-glance",
            ("objective", "progress", "how_sure", "focus"),
        ),
        "<p class='note'>How each judgement is reached is in "
        "<a href='#objectives'>Progress against objectives</a>; how the people counted relate "
        "to each other is in the <a href='#flow-diagram'>flow diagram</a>.</p>",
        _background(pub, programme_areas, el),
        f"<p class='note'>{html.escape(window)}</p>",
    ]
    parts += [f"<p class='banner'>{html.escape(w)}</p>" for w in warnings]
    return Section("summary", "Summary of findings", "".join(parts))


# The tables with totals (:data:`~careval.report.publish.margins.MARGINS`) as people name them.
MARGIN_TABLES = {
    "data.people_by_area": "People by area",
    "monitoring.table2": "Table 2",
    "risk.by_subgroup": "Risk model by subgroup",
    "impact.attrition": "Attrition of the matched study",
    "indicators.diabetes.monthly": "Diabetes indicators by month",
    "indicators.before_after.table": "Clinical indicators before and after",
    "programme.plans_by_mdg": "Care plans by MDG",
}

OBJECTIVE_LABELS = {
    k: glossary_label(k)
    for k in ("objective", "evidence", "progress", "how_sure", "challenges", "focus")
}


def _background(pub: Published, areas: tuple[str, ...], el: EligibilitySettings) -> str:
    """Registered, eligible, care-planned and coverage of the programme's areas, in a strip."""
    people = pub.data.people_by_area or [] if pub.data else []
    rows = [(i, r) for i, r in enumerate(people) if r.area in areas]
    figs = []
    if len(rows) == 1:
        i, row = rows[0]
        base = f"data.people_by_area[{i}]"
        figs.append(
            keyfig(
                row.registered, f"{base}.registered", "People registered with pilot practices", ","
            )
        )
        figs.append(
            keyfig(row.eligible, f"{base}.eligible", f"Eligible ({el.describe(short=True)})", ",")
        )
    share, planned, _ = coverage(pub, areas)
    paths = coverage_paths(pub, areas)
    if planned is not None and paths and " " not in paths[1]:
        figs.append(keyfig(planned, paths[1], "Eligible and care-planned", ","))
    elif planned is not None and paths:
        figs.append(
            f'<div class="keyfig" data-key="Care-planned" data-paths="{html.escape(paths[1])}">'
            f"<b>{fmt.count(planned)}</b>Eligible and care-planned</div>"
        )
    if share is not None:
        figs.append(
            f'<div class="keyfig" id="coverage" data-key="Coverage" '
            f'data-paths="{html.escape(" ".join(paths))}" data-v="{share}">'
            f"<b>{fmt.pct(share)}</b>Coverage of the eligible</div>"
        )
    if not figs:
        return ""
    return (
        "<h3>Background</h3><div class='keyfigs background'>" + "".join(figs) + "</div>"
        f"<p class='note'>In this report {abbr('coverage')}"
        f"{html.escape(COVERAGE_DEFINITION.removeprefix('coverage'))}.</p>"
    )


def objectives_section(pub: Published, ctx: PageContext = DEFAULT_CONTEXT) -> Section:
    """The seed's Table 3 shape: objective, evidence, progress, challenges; then the rules."""
    t = pd.DataFrame([o.to_json() for o in pub.objectives])
    order = [c for c in OBJECTIVE_LABELS if c in t]
    t = t[order]
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
        + table_html(t, OBJECTIVE_LABELS, "table3", tuple(order))
        + f"<h3>Rules</h3><ul id='objective-rules'>{listed}</ul>"
        + "<h3>How sure</h3><ul id='how-sure-rules'>"
        + "".join(
            f"<li><b>{html.escape(j)}</b>: {html.escape(h)}.</li>" for j, h in HOW_SURE.items()
        )
        + "</ul>",
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
    if f and isinstance(f.median_months, int | float):
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
    power = power_sentence(pub)
    if power:
        parts.append(
            f"<p id='limit-power'>The {abbr('MDE')} (minimum detectable effect) is the smallest "
            f"fall in emergency admissions the matched {abbr('DiD')} study would detect with "
            f"80% power. {power} An interval that includes no effect from a study too small or "
            "too short is reported as 'too early to tell', not as evidence of no effect.</p>"
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
        f"<li>{abbr('DiD', 'Difference-in-differences')} assumes the two groups would have "
        f"followed parallel paths; the event study shows the months before the {noun} as a "
        "check.</li>"
        "<li>The matched study is a stacked design: each treated person is compared only "
        "with controls matched in their own entry month, and nobody already treated is ever "
        "a control (with not-yet-treated controls, each leaves at their own treatment). A "
        "two-way fixed-effects regression on a staggered roll-out is biased when effects "
        "differ by cohort or grow over time, because it uses the already treated as controls "
        "for the later treated (Goodman-Bacon 2021); those comparisons do not occur here, so "
        "the matched estimate keeps its own estimator (<code>careval did</code>, for "
        "analysts' own panels, uses a staggered-robust one).</li>"
        "<li>Residual bias is measured, not assumed away: negative-control outcomes and "
        "placebo starts estimate the systematic error the matching left; each interval is "
        "also shown calibrated by it, and an estimate failing a diagnostic is not for "
        "decisions (the diagnostics table in the matched-control results).</li>"
        "<li>Table 2 uses a rolling cohort of everyone eligible, so it shows population-level "
        "change, diluted by the many eligible people without a plan.</li>"
        f"<li>{abbr('ITS', 'Interrupted time series')} assume the pre-programme trend would "
        "have continued.</li>"
        "</ul>"
    )
    margins = "".join(
        f"<li>{html.escape(MARGIN_TABLES.get(k) or glossary_label(k))}: {html.escape(v)}</li>"
        for k, v in MARGINS.items()
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


def glossary_section() -> Section:
    """The glossary: every abbreviation and technical term the report uses, explained."""
    return Section(
        "glossary",
        "Glossary",
        "<p>The abbreviations and technical terms of this report; each is also explained "
        "when the pointer rests on its first use in a section.</p>" + glossary_html(),
    )


def code_names(results: dict[str, Any]) -> dict[str, str]:
    """Every code name of ``results`` (its keys, and values written like code names) that the
    report shows under a label: code name -> label."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and (is_code_name(k) or k in LABELS):
                    found.add(k)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and (is_code_name(node) or node in LABELS):
            found.add(node)

    walk(results)
    return {k: glossary_label(k) for k in sorted(found | set(LABELS))}


def appendix_section(results: dict[str, Any], technical: str = "") -> Section:
    """Appendix: each label shown and the code name of the same field in ``results.json`` and
    the workbook, so that analysts can find it, then ``technical`` (the provenance's tables
    of settings and files): the only place code names are visible."""
    rows = "".join(
        f"<tr><td class='text'>{html.escape(lab)}</td><td class='text'><code>"
        f"{html.escape(code)}</code></td></tr>"
        for code, lab in sorted(code_names(results).items(), key=lambda kv: kv[1].lower())
    )
    return Section(
        "appendix",
        "Appendix: code names",
        "<p>Each label of the report and the name of the same field in "
        "<code>results.json</code> and <code>tables.xlsx</code>. Figures of the summary name "
        "their place in <code>results.json</code> in their <code>data-path</code> "
        "attribute.</p>"
        "<div class='table-wrap'><table id='code-names'><thead><tr><th>Label</th>"
        f"<th>Code name</th></tr></thead><tbody>{rows}</tbody></table></div>" + technical,
    )
