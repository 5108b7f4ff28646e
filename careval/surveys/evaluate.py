"""Surveys of a dataset: ``evaluate_surveys(dataset_dir)`` and the ``surveys`` results block.

A dataset directory holds its surveys in ``surveys/``: one TOML definition per survey (see
:mod:`careval.surveys.definition`), each naming its responses file beside it. Every path is
resolved inside the dataset directory: a definition whose data file lies outside it (``../``, an
absolute path elsewhere, a symbolic link pointing out) is refused, naming the definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from careval.disclosure import Note
from careval.errors import ConfigError
from careval.qualitative.coding import TEXT_COLUMNS
from careval.surveys.analysis import analyse
from careval.surveys.common import notes_text, require_inside
from careval.surveys.definition import load_definition
from careval.surveys.result import SurveyResult

SURVEYS_DIR = "surveys"
METHOD = (
    "Share agreeing = agreeing answers / substantive answers ('don't know' and missing apart); "
    "Wilson 95% intervals (Kish effective n with weights; finite population correction when a "
    "population is given); groups compared by Pearson chi-square when all expected counts >= 5, "
    "else Fisher's exact (2x2) or Fisher-Freeman-Halton by Monte Carlo"
)


@dataclass
class SurveysResult:
    """All surveys of an evaluation, in the order of their definition files.

    ``disclosure_control`` is set only by :func:`careval.report.publish.surveys.publish_surveys`
    on the published copy (its surveys' counts protected, shares withheld or recomputed).
    ``inputs`` are the files read (each definition and its data file), for provenance.
    """

    surveys: list[SurveyResult]
    warnings: list[str] = field(default_factory=list)
    disclosure_control: bool = False
    inputs: list[Path] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """Every item of every survey, one row each, with a ``survey`` column first."""
        parts = [s.items.assign(survey=s.name) for s in self.surveys]
        if not parts:
            return pd.DataFrame()
        out = pd.concat(parts, ignore_index=True)
        return out[["survey", *[c for c in out.columns if c != "survey"]]]

    def summary(self) -> str:
        """Plain-text summary of every survey."""
        return "\n\n".join(s.summary() for s in self.surveys)

    def open_text(self) -> pd.DataFrame:
        """Open-text answers as uncoded segments for the qualitative layer.

        Columns ``segment_id``, ``document`` (survey/question), ``case`` (respondent),
        ``group``, ``coder`` and ``code`` (blank: not yet coded), ``text``: the coded-segments
        CSV that :func:`careval.qualitative.coding.read_segments_csv` and ``careval qda`` read.
        """
        rows = []
        for s in self.surveys:
            if s.open_text is None:
                continue
            for r in s.open_text.itertuples():
                rows.append(
                    {
                        "segment_id": f"{s.name}-{r.question}-{r.respondent}",
                        "document": f"{s.name}/{r.question}",
                        "case": r.respondent,
                        "group": r.group,
                        "coder": "",
                        "code": "",
                        "text": r.text,
                    }
                )
        return pd.DataFrame(rows, columns=list(TEXT_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """The ``surveys`` block of results.json.

        On the published copy (:func:`careval.report.publish.surveys.publish_surveys`) counts 1-7
        are "*", others rounded to 5, shares from fewer than 8 people withheld (None), and the
        open-text answers withheld (only their number is given).
        """
        return {
            "method": METHOD,
            "disclosure_control": self.disclosure_control,
            "surveys": {s.name: s.to_dict() for s in self.surveys},
            "warnings": notes_text(self.warnings),
        }


def analyse_definitions(paths: list[Path], root: Path | None = None) -> SurveysResult:
    """Read and summarise every survey definition in ``paths`` (TOML files).

    ``root`` is the folder every data file must lie in (default: each definition's own
    folder; see :func:`~careval.surveys.definition.load_definition`).
    """
    results = []
    inputs: list[Path] = []
    for p in paths:
        defn = load_definition(p, root)
        inputs += [Path(p).resolve(), defn.data]
        results.append(analyse(defn))
    names = [r.name for r in results]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"survey names must be distinct; repeated: {', '.join(dup)}")
    return SurveysResult(
        results,
        [
            w.prefixed(f"{r.name}: ") if isinstance(w, Note) else f"{r.name}: {w}"
            for r in results
            for w in r.warnings
        ],
        inputs=inputs,
    )


def definition_files(path: Path) -> list[Path]:
    """A TOML file itself, or the ``*.toml`` files of a directory (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise ConfigError(f"{path}: no survey definitions (*.toml) in this directory")
        return files
    if not path.exists():
        raise ConfigError(f"{path}: survey definition not found")
    return [path]


def evaluate_surveys(dataset_dir: Path) -> SurveysResult | None:
    """Summarise the surveys of a dataset directory (``surveys/*.toml``); None when it has none."""
    folder = Path(dataset_dir) / SURVEYS_DIR
    if not folder.is_dir() or not any(folder.glob("*.toml")):
        return None
    files = definition_files(folder)
    for f in files:
        require_inside(f, dataset_dir, "survey definition")
    return analyse_definitions(files, root=Path(dataset_dir))
