"""The entry point of the clinical indicators: extraction, then each analysis in turn."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import numpy as np
import pandas as pd

from careval.cohort.eligibility import first_diagnosis
from careval.data.access import Dataset
from careval.data.areas import Comparison, data_areas, resolve_areas
from careval.data.truth import known_effects
from careval.errors import ConfigError
from careval.indicators.before_after import _before_after_pairs, _before_after_table, beside_truth
from careval.indicators.dementia import _dementia
from careval.indicators.diabetes import _diabetes_monthly
from careval.indicators.its import _its, difference_name
from careval.indicators.readings import (
    _days,
    _first_month_on_or_after,
    _month_number,
    _person_months,
    _readings,
)
from careval.indicators.result import IndicatorsResult
from careval.indicators.settings import COMPARATORS, MEASURES, IndicatorSettings

RESERVED = (COMPARATORS, "programme_start", "model", "series")  # keys beside the series


def evaluate_indicators(
    ds: Dataset, window: tuple[dt.date, dt.date], settings: IndicatorSettings | None = None
) -> IndicatorsResult:
    """Diabetes control by month and area, before/after a care plan, and dementia diagnoses.

    Parameters
    ----------
    ds
        The dataset (needs persons, practices, registrations; measurements for the diabetes
        indicators, care_plans for the before/after analysis and the plan counts).
    window
        The data window: first and last admission dates (``careval.cohort.summary.data_window``).
        Months are whole calendar months from the window's first month to its last.
    settings
        Thresholds, windows, model choices and areas; defaults as the seed evaluation.

    Returns
    -------
    IndicatorsResult
        Its ``settings`` hold the comparison areas used (every other area of the data when
        ``comparison_areas`` is ``None``).

    Raises
    ------
    ConfigError
        A programme or comparison area is not an area of the data (the message lists the
        data's areas), or no area is left to compare with.
    """
    st = settings or IndicatorSettings()
    if not isinstance(st, IndicatorSettings):
        raise ConfigError(f"settings must be IndicatorSettings; got {type(st).__name__}")
    if (
        not isinstance(window, tuple | list)
        or len(window) != 2
        or not all(isinstance(d, dt.date) for d in window)
        or window[0] > window[1]
    ):
        raise ConfigError(f"window must be two dates (first, last) in order; got {window!r}")
    lo, hi = (d.date() if isinstance(d, dt.datetime) else d for d in window)
    window = (lo, hi)
    areas = _areas(ds, st)
    st = dataclasses.replace(st, comparison_areas=areas.comparators)
    series = _area_series(areas)
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    warnings: list[str] = []
    first_m, last_m = _month_number(window[0]), _month_number(window[1])
    end_day = (window[1] - dt.date(1970, 1, 1)).days
    p, r, pr = ds.table("persons"), ds.table("registrations"), ds.table("practices")
    rp = r.join(pr, "practice_code").join(p, "person_id")
    cols = ["person_id", "area", "start_date", "end_date", "death_date", "birth_month"]

    # --- diabetes -----------------------------------------------------------------------------
    dx = first_diagnosis(ds, "diabetes")
    dreg = rp.join(dx, "person_id").select(*cols, "first_date").to_pandas()
    person_index = pd.Index(pd.unique(dreg.person_id.to_numpy()))
    has_meas = ds.has("measurements")
    if has_meas:
        m = ds.table("measurements")
        meas = (
            m.filter(m.measure.isin(list(MEASURES)))
            .join(dx, "person_id")
            .select("person_id", "date", "measure", "value")
            .to_pandas()
        )
    else:
        meas = pd.DataFrame({"person_id": [], "date": [], "measure": [], "value": []})
        warnings.append("measurements table absent: no diabetes indicators")
    readings = _readings(meas, person_index)
    lap("diabetes extraction")

    d_first = first_m + st.lookback_months
    months = np.arange(d_first, last_m + 1)
    if months.size == 0:
        warnings.append(
            f"the window {window[0]} to {window[1]} is shorter than the {st.lookback_months}-"
            "month look-back: no monthly diabetes series"
        )
    pm = _person_months(
        dreg,
        person_index,
        _first_month_on_or_after(_days(dreg.first_date)),
        d_first,
        last_m,
        areas.data,
    )
    diabetes_monthly = _diabetes_monthly(pm, readings, st, months, series, len(areas.data))
    if not has_meas:
        diabetes_monthly = diabetes_monthly.iloc[0:0]
    lap("diabetes monthly")

    # --- before / after -------------------------------------------------------------------------
    pairs, cohort = _before_after_pairs(ds, dreg, person_index, readings, end_day, st, warnings)
    truth = _truth(ds)
    before_after = beside_truth(_before_after_table(pairs, st), truth)
    lap("before/after")

    # --- dementia -------------------------------------------------------------------------------
    dementia_monthly, dementia_care_plans = _dementia(
        ds, rp, cols, first_m, last_m, st, warnings, areas.data, series
    )
    lap("dementia monthly")
    its, its_fitted = _its(dementia_monthly, st, warnings, areas.name)
    lap("dementia ITS")

    return IndicatorsResult(
        settings=st,
        window=(window[0], window[1]),
        diabetes_monthly=diabetes_monthly,
        before_after=before_after,
        pairs=pairs,
        cohort=cohort,
        dementia_monthly=dementia_monthly,
        dementia_care_plans=dementia_care_plans,
        its=its,
        its_fitted=its_fitted,
        truth=truth,
        warnings=warnings,
        timings=timings,
    )


def _areas(ds: Dataset, st: IndicatorSettings) -> Comparison:
    """The programme's and the comparison areas, checked against the data's."""
    areas = resolve_areas(
        data_areas(ds),
        st.programme_areas,
        st.comparison_areas,
        ("programme_areas", "comparison_areas"),
    )
    if not areas.comparators:
        raise ConfigError(
            "no comparison area: every area of the data ("
            + ", ".join(map(repr, areas.data))
            + ") is a programme area"
        )
    names = (areas.name, difference_name(areas.name), *areas.others)
    clash = [a for a in names if a in RESERVED]
    if clash:
        raise ConfigError(
            f"area {clash[0]!r} has the name of a pooled series or of a key of the indicators' "
            f"results ({', '.join(RESERVED)}); rename it in the practices table"
        )
    return areas


def _area_series(areas: Comparison) -> list[tuple[str, list[int]]]:
    """The series of the monthly tables, each with the codes of the data's areas it adds up:
    the programme's areas pooled, every other area on its own, the comparison areas pooled."""
    code = {a: i for i, a in enumerate(areas.data)}
    return [
        (areas.name, [code[a] for a in areas.programme]),
        *((a, [code[a]]) for a in areas.others),
        (COMPARATORS, [code[a] for a in areas.comparators]),
    ]


def _truth(ds: Dataset) -> dict[str, Any] | None:
    """The injected diabetes and dementia effects of a synthetic dataset (``truth.json``)."""
    effects = known_effects(ds)
    keep: dict[str, Any] = {
        k: effects[k] for k in ("diabetes", "dementia_case_finding") if k in effects
    }
    return keep or None
