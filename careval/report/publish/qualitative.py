"""Publication of the qualitative analysis: transcripts' counts and shares, the coding's counts.

Every share published is computed from the published counts: a role's (or level's, or
meeting's) published count over the published total of its column (utterances, words or people
attending; the meeting's own totals in ``by_meeting``), so that share x total gives back only
the rounded count; a share is withheld when its base is below 8 or its own count, or the rest of
it, is suppressed. The coding's counts are protected, and its segment texts withheld.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from careval.disclosure import DisclosureSettings
from careval.qualitative.coding import CodingResult
from careval.qualitative.evaluate import QualitativeResult
from careval.qualitative.transcripts import TranscriptResult
from careval.report.publish.shares import (
    count_matrix_out,
    count_out,
    published_notes,
    share_out,
)
from careval.surveys.common import records


def publish_qualitative(result: QualitativeResult, d: DisclosureSettings) -> QualitativeResult:
    """A published copy of the transcripts and the coding under ``d`` (the input is not
    changed)."""
    return replace(
        result,
        transcripts=publish_transcripts(result.transcripts, d) if result.transcripts else None,
        coding=publish_coding(result.coding, d) if result.coding else None,
        warnings=published_notes(result.warnings, d),
        disclosure_control=True,
    )


def _published_table(
    df: pd.DataFrame, counts: tuple[str, ...], base: int, d: DisclosureSettings
) -> pd.DataFrame:
    """Rows with counts protected and shares (of ``base``) withheld if small, else recomputed."""
    bases = {c: int(df[c].sum()) for c in counts if c in df}
    out = []
    for true in records(df):
        rec = dict(true)
        for c in counts:
            if rec.get(c) is not None:
                rec[c] = count_out(rec[c], d)
        for k in [k for k in rec if k.startswith("share_")]:
            c = k.removeprefix("share_")
            own = true.get(c)
            rec[k] = share_out(rec[k], base, d)
            if rec[k] is not None and c in bases and own is not None:
                rec[k] = share_out(
                    rec[k],
                    bases[c],
                    d,
                    count=int(own),
                    published=(rec[c], count_out(bases[c], d)),
                )
            else:  # no count to recompute it from: not published
                rec[k] = None
        out.append(rec)
    return pd.DataFrame(out, columns=list(df.columns), index=df.index, dtype=object)


def publish_transcripts(t: TranscriptResult, d: DisclosureSettings) -> TranscriptResult:
    """A published copy of the transcript analysis under ``d``."""
    total = int(t.overall["utterances"].sum())
    counts = ("utterances", "words")
    parts = [
        _published_table(part, counts, int(part["utterances"].sum()), d)
        for _, part in t.by_meeting.groupby("meeting", sort=False)
    ]
    by_meeting = pd.concat(parts) if parts else t.by_meeting.copy()
    totals: dict[str, Any] = {
        "n_meetings": count_out(len(t.meetings), d),
        "n_utterances": count_out(total, d),
    }
    levels = None
    if t.levels is not None:
        coded = int(t.levels["utterances"].sum())
        totals["n_coded_utterances"] = count_out(coded, d)
        totals["share_of_utterances_coded"] = share_out(
            coded / total if total else None,
            total,
            d,
            count=coded,
            published=(count_out(coded, d), count_out(total, d)),
        )
        levels = _published_table(t.levels, counts, coded, d)
    return replace(
        t,
        meetings=_published_table(t.meetings, counts, total, d),
        by_meeting=by_meeting,
        overall=_published_table(t.overall, ("utterances", "words", "attendees"), total, d),
        tests=[
            {
                **test,
                "observed": [count_out(v, d) for v in test["observed"]],
                "expected": _expected_out(test["expected"], count_out(test["n"], d)),
                "n": count_out(test["n"], d),
            }
            for test in t.tests
        ],
        turns=count_matrix_out(t.turns, d),
        levels=levels,
        warnings=published_notes(t.warnings, d),
        totals=totals,
        disclosure_control=True,
    )


def _expected_out(expected: list[float], n_published: Any) -> list[float] | None:
    """Expected counts as published: their shares of the published total (the true total
    would otherwise show through them); withheld when the total is suppressed."""
    total = sum(expected)
    if not isinstance(n_published, int) or total <= 0:
        return None
    return [round(v / total * n_published, 3) for v in expected]


def publish_coding(c: CodingResult, d: DisclosureSettings) -> CodingResult:
    """A published copy of the coding under ``d``: counts protected, segment texts withheld."""
    freq = c.frequencies.copy()
    groups = [k for k in freq.columns if k.startswith("group:")]
    for k in ("segments", "documents", "cases", *groups):
        freq[k] = pd.Series([count_out(int(v), d) for v in freq[k]], index=freq.index, dtype=object)
    frame = c.framework.drop(columns=["items"], errors="ignore").copy()
    if len(frame):
        frame["segments"] = pd.Series(
            [count_out(int(v), d) for v in frame["segments"]], index=frame.index, dtype=object
        )
    agreement = None
    if c.agreement is not None:
        agreement = c.agreement.copy()
        agreement["percent_agreement"] = pd.Series(
            [
                share_out(v, int(u), d)
                for v, u in zip(agreement["percent_agreement"], agreement["units"], strict=True)
            ],
            index=agreement.index,
            dtype=object,
        )
        for k in ("units", "n_a", "n_b", "both"):
            agreement[k] = pd.Series(
                [count_out(int(v), d) for v in agreement[k]],
                index=agreement.index,
                dtype=object,
            )
    segments = c.segments.copy()
    if "text" in segments:
        segments["text"] = ""
    return replace(
        c,
        segments=segments,
        frequencies=freq,
        framework=frame,
        cooccurrence=count_matrix_out(c.cooccurrence, d),
        agreement=agreement,
        warnings=published_notes(c.warnings, d),
        n_segments=count_out(int(c.segments["segment_id"].nunique()), d),
        disclosure_control=True,
    )
