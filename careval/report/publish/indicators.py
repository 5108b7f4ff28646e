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

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.indicators import COMPARATORS, IndicatorsResult
from careval.report.publish.rules import SUPPRESSED, is_suppressed, protect_count, protect_table

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
        for share in DIABETES_SHARES:
            dm.loc[newly, [share, f"{share}_rolling"]] = None
    out = copy.deepcopy(dataclasses.replace(r, pairs={}))
    out.diabetes_monthly = dm
    out.before_after = before_after_published(r.before_after, d)
    out.dementia_monthly = de
    out.dementia_care_plans = plans
    out.cohort = {k: protect_count(int(v), d) for k, v in r.cohort.items()}
    return out


def protected_tables(
    r: IndicatorsResult, d: DisclosureSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The monthly diabetes, monthly dementia and care-plan tables under rules 1 and 3.

    Counts of 1-7 are suppressed and others rounded to 5; a share resting on a count of 1-7 is
    withheld (a rolling share when any month of its window has one), and so is a rate whose
    new diagnoses or registered are 1-7.
    """

    def small(v: pd.Series) -> pd.Series:
        return v.map(lambda x: not pd.isna(x) and is_suppressed(x, d)).astype(bool)

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

    dia = r.diabetes_monthly
    hidden = small(dia.people) | small(dia.in_control) | small(dia.with_reading)
    dm = counts(dia, DIABETES_COUNTS).astype(object)
    k = r.settings.rolling_months
    rolled = (
        hidden.groupby([dia.area, dia.indicator], sort=False)
        .transform(lambda s: s.rolling(k, min_periods=1).max())
        .astype(bool)
    )
    for col in DIABETES_SHARES:
        dm[col] = dm[col].where(~hidden, None)
        dm[f"{col}_rolling"] = dm[f"{col}_rolling"].where(~rolled, None)
    e = r.dementia_monthly
    reg = "registered"
    de = counts(e, [reg, "new_diagnoses", "six_cit_tests"]).astype(object)
    de["rate_per_1000"] = de.rate_per_1000.where(~(small(e.new_diagnoses) | small(e[reg])), None)
    plans = counts(r.dementia_care_plans, ["care_plans", "care_plans_dementia"])
    return dm, de, plans


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
    return protect_table(
        t,
        counts,
        d,
        row_margins=[PAIRED_MARGIN],
        rates=BEFORE_AFTER_RATES,
        denominator="n_before",
    )
