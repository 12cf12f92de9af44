"""Quota rules, `hinkskalle quotas check`, `hinkskalle expire` and `hinkskalle ldap sync`."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hinkskalle.errors import QuotaExceeded
from hinkskalle.models import Adm, Entity, Image, Tag, User
from hinkskalle.models.meta import utcnow
from hinkskalle.services import quotas
from hinkskalle.services.gc import collect
from hinkskalle.services.storage import BlobStore


def image(db, container, content: bytes, owner, store=None, **kw) -> Image:
    if store is not None:
        digest, size = store.ingest([content])
    else:
        import hashlib
        digest, size = "sha256:" + hashlib.sha256(content).hexdigest(), len(content)
    row = Image(container=container, digest=digest, size=size, upload_state="completed", owner=owner, **kw)
    db.add(row)
    db.flush()
    return row


# -- usage rules ------------------------------------------------------------------------------

def test_user_usage_counts_distinct_digests_wherever_pushed(db, factory):
    hase, igel = factory.user("hase"), factory.user("igel")
    one = factory.container("hase/c/one", owner=hase)
    two = factory.container("igel/c/two", owner=igel)
    image(db, one, b"a" * 100, hase)
    image(db, two, b"a" * 100, hase)          # same digest again: counts once
    image(db, two, b"b" * 50, hase)
    image(db, one, b"c" * 7, igel)            # pushed by igel into hase's container
    pending = image(db, one, b"d" * 1000, hase)
    pending.upload_state = "uploading"       # not completed: not counted
    db.flush()
    assert quotas.user_usage(db, hase) == 150
    assert quotas.user_usage(db, igel) == 7


def test_same_image_pushed_by_two_users_counts_for_each(db, factory):
    hase, igel = factory.user("hase"), factory.user("igel")
    image(db, factory.container("hase/c/one", owner=hase), b"x" * 10, hase)
    image(db, factory.container("igel/c/one", owner=igel), b"x" * 10, igel)
    assert quotas.user_usage(db, hase) == quotas.user_usage(db, igel) == 10


def test_group_usage_and_enforcement(db, factory):
    hase = factory.user("hase", quota=1000)
    group = factory.group("Gruppe", members={hase: "contributor"}, quota=100)
    entity = db.query(Entity).filter_by(name="gruppe").one()
    cont = factory.container("gruppe/c/one", owner=hase)
    image(db, cont, b"g" * 60, hase)
    image(db, factory.container("gruppe/c/two", owner=hase), b"g" * 60, hase)   # same digest
    assert quotas.entity_usage(db, entity) == 60
    quotas.check(db, hase, entity, "sha256:new", 40)                # exactly full is fine
    with pytest.raises(QuotaExceeded, match="group Gruppe"):
        quotas.check(db, hase, entity, "sha256:new", 41)
    # The same digest again costs nothing.
    quotas.check(db, hase, entity, db.query(Image).first().digest, 60)
    # The user's own quota applies as well.
    hase.quota = 70
    with pytest.raises(QuotaExceeded, match="user hase"):
        quotas.check(db, hase, entity, "sha256:new", 11)
    group.quota = 0
    hase.quota = 0
    quotas.check(db, hase, entity, "sha256:new", 10**12)          # 0 = unlimited


def test_quotas_check_recomputes_usage(db, factory, ini, hinkskalle):
    hase = factory.user("hase", quota=50)
    cont = factory.container("hase/c/one", owner=hase)
    image(db, cont, b"a" * 100, hase)
    hase.used_quota = 0
    db.commit()
    result = hinkskalle(ini(), "quotas", "check")
    assert "over quota: user hase: 100 of 50 bytes" in result.output
    db.expire_all()
    assert db.query(User).filter_by(username="hase").one().used_quota == 100
    assert db.query(Entity).filter_by(name="hase").one().used_quota == 100
    val = db.get(Adm, "check_quotas").val
    assert val["success"] is True and val["total_space"] == 100


# -- expiry --------------------------------------------------------------------------------

def test_expire_deletes_rows_and_leaves_shared_blobs(db, factory, ini, settings, hinkskalle):
    store = BlobStore(settings["hinkskalle.storage.path"])
    hase = factory.user("hase")
    one = factory.container("hase/c/one", owner=hase)
    two = factory.container("hase/c/two", owner=hase)
    past, future = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    gone = image(db, one, b"only-here", hase, store, expires_at=past)
    shared_old = image(db, one, b"shared", hase, store, expires_at=past)
    image(db, two, b"shared", hase, store)                           # the same blob, still needed
    kept = image(db, one, b"later", hase, store, expires_at=future)
    db.add(Tag(container=one, name="latest", arch="amd64", image=gone))
    db.commit()
    gone_digest, shared_digest = gone.digest, shared_old.digest

    result = hinkskalle(ini(), "expire")
    assert "expired 2 images" in result.output
    db.expire_all()
    assert {i.digest for i in db.query(Image)} == {shared_digest, kept.digest}
    assert db.query(Tag).count() == 0
    assert db.get(Adm, "expire_images").val["space_reclaimed"] == len(b"only-here")
    # Expiry never removes files; gc removes only what nothing references.
    assert store.exists(gone_digest) and store.exists(shared_digest)
    from hinkskalle.models import get_session_factory
    collect(get_session_factory(db.get_bind()), store, grace=0)
    assert not store.exists(gone_digest)
    assert store.exists(shared_digest) and store.exists(kept.digest)
    # Nothing left to expire.
    assert "expired 0 images" in hinkskalle(ini(), "expire").output


# -- ldap sync ------------------------------------------------------------------------------

@pytest.mark.e2e
def test_ldap_sync_command(db, ini, slapd, hinkskalle):
    values = {k: v for k, v in slapd.settings.items()}
    result = hinkskalle(ini(**values), "ldap", "sync")
    assert result.output.startswith("synced 4 users, 0 conflicts")
    db.expire_all()
    assert db.query(User).filter_by(source="ldap").count() == 4
    assert db.get(Adm, "ldap_sync_results").val["success"] is True


def test_ldap_sync_disabled_or_down(db, ini, dead_ldap_url, hinkskalle):
    result = hinkskalle(ini(), "ldap", "sync", code=1)
    assert "LDAP not configured" in result.output
    result = hinkskalle(ini(**{"hinkskalle.ldap.enabled": "true", "hinkskalle.ldap.url": dead_ldap_url,
                               "hinkskalle.ldap.timeout": "1"}), "ldap", "sync", code=1)
    assert "LDAP server unavailable" in result.output
    db.expire_all()
    assert db.get(Adm, "ldap_sync_results").val["success"] is False


# -- enforcement over both protocols ---------------------------------------------------------

def test_group_quota_is_enforced_on_pushes_of_both_protocols(testapp, db, factory):
    import hashlib
    import os
    from pathlib import Path

    from hinkskalle.testing import auth_header
    fixtures = Path(os.environ.get("HINKSKALLE_FIXTURES",
                                   Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures")).resolve()
    sif = (fixtures / "tiny.sif").read_bytes()
    hase = factory.user("hase")                      # no quota of her own
    factory.group("team", members={hase: "contributor"}, quota=len(sif) + 10)
    container = factory.container("team/c/box", owner=hase)
    headers = auth_header(factory.token(hase))
    db.commit()
    # Library: the SIF fits the group quota.
    created = testapp.post_json("/v1/images", {"hash": "sha256." + hashlib.sha256(sif).hexdigest(),
                                               "container": str(container.id)}, headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{created['id']}", sif, headers=headers)
    # OCI: 11 more bytes would exceed it: refused with the reason, nothing visible.
    blob = b"x" * 11
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    response = testapp.post(f"/v2/team/c/box/blobs/uploads/?digest={digest}", blob, status=413,
                            headers=dict(headers, **{"Content-Type": "application/octet-stream"}))
    assert response.json["errors"][0]["code"] == "DENIED"
    assert "group team" in response.json["errors"][0]["detail"]
    testapp.head(f"/v2/team/c/box/blobs/{digest}", headers=headers, status=404)
    db.expire_all()
    assert db.query(Entity).filter_by(name="team").one().used_quota == len(sif)
    # A user quota is enforced beside it.
    db.query(User).filter_by(username="hase").one().quota = 5
    db.query(Entity).filter_by(name="team").one().group.quota = 0
    db.commit()
    response = testapp.post(f"/v2/team/c/box/blobs/uploads/?digest={digest}", blob, status=413,
                            headers=dict(headers, **{"Content-Type": "application/octet-stream"}))
    assert "user hase" in response.json["errors"][0]["detail"]
