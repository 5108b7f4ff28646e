"""The result of the clinical indicators and its ``indicators`` block of ``results.json``."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from careval.data.areas import pooled_name
from careval.indicators.dementia import CARE_PLANS_DEMENTIA_DEFINITION
from careval.indicators.settings import IndicatorSettings


@dataclass
class IndicatorsResult:
    """Everything :func:`evaluate_indicators` found.

    Attributes
    ----------
    settings
        The settings used, ``comparison_areas`` filled in from the data when left ``None``.
    diabetes_monthly
        One row per month, area and indicator (the programme's areas pooled under
        :func:`~careval.data.areas.pooled_name`, then every other area of the data in the
        data's order, then ``"comparators"``, the comparison areas pooled): people
        with diabetes, with a reading, in control, the shares and their rolling averages.
    before_after
        One row per quantity (mean of a measure, share in control) and analysis (paired,
        unpaired as the seed, difference in change against the comparison group), naming the
        test used.
    pairs
        Person-level before and after readings per indicator (``care_planned`` and
        ``comparison`` rows); not exported.
    dementia_monthly
        One row per month and area (the areas as in ``diabetes_monthly``): ``registered``
        (aged ``dementia_min_age``+, registered and alive on the first day),
        ``new_diagnoses``, ``rate_per_1000`` of them and their 6CIT tests (``six_cit_tests``).
    dementia_care_plans
        One row per month: care plans, and care plans for people with dementia by the plan date.
    its
        Interrupted time series of the monthly rate: model description and, per series
        (the programme's, e.g. ``"pilot"``, ``"comparators"`` and the difference, e.g.
        ``"pilot_minus_comparators"``: :func:`careval.indicators.its.difference_name`), the OLS
        coefficients
        (baseline level, pre slope, level change, slope change) with HAC errors and, for the
        first two, the Poisson rate ratios.
    its_fitted
        Month, series, observed rate, fitted and counterfactual (pre-trend carried on) lines.
    """

    settings: IndicatorSettings
    window: tuple[dt.date, dt.date]
    diabetes_monthly: pd.DataFrame
    before_after: pd.DataFrame
    pairs: dict[str, pd.DataFrame]
    cohort: dict[str, Any]
    dementia_monthly: pd.DataFrame
    dementia_care_plans: pd.DataFrame
    its: dict[str, Any]
    its_fitted: pd.DataFrame
    truth: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """The before/after table: one row per quantity and analysis (paired, unpaired as the
        seed, change vs comparison) with ``estimate``, ``ci_low``, ``ci_high``, ``statistic``
        and ``p_value`` (columns: :data:`careval.indicators.before_after.BEFORE_AFTER_COLUMNS`,
        and on synthetic data ``truth`` and ``truth_covered``:
        :func:`careval.indicators.before_after.beside_truth`).
        """
        return self.before_after.copy()

    def summary(self) -> str:
        """A few lines: the cohort, the paired changes and the programme's ITS level change."""
        st = self.settings
        name = pooled_name(st.programme_areas)
        c = self.cohort
        lines = [
            f"Clinical indicators, {self.window[0]} to {self.window[1]}",
            f"Before/after a care plan: {c.get('eligible')} eligible care-planned people with "
            f"diabetes ({c.get('comparison_eligible')} in the comparison group)",
        ]
        t = self.before_after
        if not t.empty:
            paired = t[t.analysis == "paired"]
            for _, row in paired.iterrows():
                est, p = _number(row.estimate), _number(row.p_value)
                if est is None:
                    continue
                share = str(row.quantity).startswith("share")
                shown = f"{100 * est:+.1f} percentage points" if share else f"{est:+.3g}"
                tail = f" (p = {p:.3g}, n = {row.n_before})" if p is not None else ""
                lines.append(f"  {row.quantity}: change {shown}{tail}")
        programme = self.its.get(name)
        if isinstance(programme, dict) and "ols" in programme:
            lc = programme["ols"]["coefficients"]["level_change"]
            lines.append(
                f"Dementia ITS ({name}, from {st.programme_start:%B %Y}): level change "
                f"{lc['estimate']:+.3g} per 1,000 aged {st.dementia_min_age}+ a month "
                f"(95% CI {lc['ci_low']:.3g} to {lc['ci_high']:.3g})"
            )
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``indicators`` block of ``results.json`` (JSON-ready: NaN is ``null``).

        On real data this is the block of the published copy
        (:func:`careval.report.publish.indicators.publish_indicators`), whose tables already
        hold the protected counts (``*`` for a suppressed one) and withheld shares (``None``).
        """
        diabetes, before_after, dementia, plans = (
            self.diabetes_monthly,
            self.before_after,
            self.dementia_monthly,
            self.dementia_care_plans,
        )
        cohort: dict[str, Any] = dict(self.cohort)
        return _clean(
            {
                "settings": _settings_block(self.settings),
                "window": [self.window[0].isoformat(), self.window[1].isoformat()],
                "diabetes": {
                    "definitions": self.settings.definitions(),
                    "population": "people with diabetes coded on or before the first day of "
                    "the month, registered and alive that day; no reading in the look-back "
                    "counts as not in control",
                    "rolling": f"mean of the monthly shares over {self.settings.rolling_months}"
                    " months ending in the month",
                    "monthly": _records(diabetes),
                },
                "before_after": {
                    "definition": f"care-planned people with diabetes coded by their first "
                    f"plan and {self.settings.min_months_on_plan} months on it inside the window"
                    f": latest value in the {self.settings.lookback_months} months before the "
                    f"plan (plan day included) against the latest from "
                    f"{self.settings.min_months_on_plan} to "
                    f"{self.settings.min_months_on_plan + self.settings.lookback_months} months "
                    "after; comparison group: people with diabetes in the comparison areas with "
                    "index dates drawn at random from the plan dates; estimate: change after "
                    "minus before (paired, unpaired) or the care-planned's mean change minus the "
                    "comparison group's (change vs comparison)",
                    "cohort": cohort,
                    "table": _records(before_after),
                },
                "dementia": {
                    "population": f"people aged {self.settings.dementia_min_age}+ registered "
                    "and alive on the first day of the month; a new diagnosis is a first "
                    "dementia code (GP or hospital) dated in the month",
                    "monthly": _records(dementia),
                    "care_plans": _records(plans),
                    "care_plans_definition": CARE_PLANS_DEMENTIA_DEFINITION,
                    "its": self.its,
                },
                "truth": self.truth,
                "warnings": self.warnings,
            }
        )


def _settings_block(st: IndicatorSettings) -> dict[str, Any]:
    """The settings as published: the fields, with the derived ``after_window_months`` after
    ``min_months_on_plan``."""
    out: dict[str, Any] = {}
    for key, value in st.to_dict().items():
        out[key] = value
        if key == "min_months_on_plan":
            out["after_window_months"] = st.after_window_months()
    return out


def _number(v: Any) -> float | None:
    """A finite number, or None (missing, withheld or suppressed)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict(orient="records"):
        out.append({str(k): _scalar(v) for k, v in rec.items()})
    return out


def _scalar(v: Any) -> Any:
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.7g}") if math.isfinite(v) else None
    return v


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return _scalar(obj)
