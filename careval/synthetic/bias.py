"""The hidden confounder of the synthetic population (``SynthSettings.hidden_bias``).

The care-planned are chosen partly for an unrecorded decline: from their plan month on, all
their hospital activity runs at ``1 + hidden_bias`` times the rate it would have had, on top of
the plan's own effect. The emergency panel applies it where the plan's effect is applied
(:func:`careval.synthetic.activity.rescale`); :func:`rescale_events` does it for the activity
drawn as events at a constant personal rate (elective admissions, outpatient appointments, A&E
attendances not admitted). Nothing recorded before the plan shows the decline, so matching on
history cannot remove it: a matched study's rate ratios are all biased by about the factor,
which a negative control outcome with a known null (elective admissions, outpatients) reveals.
With ``hidden_bias == 0`` nothing here draws a number, so the tables are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from careval.synthetic.activity import person_events
from careval.synthetic.settings import SynthSettings

# The ``effects`` keys of truth.json whose activity the hidden decline multiplies. A&E attendances
# that end in admission follow the emergency admissions; maternity, regular day attenders and
# community contacts are left alone.
APPLIES_TO = (
    "emergency_admissions",
    "elective_admissions",
    "outpatient_appointments",
    "ae_attendances_not_admitted",
)


def rescale_events(
    person: np.ndarray,
    month: np.ndarray,
    rate_per_year: np.ndarray,
    plan_month: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    change: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Events drawn at ``rate_per_year`` over months [lo, hi), at ``1 + change`` times that
    rate from each person's ``plan_month`` on.

    Parameters
    ----------
    person, month
        The events (person index, window month), as :func:`~careval.synthetic.activity.
        person_events` drew them, sorted by person.
    rate_per_year
        Each person's constant rate the events were drawn at.
    plan_month
        Window month of each person's care plan (``NEVER``: none, nothing changes).
    lo, hi
        First and one-past-last month each person was at risk.
    change
        ``rate_ratio - 1``: a fall thins the events after the plan (each kept with
        probability ``1 + change``), a rise adds events at ``change`` times the rate over
        [plan month, hi). Either way the events after the plan are exactly Poisson at the new
        rate; 0 returns the input untouched, drawing nothing.

    Returns
    -------
    tuple of numpy.ndarray
        The new (person, month), sorted by person (each person's drawn events first).
    """
    if change == 0:
        return person, month
    if change < 0:
        after = month >= plan_month[person]
        keep = ~after
        keep[after] = rng.random(int(after.sum())) < 1 + change
        return person[keep], month[keep]
    start = np.clip(plan_month, lo, hi).astype(np.int32)
    x_person, x_month = person_events(rate_per_year * change, start, hi, rng)
    person = np.concatenate([person, x_person])
    month = np.concatenate([month, x_month])
    order = np.argsort(person, kind="stable")
    return person[order], month[order]


def truth_entry(s: SynthSettings) -> dict[str, Any]:
    """The ``effects.hidden_bias`` object of ``truth.json``."""
    return {
        "rate_ratio": 1 + s.hidden_bias,
        "from_months_after_care_plan": 0,
        "applies_to": list(APPLIES_TO),
        "note": "a hidden confounder, not an effect of the plan: the care-planned were chosen "
        "partly for an unrecorded decline that multiplies the listed activity by rate_ratio "
        "from the plan month on, on top of the planted plan effects (which stay the causal "
        "truth); a matched estimate of each listed outcome is biased by about rate_ratio",
    }
