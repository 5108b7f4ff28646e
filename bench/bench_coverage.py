"""The replicate coverage grid (issue 19): every estimate with a planted truth, over replicates.

For each rate ratio of ``--effects`` (``SynthSettings.effect = rr - 1``; the diabetes effects
scale with it, ``SynthSettings.diabetes_scale``) and seeds 1 .. ``--replicates``, generate a
population of ``--persons``, then on it:

- run the matched study (:func:`careval.impact.study.evaluate_impact`) as ``careval run`` does
  but without the risk model (the propensity score is fitted on age, prior use, conditions and
  deprivation, not on a trained risk score), without the sensitivity variants and without the
  outcome negative controls (the placebo starts still run): exact matching on entry month, sex
  and age band, up to 5 controls with replacement within a 0.2 SD caliper, the two-way fixed-
  effects DiD clustered on set and person. Outcomes: the default seven, plus every built-in or
  table-named outcome whose name has a truth (``TRUTH_KEYS``, or the same name in
  ``truth.json`` effects, e.g. ``community_contacts`` counted from its table);
- deaths (the study's mortality rate ratio; truth 1.0: the generator plants no effect on death);
- the diabetes indicators' difference in change against the comparison group
  (:func:`careval.indicators.evaluate_indicators`, the ``change vs comparison`` rows of the
  mean HbA1c, cholesterol, systolic and diastolic pressure), against ``effects.diabetes``;
- Table 2's pilot-minus-comparator differences (:func:`careval.monitoring.areas.evaluate_areas`),
  against their ``true_difference`` (:func:`careval.monitoring.truth.expected_area_changes`).

One JSON line per replicate goes to ``--log``; at the end, per effect and quantity: coverage of
the 95% CI (Monte Carlo SE), mean bias (log scale for ratios; as % of the effect, or absolute
when there is none), SD and mean CI width, and for ratios the paired contrast with rr = 1.0 of
the same seed (same population and care plans, so most of the noise cancels).

Usage::

    .venv/bin/python bench/bench_coverage.py --replicates 50 --persons 30000 --jobs 2 \
        --log bench-grid.jsonl --summary bench-grid.json
    .venv/bin/python bench/bench_coverage.py --from-log bench-grid.jsonl   # summary only
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
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
Z = 1.959963984540054


def _outcomes(ds: Any, effects: dict[str, Any]) -> tuple:
    """The default outcomes plus every outcome with a truth that the defaults leave out."""
    from careval.impact.outcome_settings import BUILTIN_OUTCOMES, DEFAULT_OUTCOMES
    from careval.impact.settings import OutcomeSettings
    from careval.impact.study import TRUTH_KEYS

    names = {o.name for o in DEFAULT_OUTCOMES}
    extra = [o for n, o in BUILTIN_OUTCOMES.items() if n not in names and _truth_of(n, effects)]
    names |= {o.name for o in extra}
    mapped = set(TRUTH_KEYS.values())
    for key, e in effects.items():  # a truth named after a table no outcome counts yet
        if key in names or key in mapped or not isinstance(e, dict) or "rate_ratio" not in e:
            continue
        if ds.has(key):
            try:
                extra.append(OutcomeSettings(table=key))
            except Exception:  # noqa: BLE001 - not an event table: no outcome of that name
                continue
    return (*DEFAULT_OUTCOMES, *extra)


def _truth_of(name: str, effects: dict[str, Any]) -> float | None:
    """The planted rate ratio of the outcome ``name`` (``TRUTH_KEYS``, else the same key)."""
    from careval.impact.study import TRUTH_KEYS

    e = effects.get(TRUTH_KEYS.get(name, name))
    if isinstance(e, dict) and isinstance(e.get("rate_ratio"), int | float):
        return float(e["rate_ratio"])
    return None


def _ratio_row(name: str, est: float, lo: float, hi: float, truth: float) -> dict[str, Any]:
    return {
        "quantity": name,
        "scale": "log",
        "estimate": math.log(est),
        "ci_low": math.log(lo),
        "ci_high": math.log(hi),
        "truth": math.log(truth),
    }


def _diff_row(name: str, est: float, lo: float, hi: float, truth: float) -> dict[str, Any]:
    return {
        "quantity": name,
        "scale": "difference",
        "estimate": est,
        "ci_low": lo,
        "ci_high": hi,
        "truth": truth,
    }


def _area_rows(areas: Any) -> list[dict[str, Any]]:
    """Table 2's programme-minus-comparator differences, each against the ``true_difference``
    :func:`careval.monitoring.areas.evaluate_areas` gives on synthetic data (none without)."""
    from careval.data.areas import pooled_name

    if "true_difference" not in areas.differences:
        return []
    programme = pooled_name(areas.settings.programme_areas)
    return [
        _diff_row(
            f"table2 {d.start} {d.group} {programme}-{d.comparator}",
            d.difference,
            d.ci_low,
            d.ci_high,
            d.true_difference,
        )
        for d in areas.differences.itertuples()
    ]


def replicate(rr: float, seed: int, persons: int) -> dict[str, Any]:
    """One population and every estimate with a truth (one JSON line of the log)."""
    from careval.data.access import Dataset
    from careval.impact.settings import ImpactSettings
    from careval.impact.study import evaluate_impact
    from careval.indicators import evaluate_indicators
    from careval.monitoring.areas import evaluate_areas
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    tmp = Path(tempfile.mkdtemp(prefix="careval-grid-"))
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        generate(tmp / "d", SynthSettings(persons=persons, seed=seed, effect=round(rr - 1, 10)))
        t_gen = time.perf_counter() - t0
        doc = json.loads((tmp / "d" / "truth.json").read_text(encoding="utf-8"))
        effects = doc["effects"]
        with Dataset(tmp / "d") as ds:
            st = ImpactSettings(
                sensitivity=False, negative_controls=(), outcomes=_outcomes(ds, effects)
            )
            r = evaluate_impact(ds, WINDOW, st)
            for name, o in r.outcomes.items():
                truth = _truth_of(name, effects)
                if truth is not None and "rate_ratio" in o:
                    rows.append(
                        _ratio_row(
                            name,
                            o["rate_ratio"],
                            o["rate_ratio_ci_low"],
                            o["rate_ratio_ci_high"],
                            truth,
                        )
                    )
            m = r.mortality
            if m.get("rate_ratio"):
                rows.append(
                    _ratio_row(
                        "deaths",
                        m["rate_ratio"],
                        m["rate_ratio_ci_low"],
                        m["rate_ratio_ci_high"],
                        r.truth.get("deaths", 1.0),
                    )
                )
            ind = evaluate_indicators(ds, WINDOW)
            t = ind.before_after  # its truth column: careval.indicators.before_after.beside_truth
            if "truth" in t:
                for row in t[t.truth.notna() & t.estimate.notna()].itertuples():
                    measure = str(row.quantity).split()[1]
                    rows.append(
                        _diff_row(
                            f"diabetes {measure}", row.estimate, row.ci_low, row.ci_high, row.truth
                        )
                    )
            areas = evaluate_areas(ds, WINDOW)
            rows += _area_rows(areas)
            n_treated = r.attrition["treated_matched"]
            estimated = sorted(r.outcomes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for x in rows:
        x["covers"] = bool(x["ci_low"] <= x["truth"] <= x["ci_high"])
    return {
        "rate_ratio": rr,
        "seed": seed,
        "persons": persons,
        "n_treated_matched": n_treated,
        "outcomes_estimated": estimated,
        "generate_seconds": round(t_gen, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rate ratio and quantity: coverage (MC SE), bias, SD, mean CI width; for ratios the
    paired contrast with rr = 1.0 of the same seed."""
    by: dict[tuple[float, str], list[dict[str, Any]]] = defaultdict(list)
    est: dict[tuple[float, str, int], float] = {}
    for rec in records:
        for x in rec["rows"]:
            by[(rec["rate_ratio"], x["quantity"])].append(x)
            est[(rec["rate_ratio"], x["quantity"], rec["seed"])] = x["estimate"]
    seeds = defaultdict(set)
    for rr, q, s in est:
        seeds[(rr, q)].add(s)
    out: dict[str, Any] = {}
    for (rr, q), xs in sorted(by.items()):
        n = len(xs)
        cov = statistics.fmean(float(x["covers"]) for x in xs)
        truth = statistics.fmean(x["truth"] for x in xs)
        e = [x["estimate"] for x in xs]
        bias = statistics.fmean(e) - truth
        row: dict[str, Any] = {
            "scale": xs[0]["scale"],
            "n": n,
            "truth": truth,
            "coverage": cov,
            "coverage_mc_se": math.sqrt(cov * (1 - cov) / n),
            "mean_estimate": statistics.fmean(e),
            "bias": bias,
            "bias_mc_se": statistics.stdev(e) / math.sqrt(n) if n > 1 else math.nan,
            "bias_pct_of_effect": 100 * bias / abs(truth) if abs(truth) > 1e-12 else None,
            "sd": statistics.stdev(e) if n > 1 else math.nan,
            "mean_ci_width": statistics.fmean(x["ci_high"] - x["ci_low"] for x in xs),
            "mean_se": statistics.fmean((x["ci_high"] - x["ci_low"]) / (2 * Z) for x in xs),
        }
        both = sorted(seeds[(rr, q)] & seeds.get((1.0, q), set()))
        if xs[0]["scale"] == "log" and rr != 1.0 and len(both) > 1:
            t0 = statistics.fmean(x["truth"] for x in by[(1.0, q)])
            d = [est[(rr, q, s)] - est[(1.0, q, s)] for s in both]
            row["paired_n"] = len(both)
            row["paired_bias"] = statistics.fmean(d) - (truth - t0)
            row["paired_bias_mc_se"] = statistics.stdev(d) / math.sqrt(len(d))
        out[f"rr={rr:g} {q}"] = row
    secs = [r["seconds"] for r in records]
    return {
        "replicates": len(records),
        "mean_seconds_per_replicate": statistics.fmean(secs) if secs else None,
        "quantities": out,
    }


def markdown(summary: dict[str, Any]) -> str:
    """The summary as a Markdown table (log-scale bias as % of the effect; absolute at rr 1)."""
    lines = [
        "| rr | quantity | n | truth | coverage (MC SE) | mean bias | bias % of effect | SD | "
        "mean CI width | paired bias vs rr 1 (MC SE) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in summary["quantities"].items():
        rr, q = key.split(" ", 1)
        pct = "-" if r["bias_pct_of_effect"] is None else f"{r['bias_pct_of_effect']:+.0f}%"
        paired = (
            f"{r['paired_bias']:+.3f} ({r['paired_bias_mc_se']:.3f})" if "paired_bias" in r else "-"
        )
        lines.append(
            f"| {rr[3:]} | {q} | {r['n']} | {r['truth']:.3g} | {r['coverage']:.2f} "
            f"({r['coverage_mc_se']:.2f}) | {r['bias']:+.3f} ({r['bias_mc_se']:.3f}) | {pct} | "
            f"{r['sd']:.3f} | {r['mean_ci_width']:.3f} | {paired} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--effects", type=float, nargs="+", default=[0.8, 0.9, 1.0])
    ap.add_argument("--replicates", type=int, default=50)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--persons", type=int, default=30_000)
    ap.add_argument("--jobs", type=int, default=1, help="replicates run side by side")
    ap.add_argument("--log", type=Path, default=Path("bench-grid.jsonl"))
    ap.add_argument("--summary", type=Path, default=None, help="write the summary JSON here")
    ap.add_argument("--from-log", type=Path, default=None, help="summarise a log, run nothing")
    a = ap.parse_args()
    if a.from_log is not None:
        records = [json.loads(x) for x in a.from_log.read_text(encoding="utf-8").splitlines()]
    else:
        tasks = [
            (rr, s, a.persons)
            for s in range(a.first_seed, a.first_seed + a.replicates)
            for rr in a.effects
        ]
        records = []
        t0 = time.perf_counter()
        with a.log.open("w", encoding="utf-8") as f:

            def keep(rec: dict[str, Any]) -> None:
                records.append(rec)
                f.write(json.dumps(rec) + "\n")
                f.flush()
                covered = sum(x["covers"] for x in rec["rows"])
                print(
                    f"rr {rec['rate_ratio']:g} seed {rec['seed']}: {covered}/{len(rec['rows'])} "
                    f"covered, {rec['seconds']} s",
                    flush=True,
                )

            if a.jobs <= 1:
                for t in tasks:
                    keep(replicate(*t))
            else:
                with ProcessPoolExecutor(max_workers=a.jobs) as pool:
                    for fut in as_completed([pool.submit(replicate, *t) for t in tasks]):
                        keep(fut.result())
        print(f"wall time {time.perf_counter() - t0:.0f} s for {len(tasks)} replicates")
    summary = summarise(records)
    if a.summary is not None:
        a.summary.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(markdown(summary))


if __name__ == "__main__":
    main()
