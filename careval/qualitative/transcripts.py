"""MDG meeting transcripts: who speaks, how much, after whom, and at what level.

Input: one file per meeting, each utterance attributed to a participant type (role).

- Plain text (``.txt``): one utterance per line as ``ROLE: words`` or ``ROLE [level]: words``;
  a line starting with whitespace continues the utterance above; ``# key: value`` lines give the
  meeting's ``meeting`` id (default: the file name), ``mdg`` and ``date``; other ``#`` lines and
  blank lines are ignored.
- CSV (``.csv``): columns ``role`` and ``text``, optionally ``level``; one row per utterance in
  the order spoken.

Roles are compared in lower case with spaces and hyphens as underscores (``Presenting GP`` is
``presenting_gp``) and must be declared: the built-in MDG roles (chair, presenting_gp,
non_presenting_gp, consultant, nurse, social_worker, allied_health_professional, mental_health,
other) and any the study spec adds (:mod:`careval.qualitative.roles`); another role is an error
naming the file, the line and the role. ``level`` codes the discussion as ``individual`` (one
patient's care), ``collective`` (a group of patients or the team's practice) or ``system``
(services and how the organisations work together); it may be blank.

An utterance is one line (a unit of meaning as the transcriber marked it); words are runs of
letters, digits and apostrophes. Outputs: utterances and words per role per meeting and overall,
a chi-square goodness-of-fit test of the utterance counts against equal shares across the roles
present and, when attendance is given, against shares in proportion to the people attending in
each role; a who-follows-whom turn matrix; and the share of coded utterances (and words) at each
level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.disclosure import Note
from careval.errors import ConfigError, bad_rows, quoted_line, raise_problems
from careval.qualitative.roles import DEFAULT_ROLES, normalise_role, undeclared_problem
from careval.surveys.common import (
    count_matrix,
    count_text,
    count_value,
    notes_text,
    read_text_table,
    records,
    require_columns,
    require_file,
    require_inside,
    share_value,
)

LEVELS: tuple[str, ...] = ("individual", "collective", "system")
TRANSCRIPT_SUFFIXES = (".txt", ".csv")
_LINE = re.compile(
    r"^(?P<role>[A-Za-z][A-Za-z0-9 _/&-]{0,60}?)\s*(?:\[(?P<level>[^\]]*)\])?\s*:\s*(?P<text>.*)$"
)
_HEADER = re.compile(r"^#\s*(?P<key>meeting|mdg|date)\s*:\s*(?P<value>.+?)\s*$", re.I)
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def word_count(text: str) -> int:
    """Words in ``text``: runs of letters and digits, with inner apostrophes."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class Transcript:
    """One meeting: utterances in order (``role``, ``level``, ``text``, ``words``)."""

    meeting: str
    utterances: pd.DataFrame
    path: Path
    mdg: str = ""
    date: str = ""


def read_transcript(path: str | Path, roles: Iterable[str] = DEFAULT_ROLES) -> Transcript:
    """Read one transcript (``.txt`` or ``.csv``).

    Parameters
    ----------
    path : str or pathlib.Path
    roles : iterable of str
        The declared roles (normalised, see :func:`normalise_role`); default: the built-in ones.

    Raises
    ------
    ConfigError
        If the file is missing, has lines that are not ``ROLE: words``, undeclared roles,
        unknown level codes, or no utterances; every problem is reported at once.
    """
    path = require_file(Path(path), "transcript")
    allowed = tuple(roles)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, allowed)
    if suffix != ".txt":
        raise ConfigError(f"{path}: transcripts must be .txt (ROLE: words lines) or .csv files")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e})") from None
    meta = {"meeting": path.stem, "mdg": "", "date": ""}
    rows: list[dict[str, Any]] = []
    bad: list[int] = []
    bad_level: list[int] = []
    spoken: list[tuple[int, str]] = []  # (line, role as written)
    for k, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            m = _HEADER.match(line.strip())
            if m:
                meta[m.group("key").lower()] = m.group("value")
            continue
        if line[0].isspace():
            if rows:
                rows[-1]["text"] += " " + line.strip()
            else:
                bad.append(k)
            continue
        m = _LINE.match(line)
        if not m:
            bad.append(k)
            continue
        level = (m.group("level") or "").strip().lower()
        if level and level not in LEVELS:
            bad_level.append(k)
        spoken.append((k, m.group("role")))
        rows.append(
            {
                "role": normalise_role(m.group("role")),
                "level": level,
                "text": m.group("text"),
                "line": k,
            }
        )
    problems = []
    if bad:
        problems.append(
            f"{path}: {len(bad):,} line{'s' if len(bad) != 1 else ''} not in the form "
            f"'ROLE: words' (or 'ROLE [level]: words'); e.g. "
            f"{quoted_line(bad[0], lines[bad[0] - 1])}; allowed: a role of letters, digits, "
            "spaces, _ / & -, then a colon; indented lines continue the utterance above; "
            "# comments"
        )
    undeclared = undeclared_problem(path, spoken, allowed, "utterance")
    if undeclared:
        problems.append(undeclared)
    if bad_level:
        problems.append(
            f"{path}: {len(bad_level):,} utterance{'s' if len(bad_level) != 1 else ''} with an "
            f"unknown level code; e.g. {quoted_line(bad_level[0], lines[bad_level[0] - 1])}; "
            f"allowed: {', '.join(LEVELS)} or none"
        )
    if not rows and not problems:
        problems.append(f"{path}: no utterances found; expected lines such as 'CHAIR: Welcome'")
    raise_problems(problems)
    return _transcript(path, meta, rows)


def _read_csv(path: Path, allowed: tuple[str, ...]) -> Transcript:
    df = read_text_table(path)
    require_columns(path, df, ["role", "text"], "a transcript needs role and text")
    problems: list[str] = []
    role = df["role"].str.strip()
    bad_rows(problems, path, df, "role", (role == "").to_numpy(), "is blank", "a participant role")
    spoken = [(i + 2, r) for i, r in enumerate(role) if r]
    undeclared = undeclared_problem(path, spoken, allowed, "utterance")
    if undeclared:
        problems.append(undeclared)
    level = (
        df["level"].str.strip().str.lower() if "level" in df.columns else pd.Series([""] * len(df))
    )
    bad_rows(
        problems,
        path,
        df,
        "level",
        (~level.isin([*LEVELS, ""])).to_numpy(),
        "is not a level code",
        f"{', '.join(LEVELS)} or blank",
    )
    if df.empty:
        problems.append(f"{path}: no utterances (a header but no rows)")
    raise_problems(problems)
    meta = {"meeting": path.stem, "mdg": "", "date": ""}
    for key in ("meeting", "mdg", "date"):
        if key in df.columns and df[key].nunique() == 1:
            meta[key] = str(df[key].iloc[0])
    rows = [
        {"role": normalise_role(r), "level": lv, "text": t, "line": i + 2}
        for i, (r, lv, t) in enumerate(zip(role, level, df["text"], strict=True))
    ]
    return _transcript(path, meta, rows)


def _transcript(path: Path, meta: dict[str, str], rows: list[dict[str, Any]]) -> Transcript:
    frame = pd.DataFrame(rows, columns=["role", "level", "text", "line"])
    frame["words"] = [word_count(t) for t in frame["text"]]
    return Transcript(
        meeting=str(meta["meeting"]),
        utterances=frame,
        path=path,
        mdg=meta["mdg"],
        date=meta["date"],
    )


def transcript_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files given, and the ``.txt``/``.csv`` files of directories given (sorted), attendance
    files (``attendance.csv``) excepted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                f
                for f in sorted(p.iterdir())
                if f.suffix.lower() in TRANSCRIPT_SUFFIXES and f.name != ATTENDANCE_FILE
            )
        else:
            out.append(p)
    if not out:
        raise ConfigError(
            "no transcripts found; give .txt or .csv files, or directories holding them"
        )
    return out


ATTENDANCE_FILE = "attendance.csv"


def read_attendance(path: str | Path, roles: Iterable[str] = DEFAULT_ROLES) -> pd.DataFrame:
    """Attendance per meeting and role: a CSV with ``meeting_id``, ``role``, ``attendees``;
    every role one of ``roles`` (the declared roles)."""
    path = require_file(Path(path), "attendance file")
    df = read_text_table(path)
    require_columns(path, df, ["meeting_id", "role", "attendees"])
    n = pd.to_numeric(df["attendees"].str.strip(), errors="coerce")
    bad = (n.isna() | (n < 0) | (n != n.round())).to_numpy()
    problems: list[str] = []
    bad_rows(problems, path, df, "attendees", bad, "is not a whole number >= 0", "0, 1, 2, ...")
    undeclared = undeclared_problem(
        path, [(i + 2, r) for i, r in enumerate(df["role"])], tuple(roles), "attendance row"
    )
    if undeclared:
        problems.append(undeclared)
    raise_problems(problems)
    return pd.DataFrame(
        {
            "meeting": df["meeting_id"].str.strip(),
            "role": [normalise_role(r) for r in df["role"]],
            "attendees": n.astype(int),
        }
    )


@dataclass
class TranscriptResult:
    """Utterance analysis of a set of meeting transcripts.

    Attributes
    ----------
    meetings : pandas.DataFrame
        One row per meeting: ``meeting``, ``mdg``, ``date``, ``file``, ``utterances``, ``words``.
    by_meeting : pandas.DataFrame
        ``meeting``, ``role``, ``utterances``, ``words``, ``share_utterances``, ``share_words``.
    overall : pandas.DataFrame
        ``role``, ``utterances``, ``words``, ``share_utterances``, ``share_words``, and with
        attendance ``attendees`` (people attending, summed over meetings) and
        ``share_attendees``; sorted by utterances, largest first.
    tests : list of dict
        Chi-square goodness-of-fit tests: ``against`` ("equal shares" or "attendance"),
        ``statistic``, ``dof``, ``p_value``, ``roles``, ``observed``, ``expected``, ``n``.
    turns : pandas.DataFrame
        Who follows whom: rows the earlier speaker's role, columns the next speaker's role.
    levels : pandas.DataFrame or None
        ``level``, ``utterances``, ``share_utterances``, ``words``, ``share_words`` over coded
        utterances; None when no utterance is coded.
    warnings : list of str
    published_totals : dict
        Empty, except on the published copy: ``n_meetings``, ``n_utterances``,
        ``n_coded_utterances`` and ``share_of_utterances_coded`` as published.
    disclosure_control : bool
        Set only by :func:`careval.report.publish.qualitative.publish_transcripts`.
    inputs : list of pathlib.Path
        The files read (transcripts and attendance), for provenance.
    """

    meetings: pd.DataFrame
    by_meeting: pd.DataFrame
    overall: pd.DataFrame
    tests: list[dict[str, Any]]
    turns: pd.DataFrame
    levels: pd.DataFrame | None
    warnings: list[str] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    disclosure_control: bool = False
    inputs: list[Path] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """The overall table, one row per role."""
        return self.overall.copy()

    def summary(self) -> str:
        """Plain text: shares of utterances by role and the tests."""
        d = self.to_dict()
        lines = [
            f"{count_text(d['n_meetings'])} meetings, {count_text(d['n_utterances'])} utterances"
        ]
        for r in d["overall"]:
            share = r.get("share_utterances")
            shown = f"{100 * share:.1f}%" if isinstance(share, int | float) else "withheld"
            lines.append(f"  {r['role']}: {shown} of utterances")
        for t in self.tests:
            lines.append(
                f"  chi-square against {t['against']}: {t['statistic']:.1f} on {t['dof']} df, "
                f"p = {t['p_value']:.3g}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready block: counts and shares (to 4 decimals) as the tables hold them.

        On the published copy (:func:`careval.report.publish.qualitative.publish_transcripts`)
        the tables hold the published counts and shares, and ``totals`` the published totals
        (rounded tables no longer add up to them). Where ``totals`` is empty, the totals are
        the tables' own sums.
        """
        total = int(self.overall["utterances"].sum()) if not self.totals else 0
        tot = self.totals

        def table(df: pd.DataFrame, counts: tuple[str, ...]) -> list[dict]:
            out = []
            for rec in records(df):
                for c in counts:
                    if rec.get(c) is not None:
                        rec[c] = count_value(rec[c])
                for k in [k for k in rec if k.startswith("share_")]:
                    rec[k] = share_value(rec[k])
                out.append(rec)
            return out

        counts = ("utterances", "words")
        by_meeting = [  # each meeting's shares are of its own totals
            rec
            for _, part in self.by_meeting.groupby("meeting", sort=False)
            for rec in table(part, counts)
        ]
        levels: dict[str, Any] | None = None
        if self.levels is not None:
            coded = int(self.levels["utterances"].sum()) if not tot else 0
            levels = {
                "n_coded_utterances": tot.get("n_coded_utterances", coded),
                "share_of_utterances_coded": tot["share_of_utterances_coded"]
                if tot
                else share_value(coded / total if total else None),
                "levels": table(self.levels, counts),
            }
        return {
            "method": "utterances = transcript lines attributed to a participant type; "
            "chi-square goodness of fit (scipy.stats.chisquare) against equal shares and against "
            "attendance",
            "n_meetings": tot.get("n_meetings", len(self.meetings)),
            "n_utterances": tot.get("n_utterances", total),
            "meetings": table(self.meetings, counts),
            "overall": table(self.overall, ("utterances", "words", "attendees")),
            "by_meeting": by_meeting,
            "tests": [
                {
                    **t,
                    "observed": [count_value(v) for v in t["observed"]],
                    "expected": t["expected"],
                    "n": count_value(t["n"]),
                }
                for t in self.tests
            ],
            "turns": count_matrix(self.turns),
            "levels": levels,
            "warnings": notes_text(self.warnings),
        }


def analyse_transcripts(
    transcripts: list[Transcript], attendance: pd.DataFrame | None = None
) -> TranscriptResult:
    """Utterances and words by participant type, tests, turn matrix and discussion levels.

    Parameters
    ----------
    transcripts : list of Transcript
        One per meeting (meeting ids must be distinct).
    attendance : pandas.DataFrame, optional
        ``meeting``, ``role``, ``attendees`` (from :func:`read_attendance`); meetings without
        attendance rows are left out of the test against attendance (with a warning).

    Returns
    -------
    TranscriptResult
    """
    from scipy import stats

    if not transcripts:
        raise ConfigError("no transcripts to analyse")
    ids = [t.meeting for t in transcripts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        files = [str(t.path) for t in transcripts if t.meeting == dup[0]]
        raise ConfigError(f"meeting ids must be distinct; {dup[0]!r} is used by {', '.join(files)}")
    warnings: list[str] = []
    utt = pd.concat(
        [t.utterances.assign(meeting=t.meeting) for t in transcripts], ignore_index=True
    )
    meetings = pd.DataFrame(
        {
            "meeting": ids,
            "mdg": [t.mdg for t in transcripts],
            "date": [t.date for t in transcripts],
            "file": [t.path.name for t in transcripts],
            "utterances": [len(t.utterances) for t in transcripts],
            "words": [int(t.utterances["words"].sum()) for t in transcripts],
        }
    )
    grp = (
        utt.groupby(["meeting", "role"], sort=False)
        .agg(utterances=("text", "size"), words=("words", "sum"))
        .reset_index()
    )
    tot = grp.groupby("meeting")[["utterances", "words"]].transform("sum")
    grp["share_utterances"] = grp["utterances"] / tot["utterances"]
    grp["share_words"] = grp["words"] / tot["words"].where(tot["words"] > 0)
    overall = utt.groupby("role").agg(utterances=("text", "size"), words=("words", "sum"))
    overall["share_utterances"] = overall["utterances"] / overall["utterances"].sum()
    overall["share_words"] = overall["words"] / max(int(overall["words"].sum()), 1)

    tests = []
    att_roles: list[str] = []
    if attendance is not None:
        att = attendance[attendance["meeting"].isin(ids)]
        missing = sorted(set(ids) - set(att["meeting"]))
        if missing:
            example = str(missing[0]).replace("{", "{{").replace("}", "}}")
            warnings.append(
                Note(
                    "{n} meeting(s) without attendance, left out of the test against "
                    f"attendance: e.g. {example}",
                    n=len(missing),
                )
            )
        people = att.groupby("role")["attendees"].sum()
        overall = overall.join(people.rename("attendees"), how="outer").fillna(
            {
                "utterances": 0,
                "words": 0,
                "share_utterances": 0.0,
                "share_words": 0.0,
                "attendees": 0,
            }
        )
        overall["attendees"] = overall["attendees"].astype(int)
        overall["share_attendees"] = overall["attendees"] / max(int(people.sum()), 1)
        with_att = utt[utt["meeting"].isin(set(att["meeting"]))]
        obs = with_att.groupby("role").size().reindex(people.index, fill_value=0)
        silent_speakers = sorted(set(with_att["role"]) - set(people[people > 0].index))
        if silent_speakers:
            warnings.append(
                "roles that speak but have no attendance recorded, left out of the test against "
                f"attendance: {', '.join(silent_speakers)}"
            )
        present = people[people > 0].index
        o = obs.reindex(present).to_numpy(float)
        e_share = people.reindex(present).to_numpy(float)
        if len(present) >= 2 and o.sum() > 0:
            expected = e_share / e_share.sum() * o.sum()
            res = stats.chisquare(o, expected)
            tests.append(_test("attendance", present, o, expected, res))
        att_roles = list(present)
    overall["utterances"] = overall["utterances"].astype(int)
    overall["words"] = overall["words"].astype(int)
    overall = overall.sort_values(["utterances", "words"], ascending=False).reset_index()
    overall = overall.rename(columns={"index": "role"})

    roles = sorted(set(utt["role"]) | set(att_roles))
    obs_all = utt.groupby("role").size().reindex(roles, fill_value=0).to_numpy(float)
    if len(roles) >= 2:
        expected = np.full(len(roles), obs_all.sum() / len(roles))
        res = stats.chisquare(obs_all, expected)
        tests.insert(0, _test("equal shares", roles, obs_all, expected, res))

    prev = utt.groupby("meeting", sort=False)["role"].shift(1)
    pairs = pd.DataFrame({"from": prev, "to": utt["role"]}).dropna()
    order = list(overall["role"])
    turns = (
        pd.crosstab(pairs["from"], pairs["to"])
        .reindex(index=order, columns=order, fill_value=0)
        .astype(int)
    )
    turns.index.name, turns.columns.name = "from", "to"

    levels = None
    coded = utt[utt["level"] != ""]
    if len(coded):
        lv = coded.groupby("level").agg(utterances=("text", "size"), words=("words", "sum"))
        lv = lv.reindex(list(LEVELS), fill_value=0)
        lv["share_utterances"] = lv["utterances"] / lv["utterances"].sum()
        lv["share_words"] = lv["words"] / max(int(lv["words"].sum()), 1)
        levels = lv.reset_index().rename(columns={"index": "level"})[
            ["level", "utterances", "share_utterances", "words", "share_words"]
        ]
        if len(coded) < len(utt):
            warnings.append(
                Note(
                    "{uncoded} of {total} utterances carry no level code; "
                    "level shares are of coded utterances",
                    uncoded=len(utt) - len(coded),
                    total=len(utt),
                )
            )
    return TranscriptResult(
        meetings=meetings,
        by_meeting=grp,
        overall=overall,
        tests=tests,
        turns=turns,
        levels=levels,
        warnings=warnings,
    )


def _test(against: str, roles: Iterable[str], o: np.ndarray, e: np.ndarray, res: Any) -> dict:
    return {
        "against": against,
        "test": "chi-square goodness of fit",
        "statistic": float(res.statistic),
        "dof": len(o) - 1,
        "p_value": float(res.pvalue),
        "roles": [str(r) for r in roles],
        "observed": [int(v) for v in o],
        "expected": [round(float(v), 3) for v in e],
        "n": int(o.sum()),
    }


def transcripts_from_paths(
    paths: Iterable[str | Path],
    attendance: str | Path | None = None,
    roles: Iterable[str] = DEFAULT_ROLES,
    root: Path | None = None,
) -> TranscriptResult:
    """Read transcript files or directories (and an attendance CSV) and analyse them.

    A directory's own ``attendance.csv`` is used when no attendance file is given. ``roles``
    are the declared roles (default: the built-in ones); with ``root`` given (a dataset's
    folder), every file read must lie inside it. The result's ``inputs`` list the files read.
    """
    paths = list(paths)
    files = transcript_files(paths)
    if attendance is None:
        for p in map(Path, paths):
            if p.is_dir() and (p / ATTENDANCE_FILE).is_file():
                attendance = p / ATTENDANCE_FILE
                break
    read = [*files, *([Path(attendance)] if attendance is not None else [])]
    if root is not None:
        read = [require_inside(f, root, "transcript file") for f in read]
    allowed = tuple(roles)
    att = read_attendance(attendance, allowed) if attendance is not None else None
    result = analyse_transcripts([read_transcript(f, allowed) for f in files], att)
    result.inputs = [Path(f).resolve() for f in read]
    return result
