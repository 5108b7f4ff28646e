"""Publication of the time-to-event block (``impact.survival``) under disclosure control.

As the mortality row (:func:`careval.report.publish.impact.mortality_published`): people and
their events are counts (rule 1, every number at risk and every cumulative count of people
with the event); everything is withheld when the matched treated are fewer than the smallest
published. A curve would give back the events between two of its points (with unit weights,
the drop of a Kaplan-Meier curve times the people at risk is the events), so a curve's point
is published only where its arm's people at risk are at least the smallest published and the
people with the event since the arm's previous published point are none or at least the
smallest published; a withheld point is null (the chart carries the last published value
forward). The landmark figures (12 and 24 months) are the published points there. Hazard
ratios are model estimates and stay, as the mortality rate ratio does. Person-months are
rounded to whole months, and those lost to death withheld where the arm's deaths are 1-7.
"""

from __future__ import annotations

import copy
from typing import Any

from careval.disclosure import DisclosureSettings
from careval.report.publish.derived import person_time_out
from careval.report.publish.rules import is_small, protect_value, smallest_published

# Curve -> the cumulative counts of people with its event, by month.
CURVES = {"survival": "events_by", "incidence": "events_by", "incidence_death": "deaths_by"}


def published_points(
    values: list[float], at_risk: list[int], events_by: list[int], d: DisclosureSettings
) -> list[float | None]:
    """A curve's monthly points as published (see the module docstring).

    >>> from careval.disclosure import DisclosureSettings
    >>> published_points([1.0, 0.9, 0.8, 0.7], [40, 36, 30, 9], [0, 4, 8, 12],
    ...                  DisclosureSettings())
    [1.0, None, 0.8, None]
    """
    least = smallest_published(d)
    out: list[float | None] = []
    last = 0
    for v, n, e in zip(values, at_risk, events_by, strict=True):
        new = e - last
        if n >= least and (new == 0 or new >= least):
            out.append(v)
            last = e
        else:
            out.append(None)
    return out


def _arm(a: dict[str, Any], months: list[float], d: DisclosureSettings) -> dict[str, Any]:
    out = dict(a)
    for curve, counts in CURVES.items():
        if curve in a:
            points = published_points(a[curve], a["at_risk"], a[counts], d)
            out[curve] = points
            for key in a:
                tail = key.removeprefix(f"{curve}_")
                if tail != key and tail.isdigit():
                    m = float(tail)
                    out[key] = points[months.index(m)] if m in months else None
    for key in ("at_risk", "events_by", "deaths_by"):
        if key in a:
            out[key] = [protect_value(v, d) for v in a[key]]
    for key in ("people", "events", "people_died"):
        if key in a:
            out[key] = protect_value(a[key], d)
    return out


def survival_published(s: dict[str, Any], n_treated: Any, d: DisclosureSettings) -> dict[str, Any]:
    """``impact.survival`` as published under ``d``; ``n_treated``: the matched treated (the
    true count). ``s`` is not changed."""
    if not s:
        return {}
    if is_small(n_treated, d):
        return {"time_unit": s.get("time_unit"), "note": "withheld: too few people"}
    out = copy.deepcopy(s)
    months = [float(m) for m in s.get("months", [])]
    for part in ("death", "first_admission"):
        if part in out:
            out[part]["arms"] = {k: _arm(a, months, d) for k, a in s[part]["arms"].items()}
    for arm, p in s.get("panel_deaths", {}).items():
        q = out["panel_deaths"][arm]
        q["person_months_followed"] = person_time_out(p.get("person_months_followed"))
        died = p.get("people_died")
        lost = person_time_out(p.get("person_months_lost_to_death"))
        q["person_months_lost_to_death"] = None if died and is_small(died, d) else lost
        q["people_died"] = protect_value(died, d)
    return out
