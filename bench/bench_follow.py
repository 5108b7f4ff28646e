"""Benchmark of the real-time evaluation (``careval follow``): false alarms and detection month.

For each replicate (seeds ``--seed``, ``--seed + 1``, ...) a synthetic population is generated
with the planted effect ``--effect`` on emergency admissions and followed look by look (every
``--every`` months from ``--first-look``; quarterly by default, to keep a replicate under a
minute) with the matched study's primary estimate on the data cut at each look's month end
(:func:`careval.impact.follow.estimate_at`), against the Lan-DeMets boundary
(:func:`careval.impact.follow.assess`). The risk model is fitted once per replicate as
``careval follow`` fits it (``--no-risk-model``: matching without its score).

The planned maximum information: ``--max-information final`` (the default) takes the largest
information of each replicate's looks (its last, as a rule), so that look spends the whole
alpha and the false-alarm rate is measured against exactly ``alpha``; a number fixes it for
every replicate (a planned design: then the rate is at most ``alpha``, less when the data
never reach it).

Reported: the share of replicates whose estimate ever crossed the boundary (with no effect: the
false-alarm rate, to be compared with alpha +- 1.96 MC standard errors); beside it the share
whose last look alone, as one fixed test at alpha, rejects (with no effect: the estimator's own
type I error, which the boundary cannot correct: when it is above alpha, so will the false
alarms be); the median month of first detection among those that crossed, and the seconds
per replicate. One JSON line per replicate goes to ``--log``.

Usage::

    .venv/bin/python bench/bench_follow.py --replicates 200 --persons 20000 --effect 0.0
    .venv/bin/python bench/bench_follow.py --replicates 50 --persons 20000 --effect -0.2
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from scipy import stats


def replicate(
    seed: int,
    persons: int,
    effect: float,
    fs_args: dict,
    max_information: str,
    work: Path,
    use_risk: bool = True,
) -> dict:
    """One population followed look by look: its looks, whether and when it crossed."""
    from careval.cohort.summary import data_window
    from careval.data.access import Dataset
    from careval.errors import ConfigError
    from careval.impact.follow import (
        FollowSettings,
        assess,
        detection,
        estimate_at,
        look_months,
        risk_model,
    )
    from careval.impact.settings import ImpactSettings
    from careval.risk.evaluate import RiskSettings
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    t0 = time.perf_counter()
    data = work / f"data-{seed}"
    generate(data, SynthSettings(persons=persons, seed=seed, effect=effect))
    t_gen = time.perf_counter() - t0
    impact = ImpactSettings(negative_controls=(), sensitivity=False)
    fs = FollowSettings(**fs_args)
    with Dataset(data) as ds:
        months = look_months(ds, impact, fs)
        start = data_window(ds)[0]
    risk = risk_model(data, RiskSettings().train_date, impact) if use_risk else None
    looks = []
    for m in months:
        try:
            looks.append(estimate_at(data, m, impact, start, risk))
        except ConfigError as exc:
            looks.append({"month": f"{m // 12}-{m % 12 + 1:02d}", "not_estimated": str(exc)})
    infos = [1 / r["se"] ** 2 for r in looks if r.get("se")]
    if max_information == "final" and infos:
        fs = dataclasses.replace(fs, max_information=max(infos))
    elif max_information != "final":
        fs = dataclasses.replace(fs, max_information=float(max_information))
    rows = assess(looks, fs)
    found = detection(rows)
    last = next((r for r in reversed(rows) if r.get("se")), None)
    z_fixed = stats.norm.isf(fs.alpha / fs.sides)
    final_z = last["z"] if last else None
    # The last look alone as a fixed test at alpha: separates the estimator's own type I
    # error (its standard error, its bias) from what the repeated looks add.
    fixed = final_z is not None and bool(
        abs(final_z) >= z_fixed if fs.sides == 2 else -final_z >= z_fixed
    )
    shutil.rmtree(data)
    return {
        "seed": seed,
        "effect": effect,
        "looks": len(rows),
        "estimated": sum(1 for r in rows if r.get("se")),
        "max_information": fs.max_information,
        "crossed": found is not None,
        "detected": found["month"] if found else None,
        "direction": found["direction"] if found else None,
        "final_rate_ratio": last.get("rate_ratio") if last else None,
        "final_z": final_z,
        "final_look_alone_rejects": fixed,
        "seconds_generate": round(t_gen, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_per_look": round((time.perf_counter() - t0 - t_gen) / max(len(rows), 1), 2),
        "rows": [
            {k: r.get(k) for k in ("month", "rate_ratio", "se", "fraction", "critical", "z")}
            for r in rows
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--replicates", type=int, default=3)
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--effect", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--first-look", default="2012-06", help="YYYY-MM")
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--sides", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--spending", default="obrien_fleming")
    p.add_argument("--max-information", default="final", help="'final' or a number")
    p.add_argument("--no-risk-model", action="store_true", help="match without the risk score")
    p.add_argument("--log", type=Path, default=Path("bench_follow.jsonl"))
    a = p.parse_args()
    fs_args = {
        "first_look": dt.date.fromisoformat(a.first_look + "-01"),
        "every": a.every,
        "sides": a.sides,
        "alpha": a.alpha,
        "spending": a.spending,
    }
    work = Path(tempfile.mkdtemp(prefix="bench_follow."))
    out = []
    try:
        with a.log.open("w", encoding="utf-8") as f:
            for i in range(a.replicates):
                r = replicate(
                    a.seed + i,
                    a.persons,
                    a.effect,
                    fs_args,
                    a.max_information,
                    work,
                    not a.no_risk_model,
                )
                f.write(json.dumps(r) + "\n")
                f.flush()
                out.append(r)
                print(
                    f"seed {r['seed']}: {r['estimated']}/{r['looks']} looks, crossed "
                    f"{r['crossed']} {r['detected'] or ''}, {r['seconds']} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(out)
    rate = sum(r["crossed"] for r in out) / n
    months = sorted(r["detected"] for r in out if r["detected"])
    summary = {
        "replicates": n,
        "persons": a.persons,
        "effect": a.effect,
        "every_months": a.every,
        "sides": a.sides,
        "alpha": a.alpha,
        "spending": a.spending,
        "max_information": a.max_information,
        "risk_model": not a.no_risk_model,
        "crossed_share": rate,
        "mc_se": math.sqrt(max(rate * (1 - rate), 1e-12) / n),
        "mc_se_at_alpha": math.sqrt(a.alpha * (1 - a.alpha) / n),
        "final_look_alone_rejects_share": sum(r["final_look_alone_rejects"] for r in out) / n,
        "median_detection_month": months[len(months) // 2] if months else None,
        "seconds_per_replicate": statistics.mean(r["seconds"] for r in out),
        "seconds_per_look": statistics.mean(r["seconds_per_look"] for r in out),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
