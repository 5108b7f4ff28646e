"""Survival and time to the first emergency admission, for the matched-results section.

Drawn from the published ``survival`` block of the impact result
(:mod:`careval.impact.survival`, published by :mod:`careval.report.publish.survival`):
Kaplan-Meier step curves of both arms (staying alive; staying free of an emergency
admission), the cumulative incidence of a first emergency admission with death competing,
the hazard ratios (Cox, and Fine-Gray for admission with death competing) with the deaths
and the 12-month figures in a small table, the numbers at
risk, and the person-months the monthly panel loses to death. A withheld point (null) carries
the last published value forward, as a step curve does.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from careval.impact.study import DEATHS, ImpactResult
from careval.report import format as fmt
from careval.report.charts import PALETTE, figure, hover_points, svg_document, tidy
from careval.report.page import table_html

ARMS = (("treated", 0), ("controls", 1))
AT_RISK_EVERY = 6  # months between the columns of the numbers-at-risk table


def _steps(months: list[float], values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A curve's published points with withheld ones (None) carrying the last value on."""
    v = pd.Series([np.nan if x is None else float(x) for x in values]).ffill()
    return np.asarray(months, dtype=float), v.to_numpy(float)


def _chart(
    s: dict[str, Any],
    panels: list[tuple[str, str, str]],
    names: dict[str, str],
    title: str,
    desc: str,
    ylabel: str,
) -> str:
    """One panel per (part, curve, panel title); both arms as step curves in each."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.0), squeeze=False)
    months = s["months"]
    for ax, (part, curve, ptitle) in zip(axes.flat, panels, strict=True):
        for arm, i in ARMS:
            a = s[part]["arms"].get(arm, {})
            if curve not in a:
                continue
            x, y = _steps(months, a[curve])
            ax.step(x, y, where="post", color=PALETTE[i], lw=1.8, label=names[arm])
            keep = np.isfinite(y)
            texts = [
                f"{names[arm]}, month {int(m)}: {fmt.pct(v, 1)}, {fmt.count(n)} at risk"
                for m, v, n in zip(
                    x[keep], y[keep], np.asarray(a["at_risk"], dtype=object)[keep], strict=True
                )
            ]
            hover_points(ax, x[keep], y[keep], texts, color=PALETTE[i], ms=2)
        ax.set_title(ptitle, fontsize=10, loc="left")
        ax.set_xlabel("months since entry", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        tidy(ax)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", frameon=False, fontsize=9, ncol=2)
    fig.suptitle(title, fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return svg_document(fig, title, desc)


def _hr_words(c: dict[str, Any]) -> str:
    hr = c.get("hazard_ratio")
    if hr is None:
        return "not estimated"
    return (
        f"hazard ratio {fmt.ratio(hr)} ({fmt.ratio(c.get('hazard_ratio_ci_low'))} to "
        f"{fmt.ratio(c.get('hazard_ratio_ci_high'))}, {fmt.p_value(c.get('p_value'))})"
    )


def _table(r: ImpactResult, s: dict[str, Any], names: dict[str, str]) -> pd.DataFrame:
    """Death and first emergency admission: events per arm, 12-month figures, the HR."""
    d, a = s["death"], s["first_admission"]
    truth = r.truth.get(DEATHS) if r.truth else None
    rows = []
    for what, part, landmark, model in (
        ("Death (any cause)", d, "survival_12", "cox"),
        ("First emergency admission (death censors)", a, "survival_12", "cox"),
        ("First emergency admission, death competing (Fine-Gray)", a, "incidence_12", "fine_gray"),
    ):
        c = part.get(model, {})
        row: dict[str, Any] = {"measure": what}
        for arm, _ in ARMS:
            x = part["arms"].get(arm, {})
            value = x.get(landmark)
            if landmark.startswith("survival") and value is not None:
                value = 1 - value  # had the event by 12 months (Kaplan-Meier)
            row[f"{arm}_people_with_event"] = x.get("events")
            row[f"{arm}_by_12_months"] = value
        row |= {
            "hazard_ratio": c.get("hazard_ratio"),
            "ci_low": c.get("hazard_ratio_ci_low"),
            "ci_high": c.get("hazard_ratio_ci_high"),
            "p_value": c.get("p_value"),
        }
        if truth is not None:
            row["planted_truth"] = truth if part is d else None
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.astype(object).where(df.notna(), None)


def _at_risk(s: dict[str, Any], names: dict[str, str]) -> pd.DataFrame:
    months = [int(m) for m in s["months"]]
    shown = [m for m in months if m % AT_RISK_EVERY == 0]
    rows = []
    for arm, _ in ARMS:
        a = s["death"]["arms"].get(arm, {})
        at = dict(zip(months, a.get("at_risk", []), strict=False))
        rows.append({"arm": names[arm]} | {f"month {m}": at.get(m) for m in shown})
    return pd.DataFrame(rows)


def survival_parts(r: ImpactResult) -> list[str]:
    """The survival sub-section's parts (empty when the study has no survival block or it
    was withheld)."""
    s = r.survival
    if not s or "death" not in s:
        return []
    treated = r.settings.intervention.treated
    names = {"treated": treated, "controls": "matched controls"}
    d, a = s["death"], s["first_admission"]
    dt_, dc = d["arms"]["treated"], d["arms"]["controls"]
    at, ac = a["arms"]["treated"], a["arms"]["controls"]
    esc = html.escape
    truth = r.truth.get(DEATHS) if r.truth else None
    truth_words = (
        f" These data are synthetic and the generator planted no effect on death (hazard "
        f"ratio {fmt.ratio(truth)}): the interval should cover it."
        if truth is not None
        else ""
    )
    text = (
        "<h3>Survival and time to the first emergency admission</h3>"
        f"<p id='impact-survival'>Following everyone from entry: "
        f"{fmt.count(dt_.get('events'))} of the {esc(treated)} and "
        f"{fmt.count(dc.get('events'))} matched controls died. Against their matched controls "
        f"the {esc(treated)} had a {esc(_hr_words(d['cox']))} for death.{esc(truth_words)} "
        f"Within 12 months, {fmt.pct(at.get('incidence_12'), 0)} of the {esc(treated)} and "
        f"{fmt.pct(ac.get('incidence_12'), 0)} of matched controls had an emergency admission "
        f"(counting only admissions before any death); the hazard of a first emergency "
        f"admission: {esc(_hr_words(a['cox']))}, and with death competing (Fine-Gray "
        f"subdistribution) {esc(_hr_words(a.get('fine_gray', {})))}.</p>"
        "<p class='note'>Kaplan-Meier and Aalen-Johansen curves weighted as matched (the "
        "controls of a set share the weight of one person); Cox models with the same weights "
        "and standard errors clustered on the person. A death ends the time to admission "
        "(death competes with admission: people who die cannot be admitted, so the "
        "cumulative incidence shows admissions and deaths before admission together). "
        "Controls not yet treated leave the comparison at their own treatment. The first "
        "admission's hazard ratio is not the study's rate ratio: it counts only the first "
        "admission from entry, including the implementation months.</p>"
    )
    km = _chart(
        s,
        [
            ("death", "survival", "Alive"),
            ("first_admission", "survival", "Free of emergency admission (death censors)"),
        ],
        names,
        "Survival and time to first emergency admission",
        f"Kaplan-Meier curves by month since entry, {treated} against matched controls",
        "share of people",
    )
    cif = _chart(
        s,
        [
            ("first_admission", "incidence", "First emergency admission"),
            ("first_admission", "incidence_death", "Death before any emergency admission"),
        ],
        names,
        "Cumulative incidence with death competing",
        f"Aalen-Johansen cumulative incidence by month since entry, {treated} against "
        "matched controls",
        "cumulative share",
    )
    lost = s.get("panel_deaths", {})
    lt, lc = lost.get("treated", {}), lost.get("controls", {})
    panel_note = (
        "<p class='note' id='impact-panel-deaths'>Death also ends a person's months in the "
        "monthly panel of the difference-in-differences: a month counts while the person is "
        "alive on its first day. Person-months after entry lost to death: "
        f"{fmt.number(lt.get('person_months_lost_to_death'), 0)} of the {esc(treated)} "
        f"(beside {fmt.number(lt.get('person_months_followed'), 0)} followed) and "
        f"{fmt.number(lc.get('person_months_lost_to_death'), 0)} of matched controls, "
        f"weighted as matched (beside {fmt.number(lc.get('person_months_followed'), 0)}).</p>"
    )
    labels = {
        "measure": "Event",
        "treated_people_with_event": f"{treated}: people",
        "treated_by_12_months": f"{treated}: by 12 months",
        "controls_people_with_event": "Controls: people",
        "controls_by_12_months": "Controls: by 12 months",
        "hazard_ratio": "Hazard ratio",
        "planted_truth": "Planted hazard ratio",
    }
    kinds: dict[str, fmt.Kind] = {
        "treated_by_12_months": "share",
        "controls_by_12_months": "share",
        "ci_low": "ratio",
        "ci_high": "ratio",
        "planted_truth": "ratio",
        "treated_people_with_event": "count",
        "controls_people_with_event": "count",
    }
    return [
        text,
        figure(
            km,
            f"Staying alive and staying free of an emergency admission after entry, "
            f"{treated} against matched controls: {_hr_words(d['cox'])} for death.",
            "impact-survival-km",
        ),
        figure(
            cif,
            "Cumulative incidence of a first emergency admission and of death before one: "
            f"{fmt.pct(at.get('incidence_12'), 0)} against "
            f"{fmt.pct(ac.get('incidence_12'), 0)} admitted within 12 months.",
            "impact-survival-cif",
        ),
        table_html(_table(r, s, names), labels, "impact-survival-table", ("measure",), kinds),
        table_html(
            _at_risk(s, names),
            {"arm": "Number at risk"},
            "impact-survival-at-risk",
            ("arm",),
            {c: "count" for c in _at_risk(s, names).columns if c != "arm"},
        ),
        panel_note,
    ]
