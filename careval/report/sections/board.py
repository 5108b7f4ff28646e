"""The board summary: the answer in plain words on one page, every figure traceable.

The first sentence gives the headline effect (emergency admissions among the care-planned
against matched controls) as a percentage change with its interval; the next the absolute
change (admissions per 1,000 people a year, admissions avoided a year, pounds); then how sure
the run is (the interval, balance, follow-up, power), the whole-area result of Table 2
reconciled with the matched one (the dilution expected from coverage), the eight objectives
and a strip of background counts. Every figure is a ``<span class="fig">`` naming the values
of ``results.json`` it comes from (``data-path``, space-separated when several), so a test or a
reader can check the page against the file.
"""

from __future__ import annotations

import html
from typing import Any

from careval.impact.diagnostics import failure_text
from careval.report import format as fmt
from careval.report.glossary import abbr
from careval.report.page import area_prose, last_comparator
from careval.report.publish.model import (
    DesignBlock,
    Estimate,
    ImpactBlock,
    Mde,
    MonitoringBlock,
    Published,
)
from careval.report.sections.flow import coverage, coverage_paths

RR = "impact.outcomes.emergency_admissions.rate_ratio"
PER_YEAR = 12  # the matched study's outcomes are per person-month
BALANCED_SMD = 0.1


def fig(text: str, paths: str, kind: str, **data: Any) -> str:
    """One figure of the summary: ``text`` shown, the results.json ``paths`` it comes from and
    how (``kind``: count, share, change, per1000, avoided, money, months, ratio)."""
    extra = "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in data.items())
    return (
        f'<span class="fig" data-path="{html.escape(paths)}" data-kind="{kind}"{extra}>'
        f"{html.escape(text)}</span>"
    )


def _n(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _chg(rr: Any) -> str:
    """A rate ratio as a change in words, one decimal when it is under 1%."""
    x = _n(rr)
    return fmt.change(rr, 1 if x is not None and abs(x - 1) < 0.01 else 0)


def emergency(pub: Published) -> Estimate | None:
    """The matched estimate for emergency admissions, when the study ran and has one."""
    if not isinstance(pub.impact, ImpactBlock) or not pub.impact.outcomes:
        return None
    return pub.impact.outcomes.get("emergency_admissions")


def usable_mde(pub: Published) -> Mde | None:
    """The design's row for the longest follow-up the median care-planned person had (the
    first row when follow-up is shorter than all), as Table 3's power rule reads it."""
    design, impact = pub.design, pub.impact
    if not isinstance(design, DesignBlock) or not design.mde:
        return None
    months = (
        impact.follow_up.median_months
        if isinstance(impact, ImpactBlock) and impact.follow_up
        else None
    )
    rows = [
        r for r in design.mde if isinstance(months, int | float) and r.followup_months <= months
    ]
    return rows[-1] if rows else design.mde[0]


def power_sentence(pub: Published) -> str:
    """The power of the matched study in words: the smallest fall it could detect with the
    follow-up available, against the planned fall (well powered or not)."""
    row = usable_mde(pub)
    design = pub.design if isinstance(pub.design, DesignBlock) else None
    mde = _n(row.mde_rate_ratio) if row is not None else None
    if row is None or design is None or mde is None:
        return ""
    i = design.mde.index(row)
    detect = fig(f"{(1 - mde) * 100:.0f}%", f"design.mde[{i}].mde_rate_ratio", "fall")
    planned = -design.settings.effect * 100
    well = mde >= 1 + design.settings.effect
    text = (
        f"With {fmt.months(row.followup_months)} of follow-up the study could detect a fall of "
        f"{detect} or more; the planned fall was {planned:.0f}%, so it is "
        + ("well powered for it." if well else "too small or too short to detect it reliably.")
    )
    needed = design.followup_needed_months
    if not well and isinstance(needed, int):
        text += f" About {fmt.months(needed)} of follow-up would be needed."
    elif not well:
        longest = design.mde[-1].followup_months
        text += f" The design found no follow-up up to {fmt.months(longest)} long enough for it."
    return text


def _diff_row(pub: Published) -> tuple[int, Any] | None:
    """Table 2's quoted whole-population difference: the latest start, the last comparator."""
    if not isinstance(pub.monitoring, MonitoringBlock):
        return None
    rows = list(enumerate(pub.monitoring.differences or []))
    rows = [(i, d) for i, d in rows if d.group == "all_eligible"]
    if not rows:
        return None
    quoted = last_comparator(list(dict.fromkeys(d.comparator for _, d in rows)))
    latest = max(d.start for _, d in rows)
    pick = [(i, d) for i, d in rows if d.start == latest and d.comparator == quoted]
    return pick[-1] if pick else None


def _round(x: float) -> float:
    """Pounds without false precision: to the nearest £1,000 from £10,000 up, else £10."""
    return round(x, -3) if abs(x) >= 10_000 else round(x, -1)


def _money_change(x: float) -> str:
    """A change in pounds in words: "a fall of £224,000", "a rise of £25,000"."""
    return f"a {'fall' if x < 0 else 'rise'} of {fmt.money(_round(abs(x)))}"


def _points(v: float) -> str:
    return f"{abs(v):.1f} percentage points {'lower' if v < 0 else 'higher'}"


def board(pub: Published, programme_areas: tuple[str, ...], treated: str) -> str:
    """The board summary's HTML (without the objectives table and the background strip)."""
    e = emergency(pub)
    out = []
    a = "impact.outcomes.emergency_admissions."
    if e is None or _n(e.rate_ratio) is None:
        out.append(
            "<p id='headline'>The matched study produced no estimate of emergency admissions "
            "in this run (see the sections below).</p>"
        )
    else:
        imp = pub.impact if isinstance(pub.impact, ImpactBlock) else None
        n = e.n_treated if _n(e.n_treated) is not None else (imp.n_treated if imp else None)
        who = f"the {fig(fmt.count(n), a + 'n_treated', 'count')} {treated} people"
        interval = (
            fig(_chg(e.rate_ratio_ci_low), a + "rate_ratio_ci_low", "change")
            + " to "
            + fig(_chg(e.rate_ratio_ci_high), a + "rate_ratio_ci_high", "change")
        )
        out.append(
            f"<p id='headline'>Among {who}, there were about "
            f"{fig(_chg(e.rate_ratio), a + 'rate_ratio', 'change')} emergency admissions than "
            f"among matched controls (95% {abbr('CI')} {interval}). Fewer admissions is "
            "better.</p>"
        )
        out.append(_absolute(pub, e, n))
        out.append(_how_sure(pub, e))
    out.append(_reconcile(pub, e, programme_areas))
    return "".join(x for x in out if x)


def _absolute(pub: Published, e: Estimate, n: Any) -> str:
    """Admissions per 1,000 people a year, admissions avoided a year, and pounds."""
    a = "impact.outcomes.emergency_admissions."
    base, rr = _n(e.mean_treated_before), _n(e.rate_ratio)
    nn = _n(n)
    if base is None or rr is None:
        return ""
    per = base * PER_YEAR * 1000 * (rr - 1)
    paths = f"{a}mean_treated_before {a}rate_ratio"
    text = (
        f"That is {fig(fmt.number(abs(per), 0), paths, 'per1000')} "
        f"{'fewer' if per < 0 else 'more'} emergency admissions per 1,000 people a year "
        f"(from {fmt.number(base * PER_YEAR * 1000, 0)} before the care plan)"
    )
    if nn is not None:
        avoided = base * PER_YEAR * nn * (1 - rr)
        text += (
            f", or about {fig(fmt.number(abs(avoided), 0), f'{paths} {a}n_treated', 'avoided')} "
            f"admissions {'avoided' if avoided >= 0 else 'added'} a year among the care-planned"
        )
    text += ". "
    imp = pub.impact if isinstance(pub.impact, ImpactBlock) else None
    cost = (imp.outcomes or {}).get("emergency_cost") if imp else None
    c = "impact.outcomes.emergency_cost."
    est = _n(cost.estimate) if cost is not None else None
    if est is not None and nn is not None:
        total = est * PER_YEAR * nn
        lo, hi = (_n(cost.ci_low), _n(cost.ci_high)) if cost is not None else (None, None)
        shown = fig(fmt.money(_round(abs(total))), f"{c}estimate {a}n_treated", "money")
        text += (
            f"The cost of emergency admissions {'fell' if total < 0 else 'rose'} by about "
            f"{shown} a year among them"
        )
        if lo is not None and hi is not None:
            text += (
                f" (95% {abbr('CI')} from {_money_change(lo * PER_YEAR * nn)} to "
                f"{_money_change(hi * PER_YEAR * nn)})"
            )
        text += "."
    else:
        text += "The cost of emergency admissions was not estimated in this run."
    return f"<p id='absolute'>{text}</p>"


def _how_sure(pub: Published, e: Estimate) -> str:
    """One line: the interval, balance, follow-up and power, in words."""
    lo, hi = _n(e.rate_ratio_ci_low), _n(e.rate_ratio_ci_high)
    bits = []
    if lo is not None and hi is not None:
        bits.append(
            "the interval includes no change, so chance cannot be ruled out"
            if lo <= 1 <= hi
            else "the interval excludes no change"
        )
    imp = pub.impact if isinstance(pub.impact, ImpactBlock) else None
    smd = _n(imp.max_abs_smd_after) if imp else None
    if smd is not None:
        shown = fig(fmt.number(smd, 2), "impact.max_abs_smd_after", "ratio")
        state = "well balanced" if smd < BALANCED_SMD else "not fully balanced"
        bits.append(
            f"the matched groups were {state} (largest {abbr('SMD')} {shown}, against "
            f"{BALANCED_SMD:g})"
        )
    f = imp.follow_up if imp else None
    if f and _n(f.median_months) is not None:
        bits.append(
            "median follow-up "
            + fig(fmt.months(f.median_months), "impact.follow_up.median_months", "months")
        )
    diag = e.diagnostics if isinstance(e.diagnostics, dict) else {}
    if diag.get("failed"):
        bits.append(
            "but the estimate failed its diagnostics ("
            + html.escape(failure_text(diag))
            + "), so it is <b>not for decisions</b>"
        )
    elif diag:
        bits.append("it passed every diagnostic assessed (see the matched-control results)")
    cal = e.calibrated if isinstance(e.calibrated, dict) else {}
    if _n(cal.get("rate_ratio_ci_low")) is not None:
        a = "impact.outcomes.emergency_admissions.calibrated."
        bits.append(
            "allowing for the bias the negative controls show, the interval is "
            + fig(_chg(cal["rate_ratio_ci_low"]), a + "rate_ratio_ci_low", "change")
            + " to "
            + fig(_chg(cal["rate_ratio_ci_high"]), a + "rate_ratio_ci_high", "change")
        )
    line = "; ".join(bits)
    power = power_sentence(pub)
    return (
        f"<p id='how-sure'><b>How sure are we?</b> {line[:1].upper() + line[1:]}. {power}</p>"
        if line
        else ""
    )


def _reconcile(pub: Published, e: Estimate | None, programme_areas: tuple[str, ...]) -> str:
    """The whole-area result of Table 2 against the matched one diluted by coverage."""
    picked = _diff_row(pub)
    share, _, _ = coverage(pub, programme_areas)
    if picked is None:
        return ""
    i, d = picked
    if _n(d.difference) is None:
        return ""
    p = f"monitoring.differences[{i}]."
    text = (
        f"Across all eligible people (Table 2, from {fmt.date_words(d.start)}), the pilot's "
        "change in "
        f"emergency admissions was {fig(_points(d.difference), p + 'difference', 'points')} "
        f"than {html.escape(area_prose(d.comparator))}'s (95% {abbr('CI')} "
        f"{_points(d.ci_low)} to {_points(d.ci_high).replace(' percentage points', '')})"
    )
    rr = _n(e.rate_ratio) if e is not None else None
    if share is not None and rr is not None:
        expected = share * (rr - 1) * 100
        inside = _n(d.ci_low) is not None and d.ci_low <= expected <= d.ci_high
        text += (
            f". With only {fmt.pct(share)} of the eligible care-planned, the matched effect "
            f"would show across the whole eligible population as a "
            f"{'fall' if expected < 0 else 'rise'} of about "
            + fig(
                fmt.percent(abs(expected), 0),
                " ".join((RR, *coverage_paths(pub, programme_areas))),
                "diluted",
            )
            + (
                ", which lies inside Table 2's interval: the two results agree, and the "
                "whole-area comparison is too imprecise to see an effect this diluted."
                if inside
                else ", which lies outside Table 2's interval: the two results disagree "
                "(see the sections for why)."
            )
        )
    else:
        text += "."
    return f"<p id='reconcile'>{text}</p>"
