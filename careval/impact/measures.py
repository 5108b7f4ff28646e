"""Events aggregated by person and calendar month: the grid the panel fills, and outcomes.

:class:`Grid` is a panel's people and months. :meth:`Grid.add` counts or sums dated events
into it in one engine query, and :func:`add_days` spreads spells' days over the calendar months
they span. :func:`outcome_values` measures one :class:`~careval.impact.settings.OutcomeSettings`
on the grid: the panel's built-in measures are defined that way too, and a test checks that
each built-in definition measured here equals the panel's own column.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from careval.cohort.eligibility import codes_predicate
from careval.data.access import Dataset, month_index
from careval.data.codelists import code_list
from careval.data.schema import TABLES
from careval.impact.settings import OutcomeSettings


def month_start(month: int | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the first day of month number(s)."""
    m = np.asarray(month, dtype=np.int64) - 1970 * 12
    return m.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def days(values: pd.Series) -> np.ndarray:
    """Dates as days since 1970-01-01."""
    return values.to_numpy(dtype="datetime64[D]").astype(np.int64)


def _first_day(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


@dataclass
class Grid:
    """People (sorted ids) by calendar months ``first_month`` .. ``last_month``."""

    ids: np.ndarray
    first_month: int
    last_month: int

    def __post_init__(self) -> None:
        self.index = pd.Index(self.ids)
        self.who = ibis.memtable(pd.DataFrame({"person_id": self.ids.astype(str)}))
        self.lo = ibis.date(_first_day(self.first_month))
        self.hi = ibis.date(_first_day(self.last_month + 1))

    @property
    def n_months(self) -> int:
        """Months in the grid."""
        return self.last_month - self.first_month + 1

    def zeros(self) -> np.ndarray:
        """An empty (people, months) array."""
        return np.zeros((self.ids.size, self.n_months))

    def add(
        self,
        values: dict[str, np.ndarray],
        t: ir.Table,
        date_col: str,
        measures: dict[str, ir.Value | None],
    ) -> None:
        """Add each measure (a count of ``t``'s rows where the value is None, else the sum of
        the value) by person and month of ``date_col`` into ``values``."""
        t = t.filter((t[date_col] >= self.lo) & (t[date_col] < self.hi)).semi_join(
            self.who, "person_id"
        )
        agg = {k: (v.sum() if v is not None else t.count()) for k, v in measures.items()}
        df = (
            t.group_by(t.person_id, _m=month_index(t[date_col])).agg(**agg).to_pyarrow().to_pandas()
        )
        r = self.index.get_indexer(df.person_id)
        c = df._m.to_numpy(dtype=np.int64) - self.first_month
        for k in measures:
            np.add.at(values[k], (r, c), df[k].to_numpy(dtype=float))

    def spans(self, t: ir.Table, start: str, end: str) -> pd.DataFrame:
        """Rows of ``t`` whose ``start``-``end`` span overlaps the grid: row, start and end (as
        days, clipped to the grid), and the table's other columns. A null ``end`` is a span
        still open (a care home stay at the extract): it runs to the grid's end."""
        t = t.mutate(**{end: t[end].fill_null(self.hi)})
        sp = (
            t.filter((t[start] < self.hi) & (t[end] > self.lo))
            .semi_join(self.who, "person_id")
            .to_pyarrow()
            .to_pandas()
        )
        lo_day, hi_day = int(month_start(self.first_month)), int(month_start(self.last_month + 1))
        sp["_row"] = self.index.get_indexer(sp.person_id)
        sp["_start"] = np.maximum(days(sp[start]), lo_day) if len(sp) else []
        sp["_end"] = np.minimum(days(sp[end]), hi_day) if len(sp) else []
        return sp


def add_days(
    target: np.ndarray, rows: np.ndarray, start: np.ndarray, end: np.ndarray, first_month: int
) -> None:
    """Add the days from ``start`` to ``end`` (days since the epoch, end not counted) of each
    spell to ``target[row, month]``, split over the calendar months the spell spans."""
    if not rows.size:
        return
    m0 = start.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    k = 0
    while True:
        m = m0 + k
        n = np.minimum(end, month_start(m + 1)) - np.maximum(start, month_start(m))
        live = n > 0
        if not live.any():
            break
        np.add.at(target, (rows[live], m[live] - first_month), n[live])
        k += 1


def outcome_events(ds: Dataset, o: OutcomeSettings) -> ir.Table:
    """The rows of ``o``'s table that it counts: its filters and code list applied."""
    t = ds.table(o.table)
    columns = {c.name: c for c in TABLES[o.table].columns}
    for name, values in o.where.items():
        t = t.filter(t[name].isin(_typed(values, columns[name].type)))
    for name, values in o.exclude.items():
        t = t.filter(~t[name].isin(_typed(values, columns[name].type)))
    if o.codes is not None:
        t = t.filter(codes_predicate(t, code_list(o.codes).codes, o.system_column, o.code_column))
    return t


def _typed(values: tuple[str, ...], kind: str) -> list[object]:
    if kind == "bool":
        return [v == "true" for v in values]
    if kind == "int":
        return [int(v) for v in values]
    return list(values)


def outcome_values(ds: Dataset, o: OutcomeSettings, grid: Grid) -> np.ndarray:
    """``o`` by person and month of the grid: (people, months), in pounds if it has a unit
    cost."""
    t = outcome_events(ds, o)
    out = {o.name: grid.zeros()}
    if o.measure == "bed_days":
        sp = grid.spans(t, o.date_column, o.end_column or "")
        add_days(
            out[o.name],
            sp._row.to_numpy(dtype=np.int64),
            sp._start.to_numpy(dtype=np.int64),
            sp._end.to_numpy(dtype=np.int64),
            grid.first_month,
        )
    else:
        value = t[o.value_column] if o.measure == "sum" and o.value_column else None
        grid.add(out, t, o.date_column, {o.name: value})
    if o.unit_cost is not None:
        out[o.name] *= o.unit_cost
    return out[o.name]


def unavailable(ds: Dataset, o: OutcomeSettings) -> str:
    """Why the dataset cannot give outcome ``o`` (its table absent or empty); "" if it can."""
    if not ds.has(o.table):
        return f"no {o.table} table"
    if ds.rows(o.table) == 0:
        return f"the {o.table} table is empty"
    return ""
