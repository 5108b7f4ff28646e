"""The administrator's pages: users (create, change, deactivate) and the audit log."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

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


def user_problem(
    c: Ctx, form: object, creating: bool, username: str = ""
) -> tuple[dict[str, object], str | None]:
    """The user's fields from the form, or what is wrong with them."""
    get = form.get  # type: ignore[attr-defined]
    role = str(get("role", ""))
    practice = str(get("practice_code", "")).strip().upper() or None
    org = str(get("organisation", "")).strip() or None
    mdgs = sorted({m for m in form.getlist("mdgs") if isinstance(m, str)})  # type: ignore[attr-defined]
    values: dict[str, object] = {
        "role": role,
        "practice_code": practice,
        "organisation": org,
        "mdgs": mdgs,
        "display_name": str(get("display_name", "")).strip()[:200],
    }
    if role not in ROLES:
        return values, f"the role must be one of {', '.join(ROLES)}"
    known = c.request.app.state
    if role == "gp" and practice not in known.practices:
        return values, "a GP needs the code of a practice in the data"
    if role == "provider_clinician" and org not in known.organisations:
        return values, "a provider clinician needs one of the listed organisations"
    if any(m not in known.mdgs for m in mdgs):
        return values, "an MDG that is not in the data was chosen"
    if role not in ("gp", "mdg_member") and mdgs:
        return values, "only GPs and MDG members belong to MDGs"
    if role == "mdg_member" and not mdgs:
        return values, "an MDG member needs at least one MDG"
    if creating:
        name = str(get("username", "")).strip().lower()
        values["username"] = name
        if not name or not name.replace("_", "").replace(".", "").isalnum() or len(name) > 64:
            return values, "a user name is letters, digits, dots and underscores (up to 64)"
        if c.db.scalar(select(User).where(User.username == name)):
            return values, "that user name is taken"
    password = str(get("password", ""))
    if creating or password:
        problem = security.password_problem(password, str(values.get("username", username)))
        if problem:
            return values, problem
        values["password"] = password
    return values, None


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
    values, problem = user_problem(c, form, creating=True)
    if problem:
        return _page(c, 400, problem)
    user = User(
        username=str(values["username"]),
        display_name=str(values["display_name"]) or str(values["username"]),
        password_hash=security.hash_password(str(values["password"])),
        role=str(values["role"]),
        practice_code=values["practice_code"] if values["role"] == "gp" else None,  # type: ignore[arg-type]
        organisation=values["organisation"] if values["role"] == "provider_clinician" else None,  # type: ignore[arg-type]
        mdgs=[UserMdg(mdg=m) for m in values["mdgs"]],  # type: ignore[attr-defined]
    )
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
    values, problem = user_problem(c, form, creating=False, username=user.username)
    if problem:
        return _page(c, 400, problem)
    user.role = str(values["role"])
    user.practice_code = values["practice_code"] if user.role == "gp" else None  # type: ignore[assignment]
    user.organisation = values["organisation"] if user.role == "provider_clinician" else None  # type: ignore[assignment]
    user.mdgs = [UserMdg(mdg=m) for m in values["mdgs"]]  # type: ignore[attr-defined]
    if values["display_name"]:
        user.display_name = str(values["display_name"])
    if "password" in values:
        user.password_hash = security.hash_password(str(values["password"]))
    security.end_sessions_of(c.db, user.id)  # new grants take effect at the next sign-in
    c.audit("change_user", object_type="user", object_id=user.id, detail=user.role)
    c.db.commit()
    return redirect("/admin/users")


def _audit_query(c: Ctx) -> object:
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
    rows = c.db.scalars(_audit_query(c).limit(AUDIT_PAGE)).all()  # type: ignore[attr-defined]
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
    for e in c.db.scalars(_audit_query(c)):  # type: ignore[call-overload]
        w.writerow([getattr(e, k) if getattr(e, k) is not None else "" for k in AUDIT_COLUMNS])
    c.audit("export_audit")
    c.db.commit()
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="careval-audit.csv"'},
    )
