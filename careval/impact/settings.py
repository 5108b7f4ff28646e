"""Settings of the matched impact study (every default is stated in the report)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from careval.data.areas import area_problems, overlap_problems
from careval.errors import ConfigError
from careval.impact.matching import MatchSettings
from careval.settings import Settings

COMPARATORS = ("south_west_london", "rest_of_england")  # outside North West London


@dataclass(frozen=True)
class ImpactSettings(Settings):
    """Settings of the matched study; every default is stated in the report.

    ``programme_areas`` and ``control_areas`` name areas of the data (``practices.area``);
    :func:`careval.impact.study.evaluate_impact` checks them against the data's areas.
    """

    # The programme's areas: with ``not_yet_treated``, their people not yet care-planned are
    # potential controls too. (Everyone with a care plan is treated, wherever registered.)
    programme_areas: tuple[str, ...] = ("pilot",)
    # Where the potential controls are registered.
    control_areas: tuple[str, ...] = COMPARATORS
    # Also take eligible people of the programme's practices not yet care-planned at the entry
    # month (censored at their own plan). Off: nobody with a plan, ever, is a control.
    not_yet_treated: bool = False
    entry_from: dt.date | None = None  # first month of entry (default: the first care plan)
    entry_to: dt.date | None = None  # last (default: the data's end less min_follow_up)
    min_follow_up: int = 3
    pre_months: int = 24
    effect_from_month: int = 3
    horizons: tuple[int, ...] = (3, 6, 12, 24)
    event_window: tuple[int, int] = (-12, 23)
    event_bin_months: int = 3
    match: MatchSettings = field(
        default_factory=lambda: MatchSettings(
            ratio=5,
            caliper=0.2,
            replace=True,
            exact=("entry_month", "female", "age_band"),
            distance="logit_ps",
        )
    )

    def __post_init__(self) -> None:
        problems = area_problems("programme_areas", self.programme_areas)
        problems += area_problems("control_areas", self.control_areas)
        if not problems:
            problems += overlap_problems(self.programme_areas, self.control_areas, "control_areas")
        if problems:
            raise ConfigError("impact settings: " + "; ".join(problems))
        if not 0 <= self.effect_from_month <= 12:
            raise ConfigError("effect_from_month must be between 0 and 12")
        if not 3 <= self.pre_months <= 60:
            raise ConfigError("pre_months must be between 3 and 60")
        if "entry_month" not in self.match.exact:
            raise ConfigError(
                "controls must be assessed at the treated person's month: keep "
                "entry_month among the exact matching variables"
            )
