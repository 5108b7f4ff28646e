"""A spec inferred from a dataset: what ``careval init`` writes.

What can be read from the data is read: the window (first and last inpatient admission), the
extract date (the latest date anywhere in the data, or the manifest's), the areas (the
programme's are those whose practices belong to an MDG), the programme start (the month of the
first care plan). Dates the evaluation needs but the data cannot say are placed from the
programme start by fixed rules, each stated in the note beside it:

- the Table 2 start dates: the start of the financial year (1 April) the programme started in,
  the start of its calendar quarter, and the programme start itself;
- the reference date (eligibility counted): the start of that calendar quarter;
- the risk model's training date: that 1 April, moved a year at a time to leave the features'
  24 months of history before it and the validation year (12 months after it, with 12 months
  of follow-up) inside the data.

On the default synthetic population these give exactly the defaults (a test checks it). Every
other field keeps its default, said so in the file's header.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from careval.data.access import Dataset
from careval.data.schema import TABLES
from careval.features.index_date import WINDOWS
from careval.spec.check import window as study_window
from careval.spec.model import StudySpec

HISTORY_MONTHS = max(WINDOWS)  # the risk model's features look back this far


def _month(d: dt.date) -> dt.date:
    return d.replace(day=1)


def _add_months(d: dt.date, n: int) -> dt.date:
    m = d.year * 12 + d.month - 1 + n
    return dt.date(m // 12, m % 12 + 1, 1)


def _financial_year(d: dt.date) -> dt.date:
    return dt.date(d.year if d.month >= 4 else d.year - 1, 4, 1)


def _quarter(d: dt.date) -> dt.date:
    return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def latest_date(ds: Dataset) -> dt.date | None:
    """The latest date in any date column of any table."""
    found: list[dt.date] = []
    for name in ds.tables:
        t = ds.table(name)
        cols = [c.name for c in TABLES[name].columns if c.type == "date"]
        if not cols:
            continue
        row = t.aggregate(**{c: t[c].max() for c in cols}).to_pandas().iloc[0]
        found += [pd.Timestamp(v).date() for v in row if not pd.isna(v)]
    return max(found) if found else None


def infer(ds: Dataset) -> tuple[StudySpec, dict[str, str]]:
    """A spec for ``ds`` and, by key path, a note on where each inferred value came from."""
    spec = StudySpec()
    notes: dict[str, str] = {}
    lo, hi = study_window(spec, ds)
    study = dataclasses.replace(spec.study, start=lo, end=hi)
    notes["study.start"] = "inferred: the first inpatient admission"
    notes["study.end"] = "inferred: the last inpatient admission"
    manifest = ds.manifest.get("extract_date")
    if manifest:
        study = dataclasses.replace(study, extract_date=dt.date.fromisoformat(str(manifest)))
        notes["study.extract_date"] = "from the dataset manifest"
    else:
        latest = latest_date(ds)
        study = dataclasses.replace(study, extract_date=latest)
        notes["study.extract_date"] = "inferred: the latest date in the data"

    pr = ds.table("practices").to_pandas()
    order = list(dict.fromkeys(pr["area"].astype(str)))
    with_mdg = list(dict.fromkeys(pr.loc[pr["mdg"].notna(), "area"].astype(str)))
    if with_mdg and len(with_mdg) < len(order):
        areas = tuple(with_mdg)
        notes["programme.areas"] = "inferred: the areas whose practices belong to an MDG"
    elif "pilot" in order and len(order) > 1:
        areas = ("pilot",)
        notes["programme.areas"] = "the default; check it"
    else:
        areas = (order[0],)
        notes["programme.areas"] = "a guess (the first area in the practices table); check it"
    others = [a for a in order if a not in areas]
    notes["programme.comparators"] = "every other area: " + ", ".join(others)
    controls = spec.matching.control_areas
    not_yet_treated = spec.matching.not_yet_treated
    if not others:  # one area: the controls are its people not yet treated
        controls, not_yet_treated = (), True
        notes["matching.control_areas"] = (
            "inferred: none (the data have no area outside the programme); Table 2 and the "
            "indicators' comparison will be skipped"
        )
        notes["matching.not_yet_treated"] = (
            "inferred: the programme area's people not yet treated are the controls"
        )
    elif not set(controls) <= set(others):
        controls = tuple(others)
        notes["matching.control_areas"] = "inferred: every area that is not the programme's"
    else:
        notes["matching.control_areas"] = "the default; every one is in the data"

    start = spec.programme.start
    if ds.has("care_plans"):
        cp = ds.table("care_plans")
        first = cp.aggregate(first=cp.created_date.min()).to_pandas()["first"].iloc[0]
        if not pd.isna(first):
            start = _month(pd.Timestamp(first).date())
            notes["programme.start"] = "inferred: the month of the first care plan"
    if "programme.start" not in notes:
        if not lo <= start <= hi:
            start = _add_months(_month(lo), 12)
            notes["programme.start"] = "a guess (a year into the data: no care plans); check it"
        else:
            notes["programme.start"] = "the default (no care plans to infer it from); check it"
    first_month = lo if lo.day == 1 else _add_months(_month(lo), 1)
    if not first_month <= start <= hi:  # plans before the hospital data, or none in them
        start = min(max(start, first_month), _month(hi))
        notes["programme.start"] += "; moved inside the study window"
    fy, quarter = _financial_year(start), _quarter(start)
    starts = tuple(d for d in dict.fromkeys((fy, quarter, start)) if lo <= d <= hi)
    notes["programme.alternative_starts"] = (
        "from the programme start: its financial year's start, its quarter's start, itself"
    )
    reference = quarter if lo <= quarter <= hi else start
    study = dataclasses.replace(study, reference_date=reference)
    notes["study.reference_date"] = "the start of the programme start's calendar quarter"
    train = fy
    while train < _add_months(lo, HISTORY_MONTHS):
        train = _add_months(train, 12)
    while train > _add_months(lo, HISTORY_MONTHS) and _add_months(train, 24) > _add_months(
        _month(hi), 1
    ):
        train = _add_months(train, -12)
    validate = _add_months(train, 12)
    short = validate > hi
    if short:  # data too short for both: dates kept inside the window (the model is skipped)
        validate = _month(hi)
        train = max(first_month, _add_months(validate, -12))
    risk = dataclasses.replace(spec.risk, train_date=train, validate_date=validate)
    notes["risk.train_date"] = (
        f"1 April of the programme's first year, moved to leave {HISTORY_MONTHS} months of "
        "history before it and a validation year inside the data"
    )
    notes["risk.validate_date"] = (
        "12 months after the training date"
        if not short
        else "the data are too short for a validation year: the risk model will be skipped"
    )

    programme = dataclasses.replace(
        spec.programme,
        start=start,
        alternative_starts=starts or (start,),
        areas=areas,
    )
    notes["programme.fund_budget"] = "the default; not in the data"
    matching = dataclasses.replace(
        spec.matching, control_areas=controls, not_yet_treated=not_yet_treated
    )
    spec = dataclasses.replace(spec, study=study, programme=programme, risk=risk, matching=matching)
    return spec, notes
