"""The command line and the main job: outputs, numbers, exit codes, nothing half-written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from careval.cli import main
from careval.data.schema_docs import markdown
from careval.synthetic.settings import AREAS

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed command as a user would, capturing its output."""
    exe = Path(sys.executable).with_name("careval")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_synth_command_writes_a_dataset(tmp_path: Path) -> None:
    res = cli(
        "synth", "--out", str(tmp_path / "d"), "--persons", "2000", "--seed", "5", "--effect", "0"
    )
    assert res.returncode == 0, res.stderr
    truth = json.loads((tmp_path / "d" / "truth.json").read_text())
    assert truth["effects"]["emergency_admissions"]["rate_ratio"] == 1.0
    assert truth["settings"]["persons"] == 2000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--start", "2009-13"], "start must be a month"),
        (["--persons", "10"], "persons must be"),
        (["--effect", "-5"], "effect must be between"),
        (["--seed", "-1"], "seed must be a whole number of at least 0; got -1"),
        (["--start", "2012-01", "--end", "2012-06"], "at least 24 months"),
    ],
)
def test_synth_rejects_bad_settings_with_exit_2(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    res = cli("synth", "--out", str(tmp_path / "d"), *args)
    assert res.returncode == 2
    assert expected in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "d").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    res = cli("synth", "--out", str(tmp_path / "d"), "--persons", "many")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_run_writes_report_and_results(synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = cli("run", "--data", str(synth_dir), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("report.html")
    results = json.loads((out / "results.json").read_text())
    # The summary on stderr gives the published hazard ratios of the survival block.
    survival = results["impact"]["survival"]
    for part, model, start in (
        ("death", "cox", "time to death"),
        ("first_admission", "cox", "time to first emergency admission"),
        ("first_admission", "fine_gray", "time to first emergency admission"),
    ):
        fit = survival[part][model]
        hr, lo, hi = (
            fit[k] for k in ("hazard_ratio", "hazard_ratio_ci_low", "hazard_ratio_ci_high")
        )
        shown = f"HR {round(hr, 2):.2f} (95% CI {round(lo, 2):.2f} to {round(hi, 2):.2f})"
        (line,) = [x for x in res.stderr.splitlines() if x.startswith(start)]
        assert shown in line, (shown, line)
    page = (out / "report.html").read_text()
    # Self-contained: nothing is fetched (namespace URIs inside SVG are names, not loads).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "<script src" not in page and "@import" not in page
    for section in ("summary", "data", "provenance"):
        assert f'<section id="{section}">' in page
    assert "synthetic-banner" in page

    # People by area, recomputed independently from the Parquet files with pandas.
    p = pq.read_table(synth_dir / "persons.parquet").to_pandas()
    r = pq.read_table(synth_dir / "registrations.parquet").to_pandas()
    pr = pq.read_table(synth_dir / "practices.parquet").to_pandas()
    day = pd.Timestamp("2011-07-01")
    r = r[
        (pd.to_datetime(r.start_date) <= day)
        & (r.end_date.isna() | (pd.to_datetime(r.end_date) >= day))
    ]
    df = r.merge(pr, on="practice_code").merge(p, on="person_id")
    df = df[df.death_date.isna() | (pd.to_datetime(df.death_date) > day)]
    expected = df.groupby("area").size().reindex(list(AREAS), fill_value=0)
    got = {row["area"]: row["registered"] for row in results["data"]["people_by_area"]}
    assert got == expected.to_dict()
    # The number shown in the page is the one in results.json.
    pilot = got["pilot"]
    assert f"<b>{pilot:,}</b>People registered with pilot practices" in page

    # Emergency admissions by financial year for the pilot, by pandas.
    s = pq.read_table(synth_dir / "inpatient_spells.parquet").to_pandas()
    s = s[
        s.admission_method.str.match(r"^(2[1-5A-D]|28)$")
        & ~s.patient_classification.isin(["3", "4"])
    ].merge(r.merge(pr, on="practice_code")[["person_id", "area"]], how="inner", on="person_id")
    adm = pd.to_datetime(s.admission_date)
    fy = adm.dt.year - (adm.dt.month < 4)
    pilot_2010 = int(((s.area == "pilot") & (fy == 2010)).sum())
    rows = [
        x
        for x in results["data"]["activity_by_year"]
        if x["area"] == "pilot" and x["year"] == "2010/11"
    ]
    # People who left before 2011-07-01 are in the engine's count but not in this pandas
    # subset (registered at that date), so the engine's figure is at least as large.
    assert rows and rows[0]["emergency_admissions"] >= pilot_2010 > 0


@pytest.mark.slow
def test_two_runs_give_identical_results(synth_dir: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["run", "--data", str(synth_dir), "--out", str(tmp_path / name)]) is None
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a == b


@pytest.mark.slow
def test_run_with_not_yet_treated_controls(synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "nyt"
    assert main(["run", "--data", str(synth_dir), "--out", str(out), "--not-yet-treated"]) is None
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["settings"]["impact"]["not_yet_treated"] is True
    impact = results["impact"]
    assert impact["settings"]["not_yet_treated"] is True
    assert impact["n_controls"] > 0 and "rate_ratio" in impact["outcomes"]["emergency_admissions"]
    # The pool is the comparator areas' eligible people plus the pilot's not yet care-planned:
    # the candidate controls are exactly those of a study population built with the option.
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.impact.study import ImpactSettings, study_population

    with Dataset(synth_dir) as ds:
        window = data_window(ds)
        frames = {
            nyt: study_population(ds, window, ImpactSettings(not_yet_treated=nyt), None).frame
            for nyt in (False, True)
        }
    pooled = frames[True][frames[True].treated == 0]
    assert impact["attrition"]["candidate_control_rows"] == len(pooled)
    assert len(pooled) > (frames[False].treated == 0).sum()
    assert (pooled.area == "pilot").any()


def test_run_on_invalid_data_exits_2_and_writes_nothing(synth_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(synth_dir, bad)
    t = pq.read_table(bad / "practices.parquet")
    areas = t.column("area").to_pylist()
    areas[0] = "  "  # any area name is allowed, but not a blank one
    t = t.set_column(t.schema.get_field_index("area"), "area", pa.array(areas))
    pq.write_table(t, bad / "practices.parquet")
    before = {f: f.read_bytes() for f in bad.rglob("*") if f.is_file()}
    res = cli("run", "--data", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "practices.area: malformed value" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert {f: f.read_bytes() for f in bad.rglob("*") if f.is_file()} == before  # untouched


def test_run_with_a_broken_survey_file_stops_before_the_analyses(
    synth_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(synth_dir, bad)
    sav = bad / "surveys" / "professionals.sav"
    sav.write_bytes(sav.read_bytes()[:100])  # truncated
    before = {f: f.read_bytes() for f in bad.rglob("*") if f.is_file()}
    res = cli("run", "--data", str(bad), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "professionals.sav" in res.stderr and "Traceback" not in res.stderr
    assert "risk model" not in res.stderr  # stopped before the long steps
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert {f: f.read_bytes() for f in bad.rglob("*") if f.is_file()} == before


@pytest.mark.parametrize("make", ["missing", "empty", "garbage"])
def test_unreadable_datasets_exit_2(tmp_path: Path, make: str) -> None:
    d = tmp_path / "d"
    if make != "missing":
        d.mkdir()
    if make == "garbage":
        (d / "persons.parquet").write_text("not parquet")
    res = cli("validate", str(d))
    assert res.returncode == 2
    assert str(d) in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_passes_a_generated_dataset(synth_dir: Path) -> None:
    res = cli("validate", str(synth_dir))
    assert res.returncode == 0, res.stderr
    assert "valid" in res.stdout


@pytest.mark.slow
def test_demo_makes_then_reuses_its_dataset(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--persons", "3000"]) is None
    stamp = (out / "data" / "persons.parquet").stat().st_mtime_ns
    assert (out / "report.html").exists() and (out / "results.json").exists()
    assert main(["demo", "--out", str(out), "--persons", "3000"]) is None
    assert (out / "data" / "persons.parquet").stat().st_mtime_ns == stamp


def test_data_model_doc_is_generated_from_the_schema() -> None:
    assert (ROOT / "docs" / "data-model.md").read_text() == markdown()


def test_run_summary_reproduces_the_seed_shape(shape_run: Path) -> None:
    """The run's own summary (engine derivations) shows the seed's eligible counts and ramp."""
    data = json.loads((shape_run / "results.json").read_text())["data"]
    pilot = next(r for r in data["people_by_area"] if r["area"] == "pilot")
    per = 380_000 / pilot["registered"]
    diabetes = pilot["under_75_with_diabetes"] + pilot["aged_75_plus_with_diabetes"]
    old = pilot["aged_75_plus_without_diabetes"] + pilot["aged_75_plus_with_diabetes"]
    # Hospital diagnoses count too, so diabetes may run a little above the GP-coded figure.
    assert diabetes * per == pytest.approx(15_200, rel=0.12)
    assert old * per == pytest.approx(22_800, rel=0.08)
    assert pilot["aged_75_plus_with_diabetes"] * per == pytest.approx(8_700, rel=0.14)
    years = [r for r in data["activity_by_year"] if r["area"] == "pilot"]
    rate = sum(r["emergency_admissions"] for r in years) / sum(r["person_years"] for r in years)
    assert 0.10 <= rate <= 0.125
    cov = {r["month"]: r["coverage_of_eligible"] for r in data["care_plan_coverage"]}
    assert min(cov) == "2011-09"
    assert 0.03 <= cov["2011-12"] <= 0.08
    assert 0.26 <= cov["2012-04"] <= 0.35


def test_run_reports_risk_below_the_oracle(shape_run: Path) -> None:
    results = json.loads((shape_run / "results.json").read_text())
    risk = results["risk"]
    for key in (
        "auc",
        "oracle_auc",
        "calibration_slope",
        "brier",
        "ppv_top_1pct",
        "sensitivity_top_1pct",
    ):
        assert isinstance(risk[key], float), key
    assert 0.70 <= risk["auc"] < risk["oracle_auc"]
    groups = {t["group"]: t for t in risk["targeting"]}
    assert (
        groups["care-planned"]["emergency_per_person_year_prior"]
        > groups["eligible"]["emergency_per_person_year_prior"]
        > groups["everyone"]["emergency_per_person_year_prior"]
    )
    page = (shape_run / "report.html").read_text()
    assert '<section id="risk">' in page
    assert f"<b id='risk-auc'>{risk['auc']:.3f}</b>" in page


@pytest.mark.slow
def test_run_on_the_required_tables_only_names_what_it_skipped(
    synth_dir: Path, tmp_path: Path
) -> None:
    """A dataset that validation accepts with only the required tables (no conditions,
    measurements, care plans, A&E, MDG or fund records, surveys or transcripts) runs to the
    end: the analyses it cannot support are skipped with their reasons, none crashes."""
    from careval.data.schema import TABLES

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    for name, table in TABLES.items():
        if not table.required:
            (data / f"{name}.parquet").unlink(missing_ok=True)
    shutil.rmtree(data / "surveys")
    shutil.rmtree(data / "qualitative")
    res = cli("run", "--data", str(data), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["data"]["tables_present"] == [n for n, t in TABLES.items() if t.required]
    skipped = {
        k: v["skipped"] for k, v in results.items() if isinstance(v, dict) and "skipped" in v
    }
    assert skipped["impact"] == "no care_plans table: the matched study needs care plans"
    assert (
        skipped["surveys"] == "no survey inputs"
        and skipped["qualitative"] == "no qualitative inputs"
    )
    assert {"impact", "design", "surveys", "qualitative"} <= set(skipped)
    assert "naive" not in results  # published once, in the impact block
    page = (tmp_path / "out" / "report.html").read_text()
    for section in ("impact", "design", "surveys", "qualitative"):
        assert f"data-not-run='{section}'" in page


def test_run_summary_says_when_survival_was_withheld_or_not_estimated() -> None:
    from careval.cli.run_summary import survival_lines

    withheld = {"impact": {"survival": {"time_unit": "months", "note": "withheld: too few people"}}}
    assert survival_lines(withheld) == ["time to event: withheld: too few people"]
    assert survival_lines({"impact": {"skipped": "no care plans"}}) == []
    fit = {"hazard_ratio": 0.905, "hazard_ratio_ci_low": 0.8249, "hazard_ratio_ci_high": 0.996}
    none = {"model": "cox", "note": "no events in one arm"}
    s = {"death": {"cox": none}, "first_admission": {"cox": fit, "fine_gray": fit}}
    death, admission = survival_lines({"impact": {"survival": s}})
    assert death.endswith("no hazard ratio (no events in one arm)")
    assert admission.count("HR 0.91 (95% CI 0.82 to 1.00)") == 2
