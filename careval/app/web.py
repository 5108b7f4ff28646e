"""The web application: settings, the request's user, CSRF, security headers, the pages' glue.

:func:`careval.app.server.create_app` builds the application on an open
:class:`~careval.app.store.Store` and a dataset; the pages are in
:mod:`careval.app.pages_people`, :mod:`~careval.app.pages_mdg`,
:mod:`~careval.app.pages_programme` and :mod:`~careval.app.pages_admin`. Every page is rendered
on the server from Jinja2 templates with autoescaping on (care-plan text is untrusted); there
is no script on any page, and the Content-Security-Policy allows none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from careval.app import access, security
from careval.app.store import ROLE_NAMES, AuditEvent, AuthSession, User
from careval.settings import Settings

HERE = Path(__file__).parent
# The kinds of provider an integrated care programme shares records with (the pilot's partners).
ORGANISATIONS = (
    "Acute hospital trust",
    "Community health services",
    "Mental health trust",
    "Adult social care",
)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold people's records: never kept by a browser
}


@dataclass(frozen=True)
class AppSettings(Settings):
    """How the app runs.

    Attributes
    ----------
    secure_cookies
        Mark cookies ``Secure`` (sent over HTTPS only; browsers also send them to
        ``localhost``). Turn off only behind a proxy that is itself on HTTPS.
    today
        The app's working date (plans, reviews, meetings); None: the real date. The demo sets
        the day after its data end, so what is recorded fits the data's calendar.
    organisations
        The provider organisations a GP can share a record with (and a provider clinician
        belongs to).
    """

    secure_cookies: bool = True
    today: dt.date | None = None
    organisations: tuple[str, ...] = ORGANISATIONS


@dataclass
class Ctx:
    """One signed-in request: its database session, user, session row and the app's state."""

    request: Request
    db: Session
    user: User
    auth: AuthSession
    state: Any

    @property
    def csrf(self) -> str:
        return self.auth.csrf_token

    def today(self) -> dt.date:
        return self.state.settings.today or dt.date.today()

    def audit(
        self,
        action: str,
        person_id: str | None = None,
        object_type: str | None = None,
        object_id: object = None,
        detail: str = "",
    ) -> None:
        """One audit row (committed with the request's other changes)."""
        self.db.add(
            AuditEvent(
                user_id=self.user.id,
                username=self.user.username,
                action=action,
                person_id=person_id,
                object_type=object_type,
                object_id=None if object_id is None else str(object_id),
                detail=detail,
            )
        )

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render(self.request, template, status, user=self.user, csrf=self.csrf, **values)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
    )
    env.globals["ROLE_NAMES"] = ROLE_NAMES
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}%"
    env.filters["label"] = lambda v: str(v).replace("_", " ")
    return env


ENV = _env()


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("user", None)
    values.setdefault("csrf", "")
    values.setdefault("snapshot", request.app.state.snapshot)
    html = ENV.get_template(template).render(request=request, **values)
    return HTMLResponse(html, status_code=status)


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.store.session() as db:
        yield db


DB = Annotated[Session, Depends(db_session)]


class SignIn(Exception):
    """Raised by :func:`ctx` when nobody is signed in: answered by a redirect to /login."""


def ctx(request: Request, db: DB) -> Ctx:
    found = security.session_for(db, request.cookies.get(security.SESSION_COOKIE))
    if found is None:
        raise SignIn()
    return Ctx(request, db, found[1], found[0], request.app.state)


def page(name: str) -> Any:
    """A dependency: the signed-in request, refused with 403 unless the role may use ``name``."""

    def check(c: Annotated[Ctx, Depends(ctx)]) -> Ctx:
        if not access.may_use(c.user, name):
            raise HTTPException(403, "Your role does not give access to this page.")
        return c

    return Depends(check)


async def csrf_checked(request: Request) -> None:
    """Refuse (403) a form whose CSRF token is missing or not this session's (or log-in's)."""
    form = await request.form()
    sent = form.get("csrf_token")
    with request.app.state.store.session() as db:
        found = security.session_for(db, request.cookies.get(security.SESSION_COOKIE))
        expected = found[0].csrf_token if found else request.cookies.get(security.LOGIN_CSRF_COOKIE)
    if not security.same(sent if isinstance(sent, str) else None, expected):
        raise HTTPException(403, "The form's security token is missing or out of date.")


CSRF = Depends(csrf_checked)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def date_or_none(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def not_found() -> HTTPException:
    return HTTPException(404, "Not found, or not yours to see.")


def cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=request.app.state.settings.secure_cookies,
        samesite="strict",
        path="/",
    )

