"""``careval import omop``: an OMOP CDM database or directory as a careval dataset.

Registered as ``omop`` on the ``import`` group of :mod:`careval.cli.imports` by
:mod:`careval.cli.app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import err, out, parse_date
from careval.errors import ConfigError


def _concept_set(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise ConfigError(f"--concept-set must be NAME=FILE; got {text!r}")
    return name.strip(), Path(path.strip())


def omop(
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to create")],
    db: Annotated[
        Path | None,
        typer.Option("--db", help="An OMOP CDM DuckDB database (opened read only)"),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="A directory of OMOP tables as CSV or Parquet files (person.csv, ...)"
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="The database schema holding the CDM tables (with --db)"),
    ] = None,
    concept_set: Annotated[
        list[str] | None,
        typer.Option(
            "--concept-set",
            help="NAME=FILE: an ATLAS concept-set JSON or a CSV (concept_id, "
            "include_descendants, exclude), written as the code list codelists/NAME.csv; "
            "repeat for several",
        ),
    ] = None,
    practices: Annotated[
        Path | None,
        typer.Option(
            "--practices",
            help="CSV of practice_code, area (and optionally locality, mdg); other practices "
            "go to area 'unmapped'",
        ),
    ] = None,
    extract_date: Annotated[
        str | None,
        typer.Option(
            "--extract-date",
            help="Day the extract was taken, YYYY-MM-DD (default: today); later events dropped",
        ),
    ] = None,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Flag the dataset synthetic (e.g. OHDSI's Eunomia): disclosure control off. "
            "Never for real patients' data",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace a dataset careval made there earlier (never anyone else's)"),
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Key file (careval keygen): every person_id, as text, becomes its keyed "
            "token; the key is never written, its fingerprint goes in dataset.json",
        ),
    ] = None,
) -> None:
    """Import an OMOP CDM v5.3/v5.4 database (DuckDB) or directory of tables."""
    from careval.data.adapters.omop import import_omop

    date = None if extract_date is None else parse_date(extract_date, "--extract-date")
    sets = [_concept_set(c) for c in concept_set or []]
    report = import_omop(
        out_dir,
        db=db,
        directory=directory,
        schema=schema,
        concept_sets=sets,
        practices=practices,
        extract_date=date,
        synthetic=synthetic,
        overwrite=overwrite,
        key_file=key_file,
    )
    err.print(report.summary(), highlight=False, markup=False)
    out.print(f"wrote {out_dir} ({report.tables.get('persons', 0):,} people)")
