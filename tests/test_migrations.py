"""Alembic migrations on the test database's server (SQLite, PostgreSQL, MariaDB via --db-url)."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hinkskalle.migrations import current, upgrade
from hinkskalle.models import Base, get_engine
from hinkskalle.testing import drop_database, fresh_database

pytestmark = pytest.mark.db


@pytest.fixture
def empty_db(db_url):
    """A new, empty database beside the test database."""
    url = fresh_database(db_url, "migrations")
    yield url
    drop_database(url)


def schema_diff(url):
    engine = get_engine({"sqlalchemy.url": url})
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "render_as_batch": conn.dialect.name == "sqlite"})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url):
    engine = get_engine({"sqlalchemy.url": url})
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_builds_everything_on_an_empty_database(empty_db):
    assert table_names(empty_db) == set()
    upgrade(empty_db)
    assert table_names(empty_db) == set(Base.metadata.tables) | {"alembic_version"}
    assert current(empty_db) is not None
    upgrade(empty_db)     # a second run has nothing to do


def test_migrations_match_the_models(empty_db):
    """What `make migration` would generate now is empty: models and migrations agree."""
    upgrade(empty_db)
    assert schema_diff(empty_db) == []


def test_a_database_of_the_first_revision_upgrades_to_the_models(empty_db):
    """Databases made before a later revision follow it (each revision runs on a filled schema)."""
    upgrade(empty_db, "0001")
    assert current(empty_db) == "0001"
    upgrade(empty_db)
    assert current(empty_db) != "0001"
    assert schema_diff(empty_db) == []
