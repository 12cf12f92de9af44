"""Events are delivered after commit, exactly once, never for failed work; plugins cannot break requests."""
import logging
import textwrap

import pytest
from sqlalchemy import func, select

from hinkskalle import main
from hinkskalle.models import Image
from hinkskalle.plugins import PluginError, hookimpl, make_plugin_manager, plugin_list
from hinkskalle.testing import Driver, auth_header

PUSH = "/_test/{protocol}/push/hase/coll/cont"


class Broken:
    @hookimpl
    def hinkskalle_on_push(self, event):
        raise RuntimeError("this plugin is broken")

    @hookimpl
    def hinkskalle_on_tag(self, event):
        raise RuntimeError("this plugin is broken")


BROKEN = Broken()


@pytest.fixture
def extra_plugins(recorder):
    # Broken first: the recorder registered after it must still get every event.
    return (BROKEN, recorder, Driver())


@pytest.fixture
def token(factory, db):
    token = factory.token(factory.user("hase"))
    db.commit()
    return token


def images(db):
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Image))


@pytest.mark.parametrize("protocol", ["library", "oci"])
def test_one_push_one_event(testapp, token, recorder, protocol, caplog):
    with caplog.at_level(logging.ERROR, logger="hinkskalle.plugins"):
        body = testapp.post(PUSH.format(protocol=protocol) + "?tag=v1", b"image bytes",
                            headers=auth_header(token)).json
    push, = recorder.of("push")
    assert (push.repository, push.actor, push.protocol, push.digest, push.size) == \
        ("hase/coll/cont", "hase", protocol, body["digest"], len(b"image bytes"))
    assert push.image_id == body["id"] and push.path is None
    tag, = recorder.of("tag")
    assert (tag.tag, tag.action, tag.digest) == ("v1", "set", body["digest"])
    # The broken plugin was called, logged, and changed nothing for the client or the others.
    assert any("failed in hinkskalle_on_push" in r.getMessage() for r in caplog.records)


def test_pushing_the_same_image_again_is_no_new_push(testapp, token, recorder):
    testapp.post(PUSH.format(protocol="library"), b"image bytes", headers=auth_header(token))
    testapp.post(PUSH.format(protocol="library"), b"image bytes", headers=auth_header(token))
    assert len(recorder.of("push")) == 1


@pytest.mark.parametrize("protocol, reason_of", [
    ("library", lambda r: r.json["message"]),
    ("oci", lambda r: r.json["errors"][0]["detail"]),
])
def test_vetoed_push_delivers_nothing(testapp, token, recorder, db, protocol, reason_of):
    recorder.vetoes["push"] = "the scanner found a virus"
    response = testapp.post(PUSH.format(protocol=protocol) + "?tag=v1", b"image bytes",
                            headers=auth_header(token), status=403)
    assert reason_of(response) == "the scanner found a virus"
    assert recorder.events == [] and images(db) == 0


def test_failure_after_emit_delivers_nothing(testapp, token, recorder, db):
    """The push and the tag were queued, then the request failed: the transaction is rolled back."""
    testapp.post(PUSH.format(protocol="library") + "?tag=v1&fail=1", b"image bytes",
                 headers=auth_header(token), status=400)
    assert recorder.events == [] and images(db) == 0
    # and the next, successful request delivers only its own events
    testapp.post(PUSH.format(protocol="library"), b"other bytes", headers=auth_header(token))
    assert [e.kind for e in recorder.events] == ["push"]


class Typo:
    @hookimpl
    def hinkskalle_on_pusj(self, event):
        pass


def test_unknown_hook_implementation_fails_start_up():
    with pytest.raises(PluginError, match="hinkskalle_on_pusj"):
        make_plugin_manager({}, load_entrypoints=False, extra=(Typo(),))


@pytest.fixture
def installed_typo_plugin(tmp_path, monkeypatch):
    """A plugin distribution with a misspelt hook, installed through the `hinkskalle` entry point group."""
    (tmp_path / "typo_plugin.py").write_text(textwrap.dedent('''
        from hinkskalle import hookimpl

        @hookimpl
        def hinkskalle_on_pusj(event):
            pass
    '''))
    dist = tmp_path / "typo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hinkskalle]\ntypo = typo_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_server_start_stops_with_one_message_for_an_unknown_hook(installed_typo_plugin, capsys):
    with pytest.raises(SystemExit) as stopped:
        main({"here": str(installed_typo_plugin)})
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hinkskalle_on_pusj" in err[0] and "Traceback" not in err[0]


def test_a_setting_disables_named_plugins(installed_typo_plugin):
    pm = make_plugin_manager({"hinkskalle.plugins.disabled": ["typo", "ldap"]})
    names = {row["name"] for row in plugin_list(pm)}
    assert "local" in names and "typo" not in names and "ldap" not in names
    assert pm.is_blocked("typo") and pm.is_blocked("ldap")
    main({"here": str(installed_typo_plugin)}, **{"hinkskalle.plugins.disabled": "typo"})   # starts
