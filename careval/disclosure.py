"""The settings of small-number disclosure control: which counts are suppressed, how others round.

:class:`DisclosureSettings` only says what the numbers are; :mod:`careval.report.publish.rules`
applies them, once, to every published output of a run on data not flagged synthetic. An
:class:`~careval.evaluation.Evaluation` carries the settings its publication uses, so a study
specification can set them without reaching into the report.

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
