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
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from careval.errors import ConfigError, bad_rows, raise_problems

Improvement = Literal["increase", "decrease", "neutral"]
IMPROVEMENTS: tuple[str, ...] = ("increase", "decrease", "neutral")

LIMIT = 2.66  # process limits: mean +/- LIMIT x mR-bar (3 / d2 with d2 = 1.128, as MDC rounds it)
NEAR_LIMIT = 2 * (LIMIT / 3)  # the "two in three" lines, two thirds of the way to the limits
SCREEN = 3.267  # moving ranges >= SCREEN x mR-bar are dropped when screening (D4 for n = 2)
MIN_POINTS = 12  # fewest points for spc_csv, for fix_after_n_points, and before a trial warning

POINT_TYPES: tuple[str, ...] = (
    "common_cause",
    "special_cause_improvement",
    "special_cause_concern",
    "special_cause_neutral",
)
RULES: tuple[str, ...] = ("outside_limits", "trend", "two_in_three", "shift")  # precedence order

# MDC colours for the chart.
COLOURS = {
    "common_cause": "#7b7d7d",
    "special_cause_improvement": "#289de0",
    "special_cause_concern": "#fab428",
    "special_cause_neutral": "#361475",
    "target": "#de1b1b",
}

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
    """

    points: pd.DataFrame
    segments: list[dict[str, Any]]
    variation: str
    assurance: str | None
    improvement: str
    target: float | None
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

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
            f"e.g. {_iso(first)} appears {int((x == first).sum())} times"
        )
    fix = _fix(fix_after_n_points)
    shift_length = _run_length(shift_length, "shift_length")
    trend_length = _run_length(trend_length, "trend_length")
    goal = _target(target)

    order = np.argsort(x.to_numpy(), kind="stable")
    x = pd.DatetimeIndex(x[order])
    y = y[order]
    starts = _rebase_starts(x, rebase)
    bounds = list(zip([0, *starts], [*starts, len(y)], strict=True))
    for lo, hi in bounds:
        if hi - lo < 2:
            raise ConfigError(
                f"the segment starting {_iso(x[lo])} has {hi - lo} point; each rebased segment "
                "needs at least 2 points (a moving range)"
            )

    parts, segments, warnings = [], [], []
    for k, (lo, hi) in enumerate(bounds):
        cols, stats = _segment(y[lo:hi], fix, screen_outliers, shift_length, trend_length)
        cols["segment"] = np.full(hi - lo, k)
        parts.append(pd.DataFrame(cols))
        segments.append({"segment": k, "start": _iso(x[lo]), "end": _iso(x[hi - 1]), **stats})
        if hi - lo < MIN_POINTS:
            warnings.append(
                f"segment {k} ({_iso(x[lo])} to {_iso(x[hi - 1])}) has {hi - lo} points, fewer "
                f"than {MIN_POINTS}: its limits are trial limits, to be revised as points are added"
            )
    points = pd.concat(parts, ignore_index=True)
    points.insert(0, "date", x)
    points.insert(1, "value", y)
    points = points[_COLUMNS]
    points["point_type"] = _point_types(points, improvement)

    last = points.iloc[-1]
    settings = {
        "screen_outliers": bool(screen_outliers),
        "fix_after_n_points": fix,
        "rebase": [_iso(x[s]) for s in starts],
        "shift_length": shift_length,
        "trend_length": trend_length,
        "limit_multiplier": LIMIT,
        "screen_multiplier": SCREEN,
    }
    return SPCResult(
        points=points,
        segments=segments,
        variation=_variation(str(last["point_type"]), str(last["direction"]), improvement),
        assurance=_assurance(goal, improvement, float(last["lpl"]), float(last["upl"])),
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


def _segment(
    y: np.ndarray, fix: int | None, screen: bool, shift_length: int, trend_length: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-point columns and summary of one segment (NHSRplotthedots ``ptd_spc_standard``)."""
    n = len(y)
    base = y[: min(n, fix)] if fix else y
    mean = _mean(base)
    mr_all = np.abs(np.diff(y))
    mr_base = np.abs(np.diff(base))
    mr_bar_raw = _mean(mr_base)
    keep = mr_base < SCREEN * mr_bar_raw if screen else np.ones(len(mr_base), bool)
    # All moving ranges are screened out only when they are all 0 (a flat series); NHSRplotthedots
    # then has no limits (NaN). Here the limits collapse onto the mean instead.
    mr_bar = _mean(mr_base[keep]) if keep.any() else 0.0
    lpl, upl = mean - LIMIT * mr_bar, mean + LIMIT * mr_bar
    near_lpl, near_upl = mean - NEAR_LIMIT * mr_bar, mean + NEAR_LIMIT * mr_bar

    outside = (y > upl) | (y < lpl)
    rtm = np.sign(y - mean).astype(int)
    near = ~outside & ((y < near_lpl) | (y > near_upl))
    shift = _part_of_run(_shift_ends(rtm, shift_length), shift_length)
    trend = _part_of_run(_trend_ends(y, trend_length), trend_length)
    two = _two_in_three(near, rtm)

    # The direction of a trend point: the step to the next point when that point is in a trend
    # too, else the step from the previous point (NHSRplotthedots ptd_special_cause_type).
    steps = np.sign(np.diff(y)).astype(int)
    ahead = np.append(steps, 0)
    behind = np.insert(steps, 0, 0)
    trend_next = np.append(trend[1:], False) & trend
    trend_dir = np.where(trend_next, ahead, behind)
    high = rtm > 0

    rule = np.full(n, "", dtype=object)
    up = np.zeros(n, dtype=bool)
    for name, flags, is_high in (
        ("shift", shift, high),
        ("two_in_three", two, high),
        ("trend", trend, trend_dir == 1),
        ("outside_limits", outside, rtm == 1),
    ):  # lowest precedence first: later rules overwrite
        rule[flags] = name
        up[flags] = is_high[flags]
    special = rule != ""
    direction = np.where(special, np.where(up, "high", "low"), "").astype(object)

    used = np.zeros(n, dtype=bool)
    used[1 : len(mr_base) + 1] = keep
    stats = {
        "n_points": n,
        "n_points_for_limits": len(base),
        "mean": mean,
        "mr_bar": mr_bar,
        "mr_bar_unscreened": mr_bar_raw,
        "moving_ranges_used": int(keep.sum()),
        "moving_ranges_screened_out": int((~keep).sum()),
        "lpl": lpl,
        "upl": upl,
    }
    cols = {
        "mean": np.full(n, mean),
        "lpl": np.full(n, lpl),
        "upl": np.full(n, upl),
        "near_lpl": np.full(n, near_lpl),
        "near_upl": np.full(n, near_upl),
        "moving_range": np.insert(mr_all, 0, np.nan),
        "moving_range_used": used,
        "relative_to_mean": rtm,
        "near_limit": near,
        "outside_limits": outside,
        "shift": shift,
        "trend": trend,
        "two_in_three": two,
        "special_cause": special,
        "special_cause_rule": rule,
        "direction": direction,
    }
    return cols, stats


def _shift_ends(rtm: np.ndarray, length: int) -> np.ndarray:
    """True where this point and the ``length - 1`` before it are all on one side of the mean."""
    n = len(rtm)
    ends = np.zeros(n, dtype=bool)
    for i in range(length - 1, n):
        window = rtm[i - length + 1 : i + 1]
        ends[i] = rtm[i] != 0 and bool(np.all(window == rtm[i]))
    return ends


def _trend_ends(y: np.ndarray, length: int) -> np.ndarray:
    """True where this point ends ``length`` points each strictly above (or below) the last."""
    n = len(y)
    ends = np.zeros(n, dtype=bool)
    for i in range(length - 1, n):
        d = np.sign(np.diff(y[i - length + 1 : i + 1]))
        ends[i] = bool(np.all(d == 1) or np.all(d == -1))
    return ends


def _part_of_run(ends: np.ndarray, length: int) -> np.ndarray:
    """True for every point of a run: a run end is at this point or one of the next length - 1."""
    n = len(ends)
    return np.array([bool(ends[i : i + length].any()) for i in range(n)], dtype=bool)


def _two_in_three(near: np.ndarray, rtm: np.ndarray) -> np.ndarray:
    """Near-limit points that are two of three in a row, all three on one side of the mean."""
    n = len(near)
    v = np.concatenate([[0, 0], near.astype(int), [0, 0]])
    r = np.concatenate([[0, 0], rtm, [0, 0]])
    hit = np.zeros(n, dtype=bool)
    for i in range(n):
        hit[i] = any(
            v[s : s + 3].sum() >= 2 and abs(r[s : s + 3].sum()) == 3 for s in (i, i + 1, i + 2)
        )
    return hit & near


def _point_types(points: pd.DataFrame, improvement: str) -> np.ndarray:
    special = points["special_cause"].to_numpy(bool)
    high = (points["direction"] == "high").to_numpy(bool)
    if improvement == "neutral":
        kind = np.full(len(points), "special_cause_neutral", dtype=object)
    else:
        good = high if improvement == "increase" else ~high
        kind = np.where(good, "special_cause_improvement", "special_cause_concern").astype(object)
    return np.where(special, kind, "common_cause").astype(object)


def _variation(point_type: str, direction: str, improvement: str) -> str:
    """MDC variation icon of the last point (NHSRplotthedots ``ptd_get_icons``)."""
    if point_type == "common_cause":
        return "common_cause"
    if point_type == "special_cause_neutral":
        return f"neutral_{direction}"
    better = "high" if improvement == "increase" else "low"
    worse = "low" if improvement == "increase" else "high"
    if point_type == "special_cause_improvement":
        return f"improvement_{better}"
    return f"concern_{worse}"


def _assurance(target: float | None, improvement: str, lpl: float, upl: float) -> str | None:
    """MDC assurance icon (NHSRplotthedots ``ptd_calculate_assurance_type``), last segment."""
    if target is None or improvement == "neutral":
        return None
    increasing = improvement == "increase"
    if target > upl:
        return "fail" if increasing else "pass"
    if target < lpl:
        return "pass" if increasing else "fail"
    return "inconsistent"


# ----------------------------------------------------------------------------------- CSV input


def spc_csv(
    path: Path,
    date: str,
    value: str,
    improvement: str = "neutral",
    target: float | None = None,
) -> dict[str, Any]:
    """Read one series from a CSV file and return its XmR chart as a JSON-ready dict.

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
    dict
        :meth:`SPCResult.to_dict` plus an ``input`` block naming the file and columns.

    Raises
    ------
    ConfigError
        If the file cannot be read, a column is missing, a date or value is bad, dates repeat,
        or there are fewer than 12 points.
    """
    path = Path(path)
    if improvement not in IMPROVEMENTS:
        raise ConfigError(f"improvement must be increase, decrease or neutral; got {improvement!r}")
    goal = _target(target)
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
            f"e.g. {_iso(dates.iloc[first])} on lines {lines}. Aggregate the rows to one value "
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
    out = result.to_dict()
    out["input"] = {"csv": str(path), "date_column": date, "value_column": value}
    return out


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


# -------------------------------------------------------------------------------------- chart


def xmr_chart_svg(result: SPCResult, title: str, ylabel: str) -> str:
    """The XmR chart as inline SVG text.

    Parameters
    ----------
    result : SPCResult
        From :func:`xmr`.
    title : str
        Chart title.
    ylabel : str
        Y-axis label.

    Returns
    -------
    str
        An ``<svg>`` element: values joined by a grey line, points coloured by point type (MDC
        colours), mean solid and process limits dashed for each segment, the target (if any) as a
        red line, and the variation and assurance icons spelled out under the title.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import StrMethodFormatter

    from careval.report.page import plt, svg

    p = result.points
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(p["date"], p["value"], color=COLOURS["common_cause"], lw=1.2, zorder=1)
    for _, seg in p.groupby("segment", sort=True):
        d = seg["date"]
        ax.plot(d, seg["mean"], color="black", lw=1.1, zorder=2)
        ax.plot(d, seg["lpl"], color="#7b7d7d", lw=1.0, ls="--", zorder=2)
        ax.plot(d, seg["upl"], color="#7b7d7d", lw=1.0, ls="--", zorder=2)
    handles = [
        Line2D([], [], color="black", lw=1.1, label="Mean"),
        Line2D([], [], color="#7b7d7d", lw=1.0, ls="--", label="Process limits"),
    ]
    for kind in POINT_TYPES:
        part = p[p["point_type"] == kind]
        if len(part):
            ax.scatter(part["date"], part["value"], s=22, color=COLOURS[kind], zorder=3)
            label = kind.replace("_", " ").capitalize()
            handles.append(
                Line2D([], [], ls="", marker="o", color=COLOURS[kind], label=label, markersize=5)
            )
    if result.target is not None:
        ax.axhline(result.target, color=COLOURS["target"], lw=1.2, ls="-.", zorder=2)
        handles.append(Line2D([], [], color=COLOURS["target"], lw=1.2, ls="-.", label="Target"))
    subtitle = VARIATION_LABELS[result.variation]
    if result.assurance:
        subtitle += "\n" + ASSURANCE_LABELS[result.assurance]
    ax.set_title(f"{title}\n{subtitle}", fontsize=10, loc="left")
    ax.set_ylabel(ylabel)
    if np.nanmax(np.abs(p[["value", "lpl", "upl"]].to_numpy(float))) >= 1000:
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    fig.autofmt_xdate()
    return svg(fig)


# ------------------------------------------------------------------------------------ helpers


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
            f"{'is' if len(missing) == 1 else 'are'} not, e.g. {_iso(missing[0])}"
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


def _target(target: float | None) -> float | None:
    if target is None:
        return None
    try:
        t = float(target)
    except (TypeError, ValueError):
        raise ConfigError(f"target must be a number; got {target!r}") from None
    if not math.isfinite(t):
        raise ConfigError(f"target must be a finite number; got {target!r}")
    return t


def _mean(a: np.ndarray) -> float:
    """Mean with an exactly rounded sum (``math.fsum``), close to R's long-double ``mean()``."""
    return math.fsum(a.tolist()) / len(a) if len(a) else math.nan


def _iso(d: Any) -> str:
    ts = pd.Timestamp(d)
    return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()


def _plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN to None, timestamps to ISO text."""
    if isinstance(v, pd.Timestamp | dt.date | np.datetime64):
        return _iso(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_plain(i) for i in v]
    return v
