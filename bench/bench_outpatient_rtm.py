"""Outpatient attendances' no-effect bias (issue 19): regression to the mean from matching on
the outcome's own baseline count.

The generator gives each person a constant outpatient rate (age, frailty, long-term
conditions) and plants no effect on it, so every matched estimate's truth is 0 and a fit on
the true rates would be exactly 0 (a unit's constant rate is absorbed by its fixed effect).
The programme picks people for frailty, conditions and recent emergency admissions, not for
outpatient attendances: the treated's 12-month outpatient count is their rate plus chance,
unselected. The propensity score has that count among its covariates; controls come from a
pool whose true rates are lower, so a control matched to a treated person's count has, on
average, a count above its own rate, and falls back after entry. The difference-in-differences
then shows the treated rising against their controls (Daw and Hatfield 2018, Health Services
Research 53:4138).

For each seed this script matches the same study population twice (``study``: the default
score; ``no_op_count``: the score without ``outpatient_attendances_12m``) and reports, per
design, the outpatient and emergency estimates and the outpatient attendances per person-month
of treated and controls in the 12 months before entry and after it (matching weights).

Usage::

    .venv/bin/python bench/bench_outpatient_rtm.py --rr 1.0 --persons 30000 --seeds 1 40
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_coverage_checks import WINDOW, _post, logged_or_run, mean_se

OUTS = ["emergency_admissions", "outpatient_attendances"]
DROPPED = "outpatient_attendances_12m"


def _rates(panel: pd.DataFrame) -> dict[str, float]:
    """Outpatient attendances per person-month, treated and controls, before and after entry
    (the 12 months before; every month followed after), weighted as the fit weights."""
    w = panel["w"] if "w" in panel else pd.Series(1.0, index=panel.index)
    out = {}
    for arm, t in (("treated", 1), ("controls", 0)):
        for when, rows in (("pre12", panel.k.between(-12, -1)), ("post", panel.k >= 0)):
            m = (panel.treated == t) & rows
            y = panel.loc[m, "outpatient_attendances"].to_numpy(float)
            out[f"{arm}_{when}"] = float(np.average(y, weights=w[m].to_numpy(float)))
    return out


def check(rr: float, seed: int, persons: int) -> dict[str, Any]:
    """One seed: both designs' estimates and the arms' outpatient rates."""
    from careval.data.access import Dataset
    from careval.impact.matching import match
    from careval.impact.outcomes import matched_panel
    from careval.impact.population import covariates, study_population
    from careval.impact.settings import ImpactSettings
    from careval.synthetic.generate import generate
    from careval.synthetic.settings import SynthSettings

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="careval-oprtm-"))
    st = ImpactSettings(sensitivity=False, negative_controls=())
    try:
        generate(tmp / "d", SynthSettings(persons=persons, seed=seed, effect=round(rr - 1, 10)))
        with Dataset(tmp / "d") as ds:
            outs = [o for o in st.outcomes if o.name in OUTS]
            study = study_population(ds, WINDOW, st, None, outs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    f = study.frame
    cov = covariates(f)
    if DROPPED not in cov:
        raise RuntimeError(f"{DROPPED} is not among the score's covariates")
    row: dict[str, Any] = {"rr": rr, "seed": seed}
    for name, c in (("study", cov), ("no_op_count", [x for x in cov if x != DROPPED])):
        res = match(f, "treated", c, st.match)
        panel = matched_panel(study, res, st, OUTS)
        row[name] = {o: _post(panel, o) for o in OUTS} | _rates(panel)
        row[name]["matched"] = int(res.n_treated_matched)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    rows = logged_or_run(check)

    truth = {"emergency_admissions": math.log(rows[0]["rr"]), "outpatient_attendances": 0.0}
    print(f"{len(rows)} seeds; mean (MC SE) of each estimate minus its truth")
    for d in ("study", "no_op_count"):
        parts = [f"{o} {mean_se([r[d][o] - truth[o] for r in rows])}" for o in OUTS]
        for arm in ("treated", "controls"):
            ratio = [r[d][f"{arm}_post"] / r[d][f"{arm}_pre12"] for r in rows]
            parts.append(f"{arm} post/pre12 {statistics.fmean(ratio):.4f}")
        print(f"{d}: " + "; ".join(parts))
    for o in OUTS:
        diff = [r["no_op_count"][o] - r["study"][o] for r in rows]
        print(f"no_op_count - study, {o} (paired): {mean_se(diff)}")


if __name__ == "__main__":
    main()
