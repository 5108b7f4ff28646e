"""The app's own database: who uses it, what they record, and what they saw.

SQLAlchemy 2 models on one ``Base``; the schema is made and upgraded by the Alembic migrations
in ``careval/app/migrations`` (:func:`open_store` runs them), so a SQLite file (the default) and
a PostgreSQL database by URL hold the same tables. Three kinds of rows:

- **the snapshot** of the dataset the app serves (:class:`Person`, :class:`Fund`,
  :class:`Meta`): written by :mod:`careval.app.snapshot`, replaced whole when the data change;
- **what clinicians record** (care plans with every version, MDG meetings, shares with
  organisations): never changed by a snapshot; :mod:`careval.app.export` turns them into the
  data model's ``care_plans``, ``mdg_meetings`` and ``mdg_attendance`` tables;
- **security** (users, sessions, failed log-ins, the audit log).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

from careval.data.schema import CARE_PLAN_QUALITY_ITEMS

# Who a user is. Least privilege: each role's grants are in careval.app.access, nowhere else.
ROLES = ("gp", "mdg_member", "provider_clinician", "programme_manager", "evaluator", "admin")
ROLE_NAMES = {
    "gp": "GP",
    "mdg_member": "MDG member",
    "provider_clinician": "Provider clinician",
    "programme_manager": "Programme manager",
    "evaluator": "Evaluator",
    "admin": "Administrator",
}
QUALITY_ITEMS = CARE_PLAN_QUALITY_ITEMS  # the plan's quality checklist, as in the data model


class Base(DeclarativeBase):
    pass


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    practice_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    organisation: Mapped[str | None] = mapped_column(String(100), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    mdgs: Mapped[list[UserMdg]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def mdg_codes(self) -> tuple[str, ...]:
        return tuple(sorted(m.mdg for m in self.mdgs))


class UserMdg(Base):
    """An MDG a user belongs to (a GP may belong to their practice's MDG; members to several)."""

    __tablename__ = "user_mdgs"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    mdg: Mapped[str] = mapped_column(String(8), primary_key=True)


class AuthSession(Base):
    """A signed-in browser: the cookie holds a random token; only its SHA-256 is kept."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class LoginFailure(Base):
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)


class AuditEvent(Base):
    """One view or change of a person's record (or of the users), by whom and when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    object_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class Meta(Base):
    """The snapshot's provenance: dataset, its fingerprint, the scoring date, the model."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Person(Base):
    """Everyone registered on the scoring date, with their risk score and its drivers."""

    __tablename__ = "people"
    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practice_code: Mapped[str] = mapped_column(String(16), index=True)
    mdg: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    age: Mapped[int] = mapped_column(Integer)
    female: Mapped[bool] = mapped_column(Boolean)
    eligible: Mapped[bool] = mapped_column(Boolean)
    conditions: Mapped[str] = mapped_column(Text, default="")  # space-separated names
    risk: Mapped[float] = mapped_column(Float, index=True)
    drivers: Mapped[str] = mapped_column(Text, default="[]")  # JSON: [[name, value, contrib]]
    plan_in_data: Mapped[bool] = mapped_column(Boolean, default=False)


class Fund(Base):
    """Innovation-fund allocations by MDG (from the dataset's innovation_fund table)."""

    __tablename__ = "funds"
    allocation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mdg: Mapped[str] = mapped_column(String(8), index=True)
    allocation_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[float] = mapped_column(Float)
    spent: Mapped[float] = mapped_column(Float)
    purpose: Mapped[str] = mapped_column(Text)


class Share(Base):
    """A person's record shared with a provider organisation (by their GP)."""

    __tablename__ = "shares"
    __table_args__ = (UniqueConstraint("person_id", "organisation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    organisation: Mapped[str] = mapped_column(String(100))
    shared_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class CarePlan(Base):
    __tablename__ = "care_plans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    mdg: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_date: Mapped[dt.date] = mapped_column(Date)
    # The newest version's review date, kept here so that "review due" is one indexed column.
    review_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True, index=True)
    versions: Mapped[list[PlanVersion]] = relationship(
        order_by="PlanVersion.version", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def current(self) -> PlanVersion:
        return self.versions[-1]


class PlanVersion(Base):
    """One saved state of a plan: a save never changes an earlier version, it adds one."""

    __tablename__ = "care_plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("care_plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    author_role: Mapped[str] = mapped_column(String(32))
    saved_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    goals: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    review_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    patient_involved: Mapped[bool] = mapped_column(Boolean, default=False)
    patient_views: Mapped[str] = mapped_column(Text, default="")
    q_goals_agreed: Mapped[bool] = mapped_column(Boolean, default=False)
    q_medication_review: Mapped[bool] = mapped_column(Boolean, default=False)
    q_falls_assessment: Mapped[bool] = mapped_column(Boolean, default=False)
    q_carer_identified: Mapped[bool] = mapped_column(Boolean, default=False)
    q_advance_care_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    q_named_coordinator: Mapped[bool] = mapped_column(Boolean, default=False)
    actions: Mapped[list[PlanAction]] = relationship(
        order_by="PlanAction.id", cascade="all, delete-orphan", lazy="selectin"
    )

    def quality(self) -> dict[str, bool]:
        return {q: bool(getattr(self, q)) for q in QUALITY_ITEMS}


class PlanAction(Base):
    __tablename__ = "care_plan_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("care_plan_versions.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class Meeting(Base):
    __tablename__ = "mdg_meetings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mdg: Mapped[str] = mapped_column(String(8), index=True)
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    attendance: Mapped[list[Attendance]] = relationship(
        order_by="Attendance.role", cascade="all, delete-orphan", lazy="selectin"
    )
    cases: Mapped[list[MeetingCase]] = relationship(
        order_by="MeetingCase.id", cascade="all, delete-orphan", lazy="selectin"
    )


class Attendance(Base):
    """How many attended a meeting in each professional role (the data model's counts)."""

    __tablename__ = "mdg_attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("mdg_meetings.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    attendees: Mapped[int] = mapped_column(Integer)


class MeetingCase(Base):
    """A person brought to a meeting: the discussion, its actions and outcome."""

    __tablename__ = "mdg_cases"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("mdg_meetings.id"), index=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    added_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    system_issue: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class Store:
    """An open database: its engine and a session factory."""

    engine: Engine
    session: sessionmaker

    def close(self) -> None:
        self.engine.dispose()


def url_for(db: str | Path) -> str:
    """A database URL from a URL or a SQLite file path."""
    text = str(db)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


def open_store(db: str | Path, migrate: bool = True) -> Store:
    """Open (and, with ``migrate``, create or upgrade) the app's database at a URL or path."""
    url = url_for(db)
    sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False} if sqlite else {},
        pool_pre_ping=not sqlite,
    )
    if sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    if migrate:
        from careval.app.migrate import upgrade

        upgrade(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
