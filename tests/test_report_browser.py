"""The report's layout and behaviour in headless Chromium: a phone's screen, sortable tables with
a CSV copy each, folded reading sections, A4 printing with page numbers and the board summary.

Two pages are read. A small page rendered here from a table of known values checks the
behaviour against values worked out by hand (sort order, CSV quoting, folding); the report of a
whole run (``report_run``, the slow tier) checks that every table, chart and section of the
real page gets it. Chromium is driven over the DevTools protocol (:class:`test_report_run.
DevTools`); PDFs are read with pypdf. Skipped only when no Chromium binary exists.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pypdf import PdfReader
from test_report_run import DevTools, find_chromium, page_errors, report_run

from careval.disclosure import DisclosureSettings
from careval.report.page import Section, render, table_html

__all__ = ["report_run"]  # the module-scoped run of test_report_run, used here too

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PAGE_NUMBER = re.compile(r"Page (\d+) of (\d+)")


class Tab:
    """One page open in headless Chromium at a given screen size."""

    def __init__(self, browser: DevTools, page: Path, screen: dict[str, Any]) -> None:
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.send(f"{domain}.enable", session=self.s)
        browser.send("Emulation.setDeviceMetricsOverride", screen, session=self.s)
        browser.events.clear()
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=self.s)
        browser.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of ``expression`` (a JSON string is decoded)."""
        r = self.b.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.s
        )
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        value = r["result"].get("value")
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def key(self, key: str, code: int, text: str = "") -> None:
        """Press and release a key on the focused element, as a keyboard does."""
        for kind in ("keyDown", "keyUp"):
            event = {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}
            if kind == "keyDown" and text:
                event["text"] = text
            self.b.send("Input.dispatchKeyEvent", event, session=self.s)

    def pdf(self) -> PdfReader:
        """The page printed to PDF at the page size its CSS asks for."""
        data = self.b.send(
            "Page.printToPDF",
            {"preferCSSPageSize": True, "printBackground": True},
            session=self.s,
            timeout=120,
        )["data"]
        return PdfReader(io.BytesIO(base64.b64decode(data)))

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads of this page."""
        return page_errors(self._own())[0]

    def requests(self) -> list[str]:
        """Every URL this page asked for."""
        return page_errors(self._own())[1]

    def _own(self) -> list[dict[str, Any]]:
        return [e for e in self.b.events if e.get("sessionId") == self.s]


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (looked for chromium, chromium-browser, chrome)")
    b = DevTools(exe)
    yield b
    b.close()


# A table of known values: numbers whose order as text (even digit runs compared as numbers:
# "-2.25" before "-10", "0.5" before "0.25") differs from their order by value, a missing and a
# suppressed cell, text with a comma, quotes and a line break.
KNOWN = pd.DataFrame(
    {
        "area": ["b, the second", 'say "hi"', "line\nbreak", "alpha", "Zeta"],
        "people": [10, 9, 1234567, None, "*"],
        "rate": [0.5, -2.25, 0.25, -10.0, None],
    }
)


@pytest.fixture(scope="module")
def small_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page of three sections: one table of known values, methods and provenance."""
    labels = {"area": "Area", "people": "People", "rate": "Rate"}
    table = table_html(KNOWN, labels, "known", ("area",))
    loose = "<table><tr><td>key</td><td>a value</td></tr><tr><td>other</td><td>2</td></tr></table>"
    sections = [
        Section("summary", "Summary of findings", "<p>Board text.</p>" + table),
        Section("methods", "Methods", "<p id='methods-text'>How it was done.</p>"),
        Section("provenance", "Provenance", loose),
    ]
    page = render("Known page", sections, True, {"careval_version": "x"}, DisclosureSettings())
    path = tmp_path_factory.mktemp("small-page") / "page.html"
    path.write_text(page, encoding="utf-8")
    return path


def _csv_links(tab: Tab) -> list[dict[str, Any]]:
    """Each table of ``main``, its cells as shown and raw, and the CSV link after it."""
    return tab.js(
        """JSON.stringify([...document.querySelectorAll('main table')].map((t, i) => {
      const wrap = t.closest('.table-wrap'), tools = wrap && wrap.nextElementSibling;
      const a = tools && tools.querySelector('a.csv');
      return {
        id: t.id, index: i,
        head: t.tHead ? [...t.tHead.rows[t.tHead.rows.length - 1].cells]
          .map(c => c.textContent.trim()) : [],
        body: [...t.tBodies].flatMap(b => [...b.rows]).map(r => [...r.cells].map(c =>
          c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent.trim())),
        download: a ? a.getAttribute('download') : null,
        href: a ? a.getAttribute('href') : null,
      };
    }))"""
    )


def _decode(href: str) -> list[list[str]]:
    """The rows of a ``data:text/csv`` link (a UTF-8 byte-order mark first, for spreadsheets)."""
    prefix = "data:text/csv;charset=utf-8,"
    assert href.startswith(prefix), href[:40]
    text = urllib.parse.unquote(href[len(prefix) :])
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def _column(tab: Tab, table: str, col: int) -> list[str]:
    return tab.js(
        f"""JSON.stringify([...document.querySelectorAll('#{table} tbody tr')].map(r =>
        r.cells[{col}].getAttribute('data-v')))"""
    )


def test_sorting_orders_numbers_by_value_text_alphabetically_and_gaps_last(
    browser: DevTools, small_page: Path
) -> None:
    tab = Tab(browser, small_page, DESKTOP)
    people = "document.querySelectorAll('#known thead th')[1]"
    tab.js(f"{people}.querySelector('button').click()")
    # 9 < 10 < 1,234,567 by value (as text "10" < "1234567" < "9"); missing and * last.
    assert _column(tab, "known", 1) == ["9", "10", "1234567", "", "*"]
    assert tab.js(f"{people}.getAttribute('aria-sort')") == "ascending"
    # Again, from the keyboard: Enter on the focused header reverses it; gaps stay last.
    tab.js(f"{people}.querySelector('button').focus()")
    tab.key("Enter", 13, "\r")
    assert _column(tab, "known", 1) == ["1234567", "10", "9", "", "*"]
    assert tab.js(f"{people}.getAttribute('aria-sort')") == "descending"
    # Another column: negative and decimal numbers; the first column loses its aria-sort.
    tab.js("document.querySelectorAll('#known thead th')[2].querySelector('button').click()")
    assert _column(tab, "known", 2) == ["-10", "-2.25", "0.25", "0.5", ""]
    assert tab.js(f"{people}.hasAttribute('aria-sort')") is False
    # Text: alphabetical whatever the case.
    tab.js("document.querySelectorAll('#known thead th')[0].querySelector('button').click()")
    assert _column(tab, "known", 0)[:2] == ["alpha", "b, the second"]
    assert _column(tab, "known", 0)[-1] == "Zeta"
    assert tab.errors() == []


def test_csv_of_a_table_quotes_by_rfc_4180_and_keeps_raw_values_and_the_order_shown(
    browser: DevTools, small_page: Path
) -> None:
    tab = Tab(browser, small_page, DESKTOP)
    links = {t["download"]: t for t in _csv_links(tab)}
    assert set(links) == {"known.csv", "provenance-1.csv"}
    rows = _decode(links["known.csv"]["href"])
    assert rows[0] == ["Area", "People", "Rate"]  # the labels shown, without sort marks
    # Raw values (1234567, not "1,234,567"), a missing cell empty, * kept.
    assert rows[1:] == [
        ["b, the second", "10", "0.5"],
        ['say "hi"', "9", "-2.25"],
        ["line\nbreak", "1234567", "0.25"],
        ["alpha", "", "-10"],
        ["Zeta", "*", ""],
    ]
    raw = urllib.parse.unquote(links["known.csv"]["href"])
    assert '"say ""hi"""' in raw and '"b, the second"' in raw and '"line\nbreak"' in raw
    assert raw.endswith("\r\n") and raw.count("\r\n") == 6  # CRLF ends each record
    # Sorted, the CSV follows the order on the page.
    tab.js("document.querySelectorAll('#known thead th')[1].querySelector('button').click()")
    (after,) = [t for t in _csv_links(tab) if t["id"] == "known"]
    assert [r[1] for r in _decode(after["href"])[1:]] == ["9", "10", "1234567", "", "*"]
    # A table without a header row (written by hand, not in a wrapper) gets both too.
    assert _decode(links["provenance-1.csv"]["href"]) == [["key", "a value"], ["other", "2"]]
    assert tab.js("document.querySelector('#provenance table').parentNode.className") == (
        "table-wrap"
    )


def test_folded_sections_open_from_a_link_and_for_printing_then_close_again(
    browser: DevTools, small_page: Path
) -> None:
    tab = Tab(browser, small_page, DESKTOP)
    state = "JSON.stringify([...document.querySelectorAll('main details.fold')].map(d => d.open))"
    assert tab.js(state) == [False, False]
    assert tab.js("document.getElementById('methods-text').checkVisibility()") is False  # folded
    # Printing opens them, and the print holds their text but not the fold's button.
    text = _text(tab.pdf())
    assert "How it was done." in text and "a value" in text and "this section" not in text
    assert tab.js(state) == [False, False]  # closed again after printing
    # The contents' link to a folded section opens it.
    tab.js("document.querySelector('nav a[href=\"#methods\"]').click()")
    assert tab.js(state) == [True, False]
    assert tab.js("document.getElementById('methods-text').checkVisibility()") is True
    assert tab.errors() == []


def test_the_page_has_its_style_and_script_inline_and_asks_for_nothing(
    browser: DevTools, small_page: Path
) -> None:
    html = small_page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|img|iframe)[^>]+src=|<link\b|@import|url\(", html, re.I)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and len(scripts[0].encode()) < 10_240  # under 10 kB
    tab = Tab(browser, small_page, PHONE)
    assert all(u.startswith(("file:", "data:", "about:")) for u in tab.requests())
    assert tab.errors() == []


# The report of a whole run.


def test_on_a_phone_the_page_fits_the_screen_and_the_contents_are_one_button(
    browser: DevTools, report_run: Path
) -> None:
    tab = Tab(browser, report_run / "report.html", PHONE)
    dom = tab.js(
        """JSON.stringify({
      width: document.documentElement.scrollWidth,
      nav: document.querySelector('nav').getBoundingClientRect().height,
      shown: [...document.querySelectorAll('nav a')].filter(a => a.offsetParent).length,
      links: document.querySelectorAll('nav a').length,
      column: document.querySelector('main section').clientWidth,
      charts: [...document.querySelectorAll('main svg')].map(s => s.getBoundingClientRect().width),
    })"""
    )
    assert dom["width"] <= 390
    assert dom["nav"] <= 60  # was 245 of the 844 px with every link in the bar
    assert dom["shown"] == 0 and dom["links"] >= 13
    assert len(dom["charts"]) >= 8 and max(dom["charts"]) <= dom["column"] + 0.5
    # The button opens the whole list, under the bar; choosing a section closes it.
    tab.js("document.querySelector('.toc-toggle').click()")
    opened = tab.js(
        """JSON.stringify({
      expanded: document.querySelector('.toc-toggle').getAttribute('aria-expanded'),
      shown: [...document.querySelectorAll('nav a')].filter(a => a.offsetParent).length})"""
    )
    assert opened == {"expanded": "true", "shown": dom["links"]}
    tab.js("document.querySelector('nav a[href=\"#impact\"]').click()")
    assert tab.js("document.querySelector('.toc-toggle').getAttribute('aria-expanded')") == (
        "false"
    )
    assert tab.js("document.documentElement.scrollWidth") <= 390
    assert tab.errors() == []


def test_wide_tables_scroll_in_their_box_and_say_so_only_when_cut(
    browser: DevTools, report_run: Path
) -> None:
    script = """JSON.stringify([...document.querySelectorAll('main .table-wrap')]
      .filter(w => !w.closest('details:not([open])')).map(w => ({
        cut: w.scrollWidth > w.clientWidth + 1, right: w.getBoundingClientRect().right,
        hint: !w.previousElementSibling.hidden && w.previousElementSibling.offsetHeight > 0,
        scrolls: getComputedStyle(w).overflowX})))"""
    phone = Tab(browser, report_run / "report.html", PHONE).js(script)
    assert sum(w["cut"] for w in phone) >= 3  # some tables are wider than a phone
    for w in phone:
        assert w["scrolls"] == "auto" and w["right"] <= 390
        assert w["hint"] == w["cut"], w
    desktop = Tab(browser, report_run / "report.html", DESKTOP).js(script)
    assert sum(w["cut"] for w in desktop) < sum(w["cut"] for w in phone)
    assert all(w["hint"] == w["cut"] for w in desktop)


def test_every_table_of_the_report_has_a_csv_with_its_header_and_rows(
    browser: DevTools, report_run: Path
) -> None:
    tab = Tab(browser, report_run / "report.html", DESKTOP)
    tables = _csv_links(tab)
    assert len(tables) >= 30
    names = [t["download"] for t in tables]
    assert None not in names and len(set(names)) == len(names)
    for t in tables:
        assert t["download"] == (t["id"] or t["download"][:-4]) + ".csv"
        rows = _decode(t["href"])
        head = [t["head"]] if t["head"] else []
        assert rows == head + t["body"], t["id"]
    assert tab.errors() == []


def test_sorting_a_numeric_column_of_the_report_orders_its_rows_by_value(
    browser: DevTools, report_run: Path
) -> None:
    tab = Tab(browser, report_run / "report.html", DESKTOP)
    # The first column of the people by area table that holds numbers only.
    col = tab.js(
        """[...document.querySelectorAll('#people-by-area thead th')].findIndex((h, i) =>
        [...document.querySelectorAll('#people-by-area tbody tr')].every(r =>
          /^-?[0-9.]+(e-?[0-9]+)?$/.test(r.cells[i].getAttribute('data-v'))))"""
    )
    assert col > 0
    before = [float(v) for v in _column(tab, "people-by-area", col)]
    tab.js(f"document.querySelectorAll('#people-by-area thead th')[{col}].firstChild.click()")
    after = [float(v) for v in _column(tab, "people-by-area", col)]
    assert after == sorted(before) and sorted(after) == sorted(before)
    tab.js(f"document.querySelectorAll('#people-by-area thead th')[{col}].firstChild.click()")
    assert [float(v) for v in _column(tab, "people-by-area", col)] == sorted(before, reverse=True)
    assert tab.errors() == []


def _text(pdf: PdfReader, page: int | None = None) -> str:
    """The text of one page or of all, with ligatures undone (the font sets "fi" as one)."""
    pages = pdf.pages if page is None else [pdf.pages[page]]
    return unicodedata.normalize("NFKC", "".join(p.extract_text() for p in pages))


A4 = (210 / 25.4 * 72, 297 / 25.4 * 72)  # 595.3 by 841.9 points


def _a4(pdf: PdfReader) -> None:
    """Every page is A4 portrait (Chromium rounds to its device pixels: 594.96 by 841.92)."""
    for page in pdf.pages:
        box = page.mediabox
        assert abs(float(box.width) - A4[0]) < 1 and abs(float(box.height) - A4[1]) < 1, box


def test_the_report_prints_on_numbered_a4_pages(browser: DevTools, report_run: Path) -> None:
    tab = Tab(browser, report_run / "report.html", DESKTOP)
    pdf = tab.pdf()
    n = len(pdf.pages)
    assert n >= 5
    _a4(pdf)
    for i in (0, 1, n - 1):
        assert PAGE_NUMBER.findall(_text(pdf, i)) == [(str(i + 1), str(n))]
    text = _text(pdf)
    assert "Provenance" in text and "Download this table" not in text
    assert "Print the board summary" not in text
    assert tab.errors() == []


def test_in_print_every_table_and_chart_fits_the_a4_column(
    browser: DevTools, report_run: Path
) -> None:
    """Laid out as printed (print media, the width of A4 less the page's side margins, the
    script's preparation for printing), nothing is wider than the column: Chromium would
    otherwise shrink every page of the print to fit the widest."""
    column = round((210 - 2 * 14) / 25.4 * 96)  # CSS px
    tab = Tab(browser, report_run / "report.html", {**DESKTOP, "width": column})
    tab.b.send("Emulation.setEmulatedMedia", {"media": "print"}, session=tab.s)
    tab.js("window.dispatchEvent(new Event('beforeprint'))")
    wide = tab.js(
        """JSON.stringify([...document.querySelectorAll('main table, main svg, main figure')]
        .filter(e => e.getBoundingClientRect().width > document.documentElement.clientWidth)
        .map(e => e.id || e.tagName))"""
    )
    assert wide == []
    assert tab.js("document.documentElement.scrollWidth") <= column
    assert tab.js("document.querySelectorAll('table.fit').length") >= 1  # some needed fitting
    assert tab.errors() == []


def test_the_board_summary_prints_alone_on_at_most_two_pages(
    browser: DevTools, report_run: Path
) -> None:
    tab = Tab(browser, report_run / "report.html", DESKTOP)
    heading = tab.js("document.querySelector('#summary h2').textContent")
    others = tab.js(
        """JSON.stringify([...document.querySelectorAll('main > section:not(#summary) > h2')]
        .map(h => h.textContent)
        .filter(t => !document.getElementById('summary').textContent.includes(t)))"""
    )
    assert len(others) >= 8
    # The button: window.print is stood in for (the test prints through DevTools instead).
    tab.js("window.print = () => {}; document.getElementById('print-summary').click()")
    assert tab.js("document.body.classList.contains('print-summary')") is True
    pdf = tab.pdf()
    assert 1 <= len(pdf.pages) <= 2
    _a4(pdf)
    text = _text(pdf)
    assert heading in text
    assert [t for t in others if t in text] == []  # no other section
    assert PAGE_NUMBER.search(_text(pdf, 0))
    assert tab.js("document.body.classList.contains('print-summary')") is False  # afterprint
    assert tab.errors() == []
