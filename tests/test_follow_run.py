"""careval run --follow STATE: the main report carries careval follow's looks, reads the state
without writing it, and refuses a state of another dataset or another matched study."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from careval.errors import ConfigError
from careval.evaluation import NOT_RUN
from careval.folders import write_marker
from careval.impact.follow import FollowSettings, assess
from careval.impact.follow_state import ENTRIES, SETTINGS, check_follow_state, made_with
from careval.impact.settings import ImpactSettings
from careval.report.publish.units import UNDECLARED

TRAIN = dt.date(2011, 4, 1)  # RiskSettings' default training date, as the default spec has it


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_the_run_carries_the_follow_looks_and_leaves_the_state_alone(
    synth_dir: Path, tmp_path: Path, cli
) -> None:
    state, out = tmp_path / "state", tmp_path / "out"
    made = cli(
        "follow", "--data", str(synth_dir), "--state", str(state),
        "--first-look", "2013-06", "--every", "6",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    before = _digest(state)
    history = [json.loads(x) for x in (state / "history.jsonl").read_text().splitlines()]
    r = cli("run", "--data", str(synth_dir), "--out", str(out), "--follow", str(state))
    assert r.returncode == 0, r.stderr
    assert _digest(state) == before  # read, never written
    results = json.loads((out / "results.json").read_text())
    block = results["follow"]
    assert [x["month"] for x in block["looks"]] == ["2013-06", "2013-12"]
    # the looks as careval follow assessed them: the same boundary from the same history
    fs = FollowSettings.from_dict(json.loads((state / SETTINGS).read_text())["follow"])
    expected = assess(history, fs)
    for got, want in zip(block["looks"], expected, strict=True):
        assert got["rate_ratio"] == pytest.approx(want["rate_ratio"], rel=1e-9)
        assert got["critical"] == pytest.approx(want["critical"], rel=1e-9)
        assert got["n_treated"] == want["n_treated"] > 0
    assert block["settings"]["planned_information"] == pytest.approx(fs.planned_information)
    assert block["risk_model"] is True
    # every sixth month from 2013-06: the data (to 2014-03) allow no look the history lacks
    assert block["pending"] == []
    inputs = results["provenance"]["input_files"]
    assert inputs["(follow state)/history.jsonl"] == before["history.jsonl"]
    assert inputs["(follow state)/follow.json"] == before["follow.json"]
    follow_units = {p: u for p, u in results["units"].items() if p.startswith("follow.")}
    assert follow_units["follow.looks[].rate_ratio"] == "ratio"
    assert UNDECLARED not in follow_units.values()
    page = (out / "report.html").read_text()
    body = (
        page.split("id='follow'", 1)[1] if "id='follow'" in page else page.split('id="follow"')[1]
    )
    assert "Real-time evaluation" in page and "<svg" in body.split("</section>", 1)[0]
    assert "follow-pending" not in page and "every month the data of this run allow" in body
    # A copy of the state without its last look: that month is pending, and the section says so
    from careval.data.access import Dataset
    from careval.impact.follow_state import read_follow
    from careval.report.page import PageContext
    from careval.report.sections.follow import run_section
    from careval.spec import StudySpec
    from careval.spec.resolve import resolve

    short = tmp_path / "short"
    short.mkdir()
    for name in (*ENTRIES, ".careval.json"):
        (short / name).write_bytes((state / name).read_bytes())
    (short / "history.jsonl").write_text(json.dumps(history[0]) + "\n")
    with Dataset(synth_dir) as ds:
        got = read_follow(short, synth_dir, resolve(StudySpec()).impact, TRAIN, ds)
    assert [x["month"] for x in got.looks] == ["2013-06"] and got.pending == ["2013-12"]
    tidy = got.tidy()
    assert tidy.month.tolist() == ["2013-06"]
    assert tidy.rate_ratio.iloc[0] == pytest.approx(block["looks"][0]["rate_ratio"], rel=1e-9)
    assert tidy.z.iloc[0] == pytest.approx(block["looks"][0]["z"], rel=1e-9)
    text = got.summary()
    assert "1 look recorded (1 with an estimate)" in text and "not taken: 2013-12" in text
    assert ("first crossed" in text) == (block["looks"][0]["crossed"] is True)
    html = run_section(got, PageContext()).html
    assert "follow-pending" in html and "2013-12" in html


def test_a_run_without_a_state_says_the_section_did_not_run(
    synth_dir: Path, tmp_path: Path
) -> None:
    from careval.run import run

    out = tmp_path / "out"
    run(synth_dir, out)
    results = json.loads((out / "results.json").read_text())
    assert results["follow"] == {"skipped": NOT_RUN["follow"]}
    assert "data-not-run='follow'" in (out / "report.html").read_text()


def _state(folder: Path, data: Path, impact: ImpactSettings) -> Path:
    folder.mkdir()
    write_marker(folder, "follow", ENTRIES)
    doc = made_with(data, impact, FollowSettings(), TRAIN)
    (folder / SETTINGS).write_text(json.dumps(doc))
    return folder


def test_a_state_of_another_dataset_or_study_is_refused(synth_dir: Path, tmp_path: Path) -> None:
    study = ImpactSettings()
    ok = _state(tmp_path / "ok", synth_dir, study)
    assert check_follow_state(ok, synth_dir, study, TRAIN) == FollowSettings()
    other = tmp_path / "other-data"
    other.mkdir()
    with pytest.raises(ConfigError, match="followed the dataset"):
        check_follow_state(_state(tmp_path / "a", other, study), synth_dir, study, TRAIN)
    caliper = dataclasses.replace(study, match=dataclasses.replace(study.match, caliper=0.05))
    with pytest.raises(ConfigError, match="differ in match"):
        check_follow_state(_state(tmp_path / "b", synth_dir, caliper), synth_dir, study, TRAIN)
    with pytest.raises(ConfigError, match="risk model trained at"):
        check_follow_state(ok, synth_dir, study, dt.date(2012, 4, 1))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    with pytest.raises(ConfigError, match="not written by careval follow"):
        check_follow_state(theirs, synth_dir, study, TRAIN)


def test_the_run_refuses_a_bad_follow_before_any_work(synth_dir: Path, tmp_path: Path, cli) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    out = tmp_path / "out"
    r = cli("run", "--data", str(synth_dir), "--out", str(out), "--follow", str(theirs))
    assert r.returncode == 2 and r.stderr.count("careval: error:") == 1, r.stderr
    assert "--follow" in r.stderr and not out.exists()
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
