"""Matching on an analyst's own table (``careval match``): pairs, balance and the ATT.

The table-level difference-in-differences (``careval did``) is :func:`careval.impact.did.did`.
Reading and checking the CSV file is the command's (:mod:`careval.cli.tables_impact`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from careval.impact.balance import balance_table, matched_att
from careval.impact.matching import MatchResult, MatchSettings, match


def match_table(
    df: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    settings: MatchSettings,
    outcome: str | None = None,
) -> MatchResult:
    """Match the rows of ``df`` (``treatment`` 0/1), with the balance table and, given an
    outcome column, the matched ATT (:func:`careval.impact.balance.matched_att`)."""
    cov = list(covariates)
    res = match(df, treatment, cov, settings)
    bal = balance_table(df, treatment, cov, res.weights)
    att = None
    if outcome:
        att = matched_att(
            df[outcome].to_numpy(dtype=float),
            df[treatment].to_numpy(),
            res.weights,
            None if settings.replace else res.subclass,
            settings.replace,
        )
        att["outcome"] = outcome
    return dataclasses.replace(res, balance=bal, att=att)
