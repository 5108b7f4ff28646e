"""The follow state folder: what ``careval follow`` keeps in it, and how its history reads.

``careval follow --state DIR`` (:mod:`careval.cli.follow`) writes the folder: ``follow.json``
(what its looks were made with: :func:`made_with`), ``history.jsonl`` (one look a line,
appended; :func:`parse_history` reads it) and ``report.html``. Kept apart from the command so
that another reader of the state (the main report, next) takes the same names and rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careval.errors import ConfigError

if TYPE_CHECKING:  # the CLI imports this module at start: the analysis modules load when used
    from careval.impact.follow import FollowSettings
    from careval.impact.settings import ImpactSettings

HISTORY, SETTINGS, REPORT = "history.jsonl", "follow.json", "report.html"
ENTRIES = (HISTORY, SETTINGS, REPORT)


def follow_impact(impact: ImpactSettings) -> ImpactSettings:
    """The matched study a look runs: the run's, without negative controls or sensitivity
    analyses (each look fits the primary outcome alone)."""
    return dataclasses.replace(impact, negative_controls=(), sensitivity=False)


def made_with(
    data: Path, impact: ImpactSettings, fs: FollowSettings, train_date: dt.date | None
) -> dict[str, Any]:
    """``follow.json``: the dataset, the looks' matched study and boundary, and the risk
    model's training date (None: the looks match without the risk score)."""
    doc = {
        "dataset": str(data.resolve()),
        "impact": follow_impact(impact).to_dict(),
        "follow": fs.to_dict(),
        "risk_model_trained_on": train_date.isoformat() if train_date else None,
    }
    return json.loads(json.dumps(doc, default=str))  # as it reads back from the file


def parse_history(text: str, path: Path) -> tuple[list[dict[str, Any]], str]:
    """The looks of a ``history.jsonl`` text, and the text without a last line cut short (a
    look whose append a kill interrupted never was one). A damaged line is an error."""
    lines = text.split("\n")
    if lines[-1]:
        text = "\n".join(lines[:-1]) + ("\n" if len(lines) > 1 else "")
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ConfigError(f"{path}: line {n} is not JSON; the history is damaged") from None
    return rows, text
