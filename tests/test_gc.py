"""Garbage collection: what goes, what stays, and that it is safe beside pushes in flight."""
import hashlib
import os
import threading
import time
from datetime import timedelta

import pytest
import requests

from hinkskalle.models import Image, Upload
from hinkskalle.models.meta import utcnow
from hinkskalle.plugins import hookimpl
from hinkskalle.services.gc import collect
from hinkskalle.services.gc_lock import GCLock
from hinkskalle.testing import Driver, auth_header

HOUR = 3600


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def store(app):
    return app.registry["blobstore"]


@pytest.fixture
def sessions(app):
    return app.registry["dbsession_factory"]


def old_blob(store, data: bytes) -> str:
    digest, _ = store.ingest([data])
    age(store.path(digest), 2 * HOUR)
    return digest


def test_removes_only_unreferenced_blobs_past_the_grace_period(store, sessions, factory, db):
    referenced = old_blob(store, b"in use")
    garbage = old_blob(store, b"garbage")
    recent, _ = store.ingest([b"just pushed"])
    db.add(Image(container=factory.container("hase/coll/cont"), digest=referenced, upload_state="completed"))
    db.commit()

    report = collect(sessions, store, grace=HOUR)
    assert report.removed == [garbage] and report.bytes_removed == len(b"garbage")
    assert store.exists(referenced) and store.exists(recent) and not store.exists(garbage)

    report = collect(sessions, store, grace=0)
    assert report.removed == [recent] and store.exists(referenced)


def test_removes_stray_and_expired_uploads(store, sessions, factory, db):
    cont = factory.container("hase/coll/cont")
    db.add_all([Upload(id="live-upload-1", kind="oci", container=cont, expires_at=utcnow() + timedelta(hours=1)),
                Upload(id="expired-upload", kind="oci", container=cont, expires_at=utcnow() - timedelta(hours=2))])
    db.commit()
    for name in ("live-upload-1", "expired-upload", "stray-upload"):
        store.append(name, [b"partial"], offset=0)
        age(store.upload_path(name), 2 * HOUR)

    report = collect(sessions, store, grace=HOUR)
    assert (report.expired_uploads, report.upload_files_removed) == (1, 1)
    assert sorted(name for name, _ in store.iter_uploads()) == ["live-upload-1"]


def test_waits_for_write_requests(store, sessions):
    garbage = old_blob(store, b"garbage")
    with GCLock(store.root).shared():             # as a push request holds it
        report = collect(sessions, store, grace=0, wait=0.2)
    assert report.busy and report.removed == [] and store.exists(garbage)
    assert collect(sessions, store, grace=0, wait=0.2).removed == [garbage]


class Gate:
    """Holds a push inside its transaction (blob stored, row not yet committed)."""

    def __init__(self):
        self.inside = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def hinkskalle_check_push(self, request, event):
        self.inside.set()
        self.release.wait(30)


@pytest.fixture
def gate():
    return Gate()


@pytest.fixture
def extra_plugins(recorder, gate):
    return (recorder, Driver(), gate)


@pytest.mark.parametrize("grace", [0, HOUR])
def test_gc_during_a_push(live_server, store, sessions, factory, db, gate, recorder, grace):
    """A real server takes a slow upload; gc runs while the push is in flight and must not hurt it."""
    token = factory.token(factory.user("hase"))
    db.commit()
    garbage = old_blob(store, b"garbage from long ago")
    data = os.urandom(3 * 1024 * 1024)
    push_result = {}

    def slow_body():
        for i in range(0, len(data), 512 * 1024):
            time.sleep(0.02)
            yield data[i:i + 512 * 1024]

    def push():
        push_result["response"] = requests.post(
            f"{live_server.url}/_test/library/push/hase/coll/cont?tag=v1", data=slow_body(),
            headers=auth_header(token), timeout=60)

    pusher = threading.Thread(target=push)
    pusher.start()
    assert gate.inside.wait(30), "the push never reached its transaction"
    assert store.exists(sha(data))     # published, but no committed row refers to it yet

    # gc now: it may look at everything but must not remove anything while the push runs...
    assert collect(sessions, store, grace=grace, wait=0.2).busy
    gc_result = {}
    collector = threading.Thread(target=lambda: gc_result.update(report=collect(sessions, store, grace=grace,
                                                                                wait=30)))
    collector.start()
    gate.release.set()                 # ...and when the push has committed, gc goes ahead
    pusher.join(60)
    collector.join(60)

    assert push_result["response"].status_code == 200, push_result["response"].text
    assert push_result["response"].json()["digest"] == sha(data)
    report = gc_result["report"]
    assert not report.busy and sha(data) not in report.removed
    assert garbage in report.removed   # gc did run its removal phase
    pulled = requests.get(f"{live_server.url}/_test/library/pull/hase/coll/cont?ref=v1",
                          headers=auth_header(token), timeout=60)
    assert pulled.status_code == 200 and pulled.content == data
    assert len(recorder.of("push")) == 1
