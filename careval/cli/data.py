"""``careval synth`` and ``careval validate``: make a synthetic dataset, check any dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from careval.cli.common import out, parse_date, steps, validated


def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to create")],
    persons: Annotated[
        int, typer.Option(help="People across all areas (pilot gets half)")
    ] = 1_100_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 2011,
    effect: Annotated[
        float,
        typer.Option(help="True care-plan effect on the emergency admission rate (rate ratio - 1)"),
    ] = -0.10,
    diabetes_effect: Annotated[
        float | None,
        typer.Option(
            help="Multiplier of the stated diabetes-process effects (default: effect / -0.10)"
        ),
    ] = None,
    start: Annotated[str, typer.Option(help="First month, YYYY-MM")] = "2009-04",
    end: Annotated[str, typer.Option(help="Last month, YYYY-MM")] = "2014-03",
    programme_start: Annotated[
        str | None,
        typer.Option(
            help="Month of the first care plans, YYYY-MM (default: 29 months after --start); "
            "every programme date moves with it"
        ),
    ] = None,
    hidden_bias: Annotated[
        float,
        typer.Option(
            help="A hidden confounder (rate ratio - 1, -0.5 to 1.0; default 0: none): from their "
            "plan month the care-planned's hospital activity runs at 1 + this times its rate, "
            "unseen by matching, so every matched estimate is biased by about that factor"
        ),
    ] = 0.0,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a dataset careval made there earlier (never anyone else's folder)"
        ),
    ] = False,
    data_format: Annotated[
        Literal["canonical", "hes"],
        typer.Option(
            "--format",
            help="canonical: the dataset's tables; hes: those and the hospital tables as "
            "HES-shaped extracts in hes/ (apc.csv, ae.csv, op.csv; docs/hes-extracts.md)",
        ),
    ] = "canonical",
) -> None:
    """Generate the synthetic North West London population with known true effects."""
    from careval.synthetic.generate import STEPS, generate
    from careval.synthetic.settings import SynthSettings

    settings = SynthSettings(
        persons=persons,
        seed=seed,
        effect=effect,
        diabetes_effect=diabetes_effect,
        start=start,
        end=end,
        programme_start=programme_start,
        hidden_bias=hidden_bias,
    )
    hes = data_format == "hes"
    with steps(STEPS + hes) as step:
        truth = generate(out_dir, settings, overwrite=overwrite, progress=step, hes=hes)
    rows = truth["rows"]
    out.print(
        f"wrote {out_dir} ({rows['persons']:,} people, "
        f"{rows['inpatient_spells']:,} inpatient spells, {rows['care_plans']:,} care plans)"
    )
    if hes:
        out.print(f"wrote the HES-shaped extracts in {out_dir / 'hes'} (docs/hes-extracts.md)")


def validate(
    data: Annotated[Path, typer.Argument(help="Dataset directory")],
    extract_date: Annotated[
        str | None,
        typer.Option(
            "--extract-date",
            help="Day the extract was taken, YYYY-MM-DD: no date may be later, ages are counted "
            "at it (default: extract_date in dataset.json, else today)",
        ),
    ] = None,
) -> None:
    """Check every table against the canonical model; exit 2 when any problem is found."""
    validated(data, None if extract_date is None else parse_date(extract_date, "--extract-date"))
    out.print(f"{data}: valid")
