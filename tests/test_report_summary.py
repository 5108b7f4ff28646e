"""The board summary, flow diagram, coverage and Table 3 of a whole run, against results.json.

The page is parsed (no browser needed) and each figure compared with the value computed here
from ``results.json`` by the definitions of the issue: the percentage change is
``(rate ratio - 1) x 100``; admissions avoided a year are the treated's baseline rate (per
person-month) x 12 x the number treated x (1 - rate ratio); coverage is the eligible and
care-planned over the eligible on the reference date (attrition steps 5 and 4).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from careval.report.sections import SECTION_ORDER
from careval.report.sections.findings import lookup

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.fixture(scope="module")
def summary_run(synth_run: Path) -> Path:
    """The session's run on the shared synthetic dataset (conftest's ``synth_run``)."""
    return synth_run


def _page(run: Path) -> str:
    return (run / "report.html").read_text()


def _results(run: Path) -> dict[str, Any]:
    return json.loads((run / "results.json").read_text())


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section[^>]*id="{sid}".*?</section>', page, flags=re.S)
    assert m, sid
    return m[0]


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment (tags and SVG title/desc dropped)."""
    t = re.sub(r"<(title|desc)\b.*?</\1>", " ", fragment, flags=re.S)
    t = re.sub(r"<[^>]+>", " ", t)
    return re.sub(r"\s+", " ", html.unescape(t)).strip()


def _figs(fragment: str) -> list[dict[str, str]]:
    """Every machine-checkable figure: its paths, kind and text."""
    return [
        {"path": m[1], "kind": m[2], "text": html.unescape(m[3])}
        for m in re.finditer(
            r'<span class="fig" data-path="([^"]*)" data-kind="(\w+)"[^>]*>([^<]*)</span>', fragment
        )
    ]


def _number(text: str) -> float:
    m = re.search(r"[\d,]+(?:\.\d+)?", text)
    assert m, text
    return float(m[0].replace(",", ""))


def _words(pct: float) -> tuple[float, str]:
    """A percentage change as the page rounds it: its size and "fewer" or "more"."""
    decimals = 1 if abs(pct) < 1 else 0
    return round(abs(pct), decimals), "fewer" if pct < 0 else "more"


def test_first_sentence_is_the_percentage_change_and_its_interval(summary_run: Path) -> None:
    page, res = _page(summary_run), _results(summary_run)
    e = res["impact"]["outcomes"]["emergency_admissions"]
    head = re.search(r"<p id='headline'>(.*?)</p>", _section(page, "summary"), flags=re.S)
    assert head
    first = _text(head[1]).split(". ")[0]
    for key in ("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high"):
        size, word = _words((e[key] - 1) * 100)
        shown = f"{size:g}% {word}" if size else "no change"
        assert shown in first, (key, shown, first)
    assert first.startswith(f"Among the {e['n_treated']:,} care-planned people")
    assert "95% CI" in first and "matched controls" in first


def test_absolute_change_and_admissions_avoided_are_computed_from_the_json(
    summary_run: Path,
) -> None:
    page, res = _page(summary_run), _results(summary_run)
    e = res["impact"]["outcomes"]["emergency_admissions"]
    figs = {f["kind"]: f for f in _figs(_section(page, "summary"))}
    per_month = e["mean_treated_before"]
    per_1000 = abs(per_month * 12 * 1000 * (e["rate_ratio"] - 1))
    avoided = abs(per_month * 12 * e["n_treated"] * (1 - e["rate_ratio"]))
    assert abs(_number(figs["per1000"]["text"]) - per_1000) <= 0.5
    assert abs(_number(figs["avoided"]["text"]) - avoided) <= 0.5
    cost = res["impact"]["outcomes"].get("emergency_cost")
    if cost:
        pounds = abs(cost["estimate"] * 12 * e["n_treated"])
        assert abs(_number(figs["money"]["text"]) - pounds) <= (500 if pounds >= 10_000 else 5)
    # Every figure names values that results.json holds; a single count is shown as it is.
    for f in _figs(page):
        for path in f["path"].split():
            assert isinstance(lookup(res, path), int | float), f
        if f["kind"] == "count":
            assert _number(f["text"]) == lookup(res, f["path"]), f


def test_coverage_is_one_number_in_summary_data_and_objectives(summary_run: Path) -> None:
    page, res = _page(summary_run), _results(summary_run)
    steps = {r["step"]: r["pilot"] for r in res["data"]["attrition"]}
    want = f"{100 * steps[5] / steps[4]:.1f}%"
    summary = re.search(r'id="coverage"[^>]*><b>([^<]*)</b>', _section(page, "summary"))
    data = re.search(r"<b class='coverage'>([^<]*)</b>", _section(page, "data"))
    assert summary and data
    assert summary[1] == data[1] == want
    shift = next(o for o in res["objectives"] if o["objective"].startswith("Shift care"))
    assert f"({want})" in shift["evidence"]
    assert want in _text(_section(page, "objectives"))


def test_flow_diagram_counts_add_up_and_equal_the_json(summary_run: Path) -> None:
    page, res = _page(summary_run), _results(summary_run)
    svg = re.search(r"<svg[^>]*class=['\"]flow['\"].*?</svg>", _section(page, "data"), re.S)
    assert svg
    boxes = re.findall(r"data-box='(\w+)' data-path='([^']*)' data-count='([^']*)'", svg[0])
    counts = {b: int(c) for b, _, c in boxes}
    for _, paths, c in boxes:
        assert int(c) == sum(lookup(res, p) for p in paths.split()), paths
    att = res["impact"]["attrition"]
    # Each step of the treated is its parent minus its exclusions (exact on synthetic data).
    assert counts["matched"] == (
        att["treated_alive_and_registered_at_entry"]
        - att["unmatched_no_control_in_stratum"]
        - att["unmatched_outside_caliper"]
    )
    text = _text(svg[0])
    gap = att["care_planned"] - counts["planned_eligible"]
    assert f"+ {gap:,} care-planned but not eligible" in text  # the difference is explained
    assert counts["controls"] == att["controls_matched"]
    assert f"− {att['candidate_control_rows'] - att['controls_matched']:,} not chosen" in text
    assert "flow-diagram" in _section(page, "summary")  # the summary links to it


def test_table3_has_focus_for_development_and_no_code_names(summary_run: Path) -> None:
    section = _section(_page(summary_run), "objectives")
    table = re.search(r"<table.*?</table>", section, flags=re.S)
    assert table
    heads = [_text(h) for h in re.findall(r"<th[^>]*>.*?</th>", table[0], flags=re.S)]
    assert "Focus for development" in heads and "How sure" in heads
    cells = [_text(c) for c in re.findall(r"<td[^>]*>.*?</td>", table[0], flags=re.S)]
    assert cells and not [c for c in cells if SNAKE.search(c)]
    res = _results(summary_run)
    assert all(o["focus"] and o["how_sure"] for o in res["objectives"])


def test_power_is_stated_without_contradiction_and_sections_are_in_order(
    summary_run: Path,
) -> None:
    page, res = _page(summary_run), _results(summary_run)
    design = res["design"]
    months = res["impact"]["follow_up"]["median_months"]
    rows = [r for r in design["mde"] if r["followup_months"] <= months] or design["mde"][:1]
    row = rows[-1]
    fall = (1 - row["mde_rate_ratio"]) * 100
    planned = -design["settings"]["effect"] * 100
    power = _text(re.search(r"<p id='limit-power'>.*?</p>", page, flags=re.S)[0])
    assert f"could detect a fall of {fall:.0f}% or more" in power
    assert ("well powered" in power) == (fall <= planned)
    ids = re.findall(r'<section[^>]*id="([\w-]+)"', page)
    assert ids == [sid for sid, _ in SECTION_ORDER]
    assert ids.index("glossary") < ids.index("provenance") and ids[-1] == "appendix"
    assert "<dl class='glossary'>" in _section(page, "glossary")
    appendix = _text(_section(page, "appendix"))
    assert "Emergency admissions emergency_admissions" in appendix


def _doc(mde: float, cost: bool) -> dict[str, Any]:
    """Hand-made published results: a matched estimate, its follow-up and the design."""
    outcomes: dict[str, Any] = {
        "emergency_admissions": {
            "rate_ratio": 0.9,
            "rate_ratio_ci_low": 0.8,
            "rate_ratio_ci_high": 0.95,
            "mean_treated_before": 0.05,
            "n_treated": 200,
        }
    }
    if cost:
        outcomes["emergency_cost"] = {"estimate": -10.0, "ci_low": -20.0, "ci_high": 0.5}
    return {
        "impact": {"outcomes": outcomes, "follow_up": {"median_months": 12.0}},
        "design": {
            "settings": {"effect": -0.1},
            "mde": [
                {"followup_months": 6, "mde_rate_ratio": 0.8},
                {"followup_months": 12, "mde_rate_ratio": mde},
                {"followup_months": 18, "mde_rate_ratio": 0.95},
            ],
        },
    }


def test_power_sentence_says_well_powered_only_when_it_is() -> None:
    from careval.report.publish.model import Published
    from careval.report.sections.board import power_sentence

    well = _text(power_sentence(Published.read(_doc(0.93, cost=True))))
    assert well == (
        "With 12 months of follow-up the study could detect a fall of 7% or more; the planned "
        "fall was 10%, so it is well powered for it."
    )
    weak = _text(power_sentence(Published.read(_doc(0.85, cost=True))))
    assert "a fall of 15% or more" in weak and "too small or too short" in weak


def test_board_absolute_change_and_cost_from_hand_made_results() -> None:
    from careval.report.publish.model import Published
    from careval.report.sections.board import board

    text = _text(board(Published.read(_doc(0.93, cost=True)), ("pilot",), "care-planned"))
    # 0.05 a person-month x 12 x 1,000 x (0.9 - 1) = 60 fewer per 1,000 a year; x 200 people
    # / 1,000 = 12 avoided; -£10 x 12 x 200 = £24,000 less.
    assert text.startswith("Among the 200 care-planned people, there were about 10% fewer")
    assert "60 fewer emergency admissions per 1,000 people a year" in text
    assert "about 12 admissions avoided a year" in text
    assert "fell by about £24,000 a year" in text
    assert "a rise of £1,200" in text  # 0.5 x 12 x 200
    no_cost = _text(board(Published.read(_doc(0.93, cost=False)), ("pilot",), "care-planned"))
    assert "The cost of emergency admissions was not estimated in this run." in no_cost
