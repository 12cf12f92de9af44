"""The audit log records logins, pushes, pulls, tags and deletes, one JSON line each."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest
from pyramid.config import Configurator

import hinkskalle_audit
from hinkskalle.events import PullEvent
from hinkskalle.testing import Driver, auth_header

DATA = b"audited bytes"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()
BASE = "/_test/{protocol}/{action}/test-hase/coll/cont"


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, Driver(), hinkskalle_audit)


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "audit" / "audit.jsonl"


@pytest.fixture
def settings(settings, log_path):
    settings["hinkskalle_audit.path"] = str(log_path)
    settings["hinkskalle_audit.fsync"] = "true"
    return settings


@pytest.fixture
def token(factory, db):
    user = factory.user("test.hase", password="geheim")
    factory.container("test-hase/coll/cont", owner=user)
    token = factory.token(user)
    db.commit()
    return token


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_push_tag_pull_delete_are_logged(testapp, token, log_path):
    headers = dict(auth_header(token), REMOTE_ADDR="10.1.2.3")
    testapp.post(BASE.format(protocol="oci", action="push") + "?tag=v1", DATA, headers=headers,
                 extra_environ={"REMOTE_ADDR": "10.1.2.3"})
    testapp.get(BASE.format(protocol="library", action="pull") + "?ref=v1", headers=headers)
    testapp.delete(BASE.format(protocol="library", action="image") + f"?digest={DIGEST}", headers=headers)
    records = lines(log_path)
    assert [r["event"] for r in records] == ["push", "tag", "pull", "delete"]
    for record in records:
        assert record["actor"] == "test.hase"
        assert record["repository"] == "test-hase/coll/cont"
        assert record["digest"] == DIGEST
        assert record["time"].endswith("+00:00")
        assert "path" not in record
    assert records[0]["address"] == "10.1.2.3"
    assert (records[0]["protocol"], records[0]["size"]) == ("oci", len(DATA))
    assert (records[1]["tag"], records[1]["action"]) == ("v1", "set")
    assert records[2]["reference"] == "v1"


def test_failed_push_is_not_logged(testapp, token, log_path):
    testapp.post(BASE.format(protocol="library", action="push") + "?fail=1", DATA,
                 headers=auth_header(token), status=400)
    assert not log_path.exists()


def test_logins_are_logged_also_when_they_fail(testapp, token, log_path):
    testapp.post_json("/v1/get-token", {"username": "test.hase", "password": "geheim"})
    testapp.post_json("/v1/get-token", {"username": "test.hase", "password": "falsch"}, status=401)
    logins = [r for r in lines(log_path) if r["event"] == "login"]
    assert [(r["actor"], r["success"], r["address"]) for r in logins] == \
        [("test.hase", True, "127.0.0.1"), ("test.hase", False, "127.0.0.1")]


def test_concurrent_writers_never_interleave_lines(tmp_path):
    audit = hinkskalle_audit.AuditLog(str(tmp_path / "audit.jsonl"))
    event = PullEvent(repository="a/b/" + "c" * 5000, actor="x", address=None, protocol="oci")

    def write_many():
        for _ in range(200):
            audit.write(event)

    threads = [threading.Thread(target=write_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lines(tmp_path / "audit.jsonl")) == 1600


def test_without_a_path_the_plugin_is_inactive():
    config = Configurator(settings={})
    hinkskalle_audit.hinkskalle_configure(config)
    assert "hinkskalle_audit" not in config.registry
    hinkskalle_audit.hinkskalle_on_push(event=PullEvent("a/b/c", None, None, "oci"), registry=config.registry)
