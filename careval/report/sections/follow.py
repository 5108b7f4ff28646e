"""The real-time evaluation section: the estimate at each monthly look against its boundary.

``careval follow`` writes this section as a small page of its own (``report.html`` in the
state folder), from the history it keeps; ``careval run --follow STATE`` puts the same section
in the main report (:func:`run_section`), from the published ``follow`` block, with the months
the run's data would allow a look at that the history does not yet hold.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from careval import __version__
from careval.disclosure import DisclosureSettings
from careval.impact.follow import FollowSettings
from careval.impact.follow_state import SPENDING_NAMES, FollowResult
from careval.report.charts import GREY, PALETTE, figure, hover_points, tidy
from careval.report.page import PageContext, Section, render, svg, table_html


def _month(text: str) -> float:
    """A look's month (``YYYY-MM``) as matplotlib's date number of its first day."""
    return float(mdates.date2num(dt.date.fromisoformat(text + "-01")))


def _chart(
    rows: list[dict[str, Any]], fs: FollowSettings, ratio: bool, detected: str | None
) -> str:
    est = [r for r in rows if r.get("se") is not None]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    x = [_month(r["month"]) for r in est]
    key = (
        ("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high")
        if ratio
        else (
            "estimate",
            "ci_low",
            "ci_high",
        )
    )
    y = np.array([r[key[0]] for r in est], dtype=float)
    lo = np.array([r[key[1]] for r in est], dtype=float)
    hi = np.array([r[key[2]] for r in est], dtype=float)
    ax.fill_between(x, lo, hi, color=PALETTE[4], alpha=0.3, lw=0, label="95% CI (each look)")
    ax.plot(x, y, color=PALETTE[0], lw=2, label="Estimate")
    texts = [
        f"{r['month']}: {r[key[0]]:.3f} (95% CI {r[key[1]]:.3f} to {r[key[2]]:.3f})" for r in est
    ]
    hover_points(ax, x, y, texts, color=PALETTE[0])
    for side, name in (("bound_low", "Boundary"), ("bound_high", None)):
        pts = [(_month(r["month"]), r[side]) for r in est if r.get(side) is not None]
        if pts:
            bx, by = zip(*pts, strict=True)
            ax.plot(bx, by, color=PALETTE[5], lw=1.6, ls="--", marker=".", label=name)
    ax.axhline(1.0 if ratio else 0.0, color=GREY, lw=1)
    if detected:
        ax.axvline(_month(detected), color=PALETTE[7], lw=1, ls=":", label=f"Crossed: {detected}")
    finite = np.concatenate([lo, hi, y])
    finite = finite[np.isfinite(finite)]
    bounds = np.array(
        [r[s] for r in est for s in ("bound_low", "bound_high") if r.get(s) is not None], float
    )
    if finite.size and bounds.size:  # boundaries near the intervals widen the axis; far ones
        span = finite.max() - finite.min()  # (the early looks') run off it, as the text says
        near = bounds[(bounds > finite.min() - span) & (bounds < finite.max() + span)]
        finite = np.concatenate([finite, near])
    if finite.size:
        pad = 0.1 * (finite.max() - finite.min() or 1)
        ax.set_ylim(finite.min() - pad, finite.max() + pad)  # far early boundaries run off
    ax.xaxis_date()
    ax.set_ylabel("Rate ratio" if ratio else "Difference")
    ax.set_title("Estimate at each look and its sequential boundary", loc="left")
    ax.legend(frameon=False, loc="best")
    tidy(ax)
    return svg(
        fig,
        "Estimate and sequential boundary by look",
        "The estimate, its interval and the boundary at each monthly look",
    )


def section(
    rows: list[dict[str, Any]], fs: FollowSettings, detected: dict[str, Any] | None
) -> Section:
    """The section from the assessed history (:func:`careval.impact.follow.assess`)."""
    est = [r for r in rows if r.get("se") is not None]
    ratio = bool(est) and est[0].get("rate_ratio") is not None
    sided = "two-sided" if fs.sides == 2 else "one-sided (benefit)"
    parts = [
        "<p>Each look re-runs the matched study on the data known by the end of its month "
        f"and compares the estimate with a {sided} group-sequential boundary at overall "
        f"level {fs.alpha:g}: {SPENDING_NAMES[fs.spending]} Lan-DeMets alpha spending over the "
        f"information fraction (the planned maximum information {fs.planned_information:.1f}, "
        f"that of a single analysis detecting a rate ratio of {1 + fs.effect:.2f} with "
        f"{fs.power:.0%} power, unless given).</p>"
    ]
    if detected:
        parts.append(
            f"<p><b>The boundary was crossed at the look of {html.escape(detected['month'])}"
            f"</b> ({detected['direction']}).</p>"
        )
    else:
        parts.append("<p>No look has crossed its boundary.</p>")
    if est:
        caption = (
            f"The estimate crossed the boundary in {detected['month']}."
            if detected
            else "The estimate has stayed inside the boundary at every look."
        )
        month = detected["month"] if detected else None
        parts.append(figure(_chart(rows, fs, ratio, month), caption))
    table = [
        {
            "Look": r["month"],
            "Estimate": r.get("rate_ratio") if ratio else r.get("estimate"),
            "CI low": r.get("rate_ratio_ci_low") if ratio else r.get("ci_low"),
            "CI high": r.get("rate_ratio_ci_high") if ratio else r.get("ci_high"),
            "Information fraction": r.get("fraction"),
            "Critical |z|": r.get("critical"),
            "z": r.get("z"),
            "Crossed": "yes"
            if r.get("crossed")
            else ("" if r.get("se") is not None else "no estimate"),
            "Treated": r.get("n_treated"),
        }
        for r in rows
    ]
    parts.append(table_html(pd.DataFrame(table)))
    return Section("follow", "Real-time evaluation", "".join(parts))


def page(
    rows: list[dict[str, Any]],
    fs: FollowSettings,
    detected: dict[str, Any] | None,
    synthetic: bool,
    dataset: str,
    disclosure: DisclosureSettings,
) -> str:
    """A self-contained HTML page holding the section alone."""
    provenance = {
        "careval_version": __version__,
        "dataset": dataset,
        "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return render(
        "careval follow", [section(rows, fs, detected)], synthetic, provenance, disclosure
    )


def run_section(result: FollowResult, ctx: PageContext) -> Section:
    """The section in the main report: the looks of the state the run was given, and whether
    the history has caught up with the run's data."""
    one = section(result.looks, result.settings, result.detected)
    matched = (
        "with the risk model's score among the matching covariates from the look whose data "
        "cover its training year"
        if result.risk_model
        else "without the risk model's score"
    )
    if result.pending:
        n = len(result.pending)
        months = f"{result.pending[0]}" + (f" to {result.pending[-1]}" if n > 1 else "")
        behind = (
            f"<p class='follow-pending'>The data of this run would allow {n} look"
            f"{'s' if n > 1 else ''} the history does not yet hold ({html.escape(months)}): "
            "run <code>careval follow</code> with the same --state to add them.</p>"
        )
    else:
        behind = "<p>The history holds a look at every month the data of this run allow.</p>"
    intro = (
        f"<p>The looks below were taken by <code>careval follow</code> on this dataset, "
        f"matched {matched}.</p>"
    )
    return Section(one.id, one.title, intro + behind + one.html)
