"""A last check of a page before it is published: no count of 1-7 in any count cell.

Every table cell is written with ``data-col`` naming its column and every count in prose with
``<span class='n'>``; on real data, a cell of a count column (:func:`is_count_key`), a cell of
a table of counts (:data:`COUNT_TABLES`, whose columns are named after codes, groups or roles)
or such a span showing a count that disclosure control suppresses (1 to 7 with the default
:class:`~careval.disclosure.DisclosureSettings`, below
:func:`~careval.report.publish.rules.smallest_published` with others) means a table escaped
disclosure control, and the run stops rather than publish it (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from careval.disclosure import DisclosureSettings
from careval.errors import CarevalError
from careval.report.publish.rules import is_count_key, is_suppressed, suppressed_range

CELL = re.compile(r"<td[^>]*\bdata-col=\"([^\"]+)\"[^>]*>(.*?)</td>", re.S)
SPAN = re.compile(r"<span class='n'>(.*?)</span>", re.S)
KEYFIG = re.compile(r'<div class="keyfig"[^>]*data-path="([^"]+)"[^>]*><b>(.*?)</b>', re.S)
TABLE = re.compile(r'<table id="([^"]+)"[^>]*>(.*?)</table>', re.S)
TD = re.compile(r"<td([^>]*)>(.*?)</td>", re.S)
RAW = re.compile(r'\bdata-v="([^"]*)"')
# Tables whose columns are named after codes, groups or roles rather than count keys, and in
# which every cell that is not text (``class="text"``) is a count: who speaks after whom in MDG
# meetings, and the thematic coding's frequencies, framework matrix and co-occurrence.
COUNT_TABLES = re.compile(r"^(mdg-turns|qda-frequencies|qda-framework|qda-cooccurrence)$")


class DisclosureError(CarevalError):
    """A published output would show a count that disclosure control suppresses."""


def _number(text: str) -> float | None:
    t = re.sub(r"<[^>]+>", "", text).replace(",", "").strip()
    try:
        return float(t)
    except ValueError:
        return None


def _raw(tag: str) -> tuple[str, ...]:
    """The raw value a cell carries for sorting and its CSV (``data-v``), if any: it is
    published as much as the cell's text is."""
    m = RAW.search(tag)
    return (m[1],) if m else ()


def small_counts(page: str, d: DisclosureSettings) -> Iterator[tuple[str, str]]:
    """``(where, text)`` of every count shown in ``page`` that ``d`` suppresses (1-7)."""

    def small(v: float | None) -> bool:
        return v is not None and is_suppressed(v, d)

    for m in CELL.finditer(page):
        col, text = m[1], m[2]
        if is_count_key(col) and any(small(_number(t)) for t in (text, *_raw(m[0]))):
            yield f"table column {col}", text
    for t in TABLE.finditer(page):
        if not COUNT_TABLES.match(t[1]):
            continue
        for m in TD.finditer(t[2]):
            if 'class="text"' not in m[1] and any(small(_number(x)) for x in (m[2], *_raw(m[1]))):
                yield f"table {t[1]}", m[2]
    for m in SPAN.finditer(page):
        if small(_number(m[1])):
            yield "count in the text", m[1]
    for m in KEYFIG.finditer(page):
        leaf = m[1].rsplit(".", 1)[-1]
        v = _number(m[2])
        if is_count_key(leaf) and small(v):
            yield f"key figure {m[1]}", m[2]


def audit_page(page: str, d: DisclosureSettings) -> None:
    """Raise :class:`DisclosureError` when ``page`` shows a count of 1-7 (the counts ``d``
    suppresses; see the module doc)."""
    found = list(small_counts(page, d))
    if found:
        where = "; ".join(f"{w}: {t}" for w, t in found[:5])
        raise DisclosureError(
            f"the report would show {len(found)} count(s) of {suppressed_range(d)} under "
            "disclosure control "
            f"({where}); nothing was written"
        )


def audit_results(results: dict[str, Any], d: DisclosureSettings) -> None:
    """Raise :class:`DisclosureError` when the published ``results`` (``results.json``) give
    back a count of 1-7 by arithmetic: share x base, rate x person-time, a total minus its
    parts (:func:`careval.report.publish.recovery.recoveries`, which reads them as an attacker
    would). Run before anything is written, on data not flagged synthetic."""
    from careval.report.publish.recovery import recoveries

    found = recoveries(results, d)
    if found:
        tables = sorted({f.table for f in found})
        where = "; ".join(f.line() for f in found[:5])
        raise DisclosureError(
            f"the published results would give back {len(found)} count(s) of "
            f"{suppressed_range(d)} by arithmetic, in {len(tables)} table(s) "
            f"({', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}): {where}"
            f"{'; ...' if len(found) > 5 else ''}; nothing was written"
        )
