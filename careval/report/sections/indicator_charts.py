"""The clinical-indicators charts: the seed's Figures 3 (diabetes control) and 4 (dementia).

Each is a matplotlib figure as inline SVG with a title, a description of its values, hover
values and a caption that states its finding; the programme's series is blue and thick, the
pooled comparators black, each comparison area its own Okabe-Ito colour.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from careval.data.areas import pooled_name
from careval.indicators import COMPARATORS, INDICATORS, IndicatorsResult, difference_name
from careval.report import format as fmt
from careval.report.charts import GREY, PALETTE, hover, hover_points, tidy, zero_based
from careval.report.page import area_label, area_prose, svg

TITLES = {
    "hba1c": "HbA1c",
    "total_cholesterol": "Total cholesterol",
    "bp": "Blood pressure",
}
# The programme's series first and blue, the pooled comparators black; each comparison area a
# colour of its own from the rest of the Okabe-Ito palette.
PROGRAMME_COLOUR, POOLED_COLOUR = PALETTE[0], "#000000"
AREA_COLOURS = tuple(c for c in PALETTE if c not in (PALETTE[0], "#000000", "#F0E442"))
# The pooled series' labels (and the seed's programme-minus-comparators); areas: area_label.
LABELS = {
    COMPARATORS: "Comparison areas (pooled)",
    difference_name("pilot"): "Pilot minus comparison areas",
}


def label(name: str) -> str:
    """A series' label: a pooled series' own, else its area's (:func:`area_label`)."""
    return LABELS.get(name) or area_label(name)


def _chart_label(name: str) -> str:
    """:func:`label` for a chart legend (a ``$`` would start matplotlib's mathtext)."""
    return label(name).replace("$", r"\$")


def programme_name(r: IndicatorsResult) -> str:
    """The programme series' name (``"pilot"`` by default)."""
    return pooled_name(r.settings.programme_areas)


def _style(ax: Any) -> None:
    tidy(ax)


def _start_line(ax: Any, start: dt.date) -> None:
    ax.axvline(pd.Timestamp(start), color=GREY, lw=1, ls="--")


def _short(r: IndicatorsResult, ind: str) -> str:
    st = r.settings
    return {
        "hba1c": f"HbA1c \u2264 {st.hba1c_max_mmol_mol:g} mmol/mol",
        "total_cholesterol": f"Total cholesterol \u2264 {st.total_cholesterol_max_mmol_l:g} mmol/L",
        "bp": f"Blood pressure \u2264 {st.sbp_max_mmhg:g}/{st.dbp_max_mmhg:g} mmHg",
    }[ind]


def diabetes_chart(r: IndicatorsResult) -> str:
    """Figure 3: share in control by month (rolling average), pilot against comparators."""
    d = r.diabetes_monthly
    if d.empty:
        return ""
    programme = programme_name(r)
    fig, axes = plt.subplots(1, len(INDICATORS), figsize=(11, 3.6), sharey=False)
    for ax, ind in zip(np.atleast_1d(axes), INDICATORS, strict=True):
        part = d[d.indicator == ind]
        others = list(r.settings.comparison_areas or ())
        for area in (*others, COMPARATORS, programme):
            s = part[part.area == area]
            x = pd.to_datetime(s.month)
            y = 100 * s.share_in_control_rolling
            if area == programme:
                ax.plot(x, y, lw=2.6, color=PROGRAMME_COLOUR, label=_chart_label(area))
                texts = [
                    f"{_chart_label(area)}, {m:%B %Y}: {fmt.number(v, 1)}%"
                    for m, v in zip(x, y, strict=True)
                ]
                hover_points(ax, x, y, texts, color=PROGRAMME_COLOUR, ms=3)
            elif area == COMPARATORS:
                ax.plot(x, y, lw=2.0, ls="--", color=POOLED_COLOUR, label=_chart_label(area))
            else:
                colour = AREA_COLOURS[others.index(area) % len(AREA_COLOURS)]
                ax.plot(x, y, lw=1.1, color=colour, label=_chart_label(area))
        zero_based(ax)
        _start_line(ax, r.settings.programme_start)
        ax.set_title(_short(r, ind), fontsize=10, loc="left")
        ax.set_ylabel("% of people with diabetes" if ind == INDICATORS[0] else "")
        ax.tick_params(axis="x", labelrotation=45, labelsize=9)
        _style(ax)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    fig.legend(
        [handles[i] for i in keep], [labels[i] for i in keep], fontsize=9, frameon=False,
        ncol=4, loc="lower center", bbox_to_anchor=(0.5, -0.14),
    )  # fmt: skip
    title = f"People with diabetes in control ({r.settings.rolling_months}-month rolling average)"
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    return svg(fig, title, _diabetes_desc(r))


def _diabetes_change(r: IndicatorsResult) -> list[tuple[str, str, float, float]]:
    """Per indicator and series (programme, pooled comparators): the share in control (%)
    at the programme start and in the last month, where both are published."""
    d = r.diabetes_monthly
    if d.empty:
        return []
    months = sorted(set(d.month))
    start, last = r.settings.programme_start, months[-1]
    out = []
    for ind in INDICATORS:
        for area in (programme_name(r), COMPARATORS):
            v = d[(d.indicator == ind) & (d.area == area)].set_index("month")
            v = v.share_in_control_rolling
            if start in v.index and last in v.index and pd.notna(v[start]) and pd.notna(v[last]):
                out.append((ind, area, 100 * float(v[start]), 100 * float(v[last])))
    return out


def _diabetes_desc(r: IndicatorsResult) -> str:
    """Figure 3 in words: each series' share in control at the start and at the end."""
    last = max(r.diabetes_monthly.month)
    return (
        f"Share in control from {r.settings.programme_start:%B %Y} to {last:%B %Y}: "
        + "; ".join(
            f"{TITLES[i]}, {label(a)}: {fmt.number(a0, 1)}% to {fmt.number(a1, 1)}%"
            for i, a, a0, a1 in _diabetes_change(r)
        )
        + "."
    )


def diabetes_caption(r: IndicatorsResult) -> str:
    """Figure 3's finding: the programme's change in points against the comparators'."""
    ch = {(i, a): a1 - a0 for i, a, a0, a1 in _diabetes_change(r)}
    programme = programme_name(r)
    bits = [
        f"{TITLES[i]} {fmt.points(ch[(i, programme)])} against {fmt.points(ch[(i, COMPARATORS)])}"
        for i in INDICATORS
        if (i, programme) in ch and (i, COMPARATORS) in ch
    ]
    if not bits:
        return "Share of people with diabetes in control by month (values withheld)."
    return (
        f"Change in the share in control since the programme start, {label(programme)} against "
        "the comparison areas: " + "; ".join(bits) + "."
    )


def dementia_chart(r: IndicatorsResult) -> str:
    """Figure 4: new dementia diagnoses per 1,000 aged 75+ a month, with the ITS lines."""
    d = r.dementia_monthly
    if d.empty:
        return ""
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
    )
    programme = programme_name(r)
    colours = {programme: PROGRAMME_COLOUR, COMPARATORS: POOLED_COLOUR}
    f = r.its_fitted
    for area in (programme, COMPARATORS):
        s = d[d.area == area]
        x = pd.to_datetime(s.month)
        name = _chart_label(area)
        ax.plot(x, s.rate_per_1000, "o", ms=3, color=colours[area], alpha=0.7, label=name)
        texts = [
            f"{name}, {m:%B %Y}: {fmt.number(v, 2)} per 1,000"
            for m, v in zip(x, s.rate_per_1000, strict=True)
        ]
        hover_points(ax, x, s.rate_per_1000, texts, color=colours[area], ms=3, alpha=0.7)
        if not f.empty and area in set(f.series):
            fs = f[f.series == area]
            fx = pd.to_datetime(fs.month)
            post = (fs.month >= r.settings.programme_start).to_numpy()
            for k, seg in enumerate((~post, post)):  # the two segments, not joined
                ax.plot(
                    fx[seg],
                    fs.fitted_ols[seg],
                    lw=2,
                    color=colours[area],
                    label=f"{name}: interrupted time series" if k == 0 else None,
                )
            ax.plot(
                fx[post],
                fs.counterfactual_ols[post],
                lw=1.2,
                ls=":",
                color=colours[area],
                label=f"{name}: pre-programme trend carried on",
            )
    _start_line(ax, r.settings.programme_start)
    age = r.settings.dementia_min_age
    ax.set_ylabel(f"per 1,000 aged {age}+")
    title = f"New dementia diagnoses a month among people aged {age}+"
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylim(bottom=0)
    _style(ax)
    p = r.dementia_care_plans
    bars = ax2.bar(pd.to_datetime(p.month), p.care_plans_dementia, width=25, color=PALETTE[3])
    for b, m, n in zip(bars, pd.to_datetime(p.month), p.care_plans_dementia, strict=True):
        hover(b, f"{m:%B %Y}: {fmt.count(n)} care plans")
    _start_line(ax2, r.settings.programme_start)
    ax2.set_ylabel("care plans")
    ax2.set_title(
        "Care plans for people with a dementia diagnosis by the plan date", fontsize=9, loc="left"
    )
    ax2.tick_params(axis="x", labelrotation=45, labelsize=9)
    _style(ax2)
    fig.tight_layout()
    handles, labels = ax.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    fig.legend(
        [handles[i] for i in keep], [labels[i] for i in keep], fontsize=9, frameon=False,
        ncol=2, loc="upper center", bbox_to_anchor=(0.5, 0.0),
    )  # fmt: skip
    return svg(fig, title, dementia_caption(r))


def _level_change(r: IndicatorsResult, name: str) -> str | None:
    """A series' ITS level change in words with its interval, or None when not estimated."""
    res = r.its.get(name)
    if not isinstance(res, dict) or "ols" not in res:
        return None
    c = res["ols"]["coefficients"]["level_change"]
    return (
        f"{fmt.number(c['estimate'], 2)} per 1,000 (95% CI {fmt.number(c['ci_low'], 2)} to "
        f"{fmt.number(c['ci_high'], 2)})"
    )


def dementia_caption(r: IndicatorsResult) -> str:
    """Figure 4's finding: the level change of the programme against the comparators."""
    programme = programme_name(r)
    own, pooled = _level_change(r, programme), _level_change(r, COMPARATORS)
    diff = _level_change(r, difference_name(programme))
    if own is None:
        return "New dementia diagnoses a month (the interrupted time series was not estimated)."
    text = (
        f"From {r.settings.programme_start:%B %Y} the monthly rate of new dementia diagnoses in "
        f"{area_prose(programme)} changed in level by {own}"
    )
    if pooled is not None:
        text += f", against {pooled} in the comparison areas"
    if diff is not None:
        text += f"; the difference is {diff}"
    return text + "."
