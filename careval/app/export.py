"""What the app recorded, as the data model's ``care_plans``, ``mdg_meetings`` and
``mdg_attendance`` tables, so ``careval run`` and ``careval follow`` evaluate what the tool
captured.

- **care_plans**: one row per plan made in the app (``care_plan_id`` ``APP`` and its number, so
  it cannot clash with the extract's own ids), its person, creation date and MDG, the author's
  role (``gp`` for a GP, else ``other``: the app's roles are not the data model's professions)
  and the quality items of the plan's **current** version (the plan as it now stands). A plan
  of a person whose practice has no MDG is not a programme plan and is left out (counted).
- **mdg_meetings**: meetings held (dated on or before the app's today) whose length was
  recorded; ``cases_discussed`` counts the cases reviewed. Meetings still to come, or held
  without their length, are left out (counted), not given a made-up length.
- **mdg_attendance**: the attendance by role of those meetings.

:func:`merged` adds them to a dataset's own three tables, and :func:`copy_dataset` makes the
rest of a new dataset folder from the old one, for ``careval export --data``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select

from careval.app.store import CarePlan, Meeting, Store
from careval.data.schema import ARROW_TYPES, CARE_PLAN_QUALITY_ITEMS, TABLES
from careval.errors import ConfigError
from careval.folders import MARKER

EXPORTED = ("care_plans", "mdg_meetings", "mdg_attendance")


def _id(n: int) -> str:
    return f"APP{n:07d}"


@dataclass
class Export:
    """The three tables (Arrow, with the data model's column types) and what was left out."""

    tables: dict[str, pa.Table]
    left_out: dict[str, int] = field(default_factory=dict)

    def rows(self) -> dict[str, int]:
        return {k: t.num_rows for k, t in self.tables.items()}


def _table(name: str, rows: list[dict[str, object]]) -> pa.Table:
    cols = TABLES[name].columns
    schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.type], c.nullable) for c in cols])
    return pa.Table.from_pylist(rows, schema=schema)


def export(store: Store, today: dt.date) -> Export:
    """The app's plans and meetings as data-model tables."""
    left: dict[str, int] = {"plans_without_mdg": 0, "meetings_to_come": 0, "meetings_no_length": 0}
    plans, meetings, attendance = [], [], []
    with store.session() as db:
        for p in db.scalars(select(CarePlan).order_by(CarePlan.id)):
            if p.mdg is None:
                left["plans_without_mdg"] += 1
                continue
            v = p.current
            plans.append(
                {
                    "care_plan_id": _id(p.id),
                    "person_id": p.person_id,
                    "created_date": p.created_date,
                    "mdg": p.mdg,
                    "author_role": "gp" if p.versions[0].author_role == "gp" else "other",
                    **{q: bool(getattr(v, q)) for q in CARE_PLAN_QUALITY_ITEMS},
                }
            )
        for m in db.scalars(select(Meeting).order_by(Meeting.id)):
            if m.meeting_date > today:
                left["meetings_to_come"] += 1
                continue
            if m.duration_minutes is None:
                left["meetings_no_length"] += 1
                continue
            meetings.append(
                {
                    "meeting_id": _id(m.id),
                    "mdg": m.mdg,
                    "meeting_date": m.meeting_date,
                    "duration_minutes": m.duration_minutes,
                    "cases_discussed": sum(k.reviewed for k in m.cases),
                }
            )
            attendance += [
                {"meeting_id": _id(m.id), "role": a.role, "attendees": a.attendees}
                for a in m.attendance
            ]
    return Export(
        {
            "care_plans": _table("care_plans", plans),
            "mdg_meetings": _table("mdg_meetings", meetings),
            "mdg_attendance": _table("mdg_attendance", attendance),
        },
        {k: v for k, v in left.items() if v},
    )


def merged(data: Path, result: Export) -> dict[str, pa.Table]:
    """The dataset's own three tables with the app's rows added (ids ``APP...`` cannot clash).

    Refused when the dataset already holds the app's rows (it was made by a merge before).
    """
    out = {}
    for name, table in result.tables.items():
        file = data / f"{name}.parquet"
        if not file.exists():
            out[name] = table
            continue
        own = pq.read_table(file).select(table.schema.names).cast(table.schema)
        key = TABLES[name].columns[0].name
        ids = pc.cast(own.column(key), pa.string())
        if pc.any(pc.starts_with(ids, "APP")).as_py():
            raise ConfigError(
                f"{file}: column {key} already holds the app's records (ids starting APP): "
                "merge into the extract as it came, not into an earlier merge"
            )
        out[name] = pa.concat_tables([own, table])
    return out


def copy_dataset(data: Path, into: Path, replaced: set[str]) -> None:
    """Every file and folder of ``data`` copied into ``into``, except the ``replaced`` files
    and careval's own folder marker. Copies, not hard links: a file edited in place in the new
    dataset must not change the old one."""
    for entry in sorted(data.iterdir()):
        if entry.name in replaced or entry.name == MARKER:
            continue
        if entry.is_dir():
            shutil.copytree(entry, into / entry.name)
        else:
            shutil.copy2(entry, into / entry.name)
