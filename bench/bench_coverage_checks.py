"""Checks behind the coverage grid (issue 19): where a bias of the matched study comes from.

For each seed, generate a population (rate ratio ``--rr``), build the default study's matched
panel (as :mod:`bench_coverage` runs it: no risk model) and report, one JSON line a seed:

- ``thin_<r>``: the effect-dependent part of the estimator. The treated's emergency admissions
  from month ``effect_from_month`` on are thinned on the same panel (each kept with probability
  ``r``, as the generator plants its effect), ten draws; the mean change of the estimated log
  rate ratio should be ``log r`` if the estimator neither dilutes nor pulls toward the null.
- ``<outcome>``: the estimate with the study's unit (the mean of a set's living controls, one
  fixed effect) against one unit per (set, control), each with its own fixed effect. They differ
  when controls' deaths change the mean unit's make-up (survivors have lower rates).
- ``deaths``: the mortality rate ratio as the study computes it, and with the entry month left
  out of both arms (the generator care-plans only people who live through their plan month,
  while a control need only be alive on its first day).

Usage::

    .venv/bin/python bench/bench_coverage_checks.py --rr 1.0 --persons 30000 --seeds 1 8
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
import pandas as pd

WINDOW = (dt.date(2009, 4, 1), dt.date(2014, 3, 31))
REG = ["impl", "post", "impl_treated", "post_treated"]
OUTS = ["emergency_admissions", "outpatient_attendances", "elective_admissions", "ae_attendances"]


def _post(panel: pd.DataFrame, outcome: str) -> float:
    from careval.impact.fastfe import fit_points

    fit = fit_points(panel, outcome, REG, "poisson", ("unit", "month"), tol=1e-8)
    return float(fit.coefficients.set_index("term").loc["post_treated", "estimate"])


def _per_control(panel: pd.DataFrame, pieces: pd.DataFrame) -> pd.DataFrame:
    """The panel with one unit per (set, control) instead of the mean of the living controls."""
    t = panel[panel.treated == 1]
    base = panel.iloc[pieces.row.to_numpy()]
    keep = ["set", "k", "month", "treated", *REG]
    c = pd.DataFrame({k: base[k].to_numpy() for k in keep})
    key = pd.MultiIndex.from_arrays([c.set.to_numpy(), pieces.person.to_numpy()])
    c["unit"] = pd.factorize(key)[0] + int(panel.unit.max()) + 1
    for o in OUTS:
        c[o] = pieces[o].to_numpy()
    return pd.concat([t[[*keep, "unit", *OUTS]], c], ignore_index=True)


def _deaths(study, res, lag: int) -> dict[str, float]:
    """Mortality rate ratio from the entry month (the study's) and from the month after."""
    from careval.impact.measures import month_start
    from careval.impact.mortality import death_rate_ratio, follow_up_rows

    rows = follow_up_rows(study, res)
    out = {"from_entry": float(death_rate_ratio(rows)["rate_ratio"])}
    f, pn = study.frame, study.panel
    tr = res.treated_rows[res.pairs.treated]
    sets = np.unique(tr)
    co = res.control_rows[res.pairs.control]
    who = np.r_[sets, co]
    entry = f.entry_month.to_numpy()[who]
    death = pn.death_day[f.panel_row.to_numpy()[who]].astype(np.int64)
    first = month_start(entry)
    second = month_start(entry + 1)
    in_entry = (death >= first) & (death < second)
    gone = np.minimum(death, second) - first
    later = rows.assign(
        deaths=np.where(in_entry, 0.0, rows.deaths.to_numpy()),
        years=np.maximum(rows.years.to_numpy() - gone / 365.25, 0.0),
    )
    later = later[~in_entry | (rows.treated.to_numpy() == 1)]
    out["from_month_after_entry"] = float(death_rate_ratio(later)["rate_ratio"])
    out["treated_deaths_in_entry_month"] = int(in_entry[: sets.size].sum())
    out["control_deaths_in_entry_month_share"] = float(in_entry[sets.size :].mean())
    return out


def check(rr: float, seed: int, persons: int) -> dict:
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
            study = study_population(ds, WINDOW, st, None, list(st.outcomes))
            res = match(study.frame, "treated", covariates(study.frame), st.match)
            panel, pieces = matched_panel(study, res, st, OUTS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = _per_control(panel, pieces)
    row: dict = {"rr": rr, "seed": seed, "n_sets": int(panel.set.nunique())}
    for o in OUTS:
        row[o] = {"mean_unit": _post(panel, o), "per_control": _post(per, o)}
    rng = np.random.default_rng(seed)
    y = panel.emergency_admissions.to_numpy().astype(np.int64)
    hit = ((panel.treated == 1) & (panel.k >= st.effect_from_month)).to_numpy()
    base = row["emergency_admissions"]["mean_unit"]
    for r in (0.9, 0.8):
        d = []
        for _ in range(10):
            thinned = panel.copy()
            thinned.loc[hit, "emergency_admissions"] = rng.binomial(y[hit], r)
            d.append(_post(thinned, "emergency_admissions") - base)
        row[f"thin_{r:g}"] = {"change": statistics.fmean(d), "expected": math.log(r)}
    alive = pieces.groupby(panel.k.to_numpy()[pieces.row.to_numpy()]).n_alive.mean()
    row["controls_alive_per_set_k0_k12_k24"] = [float(alive.get(k, np.nan)) for k in (0, 12, 24)]
    row["deaths"] = _deaths(study, res, st.effect_from_month)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rr", type=float, default=1.0)
    ap.add_argument("--persons", type=int, default=30_000)
    ap.add_argument("--seeds", type=int, nargs=2, default=[1, 8], metavar=("FIRST", "LAST"))
    a = ap.parse_args()
    rows = []
    for seed in range(a.seeds[0], a.seeds[1] + 1):
        rows.append(check(a.rr, seed, a.persons))
        print(json.dumps(rows[-1]), flush=True)

    def mean_se(xs: list[float]) -> str:
        se = statistics.stdev(xs) / math.sqrt(len(xs))
        return f"{statistics.fmean(xs):+.4f} (MC SE {se:.4f})"

    for o in OUTS:
        m = [r[o]["mean_unit"] for r in rows]
        p = [r[o]["per_control"] for r in rows]
        print(
            f"{o}: mean unit {mean_se(m)}; per control {mean_se(p)}; "
            f"per control - mean unit {mean_se([b - c for b, c in zip(p, m, strict=True)])}"
        )
    for r in ("0.9", "0.8"):
        d = [x[f"thin_{r}"]["change"] - x[f"thin_{r}"]["expected"] for x in rows]
        print(f"thinning to {r}: change - log({r}) = {mean_se(d)}")
    for k in ("from_entry", "from_month_after_entry"):
        logs = [math.log(r["deaths"][k]) for r in rows]
        print(f"deaths {k}: mean log rate ratio {mean_se(logs)}")


if __name__ == "__main__":
    main()
