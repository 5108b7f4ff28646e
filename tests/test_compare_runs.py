"""scripts/compare_runs.py: two runs' outputs compared file by file, time stamps aside."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from openpyxl import Workbook

SCRIPT = Path(__file__).parents[1] / "scripts" / "compare_runs.py"
spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
assert spec is not None and spec.loader is not None
compare_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_runs)


def _run(out: Path, results: dict, stamp: str, cell: int) -> Path:
    (out / "figures").mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.html").write_text(f"<p>run at <span>{stamp}</span></p>")
    wb = Workbook()
    assert wb.active is not None
    wb.active.append(["n", cell])
    wb.save(out / "tables.xlsx")
    (out / "figures" / "a.svg").write_text("<svg/>")
    return out


def test_same_runs_apart_from_the_time_stamp(tmp_path: Path) -> None:
    doc = {"impact": {"settings": {"caliper": 0.2}, "n": 5}}
    a = _run(tmp_path / "a", doc, "2026-12-01 09:00:00 UTC", 1)
    b = _run(tmp_path / "b", doc, "2026-12-01 10:30:00 UTC", 1)
    assert compare_runs.compare(a, b) == []
    assert compare_runs.main([str(a), str(b)]) == 0


def test_every_difference_is_named(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", {"impact": {"caliper_sd": 0.2, "n": 5}}, "2026-12-01 09:00:00 UTC", 1)
    b = _run(tmp_path / "b", {"impact": {"n": 6, "caliper": 0.2}}, "2026-12-01 09:00:00 UTC", 2)
    (b / "figures" / "a.svg").write_text("<svg></svg>")
    found = compare_runs.compare(a, b)
    assert found[0] == "results.json: 3 differences"
    assert set(found[1:4]) == {
        "  .impact.caliper_sd: removed",
        "  .impact.caliper: added 0.2",
        "  .impact.n: 5 -> 6",
    }
    assert "tables.xlsx: cells differ on Sheet" in found
    assert found[-1] == "figures: a.svg"
    assert compare_runs.main([str(a), str(b)]) == 1
    shutil.rmtree(b)
    b.mkdir()
    assert compare_runs.main([str(a), str(b)]) == 2  # not a careval run
