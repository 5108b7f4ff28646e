"""``careval serve`` (the care-coordination app) and ``careval export`` (what it recorded)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from careval.cli.common import err, out, steps, validated
from careval.errors import ConfigError
from careval.folders import new_folder

if TYPE_CHECKING:
    from careval.app.store import Store

DEMO_DIR = Path("careval-app-demo")
DEMO_PERSONS = 20_000
DEMO_ENTRIES = {"data", "app.db", "app.db-wal", "app.db-shm"}


def _demo_data(folder: Path, persons: int) -> Path:
    """The demo's dataset in ``folder/data``, generated the first time."""
    from careval.synthetic.generate import STEPS, generate
    from careval.synthetic.settings import SynthSettings

    if folder.exists():
        strange = sorted(p.name for p in folder.iterdir() if p.name not in DEMO_ENTRIES)
        if strange:
            raise ConfigError(
                f"--demo-dir {folder}: holds {', '.join(strange[:3])}, which careval did not "
                "write there; choose another folder"
            )
    else:
        folder.mkdir(parents=True)
    data = folder / "data"
    if not data.exists():
        with steps(STEPS) as step:
            generate(data, SynthSettings(persons=persons), progress=step)
    return data


def serve(
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset directory the app serves")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="The app's database: a SQLite file path (default careval-app.db) or a URL "
            "such as postgresql+psycopg://user@host/careval",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Risk model directory (careval risk train); default: a logistic model fitted "
            "on the data's latest year",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Serve a synthetic population (made in --demo-dir the first time) with demo "
            "users of every role, and print their log-ins",
        ),
    ] = False,
    demo_dir: Annotated[Path, typer.Option(help="Where --demo keeps its data and database")] = (
        DEMO_DIR
    ),
    persons: Annotated[int, typer.Option(help="People in the --demo population")] = DEMO_PERSONS,
    add_admin: Annotated[
        str | None,
        typer.Option(
            "--add-admin",
            help="Create an administrator with this user name (password from the prompt, or "
            "CAREVAL_ADMIN_PASSWORD), then serve",
        ),
    ] = None,
    insecure_cookies: Annotated[
        bool,
        typer.Option(
            help="Send cookies over plain HTTP too (only behind a proxy that is itself on "
            "HTTPS; browsers send Secure cookies to localhost anyway)"
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option(help="Build the snapshot and users, then stop without serving")
    ] = False,
) -> None:
    """Run the care-coordination web app: case lists, care plans, MDG review, audit.

    The app keeps its own database (users, care plans with every version, MDG meetings, the
    audit log) and a snapshot of the dataset: everyone registered on the day after the data
    end, scored by the risk model. The snapshot is rebuilt only when the data or model change.
    """
    from careval.app import snapshot
    from careval.app.server import create_app
    from careval.app.store import User, open_store
    from careval.app.web import AppSettings

    if demo:
        if data is not None:
            raise ConfigError("--demo makes its own data: give --data or --demo, not both")
        data = _demo_data(demo_dir, persons)
        db = db or str(demo_dir / "app.db")
    if data is None:
        raise ConfigError("give --data DIR (a careval dataset), or --demo")
    validated(data)
    store = open_store(db or "careval-app.db")
    try:
        info = snapshot.build(store, data, model)
        out.print(
            f"serving {info.people:,} people registered on {info.scored_on}, scored by the "
            f"{info.model}",
            highlight=False,
        )
        if add_admin:
            _add_admin(store, add_admin)
        if demo:
            from careval.app.demo import demo_users

            out.print("demo users (new passwords at each start):", highlight=False)
            for u in demo_users(store):
                out.print(
                    f"  {u.username:<11} {u.password}  {u.role:<19} {u.grants}", highlight=False
                )
        with store.session() as s:
            if s.query(User).filter(User.role == "admin", User.active).count() == 0:
                raise ConfigError(
                    "the app has no active administrator: start it once with --add-admin NAME"
                )
        # The demo's working day is the data's last: what is recorded fits the data's calendar.
        today = info.scored_on - dt.timedelta(days=1) if demo else None
        app = create_app(store, data, AppSettings(secure_cookies=not insecure_cookies, today=today))
        if check:
            return
        import uvicorn

        out.print(f"open http://{host}:{port}/ (Ctrl+C stops)", highlight=False)
        # No access log: its lines would carry person ids in the URLs.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        store.close()


def _add_admin(store: Store, username: str) -> None:
    from careval.app import security
    from careval.app.store import User

    password = os.environ.get("CAREVAL_ADMIN_PASSWORD") or typer.prompt(
        f"password for {username}", hide_input=True, confirmation_prompt=True
    )
    name = username.strip().lower()
    if problem := security.password_problem(password, name):
        raise ConfigError(f"--add-admin {username}: {problem}")
    with store.session() as db:
        if db.query(User).filter(User.username == name).first():
            raise ConfigError(f"--add-admin {username}: that user name is taken")
        db.add(
            User(
                username=name,
                display_name=name,
                password_hash=security.hash_password(password),
                role="admin",
            )
        )
        db.commit()
    err.print(f"added the administrator {name}", highlight=False)


def export(
    db: Annotated[str, typer.Option("--db", help="The app's database (path or URL)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to create with the tables")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A dataset: --out becomes a copy of it whose three tables hold its own rows and "
            "the app's (validated), ready for careval run and careval follow",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(help="Meetings after this date are still to come (default: today)"),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an export (or merged dataset) careval wrote earlier")
    ] = False,
) -> None:
    """Write what the app recorded as care_plans, mdg_meetings and mdg_attendance (Parquet).

    With --data, --out is a new dataset: the given one with the app's plans and meetings added
    to its own (the given dataset is not changed), validated, for careval run and follow.
    """
    import pyarrow.parquet as pq

    from careval.app.export import export as export_tables
    from careval.app.store import open_store, url_for
    from careval.cli.common import parse_date

    day = parse_date(today, "--today") if today else dt.date.today()
    if "://" not in db and not Path(db).is_file():
        raise ConfigError(f"--db {db}: no such database file")
    store = open_store(url_for(db), migrate=False)
    try:
        result = export_tables(store, day)
    finally:
        store.close()
    if data is None:
        with new_folder(out_dir, "app_export", overwrite=overwrite) as tmp:
            for name, table in result.tables.items():
                pq.write_table(table, tmp / f"{name}.parquet")
    else:
        from careval.app.export import copy_dataset, merged

        validated(data)
        tables = merged(data, result)
        with new_folder(out_dir, "dataset", overwrite=overwrite) as tmp:
            copy_dataset(data, tmp, {f"{n}.parquet" for n in tables})
            for name, table in tables.items():
                pq.write_table(table, tmp / f"{name}.parquet")
            validated(tmp)
    rows = result.rows()
    out.print(
        f"wrote {out_dir}: {rows['care_plans']:,} care plans, {rows['mdg_meetings']:,} meetings, "
        f"{rows['mdg_attendance']:,} attendance rows",
        highlight=False,
    )
    for what, n in result.left_out.items():
        err.print(f"note: left out {n:,} {what.replace('_', ' ')}", highlight=False)
