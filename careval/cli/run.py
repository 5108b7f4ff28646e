"""``careval run``, ``careval init`` and ``careval demo``: the main job and its specification."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from careval.cli.common import err, out, parse_date, steps, validated
from careval.cli.run_summary import survival_lines
from careval.errors import ConfigError


def run(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Directory for report.html, results.json, tables.xlsx, study.json and "
            "figures/ (your own files in it stay); not inside --data",
        ),
    ],
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="Study specification (study.toml; see careval init)"),
    ] = None,
    reference_date: Annotated[
        str | None,
        typer.Option(help="Date eligibility is counted, YYYY-MM-DD (overrides the spec)"),
    ] = None,
    not_yet_treated: Annotated[
        bool | None,
        typer.Option(
            "--not-yet-treated",
            help="Matched study: also take programme-area people not yet treated as "
            "controls, each censored at their own treatment (overrides the spec)",
        ),
    ] = None,
    follow: Annotated[
        Path | None,
        typer.Option(
            "--follow",
            help="careval follow's --state folder: the report carries its looks as the "
            "real-time evaluation (same dataset and matched study; the folder is only read)",
        ),
    ] = None,
) -> None:
    """Validate a dataset, run the evaluation, write report.html and results.json.

    The outputs are replaced together (docs/outputs.md): a run that fails or is stopped leaves
    the previous set; files careval did not write are never replaced.
    """
    from careval.run import RUN_STEPS
    from careval.run import run as run_
    from careval.spec import LoadedSpec, StudySpec, load

    loaded = load(spec) if spec is not None else LoadedSpec(StudySpec(), None, frozenset())
    s = loaded.spec
    if reference_date is not None:
        date = parse_date(reference_date, "--reference-date")
        s = dataclasses.replace(s, study=dataclasses.replace(s.study, reference_date=date))
    if not_yet_treated is not None:
        m = dataclasses.replace(s.matching, not_yet_treated=not_yet_treated)
        s = dataclasses.replace(s, matching=m)
    loaded = dataclasses.replace(loaded, spec=s)
    with steps(RUN_STEPS) as step:
        report = run_(
            data, out_dir, loaded if spec is not None else s, progress=step, follow=follow
        )
    _finish(Path(report))


def _finish(report: Path) -> None:
    """The run's flagged estimates and its summary lines (stderr, from the published
    results.json beside ``report``), then the report's path (stdout)."""
    results = _results(report.parent / "results.json")
    for line in _not_for_decisions(results):
        err.print(f"warning: {line}", highlight=False, markup=False)
    for line in survival_lines(results):
        err.print(line, highlight=False, markup=False)
    out.print(str(report))


def _results(path: Path) -> dict[str, Any]:
    """The published results.json of a run (empty when it cannot be read)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _not_for_decisions(results: dict[str, Any]) -> list[str]:
    """The matched estimates the run's diagnostics flagged, as results.json records them."""
    impact = results.get("impact") or {}
    warnings = impact.get("warnings") if isinstance(impact, dict) else None
    return [w for w in warnings or [] if isinstance(w, str) and "not for decisions" in w]


def init(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    out_file: Annotated[
        Path, typer.Option("--out", help="The spec file to write (study.toml)")
    ] = Path("study.toml"),
) -> None:
    """Write a study specification with values inferred from a dataset, and say what was
    inferred. Edit it, then: careval run --data DIR --spec study.toml --out OUT."""
    from careval.data.access import Dataset
    from careval.spec import dumps
    from careval.spec.infer import infer
    from careval.spec.toml import toml_value

    if os.path.lexists(out_file):
        raise ConfigError(f"{out_file} exists; careval init never overwrites a file")
    if not out_file.parent.is_dir():
        raise ConfigError(f"--out {out_file}: the directory {out_file.parent} does not exist")
    validated(data)
    with Dataset(data) as ds:
        spec, notes = infer(ds)
    header = (
        f"careval study specification, written by careval init from {data.name}.\n"
        "Values marked 'inferred' were read from the data; every other value is careval's\n"
        "default (the North West London pilot's evaluation). Check each one before running:\n"
        f"careval run --data {data} --spec {out_file} --out OUT\n"
        "Reference: docs/study-spec.md"
    )
    try:  # "x": created here or not at all, even if a file appeared while we inferred
        with open(out_file, "x", encoding="utf-8") as handle:
            handle.write(dumps(spec, notes, header))
    except FileExistsError:
        raise ConfigError(f"{out_file} exists; careval init never overwrites a file") from None
    for section in dataclasses.fields(spec):
        part = getattr(spec, section.name)
        for f in dataclasses.fields(part) if dataclasses.is_dataclass(part) else ():
            key = f"{section.name}.{f.name}"
            if key in notes:
                value = getattr(getattr(spec, section.name), f.name)
                shown = f"{key} = {toml_value(value)}  ({notes[key]})"
                err.print(shown, highlight=False, markup=False)
    out.print(str(out_file))


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("careval-demo"),
    persons: Annotated[
        int | None, typer.Option(help="People (default: the full 1,100,000)")
    ] = None,
) -> None:
    """Make or reuse the default synthetic dataset and evaluate it; prints the report's path.

    OUT/data is reused or replaced only when it is the synthetic dataset careval made there.
    """
    from careval.run import RUN_STEPS
    from careval.run import demo as demo_
    from careval.synthetic.generate import STEPS

    with steps(STEPS + RUN_STEPS) as step:
        report = demo_(out_dir, persons=persons, progress=step)
    _finish(report.resolve())
