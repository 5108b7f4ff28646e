"""Negative-control outcomes: outcomes the programme cannot plausibly change.

Their estimates measure the study's residual (systematic) error: with no bias they scatter
around a rate ratio of 1 as their standard errors allow; a shift or extra spread is bias that
the matching did not remove, and empirical calibration (:mod:`careval.impact.calibration`)
widens and shifts every estimate's interval by it.

The defaults are hospital activity a care plan for frail or diabetic people has no route to
change: outpatient attendances in surgical and other specialties the plan does not manage, and
elective admissions (planned surgery). Each must be in the data to count; a study spec names
its own list under ``[[negative_controls]]``. Beside them the study adds placebo estimates: each
count outcome's contrast at a fake programme start in the months before entry
(:func:`careval.impact.checks.placebo`), where the true effect is nil by construction.
"""

from __future__ import annotations

from careval.impact.outcome_settings import BUILTIN_OUTCOMES, OutcomeSettings

# Treatment-function (specialty) codes of outpatient attendances used as negative controls.
NEGATIVE_CONTROL_SPECIALTIES: dict[str, str] = {
    "100": "general surgery",
    "101": "urology",
    "110": "trauma and orthopaedics",
    "120": "ear, nose and throat",
    "130": "ophthalmology",
    "330": "dermatology",
    "502": "gynaecology",
}


def _outpatients(code: str, specialty: str) -> OutcomeSettings:
    return OutcomeSettings(
        f"outpatient_attendances_{code}",
        "outpatient_appointments",
        where={"attended": ("true",), "specialty": (code,)},
        label=f"Outpatient attendances: {specialty}",
    )


DEFAULT_NEGATIVE_CONTROLS: tuple[OutcomeSettings, ...] = (
    BUILTIN_OUTCOMES["elective_admissions"],
    *(_outpatients(c, s) for c, s in NEGATIVE_CONTROL_SPECIALTIES.items()),
)
