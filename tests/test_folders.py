"""The folders careval writes: markers, --overwrite only of careval's own, user files kept.

The writes here use :func:`careval.folders.write_run` with a small stand-in for the report (the
run folder's rules do not depend on what the outputs hold) and the dataset checks that come
before any work, so every test takes well under a second. The kill tests are in
``tests/hardening/test_kill.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from careval import folders
from careval.cli import main
from careval.errors import ConfigError
from careval.folders import MARKER, RUNS, check_replaceable, new_folder, read_marker, write_run
from careval.report.build import OUTPUTS
from careval.run import demo, run
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings


def snapshot(top: Path) -> dict[str, bytes]:
    """Every file under ``top`` (links to folders followed too) and its bytes."""
    files = {}
    for folder, _, names in os.walk(top, followlinks=True):
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                files[path.relative_to(top).as_posix()] = path.read_bytes()
    return files


def fill_with(tag: str, extra_figure: str | None = None):
    """A stand-in for the report: the five outputs, each naming ``tag``."""

    def fill(run_dir: Path) -> None:
        for name in OUTPUTS[:-1]:
            (run_dir / name).write_text(f"{name} of {tag}\n")
        (run_dir / "figures").mkdir()
        (run_dir / "figures" / "impact-1.svg").write_text(f"<svg>{tag}</svg>")
        if extra_figure:
            (run_dir / "figures" / extra_figure).write_text(f"<svg>{tag}</svg>")

    return fill


def a_careval_folder(path: Path, kind: folders.Kind = "dataset") -> Path:
    with new_folder(path, kind) as tmp:
        (tmp / "dataset.json").write_text(json.dumps({"synthetic": True}))
        (tmp / "persons.parquet").write_bytes(b"not really parquet")
    return path


# Markers and --overwrite ----------------------------------------------------------------


def test_a_new_folder_carries_its_marker_listing_what_careval_wrote(tmp_path: Path) -> None:
    d = a_careval_folder(tmp_path / "d")
    marker = read_marker(d)
    assert marker is not None and marker["kind"] == "dataset"
    assert marker["entries"] == ["dataset.json", "persons.parquet"]
    assert sorted(os.listdir(tmp_path)) == ["d"]  # no temporary folder beside it
    (d / MARKER).write_text("{not json")
    assert read_marker(d) is None


def test_overwrite_replaces_careval_s_own_folder_whole(tmp_path: Path) -> None:
    d = a_careval_folder(tmp_path / "d")
    with new_folder(d, "dataset", overwrite=True) as tmp:
        (tmp / "dataset.json").write_text("{}")
    assert sorted(os.listdir(d)) == [MARKER, "dataset.json"]  # the old persons.parquet is gone
    assert sorted(os.listdir(tmp_path)) == ["d"]


@pytest.mark.parametrize("what", ["user folder", "file", "other kind", "user file inside"])
def test_overwrite_refuses_what_careval_did_not_write(tmp_path: Path, what: str) -> None:
    d = tmp_path / "d"
    if what == "user folder":
        d.mkdir()
        (d / "thesis.docx").write_text("years of work")
        expected = "was not written by careval"
    elif what == "file":
        d.write_text("a file")
        expected = "is a file careval did not write"
    elif what == "other kind":
        a_careval_folder(d, "model")
        expected = "is a careval risk model folder, not a dataset folder"
    else:
        a_careval_folder(d)
        (d / "notes.txt").write_text("mine")
        expected = "holds 1 entry careval did not write (notes.txt)"
    before = snapshot(tmp_path) if d.is_dir() else {"d": d.read_bytes()}
    with pytest.raises(ConfigError, match="nothing was touched") as info:
        generate(d, SynthSettings(persons=1000), overwrite=True)
    assert expected in str(info.value)
    assert (snapshot(tmp_path) if d.is_dir() else {"d": d.read_bytes()}) == before
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_without_overwrite_a_careval_dataset_is_kept(tmp_path: Path) -> None:
    d = a_careval_folder(tmp_path / "d")
    with pytest.raises(ConfigError, match="exists and is not empty; pass --overwrite"):
        check_replaceable(d, "dataset", overwrite=False)
    check_replaceable(d, "dataset", overwrite=True)  # careval's own: allowed


def test_risk_train_overwrite_refuses_a_folder_careval_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "model"
    mine.mkdir()
    (mine / "model.json").write_text("my own model")
    argv = ["risk", "train", "--data", str(tmp_path / "nodata"), "--index-date", "2011-04-01"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(mine), "--overwrite"])
    assert exc.value.code == 2
    assert "was not written by careval" in capsys.readouterr().err
    assert (mine / "model.json").read_text() == "my own model"


def test_leftovers_are_removed_only_when_named_and_marked_as_careval_s(tmp_path: Path) -> None:
    a_careval_folder(tmp_path / "d")  # there: an old folder beside it is a leftover
    ours = tmp_path / ".careval-tmp.d.0123abcd"
    ours.mkdir()
    folders.write_marker(ours, "dataset", [])
    old = tmp_path / ".careval-old.d.89abcdef"
    shutil.copytree(ours, old)
    unmarked = tmp_path / ".careval-tmp.d.76543210"  # careval's name, but no marker
    unmarked.mkdir()
    other = tmp_path / ".careval-tmp.d.x.0123abcd"  # the leftover of another folder, d.x
    shutil.copytree(ours, other)
    with new_folder(tmp_path / "d", "dataset", overwrite=True) as tmp:
        (tmp / "persons.parquet").write_bytes(b"again")
    assert sorted(os.listdir(tmp_path)) == sorted(["d", unmarked.name, other.name])


# demo's dataset ---------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["real", "no marker"])
def test_demo_refuses_a_dataset_it_did_not_make(synth_dir: Path, tmp_path: Path, flag: str) -> None:
    data = tmp_path / "demo" / "data"
    shutil.copytree(synth_dir, data)
    if flag == "real":
        manifest = json.loads((data / "dataset.json").read_text())
        (data / "dataset.json").write_text(json.dumps({**manifest, "synthetic": False}))
    else:
        (data / MARKER).unlink()
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match="nothing was touched") as info:
        demo(tmp_path / "demo", persons=3000)
    assert ("does not flag it synthetic" if flag == "real" else "not a synthetic dataset") in str(
        info.value
    )
    assert snapshot(tmp_path) == before


# Run folders ------------------------------------------------------------------------------


def test_out_inside_data_is_refused(synth_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    link = tmp_path / "link"
    link.symlink_to(data / "qualitative", target_is_directory=True)
    before = snapshot(tmp_path)
    for out in (data, data / "sub", link):
        with pytest.raises(ConfigError, match="must not write into its dataset"):
            run(data, out)
    # The reverse only where the run would replace the dataset: inside one of its outputs.
    with pytest.raises(ConfigError, match="lies inside the run's own outputs"):
        run(tmp_path / "out" / "figures" / "data", tmp_path / "out")
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def test_user_files_in_out_and_in_figures_survive_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "drafts").mkdir()
    (out / "drafts" / "a.txt").write_text("draft")
    first = write_run(out, OUTPUTS, fill_with("one"))
    (out / "figures" / "my-chart.svg").write_text("<svg>mine</svg>")
    (out / "figures" / "mine").mkdir()
    (out / "figures" / "mine" / "b.svg").write_text("<svg>b</svg>")
    second = write_run(out, OUTPUTS, fill_with("two"))
    assert (out / "results.json").read_text() == "results.json of two\n"
    assert (out / "figures" / "impact-1.svg").read_text() == "<svg>two</svg>"
    assert (out / "figures" / "my-chart.svg").read_text() == "<svg>mine</svg>"
    assert (out / "figures" / "mine" / "b.svg").read_text() == "<svg>b</svg>"
    assert (out / "notes.txt").read_text() == "mine" and (out / "drafts" / "a.txt").exists()
    assert not first.exists() and sorted(os.listdir(out / RUNS)) == ["current", second.name]
    marker = read_marker(out)
    assert marker is not None and marker["kind"] == "run" and "notes.txt" not in marker["entries"]
    # The user's file is still theirs in the next run: a third run keeps it too.
    write_run(out, OUTPUTS, fill_with("three"))
    assert (out / "figures" / "my-chart.svg").read_text() == "<svg>mine</svg>"


def test_a_user_file_under_a_new_figure_s_name_stops_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run(out, OUTPUTS, fill_with("one"))
    (out / "figures" / "risk-1.svg").write_text("<svg>mine</svg>")
    before = snapshot(out)
    with pytest.raises(ConfigError, match="under the name of a file this run writes"):
        write_run(out, OUTPUTS, fill_with("two", extra_figure="risk-1.svg"))
    assert snapshot(out) == before  # the previous set, the user's file, no half-made run


@pytest.mark.parametrize("entry", ["report.html", "figures"])
def test_outputs_careval_did_not_write_are_refused(tmp_path: Path, entry: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if entry == "figures":
        (out / "figures").mkdir()
        (out / "figures" / "mine.svg").write_text("<svg/>")
    else:
        (out / entry).write_text("an earlier report, or the user's own")
    before = snapshot(out)
    with pytest.raises(ConfigError, match=f"holds {entry}, which careval did not write"):
        write_run(out, OUTPUTS, fill_with("one"))
    assert snapshot(out) == before and sorted(os.listdir(out)) == [entry]
    # In a run folder of careval's, a real file where careval keeps a link is the user's too.
    out2 = tmp_path / "out2"
    write_run(out2, OUTPUTS, fill_with("one"))
    (out2 / "study.json").unlink()
    (out2 / "study.json").write_text("my edited copy")
    with pytest.raises(ConfigError, match="study.json is not the link careval made"):
        write_run(out2, OUTPUTS, fill_with("two"))
    assert (out2 / "study.json").read_text() == "my edited copy"


def test_stale_runs_are_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run(out, OUTPUTS, fill_with("one"))
    stale = out / RUNS / "run-20000101T000000-0123abcd"  # a run killed before its switch
    stale.mkdir()
    (stale / "results.json").write_text("half")
    (out / RUNS / "current.89abcdef").symlink_to(stale.name)  # a switch killed half-way
    (out / (MARKER + ".0123abcd")).write_text("half a marker")
    keep = out / RUNS / "mine.txt"  # not named as careval names its runs: left alone
    keep.write_text("x")
    newest = write_run(out, OUTPUTS, fill_with("two"))
    assert sorted(os.listdir(out / RUNS)) == sorted(["current", newest.name, "mine.txt"])
    assert not (out / (MARKER + ".0123abcd")).exists()


def test_without_links_the_outputs_are_real_files_and_the_rules_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folders, "_links_work", lambda runs: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    write_run(out, OUTPUTS, fill_with("one"))
    assert not any((out / n).is_symlink() for n in OUTPUTS)
    (out / "figures" / "my-chart.svg").write_text("<svg>mine</svg>")
    second = write_run(out, OUTPUTS, fill_with("two"))
    assert (out / "report.html").read_text() == "report.html of two\n"
    assert (out / "figures" / "impact-1.svg").read_text() == "<svg>two</svg>"
    assert (out / "figures" / "my-chart.svg").read_text() == "<svg>mine</svg>"
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(out / RUNS)) == sorted(["current", second.name])
    assert folders.current_run(out) == second


def test_risk_outputs_inside_the_dataset_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    argv = ["risk", "train", "--data", str(data), "--index-date", "2011-04-01"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(data / "model")])
    assert exc.value.code == 2
    assert "careval never writes into a dataset" in capsys.readouterr().err
    assert os.listdir(data) == []


# Found in review -------------------------------------------------------------------------


def test_overwrite_refuses_a_user_file_in_a_subfolder(tmp_path: Path) -> None:
    """The marker lists every file at every level: one the user added in a subfolder stops
    --overwrite as one at the top does."""
    d = tmp_path / "ds"
    with new_folder(d, "dataset") as tmp:
        (tmp / "surveys").mkdir()
        (tmp / "surveys" / "gps.toml").write_text("name = 'gps'\n")
        (tmp / "persons.parquet").write_bytes(b"x")
    assert read_marker(d)["entries"] == ["persons.parquet", "surveys/gps.toml"]
    (d / "surveys" / "mine.toml").write_text("mine")
    before = snapshot(d)
    with pytest.raises(ConfigError, match=r"surveys/mine\.toml"):
        with new_folder(d, "dataset", overwrite=True):
            pass
    assert snapshot(d) == before
    (d / "surveys" / "mine.toml").unlink()
    with new_folder(d, "dataset", overwrite=True) as tmp:  # careval's own files only: replaced
        (tmp / "persons.parquet").write_bytes(b"new")
    assert (d / "persons.parquet").read_bytes() == b"new" and not (d / "surveys").exists()


def test_a_failed_final_rename_puts_the_old_folder_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = a_careval_folder(tmp_path / "ds")
    before = snapshot(d)
    real = os.replace

    def fail_on_the_swap(src: object, dst: object) -> None:
        if Path(str(dst)) == d and ".careval-tmp." in str(src):
            raise OSError("disk full")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(folders.os, "replace", fail_on_the_swap)
    with pytest.raises(OSError, match="disk full"):
        with new_folder(d, "dataset", overwrite=True) as tmp:
            (tmp / "persons.parquet").write_bytes(b"new")
    assert snapshot(d) == before
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_a_folder_moved_aside_by_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    """Killed between moving the old folder aside and the new one in: nothing is at the path,
    and the next write on it puts the complete old folder back instead of deleting it."""
    d = a_careval_folder(tmp_path / "ds")
    before = snapshot(d)
    aside = tmp_path / ".careval-old.ds.0123abcd"
    os.replace(d, aside)  # where the kill left it
    assert folders.clean_leftovers(d) == []
    assert snapshot(d) == before and not aside.exists()


def test_a_killed_run_s_record_does_not_claim_a_user_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run(out, OUTPUTS, fill_with("first"))
    killed = out / RUNS / "run-20990101T000000-0123abcd"  # a later run killed before its switch
    killed.mkdir()
    (killed / folders.RECORD).write_text(json.dumps({"files": ["figures/extra.svg"]}))
    (out / "figures" / "extra.svg").write_text("<svg>mine</svg>")
    write_run(out, OUTPUTS, fill_with("second"))
    assert (out / "figures" / "extra.svg").read_text() == "<svg>mine</svg>"


def test_a_run_store_that_is_a_link_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_run(a, OUTPUTS, fill_with("a"))
    write_run(b, OUTPUTS, fill_with("b"))
    shutil.rmtree(b / RUNS)
    os.symlink(a / RUNS, b / RUNS)
    before = snapshot(a)
    with pytest.raises(ConfigError, match=r"\.careval-runs is not the folder careval made"):
        write_run(b, OUTPUTS, fill_with("c"))
    assert snapshot(a) == before


def test_without_links_figures_moved_aside_by_a_kill_are_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between moving the old figures aside (into the current run's folder) and the
    new ones in: the next run puts them back first, so the user's files in them are kept."""
    monkeypatch.setattr(folders, "_links_work", lambda runs: False)
    out = tmp_path / "out"
    first = write_run(out, OUTPUTS, fill_with("one"))
    (out / "figures" / "my-chart.svg").write_text("<svg>mine</svg>")
    os.replace(out / "figures", first / "figures.replaced.0123abcd")  # where the kill left it
    write_run(out, OUTPUTS, fill_with("two"))
    assert (out / "figures" / "my-chart.svg").read_text() == "<svg>mine</svg>"
    assert (out / "figures" / "impact-1.svg").read_text() == "<svg>two</svg>"
