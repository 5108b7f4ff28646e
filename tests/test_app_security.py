"""The app's security: CSRF, escaping, injection, the log-in limit, sessions and the audit log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from careval.app import security
from careval.app.store import AuditEvent, AuthSession, CarePlan, MeetingCase, User
from tests.app_support import Site, form_token, site

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
INJECTIONS = ("' OR '1'='1", "1 OR 1=1", "x'; DROP TABLE people; --", '" OR ""="', "%' --")


@pytest.fixture(scope="module")
def s(app_template, synth_dir: Path, tmp_path_factory) -> Site:
    return site(app_template, synth_dir, tmp_path_factory.mktemp("security"))


@pytest.fixture(scope="module")
def gp(s: Site):
    return s.login("gp1")


def _first_patient(gp) -> str:
    return re.findall(r'href="/people/([^"/]+)"', gp.get("/cases").text)[0]


def _count(s: Site, model) -> int:
    with s.store.session() as db:
        return db.scalar(select(func.count()).select_from(model)) or 0


def _routes(routes: list) -> list[APIRoute]:
    out = []
    for r in routes:  # FastAPI 0.165 keeps an included router's routes on the router itself
        out += _routes(r.original_router.routes) if hasattr(r, "original_router") else [r]
    return [r for r in out if isinstance(r, APIRoute)]


def _post_routes(s: Site) -> list[str]:
    return sorted(r.path for r in _routes(s.app.routes) if "POST" in r.methods)


def test_every_form_needs_this_sessions_csrf_token(s: Site, gp) -> None:
    pid = _first_patient(gp)
    routes = _post_routes(s)
    assert len(routes) == 11  # every POST route the app has (a new one is checked too)
    ids = {"person_id": pid, "plan_id": "1", "meeting_id": "1", "case_id": "1", "user_id": "1"}
    other = s.login("gp2")
    before = {m: _count(s, m) for m in (CarePlan, MeetingCase, User, AuditEvent)}
    for path in routes:
        url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
        for token in (None, "wrong", other.csrf):
            data = {"goals": "x", "username": "gp1", "password": "x"}
            if token is not None:
                data["csrf_token"] = token
            r = gp.post(url, data=data, follow_redirects=False)
            assert r.status_code == 403, (url, token)
    after = {m: _count(s, m) for m in (CarePlan, MeetingCase, User, AuditEvent)}
    assert after == before


def test_untrusted_text_is_shown_escaped(s: Site, gp) -> None:
    pid = _first_patient(gp)
    r = gp.post(
        f"/people/{pid}/plans",
        data={
            "csrf_token": gp.csrf,
            "goals": XSS,
            "notes": XSS,
            "action_0_description": XSS,
            "action_0_owner": XSS,
        },
        follow_redirects=False,
    )
    page = gp.get(r.headers["location"]).text
    assert "<script>" not in page and "<img" not in page
    assert (
        page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 4
    )  # goals, notes, action, owner
    assert "script-src 'none'" in gp.get("/cases").headers["content-security-policy"]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_in_every_search_field_finds_nothing_more(s: Site, gp, attack: str) -> None:
    base = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases?everyone=1").text)
    for field in ("age_min", "age_max", "condition", "plan", "review_due", "page"):
        got = re.findall(
            r'href="/people/([^"/]+)"',
            gp.get("/cases", params={"everyone": "1", field: attack}).text,
        )
        assert set(got) <= set(base), field
    admin = s.login("admin1")
    for field in ("username", "person_id"):  # nobody has such a name: no row at all
        page = admin.get("/admin/audit", params={field: attack}).text
        assert re.findall(r"<tr><td>", page) == [], field
    # A date that is not one is no filter (every row, not an error and not more rows).
    assert admin.get("/admin/audit", params={"since": attack}).status_code == 200
    r = gp.post(
        "/mdg/meetings/1/cases",
        data={"csrf_token": gp.csrf, "person_id": attack},
        follow_redirects=False,
    )
    assert r.status_code == 404
    r = gp.post(
        f"/people/{_first_patient(gp)}/share",
        data={"csrf_token": gp.csrf, "organisation": attack},
        follow_redirects=False,
    )
    assert r.status_code == 400
    assert _count(s, AuditEvent) > 0  # the tables are all still there


def test_log_in_is_refused_after_repeated_failures(s: Site) -> None:
    c = s.client("203.0.113.9")
    for _ in range(security.MAX_FAILURES):
        token = form_token(c.get("/login").text)
        r = c.post("/login", data={"username": "gp3", "password": "wrong", "csrf_token": token})
        assert r.status_code == 401
    token = form_token(c.get("/login").text)
    right = s.users["gp3"].password
    r = c.post("/login", data={"username": "gp3", "password": right, "csrf_token": token})
    assert r.status_code == 429  # even the right password, for now
    # From elsewhere the user is still locked (by name); another user from elsewhere is not.
    other = s.client("198.51.100.7")
    token = form_token(other.get("/login").text)
    assert (
        other.post(
            "/login", data={"username": "gp3", "password": right, "csrf_token": token}
        ).status_code
        == 429
    )
    s.login("gp2")
    with s.store.session() as db:
        security.forget_failures(db, "gp3")
    s.login("gp3")


def test_the_session_cookie_and_the_stored_secrets(s: Site) -> None:
    c = s.client()
    token = form_token(c.get("/login").text)
    r = c.post(
        "/login",
        data={
            "username": "manager1",
            "password": s.users["manager1"].password,
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert security.SESSION_COOKIE in cookie
    for flag in ("HttpOnly", "Secure", "SameSite=strict"):
        assert flag.lower() in cookie.lower()
    value = c.cookies[security.SESSION_COOKIE]
    with s.store.session() as db:
        hashes = set(db.scalars(select(AuthSession.token_hash)))
        stored = list(db.scalars(select(User.password_hash)))
    assert value not in hashes and security.token_hash(value) in hashes
    assert all(h.startswith("$argon2id$") for h in stored)
    assert s.users["manager1"].password not in " ".join(stored)
    # Signing out ends the session on the server: the old cookie no longer works.
    c.post("/logout", data={"csrf_token": form_token(c.get("/programme").text)})
    replay = s.client()
    replay.cookies.set(security.SESSION_COOKIE, value)
    assert replay.get("/programme", follow_redirects=False).status_code == 303


def test_a_deactivated_user_is_signed_out_at_once(s: Site) -> None:
    victim = s.login("evaluator1")
    assert victim.get("/evaluation").status_code == 200
    admin = s.login("admin1")
    with s.store.session() as db:
        uid = db.scalar(select(User.id).where(User.username == "evaluator1"))
    r = admin.post(
        f"/admin/users/{uid}",
        data={"csrf_token": admin.csrf, "active": "0"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert victim.get("/evaluation", follow_redirects=False).status_code == 303
    admin.post(f"/admin/users/{uid}", data={"csrf_token": admin.csrf, "active": "1"})


def _audit_rows(s: Site) -> list[AuditEvent]:
    with s.store.session() as db:
        return list(db.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_every_view_and_change_of_a_record_writes_one_audit_row(s: Site, gp) -> None:
    pid = _first_patient(gp)
    before = len(_audit_rows(s))
    gp.get(f"/people/{pid}")
    rows = _audit_rows(s)[before:]
    assert [(r.username, r.action, r.person_id) for r in rows] == [("gp1", "view_person", pid)]
    r = gp.post(
        f"/people/{pid}/plans", data={"csrf_token": gp.csrf, "goals": "g"}, follow_redirects=False
    )
    plan = r.headers["location"].rsplit("/", 1)[1]
    gp.get(f"/plans/{plan}")
    gp.post(f"/plans/{plan}", data={"csrf_token": gp.csrf, "goals": "g2"})
    rows = _audit_rows(s)[before + 1 :]
    got = [(r.action, r.person_id, r.object_id) for r in rows if r.person_id == pid]
    assert got == [
        ("create_plan", pid, plan),
        ("view_plan", pid, plan),
        ("edit_plan", pid, plan),
        ("view_plan", pid, plan),  # the redirect after the save shows it again
    ]
    # A refused view writes nothing about the person.
    n = len(_audit_rows(s))
    assert s.login("gp3").get(f"/people/{pid}").status_code == 404
    assert [r for r in _audit_rows(s)[n:] if r.person_id == pid] == []
    # The administrator's export holds the same rows.
    csv_text = s.login("admin1").get("/admin/audit.csv", params={"person_id": pid}).text
    lines = csv_text.strip().splitlines()
    assert lines[0] == "at,username,action,person_id,object_type,object_id,detail"
    assert len(lines) - 1 == sum(1 for r in _audit_rows(s) if r.person_id == pid)
