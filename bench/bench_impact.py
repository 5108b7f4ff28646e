"""Benchmarks of the matched impact study.

``coverage``: generate ``--replicates`` small synthetic populations (seeds 1, 2, ...) with a known
effect, run the default study on each (risk model trained as in ``careval run``), and report the
95% CI coverage of the true emergency-admission rate ratio, the bias, and the naive before-after
estimate beside it. One JSON line per replicate goes to ``--log`` so a run can be inspected.

``calibration``: the same replicates with and without a planted hidden confounder
(``SynthSettings.hidden_bias``: unrecorded decline that raises all hospital activity of the
care-planned from their plan), reporting the coverage of the true emergency-admission rate ratio by
the uncalibrated and the calibrated (negative-control) intervals, EASE and the empirical null.

``match``: time :func:`careval.impact.matching.nearest` for 10,000 treated against 2,000,000
controls in exact strata, with and without replacement.

Usage::

    .venv/bin/python bench/bench_impact.py coverage --replicates 50 --persons 120000
    .venv/bin/python bench/bench_impact.py calibration --replicates 50 --persons 40000 \
        --hidden-bias 0 0.3
    .venv/bin/python bench/bench_impact.py match
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def coverage(replicates: int, persons: int, effect: float, log: Path) -> dict:
    """Coverage and bias of the matched estimate over replicate populations."""
    from careval.data.access import Dataset
    from careval.impact.study import evaluate_impact
    from careval.risk.model import OUTCOME, RiskModel, design_matrix, risk_frame
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    window = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
    truth = 1.0 + effect
    rows = []
    with log.open("w", encoding="utf-8") as f:
        for seed in range(1, replicates + 1):
            tmp = Path(tempfile.mkdtemp(prefix="careval-cov-"))
            t0 = time.perf_counter()
            generate(tmp / "d", SynthSettings(persons=persons, seed=seed, effect=effect))
            with Dataset(tmp / "d") as ds:
                train = risk_frame(ds, dt.date(2011, 4, 1))
                model = RiskModel().fit(design_matrix(train), train[OUTCOME].to_numpy())
                r = evaluate_impact(ds, window, risk_model=model)
            shutil.rmtree(tmp)
            e = r.outcomes["emergency_admissions"]
            row = {
                "seed": seed,
                "rate_ratio": e["rate_ratio"],
                "ci_low": e["rate_ratio_ci_low"],
                "ci_high": e["rate_ratio_ci_high"],
                "covers": e["rate_ratio_ci_low"] <= truth <= e["rate_ratio_ci_high"],
                "naive_rate_ratio": r.naive["rate_ratio"],
                "naive_ci_high": r.naive["rate_ratio_ci_high"],
                "n_treated": r.attrition["treated_matched"],
                "max_abs_smd_after": r.max_abs_smd_after,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(json.dumps(row), flush=True)
    rr = [x["rate_ratio"] for x in rows]
    logs = [math.log(x) for x in rr]
    mean_rr = statistics.fmean(rr)
    out = {
        "replicates": replicates,
        "persons": persons,
        "true_rate_ratio": truth,
        "coverage": statistics.fmean(float(x["covers"]) for x in rows),
        "mean_rate_ratio": mean_rr,
        "mc_se_mean_rate_ratio": statistics.stdev(rr) / math.sqrt(len(rr)),
        "geometric_mean_rate_ratio": math.exp(statistics.fmean(logs)),
        "bias": mean_rr - truth,
        "bias_share_of_effect": (mean_rr - truth) / effect if effect else None,
        "sd_rate_ratio": statistics.stdev(rr),
        "mean_naive_rate_ratio": statistics.fmean(x["naive_rate_ratio"] for x in rows),
        "naive_significant_fall_share": statistics.fmean(
            float(x["naive_ci_high"] < 1) for x in rows
        ),
        "mean_treated_matched": statistics.fmean(x["n_treated"] for x in rows),
        "mean_seconds": statistics.fmean(x["seconds"] for x in rows),
    }
    print(json.dumps(out, indent=2))
    return out


def calibration(
    replicates: int, persons: int, effect: float, biases: list[float], log: Path
) -> dict:
    """Uncalibrated and calibrated coverage over replicates, for each planted hidden bias."""
    from careval.data.access import Dataset
    from careval.impact.settings import ImpactSettings
    from careval.impact.study import evaluate_impact
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    window = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
    truth = 1.0 + effect
    settings = ImpactSettings(sensitivity=False)  # the variants are not needed here
    summary: dict = {"replicates": replicates, "persons": persons, "true_rate_ratio": truth}
    with log.open("w", encoding="utf-8") as f:
        for bias in biases:
            rows = []
            for seed in range(1, replicates + 1):
                tmp = Path(tempfile.mkdtemp(prefix="careval-cal-"))
                t0 = time.perf_counter()
                synth = SynthSettings(persons=persons, seed=seed, effect=effect, hidden_bias=bias)
                generate(tmp / "d", synth)
                with Dataset(tmp / "d") as ds:
                    r = evaluate_impact(ds, window, settings)
                shutil.rmtree(tmp)
                e = r.outcomes["emergency_admissions"]
                cal = e.get("calibrated") or {}
                row = {
                    "hidden_bias": bias,
                    "seed": seed,
                    "rate_ratio": e["rate_ratio"],
                    "covers": e["rate_ratio_ci_low"] <= truth <= e["rate_ratio_ci_high"],
                    "calibrated_covers": bool(cal)
                    and cal["rate_ratio_ci_low"] <= truth <= cal["rate_ratio_ci_high"],
                    "width": math.log(e["rate_ratio_ci_high"] / e["rate_ratio_ci_low"]),
                    "calibrated_width": math.log(
                        cal["rate_ratio_ci_high"] / cal["rate_ratio_ci_low"]
                    )
                    if cal
                    else None,
                    "null_mean": r.empirical_null.get("mean"),
                    "null_sd": r.empirical_null.get("sd"),
                    "ease": r.empirical_null.get("ease"),
                    "for_decisions": e["diagnostics"]["for_decisions"],
                    "n_treated": r.attrition["treated_matched"],
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                rows.append(row)
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(json.dumps(row), flush=True)
            n = len(rows)
            cov = sum(x["covers"] for x in rows)
            ccov = sum(x["calibrated_covers"] for x in rows)
            summary[f"hidden_bias={bias:g}"] = {
                "coverage": cov / n,
                "coverage_mc_se": math.sqrt(cov / n * (1 - cov / n) / n),
                "calibrated_coverage": ccov / n,
                "calibrated_coverage_mc_se": math.sqrt(ccov / n * (1 - ccov / n) / n),
                "geometric_mean_rate_ratio": math.exp(
                    statistics.fmean(math.log(x["rate_ratio"]) for x in rows)
                ),
                "mean_null_mean": statistics.fmean(x["null_mean"] for x in rows),
                "mean_null_sd": statistics.fmean(x["null_sd"] for x in rows),
                "mean_ease": statistics.fmean(x["ease"] for x in rows),
                "share_failing_diagnostics": statistics.fmean(
                    float(not x["for_decisions"]) for x in rows
                ),
                "median_width": statistics.median(x["width"] for x in rows),
                "median_calibrated_width": statistics.median(
                    x["calibrated_width"] for x in rows if x["calibrated_width"] is not None
                ),
                "mean_treated_matched": statistics.fmean(x["n_treated"] for x in rows),
                "mean_seconds": statistics.fmean(x["seconds"] for x in rows),
            }
    print(json.dumps(summary, indent=2))
    return summary


def match_speed(n_treated: int = 10_000, n_controls: int = 2_000_000) -> None:
    """Greedy matching at registry scale, in 8 exact strata (sex x 4 age bands)."""
    from careval.impact.matching import nearest

    rng = np.random.default_rng(0)
    st, sc = rng.beta(2, 5, n_treated), rng.beta(1.5, 6, n_controls)
    kt, kc = rng.integers(0, 8, n_treated), rng.integers(0, 8, n_controls)
    for replace in (False, True):
        for ratio in (1, 5):
            t0 = time.perf_counter()
            p = nearest(
                st, sc, strata_t=kt, strata_c=kc, ratio=ratio, caliper=0.01, replace=replace
            )
            sec = time.perf_counter() - t0
            print(
                f"| {n_treated:,} | {n_controls:,} | {ratio} | {'yes' if replace else 'no'} | "
                f"{sec:.2f} | {p.n_treated_matched:,} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("coverage")
    c.add_argument("--replicates", type=int, default=50)
    c.add_argument("--persons", type=int, default=120_000)
    c.add_argument("--effect", type=float, default=-0.10)
    c.add_argument("--log", type=Path, default=Path("bench-coverage.jsonl"))
    k = sub.add_parser("calibration", help="calibrated coverage with and without hidden bias")
    k.add_argument("--replicates", type=int, default=50)
    k.add_argument("--persons", type=int, default=40_000)
    k.add_argument("--effect", type=float, default=-0.10)
    k.add_argument("--hidden-bias", type=float, nargs="+", default=[0.0, 0.3])
    k.add_argument("--log", type=Path, default=Path("bench-calibration.jsonl"))
    sub.add_parser("match")
    a = ap.parse_args()
    if a.cmd == "coverage":
        coverage(a.replicates, a.persons, a.effect, a.log)
    elif a.cmd == "calibration":
        calibration(a.replicates, a.persons, a.effect, a.hidden_bias, a.log)
    else:
        match_speed()


if __name__ == "__main__":
    main()
