"""The follow state folder: what ``careval follow`` keeps, and reading it back for a run.

``careval follow --state DIR`` (:mod:`careval.cli.follow`) writes the folder: ``follow.json``
(what its looks were made with: :func:`made_with`), ``history.jsonl`` (one look a line,
appended) and ``report.html``. ``careval run --follow DIR`` reads it through
:func:`read_follow` and writes nothing into it: the run's report then carries the looks as its
real-time evaluation section, once the folder is shown to be a follow state of the same
dataset and the same matched study (:func:`check_follow_state`); otherwise the run is refused
before any work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from careval.errors import ConfigError

if TYPE_CHECKING:  # the CLI imports this module at start: the analysis modules load when used
    import pandas as pd

    from careval.data.access import Dataset
    from careval.impact.follow import FollowSettings
    from careval.impact.settings import ImpactSettings

HISTORY, SETTINGS, REPORT = "history.jsonl", "follow.json", "report.html"
SPENDING_NAMES = {"obrien_fleming": "O'Brien-Fleming type", "pocock": "Pocock type"}
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


def check_follow_state(
    state: Path, data: Path, impact: ImpactSettings, train_date: dt.date
) -> FollowSettings:
    """The boundary settings of a follow state that a run on ``data`` with ``impact`` may
    carry; a :class:`ConfigError` naming what is wrong otherwise. Reads only."""
    from careval.folders import read_marker
    from careval.impact.follow import FollowSettings

    what = f"--follow {state}"
    if state.is_symlink() or not state.is_dir():
        raise ConfigError(f"{what}: not a folder; give the --state folder of careval follow")
    marker = read_marker(state)
    if marker is None or marker["kind"] != "follow":
        kind = f"a careval {marker['kind']} folder" if marker else "not written by careval follow"
        raise ConfigError(f"{what} is {kind}; give the --state folder of careval follow")
    settings = state / SETTINGS
    if not settings.is_file():
        raise ConfigError(f"{what} holds no looks yet ({SETTINGS} is missing): run careval follow")
    try:
        recorded = json.loads(settings.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"{what}: {SETTINGS} cannot be read; the state is damaged") from None
    if not isinstance(recorded, dict) or not {"dataset", "impact", "follow"} <= set(recorded):
        raise ConfigError(f"{what}: {SETTINGS} is not careval follow's; the state is damaged")
    if recorded["dataset"] != str(data.resolve()):
        raise ConfigError(
            f"{what} followed the dataset {recorded['dataset']}, not --data {data.resolve()}; "
            "a run carries only the looks of its own dataset"
        )
    mine = follow_impact(impact).to_dict()
    mine = json.loads(json.dumps(mine, default=str))
    differ = sorted(
        k for k in set(mine) | set(recorded["impact"]) if mine.get(k) != recorded["impact"].get(k)
    )
    if differ:
        raise ConfigError(
            f"{what}: its looks were made with other matched-study settings than this run's "
            f"(they differ in {', '.join(differ)}); follow the run's spec in a new state folder"
        )
    fs = FollowSettings.from_dict(recorded["follow"], f"{SETTINGS} follow")
    trained = recorded.get("risk_model_trained_on")
    if trained is not None and trained != train_date.isoformat():
        raise ConfigError(
            f"{what}: its looks matched with a risk model trained at {trained}, this run's at "
            f"{train_date.isoformat()}; follow the run's spec in a new state folder"
        )
    return fs


@dataclass(frozen=True)
class FollowResult:
    """The real-time evaluation as a run publishes it: the recorded looks, each assessed
    against its boundary, the first crossing, and the months the data would allow a look at
    that the history does not yet hold."""

    settings: FollowSettings
    looks: list[dict[str, Any]]
    detected: dict[str, Any] | None
    risk_model: bool
    pending: list[str]

    def tidy(self) -> pd.DataFrame:
        """One row per recorded look, in month order: the estimate, its interval, the
        information fraction, z, the boundary and whether the look crossed it (empty values
        where a look has no estimate)."""
        import pandas as pd

        cols = ["month", "n_treated", "n_controls", "estimate", "se", "rate_ratio"]
        cols += ["rate_ratio_ci_low", "rate_ratio_ci_high", "ci_low", "ci_high", "fraction"]
        cols += ["z", "critical", "bound_low", "bound_high", "spent", "crossed", "final"]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.looks], columns=cols)

    def summary(self) -> str:
        """A few lines: the looks recorded, the first crossing, the looks still to take."""
        est = [r for r in self.looks if r.get("se") is not None]
        n, st = len(self.looks), self.settings
        lines = [
            f"Real-time evaluation: {n} look{'' if n == 1 else 's'} recorded ({len(est)} with "
            f"an estimate), {SPENDING_NAMES[st.spending]} spending of alpha {st.alpha}"
        ]
        if est:
            last = est[-1]
            lines.append(
                f"Latest look {last['month']}: z {last['z']:.2f}, information fraction "
                f"{last['fraction']:.2f}"
            )
        d = self.detected
        lines.append(
            f"Boundary first crossed at the look of {d['month']} ({d['direction']})"
            if d
            else "No look has crossed its boundary"
        )
        if self.pending:
            lines.append(f"Months the data allow a look at, not taken: {', '.join(self.pending)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``follow`` block of ``results.json``."""
        return {
            "settings": {
                **self.settings.to_dict(),
                "planned_information": self.settings.planned_information,
            },
            "risk_model": self.risk_model,
            "looks": self.looks,
            "detected": self.detected,
            "pending": self.pending,
        }


def read_follow(
    state: Path,
    data: Path,
    impact: ImpactSettings,
    train_date: dt.date,
    ds: Dataset,
    end: dt.date | None = None,
) -> FollowResult:
    """The follow state's looks for a run on ``ds`` (checked by :func:`check_follow_state`),
    assessed as ``careval follow`` assesses them; nothing in ``state`` is written."""
    from careval.impact.follow import assess, detection, look_months

    fs = check_follow_state(state, data, impact, train_date)
    path = state / HISTORY
    rows = parse_history(path.read_text("utf-8"), path)[0] if path.is_file() else []
    recorded = json.loads((state / SETTINGS).read_text("utf-8"))
    looks = assess(sorted(rows, key=lambda r: r["month"]), fs)
    seen = {r["month"] for r in rows}
    months = look_months(ds, follow_impact(impact), fs, end)
    pending = [f"{m // 12}-{m % 12 + 1:02d}" for m in months]
    return FollowResult(
        settings=fs,
        looks=looks,
        detected=detection(looks),
        risk_model=recorded.get("risk_model_trained_on") is not None,
        pending=[m for m in pending if m not in seen],
    )
