"""Database wiring: engine, session factory and `request.dbsession` joined to pyramid_tm."""
from __future__ import annotations

import os

import transaction
import zope.sqlalchemy
from sqlalchemy import engine_from_config, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import configure_mappers, sessionmaker

from .meta import Base, utcnow  # noqa: F401
from .misc import Adm, PublicKey  # noqa: F401
from .registry import (Collection, Container, Entity, Image, Manifest,  # noqa: F401
                       ManifestReference, Tag, Upload, UploadPart)
from .user import Group, Membership, Token, User, user_stars  # noqa: F401

configure_mappers()


# The drivers our `postgres` and `mysql` extras install, for URLs that name none.
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


def database_url(url: str) -> str:
    """`url` with the driver of our extras when it names none (`postgresql://` -> psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=DEFAULT_DRIVERS[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def get_engine(settings: dict, prefix: str = "sqlalchemy.") -> Engine:
    url = database_url(settings[prefix + "url"])
    settings = dict(settings, **{prefix + "url": url})
    if url.startswith("sqlite:///"):
        folder = os.path.dirname(url[len("sqlite:///"):])
        if folder:
            os.makedirs(folder, exist_ok=True)
    options = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
    engine = engine_from_config(settings, prefix, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


# Execution option of connections that will write (see `for_writes`).
WRITE_OPTION = "hinkskalle_write"


def for_writes(engine: Engine) -> Engine:
    """The engine for transactions that will write: on SQLite they begin with BEGIN IMMEDIATE.

    A deferred SQLite transaction that read first cannot become a writer once another
    connection has committed ("database is locked" at once, busy_timeout does not help);
    taking the write lock at BEGIN makes such writers wait their turn instead. Readers keep
    plain BEGIN and stay concurrent.
    """
    return engine.execution_options(**{WRITE_OPTION: True})


def _sqlite_begin(conn):
    # Writers: pysqlite's own BEGIN switched off and BEGIN IMMEDIATE emitted here (SQLAlchemy's
    # pysqlite recipe). Readers keep pysqlite's default: no transaction until the first
    # write, so each read sees the newest data, as before.
    dbapi_connection = conn.connection.dbapi_connection
    if conn.get_execution_options().get(WRITE_OPTION):
        dbapi_connection.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        dbapi_connection.isolation_level = ""


def _sqlite_pragmas(dbapi_connection, _record):
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite;
    # busy_timeout makes concurrent writers wait instead of failing at once. A SQLite write
    # transaction lasts as long as storing its blob (seconds per GiB: waitress has spooled the
    # body already), so pushes of big images take turns: wait up to 5 minutes for the lock.
    # Sites with many concurrent pushes use PostgreSQL or MariaDB.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=300000")
    cursor.close()


def get_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


class ThreadTransactionManager(transaction.ThreadTransactionManager):
    """pyramid_tm's transaction manager: explicit (a transaction exists only between the
    tween's begin and its commit or abort), one per thread, and each server thread runs one
    request at a time. Being long-lived, it lets the request session factories join it once
    at start-up: registering zope.sqlalchemy's seven listeners on every request's session
    took 15% of a manifest GET's CPU."""

    def __init__(self):
        self.manager = transaction.TransactionManager(explicit=True)

    def commit(self):
        # A failed commit (database locked, deadlock, a constraint at the final flush) leaves
        # its transaction behind, and pyramid_tm does not abort it: drop it here, or every
        # later request of this thread would fail to begin one.
        try:
            return self.manager.commit()
        except BaseException:
            self.manager.abort()
            raise


def request_session_factory(engine: Engine, transaction_manager) -> sessionmaker:
    """Sessions that commit or abort with the request's transaction (pyramid_tm)."""
    factory = get_session_factory(engine)
    zope.sqlalchemy.register(factory, transaction_manager=transaction_manager)
    return factory


def includeme(config):
    from ..services.gc_lock import READ_ONLY_METHODS
    settings = config.get_settings()
    transactions = ThreadTransactionManager()
    settings["tm.manager_hook"] = lambda request: transactions
    # Identity is resolved lazily by views; the tween must not trigger it (and its errors) early.
    settings["tm.annotate_user"] = False
    config.include("pyramid_tm")
    engine = settings.get("hinkskalle.engine") or get_engine(settings)
    # Plain sessions for plugins and callbacks that run their own transactions.
    config.registry["dbsession_factory"] = get_session_factory(engine)
    config.registry["dbengine"] = engine
    write_engine = for_writes(engine)
    config.registry["dbwrite_session_factory"] = get_session_factory(write_engine)
    read_sessions = request_session_factory(engine, transactions)
    write_sessions = request_session_factory(write_engine, transactions)

    def dbsession(request):
        # Tests may hand in their own session through the environ.
        session = request.environ.get("hinkskalle.dbsession")
        if session is None:
            writes = request.method not in READ_ONLY_METHODS
            session = (write_sessions if writes else read_sessions)(info={"request": request})
        return session

    config.add_request_method(dbsession, reify=True)
