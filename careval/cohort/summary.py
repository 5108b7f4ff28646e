"""The data summary: people by area and eligibility group, activity by year, cohort attrition.

Every table lists the data's areas (:func:`careval.data.areas.data_areas`) in the data's order;
care-plan coverage is of the eligible people of the programme's areas (``programme_areas``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from careval.cohort.eligibility import EligibilitySettings, emergency_spells, population_at
from careval.data.access import Dataset
from careval.data.areas import area_problems, data_areas
from careval.data.schema import ELECTIVE_METHODS
from careval.errors import ConfigError
from careval.settings import Settings


@dataclass(frozen=True)
class SummarySettings(Settings):
    """When eligibility is counted, the programme's eligibility rule, and its areas (whose
    eligible people care-plan coverage is counted against).

    ``eligibility`` is the run's one rule: :func:`careval.evaluation.evaluate` passes it to
    every analysis that selects the eligible (Table 2, the risk model's targeting, the matched
    study's controls).
    """

    reference_date: dt.date = dt.date(2011, 7, 1)
    eligibility: EligibilitySettings = field(default_factory=EligibilitySettings)
    programme_areas: tuple[str, ...] = ("pilot",)

    def __post_init__(self) -> None:
        problems = area_problems("programme_areas", self.programme_areas)
        if problems:
            raise ConfigError("summary settings: " + "; ".join(problems))


@dataclass
class DataSummary:
    """Result of :func:`summarise`: three tidy tables and the window they cover."""

    settings: SummarySettings
    window: tuple[dt.date, dt.date]
    people_by_area: pd.DataFrame
    activity_by_year: pd.DataFrame
    attrition: pd.DataFrame
    care_plan_coverage: pd.DataFrame
    tables_present: list[str]
    warnings: list[str] = field(default_factory=list)

    def tidy(self) -> pd.DataFrame:
        """People by area and eligibility group on the reference date (one row per area)."""
        return self.people_by_area.copy()

    def summary(self) -> str:
        """The window, the tables present, and who is registered and eligible."""
        lines = [
            f"Data from {self.window[0]} to {self.window[1]}; "
            f"{len(self.tables_present)} tables: {', '.join(self.tables_present)}",
            f"Eligibility ({self.settings.eligibility.describe(short=True)}) counted on "
            f"{self.settings.reference_date}:",
        ]
        for r in self.people_by_area.to_dict(orient="records"):
            lines.append(f"  {r['area']}: {r['registered']} registered, {r['eligible']} eligible")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready block for ``results.json``."""
        return {
            "reference_date": self.settings.reference_date.isoformat(),
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "tables_present": self.tables_present,
            "people_by_area": _records(self.people_by_area),
            "activity_by_year": _records(self.activity_by_year),
            "attrition": _records(self.attrition),
            "care_plan_coverage": _records(self.care_plan_coverage),
            "warnings": self.warnings,
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON records: NaN as null, values as they are (canonicalised at publishing)."""
    return [
        {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def summarise(
    ds: Dataset,
    settings: SummarySettings | None = None,
    window: tuple[dt.date, dt.date] | None = None,
) -> DataSummary:
    """Summarise a dataset: who is in it, what happened to them each year, who is eligible."""
    st = settings or SummarySettings()
    window = window or _window(ds)
    warnings = []
    if not window[0] <= st.reference_date <= window[1]:
        warnings.append(
            f"reference date {st.reference_date} lies outside the data window "
            f"{window[0]} to {window[1]}"
        )
    areas = data_areas(ds)
    missing = [a for a in st.programme_areas if a not in areas]
    if missing:
        warnings.append(
            f"programme_areas: {', '.join(map(repr, missing))} not among the data's areas "
            f"({', '.join(map(repr, areas))}): no care-plan coverage of them"
        )
    pop = population_at(ds, st.reference_date, st.eligibility)
    people = _people_by_area(pop, areas, st.eligibility.group_names())
    activity = _activity_by_year(ds, window, areas)
    attrition = _attrition(ds, pop, st, areas)
    coverage = _coverage(ds, people, st.programme_areas)
    return DataSummary(st, window, people, activity, attrition, coverage, ds.tables, warnings)


def _coverage(ds: Dataset, people: pd.DataFrame, programme: tuple[str, ...]) -> pd.DataFrame:
    """Care plans created each month and cumulative coverage of the programme's eligible
    people (those of its areas together)."""
    cols = ["month", "care_plans", "cumulative", "coverage_of_eligible"]
    if not ds.has("care_plans"):
        return pd.DataFrame(columns=cols)
    cp = ds.table("care_plans")
    month = cp.created_date.truncate("M").name("month")
    df = cp.group_by(month).agg(care_plans=ibis._.count()).order_by("month").to_pandas()
    eligible = int(people.loc[people["area"].isin(programme), "eligible"].sum())
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m")
    df["cumulative"] = df["care_plans"].cumsum()
    df["coverage_of_eligible"] = (df["cumulative"] / eligible).round(4) if eligible else None
    return df[cols]


def data_window(ds: Dataset) -> tuple[dt.date, dt.date]:
    """The analysis window of a dataset (see :func:`_window`)."""
    return _window(ds)


def _window(ds: Dataset) -> tuple[dt.date, dt.date]:
    """First and last admission date: the span of hospital data (the analysis window)."""
    s = ds.table("inpatient_spells")
    row = s.aggregate(lo=s.admission_date.min(), hi=s.admission_date.max()).to_pandas().iloc[0]
    if pd.isna(row["lo"]):
        r = ds.table("registrations")
        row = r.aggregate(lo=r.start_date.min(), hi=r.start_date.max()).to_pandas().iloc[0]
    return pd.Timestamp(row["lo"]).date(), pd.Timestamp(row["hi"]).date()


def _people_by_area(pop: ir.Table, areas: tuple[str, ...], groups: tuple[str, ...]) -> pd.DataFrame:
    """Registered and eligible people per area, and the eligible in each group (if any)."""
    agg = pop.group_by("area").agg(
        registered=pop.count(),
        eligible=pop.eligible.sum(),
        **{g: (pop.group == g).sum() for g in groups},
    )
    df = agg.to_pandas().set_index("area").reindex(list(areas)).fillna(0).astype("int64")
    df["eligible_share"] = (df["eligible"] / df["registered"].where(df["registered"] > 0)).round(4)
    return df.reset_index()


def _fiscal_years(window: tuple[dt.date, dt.date]) -> list[int]:
    first = window[0].year - (1 if window[0].month < 4 else 0)
    last = window[1].year - (1 if window[1].month < 4 else 0)
    return list(range(first, last + 1))


def _fy(date: ir.DateValue) -> ir.IntegerValue:
    """Financial year (April to March) a date falls in, named by its first calendar year."""
    return date.year() - (date.month() < 4).cast("int64")


def _activity_by_year(
    ds: Dataset, window: tuple[dt.date, dt.date], areas: tuple[str, ...]
) -> pd.DataFrame:
    years = _fiscal_years(window)
    # Person-years registered and alive, per area and financial year.
    r, p, pr = ds.table("registrations"), ds.table("persons"), ds.table("practices")
    fy = ibis.memtable({"fy": years})
    reg = r.join(p.select("person_id", "death_date"), "person_id").join(
        pr.select("practice_code", "area"), "practice_code"
    )
    x = reg.cross_join(fy)
    fy_start = ibis.date(x.fy, 4, 1)
    fy_end = ibis.date(x.fy + 1, 3, 31)
    lo = ibis.greatest(x.start_date, fy_start, ibis.date(window[0]))
    ends = [fy_end, ibis.date(window[1])]
    hi = ibis.least(
        *ends,
        ibis.coalesce(x.end_date, fy_end),
        ibis.coalesce(x.death_date, fy_end),
    )
    days = (hi.delta(lo, unit="day") + 1).clip(lower=0)
    exposure = x.group_by(["area", "fy"]).agg(person_years=(days.sum() / 365.25))

    def by_area_year(t: ir.Table, date_col: str, name: str) -> ir.Table:
        t = t.join(reg.select("person_id", "area").distinct(on="person_id"), "person_id")
        return t.group_by(["area", ibis._[date_col].pipe(_fy).name("fy")]).agg(
            **{name: ibis._.count()}
        )

    spells = ds.table("inpatient_spells")
    counts = [
        by_area_year(emergency_spells(ds), "admission_date", "emergency_admissions"),
        by_area_year(
            spells.filter(
                spells.admission_method.isin(list(ELECTIVE_METHODS))
                & ~spells.patient_classification.isin(["3", "4"])
            ),
            "admission_date",
            "elective_admissions",
        ),
    ]
    optional = {
        "ae_attendances": ("arrival_date", "ae_attendances", None),
        "outpatient_appointments": ("appointment_date", "outpatient_attendances", "attended"),
        "community_contacts": ("contact_date", "community_contacts", None),
        "care_plans": ("created_date", "care_plans", None),
    }
    for table, (col, name, flag) in optional.items():
        if ds.has(table):
            t = ds.table(table)
            if flag:
                t = t.filter(t[flag])
            counts.append(by_area_year(t, col, name))
    out = exposure
    for c in counts:
        out = out.left_join(c, ["area", "fy"]).drop("area_right", "fy_right")
    df = out.to_pandas()
    df = df[df["fy"].isin(years)].sort_values(["area", "fy"])
    count_cols = [c for c in df.columns if c not in ("area", "fy", "person_years")]
    df[count_cols] = df[count_cols].fillna(0).astype("int64")
    df["person_years"] = df["person_years"].round(1)
    df["emergency_per_1000_py"] = (1000 * df["emergency_admissions"] / df["person_years"]).round(2)
    df.insert(1, "year", df.pop("fy").map(lambda y: f"{y}/{(y + 1) % 100:02d}"))
    order = {a: i for i, a in enumerate(areas)}
    return df.sort_values(
        ["area", "year"], key=lambda s: s.map(order) if s.name == "area" else s
    ).reset_index(drop=True)


def _attrition(
    ds: Dataset, pop: ir.Table, st: SummarySettings, areas: tuple[str, ...]
) -> pd.DataFrame:
    """CohortMethod-style attrition of the eligible cohort in each area at the reference date."""
    p, r, pr = ds.table("persons"), ds.table("registrations"), ds.table("practices")
    d = ibis.date(st.reference_date)
    area_of = r.join(pr, "practice_code").select("person_id", "area").distinct(on="person_id")
    ever = area_of.group_by("area").agg(n=ibis._.count()).to_pandas()
    registered = (
        r.filter((r.start_date <= d) & (r.end_date.isnull() | (r.end_date >= d)))
        .join(pr, "practice_code")
        .select("person_id", "area")
        .distinct(on="person_id")
    )
    reg_n = registered.group_by("area").agg(n=ibis._.count()).to_pandas()
    alive = registered.join(p.filter(p.death_date.isnull() | (p.death_date > d)), "person_id")
    alive_n = alive.group_by("area").agg(n=ibis._.count()).to_pandas()
    el = pop.filter(pop.eligible)
    el_n = el.group_by("area").agg(n=ibis._.count()).to_pandas()
    steps = [
        ("in the dataset (ever registered)", ever),
        (f"registered on {st.reference_date}", reg_n),
        ("alive on that date", alive_n),
        (f"eligible: {st.eligibility.describe()}", el_n),
    ]
    if ds.has("care_plans"):
        cp = ds.table("care_plans").select("person_id").distinct()
        planned = el.join(cp, "person_id")
        steps.append(
            (
                "of whom care-planned by the end of the data",
                planned.group_by("area").agg(n=ibis._.count()).to_pandas(),
            )
        )
    rows = []
    for i, (label, df) in enumerate(steps):
        counts = dict(zip(df["area"], df["n"], strict=True))
        rows.append(
            {"step": i + 1, "description": label, **{a: int(counts.get(a, 0)) for a in areas}}
        )
    return pd.DataFrame(rows)
