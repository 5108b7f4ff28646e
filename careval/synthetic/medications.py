"""Medicines of the synthetic population: the usual first-line drug of each treated condition.

A person with one of the conditions below is prescribed its medicine (WHO ATC codes) from a few
weeks after the condition was first recorded: about 85% of them, starting 0-60 days later, and
about a fifth stopping some months to years later (an end date). Nothing else in the population
depends on it (its own random stream), so every other table is the same with or without it; it
gives the `medications` table (OMOP drug exposures in an imported dataset) data to define an
intervention or a cohort by, as a drug concept set would.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from careval.data.codelists import codes_for
from careval.synthetic.settings import SynthSettings, month_start_days
from careval.synthetic.tables import NULL_DAY, build

MEDICINES = {  # condition (code list) -> ATC code of its first-line medicine
    "diabetes": "A10BA02",  # metformin
    "hypertension": "C09AA05",  # ramipril
    "chd": "C10AA05",  # atorvastatin
    "heart_failure": "C07AB07",  # bisoprolol
    "atrial_fibrillation": "B01AF02",  # apixaban
    "hypothyroidism": "H03AA01",  # levothyroxine
}
TREATED = 0.85  # share of people with the condition prescribed its medicine
STOPPED = 0.2  # share of those who stop (an end date)
COLUMNS = ("person_id", "code_system", "code", "start_date", "end_date")


def medications(s: SynthSettings, conditions: pa.Table, persons: pa.Table) -> pa.Table:
    """The `medications` table from the first recorded date of each condition: no exposure
    starts after the window's last day, nor after the person's death."""
    # the window's last day: the day before the first of the month after it
    last_day = int(month_start_days(np.array([s.first_month + s.n_months]))[0]) - 1
    rng = np.random.default_rng(np.random.SeedSequence(s.seed, spawn_key=(8,)))
    code = conditions.column("code").to_numpy(zero_copy_only=False).astype(str)
    system = conditions.column("code_system").to_numpy(zero_copy_only=False).astype(str)
    person = conditions.column("person_id").to_numpy(zero_copy_only=False).astype(str)
    day = conditions.column("date").cast(pa.int32()).to_numpy()
    deaths = pc.fill_null(persons.column("death_date").cast(pa.int32()), NULL_DAY).to_numpy()
    parts: list[tuple[np.ndarray, np.ndarray, str]] = []
    for condition, atc in MEDICINES.items():
        wanted = {c.code for c in codes_for(condition, "SNOMED")}
        hit = (system == "SNOMED") & np.isin(code, list(wanted))
        if not hit.any():
            continue
        order = np.lexsort((day[hit], person[hit]))
        p, d = person[hit][order], day[hit][order]
        first = np.r_[True, p[1:] != p[:-1]]  # each person's first record of the condition
        parts.append((p[first], d[first], atc))
    if not parts:
        return build("medications", {c: [] for c in COLUMNS})
    p = np.concatenate([x[0] for x in parts])
    d = np.concatenate([x[1] for x in parts])
    codes = np.concatenate([np.full(x[0].size, x[2]) for x in parts])
    keep = rng.random(p.size) < TREATED
    start = d + rng.integers(0, 61, p.size)
    at = pc.index_in(pa.array(p, pa.string()), value_set=persons.column("person_id"))
    death = deaths[at.to_numpy(zero_copy_only=False).astype(np.int64)]
    limit = np.where(death != NULL_DAY, np.minimum(death, last_day), last_day)
    start = np.minimum(start, np.maximum(limit, d))
    stop = rng.random(p.size) < STOPPED
    end = start + rng.integers(90, 1500, p.size)
    end = np.where(stop & (end <= limit), end, NULL_DAY)
    rows = np.flatnonzero(keep)
    rows = rows[np.lexsort((start[rows], p[rows]))]
    return build(
        "medications",
        {
            "person_id": p[rows],
            "code_system": np.full(rows.size, "ATC"),
            "code": codes[rows],
            "start_date": start[rows],
            "end_date": end[rows],  # NULL_DAY: still taking it
        },
    )
