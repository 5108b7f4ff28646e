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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
from sqlalchemy import select

from careval.app.store import CarePlan, Meeting, Store
from careval.data.schema import ARROW_TYPES, CARE_PLAN_QUALITY_ITEMS, TABLES

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
