"""Statistical process control: XmR charts as NHS England's "Making Data Count" draws them.

The calculations and rules follow the NHS-R Community package NHSRplotthedots (0.2.x,
``ptd_spc_standard()``, ``ptd_calculate_point_type()`` and ``ptd_calculate_assurance_type()``),
which implements the Making Data Count (MDC) guidance. Within each segment (the whole series, or
the stretch from one rebase date to the next):

- centre line: the mean of the values (of the first ``fix_after_n_points`` values if set);
- moving ranges: ``|x[i] - x[i-1]|`` inside the segment (none across a rebase), again over the
  first ``fix_after_n_points`` values if set; mR-bar is their mean;
- screening (``screen_outliers``, on by default): moving ranges that are not strictly below
  3.267 x mR-bar are dropped and mR-bar is recomputed once from those kept;
- process limits: mean +/- 2.66 x mR-bar; the "near limit" lines sit at mean +/- (2/3) x 2.66 x
  mR-bar.

Special-cause rules, each flagging every point that is part of the pattern, inside one segment:

- ``outside_limits``: the value is strictly above the upper or below the lower process limit;
- ``shift``: ``shift_length`` (7) or more consecutive points on the same side of the mean (a point
  exactly on the mean breaks the run);
- ``trend``: ``trend_length`` (7) or more consecutive points each strictly higher (or each strictly
  lower) than the one before (a tie breaks the run);
- ``two_in_three``: two of three consecutive points beyond the near-limit line but not outside the
  limits, with all three points on the same side of the mean; only the near-limit points of the
  three are flagged.

A point caught by several rules is described by the first of outside limits, trend, two in three,
shift; its direction is high or low (above or below the mean; for a trend, increasing or
decreasing). With ``improvement`` "increase" a high special cause is an improvement and a low one
a concern ("decrease" the reverse, "neutral" neither).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.monitoring.spc_rules import (
    LIMIT,
    NEAR_LIMIT,
    SCREEN,
    assurance,
    point_types,
    segment,
    variation,
)

Improvement = Literal["increase", "decrease", "neutral"]
IMPROVEMENTS: tuple[str, ...] = ("increase", "decrease", "neutral")

__all__ = [
    "ASSURANCE_LABELS",
    "IMPROVEMENTS",
    "LIMIT",
    "MIN_POINTS",
    "NEAR_LIMIT",
    "POINT_TYPES",
    "RULES",
    "SCREEN",
    "VARIATION_LABELS",
    "Improvement",
    "SPCResult",
    "check_target",
    "iso_text",
    "xmr",
]
MIN_POINTS = 12  # fewest points for ``careval spc``, for fix_after_n_points, before a trial warning

POINT_TYPES: tuple[str, ...] = (
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral",
)
RULES: tuple[str, ...] = ("outside_limits", "trend", "two_in_three", "shift")  # precedence order

VARIATION_LABELS = {
    "common_cause": "Common cause variation: no significant change",
    "improvement_high": "Special cause variation of an improving nature: higher values",
    "improvement_low": "Special cause variation of an improving nature: lower values",
    "concern_high": "Special cause variation of a concerning nature: higher values",
    "concern_low": "Special cause variation of a concerning nature: lower values",
    "neutral_high": "Special cause variation, neither improvement nor concern: higher values",
    "neutral_low": "Special cause variation, neither improvement nor concern: lower values",
}

ASSURANCE_LABELS = {
    "pass": "The process limits are both on the passing side: it will consistently meet the target",
    "fail": "The process limits are both on the failing side: it will consistently miss the target",
    "inconsistent": "The target lies between the process limits: it may or may not be met",
}


@dataclass
class SPCResult:
    """An XmR chart: one row per point, the summary icons and the settings that produced them.

    Attributes
    ----------
    points : pandas.DataFrame
        One row per point in date order: ``date``, ``value``, ``segment`` (0 before the first
        rebase date), ``mean``, ``lpl``, ``upl`` (lower and upper process limits), ``near_lpl``,
        ``near_upl`` (two thirds of the way to the limits), ``moving_range`` (``|x[i] - x[i-1]|``
        inside the segment, missing at its first point), ``moving_range_used`` (counted in
        mR-bar: not screened out, within the first ``fix_after_n_points``), ``relative_to_mean``
        (-1, 0, 1), ``near_limit`` (beyond a near-limit line, inside the limits), the rule flags
        ``outside_limits``, ``shift``, ``trend``, ``two_in_three``, ``special_cause``,
        ``special_cause_rule`` (the first matching rule in the order outside limits, trend, two in
        three, shift; empty for common cause), ``direction`` ("high", "low" or empty) and
        ``point_type``.
    segments : list of dict
        Per segment: first and last date, points, mean, mR-bar, limits, moving ranges used and
        screened out.
    variation : str
        MDC variation icon of the last point: "common_cause", "improvement_high",
        "improvement_low", "concern_high", "concern_low", "neutral_high" or "neutral_low".
    assurance : str or None
        MDC assurance icon against ``target`` for the last segment: "pass", "fail" or
        "inconsistent"; None without a target or when ``improvement`` is "neutral".
    improvement : str
        "increase", "decrease" or "neutral".
    target : float or None
        The target, if one was given.
    settings : dict
        Screening, fixing, rebase dates and run lengths used.
    warnings : list of str
        Segments too short for stable limits, and similar notes.
    source : dict or None
        Where the series came from (``careval spc``: the CSV file and its two columns), shown
        as ``input`` by :meth:`to_dict`; None for a series computed in the run.
    """

    points: pd.DataFrame
    segments: list[dict[str, Any]]
    variation: str
    assurance: str | None
    improvement: str
    target: float | None
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    source: dict[str, str] | None = None

    def tidy(self) -> pd.DataFrame:
        """The points: one row per date with its value, limits, rule flags and point type."""
        return self.points.reset_index(drop=True)

    def summary(self) -> str:
        """A few lines: points, the last segment's mean and limits, and the two icons."""
        last = self.segments[-1]
        lines = [
            f"XmR chart of {len(self.points)} points ({self.improvement} is better), "
            f"{len(self.segments)} segment{'s' if len(self.segments) != 1 else ''}",
            f"last segment: mean {last['mean']:.4g}, process limits {last['lpl']:.4g} to "
            f"{last['upl']:.4g}",
            f"variation: {VARIATION_LABELS[self.variation]}",
        ]
        if self.assurance:
            lines.append(f"assurance (target {self.target:g}): {ASSURANCE_LABELS[self.assurance]}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready block: settings, icons, segment limits and every point.

        Returns
        -------
        dict
            Dates as ISO strings, missing numbers as None, numpy scalars as Python ones.
        """
        counts = {t: int((self.points["point_type"] == t).sum()) for t in POINT_TYPES}
        points = []
        for rec in self.points.to_dict(orient="records"):
            row = {k: _plain(v) for k, v in rec.items()}
            for key in ("special_cause_rule", "direction"):  # "" (common cause) as null
                row[key] = row[key] or None
            points.append(row)
        return {
            "method": "XmR chart (Making Data Count rules, as NHSRplotthedots)",
            "improvement": self.improvement,
            "target": self.target,
            "settings": {k: _plain(v) for k, v in self.settings.items()},
            "variation": self.variation,
            "variation_label": VARIATION_LABELS[self.variation],
            "assurance": self.assurance,
            "assurance_label": ASSURANCE_LABELS[self.assurance] if self.assurance else None,
            "n_points": len(self.points),
            "point_type_counts": counts,
            "segments": [{k: _plain(v) for k, v in s.items()} for s in self.segments],
            "points": points,
            "warnings": list(self.warnings),
            **({"input": dict(self.source)} if self.source is not None else {}),
        }


def xmr(
    values: Sequence[float] | np.ndarray | pd.Series,
    dates: Sequence[Any] | np.ndarray | pd.Series | pd.DatetimeIndex,
    *,
    improvement: Improvement = "neutral",
    target: float | None = None,
    rebase: Sequence[Any] | None = None,
    screen_outliers: bool = True,
    fix_after_n_points: int | None = None,
    shift_length: int = 7,
    trend_length: int = 7,
) -> SPCResult:
    """Build an XmR chart with the Making Data Count rules.

    Parameters
    ----------
    values : sequence of float
        One finite value per date.
    dates : sequence of date-like
        Distinct dates (any order: points are sorted by date).
    improvement : {"neutral", "increase", "decrease"}
        Which direction is better; decides whether a special cause is improvement or concern.
    target : float, optional
        A target for the assurance icon.
    rebase : sequence of date-like, optional
        Dates at which a new segment, with its own mean and limits, starts. Each must be one of
        ``dates``.
    screen_outliers : bool
        Drop moving ranges of at least 3.267 x mR-bar before the limits are computed.
    fix_after_n_points : int, optional
        Compute each segment's mean and limits from its first n points only (n >= 12).
    shift_length : int
        Points in a row on one side of the mean that make a shift (MDC: 7).
    trend_length : int
        Points in a row each higher (or each lower) than the last that make a trend (MDC: 7).

    Returns
    -------
    SPCResult
        Per-point table, segment limits and the variation and assurance icons.

    Raises
    ------
    ConfigError
        If the inputs cannot make a chart (see the message).
    """
    if improvement not in IMPROVEMENTS:
        raise ConfigError(f"improvement must be increase, decrease or neutral; got {improvement!r}")
    y = _values(values)
    x = _dates(dates, "dates")
    if len(x) != len(y):
        raise ConfigError(f"values and dates differ in length ({len(y)} and {len(x)})")
    if len(y) < 2:
        raise ConfigError(f"an XmR chart needs at least 2 points; got {len(y)}")
    dup = x.duplicated(keep=False)
    if dup.any():
        first = x[dup][0]
        raise ConfigError(
            f"dates must be distinct: {int(dup.sum())} points share a date with another, "
            f"e.g. {iso_text(first)} appears {int((x == first).sum())} times"
        )
    fix = _fix(fix_after_n_points)
    shift_length = _run_length(shift_length, "shift_length")
    trend_length = _run_length(trend_length, "trend_length")
    goal = check_target(target)

    order = np.argsort(x.to_numpy(), kind="stable")
    x = pd.DatetimeIndex(x[order])
    y = y[order]
    starts = _rebase_starts(x, rebase)
    bounds = list(zip([0, *starts], [*starts, len(y)], strict=True))
    for lo, hi in bounds:
        if hi - lo < 2:
            raise ConfigError(
                f"the segment starting {iso_text(x[lo])} has {hi - lo} point; each rebased segment "
                "needs at least 2 points (a moving range)"
            )

    parts, segments, warnings = [], [], []
    for k, (lo, hi) in enumerate(bounds):
        cols, stats = segment(y[lo:hi], fix, screen_outliers, shift_length, trend_length)
        cols["segment"] = np.full(hi - lo, k)
        parts.append(pd.DataFrame(cols))
        seg_start, seg_end = iso_text(x[lo]), iso_text(x[hi - 1])
        segments.append({"segment": k, "start": seg_start, "end": seg_end, **stats})
        if hi - lo < MIN_POINTS:
            warnings.append(
                f"segment {k} ({seg_start} to {seg_end}) has {hi - lo} points, fewer "
                f"than {MIN_POINTS}: its limits are trial limits, to be revised as points are added"
            )
    points = pd.concat(parts, ignore_index=True)
    points.insert(0, "date", x)
    points.insert(1, "value", y)
    points = points[_COLUMNS]
    points["point_type"] = point_types(points, improvement)

    last = points.iloc[-1]
    settings = {
        "screen_outliers": bool(screen_outliers),
        "fix_after_n_points": fix,
        "rebase": [iso_text(x[s]) for s in starts],
        "shift_length": shift_length,
        "trend_length": trend_length,
        "limit_multiplier": LIMIT,
        "screen_multiplier": SCREEN,
    }
    return SPCResult(
        points=points,
        segments=segments,
        variation=variation(str(last["point_type"]), str(last["direction"]), improvement),
        assurance=assurance(goal, improvement, float(last["lpl"]), float(last["upl"])),
        improvement=improvement,
        target=goal,
        settings=settings,
        warnings=warnings,
    )


_COLUMNS = [
    "date",
    "value",
    "segment",
    "mean",
    "lpl",
    "upl",
    "near_lpl",
    "near_upl",
    "moving_range",
    "moving_range_used",
    "relative_to_mean",
    "near_limit",
    "outside_limits",
    "shift",
    "trend",
    "two_in_three",
    "special_cause",
    "special_cause_rule",
    "direction",
]


def _values(values: Iterable[Any]) -> np.ndarray:
    try:
        y = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("values must all be numbers") from None
    if y.ndim != 1:
        raise ConfigError("values must be one-dimensional")
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(
            f"values must be finite numbers: {int(bad.sum())} are not, e.g. position {i}: {y[i]}"
        )
    return y


def _dates(dates: Iterable[Any], what: str) -> pd.DatetimeIndex:
    items = list(dates)
    try:
        x = pd.DatetimeIndex(pd.to_datetime(items))
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{what} must all be dates ({e})") from None
    if x.tz is not None:
        x = x.tz_localize(None)
    if x.isna().any():
        i = int(np.argmax(x.isna()))
        raise ConfigError(f"{what} must all be dates; position {i} is missing ({items[i]!r})")
    return x


def _rebase_starts(x: pd.DatetimeIndex, rebase: Sequence[Any] | None) -> list[int]:
    if rebase is None:
        return []
    if isinstance(rebase, str | dt.date | pd.Timestamp):
        rebase = [rebase]
    at = _dates(rebase, "rebase")
    missing = [d for d in at if d not in x]
    if missing:
        raise ConfigError(
            f"rebase dates must be dates of the series; {len(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not, e.g. {iso_text(missing[0])}"
        )
    return sorted({int(x.get_loc(d)) for d in at} - {0})


def _fix(n: int | None) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < MIN_POINTS:
        raise ConfigError(f"fix_after_n_points must be a whole number >= {MIN_POINTS}; got {n!r}")
    return int(n)


def _run_length(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ConfigError(f"{what} must be a whole number >= 2; got {n!r}")
    return int(n)


def check_target(target: float | None) -> float | None:
    if target is None:
        return None
    try:
        t = float(target)
    except (TypeError, ValueError):
        raise ConfigError(f"target must be a number; got {target!r}") from None
    if not math.isfinite(t):
        raise ConfigError(f"target must be a finite number; got {target!r}")
    return t


def iso_text(d: Any) -> str:
    ts = pd.Timestamp(d)
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


def _plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN to None, timestamps to ISO text."""
    if isinstance(v, pd.Timestamp | dt.date | np.datetime64):
        return iso_text(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_plain(i) for i in v]
    return v
