"""The app's content against careval's own outputs: scores, case list, timeline, plans, the
programme's figures, the export into the data model, the migrations and the commands."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from careval.app import snapshot
from careval.app.export import EXPORTED, export
from careval.app.migrate import config, current
from careval.app.pages_programme import ALL, programme_table, published
from careval.app.records import Records
from careval.app.store import Base, CarePlan, Person, open_store
from careval.data.schema import CARE_PLAN_QUALITY_ITEMS
from careval.data.validate import require_valid
from tests.app_support import Site, site

TODAY = dt.date(2014, 3, 31)


@pytest.fixture(scope="module")
def s(app_template, synth_dir: Path, tmp_path_factory) -> Site:
    return site(app_template, synth_dir, tmp_path_factory.mktemp("records"))


def careval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from careval.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def scored(synth_dir: Path, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """``careval risk train`` and ``careval risk score`` on the same data: the reference."""
    tmp = tmp_path_factory.mktemp("risk")
    r = careval(
        "risk",
        "train",
        "--data",
        str(synth_dir),
        "--index-date",
        "2013-03-31",
        "--out",
        str(tmp / "model"),
    )
    assert r.returncode == 0, r.stderr
    r = careval(
        "risk",
        "score",
        "--data",
        str(synth_dir),
        "--model",
        str(tmp / "model"),
        "--date",
        "2014-04-01",
        "--top",
        "100000",
        "--out",
        str(tmp / "lists"),
    )
    assert r.returncode == 0, r.stderr
    return tmp / "model", pd.read_parquet(tmp / "lists" / "scores.parquet")


def test_the_snapshot_holds_careval_risk_scores_own_scores(synth_dir, scored, tmp_path) -> None:
    model, ref = scored
    store = open_store(tmp_path / "app.db")
    info = snapshot.build(store, synth_dir, model)
    with store.session() as db:
        people = pd.read_sql(select(Person), db.bind)
    store.close()
    assert info.scored_on == dt.date(2014, 4, 1) and info.people == len(ref)
    m = ref.merge(people, on="person_id", validate="1:1")
    assert len(m) == len(ref)
    np.testing.assert_allclose(m.risk_x, m.risk_y, rtol=1e-12)
    assert (m.practice_code_x == m.practice_code_y).all()
    assert (m.eligible_x == m.eligible_y).all() and (m.on_care_plan == m.plan_in_data).all()
    # Drivers: those careval risk score lists for eligible people without a plan.
    lists = pd.read_csv(Path(str(model).replace("model", "lists")) / "case_list_by_practice.csv")
    d = people.set_index("person_id").drivers.map(json.loads)
    for row in lists.head(200).itertuples():
        got = d[row.person_id]
        assert [g[0] for g in got] == [row.driver_1, row.driver_2, row.driver_3]
        assert got[0][2] == pytest.approx(row.driver_1_contribution, rel=1e-5)
    # Rebuilding on the same files is a no-op; a changed scoring date is a new snapshot.
    store = open_store(tmp_path / "app.db")
    assert snapshot.build(store, synth_dir, model).fingerprint == info.fingerprint
    assert snapshot.build(store, synth_dir, model, dt.date(2014, 3, 1)).people != 0
    assert snapshot.current(store).scored_on == dt.date(2014, 3, 1)
    store.close()


def test_the_case_list_is_the_practices_eligible_people_by_risk(s: Site) -> None:
    gp = s.login("gp1")
    practice = s.users["gp1"].grants.split(",")[0].removeprefix("practice ")
    with s.store.session() as db:
        people = pd.read_sql(select(Person), db.bind)
    want = people[(people.practice_code == practice) & people.eligible]
    want = want.sort_values(["risk", "person_id"], ascending=[False, True]).person_id.tolist()
    got: list[str] = []
    for n in range(1, 100):
        page = gp.get("/cases", params={"page": n}).text
        got += re.findall(r'<td><a href="/people/([^"/]+)">', page)
        if "next</a>" not in page:
            break
    assert got == want
    assert f"{len(want)} eligible people" in gp.get("/cases").text
    # Filters: age and a condition, against pandas on the same snapshot.
    older = gp.get("/cases", params={"age_min": 85, "condition": "diabetes"}).text
    sub = people[(people.practice_code == practice) & people.eligible & (people.age >= 85)]
    sub = sub[sub.conditions.str.split().map(lambda c: "diabetes" in c)]
    assert f"{len(sub)} eligible people" in older


def test_a_persons_timeline_is_every_record_they_have(s: Site, synth_dir: Path) -> None:
    spells = pd.read_parquet(synth_dir / "inpatient_spells.parquet")
    pid = spells.person_id.value_counts().index[0]
    records = Records(synth_dir)
    events = records.of(pid)
    records.close()
    counts = pd.Series([e.kind for e in events]).value_counts().to_dict()
    tables = {
        "admission": "inpatient_spells",
        "ae": "ae_attendances",
        "outpatient": "outpatient_appointments",
        "community": "community_contacts",
        "social_care": "social_care_services",
        "condition": "conditions",
        "measurement": "measurements",
        "medication": "medications",
        "care_plan": "care_plans",
    }
    for kind, table in tables.items():
        path = synth_dir / f"{table}.parquet"
        n = int((pd.read_parquet(path, columns=["person_id"]).person_id == pid).sum())
        assert counts.get(kind, 0) == n, kind
    dates = [e.date for e in events]
    assert dates == sorted(dates, reverse=True) and len(events) > 5


def _plan(gp, pid: str, **extra) -> int:
    data = {"csrf_token": gp.csrf, "goals": "stay well at home", **extra}
    r = gp.post(f"/people/{pid}/plans", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_a_plan_keeps_every_version(s: Site) -> None:
    gp = s.login("gp1")
    pid = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases?plan=without&everyone=1").text)[5]
    plan = _plan(
        gp,
        pid,
        review_date="2014-06-30",
        patient_involved="on",
        q_goals_agreed="on",
        action_0_description="medicines review",
        action_0_owner="practice pharmacist",
        action_0_due="2014-04-30",
    )
    edit = {
        "csrf_token": gp.csrf,
        "goals": "second goals",
        "q_falls_assessment": "on",
        "action_0_description": "falls clinic",
        "action_0_owner": "community team",
        "review_date": "2014-03-01",
    }
    assert gp.post(f"/plans/{plan}", data=edit, follow_redirects=False).status_code == 303
    # A problem in the form saves nothing.
    bad = {**edit, "action_1_description": "no owner"}
    assert gp.post(f"/plans/{plan}", data=bad, follow_redirects=False).status_code == 400
    with s.store.session() as db:
        p = db.get(CarePlan, plan)
        assert [v.version for v in p.versions] == [1, 2]
        v1, v2 = p.versions
        assert (v1.goals, v1.review_date, v1.patient_involved) == (
            "stay well at home",
            dt.date(2014, 6, 30),
            True,
        )
        assert [(a.description, a.owner, a.due_date) for a in v1.actions] == [
            ("medicines review", "practice pharmacist", dt.date(2014, 4, 30))
        ]
        assert v1.quality() == {q: q == "q_goals_agreed" for q in CARE_PLAN_QUALITY_ITEMS}
        assert (v2.goals, v2.patient_involved) == ("second goals", False)
        assert p.review_date == dt.date(2014, 3, 1)
    page = gp.get(f"/plans/{plan}", params={"version": 1}).text
    assert "stay well at home" in page and "Version 1 of 2" in page
    assert pid in gp.get("/cases", params={"plan": "with", "review_due": "1", "everyone": "1"}).text
    assert pid not in gp.get("/cases", params={"plan": "without", "everyone": "1"}).text


def test_the_programme_figures_and_the_evaluators_copy(s: Site) -> None:
    gp = s.login("gp1")
    mdg = s.users["gp1"].grants.split("MDG ")[1]
    with s.store.session() as db:
        people = pd.read_sql(select(Person), db.bind)
        plans = pd.read_sql(select(CarePlan.person_id, CarePlan.mdg), db.bind)
    pid = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases?plan=without&everyone=1").text)[0]
    _plan(gp, pid, q_goals_agreed="on", q_carer_identified="on", q_named_coordinator="on")
    plans.loc[len(plans)] = [pid, mdg]
    with s.store.session() as db:
        table = programme_table(db, TODAY).set_index("mdg")
    el = people[people.eligible & people.mdg.notna()]
    planned = el.plan_in_data | el.person_id.isin(plans.person_id)
    assert table.loc[mdg, "eligible"] == (el.mdg == mdg).sum()
    assert table.loc[mdg, "planned"] == planned[el.mdg == mdg].sum()
    assert table.loc[ALL, "eligible"] == len(el)
    assert table.loc[mdg, "coverage"] == pytest.approx(planned[el.mdg == mdg].mean())
    assert table.loc[mdg, "app_plans"] == (plans.mdg == mdg).sum()
    # The evaluator's copy: small counts hidden, the rest rounded to 5, and the shares resting
    # on a hidden count withheld.
    pub = published(table.reset_index()).set_index("mdg")
    for m in table.index:
        for col in ("eligible", "planned", "app_plans", "meetings"):
            true, shown = int(table.loc[m, col]), pub.loc[m, col]
            if 1 <= true <= 7:
                assert shown == "*"
            elif shown != "*":
                assert shown == 5 * round(true / 5)
    small = [m for m in table.index if 1 <= table.loc[m, "app_plans"] <= 7]
    assert small and all(pub.loc[m, "mean_quality"] is None for m in small)
    page = s.login("evaluator1").get("/evaluation").text
    assert "Disclosure control applied" in page
    manager = s.login("manager1").get("/programme").text
    assert "Disclosure control applied" not in manager


def test_what_the_app_recorded_is_a_valid_part_of_the_dataset(s: Site, tmp_path) -> None:
    gp = s.login("gp1")
    mdg = s.users["gp1"].grants.split("MDG ")[1]
    pids = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases?plan=without&everyone=1").text)[
        10:13
    ]
    for pid in pids:
        _plan(gp, pid, q_medication_review="on")
    for day, minutes in (("2014-03-20", "75"), ("2014-03-27", ""), ("2014-06-01", "60")):
        r = gp.post(
            "/mdg/meetings",
            data={"csrf_token": gp.csrf, "mdg": mdg, "meeting_date": day},
            follow_redirects=False,
        )
        m = r.headers["location"].rsplit("/", 1)[1]
        gp.post(f"/mdg/meetings/{m}/cases", data={"csrf_token": gp.csrf, "person_id": pids[0]})
        gp.post(
            f"/mdg/meetings/{m}/attendance",
            data={
                "csrf_token": gp.csrf,
                "duration_minutes": minutes,
                "role_chair": "1",
                "role_presenting_gp": "2",
                "role_social_worker": "1",
            },
        )
    result = export(s.store, TODAY)
    assert result.left_out == {"meetings_to_come": 1, "meetings_no_length": 1} | (
        {"plans_without_mdg": result.left_out["plans_without_mdg"]}
        if "plans_without_mdg" in result.left_out
        else {}
    )
    plans = result.tables["care_plans"].to_pandas()
    assert set(pids) <= set(plans.person_id) and plans.care_plan_id.str.startswith("APP").all()
    assert plans[plans.person_id.isin(pids)].q_medication_review.all()
    meetings = result.tables["mdg_meetings"].to_pandas()
    held = meetings[meetings.meeting_date == dt.date(2014, 3, 20)]
    assert held.duration_minutes.tolist() == [75] and held.cases_discussed.tolist() == [0]
    att = result.tables["mdg_attendance"].to_pandas()
    assert att[att.meeting_id == held.meeting_id.iloc[0]].attendees.sum() == 4
    # Into a copy of the dataset in place of its own tables: careval's validation passes.
    data = tmp_path / "data"
    shutil.copytree(s.data, data)
    for name, table in result.tables.items():
        pq.write_table(table, data / f"{name}.parquet")
    require_valid(data)
    assert set(EXPORTED) == set(result.tables)


def test_the_migrations_make_the_models_schema(tmp_path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    command.upgrade(config(engine), "head")
    assert current(engine) == "0001"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    command.downgrade(config(engine), "base")
    assert current(engine) is None
    engine.dispose()


@pytest.mark.slow  # a population made and scored in a subprocess
def test_serve_demo_and_export_from_the_command_line(tmp_path) -> None:
    demo = tmp_path / "demo"
    r = careval("serve", "--demo", "--demo-dir", str(demo), "--persons", "3000", "--check")
    assert r.returncode == 0, r.stderr
    names = re.findall(r"^  (\w+) +\S+ +(\w+)", r.stdout, re.M)
    roles = {role for _, role in names}
    assert roles == {
        "gp",
        "mdg_member",
        "provider_clinician",
        "programme_manager",
        "evaluator",
        "admin",
    }
    assert (demo / "app.db").is_file() and (demo / "data" / "persons.parquet").is_file()
    out = tmp_path / "export"
    r = careval("export", "--db", str(demo / "app.db"), "--out", str(out), "--today", "2014-03-31")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(f"{n}.parquet" for n in EXPORTED)
    # Never over what careval did not write; a folder of someone else's is refused.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    r = careval("export", "--db", str(demo / "app.db"), "--out", str(mine))
    assert r.returncode == 2 and (mine / "notes.txt").read_text() == "keep"
    (demo / "notes.txt").write_text("keep")
    r = careval("serve", "--demo", "--demo-dir", str(demo), "--check")
    assert r.returncode == 2 and "did not write" in r.stderr
    # A dataset without an administrator is not served.
    r = careval("serve", "--data", str(demo / "data"), "--db", str(tmp_path / "new.db"), "--check")
    assert r.returncode == 2 and "--add-admin" in r.stderr


def test_export_with_data_makes_a_new_dataset_with_both_sets_of_records(s: Site, tmp_path) -> None:
    gp = s.login("gp1")
    pid = re.findall(r'href="/people/([^"/]+)"', gp.get("/cases?plan=without&everyone=1").text)[20]
    _plan(gp, pid, q_advance_care_plan="on")
    db = s.store.engine.url.database
    before = {p.name: p.stat().st_mtime_ns for p in s.data.iterdir()}
    own = pd.read_parquet(s.data / "care_plans.parquet")
    out = tmp_path / "merged"
    r = careval(
        "export", "--db", db, "--data", str(s.data), "--out", str(out), "--today", "2014-03-31"
    )
    assert r.returncode == 0, r.stderr
    plans = pd.read_parquet(out / "care_plans.parquet")
    app = plans[plans.care_plan_id.str.startswith("APP")]
    assert len(plans) == len(own) + len(app) and pid in set(app.person_id)
    assert plans.care_plan_id.is_unique
    pd.testing.assert_frame_equal(
        plans[~plans.care_plan_id.str.startswith("APP")].reset_index(drop=True),
        own,
        check_dtype=False,
    )
    assert (out / "persons.parquet").stat().st_size == (s.data / "persons.parquet").stat().st_size
    require_valid(out)
    assert {p.name: p.stat().st_mtime_ns for p in s.data.iterdir()} == before  # untouched
    # A merge of a merge would count the app's records twice: refused, nothing written.
    again = tmp_path / "again"
    r = careval("export", "--db", db, "--data", str(out), "--out", str(again))
    assert r.returncode == 2 and "already holds the app's records" in r.stderr
    assert not again.exists()
