"""The app's access matrix: every role against every page and every kind of object.

The world: gp1's three highest-risk patients A, B and C. A has a care plan and is brought to a
meeting of gp1's MDG; B has a plan and is not brought; C is shared with community health
services and has a plan written by its provider clinician. gp2 is a GP of another practice in
the same MDG, gp3 a GP in another MDG; mdg1 belongs to gp1's MDG. Allowed is 200 (a page) or
303 (a form that did its work); a page outside the role is 403; an object outside the user's
grants is 404, the same as one that does not exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from careval.app.store import CarePlan, MeetingCase, PlanVersion, Share
from tests.app_support import Site, site

ROLES = ("gp1", "gp2", "gp3", "mdg1", "provider1", "manager1", "evaluator1", "admin1")


@pytest.fixture(scope="module")
def world(app_template, synth_dir: Path, tmp_path_factory) -> dict:
    s = site(app_template, synth_dir, tmp_path_factory.mktemp("access"))
    gp = s.login("gp1")
    a, b, c = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases").text)[:3]
    plans = {}
    for pid in (a, b):
        r = gp.post(
            f"/people/{pid}/plans",
            data={"csrf_token": gp.csrf, "goals": f"goals for {pid}"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        plans[pid] = int(r.headers["location"].rsplit("/", 1)[1])
    mdg = s.users["gp1"].grants.split("MDG ")[1]
    r = gp.post(
        "/mdg/meetings",
        data={"csrf_token": gp.csrf, "mdg": mdg, "meeting_date": "2014-03-31"},
        follow_redirects=False,
    )
    meeting = int(r.headers["location"].rsplit("/", 1)[1])
    r = gp.post(
        f"/mdg/meetings/{meeting}/cases",
        data={"csrf_token": gp.csrf, "person_id": a},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert (
        gp.post(
            f"/people/{c}/share",
            data={"csrf_token": gp.csrf, "organisation": "Community health services"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    prov = s.login("provider1")
    r = prov.post(
        f"/people/{c}/plans",
        data={"csrf_token": prov.csrf, "goals": "community plan"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    plans[c] = int(r.headers["location"].rsplit("/", 1)[1])
    with s.store.session() as db:
        case = db.scalar(select(MeetingCase.id))
    clients = {name: s.login(name) for name in ROLES}
    return {
        "site": s,
        "a": a,
        "b": b,
        "c": c,
        "plans": plans,
        "meeting": meeting,
        "case": case,
        "mdg": mdg,
        "clients": clients,
    }


def _who(allowed: str) -> dict[str, int]:
    """Expected status per role from a compact spec: 'role=status ...', others 403."""
    out = dict.fromkeys(ROLES, 403)
    for part in allowed.split():
        k, v = part.split("=")
        out[k] = int(v)
    return out


# page -> expected status per role
PAGES = {
    "/cases": "gp1=200 gp2=200 gp3=200",
    "/shared": "gp1=200 gp2=200 gp3=200 mdg1=200 provider1=200",
    "/mdg": "gp1=200 gp2=200 gp3=200 mdg1=200",
    "/programme": "manager1=200",
    "/evaluation": "evaluator1=200",
    "/admin/users": "admin1=200",
    "/admin/users/1": "admin1=200",
    "/admin/audit": "admin1=200",
    "/admin/audit.csv": "admin1=200",
}
# per object: who may see it (clinical roles not listed get 404; others 403)
A_VIEWERS = "gp1=200 gp2=200 gp3=404 mdg1=200 provider1=404"
B_VIEWERS = "gp1=200 gp2=404 gp3=404 mdg1=404 provider1=404"
C_VIEWERS = "gp1=200 gp2=404 gp3=404 mdg1=404 provider1=200"
MEETING_VIEWERS = "gp1=200 gp2=200 gp3=404 mdg1=200"


@pytest.mark.parametrize("path", list(PAGES))
def test_every_role_against_every_page(world, path: str) -> None:
    want = _who(PAGES[path])
    got = {r: world["clients"][r].get(path, follow_redirects=False).status_code for r in ROLES}
    assert got == want


@pytest.mark.parametrize(
    ("template", "viewers"),
    [
        ("/people/{a}", A_VIEWERS),
        ("/people/{b}", B_VIEWERS),
        ("/people/{c}", C_VIEWERS),
        ("/people/{a}/plans/new", A_VIEWERS),
        ("/people/{b}/plans/new", B_VIEWERS),
        ("/plans/{plan_a}", A_VIEWERS),
        ("/plans/{plan_b}", B_VIEWERS),
        ("/plans/{plan_c}", C_VIEWERS),
        ("/plans/{plan_a}/edit", A_VIEWERS),
        ("/plans/{plan_c}/edit", C_VIEWERS),
        ("/plans/{plan_a}?version=1", A_VIEWERS),
        ("/mdg/meetings/{meeting}", MEETING_VIEWERS),
    ],
)
def test_every_role_against_every_object(world, template: str, viewers: str) -> None:
    p = world["plans"]
    path = template.format(
        a=world["a"],
        b=world["b"],
        c=world["c"],
        plan_a=p[world["a"]],
        plan_b=p[world["b"]],
        plan_c=p[world["c"]],
        meeting=world["meeting"],
    )
    got = {r: world["clients"][r].get(path, follow_redirects=False).status_code for r in ROLES}
    assert got == _who(viewers)


@pytest.mark.parametrize(
    "path", ["/people/P999999999", "/plans/999999", "/mdg/meetings/999999", "/plans/1?version=9"]
)
def test_an_id_that_does_not_exist_looks_like_one_not_yours(world, path: str) -> None:
    assert world["clients"]["gp1"].get(path).status_code == 404


def _post(world, role: str, path: str, data: dict) -> int:
    c = world["clients"][role]
    return c.post(path, data={"csrf_token": c.csrf, **data}, follow_redirects=False).status_code


def test_changes_follow_the_same_grants(world) -> None:
    s: Site = world["site"]
    a, b, c, plans = world["a"], world["b"], world["c"], world["plans"]
    meeting, case = world["meeting"], world["case"]
    with s.store.session() as db:
        versions_before = db.scalar(select(func.count()).select_from(PlanVersion))
    # Someone else's patient's plan, by id: as if it did not exist.
    assert _post(world, "gp3", f"/plans/{plans[a]}", {"goals": "x"}) == 404
    assert _post(world, "gp2", f"/plans/{plans[b]}", {"goals": "x"}) == 404
    assert _post(world, "provider1", f"/plans/{plans[a]}", {"goals": "x"}) == 404
    assert _post(world, "gp2", f"/people/{b}/plans", {"goals": "x"}) == 404
    # Pages outside the role.
    assert _post(world, "manager1", f"/people/{a}/plans", {"goals": "x"}) == 403
    assert _post(world, "admin1", f"/plans/{plans[a]}", {"goals": "x"}) == 403
    assert _post(world, "evaluator1", f"/mdg/cases/{case}", {"notes": "x"}) == 403
    # Sharing is the GP's, and only of people they can see.
    org = {"organisation": "Mental health trust"}
    assert _post(world, "provider1", f"/people/{c}/share", org) == 403
    assert _post(world, "gp2", f"/people/{b}/share", org) == 404
    # Meetings: another MDG's GP cannot reach it; an MDG member cannot bring anyone; a GP of the
    # same MDG cannot bring another practice's patient (not theirs to see).
    assert _post(world, "gp3", f"/mdg/meetings/{meeting}/cases", {"person_id": b}) == 404
    assert _post(world, "gp3", f"/mdg/cases/{case}", {"notes": "x"}) == 404
    assert _post(world, "gp2", f"/mdg/meetings/{meeting}/cases", {"person_id": b}) == 404
    assert _post(world, "mdg1", f"/mdg/meetings/{meeting}/cases", {"person_id": a}) == 403
    assert (
        _post(world, "gp3", "/mdg/meetings", {"mdg": world["mdg"], "meeting_date": "2014-03-01"})
        == 404
    )
    # Users are the administrator's.
    assert _post(world, "gp1", "/admin/users", {"username": "x", "role": "admin"}) == 403
    with s.store.session() as db:
        assert db.scalar(select(func.count()).select_from(PlanVersion)) == versions_before
        assert db.scalar(select(func.count()).select_from(Share)) == 1
        assert db.scalar(select(func.count()).select_from(MeetingCase)) == 1
    # What the grants do allow: the MDG member records the review; the provider edits the
    # plan of the person shared with them.
    assert _post(world, "mdg1", f"/mdg/cases/{case}", {"notes": "seen", "outcome": "ok"}) == 303
    assert _post(world, "provider1", f"/plans/{plans[c]}", {"goals": "revised"}) == 303
    with s.store.session() as db:
        assert db.get(CarePlan, plans[c]).current.goals == "revised"


def test_lists_hold_only_the_users_people(world) -> None:
    s: Site = world["site"]
    gp1 = world["clients"]["gp1"].get("/cases?everyone=1").text
    gp2 = world["clients"]["gp2"].get("/cases?everyone=1").text
    shared = world["clients"]["provider1"].get("/shared").text
    ids = re.compile(r'href="/people/([^"/]+)"')
    from careval.app.store import Person

    with s.store.session() as db:
        practice = dict(db.execute(select(Person.person_id, Person.practice_code)).all())
    p1, p2 = s.users["gp1"].grants.split(",")[0][9:], s.users["gp2"].grants.split(",")[0][9:]
    assert {practice[i] for i in ids.findall(gp1)} == {p1}
    assert {practice[i] for i in ids.findall(gp2)} == {p2}
    assert set(ids.findall(shared)) == {world["c"]}


def test_anonymous_requests_are_sent_to_sign_in(world) -> None:
    anon = world["site"].client()
    for path in ["/cases", f"/people/{world['a']}", "/programme", "/admin/audit", "/"]:
        r = anon.get(path, follow_redirects=False)
        assert (r.status_code, r.headers.get("location")) == (303, "/login")
    r = anon.post(f"/people/{world['a']}/plans", data={"goals": "x"}, follow_redirects=False)
    assert r.status_code == 403  # no token: refused before anything else


def test_the_administrator_grants_and_changes_access(world) -> None:
    s: Site = world["site"]
    admin = world["clients"]["admin1"]
    from careval.app.store import Person

    with s.store.session() as db:
        counts = db.execute(
            select(Person.practice_code, func.count()).group_by(Person.practice_code)
        ).all()
    (x, _), (y, _) = sorted(counts, key=lambda r: -r[1])[:2]
    new = {"username": "gp.new", "role": "gp", "practice_code": x, "password": "a long secret 42"}
    bad = [
        ({**new, "role": "superuser"}, "the role must be one of"),
        ({**new, "practice_code": "Z99999"}, "a GP needs the code of a practice in the data"),
        ({**new, "password": "short"}, "at least 12 characters"),
        ({**new, "password": "my gp.new password"}, "must not contain the user name"),
        ({**new, "role": "evaluator", "mdgs": "MDG01"}, "only GPs and MDG members"),
    ]
    for data, message in bad:
        r = admin.post("/admin/users", data={"csrf_token": admin.csrf, **data})
        assert r.status_code == 400 and message in r.text, message
    r = admin.post("/admin/users", data={"csrf_token": admin.csrf, **new}, follow_redirects=False)
    assert r.status_code == 303
    assert admin.post("/admin/users", data={"csrf_token": admin.csrf, **new}).status_code == 400

    def practices(client) -> set[str]:
        ids = re.findall(r'href="/people/([^"/]+)"', client.get("/cases?everyone=1").text)
        with s.store.session() as db:
            rows = db.execute(select(Person.practice_code).where(Person.person_id.in_(ids)))
            return {p for (p,) in rows}

    gp = s.login("gp.new", "a long secret 42")
    assert practices(gp) == {x}
    from careval.app.store import User

    with s.store.session() as db:
        uid = db.scalar(select(User.id).where(User.username == "gp.new"))
    page = admin.get(f"/admin/users/{uid}").text
    assert f"<option selected>{x}</option>" in page
    r = admin.post(
        f"/admin/users/{uid}",
        data={"csrf_token": admin.csrf, "role": "gp", "practice_code": y},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert gp.get("/cases", follow_redirects=False).status_code == 303  # signed out
    assert practices(s.login("gp.new", "a long secret 42")) == {y}
