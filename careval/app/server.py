"""The application: the pages of :mod:`careval.app.web`'s modules on one FastAPI app, with
signing in and out, the security headers and the answers to errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select

from careval.app import access, pages_admin, pages_mdg, pages_people, pages_programme, security
from careval.app.records import Records
from careval.app.snapshot import current
from careval.app.store import Person, Store
from careval.app.web import (
    CSRF,
    DB,
    HEADERS,
    HERE,
    AppSettings,
    Ctx,
    SignIn,
    cookie,
    ctx,
    redirect,
    render,
)
from careval.features.index_date import FeatureSettings


def create_app(store: Store, data: Path, settings: AppSettings | None = None) -> FastAPI:
    """The application on an open store whose snapshot is of ``data``."""
    snap = current(store)
    if snap is None:
        raise RuntimeError("the app's database holds no snapshot: build one first")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.settings = settings or AppSettings()
    app.state.snapshot = snap
    app.state.records = Records(data)
    with store.session() as db:
        app.state.practices = frozenset(db.scalars(select(Person.practice_code).distinct()))
        app.state.mdgs = frozenset(
            m for m in db.scalars(select(Person.mdg).distinct()) if m is not None
        )
    app.state.conditions = tuple(FeatureSettings().conditions)
    app.state.organisations = app.state.settings.organisations
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages_people, pages_mdg, pages_programme, pages_admin):
        app.include_router(module.router)

    @app.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(SignIn)
    async def sign_in(request: Request, exc: SignIn) -> Response:
        if request.method == "GET":
            return redirect("/login")
        return render(request, "error.html", 401, message="Please sign in again.")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", exc.status_code, message=str(exc.detail))

    @app.get("/login")
    def login_form(request: Request) -> Response:
        token = security.new_token()
        response = render(request, "login.html", login_csrf=token, error=None)
        cookie(request, response, security.LOGIN_CSRF_COOKIE, token, 600)
        return response

    @app.post("/login", dependencies=[CSRF])
    async def login(request: Request, db: DB) -> Response:
        form = await request.form()
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))[:256]
        client = request.client.host if request.client else "unknown"
        token = security.new_token()

        def again(status: int, error: str) -> Response:
            r = render(request, "login.html", status, login_csrf=token, error=error)
            cookie(request, r, security.LOGIN_CSRF_COOKIE, token, 600)
            return r

        if security.throttled(db, username, client):
            return again(429, "Too many failed attempts: try again in 15 minutes.")
        user = security.authenticate(db, username, password, client)
        if user is None:
            return again(401, "User name or password not recognised.")
        session_token = security.start_session(db, user)
        response = redirect(access.HOME[user.role])
        cookie(request, response, security.SESSION_COOKIE, session_token, None)
        response.delete_cookie(security.LOGIN_CSRF_COOKIE)
        return response

    @app.post("/logout", dependencies=[CSRF])
    def logout(request: Request, db: DB) -> Response:
        security.end_session(db, request.cookies.get(security.SESSION_COOKIE))
        response = redirect("/login")
        response.delete_cookie(security.SESSION_COOKIE)
        return response

    @app.get("/")
    def home(c: Annotated[Ctx, Depends(ctx)]) -> Response:
        return redirect(access.HOME[c.user.role])

    return app
