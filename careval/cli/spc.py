"""``careval spc``: an XmR chart (Making Data Count rules) of a series read from a CSV file.

The CSV reading and its checks are here; the chart is :func:`careval.monitoring.spc.xmr`'s.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, cast

import numpy as np
import pandas as pd
import typer

from careval.cli.common import out, write_json
from careval.errors import ConfigError, bad_rows, raise_problems, showing_values
from careval.monitoring.spc import (
    IMPROVEMENTS,
    MIN_POINTS,
    Improvement,
    SPCResult,
    check_target,
    iso_text,
    xmr,
)


def spc(
    csv: Annotated[Path, typer.Option("--csv", help="CSV file with one row per period")],
    date: Annotated[str, typer.Option(help="Date column")],
    value: Annotated[str, typer.Option(help="Value column")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    improvement: Annotated[
        str, typer.Option(help="Which direction is better: increase, decrease or neutral")
    ] = "neutral",
    target: Annotated[float | None, typer.Option(help="Target, for the assurance icon")] = None,
) -> None:
    """XmR chart with the Making Data Count rules for any monthly (or other) series."""
    if improvement not in ("increase", "decrease", "neutral"):
        raise ConfigError(
            f"--improvement must be increase, decrease or neutral; got {improvement!r}"
        )
    result = spc_csv(csv, date, value, improvement, target)
    write_json(json_out, result.to_dict())
    out.print(
        f"{csv}: variation {result.variation}"
        + (f", assurance {result.assurance}" if result.assurance else ""),
        highlight=False,
    )


def spc_csv(
    path: Path,
    date: str,
    value: str,
    improvement: str = "neutral",
    target: float | None = None,
) -> SPCResult:
    """Read one series from a CSV file and chart it (:func:`careval.monitoring.spc.xmr`).

    Parameters
    ----------
    path : pathlib.Path
        A CSV file with a header row.
    date : str
        Column of ISO 8601 dates (e.g. 2019-03-01), one distinct date per row.
    value : str
        Column of numbers.
    improvement : {"neutral", "increase", "decrease"}
        Which direction is better.
    target : float, optional
        A target for the assurance icon.

    Returns
    -------
    SPCResult
        The chart, its ``source`` naming the file and columns (``input`` in its ``to_dict``).

    Raises
    ------
    ConfigError
        If the file cannot be read, a column is missing, a date or value is bad, dates repeat,
        or there are fewer than 12 points.
    """
    path = Path(path)
    if improvement not in IMPROVEMENTS:
        raise ConfigError(f"improvement must be increase, decrease or neutral; got {improvement!r}")
    goal = check_target(target)
    df = _read_csv(path)
    absent = [c for c in (date, value) if c not in df.columns]
    if absent:
        have = ", ".join(map(repr, df.columns)) or "(no columns)"
        raise ConfigError(
            f"{path}: column{'s' if len(absent) > 1 else ''} not found: "
            f"{', '.join(map(repr, absent))}; the file has: {have}"
        )
    raw_dates = df[date].astype("string").str.strip()
    raw_values = df[value].astype("string").str.strip()
    dates = pd.to_datetime(raw_dates.mask(raw_dates == ""), format="ISO8601", errors="coerce")
    numbers = pd.to_numeric(raw_values.mask(raw_values == ""), errors="coerce").astype(float)

    problems: list[str] = []
    bad_dates = dates.isna().to_numpy(bool)
    bad_values = ~np.isfinite(numbers.to_numpy(float))
    date_rule = "is missing or not a date"
    value_rule = "is missing or not a finite number"
    iso = "ISO 8601 dates such as 2019-03-01"
    # A series of monthly totals (published statistics such as the NHS A&E counts): its rows
    # are aggregates, not people, so the message may quote the offending row.
    with showing_values(True):
        bad_rows(problems, path, df, date, bad_dates, date_rule, iso, shown=8)
        bad_rows(problems, path, df, value, bad_values, value_rule, _NUMBERS, shown=8)
    raise_problems(problems)

    dup = dates.duplicated(keep=False).to_numpy(bool)
    if dup.any():
        first = int(np.argmax(dup))
        same = np.flatnonzero(dates.to_numpy() == dates.to_numpy()[first])
        lines = ", ".join(str(i + 2) for i in same[:5]) + (", ..." if len(same) > 5 else "")
        raise ConfigError(
            f"{path}: column {date!r}: dates repeat ({int(dup.sum()):,} rows share a date with "
            f"another, {int(dates[dup].nunique()):,} dates in all); allowed: one row per date. "
            f"e.g. {iso_text(dates.iloc[first])} on lines {lines}. Aggregate the rows to one value "
            "per date (e.g. a sum or mean per month) or filter to a single series (e.g. one "
            "organisation and type) first"
        )
    if len(df) < MIN_POINTS:
        raise ConfigError(
            f"{path}: {len(df)} point{'s' if len(df) != 1 else ''} in {value!r}; an XmR chart "
            f"needs at least {MIN_POINTS} (one per date)"
        )
    imp = cast(Improvement, improvement)
    result = xmr(numbers.to_numpy(float), dates, improvement=imp, target=goal)
    source = {"csv": str(path), "date_column": date, "value_column": value}
    return dataclasses.replace(result, source=source)


_NUMBERS = "finite numbers such as 1234 or 0.87 (no thousands separators, units or blanks)"


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the file is empty; expected a CSV with a header row") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise ConfigError(f"{path}: cannot be read as CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df
