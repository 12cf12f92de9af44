"""Webhooks end to end: pushes through the application, a real HTTP receiver on 127.0.0.1."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import hinkskalle_webhook
from hinkskalle.testing import Driver, auth_header

WAIT = 20   # seconds: upper bound for anything a background thread should have done
PUSH = "/_test/library/push/{path}"


class Receiver:
    """A webhook receiver: records requests; can fail, or hang until released."""

    def __init__(self):
        self.requests = []
        self.statuses = []               # statuses to answer, in order (then 200)
        self.release = threading.Event()
        self.release.set()               # clear() to make the receiver hang
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.release.wait(WAIT)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                with receiver.arrived:
                    receiver.requests.append((status, dict(self.headers), body))
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count):
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, WAIT), self.requests
        return self.requests

    def delivered(self):
        return [json.loads(body) for status, _, body in self.requests if status == 200]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def dead_url():
    """A URL nobody listens on (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def options():
    return {"events": "push tag", "repositories": "test-hase/* other/keep/*",
            "secret": "s3cret", "retries": "2", "backoff": "0.05", "timeout": "5"}


@pytest.fixture
def urls(receiver):
    return [receiver.url]


@pytest.fixture
def settings(settings, options, urls):
    settings["hinkskalle_webhook.urls"] = " ".join(urls)
    for key, value in options.items():
        settings[f"hinkskalle_webhook.{key}"] = value
    return settings


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, Driver(), hinkskalle_webhook)


@pytest.fixture
def webhooks(app):
    yield app.registry["hinkskalle_webhook"]
    app.registry["hinkskalle_webhook"].close()


@pytest.fixture
def headers(factory, db, webhooks):
    user = factory.user("test.hase")
    factory.container("test-hase/coll/cont", owner=user)
    factory.container("test-hase/a/b", owner=user)
    token = factory.token(user)
    db.commit()
    return auth_header(token)


def push(testapp, headers, path="test-hase/coll/cont", data=b"data", **query):
    url = PUSH.format(path=path) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return testapp.post(url, data, headers=headers)


def undelivered(caplog):
    return [r for r in caplog.records if r.name == "hinkskalle_webhook" and "not delivered" in r.getMessage()]


def wait_until(condition):
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_push_is_posted_signed(testapp, headers, receiver):
    push(testapp, headers, data=b"signed push")
    ((status, sent, body),) = receiver.wait_for(1)
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sent["X-Hinkskalle-Signature"] == expected
    assert sent["X-Hinkskalle-Event"] == "push"
    assert sent["Content-Type"] == "application/json"
    event = json.loads(body)
    assert (event["event"], event["repository"], event["actor"]) == ("push", "test-hase/coll/cont", "test.hase")
    assert event["digest"] == "sha256:" + hashlib.sha256(b"signed push").hexdigest()
    assert "path" not in event


def test_filters_by_kind_and_repository(testapp, headers, receiver, factory, db):
    # Each receiver gets its events in order: when the last one arrives, earlier ones would have.
    push(testapp, headers, path="test-hase/a/b", data=b"1")                       # push: sent
    testapp.get("/_test/library/pull/test-hase/a/b?ref=sha256:" + hashlib.sha256(b"1").hexdigest(),
                headers=headers)                                                 # pull: not wanted
    admin = factory.token(factory.user("admin.hase", admin=True))
    db.commit()
    push(testapp, auth_header(admin), path="somebody/else/here", data=b"2")      # repository filtered
    push(testapp, auth_header(admin), path="other/keep/this", data=b"3", tag="v1")  # push + tag: sent
    receiver.wait_for(3)
    assert [(e["event"], e["repository"]) for e in receiver.delivered()] == [
        ("push", "test-hase/a/b"), ("push", "other/keep/this"), ("tag", "other/keep/this")]


def test_failed_deliveries_are_retried(testapp, headers, receiver):
    receiver.statuses = [500, 503]
    push(testapp, headers)
    assert [status for status, _, _ in receiver.wait_for(3)] == [500, 503, 200]
    ids = {sent["X-Hinkskalle-Delivery"] for _, sent, _ in receiver.requests}
    assert len(ids) == 1     # the same delivery, retried


@pytest.mark.parametrize("urls", [[dead_url()]])
def test_dead_receiver_is_logged_and_does_not_fail_the_push(testapp, headers, caplog, recorder):
    caplog.set_level(logging.WARNING, logger="hinkskalle_webhook")
    push(testapp, headers, data=b"for nobody")
    assert recorder.of("push")
    wait_until(lambda: undelivered(caplog))
    attempts = [r for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) == 3      # the first try and two retries
    assert hashlib.sha256(b"for nobody").hexdigest() in undelivered(caplog)[0].getMessage()


@pytest.mark.parametrize("urls", [[dead_url().replace("http://", "http://hook:pw-in-url@") + "/T0/path-token"]])
def test_logs_do_not_show_credentials_or_paths_of_receiver_urls(testapp, headers, caplog, urls):
    """Receiver URLs often carry their secret (user:password, a token in the path)."""
    caplog.set_level(logging.WARNING, logger="hinkskalle_webhook")
    push(testapp, headers, data=b"for nobody")
    wait_until(lambda: undelivered(caplog))
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "pw-in-url" not in logged and "path-token" not in logged and "127.0.0.1" in logged


def test_slow_receiver_does_not_slow_pushes(testapp, headers, receiver):
    receiver.release.clear()             # the receiver hangs until released
    for n in range(3):
        push(testapp, headers, data=b"%d" % n)   # each returns while the receiver still hangs
    assert receiver.requests == []
    receiver.release.set()
    assert len(receiver.wait_for(3)) == 3


@pytest.mark.parametrize("options", [{"queue_size": "1", "retries": "0"}])
def test_full_queue_drops_and_logs(testapp, headers, receiver, caplog, webhooks):
    receiver.release.clear()
    push(testapp, headers, data=b"first")          # taken by the thread, hanging in the receiver
    wait_until(lambda: webhooks.receivers[0].queue.empty())
    push(testapp, headers, data=b"second")         # waits in the queue
    push(testapp, headers, data=b"third")          # queue full: dropped and logged
    assert len(undelivered(caplog)) == 1
    assert "queue full" in undelivered(caplog)[0].getMessage()
    receiver.release.set()
    receiver.wait_for(2)


def test_unknown_event_kind_is_a_settings_error():
    from hinkskalle.config import SettingsError
    with pytest.raises(SettingsError):
        hinkskalle_webhook.Webhooks({**dict.fromkeys(hinkskalle_webhook.SETTINGS), "events": ["pushes"],
                                     "urls": []})
