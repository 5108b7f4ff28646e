"""``careval run`` on whatever the data hold: each optional table removed, each present but
empty, the required tables alone, and a single practice.

Every case must end as a run does (no exception, no traceback, outputs written), with each
section that cannot run named in ``results.json`` with the reason, each outcome of the matched
study that cannot be estimated named in ``impact.skipped_outcomes``, and every other section
present. One small population (3,000 people) is made once for the module; surveys and
transcripts are left out of it (they are not tables, and have their own tests). The run is
in-process through the CLI's ``main``, as ``careval run`` would be.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from careval.cli import main
from careval.data.schema import TABLES
from careval.evaluation import NOT_RUN
from careval.impact.outcome_settings import SYSTEM_OUTCOMES
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

PERSONS = 3_000
# Every case runs through a spec that leaves out only the slow extras (the LightGBM comparison,
# most of the design's simulated studies): what a table's absence does is the same without them.
QUICK = "[risk]\ncompare_lightgbm = false\n[design]\nreplicates = 100\n"
OPTIONAL = tuple(n for n, t in TABLES.items() if not t.required)
REQUIRED = tuple(n for n, t in TABLES.items() if t.required)
# Results blocks of the analyses (the naive contrast is in ``impact``), and the page's sections.
BLOCKS = ("risk", "monitoring", "impact", "indicators", "programme", "design")
# The inputs from outside the data folder, none given here: each says so on the page.
NOT_INPUT = {k: NOT_RUN[k] for k in ("surveys", "qualitative", "follow")}
# Tables whose rows point at another table's rows: emptying that one empties these too (the
# rows would otherwise break validation's reference check, as real data never would).
DEPENDENT = {
    t.name: col.references.split(".")[0]
    for t in TABLES.values()
    for col in t.columns
    if col.references and not col.references.startswith("persons.")
}
NO_PLANS = "no care_plans table: the matched study needs care plans"
EMPTY_PLANS = "the care_plans table is empty: the matched study needs care plans"
# What each case skips beyond surveys and qualitative: block -> reason.
CARE_PLAN_SKIPS = {
    "drop": {
        "impact": NO_PLANS,
        "design": "no care_plans table: the design needs care plans",
    },
    "empty": {
        "impact": EMPTY_PLANS,
        "design": "the care_plans table is empty: the design needs care plans",
    },
}
# Outcomes of the matched study each table feeds.
SPARSE = ("no events among the matched people", "too few events among the matched people")
OUTCOMES_OF = {
    "ae_attendances": ("ae_attendances",),
    "outpatient_appointments": ("outpatient_attendances",),
    "community_contacts": ("community_contacts", "mental_health_contacts"),
    "social_care_services": ("social_care_packages", "care_home_days"),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small population, every table present, no surveys or transcripts."""
    out = tmp_path_factory.mktemp("hold") / "data"
    generate(out, SynthSettings(persons=PERSONS, seed=7))
    shutil.rmtree(out / "surveys")
    shutil.rmtree(out / "qualitative")
    return out


def _variant(base: Path, where: Path, drop: tuple[str, ...] = (), empty: tuple[str, ...] = ()):
    """A copy of ``base`` in ``where`` without the tables ``drop``, and with ``empty`` (and
    the tables pointing into them) emptied: 0 rows, the same schema."""
    data = where / "data"
    shutil.copytree(base, data)
    for name in drop:
        (data / f"{name}.parquet").unlink()
    for name in (*empty, *(d for d, on in DEPENDENT.items() if on in empty)):
        file = data / f"{name}.parquet"
        pq.write_table(pq.read_table(file).slice(0, 0), file)
    return data


def _run(data: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``careval run`` in-process: it returns (no exit), prints no traceback, and writes its
    outputs; the results document."""
    spec = out.parent / "quick.toml"
    spec.write_text(QUICK)
    assert main(["run", "--data", str(data), "--spec", str(spec), "--out", str(out)]) is None
    err = capsys.readouterr().err
    assert "Traceback" not in err and "careval: error" not in err, err[-2000:]
    assert {p.name for p in out.iterdir()} >= {"report.html", "results.json", "tables.xlsx"}
    return json.loads((out / "results.json").read_text())


def _skipped(results: dict[str, Any]) -> dict[str, str]:
    return {
        k: v["skipped"]
        for k, v in results.items()
        if isinstance(v, dict) and list(v) == ["skipped"] and k not in NOT_INPUT
    }


def _check(
    results: dict[str, Any],
    out: Path,
    skipped: dict[str, str],
    skipped_outcomes: dict[str, str] | None = None,
) -> None:
    """The blocks ``skipped`` carry exactly their reasons, every other block is there, and the
    page says why each section did not run; the matched study (if it ran) names the outcomes
    it could not estimate."""
    assert _skipped(results) == skipped
    for block in BLOCKS:
        if block not in skipped:
            assert isinstance(results[block], dict) and "skipped" not in results[block], block
    assert {k: results[k]["skipped"] for k in NOT_INPUT} == NOT_INPUT
    page = (out / "report.html").read_text()
    assert "naive" not in results  # published once, in the impact block
    for section, reason in {**skipped, **NOT_INPUT}.items():
        assert f"data-not-run='{section}'>Not run: {reason}." in page.replace("&#x27;", "'")
    if "impact" not in skipped:
        got = dict(results["impact"]["skipped_outcomes"])
        # The system's rarer outcomes (care home days above all) can find too few events among
        # the few matched people of 3,000: skipped alone, for that reason, whatever the tables.
        sparse = {
            k
            for k, v in got.items()
            if k in SYSTEM_OUTCOMES and k not in (skipped_outcomes or {}) and v.startswith(SPARSE)
        }
        assert {k: v for k, v in got.items() if k not in sparse} == (skipped_outcomes or {})
        for name, why in (skipped_outcomes or {}).items():
            assert name not in results["impact"]["outcomes"]
            assert why in page
        assert "emergency_admissions" in results["impact"]["outcomes"]


def _expected(kind: str, table: str) -> tuple[dict[str, str], dict[str, str]]:
    """The blocks and the matched study's outcomes that ``kind`` (drop or empty) of ``table``
    skips, with their reasons."""
    if table == "care_plans":
        return CARE_PLAN_SKIPS[kind], {}
    why = f"no {table} table" if kind == "drop" else f"the {table} table is empty"
    return {}, {name: why for name in OUTCOMES_OF.get(table, ())}


FAST = ("ae_attendances",)  # kept in the fast tier; the rest of the matrix is slow


@pytest.mark.parametrize(
    "table", [pytest.param(t, marks=() if t in FAST else pytest.mark.slow) for t in OPTIONAL]
)
def test_run_without_each_optional_table(
    table: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _run(_variant(base, tmp_path, drop=(table,)), tmp_path / "out", capsys)
    assert table not in results["data"]["tables_present"]
    _check(results, tmp_path / "out", *_expected("drop", table))


# An empty table is treated as an absent one (:func:`careval.evaluation.unmet` and each
# outcome's check read its row count): each table is emptied in turn where the analyses word
# it apart (the treatment's table, an outcome's), and every optional table at once.
EMPTY_EACH = ("care_plans", "ae_attendances")


@pytest.mark.slow
@pytest.mark.parametrize("table", EMPTY_EACH)
def test_run_with_an_optional_table_empty(
    table: str, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _run(_variant(base, tmp_path, empty=(table,)), tmp_path / "out", capsys)
    assert table in results["data"]["tables_present"]
    _check(results, tmp_path / "out", *_expected("empty", table))


@pytest.mark.slow
def test_run_with_every_optional_table_empty(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _run(_variant(base, tmp_path, empty=OPTIONAL), tmp_path / "out", capsys)
    assert results["data"]["tables_present"] == [n for n in TABLES]
    programme = (
        "no care_plans, mdg_meetings or innovation_fund records: programme monitoring needs "
        "at least one of them"
    )
    _check(results, tmp_path / "out", {**CARE_PLAN_SKIPS["empty"], "programme": programme})


def test_run_on_the_required_tables_only(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _run(_variant(base, tmp_path, drop=OPTIONAL), tmp_path / "out", capsys)
    assert results["data"]["tables_present"] == list(REQUIRED)
    programme = (
        "no care_plans, mdg_meetings or innovation_fund records: programme monitoring needs "
        "at least one of them"
    )
    _check(results, tmp_path / "out", {**CARE_PLAN_SKIPS["drop"], "programme": programme})


@pytest.mark.slow
def test_run_on_a_single_practice(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the registrations of the largest pilot practice kept: there is no comparator area,
    so the area comparison and the matched study (and the design) say so; the rest runs."""
    data = _variant(base, tmp_path)
    reg = pd.read_parquet(data / "registrations.parquet")
    practices = pd.read_parquet(data / "practices.parquet")
    pilot = practices.practice_code[practices.area == "pilot"]
    one = reg[reg.practice_code.isin(pilot)].practice_code.value_counts().index[0]
    table = pq.read_table(data / "registrations.parquet")
    keep = pq.read_table(data / "registrations.parquet").to_pandas().practice_code == one
    pq.write_table(table.filter(keep.to_numpy()), data / "registrations.parquet")
    results = _run(data, tmp_path / "out", capsys)
    skipped = _skipped(results)
    assert set(skipped) == {"monitoring", "impact", "design"}, skipped
    assert skipped["monitoring"].startswith("area comparison not run: ")
    assert skipped["impact"].startswith("matched study not run: ")
    assert "control" in skipped["impact"]
    assert skipped["design"].startswith("no matched study")
    _check(results, tmp_path / "out", skipped)


def test_each_analysis_declares_its_tables_and_the_study_its_primary_outcomes() -> None:
    from careval.evaluation import NEEDS, needs
    from careval.impact.settings import ImpactSettings, OutcomeSettings

    assert set(NEEDS) == set(BLOCKS)
    for n in NEEDS.values():
        assert set(n.tables) | set(n.any_of) <= set(TABLES)
    contacts = ImpactSettings(outcomes=(OutcomeSettings(table="community_contacts"),))
    assert needs(contacts)["impact"].tables[-2:] == ("care_plans", "community_contacts")
    assert needs(ImpactSettings())["impact"] == NEEDS["impact"]  # inpatient_spells already


@pytest.mark.slow
def test_run_on_one_area(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every practice in the programme's area: nothing to compare with, so Table 2 and the
    matched study (and its design) say why they did not run; the rest runs."""
    data = _variant(base, tmp_path)
    pr = pd.read_parquet(data / "practices.parquet")
    pr["area"] = "pilot"
    pr.to_parquet(data / "practices.parquet", index=False)
    results = _run(data, tmp_path / "out", capsys)
    skipped = _skipped(results)
    assert "no comparator area" in skipped["monitoring"]
    assert {"monitoring", "impact", "design"} <= set(skipped)
    assert "risk" not in skipped and "programme" not in skipped


@pytest.mark.slow
def test_init_on_one_area_takes_controls_not_yet_treated(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One area (an OMOP database of one health system, a HES extract with no practice map):
    ``careval init`` proposes the programme area's people not yet treated as the controls, and
    the matched study then runs where with the default spec it was skipped."""
    data = _variant(base, tmp_path)
    pr = pd.read_parquet(data / "practices.parquet")
    pr["area"] = "pilot"
    pr.to_parquet(data / "practices.parquet", index=False)
    spec = tmp_path / "study.toml"
    assert main(["init", "--data", str(data), "--out", str(spec)]) is None
    text = spec.read_text()
    assert "control_areas = []" in text and "not_yet_treated = true" in text
    quick = text.replace("compare_lightgbm = true", "compare_lightgbm = false")
    spec.write_text(quick.replace("replicates = 1000", "replicates = 100"))
    out = tmp_path / "out"
    assert main(["run", "--data", str(data), "--spec", str(spec), "--out", str(out)]) is None
    assert "Traceback" not in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert "skipped" not in results["impact"], results["impact"]
    assert results["impact"]["settings"]["not_yet_treated"] is True
    # the only area is the programme's: every control is one of its people not yet treated
    assert results["impact"]["n_treated"] > 0 and results["impact"]["n_controls"] > 0
    assert "no comparator area" in _skipped(results)["monitoring"]


@pytest.mark.slow
def test_a_design_on_two_years_of_history(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The design may ask for up to 36 months before entry: the matched study keeps that much
    untreated history for it (it kept 12, and a spec asking for 24 got no design)."""
    spec = tmp_path / "quick.toml"
    spec.write_text(QUICK + "pre_months = 24\n")
    out = tmp_path / "out"
    assert main(["run", "--data", str(base), "--spec", str(spec), "--out", str(out)]) is None
    assert "Traceback" not in capsys.readouterr().err
    design = json.loads((out / "results.json").read_text())["design"]
    assert "skipped" not in design, design
    assert design["settings"]["pre_months"] == 24
    assert design["mde"] and all(r["people_with_full_history"] >= 30 for r in design["mde"])
