"""Checks of analysts' columns, shared by the fixed-effects engine and the DiD.

Every check adds a line ``column: rule (n rows); allowed: ...; e.g. ...`` to a list of problems,
so that one error names everything wrong with the input at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def unique(cols: list[str | None]) -> list[str]:
    return list(dict.fromkeys(c for c in cols if c))


def require_columns(df: pd.DataFrame, cols: list[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"expected a pandas DataFrame; got {type(df).__name__}")
    absent = [c for c in cols if c not in df.columns]
    if absent:
        have = [str(c) for c in df.columns]
        shown = ", ".join(have[:30]) + (f", ... ({len(have)} in all)" if len(have) > 30 else "")
        raise ConfigError(
            f"column{'s' if len(absent) > 1 else ''} not found: {', '.join(map(repr, absent))}; "
            f"the data has: {shown or '(no columns)'}"
        )
    if len(df) == 0:
        raise ConfigError("the data has no rows")


def check_rule(
    mask: pd.Series | np.ndarray,
    values: pd.Series,
    column: str,
    rule: str,
    allowed: str,
    problems: list[str],
    example: Callable[[int], str] | None = None,
) -> None:
    """Add ``column: rule (n rows); allowed: ...; e.g. ...`` to problems if any row fails.

    ``mask`` is positional; ``example`` turns the first failing position into text (default:
    the row's index label and value).
    """
    flags = np.asarray(mask, dtype=bool)
    count = int(flags.sum())
    if not count:
        return
    pos = int(np.argmax(flags))
    shown = example(pos) if example else f"row {values.index[pos]}: {show(values.iloc[pos])}"
    problems.append(f"{column}: {rule} ({plural(count, 'row')}); allowed: {allowed}; e.g. {shown}")


def show(value: object) -> str:
    """A value for a message: strings quoted, numpy scalars as plain Python ones."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def is_blank(s: pd.Series) -> np.ndarray:
    """Missing values, and empty or all-space strings, as a boolean array."""
    text = s.astype("string").str.strip()
    return (s.isna() | (text == "").fillna(False)).to_numpy(bool)


def join_problems(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in the input:\n" + "\n".join(f"  - {p}" for p in problems)


def to_numeric(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)
    if pd.api.types.is_numeric_dtype(s):
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)
    text = s.astype("string").str.strip()
    return pd.to_numeric(text.mask(text == ""), errors="coerce").astype(float)


def to_dates(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    text = s.astype("string").str.strip()
    return pd.to_datetime(text.mask(text == ""), format="ISO8601", errors="coerce")


def as_float(s: pd.Series, column: str, role: str, problems: list[str]) -> pd.Series:
    """The column as floats (NaN where missing); non-numbers and infinities become problems."""
    out = to_numeric(s)
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        check_rule(
            out.isna().to_numpy() & ~is_blank(s),
            s,
            column,
            f"is not a number ({role})",
            "numbers",
            problems,
        )
    check_rule(
        np.isinf(out.to_numpy(float)),
        s,
        column,
        f"is infinite ({role})",
        "finite numbers",
        problems,
    )
    return out.set_axis(pd.RangeIndex(len(s)))


def codes(s: pd.Series) -> np.ndarray:
    """Integer codes of a column's values, -1 where missing."""
    return pd.factorize(s, use_na_sentinel=True)[0].astype(np.int64)


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return round(float(value), 6) if math.isfinite(value) else None
    return value
