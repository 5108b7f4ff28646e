"""Helpers for the app's tests: a fresh copy of the app's database, signing in, form tokens."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from careval.app.server import create_app
from careval.app.snapshot import current
from careval.app.store import Store, open_store
from careval.app.web import AppSettings

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    """A running app on a private copy of the database."""

    store: Store
    app: object
    users: dict
    data: Path

    def client(self, client_host: str = "testclient") -> TestClient:
        return TestClient(self.app, base_url="https://testserver", client=(client_host, 50000))

    def login(self, username: str, password: str | None = None) -> TestClient:
        """A client signed in as ``username`` (a demo user unless a password is given)."""
        c = self.client()
        token = form_token(c.get("/login").text)
        r = c.post(
            "/login",
            data={
                "username": username,
                "password": password or self.users[username].password,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, (username, r.status_code)
        c.csrf = form_token(c.get(r.headers["location"]).text)  # type: ignore[attr-defined]
        return c


def form_token(html: str) -> str:
    m = TOKEN.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def site(template: tuple[Path, dict], data: Path, tmp: Path) -> Site:
    """A fresh copy of the template database, opened, with the app on it."""
    db = tmp / "app.db"
    shutil.copy(template[0], db)
    store = open_store(db)
    snap = current(store)
    assert snap is not None
    today = snap.scored_on - dt.timedelta(days=1)
    app = create_app(store, data, AppSettings(today=today))
    return Site(store, app, template[1], data)
