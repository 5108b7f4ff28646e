"""Synthetic MDG meeting transcripts: ten meetings, utterances per participant type, levels.

The shares, levels and phrases are package data (``surveys_data/transcripts.toml``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from careval.data.schema import MDG_ROLES
from careval.synthetic.settings import moved_date
from careval.synthetic.survey_data import load

_DATA = load("transcripts")
UTTERANCE_SHARES: dict[str, float] = _DATA["utterance_shares"]
LEVEL_SHARES: dict[str, float] = _DATA["level_shares"]
TRANSCRIBED_MEETINGS: int = _DATA["meetings"]
UTTERANCES_PER_MEETING: int = _DATA["utterances_per_meeting"]
_PHRASES: dict[str, list[str]] = _DATA["phrases"]
# The seed observed meetings from November 2011 to April 2012 (its calendar; moved with the
# programme): first day in, first day out, and the first made-up meeting when there are none.
OBSERVED = (dt.date(2011, 11, 1), dt.date(2012, 5, 1))
FIRST_MADE_UP = dt.date(2011, 11, 8)


def write_transcripts(
    folder: Path,
    meetings: pd.DataFrame | None,
    attendance: pd.DataFrame | None,
    rng: np.random.Generator,
    programme_offset: int = 0,
) -> int:
    """Transcripts and ``attendance.csv`` into ``folder``; returns the utterances written.

    ``programme_offset`` moves the observation window from the seed's by that many months.
    """
    meets, att = _pick_meetings(meetings, attendance, rng, programme_offset)
    ids = list(meets["meeting_id"])
    att = att[att["meeting_id"].isin(ids)]
    att.to_csv(folder / "attendance.csv", index=False, columns=["meeting_id", "role", "attendees"])
    total = TRANSCRIBED_MEETINGS * UTTERANCES_PER_MEETING
    counts = pd.DataFrame(0, index=ids, columns=list(UTTERANCE_SHARES))
    for role, share in UTTERANCE_SHARES.items():
        people = (
            att[att["role"] == role]
            .set_index("meeting_id")["attendees"]
            .reindex(ids, fill_value=0)
            .to_numpy(float)
        )
        target = int(round(share * total))
        if people.sum() == 0:
            continue
        counts[role] = _split(target, people)
    n_written = 0
    for k, m in enumerate(meets.itertuples()):
        seq = _order(rng, counts.loc[m.meeting_id], int(m.cases_discussed))
        lines = []
        for role in seq:
            level = (
                ""
                if role == "chair"
                else rng.choice(list(LEVEL_SHARES), p=list(LEVEL_SHARES.values()))
            )
            pool = _PHRASES["procedural" if role == "chair" else level]
            k_phr = 1 + int(
                rng.random() < (0.6 if role in ("presenting_gp", "consultant") else 0.25)
            )
            text = "; ".join(pool[int(i)] for i in rng.choice(len(pool), size=k_phr)) + "."
            lines.append((role, level, text[0].upper() + text[1:]))
        n_written += len(lines)
        if k >= TRANSCRIBED_MEETINGS - 2:
            pd.DataFrame(lines, columns=["role", "level", "text"]).to_csv(
                folder / f"{m.meeting_id}.csv", index=False
            )
            continue
        head = [
            f"# meeting: {m.meeting_id}",
            f"# mdg: {m.mdg}",
            f"# date: {m.meeting_date}",
            "# transcribed MDG case discussion (synthetic)",
        ]
        body = [
            f"{role.upper()}{' [' + level + ']' if level else ''}: {text}"
            for role, level, text in lines
        ]
        (folder / f"{m.meeting_id}.txt").write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return n_written


def _split(target: int, weights: np.ndarray) -> np.ndarray:
    """``target`` split in proportion to ``weights`` (largest remainders)."""
    raw = target * weights / weights.sum()
    out = np.floor(raw).astype(int)
    out[np.argsort(-(raw - out), kind="stable")[: target - out.sum()]] += 1
    return out


def _order(rng: np.random.Generator, counts: pd.Series, cases: int) -> list[str]:
    """A speaking order: the chair opens each case, the rest shuffled within cases."""
    others = [r for r in counts.index if r != "chair" for _ in range(int(counts[r]))]
    others = list(rng.permutation(np.array(others, dtype=object)))
    chair = int(counts.get("chair", 0))
    blocks = max(1, min(cases, chair or 1))
    seq: list[str] = []
    bounds = np.linspace(0, len(others), blocks + 1).astype(int)
    chairs = _split(chair, np.ones(blocks)) if chair else np.zeros(blocks, int)
    for b in range(blocks):
        seq.extend(["chair"] * int(chairs[b]))
        seq.extend(others[bounds[b] : bounds[b + 1]])
    return seq


def _pick_meetings(
    meetings: pd.DataFrame | None,
    attendance: pd.DataFrame | None,
    rng: np.random.Generator,
    programme_offset: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten meetings observed in the seed's window (moved), every role attending one."""
    if meetings is None or attendance is None or meetings.empty:
        ids = [f"M9{i:05d}" for i in range(1, TRANSCRIBED_MEETINGS + 1)]
        start = moved_date(FIRST_MADE_UP, programme_offset)
        meetings = pd.DataFrame(
            {
                "meeting_id": ids,
                "mdg": [f"MDG{i % 9 + 1:02d}" for i in range(len(ids))],
                "meeting_date": [start + dt.timedelta(days=14 * i) for i in range(len(ids))],
                "cases_discussed": rng.integers(5, 10, len(ids)),
            }
        )
        mean = _DATA["default_attendance"]
        attendance = pd.DataFrame(
            [(i, r, mean[r]) for i in ids for r in MDG_ROLES],
            columns=["meeting_id", "role", "attendees"],
        )
    dates = pd.to_datetime(meetings["meeting_date"])
    lo, hi = (pd.Timestamp(moved_date(d, programme_offset)) for d in OBSERVED)
    window = meetings[(dates >= lo) & (dates < hi)]
    if len(window) < TRANSCRIBED_MEETINGS:
        window = meetings
    order = list(rng.permutation(window["meeting_id"].to_numpy()))
    att = attendance[attendance["attendees"] > 0]
    roles_of = att.groupby("meeting_id")["role"].agg(set).to_dict()
    chosen: list[str] = []
    covered: set[str] = set()
    for mid in order:  # greedy: first meetings that add a role nobody chosen has
        if len(chosen) >= TRANSCRIBED_MEETINGS:
            break
        if roles_of.get(mid, set()) - covered:
            chosen.append(mid)
            covered |= roles_of.get(mid, set())
    for mid in order:
        if len(chosen) >= TRANSCRIBED_MEETINGS:
            break
        if mid not in chosen:
            chosen.append(mid)
    picked = window.set_index("meeting_id").loc[chosen].reset_index()
    picked = picked.sort_values(["meeting_date", "meeting_id"]).reset_index(drop=True)
    return picked, attendance[attendance["meeting_id"].isin(chosen)].copy()
