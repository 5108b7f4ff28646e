"""Publication of the clinical indicators: the comparators' margin and the paired table's margin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careval.monitoring.indicators import COMPARATORS, IndicatorsResult
from careval.report.publish.rules import SUPPRESSED, protect_table

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
# Tables with totals: where secondary suppression applies and what adds up to what.


def publish_indicators(r: IndicatorsResult) -> dict[str, Any]:
    """The ``indicators`` block as published: the module's own protection, then margins.

    The before/after table is protected by the report section itself (with the same margin,
    :func:`before_after_published`); the monthly diabetes table gets the comparators margin.
    """
    block = r.to_dict(protect=True)
    margin = comparator_margin_suppressed(r)
    for rec, hide in zip(block["diabetes"]["monthly"], margin.to_dict("records"), strict=True):
        for c in ("people", "with_reading", "in_control"):
            if hide[c] and rec[c] != SUPPRESSED:
                rec[c] = SUPPRESSED
                for s in ("share_with_reading", "share_in_control"):
                    rec[s] = rec[f"{s}_rolling"] = None
    table = before_after_published(r.before_after)
    for rec, (_, pub) in zip(block["before_after"]["table"], table.iterrows(), strict=True):
        for c in (*PAIRED_MARGIN[0], "n_before", "n_after", "comparison_n"):
            rec[c] = _plain(pub[c])
        for c in BEFORE_AFTER_RATES:
            if c in rec and _plain(pub.get(c)) is None:
                rec[c] = None
    return block


def comparator_margin_suppressed(r: IndicatorsResult) -> pd.DataFrame:
    """Which monthly diabetes counts the comparators margin suppresses (True: shown as ``*``).

    The pooled comparison areas add up the four areas (each month, indicator and count), so
    secondary suppression applies across them. The JSON and the report section both use this.
    """
    counts = ["people", "with_reading", "in_control"]
    monthly = protect_table(
        r.diabetes_monthly,
        counts,
        group_margin=(
            "area",
            ["month", "indicator"],
            list(r.settings.comparison_areas),
            COMPARATORS,
        ),
    )
    return pd.DataFrame({c: monthly[c] == SUPPRESSED for c in counts}, index=monthly.index)


def before_after_published(t: pd.DataFrame) -> pd.DataFrame:
    """The before/after table with rules 1-3: pairs margin; estimates from < 8 people withheld."""
    counts = ["n_before", "n_after", "comparison_n", *PAIRED_MARGIN[0]]
    return protect_table(
        t, counts, row_margins=[PAIRED_MARGIN], rates=BEFORE_AFTER_RATES, denominator="n_before"
    )


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v
