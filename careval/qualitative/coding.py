"""Thematic coding: a hierarchical codebook, coded segments, and what they show.

Inputs
------
- Codebook CSV: ``code`` and optionally ``parent`` (the parent code's name; blank for a theme),
  ``description``; or a REFI-QDA codebook (``.qdc``) or project (``.qdpx``), see
  :mod:`careval.qualitative.refi`.
- Coded segments CSV: one row per code applied to a segment, columns ``segment_id``, ``code``
  (blank for a segment nobody coded) and ``text``, optionally ``document``, ``case``, ``group``,
  ``coder``, ``start``, ``end`` (character positions in the document, at most
  :data:`MAX_DOCUMENT_CHARS`).

Outputs (:func:`analyse_coding`): code frequencies by participant group with each theme's
sub-codes rolled up; a framework matrix (themes x groups or cases, with the segments in each
cell); code co-occurrence (segments carrying both codes, or overlapping in the same document when
positions are given); and, when two coders' work is given, agreement per code and overall:
Cohen's kappa (statsmodels) and Krippendorff's alpha (the krippendorff package, nominal level).
With several coders, frequencies, framework and co-occurrence use the primary coder's codings
(the first in alphabetical order unless named).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from careval.errors import ConfigError, bad_rows, quoted_value, raise_problems
from careval.surveys.common import (
    count_matrix,
    count_text,
    count_value,
    notes_text,
    read_text_table,
    records,
    require_columns,
    share_value,
)

# The text columns of a coded segment, then its character positions (nullable integers).
TEXT_COLUMNS = ("segment_id", "document", "case", "group", "coder", "code", "text")
SEGMENT_COLUMNS = (*TEXT_COLUMNS, "start", "end")
# The longest document whose positions careval accepts, in characters (a long interview
# transcript is about 100,000): a position beyond it is an error, not a document to rebuild.
MAX_DOCUMENT_CHARS = 10_000_000
_NS = uuid.UUID("6f1c1c1e-4d0e-5b8a-9a51-2011c0de0001")


def stable_guid(*parts: str) -> str:
    """A deterministic GUID (UUID 5) for REFI-QDA exports."""
    return str(uuid.uuid5(_NS, "\x1f".join(parts)))


@dataclass(frozen=True)
class Code:
    """One code: name (unique), parent name ("" for a theme), description, colour."""

    name: str
    parent: str = ""
    description: str = ""
    guid: str = ""
    colour: str = ""


@dataclass
class Codebook:
    """Hierarchical codes in display order."""

    codes: list[Code]

    def __post_init__(self) -> None:
        names = [c.name for c in self.codes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"codebook: code names must be distinct; repeated: {dup[0]!r}")
        by = self.by_name
        orphans = [c for c in self.codes if c.parent and c.parent not in by]
        if orphans:
            raise ConfigError(
                f"codebook: {len(orphans)} code(s) name a parent that is not a code, e.g. "
                f"{orphans[0].name!r} -> {orphans[0].parent!r}"
            )
        for c in self.codes:  # cycles
            seen, p = {c.name}, c.parent
            while p:
                if p in seen:
                    raise ConfigError(f"codebook: code {c.name!r} is its own ancestor")
                seen.add(p)
                p = by[p].parent

    @property
    def by_name(self) -> dict[str, Code]:
        """Code name -> Code."""
        return {c.name: c for c in self.codes}

    def theme(self, name: str) -> str:
        """The top-level code above ``name`` (itself for a theme)."""
        by = self.by_name
        while by[name].parent:
            name = by[name].parent
        return name

    def depth(self, name: str) -> int:
        """0 for a theme, 1 for its sub-codes, ..."""
        d, by = 0, self.by_name
        while by[name].parent:
            name, d = by[name].parent, d + 1
        return d

    def descendants(self, name: str) -> set[str]:
        """``name`` and every code below it."""
        out, frontier = {name}, [name]
        while frontier:
            kids = [c.name for c in self.codes if c.parent in frontier]
            frontier = [k for k in kids if k not in out]
            out.update(frontier)
        return out

    @property
    def themes(self) -> list[str]:
        """Top-level codes in order."""
        return [c.name for c in self.codes if not c.parent]

    def to_frame(self) -> pd.DataFrame:
        """``code``, ``parent``, ``description`` (the codebook CSV)."""
        return pd.DataFrame(
            [(c.name, c.parent, c.description) for c in self.codes],
            columns=["code", "parent", "description"],
        )


def read_codebook_csv(path: str | Path) -> Codebook:
    """A codebook CSV (``code``, optional ``parent``, ``description``)."""
    path = Path(path)
    df = read_text_table(path)
    require_columns(path, df, ["code"], "a codebook needs a code column")
    problems: list[str] = []
    name = df["code"].str.strip()
    bad_rows(problems, path, df, "code", (name == "").to_numpy(), "is blank", "a code name")
    parent = df["parent"].str.strip() if "parent" in df.columns else pd.Series([""] * len(df))
    known = set(name)
    bad_rows(
        problems,
        path,
        df,
        "parent",
        ((parent != "") & ~parent.isin(known)).to_numpy(),
        "names a code that is not in the codebook",
        "a code of this file or blank",
    )
    raise_problems(problems)
    desc = df["description"] if "description" in df.columns else pd.Series([""] * len(df))
    try:
        return Codebook(
            [Code(n, p, d) for n, p, d in zip(name, parent, desc.str.strip(), strict=True)]
        )
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_segments_csv(path: str | Path) -> pd.DataFrame:
    """Coded segments from CSV, normalised to :data:`SEGMENT_COLUMNS` (see module docstring)."""
    path = Path(path)
    df = read_text_table(path)
    require_columns(
        path, df, ["segment_id", "code", "text"], "coded segments need segment_id, code and text"
    )
    problems: list[str] = []
    sid = df["segment_id"].str.strip()
    bad_rows(
        problems,
        path,
        df,
        "segment_id",
        (sid == "").to_numpy(),
        "is blank",
        "an identifier per segment",
    )
    out = pd.DataFrame({"segment_id": sid})
    for col in TEXT_COLUMNS[1:]:
        out[col] = df[col].str.strip() if col in df.columns else ""
    for col in ("start", "end"):
        if col in df.columns:
            raw = df[col].str.strip()
            num = pd.to_numeric(raw.mask(raw == ""), errors="coerce").astype(float)
            bad = (raw != "") & (num.isna() | (num < 0) | (num != num.round()))
            bad_rows(
                problems,
                path,
                df,
                col,
                bad.to_numpy(),
                "is not a whole number >= 0",
                "character positions 0, 1, 2, ... or blank",
            )
            huge = (~bad & (num > MAX_DOCUMENT_CHARS)).to_numpy(bool)
            rule, most = "is beyond the longest document accepted", f"{MAX_DOCUMENT_CHARS:,}"
            bad_rows(problems, path, df, col, huge, rule, f"character positions up to {most}")
            out[col] = num.mask(bad | huge).astype("Int64")
        else:
            out[col] = pd.array([pd.NA] * len(df), dtype="Int64")
    if "start" in df.columns and "end" in df.columns:
        bad = (out["start"].notna() & out["end"].notna() & (out["end"] < out["start"])).fillna(
            False
        )
        bad_rows(problems, path, df, "end", bad.to_numpy(bool), "is before start", "end >= start")
    if df.empty:
        problems.append(f"{path}: no segments (a header but no rows)")
    raise_problems(problems)
    return out[list(SEGMENT_COLUMNS)]


def infer_codebook(segments: pd.DataFrame) -> Codebook:
    """A flat codebook of the codes used, in order of first use."""
    names = [c for c in dict.fromkeys(segments["code"]) if c]
    return Codebook([Code(n) for n in names])


def check_codes(segments: pd.DataFrame, codebook: Codebook, source: str) -> None:
    """A ConfigError when segments use codes that the codebook lacks."""
    known = set(codebook.by_name)
    used = segments["code"]
    bad = (used != "") & ~used.isin(known)
    if bad.any():
        first = segments[bad].iloc[0]
        names = sorted(set(used[bad]))
        raise ConfigError(
            f"{source}: {int(bad.sum()):,} coded segment row(s) use {len(names)} code(s) not in "
            f"the codebook, e.g. {quoted_value('a segment', first['segment_id'])} coded "
            f"{first['code']!r}; "
            f"allowed: {', '.join(sorted(known)[:12])}{', ...' if len(known) > 12 else ''}"
        )


@dataclass
class CodingResult:
    """Coding analysed.

    Attributes
    ----------
    codebook : Codebook
    segments : pandas.DataFrame
        Every coding (all coders), :data:`SEGMENT_COLUMNS`.
    primary_coder : str
        Whose codings the frequencies, framework and co-occurrence count ("" if not recorded).
    by : str
        "group" or "case": the framework matrix's columns.
    frequencies : pandas.DataFrame
        ``code``, ``theme``, ``depth``, ``segments`` (distinct segments coded with the code or a
        code below it), ``documents``, ``cases``, then one column per group (segments).
    framework : pandas.DataFrame
        Long form: ``theme``, ``column`` (group or case), ``segments`` (count), ``items`` (list of
        {segment_id, code, text}).
    cooccurrence : pandas.DataFrame
        Square code x code counts of segments carrying both codes (diagonal: segments per code).
    agreement : pandas.DataFrame or None
        Per code and overall (``code == "(overall)"``): ``coders``, ``units``, ``n_a``, ``n_b``
        (units each coder gave the code), ``both``, ``percent_agreement``, ``kappa``, ``alpha``.
    agreement_method : str
    warnings : list of str
    n_segments : int or str, optional
        The number of segments as published (the published copy only; else counted).
    disclosure_control : bool
        Set only by :func:`careval.report.publish.qualitative.publish_coding`, whose copy holds
        published counts, no segment texts and a framework without its items.
    """

    codebook: Codebook
    segments: pd.DataFrame
    primary_coder: str
    by: str
    frequencies: pd.DataFrame
    framework: pd.DataFrame
    cooccurrence: pd.DataFrame
    agreement: pd.DataFrame | None
    agreement_method: str = ""
    warnings: list[str] = field(default_factory=list)
    n_segments: int | str | None = None
    disclosure_control: bool = False

    def tidy(self) -> pd.DataFrame:
        """Code frequencies, one row per code."""
        return self.frequencies.copy()

    def summary(self) -> str:
        """Plain text: segments per theme and agreement."""
        n = self.n_segments if self.n_segments is not None else self.segments.segment_id.nunique()
        lines = [f"{count_text(n)} segments, {len(self.codebook.codes)} codes"]
        for r in self.frequencies[self.frequencies["depth"] == 0].itertuples():
            lines.append(f"  {r.code}: {count_text(r.segments)} segments")
        if self.agreement is not None:
            o = self.agreement[self.agreement["code"] == "(overall)"].iloc[0]
            lines.append(f"  agreement: kappa {o['kappa']:.3f}, alpha {o['alpha']:.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready block: counts as the tables hold them (published on the published copy,
        whose framework has no segment texts)."""
        freq = []
        groups = [c for c in self.frequencies.columns if c.startswith("group:")]
        for rec in records(self.frequencies):
            for k in ("segments", "documents", "cases", *groups):
                rec[k] = count_value(rec[k])
            freq.append(rec)
        frame = []
        for rec in self.framework.to_dict("records"):
            item = {
                "theme": rec["theme"],
                "column": rec["column"],
                "segments": count_value(rec["segments"]),
            }
            if "items" in rec:
                item["items"] = rec["items"]
            frame.append(item)
        agreement = None
        if self.agreement is not None:
            agreement = []
            for rec in records(self.agreement):
                rec["percent_agreement"] = share_value(rec["percent_agreement"])
                for k in ("units", "n_a", "n_b", "both"):
                    rec[k] = count_value(rec[k])
                agreement.append(rec)
        n_segments = self.n_segments
        if n_segments is None:
            n_segments = int(self.segments["segment_id"].nunique())
        return {
            "codebook": records(self.codebook.to_frame()),
            "n_segments": count_value(n_segments),
            "coders": sorted(c for c in self.segments["coder"].unique() if c),
            "primary_coder": self.primary_coder,
            "framework_by": self.by,
            "frequencies": freq,
            "framework": frame,
            "cooccurrence": count_matrix(self.cooccurrence),
            "agreement": agreement,
            "agreement_method": self.agreement_method,
            "warnings": notes_text(self.warnings),
        }


def analyse_coding(
    segments: pd.DataFrame,
    codebook: Codebook | None = None,
    *,
    by: str = "group",
    primary_coder: str | None = None,
    coders: tuple[str, str] | None = None,
    source: str = "coded segments",
) -> CodingResult:
    """Frequencies, framework matrix, co-occurrence and inter-coder agreement.

    Parameters
    ----------
    segments : pandas.DataFrame
        :data:`SEGMENT_COLUMNS` (from :func:`read_segments_csv` or the REFI-QDA reader).
    codebook : Codebook, optional
        Default: the codes used, flat.
    by : {"group", "case"}
        The framework matrix's columns.
    primary_coder : str, optional
        Whose codings to count (default: the first coder alphabetically).
    coders : tuple of two str, optional
        The two coders to compare (default: the first two alphabetically, if there are two).
    """
    if by not in ("group", "case"):
        raise ConfigError(f"the framework matrix is by group or case; got {by!r}")
    seg = segments.copy()
    for col in TEXT_COLUMNS:
        seg[col] = seg[col].fillna("").astype(str)
    book = codebook or infer_codebook(seg)
    check_codes(seg, book, source)
    all_coders = sorted(c for c in seg["coder"].unique())
    warnings: list[str] = []
    if primary_coder is None:
        primary_coder = all_coders[0] if all_coders else ""
    elif primary_coder not in all_coders:
        raise ConfigError(
            f"{source}: coder {primary_coder!r} not found; coders: {', '.join(all_coders)}"
        )
    if len(all_coders) > 1:
        warnings.append(
            f"{len(all_coders)} coders; frequencies, framework and co-occurrence count "
            f"{primary_coder!r}'s codings"
        )
    mine = seg[(seg["coder"] == primary_coder) & (seg["code"] != "")]
    freq = _frequencies(mine, seg, book)
    frame = _framework(mine, book, by)
    co = _cooccurrence(mine, book)
    agreement, method = None, ""
    pair = coders or (tuple(all_coders[:2]) if len(all_coders) >= 2 else None)
    if pair is not None:
        missing = [c for c in pair if c not in all_coders]
        if missing:
            raise ConfigError(
                f"{source}: coder {missing[0]!r} not found; coders: {', '.join(all_coders)}"
            )
        agreement, method = agreement_table(seg, book, pair[0], pair[1])
    return CodingResult(book, seg, primary_coder, by, freq, frame, co, agreement, method, warnings)


def _frequencies(mine: pd.DataFrame, seg: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    groups = sorted(g for g in seg["group"].unique())
    rows = []
    for c in book.codes:
        hit = mine[mine["code"].isin(book.descendants(c.name))]
        row = {
            "code": c.name,
            "parent": c.parent,
            "theme": book.theme(c.name),
            "depth": book.depth(c.name),
            "segments": hit["segment_id"].nunique(),
            "documents": hit.loc[hit["document"] != "", "document"].nunique(),
            "cases": hit.loc[hit["case"] != "", "case"].nunique(),
        }
        for g in groups:
            row[f"group:{g or '(none)'}"] = hit.loc[hit["group"] == g, "segment_id"].nunique()
        rows.append(row)
    cols = ["code", "parent", "theme", "depth", "segments", "documents", "cases"]
    return pd.DataFrame(rows, columns=cols + [f"group:{g or '(none)'}" for g in groups])


def _framework(mine: pd.DataFrame, book: Codebook, by: str) -> pd.DataFrame:
    cols = sorted(v for v in mine[by].unique())
    rows = []
    for theme in book.themes:
        hit = mine[mine["code"].isin(book.descendants(theme))]
        for col in cols:
            cell = hit[hit[by] == col].drop_duplicates(["segment_id", "code"])
            items = [
                {"segment_id": r.segment_id, "code": r.code, "text": r.text}
                for r in cell.itertuples()
            ]
            rows.append(
                {
                    "theme": theme,
                    "column": col or "(none)",
                    "segments": cell["segment_id"].nunique(),
                    "items": items,
                }
            )
    return pd.DataFrame(rows, columns=["theme", "column", "segments", "items"])


def _cooccurrence(mine: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    names = [c.name for c in book.codes]
    index = {n: i for i, n in enumerate(names)}
    m = np.zeros((len(names), len(names)), dtype=int)
    positioned = mine["start"].notna() & mine["end"].notna()
    units: list[set[str]] = []
    for _, part in mine[~positioned].groupby("segment_id"):
        units.append(set(part["code"]))
    # Positioned codings: codes co-occur where their spans overlap in the same document.
    pos = mine[positioned]
    for _, doc in pos.groupby("document"):
        spans = sorted((int(r.start), int(r.end), r.code) for r in doc.itertuples())
        for i, (s1, e1, c1) in enumerate(spans):
            units.append({c1})
            for s2, e2, c2 in spans[i + 1 :]:
                if s2 >= e1:
                    break
                if min(e1, e2) > max(s1, s2) and c1 != c2:
                    units.append({c1, c2})
    seen_pairs: set[tuple[str, ...]] = set()
    for u in units:
        codes = sorted(u)
        if len(codes) == 1:
            continue
        for a in codes:
            for b in codes:
                if a != b:
                    m[index[a], index[b]] += 1
        seen_pairs.add(tuple(codes))
    diag = mine.drop_duplicates(["segment_id", "code"]).groupby("code").size()
    for n, v in diag.items():
        m[index[str(n)], index[str(n)]] = int(v)
    return pd.DataFrame(m, index=pd.Index(names, name="code"), columns=names)


def agreement_table(
    seg: pd.DataFrame, book: Codebook, coder_a: str, coder_b: str
) -> tuple[pd.DataFrame, str]:
    """Agreement of two coders per code (presence or absence on each unit) and overall.

    Units are the segments either coder saw (a segment row with a blank code counts as seen and
    left uncoded). Per code: Cohen's kappa (statsmodels ``cohens_kappa``) and Krippendorff's
    alpha (nominal, ``krippendorff.alpha``) of the two presence/absence vectors. Overall: when
    every unit has exactly one code from each coder, kappa and alpha of the codes themselves;
    otherwise of the pooled presence/absence decisions over all units and codes.
    """
    import krippendorff
    from statsmodels.stats.inter_rater import cohens_kappa

    a = seg[seg["coder"] == coder_a]
    b = seg[seg["coder"] == coder_b]
    units = sorted(set(a["segment_id"]) | set(b["segment_id"]))
    u_index = {u: i for i, u in enumerate(units)}
    names = [c.name for c in book.codes]

    def presence(part: pd.DataFrame) -> np.ndarray:
        m = np.zeros((len(units), len(names)), dtype=int)
        idx = {n: j for j, n in enumerate(names)}
        for r in part[part["code"] != ""].itertuples():
            m[u_index[r.segment_id], idx[r.code]] = 1
        return m

    pa, pb = presence(a), presence(b)
    rows = []
    for j, name in enumerate(names):
        if not (pa[:, j].any() or pb[:, j].any()):
            continue  # neither coder used the code (e.g. a theme coded only through sub-codes)
        rows.append(
            _agree_row(name, pa[:, j], pb[:, j], coder_a, coder_b, cohens_kappa, krippendorff)
        )
    single = (pa.sum(axis=1) == 1).all() and (pb.sum(axis=1) == 1).all()
    if single:
        ca, cb = pa.argmax(axis=1), pb.argmax(axis=1)
        table = np.zeros((len(names), len(names)), dtype=int)
        np.add.at(table, (ca, cb), 1)
        keep = (table.sum(axis=0) + table.sum(axis=1)) > 0
        kappa = _kappa(table[np.ix_(keep, keep)], cohens_kappa)
        alpha = _alpha(np.vstack([ca, cb]).astype(float), krippendorff)
        method = (
            "one code per unit from each coder: Cohen's kappa and Krippendorff's alpha "
            "(nominal) of the codes"
        )
        both = int((ca == cb).sum())
        rows.append(
            {
                "code": "(overall)",
                "coders": f"{coder_a} vs {coder_b}",
                "units": len(units),
                "n_a": len(units),
                "n_b": len(units),
                "both": both,
                "percent_agreement": both / len(units) if units else None,
                "kappa": kappa,
                "alpha": alpha,
            }
        )
    else:
        pooled = _agree_row(
            "(overall)", pa.ravel(), pb.ravel(), coder_a, coder_b, cohens_kappa, krippendorff
        )
        pooled["units"] = len(units)
        rows.append(pooled)
        method = (
            "presence or absence of each code on each unit: per code, and pooled over "
            "all codes for the overall figures"
        )
    return pd.DataFrame(rows), method


def _agree_row(
    name: str, x: np.ndarray, y: np.ndarray, ca: str, cb: str, ck: Any, kr: Any
) -> dict[str, Any]:
    table = np.array(
        [
            [int(((x == 1) & (y == 1)).sum()), int(((x == 1) & (y == 0)).sum())],
            [int(((x == 0) & (y == 1)).sum()), int(((x == 0) & (y == 0)).sum())],
        ]
    )
    n = len(x)
    return {
        "code": name,
        "coders": f"{ca} vs {cb}",
        "units": n,
        "n_a": int(x.sum()),
        "n_b": int(y.sum()),
        "both": int(table[0, 0]),
        "percent_agreement": float((x == y).mean()) if n else None,
        "kappa": _kappa(table, ck),
        "alpha": _alpha(np.vstack([x, y]).astype(float), kr),
    }


def _kappa(table: np.ndarray, cohens_kappa: Any) -> float | None:
    t = np.asarray(table, float)
    n = t.sum()
    if n == 0:
        return None
    pe = float((t.sum(axis=0) * t.sum(axis=1)).sum() / n**2)
    if np.isclose(pe, 1.0):
        return None  # both coders used one category throughout: kappa is undefined
    return float(cohens_kappa(t, return_results=False))


def _alpha(data: np.ndarray, krippendorff: Any) -> float | None:
    values = data[~np.isnan(data)]
    if values.size == 0 or np.unique(values).size < 2:
        return None  # no variation: alpha is undefined
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
