"""Population monitoring against comparator areas: the seed evaluation's Table 2.

For all the eligible and each eligibility group (the rule's groups, see
:mod:`careval.cohort.eligibility`: the default's three, or none) and area: emergency
admissions per eligible person-year in the months after a start date, against the same months
a year earlier, as a percentage change with a 95% CI, and the programme's change minus each
comparator's. Eligibility (``AreaSettings.eligibility``) is taken afresh each month (a rolling
cohort): a person counts in a month's denominator when registered, alive and
eligible on its first day, and their emergency admissions that month count in the numerator.

Areas come from the data (:mod:`careval.data.areas`): the programme's areas
(``programme_areas``, default ``("pilot",)``) are pooled into one row named by
:func:`~careval.data.areas.pooled_name`, and each comparator area has its own row, in the
order of ``comparator_areas`` (default: every other area, in the data's order).

Confidence intervals: the log rate ratio has variance ``phi_a / A_a + phi_b / A_b`` (``A`` the
admissions in each period, ``phi`` the overdispersion of a person's admissions over the period,
estimated as variance / mean of the per-person totals, at least 1). Both periods hold many of
the same people, whose positive correlation would narrow the interval; ignoring it keeps the
interval conservative. Differences between areas are independent: their variances add.

On a synthetic population whose ``truth.json`` has ``area_trends``, each row also carries the
change it estimates (``true_pct_change``; ``true_difference`` for the differences), from
:func:`careval.monitoring.truth.expected_area_changes`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from careval.cohort.eligibility import (
    EligibilitySettings,
    emergency_spells,
)
from careval.cohort.monthly import MonthlyRegistrations
from careval.data.access import Dataset
from careval.data.areas import (
    area_problems,
    data_areas,
    overlap_problems,
    pooled_name,
    resolve_areas,
)
from careval.data.truth import truth_document
from careval.errors import ConfigError
from careval.monitoring.truth import ALL, expected_area_changes
from careval.settings import Settings


@dataclass(frozen=True)
class AreaSettings(Settings):
    """Start dates and the length of each period (months), who is eligible, and the areas.

    ``programme_areas`` are pooled into the programme's row; ``comparator_areas`` each get a
    row and a difference from the programme (``None``: every other area in the data, in the
    data's order). Both are checked against the data's areas by :func:`evaluate_areas`.

    ``results.json`` publishes ``starts`` and ``months`` (``monitoring.settings``, see
    :meth:`AreaResult.to_dict`); the areas are the rows of Table 2; the eligibility rules are
    the run's, published in its provenance.
    """

    starts: tuple[dt.date, ...] = (dt.date(2011, 4, 1), dt.date(2011, 7, 1), dt.date(2011, 9, 1))
    months: int = 12
    eligibility: EligibilitySettings = field(default_factory=EligibilitySettings)
    programme_areas: tuple[str, ...] = ("pilot",)
    comparator_areas: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.months <= 24:
            raise ConfigError(f"months must be between 1 and 24; got {self.months}")
        if not self.starts or any(s.day != 1 for s in self.starts):
            raise ConfigError("start dates must be first days of months")
        problems = area_problems("programme_areas", self.programme_areas)
        problems += area_problems("comparator_areas", self.comparator_areas, optional=True)
        if not problems and self.comparator_areas is not None:
            problems += overlap_problems(
                self.programme_areas, self.comparator_areas, "comparator_areas"
            )
        if problems:
            raise ConfigError("area settings: " + "; ".join(problems))


def _month(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _first(m: int) -> pd.Timestamp:
    return pd.Timestamp(dt.date(m // 12, m % 12 + 1, 1))


def monthly_eligible(
    ds: Dataset, months: list[int], eligibility: EligibilitySettings
) -> pd.DataFrame:
    """Per month: every eligible person registered and alive on its first day, with area and
    group, and their emergency admissions that month (one row per person-month)."""
    r, pr = ds.table("registrations"), ds.table("practices")
    reg = (
        r.join(pr, "practice_code")
        .select("person_id", "area", "start_date", "end_date")
        .to_pandas()
    )
    regs = MonthlyRegistrations(ds, reg, eligibility)
    e = emergency_spells(ds)
    lo, hi = _first(min(months)), _first(max(months) + 1)
    adm = (
        e.filter((e.admission_date >= lo.date()) & (e.admission_date < hi.date()))
        .select("person_id", "admission_date")
        .to_pandas()
    )
    ad = pd.to_datetime(adm.admission_date)
    # Each registered person's admissions per month, keyed by (person code, month offset):
    # a month's counts are then one sorted lookup, not a reindex on string ids.
    m0, span = min(months), max(months) - min(months) + 1
    code = regs.ids.get_indexer(adm.person_id)
    key = code * span + (ad.dt.year * 12 + ad.dt.month - 1 - m0).to_numpy()
    keys, counts = np.unique(key[code >= 0], return_counts=True)
    keys, counts = np.append(keys, -1), np.append(counts, 0)  # a last key no lookup matches
    out = []
    for m in months:
        g, old, cond = regs.on(m)
        keep = np.asarray(eligibility.eligible(old, cond), dtype=bool)
        g = g[keep]
        old, cond = old[keep], cond[keep]
        groups = eligibility.group_names()
        grp = (
            np.where(~old & cond, groups[0], np.where(old & ~cond, groups[1], groups[2]))
            if groups
            else np.full(len(g), ALL, dtype=object)
        )
        want = g._code.to_numpy() * span + (m - m0)
        at = np.minimum(np.searchsorted(keys[:-1], want), keys.size - 1)
        n = np.where(keys[at] == want, counts[at], 0)
        out.append(
            pd.DataFrame(
                {
                    "person_id": g.person_id.to_numpy(),
                    "area": g.area.to_numpy(),
                    "group": grp,
                    "month": m,
                    "admissions": n,
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def _period_stats(pm: pd.DataFrame, groups: tuple[str, ...]) -> pd.DataFrame:
    """Per area and group (and all eligible): admissions, person-years, overdispersion."""
    rows = []
    for grp_name, part in [(ALL, pm), *((g, pm[pm.group == g]) for g in groups)]:
        for area, a in part.groupby("area", sort=False):
            per = a.groupby("person_id").admissions.sum()
            mean = per.mean()
            phi = max(1.0, float(per.var(ddof=1) / mean)) if mean > 0 and len(per) > 1 else 1.0
            rows.append(
                {
                    "group": grp_name,
                    "area": area,
                    "admissions": int(a.admissions.sum()),
                    "person_years": len(a) / 12.0,
                    "people": int(per.size),
                    "phi": phi,
                }
            )
    return pd.DataFrame(rows)


def log_rate_ratio(
    a1: float, t1: float, phi1: float, a0: float, t0: float, phi0: float
) -> tuple[float, float]:
    """Log of (a1/t1)/(a0/t0) and its standard error ``sqrt(phi1/a1 + phi0/a0)`` (Wald, on
    the log scale; ``phi`` = 1 is the Poisson case)."""
    return float(np.log((a1 / t1) / (a0 / t0))), float(np.sqrt(phi1 / a1 + phi0 / a0))


@dataclass
class AreaResult:
    """The Table 2 rows and the programme-minus-comparator differences.

    ``settings`` are those the table was made with, ``comparator_areas`` filled in from the
    data when they were left ``None``.
    """

    settings: AreaSettings
    table: pd.DataFrame
    differences: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """Table 2 in long form: one row per start date, group and area (rates, percentage
        change with its 95% CI, people and admissions)."""
        return self.table.reset_index(drop=True)

    def summary(self) -> str:
        """The programme's change for all eligible people at each start date, and any warning."""
        t = self.table
        if t.empty:
            return "area comparison: no rows"
        name = pooled_name(self.settings.programme_areas)
        programme = t[(t["area"] == name) & (t["group"] == ALL)]
        lines = [f"area comparison over {self.settings.months} months from each start date"]
        for r in programme.itertuples():
            lines.append(
                f"{name}, all eligible, from {r.start}: {_pct(r.pct_change)} "
                f"(95% CI {_pct(r.ci_low)} to {_pct(r.ci_high)})"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The ``monitoring`` block: ``table2`` (group, start, area, pct_change, ci_low, ci_high)
        and ``differences``; ``settings`` holds the start dates and period length only."""

        def recs(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                for r in df.to_dict(orient="records")
            ]

        return {
            "settings": {
                "starts": [s.isoformat() for s in self.settings.starts],
                "months": self.settings.months,
            },
            "table2": recs(self.table),
            "differences": recs(self.differences),
            "warnings": self.warnings,
        }


def _pct(v: Any) -> str:
    return "withheld" if v is None or pd.isna(v) else f"{v:+.1f}%"


def evaluate_areas(
    ds: Dataset, window: tuple[dt.date, dt.date], settings: AreaSettings | None = None
) -> AreaResult:
    """Percentage change in emergency admissions per eligible person, by area and group.

    Raises :class:`~careval.errors.ConfigError` when a programme or comparator area is not an
    area of the data (naming it and the areas the data have).
    """
    st = settings or AreaSettings()
    areas = resolve_areas(data_areas(ds), st.programme_areas, st.comparator_areas)
    if areas.comparators:
        st = dataclasses.replace(st, comparator_areas=areas.comparators)
    first, last = _month(window[0]), _month(window[1])
    warnings = []
    starts = []
    for s in st.starts:
        m = _month(s)
        if m - 12 < first or m + st.months - 1 > last:
            warnings.append(
                f"start {s.isoformat()} skipped: the data ({window[0]} to {window[1]}) do not "
                f"cover {st.months} months after it and the same months a year before"
            )
            continue
        starts.append(m)
    if not starts:
        raise ConfigError("no start date leaves a full period after it and a year before it")
    if not areas.comparators:
        raise ConfigError(
            "no comparator area: every practice is in the programme's areas "
            f"({', '.join(areas.programme)})"
        )
    months = sorted({m + k - d for m in starts for k in range(st.months) for d in (0, 12)})
    pm = monthly_eligible(ds, months, st.eligibility)
    pm = pm[pm.area.isin(areas.programme + areas.comparators)]
    if not pm.area.isin(areas.comparators).any():
        raise ConfigError(
            "no comparator area has eligible people registered in the months compared "
            f"(comparator areas: {', '.join(areas.comparators)})"
        )
    pm = pm.assign(area=pm.area.where(~pm.area.isin(areas.programme), areas.name))
    groups = st.eligibility.group_names()
    z = stats.norm.ppf(0.975)
    rows = []
    for m in starts:
        after = _period_stats(pm[pm.month.between(m, m + st.months - 1)], groups)
        before = _period_stats(pm[pm.month.between(m - 12, m + st.months - 13)], groups)
        both = after.merge(before, on=["group", "area"], suffixes=("_after", "_before"))
        for r in both.itertuples():
            if r.admissions_after == 0 or r.admissions_before == 0:
                continue
            rate_a = r.admissions_after / r.person_years_after
            rate_b = r.admissions_before / r.person_years_before
            lrr, se = log_rate_ratio(
                r.admissions_after,
                r.person_years_after,
                r.phi_after,
                r.admissions_before,
                r.person_years_before,
                r.phi_before,
            )
            rows.append(
                {
                    "group": r.group,
                    "start": _first(m).date().isoformat(),
                    "area": r.area,
                    "rate_before": rate_b,
                    "rate_after": rate_a,
                    "pct_change": 100 * (np.exp(lrr) - 1),
                    "ci_low": 100 * (np.exp(lrr - z * se) - 1),
                    "ci_high": 100 * (np.exp(lrr + z * se) - 1),
                    "se_log_rate_ratio": float(se),
                    "people_after": r.people_after,
                    "admissions_after": r.admissions_after,
                    "admissions_before": r.admissions_before,
                }
            )
    if not rows:  # e.g. one small practice: no group with admissions in both periods
        raise ConfigError(
            "no area and group has emergency admissions both before and after any start date"
        )
    table = pd.DataFrame(rows)
    order = {a: i for i, a in enumerate((areas.name, *areas.comparators))}
    gorder = {g: i for i, g in enumerate((ALL, *groups))}
    table = table.sort_values(
        ["start", "group", "area"],
        key=lambda c: (
            c.map(gorder) if c.name == "group" else (c.map(order) if c.name == "area" else c)
        ),
        ignore_index=True,
    )
    diffs = []
    for (grp, start), part in table.groupby(["group", "start"], sort=False):
        p = part[part.area == areas.name]
        if p.empty:
            continue
        p0 = p.iloc[0]
        var_p = (p0["pct_change"] / 100 + 1) ** 2 * p0["se_log_rate_ratio"] ** 2
        for c in part[part.area != areas.name].itertuples():
            var_c = (c.pct_change / 100 + 1) ** 2 * c.se_log_rate_ratio**2
            d = p0["pct_change"] - c.pct_change
            se = 100 * np.sqrt(var_p + var_c)
            diffs.append(
                {
                    "group": grp,
                    "start": start,
                    "comparator": c.area,
                    "difference": d,
                    "ci_low": d - z * se,
                    "ci_high": d + z * se,
                    "p_value": float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else float("nan"),
                }
            )
    return AreaResult(st, *_with_truth(ds, st, table, pd.DataFrame(diffs)), warnings)


def _with_truth(
    ds: Dataset, st: AreaSettings, table: pd.DataFrame, diffs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """On a synthetic population with area trends in its truth, Table 2 and the differences
    with the change each estimates (``true_pct_change``, ``true_difference``); else as given."""
    truth = expected_area_changes(truth_document(ds), st)
    if not truth["table2"]:
        return table, diffs
    keys = ["group", "start", "area"]
    table = table.merge(pd.DataFrame(truth["table2"]), on=keys, how="left")
    if not diffs.empty:
        diffs = diffs.merge(
            pd.DataFrame(truth["differences"]), on=["group", "start", "comparator"], how="left"
        )
    return table, diffs
