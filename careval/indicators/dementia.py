"""Dementia (Figure 4): the 75+ registered, new diagnoses and 6CIT tests a month; care plans."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from careval.cohort.eligibility import first_diagnosis
from careval.data.access import Dataset
from careval.indicators.readings import _days, _month_date, _month_of, _person_months
from careval.indicators.settings import IndicatorSettings

CARE_PLANS_DEMENTIA_DEFINITION = (
    "care_plans records no content or condition, so care plans mentioning dementia are "
    "approximated by plans made for people with a dementia diagnosis (GP or hospital record) "
    "recorded on or before the plan date"
)


def _dementia(
    ds: Dataset,
    rp: Any,
    cols: list[str],
    first_m: int,
    last_m: int,
    st: IndicatorSettings,
    warnings: list[str],
    areas: tuple[str, ...],
    series: list[tuple[str, list[int]]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly 75+ denominators, new diagnoses and 6CIT tests by area; care plans per month.

    ``areas`` are the data's areas; each of ``series`` (a name and the codes of the areas it adds
    up) is one series of the monthly table."""
    age = st.dementia_min_age
    latest_birth = _month_date(last_m - 12 * age)
    old = rp.filter(rp.birth_month <= ibis.date(latest_birth)).select(*cols).to_pandas()
    index = pd.Index(pd.unique(old.person_id.to_numpy()))
    birth_m = _month_of(_days(old.birth_month))
    pm = _person_months(old, index, birth_m + 12 * age, first_m, last_m, areas)
    dem = first_diagnosis(ds, "dementia").to_pandas()
    dem_m = pd.Series(_month_of(_days(dem.first_date)), index=dem.person_id)
    pm_dem = dem_m.reindex(index).to_numpy()
    months = np.arange(first_m, last_m + 1)
    n_areas = len(areas)
    size = months.size * n_areas
    cell = (pm.month.to_numpy() - first_m) * n_areas + pm.area.to_numpy()
    registered = np.bincount(cell, minlength=size)
    new = np.bincount(
        cell, weights=pm_dem[pm.pidx.to_numpy()] == pm.month.to_numpy(), minlength=size
    )
    tests = np.zeros(size)
    if ds.has("measurements"):
        m = ds.table("measurements")
        six = m.filter(m.measure == "six_cit").select("person_id", "date").to_pandas()
        six = six.assign(
            pidx=index.get_indexer(six.person_id.to_numpy()), month=_month_of(_days(six.date))
        )
        six = six[six.pidx >= 0]
        if len(six):
            where = pm.set_index(["pidx", "month"]).area
            a = where.reindex(pd.MultiIndex.from_arrays([six.pidx, six.month]))
            a = a[a.notna()]
            mo = a.index.get_level_values(1).to_numpy()
            tests = np.bincount(
                (mo - first_m) * n_areas + a.to_numpy(np.int64), minlength=size
            ).astype(float)
    frames = []
    grid = {
        "registered": registered.reshape(months.size, n_areas),
        "new_diagnoses": new.reshape(months.size, n_areas),
        "six_cit_tests": tests.reshape(months.size, n_areas),
    }
    for area, sel in series:
        part = {name: g[:, sel].sum(axis=1).astype(np.int64) for name, g in grid.items()}
        frames.append(
            pd.DataFrame(
                {
                    "month": [_month_date(int(x)) for x in months],
                    "month_number": months,
                    "area": area,
                    **part,
                }
            )
        )
    monthly = pd.concat(frames, ignore_index=True)
    monthly["rate_per_1000"] = (
        1000 * monthly.new_diagnoses / monthly.registered.where(monthly.registered > 0)
    )

    plans = pd.DataFrame(
        {"month": [_month_date(int(x)) for x in months], "care_plans": 0, "care_plans_dementia": 0}
    )
    if ds.has("care_plans"):
        cp = ds.table("care_plans").select("person_id", "created_date").to_pandas()
        day = _days(cp.created_date)
        pm_ = _month_of(day) - first_m
        ddx = _days(dem.set_index("person_id").first_date.reindex(cp.person_id))
        inside = (pm_ >= 0) & (pm_ < months.size)
        plans["care_plans"] = np.bincount(pm_[inside], minlength=months.size)
        plans["care_plans_dementia"] = np.bincount(
            pm_[inside], weights=(ddx <= day)[inside], minlength=months.size
        ).astype(np.int64)
    else:
        warnings.append("care_plans table absent: no care plans for people with dementia")
    return monthly, plans
