"""Command line: parses arguments, calls one function per command, turns bad input into exit 2."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from careval.errors import CarevalError, ConfigError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate integrated health and social care programmes.",
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@contextmanager
def _steps(total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar advanced by a callback (plain lines when not a terminal)."""
    if not err.is_terminal:
        yield lambda step: err.print(f"careval: {step}", highlight=False)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=total)

        def advance(step: str) -> None:
            bar.update(task, advance=1, description=step)

        yield advance


@app.command()
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
    overwrite: Annotated[bool, typer.Option(help="Replace an existing directory")] = False,
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
    )
    with _steps(STEPS) as step:
        truth = generate(out_dir, settings, overwrite=overwrite, progress=step)
    rows = truth["rows"]
    out.print(
        f"wrote {out_dir} ({rows['persons']:,} people, "
        f"{rows['inpatient_spells']:,} inpatient spells, {rows['care_plans']:,} care plans)"
    )


@app.command()
def validate(data: Annotated[Path, typer.Argument(help="Dataset directory")]) -> None:
    """Check every table against the canonical model; exit 2 when any problem is found."""
    _validated(data)
    out.print(f"{data}: valid")


@app.command()
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

    settings = SummarySettings(reference_date=_date(reference_date, "--reference-date"))
    impact = ImpactSettings(not_yet_treated=not_yet_treated)
    with _steps(RUN_STEPS) as step:
        report = run_(data, out_dir, settings, progress=step, impact_settings=impact)
    out.print(str(report))


@app.command()
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

    with _steps(STEPS + RUN_STEPS) as step:
        report = demo_(out_dir, persons=persons, progress=step)
    out.print(str(report.resolve()))


@app.command("match")
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
    from careval.impact.generic import match_csv

    if distance not in ("ps", "logit_ps", "mahalanobis"):
        raise ConfigError(f"--distance must be ps, logit_ps or mahalanobis; got {distance!r}")
    result = match_csv(
        csv,
        treatment,
        _names(covariates),
        _names(exact),
        ratio,
        caliper,
        replace,
        distance,  # type: ignore[arg-type]
        outcome,
    )
    _write_json(json_out, result)
    att = result.get("att")
    line = (
        f"matched {result['n_treated_matched']:,} of {result['n_treated']:,} treated to "
        f"{result['n_controls_matched']:,} controls; max |SMD| after "
        f"{result['max_abs_smd_after']:.3f}"
    )
    if att:
        line += f"; ATT {att['estimate']:.4g} (95% CI {att['ci_low']:.4g} to {att['ci_high']:.4g})"
    out.print(line, highlight=False)


@app.command("did")
def did_cmd(
    csv: Annotated[Path, typer.Option("--csv", help="CSV panel, one row per unit and period")],
    unit: Annotated[str, typer.Option(help="Unit column")],
    time: Annotated[str, typer.Option(help="Period column (integers or dates)")],
    outcome: Annotated[str, typer.Option(help="Outcome column")],
    first_treated: Annotated[
        str, typer.Option(help="First treated period; empty for never-treated units")
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    model: Annotated[str, typer.Option(help="ols or poisson")] = "ols",
    cluster: Annotated[str | None, typer.Option(help="Cluster column (default: the unit)")] = None,
) -> None:
    """Two-way fixed-effects difference-in-differences: the ATT and an event study."""
    from careval.impact.generic import did_csv

    result = did_csv(csv, unit, time, outcome, first_treated, model, cluster)  # type: ignore[arg-type]
    _write_json(json_out, result)
    att = result["att"]
    out.print(
        f"ATT {att['estimate']:.4g} (95% CI {att['ci_low']:.4g} to {att['ci_high']:.4g}), "
        f"{result['n_units']:,} units, {result['n_treated_units']:,} treated",
        highlight=False,
    )


@app.command()
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
    from careval.design.power import DesignSettings, plan
    from careval.impact.study import DESIGN_PRE_MONTHS, evaluate_impact

    try:
        months = tuple(int(m) for m in _names(followup_months))
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
    with _steps(3) as step:
        step("validating the dataset")
        require_valid(data)
        step("matching the care-planned to comparator people")
        with Dataset(data) as ds:
            window = data_window(ds)
            impact = evaluate_impact(ds, window, outcomes={"emergency_admissions": "poisson"})
        step("power by analysis and simulation")
        result = plan(
            impact.untreated,
            DESIGN_PRE_MONTHS,
            settings,
            impact.attrition["treated_matched"],
            "the matched controls (untreated people like the care-planned)",
        )
    _write_json(json_out, result.to_dict())
    for r in result.rows:
        out.print(
            f"{r['followup_months']:>3} months: MDE rate ratio {r['mde_rate_ratio']:.3f} "
            f"(simulation {r['sim_mde_rate_ratio']:.3f}); power for {1 + effect:.2f}: "
            f"{r['power_at_effect']:.2f} (simulation {r['sim_power_at_effect']:.2f})",
            highlight=False,
        )


@app.command()
def spc(
    csv: Annotated[Path, typer.Option("--csv", help="CSV file with one row per period")],
    date: Annotated[str, typer.Option(help="Date column")],
    value: Annotated[str, typer.Option(help="Value column")],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    improvement: Annotated[
        str, typer.Option(help="Which direction is better: increase, decrease or neutral")
    ] = "neutral",
    target: Annotated[float | None, typer.Option(help="Target, for the assurance icon")] = None,
) -> None:
    """XmR chart with the Making Data Count rules for any monthly (or other) series."""
    from careval.monitoring.spc import spc_csv

    if improvement not in ("increase", "decrease", "neutral"):
        raise ConfigError(
            f"--improvement must be increase, decrease or neutral; got {improvement!r}"
        )
    result = spc_csv(csv, date, value, improvement, target)
    _write_json(json_out, result)
    out.print(
        f"{csv}: variation {result['variation']}"
        + (f", assurance {result['assurance']}" if result.get("assurance") else ""),
        highlight=False,
    )


from careval.risk.commands import risk_app  # noqa: E402

app.add_typer(risk_app, name="risk", help="Risk stratification and case finding.")

from careval.qualitative.commands import qda as _qda  # noqa: E402
from careval.qualitative.commands import transcripts as _transcripts  # noqa: E402
from careval.surveys.commands import survey as _survey  # noqa: E402

app.command("survey")(_survey)
app.command("transcripts")(_transcripts)
app.command("qda")(_qda)


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _validated(data: Path) -> None:
    """Validate a dataset (exit 2 on any error) and print its warnings."""
    from careval.data.validate import require_valid

    for w in require_valid(data):
        err.print(f"warning: {w.line()}", highlight=False)


def _check_json(path: Path) -> None:
    """Refuse a ``--json`` path that cannot be written, before any work is done."""
    if path.is_dir():
        raise ConfigError(f"--json {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise ConfigError(f"--json {path}: the directory {path.parent} does not exist")


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside ``path`` and move it into place."""
    import json

    from careval.files import write_atomic

    _check_json(path)
    text = json.dumps(payload, indent=2, default=_plain) + "\n"
    write_atomic(path, text.encode("utf-8"))


def _plain(v: object) -> object:
    if hasattr(v, "item"):
        return v.item()  # type: ignore[no-any-return]
    if hasattr(v, "isoformat"):
        return v.isoformat()  # type: ignore[no-any-return]
    return str(v)


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} must be a date as YYYY-MM-DD; got {text!r}") from None


def main(argv: list[str] | None = None) -> Any:
    """Entry point: known problems become one message and exit code 2, never a traceback."""
    try:
        return app(args=argv, standalone_mode=False)
    except CarevalError as exc:
        err.print(f"careval: error: {exc}", highlight=False, markup=False)
        sys.exit(2)
    except OSError as exc:
        err.print(
            f"careval: error: {exc.strerror or exc}: {exc.filename or ''}",
            highlight=False,
            markup=False,
        )
        sys.exit(2)
    except typer.Abort:
        err.print("careval: aborted")
        sys.exit(130)
    except Exception as exc:
        # Usage errors of the (vendored) click: they show themselves and carry an exit code.
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(2)
        if type(exc).__name__ == "Exit" and isinstance(code, int):
            sys.exit(code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
