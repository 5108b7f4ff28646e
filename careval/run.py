"""The main job: evaluate a dataset, then write the report and its companions.

:func:`run` is :func:`careval.evaluation.evaluate` (compute) followed by
:func:`careval.report.build.write_report` (publish and write); ``careval run`` and ``careval demo``
call it. It is an edge: it composes the inner layers with the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from careval.errors import ConfigError
from careval.evaluation import STEPS, evaluate
from careval.report.build import write_report
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
) -> Path:
    """Evaluate the dataset in ``data`` into ``out``; returns the path of the report.

    Writes ``report.html`` (one self-contained page), ``results.json`` (every block),
    ``tables.xlsx`` (every published table), ``figures/`` (each chart as SVG) and
    ``study.json`` (the resolved study specification), all under disclosure control (the
    spec's ``[disclosure]``) unless the dataset is flagged synthetic. ``spec`` is the study
    specification (the defaults when None).
    """
    data, out = Path(data), Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a directory")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must not be the dataset directory")
    ev = evaluate(data, spec, progress)
    if progress:
        progress("writing the report")
    return write_report(ev, out)


def demo(
    out: str | Path = DEMO_DIR, persons: int | None = None, progress: Progress | None = None
) -> Path:
    """Make (or reuse) the default synthetic dataset in ``out/data`` and run on it into ``out``."""
    out = Path(out)
    data = out / "data"
    settings = SynthSettings() if persons is None else SynthSettings(persons=persons)
    manifest = data / "dataset.json"
    reuse = False
    if manifest.exists():
        try:
            reuse = json.loads(manifest.read_text("utf-8")).get("settings") == settings.to_dict()
        except (json.JSONDecodeError, UnicodeDecodeError):
            reuse = False
    if not reuse:
        generate(data, settings, overwrite=True, progress=progress)
    return run(data, out, progress=progress)
