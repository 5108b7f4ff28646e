"""Condition code lists shipped with careval (``conditions.csv``) and helpers to apply them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

# The 15 health needs matched on (the seed names the count, not the list; these are the common
# long-term conditions of predictive-risk and matched-control studies), plus the two eligibility
# conditions.
HEALTH_NEEDS = (
    "hypertension",
    "chd",
    "heart_failure",
    "atrial_fibrillation",
    "stroke_tia",
    "copd",
    "asthma",
    "ckd",
    "cancer",
    "depression",
    "serious_mental_illness",
    "epilepsy",
    "osteoarthritis",
    "hypothyroidism",
    "peripheral_arterial_disease",
)
ELIGIBILITY_CONDITIONS = ("diabetes", "dementia")


@dataclass(frozen=True)
class Code:
    """One code of a condition's list."""

    condition: str
    label: str
    code_system: str
    code: str
    match: str  # "exact" or "prefix"
    description: str


@cache
def codes() -> tuple[Code, ...]:
    """Every code in the shipped list."""
    text = resources.files(__package__).joinpath("conditions.csv").read_text(encoding="utf-8")
    return tuple(Code(**row) for row in csv.DictReader(text.splitlines()))


def conditions() -> list[str]:
    """Condition names in file order."""
    return list(dict.fromkeys(c.condition for c in codes()))


def codes_for(condition: str, code_system: str | None = None) -> list[Code]:
    """The codes of one condition, optionally of one system."""
    found = [
        c
        for c in codes()
        if c.condition == condition and (code_system is None or c.code_system == code_system)
    ]
    if not found:
        raise KeyError(f"no codes for condition {condition!r}")
    return found
