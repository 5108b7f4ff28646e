"""Small-number disclosure control for published counts."""

from __future__ import annotations

import pandas as pd

SUPPRESSED = "*"


def protect_count(value: int, low: int = 1, high: int = 7, base: int = 5) -> int | str:
    """One count as published: values ``low``-``high`` suppressed, others rounded to ``base``."""
    if low <= value <= high:
        return SUPPRESSED
    return int(base * round(value / base))


def protect_counts(df: pd.DataFrame, columns: list[str], enabled: bool = True) -> pd.DataFrame:
    """A copy of ``df`` with the count ``columns`` protected (unchanged when not ``enabled``)."""
    out = df.copy()
    if enabled:
        for col in columns:
            out[col] = [protect_count(int(v)) for v in out[col]]
    return out
