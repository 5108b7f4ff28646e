"""The ``careval`` application: every command group registered on one Typer app, and ``main``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from careval.cli import (
    data,
    design,
    follow,
    import_csv,
    import_omop,
    pseudonymise,
    qualitative,
    risk,
    run,
    serve,
    spc,
    surveys,
    tables,
)
from careval.cli.common import err
from careval.cli.imports import import_app
from careval.errors import SHOW_VALUES, CarevalError, cut

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evaluate integrated health and social care programmes.",
)


@app.callback()
def options(
    show_examples: Annotated[
        bool,
        typer.Option(
            "--show-examples",
            help="Messages about bad input quote the values of an offending row (ids, dates, "
            "codes, answers, a transcript's words) even for data not flagged synthetic; "
            "without it they name the file, row number and column only.",
        ),
    ] = False,
) -> None:
    """Evaluate integrated health and social care programmes."""
    SHOW_VALUES.set(show_examples)  # for this invocation: every message reads it


app.command()(data.synth)
app.command()(data.validate)
app.command()(run.run)
app.command()(run.init)
app.command()(run.demo)
app.command("match")(tables.match_cmd)
app.command("did")(tables.did_cmd)
app.command()(design.design)
app.command()(follow.follow)
app.command()(serve.serve)
app.command("export")(serve.export)
app.command()(spc.spc)
app.add_typer(risk.risk_app, name="risk", help="Risk stratification and case finding.")
app.command("survey")(surveys.survey)
app.command("transcripts")(qualitative.transcripts)
app.command("qda")(qualitative.qda)
app.command()(pseudonymise.pseudonymise)
app.command()(pseudonymise.keygen)
import_app.command("omop")(import_omop.omop)
import_app.command("csv")(import_csv.csv_command)
app.add_typer(import_app, name="import", help="Import an extract into a careval dataset.")


def main(argv: list[str] | None = None) -> Any:
    """Entry point: known problems become one message and exit code 2, never a traceback."""
    try:
        return app(args=argv, standalone_mode=False)
    except CarevalError as exc:
        err.print(f"careval: error: {cut(str(exc))}", highlight=False, markup=False)
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
