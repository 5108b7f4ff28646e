"""Domain errors. Every one is a ``ValueError`` the CLI turns into one message and exit code 2."""

from __future__ import annotations

from dataclasses import dataclass, field


class CarevalError(ValueError):
    """Base class for problems with the user's input, settings or data."""


class ConfigError(CarevalError):
    """A setting or command-line option is not allowed."""


class DatasetError(CarevalError):
    """A dataset directory cannot be read (missing, not a dataset, unreadable file)."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: what is wrong, where, how often, and an example."""

    table: str
    column: str
    rule: str
    count: int
    example: str
    allowed: str = ""
    severity: str = "error"  # "error" stops every command; "warning" is reported only
    counts_rows: bool = True  # False for whole-table or whole-column problems

    def line(self) -> str:
        """Human-readable one-line description."""
        text = f"{self.table}.{self.column}: {self.rule}"
        if self.counts_rows:
            text += f" ({self.count:,} {'row' if self.count == 1 else 'rows'})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.example:
            text += f"; e.g. {self.example}"
        return text


@dataclass
class DataValidationError(CarevalError):
    """A dataset broke the canonical model; carries every problem found, not just the first."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{self.path}: {len(errors)} problem{'s' if len(errors) != 1 else ''} found"
        return "\n".join([head] + ["  - " + p.line() for p in errors])
