"""Calendar arithmetic shared by the feature windows."""

from __future__ import annotations

import datetime as dt


def months_before(index_date: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (later when negative).

    Days after the 28th become the 28th, so every month has the day; a window starting there
    can be up to three days longer than a calendar-exact one.
    """
    m = index_date.year * 12 + index_date.month - 1 - months
    return dt.date(m // 12, m % 12 + 1, min(index_date.day, 28))
