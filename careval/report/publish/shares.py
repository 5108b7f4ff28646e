"""Published counts, shares and notes of the survey and qualitative analyses.

The helpers the survey and transcript publication share: a count as published (1-7 as "*",
others rounded to 5), a share withheld when its base is below 8 or when it would give back a
suppressed count, and otherwise recomputed from the published counts; Kish's effective n
published like a count; notes whose counts are protected. The numbers (1-7, 5, 8) are the
defaults of the run's :class:`~careval.disclosure.DisclosureSettings`, passed to each helper.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from careval.disclosure import DisclosureSettings, Note
from careval.report.publish.derived import count_out
from careval.report.publish.derived import ratio_of_published as share_of_published
from careval.report.publish.rules import SUPPRESSED, is_small, protect_count


def share_out(
    value: float | None,
    base: int,
    d: DisclosureSettings,
    digits: int = 4,
    count: int | None = None,
    published: tuple[Any, Any] | None = None,
) -> float | None:
    """A proportion as published: withheld (None) when ``base`` < 8.

    With ``count`` (the count the share is of, out of ``base``), the share is withheld too when
    that count or the rest of the base (``base - count``) is a suppressed count (1-7): share x
    base would give it back.

    With ``published`` (the count and the base as published, e.g. ``(100, 400)``), a share that
    is not withheld is the published count over the published base instead of ``value``, so
    that it gives back no more than the rounded counts do; it is withheld when either is
    suppressed (``*``) or the base is 0.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if is_small(base, d):
        return None
    if count is not None and (small(count, d) or small(int(base) - int(count), d)):
        return None
    if published is not None:
        value = share_of_published(*published)
        if value is None:
            return None
    return round(float(value), digits)


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def weighted_share_step(base: int, d: DisclosureSettings) -> float:
    """The precision a weighted share with published unweighted ``base`` is published to.

    The power of ten ``10^ceil(log10(5 / base))`` (5 being ``d.rounding_base``): the smallest
    step of at least ``5 / base``, so that share x base is no sharper than a count rounded to 5
    (+-2.5). A base of 8-49 gives 1 (the share shows as 0 or 1), 50-499 gives 0.1, 500-4,999
    gives 0.01, and so on.
    """
    decimals = 0
    while d.rounding_base * 10 ** (decimals + 1) <= base:
        decimals += 1
    return 10.0**-decimals


def weighted_share_out(
    value: float | None,
    base: int,
    count: int | None,
    published_base: Any,
    d: DisclosureSettings,
) -> float | None:
    """A weighted proportion as published.

    Withheld as :func:`share_out` withholds (and when ``published_base`` is suppressed);
    otherwise, since a weighted share cannot be recomputed from the rounded counts, it is
    rounded to :func:`weighted_share_step` of ``published_base`` (the unweighted base as
    published).
    """
    out = share_out(value, base, d, count=count)
    if out is None or value is None:
        return out
    if not _is_int(published_base) or int(published_base) <= 0:
        return None
    decimals = round(-math.log10(weighted_share_step(int(published_base), d)))
    return round(round(float(value), decimals), 4)


def small(n: Any, d: DisclosureSettings) -> bool:
    """Whether a true count is one that disclosure control suppresses (1-7)."""
    return isinstance(protect_count(int(n), d), str)


def effective_n_out(value: float | None, d: DisclosureSettings) -> int | None:
    """Kish's effective sample size as published.

    It is treated as a count (without weights it equals the number of answers): withheld below
    8, otherwise rounded to the nearest 5.
    """
    if value is None or not math.isfinite(float(value)):
        return None
    published = protect_count(round(float(value)), d)
    return published if isinstance(published, int) and not is_small(value, d) else None


def published_sum(a: Any, b: Any) -> Any:
    """The sum of two published counts (``*`` when either is suppressed)."""
    return a + b if isinstance(a, int) and isinstance(b, int) else SUPPRESSED


def publish_note(note: str, d: DisclosureSettings) -> str:
    """A warning as published: the counts in a :class:`Note` protected."""
    if not isinstance(note, Note):
        return str(note)
    return note.template.format(
        **{k: _plain_count(count_out(v, d)) for k, v in note.counts.items()}
    )


def _plain_count(v: int | str) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def published_notes(notes: Iterable[str], d: DisclosureSettings) -> list[str]:
    """Warnings as published: the counts in each :class:`Note` protected."""
    return [publish_note(n, d) for n in notes]


def count_matrix_out(df: pd.DataFrame, d: DisclosureSettings) -> pd.DataFrame:
    """A square table of counts, counts as published (an object table)."""
    return pd.DataFrame(
        [[count_out(int(v), d) for v in row] for row in df.to_numpy()],
        index=df.index,
        columns=df.columns,
        dtype=object,
    )


def num(v: Any) -> float | None:
    """A float, or None for None and NaN."""
    return None if v is None or pd.isna(v) else float(v)
