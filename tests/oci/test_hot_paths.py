"""Manifest GETs are cheap: one or two SELECTs, no writes; download counters are written in batches."""
from __future__ import annotations

import pytest
import webtest

from sqlalchemy import select

from hinkskalle.models import Container, Image, Manifest, Tag
from hinkskalle.resources import find_container, take_found_tag
from hinkskalle.services.counters import DownloadCounter
from hinkskalle.testing import Factory, selects_and_writes, statements

from .conftest import Client, image_manifest, sha
from .test_token import basic

NAME = "hase/coll/cont"


def batched(app) -> DownloadCounter:
    """Swap the app's counter for one that only writes when flushed."""
    counter = DownloadCounter(app.registry["dbwrite_session_factory"], interval=3600)
    app.registry["download_counter"] = counter
    return counter


def test_manifest_get_by_tag_is_one_select_once_the_registry_token_is_known(app, testapp, hase, engine, db,
                                                                      factory, accounts):
    _, digest = hase.push_image(NAME)
    group = factory.group("herde", members={accounts["hase"][0]: "readonly", accounts["igel"][0]: "admin"})
    factory.group("rudel", members={accounts["hase"][0]: "contributor"})
    db.commit()
    assert group.id
    token = testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"},
                        headers=basic("hase", "geheim")).json["token"]
    client = Client(testapp, token)
    counter = batched(app)
    # The first request loads the token's user with its groups; later ones (within the
    # cache's few seconds) only find the repository with its parents and, in the same
    # query, the tag with its manifest; or then the manifest by digest.
    for reference, most in (("latest", 2), ("latest", 1), (digest, 2)):
        with statements(engine) as seen:
            client.get(f"/v2/{NAME}/manifests/{reference}")
        selects, writes = selects_and_writes(seen)
        assert len(selects) <= most, seen
        assert not writes, seen
    # The pulls are counted once the batch is written.
    assert db.scalar(select(Manifest.download_count).where(Manifest.digest == digest)) == 0
    counter.flush()
    db.expire_all()
    assert db.scalar(select(Manifest.download_count).where(Manifest.digest == digest)) == 3
    container = db.scalar(select(Container).where(Container.name == "cont"))
    assert container.download_count == 3 and container.latest_download is not None


def test_batched_counters_add_up_across_flushes(app, hase, db):
    hase.push_blob(NAME, b"some layer")
    counter = batched(app)
    for _ in range(3):
        hase.get(f"/v2/{NAME}/blobs/{sha(b'some layer')}")
    hase.head(f"/v2/{NAME}/blobs/{sha(b'some layer')}")      # HEAD is no download
    counter.flush()
    hase.get(f"/v2/{NAME}/blobs/{sha(b'some layer')}")
    counter.flush()
    counter.flush()                                            # nothing pending: no change
    image = db.scalar(select(Image).where(Image.digest == sha(b"some layer")))
    assert image.download_count == 4
    assert db.get(Container, image.container_id).download_count == 4


def test_request_sessions_join_the_transaction_without_registering_listeners_each_time(
        app, hase, db, monkeypatch):
    import zope.sqlalchemy
    registered = []
    monkeypatch.setattr(zope.sqlalchemy, "register", lambda *a, **kw: registered.append(a))
    hase.push_blob(NAME, b"layer")                     # writes: committed with the request
    hase.get(f"/v2/{NAME}/blobs/{sha(b'layer')}")
    assert registered == []                            # the factories joined once, at start-up
    assert db.scalar(select(Image).where(Image.digest == sha(b"layer"))).completed
    # A request that fails after writing leaves nothing: the repository it created for the
    # manifest is rolled back with it when the manifest names unknown blobs.
    hase.push_manifest("hase/coll/fresh", "latest", image_manifest(b"{}", b"never pushed"), status=400)
    assert db.scalar(select(Container).where(Container.name == "fresh")) is None


def test_the_transaction_manager_is_explicit_and_one_per_thread():
    import threading

    from transaction.interfaces import NoTransaction

    from hinkskalle.models import ThreadTransactionManager
    manager = ThreadTransactionManager()
    with pytest.raises(NoTransaction):
        manager.get()                                  # nothing outside the tween's begin/commit
    mine = manager.begin()
    seen = []
    elsewhere = threading.Thread(target=lambda: seen.append(
        (manager.begin(), manager.get(), manager.abort())))
    elsewhere.start()
    elsewhere.join(10)
    assert seen and seen[0][0] is not mine and manager.get() is mine
    manager.abort()


def test_a_failed_commit_does_not_break_the_next_request_of_the_thread(app, hase, db, monkeypatch):
    from zope.sqlalchemy.datamanager import SessionDataManager
    real_vote = SessionDataManager.tpc_vote
    failures = []

    def vote_once(self, trans):
        if not failures:
            failures.append(trans)
            raise RuntimeError("database is locked")       # as SQLite may say at COMMIT
        return real_vote(self, trans)

    monkeypatch.setattr(SessionDataManager, "tpc_vote", vote_once)
    hase.push_blob(NAME, b"first try", status=500)
    assert failures and db.scalar(select(Image).where(Image.digest == sha(b"first try"))) is None
    # webtest runs every request on this thread: the failed transaction must be gone.
    hase.push_blob(NAME, b"first try")
    assert db.scalar(select(Image).where(Image.digest == sha(b"first try"))).completed


def test_request_methods_live_on_one_class_made_at_start_up(app, testapp, settings, monkeypatch):
    """add_request_method's methods and properties (ours, the plugins') are baked into one
    request class: Pyramid no longer builds a class per request to hold them."""
    from pyramid.interfaces import IRequestExtensions
    from pyramid.security import NO_PERMISSION_REQUIRED
    from pyramid.util import InstancePropertyHelper

    from hinkskalle import bake_request_extensions, make_config

    assert app.registry.queryUtility(IRequestExtensions) is None
    for name in ("dbsession", "blobstore", "hook", "emit", "client_address", "user"):
        assert name in vars(app.request_factory), name
    applied = []
    monkeypatch.setattr(InstancePropertyHelper, "apply_properties",
                        classmethod(lambda cls, target, props: applied.append(props)))
    testapp.get("/v2/", status=401)
    testapp.get("/version")
    assert applied == []
    # A request method added after start-up is still there, beside the baked ones.
    monkeypatch.undo()
    config = make_config(settings)
    bake_request_extensions(config)
    config.add_request_method(lambda request: request.blobstore is not None, "late", reify=True)
    config.add_route("late", "/late")
    config.add_view(lambda request: {"late": request.late}, route_name="late", renderer="json",
                    permission=NO_PERMISSION_REQUIRED)
    late = webtest.TestApp(config.make_wsgi_app())
    assert late.get("/late").json == {"late": True}


@pytest.mark.parametrize("extra_plugins", [()])         # no plugin reads pulls
def test_a_pull_nobody_listens_to_builds_no_event_and_is_still_counted(app, hase, db, monkeypatch):
    import hinkskalle.services.registry as registry
    hase.push_blob(NAME, b"layer")
    monkeypatch.setattr(registry, "PullEvent", lambda **kw: pytest.fail("a PullEvent nobody reads"))
    hase.get(f"/v2/{NAME}/blobs/{sha(b'layer')}")
    assert db.scalar(select(Image.download_count).where(Image.digest == sha(b"layer"))) == 1


def test_a_tag_found_with_its_container_is_used_once(dbsession):
    container = Factory(dbsession).container("hase/coll/cont")
    dbsession.add(Tag(container=container, name="latest", arch="amd64"))
    dbsession.flush()
    dbsession.expunge_all()
    found = find_container(dbsession, "hase", "coll", "cont", tag=("latest", "amd64"))
    looked_up, tag = take_found_tag(found, "latest", "amd64")
    assert looked_up and tag.name == "latest" and tag.container_id == found.id
    assert take_found_tag(found, "latest", "amd64") == (False, None)     # later: from the database
    assert take_found_tag(found, "other", "amd64") == (False, None)
    missing = find_container(dbsession, "hase", "coll", "cont", tag=("nope", "amd64"))
    assert take_found_tag(missing, "nope", "amd64") == (True, None)
