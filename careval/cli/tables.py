"""``careval match`` and ``careval did``: matching and difference-in-differences on any table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import err, names, out, write_json
from careval.errors import ConfigError


def match_cmd(
    csv: Annotated[Path, typer.Option("--csv", help="CSV file, one row per unit")],
    treatment: Annotated[str, typer.Option(help="0/1 column: 1 treated, 0 potential control")],
    covariates: Annotated[str, typer.Option(help="Comma-separated propensity-score covariates")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    exact: Annotated[str, typer.Option(help="Comma-separated exact-matching columns")] = "",
    ratio: Annotated[int, typer.Option(help="Controls per treated unit")] = 1,
    caliper: Annotated[
        float | None, typer.Option(help="Caliper in SDs of the score (default: none)")
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Match with replacement")] = False,
    distance: Annotated[str, typer.Option(help="ps, logit_ps or mahalanobis")] = "ps",
    outcome: Annotated[str | None, typer.Option(help="Outcome column for the ATT")] = None,
) -> None:
    """Nearest-neighbour matching (MatchIt's defaults): counts, balance, and the ATT."""
    from careval.cli.tables_impact import match_csv

    if distance not in ("ps", "logit_ps", "mahalanobis"):
        raise ConfigError(f"--distance must be ps, logit_ps or mahalanobis; got {distance!r}")
    result = match_csv(
        csv,
        treatment,
        names(covariates),
        names(exact),
        ratio,
        caliper,
        replace,
        distance,  # type: ignore[arg-type]
        outcome,
    )
    write_json(json_out, result)
    for w in result.get("warnings", []):
        err.print(f"warning: {w}", highlight=False, markup=False)
    att = result.get("att")
    line = (
        f"matched {result['n_treated_matched']:,} of {result['n_treated']:,} treated to "
        f"{result['n_controls_matched']:,} controls; max |SMD| after "
        f"{result['max_abs_smd_after']:.3f}"
    )
    if att:
        line += f"; ATT {att['estimate']:.4g} (95% CI {att['ci_low']:.4g} to {att['ci_high']:.4g})"
    out.print(line, highlight=False)


def did_cmd(
    csv: Annotated[Path, typer.Option("--csv", help="CSV panel, one row per unit and period")],
    unit: Annotated[str, typer.Option(help="Unit column")],
    time: Annotated[str, typer.Option(help="Period column (integers or dates)")],
    outcome: Annotated[str, typer.Option(help="Outcome column")],
    first_treated: Annotated[
        str, typer.Option(help="First treated period; empty for never-treated units")
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    model: Annotated[
        str, typer.Option(help="ols, poisson or another model of the fixed-effects engine")
    ] = "ols",
    cluster: Annotated[str | None, typer.Option(help="Cluster column (default: the unit)")] = None,
    estimator: Annotated[
        str,
        typer.Option(
            help="auto, did2s, etwfe or twfe; auto: TWFE with one adoption cohort, else the "
            "two-stage DiD (ols) or the extended TWFE (count models)"
        ),
    ] = "auto",
) -> None:
    """Staggered-adoption difference-in-differences: the ATT, an event study, a pre-trend test."""
    from careval.cli.tables_impact import did_csv

    # the choices are checked against careval.impact.fe.MODELS and staggered.ESTIMATORS there
    result = did_csv(csv, unit, time, outcome, first_treated, model, cluster, estimator)  # type: ignore[arg-type]
    write_json(json_out, result)
    for w in result["warnings"]:
        err.print(f"warning: {w}", highlight=False, markup=False)
    att = result["att"]
    line = (
        f"ATT {att['estimate']:.4g} (95% CI {att['ci_low']:.4g} to {att['ci_high']:.4g}), "
        f"{result['estimator']}, {result['n_units']:,} units, {result['n_treated_units']:,} treated"
    )
    pre = result["pretrend"]
    if pre:
        line += (
            f"; pre-trends chi-square {pre['statistic']:.3g} on {pre['df']} df, "
            f"p = {pre['p_value']:.3g}"
        )
    out.print(line, highlight=False)
