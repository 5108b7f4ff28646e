"""The app's view of a dataset: everyone registered on the scoring date, scored, with drivers.

Built once from a careval dataset (and a model directory from ``careval risk train``, or a
logistic model fitted here on the latest year with twelve months' follow-up) and kept in the
app's database (:class:`~careval.app.store.Person`), so that case lists and access checks are
SQL on indexed columns. It is rebuilt only when the dataset's files or the model change (their
fingerprint is in :class:`~careval.app.store.Meta`); what clinicians recorded is never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select

from careval.app.store import Fund, Meta, Person, Store
from careval.cohort.summary import data_window
from careval.data.access import Dataset
from careval.errors import ConfigError
from careval.features.index_date import FeatureSettings
from careval.risk.caselist import DRIVERS, case_list, score_people
from careval.risk.model import (
    OUTCOME,
    RiskModel,
    design_matrix,
    load_model,
    read_metadata,
    require_follow_up,
    risk_frame,
    settings_from_dict,
)

CONDITION_PREFIX = "has_"


@dataclass(frozen=True)
class SnapshotInfo:
    """What the app serves: the dataset, when it was scored and by which model."""

    data: str
    fingerprint: str
    scored_on: dt.date
    model: str
    people: int
    synthetic: bool

    def to_dict(self) -> dict[str, str]:
        return {
            "data": self.data,
            "fingerprint": self.fingerprint,
            "scored_on": self.scored_on.isoformat(),
            "model": self.model,
            "people": str(self.people),
            "synthetic": "1" if self.synthetic else "0",
        }

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> SnapshotInfo:
        return cls(
            d["data"],
            d["fingerprint"],
            dt.date.fromisoformat(d["scored_on"]),
            d["model"],
            int(d["people"]),
            d["synthetic"] == "1",
        )


def fingerprint(data: Path, model_dir: Path | None, date: dt.date | None) -> str:
    """Names, sizes and modification times of the dataset's and model's files, hashed."""
    h = hashlib.sha256()
    for folder in [data] + ([model_dir] if model_dir else []):
        for f in sorted(folder.glob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update(str(date).encode())
    return h.hexdigest()[:16]


def current(store: Store) -> SnapshotInfo | None:
    """The snapshot the database holds, or None."""
    with store.session() as db:
        rows = {m.key: m.value for m in db.scalars(select(Meta))}
    return SnapshotInfo.from_dict(rows) if "fingerprint" in rows else None


def _scores(
    ds: Dataset, model_dir: Path | None, date: dt.date | None
) -> tuple[pd.DataFrame, pd.DataFrame, dt.date, str]:
    window = data_window(ds)
    day = date or window[1] + dt.timedelta(days=1)
    if model_dir is not None:
        model, meta = load_model(model_dir, ds)
        settings = settings_from_dict(meta["feature_settings"])
        label = f"{meta.get('kind', 'model')} trained on {meta['index_date']} ({model_dir.name})"
    else:
        settings = FeatureSettings()
        train = day - dt.timedelta(days=366)
        require_follow_up(window, train, "the model's training date")
        frame = risk_frame(ds, train, settings)
        y = frame[OUTCOME].to_numpy()
        if len(y) == 0 or y.min() == y.max():
            raise ConfigError(
                f"{ds.path}: cannot fit a risk model on {train}: it needs people registered "
                "then with and without an emergency admission in the next 12 months"
            )
        model = RiskModel("logistic").fit(design_matrix(frame), y)
        label = f"logistic trained on {train} (fitted by careval serve)"
    scored, x = score_people(ds, model, day, settings)
    if not len(scored):
        raise ConfigError(f"{ds.path}: nobody is registered on {day}, the scoring date")
    pool = scored[scored.eligible].assign(on_care_plan=False)
    listed = case_list(pool, x.loc[pool.index], model, "practice_code", max(len(pool), 1))
    return scored, listed, day, label


def _drivers(listed: pd.DataFrame) -> dict[str, str]:
    out: dict[str, str] = {}
    cols = [
        (f"driver_{k}", f"driver_{k}_value", f"driver_{k}_contribution")
        for k in range(1, DRIVERS + 1)
        if f"driver_{k}" in listed.columns
    ]
    for row in listed.itertuples(index=False):
        r = row._asdict()
        out[r["person_id"]] = json.dumps(
            [[r[n], _num(r[v]), _num(r[c])] for n, v, c in cols], separators=(",", ":")
        )
    return out


def _num(v: Any) -> float | None:
    f = float(v)
    return None if np.isnan(f) else round(f, 6)


def build(
    store: Store,
    data: Path,
    model_dir: Path | None = None,
    date: dt.date | None = None,
    force: bool = False,
) -> SnapshotInfo:
    """Score the dataset and replace the database's snapshot (unless it is already this one)."""
    data = data.resolve()
    fp = fingerprint(data, model_dir, date)
    have = current(store)
    if have is not None and have.fingerprint == fp and not force:
        return have
    with Dataset(data) as ds:
        scored, listed, day, label = _scores(ds, model_dir, date)
        synthetic = ds.synthetic
        funds = ds.table("innovation_fund").to_pandas() if ds.has("innovation_fund") else None
    conditions = [c for c in scored.columns if c.startswith(CONDITION_PREFIX)]
    flags = scored[conditions].to_numpy(dtype=bool)
    names = np.asarray([c[len(CONDITION_PREFIX) :] for c in conditions])
    drivers = _drivers(listed)
    rows = [
        {
            "person_id": pid,
            "practice_code": practice,
            "mdg": mdg if isinstance(mdg, str) else None,
            "age": int(age),
            "female": bool(female),
            "eligible": bool(eligible),
            "conditions": " ".join(names[flags[i]]),
            "risk": float(risk),
            "drivers": drivers.get(pid, "[]"),
            "plan_in_data": bool(plan),
        }
        for i, (pid, practice, mdg, age, female, eligible, risk, plan) in enumerate(
            zip(
                scored.person_id,
                scored.practice_code,
                scored.mdg,
                scored.age,
                scored.female,
                scored.eligible,
                scored.risk,
                scored.on_care_plan,
                strict=True,
            )
        )
    ]
    info = SnapshotInfo(str(data), fp, day, label, len(rows), synthetic)
    with store.session() as db, db.begin():
        db.execute(delete(Person))
        db.execute(delete(Fund))
        db.execute(delete(Meta))
        for start in range(0, len(rows), 20_000):
            db.execute(insert(Person), rows[start : start + 20_000])
        if funds is not None and len(funds):
            db.execute(
                insert(Fund),
                [
                    {
                        "allocation_id": str(f.allocation_id),
                        "mdg": str(f.mdg),
                        "allocation_date": pd.Timestamp(f.allocation_date).date(),
                        "amount": float(f.amount),
                        "spent": float(f.spent),
                        "purpose": str(f.purpose),
                    }
                    for f in funds.itertuples(index=False)
                ],
            )
        db.add_all(Meta(key=k, value=v) for k, v in info.to_dict().items())
    return info


def model_label(model_dir: Path) -> str:
    """A model directory's kind and training date, for messages."""
    meta = read_metadata(model_dir)
    return f"{meta.get('kind', 'model')} trained on {meta['index_date']}"
