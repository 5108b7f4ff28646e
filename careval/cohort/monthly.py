"""Who is registered, alive and eligible on the first day of many months, from one read.

:func:`careval.cohort.eligibility.population_at` answers for one date with one engine query.
Table 2 (every month of its periods) and the matched study (every entry month) need the
answer for dozens of months; :class:`MonthlyRegistrations` reads the registrations, births,
deaths and first eligibility diagnoses once and applies the same rules in pandas each month
(tests check the two agree).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from careval.cohort.eligibility import EligibilitySettings, first_eligibility_diagnosis
from careval.data.access import Dataset


class MonthlyRegistrations:
    """Registration periods (``reg``: person_id, start_date, end_date and any other columns)
    with each person's birth month, death and first eligibility diagnosis.

    ``only_these`` reads the persons of ``reg`` alone (a subset of the population); otherwise
    every person is read.
    """

    def __init__(
        self,
        ds: Dataset,
        reg: pd.DataFrame,
        eligibility: EligibilitySettings,
        only_these: bool = False,
    ) -> None:
        self.eligibility = eligibility
        p: ir.Table = ds.table("persons")
        if only_these:
            ids = ibis.memtable(pd.DataFrame({"person_id": reg.person_id.unique()}))
            p = p.semi_join(ids, "person_id")
        people = p.select("person_id", "birth_month", "death_date").to_pandas()
        first = first_eligibility_diagnosis(ds, eligibility)
        dx = (
            first.to_pandas().set_index("person_id").first_date
            if first is not None
            else pd.Series(dtype="datetime64[ns]")
        )
        reg = reg.join(people.set_index("person_id"), on="person_id")
        birth = pd.to_datetime(reg.birth_month)
        reg["_birth"] = birth.dt.year * 12 + birth.dt.month - 1
        # (an empty mapping would be cast to float by pandas: no conditions, no dates)
        reg["_dx"] = pd.to_datetime(reg.person_id.map(dx) if len(dx) else pd.NaT)
        # Sorted once (each person's latest registration first), so a month's rows are a
        # filter of this order and each person's first row is their latest registration.
        reg = reg.sort_values(["person_id", "start_date"], ascending=[True, False])
        reg = reg.reset_index(drop=True)
        codes, self.ids = pd.factorize(reg.person_id, sort=True)
        reg["_code"] = codes  # ascending with person_id: ``ids[code]`` is the person
        self.reg = reg
        self._start = _days(reg.start_date)
        self._end = _days(reg.end_date)
        self._death = _days(reg.death_date)
        self._code = codes
        self._birth = reg._birth.to_numpy()
        self._dx = _days(reg._dx)

    def on(self, month: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """On the first day of ``month`` (a month number): each registered, living person's
        latest registration starting by then, whether they are of age, and whether they have
        an eligibility condition recorded by then (both True when the rule has no such
        criterion: :meth:`EligibilitySettings.eligible` then ignores it)."""
        d = _day(month)
        on = (self._start <= d) & (self._end >= d) & (self._death > d)
        rows = np.flatnonzero(on)
        code = self._code[rows]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = code[1:] != code[:-1]
        rows = rows[first]
        g = self.reg.iloc[rows]
        el = self.eligibility
        age = (month - self._birth[rows]) // 12
        of_age = age >= el.min_age if el.min_age is not None else np.ones(rows.size, bool)
        with_condition = self._dx[rows] <= d if el.conditions else np.ones(rows.size, bool)
        return g, of_age, with_condition


LATER = np.iinfo(np.int64).max  # a missing date: after every day


def _days(values: pd.Series) -> np.ndarray:
    """Dates as days since 1970 (int64); :data:`LATER` where there is none (no start yet, no
    end, no death, no diagnosis)."""
    d = pd.to_datetime(values).to_numpy().astype("datetime64[D]").astype(np.int64)
    return np.where(pd.isna(values).to_numpy(), LATER, d)


def _day(month: int) -> int:
    """The first day of ``month`` (a month number) in days since 1970."""
    return (dt.date(month // 12, month % 12 + 1, 1) - dt.date(1970, 1, 1)).days
