"""pytest fixtures for Hinkskalle and its plugins.

Load with ``-p hinkskalle.testing`` or ``pytest_plugins = ["hinkskalle.testing"]``.

The database is chosen with ``--db-url`` or ``HINKSKALLE_TEST_DATABASE_URL`` (default: a
fresh SQLite file). The schema is built once per session by the real alembic migrations.
Application tests run real transactions (so after-commit hooks fire as in production);
every table is emptied after each test.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.orm import Session

from .config import load_settings
from .models import Base, Collection, Container, Entity, Group, Membership, User, get_engine
from .plugins import hookimpl, make_plugin_manager
from .security import passwords
from .security.tokens import create_token

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require_tool(name: str) -> str:
    """Path of an external program a test needs; skip without it, but fail in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if IN_CI:
            pytest.fail(message + " (CI must install it)")
        pytest.skip(message)
    return path


def pytest_addoption(parser):
    parser.addoption("--db-url", default=os.environ.get("HINKSKALLE_TEST_DATABASE_URL"),
                     help="database for the tests (default: a temporary SQLite file)")


def migrate(url: str) -> None:
    from .migrations import upgrade
    upgrade(url)


@pytest.fixture(scope="session")
def db_url(request, tmp_path_factory):
    """The test database: --db-url, or a private SQLite file (tests run in one process)."""
    return request.config.getoption("--db-url") or f"sqlite:///{tmp_path_factory.mktemp('db')}/test.db"


def fresh_database(url: str, suffix: str) -> str:
    """URL of a new, empty database `<name>_<suffix>` beside the one `url` names.

    For SQLite a new file beside the original; for server databases it is (re)created.
    """
    from .models import database_url
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() == "sqlite":
        stem, ext = os.path.splitext(parsed.database)
        path = f"{stem}_{suffix}{ext or '.db'}"
        if os.path.exists(path):
            os.unlink(path)
        return parsed.set(database=path).render_as_string(hide_password=False)
    name = f"{parsed.database}_{suffix}"
    engine = create_engine(parsed, isolation_level="AUTOCOMMIT")
    quoted = engine.dialect.identifier_preparer.quote(name)
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}"))
        conn.execute(text(f"CREATE DATABASE {quoted}"))
    engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Remove a database made by `fresh_database`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if os.path.exists(parsed.database):
            os.unlink(parsed.database)
        return
    engine = create_engine(parsed.set(database=None if parsed.get_backend_name() != "postgresql" else "postgres"),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {engine.dialect.identifier_preparer.quote(parsed.database)}"))
    engine.dispose()


@pytest.fixture(scope="session")
def engine(db_url):
    """The test database, emptied and migrated to the newest schema once per session."""
    engine = get_engine({"sqlalchemy.url": db_url})
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    migrate(db_url)
    yield engine
    engine.dispose()


def _empty_tables(engine):
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _cheap_passwords():
    """argon2 with its production cost makes every login take ~50 ms; tests need no such cost."""
    passwords.set_hasher(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    yield
    passwords.set_hasher(PasswordHasher())


class Recorder:
    """A plugin that records every event it is handed (after commit)."""

    def __init__(self):
        self.events = []
        self.vetoes = {}  # hook name -> reason to return

    def of(self, kind):
        return [e for e in self.events if e.kind == kind]

    @hookimpl
    def hinkskalle_on_push(self, event):
        self.events.append(event)

    @hookimpl
    def hinkskalle_on_pull(self, event):
        self.events.append(event)

    @hookimpl
    def hinkskalle_on_tag(self, event):
        self.events.append(event)

    @hookimpl
    def hinkskalle_on_delete(self, event):
        self.events.append(event)

    @hookimpl
    def hinkskalle_on_login(self, event):
        self.events.append(event)

    @hookimpl
    def hinkskalle_check_push(self, request, event):
        return self.vetoes.get("push")

    @hookimpl
    def hinkskalle_check_pull(self, request, event):
        return self.vetoes.get("pull")


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def extra_plugins(recorder):
    """Plugins registered in the test app; override to add your own."""
    return (recorder,)


@pytest.fixture
def settings(engine, db_url, tmp_path, extra_plugins):
    """Application settings for one test: its own blob store, the shared test database."""
    raw = {
        "here": str(tmp_path),
        "sqlalchemy.url": db_url,
        "hinkskalle.storage.path": str(tmp_path / "store"),
        "hinkskalle.secret_key": "test-secret",
        "hinkskalle.counter_flush_interval": "0",    # counters visible right after a pull
    }
    values = load_settings(raw, environ={})
    values["hinkskalle.engine"] = engine
    values["hinkskalle.plugin_manager"] = make_plugin_manager(values, load_entrypoints=False,
                                                             extra=extra_plugins)
    return values


@pytest.fixture
def app(settings, engine):
    """The WSGI application; tables are emptied after the test."""
    from . import make_app
    yield make_app(settings)
    _empty_tables(engine)


@pytest.fixture
def testapp(app):
    """A webtest TestApp on the application (real transactions, after-commit hooks fire)."""
    import webtest
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"})


@pytest.fixture
def db(engine, app):
    """A session for arranging and checking data in application tests; commit to share it."""
    session = Session(bind=engine, expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def dbsession(engine):
    """A session inside a transaction that is rolled back after the test (model tests)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    yield session
    session.close()
    outer.rollback()
    connection.close()


class Factory:
    """Builds consistent test data (users with their entity, groups, containers)."""

    def __init__(self, session: Session):
        self.session = session

    def user(self, username="user.hase", admin=False, password="secret", quota=0, **kw) -> User:
        user = User(username=username, email=kw.pop("email", f"{username}@example.com"),
                    firstname=kw.pop("firstname", "Test"), lastname=kw.pop("lastname", "Hase"),
                    is_admin=admin, quota=quota,
                    password_hash=passwords.hash_password(password) if password else None, **kw)
        self.session.add(user)
        self.session.flush()
        return user

    def token(self, user: User, source="manual") -> str:
        return create_token(self.session, user, source=source)[1]

    def entity(self, name, owner: User | None = None, **kw) -> Entity:
        entity = Entity(name=name, owner=owner, **kw)
        self.session.add(entity)
        self.session.flush()
        return entity

    def group(self, name, members: dict[User, str] = (), **kw) -> Group:
        group = Group(name=name, email=kw.pop("email", "group@example.com"), **kw)
        self.session.add(group)
        self.session.flush()
        for user, role in dict(members).items():
            self.session.add(Membership(user=user, group=group, role=role))
        entity = Entity(name=name.lower(), group=group)
        self.session.add(entity)
        self.session.flush()
        return group

    def container(self, path="test-hase/coll/cont", owner: User | None = None, private=False,
                  collection_private=False, **kw) -> Container:
        ent_name, coll_name, cont_name = path.split("/")
        entity = self.session.query(Entity).filter_by(name=ent_name).one_or_none() \
            or self.entity(ent_name, owner=owner)
        collection = self.session.query(Collection).filter_by(entity=entity, name=coll_name).one_or_none()
        if collection is None:
            collection = Collection(name=coll_name, entity=entity, owner=owner, private=collection_private)
            self.session.add(collection)
        container = Container(name=cont_name, collection=collection, owner=owner, private=private, **kw)
        self.session.add(container)
        self.session.flush()
        return container


@pytest.fixture
def factory(db):
    """A Factory on the `db` session; call `db.commit()` before the app should see the data."""
    return Factory(db)


class LiveServer:
    """A real waitress server on 127.0.0.1 (free port) serving a WSGI app from a thread.

    For tests that need real HTTP: external clients, concurrent requests, slow uploads.
    `url` is the base URL without a trailing slash.
    """

    def __init__(self, app, **adjustments):
        from waitress.server import create_server
        adjustments.setdefault("threads", 4)
        self.server = create_server(app, host="127.0.0.1", port=0, **adjustments)
        self.port = int(self.server.effective_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        # Close the sockets from inside the server's own loop (it is not thread-safe); the
        # loop ends once nothing is left to watch, then the worker threads are stopped.
        from waitress import wasyncore
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self._thread.join(timeout)
        self.server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.is_alive():
            raise RuntimeError("live server did not stop")


@contextlib.contextmanager
def live_server_for(app, **adjustments):
    """Serve `app` with a LiveServer for the duration of a `with` block."""
    server = LiveServer(app, **adjustments)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(app):
    """The test app served over real HTTP on 127.0.0.1 (waitress in a thread), stopped after the test."""
    with live_server_for(app) as server:
        yield server


def auth_header(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run an external command with a time limit, capturing output as text."""
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


class Driver:
    """A test plugin whose `_test` routes push, tag, pull and delete through services.registry.

    For plugin test suites that need registry events without speaking a whole client
    protocol: ``POST /_test/<library|oci>/push/<entity>/<collection>/<container>`` with the
    blob as body (query: ``tag``, ``arch``, ``media_type``, ``fail=1`` to fail the request
    after everything was queued), ``GET .../pull/<path>?ref=<tag or digest>``,
    ``DELETE .../image/<path>?digest=``. The route name's protocol decides the error
    format, as in the real protocols. It also shows what ``hinkskalle_configure`` can do.
    """

    @hookimpl
    def hinkskalle_configure(self, config):
        from .resources import library_container_factory, library_path, resolve_path
        from .security.permissions import Permission
        path = "{entity}/{collection}/{container}"
        for protocol in ("library", "oci"):
            config.add_route(f"{protocol}._test.push", f"/_test/{protocol}/push/{path}",
                             factory=lambda request: resolve_path(request, *library_path(request)))
            config.add_route(f"{protocol}._test.pull", f"/_test/{protocol}/pull/{path}",
                             factory=library_container_factory)
            config.add_route(f"{protocol}._test.image", f"/_test/{protocol}/image/{path}",
                             factory=library_container_factory)
            config.add_view(self.push, route_name=f"{protocol}._test.push", request_method="POST",
                            permission=Permission.PUSH, renderer="json")
            config.add_view(self.pull, route_name=f"{protocol}._test.pull", request_method="GET",
                            permission=Permission.PULL)
            config.add_view(self.delete, route_name=f"{protocol}._test.image", request_method="DELETE",
                            permission=Permission.DELETE, renderer="json")

    @staticmethod
    def _protocol(request) -> str:
        return request.matched_route.name.split(".")[0]

    def push(self, context, request):
        from .errors import BadRequest
        from .services import registry
        from .views.common import body_chunks
        protocol = self._protocol(request)
        digest, size = request.blobstore.ingest(body_chunks(request))
        container = registry.ensure_container(request, context)
        image = registry.complete_image(request, container, digest, size, protocol=protocol,
                                        media_type=request.GET.get("media_type"),
                                        path=request.blobstore.path(digest))
        if request.GET.get("tag"):
            registry.set_tag(request, container, request.GET["tag"],
                             request.GET.get("arch") or registry.default_arch(request),
                             protocol=protocol, image=image)
        if request.GET.get("fail"):
            raise BadRequest("failing on purpose after the push was queued")
        return {"digest": digest, "id": image.id}

    def _image(self, context, request, reference):
        from .errors import NotFound
        from .services import registry
        image = registry.find_image(request.dbsession, context, reference)
        if image is None:
            tag = registry.find_tag(request.dbsession, context, reference,
                                    request.GET.get("arch") or registry.default_arch(request))
            image = tag.image if tag is not None else None
        if image is None:
            raise NotFound(f"no image {reference}")
        return image

    def pull(self, context, request):
        from .services import registry
        from .views.common import blob_response
        reference = request.GET["ref"]
        image = self._image(context, request, reference)
        registry.record_pull(request, context, protocol=self._protocol(request), digest=image.digest,
                             size=image.size, media_type=image.media_type, target="image",
                             image=image, reference=reference)
        return blob_response(request, request.blobstore.path(image.digest), image.size)

    def delete(self, context, request):
        from .services import registry
        image = self._image(context, request, request.GET["digest"])
        registry.delete_image(request, image, protocol=self._protocol(request))
        return {}


@contextlib.contextmanager
def statements(engine):
    """The SQL statements `engine` runs inside the block (query-count tests)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def selects_and_writes(seen: list[str]) -> tuple[list[str], list[str]]:
    """`seen` statements split into SELECTs and UPDATE/INSERT/DELETEs."""
    def starting(*words):
        return [s for s in seen if s.lstrip().upper().startswith(words)]
    return starting("SELECT"), starting("UPDATE", "INSERT", "DELETE")
