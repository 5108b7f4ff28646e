"""Publication of the clinical indicators: disclosure control of every table, then the margins.

:func:`publish_indicators` returns the published copy of an
:class:`~careval.indicators.IndicatorsResult` (real data only): counts of 1-7 suppressed (``*``)
and others rounded to 5 (:mod:`careval.report.publish.rules`), a share or rate resting on a
count of 1-7 withheld (``None``), the comparators' margin on the monthly diabetes table (the
pooled comparison areas add up the four areas, so secondary suppression applies across them)
and the pairs' margin on the before/after table. Its ``to_dict()`` is the published
``indicators`` block, and the report section draws its charts and tables from the same copy, so
the page withholds exactly what ``results.json`` withholds.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.indicators import COMPARATORS, IndicatorsResult
from careval.indicators.its import difference_name
from careval.report.publish.derived import count_out, derived, derived_column, ratio_of_published
from careval.report.publish.rules import (
    SUPPRESSED,
    _rounded,
    is_suppressed,
    protect_count,
    protect_table,
    smallest_published,
)

PAIRED_MARGIN = (("both", "before_only", "after_only", "neither"), "n_before")
# The before/after table's estimates and tests: withheld where they rest on fewer than 8 people.
BEFORE_AFTER_RATES = (
    "before",
    "after",
    "change",
    "comparison_change",
    "estimate",
    "ci_low",
    "ci_high",
    "statistic",
    "p_value",
)
DIABETES_COUNTS = ["people", "with_reading", "in_control"]
DIABETES_SHARES = ("share_with_reading", "share_in_control")


def publish_indicators(r: IndicatorsResult, d: DisclosureSettings) -> IndicatorsResult:
    """The published copy of ``r`` under ``d`` (``r`` itself is not changed).

    The tables hold what is published: protected counts (object columns, ``*`` where
    suppressed) and ``None`` for a withheld share or rate; the cohort counts are protected; the
    person-level ``pairs`` are left out (never published).
    """
    dm, de, plans = protected_tables(r, d)
    for c, hide in comparator_margin_suppressed(r, d).items():
        newly = hide & (dm[c] != SUPPRESSED)
        dm.loc[newly, c] = SUPPRESSED
    dm = shares_of_published(dm, r.settings.rolling_months)
    out = copy.deepcopy(dataclasses.replace(r, pairs={}))
    out.diabetes_monthly = dm
    out.before_after = before_after_published(r.before_after, d)
    out.dementia_monthly = de
    out.its = its_published(r, de, d)
    gone = [k for k, v in out.its.items() if isinstance(v, dict) and "withheld" in v]
    if len(r.its_fitted) and gone:  # a withheld series' fitted lines go with it
        out.its_fitted = r.its_fitted[~r.its_fitted["series"].isin(gone)].reset_index(drop=True)
    out.dementia_care_plans = plans
    out.cohort = {k: protect_count(int(v), d) for k, v in r.cohort.items()}
    return out


def its_published(
    r: IndicatorsResult, published: pd.DataFrame, d: DisclosureSettings
) -> dict[str, Any]:
    """The interrupted time series as published.

    A series resting on fewer than :func:`smallest_published` new diagnoses before or after the
    programme start (in either area, for the difference) is withheld whole: its fit on so few
    events would give them back. Otherwise each mean rate is the mean of the published monthly
    rates of its months (withheld when one of them is), not of the true ones.
    """
    its = copy.deepcopy(r.its)
    start = str(its.get("programme_start", ""))
    true, least = r.dementia_monthly, smallest_published(d)
    if not start or true.empty:
        return its
    month = true["month"].astype(str).str[:10]
    series = {k: v for k, v in its.items() if isinstance(v, dict) and "ols" in v}
    areas = set(true["area"])
    for name, block in series.items():
        # an area's own series, or the difference of an area's and the comparators'
        parts = [name] if name in areas else [a for a in areas if difference_name(a) == name]
        parts += [COMPARATORS] if name not in areas and COMPARATORS in areas else []
        rates: dict[str, list[pd.Series]] = {"before": [], "after": []}
        small = not parts
        for area in parts:
            here = true["area"] == area
            for side, rows in (
                ("before", here & (month < start)),
                ("after", here & (month >= start)),
            ):
                small |= int(true.loc[rows, "new_diagnoses"].sum()) < least
                rates[side].append(pd.Series(list(published.loc[rows, "rate_per_1000"])))
        if small:
            keep = ("months", "months_before", "months_after", "hac_lags")
            its[name] = {k: block[k] for k in keep if k in block}
            its[name]["withheld"] = f"fewer than {least} new diagnoses before or after the start"
            continue
        for side in ("before", "after"):
            values = rates[side][0] if len(rates[side]) == 1 else rates[side][0] - rates[side][1]
            ok = len(values) and all(v is not None and pd.notna(v) for v in values)
            block[f"mean_rate_{side}"] = round(float(values.mean()), 6) if ok else None
    return its


def protected_tables(
    r: IndicatorsResult, d: DisclosureSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The monthly diabetes, monthly dementia and care-plan tables under rules 1 and 3.

    Counts of 1-7 are suppressed and others rounded to 5; every share and rate is computed from
    the published counts (:mod:`careval.report.publish.derived`) and withheld when one of them
    is suppressed (a rolling share when any month of its window is withheld).
    """

    def counts(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        out = df.copy()
        for col in cols:
            if col in out:
                out[col] = pd.Series(
                    [None if pd.isna(v) else protect_count(int(v), d) for v in df[col]],
                    index=df.index,
                    dtype=object,
                )
        return out

    dm = shares_of_published(
        counts(r.diabetes_monthly, DIABETES_COUNTS).astype(object), r.settings.rolling_months
    )
    e = r.dementia_monthly
    reg = "registered"
    de = counts(e, [reg, "new_diagnoses", "six_cit_tests"]).astype(object)
    de["rate_per_1000"] = derived_column(de.new_diagnoses, de[reg], 1000.0)
    plans = counts(r.dementia_care_plans, ["care_plans", "care_plans_dementia"])
    return dm, de, plans


def shares_of_published(dm: pd.DataFrame, k: int) -> pd.DataFrame:
    """The monthly diabetes shares of ``dm`` (published counts) recomputed from those counts.

    A share is the published count over the published people (None when either is ``*`` or
    people is 0); a rolling share is the mean of the ``k`` published monthly shares of its
    window (None unless all ``k`` are published), as the analysis averages the true ones.
    """
    out = dm.copy()
    for col, num in zip(DIABETES_SHARES, ("with_reading", "in_control"), strict=True):
        out[col] = derived_column(out[num], out["people"])
        monthly = pd.to_numeric(out[col], errors="coerce").astype(float)
        rolled = monthly.groupby([out["area"], out["indicator"]], sort=False).transform(
            lambda s: s.rolling(k, min_periods=k).mean()
        )
        out[f"{col}_rolling"] = pd.Series(
            [None if pd.isna(v) else float(v) for v in rolled], index=out.index, dtype=object
        )
    return out


def comparator_margin_suppressed(r: IndicatorsResult, d: DisclosureSettings) -> pd.DataFrame:
    """Which monthly diabetes counts the comparators margin suppresses (True: shown as ``*``).

    ``r`` holds the true counts. The pooled comparators add up the comparison areas (each month,
    indicator and count), so secondary suppression applies across them.
    """
    monthly = protect_table(
        r.diabetes_monthly,
        DIABETES_COUNTS,
        d,
        group_margin=(
            "area",
            ["month", "indicator"],
            list(r.settings.comparison_areas or ()),
            COMPARATORS,
        ),
    )
    return pd.DataFrame({c: monthly[c] == SUPPRESSED for c in DIABETES_COUNTS}, index=monthly.index)


def before_after_published(t: pd.DataFrame, d: DisclosureSettings) -> pd.DataFrame:
    """The before/after table with rules 1-3: pairs margin; estimates from < 8 people withheld."""
    counts = ["n_before", "n_after", "comparison_n", *PAIRED_MARGIN[0]]
    out = protect_table(
        t,
        counts,
        d,
        row_margins=[PAIRED_MARGIN],
        rates=BEFORE_AFTER_RATES,
        denominator="n_before",
    ).astype({c: object for c in BEFORE_AFTER_RATES if c in t})
    for i in t.index[t["quantity"].astype(str).str.startswith("share")]:
        _share_row(t.loc[i], out, i, d)
    return out


MODEL_ESTIMATES = ("ci_low", "ci_high", "statistic", "p_value")


def _share_row(row: pd.Series, out: pd.DataFrame, i: Any, d: DisclosureSettings) -> None:
    """One share-in-control row of the before/after table under the derived-figure rule.

    The shares before and after are the (rounded) numbers in control over the published
    numbers of people; the change is after minus before of those, and the comparison group's
    change its rounded net change over its published number. The tests and intervals are
    withheld when any count behind the row (in control or not, before or after, the four
    cells of a paired table) is 1-7; an exact McNemar statistic (the smaller discordant count)
    is published as a count.
    """
    n0, n1 = _true(row["n_before"]), _true(row["n_after"])
    if n0 is None or n1 is None:
        return
    num0 = round(float(row["before"]) * n0) if pd.notna(row["before"]) else None
    num1 = round(float(row["after"]) * n1) if pd.notna(row["after"]) else None
    before = derived(num0, n0, d) if num0 is not None else None
    after = derived(num1, n1, d) if num1 is not None else None
    change = after - before if before is not None and after is not None else None
    out.at[i, "before"], out.at[i, "after"], out.at[i, "change"] = before, after, change
    behind = [v for v in (num0, num1) if v is not None]
    behind += [n0 - num0] if num0 is not None else []
    behind += [n1 - num1] if num1 is not None else []
    behind += [_true(row[c]) or 0 for c in PAIRED_MARGIN[0] if c in row]
    estimate = change
    if row["analysis"] == "change vs comparison":
        cn = _true(row["comparison_n"])
        cc = row["comparison_change"]
        comparison = None
        if cn is not None and pd.notna(cc):
            net = round(float(cc) * cn)
            comparison = ratio_of_published(_rounded(net, d.rounding_base), count_out(cn, d))
        out.at[i, "comparison_change"] = comparison
        estimate = change - comparison if change is not None and comparison is not None else None
    out.at[i, "estimate"] = estimate
    cells = [out.at[i, c] for c in PAIRED_MARGIN[0] if c in out]
    if any(is_suppressed(v, d) for v in behind) or SUPPRESSED in cells:
        for c in MODEL_ESTIMATES:
            out.at[i, c] = None
    elif "exact" in str(row.get("test", "")) and pd.notna(row["statistic"]):
        out.at[i, "statistic"] = protect_count(int(row["statistic"]), d)


def _true(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)
