"""Before and after a care plan: the cohort, the person-level pairs and the table of tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from careval.data.access import Dataset
from careval.indicators.readings import _add_months, _days, _latest, _Readings
from careval.indicators.settings import INDICATORS, UNITS, VALUE_MEASURES, IndicatorSettings
from careval.indicators.significance import _paired_means, _two_proportions, _welch, mcnemar_test

MCNEMAR_COUNTS = ["both", "before_only", "after_only", "neither"]
BEFORE_AFTER_COLUMNS = [
    "indicator",
    "quantity",
    "analysis",
    "test",
    "n_before",
    "n_after",
    "before",
    "after",
    "change",
    "comparison_n",
    "comparison_change",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "p_value",
    "both",
    "before_only",
    "after_only",
    "neither",
]


def _before_after_pairs(
    ds: Dataset,
    dreg: pd.DataFrame,
    person_index: pd.Index,
    readings: dict[str, _Readings],
    end_day: int,
    st: IndicatorSettings,
    warnings: list[str],
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Person-level pairs of the care-planned with diabetes and of the comparison group."""
    none = np.zeros(0, dtype=np.int64)
    empty = _finish(_pairs(readings, none, none, end_day, st), none.astype(str), none, none)
    cohort = {
        "care_planned": 0,
        "care_planned_with_diabetes": 0,
        "eligible": 0,
        "comparison_eligible": 0,
    }
    if not ds.has("care_plans"):
        warnings.append("care_plans table absent: no before/after analysis")
        return empty, cohort
    cp = ds.table("care_plans")
    # Ordered: the random index dates below are drawn by position in this frame.
    plans = (
        cp.group_by("person_id").agg(plan_date=cp.created_date.min()).order_by("person_id")
    ).to_pandas()
    cohort["care_planned"] = len(plans)
    planned = plans.person_id.to_numpy()
    people = dreg.drop_duplicates("person_id").set_index("person_id")
    plans = plans[plans.person_id.isin(people.index)].reset_index(drop=True)
    plan_day = _days(plans.plan_date)
    dx_day = _days(people.first_date.reindex(plans.person_id))
    death_day = _days(people.death_date.reindex(plans.person_id))
    with_dm = dx_day <= plan_day
    cohort["care_planned_with_diabetes"] = int(with_dm.sum())
    on_plan = _add_months(plan_day, st.min_months_on_plan)
    keep = with_dm & (on_plan <= end_day) & (death_day > on_plan)
    plans = plans[keep].reset_index(drop=True)
    plan_day = plan_day[keep]
    cohort["eligible"] = len(plans)
    if not len(plans):
        warnings.append(
            f"no care-planned person with diabetes has {st.min_months_on_plan} months on a plan "
            "in the window: no before/after analysis"
        )
        return empty, cohort

    # Comparison group: people with diabetes registered in the comparison areas on an index date
    # drawn at random from the care-planned's plan dates.
    rng = np.random.default_rng(st.comparison_seed)
    in_comp = dreg.area.isin(st.comparison_areas) & ~dreg.person_id.isin(planned)
    comp_people = pd.Index(pd.unique(dreg.person_id[in_comp].to_numpy())).sort_values()
    c_index = (
        plan_day[rng.integers(0, plan_day.size, comp_people.size)]
        if comp_people.size
        else plan_day[:0]
    )
    c = pd.DataFrame({"person_id": comp_people, "index_day": c_index})
    creg = dreg[in_comp].merge(c, on="person_id")
    start = _days(creg.start_date)
    end = _days(creg.end_date)
    ok = (
        (start <= creg.index_day)
        & (end >= creg.index_day)
        & (_days(creg.first_date) <= creg.index_day)
        & (_days(creg.death_date) > _add_months(creg.index_day.to_numpy(), st.min_months_on_plan))
        & (_add_months(creg.index_day.to_numpy(), st.min_months_on_plan) <= end_day)
    )
    c = creg[ok.to_numpy()].drop_duplicates("person_id")[["person_id", "index_day"]]
    cohort["comparison_eligible"] = len(c)

    ids = np.concatenate([plans.person_id.to_numpy(), c.person_id.to_numpy()])
    index_day = np.concatenate([plan_day, c.index_day.to_numpy(np.int64)])
    group = np.repeat(["care_planned", "comparison"], [len(plans), len(c)])
    pidx = person_index.get_indexer(ids).astype(np.int64)
    raw = _pairs(readings, pidx, index_day, end_day, st)
    return _finish(raw, ids, group, index_day), cohort


def _finish(
    raw: dict[str, pd.DataFrame], ids: np.ndarray, group: np.ndarray, index_day: np.ndarray
) -> dict[str, pd.DataFrame]:
    """Person ids, group and dates (instead of day numbers) on the pairs."""
    out = {}
    for ind, df in raw.items():
        df.insert(0, "group", group)
        df.insert(0, "person_id", ids)
        df.insert(2, "index_date", index_day.astype("datetime64[D]"))
        for col in [c for c in df.columns if "_day_" in c]:
            days = df.pop(col).to_numpy()
            df[col.replace("_day_", "_date_")] = np.where(
                days >= 0, days.astype("datetime64[D]"), np.datetime64("NaT")
            )
        out[ind] = df.drop(columns=["pidx", "index_day"])
    return out


def _pairs(
    readings: dict[str, _Readings],
    pidx: np.ndarray,
    index_day: np.ndarray,
    end_day: int,
    st: IndicatorSettings,
) -> dict[str, pd.DataFrame]:
    """Per indicator: each person's latest reading before the index and after it."""
    b_lo = _add_months(index_day, -st.lookback_months)
    a_lo = _add_months(index_day, st.min_months_on_plan)
    a_hi = np.minimum(_add_months(index_day, st.min_months_on_plan + st.lookback_months), end_day)
    out = {}
    for ind in INDICATORS:
        cols: dict[str, Any] = {"pidx": pidx, "index_day": index_day}
        for when, lo, hi in (("before", b_lo, index_day), ("after", a_lo, a_hi)):
            latest = _latest(readings, ind, pidx, lo, hi, st)
            for name in VALUE_MEASURES[ind]:
                cols[f"{when}_day_{name}"] = latest.day[name]
                cols[f"{when}_{name}"] = latest.value[name]
            cols[f"{when}_control"] = np.where(latest.has, latest.control.astype(float), np.nan)
        out[ind] = pd.DataFrame(cols)
    return out


def _before_after_table(pairs: dict[str, pd.DataFrame], st: IndicatorSettings) -> pd.DataFrame:
    """Paired, unpaired and comparison-adjusted contrasts for each measure and indicator.

    ``estimate`` (with ``ci_low``, ``ci_high``, ``statistic``, ``p_value``) is the change after
    minus before in the paired and unpaired rows, and the care-planned's mean change minus the
    comparison group's in the ``change vs comparison`` rows.
    """
    rows: list[dict[str, Any]] = []
    labels = st.definitions()
    for ind, df in pairs.items():
        cp = df[df.group == "care_planned"]
        comp = df[df.group == "comparison"]
        quantities = [(f"mean {n} ({UNITS[n]})", n) for n in VALUE_MEASURES[ind]]
        quantities.append((f"share in control ({labels[ind]})", "control"))
        for quantity, col in quantities:
            base = {"indicator": ind, "quantity": quantity}
            both = cp[f"before_{col}"].notna() & cp[f"after_{col}"].notna()
            cboth = comp[f"before_{col}"].notna() & comp[f"after_{col}"].notna()
            x0 = cp.loc[both, f"before_{col}"].to_numpy(float)
            x1 = cp.loc[both, f"after_{col}"].to_numpy(float)
            b_all = cp[f"before_{col}"].dropna().to_numpy(float)
            a_all = cp[f"after_{col}"].dropna().to_numpy(float)
            if col == "control":
                paired = _paired_means(x0, x1)
                paired.update(ci_low=math.nan, ci_high=math.nan)
                paired.update(mcnemar_test(x0, x1, st.mcnemar_exact_below))
                unpaired = {
                    "test": "two-proportion z-test, statsmodels proportions_ztest "
                    "(unpaired, as the seed)",
                    **_two_proportions(a_all, b_all),
                }
            else:
                paired = {"test": "paired t-test, scipy.stats.ttest_rel", **_paired_means(x0, x1)}
                unpaired = {
                    "test": "Welch t-test, scipy.stats.ttest_ind (unpaired, as the seed)",
                    "n_before": b_all.size,
                    "n_after": a_all.size,
                    "before": float(b_all.mean()) if b_all.size else math.nan,
                    "after": float(a_all.mean()) if a_all.size else math.nan,
                    **_welch(a_all, b_all),
                }
                unpaired["change"] = unpaired["after"] - unpaired["before"]
            rows.append({**base, "analysis": "paired", **paired})
            rows.append({**base, "analysis": "unpaired (as the seed)", **unpaired})
            d_comp = (comp.loc[cboth, f"after_{col}"] - comp.loc[cboth, f"before_{col}"]).to_numpy(
                float
            )
            vs = {k: paired[k] for k in ("n_before", "n_after", "before", "after", "change")}
            rows.append(
                {
                    **base,
                    "analysis": "change vs comparison",
                    "test": "Welch t-test of person-level changes, care-planned minus comparison"
                    ", scipy.stats.ttest_ind",
                    **vs,
                    "comparison_n": d_comp.size,
                    "comparison_change": float(d_comp.mean()) if d_comp.size else math.nan,
                    **_welch(x1 - x0, d_comp),
                }
            )
    out = pd.DataFrame(rows).reindex(columns=BEFORE_AFTER_COLUMNS)
    return out.astype(
        {c: "Int64" for c in ["n_before", "n_after", "comparison_n", *MCNEMAR_COUNTS]}
    )


def beside_truth(table: pd.DataFrame, truth: dict[str, Any] | None) -> pd.DataFrame:
    """On synthetic data, ``table`` with the planted change beside each ``change vs
    comparison`` mean (``truth``) and whether its 95% interval covers it (``truth_covered``).

    Those rows estimate the plan's effect (the care-planned's change minus the comparison
    group's), which the generator plants from a number of months after the plan
    (``truth.json`` ``effects.diabetes``: HbA1c, cholesterol, systolic and diastolic, the last
    with the part that follows systolic). The paired and unpaired rows also hold the secular
    trend and the shares in control a threshold's response to it: no planted value is theirs.
    ``table`` unchanged when there is no truth.
    """
    planted = (truth or {}).get("diabetes")
    if not planted or table.empty:
        return table
    quantity = {f"mean {n} ({UNITS[n]})": n for n in UNITS}
    out = table.copy()
    key = out.quantity.map(quantity)
    value = key.map(lambda k: planted.get(k) if isinstance(k, str) else None)
    value = value.where(out.analysis == "change vs comparison")
    out["truth"] = pd.to_numeric(value, errors="coerce")
    has = out.truth.notna() & out.ci_low.notna() & out.ci_high.notna()
    covered = (out.ci_low <= out.truth) & (out.truth <= out.ci_high)
    out["truth_covered"] = covered.where(has).astype(object).where(has, None)
    return out
