"""A person-by-month panel of hospital use, from which features at any month start are sums.

The impact study needs each person's history at their own entry month and their outcomes month
by month around it, for tens of thousands of people and dozens of entry months. Computing
:func:`careval.features.index_date.features_at` once per month would scan the whole dataset each
time; instead the engine aggregates every measure once per person and calendar month, and the
features at the start of month ``m`` are differences of cumulative sums. On a month-start index
date they equal ``features_at`` exactly (a test checks it), so the risk model can score them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd

from careval.cohort.eligibility import emergency_spells, first_diagnosis
from careval.data.access import Dataset
from careval.data.schema import ELECTIVE_METHODS, EMERGENCY_METHODS
from careval.data.schema import MEASURES as CLINICAL_MEASURES
from careval.features.comorbidity import (
    FRAILTY_MONTHS,
    HIERARCHY,
    MEASUREMENT_MONTHS,
    charlson_first,
    charlson_weights,
    hfrs_events,
)
from careval.features.index_date import FEATURE_CONDITIONS, WINDOWS
from careval.impact.measures import Grid, add_days, days, month_start, outcome_values
from careval.impact.settings import OutcomeSettings

# Monthly measures: the outcomes of the impact study and the inputs of the features.
MEASURES = (
    "emergency_admissions",
    "emergency_bed_days",
    "emergency_cost",
    "elective_admissions",
    "elective_cost",
    "ae_attendances",
    "outpatient_attendances",
    "bed_days",
    "inpatient_cost",
)
# Measures that feed features_at, in its naming.
FEATURE_MEASURES = (
    "emergency_admissions",
    "emergency_cost",
    "emergency_bed_days",
    "elective_admissions",
    "elective_cost",
    "ae_attendances",
    "outpatient_attendances",
)
CONDITIONS = FEATURE_CONDITIONS  # the has_<condition> features, as features_at's default
NEVER = np.iinfo(np.int32).max


def month_of(date: dt.date) -> int:
    """Month number (``year*12 + month - 1``) of a date."""
    return date.year * 12 + date.month - 1


@dataclass
class Panel:
    """Monthly measures for a set of people over months ``first_month`` .. + ``n_months`` - 1."""

    person_id: np.ndarray  # sorted
    first_month: int
    n_months: int
    values: dict[str, np.ndarray]  # measure -> (people, months) float64
    birth_month: np.ndarray  # month numbers
    female: np.ndarray
    imd_decile: np.ndarray  # int64; float64 with NaN where unknown when any decile is unknown
    death_day: np.ndarray  # days since epoch; NEVER when alive
    registered: np.ndarray  # (people, months) bool: registered at a practice on the 1st
    first_day: dict[str, np.ndarray]  # condition -> first recorded day; NEVER when none
    charlson_day: dict[str, np.ndarray]  # Charlson category -> first recorded day; NEVER if none
    hfrs: pd.DataFrame  # HFRS diagnoses in the panel's months: row, day, code, weight
    measurements: pd.DataFrame  # row, day, measure, value (sorted by day, then value)
    _cum: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def rows(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row positions of person ids (all must be in the panel)."""
        pos = np.searchsorted(self.person_id, np.asarray(ids, dtype=object))
        pos = np.clip(pos, 0, len(self.person_id) - 1)
        if not (self.person_id[pos] == np.asarray(ids, dtype=object)).all():
            raise KeyError("some people are not in the panel")
        return pos

    def cumulative(self, measure: str) -> np.ndarray:
        """(people, months + 1) cumulative sums: column j holds the total before month j."""
        if measure not in self._cum:
            v = self.values[measure]
            c = np.zeros((v.shape[0], v.shape[1] + 1))
            np.cumsum(v, axis=1, out=c[:, 1:])
            self._cum[measure] = c
        return self._cum[measure]

    def features(
        self, rows: np.ndarray, months: np.ndarray, windows: Sequence[int] = WINDOWS
    ) -> pd.DataFrame:
        """The columns of ``features_at`` for each (row, month start) pair."""
        rows = np.asarray(rows, dtype=np.int64)
        j = np.asarray(months, dtype=np.int64) - self.first_month
        jj = np.clip(j, 0, self.n_months)
        out: dict[str, np.ndarray] = {}
        for name in FEATURE_MEASURES:
            c = self.cumulative(name)
            for w in windows:
                out[f"{name}_{w}m"] = c[rows, jj] - c[rows, np.clip(j - w, 0, self.n_months)]
        # Months since the last emergency admission before the month (999 when none).
        e = self.values["emergency_admissions"]
        last = np.where(e > 0, np.arange(e.shape[1])[None, :], -1)
        last = np.maximum.accumulate(last, axis=1)
        before = np.where(jj > 0, last[rows, np.maximum(jj - 1, 0)], -1)
        out["months_since_emergency"] = np.where(before >= 0, j - before, 999)
        day = month_start(np.asarray(months))
        n_ltc = np.zeros(rows.size, dtype=np.int64)
        for cond in CONDITIONS:
            has = (self.first_day[cond][rows] < day).astype(np.int64)
            out[f"has_{cond}"] = has
            n_ltc += has
        out["n_long_term_conditions"] = n_ltc
        out["age"] = (np.asarray(months) - self.birth_month[rows]) // 12
        out["imd_decile"] = self.imd_decile[rows]
        out["female"] = self.female[rows]
        has = {c: (d[rows] < day).astype(np.int64) for c, d in self.charlson_day.items()}
        charlson = np.zeros(rows.size)
        for category, weight in charlson_weights().items():
            term = has[category]
            if category in HIERARCHY:
                term = term * (1 - has[HIERARCHY[category]])
            charlson += weight * term
        out["charlson_index"] = charlson
        months = np.asarray(months, dtype=np.int64)
        out["hfrs"] = self._hfrs(rows, months, day)
        out.update(self._latest(rows, months, day))
        return pd.DataFrame(out)

    def _hfrs(self, rows: np.ndarray, months: np.ndarray, day: np.ndarray) -> np.ndarray:
        """HFRS at each (row, month start): listed codes in the previous 24 months, once each."""
        score = np.zeros(rows.size)
        if not len(self.hfrs):
            return score
        q = pd.DataFrame(
            {
                "q": np.arange(rows.size),
                "row": rows,
                "qday": day,
                "lo": month_start(months - FRAILTY_MONTHS),
            }
        )
        m = q.merge(self.hfrs, on="row")
        m = m[(m.day < m.qday) & (m.day >= m.lo)]
        w = m.drop_duplicates(["q", "code"]).groupby("q").weight.sum()
        score[w.index.to_numpy()] = w.to_numpy()
        return score

    def _latest(
        self, rows: np.ndarray, months: np.ndarray, day: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The latest value of each measure in the 24 months before each month start."""
        out = {f"latest_{name}": np.full(rows.size, np.nan) for name in CLINICAL_MEASURES}
        q = pd.DataFrame(
            {
                "q": np.arange(rows.size),
                "row": rows,
                "qday": day,
                "lo": month_start(months - MEASUREMENT_MONTHS),
            }
        ).sort_values("qday", kind="stable")
        for name, ev in self.measurements.groupby("measure", sort=False):
            got = pd.merge_asof(
                q,
                ev[["row", "day", "value"]],
                left_on="qday",
                right_on="day",
                by="row",
                allow_exact_matches=False,
                direction="backward",
            )
            ok = got.day.notna().to_numpy() & (got.day.to_numpy() >= got.lo.to_numpy())
            out[f"latest_{name}"][got.q.to_numpy()[ok]] = got.value.to_numpy()[ok]
        return out

    def alive_at(self, rows: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Whether each person is alive on the first day of the month."""
        return self.death_day[rows] > month_start(np.asarray(months))

    def followed_at(self, rows: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Whether each person is alive and registered at a practice of the data on the first
        day of the month (inside the panel's months): a month whose activity the data hold.
        Before registering and after leaving, a person's visits are not in the extract, so
        those months are unobserved, not months without activity."""
        months = np.asarray(months)
        j = months - self.first_month
        inside = (j >= 0) & (j < self.n_months)
        reg = self.registered[rows, np.clip(j, 0, self.n_months - 1)] & inside
        return reg & self.alive_at(rows, months)

    def registered_until(self, rows: np.ndarray, months: np.ndarray) -> np.ndarray:
        """The first month on or after ``months`` on whose first day each person is not
        registered (the month after the panel's last when they stay): where the extract stops
        holding their activity."""
        t = self.n_months
        j = np.clip(np.asarray(months) - self.first_month, 0, t)
        off = ~self.registered[rows] & (np.arange(t)[None, :] >= j[:, None])
        return np.where(off.any(axis=1), off.argmax(axis=1), t) + self.first_month


def build_panel(
    ds: Dataset,
    person_ids: Sequence[str] | np.ndarray,
    first_month: int,
    last_month: int,
    outcomes: Sequence[OutcomeSettings] = (),
) -> Panel:
    """Aggregate every measure by person and calendar month for ``person_ids``, and each of
    ``outcomes`` that is not one of the built-in :data:`MEASURES` under its own name."""
    ids = np.sort(pd.unique(np.asarray(person_ids, dtype=object)))
    grid = Grid(ids, first_month, last_month)
    who, lo, hi, index = grid.who, grid.lo, grid.hi, grid.index
    values = {m: grid.zeros() for m in MEASURES}
    em = emergency_spells(ds)
    grid.add(
        values, em, "admission_date", {"emergency_admissions": None, "emergency_cost": em.cost}
    )
    s = ds.table("inpatient_spells")
    el = s.filter(
        s.admission_method.isin(list(ELECTIVE_METHODS)) & ~s.patient_classification.isin(["3", "4"])
    )
    grid.add(values, el, "admission_date", {"elective_admissions": None, "elective_cost": el.cost})
    grid.add(values, s, "admission_date", {"inpatient_cost": s.cost})
    if ds.has("ae_attendances"):
        grid.add(values, ds.table("ae_attendances"), "arrival_date", {"ae_attendances": None})
    if ds.has("outpatient_appointments"):
        op = ds.table("outpatient_appointments")
        grid.add(
            values, op.filter(op.attended), "appointment_date", {"outpatient_attendances": None}
        )
    # Occupied bed days by calendar month, for emergency spells and for all spells.
    sp = grid.spans(
        s.mutate(
            emergency=s.admission_method.isin(list(EMERGENCY_METHODS))
            & ~s.patient_classification.isin(["3", "4"])
        ).select("person_id", "admission_date", "discharge_date", "emergency"),
        "admission_date",
        "discharge_date",
    )
    rows, a, d = (sp[c].to_numpy(dtype=np.int64) for c in ("_row", "_start", "_end"))
    emerg = sp.emergency.to_numpy(dtype=bool)
    add_days(values["bed_days"], rows, a, d, first_month)
    add_days(values["emergency_bed_days"], rows[emerg], a[emerg], d[emerg], first_month)
    for o in outcomes:
        if o.name not in values:
            values[o.name] = outcome_values(ds, o, grid)
    p = (
        ds.table("persons")
        .semi_join(who, "person_id")
        .select("person_id", "birth_month", "sex", "imd_decile", "death_date")
        .to_pyarrow()
        .to_pandas()
    )
    p = p.set_index("person_id").reindex(ids)
    birth = p.birth_month.to_numpy(dtype="datetime64[M]").astype(np.int64) + 1970 * 12
    death = p.death_date.to_numpy(dtype="datetime64[D]")
    death_day = np.where(np.isnat(death), NEVER, death.astype(np.int64))
    registered = registered_months(ds, grid)
    first_day = {}
    for cond in CONDITIONS:
        fd = first_diagnosis(ds, cond).semi_join(who, "person_id").to_pyarrow().to_pandas()
        arr = np.full(ids.size, NEVER, dtype=np.int64)
        if len(fd):
            arr[index.get_indexer(fd.person_id)] = days(fd.first_date)
        first_day[cond] = arr
    charlson_day = {}
    cf = charlson_first(ds).semi_join(who, "person_id").to_pyarrow().to_pandas()
    for category in charlson_weights():
        arr = np.full(ids.size, NEVER, dtype=np.int64)
        sub = cf[cf.category == category]
        if len(sub):
            arr[index.get_indexer(sub.person_id)] = days(sub.first_date)
        charlson_day[category] = arr

    def events(t: ibis.Table, columns: dict[str, type]) -> pd.DataFrame:
        """Dated events of the panel's people and months: row, day and ``columns``."""
        df = (
            t.filter((t.date >= lo) & (t.date < hi))
            .semi_join(who, "person_id")
            .to_pyarrow()
            .to_pandas()
        )
        out = {"row": index.get_indexer(df.person_id), "day": days(df.date)}
        return pd.DataFrame(out | {c: df[c].to_numpy(dtype=d) for c, d in columns.items()})

    hfrs = events(hfrs_events(ds), {"code": object, "weight": float})
    measurements = pd.DataFrame({"row": [], "day": [], "measure": [], "value": []})
    if ds.has("measurements"):
        measurements = events(
            ds.table("measurements"), {"measure": object, "value": float}
        ).sort_values(["day", "value"], kind="stable", ignore_index=True)
    return Panel(
        person_id=ids,
        first_month=first_month,
        n_months=grid.n_months,
        values=values,
        birth_month=birth,
        female=(p.sex == "F").to_numpy(dtype=np.int64),
        imd_decile=p.imd_decile.to_numpy(
            dtype=np.int64 if p.imd_decile.notna().all() else np.float64
        ),
        death_day=death_day,
        registered=registered,
        first_day=first_day,
        charlson_day=charlson_day,
        hfrs=hfrs,
        measurements=measurements,
    )


def registered_months(ds: Dataset, grid: Grid) -> np.ndarray:
    """(people, months) bool: registered at any practice of the data on the month's first day
    (``start_date`` on or before it, ``end_date``, the last day registered, on or after it or
    null), as the study's entry rule reads registrations."""
    r = ds.table("registrations")
    reg = (
        r.filter((r.end_date.isnull() | (r.end_date >= grid.lo)) & (r.start_date < grid.hi))
        .semi_join(grid.who, "person_id")
        .select("person_id", "start_date", "end_date")
        .to_pyarrow()
        .to_pandas()
    )
    n, t = grid.ids.size, grid.n_months
    out = np.zeros((n, t + 1), dtype=np.int32)
    if len(reg):
        start = reg.start_date.to_numpy(dtype="datetime64[D]")
        end = reg.end_date.to_numpy(dtype="datetime64[D]")
        m_start = start.astype("datetime64[M]")
        # the first month whose first day is on or after the start
        first = m_start.astype(np.int64) + (start > m_start.astype("datetime64[D]"))
        base = grid.first_month - 1970 * 12
        # the last month registered on its first day (the end's own month); open: the grid's
        last = np.where(np.isnat(end), base + t, end.astype("datetime64[M]").astype(np.int64))
        lo = np.clip(first - base, 0, t)
        hi = np.clip(last - base + 1, 0, t)  # one past the last month registered on its 1st
        ok = hi > lo
        row = grid.index.get_indexer(reg.person_id)[ok]
        np.add.at(out, (row, lo[ok]), 1)
        np.add.at(out, (row, hi[ok]), -1)
    return np.cumsum(out, axis=1)[:, :t] > 0
