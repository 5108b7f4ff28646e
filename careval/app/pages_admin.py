"""The administrator's pages: users (create, change, deactivate) and the audit log."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import Select, select
from starlette.datastructures import FormData

from careval.app import security
from careval.app.store import ROLES, AuditEvent, User, UserMdg
from careval.app.web import CSRF, Ctx, date_or_none, not_found, page, redirect

router = APIRouter()
AUDIT_PAGE = 200
AUDIT_COLUMNS = (
    "at",
    "username",
    "action",
    "person_id",
    "object_type",
    "object_id",
    "detail",
)


@dataclass(frozen=True)
class UserFields:
    """A user as the administrator's form gives it (grants cleared where the role has none)."""

    username: str
    role: str
    display_name: str
    practice_code: str | None
    organisation: str | None
    mdgs: tuple[str, ...]
    password: str | None

    def apply(self, user: User) -> None:
        user.role = self.role
        user.practice_code = self.practice_code if self.role == "gp" else None
        user.organisation = self.organisation if self.role == "provider_clinician" else None
        user.mdgs = [UserMdg(mdg=m) for m in self.mdgs]
        if self.display_name:
            user.display_name = self.display_name
        if self.password:
            user.password_hash = security.hash_password(self.password)


def user_fields(c: Ctx, form: FormData, username: str | None) -> tuple[UserFields, str | None]:
    """The form's user (a new one when ``username`` is None), and what is wrong with it."""
    creating = username is None
    name = str(form.get("username", "")).strip().lower() if creating else str(username)
    role = str(form.get("role", ""))
    password = str(form.get("password", ""))
    fields = UserFields(
        username=name,
        role=role,
        display_name=str(form.get("display_name", "")).strip()[:200],
        practice_code=str(form.get("practice_code", "")).strip().upper() or None,
        organisation=str(form.get("organisation", "")).strip() or None,
        mdgs=tuple(sorted({m for m in form.getlist("mdgs") if isinstance(m, str)})),
        password=password or None,
    )
    known = c.request.app.state
    problem = None
    if role not in ROLES:
        problem = f"the role must be one of {', '.join(ROLES)}"
    elif role == "gp" and fields.practice_code not in known.practices:
        problem = "a GP needs the code of a practice in the data"
    elif role == "provider_clinician" and fields.organisation not in known.organisations:
        problem = "a provider clinician needs one of the listed organisations"
    elif any(m not in known.mdgs for m in fields.mdgs):
        problem = "an MDG that is not in the data was chosen"
    elif role not in ("gp", "mdg_member") and fields.mdgs:
        problem = "only GPs and MDG members belong to MDGs"
    elif role == "mdg_member" and not fields.mdgs:
        problem = "an MDG member needs at least one MDG"
    elif creating and (
        not name or not name.replace("_", "").replace(".", "").isalnum() or len(name) > 64
    ):
        problem = "a user name is letters, digits, dots and underscores (up to 64)"
    elif creating and c.db.scalar(select(User).where(User.username == name)):
        problem = "that user name is taken"
    elif creating or password:
        problem = security.password_problem(password, name)
    return fields, problem


def _page(c: Ctx, status: int = 200, problem: str | None = None) -> Response:
    users = c.db.scalars(select(User).order_by(User.username)).all()
    return c.render(
        "users.html",
        status,
        users=users,
        roles=ROLES,
        practices=sorted(c.request.app.state.practices),
        organisations=c.request.app.state.organisations,
        mdgs=sorted(c.request.app.state.mdgs),
        problem=problem,
    )


@router.get("/admin/users")
def users(c: Annotated[Ctx, page("admin")]) -> Response:
    return _page(c)


@router.post("/admin/users", dependencies=[CSRF])
async def create_user(c: Annotated[Ctx, page("admin")]) -> Response:
    form = await c.request.form()
    fields, problem = user_fields(c, form, None)
    if problem:
        return _page(c, 400, problem)
    user = User(username=fields.username, display_name=fields.username, password_hash="")
    fields.apply(user)
    c.db.add(user)
    c.db.flush()
    c.audit("create_user", object_type="user", object_id=user.id, detail=user.role)
    c.db.commit()
    return redirect("/admin/users")


@router.get("/admin/users/{user_id}")
def edit_user(c: Annotated[Ctx, page("admin")], user_id: int) -> Response:
    """A user's role, grants and password, to change."""
    user = c.db.get(User, user_id)
    if user is None:
        raise not_found()
    return c.render(
        "user_form.html",
        who=user,
        roles=ROLES,
        practices=sorted(c.request.app.state.practices),
        organisations=c.request.app.state.organisations,
        mdgs=sorted(c.request.app.state.mdgs),
    )


@router.post("/admin/users/{user_id}", dependencies=[CSRF])
async def update_user(c: Annotated[Ctx, page("admin")], user_id: int) -> Response:
    """Change a user's role and grants, set a new password, or (de)activate them."""
    user = c.db.get(User, user_id)
    if user is None:
        raise not_found()
    form = await c.request.form()
    if "active" in form:
        active = form.get("active") == "1"
        if user.id == c.user.id and not active:
            return _page(c, 400, "you cannot deactivate yourself")
        user.active = active
        if not active:
            security.end_sessions_of(c.db, user.id)
        c.audit(
            "activate_user" if active else "deactivate_user", object_type="user", object_id=user.id
        )
        c.db.commit()
        return redirect("/admin/users")
    if "unlock" in form:
        security.forget_failures(c.db, user.username)
        c.audit("unlock_user", object_type="user", object_id=user.id)
        c.db.commit()
        return redirect("/admin/users")
    fields, problem = user_fields(c, form, user.username)
    if problem:
        return _page(c, 400, problem)
    fields.apply(user)
    security.end_sessions_of(c.db, user.id)  # new grants take effect at the next sign-in
    c.audit("change_user", object_type="user", object_id=user.id, detail=user.role)
    c.db.commit()
    return redirect("/admin/users")


def _audit_query(c: Ctx) -> Select[AuditEvent]:
    q = select(AuditEvent).order_by(AuditEvent.id.desc())
    p = c.request.query_params
    if p.get("username"):
        q = q.where(AuditEvent.username == p["username"].lower())
    if p.get("person_id"):
        q = q.where(AuditEvent.person_id == p["person_id"])
    if (since := date_or_none(p.get("since"))) is not None:
        q = q.where(AuditEvent.at >= since)
    return q


@router.get("/admin/audit")
def audit(c: Annotated[Ctx, page("admin")]) -> Response:
    """The audit log, newest first, filtered by user, person or date."""
    rows = c.db.scalars(_audit_query(c).limit(AUDIT_PAGE)).all()
    names = c.db.scalars(select(AuditEvent.username).distinct().order_by(AuditEvent.username)).all()
    c.audit("view_audit")
    c.db.commit()
    return c.render("audit.html", rows=rows, names=names, query=dict(c.request.query_params))


@router.get("/admin/audit.csv")
def audit_csv(c: Annotated[Ctx, page("admin")]) -> Response:
    """The whole (filtered) audit log as CSV."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(AUDIT_COLUMNS)
    for e in c.db.scalars(_audit_query(c)):
        w.writerow([getattr(e, k) if getattr(e, k) is not None else "" for k in AUDIT_COLUMNS])
    c.audit("export_audit")
    c.db.commit()
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="careval-audit.csv"'},
    )
