"""A kill at any instant leaves the old complete set of outputs, the new one, or none.

careval is killed with SIGKILL at each named step of its writes (``CAREVAL_TEST_KILL_AT``, see
:func:`careval.folders.kill_point`) and at timed moments. After each kill the outputs are
either absent or one complete, consistent set (every file of one run or one dataset, byte for
byte as a clean write makes it), the user's own files are there, and the next write succeeds
and leaves no temporary folder behind.

The steps of a run folder's and a whole folder's writes are exercised with stand-ins for the
report and the dataset (a fraction of a second per kill); ``careval synth`` and ``careval run``
themselves are killed in the slow tier (a few seconds per synth, about 15 s per run).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from careval.folders import MARKER, RECORD, RUNS, current_run, read_marker
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

OUTPUTS = ("results.json", "report.html", "tables.xlsx", "study.json", "figures")
CLI = [sys.executable, "-c", "from careval.cli import main; main()"]
QUICK = "[risk]\ncompare_lightgbm = false\n[design]\nreplicates = 100\n"
KILLED = -signal.SIGKILL if hasattr(signal, "SIGKILL") else None

# A run of the stand-in report: the five outputs, each naming the run's tag, one figure named
# after the tag too (so the set of figures differs between runs, as it does between studies).
FAKE_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import careval.folders as folders
    out, tag, links = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "links"
    if not links:
        folders._links_work = lambda runs: False
    def fill(run):
        for name in {outputs!r}[:-1]:
            (run / name).write_text(name + " of " + tag)
            folders.kill_point("run-writing")
        (run / "figures").mkdir()
        for fig in ("impact-1.svg", tag + ".svg"):
            (run / "figures" / fig).write_text("<svg>" + tag + "</svg>")
    folders.write_run(out, {outputs!r}, fill)
    """
).format(outputs=OUTPUTS)


def snapshot(top: Path) -> dict[str, bytes]:
    """Every file under ``top`` (links followed, careval's hidden entries left out)."""
    files = {}
    for folder, _, names in os.walk(top, followlinks=True):
        for name in names:
            path = Path(folder) / name
            rel = path.relative_to(top).as_posix()
            if path.is_file() and not rel.startswith((RUNS, MARKER)):
                files[rel] = path.read_bytes()
    return files


def kill_at(argv: list[str], step: str | None = None, after: float | None = None) -> int:
    """Run ``argv``, killed at ``step`` (its own hook) or ``after`` seconds; the exit code."""
    env = {**os.environ, "CAREVAL_TEST_KILL_AT": step or ""}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if after is not None:
        try:
            proc.wait(after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    return proc.returncode


def fake_run(out: Path, tag: str, step: str | None = None, links: bool = True) -> int:
    return kill_at([sys.executable, "-c", FAKE_RUN, str(out), tag, "links" if links else ""], step)


def run_state(out: Path) -> str | None:
    """The tag of the complete stand-in set in ``out``, None when there are no outputs."""
    present = [n for n in OUTPUTS if os.path.exists(out / n)]
    if not present:
        return None
    assert present == list(OUTPUTS), f"a partial set: {present}"
    tags = {(out / n).read_text().rsplit(" of ", 1)[-1] for n in OUTPUTS[:-1]}
    assert len(tags) == 1, f"outputs of two runs at once: {tags}"
    (tag,) = tags
    assert set(os.listdir(out / "figures")) - {"mine.svg"} == {"impact-1.svg", f"{tag}.svg"}
    assert (out / "figures" / "impact-1.svg").read_text() == f"<svg>{tag}</svg>"
    return tag


def no_leftovers(out: Path) -> None:
    """Only the current run in the run folder, nothing half-made beside it."""
    run = current_run(out)
    assert run is not None
    assert sorted(os.listdir(out / RUNS)) == sorted(["current", run.name])
    assert not [n for n in os.listdir(out) if n.startswith(f"{MARKER}.")]


STEPS = ("run-writing", "run-filled", "run-staged", "run-links", "run-switched")


@pytest.mark.parametrize("step", STEPS)
def test_a_killed_first_run_leaves_no_outputs_or_all(tmp_path: Path, step: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert fake_run(out, "one", step) == KILLED
    assert run_state(out) == ("one" if step == "run-switched" else None)
    assert fake_run(out, "two") == 0
    assert run_state(out) == "two" and (out / "notes.txt").read_text() == "mine"
    no_leftovers(out)


@pytest.mark.parametrize(
    ("step", "links"),
    [(s, True) for s in STEPS] + [(s, False) for s in STEPS if s != "run-links"],
    ids=[f"{s}-links" for s in STEPS] + [f"{s}-files" for s in STEPS if s != "run-links"],
)
def test_a_killed_later_run_leaves_the_old_set_or_the_new(
    tmp_path: Path, step: str, links: bool
) -> None:
    out = tmp_path / "out"
    assert fake_run(out, "one", links=links) == 0
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "mine.svg").write_text("<svg>mine</svg>")
    assert fake_run(out, "two", step, links) == KILLED
    assert run_state(out) == ("two" if step == "run-switched" else "one")
    assert (out / "figures" / "mine.svg").read_text() == "<svg>mine</svg>"
    assert fake_run(out, "three", links=links) == 0
    assert run_state(out) == "three" and (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "mine.svg").read_text() == "<svg>mine</svg>"
    no_leftovers(out)


@pytest.mark.parametrize("step", ["run-moving", "run-moved"])
def test_without_links_a_kill_while_moving_is_repaired_by_the_next_run(
    tmp_path: Path, step: str
) -> None:
    """Where links cannot be made the outputs are moved in one by one: a kill between two moves
    mixes two runs (documented); the next run puts one complete set back, no stale figure in
    it, the user's kept."""
    out = tmp_path / "out"
    assert fake_run(out, "one", links=False) == 0
    (out / "figures" / "mine.svg").write_text("<svg>mine</svg>")
    assert fake_run(out, "two", step, links=False) == KILLED
    assert (out / "results.json").read_text() == "results.json of two"  # moved first
    if step == "run-moving":
        assert (out / "report.html").read_text() == "report.html of one"
    assert fake_run(out, "three", links=False) == 0
    assert run_state(out) == "three"  # exactly its figures and the user's
    assert (out / "figures" / "mine.svg").read_text() == "<svg>mine</svg>"
    no_leftovers(out)


# Whole folders (datasets, models, case lists) -------------------------------------------

FAKE_FOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from careval.folders import new_folder
    out, tag = Path(sys.argv[1]), sys.argv[2]
    with new_folder(out, "dataset", overwrite=True) as tmp:
        for name in ("persons.parquet", "dataset.json", tag + ".parquet"):
            (tmp / name).write_text(name + " of " + tag)
    """
)
FOLDER_STEPS = {"folder-staged": "one", "folder-between": None, "folder-swapped": "two"}


def folder_state(out: Path) -> str | None:
    """The tag of the complete stand-in dataset at ``out``, None when there is none."""
    if not out.exists():
        return None
    tags = {f.read_text().rsplit(" of ", 1)[-1] for f in out.iterdir() if f.name != MARKER}
    assert len(tags) == 1, f"files of two datasets at once: {tags}"
    (tag,) = tags
    expected = ["dataset.json", "persons.parquet", f"{tag}.parquet"]
    assert sorted(os.listdir(out)) == sorted([MARKER, *expected])
    marker = read_marker(out)
    assert marker is not None and marker["entries"] == sorted(expected)
    return tag


@pytest.mark.parametrize("step", FOLDER_STEPS)
def test_a_killed_folder_swap_leaves_the_old_folder_the_new_or_none(
    tmp_path: Path, step: str
) -> None:
    out = tmp_path / "d"
    (tmp_path / "mine.txt").write_text("mine")
    fake = [sys.executable, "-c", FAKE_FOLDER, str(out)]
    assert kill_at([*fake, "one"]) == 0
    assert kill_at([*fake, "two"], step) == KILLED
    assert folder_state(out) == FOLDER_STEPS[step]
    assert kill_at([*fake, "three"]) == 0
    assert folder_state(out) == "three"
    assert sorted(os.listdir(tmp_path)) == ["d", "mine.txt"]  # the leftovers removed


# careval synth ----------------------------------------------------------------------------


def synth(out: Path, seed: int, *more: str) -> list[str]:
    return [*CLI, "synth", "--out", str(out), "--persons", "1500", "--seed", str(seed), *more]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """What a clean ``careval synth`` writes with seed 1 and with seed 2."""
    made = {}
    for seed in (1, 2):
        made[seed] = tmp_path_factory.mktemp("clean") / "d"
        assert kill_at(synth(made[seed], seed)) == 0
    return made


def dataset_files(top: Path) -> dict[str, bytes]:
    """A dataset's files and their bytes; those recording the time they were written by the
    rest: a workbook by its parts but ``docProps/core.xml``, SPSS and Stata files by size."""

    def content(name: str, data: bytes) -> bytes:
        if name.endswith((".sav", ".dta")):
            return str(len(data)).encode()
        if name.endswith(".xlsx"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                parts = [z.read(i) for i in sorted(z.namelist()) if i != "docProps/core.xml"]
            return b"\0".join(parts)
        return data

    return {name: content(name, data) for name, data in snapshot(top).items()}


@pytest.fixture(scope="module")
def two_datasets(clean: dict[int, Path]) -> dict[int, dict[str, bytes]]:
    made = {seed: dataset_files(path) for seed, path in clean.items()}
    assert made[1] != made[2]
    return made


def dataset_state(out: Path, made: dict[int, dict[str, bytes]]) -> int | None:
    """Which complete dataset is at ``out`` (its seed), None when there is none."""
    if not out.exists():
        return None
    seen = dataset_files(out)
    seed = next((s for s, files in made.items() if files == seen), None)
    assert seed is not None, "a dataset that is neither the old one nor the new one"
    marker = read_marker(out)
    assert marker is not None
    every = [
        (Path(root) / f).relative_to(out).as_posix()
        for root, _, files in os.walk(out)
        for f in files
    ]
    assert sorted(marker["entries"]) == sorted(n for n in every if n != MARKER)  # every level
    return seed


SYNTH_STEPS = {  # step: the dataset left at --out
    "synth-writing": 1,
    "folder-staged": 1,
    "folder-between": None,
    "folder-swapped": 2,
}


@pytest.mark.slow
@pytest.mark.parametrize("step", SYNTH_STEPS)
def test_a_killed_synth_leaves_the_old_dataset_the_new_or_none(
    tmp_path: Path, step: str, clean: dict[int, Path], two_datasets: dict[int, dict[str, bytes]]
) -> None:
    out = tmp_path / "d"
    (tmp_path / "mine.txt").write_text("mine")
    shutil.copytree(clean[1], out)  # as careval synth wrote it, marker included
    assert kill_at(synth(out, 2, "--overwrite"), step) == KILLED
    assert dataset_state(out, two_datasets) == SYNTH_STEPS[step]
    assert kill_at(synth(out, 2, "--overwrite")) == 0
    assert dataset_state(out, two_datasets) == 2
    assert sorted(os.listdir(tmp_path)) == ["d", "mine.txt"]  # the leftovers removed


@pytest.mark.slow
@pytest.mark.parametrize("after", [1.0, 1.6, 2.2])
def test_synth_killed_at_a_moment_leaves_a_complete_dataset_or_none(
    tmp_path: Path, after: float, clean: dict[int, Path], two_datasets: dict[int, dict[str, bytes]]
) -> None:
    out = tmp_path / "d"
    shutil.copytree(clean[1], out)
    code = kill_at(synth(out, 2, "--overwrite"), after=after)
    assert code in (0, KILLED)
    assert dataset_state(out, two_datasets) in ((2,) if code == 0 else (1, 2, None))
    assert kill_at(synth(out, 2, "--overwrite")) == 0
    assert sorted(os.listdir(tmp_path)) == ["d"]


# careval run ------------------------------------------------------------------------------


def complete_run(out: Path) -> Path:
    """The run directory every output of ``out`` belongs to (asserting they all do)."""
    runs = {Path(os.path.realpath(out / n)).parent for n in OUTPUTS}
    assert len(runs) == 1, f"outputs of {len(runs)} runs at once"
    (run,) = runs
    written = (run / RECORD).read_text()
    for name in OUTPUTS[:-1]:
        assert f'"{name}"' in written and (run / name).stat().st_size > 0
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
    return run


@pytest.mark.slow
def test_careval_run_killed_while_writing_keeps_the_previous_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, SynthSettings(persons=2500, seed=4))  # small: each run is seconds
    spec = tmp_path / "quick.toml"
    spec.write_text(QUICK)
    out = tmp_path / "out"
    argv = [*CLI, "run", "--data", str(data), "--spec", str(spec), "--out", str(out)]
    started = time.monotonic()
    assert kill_at(argv) == 0
    took = time.monotonic() - started
    (out / "figures" / "mine.svg").write_text("<svg>mine</svg>")
    (out / "notes.txt").write_text("mine")
    before, first = snapshot(out), complete_run(out)
    # Killed during the final write (results.json written, the rest not yet), then at a moment
    # late in the run: the first run's set is untouched, or (the timed kill came after the
    # switch) the next complete one.
    assert kill_at(argv, "run-writing") == KILLED
    assert snapshot(out) == before and complete_run(out) == first
    code = kill_at(argv, after=took * 0.9)
    assert code in (0, KILLED)
    if complete_run(out) == first:  # not switched yet: the first set as it was
        assert snapshot(out) == before
    assert (out / "figures" / "mine.svg").exists() and (out / "notes.txt").exists()
    # The next run succeeds, keeps the user's files and removes every leftover.
    assert kill_at(argv) == 0
    last = complete_run(out)
    assert last != first and (out / "figures" / "mine.svg").read_text() == "<svg>mine</svg>"
    assert sorted(os.listdir(out / RUNS)) == sorted(["current", last.name])
    assert snapshot(out).keys() == before.keys()
