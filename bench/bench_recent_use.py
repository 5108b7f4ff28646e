"""Matching on recent use (issue 19): the study's match against one linear in the counts.

Programmes pick people for their recent emergency admissions, and a recent count is partly
chance. For each seed this script generates a population (rate ratio ``--rr``), builds the
default study population and matches it two ways:

- ``study``: the study's match (the propensity model also has bands of recent emergency
  admissions, and matching is exact on 0, 1, 2 or more in the last 6 months);
- ``linear``: the earlier match (the counts only linearly in the score, no exact band).

Each match's panel is fitted twice with the study's Poisson DiD: on the emergency admissions
the data hold, and on the generator's own expected rates for the same person-months (the
rates the counts were drawn from, captured while generating). On the rates, chance in the
counts plays no part; so ``count - rate`` is the bias that the selection on chance peaks
leaves after matching, and ``rate - truth`` any bias of the design itself.

Usage::

    .venv/bin/python bench/bench_recent_use.py --rr 1.0 --persons 30000 --seeds 1 40
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_coverage_checks import WINDOW, _post, logged_or_run, mean_se


def _generate_capturing(out: Path, settings: Any) -> tuple[Any, np.ndarray]:
    """Generate the dataset; return the generator's emergency panel and person ids (in the
    generator's person order), captured by wrapping the two functions that make them."""
    import careval.synthetic.generate as gen

    got: dict[str, Any] = {}
    em_fn, tables_fn = gen.activity.emergency_panel, gen.events.population_tables

    def emergency_panel(s: Any, pop: Any, rng: Any) -> Any:
        got["em"] = em_fn(s, pop, rng)
        return got["em"]

    def population_tables(s: Any, pop: Any, pid: Any, *a: Any, **k: Any) -> Any:
        got["pid"] = np.asarray(pid.to_pylist() if hasattr(pid, "to_pylist") else pid, object)
        return tables_fn(s, pop, pid, *a, **k)

    gen.activity.emergency_panel, gen.events.population_tables = (
        emergency_panel,
        population_tables,
    )
    try:
        gen.generate(out, settings)
    finally:
        gen.activity.emergency_panel, gen.events.population_tables = em_fn, tables_fn
    return got["em"], got["pid"]


def check(rr: float, seed: int, persons: int) -> dict:
    """One seed: each match's count and rate estimates (see the module docstring)."""
    from careval.data.access import Dataset
    from careval.impact.matching import match
    from careval.impact.outcomes import matched_panel
    from careval.impact.population import (
        RECENT_BAND,
        covariates,
        study_population,
        use_band_columns,
    )
    from careval.impact.settings import ImpactSettings
    from careval.synthetic.settings import SynthSettings

    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="careval-recent-"))
    s = SynthSettings(persons=persons, seed=seed, effect=round(rr - 1, 10))
    st = ImpactSettings(sensitivity=False, negative_controls=())
    try:
        em, pid = _generate_capturing(tmp / "d", s)
        with Dataset(tmp / "d") as ds:
            study = study_population(ds, WINDOW, st, None, list(st.outcomes)[:1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    f, pn = study.frame, study.panel
    if pn.first_month != s.first_month:
        raise RuntimeError("the panel's months and the generator's differ")
    order = {p: i for i, p in enumerate(pid)}
    person = np.array([order[p] for p in pn.person_id])
    bands = set(use_band_columns())
    exact = tuple(x for x in st.match.exact if x != RECENT_BAND)
    designs = {
        "study": (covariates(f), st.match),
        "linear": (
            [c for c in covariates(f) if c not in bands],
            dataclasses.replace(st.match, exact=exact),
        ),
    }
    row: dict[str, Any] = {"rr": rr, "seed": seed}
    for name, (cov, ms) in designs.items():
        res = match(f, "treated", cov, ms)
        panel = matched_panel(study, res, st, ["emergency_admissions"])
        j = panel.month.to_numpy() - s.first_month
        panel["rate"] = em.rate[person[panel.person.to_numpy()], j].astype(np.float64)
        row[name] = {
            "count": _post(panel, "emergency_admissions"),
            "rate": _post(panel, "rate"),
            "matched": int(res.n_treated_matched),
            "offered": int(res.n_treated),
        }
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    rows = logged_or_run(check)

    truth = math.log(rows[0]["rr"])
    print(f"{len(rows)} seeds; mean (MC SE) of the log rate ratio minus its truth {truth:+.4f}")
    for d in ("study", "linear"):
        c = [r[d]["count"] - truth for r in rows]
        q = [r[d]["rate"] - truth for r in rows]
        gap = [r[d]["count"] - r[d]["rate"] for r in rows]
        kept = statistics.fmean(r[d]["matched"] / r[d]["offered"] for r in rows)
        print(
            f"{d}: count {mean_se(c)}; rate {mean_se(q)}; count - rate {mean_se(gap)}; "
            f"SD {statistics.stdev(c):.3f}; treated matched {kept:.1%}"
        )
    diff = [r["study"]["count"] - r["linear"]["count"] for r in rows]
    print(f"study - linear (counts, paired): {mean_se(diff)}")


if __name__ == "__main__":
    main()
