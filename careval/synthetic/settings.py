"""Settings of the synthetic population and the month calendar the generator works on."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np

from careval.errors import ConfigError
from careval.settings import Settings

EPOCH = dt.date(1970, 1, 1)
_YM = re.compile(r"^(\d{4})-(\d{2})$")

# The areas the generator writes (``practices.area``), the pilot's first: the seed's five areas of
# North West London and its comparators. The analyses take area names from the data instead.
AREAS = ("pilot", "inner_nwl_other", "outer_nwl", "south_west_london", "rest_of_england")
# The pilot's shape, from the seed evaluation and its business case. Its dates are the seed's
# calendar; a population whose programme starts in another month (``programme_start``) has every
# one of them moved by the same number of months (``SynthSettings.moved``).
PILOT_PRACTICES = 103
PILOT_MDGS = 9
PILOT_LAUNCH = "2011-07"  # eligibility counts are calibrated here
CARE_PLANS_FROM = "2011-09"
# By default the first care plans come this many months after the window's first month, as in
# the seed (2009-04 to 2011-09); the programme needs this much data before and after it.
PROGRAMME_LEAD = 29
MONTHS_BEFORE_PROGRAMME = 24
MONTHS_AFTER_PROGRAMME = 12
# Share of the eligible population (counted at launch) care-planned in each calendar month:
# a slow start to December 2011 (the seed's 1,494 plans), most plans in January-April 2012,
# about 30% covered by the end of April 2012, then a steady 1.2% a month.
CARE_PLAN_RAMP = {
    "2011-09": 0.005,
    "2011-10": 0.010,
    "2011-11": 0.015,
    "2011-12": 0.022,
    "2012-01": 0.055,
    "2012-02": 0.065,
    "2012-03": 0.070,
    "2012-04": 0.058,
}
CARE_PLAN_STEADY = 0.012
# Allowed hidden confounder (``SynthSettings.hidden_bias``, a rate ratio - 1).
HIDDEN_BIAS_RANGE = (-0.5, 1.0)


def parse_month(text: str, what: str) -> int:
    """``YYYY-MM`` to a month number (``year*12 + month - 1``)."""
    m = _YM.match(str(text))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ConfigError(f"{what} must be a month as YYYY-MM (e.g. 2009-04); got {text!r}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_text(month: int) -> str:
    """Month number back to ``YYYY-MM``."""
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def moved_date(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months (the day of the month kept; it must exist in every month)."""
    month = day.year * 12 + day.month - 1 + months
    return dt.date(month // 12, month % 12 + 1, day.day)


def month_start_days(months: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the first day of each month number (vectorised)."""
    uniq, inv = np.unique(np.asarray(months), return_inverse=True)  # few distinct months
    firsts = np.array(
        [(dt.date(int(u // 12), int(u % 12 + 1), 1) - EPOCH).days for u in uniq], dtype=np.int32
    )
    return firsts[inv.reshape(-1)]


def days_in_month(months: np.ndarray) -> np.ndarray:
    """Number of days in each month number."""
    return month_start_days(months + 1) - month_start_days(months)


@dataclass(frozen=True)
class SynthSettings(Settings):
    """Everything that shapes a synthetic population; written into ``truth.json``.

    Parameters
    ----------
    persons
        People generated across all areas. The pilot's 103 practices get ``pilot_share`` of them
        (the default 1,100,000 gives the seed's 550,000 in the pilot); the rest are registered in
        the four comparator areas.
    seed
        Random seed; the same settings and seed give identical tables.
    effect
        True effect of a care plan on the emergency admission rate, as ``rate_ratio - 1``,
        from ``effect_lag_months`` after the plan (default -0.10; 0 means no effect).
    diabetes_effect
        Multiplier of the stated diabetes-process effects; ``None`` scales them with ``effect``
        (``effect / -0.10``), so ``effect=0`` switches every injected effect off.
    start, end
        First and last month of the data window (``YYYY-MM``).
    programme_start
        Month of the first care plans (``YYYY-MM``); ``None`` puts it ``PROGRAMME_LEAD`` (29)
        months after ``start``, where the seed has it (2009-04 to 2011-09). Every date of the
        programme (launch, care-plan ramp, MDG meetings, fund, transcripts, surveys) moves with
        it; it must leave at least 24 months of data before it and 12 after.
    hidden_bias
        A hidden confounder, as ``rate_ratio - 1`` (default 0: none; allowed -0.5 to 1.0). The
        care-planned are then chosen partly for an unrecorded decline that, from their plan
        month on, multiplies all their hospital activity (emergency and elective admissions,
        outpatient appointments of every specialty, A&E attendances not admitted) by
        ``1 + hidden_bias``, on top of the plan's own effect. Matching on the recorded history
        cannot see it: every matched estimate is biased by about that factor, while the
        planted plan effects in ``truth.json`` stay the causal truth (the factor is recorded
        there as ``effects.hidden_bias``).
    """

    persons: int = 1_100_000
    seed: int = 2011
    effect: float = -0.10
    diabetes_effect: float | None = None
    start: str = "2009-04"
    end: str = "2014-03"
    programme_start: str | None = None
    hidden_bias: float = 0.0
    pilot_share: float = 0.5
    effect_lag_months: int = 3
    emergency_rate: float = 0.11  # emergency admissions per person-year overall, baseline year
    comparator_shares: dict[str, float] = field(
        default_factory=lambda: {
            "inner_nwl_other": 0.15,
            "outer_nwl": 0.35,
            "south_west_london": 0.25,
            "rest_of_england": 0.25,
        }
    )

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.persons, int) or self.persons < 1000:
            problems.append(f"persons must be a whole number of at least 1,000; got {self.persons}")
        if self.persons > 20_000_000:
            problems.append(f"persons must be at most 20,000,000; got {self.persons:,}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be a whole number of at least 0; got {self.seed!r}")
        if not -0.9 <= self.effect <= 2.0:
            problems.append(
                f"effect must be between -0.9 and 2.0 (a rate ratio - 1); got {self.effect}"
            )
        if not HIDDEN_BIAS_RANGE[0] <= self.hidden_bias <= HIDDEN_BIAS_RANGE[1]:
            problems.append(
                f"hidden_bias must be between {HIDDEN_BIAS_RANGE[0]} and {HIDDEN_BIAS_RANGE[1]} "
                f"(a rate ratio - 1; 0 means none); got {self.hidden_bias}"
            )
        if not 0.05 <= self.pilot_share <= 0.95:
            problems.append(f"pilot_share must be between 0.05 and 0.95; got {self.pilot_share}")
        if not 0 <= self.effect_lag_months <= 24:
            problems.append("effect_lag_months must be between 0 and 24")
        if not 0.01 <= self.emergency_rate <= 2:
            problems.append("emergency_rate must be between 0.01 and 2 per person-year")
        try:
            first, last = parse_month(self.start, "start"), parse_month(self.end, "end")
            if last - first < 23:
                problems.append(
                    f"the window {self.start} to {self.end} must span at least 24 months"
                )
            if first < parse_month("1990-01", "start") or last > parse_month("2100-12", "end"):
                problems.append("the window must lie between 1990-01 and 2100-12")
        except ConfigError as exc:
            problems.append(str(exc))
        else:
            problems += self._programme_problems(first, last)
        if problems:
            raise ConfigError("; ".join(problems))

    def _programme_problems(self, first: int, last: int) -> list[str]:
        """Why the programme start does not fit the window (nothing when it fits)."""
        try:
            at = self.programme_month
        except ConfigError as exc:
            return [str(exc)]
        what = "programme_start"
        if self.programme_start is None:
            what = f"the default programme start ({PROGRAMME_LEAD} months after start)"
        before, after = at - first, last - at
        if before >= MONTHS_BEFORE_PROGRAMME and after >= MONTHS_AFTER_PROGRAMME:
            return []
        return [
            f"{what} {month_text(at)} leaves {before} months of data before it (from "
            f"{self.start}) and {after} after it (to {self.end}); the programme needs at least "
            f"{MONTHS_BEFORE_PROGRAMME} months before it and {MONTHS_AFTER_PROGRAMME} after"
        ]

    @property
    def first_month(self) -> int:
        """Month number of the first month of the window."""
        return parse_month(self.start, "start")

    @property
    def n_months(self) -> int:
        """Months in the window."""
        return parse_month(self.end, "end") - self.first_month + 1

    @property
    def programme_month(self) -> int:
        """Month number of the first care plans (``programme_start`` or its default)."""
        if self.programme_start is None:
            return self.first_month + PROGRAMME_LEAD
        return parse_month(self.programme_start, "programme_start")

    @property
    def programme_offset(self) -> int:
        """Months the programme is moved from the seed's calendar (0 for the default window)."""
        return self.programme_month - parse_month(CARE_PLANS_FROM, "care plans")

    def moved(self, seed_month: str) -> int:
        """Window month of a month of the seed's programme calendar, moved with the programme.

        >>> SynthSettings(start="2013-01", end="2017-12").moved(CARE_PLANS_FROM)
        29
        """
        return parse_month(seed_month, "month") + self.programme_offset - self.first_month

    @property
    def launch(self) -> int:
        """Window month of the pilot's launch (eligibility is counted here)."""
        return self.moved(PILOT_LAUNCH)

    @property
    def care_plans_from(self) -> int:
        """Window month of the first care plans."""
        return self.moved(CARE_PLANS_FROM)

    @property
    def diabetes_scale(self) -> float:
        """Multiplier of the stated diabetes-process effects."""
        if self.diabetes_effect is not None:
            return float(self.diabetes_effect)
        return float(self.effect / -0.10)
