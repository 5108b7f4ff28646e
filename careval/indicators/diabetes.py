"""Diabetes control by month and area (Figure 3): counts, shares and rolling shares."""

from __future__ import annotations

import numpy as np
import pandas as pd

from careval.indicators.readings import _latest, _month_date, _month_start, _Readings
from careval.indicators.settings import INDICATORS, IndicatorSettings

DIABETES_COLUMNS = [
    "month",
    "area",
    "indicator",
    "people",
    "with_reading",
    "in_control",
    "share_with_reading",
    "share_in_control",
    "share_in_control_rolling",
    "share_with_reading_rolling",
]


def _diabetes_monthly(
    pm: pd.DataFrame,
    readings: dict[str, _Readings],
    st: IndicatorSettings,
    months: np.ndarray,
    series: list[tuple[str, list[int]]],
    n_areas: int,
) -> pd.DataFrame:
    """Counts and shares by month, area and indicator: one series per ``series`` entry (a name and
    the codes of the data's areas it adds up: the programme, each other area, the pooled
    comparators), of ``n_areas`` areas in the data."""
    if months.size == 0:
        return pd.DataFrame(columns=DIABETES_COLUMNS)
    mstart = _month_start(pm.month.to_numpy())
    lo = _month_start(pm.month.to_numpy() - st.lookback_months)
    cell = (pm.month.to_numpy() - months[0]) * n_areas + pm.area.to_numpy()
    size = months.size * n_areas
    people = np.bincount(cell, minlength=size)
    q = pm.pidx.to_numpy(np.int64)
    frames = []
    for ind in INDICATORS:
        latest = _latest(readings, ind, q, lo, mstart - 1, st)
        with_reading = np.bincount(cell, weights=latest.has, minlength=size)
        in_control = np.bincount(cell, weights=latest.control, minlength=size)
        grid = {
            "people": people.reshape(months.size, n_areas),
            "with_reading": with_reading.reshape(months.size, n_areas),
            "in_control": in_control.reshape(months.size, n_areas),
        }
        for area, cols in series:
            part = {name: g[:, cols].sum(axis=1).astype(np.int64) for name, g in grid.items()}
            frames.append(
                pd.DataFrame(
                    {
                        "month": [_month_date(int(m)) for m in months],
                        "area": area,
                        "indicator": ind,
                        **part,
                    }
                )
            )
    df = pd.concat(frames, ignore_index=True)
    denom = df.people.where(df.people > 0)
    df["share_with_reading"] = df.with_reading / denom
    df["share_in_control"] = df.in_control / denom
    k = st.rolling_months
    grouped = df.groupby(["area", "indicator"], sort=False)
    for col in ("share_in_control", "share_with_reading"):
        df[f"{col}_rolling"] = grouped[col].transform(lambda s: s.rolling(k, min_periods=k).mean())
    return df
