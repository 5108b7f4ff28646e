"""The settings of small-number disclosure control: which counts are suppressed, how others round.

:class:`DisclosureSettings` only says what the numbers are; :mod:`careval.report.publish.rules`
applies them, once, to every published output of a run on data not flagged synthetic. An
:class:`~careval.evaluation.Evaluation` carries the settings its publication uses, so a study
specification can set them without reaching into the report. A :class:`Note` is a text that
quotes counts (a warning, the reason an analysis did not run) and keeps them apart, so that
publishing can protect them.

Examples
--------
>>> DisclosureSettings()
DisclosureSettings(threshold=8, rounding_base=5)
>>> DisclosureSettings.from_dict({"threshold": 11, "rounding_base": 10}).to_dict()
{'threshold': 11, 'rounding_base': 10}
"""

from __future__ import annotations

from dataclasses import dataclass

from careval.errors import ConfigError
from careval.settings import Settings


@dataclass(frozen=True)
class DisclosureSettings(Settings):
    """The numbers of disclosure control (the defaults: counts of 1-7 suppressed, others
    rounded to the nearest 5, means and rates from fewer than 8 people withheld).

    Parameters
    ----------
    threshold
        The smallest count that may be published. Counts from 1 to ``threshold - 1`` are
        suppressed (shown as ``*``), and so is a count whose rounded value would fall below
        ``threshold`` (with 11 and a base of 10, 11-14 would show as 10, so they are suppressed
        too); means, rates and estimates from fewer people than the smallest count published are
        withheld. At least 2: a count of 1 is always suppressed (data are published without
        disclosure control only when they are flagged synthetic).
    rounding_base
        Every count that is not suppressed is rounded to the nearest multiple of it (0 stays 0;
        1 publishes counts exactly). At least 1.
    """

    threshold: int = 8
    rounding_base: int = 5

    def __post_init__(self) -> None:
        problems = []
        for name, least in (("threshold", 2), ("rounding_base", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < least:
                problems.append(
                    f"disclosure {name} must be a whole number of at least {least}; got {v!r}"
                )
        if problems:
            raise ConfigError("; ".join(problems))


class Note(str):
    """A warning whose text holds counts: the text is exact, its ``counts`` kept for publishing.

    ``Note("{n} of {total} lines", n=3, total=40)`` reads "3 of 40 lines"; published under
    disclosure control (:func:`careval.report.publish.shares.publish_note`) it reads "* of 40
    lines". Counts are written with thousands separators.
    """

    template: str
    counts: dict[str, int]

    def __new__(cls, template: str, **counts: int) -> Note:
        self = super().__new__(cls, template.format(**{k: f"{v:,}" for k, v in counts.items()}))
        self.template = template
        self.counts = dict(counts)
        return self

    def prefixed(self, prefix: str) -> Note:
        """The same note with ``prefix`` (plain text) in front."""
        return Note(prefix.replace("{", "{{").replace("}", "}}") + self.template, **self.counts)


def because(prefix: str, exc: BaseException) -> str:
    """Why an analysis did not run: ``prefix`` and the error's message, keeping its counts.

    An error raised with a :class:`Note` (``ConfigError(Note("only {n} people", n=5))``) gives
    a Note, so the counts it quotes are protected when the reason is published; any other error
    gives plain text.
    """
    message = exc.args[0] if exc.args else ""
    if isinstance(message, Note):
        return message.prefixed(prefix)
    return prefix + str(exc)
