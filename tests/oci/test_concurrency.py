"""Clients push layers in parallel; the first pushes into a new repository all create its path."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from hinkskalle.models import for_writes, get_engine

from .conftest import sha


def test_parallel_first_pushes_create_the_repository_once(live_server, accounts):
    # On SQLite write requests begin with BEGIN IMMEDIATE, so they wait for each other
    # instead of failing with "database is locked".
    token = accounts["hase"][1]
    blobs = [f"layer {n}".encode() for n in range(6)]

    def push(data: bytes) -> int:
        response = requests.post(f"{live_server.url}/v2/hase/new/repo/blobs/uploads/",
                                 params={"digest": sha(data)}, data=data, timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/octet-stream"})
        return response.status_code

    with ThreadPoolExecutor(len(blobs)) as pool:
        assert list(pool.map(push, blobs)) == [201] * len(blobs)
    for data in blobs:
        response = requests.get(f"{live_server.url}/v2/hase/new/repo/blobs/{sha(data)}", timeout=60,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.content == data


def test_sqlite_write_transactions_take_turns(tmp_path):
    """A write transaction reads, another writer tries to commit meanwhile, then the first
    writes what it read. Write transactions begin IMMEDIATE, so the other writer waits its
    turn; with pysqlite's deferred BEGIN its update slipped in between and was lost (or,
    after a SAVEPOINT had started the transaction, failed with "database is locked")."""
    engine = get_engine({"sqlalchemy.url": f"sqlite:///{tmp_path}/stale.db"})
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
    has_read = threading.Event()

    def other_writer():
        has_read.wait(10)
        with for_writes(engine).begin() as conn:
            conn.exec_driver_sql("UPDATE counter SET n = n + 1")

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        with for_writes(engine).begin() as conn:
            n = conn.exec_driver_sql("SELECT n FROM counter").scalar()
            has_read.set()
            time.sleep(0.2)         # give the other writer the chance to commit in between
            conn.exec_driver_sql("UPDATE counter SET n = ?", (n + 10,))
    finally:
        thread.join(30)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM counter").scalar() == 11
    engine.dispose()
