"""Qualitative inputs of a dataset: ``evaluate_qualitative(dataset_dir)`` and its results block.

A dataset directory holds them in ``qualitative/``:

- ``transcripts/``: one MDG meeting transcript per file (``.txt`` or ``.csv``), and optionally
  ``attendance.csv`` (``meeting_id``, ``role``, ``attendees``);
- coding: ``project.qdpx`` (REFI-QDA), or ``coded_segments.csv`` with ``codebook.qdc`` or
  ``codebook.csv`` (optional: without one the codes used form a flat codebook).

Every file is read from inside the dataset directory (a symbolic link pointing out of it is
refused), transcripts' roles must be declared (:class:`~careval.qualitative.roles.
TranscriptSettings`), and the files read are listed in the result's ``inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from careval.qualitative.coding import (
    Codebook,
    CodingResult,
    analyse_coding,
    read_codebook_csv,
    read_segments_csv,
)
from careval.qualitative.roles import TranscriptSettings
from careval.qualitative.transcripts import (
    ATTENDANCE_FILE,
    TRANSCRIPT_SUFFIXES,
    TranscriptResult,
    transcripts_from_paths,
)
from careval.surveys.common import notes_text, require_inside

QUALITATIVE_DIR = "qualitative"


@dataclass
class QualitativeResult:
    """Transcript analysis and thematic coding (either may be absent).

    ``disclosure_control`` is set only by
    :func:`careval.report.publish.qualitative.publish_qualitative` on the published copy.
    ``inputs`` are the files read, for provenance.
    """

    transcripts: TranscriptResult | None = None
    coding: CodingResult | None = None
    warnings: list[str] = field(default_factory=list)
    disclosure_control: bool = False
    inputs: list[Path] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """The transcripts' overall table (one row per role), else the code frequencies."""
        if self.transcripts is not None:
            return self.transcripts.tidy()
        if self.coding is not None:
            return self.coding.tidy()
        return pd.DataFrame()

    def summary(self) -> str:
        """Plain-text summary of both parts."""
        parts = [p.summary() for p in (self.transcripts, self.coding) if p is not None]
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The ``qualitative`` block of results.json (see the parts' ``to_dict``)."""
        return {
            "disclosure_control": self.disclosure_control,
            "transcripts": self.transcripts.to_dict() if self.transcripts else None,
            "coding": self.coding.to_dict() if self.coding else None,
            "warnings": notes_text(self.warnings),
        }


def read_coding_inputs(
    segments: Path | None, codebook: Path | None, group_variable: str = "group"
) -> tuple[pd.DataFrame, Codebook | None, list[str]]:
    """Segments (CSV or REFI-QDA project) and a codebook (CSV, .qdc or project) if given."""
    from careval.errors import ConfigError
    from careval.qualitative import refi

    warnings: list[str] = []
    book: Codebook | None = None
    seg = pd.DataFrame()
    if segments is not None:
        suffix = segments.suffix.lower()
        if suffix in (".qdpx", ".qde"):
            book, seg, warnings = refi.read_project(segments, group_variable)
        elif suffix in (".csv", ".xlsx"):
            seg = read_segments_csv(segments)
        else:
            raise ConfigError(
                f"{segments}: coded segments must be a CSV or a REFI-QDA project (.qdpx, .qde)"
            )
    if codebook is not None:
        if codebook.suffix.lower() in (".qdc", ".qdpx", ".qde"):
            book = refi.read_codebook(codebook)
        else:
            book = read_codebook_csv(codebook)
    return seg, book, warnings


def evaluate_qualitative(
    dataset_dir: Path, settings: TranscriptSettings | None = None
) -> QualitativeResult | None:
    """Analyse ``qualitative/`` of a dataset directory; None when it has no such inputs.

    ``settings`` give the declared transcript roles (default: the built-in ones).
    """
    settings = settings or TranscriptSettings()
    root = Path(dataset_dir)
    folder = root / QUALITATIVE_DIR
    if not folder.is_dir():
        return None
    result = QualitativeResult()
    tdir = folder / "transcripts"
    if tdir.is_dir() and any(
        f.suffix.lower() in TRANSCRIPT_SUFFIXES and f.name != ATTENDANCE_FILE
        for f in tdir.iterdir()
    ):
        result.transcripts = transcripts_from_paths([tdir], roles=settings.roles, root=root)
        result.inputs += result.transcripts.inputs
    project = folder / "project.qdpx"
    seg_path = project if project.is_file() else folder / "coded_segments.csv"
    book_path = next(
        (folder / n for n in ("codebook.qdc", "codebook.csv") if (folder / n).is_file()), None
    )
    if seg_path.is_file():
        book_used = book_path if seg_path.suffix == ".csv" else None
        result.inputs += [
            require_inside(p, root, "coding input") for p in (seg_path, book_used) if p is not None
        ]
        seg, book, warnings = read_coding_inputs(seg_path, book_used)
        result.coding = analyse_coding(seg, book, source=str(seg_path))
        result.warnings.extend(warnings)
    if result.transcripts is None and result.coding is None:
        return None
    return result
