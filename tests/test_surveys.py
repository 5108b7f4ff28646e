"""Surveys: readers (CSV, XLSX, SPSS, Stata), Wilson intervals, group tests, synthetic surveys.

References: statsmodels' ``proportion_confint(method="wilson")`` for the intervals, scipy's
``chi2_contingency`` and ``fisher_exact`` for the group tests (and Fisher's own tea-tasting table,
p = 0.4857), pyreadstat's sample files (SPSS and Stata, in tests/fixtures/surveys) for the
readers, and the seed evaluation's reported percentages for the synthetic surveys.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.report.publish.rules import protect_count
from careval.report.publish.shares import weighted_share_step
from careval.report.publish.surveys import publish_survey, publish_surveys
from careval.report.sections.surveys import likert_chart_svg
from careval.report.sections.surveys import section as surveys_section
from careval.surveys.analysis import analyse
from careval.surveys.definition import definition_from_dict, load_definition
from careval.surveys.evaluate import SurveysResult, analyse_definitions, evaluate_surveys
from careval.surveys.intervals import contingency_test, effective_n, wilson_interval
from careval.synthetic.surveys import write_surveys

DC = DisclosureSettings()  # the default disclosure rules

Cli = Callable[..., CompletedProcess[str]]  # the ``cli`` fixture (conftest.py)
FIXTURES = Path(__file__).parent / "fixtures" / "surveys"
AGREE5 = {
    "agree": [4, 5],
    "disagree": [1, 2],
    "dont_know": [8],
    "missing": [9],
    "labels": {
        "1": "Strongly disagree",
        "2": "Disagree",
        "3": "Neither",
        "4": "Agree",
        "5": "Strongly agree",
        "8": "Don't know",
    },
}


def define(tmp: Path, data: str, **extra: object) -> Path:
    """Write a TOML survey definition beside ``data`` from keyword settings."""
    lines = [f'name = "{extra.pop("name", "s")}"', f'data = "{data}"']
    for key, value in extra.pop("top", {}).items():  # type: ignore[attr-defined]
        lines.append(f"{key} = {json.dumps(value)}")
    for g in extra.pop("groups", []):  # type: ignore[attr-defined]
        lines.append("[[groups]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in g.items()]
    for name, scale in extra.pop("scales", {"agree5": AGREE5}).items():  # type: ignore[attr-defined]
        lines.append(f"[scales.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in scale.items() if k != "labels"]
        if scale.get("labels"):
            lines.append(f"[scales.{name}.labels]")
            lines += [f'{k} = "{v}"' for k, v in scale["labels"].items()]
    for q in extra.pop("questions", []):  # type: ignore[attr-defined]
        lines.append("[[questions]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in q.items()]
    path = tmp / "survey.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("surveys-synth")
    write_surveys(out, seed=7)
    return out


@pytest.fixture(scope="module")
def synth_result(synth: Path) -> SurveysResult:
    result = evaluate_surveys(synth)
    assert result is not None
    return result


# ------------------------------------------------------------------ intervals against statsmodels


@pytest.mark.parametrize(("count", "n"), [(13, 47), (312, 400), (0, 20), (20, 20), (1, 3)])
def test_wilson_interval_matches_statsmodels(count: int, n: int) -> None:
    lo, hi = proportion_confint(count, n, alpha=0.05, method="wilson")
    assert wilson_interval(count / n, n) == pytest.approx((lo, hi), abs=1e-12)


def test_weights_use_kish_effective_n_and_fpc_divides_it() -> None:
    w = np.array([1.0, 1.0, 2.0, 2.0, 4.0])
    assert effective_n(w) == pytest.approx(w.sum() ** 2 / (w**2).sum())  # Kish (1965)
    # Finite population: n = 5 of N = 20, factor (N - n) / (N - 1) = 15/19.
    assert effective_n(w, population=20) == pytest.approx(w.sum() ** 2 / (w**2).sum() / (15 / 19))
    assert math.isinf(effective_n(np.ones(20), population=20))  # a census: no sampling error


def test_weighted_share_and_interval_in_an_item(tmp_path: Path) -> None:
    answers = [4, 5, 1, 2, 4, 3, 4, 8, 9, ""]
    weights = [1.0, 2.0, 1.5, 0.5, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    pd.DataFrame({"q": answers, "w": weights}).to_csv(tmp_path / "r.csv", index=False)
    defn = load_definition(
        define(
            tmp_path,
            "r.csv",
            top={"weight": "w", "population": 40},
            questions=[{"id": "q", "text": "Item", "scale": "agree5"}],
        )
    )
    item = analyse(defn).items.iloc[0]
    valid = np.array([0, 1, 2, 3, 4, 5, 6])  # substantive answers
    w = np.array(weights)[valid]
    agree = np.isin(np.array(answers, dtype=object)[valid], [4, 5])
    p = w[agree].sum() / w.sum()
    n_star = w.sum() ** 2 / (w**2).sum() / ((40 - 7) / (40 - 1))
    lo, hi = proportion_confint(p * n_star, n_star, method="wilson")
    assert item["share_agree"] == pytest.approx(p)
    assert (item["ci_low"], item["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
    assert (item["n_valid"], item["n_dont_know"], item["n_user_missing"], item["n_blank"]) == (
        7,
        1,
        1,
        1,
    )


# ----------------------------------------------------------------- "don't know" and missing


def test_dont_know_and_missing_are_kept_out_of_the_share(tmp_path: Path) -> None:
    answers = ["Agree", "Strongly agree", "agree", "Disagree", "Don't know", "8", "", "9"]
    pd.DataFrame({"q": answers}).to_csv(tmp_path / "r.csv", index=False)
    defn = load_definition(
        define(tmp_path, "r.csv", questions=[{"id": "q", "text": "Item", "scale": "agree5"}])
    )
    r = analyse(defn)
    item = r.items.iloc[0]
    assert item["n_valid"] == 4 and item["n_agree"] == 3
    assert item["share_agree"] == pytest.approx(0.75)
    assert item["n_dont_know"] == 2 and item["share_dont_know"] == pytest.approx(2 / 6)
    assert item["n_user_missing"] == 1 and item["n_blank"] == 1
    dist = r.distribution.set_index("label")
    assert dist.loc["Agree", "count"] == 2 and dist.loc["Strongly agree", "count"] == 1
    assert dist.loc["Agree", "share_of_valid"] == pytest.approx(0.5)
    assert dist["count"].sum() == len(answers)  # every respondent is in exactly one row


def test_answers_outside_the_scale_are_one_clear_error(tmp_path: Path) -> None:
    pd.DataFrame({"q": ["4", "7", "Maybe", "7", "5"]}).to_csv(tmp_path / "r.csv", index=False)
    defn = load_definition(
        define(tmp_path, "r.csv", questions=[{"id": "q", "text": "Item", "scale": "agree5"}])
    )
    with pytest.raises(ConfigError) as e:
        analyse(defn)
    msg = str(e.value)
    assert "r.csv" in msg and "'q'" in msg and "(3 rows)" in msg
    assert "line 3" in msg and "4 (Agree)" in msg and "agree5" in msg


def test_definition_errors_name_the_problem(tmp_path: Path) -> None:
    pd.DataFrame({"q": ["4"]}).to_csv(tmp_path / "r.csv", index=False)
    bad = define(tmp_path, "r.csv", questions=[{"id": "q", "text": "x", "scale": "nope"}])
    with pytest.raises(ConfigError, match="scale 'nope', which is not defined"):
        load_definition(bad)
    (tmp_path / "broken.toml").write_text("name = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid TOML"):
        load_definition(tmp_path / "broken.toml")
    missing = define(tmp_path, "r.csv", questions=[{"id": "q2", "text": "x", "scale": "agree5"}])
    with pytest.raises(ConfigError, match="column not found: 'q2'"):
        analyse(load_definition(missing))


def test_definition_survives_a_json_round_trip(synth: Path) -> None:
    defn = load_definition(synth / "surveys" / "professionals.toml")
    text = json.dumps(defn.to_dict())
    again = json.loads(text)
    assert again["name"] == "professionals" and len(again["questions"]) == 11
    rebuilt = definition_from_dict(
        {
            "name": again["name"],
            "data": again["data"],
            "group": again["group"],
            "groups": again["groups"],
            "scales": {
                k: {
                    **{r: v[r] for r in ("agree", "disagree", "dont_know", "missing")},
                    "labels": dict(v["labels"]),
                }
                for k, v in again["scales"].items()
            },
            "questions": [
                {k: q[k] for k in ("id", "column", "text", "type") if q[k]}
                | ({"scale": q["scale"]} if q["scale"] else {})
                for q in again["questions"]
            ],
        }
    )
    assert rebuilt.questions == defn.questions and rebuilt.groups == defn.groups


# ------------------------------------------------------------------ files made by other programs


def test_spss_value_labels_are_read_from_a_real_sav(tmp_path: Path) -> None:
    # sample.sav (SPSS, via pyreadstat's test data): mylabl 1 Male / 2 Female; myord 1 low,
    # 2 medium, 3 high; the five rows hold mylabl 1,2,1,2,1 and myord 1,2,3,1,1.
    path = define(
        FIXTURES,
        "sample.sav",
        top={"group": "mylabl"},
        scales={"order": {"agree": [3]}},
        questions=[{"id": "myord", "text": "Order", "type": "choice", "scale": "order"}],
    )
    try:
        r = analyse(load_definition(path))
    finally:
        path.unlink()
    rates = r.response_rates.set_index("group")
    assert rates.loc["1", "label"] == "Male" and rates.loc["1", "responded"] == 3
    assert rates.loc["2", "label"] == "Female" and rates.loc["2", "responded"] == 2
    dist = r.distribution[r.distribution["kind"] == "answer"]
    assert list(dist["label"]) == ["low", "medium", "high"]
    assert list(dist["count"]) == [3, 1, 1]
    assert r.items.iloc[0]["share_agree"] == pytest.approx(1 / 5)


def test_the_same_content_read_from_stata(tmp_path: Path) -> None:
    path = define(
        FIXTURES,
        "sample.dta",
        top={"group": "mylabl"},
        scales={"order": {}},
        questions=[{"id": "myord", "text": "Order", "type": "choice", "scale": "order"}],
    )
    try:
        r = analyse(load_definition(path))
    finally:
        path.unlink()
    dist = r.distribution[r.distribution["kind"] == "answer"]
    assert list(dist["label"]) == ["low", "medium", "high"] and list(dist["count"]) == [3, 1, 1]
    assert list(r.response_rates["label"]) == ["Male", "Female", "All respondents"]
    assert list(r.response_rates["responded"]) == [3, 2, 5]


def test_spss_user_missing_codes_are_missing_not_answers() -> None:
    # missing_test.sav (SPSS): var1 holds 1 and 2, and 1 is declared user-missing ("missing").
    path = define(
        FIXTURES,
        "missing_test.sav",
        scales={"yn": {"agree": [2]}},
        questions=[{"id": "var1", "text": "Var 1", "scale": "yn"}],
    )
    try:
        r = analyse(load_definition(path))
    finally:
        path.unlink()
    item = r.items.iloc[0]
    assert item["n_valid"] == 1 and item["n_user_missing"] == 1 and item["n_blank"] == 0
    assert item["share_agree"] == pytest.approx(1.0)
    assert list(r.distribution.loc[r.distribution["kind"] == "answer", "code"]) == ["2"]


def test_a_malformed_sav_gives_a_clear_error_and_exit_2(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "broken.sav").write_bytes((FIXTURES / "sample.sav").read_bytes()[:300])
    path = define(tmp_path, "broken.sav", questions=[{"id": "q", "text": "x", "scale": "agree5"}])
    with pytest.raises(ConfigError, match=r"broken\.sav: cannot be read as an SPSS \.sav file"):
        analyse(load_definition(path))
    res = cli("survey", str(path), "--json", str(tmp_path / "out.json"))
    assert res.returncode == 2, res.stderr
    assert "broken.sav" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out.json").exists()


def test_xlsx_responses_are_read(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["id", "grp", "q"])
    for i, (g, a) in enumerate([("a", 4), ("a", 5), ("b", 1), ("b", None), ("b", 4)]):
        ws.append([f"R{i}", g, a])
    wb.save(tmp_path / "r.xlsx")
    defn = load_definition(
        define(
            tmp_path,
            "r.xlsx",
            top={"group": "grp", "respondent_id": "id"},
            questions=[{"id": "q", "text": "x", "scale": "agree5"}],
        )
    )
    r = analyse(defn)
    assert r.items.iloc[0]["n_valid"] == 4 and r.items.iloc[0]["n_agree"] == 3
    by = r.by_group.set_index("group")
    assert by.loc["a", "share_agree"] == pytest.approx(1.0)
    assert by.loc["b", "share_agree"] == pytest.approx(0.5)


# ------------------------------------------------------------------------ group comparisons


def test_chi_square_between_groups_matches_scipy(synth: Path, synth_result: SurveysResult) -> None:
    pat = next(s for s in synth_result.surveys if s.name == "patients")
    raw = pd.read_csv(synth / "surveys" / "patients.csv", dtype=str, keep_default_na=False)
    answered = raw[
        raw["communication_improved"].isin(
            [
                "Strongly disagree",
                "Disagree",
                "Neither agree nor disagree",
                "Agree",
                "Strongly agree",
            ]
        )
    ]
    table = pd.crosstab(
        answered["has_care_plan"],
        answered["communication_improved"].isin(["Agree", "Strongly agree"]),
    )
    ref = stats.chi2_contingency(table.to_numpy(), correction=False)
    row = pat.comparisons.set_index("question").loc["communication_improved"]
    assert row["test"] == "Pearson chi-square"
    assert row["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert row["dof"] == 1 and row["p_value"] < 0.001  # 73% with a plan against 43% without


def test_small_tables_use_fisher_and_say_so() -> None:
    # Fisher's lady tasting tea (Fisher 1935): 3 of 4 cups right, one-sided p = 0.2429, the
    # two-sided p 0.4857.
    tea = contingency_test(np.array([[3, 1], [1, 3]]))
    assert tea["test"] == "Fisher's exact test"
    assert tea["p_value"] == pytest.approx(0.4857, abs=5e-5)
    assert tea["p_value"] == pytest.approx(stats.fisher_exact([[3, 1], [1, 3]]).pvalue)
    big = contingency_test(np.array([[8, 2, 1], [2, 6, 1]]))
    assert big["test"].startswith("Fisher-Freeman-Halton")
    assert 0 < big["p_value"] < 0.1
    assert contingency_test(np.array([[8, 2, 1], [2, 6, 1]]))["p_value"] == big["p_value"]


# ---------------------------------------------------------------------------- the synthetic surveys


def test_synthetic_surveys_echo_the_seed(synth: Path, synth_result: SurveysResult) -> None:
    by = {s.name: s for s in synth_result.surveys}
    rates = {n: s.response_rates.iloc[-1] for n, s in by.items()}
    assert (rates["professionals"]["responded"], rates["professionals"]["invited"]) == (51, 200)
    assert rates["patients"]["response_rate"] == pytest.approx(0.2025)
    assert rates["early_adopters"]["responded"] == 109
    assert rates["early_adopters"]["response_rate"] == pytest.approx(0.60, abs=0.005)
    assert rates["gps"]["responded"] == 160
    assert rates["gps"]["response_rate"] == pytest.approx(0.39, abs=0.005)
    share = {
        (n, q): v
        for n, s in by.items()
        for q, v in zip(s.items["question"], s.items["share_agree"], strict=True)
    }
    assert round(100 * share["patients", "favourable_integration"]) == 78
    assert round(100 * share["professionals", "role_unclear"], 1) == 27.7
    assert round(100 * share["professionals", "not_involved_planning"]) == 64
    assert round(100 * share["patients", "cannot_recall_joining"], 1) == 53.5
    plan = by["patients"].by_group.set_index(["question", "group"])
    assert round(100 * plan.loc[("communication_improved", "Yes"), "share_agree"]) == 73
    pro = by["professionals"].response_rates.set_index("label")
    assert pro.loc["General practitioner", "responded"] == 31
    assert len(by["professionals"].open_text) > 0
    assert synth_result.open_text()["document"].str.startswith("professionals/").any()
    # Every non-blank answer to the open question, counted in the .sav itself, is handed on.
    sav, _ = pyreadstat.read_sav(str(synth / "surveys" / "professionals.sav"))
    n_open = int((sav["improve_pilot"].str.strip() != "").sum())
    assert n_open > 0 and len(by["professionals"].open_text) == n_open
    documents = synth_result.open_text()["document"]
    assert int(documents.str.startswith("professionals/").sum()) == n_open


def test_synthetic_surveys_are_deterministic_and_cheap(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    write_surveys(tmp_path / "a", seed=3)
    elapsed = time.perf_counter() - t0
    write_surveys(tmp_path / "b", seed=3)
    write_surveys(tmp_path / "c", seed=4)
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert len(files) > 20
    # 4 definitions and 4 response files; 10 transcripts and attendance; codebook and segments.
    assert len(files) == 4 + 4 + 10 + 1 + 2
    same = [
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
        for f in files
        if f.suffix in (".csv", ".txt", ".toml", ".qdc")
    ]
    assert all(same)
    a = pd.read_csv(tmp_path / "a" / "surveys" / "patients.csv")
    c = pd.read_csv(tmp_path / "c" / "surveys" / "patients.csv")
    assert not a.equals(c)  # another seed shuffles who says what...
    agree = ["Agree", "Strongly agree"]
    assert (
        a["favourable_integration"].isin(agree).sum()
        == c["favourable_integration"].isin(agree).sum()
        == 312
    )  # ...not how many
    assert elapsed < 1.0


# ----------------------------------------------------------------- disclosure, JSON and report


def test_protected_block_suppresses_small_counts_and_withholds_small_shares(
    synth_result: SurveysResult,
) -> None:
    open_block = synth_result.to_dict()
    block = json.loads(json.dumps(publish_surveys(synth_result, DC).to_dict()))
    pro = block["surveys"]["professionals"]
    assert pro["n_responses"] == protect_count(51, DC) == 50
    rates = {r["label"]: r for r in pro["response_rates"]}
    assert rates["Manager or other"]["responded"] == "*"  # 3 people
    assert rates["Manager or other"]["response_rate"] is None
    assert rates["General practitioner"]["responded"] == 30  # 31 rounded to 5
    small = [g for g in pro["by_group"] if g["label"] == "Hospital consultant"]
    assert small and all(g["share_agree"] is None for g in small)  # fewer than 8 answers
    item = {i["question"]: i for i in pro["items"]}["role_unclear"]
    # 13 of 47 agree, published as 15 of 45: the share is of the published counts.
    assert (
        (item["n_agree"], item["n_valid"])
        == (protect_count(13, DC), protect_count(47, DC))
        == (15, 45)
    )
    assert item["share_agree"] == round(15 / 45, 4)
    raw_item = {i["question"]: i for i in open_block["surveys"]["professionals"]["items"]}
    assert raw_item["role_unclear"]["share_agree"] == round(13 / 47, 4)
    assert "open_text" not in pro and "open_text" in open_block["surveys"]["professionals"]
    assert open_block["surveys"]["professionals"]["n_responses"] == 51


def small_survey(tmp: Path) -> SurveysResult:
    """40 respondents in groups a (25), b (3: more than the 2 invited) and c (12).

    Item q1 is answered by everyone: 3 agree (4), 2 neither (3), 35 strongly disagree (1);
    item q2 by 5 people only (the rest blank).
    """
    groups = ["a"] * 25 + ["b"] * 3 + ["c"] * 12
    q1 = [4] * 3 + [3] * 2 + [1] * 35
    q2 = [5, 4, 2, 1, 1] + [""] * 35
    pd.DataFrame({"g": groups, "q1": q1, "q2": q2}).to_csv(tmp / "r.csv", index=False)
    path = define(
        tmp,
        "r.csv",
        top={"group": "g"},
        groups=[
            {"code": "a", "label": "A", "invited": 40},
            {"code": "b", "label": "B", "invited": 2},
            {"code": "c", "label": "C", "invited": 20},
        ],
        questions=[
            {"id": "q1", "text": "First item", "scale": "agree5"},
            {"id": "q2", "text": "Second item", "scale": "agree5"},
        ],
    )
    return analyse_definitions([path])


def test_protection_covers_effective_n_and_shares_of_suppressed_counts(tmp_path: Path) -> None:
    result = small_survey(tmp_path)
    raw = result.to_dict()["surveys"]["s"]
    items = {i["question"]: i for i in raw["items"]}
    assert items["q2"]["n_effective"] == 5.0  # unweighted: Kish's n is the number of answers
    assert items["q1"]["share_agree"] == pytest.approx(3 / 40)
    block = json.loads(json.dumps(publish_surveys(result, DC).to_dict()))["surveys"]["s"]
    items = {i["question"]: i for i in block["items"]}
    # Effective n is a count: withheld below 8, rounded to 5 otherwise.
    assert items["q2"]["n_valid"] == "*" and items["q2"]["n_effective"] is None
    assert items["q1"]["n_effective"] == 40
    # A share of a suppressed count (3 agree of 40) would give the count back: withheld.
    assert items["q1"]["n_agree"] == "*"
    assert items["q1"]["share_agree"] is None
    assert items["q1"]["ci_low"] is None and items["q1"]["ci_high"] is None
    dist = {(d["question"], d["code"]): d for d in block["distribution"]}
    for key in (("q1", "4"), ("q1", "3")):  # 3 and 2 answers of 40
        assert dist[key]["count"] == "*"
        assert dist[key]["share_of_valid"] is None
        assert dist[key]["share_of_respondents"] is None  # small count, though 40 responded
    # 35 of 40 strongly disagree: shown (rounded), but its share would give back the other 5.
    assert dist[("q1", "1")]["count"] == 35 and dist[("q1", "1")]["share_of_valid"] is None
    for d in block["distribution"]:
        if d["count"] == "*":
            assert d["share_of_valid"] is None and d["share_of_respondents"] is None, d
    by_group = [g for g in block["by_group"] if g["n_agree"] == "*"]
    assert by_group and all(g["share_agree"] is None for g in by_group)


def test_response_rates_have_secondary_suppression_against_the_total(tmp_path: Path) -> None:
    block = publish_surveys(small_survey(tmp_path), DC).to_dict()
    rates = {r["group"]: r for r in block["surveys"]["s"]["response_rates"]}
    assert rates["all"]["responded"] == 40 and rates["a"]["responded"] == 25
    assert rates["b"]["responded"] == "*"  # 3 people
    # 40 - 25 - 12 would give b's 3 back: c (the smallest other group shown) is suppressed too.
    assert rates["c"]["responded"] == "*"
    assert rates["b"]["response_rate"] is None and rates["c"]["response_rate"] is None
    assert rates["a"]["response_rate"] == pytest.approx(25 / 40)
    assert rates["b"]["invited"] == "*"  # 2 invited: a count like any other
    shown = [rates[g]["responded"] for g in ("a", "b", "c", "all")]
    assert sum(v == "*" for v in shown) != 1


def test_warnings_publish_their_counts_protected(tmp_path: Path) -> None:
    result = small_survey(tmp_path)
    assert any("group 'b': 3 responses but 2 invited" in w for w in result.warnings)
    raw = json.dumps(result.to_dict())
    assert "group 'b': 3 responses but 2 invited" in raw
    block = publish_surveys(result, DC).to_dict()
    published = block["warnings"] + block["surveys"]["s"]["warnings"]
    assert "s: group 'b': * responses but * invited; check the numbers invited" in published
    assert "group 'b': * responses but * invited; check the numbers invited" in published
    assert "3 responses" not in json.dumps(block)
    page = surveys_section(publish_surveys(result, DC)).html
    assert "* responses but * invited" in page and "3 responses" not in page


def test_chart_shows_no_share_that_is_withheld(tmp_path: Path) -> None:
    result = small_survey(tmp_path)
    s = result.surveys[0]
    open_svg = likert_chart_svg(s)
    assert "Agree: 7.5%" in open_svg  # 3 of 40
    svg = likert_chart_svg(publish_survey(s, DC))
    assert "7.5%" not in svg and "5.0%" not in svg and "8%" not in svg
    assert "withheld (small counts)" in svg and "withheld (fewer than 8)" in svg


def test_section_shows_rates_items_chart_and_tests(synth_result: SurveysResult) -> None:
    section = surveys_section(synth_result)
    assert section.id == "surveys"
    body = section.html
    assert 'id="survey-patients-items"' in body and 'id="survey-professionals-rates"' in body
    assert "78.0%" in body and "27.7%" in body and "25.5%" in body
    assert "Pearson chi-square" in body and body.count("<svg") == 4
    pro = next(s for s in synth_result.surveys if s.name == "professionals")
    svg = likert_chart_svg(pro)
    assert svg.count("<rect") >= 3 * 10  # legend and at least two segments per item
    # Exactly: one legend box per shade (5) and one segment per answer category (1-5) of
    # each of 10 items.
    assert svg.count("<rect") == 5 + 5 * 10
    protected = surveys_section(publish_surveys(synth_result, DC)).html
    assert "withheld under disclosure control" in protected and "Fewer meetings" not in protected


def test_survey_command_writes_json_and_open_text(synth: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "s.json"
    res = cli(
        "survey",
        str(synth / "surveys" / "patients.toml"),
        "--json",
        str(out),
        "--open-text",
        str(tmp_path / "open.csv"),
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    items = {i["question"]: i for i in data["surveys"]["patients"]["items"]}
    assert items["favourable_integration"]["n_agree"] == 312
    open_text = pd.read_csv(tmp_path / "open.csv", keep_default_na=False)
    assert list(open_text.columns) == [
        "segment_id",
        "document",
        "case",
        "group",
        "coder",
        "code",
        "text",
    ]
    assert (open_text["code"] == "").all() and len(open_text) > 0
    raw = pd.read_csv(synth / "surveys" / "patients.csv", dtype=str, keep_default_na=False)
    assert len(open_text) == int((raw["comments"].str.strip() != "").sum())
    assert set(open_text["document"]) == {"patients/comments"}


def test_evaluate_surveys_is_none_without_surveys(tmp_path: Path) -> None:
    assert evaluate_surveys(tmp_path) is None
    (tmp_path / "surveys").mkdir()
    assert evaluate_surveys(tmp_path) is None


def test_duplicate_survey_names_are_refused(synth: Path, tmp_path: Path) -> None:
    p = synth / "surveys" / "gps.toml"
    with pytest.raises(ConfigError, match="repeated: gps"):
        analyse_definitions([p, p])


# ------------------------------------------- protected shares are of the published counts


def hand_survey(tmp: Path, weighted: bool = False) -> tuple[SurveysResult, pd.DataFrame]:
    """403 respondents in groups a (every row but each third) and b (each third row).

    Item q1: 101 agree (4), 52 strongly agree (5), 33 neither (3), 119 disagree (2), 71 strongly
    disagree (1), 14 don't know (8), 13 blank; weights (when used) alternate 2.5 and 1.
    """
    q1: list[object] = [4] * 101 + [5] * 52 + [3] * 33 + [2] * 119 + [1] * 71
    q1 += [8] * 14 + [""] * 13
    frame = pd.DataFrame(
        {
            "g": ["b" if i % 3 == 0 else "a" for i in range(len(q1))],
            "q1": q1,
            "w": [1.0 if i % 2 else 2.5 for i in range(len(q1))],
        }
    )
    frame.to_csv(tmp / "r.csv", index=False)
    path = define(
        tmp,
        "r.csv",
        top={"group": "g", **({"weight": "w"} if weighted else {})},
        groups=[
            {"code": "a", "label": "A", "invited": 331},
            {"code": "b", "label": "B", "invited": 212},
        ],
        questions=[{"id": "q1", "text": "First item", "scale": "agree5"}],
    )
    return analyse_definitions([path]), frame


def raw_counts(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Boolean columns of the hand survey, counted independently of careval."""
    q = frame["q1"].astype(str)
    valid = q.isin(["1", "2", "3", "4", "5"])
    return {"valid": valid, "agree": q.isin(["4", "5"]), "dk": q == "8", "q": q}


def wilson(count: float, n: float) -> tuple[float, float]:
    lo, hi = proportion_confint(count, n, alpha=0.05, method="wilson")
    return round(float(lo), 4), round(float(hi), 4)


def shares_beside_bases(block: dict) -> list[tuple[str, object, object, object]]:
    """(where, share, published count, published base) for every share of one survey block."""
    out: list[tuple[str, object, object, object]] = []
    for i in block["items"]:
        out.append(("share_agree", i["share_agree"], i["n_agree"], i["n_valid"]))
        base = i["n_valid"] + i["n_dont_know"]
        out.append(("share_dont_know", i["share_dont_know"], i["n_dont_know"], base))
    valid = {i["question"]: i["n_valid"] for i in block["items"]}
    resp = {i["question"]: i["n_respondents"] for i in block["items"]}
    for d in block["distribution"]:
        if d["kind"] == "answer":
            out.append(("share_of_valid", d["share_of_valid"], d["count"], valid[d["question"]]))
        where = "share_of_respondents"
        out.append((where, d["share_of_respondents"], d["count"], resp[d["question"]]))
    for g in block["by_group"]:
        out.append(("by_group", g["share_agree"], g["n_agree"], g["n_valid"]))
    for r in block["response_rates"]:
        out.append(("response_rate", r["response_rate"], r["responded"], r["invited"]))
    return out


def test_protected_shares_and_intervals_are_of_the_published_counts(tmp_path: Path) -> None:
    result, frame = hand_survey(tmp_path)
    raw = raw_counts(frame)
    pc = partial(protect_count, d=DC)
    block = json.loads(json.dumps(publish_surveys(result, DC).to_dict()))["surveys"]["s"]
    item = block["items"][0]
    n_valid, n_agree = int(raw["valid"].sum()), int(raw["agree"].sum())
    assert (n_agree, n_valid) == (153, 376)
    assert (item["n_agree"], item["n_valid"]) == (pc(153), pc(376)) == (155, 375)
    # The gap closed: the share is 155 / 375, not 153 / 376 (which x 375 gives back 153).
    assert item["share_agree"] == round(155 / 375, 4) != round(153 / 376, 4)
    assert (item["ci_low"], item["ci_high"]) == wilson(155, 375)
    for g in block["by_group"]:
        in_g = frame["g"] == g["group"]
        nv, na = int((raw["valid"] & in_g).sum()), int((raw["agree"] & in_g).sum())
        assert (g["n_valid"], g["n_agree"]) == (pc(nv), pc(na))
        assert (g["ci_low"], g["ci_high"]) == wilson(pc(na), pc(nv))
    rates = {r["group"]: r for r in block["response_rates"]}
    n_a = int((frame["g"] == "a").sum())
    assert (rates["a"]["responded"], rates["a"]["invited"]) == (pc(n_a), pc(331))
    assert rates["all"]["response_rate"] == round(pc(403) / pc(543), 4) == round(405 / 545, 4)
    checked = shares_beside_bases(block)
    assert len(checked) == 2 + 8 + 5 + 2 + 3
    for where, share, count, base in checked:
        assert isinstance(count, int) and isinstance(base, int), where
        assert share == round(count / base, 4), (where, share, count, base)
        # No published share x its published base gives a count the rounding does not show.
        implied = share * base
        assert abs(implied - round(implied)) < 0.05 and round(implied) % 5 == 0, where
    # The page and the chart show the same published shares.
    page = surveys_section(publish_surveys(result, DC)).html
    assert f"{100 * 155 / 375:.1f}%" in page and f"{100 * 153 / 376:.1f}%" not in page
    assert f"{100 * 405 / 545:.1f}%" in page and f"{100 * 403 / 543:.1f}%" not in page
    svg = likert_chart_svg(publish_survey(result.surveys[0], DC))
    assert f"Agree: {100 * 100 / 375:.1f}%" in svg  # 101 agree, published as 100
    assert f"Agree: {100 * 101 / 376:.1f}%" not in svg


def test_unprotected_shares_are_the_raw_ones(tmp_path: Path) -> None:
    result, frame = hand_survey(tmp_path)
    raw = raw_counts(frame)
    block = json.loads(json.dumps(result.to_dict()))["surveys"]["s"]
    item = block["items"][0]
    assert (item["n_agree"], item["n_valid"], item["n_dont_know"]) == (153, 376, 14)
    assert item["share_agree"] == round(153 / 376, 4)
    assert (item["ci_low"], item["ci_high"]) == pytest.approx(wilson(153, 376), abs=1e-12)
    assert item["share_dont_know"] == round(14 / 390, 4)
    for d in block["distribution"]:
        hit = (raw["q"] == d["code"]) if d["kind"] == "answer" else None
        if d["kind"] == "answer":
            assert hit is not None
            assert d["count"] == int((raw["valid"] & hit).sum())
            assert d["share_of_valid"] == round(d["count"] / 376, 4)
        assert d["share_of_respondents"] == round(d["count"] / 403, 4)
    for g in block["by_group"]:
        in_g = frame["g"] == g["group"]
        nv, na = int((raw["valid"] & in_g).sum()), int((raw["agree"] & in_g).sum())
        assert (g["n_valid"], g["n_agree"], g["share_agree"]) == (nv, na, round(na / nv, 4))
        assert (g["ci_low"], g["ci_high"]) == pytest.approx(wilson(na, nv), abs=1e-12)
    invited = {"a": 331, "b": 212, "all": 543}
    for r in block["response_rates"]:
        n = len(frame) if r["group"] == "all" else int((frame["g"] == r["group"]).sum())
        assert (r["responded"], r["invited"]) == (n, invited[r["group"]])
        assert r["response_rate"] == round(n / invited[r["group"]], 4)


@pytest.mark.parametrize(
    ("base", "step"),
    [(8, 1.0), (49, 1.0), (50, 0.1), (400, 0.1), (499, 0.1), (500, 0.01), (5000, 0.001)],
)
def test_weighted_share_step_keeps_the_implied_count_at_least_as_coarse_as_5(
    base: int, step: float
) -> None:
    assert weighted_share_step(base, DC) == step
    assert step * base >= 5  # share x base is uncertain by at least +-2.5


def test_protected_weighted_shares_are_rounded_to_what_their_base_allows(tmp_path: Path) -> None:
    result, frame = hand_survey(tmp_path, weighted=True)
    raw = raw_counts(frame)
    w = frame["w"].to_numpy(float)
    valid, agree = raw["valid"].to_numpy(), raw["agree"].to_numpy()
    p = w[agree].sum() / w[valid].sum()
    kish = w[valid].sum() ** 2 / (w[valid] ** 2).sum()
    open_item = result.to_dict()["surveys"]["s"]["items"][0]
    assert open_item["share_agree"] == round(p, 4)  # unprotected: as before
    block = json.loads(json.dumps(publish_surveys(result, DC).to_dict()))["surveys"]["s"]
    item = block["items"][0]
    assert item["n_valid"] == 375 and weighted_share_step(375, DC) == 0.1
    assert item["share_agree"] == round(p, 1)
    m = protect_count(round(kish), DC)
    assert item["n_effective"] == m
    assert (item["ci_low"], item["ci_high"]) == wilson(round(p, 1) * m, m)
    for d in block["distribution"]:
        if d["kind"] == "answer":
            hit = valid & (raw["q"] == d["code"]).to_numpy()
            assert d["share_of_valid"] == round(w[hit].sum() / w[valid].sum(), 1)
        # share of respondents is unweighted: of the published counts
        assert d["share_of_respondents"] == round(d["count"] / protect_count(403, DC), 4)
    for g in block["by_group"]:
        in_g = (frame["g"] == g["group"]).to_numpy()
        v, a = valid & in_g, agree & in_g
        step = weighted_share_step(g["n_valid"], DC)
        share = round(w[a].sum() / w[v].sum(), round(-math.log10(step)))
        assert g["share_agree"] == share
        m_g = protect_count(round(w[v].sum() ** 2 / (w[v] ** 2).sum()), DC)
        assert (g["ci_low"], g["ci_high"]) == wilson(share * m_g, m_g)


# ------------------------------------------------------------------ result classes and publishing


def test_survey_results_have_tidy_summary_and_to_dict(synth_result: SurveysResult) -> None:
    tidy = synth_result.tidy()
    assert list(tidy.columns[:4]) == ["survey", "question", "text", "type"]
    assert {"n_valid", "n_agree", "share_agree", "ci_low", "ci_high"} <= set(tidy.columns)
    row = tidy[(tidy["survey"] == "professionals") & (tidy["question"] == "vision_right_direction")]
    assert (int(row["n_agree"].iloc[0]), int(row["n_valid"].iloc[0])) == (41, 50)
    assert "82.0% agree" in synth_result.summary()
    pro = next(s for s in synth_result.surveys if s.name == "professionals")
    assert list(pro.tidy()["question"])[:1] == ["vision_right_direction"]
    assert "51 responses of 200 invited (25.5%)" in pro.summary()
    block = synth_result.to_dict()
    assert block["disclosure_control"] is False
    assert block["surveys"]["professionals"] == pro.to_dict()


def test_publishing_makes_a_protected_copy_and_leaves_the_result(
    synth_result: SurveysResult,
) -> None:
    before = json.dumps(synth_result.to_dict())
    published = publish_surveys(synth_result, DC)
    assert json.dumps(synth_result.to_dict()) == before  # the input is not changed
    assert published.disclosure_control and not synth_result.disclosure_control
    block = published.to_dict()
    assert block["disclosure_control"] is True
    pro = block["surveys"]["professionals"]
    assert pro["n_responses"] == protect_count(51, DC) and "open_text" not in pro
    tidy = published.tidy()
    row = tidy[(tidy["survey"] == "professionals") & (tidy["question"] == "role_unclear")]
    assert (row["n_agree"].iloc[0], row["n_valid"].iloc[0]) == (15, 45)
    assert all(s.open_text is None for s in published.surveys)  # verbatim answers never published
