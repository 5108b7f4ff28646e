"""Create or upgrade the app's database with its Alembic migrations (``migrations/``).

The migrations are the schema's history; :mod:`careval.app.store`'s models are its present, and
a test checks that the two agree (``alembic check`` finds nothing to generate).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

SCRIPTS = Path(__file__).parent / "migrations"


def config(engine: Engine | None = None) -> Config:
    """Alembic's configuration for the app's migrations (on ``engine``'s connection)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default)."""
    command.upgrade(config(engine), revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
