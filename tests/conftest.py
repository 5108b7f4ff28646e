"""Shared fixtures: small synthetic populations generated once per test session."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

SMALL = 12_000  # people in the shared dataset: seconds to make, enough for shape checks
# Fixtures behind the slow tier: the 120,000-person dataset, the runs made on it, and the whole
# runs of the small dataset (the report in Chromium, the real-flagged runs with the default and
# stricter disclosure settings, the evaluation the seed-sentence tests report on). The fast tier
# (``bash scripts/test.sh -m "not slow"``) leaves the tests that use them out, and the few that
# run ``careval run`` themselves are marked ``slow`` where they stand.
SLOW_FIXTURES = {
    "shape_dir",
    "shape_truth",
    "shape_run",
    "synth_run",
    "report_run",
    "real_run",
    "strict_run",
    "seed_evaluation",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a whole run, or the 120,000-person dataset (left out of the fast tier)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a slow fixture, directly or through another fixture."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``careval ARGS`` in a fresh interpreter, capturing its exit code and output."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from careval.cli import main; main()", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean generated dataset (read-only for tests: copy it before changing anything)."""
    out = tmp_path_factory.mktemp("synth") / "data"
    generate(out, SynthSettings(persons=SMALL, seed=7))
    return out


@pytest.fixture(scope="session")
def shape_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A larger dataset (120,000 people, about 5 s) for the checks of the seed's shape."""
    out = tmp_path_factory.mktemp("shape") / "data"
    generate(out, SynthSettings(persons=120_000, seed=11))
    return out


@pytest.fixture(scope="session")
def shape_truth(shape_dir: Path) -> dict:
    """truth.json of the larger dataset."""
    return json.loads((shape_dir / "truth.json").read_text())


@pytest.fixture(scope="session")
def shape_run(shape_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``careval run`` on the larger dataset, once: the directory with its outputs."""
    from careval.cli import main

    out = tmp_path_factory.mktemp("shape-run")
    assert main(["run", "--data", str(shape_dir), "--out", str(out)]) is None
    return out


@pytest.fixture(scope="session")
def synth_run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``careval run`` on the shared dataset, once a session (once per xdist worker): the
    directory with its outputs, which tests only read (copy it before changing anything)."""
    from careval.run import run

    out = tmp_path_factory.mktemp("synth-run")
    run(synth_dir, out)
    return out


def flagged_real(synth_dir: Path, data: Path) -> Path:
    """A copy of ``synth_dir`` at ``data`` flagged as real data, without its truth files."""
    shutil.copytree(synth_dir, data)
    for name in ("truth.json", "true_risk.parquet"):
        (data / name).unlink(missing_ok=True)
    manifest = json.loads((data / "dataset.json").read_text())
    manifest["synthetic"] = False
    (data / "dataset.json").write_text(json.dumps(manifest))
    return data


@pytest.fixture(scope="session")
def real_data(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared dataset flagged as real data (without its truth files)."""
    return flagged_real(synth_dir, tmp_path_factory.mktemp("real") / "data")


@pytest.fixture(scope="session")
def real_run(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run of the copy flagged as real data, under the default disclosure settings, once a
    session (read only)."""
    from careval.run import run

    out = tmp_path_factory.mktemp("real-run")
    run(real_data, out)
    return out


@pytest.fixture(scope="session")
def app_template(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The app's database on the shared dataset, with its demo users (closed; copy to use).

    Returns the database file and the demo users' log-ins by user name.
    """
    from careval.app import snapshot
    from careval.app.demo import demo_users
    from careval.app.store import open_store

    db = tmp_path_factory.mktemp("app") / "app.db"
    store = open_store(db)
    snapshot.build(store, synth_dir)
    users = {u.username: u for u in demo_users(store)}
    store.close()
    return db, users
