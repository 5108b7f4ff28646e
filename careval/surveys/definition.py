"""A survey definition: questions, answer scales, respondent groups and numbers invited (TOML).

Example (``professionals.toml``)::

    name = "professionals"
    title = "Survey of health and social care professionals"
    data = "professionals.sav"        # CSV, XLSX, SPSS .sav or Stata .dta, beside this file
                                      # (relative to it, and inside the dataset folder)
    respondent_id = "respondent_id"   # optional
    group = "profession"              # optional: the respondent-group column
    weight = "weight"                 # optional: survey weights
    invited = 200                     # optional when every group gives its own
    population = 200                  # optional: finite population correction

    [[groups]]
    code = "1"                        # the value (code or label) in the group column
    label = "General practitioner"
    invited = 110

    [scales.agree5]
    agree = [4, 5]                    # the codes counted as agreeing
    disagree = [1, 2]
    dont_know = [8]                   # answered, but not an opinion: reported apart
    missing = [9]                     # user-missing codes (besides those a .sav declares)
    [scales.agree5.labels]            # optional when the data file carries value labels
    1 = "Strongly disagree"
    2 = "Disagree"
    3 = "Neither agree nor disagree"
    4 = "Agree"
    5 = "Strongly agree"
    8 = "Don't know"

    [[questions]]
    id = "role_unclear"
    column = "q3"                     # default: the id
    text = "My role and responsibilities within the pilot are unclear"
    scale = "agree5"                  # type "likert" (the default with a scale), "choice", "open"
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from careval.errors import ConfigError
from careval.surveys.common import code_text, require_file, resolve_inside

QuestionType = Literal["likert", "choice", "open"]
QUESTION_TYPES: tuple[str, ...] = ("likert", "choice", "open")
DATA_FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".sav": "sav", ".zsav": "sav", ".dta": "dta"}

_TOP_KEYS = {
    "name",
    "title",
    "data",
    "respondent_id",
    "group",
    "weight",
    "invited",
    "population",
    "groups",
    "scales",
    "questions",
}


@dataclass(frozen=True)
class Scale:
    """Answer categories of a question: labels in display order and the codes with a role.

    Codes are text (``"4"``, ``"yes"``); numbers in files are matched as whole numbers.
    ``labels`` may be empty when the data file carries value labels.
    """

    name: str
    labels: tuple[tuple[str, str], ...] = ()
    agree: tuple[str, ...] = ()
    disagree: tuple[str, ...] = ()
    dont_know: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        roles = {"agree": self.agree, "disagree": self.disagree, "dont_know": self.dont_know}
        roles["missing"] = self.missing
        seen: dict[str, str] = {}
        for role, codes in roles.items():
            for c in codes:
                if c in seen:
                    raise ConfigError(
                        f"scale {self.name!r}: code {c!r} is both {seen[c]} and {role}; "
                        "a code can have one role"
                    )
                seen[c] = role


@dataclass(frozen=True)
class Question:
    """One survey item."""

    id: str
    column: str
    text: str
    type: QuestionType = "likert"
    scale: str | None = None

    def __post_init__(self) -> None:
        if self.type not in QUESTION_TYPES:
            raise ConfigError(
                f"question {self.id!r}: type must be likert, choice or open; got {self.type!r}"
            )
        if self.type in ("likert", "choice") and not self.scale:
            raise ConfigError(f"question {self.id!r}: a {self.type} question needs a scale")


@dataclass(frozen=True)
class Group:
    """A respondent group: its value in the group column, a label and the number invited."""

    code: str
    label: str
    invited: int | None = None

    def __post_init__(self) -> None:
        if self.invited is not None and self.invited < 0:
            raise ConfigError(f"group {self.code!r}: invited must be >= 0; got {self.invited}")


@dataclass(frozen=True)
class SurveyDefinition:
    """Everything needed to read and summarise one survey.

    Attributes
    ----------
    name, title : str
        Short name (results key) and title.
    data : pathlib.Path
        The responses file (CSV, XLSX, SPSS .sav/.zsav or Stata .dta).
    respondent_id, group, weight : str or None
        Columns: identifier, respondent group, survey weight.
    invited : int or None
        Number invited overall (default: the sum over groups when every group gives one).
    population : int or None
        Size of the finite population sampled, for the finite population correction.
    groups : tuple of Group
    scales : dict of str to Scale
    questions : tuple of Question
    """

    name: str
    title: str
    data: Path
    questions: tuple[Question, ...]
    scales: dict[str, Scale] = field(default_factory=dict)
    groups: tuple[Group, ...] = ()
    respondent_id: str | None = None
    group: str | None = None
    weight: str | None = None
    invited: int | None = None
    population: int | None = None

    def __post_init__(self) -> None:
        if not self.questions:
            raise ConfigError(f"survey {self.name!r}: no questions defined")
        ids = [q.id for q in self.questions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ConfigError(f"survey {self.name!r}: question ids repeat: {', '.join(dup)}")
        unknown = [q for q in self.questions if q.scale and q.scale not in self.scales]
        if unknown:
            raise ConfigError(
                f"survey {self.name!r}: question {unknown[0].id!r} uses scale "
                f"{unknown[0].scale!r}, which is not defined; defined: "
                f"{', '.join(self.scales) or '(none)'}"
            )
        if self.data.suffix.lower() not in DATA_FORMATS:
            raise ConfigError(
                f"survey {self.name!r}: data file {self.data} has an unknown type; allowed: "
                ".csv, .xlsx, .sav, .zsav, .dta"
            )
        if self.groups and not self.group:
            raise ConfigError(f"survey {self.name!r}: groups are listed but no group column")
        for what, n in (("invited", self.invited), ("population", self.population)):
            if n is not None and n < 1:
                raise ConfigError(f"survey {self.name!r}: {what} must be >= 1; got {n}")

    @property
    def format(self) -> str:
        """``csv``, ``xlsx``, ``sav`` or ``dta``."""
        return DATA_FORMATS[self.data.suffix.lower()]

    @property
    def total_invited(self) -> int | None:
        """Invited overall: ``invited``, else the sum over groups when all give one."""
        if self.invited is not None:
            return self.invited
        if self.groups and all(g.invited is not None for g in self.groups):
            return sum(int(g.invited or 0) for g in self.groups)
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the data path as text)."""
        out = asdict(self)
        out["data"] = str(self.data)
        return out


def load_definition(path: str | Path, root: str | Path | None = None) -> SurveyDefinition:
    """Read a survey definition from TOML; the data path is relative to the TOML file.

    Parameters
    ----------
    path : str or pathlib.Path
        The definition (TOML).
    root : str or pathlib.Path, optional
        The folder the data file must lie in (a dataset's folder); default: the definition's
        own folder. A path leading outside it (``../``, an absolute path elsewhere, a symbolic
        link pointing out) is refused before anything is read from it.

    Raises
    ------
    ConfigError
        If the file is not TOML, a setting is missing or not allowed (all problems at once), or
        the data file lies outside ``root``.
    """
    path = require_file(Path(path), "survey definition")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file ({e})") from None
    return definition_from_dict(
        raw, base=path.parent, source=str(path), root=Path(root) if root else path.parent
    )


def definition_from_dict(
    raw: dict[str, Any],
    base: Path = Path("."),
    source: str = "survey definition",
    root: Path | None = None,
) -> SurveyDefinition:
    """Build a :class:`SurveyDefinition` from parsed TOML (see the module docstring).

    ``data`` is relative to ``base``; with ``root`` given it must lie inside ``root``
    (:func:`load_definition` always gives one), else a ConfigError naming ``source``.
    """
    problems: list[str] = []
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        problems.append(f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    for key in ("name", "data"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.append(f"{key!r} must be given as text")
    questions = raw.get("questions")
    if not isinstance(questions, list) or not questions:
        problems.append("'questions' must be a list of [[questions]] tables with id and text")
        questions = []
    scales_raw = raw.get("scales", {})
    if not isinstance(scales_raw, dict):
        problems.append("'scales' must be a table of [scales.NAME] tables")
        scales_raw = {}
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    data = _data_path(raw["data"], base, root, source)
    try:
        scales = {name: _scale(name, spec) for name, spec in scales_raw.items()}
        qs = tuple(_question(i, q) for i, q in enumerate(questions))
        groups = tuple(_group(i, g) for i, g in enumerate(raw.get("groups", [])))
        return SurveyDefinition(
            name=raw["name"],
            title=str(raw.get("title", raw["name"])),
            data=data,
            questions=qs,
            scales=scales,
            groups=groups,
            respondent_id=_opt_text(raw, "respondent_id"),
            group=_opt_text(raw, "group"),
            weight=_opt_text(raw, "weight"),
            invited=_opt_int(raw, "invited"),
            population=_opt_int(raw, "population"),
        )
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _data_path(text: str, base: Path, root: Path | None, source: str) -> Path:
    """The data file's absolute path; a ConfigError naming ``source`` when it leaves ``root``."""
    path = (base / text).resolve()  # an absolute ``text`` stays itself
    if root is not None and resolve_inside(path, root) is None:
        raise ConfigError(
            f"{source}: data = {text!r} lies outside {Path(root).resolve()}, the folder survey "
            "data must be in; give a path inside it, relative to the definition (e.g. the file "
            "name of responses kept beside it)"
        )
    return path


def _scale(name: str, spec: Any) -> Scale:
    if not isinstance(spec, dict):
        raise ConfigError(f"scale {name!r} must be a table")
    _known_keys(f"scale {name!r}", spec, {"labels", "agree", "disagree", "dont_know", "missing"})
    labels = spec.get("labels", {})
    if not isinstance(labels, dict):
        raise ConfigError(f'scale {name!r}: labels must be a table of code = "label"')
    return Scale(
        name=name,
        labels=tuple((code_text(k), str(v)) for k, v in labels.items()),
        **{k: _codes(name, k, spec.get(k, [])) for k in ("agree", "disagree", "dont_know")},
        missing=_codes(name, "missing", spec.get("missing", [])),
    )


def _known_keys(what: str, table: dict[str, Any], allowed: set[str]) -> None:
    """A ConfigError naming the first key of ``table`` (``what``) that is not ``allowed``."""
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(
            f"{what}: unknown key {extra[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _codes(scale: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"scale {scale!r}: {key} must be a list of codes, e.g. [4, 5]")
    return tuple(code_text(v) for v in value)


def _question(i: int, q: Any) -> Question:
    if not isinstance(q, dict) or not isinstance(q.get("id"), str):
        raise ConfigError(f"question {i + 1} must be a table with an 'id' (text)")
    _known_keys(f"question {q['id']!r}", q, {"id", "column", "text", "type", "scale"})
    qtype = q.get("type", "likert" if q.get("scale") else "open")
    return Question(
        id=q["id"],
        column=str(q.get("column", q["id"])),
        text=str(q.get("text", q["id"])),
        type=qtype,
        scale=q.get("scale"),
    )


def _group(i: int, g: Any) -> Group:
    if not isinstance(g, dict) or "code" not in g:
        raise ConfigError(f"group {i + 1} must be a table with a 'code'")
    invited = g.get("invited")
    if invited is not None and (isinstance(invited, bool) or not isinstance(invited, int)):
        raise ConfigError(f"group {g['code']!r}: invited must be a whole number; got {invited!r}")
    return Group(code=code_text(g["code"]), label=str(g.get("label", g["code"])), invited=invited)


def _opt_text(raw: dict[str, Any], key: str) -> str | None:
    v = raw.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{key!r} must be a column name (text); got {v!r}")
    return v


def _opt_int(raw: dict[str, Any], key: str) -> int | None:
    v = raw.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or int(v) != v:
        raise ConfigError(f"{key!r} must be a whole number; got {v!r}")
    return int(v)
