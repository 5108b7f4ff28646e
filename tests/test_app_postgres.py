"""The app on PostgreSQL: the migrations, the snapshot and a journey through the pages, each
against the same on SQLite.

The server is a throwaway cluster made for this module: ``initdb`` into a temporary directory,
``pg_ctl start`` listening only on a Unix socket in that directory (no TCP), run as an
unprivileged user when the tests run as root (PostgreSQL refuses root), stopped and removed at
teardown. The module is skipped, saying why, only when PostgreSQL's programs cannot be found
(``scripts/setup.sh`` installs Debian's ``postgresql`` where it can) or the server cannot be
started.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import inspect, select

from careval.app import snapshot
from careval.app.demo import demo_users
from careval.app.export import export
from careval.app.migrate import config, current
from careval.app.pages_programme import ALL, programme_table
from careval.app.server import create_app
from careval.app.store import (
    QUALITY_ITEMS,
    Base,
    CarePlan,
    Fund,
    MeetingCase,
    Meta,
    Person,
    Store,
    open_store,
)
from careval.app.web import AppSettings
from tests.app_support import Site, site

PORT = 5432  # only names the socket file: the server listens on no TCP port
SUPERUSER = "postgres"
RUN_AS = ("postgres", "nobody")  # the unprivileged users tried when the tests run as root


def _bindir() -> Path | None:
    """The directory with initdb and pg_ctl: on PATH, pg_config's, or Debian's newest."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            candidates.append(Path(out))
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        debian, key=lambda p: -int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


def _unprivileged() -> dict[str, Any] | None:
    """subprocess arguments that drop root to an unprivileged user ({} when not root)."""
    if os.geteuid() != 0:
        return {}
    for name in RUN_AS:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    return None


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Cluster:
    """A running throwaway PostgreSQL server, reached through its socket directory."""

    socket: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket}&port={PORT}"

    def database(self, name: str) -> str:
        """Create an empty database; its SQLAlchemy URL."""
        with psycopg.connect(
            host=str(self.socket), port=PORT, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _stop(pg_ctl: Path, data: Path, run: Any) -> None:
    """Stop the server; if pg_ctl cannot, kill the postmaster it started (by its pid file)."""
    try:
        if run([str(pg_ctl), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]).returncode:
            raise RuntimeError("pg_ctl stop failed")
    except (OSError, subprocess.SubprocessError, RuntimeError):
        pidfile = data / "postmaster.pid"
        if pidfile.is_file():
            try:
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
            except (ValueError, IndexError, ProcessLookupError, PermissionError):
                pass


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL's initdb was not found (on PATH, pg_config --bindir or "
            "/usr/lib/postgresql/*/bin); scripts/setup.sh installs Debian's postgresql where "
            "apt-get can run as root"
        )
    drop = _unprivileged()
    if drop is None:
        pytest.skip(
            f"running as root with no unprivileged user ({', '.join(RUN_AS)}) to run PostgreSQL"
        )
    # A short path under /tmp: every user may reach it, and the socket's path stays within the
    # 107 bytes a Unix socket allows (pytest's own temporary directories are root's alone).
    home = Path(tempfile.mkdtemp(prefix="careval-pg-", dir="/tmp"))
    data, log = home / "data", home / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            cmd, cwd=home, env=env, capture_output=True, text=True, timeout=120, **drop
        )

    started = False
    try:
        if drop:
            os.chown(home, drop["user"], drop["group"])
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        try:
            r = run([*initdb, "--no-sync", "--no-instructions", "--encoding=UTF8", "--locale=C"])
        except subprocess.TimeoutExpired:
            r = subprocess.CompletedProcess([], 1, "", "initdb timed out")
        if r.returncode:
            pytest.skip(f"initdb could not make a cluster: {_tail(r.stderr or r.stdout)}")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# careval's throwaway test server: its own socket only, no durability\n"
                f"listen_addresses = ''\nunix_socket_directories = '{home}'\nport = {PORT}\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        started = True  # from here a postmaster may be running, whatever pg_ctl answers
        pg_ctl = bindir / "pg_ctl"
        try:
            r = run([str(pg_ctl), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"])
        except subprocess.TimeoutExpired:
            r = subprocess.CompletedProcess([], 1, "", "pg_ctl start timed out")
        if r.returncode:
            why = log.read_text() if log.is_file() else r.stderr or r.stdout
            pytest.skip(f"the PostgreSQL server did not start: {_tail(why)}")
        yield Cluster(home)
    finally:
        if started:
            _stop(bindir / "pg_ctl", data, run)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def pg(cluster: Cluster, synth_dir: Path) -> Iterator[tuple[Store, snapshot.SnapshotInfo]]:
    """The app's database on PostgreSQL with the shared dataset's snapshot."""
    store = open_store(cluster.database("careval"))
    try:
        yield store, snapshot.build(store, synth_dir)
    finally:
        store.close()


@pytest.fixture
def lite(app_template, synth_dir: Path, tmp_path: Path) -> Iterator[Site]:
    """The same snapshot on SQLite (the shared template, built by the same call), with the app."""
    s = site(app_template, synth_dir, tmp_path)
    yield s
    s.store.close()


def test_the_migrations_on_postgresql_make_the_models_schema(cluster: Cluster) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    store = open_store(cluster.database("migrations"))  # runs the migrations to head
    engine = store.engine
    try:
        assert engine.dialect.name == "postgresql"
        assert current(engine) == ScriptDirectory.from_config(config()).get_current_head()
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(ctx, Base.metadata) == []
        insp = inspect(engine)
        assert set(insp.get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        command.downgrade(config(engine), "base")
        assert current(engine) is None
        insp = inspect(engine)
        assert insp.get_table_names() == ["alembic_version"]
        assert insp.get_sequence_names() == []  # the integer keys' sequences went with them
    finally:
        store.close()


def _rows(store: Store, model: type, key: str) -> pd.DataFrame:
    with store.engine.connect() as conn:
        df = pd.read_sql(select(model), conn)
    return df.sort_values(key, ignore_index=True)


def test_the_snapshot_on_postgresql_is_the_one_on_sqlite(pg, lite: Site) -> None:
    store, info = pg
    assert info == snapshot.current(lite.store)  # dataset, fingerprint, scoring date, model
    assert info.people > 5_000 and snapshot.current(store) == info
    a, b = _rows(store, Person, "person_id"), _rows(lite.store, Person, "person_id")
    assert len(a) == info.people and a.person_id.is_unique
    assert a.eligible.sum() > 100 and a.mdg.notna().sum() > 100
    same = [c for c in a.columns if c not in ("risk", "drivers")]
    pd.testing.assert_frame_equal(a[same], b[same])
    np.testing.assert_allclose(a.risk, b.risk, rtol=1e-12, atol=0)
    assert a.risk.between(0, 1).all() and a.risk.nunique() > 1000
    da, db = a.drivers.map(json.loads), b.drivers.map(json.loads)
    assert (da == db).all()
    listed = da.map(len) > 0
    assert listed.sum() == a.eligible.sum() and da[listed].map(len).min() == 3
    pd.testing.assert_frame_equal(
        _rows(store, Fund, "allocation_id"), _rows(lite.store, Fund, "allocation_id")
    )
    assert len(_rows(store, Fund, "allocation_id")) > 0
    pd.testing.assert_frame_equal(_rows(store, Meta, "key"), _rows(lite.store, Meta, "key"))


def _created(r) -> int:  # type: ignore[no-untyped-def]
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return int(r.headers["location"].rsplit("/", 1)[1])


def _people(html: str) -> list[str]:
    return re.findall(r'<td><a href="/people/([^"/]+)">', html)


def _journey(s: Site, today: dt.date) -> dict[str, Any]:
    """A GP's plan (written, then edited), a meeting with that person brought and reviewed, a
    share; what each user then sees. Returns what was seen, for the two databases to agree."""
    seen: dict[str, Any] = {}
    gp, gp2, gp3, mdg1, provider = (s.login(n) for n in ("gp1", "gp2", "gp3", "mdg1", "provider1"))
    mdg = s.users["gp1"].grants.split("MDG ")[1]
    seen["case_list"] = _people(gp.get("/cases").text)
    older = gp.get("/cases", params={"age_min": 80, "condition": "diabetes"}).text
    seen["older_with_diabetes"] = int(re.search(r"(\d+) eligible people", older).group(1))
    seen["without"] = _people(gp.get("/cases", params={"plan": "without"}).text)
    pid = seen["pid"] = seen["without"][0]
    before = {n: c.get(f"/people/{pid}").status_code for n, c in (("gp2", gp2), ("mdg1", mdg1))}
    assert before == {"gp2": 404, "mdg1": 404}  # not their patient, not brought yet
    plan = _created(
        gp.post(
            f"/people/{pid}/plans",
            data={
                "csrf_token": gp.csrf,
                "goals": "stay well at home",
                "review_date": (today + dt.timedelta(days=90)).isoformat(),
                "patient_involved": "on",
                "q_goals_agreed": "on",
                "action_0_description": "medicines review",
                "action_0_owner": "practice pharmacist",
                "action_0_due": (today + dt.timedelta(days=30)).isoformat(),
            },
            follow_redirects=False,
        )
    )
    edit = {
        "csrf_token": gp.csrf,
        "goals": "stay well at home; walk daily",
        "review_date": (today - dt.timedelta(days=1)).isoformat(),  # due for review
        "q_goals_agreed": "on",
        "q_falls_assessment": "on",
        "q_named_coordinator": "on",
        "action_0_description": "falls clinic",
        "action_0_owner": "community team",
    }
    assert _created(gp.post(f"/plans/{plan}", data=edit, follow_redirects=False)) == plan
    with s.store.session() as db:
        p = db.get(CarePlan, plan)
        seen["versions"] = [
            (v.version, v.goals, v.patient_involved, sum(v.quality().values())) for v in p.versions
        ]
        seen["actions"] = [[(a.description, a.owner) for a in v.actions] for v in p.versions]
        assert p.review_date == today - dt.timedelta(days=1)
    assert "Version 1 of 2" in gp.get(f"/plans/{plan}", params={"version": 1}).text
    due = gp.get("/cases", params={"plan": "with", "review_due": "1", "everyone": "1"}).text
    assert pid in _people(due) and pid not in _people(gp.get("/cases?plan=without").text)
    # The MDG meeting: the agenda offered, the person brought, attendance, the review.
    held = (today - dt.timedelta(days=7)).isoformat()
    meeting = _created(
        gp.post(
            "/mdg/meetings",
            data={"csrf_token": gp.csrf, "mdg": mdg, "meeting_date": held},
            follow_redirects=False,
        )
    )
    seen["suggested"] = _people(gp.get(f"/mdg/meetings/{meeting}").text)
    r = gp.post(
        f"/mdg/meetings/{meeting}/cases",
        data={"csrf_token": gp.csrf, "person_id": pid},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = gp.post(
        f"/mdg/meetings/{meeting}/attendance",
        data={
            "csrf_token": gp.csrf,
            "duration_minutes": "60",
            "role_chair": "1",
            "role_presenting_gp": "1",
            "role_social_worker": "2",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    with s.store.session() as db:
        case = db.scalar(select(MeetingCase.id).where(MeetingCase.meeting_id == meeting))
    r = mdg1.post(
        f"/mdg/cases/{case}",
        data={"csrf_token": mdg1.csrf, "notes": "discussed", "system_issue": "on"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = gp.post(
        f"/people/{pid}/share",
        data={"csrf_token": gp.csrf, "organisation": "Community health services"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # Who sees the person now: their GP; gp2 and mdg1 through the MDG; the provider through
    # the share; gp3, a GP of another MDG, nothing of theirs (404, as for no such person).
    clients = {"gp1": gp, "gp2": gp2, "mdg1": mdg1, "provider1": provider, "gp3": gp3}
    seen["status"] = {
        n: [c.get(u).status_code for u in (f"/people/{pid}", f"/plans/{plan}")]
        for n, c in clients.items()
    }
    seen["gp3_meeting"] = gp3.get(f"/mdg/meetings/{meeting}").status_code
    seen["gp3_bring"] = gp3.post(
        f"/mdg/meetings/{meeting}/cases",
        data={"csrf_token": gp3.csrf, "person_id": pid},
        follow_redirects=False,
    ).status_code
    seen["mdg_page"] = _people(mdg1.get("/mdg").text)
    seen["shared"] = _people(provider.get("/shared").text)
    seen["exported"] = export(s.store, today).rows()
    # The programme manager's page, and the administrator's audit log of this person.
    seen["programme"] = s.login("manager1").get("/programme").status_code
    admin = s.login("admin1")
    log = admin.get("/admin/audit.csv", params={"person_id": pid, "since": "2000-01-01"}).text
    seen["audit"] = Counter(row["action"] for row in csv.DictReader(io.StringIO(log)))
    later = admin.get("/admin/audit.csv", params={"person_id": pid, "since": "2999-01-01"})
    seen["audit_later"] = len(later.text.splitlines())
    with s.store.session() as db:
        seen["table"] = programme_table(db, today)
    return seen


@pytest.fixture
def quick_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its lowest cost while the journey's demo users are made and sign in: the
    hashing is tests/test_app_security.py's subject; here it would be most of the test's time."""
    from argon2 import PasswordHasher

    from careval.app import security

    quick = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(security, "_hasher", quick)


def test_a_journey_through_the_app_on_postgresql_matches_sqlite(
    pg, lite: Site, synth_dir: Path, app_template, quick_passwords: None
) -> None:
    store, info = pg
    today = info.scored_on - dt.timedelta(days=1)  # as tests/app_support.site sets it
    users = {u.username: u for u in demo_users(store)}
    lite.users = {u.username: u for u in demo_users(lite.store)}
    # The demo users' places come from GROUP BY / ORDER BY queries: the same on both.
    grants = {n: u.grants for n, u in users.items()}
    assert grants == {n: u.grants for n, u in lite.users.items()}
    assert grants == {n: u.grants for n, u in app_template[1].items()} and len(grants) == 8
    app = create_app(store, synth_dir, AppSettings(today=today))
    on_pg = _journey(Site(store, app, users, synth_dir), today)
    on_lite = _journey(lite, today)
    table, table_lite = on_pg.pop("table"), on_lite.pop("table")
    assert on_pg == on_lite
    pd.testing.assert_frame_equal(table, table_lite, check_exact=False, rtol=1e-12)
    # And what they are, not only that the two agree.
    pid = on_pg["pid"]
    practice = users["gp1"].grants.split(",")[0].removeprefix("practice ")
    with store.session() as db:
        theirs = db.scalars(
            select(Person).where(Person.practice_code == practice, Person.eligible)
        ).all()
    by_risk = [p.person_id for p in sorted(theirs, key=lambda p: (-p.risk, p.person_id))]
    assert on_pg["case_list"] == by_risk[:50] and len(by_risk) >= 5
    older = [p for p in theirs if p.age >= 80 and "diabetes" in p.conditions.split()]
    assert on_pg["older_with_diabetes"] == len(older) > 0
    unplanned = [p.person_id for p in theirs if not p.plan_in_data]
    assert on_pg["without"] == [q for q in by_risk if q in unplanned][:50]
    assert on_pg["versions"] == [
        (1, "stay well at home", True, 1),
        (2, "stay well at home; walk daily", False, 3),
    ]
    assert on_pg["actions"] == [
        [("medicines review", "practice pharmacist")],
        [("falls clinic", "community team")],
    ]
    # The agenda offers those without a plan first (the person now has one), highest risk first.
    first = [q for q in by_risk if q in unplanned and q != pid]
    assert on_pg["suggested"] == (first + [q for q in by_risk if q not in first])[:10]
    assert on_pg["status"] == {
        "gp1": [200, 200],
        "gp2": [200, 200],
        "mdg1": [200, 200],
        "provider1": [200, 200],
        "gp3": [404, 404],
    }
    assert on_pg["gp3_meeting"] == 404 and on_pg["gp3_bring"] == 404
    assert on_pg["mdg_page"] == [pid] and on_pg["shared"] == [pid]
    assert on_pg["programme"] == 200 and on_pg["audit_later"] == 1  # the header only
    audit = on_pg["audit"]
    assert (audit["view_person"], audit["view_plan"], audit["edit_plan"]) == (4, 5, 1)
    assert audit["bring_to_mdg"] == audit["review_mdg_case"] == audit["share_person"] == 1
    assert on_pg["exported"] == {"care_plans": 1, "mdg_meetings": 1, "mdg_attendance": 3}
    mdg = users["gp1"].grants.split("MDG ")[1]
    row = table.set_index("mdg").loc[mdg]
    counts = ["app_plans", "review_due", "meetings", "cases", "system_issues"]
    assert row[counts].tolist() == [1, 1, 1, 1, 1]
    assert row.mean_quality == pytest.approx(3 / len(QUALITY_ITEMS))
    with store.session() as db:
        el = db.scalars(select(Person).where(Person.eligible, Person.mdg.is_not(None))).all()
    mine = [p for p in el if p.mdg == mdg]
    assert row.eligible == len(mine) and row.planned == sum(p.plan_in_data for p in mine) + 1
    total = table.set_index("mdg").loc[ALL]
    assert total[counts].tolist() == [1, 1, 1, 1, 1] and total.eligible == len(el)
