"""The Making Data Count rules of one XmR segment: limits, special causes, icons.

:func:`segment` computes one segment's centre line, moving ranges and limits and flags the
special-cause rules (NHSRplotthedots ``ptd_spc_standard``); :func:`point_types`,
:func:`variation` and :func:`assurance` turn the flags into point types and the MDC icons. See
:mod:`careval.monitoring.spc` for the rules in words.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LIMIT = 2.66  # process limits: mean +/- LIMIT x mR-bar (3 / d2 with d2 = 1.128, as MDC rounds it)
NEAR_LIMIT = 2 * (LIMIT / 3)  # the "two in three" lines, two thirds of the way to the limits
SCREEN = 3.267  # moving ranges >= SCREEN x mR-bar are dropped when screening (D4 for n = 2)


def segment(
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


def point_types(points: pd.DataFrame, improvement: str) -> np.ndarray:
    special = points["special_cause"].to_numpy(bool)
    high = (points["direction"] == "high").to_numpy(bool)
    if improvement == "neutral":
        kind = np.full(len(points), "special_cause_neutral", dtype=object)
    else:
        good = high if improvement == "increase" else ~high
        kind = np.where(good, "special_cause_improvement", "special_cause_concern").astype(object)
    return np.where(special, kind, "common_cause").astype(object)


def variation(point_type: str, direction: str, improvement: str) -> str:
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


def assurance(target: float | None, improvement: str, lpl: float, upl: float) -> str | None:
    """MDC assurance icon (NHSRplotthedots ``ptd_calculate_assurance_type``), last segment."""
    if target is None or improvement == "neutral":
        return None
    increasing = improvement == "increase"
    if target > upl:
        return "fail" if increasing else "pass"
    if target < lpl:
        return "pass" if increasing else "fail"
    return "inconsistent"


def _mean(a: np.ndarray) -> float:
    """Mean with an exactly rounded sum (``math.fsum``), close to R's long-double ``mean()``."""
    return math.fsum(a.tolist()) / len(a) if len(a) else math.nan
