"""``careval import ...``: extracts an analyst holds (HES, OMOP CDM, CSV) into a careval
dataset. One command per source on the ``import`` sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import out, parse_date

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import an extract (HES, OMOP CDM, CSV tables) into a careval dataset.",
)

_OVERWRITE = typer.Option(
    help="Replace a dataset careval made there earlier (never anyone else's folder)"
)


@import_app.command("hes")
def hes(
    apc: Annotated[
        Path, typer.Option("--apc", help="HES admitted patient care episodes (CSV or Parquet)")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to create")],
    ae: Annotated[Path | None, typer.Option("--ae", help="HES A&E attendances")] = None,
    op: Annotated[Path | None, typer.Option("--op", help="HES outpatient appointments")] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Key from careval keygen: NHS_NUMBER / NEWNHSNO (or HESID) become keyed tokens",
        ),
    ] = None,
    base: Annotated[
        Path | None,
        typer.Option(
            "--base",
            help="A careval dataset (the GP side): persons, registrations, practices and every "
            "non-hospital table come from it; the HES tables replace its hospital tables",
        ),
    ] = None,
    practices: Annotated[
        Path | None,
        typer.Option(
            "--practices",
            help="CSV of practice_code, area (and locality, mdg) for the GPPRAC codes "
            "(without --base)",
        ),
    ] = None,
    imd_lookup: Annotated[
        Path | None,
        typer.Option("--imd-lookup", help="CSV of LSOA11, IMD_DECILE (without --base)"),
    ] = None,
    cips: Annotated[
        bool,
        typer.Option("--cips", help="Join transfers into continuous inpatient spells"),
    ] = False,
    extract_date: Annotated[
        str | None,
        typer.Option(
            "--extract-date",
            help="Day the extract was taken, YYYY-MM-DD (default: the latest date in it)",
        ),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding", help="Text encoding of the CSV files (utf-8, utf-16 or latin-1)"
        ),
    ] = "utf-8",
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Flag the dataset synthetic (a synthetic extract, such as careval synth "
            "--format hes writes; refused with a --base not flagged synthetic). Default: real",
        ),
    ] = False,
    overwrite: Annotated[bool, _OVERWRITE] = False,
) -> None:
    """HES APC (and A&E, outpatient) extracts into a careval dataset; prints the import report."""
    from careval.data.adapters.csv import engine_encoding
    from careval.data.adapters.hes import HesFiles, import_hes

    encoding = engine_encoding(encoding)  # the reader's name for it, or one message
    report = import_hes(
        out_dir,
        HesFiles(apc, ae, op),
        key_file=key_file,
        base=base,
        practices=practices,
        imd_lookup=imd_lookup,
        cips=cips,
        extract_date=None if extract_date is None else parse_date(extract_date, "--extract-date"),
        encoding=encoding,
        synthetic=synthetic,
        overwrite=overwrite,
    )
    out.print(report.summary(), highlight=False, markup=False)
    out.print(f"wrote {out_dir}", highlight=False, markup=False)
