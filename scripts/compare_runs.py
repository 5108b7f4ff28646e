"""Compare the outputs of two ``careval run``s: are they the same, and where do they differ?

    .venv/bin/python scripts/compare_runs.py OUT_A OUT_B

Checks ``results.json`` byte for byte (and lists every differing path), ``report.html`` apart
from its time stamp, every cell of ``tables.xlsx``, and every file of ``figures/``. Prints
``SAME`` and exits 0 when all agree, else the differences and exit 1. A refactor that must not
change behaviour is checked this way on the synthetic default and on a copy flagged real.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

TIME_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def json_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Every path where two JSON values differ (added, removed, changed, reordered keys)."""
    if type(a) is not type(b):
        return [f"{path}: {a!r:.60} -> {b!r:.60}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: removed" for k in a if k not in b]
        out += [f"{path}.{k}: added {b[k]!r:.60}" for k in b if k not in a]
        for k in a:
            if k in b:
                out += json_paths(a[k], b[k], f"{path}.{k}")
        if [k for k in a if k in b] != [k for k in b if k in a]:
            out.append(f"{path}: keys in another order")
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items -> {len(b)}"]
        return [
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for p in json_paths(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def _cells(path: Path) -> dict[str, list[list[Any]]]:
    wb = load_workbook(path)
    return {ws.title: [[c.value for c in row] for row in ws.iter_rows()] for ws in wb.worksheets}


def compare(a: Path, b: Path) -> list[str]:
    """The differences between the outputs in ``a`` and ``b`` (empty: the same)."""
    out: list[str] = []
    ja, jb = (a / "results.json").read_bytes(), (b / "results.json").read_bytes()
    if ja != jb:
        paths = json_paths(json.loads(ja), json.loads(jb))
        out.append(f"results.json: {len(paths) or 'formatting'} differences")
        out += [f"  {p}" for p in paths[:40]]
    pa = TIME_STAMP.sub("TIME", (a / "report.html").read_text(encoding="utf-8"))
    pb = TIME_STAMP.sub("TIME", (b / "report.html").read_text(encoding="utf-8"))
    if pa != pb:
        diff = list(difflib.unified_diff(pa.splitlines(), pb.splitlines(), lineterm="", n=0))
        out.append(f"report.html: {len(diff)} diff lines (time stamp masked)")
        out += [f"  {line[:200]}" for line in diff[2:12]]
    ca, cb = _cells(a / "tables.xlsx"), _cells(b / "tables.xlsx")
    if ca != cb:
        sheets = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
        out.append(f"tables.xlsx: cells differ on {', '.join(sheets)}")
    fa = {p.name: p.read_bytes() for p in (a / "figures").iterdir()}
    fb = {p.name: p.read_bytes() for p in (b / "figures").iterdir()}
    if fa != fb:
        names = sorted(n for n in set(fa) | set(fb) if fa.get(n) != fb.get(n))
        out.append(f"figures: {', '.join(names)}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    a, b = Path(argv[0]), Path(argv[1])
    for d in (a, b):
        if not (d / "results.json").is_file():
            print(f"compare_runs: {d} holds no results.json (not a careval run)", file=sys.stderr)
            return 2
    found = compare(a, b)
    print("\n".join(found) if found else f"SAME {a} {b}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
