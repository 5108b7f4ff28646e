"""Synthetic thematic coding: a REFI-QDA codebook and segments coded by two coders.

The codebook, the segment texts and the participants' groups are package data
(``surveys_data/coding.toml``); the coders agree on about 85% of segments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from careval.synthetic.survey_data import load


def write_coding(folder: Path, rng: np.random.Generator) -> int:
    """``codebook.qdc`` and ``coded_segments.csv`` (two coders) into ``folder``; rows written."""
    from careval.qualitative.coding import Code, Codebook
    from careval.qualitative.refi import codebook_xml

    data = load("coding")
    book = Codebook([Code(c["name"], c["parent"], c["description"]) for c in data["codebook"]])
    segment_text: dict[str, list[str]] = data["segment_text"]
    groups: list[str] = data["groups"]
    (folder / "codebook.qdc").write_bytes(codebook_xml(book, origin="careval synth", check=False))
    leaves = list(segment_text)
    docs = [f"interview-{i:02d}" for i in range(1, 13)] + [f"focus-group-{i}" for i in range(1, 5)]
    rows = []
    for k in range(150):
        doc = docs[int(rng.integers(len(docs)))]
        code = leaves[int(rng.integers(len(leaves)))]
        text = segment_text[code][int(rng.integers(2))]
        group = groups[int(rng.integers(len(groups)))]
        if doc.startswith("interview"):
            case = f"{doc}-participant"
        else:
            case = f"{doc}-P{int(rng.integers(1, 7))}"
        other = code if rng.random() < 0.85 else leaves[int(rng.integers(len(leaves)))]
        sid = f"S{k + 1:03d}"
        rows.append((sid, doc, case, group, "coder_a", code, text))
        rows.append((sid, doc, case, group, "coder_b", other, text))
    pd.DataFrame(
        rows, columns=["segment_id", "document", "case", "group", "coder", "code", "text"]
    ).to_csv(folder / "coded_segments.csv", index=False)
    return len(rows)
