"""The whole page as its readers get it, in headless Chromium: words for people (no code name
in the visible text outside the appendix of code names), and charts people can read (a title,
a description and selectable text in every chart, a numbered caption under each).

Skipped only when no Chromium binary exists (``scripts/setup.sh`` installs Debian's).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_report_run import find_chromium, open_in_chromium

CODE_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")

PAGE_SCRIPT = """(() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const sections = [...document.querySelectorAll('main > section')];
  const visible = sections.filter(s => s.id !== 'appendix').map(s => {
    const words = [s.innerText];
    s.querySelectorAll('svg text').forEach(t => words.push(t.textContent));
    return {id: s.id, text: words.join(' ')};
  });
  const charts = [...document.querySelectorAll('main svg')].map(svg => {
    const range = document.createRange();
    range.selectNodeContents(svg);
    const texts = [...svg.querySelectorAll('text')];
    const fig = svg.closest('figure');
    const cap = fig ? fig.querySelector('figcaption') : null;
    const own = tag => svg.querySelector(':scope > ' + tag);
    return {
      title: own('title') ? own('title').textContent : '',
      desc: own('desc') ? own('desc').textContent : '',
      labelled: (svg.getAttribute('aria-labelledby') || '').split(' ')
        .every(id => id && document.getElementById(id)),
      texts: texts.length,
      selectable: texts.every(t => getComputedStyle(t).userSelect !== 'none'),
      selected: range.toString().trim().length,
      caption: cap ? cap.textContent : null,
    };
  });
  return JSON.stringify({visible, charts});
})()"""


@pytest.fixture(scope="module")
def page_dom(synth_run: Path) -> dict:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (looked for chromium, chromium-browser, chrome)")
    out = synth_run
    value, errors, _ = open_in_chromium(exe, out / "report.html", PAGE_SCRIPT)
    assert errors == []
    return json.loads(value)  # type: ignore[no-any-return]


def test_no_code_name_in_the_visible_text_outside_the_appendix(page_dom: dict) -> None:
    found = {
        s["id"]: sorted(set(CODE_NAME.findall(s["text"])))
        for s in page_dom["visible"]
        if CODE_NAME.search(s["text"])
    }
    assert found == {}


def test_every_chart_has_a_title_a_description_selectable_text_and_a_numbered_caption(
    page_dom: dict,
) -> None:
    charts = page_dom["charts"]
    assert len(charts) >= 10
    for c in charts:
        assert c["title"].strip() and c["desc"].strip() and c["labelled"], c
        assert c["texts"] > 0 and c["selectable"] and c["selected"] > 0, c
        assert c["caption"] and re.match(r"Figure \d+\. \S", c["caption"]), c
    numbers = [int(re.match(r"Figure (\d+)", c["caption"])[1]) for c in charts]
    # Numbered in page order, from 1, with no gap (a figure of small multiples may hold
    # several charts under one number).
    assert numbers == sorted(numbers)
    assert sorted(set(numbers)) == list(range(1, max(numbers) + 1))
