"""Benchmark of the risk step: features at two index dates, training and temporal validation.

Times :func:`careval.risk.evaluate.evaluate_risk` (features at the training and validation
dates computed in the engine, the logistic model fitted and validated, the oracle AUC from the
truth, targeting tables) on an existing dataset, in this process, and prints one Markdown row
with wall time, peak resident memory and the model's figures. ``--lightgbm`` adds the
gradient-boosted comparison. Make the dataset first, e.g.
``careval synth --out /tmp/d2300k --persons 2300000``, then
``.venv/bin/python bench/bench_risk.py /tmp/d2300k [--lightgbm]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import time
from pathlib import Path

from careval.data.access import Dataset
from careval.risk.evaluate import RiskSettings, evaluate_risk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path)
    ap.add_argument("--lightgbm", action="store_true", help="also fit the LightGBM comparison")
    a = ap.parse_args()
    persons = json.loads((a.data / "dataset.json").read_text())["rows"]["persons"]
    t0 = time.perf_counter()
    with Dataset(a.data) as ds:
        result = evaluate_risk(ds, RiskSettings(compare_lightgbm=a.lightgbm))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    f = result.figures
    cells = [
        dt.date.today().isoformat(),
        f"{persons:,}",
        "logistic + LightGBM" if a.lightgbm else "logistic",
        f"{seconds:.0f} s",
        f"{peak:.1f} GiB",
        f"{f['auc']:.3f}",
        f"{f['oracle_auc']:.3f}" if "oracle_auc" in f else "-",
        f"{f['auc'] / f['oracle_auc']:.3f}" if "oracle_auc" in f else "-",
        f"{f['calibration_slope']:.3f}",
        f"{result.lightgbm['auc']:.3f}" if result.lightgbm else "-",
        f"{platform.processor() or platform.machine()}",
    ]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
