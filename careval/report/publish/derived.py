"""Derived figures as published: shares, rates and means from the published counts.

The rule (one for every analysis): a published share, rate, mean or percentage of counts is
computed from the **published** numerator and denominator (counts rounded to 5, person-time
rounded to :data:`PERSON_TIME_STEP`), or withheld (``None``) when either is suppressed (``*``)
or the base is 0. Then share x base, or rate x person-time, gives back no more than the
rounded counts beside it do: a share of 0.890625 from 57 of 64 people would give back the 7
without a reading; published as 55 of 65 (0.8461538...) it gives back only what the rounded
counts say. :mod:`careval.report.publish.recovery` checks the published results for exactly
this, as an attacker would.

Where the numerator is not published beside the figure (the people flagged by the risk model
who had an admission, the prior admissions of a targeting group), it is rounded as a count
would be, suppressed when it is 1-7, and the figure is computed from that rounded count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.report.publish.rules import protect_count

PERSON_TIME_STEP = 1.0  # person-time (years or months) is published to whole units


def _int(v: Any) -> int | None:
    """A published count as an int; None when suppressed, missing or not a count."""
    if v is None or isinstance(v, str | bool) or v is pd.NA:
        return None
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)) or not float(v).is_integer():
            return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def ratio_of_published(numerator: Any, base: Any, scale: float = 1.0) -> float | None:
    """``scale`` x published ``numerator`` / published ``base``.

    None when either is suppressed (``*``) or missing, or the base is not above 0.

    Examples
    --------
    >>> ratio_of_published(55, 65), ratio_of_published("*", 65), ratio_of_published(5, 0)
    (0.8461538461538461, None, None)
    """
    n, b = _int(numerator), _int(base)
    if n is None or b is None or b <= 0:
        return None
    return scale * n / b


def rate_of_published(events: Any, person_time: Any, scale: float = 1.0) -> float | None:
    """``scale`` x published ``events`` / published ``person_time`` (None as for a ratio)."""
    n = _int(events)
    if n is None or person_time is None or pd.isna(person_time) or float(person_time) <= 0:
        return None
    return scale * n / float(person_time)


def person_time_out(t: Any) -> float | None:
    """Person-time as published: rounded to :data:`PERSON_TIME_STEP` (None when missing)."""
    if t is None or pd.isna(t):
        return None
    return float(PERSON_TIME_STEP * round(float(t) / PERSON_TIME_STEP))


def count_out(v: Any, d: DisclosureSettings) -> Any:
    """A true count (possibly a float sum, rounded to a whole number first) as published."""
    if v is None or pd.isna(v):
        return None
    if isinstance(v, str):
        return v
    return protect_count(round(float(v)), d)


def derived(numerator: Any, base: Any, d: DisclosureSettings, scale: float = 1.0) -> float | None:
    """A share (or mean) of true counts as published: from the counts as published.

    Examples
    --------
    >>> derived(57, 64, DisclosureSettings()), derived(3, 64, DisclosureSettings())
    (0.8461538461538461, None)
    """
    return ratio_of_published(count_out(numerator, d), count_out(base, d), scale)


def derived_column(
    numerators: Sequence[Any] | pd.Series,
    bases: Sequence[Any] | pd.Series,
    scale: float = 1.0,
) -> pd.Series:
    """Published numerators / published bases, element by element (an object column)."""
    values = [
        ratio_of_published(n, b, scale) for n, b in zip(list(numerators), list(bases), strict=True)
    ]
    return pd.Series(values, index=getattr(numerators, "index", None), dtype=object)
