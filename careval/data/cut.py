"""A dataset as it stood at a data cut: only what was known by the end of a day.

A look of the real-time evaluation (``careval follow``) at month ``m`` must use only the data
known by the end of that month. :class:`CutDataset` opens the same Parquet files as
:class:`~careval.data.access.Dataset` and puts a view over each table (nothing is copied, the
files are never changed):

* a row whose event date is after the cut is not there (the event date of an event table is
  :data:`careval.data.schema.EVENT_DATE`'s; in other tables every required date column counts:
  a registration starting after the cut, a person born after it);
* a later date of a row that stays is not known yet: a nullable one (a registration's end, a
  death, a medication's end) becomes null; a required one (a spell's discharge) is clipped to
  the cut (a spell still open at the cut has run until then).

The cut is then the end of the data: the study's window ends there. Reporting delays (data
arriving weeks after the month they describe) are not modelled: a look uses everything dated
by the cut.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from careval.data.access import Dataset
from careval.data.schema import EVENT_DATE, TABLES


def cut_table(name: str, t: ir.Table, cut: dt.date) -> ir.Table:
    """Table ``name`` as known by the end of ``cut`` (see the module docstring)."""
    spec = TABLES[name]
    dates = [c for c in spec.columns if c.type == "date" and c.name in t.columns]
    if not dates:
        return t
    day = ibis.literal(cut)
    event = EVENT_DATE.get(name)
    keys = [event] if event else [c.name for c in dates if not c.nullable]
    for key in keys:
        t = t.filter(t[key].isnull() | (t[key] <= day))
    later = {}
    for c in dates:
        if c.name in keys:
            continue
        col = t[c.name]
        if c.nullable:
            later[c.name] = ibis.ifelse(col > day, ibis.null(col.type()), col)
        else:
            later[c.name] = ibis.ifelse(col > day, day, col)
    return t.mutate(**later) if later else t


@dataclass
class CutDataset(Dataset):
    """:class:`~careval.data.access.Dataset` restricted to what was known by ``cut``."""

    cut: dt.date | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cut is None:
            raise ValueError("CutDataset needs a cut date")
        self._tables = {n: cut_table(n, t, self.cut) for n, t in self._tables.items()}

    def rows(self, name: str) -> int:
        """Rows of table ``name`` known by the cut (0 when it is absent)."""
        if name not in self._tables:
            return 0
        with self.reading(name):
            return int(self._tables[name].count().execute())
