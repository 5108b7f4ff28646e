"""``careval design``: power and minimum detectable effects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import names, out, steps, write_json
from careval.errors import ConfigError


def design(
    data: Annotated[Path, typer.Option("--data", help="Dataset directory")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    enrolled: Annotated[
        int | None, typer.Option(help="People to be care-planned (default: those matched)")
    ] = None,
    ratio: Annotated[int, typer.Option(help="Matched controls per person")] = 5,
    followup_months: Annotated[
        str, typer.Option(help="Comma-separated follow-up lengths in months")
    ] = "3,6,12,18,24",
    effect: Annotated[float, typer.Option(help="Effect to detect (rate ratio - 1)")] = -0.10,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level")] = 0.05,
    power: Annotated[float, typer.Option(help="Power wanted")] = 0.80,
    replicates: Annotated[int, typer.Option(help="Simulation replicates")] = 1000,
) -> None:
    """Minimum detectable effect by follow-up, and the follow-up a given effect needs."""
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.data.validate import require_valid
    from careval.design.power import DesignSettings
    from careval.disclosure import DisclosureSettings
    from careval.evaluation import design_plan
    from careval.impact.settings import DEFAULT_OUTCOMES, ImpactSettings
    from careval.impact.study import evaluate_impact
    from careval.report.publish.design import publish_design

    try:
        months = tuple(int(m) for m in names(followup_months))
    except ValueError:
        raise ConfigError(
            f"--followup-months must be whole months separated by commas; got {followup_months!r}"
        ) from None
    settings = DesignSettings(
        enrolled=enrolled,
        ratio=ratio,
        followup_months=months,
        effect=effect,
        alpha=alpha,
        power=power,
        replicates=replicates,
    )
    with steps(3) as step:
        step("validating the dataset")
        require_valid(data)
        step("matching the care-planned to comparator people")
        with Dataset(data) as ds:
            synthetic = ds.synthetic
            window = data_window(ds)
            primary_only = ImpactSettings(outcomes=DEFAULT_OUTCOMES[:1])
            impact = evaluate_impact(ds, window, primary_only)
        step("power by analysis and simulation")
        result = design_plan(impact, settings)
    if not synthetic:  # data flagged real: the JSON is published, under disclosure control
        result = publish_design(result, DisclosureSettings())
    write_json(json_out, result.to_dict())
    for r in result.rows:
        out.print(
            f"{r['followup_months']:>3} months: MDE rate ratio {r['mde_rate_ratio']:.3f} "
            f"(simulation {r['sim_mde_rate_ratio']:.3f}); power for {1 + effect:.2f}: "
            f"{r['power_at_effect']:.2f} (simulation {r['sim_power_at_effect']:.2f})",
            highlight=False,
        )
