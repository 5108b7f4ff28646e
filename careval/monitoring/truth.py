"""The change Table 2 estimates on a synthetic population, from its ``truth.json``.

The generator (:mod:`careval.synthetic.area_truth`) holds each area's and eligibility group's
case-mix rate at its first-year level and multiplies it by the area's designed trend and a
winter season; in the pilot the care plans then multiply the planned people's rates by their
effect. Table 2's estimand for an area (or the pooled programme areas), a set of groups and a
period is the expected admissions over the person-months it counts::

    rate(P) = sum_{a, g, m in P} L[a, g] * exp(trend[a] * (m - ref) / 12) * season(m)
                                 * f[a, g, m] * at_risk[a, g, m]  /  sum counted[a, g, m]

(``L`` the held rate, ``f`` the plans' factor on the group's expected admissions, 1 outside
the pilot; ``at_risk`` the person-months the rate applies to, ``counted`` those Table 2
counts, which include the month of death). The expected change is ``rate(after) /
rate(before) - 1``. Within one area and group it is the designed ``exp(trend) - 1`` times the
ratio of the plans' mean factors; the all-eligible rows also move with the groups' changing
sizes (the population ages), which the person-month weights carry. The transient shocks
(mean 1) and their rarely reached cap (``maximum_monthly_rate_with_shock``) are left out: the
persistent rate's cap comes before the hold, so it cannot move a group's level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from careval.cohort.eligibility import EligibilitySettings

ALL = "all_eligible"


class AreaSettings(Protocol):
    """What is read of :class:`careval.monitoring.areas.AreaSettings` (which imports this
    module, so it is not imported here)."""

    @property
    def starts(self) -> Sequence[dt.date]: ...
    @property
    def months(self) -> int: ...
    @property
    def eligibility(self) -> EligibilitySettings: ...
    @property
    def programme_areas(self) -> Sequence[str]: ...
    @property
    def comparator_areas(self) -> Sequence[str] | None: ...


def _month(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _parse(text: str) -> int:
    y, m = text.split("-")
    return int(y) * 12 + int(m) - 1


def _applies(at: dict[str, Any], settings: AreaSettings) -> bool:
    """The truth was made for the generator's rule: aged 75+ and/or with diabetes."""
    el, rule = settings.eligibility, at["eligibility"]
    return (
        el.min_age == rule["min_age"]
        and tuple(el.names) == tuple(rule["conditions"])
        and el.combine == rule["combine"]
    )


def expected_area_changes(doc: dict[str, Any], settings: AreaSettings) -> dict[str, Any]:
    """The expected % change of every Table 2 row and of every programme-minus-comparator
    difference, from a synthetic population's ``truth.json`` (``doc``).

    Parameters
    ----------
    doc
        The whole ``truth.json`` object; its ``area_trends`` object is used.
    settings
        Table 2's settings: start dates, months, eligibility and areas (``comparator_areas``
        ``None``: every other area of the truth, in its order).

    Returns
    -------
    dict
        ``table2``: records of ``group``, ``start`` (ISO date), ``area`` (the pooled programme
        row's name or a comparator) and ``true_pct_change``; ``differences``: records of
        ``group``, ``start``, ``comparator`` and ``true_difference`` (percentage points).
        Both empty when the truth has no ``area_trends``, the eligibility rule is not the
        generator's, or a start date leaves no full period in the window.
    """
    at = doc.get("area_trends") if isinstance(doc, dict) else None
    out: dict[str, Any] = {"table2": [], "differences": []}
    if not isinstance(at, dict) or not _applies(at, settings):
        return out
    areas = list(at["held_rate_per_person_month"])
    programme = [a for a in settings.programme_areas if a in areas]
    if len(programme) != len(settings.programme_areas):
        return out
    comparators = (
        [a for a in areas if a not in programme]
        if settings.comparator_areas is None
        else [a for a in settings.comparator_areas if a in areas]
    )
    groups = list(at["groups"])
    first = _parse(at["first_month"])
    ref = _parse(at["trend_reference_month"])
    t = len(at["person_months"][areas[0]][groups[0]])
    months = np.arange(first, first + t)
    sea = at["season"]
    season = 1 + sea["amplitude"] * np.cos(2 * np.pi * (months % 12 - (sea["peak_month"] - 1)) / 12)
    # expected admissions and counted person-months by area, group and window month
    expected, counted = {}, {}
    for a in areas:
        trend = np.exp(at["log_trend_per_year"][a] * (months - ref) / 12) * season
        for g in groups:
            f = np.asarray(at["pilot_effect_factor"][g]) if a == at["effect_area"] else 1.0
            level = at["held_rate_per_person_month"][a][g]
            expected[a, g] = level * trend * f * np.asarray(at["at_risk_person_months"][a][g])
            counted[a, g] = np.asarray(at["person_months"][a][g], dtype=float)
    from_name = "pooled"
    rows: dict[str, list[str]] = {from_name: programme, **{c: [c] for c in comparators}}
    name = " + ".join(programme)
    for start in settings.starts:
        m0 = _month(start) - first
        if m0 - 12 < 0 or m0 + settings.months > t:
            continue
        after = slice(m0, m0 + settings.months)
        before = slice(m0 - 12, m0 - 12 + settings.months)
        for grp in (ALL, *groups):
            gs = groups if grp == ALL else [grp]
            change = {}
            for key, members in rows.items():
                rate = []
                for p in (after, before):
                    e = sum(expected[a, g][p].sum() for a in members for g in gs)
                    n = sum(counted[a, g][p].sum() for a in members for g in gs)
                    rate.append(e / n if n > 0 else np.nan)
                change[key] = 100 * (rate[0] / rate[1] - 1)
                out["table2"].append(
                    {
                        "group": grp,
                        "start": start.isoformat(),
                        "area": name if key == from_name else key,
                        "true_pct_change": float(change[key]),
                    }
                )
            for c in comparators:
                out["differences"].append(
                    {
                        "group": grp,
                        "start": start.isoformat(),
                        "comparator": c,
                        "true_difference": float(change[from_name] - change[c]),
                    }
                )
    return out
