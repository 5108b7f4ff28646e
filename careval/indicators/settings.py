"""Settings of the clinical indicators: thresholds, windows and model choices, and the names."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from careval.data.areas import area_problems, overlap_problems
from careval.data.schema import MEASURE_RANGES
from careval.errors import ConfigError
from careval.settings import Settings

COMPARATORS = "comparators"  # the comparison areas pooled
INDICATORS = ("hba1c", "total_cholesterol", "bp")
MEASURES = ("hba1c", "total_cholesterol", "sbp", "dbp")
VALUE_MEASURES: dict[str, tuple[str, ...]] = {
    "hba1c": ("hba1c",),
    "total_cholesterol": ("total_cholesterol",),
    "bp": ("sbp", "dbp"),
}
UNITS = {"hba1c": "mmol/mol", "total_cholesterol": "mmol/l", "sbp": "mmHg", "dbp": "mmHg"}


@dataclass(frozen=True)
class IndicatorSettings(Settings):
    """Thresholds, windows and model choices of the clinical indicators.

    Parameters
    ----------
    hba1c_max_mmol_mol
        In control when the latest HbA1c is at most this (mmol/mol).
    total_cholesterol_max_mmol_l
        In control when the latest total cholesterol is at most this (mmol/l).
    sbp_max_mmhg, dbp_max_mmhg
        Blood pressure in control when systolic <= ``sbp_max_mmhg`` and diastolic <=
        ``dbp_max_mmhg`` (mmHg).
    lookback_months
        The latest reading counts when taken in this many months before the month start; also
        the length of the before window and of the after window of the before/after analysis.
    rolling_months
        Months in the rolling average of the monthly shares.
    programme_areas
        The programme's areas, pooled into one series named by
        :func:`careval.data.areas.pooled_name` (``"pilot"`` by default).
    comparison_areas
        Areas compared with the programme (pooled as ``"comparators"``); also where the
        before/after comparison group is drawn. ``None``: every other area in the data, in the
        data's order (the result's settings hold the areas used).
    min_months_on_plan
        People enter the before/after analysis after this many months on a care plan; the after
        window runs from this many months to this plus ``lookback_months``
        (:meth:`after_window_months`).
    programme_start
        First day of the month the programme started (the first care plans): the interruption of
        the dementia time series.
    dementia_min_age
        Age from which people count in the dementia denominator.
    hac_lags
        Newey-West lag of the ITS standard errors; ``None``: ``floor(4 (n / 100) ** (2 / 9))``
        for ``n`` months.
    mcnemar_exact_below
        McNemar's test is exact (binomial) when the discordant pairs are fewer than this.
    comparison_seed
        Seed of the random index dates of the before/after comparison group.
    min_its_months
        Fewest months needed on each side of ``programme_start`` to fit the ITS.
    """

    hba1c_max_mmol_mol: float = 59.0
    total_cholesterol_max_mmol_l: float = 5.0
    sbp_max_mmhg: float = 140.0
    dbp_max_mmhg: float = 80.0
    lookback_months: int = 12
    rolling_months: int = 3
    programme_areas: tuple[str, ...] = ("pilot",)
    comparison_areas: tuple[str, ...] | None = None
    min_months_on_plan: int = 3
    programme_start: dt.date = dt.date(2011, 9, 1)
    dementia_min_age: int = 75
    hac_lags: int | None = None
    mcnemar_exact_below: int = 25
    comparison_seed: int = 2011
    min_its_months: int = 6

    def __post_init__(self) -> None:
        problems = []
        for measure, name in self.limit_fields().items():
            value = getattr(self, name)
            lo, hi = MEASURE_RANGES[measure]
            if not _is_number(value) or not lo <= value <= hi:
                problems.append(f"{name} must be a number from {lo:g} to {hi:g}; got {value!r}")
        for name, lo, hi in (
            ("lookback_months", 1, 60),
            ("rolling_months", 1, 12),
            ("min_months_on_plan", 0, 24),
            ("dementia_min_age", 0, 120),
            ("mcnemar_exact_below", 0, 10_000),
            ("min_its_months", 3, 120),
        ):
            value = getattr(self, name)
            if not _is_int(value) or not lo <= value <= hi:
                problems.append(f"{name} must be a whole number from {lo} to {hi}; got {value!r}")
        if self.hac_lags is not None and (
            not _is_int(self.hac_lags) or not 0 <= self.hac_lags <= 24
        ):
            problems.append(
                f"hac_lags must be None or a whole number from 0 to 24; got {self.hac_lags!r}"
            )
        if not _is_int(self.comparison_seed) or self.comparison_seed < 0:
            problems.append(
                f"comparison_seed must be a whole number >= 0; got {self.comparison_seed!r}"
            )
        area = area_problems("programme_areas", self.programme_areas)
        area += area_problems("comparison_areas", self.comparison_areas, optional=True)
        if not area and self.comparison_areas is not None:
            area += overlap_problems(
                self.programme_areas, self.comparison_areas, "comparison_areas"
            )
        problems += area
        start = self.programme_start
        if not isinstance(start, dt.date) or isinstance(start, dt.datetime) or start.day != 1:
            problems.append(f"programme_start must be the first day of a month; got {start!r}")
        if problems:
            raise ConfigError("indicator settings: " + "; ".join(problems))

    @staticmethod
    def limit_fields() -> dict[str, str]:
        """Measure -> the field holding its in-control maximum."""
        return {
            "hba1c": "hba1c_max_mmol_mol",
            "total_cholesterol": "total_cholesterol_max_mmol_l",
            "sbp": "sbp_max_mmhg",
            "dbp": "dbp_max_mmhg",
        }

    def limits(self) -> dict[str, float]:
        """Measure -> its in-control maximum."""
        return {m: getattr(self, name) for m, name in self.limit_fields().items()}

    def after_window_months(self) -> list[int]:
        """The after window of the before/after analysis, in months after the plan."""
        return [self.min_months_on_plan, self.min_months_on_plan + self.lookback_months]

    def definitions(self) -> dict[str, str]:
        """What "in control" means for each indicator."""
        hba1c, chol = self.hba1c_max_mmol_mol, self.total_cholesterol_max_mmol_l
        sbp, dbp = self.sbp_max_mmhg, self.dbp_max_mmhg
        return {
            "hba1c": f"latest HbA1c <= {hba1c:g} mmol/mol",
            "total_cholesterol": f"latest total cholesterol <= {chol:g} mmol/l",
            "bp": f"latest blood pressure <= {sbp:g}/{dbp:g} mmHg (systolic "
            f"<= {sbp:g} and diastolic <= {dbp:g})",
        }


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
