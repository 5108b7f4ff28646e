"""The analysis sections of the report read as text for people, and their charts as charts.

Each section (risk, Table 2, programme monitoring with its SPC charts, study design, clinical
indicators, surveys, qualitative findings) is rendered from a synthetic run's published
results; its visible text (tags stripped, the hover titles of ``<abbr>`` and SVG left out) must
hold no code name, and every chart must carry a title, a description and text as ``<text>``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.evaluation import Evaluation, evaluate
from careval.monitoring.programme import EMERGENCY_CHART
from careval.monitoring.spc import xmr
from careval.report.build import analysis_sections
from careval.report.page import PageContext, Section
from careval.report.publish.publication import Publication, publish
from careval.report.sections.spc import xmr_chart_svg
from careval.report.sections.surveys import LIKERT_SHADES, likert_chart_svg

SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
MINE = ("risk", "monitoring", "programme", "design", "indicators", "surveys", "qualitative")


@pytest.fixture(scope="module")
def evaluation(synth_dir: Path) -> Evaluation:
    """One run's results on the shared synthetic dataset (true numbers)."""
    return evaluate(synth_dir)


@pytest.fixture(scope="module")
def published(evaluation: Evaluation) -> Publication:
    """That run's published results, as the report renders them."""
    return publish(evaluation)


@pytest.fixture(scope="module")
def sections(published: Publication) -> dict[str, Section]:
    """My sections, rendered from the published results as the report renders them."""
    ctx = PageContext(disclosure=published.disclosure, seed_shaped=published.seed_shaped)
    return analysis_sections(published, ctx)


def visible_text(page: str) -> str:
    """What a reader sees: tags stripped, SVG ``<title>``/``<desc>`` hover text left out (the
    chart's own ``<text>`` stays), entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<(title|desc|metadata)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("sid", MINE)
def test_no_code_names_in_visible_text(sections: dict[str, Section], sid: str) -> None:
    assert sid in sections, f"{sid} did not run on the synthetic data"
    text = visible_text(sections[sid].html)
    found = sorted(set(SNAKE.findall(text)))
    assert found == [], f"code names in the visible text of {sid}: {found}"
    # Nor a number for machines: no "nan", no count with false decimals ("2,000.00").
    assert not re.search(r"\b(nan|NaN|None)\b", text)
    assert not re.search(r"\b\d{1,3}(,\d{3})+\.00\b", text)


@pytest.mark.parametrize("sid", MINE)
def test_every_chart_has_title_desc_and_text(sections: dict[str, Section], sid: str) -> None:
    charts = re.findall(r"<svg\b.*?</svg>", sections[sid].html, flags=re.S)
    for svg in charts:
        assert re.search(r"<title\b[^>]*>[^<]+</title>", svg), "an SVG without a title"
        assert re.search(r"<desc\b[^>]*>[^<]+</desc>", svg), "an SVG without a description"
        assert re.search(r"<text\b[^>]*>\s*[^<\s]", svg), "an SVG whose text is not text"
    # Every chart sits in a figure with a caption.
    assert sections[sid].html.count("<figcaption>") == len(charts)


def test_emergency_admissions_spc_published_and_charted(published, sections) -> None:
    """The programme's monthly emergency admissions are an XmR chart (fewer is better)."""
    chart = published.programme.charts[EMERGENCY_CHART]
    assert chart.improvement == "decrease"
    assert len(chart.points) >= 12
    assert "Emergency admissions a month" in sections["programme"].html


def _independent_xmr(y: np.ndarray) -> tuple[float, float, float]:
    """Mean and process limits as NHSRplotthedots computes them (screening included):
    mean +/- 2.66 x mean moving range, moving ranges of 3.267 x their mean or more dropped
    once before the mean moving range is recomputed."""
    mr = np.abs(np.diff(y))
    kept = mr[mr < 3.267 * mr.mean()]
    mr_bar = kept.mean()
    mean = y.mean()
    return mean, mean - 2.66 * mr_bar, mean + 2.66 * mr_bar


def test_emergency_chart_limits_match_an_independent_computation(evaluation: Evaluation) -> None:
    """On a synthetic run, the chart's centre line and limits are the series' mean and
    mean +/- 2.66 x the mean moving range (as NHSRplotthedots)."""
    chart = evaluation.programme.charts[EMERGENCY_CHART]
    y = chart.points["value"].to_numpy(float)
    mean, lpl, upl = _independent_xmr(y)
    assert chart.points["mean"].to_numpy() == pytest.approx(np.full(len(y), mean))
    assert chart.points["lpl"].iloc[0] == pytest.approx(lpl)
    assert chart.points["upl"].iloc[0] == pytest.approx(upl)
    # The series is the programme areas' eligible people's admissions, so it is not empty.
    assert y.sum() > 0 and (y >= 0).all()


def test_spc_chart_states_the_limits_and_the_icon_in_words() -> None:
    rng = np.random.default_rng(3)
    y = np.r_[rng.poisson(40, 18), rng.poisson(25, 10)].astype(float)
    dates = pd.date_range("2011-01-01", periods=len(y), freq="MS")
    r = xmr(y, dates, improvement="decrease")
    svg = xmr_chart_svg(r, "Emergency admissions a month", "admissions")
    mean, _, upl = _independent_xmr(y)
    assert "Special cause variation of an improving nature: lower values" in svg
    assert f"{mean:,.1f}" in svg and f"{upl:,.1f}" in svg  # the description gives them


def test_likert_legend_has_one_entry_per_shade(published) -> None:
    for s in published.surveys.surveys:
        svg = likert_chart_svg(s, s.to_dict(), published.disclosure)
        if not svg:
            continue
        legend = re.findall(r'<g class="legend-entry"', svg)
        shades = set(re.findall(r'<rect [^>]*class="seg" [^>]*fill="(#[0-9a-fA-F]{6})"', svg))
        assert len(legend) == len(shades) > 0
        assert shades <= set(LIKERT_SHADES)


def test_emergency_chart_counts_table2s_population(evaluation: Evaluation) -> None:
    """The chart's months add up to Table 2's admissions of the programme's eligible people
    over each start date's 12 months (the same rolling cohort), and results.json has it."""
    chart = evaluation.programme.charts[EMERGENCY_CHART]
    dates = chart.points["date"].dt.strftime("%Y-%m-%d")
    by_month = dict(zip(dates, chart.points["value"], strict=True))
    t = evaluation.areas.table
    rows = t[(t.group == "all_eligible") & (t.area == "pilot")]
    assert len(rows)
    months = evaluation.areas.settings.months
    for r in rows.itertuples():
        span = pd.date_range(r.start, periods=months, freq="MS").strftime("%Y-%m-%d")
        assert sum(by_month[m] for m in span) == r.admissions_after
    spc = publish(evaluation).results.to_json()["programme"]["spc"]
    assert spc[EMERGENCY_CHART]["improvement"] == "decrease"
