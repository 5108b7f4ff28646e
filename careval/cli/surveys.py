"""``careval survey``: response rates, item summaries and group comparisons from a definition.

Kept light at import (``careval.cli`` imports this module when it starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import out, write_json


def check_outputs(paths: dict[str, Path | None]) -> None:
    """Refuse an output path (option -> path) that cannot be written, before any work is done,
    so that a bad second output never follows a first one already written."""
    from careval.errors import ConfigError

    for option, path in paths.items():
        if path is None:
            continue
        if path.is_dir():
            raise ConfigError(f"{option} {path} is a directory; give a file name")
        if not path.parent.is_dir():
            raise ConfigError(f"{option} {path}: the directory {path.parent} does not exist")


def survey(
    definitions: Annotated[
        list[Path],
        typer.Argument(help="Survey definition TOML files, or directories of them"),
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    open_text: Annotated[
        Path | None,
        typer.Option(help="Also write the open-text answers as segments CSV (for careval qda)"),
    ] = None,
    protect: Annotated[
        bool, typer.Option("--protect", help="Disclosure control: suppress and round counts")
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            help="The folder every data file must lie in (default: each definition's own folder)"
        ),
    ] = None,
) -> None:
    """Summarise surveys: response rates, share agreeing with Wilson CIs, group tests."""
    from careval.disclosure import DisclosureSettings
    from careval.files import write_atomic
    from careval.report.publish.surveys import publish_surveys
    from careval.report.workbook import csv_text
    from careval.surveys.evaluate import analyse_definitions, definition_files

    check_outputs({"--json": json_out, "--open-text": open_text})
    files = [f for d in definitions for f in definition_files(d)]
    result = analyse_definitions(files, root)
    payload = (publish_surveys(result, DisclosureSettings()) if protect else result).to_dict()
    csv = csv_text(result.open_text()).encode("utf-8") if open_text else None
    write_json(json_out, payload)
    if open_text is not None and csv is not None:
        write_atomic(open_text, csv)
    for s in result.surveys:
        overall = s.response_rates.iloc[-1]
        rate = overall["response_rate"]
        text = f"{s.name}: {s.n_responses:,} responses"
        if rate is not None and rate == rate:
            text += f" ({100 * rate:.1f}% of {int(overall['invited']):,} invited)"
        out.print(f"{text}, {len(s.items)} items", highlight=False)
