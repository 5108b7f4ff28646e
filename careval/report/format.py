"""Numbers for people: the one formatting module of the page, the workbook and the text.

Every figure the report shows goes through one of these functions, so a share reads as a
percentage with sensible decimals everywhere, a p-value never reads "p = 0", a count has
thousands separators and no false decimals, and money is in pounds. The workbook takes its
Excel number formats from the same column kinds (:func:`column_kind`, :data:`EXCEL_FORMAT`),
so a column is a percentage on the page and in the spreadsheet alike.

Every function returns plain text (escape it for HTML). A value that disclosure control
suppressed (``"*"``) is shown as ``*``; a missing or withheld value as an en dash.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Literal

DASH = "\u2013"
SUPPRESSED = "*"
MINUS = "\u2212"  # a true minus sign: "−3.1", not a hyphen

Kind = Literal["count", "share", "percent", "p", "money", "ratio", "rate", "number", "text"]


def _num(v: Any) -> float | None:
    """``v`` as a float, or None when it is no number (None, NaN, text, a bool)."""
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalars
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return float(v)


def _absent(v: Any) -> bool:
    """Whether ``v`` holds no value: None, or a float NaN (pandas' missing value)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _missing(v: Any) -> str:
    """How a value that is not a number is shown: ``*`` when suppressed, else a dash."""
    return SUPPRESSED if v == SUPPRESSED else DASH


def _signed(text: str) -> str:
    """``text`` with a typographic minus for a leading hyphen."""
    return MINUS + text[1:] if text.startswith("-") else text


def count(v: Any) -> str:
    """A count: ``12,626``; a whole-number float loses its ``.0`` (``2,000``, not ``2,000.00``).

    >>> count(2000.0), count(12626), count("*"), count(None)
    ('2,000', '12,626', '*', '–')
    """
    x = _num(v)
    return _missing(v) if x is None else _signed(f"{round(x):,}")


def number(v: Any, decimals: int = 1) -> str:
    """A measured quantity with ``decimals`` decimals and thousands separators.

    >>> number(479259.1, 0), number(3.14159, 2), number(-0.04, 1)
    ('479,259', '3.14', '−0.0')
    """
    x = _num(v)
    return _missing(v) if x is None else _signed(f"{x:,.{decimals}f}")


def share_decimals(share: float) -> int:
    """Decimals that show a share (0 to 1) as a percentage without false precision: one
    decimal, two below 0.1%, none for exactly zero."""
    pct = abs(share) * 100
    if pct == 0:
        return 0
    if pct < 1:
        return 2 if pct < 0.1 else 1
    return 1


def pct(share: Any, decimals: int | None = None) -> str:
    """A share (0 to 1) as a percentage: ``0.0299`` reads ``3.0%``, ``0.005`` ``0.5%``.

    >>> pct(0.0299), pct(0.005), pct(0.57), pct(1.0, 0), pct("*")
    ('3.0%', '0.5%', '57.0%', '100%', '*')
    """
    x = _num(share)
    if x is None:
        return _missing(share)
    d = share_decimals(x) if decimals is None else decimals
    return _signed(f"{100 * x:.{d}f}%")


def percent(v: Any, decimals: int = 1) -> str:
    """A value already in percent (``57.0``) with its sign: ``57.0%``."""
    x = _num(v)
    return _missing(v) if x is None else _signed(f"{x:.{decimals}f}%")


def points(v: Any, decimals: int = 1) -> str:
    """A difference of percentages, signed: ``+2.4 percentage points``."""
    x = _num(v)
    if x is None:
        return _missing(v)
    return _signed(f"{x:+.{decimals}f}") + " percentage points"


def p_value(p: Any) -> str:
    """A p-value as people read it: ``p < 0.001``, ``p = 0.004``, ``p = 0.41``.

    Two decimals from 0.01 up and three below (the BMJ's rule), three also near 0.05 so that
    0.049 does not read as 0.05; anything under 0.001 (including a p-value that underflowed
    to 0) is ``p < 0.001``.

    >>> p_value(0.0), p_value(0.0004), p_value(0.0042), p_value(0.0312), p_value(0.049)
    ('p < 0.001', 'p < 0.001', 'p = 0.004', 'p = 0.03', 'p = 0.049')
    >>> p_value(0.412), p_value(None)
    ('p = 0.41', '–')
    """
    x = _num(p)
    if x is None:
        return _missing(p)
    if x < 0.001:
        return "p < 0.001"
    return f"p = {x:.3f}" if x < 0.01 or 0.045 <= x < 0.055 else f"p = {x:.2f}"


def p_cell(p: Any) -> str:
    """A p-value in a table column headed "p": ``< 0.001`` or ``0.41`` (no ``p =``)."""
    text = p_value(p)
    return text[4:] if text.startswith("p = ") else text.replace("p < ", "< ")


def money(v: Any, decimals: int = 0) -> str:
    """Pounds: ``£1,234``; millions as ``£1.2 million`` from £10 million up.

    >>> money(1234.4), money(-56000), money(12_345_678)
    ('£1,234', '−£56,000', '£12.3 million')
    """
    x = _num(v)
    if x is None:
        return _missing(v)
    sign = MINUS if x < 0 else ""
    x = abs(x)
    if x >= 10_000_000:
        return f"{sign}£{x / 1e6:,.1f} million"
    return f"{sign}£{x:,.{decimals}f}"


def ratio(v: Any, decimals: int = 2) -> str:
    """A ratio (rate ratio, odds ratio): two decimals, three below 0.1."""
    x = _num(v)
    if x is None:
        return _missing(v)
    return f"{x:.{3 if abs(x) < 0.1 else decimals}f}"


def change(rr: Any, decimals: int = 0) -> str:
    """A rate ratio as a percentage change in words: ``0.896`` reads ``10% fewer``.

    >>> change(0.896), change(1.052), change(1.0), change(0.996, 1)
    ('10% fewer', '5% more', 'no change', '0.4% fewer')
    """
    x = _num(rr)
    if x is None:
        return _missing(rr)
    diff = (x - 1) * 100
    shown = f"{abs(diff):.{decimals}f}"
    if float(shown) == 0:
        return "no change"
    return f"{shown}% {'fewer' if diff < 0 else 'more'}"


def change_interval(lo: Any, hi: Any, decimals: int = 0) -> str:
    """A rate ratio's interval as changes: ``14% fewer to 7% fewer``, ``6% fewer to 3% more``."""
    return f"{change(lo, decimals)} to {change(hi, decimals)}"


def signed_pct_change(rr: Any, decimals: int = 0) -> str:
    """A rate ratio as a signed percentage change for axes and tables: ``−10%``, ``+5%``."""
    x = _num(rr)
    if x is None:
        return _missing(rr)
    return _signed(f"{(x - 1) * 100:+.{decimals}f}%")


def rate(v: Any, per: str = "1,000 person-years", decimals: int = 1) -> str:
    """A rate with what it is per: ``110.0 per 1,000 person-years``."""
    x = _num(v)
    return _missing(v) if x is None else f"{number(x, decimals)} per {per}"


def date_words(iso: Any) -> str:
    """An ISO date as running text reads it: ``2011-09-01`` reads "1 September 2011"; text
    that is no date is returned as it is.

    >>> date_words("2011-09-01"), date_words("later")
    ('1 September 2011', 'later')
    """
    try:
        d = dt.date.fromisoformat(str(iso)[:10])
    except ValueError:
        return str(iso)
    return f"{d.day} {d:%B %Y}"


def months(v: Any) -> str:
    """A number of months: ``1 month``, ``12 months``."""
    x = _num(v)
    if x is None:
        return _missing(v)
    n = round(x)
    return f"{n:,} month" + ("" if n == 1 else "s")


# ---- columns of tables ------------------------------------------------------------------

# How a column's name says what it holds, tried in order; the first match decides. Names are
# the published results' keys (``coverage_of_eligible``, ``p_value``, ``cost_before``).
_KIND_RULES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"(^|_)p(_value)?($|_)|^p$|pvalue"), "p"),
    (re.compile(r"(share|coverage|proportion|fraction|_rate_of|response_rate)|^rate$"), "share"),
    (re.compile(r"(_pct|percent|_percentage)($|_)"), "percent"),
    (re.compile(r"(cost|spend|£|gbp|pounds)"), "money"),
    (re.compile(r"(rate_ratio|odds_ratio|hazard_ratio|(^|_)rr($|_)|ratio)"), "ratio"),
    (re.compile(r"per_1000"), "rate"),
)


def column_kind(name: str, values: Any = None) -> Kind:
    """What a table column holds, from its name (and, for counts, its values).

    A column of whole numbers whose name matches no rule is a count; other numbers are
    measured quantities; anything else is text.

    >>> column_kind("coverage_of_eligible"), column_kind("p_value"), column_kind("cost")
    ('share', 'p', 'money')
    >>> column_kind("emergency_per_1000_py"), column_kind("people", [1, 2, float("nan")])
    ('rate', 'count')
    """
    low = name.lower()
    for pattern, kind in _KIND_RULES:
        if pattern.search(low):
            return kind
    if values is None:
        return "number"
    nums = [x for v in values if (x := _num(v)) is not None]
    texts = [v for v in values if _num(v) is None and not _absent(v) and v != SUPPRESSED]
    if not nums:
        return "text" if texts else "number"
    if texts:
        return "text"
    return "count" if all(float(x).is_integer() for x in nums) else "number"


def cell(v: Any, kind: Kind) -> str:
    """One table cell's text for a column of ``kind``; a missing value (None, NaN) is a dash.

    >>> cell(float("nan"), "text"), cell(None, "count"), cell(0.25, "share"), cell(3.0, "count")
    ('–', '–', '25.0%', '3')
    """
    if isinstance(v, bool):
        return "yes" if v else "no"
    if _absent(v):
        return DASH
    if kind == "text" or (_num(v) is None and v != SUPPRESSED):
        return str(v)
    if kind == "count":
        return count(v)
    if kind == "share":
        return pct(v)
    if kind == "percent":
        return percent(v)
    if kind == "p":
        return p_cell(v)
    if kind == "money":
        return money(v)
    if kind == "ratio":
        return ratio(v)
    if kind == "rate":
        return number(v, 1)
    x = _num(v)
    if x is None:
        return _missing(v)
    # A measured quantity: decimals by size, so 479,259.1 person-years read 479,259 and a
    # mean of 0.0437 keeps its digits.
    if abs(x) >= 1000:
        return number(x, 0)
    if abs(x) >= 10:
        return number(x, 1)
    if abs(x) >= 0.1 or x == 0:
        return number(x, 2)
    return _signed(f"{x:.2g}")


# The Excel number format of each kind (the workbook's columns read as the page's).
EXCEL_FORMAT: dict[Kind, str] = {
    "count": "#,##0",
    "share": "0.0%",
    "percent": '0.0"%"',
    "p": "0.000",
    "money": '"£"#,##0',
    "ratio": "0.00",
    "rate": "#,##0.0",
    "number": "#,##0.00",
    "text": "@",
}
