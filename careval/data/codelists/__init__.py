"""Condition code lists shipped with careval (``conditions.csv``) and helpers to apply them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from careval.data.schema import CODE_SYSTEMS
from careval.errors import ConfigError

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


CODE_LIST_COLUMNS = ("condition", "label", "code_system", "code", "match", "description")


def read_code_list(path: str | Path) -> tuple[Code, ...]:
    """Every code of a CSV code list in the format of the shipped ``conditions.csv``.

    Raises :class:`~careval.errors.ConfigError` naming the file and every problem at once: a
    missing file or column, an unknown code system or match, an empty list.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the code list ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in CODE_LIST_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ConfigError(
            f"{path}: a code list needs the columns {', '.join(CODE_LIST_COLUMNS)}; "
            f"missing {', '.join(missing)}"
        )
    found, problems = [], []
    for i, row in enumerate(reader, start=2):
        code = Code(**{c: (row[c] or "").strip() for c in CODE_LIST_COLUMNS})
        if code.code_system not in CODE_SYSTEMS:
            problems.append(
                f"line {i}: code_system {code.code_system!r} is not one of {CODE_SYSTEMS}"
            )
        if code.match not in ("exact", "prefix"):
            problems.append(f"line {i}: match {code.match!r} is not 'exact' or 'prefix'")
        if not code.code:
            problems.append(f"line {i}: no code")
        found.append(code)
    if not found:
        problems.append("no codes")
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return tuple(found)


def code_list(spec: str) -> tuple[Code, ...]:
    """The codes of a built-in condition (``"copd"``) or of a CSV code list at the path ``spec``."""
    if spec in conditions():
        return tuple(codes_for(spec))
    if spec.lower().endswith(".csv"):
        return read_code_list(spec)
    raise ConfigError(
        f"codes: {spec!r} is neither a built-in condition ({', '.join(conditions())}) nor the "
        "path of a CSV code list"
    )
