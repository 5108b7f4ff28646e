"""The entry point of the clinical indicators: extraction, then each analysis in turn."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import numpy as np
import pandas as pd

from careval.cohort.eligibility import first_diagnosis
from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.indicators.before_after import _before_after_pairs, _before_after_table
from careval.indicators.dementia import _dementia
from careval.indicators.diabetes import _diabetes_monthly
from careval.indicators.its import _its
from careval.indicators.readings import (
    _days,
    _first_month_on_or_after,
    _month_number,
    _person_months,
    _readings,
)
from careval.indicators.result import IndicatorsResult
from careval.indicators.settings import MEASURES, IndicatorSettings


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
        Thresholds, windows and model choices; defaults as the seed evaluation.

    Returns
    -------
    IndicatorsResult
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
        dreg, person_index, _first_month_on_or_after(_days(dreg.first_date)), d_first, last_m
    )
    diabetes_monthly = _diabetes_monthly(pm, readings, st, months)
    if not has_meas:
        diabetes_monthly = diabetes_monthly.iloc[0:0]
    lap("diabetes monthly")

    # --- before / after -------------------------------------------------------------------------
    pairs, cohort = _before_after_pairs(ds, dreg, person_index, readings, end_day, st, warnings)
    before_after = _before_after_table(pairs, st)
    lap("before/after")

    # --- dementia -------------------------------------------------------------------------------
    dementia_monthly, dementia_care_plans = _dementia(ds, rp, cols, first_m, last_m, st, warnings)
    lap("dementia monthly")
    its, its_fitted = _its(dementia_monthly, st, warnings)
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
        truth=_truth(ds),
        warnings=warnings,
        timings=timings,
    )


def _truth(ds: Dataset) -> dict[str, Any] | None:
    """The injected diabetes and dementia effects of a synthetic dataset (``truth.json``)."""
    path = ds.path / "truth.json"
    if not ds.synthetic or not path.exists():
        return None
    try:
        effects = json.loads(path.read_text(encoding="utf-8")).get("effects", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    keep = {k: effects[k] for k in ("diabetes", "dementia_case_finding") if k in effects}
    return keep or None
