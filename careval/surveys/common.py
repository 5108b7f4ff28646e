"""Helpers shared by the survey and qualitative readers: tables of text, problems, safe writes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError
from careval.report.publish.rules import MIN_PEOPLE, protect_count


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` as a Path if it is an existing file, else a ConfigError naming it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: {what} not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    return path


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV or XLSX file as text cells (blank cells as ""), headers stripped."""
    path = require_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            df = pd.read_excel(path, dtype=str, engine="openpyxl").fillna("")
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the file is empty; expected a header row") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        kind = "an Excel workbook (.xlsx)" if suffix == ".xlsx" else "CSV"
        raise ConfigError(f"{path}: cannot be read as {kind} ({e})") from None
    except Exception as e:  # openpyxl raises its own errors for broken workbooks
        raise ConfigError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def require_columns(path: Path, df: pd.DataFrame, columns: Iterable[str], what: str = "") -> None:
    """A ConfigError naming every missing column and the columns the file has."""
    absent = [c for c in columns if c not in df.columns]
    if absent:
        have = ", ".join(map(repr, df.columns)) or "(no columns)"
        raise ConfigError(
            f"{path}: column{'s' if len(absent) > 1 else ''} not found: "
            f"{', '.join(map(repr, absent))}{' (' + what + ')' if what else ''}; "
            f"the file has: {have}"
        )


def count_out(n: int, protect: bool) -> int | str:
    """A count as published: protected (1-7 as "*", others rounded to 5) when ``protect``."""
    return protect_count(int(n)) if protect else int(n)


def share_out(
    value: float | None,
    base: int,
    protect: bool,
    digits: int = 4,
    count: int | None = None,
    published: tuple[Any, Any] | None = None,
) -> float | None:
    """A proportion as published: withheld (None) under protection when ``base`` < 8.

    With ``count`` (the count the share is of, out of ``base``), the share is withheld too when
    that count or the rest of the base (``base - count``) is a suppressed count (1-7): share x
    base would give it back.

    With ``published`` (the count and the base as published, e.g. ``(100, 400)``), a share that
    is not withheld is, under protection, the published count over the published base instead
    of ``value``, so that it gives back no more than the rounded counts do; it is withheld when
    either is suppressed (``*``) or the base is 0. Without protection ``published`` is ignored.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if protect and base < MIN_PEOPLE:
        return None
    if protect and count is not None and (small(count) or small(int(base) - int(count))):
        return None
    if protect and published is not None:
        value = share_of_published(*published)
        if value is None:
            return None
    return round(float(value), digits)


def share_of_published(count: Any, base: Any) -> float | None:
    """Published ``count`` / published ``base``; None when either is suppressed or the base 0."""
    if not _is_int(count) or not _is_int(base) or int(base) <= 0:
        return None
    return int(count) / int(base)


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def weighted_share_step(base: int) -> float:
    """The precision a weighted share with published unweighted ``base`` is published to.

    The power of ten ``10^ceil(log10(5 / base))``: the smallest step of at least ``5 / base``, so
    that share x base is no sharper than a count rounded to 5 (+-2.5). A base of 8-49 gives 1
    (the share shows as 0 or 1), 50-499 gives 0.1, 500-4,999 gives 0.01, and so on.
    """
    decimals = 0
    while 5 * 10 ** (decimals + 1) <= base:
        decimals += 1
    return 10.0**-decimals


def weighted_share_out(
    value: float | None, base: int, protect: bool, count: int | None, published_base: Any
) -> float | None:
    """A weighted proportion as published.

    Unprotected as :func:`share_out`. Under protection it is withheld as :func:`share_out`
    withholds (and when ``published_base`` is suppressed); otherwise, since a weighted share
    cannot be recomputed from the rounded counts, it is rounded to
    :func:`weighted_share_step` of ``published_base`` (the unweighted base as published).
    """
    out = share_out(value, base, protect, count=count)
    if not protect or out is None or value is None:
        return out
    if not _is_int(published_base) or int(published_base) <= 0:
        return None
    decimals = round(-math.log10(weighted_share_step(int(published_base))))
    return round(round(float(value), decimals), 4)


def small(n: Any) -> bool:
    """Whether a true count is one that disclosure control suppresses (1-7)."""
    return isinstance(protect_count(int(n)), str)


def effective_n_out(value: float | None, protect: bool) -> float | int | None:
    """Kish's effective sample size as published.

    Unprotected: to 2 decimals. Protected it is treated as a count (without weights it equals
    the number of answers): withheld below 8, otherwise rounded to the nearest 5.
    """
    if value is None or not math.isfinite(float(value)):
        return None
    if not protect:
        return round(float(value), 2)
    published = protect_count(round(float(value)))
    return published if isinstance(published, int) and value >= MIN_PEOPLE else None


class Note(str):
    """A warning whose text holds counts: the text is exact, :meth:`published` protects them.

    ``Note("{n} of {total} lines", n=3, total=40)`` reads "3 of 40 lines"; published under
    disclosure control it reads "* of 40 lines". Counts are written with thousands separators.
    """

    template: str
    counts: dict[str, int]

    def __new__(cls, template: str, **counts: int) -> Note:
        self = super().__new__(cls, template.format(**{k: f"{v:,}" for k, v in counts.items()}))
        self.template = template
        self.counts = dict(counts)
        return self

    def prefixed(self, prefix: str) -> Note:
        """The same note with ``prefix`` (plain text) in front."""
        return Note(prefix.replace("{", "{{").replace("}", "}}") + self.template, **self.counts)

    def published(self, protect: bool) -> str:
        """The text as published: counts protected (1-7 as "*", others rounded to 5)."""
        if not protect:
            return str(self)
        return self.template.format(
            **{k: _plain_count(count_out(v, True)) for k, v in self.counts.items()}
        )


def _plain_count(v: int | str) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def published_notes(notes: Iterable[str], protect: bool) -> list[str]:
    """Warnings as published: the counts in each :class:`Note` protected when ``protect``."""
    return [n.published(protect) if isinstance(n, Note) else str(n) for n in notes]


def plain(v: Any) -> Any:
    """A JSON-ready scalar: numpy to Python, NaN to None."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as JSON-ready dicts."""
    return [{k: plain(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def count_matrix_out(df: pd.DataFrame, protect: bool) -> dict[str, dict[str, int | str]]:
    """A square table of counts as ``{row: {column: count}}``, counts as published."""
    return {
        str(a): {str(b): count_out(int(v), protect) for b, v in row.items()}
        for a, row in df.iterrows()
    }


def percent(v: Any) -> str:
    """A share as a percentage to one decimal for the report; "withheld" when None or NaN."""
    return "withheld" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"


def code_text(v: Any) -> str:
    """A response value as a code string: 4.0 -> "4", " yes " -> "yes", missing -> ""."""
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)):
            return ""
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    text = str(v).strip()
    try:
        f = float(text)
    except ValueError:
        return text
    return str(int(f)) if math.isfinite(f) and f.is_integer() and "e" not in text.lower() else text
