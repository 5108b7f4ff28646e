"""Condition code lists: the ones shipped with careval (``conditions.csv``) and custom files.

A code list is named by a built-in condition (a value of ``conditions.csv``'s ``condition``
column: ``"diabetes"``, ``"copd"``, ...) or by the path of a CSV file in the same format:

``condition``
    The list's name, one for every row: lower-case letters, digits and underscores, starting
    with a letter, and not a built-in name (it names columns such as ``has_<condition>`` and
    the eligibility groups, e.g. ``under_65_with_<condition>``).
``label``
    How the report names it ("COPD", "Frailty"), one for every row.
``code_system``
    The coding system of the code (``SNOMED`` or ``ICD10`` for diagnoses; ``RxNorm``,
    ``RxNorm Extension``, ``dm+d``, ``ATC`` or ``OMOP`` for medications).
``code``
    The code or value.
``match``
    ``exact`` or ``prefix`` (the code starts with it).
``description``
    Free text (may be empty).

:func:`code_list` reads either kind and refuses a missing file, an unknown name or a malformed
row with a :class:`~careval.errors.ConfigError` naming it.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from careval.data.schema import CODE_SYSTEMS, MEDICATION_CODE_SYSTEMS
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


COLUMNS = ("condition", "label", "code_system", "code", "match", "description")
MATCHES = ("exact", "prefix")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class CodeList:
    """One condition's codes: a built-in list or a custom CSV file (``source`` says which)."""

    name: str
    label: str
    codes: tuple[Code, ...]
    source: str  # "built-in" or the file's path

    @property
    def phrase(self) -> str:
        """The label inside a sentence: "diabetes", "COPD", "heart failure"."""
        lab = self.label
        return lab[0].lower() + lab[1:] if lab[1:2].islower() or len(lab) == 1 else lab


def is_path(ref: str) -> bool:
    """Whether a code-list reference names a file rather than a built-in condition."""
    return ref.lower().endswith(".csv") or "/" in ref or "\\" in ref


def code_list(ref: str) -> CodeList:
    """The code list ``ref`` names: a built-in condition, or the path of a CSV code list.

    Raises
    ------
    ConfigError
        For an unknown name, a missing or unreadable file, or a file not in the format above
        (every problem of the file at once).
    """
    if not isinstance(ref, str) or not ref:
        raise ConfigError(f"a code list is a built-in condition name or a CSV path; got {ref!r}")
    if not is_path(ref):
        found = tuple(c for c in codes() if c.condition == ref)
        if not found:
            near = difflib.get_close_matches(ref, conditions(), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(
                f"unknown code list {ref!r}{hint}: give a built-in condition "
                f"({', '.join(conditions())}) or the path of a CSV code list"
            )
        return CodeList(ref, found[0].label, found, "built-in")
    path = Path(ref)
    try:
        stat = path.stat()
    except OSError:
        raise ConfigError(f"code list file {ref} not found") from None
    return _read_file(str(path), stat.st_mtime_ns, stat.st_size)


@cache
def _read_file(path: str, _mtime: int, _size: int) -> CodeList:
    """A custom code list file, read once per version of the file."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"code list file {path} cannot be read ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header and c != "description"]
    if missing:
        raise ConfigError(
            f"code list file {path}: missing column(s) {', '.join(missing)}; the columns are "
            f"{', '.join(COLUMNS)} (as in careval's conditions.csv)"
        )
    problems: list[str] = []
    rows = []
    for i, row in enumerate(reader, start=2):
        r = {c: (row.get(c) or "").strip() for c in COLUMNS}
        bad = [c for c in ("condition", "label", "code_system", "code") if not r[c]]
        if bad:
            problems.append(f"line {i}: empty {', '.join(bad)}")
        if r["match"] not in MATCHES:
            problems.append(f"line {i}: match {r['match']!r} is not 'exact' or 'prefix'")
        if r["code_system"] and r["code_system"] not in CODE_SYSTEMS + MEDICATION_CODE_SYSTEMS:
            problems.append(
                f"line {i}: code_system {r['code_system']!r} is not one of "
                f"{', '.join(CODE_SYSTEMS + MEDICATION_CODE_SYSTEMS)}"
            )
        rows.append(Code(**r))
    names = sorted({c.condition for c in rows if c.condition})
    labels = sorted({c.label for c in rows if c.label})
    if not rows:
        problems.append("no codes")
    if len(names) > 1:
        problems.append(f"one condition per file; found {', '.join(names)}")
    elif names and not NAME.match(names[0]):
        problems.append(
            f"condition {names[0]!r} must be lower-case letters, digits and underscores, "
            "starting with a letter"
        )
    elif names and names[0] in conditions():
        problems.append(
            f"condition {names[0]!r} is a built-in code list; give the file's list another "
            f"name (e.g. {names[0]}_local)"
        )
    if len(labels) > 1:
        problems.append(f"one label per file; found {', '.join(labels)}")
    if problems:
        raise ConfigError(f"code list file {path}: " + "; ".join(problems))
    return CodeList(names[0], labels[0], tuple(rows), path)
