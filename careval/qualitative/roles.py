"""The participant roles MDG transcripts may name: the built-in ones and those a study declares.

A transcript's speaker and an attendance row's role must be a declared role, so that a typing
slip or an invented speaker ("WIZARD") is an error naming the file, the line and the role rather
than a participant type with a share of the utterances. The built-in roles are the MDG
attendance roles of the canonical data model (:data:`careval.data.schema.MDG_ROLES`); a study
adds its own in the spec's ``[qualitative]`` section (``roles = ["pharmacist"]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from careval.data.schema import MDG_ROLES
from careval.errors import SHOW_VALUES, ConfigError, quoted_value
from careval.settings import Settings

DEFAULT_ROLES: tuple[str, ...] = MDG_ROLES
_NAME = re.compile(r"[a-z][a-z0-9_/&]{0,60}")


def normalise_role(text: str) -> str:
    """``Presenting GP`` -> ``presenting_gp``."""
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def check_role_names(roles: Iterable[str], where: str) -> None:
    """A ConfigError naming ``where`` when a role could not appear in a transcript line."""
    bad = [r for r in roles if not _NAME.fullmatch(normalise_role(r))]
    if bad:
        raise ConfigError(
            f"{where}: {bad[0]!r} is not a role name; allowed: a letter, then letters, digits, "
            "spaces, _ / & - (up to 61 characters)"
        )


@dataclass(frozen=True)
class TranscriptSettings(Settings):
    """Settings of the transcript analysis.

    Parameters
    ----------
    roles : tuple of str
        The participant roles transcripts and attendance files may name, compared as careval
        compares them (lower case, spaces and hyphens as underscores); default: the built-in
        MDG roles. An utterance or attendance row of any other role is an error.
    """

    roles: tuple[str, ...] = DEFAULT_ROLES

    def __post_init__(self) -> None:
        check_role_names(self.roles, "transcript roles")
        if not self.roles:
            raise ConfigError("transcript roles: declare at least one role")
        object.__setattr__(self, "roles", tuple(dict.fromkeys(map(normalise_role, self.roles))))


def undeclared_problem(
    path: object, found: list[tuple[int, str]], allowed: tuple[str, ...], unit: str
) -> str | None:
    """The message for ``found`` (line number, role as written) whose roles are not
    ``allowed``, or None when every role is declared. ``unit`` names a row ("utterance")."""
    allowed = tuple(dict.fromkeys(map(normalise_role, allowed)))
    bad = [(k, r) for k, r in found if normalise_role(r) not in allowed]
    if not bad:
        return None
    # A speaker written by name ("Dr Anna Patel:") is an identifier: the roles as written are
    # quoted only when messages may quote values (careval --show-examples, synthetic data).
    if SHOW_VALUES.get():
        names = sorted({normalise_role(r) for _, r in bad})
        shown = f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
        line, written = bad[0]
        example = f"e.g. {quoted_value(f'line {line}', written.strip())}"
    else:
        shown = ""
        lines = sorted({k for k, _ in bad})
        example = ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines[:5]))
        example += ", ..." if len(lines) > 5 else ""
    return (
        f"{path}: {len(bad):,} {unit}{'s' if len(bad) != 1 else ''} by a role that is not "
        f"declared{shown}; {example}; allowed: "
        f"{', '.join(allowed)} (a study declares more in its spec: [qualitative] roles = [...])"
    )
