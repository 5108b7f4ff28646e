"""``careval import csv DIR --out DATASET``: the canonical tables as CSV files, made a dataset.

Kept light at import (``careval.cli`` imports this module when it starts): the adapter is
imported inside the command.

Registered as ``csv`` on the ``import`` group of :mod:`careval.cli.imports` by
:mod:`careval.cli.app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import err, out, parse_date


def csv_command(
    src: Annotated[
        Path,
        typer.Argument(
            help="Directory holding one file per table, named after it (persons.csv, "
            "practices.csv, ...; CSV or Parquet; names in any case)"
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to create")],
    extract_date: Annotated[
        str | None,
        typer.Option(
            "--extract-date",
            help="Day the extract was taken, YYYY-MM-DD, written to dataset.json: no date may "
            "be later (default: none, and validation uses today)",
        ),
    ] = None,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Flag the dataset synthetic (disclosure control off): only for data that "
            "describe no real person",
        ),
    ] = False,
    encoding: Annotated[
        str,
        typer.Option(help="Text encoding of the CSV files (utf-8, utf-16 or latin-1)"),
    ] = "utf-8",
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace a dataset careval made there earlier (never anyone else's folder)"
        ),
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Key file (careval keygen): person_id in every table becomes its keyed token "
            "(NHS numbers, Modulus 11 checked: any invalid one refuses the import); the key is "
            "never written, its fingerprint goes in dataset.json",
        ),
    ] = None,
    any_id: Annotated[
        bool,
        typer.Option(
            "--any-id",
            help="With --key-file: person_id is not an NHS number; hash each value as written",
        ),
    ] = False,
) -> None:
    """Convert the canonical tables, as CSV or Parquet files, to a validated dataset.

    Dates may be ISO, dd/mm/yyyy or yyyymmdd; true/false as true/false, 1/0, yes/no or y/n;
    an empty field is a missing value. surveys/ and qualitative/ are copied unchanged. The
    import fails whole, writing nothing, on a value that does not convert, a missing column
    or table, or a validation error (see docs/import-csv.md).
    """
    from careval.data.adapters.csv import import_csv

    date = None if extract_date is None else parse_date(extract_date, "--extract-date")
    done = import_csv(
        src,
        out_dir,
        extract_date=date,
        synthetic=synthetic,
        encoding=encoding,
        overwrite=overwrite,
        key_file=key_file,
        any_id=any_id,
    )
    for w in done.warnings:
        err.print(f"warning: {w.line()}", highlight=False, markup=False)
    summary = done.report.summary().splitlines()  # the warnings are printed above
    lines = [ln for ln in summary if not ln.startswith("validation warning: ")]
    out.print("\n".join(lines), highlight=False, markup=False)
    out.print(f"wrote {done.path} (valid)", highlight=False, markup=False)
