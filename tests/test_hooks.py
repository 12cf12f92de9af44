"""Every hook of hookspecs.py, exercised through the running application.

Pushes, pulls and deletes go through the `Driver` test plugin (hinkskalle.testing), whose
routes call services.registry like the protocol views do; tests/test_events_across_protocols.py
covers the real protocols. test_plugin_contract.py requires a `test_hook_<name>` here for
every hook.
"""
from __future__ import annotations

import base64
import hashlib
import textwrap

import pytest
from pyramid.authorization import Allow
from sqlalchemy import select
from sqlalchemy.orm import Session

from hinkskalle import cli
from hinkskalle.models import Image, User
from hinkskalle.plugins import hookimpl
from hinkskalle.testing import Driver, auth_header

PUSH = "/_test/{protocol}/push/test-hase/coll/cont"
PULL = "/_test/library/pull/test-hase/coll/cont"
DATA = b"not really a SIF, but bytes all the same"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


class Extension:
    """The plugin under test: one implementation of each hook that has no event."""

    def __init__(self):
        self.committed = []        # what a fresh session saw from inside hinkskalle_on_push

    @hookimpl
    def hinkskalle_configure(self, config):
        config.add_route("library.hello", "/_hello")
        config.add_view(lambda request: {"hello": config.get_settings().get("test_hooks.greeting")},
                        route_name="library.hello", renderer="json",
                        permission="__no_permission_required__")
        config.add_route("library.team", "/_team", factory=TeamArea)
        config.add_view(lambda request: {"team": "blue"}, route_name="library.team", renderer="json",
                        permission="team-area")

    @hookimpl
    def hinkskalle_authenticate(self, request, username, password):
        if (username, password) != ("robot", "beep-boop"):
            return None
        user = request.dbsession.scalar(select(User).where(User.username == "robot"))
        if user is None:   # an authentication plugin may create the local account
            user = User(username="robot", email="robot@example.com", source="robots")
            request.dbsession.add(user)
            request.dbsession.flush()
        return user

    @hookimpl
    def hinkskalle_principals(self, request, user):
        return ["team:blue"] if user.username == "robot" else None

    @hookimpl
    def hinkskalle_on_push(self, event, registry):
        with Session(registry["dbengine"]) as session:
            self.committed.append(session.scalar(select(Image.digest).where(Image.id == event.image_id)))


class TeamArea:
    """A resource whose ACL grants a permission to the principal the plugin adds."""
    __acl__ = [(Allow, "team:blue", "team-area")]

    def __init__(self, request):
        pass


@pytest.fixture
def extension():
    return Extension()


@pytest.fixture
def extra_plugins(recorder, extension):
    return (recorder, Driver(), extension)


@pytest.fixture
def settings(settings):
    settings["test_hooks.greeting"] = "moin"
    return settings


@pytest.fixture
def pusher(factory, db):
    user = factory.user("test.hase")
    factory.container("test-hase/coll/cont", owner=user)
    token = factory.token(user)
    db.commit()
    return auth_header(token)


def push(testapp, headers, protocol="library", status=200, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return testapp.post(PUSH.format(protocol=protocol) + (f"?{query}" if query else ""), DATA,
                        headers=headers, status=status)


def test_hook_hinkskalle_configure(testapp):
    assert testapp.get("/_hello").json == {"hello": "moin"}


def test_hook_hinkskalle_add_commands(tmp_path, monkeypatch, capsys):
    # A real (if tiny) installed distribution: a dist-info with an entry point on sys.path.
    (tmp_path / "hinkskalle_hello.py").write_text(textwrap.dedent('''
        import click
        from hinkskalle import hookimpl

        @hookimpl
        def hinkskalle_add_commands(cli):
            @cli.command("hello")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")
    '''))
    dist = tmp_path / "hinkskalle_hello-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hinkskalle-hello\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[hinkskalle]\nhello = hinkskalle_hello\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ini = tmp_path / "test.ini"
    ini.write_text(f"[app:main]\nuse = egg:hinkskalle\nsqlalchemy.url = sqlite:///{tmp_path}/x.db\n"
                   f"hinkskalle.storage.path = {tmp_path}/store\n")
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["-c", str(ini), "hello"])
        assert exit_.value.code == 0
        assert "hello from a plugin" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            cli.main(["-c", str(ini), "plugins", "list"])
        listing = capsys.readouterr().out
        assert any(line.startswith("hello ") and "hinkskalle-hello 1.2" in line
                   and "hinkskalle_add_commands" in line for line in listing.splitlines())
    finally:
        cli.cli.commands.pop("hello", None)


def test_hook_hinkskalle_authenticate(testapp, db):
    creds = base64.b64encode(b"robot:beep-boop").decode()
    testapp.get("/v2/", headers={"Authorization": f"Basic {creds}"}, status=200)
    assert db.scalar(select(User.source).where(User.username == "robot")) == "robots"
    wrong = base64.b64encode(b"robot:beep").decode()
    testapp.get("/v2/", headers={"Authorization": f"Basic {wrong}"}, status=401)


def test_hook_hinkskalle_principals(testapp, factory, db):
    other = factory.token(factory.user("user.hase"))
    db.commit()
    creds = base64.b64encode(b"robot:beep-boop").decode()
    assert testapp.get("/_team", headers={"Authorization": f"Basic {creds}"}).json == {"team": "blue"}
    testapp.get("/_team", headers=auth_header(other), status=403)


@pytest.mark.parametrize("protocol", ["library", "oci"])
def test_hook_hinkskalle_check_push(testapp, pusher, recorder, db, protocol):
    recorder.vetoes["push"] = "images must be signed here"
    response = push(testapp, pusher, protocol=protocol, status=403)
    if protocol == "library":
        assert response.json == {"message": "images must be signed here"}
    else:
        assert response.json["errors"][0]["code"] == "DENIED"
        assert response.json["errors"][0]["detail"] == "images must be signed here"
    assert db.scalar(select(Image).where(Image.digest == DIGEST)) is None
    assert recorder.events == []


def test_hook_hinkskalle_check_pull(testapp, pusher, recorder, db):
    push(testapp, pusher, tag="latest")
    recorder.events.clear()
    recorder.vetoes["pull"] = "quarantined"
    response = testapp.get(PULL + "?ref=latest", headers=pusher, status=403)
    assert response.json == {"message": "quarantined"}
    assert recorder.events == []
    assert db.scalar(select(Image.download_count).where(Image.digest == DIGEST)) == 0
    recorder.vetoes.clear()
    assert testapp.get(PULL + "?ref=latest", headers=pusher).body == DATA


def test_hook_hinkskalle_on_push(testapp, pusher, recorder, extension):
    body = push(testapp, pusher, protocol="oci").json
    (event,) = recorder.of("push")
    assert (event.repository, event.actor, event.address, event.protocol) == \
        ("test-hase/coll/cont", "test.hase", "127.0.0.1", "oci")
    assert (event.digest, event.size, event.image_id, event.path) == (DIGEST, len(DATA), body["id"], None)
    assert extension.committed == [DIGEST]     # delivered after the commit: visible to others
    push(testapp, pusher, protocol="oci")      # the same image again is no new push
    assert len(recorder.of("push")) == 1


def test_hook_hinkskalle_on_push_not_delivered_without_commit(testapp, pusher, recorder, db):
    push(testapp, pusher, tag="latest", fail=1, status=400)
    assert recorder.events == []
    assert db.scalar(select(Image).where(Image.digest == DIGEST)) is None


def test_hook_hinkskalle_on_pull(testapp, pusher, recorder):
    push(testapp, pusher, tag="latest")
    testapp.get(PULL + "?ref=latest", headers=pusher)
    (event,) = recorder.of("pull")
    assert (event.repository, event.actor, event.digest, event.size, event.reference, event.protocol) == \
        ("test-hase/coll/cont", "test.hase", DIGEST, len(DATA), "latest", "library")


def test_hook_hinkskalle_on_tag(testapp, pusher, recorder):
    push(testapp, pusher, tag="v1", arch="arm64")
    (event,) = recorder.of("tag")
    assert (event.tag, event.arch, event.digest, event.action, event.repository) == \
        ("v1", "arm64", DIGEST, "set", "test-hase/coll/cont")


def test_hook_hinkskalle_on_delete(testapp, pusher, recorder, db):
    push(testapp, pusher)
    testapp.delete(f"/_test/oci/image/test-hase/coll/cont?digest={DIGEST}", headers=pusher)
    (event,) = recorder.of("delete")
    assert (event.target, event.digest, event.repository, event.protocol, event.actor) == \
        ("image", DIGEST, "test-hase/coll/cont", "oci", "test.hase")
    assert db.scalar(select(Image).where(Image.digest == DIGEST)) is None


def test_hook_hinkskalle_on_login(testapp, factory, db, recorder, extension):
    factory.user("user.hase", password="geheim")
    db.commit()
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "geheim"})
    testapp.post_json("/v1/get-token", {"username": "User.Hase", "password": "falsch"}, status=401)
    testapp.post_json("/v1/get-token", {"username": "robot", "password": "beep-boop"})   # a plugin's method
    logins = recorder.of("login")
    assert [(e.actor, e.success, e.method, e.address) for e in logins] == [
        ("user.hase", True, "password", "127.0.0.1"), ("user.hase", False, "password", "127.0.0.1"),
        ("robot", True, "password", "127.0.0.1")]
