"""Wall time per stage, CPU and peak memory of ``careval run`` (issue 20), and whether the
results are unchanged.

Runs :func:`careval.run.run` in this process on ``--data`` (a ``careval synth`` folder) into a
new temporary folder, timing each step from the progress callback the CLI's bar uses. Prints
one Markdown row per stage and a JSON line with the totals (wall, user and system CPU with the
side analyses' process, CPU% and peak resident memory of this process and of that one).
``--keep FILE`` copies the run's ``results.json`` to FILE; ``--compare FILE`` reports every
value of this run's ``results.json`` that differs from FILE's (provenance's times and versions
aside), so a speed change can show it changed no result.

Usage::

    .venv/bin/careval synth --out /work/bench-data/p550k --persons 550000
    .venv/bin/python bench/bench_run.py --data /work/bench-data/p550k --keep before.json
    .venv/bin/python bench/bench_run.py --data /work/bench-data/p550k --compare before.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IGNORED = ("provenance", "careval_version")  # when and with what a run was made, not its results


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two results documents differ (numbers compared exactly, NaN equal to NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if not path and k in IGNORED:
                continue
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'after' if k not in a else 'before'}")
            else:
                out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items, was {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r}, was {b!r}"]


def _peak_gib() -> float:
    """This process's peak resident memory so far, GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--keep", type=Path, help="copy the run's results.json here")
    ap.add_argument("--compare", type=Path, help="a results.json to compare this run's with")
    a = ap.parse_args()

    from careval.run import run

    marks: list[tuple[str, float]] = []
    peaks: list[float] = []  # this process's peak RSS (GiB) when each step starts

    def mark(step: str) -> None:
        marks.append((step, time.perf_counter()))
        peaks.append(_peak_gib())
        if len(marks) > 1:  # as it goes, so that a run stopped midway still shows its steps
            (last, at), now = marks[-2], marks[-1][1]
            print(f"{last}: {now - at:.1f} s, peak {peaks[-1]:.2f} GiB", file=sys.stderr)

    out = Path(tempfile.mkdtemp(prefix="careval-benchrun-")) / "out"
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    try:
        run(a.data, out, progress=mark)
        end = time.perf_counter()
        results = json.loads((out / "results.json").read_text())
        if a.keep:
            shutil.copyfile(out / "results.json", a.keep)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the side analyses' process
    wall = end - t0
    print("| stage | wall s | peak RSS by its end, GiB |\n|---|---:|---:|")
    print(f"| start (imports, folder checks) | {marks[0][1] - t0:.1f} | {peaks[0]:.2f} |")
    ends = [*peaks[1:], _peak_gib()]
    for (step, at), (_, nxt), peak in zip(marks, [*marks[1:], ("end", end)], ends, strict=True):
        print(f"| {step} | {nxt - at:.1f} | {peak:.2f} |")
    totals = {
        "data": str(a.data),
        "wall_s": round(wall, 1),
        "user_s": round(ru.ru_utime + kids.ru_utime, 1),
        "sys_s": round(ru.ru_stime + kids.ru_stime, 1),
        "cpu_pct": round(100 * (ru.ru_utime + ru.ru_stime + kids.ru_utime + kids.ru_stime) / wall),
        "peak_rss_gib": round(ru.ru_maxrss / 2**20, 2),
        "child_peak_rss_gib": round(kids.ru_maxrss / 2**20, 2),
        "load_at_start": round(load, 2),
    }
    print(json.dumps(totals))
    if a.compare:
        diff = differences(results, json.loads(a.compare.read_text()))
        print(f"{len(diff)} values differ from {a.compare}")
        for d in diff[:50]:
            print("  " + d)


if __name__ == "__main__":
    main()
