"""The time-to-event block of ``results.json`` (``impact.survival``) as workbook tables.

The block is published by :mod:`careval.report.publish.survival` (disclosure control applied
there, once): its curves are lists by month inside each arm, so :func:`careval.report.workbook.
tables` finds no list of records in it. :func:`survival_tables` lays the published block out
as four tables, copying its values and deriving none (a withheld point stays empty, a
suppressed count stays ``*``):

- the hazard ratios (Cox for death and for the first emergency admission, death censoring;
  Fine-Gray for the first admission with death competing), one row per model;
- each arm's people, people with the event and the landmark figures (12 and 24 months);
- the curves by month since entry: Kaplan-Meier survival, people at risk and with the event
  so far, and for the first admission the Aalen-Johansen cumulative incidence of admission and
  of death before one, one row per event, arm and month;
- the person-months the monthly panel loses to death, one row per arm.

Each table has a place (``impact.survival.hazard_ratios`` ...) by which the workbook's
catalogue describes it and :mod:`careval.report.publish.units` gives its columns' units, and
the places in ``results.json`` it is drawn from (the Contents sheet's source).
"""

from __future__ import annotations

from typing import Any

# (part of the block, the event's name in the workbook)
EVENTS = (("death", "Death (any cause)"), ("first_admission", "First emergency admission"))
# (part, model key, the model's name in the workbook)
MODELS = (
    ("death", "cox", "Cox"),
    ("first_admission", "cox", "Cox (death censors)"),
    ("first_admission", "fine_gray", "Fine-Gray (death competing)"),
)
ARMS = (("treated", "Care-planned"), ("controls", "Matched controls"))
# Curve columns (the arms' lists by month) in the order shown.
CURVE_KEYS = ("at_risk", "events_by", "survival", "incidence", "incidence_death", "deaths_by")
HR_KEYS = ("hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high", "p_value")
ARM_COUNTS = ("people", "events", "people_died")
LANDMARK_CURVES = ("survival", "incidence", "incidence_death")

Table = tuple[str, str, list[dict[str, Any]]]  # (place, source in results.json, rows)


def _month(m: Any) -> Any:
    """A month as a whole number where it is one (``12.0`` -> ``12``)."""
    return int(m) if isinstance(m, float) and m.is_integer() else m


def hazard_ratio_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model: the hazard ratio, its 95% CI, the p-value (a note when none)."""
    rows = []
    for part, model, name in MODELS:
        fit = s.get(part, {}).get(model)
        if not isinstance(fit, dict):
            continue
        row: dict[str, Any] = {"event": dict(EVENTS)[part], "model": name}
        row |= {k: fit.get(k) for k in HR_KEYS}
        if fit.get("note"):
            row["note"] = fit["note"]
        rows.append(row)
    return rows


def _arms(s: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(event, group, arm)`` of every arm of the block, death first."""
    return [
        (event, group, a)
        for part, event in EVENTS
        for arm, group in ARMS
        if isinstance(a := s.get(part, {}).get("arms", {}).get(arm), dict)
    ]


def arm_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per event and arm: people, people with the event, the landmark figures (the
    same columns in every row, empty where the arm has no such figure)."""
    arms = _arms(s)
    landmarks = [f"{c}_{_month(m)}" for c in LANDMARK_CURVES for m in s.get("landmarks", [])]
    keys = [k for k in (*ARM_COUNTS, *landmarks) if any(k in a for _, _, a in arms)]
    return [{"event": e, "group": g} | {k: a.get(k) for k in keys} for e, g, a in arms]


def curve_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per event, arm and published month: the curves' points and counts."""
    months = [_month(m) for m in s.get("months", [])]
    arms = _arms(s)
    keys = [k for k in CURVE_KEYS if any(isinstance(a.get(k), list) for _, _, a in arms)]
    rows = []
    for event, group, a in arms:
        for i, m in enumerate(months):
            row: dict[str, Any] = {"event": event, "group": group, "month": m}
            for k in keys:
                points = a.get(k)
                row[k] = points[i] if isinstance(points, list) and i < len(points) else None
            rows.append(row)
    return rows


def panel_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per arm: person-months followed and lost to death in the monthly panel."""
    lost = s.get("panel_deaths", {})
    return [{"group": group, **lost[arm]} for arm, group in ARMS if isinstance(lost.get(arm), dict)]


def survival_tables(results: dict[str, Any]) -> list[Table]:
    """The survival tables of the published ``results`` (none when the block is absent or
    withheld): ``(place, source, rows)`` each, the tables without rows left out."""
    impact = results.get("impact")
    s = impact.get("survival") if isinstance(impact, dict) else None
    if not isinstance(s, dict) or not any(isinstance(s.get(p), dict) for p, _ in EVENTS):
        return []
    parts = "impact.survival.{death,first_admission}"
    found: list[Table] = [
        ("impact.survival.hazard_ratios", f"{parts}.{{cox,fine_gray}}", hazard_ratio_rows(s)),
        ("impact.survival.people_and_events", f"{parts}.arms", arm_rows(s)),
        ("impact.survival.curves", f"{parts}.arms, by impact.survival.months", curve_rows(s)),
        ("impact.survival.panel_deaths", "impact.survival.panel_deaths", panel_rows(s)),
    ]
    return [t for t in found if t[2]]
