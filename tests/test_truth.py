"""The synthetic population's known truth is read only from data flagged synthetic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from careval.data.access import Dataset
from careval.data.truth import known_effects, true_risk_file
from careval.errors import DatasetError
from careval.synthetic.settings import SynthSettings


def _copy(synth_dir: Path, to: Path, synthetic: object) -> Path:
    """A copy of the dataset (its truth files kept) with ``synthetic`` set in its manifest."""
    shutil.copytree(synth_dir, to)
    manifest = json.loads((to / "dataset.json").read_text())
    manifest["synthetic"] = synthetic
    (to / "dataset.json").write_text(json.dumps(manifest))
    return to


def test_synthetic_data_give_their_truth(synth_dir: Path) -> None:
    expected = json.loads((synth_dir / "truth.json").read_text())["effects"]
    with Dataset(synth_dir) as ds:
        assert known_effects(ds) == expected
        assert true_risk_file(ds) == synth_dir / "true_risk.parquet"
    # the fixture carries the generator's default effect (synth_dir: SynthSettings defaults)
    assert expected["emergency_admissions"]["rate_ratio"] == pytest.approx(
        1 + SynthSettings().effect
    )


def test_real_data_never_read_truth_files_they_happen_to_hold(
    synth_dir: Path, tmp_path: Path
) -> None:
    data = _copy(synth_dir, tmp_path / "real", False)
    assert (data / "truth.json").is_file() and (data / "true_risk.parquet").is_file()
    with Dataset(data) as ds:
        assert known_effects(ds) == {}
        assert true_risk_file(ds) is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"effects": 3}'])
def test_a_broken_truth_file_is_one_clear_error(synth_dir: Path, tmp_path: Path, text: str) -> None:
    data = _copy(synth_dir, tmp_path / "synth", True)
    (data / "truth.json").write_text(text)
    with Dataset(data) as ds, pytest.raises(DatasetError, match=r"truth\.json"):
        known_effects(ds)
