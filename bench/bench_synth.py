"""Benchmark of ``careval synth``: wall time and peak memory at given population sizes.

Each size runs in a fresh process (``careval synth``) so its peak resident memory is its own.
Usage: ``.venv/bin/python bench/bench_synth.py 550000 2300000`` (prints one Markdown row each).
"""

from __future__ import annotations

import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(persons: int, seed: int = 2011) -> dict:
    """Generate ``persons`` people in a child process; return timing, memory and row counts."""
    out = Path(tempfile.mkdtemp(prefix="careval-bench-")) / "data"
    exe = Path(sys.executable).with_name("careval")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(
        [str(exe), "synth", "--out", str(out), "--persons", str(persons), "--seed", str(seed)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rows = json.loads((out / "dataset.json").read_text())["rows"]
    size = sum(f.stat().st_size for f in out.iterdir())
    shutil.rmtree(out.parent)
    return {
        "persons": persons,
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(max(peak_kib, before) / 2**20, 2),
        "rows": sum(rows.values()),
        "disk_mib": round(size / 2**20),
    }


def main(sizes: list[int]) -> None:
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    print("| persons | seconds | peak RSS (GiB) | rows (all tables) | on disk (MiB) |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        r = run(n)
        print(
            f"| {r['persons']:,} | {r['seconds']} | {r['peak_rss_gib']} | {r['rows']:,} | "
            f"{r['disk_mib']} |",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [550_000, 2_300_000])
