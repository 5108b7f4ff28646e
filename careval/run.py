"""The main job: evaluate a dataset, then write the report and its companions.

:func:`run` is :func:`careval.evaluation.evaluate` (compute) followed by
:func:`careval.report.build.write_report` (publish and write); ``careval run`` and ``careval demo``
call it. It is an edge: it composes the inner layers with the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from careval.errors import ConfigError
from careval.evaluation import STEPS, evaluate
from careval.folders import MARKER, check_run_folder, read_marker
from careval.report.build import OUTPUTS, write_report
from careval.spec import LoadedSpec, StudySpec
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

DEMO_DIR = Path("careval-demo")
RUN_STEPS = STEPS + 1  # calls of ``progress`` in one run (for a progress bar's total)
Progress = Callable[[str], None]


def run(
    data: str | Path,
    out: str | Path,
    spec: StudySpec | LoadedSpec | None = None,
    progress: Progress | None = None,
    follow: Path | None = None,
) -> Path:
    """Evaluate the dataset in ``data`` into ``out``; returns the path of the report.

    Writes ``report.html`` (one self-contained page), ``results.json`` (every block),
    ``tables.xlsx`` (every published table), ``figures/`` (each chart as SVG) and
    ``study.json`` (the resolved study specification), all under disclosure control (the
    spec's ``[disclosure]``) unless the dataset is flagged synthetic. ``spec`` is the study
    specification (the defaults when None); ``follow`` a ``careval follow`` state whose looks
    the report carries (checked before the work: same dataset, same matched study).
    """
    data, out = Path(data), Path(out)
    check_run_folder(out, OUTPUTS, data)  # before the work; write_report checks again
    if follow is not None:
        from careval.impact.follow_state import check_follow_state
        from careval.spec.resolve import resolve

        given = spec.spec if isinstance(spec, LoadedSpec) else spec or StudySpec()
        check_follow_state(Path(follow), data, resolve(given).impact, given.risk.train_date)
    ev = evaluate(data, spec, progress, follow=None if follow is None else Path(follow))
    if progress:
        progress("writing the report")
    return write_report(ev, out)


def demo(
    out: str | Path = DEMO_DIR, persons: int | None = None, progress: Progress | None = None
) -> Path:
    """Make (or reuse) the default synthetic dataset in ``out/data`` and run on it into ``out``.

    ``out/data`` is reused when it is careval's synthetic dataset made with these settings,
    replaced when it is careval's synthetic dataset made with others, and otherwise (a
    dataset flagged real, anyone else's folder or file) refused without being touched.
    """
    out = Path(out)
    data = out / "data"
    settings = SynthSettings() if persons is None else SynthSettings(persons=persons)
    check_run_folder(out, OUTPUTS, data)
    if os.path.lexists(data) and not (data.is_dir() and not os.listdir(data)):
        manifest = _demo_manifest(data)
        if manifest.get("settings") == settings.to_dict():
            return run(data, out, progress=progress)
    generate(data, settings, overwrite=True, progress=progress)
    return run(data, out, progress=progress)


def _demo_manifest(data: Path) -> dict[str, Any]:
    """``dataset.json`` of the demo's dataset ``data``; refused unless careval's and synthetic."""
    marker = read_marker(data) if data.is_dir() and not data.is_symlink() else None
    if marker is None or marker["kind"] != "dataset":
        raise ConfigError(
            f"{data} is not a synthetic dataset careval made (no {MARKER} of a dataset in it): "
            "careval demo reuses or replaces only its own, so nothing was touched; move it or "
            "choose another --out"
        )
    try:
        manifest = json.loads((data / "dataset.json").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("synthetic") is not True:
        raise ConfigError(
            f"{data}: dataset.json does not flag it synthetic, so careval demo treats it as "
            "real data and neither reuses nor replaces it; nothing was touched; choose another "
            "--out"
        )
    return manifest
