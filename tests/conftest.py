"""Shared fixtures: small synthetic populations generated once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

SMALL = 12_000  # people in the shared dataset: seconds to make, enough for shape checks


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
