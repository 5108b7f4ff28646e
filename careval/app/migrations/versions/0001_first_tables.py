"""The app's first tables: users, sessions, the audit log, the snapshot, plans and meetings.

Revision ID: 0001
Revises:
Create Date: 2026-12-03 17:37:17.542995
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_person_id"), ["person_id"], unique=False)

    op.create_table(
        "funds",
        sa.Column("allocation_id", sa.String(length=64), nullable=False),
        sa.Column("mdg", sa.String(length=8), nullable=False),
        sa.Column("allocation_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("allocation_id"),
    )
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funds_mdg"), ["mdg"], unique=False)

    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_failures_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_client"), ["client"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_username"), ["username"], unique=False)

    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "people",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("practice_code", sa.String(length=16), nullable=False),
        sa.Column("mdg", sa.String(length=8), nullable=True),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("female", sa.Boolean(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("drivers", sa.Text(), nullable=False),
        sa.Column("plan_in_data", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_mdg"), ["mdg"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_people_practice_code"), ["practice_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_people_risk"), ["risk"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("practice_code", sa.String(length=16), nullable=True),
        sa.Column("organisation", sa.String(length=100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "care_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("mdg", sa.String(length=8), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_date", sa.Date(), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("care_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_plans_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_care_plans_review_date"), ["review_date"], unique=False
        )

    op.create_table(
        "mdg_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mdg", sa.String(length=8), nullable=False),
        sa.Column("meeting_date", sa.Date(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mdg_meetings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mdg_meetings_mdg"), ["mdg"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=100), nullable=False),
        sa.Column("shared_by", sa.Integer(), nullable=False),
        sa.Column("shared_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shared_by"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "organisation"),
    )
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shares_person_id"), ["person_id"], unique=False)

    op.create_table(
        "user_mdgs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mdg", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("user_id", "mdg"),
    )
    op.create_table(
        "care_plan_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("author_role", sa.String(length=32), nullable=False),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.Column("patient_involved", sa.Boolean(), nullable=False),
        sa.Column("patient_views", sa.Text(), nullable=False),
        sa.Column("q_goals_agreed", sa.Boolean(), nullable=False),
        sa.Column("q_medication_review", sa.Boolean(), nullable=False),
        sa.Column("q_falls_assessment", sa.Boolean(), nullable=False),
        sa.Column("q_carer_identified", sa.Boolean(), nullable=False),
        sa.Column("q_advance_care_plan", sa.Boolean(), nullable=False),
        sa.Column("q_named_coordinator", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["care_plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "version"),
    )
    with op.batch_alter_table("care_plan_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_plan_versions_plan_id"), ["plan_id"], unique=False
        )

    op.create_table(
        "mdg_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("attendees", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["mdg_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "role"),
    )
    with op.batch_alter_table("mdg_attendance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mdg_attendance_meeting_id"), ["meeting_id"], unique=False
        )

    op.create_table(
        "mdg_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("system_issue", sa.Boolean(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["mdg_meetings.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meeting_id", "person_id"),
    )
    with op.batch_alter_table("mdg_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mdg_cases_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mdg_cases_person_id"), ["person_id"], unique=False)

    op.create_table(
        "care_plan_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["care_plan_versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("care_plan_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_plan_actions_version_id"), ["version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("care_plan_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_plan_actions_version_id"))

    op.drop_table("care_plan_actions")
    with op.batch_alter_table("mdg_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mdg_cases_person_id"))
        batch_op.drop_index(batch_op.f("ix_mdg_cases_meeting_id"))

    op.drop_table("mdg_cases")
    with op.batch_alter_table("mdg_attendance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mdg_attendance_meeting_id"))

    op.drop_table("mdg_attendance")
    with op.batch_alter_table("care_plan_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_plan_versions_plan_id"))

    op.drop_table("care_plan_versions")
    op.drop_table("user_mdgs")
    with op.batch_alter_table("shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shares_person_id"))

    op.drop_table("shares")
    op.drop_table("sessions")
    with op.batch_alter_table("mdg_meetings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mdg_meetings_mdg"))

    op.drop_table("mdg_meetings")
    with op.batch_alter_table("care_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_plans_review_date"))
        batch_op.drop_index(batch_op.f("ix_care_plans_person_id"))

    op.drop_table("care_plans")
    op.drop_table("users")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_risk"))
        batch_op.drop_index(batch_op.f("ix_people_practice_code"))
        batch_op.drop_index(batch_op.f("ix_people_mdg"))

    op.drop_table("people")
    op.drop_table("meta")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_username"))
        batch_op.drop_index(batch_op.f("ix_login_failures_client"))
        batch_op.drop_index(batch_op.f("ix_login_failures_at"))

    op.drop_table("login_failures")
    with op.batch_alter_table("funds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_funds_mdg"))

    op.drop_table("funds")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_person_id"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
