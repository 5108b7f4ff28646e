"""A spec against the dataset it is run on: dates inside the data, areas that practices have,
code lists that exist. Only the keys a spec file set are checked (a default is never an error:
an analysis the data cannot support is skipped with its reason instead)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.data.codelists import code_list
from careval.errors import ConfigError
from careval.spec.model import StudySpec
from careval.spec.toml import LoadedSpec

# Keys naming areas of the data (``practices.area``).
AREA_KEYS = ("programme.areas", "programme.comparators", "matching.control_areas")
# Date keys that must lie inside the study window; study.start/end must lie inside the data.
WINDOW_KEYS = ("study.start", "study.end")


def window(spec: StudySpec, ds: Dataset) -> tuple[dt.date, dt.date]:
    """The study window: the spec's start and end where set, else the data's."""
    lo, hi = data_window(ds)
    return spec.study.start or lo, spec.study.end or hi


def check(loaded: LoadedSpec, ds: Dataset) -> None:
    """Raise one ConfigError listing every key the data contradict (key path and value)."""
    spec, given = loaded.spec, loaded.given
    where = str(loaded.path) if loaded.path else "the spec"
    problems: list[str] = []
    lo, hi = data_window(ds)
    for key in WINDOW_KEYS:
        value = _get(spec, key)
        if key in given and value is not None and not lo <= value <= hi:
            problems.append(f"{key} = {value}: outside the data ({lo} to {hi})")
    start, end = spec.study.start or lo, spec.study.end or hi  # window(), the data read once
    for key, value in _dates(spec):
        if key in given and key not in WINDOW_KEYS and key != "study.extract_date":
            for d in value if isinstance(value, tuple) else (value,):
                if d is not None and not start <= d <= end:
                    problems.append(f"{key} = {d}: outside the study window ({start} to {end})")
    areas = _areas(ds)
    for key in AREA_KEYS:
        value = _get(spec, key)
        if key in given and value is not None:
            missing = [a for a in value if a not in areas]
            if missing:
                problems.append(
                    f"{key} = {list(value)}: no practice has area {', '.join(map(repr, missing))}"
                    f" (the data have {', '.join(map(repr, areas))})"
                )
    for cond in spec.eligibility.conditions:
        try:
            code_list(cond)
        except ConfigError as exc:
            problems.append(f"eligibility.conditions: {exc}")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))


def _get(spec: StudySpec, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(spec, section), name)


def _dates(spec: StudySpec) -> list[tuple[str, Any]]:
    out = []
    for f in dataclasses.fields(spec):
        section = getattr(spec, f.name)
        if not dataclasses.is_dataclass(section):
            continue  # the outcomes: no dates
        for g in dataclasses.fields(section):
            v = getattr(section, g.name)
            if isinstance(v, dt.date) or (isinstance(v, tuple) and v and isinstance(v[0], dt.date)):
                out.append((f"{f.name}.{g.name}", v))
    return out


def _areas(ds: Dataset) -> list[str]:
    pr = ds.table("practices")
    return [str(a) for a in pr.select("area").distinct().order_by("area").to_pandas()["area"]]
