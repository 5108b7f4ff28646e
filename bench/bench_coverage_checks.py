"""Checks behind the coverage grid (issue 19): where a bias of the matched study comes from.

For each seed, generate a population (rate ratio ``--rr``), build the default study's matched
panel (as :mod:`bench_coverage` runs it: no risk model, unless ``--risk-model``) and report,
one JSON line a seed:

- ``thin_<r>``: the effect-dependent part of the estimator. The treated's emergency admissions
  from month ``effect_from_month`` on are thinned on the same panel (each kept with probability
  ``r``, as the generator plants its effect), ten draws; the mean change of the estimated log
  rate ratio should be ``log r`` if the estimator neither dilutes nor pulls toward the null.
- ``<outcome>``: the study's estimate (one unit per (set, control) weighted 1/k, months
  followed while registered) beside two earlier designs rebuilt on the same population:
  ``mean_unit``, the mean of a set's living controls as one unit (its make-up changes as frail
  controls die or leave), and ``unregistered``, months kept after a person leaves their
  practice (zeros the extract cannot see, more of them among the longer-lived controls).
- ``deaths``: the mortality rate ratio as the study computes it (truth 1).

Usage::

    .venv/bin/python bench/bench_coverage_checks.py --rr 1.0 --persons 30000 --seeds 1 8
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
REG = ["impl", "post", "impl_treated", "post_treated"]
OUTS = ["emergency_admissions", "outpatient_attendances", "elective_admissions", "ae_attendances"]


def _post(panel: pd.DataFrame, outcome: str) -> float:
    from careval.impact.fastfe import fit_points

    w = "w" if "w" in panel else None
    fit = fit_points(panel, outcome, REG, "poisson", ("unit", "month"), tol=1e-8, weights=w)
    return float(fit.coefficients.set_index("term").loc["post_treated", "estimate"])


def _mean_unit(panel: pd.DataFrame) -> pd.DataFrame:
    """The panel with each set's living controls averaged into one unit per month."""
    t = panel[panel.treated == 1]
    c = panel[panel.treated == 0]
    keep = ["set", "k", "month", "treated", *REG]
    mean = c.groupby(["set", "k"], sort=False)[[*keep[2:], *OUTS]].mean().reset_index()
    mean["unit"] = mean["set"] + int(panel.unit.max()) + 1
    return pd.concat([t[[*keep, "unit", *OUTS]], mean[[*keep, "unit", *OUTS]]], ignore_index=True)


def _deaths(study, res) -> float:  # type: ignore[no-untyped-def]
    """The study's mortality rate ratio (followed from the month after entry, a landmark that
    keeps the plan month's guaranteed survival out of both arms)."""
    from careval.impact.mortality import death_rate_ratio, follow_up_rows

    return float(death_rate_ratio(follow_up_rows(study, res))["rate_ratio"])


def check(rr: float, seed: int, persons: int, risk_model: bool = False) -> dict:
    """One seed's checks (see the module docstring)."""
    from careval.data.access import Dataset
    from careval.impact.matching import match
    from careval.impact.outcomes import matched_panel
    from careval.impact.population import covariates, study_population
    from careval.impact.settings import ImpactSettings
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="careval-gridcheck-"))
    try:
        generate(tmp / "d", SynthSettings(persons=persons, seed=seed, effect=round(rr - 1, 10)))
        st = ImpactSettings(sensitivity=False, negative_controls=())
        with Dataset(tmp / "d") as ds:
            model = None
            if risk_model:  # as careval run matches: on the trained risk score too
                from careval.risk.evaluate import RiskSettings, evaluate_risk

                model = evaluate_risk(ds, RiskSettings(compare_lightgbm=False)).model
            study = study_population(ds, WINDOW, st, model, list(st.outcomes))
            res = match(study.frame, "treated", covariates(study.frame), st.match)
            panel = matched_panel(study, res, st, OUTS)
            pn = study.panel
            anyone = dataclasses.replace(pn, registered=np.ones_like(pn.registered))
            unregistered = matched_panel(dataclasses.replace(study, panel=anyone), res, st, OUTS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mean = _mean_unit(panel)
    row: dict = {"rr": rr, "seed": seed, "n_sets": int(panel.set.nunique())}
    for o in OUTS:
        row[o] = {
            "study": _post(panel, o),
            "mean_unit": _post(mean, o),
            "unregistered": _post(unregistered, o),
        }
    rng = np.random.default_rng(seed)
    y = panel.emergency_admissions.to_numpy().astype(np.int64)
    hit = ((panel.treated == 1) & (panel.k >= st.effect_from_month)).to_numpy()
    base = row["emergency_admissions"]["study"]
    for r in (0.9, 0.8):
        d = []
        for _ in range(10):
            thinned = panel.copy()
            thinned.loc[hit, "emergency_admissions"] = rng.binomial(y[hit], r)
            d.append(_post(thinned, "emergency_admissions") - base)
        row[f"thin_{r:g}"] = {"change": statistics.fmean(d), "expected": math.log(r)}
    c = panel[panel.treated == 0]
    alive = c.groupby(["set", "k"]).size().groupby(level="k").mean()
    row["controls_followed_per_set_k0_k12_k24"] = [float(alive.get(k, np.nan)) for k in (0, 12, 24)]
    row["deaths"] = _deaths(study, res)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def seed_arguments(ap: argparse.ArgumentParser) -> None:
    """The rate ratio, population size and seed range these checks share."""
    ap.add_argument("--rr", type=float, default=1.0)
    ap.add_argument("--persons", type=int, default=30_000)
    ap.add_argument("--seeds", type=int, nargs=2, default=[1, 8], metavar=("FIRST", "LAST"))


def mean_se(xs: list[float]) -> str:
    """The mean and its Monte Carlo standard error, as the checks print them."""
    se = statistics.stdev(xs) / math.sqrt(len(xs))
    return f"{statistics.fmean(xs):+.4f} ({se:.4f})"


def logged_or_run(check_one: Callable[[float, int, int], dict]) -> list[dict]:
    """The rows of ``--from-log`` files when given; else ``check_one(rr, seed, persons)`` for
    each seed, each row printed as a JSON line as it comes (the checks' shared command line)."""
    ap = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").split("\n")[0])
    seed_arguments(ap)
    ap.add_argument("--from-log", type=Path, nargs="*", help="summarise these JSON-lines logs")
    a = ap.parse_args()
    if a.from_log:
        return [json.loads(x) for p in a.from_log for x in p.read_text().splitlines() if x]
    rows = []
    for seed in range(a.seeds[0], a.seeds[1] + 1):
        rows.append(check_one(a.rr, seed, a.persons))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    seed_arguments(ap)
    ap.add_argument(
        "--risk-model", action="store_true", help="match on the risk score too (careval run)"
    )
    a = ap.parse_args()
    rows = []
    for seed in range(a.seeds[0], a.seeds[1] + 1):
        rows.append(check(a.rr, seed, a.persons, a.risk_model))
        print(json.dumps(rows[-1]), flush=True)

    truth = math.log(a.rr)
    for o in OUTS:
        # A&E carries part of the emergency effect (events.ae_truth): its truth is 0 at rr 1 only
        t = (
            truth
            if o == "emergency_admissions"
            else 0.0
            if a.rr == 1.0 or o != "ae_attendances"
            else float("nan")
        )
        got = {v: [r[o][v] for r in rows] for v in ("study", "mean_unit", "unregistered")}
        print(
            f"{o}: study - truth {mean_se([x - t for x in got['study']])}; "
            + "; ".join(
                f"{v} - study {mean_se([b - c for b, c in zip(got[v], got['study'], strict=True)])}"
                for v in ("mean_unit", "unregistered")
            )
        )
    for r in ("0.9", "0.8"):
        d = [x[f"thin_{r}"]["change"] - x[f"thin_{r}"]["expected"] for x in rows]
        print(f"thinning to {r}: change - log({r}) = {mean_se(d)}")
    print(f"deaths: mean log rate ratio {mean_se([math.log(r['deaths']) for r in rows])}")


if __name__ == "__main__":
    main()
