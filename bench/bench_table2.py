"""Replicate coverage of Table 2: how often each row's 95% CI holds the change it estimates.

For each seed, a synthetic population of ``--persons`` people (default effect) is generated,
Table 2 is made with the default settings (three start dates, 12 months) and each row's
interval is checked against ``true_pct_change`` (and each difference's against
``true_difference``), from :func:`careval.monitoring.truth.expected_area_changes`.
Usage: ``.venv/bin/python bench/bench_table2.py --persons 100000 --seeds 1-10``
(prints Markdown: coverage by area for all the eligible, by group, and of the differences).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.monitoring.areas import evaluate_areas
from careval.synthetic.generate import generate
from careval.synthetic.settings import SynthSettings


def replicate(persons: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Table 2 and its differences on one population, with whether each CI holds its truth."""
    out = Path(tempfile.mkdtemp(prefix="careval-t2-")) / "data"
    t0 = time.perf_counter()
    generate(out, SynthSettings(persons=persons, seed=seed))
    with Dataset(out) as ds:
        r = evaluate_areas(ds, data_window(ds))
    seconds = time.perf_counter() - t0
    shutil.rmtree(out.parent)
    t, d = r.table, r.differences
    t = t.assign(
        seed=seed, covered=(t.ci_low <= t.true_pct_change) & (t.true_pct_change <= t.ci_high)
    )
    d = d.assign(
        seed=seed, covered=(d.ci_low <= d.true_difference) & (d.true_difference <= d.ci_high)
    )
    return t, d, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--seeds", default="1-10", help="first-last")
    a = ap.parse_args()
    lo, hi = (int(x) for x in a.seeds.split("-"))
    tables, diffs, times = [], [], []
    for seed in range(lo, hi + 1):
        t, d, s = replicate(a.persons, seed)
        tables.append(t)
        diffs.append(d)
        times.append(s)
    t, d = pd.concat(tables), pd.concat(diffs)
    print(
        f"{hi - lo + 1} replicates of {a.persons:,} persons, seeds {a.seeds}: "
        f"{sum(times):.0f} s ({sum(times) / len(times):.1f} s each)\n"
    )
    t = t.assign(error=t["pct_change"] - t["true_pct_change"])
    by_area = t[t.group == "all_eligible"].groupby("area", sort=False)
    print("All eligible, by area (3 start dates x replicates):")
    print(
        by_area.agg(
            rows=("covered", "size"),
            coverage=("covered", "mean"),
            mean_error=("error", "mean"),
            mean_truth=("true_pct_change", "mean"),
        )
        .round(3)
        .to_markdown()
    )
    print("\nEvery row, by group:")
    print(t.groupby("group", sort=False).covered.agg(["size", "mean"]).round(3).to_markdown())
    d = d.assign(error=d.difference - d.true_difference)
    print("\nProgramme minus comparator, all eligible:")
    print(
        d[d.group == "all_eligible"]
        .groupby("comparator", sort=False)
        .agg(rows=("covered", "size"), coverage=("covered", "mean"), mean_error=("error", "mean"))
        .round(3)
        .to_markdown()
    )
    print(f"\nEvery difference: {d.covered.mean():.3f} of {len(d)}")


if __name__ == "__main__":
    main()
