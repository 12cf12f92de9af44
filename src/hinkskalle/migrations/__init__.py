"""Alembic migrations; `upgrade(url)` is what `hinkskalle db upgrade` runs."""
from __future__ import annotations

import os

from alembic import command
from alembic.config import Config

HERE = os.path.dirname(__file__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", HERE)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from ..models import get_engine

    engine = get_engine({"sqlalchemy.url": url})
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
