"""Publication of Table 2: counts with the groups' margin; a withheld change's differences too.

The margin (all eligible = the eligibility groups) is the rule's groups
(:meth:`careval.cohort.eligibility.EligibilitySettings.groups`); a rule without groups has none.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from careval.data.areas import pooled_name
from careval.disclosure import DisclosureSettings
from careval.monitoring.areas import ALL, AreaResult
from careval.report.publish.derived import person_time_out, rate_of_published
from careval.report.publish.rules import protect_table

TABLE2_RATES = ("rate_before", "rate_after", "pct_change", "ci_low", "ci_high", "se_log_rate_ratio")
# The change and its interval rest on the admissions before and after (the standard error is
# sqrt(phi/a1 + phi/a0)): withheld when either count is suppressed.
TABLE2_ESTIMATES = ("pct_change", "ci_low", "ci_high", "se_log_rate_ratio")
PERIODS = ("before", "after")


def publish_areas(a: AreaResult, disclosure: DisclosureSettings) -> AreaResult:
    """A copy of ``a`` with Table 2 as published under ``disclosure``; the differences of a
    withheld change are withheld too.

    The derived-figure rule (:mod:`careval.report.publish.derived`): each period's
    person-years are published (to whole years) and its rate is the published admissions over
    them; the change, its interval and standard error are withheld when the admissions of
    either period are suppressed.
    """
    t = a.table
    counts = ["admissions_after", "admissions_before"]
    table = protect_table(
        t,
        ["people_after", *counts],
        disclosure,
        group_margin=("group", ["start", "area"], a.settings.eligibility.group_names(), ALL),
        rates=TABLE2_RATES,
        denominator="people_after",
        rate_counts={c: counts for c in TABLE2_ESTIMATES},
    ).astype({c: object for c in TABLE2_RATES})
    for period in PERIODS:
        true_py = t[f"admissions_{period}"] / t[f"rate_{period}"]
        py = [person_time_out(v) for v in true_py]
        table[f"person_years_{period}"] = pd.Series(py, index=t.index, dtype=object)
        rates = [
            None if r is None else rate_of_published(n, y)
            for r, n, y in zip(
                table[f"rate_{period}"], table[f"admissions_{period}"], py, strict=True
            )
        ]
        table[f"rate_{period}"] = pd.Series(rates, index=t.index, dtype=object)
    gone = {
        (g, str(s), ar)
        for g, s, ar, v in zip(t["group"], t["start"], t["area"], table["pct_change"], strict=True)
        if v is None or (isinstance(v, float) and np.isnan(v))
    }
    programme = pooled_name(a.settings.programme_areas)
    d = a.differences.copy().astype({c: object for c in ("difference", "ci_low", "ci_high")})
    drop = [
        (g, str(s), programme) in gone or (g, str(s), c) in gone
        for g, s, c in zip(d["group"], d["start"], d["comparator"], strict=True)
    ]
    for col in ("difference", "ci_low", "ci_high", "p_value"):
        if col in d:
            d[col] = d[col].astype(object).where(~pd.Series(drop, index=d.index), None)
    return dataclasses.replace(a, table=table, differences=d, warnings=list(a.warnings))
