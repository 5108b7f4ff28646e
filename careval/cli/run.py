"""``careval run`` and ``careval demo``: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import out, parse_date, steps


def run(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for report.html and results.json")
    ],
    reference_date: Annotated[
        str, typer.Option(help="Date eligibility is counted, YYYY-MM-DD")
    ] = "2011-07-01",
    not_yet_treated: Annotated[
        bool,
        typer.Option(
            "--not-yet-treated",
            help="Matched study: also take pilot-practice people not yet care-planned as "
            "controls (each censored at their own plan)",
        ),
    ] = False,
) -> None:
    """Validate a dataset, run the evaluation, write report.html and results.json."""
    from careval.cohort.summary import SummarySettings
    from careval.impact.study import ImpactSettings
    from careval.run import RUN_STEPS
    from careval.run import run as run_

    settings = SummarySettings(reference_date=parse_date(reference_date, "--reference-date"))
    impact = ImpactSettings(not_yet_treated=not_yet_treated)
    with steps(RUN_STEPS) as step:
        report = run_(data, out_dir, settings, progress=step, impact_settings=impact)
    out.print(str(report))


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory")] = Path("careval-demo"),
    persons: Annotated[
        int | None, typer.Option(help="People (default: the full 1,100,000)")
    ] = None,
) -> None:
    """Make or reuse the default synthetic dataset and evaluate it; prints the report's path."""
    from careval.run import RUN_STEPS
    from careval.run import demo as demo_
    from careval.synthetic.generate import STEPS

    with steps(STEPS + RUN_STEPS) as step:
        report = demo_(out_dir, persons=persons, progress=step)
    out.print(str(report.resolve()))
