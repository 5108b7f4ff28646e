"""``careval transcripts`` and ``careval qda``: MDG utterance analysis and thematic coding.

Kept light at import (``careval.cli`` imports this module when it starts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from careval.cli.common import names, out, write_json
from careval.cli.surveys import check_outputs
from careval.disclosure import DisclosureSettings


def transcripts(
    paths: Annotated[
        list[Path], typer.Argument(help="Transcript files (.txt, .csv) or directories of them")
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    attendance: Annotated[
        Path | None,
        typer.Option(
            help="CSV of meeting_id, role, attendees (default: a directory's attendance.csv)"
        ),
    ] = None,
    protect: Annotated[
        bool, typer.Option("--protect", help="Disclosure control: suppress and round counts")
    ] = False,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec", help="Study specification whose [qualitative] roles are declared too"
        ),
    ] = None,
) -> None:
    """Utterances and words by participant type, chi-square tests, turn matrix, levels.

    Every speaker's role must be declared: the built-in MDG roles, and those of ``--spec``.
    """
    from careval.qualitative.roles import TranscriptSettings
    from careval.qualitative.transcripts import transcripts_from_paths
    from careval.report.publish.qualitative import publish_transcripts

    check_outputs({"--json": json_out})
    settings = TranscriptSettings()
    if spec is not None:
        from careval.spec import load
        from careval.spec.resolve import transcript_settings

        settings = transcript_settings(load(spec).spec)
    result = transcripts_from_paths(paths, attendance, roles=settings.roles)
    published = publish_transcripts(result, DisclosureSettings()) if protect else result
    write_json(json_out, published.to_dict())
    top = result.overall.iloc[0]
    out.print(
        f"{len(result.meetings)} meetings, {int(result.overall['utterances'].sum()):,} "
        f"utterances; most from {top['role']} ({100 * top['share_utterances']:.1f}%)",
        highlight=False,
    )


def qda(
    segments: Annotated[
        Path, typer.Option(help="Coded segments: CSV, or a REFI-QDA project (.qdpx, .qde)")
    ],
    json_out: Annotated[Path, typer.Option("--json", help="Where to write the results")],
    codebook: Annotated[
        Path | None, typer.Option(help="Codebook: CSV (code, parent, description) or .qdc")
    ] = None,
    by: Annotated[str, typer.Option(help="Framework matrix columns: group or case")] = "group",
    coder: Annotated[
        str | None, typer.Option(help="Whose codings to count (default: first coder)")
    ] = None,
    coders: Annotated[
        str | None, typer.Option(help="Two coders to compare, comma-separated")
    ] = None,
    group_variable: Annotated[
        str, typer.Option(help="REFI-QDA case or source variable holding the group")
    ] = "group",
    export_qdpx: Annotated[Path | None, typer.Option(help="Write a REFI-QDA project")] = None,
    export_qdc: Annotated[Path | None, typer.Option(help="Write a REFI-QDA codebook")] = None,
    export_csv: Annotated[Path | None, typer.Option(help="Write the coded segments as CSV")] = None,
    export_codebook_csv: Annotated[
        Path | None, typer.Option(help="Write the codebook as CSV")
    ] = None,
    protect: Annotated[
        bool, typer.Option("--protect", help="Disclosure control: suppress and round counts")
    ] = False,
) -> None:
    """Code frequencies by group, framework matrix, co-occurrence and inter-coder agreement."""
    from careval.errors import ConfigError
    from careval.files import write_atomic
    from careval.qualitative import refi
    from careval.qualitative.coding import analyse_coding
    from careval.qualitative.evaluate import read_coding_inputs
    from careval.report.publish.qualitative import publish_coding
    from careval.report.workbook import csv_text

    outputs = {"--json": json_out, "--export-qdpx": export_qdpx, "--export-qdc": export_qdc}
    check_outputs(
        outputs | {"--export-csv": export_csv, "--export-codebook-csv": export_codebook_csv}
    )
    pair = None
    if coders is not None:
        two = names(coders)
        if len(two) != 2:
            raise ConfigError(f"--coders must name two coders, e.g. ann,bob; got {coders!r}")
        pair = (two[0], two[1])
    seg, book, warnings = read_coding_inputs(segments, codebook, group_variable)
    result = analyse_coding(
        seg, book, by=by, primary_coder=coder, coders=pair, source=str(segments)
    )
    result.warnings.extend(warnings)
    exports: list[tuple[Path, bytes]] = []  # built (and validated) before anything is written
    if export_qdpx is not None:
        exports.append(
            (export_qdpx, refi.project_archive(result.codebook, result.segments, export_qdpx.stem))
        )
    if export_qdc is not None:
        exports.append((export_qdc, refi.codebook_xml(result.codebook)))
    if export_csv is not None:
        exports.append((export_csv, csv_text(result.segments).encode("utf-8")))
    if export_codebook_csv is not None:
        exports.append((export_codebook_csv, csv_text(result.codebook.to_frame()).encode("utf-8")))
    published = publish_coding(result, DisclosureSettings()) if protect else result
    write_json(json_out, published.to_dict())
    for path, data in exports:
        write_atomic(path, data)
    text = (
        f"{result.segments['segment_id'].nunique():,} segments, {len(result.codebook.codes)} codes"
    )
    if result.agreement is not None:
        o = result.agreement[result.agreement["code"] == "(overall)"].iloc[0]
        if o["kappa"] is not None and o["alpha"] is not None:
            text += f"; agreement kappa {o['kappa']:.3f}, alpha {o['alpha']:.3f}"
    out.print(text, highlight=False)
