"""The matched-control results section: published trajectories, deaths and subgroups under
disclosure control, and the section's charts and text for people."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careval.data.access import Dataset
from careval.disclosure import DisclosureSettings
from careval.impact.matching import match
from careval.impact.outcomes import matched_panel
from careval.impact.population import covariates, study_population
from careval.impact.settings import ImpactSettings
from careval.impact.study import ImpactResult, evaluate_impact
from careval.report import format as fmt
from careval.report.glossary import label
from careval.report.publish.impact import (
    mortality_published,
    publish_impact,
    trajectories_published,
)
from careval.report.publish.model import ImpactBlock
from careval.report.sections.impact import section

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
D = DisclosureSettings()


@pytest.fixture(scope="module")
def study(synth_dir: Path) -> dict:
    """The default matched study on the shared dataset, its panel and its published copy."""
    st = ImpactSettings()
    with Dataset(synth_dir) as ds:
        result = evaluate_impact(ds, WINDOW, st)
        pop = study_population(ds, WINDOW, st, None)
    res = match(pop.frame, "treated", covariates(pop.frame), st.match)
    panel = matched_panel(pop, res, st, list(result.outcomes))
    return {"result": result, "panel": panel, "published": publish_impact(result, D)}


def _round5(n: int) -> int:
    return int(5 * round(n / 5))


def test_published_treated_mean_is_rounded_events_over_rounded_people(study: dict) -> None:
    panel, t = study["panel"], study["published"].trajectories
    treated = panel[(panel.treated == 1) & (panel.k >= 3)]
    by_month = treated.groupby("k").emergency_admissions.sum()
    month = int(by_month[by_month >= 8].index[0])  # a month with enough events to be shown
    for name, k in (("emergency_admissions", month), ("outpatient_attendances", -2)):
        rows = panel[(panel.treated == 1) & (panel.k == k)]
        events, people = int(round(rows[name].sum())), len(rows)
        assert events >= 8 and people >= 8
        got = t[(t.outcome == name) & (t.month == k) & (t.group == "treated")].iloc[0]
        assert got["people"] == _round5(people)
        assert got["mean"] == pytest.approx(_round5(events) / _round5(people), rel=1e-12)
        true = study["result"].trajectories
        was = true[(true.outcome == name) & (true.month == k) & (true.group == "treated")]
        width = float(was.ci_high.iloc[0] - was.ci_low.iloc[0])
        assert got["ci_high"] - got["ci_low"] == pytest.approx(width)  # moved with the mean
    # Costs are no counts: their means are published as they are.
    cost = t[(t.outcome == "inpatient_cost") & (t.group == "treated") & (t.month == 4)]
    true = study["result"].trajectories
    want = true[(true.outcome == "inpatient_cost") & (true.group == "treated") & (true.month == 4)]
    assert cost["mean"].iloc[0] == pytest.approx(want["mean"].iloc[0])


def test_trajectories_from_few_people_or_events_are_withheld() -> None:
    t = pd.DataFrame(
        {
            "outcome": ["emergency_admissions"] * 3 + ["inpatient_cost"],
            "month": [0, 1, 2, 0],
            "group": ["treated", "treated", "control", "control"],
            "people": [6, 100, 5, 40],
            "mean": [0.5, 0.03, 0.2, 150.0],
            "ci_low": [0.1, 0.0, 0.1, 120.0],
            "ci_high": [0.9, 0.06, 0.3, 180.0],
        }
    )
    out = trajectories_published(t, {"inpatient_cost"}, D)
    assert list(out.people) == ["*", 100, "*", 40]
    assert out["mean"].iloc[[0, 2]].isna().all()  # fewer than 8 people
    assert np.isnan(out["mean"].iloc[1])  # 3 events among 100: 1-7 events are withheld
    assert out["mean"].iloc[3] == 150.0


def test_mortality_published_rounds_deaths_and_rates_from_them() -> None:
    m = {
        "n_treated": 203,
        "n_controls": 611,
        "deaths_treated": 23,
        "deaths_controls": 5,
        "person_years_treated": 400.0,
        "rate_treated": 57.5,
        "rate_controls": 20.0,
        "rate_ratio": 1.1,
    }
    out = mortality_published(m, D)
    assert (out["n_treated"], out["n_controls"]) == (205, 610)
    assert out["deaths_treated"] == 25 and out["rate_treated"] == pytest.approx(62.5)
    assert out["deaths_controls"] == "*" and out["rate_controls"] is None
    assert out["rate_ratio"] == 1.1
    few = mortality_published(m | {"n_treated": 6}, D)
    assert few["rate_ratio"] is None and few["n_treated"] == "*"


def test_subgroups_of_few_people_are_withheld(study: dict) -> None:
    r: ImpactResult = study["result"]
    thin = publish_impact(
        type(r)(
            **{
                **r.__dict__,
                "subgroups": [
                    {"subgroup": "sex", "level": "women", "n_treated": 5, "rate_ratio": 0.8}
                ],
            }
        ),
        D,
    )
    assert thin.subgroups == [
        {"subgroup": "sex", "level": "women", "n_treated": "*", "rate_ratio": None}
    ]
    shown = study["published"].subgroups
    assert all(isinstance(x["n_treated"], int) and x["n_treated"] % 5 == 0 for x in shown)


def test_new_keys_read_into_the_results_model(study: dict) -> None:
    block = ImpactBlock.from_json(study["result"].to_dict(), "impact")
    assert block.truth["emergency_admissions"] == 0.9
    assert {r["group"] for r in block.trajectories} == {"treated", "control"}
    assert block.mortality.rate_ratio is not None and block.subgroups[0]["level"] == "women"


def _visible(page: str) -> str:
    """The text a reader sees: tags dropped (SVG text kept), hover titles and descs out."""
    text = re.sub(r"<(title|desc)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    text = re.sub(r"<abbr title=\"[^\"]*\">", "", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def test_section_for_people(study: dict) -> None:
    r: ImpactResult = study["result"]
    page = section(r).html
    seen = _visible(page)
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b", seen)
    # Every chart: one SVG in a figure with a title, a description and a caption.
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(svgs) == page.count('<figure class="chart"') >= 7
    for s in svgs:
        t = re.search(r"<title id=\"[^\"]+-t\">([^<]+)</title><desc id=\"[^\"]+-d\">([^<]+)", s)
        assert t and t[1].strip() and t[2].strip()
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, flags=re.S)
    assert len(captions) == len(svgs) and all(len(c) > 60 for c in captions)
    e = r.outcomes["emergency_admissions"]
    lo, hi = e["rate_ratio_ci_low"], e["rate_ratio_ci_high"]
    assert f"{fmt.change(e['rate_ratio'])} ({fmt.change_interval(lo, hi)}" in seen
    assert fmt.p_value(e["p_value"]) in seen
    for term in ("DiD", "SMD", "caliper", "ATT"):
        assert re.search(rf"<abbr title=\"[^\"]+\">[^<]*{term}", page, flags=re.I), term
    # The forest plot has every outcome and deaths; Figure 2 six panels.
    forest = svgs[0]
    for name in (
        "Emergency admissions",
        "A&amp;E attendances",
        "Bed days",
        "Deaths",
        "Total inpatient costs",
    ):
        assert name in forest, name
    fig2 = next(s for s in svgs if "Use of services by month since entry" in s)
    for panel in (
        "Elective admissions",
        "Outpatient attendances",
        "Bed days",
        "Total inpatient costs",
    ):
        assert f">{panel}<" in fig2
    assert "impact-horizons-why" in page and "implementation period" in seen


def test_love_plot_sorted_readable_and_hoverable(study: dict) -> None:
    r: ImpactResult = study["result"]
    page = section(r).html
    love = next(
        s
        for s in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
        if "Balance of the matched sample" in s
    )
    b = r.balance.assign(before=r.balance.smd_before.abs()).sort_values("before", ascending=False)
    names = [html.escape(label(c)) for c in b.covariate]
    positions = [love.index(f">{n}<") for n in names]
    assert positions == sorted(positions, reverse=True)  # drawn bottom-up: largest on top
    sizes = [float(x) for x in re.findall(r"font[:-](?:size:)?\s*([\d.]+)px", love)]
    assert sizes and min(sizes) >= 9
    hovers = re.findall(r'class="hv"[^>]*><title>([^<]+)</title>', love)
    assert len(hovers) >= 2 * len(b) - 2 and any("before matching" in h for h in hovers)


def test_truth_panel_on_synthetic_data(study: dict) -> None:
    r: ImpactResult = study["result"]
    page = section(r).html
    table = re.search(r"<table[^>]*id=\"impact-truth\".*?</table>", page, flags=re.S)
    assert table is not None
    rows = (
        re.findall(r"<tr>(.*?)</tr>", table[0], flags=re.S)[1:]
        or re.findall(r"<tr[^>]*>(.*?)</tr>", table[0], flags=re.S)[1:]
    )
    assert len(rows) == len(r.truth)
    for name, planted in r.truth.items():
        o = r.mortality if name == "deaths" else r.outcomes[name]
        covered = o["rate_ratio_ci_low"] <= planted <= o["rate_ratio_ci_high"]
        shown = "Deaths" if name == "deaths" else html.escape(label(name))
        row = next(x for x in rows if shown in x)
        assert (">yes<" in row) == covered
    none = section(type(r)(**{**r.__dict__, "truth": {}})).html
    assert "impact-truth" not in none


def test_diagnostics_negative_controls_and_sensitivity_in_the_section(study: dict) -> None:
    """The three tables of residual bias, each row from the result: every outcome's verdict,
    the negative controls' forest plot, the calibrated intervals and the sensitivity rows."""
    r: ImpactResult = study["result"]
    page = section(r).html
    seen = _visible(page)
    table = re.search(r'id="impact-diagnostics-table".*?</table>', page, flags=re.S)
    assert table
    verdicts = re.findall(r">(not for decisions|for decisions)<", table[0])
    assert len(verdicts) == len(r.outcomes)
    expected = [
        "not for decisions" if o["diagnostics"]["failed"] else "for decisions"
        for o in r.outcomes.values()
    ]
    assert verdicts == expected
    plot = re.search(r'id="impact-negative-controls-plot".*?</figure>', page, flags=re.S)
    assert plot and plot[0].count("<title>") >= len(r.negative_controls)
    cal = r.outcomes["emergency_admissions"]["calibrated"]
    shown = fmt.change_interval(cal["rate_ratio_ci_low"], cal["rate_ratio_ci_high"])
    assert shown in seen
    sens = re.search(r'id="impact-sensitivity-table".*?</table>', page, flags=re.S)
    assert sens and sens[0].count("<tr") == len(r.sensitivity) + 1
    assert "E-value" in seen and "placebo" in seen
