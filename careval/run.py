"""The main job: evaluate a dataset, then write the report and its companions.

:func:`run` is :func:`careval.evaluation.evaluate` (compute) followed by
:func:`careval.report.build.write_report` (publish and write); ``careval run`` and ``careval demo``
call it. It is an edge: it composes the inner layers with the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from careval.cohort.summary import SummarySettings
from careval.disclosure import DisclosureSettings
from careval.errors import ConfigError
from careval.evaluation import STEPS, evaluate
from careval.impact.study import ImpactSettings
from careval.report.build import write_report
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings

DEMO_DIR = Path("careval-demo")
RUN_STEPS = STEPS + 1  # calls of ``progress`` in one run (for a progress bar's total)
Progress = Callable[[str], None]


def run(
    data: str | Path,
    out: str | Path,
    settings: SummarySettings | None = None,
    progress: Progress | None = None,
    impact_settings: ImpactSettings | None = None,
    disclosure: DisclosureSettings | None = None,
) -> Path:
    """Evaluate the dataset in ``data`` into ``out``; returns the path of the report.

    Writes ``report.html`` (one self-contained page), ``results.json`` (every block),
    ``tables.xlsx`` (every published table) and ``figures/`` (each chart as SVG), all under
    disclosure control (``disclosure``, default :class:`~careval.disclosure.DisclosureSettings`)
    unless the dataset is flagged synthetic.
    """
    data, out = Path(data), Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; --out must be a directory")
    if out.resolve() == data.resolve():
        raise ConfigError("--out must not be the dataset directory")
    ev = evaluate(data, settings, progress, impact_settings, disclosure)
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
