"""The change Table 2 estimates on a synthetic population, from its ``truth.json``.

The generator (:mod:`careval.synthetic.area_truth`) records, for each area, eligibility group
and month, the expected emergency admissions without the transient shocks (mean 1) or the
care plans (``E``), the person-months Table 2 counts (registered and alive on the month's first
day, ``N``), and in the pilot the factor by which the plans multiply the group's expected
admissions (``f``). Table 2's estimand for an area (or the pooled programme areas), a set of
groups and a period ``P`` is::

    rate(P) = sum_{a, g, m in P} E[a, g, m] * f[a, g, m]  /  sum_{a, g, m in P} N[a, g, m]

and the expected change is ``rate(after) / rate(before) - 1``. It carries the designed trend
and season, the case-mix hold and whatever the eligible's case mix does beside it (see
``held_constant``), and the plans' effect. The rarely reached cap on the shocked rate
(``maximum_monthly_rate_with_shock``) is left out.
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
    areas = list(at["expected_admissions"])
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
    t = len(at["person_months"][areas[0]][groups[0]])
    # expected admissions and counted person-months by area, group and window month
    expected, counted = {}, {}
    for a in areas:
        for g in groups:
            f = np.asarray(at["pilot_effect_factor"][g]) if a == at["effect_area"] else 1.0
            expected[a, g] = np.asarray(at["expected_admissions"][a][g], dtype=float) * f
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
