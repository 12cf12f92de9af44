"""Stars, /v1/latest, admin job records (/v1/adm) and LDAP status/ping."""
from __future__ import annotations

from datetime import timedelta

import pytest

from hinkskalle.models import Adm, Image, Tag, User
from hinkskalle.models.meta import utcnow
from hinkskalle.models.registry import SIF_MEDIA_TYPE


def add_tagged_image(db, container, name="latest", content=b"x", created_at=None):
    import hashlib
    image = Image(container=container, digest="sha256:" + hashlib.sha256(content).hexdigest(), size=len(content),
                  upload_state="completed", media_type=SIF_MEDIA_TYPE, owner=container.owner)
    tag = Tag(container=container, name=name, arch="amd64", image=image)
    if created_at is not None:
        tag.created_at = created_at
    db.add_all([image, tag])
    db.flush()
    return image


# -- stars ------------------------------------------------------------------------------------

def test_stars(testapp, users, factory, db):
    public = factory.container("other.hase/c/public", owner=users["other"])
    private = factory.container("other.hase/c/private", owner=users["other"], private=True)
    mine = factory.container("user.hase/c/mine", owner=users["user"], private=True)
    db.commit()
    h = users["as_user"]
    assert testapp.get("/v1/users/user.hase/stars", headers=h).json["data"] == []
    data = testapp.post(f"/v1/users/user.hase/stars/{public.id}", headers=h).json["data"]
    assert [c["name"] for c in data] == ["public"] and data[0]["stars"] == 1
    testapp.post(f"/v1/users/user.hase/stars/{public.id}", headers=h)             # idempotent
    testapp.post(f"/v1/users/user.hase/stars/{mine.id}", headers=h)
    testapp.post(f"/v1/users/user.hase/stars/{private.id}", headers=h, status=403)
    testapp.post("/v1/users/user.hase/stars/999999", headers=h, status=404)
    testapp.post("/v1/users/user.hase/stars/abc", headers=h, status=404)
    assert [c["name"] for c in testapp.get("/v1/users/user.hase/stars", headers=h).json["data"]] == ["public", "mine"]
    # Only self or admin.
    testapp.get("/v1/users/user.hase/stars", headers=users["as_other"], status=403)
    testapp.post(f"/v1/users/user.hase/stars/{public.id}", headers=users["as_other"], status=403)
    assert len(testapp.get("/v1/users/user.hase/stars", headers=users["as_admin"]).json["data"]) == 2
    data = testapp.delete(f"/v1/users/user.hase/stars/{public.id}", headers=h).json["data"]
    assert [c["name"] for c in data] == ["mine"]
    testapp.delete(f"/v1/users/user.hase/stars/{public.id}", headers=h, status=404)


def test_stars_hide_containers_that_became_unreadable(testapp, users, factory, db):
    container = factory.container("other.hase/c/public", owner=users["other"])
    db.commit()
    testapp.post(f"/v1/users/user.hase/stars/{container.id}", headers=users["as_user"])
    container.private = True
    db.commit()
    assert testapp.get("/v1/users/user.hase/stars", headers=users["as_user"]).json["data"] == []


# -- latest -----------------------------------------------------------------------------------

def test_latest_newest_first_and_only_readable(testapp, users, factory, db):
    now = utcnow()
    for i in range(12):
        container = factory.container(f"other.hase/c/cont{i:02}", owner=users["other"], private=(i == 11))
        add_tagged_image(db, container, content=f"{i}".encode(), created_at=now - timedelta(minutes=100 - i))
        if i == 10:
            add_tagged_image(db, container, name="v2", content=b"v2", created_at=now - timedelta(minutes=200))
    db.commit()
    data = testapp.get("/v1/latest", headers=users["as_user"]).json["data"]
    names = [entry["container"]["name"] for entry in data]
    # cont11 is private: skipped; ten containers, newest first.
    assert names == [f"cont{i:02}" for i in range(10, 0, -1)]
    # All tags of a listed container are there, even older ones.
    assert [(t["name"], t["imageType"], t["manifestType"]) for t in data[0]["tags"]] == [
        ("latest", "singularity", None), ("v2", "singularity", None)]
    owner_view = [e["container"]["name"] for e in testapp.get("/v1/latest", headers=users["as_other"]).json["data"]]
    assert owner_view[0] == "cont11"
    testapp.get("/v1/latest", status=401)


# -- adm --------------------------------------------------------------------------------------

def test_adm_records(testapp, users):
    h = users["as_admin"]
    testapp.get("/v1/adm/check_quotas", headers=h, status=404)
    testapp.get("/v1/adm/check_quotas", headers=users["as_user"], status=403)
    testapp.get("/v1/adm/nonsense", headers=h, status=404)
    data = testapp.put_json("/v1/adm/check_quotas", {"val": {"note": 1}}, headers=h).json["data"]
    assert data == {"key": "check_quotas", "val": {"note": 1}}
    assert testapp.get("/v1/adm/check_quotas", headers=h).json["data"]["val"] == {"note": 1}
    testapp.put_json("/v1/adm/nonsense", {"val": {}}, headers=h, status=400)
    testapp.put_json("/v1/adm/check_quotas", {"val": 5}, headers=h, status=400)
    testapp.put_json("/v1/adm/check_quotas", {"value": {}}, headers=h, status=400)


def test_adm_run_jobs(testapp, users, factory, db):
    container = factory.container("user.hase/c/old", owner=users["user"])
    add_tagged_image(db, container).expires_at = utcnow() - timedelta(days=1)
    db.commit()
    h = users["as_admin"]
    job = testapp.post("/v1/adm/expire_images/run", headers=h).json["data"]
    assert job["status"] == "finished" and job["result"]["updated"] == 1
    assert testapp.get("/v1/adm/expire_images", headers=h).json["data"]["val"]["updated"] == 1
    job = testapp.post("/v1/adm/check_quotas/run", headers=h).json["data"]
    assert job["result"]["success"] is True
    testapp.post("/v1/adm/nonsense/run", headers=h, status=406)
    testapp.post("/v1/adm/check_quotas/run", headers=users["as_user"], status=403)
    # LDAP sync without LDAP: a clear error, and the failure is recorded.
    r = testapp.post("/v1/adm/ldap_sync_results/run", headers=h, status=406)
    assert r.json["message"] == "LDAP not configured."
    val = testapp.get("/v1/adm/ldap_sync_results", headers=h).json["data"]["val"]
    assert val["success"] is False and "LDAP not configured" in val["exception"]


# -- LDAP status ------------------------------------------------------------------------------

def test_ldap_status_disabled(testapp, users):
    h = users["as_admin"]
    assert testapp.get("/v1/ldap/status", headers=h).json["data"] == {"status": "disabled"}
    assert testapp.get("/v1/ldap/ping", headers=h).json["data"] == {"status": "failed", "error": "LDAP not configured."}
    testapp.get("/v1/ldap/status", headers=users["as_user"], status=403)
    testapp.get("/v1/ldap/ping", status=401)


class TestWithSlapd:
    pytestmark = pytest.mark.e2e

    @pytest.fixture
    def extra_settings(self, slapd):
        return dict(slapd.settings)

    def test_status_ping_and_sync(self, testapp, users, db):
        h = users["as_admin"]
        data = testapp.get("/v1/ldap/status", headers=h).json["data"]
        assert data["status"] == "configured"
        assert "bind_password" not in data["config"] and data["config"]["bind_dn"].startswith("cn=admin")
        assert testapp.get("/v1/ldap/ping", headers=h).json["data"] == {"status": "ok"}
        job = testapp.post("/v1/ldap/sync", headers=h).json["data"]
        assert "ldap.hase" in job["result"]["synced"]
        assert "cn=clash,ou=people,dc=example,dc=org" in job["result"]["conflict"]   # user.hase is local
        assert db.query(User).filter_by(username="ldap.hase").one().source == "ldap"


class TestLdapDown:
    @pytest.fixture
    def extra_settings(self, dead_ldap_url):
        return {"hinkskalle.ldap.enabled": True, "hinkskalle.ldap.url": dead_ldap_url,
                "hinkskalle.ldap.timeout": 1}

    def test_ping_and_sync_report_the_failure(self, testapp, users, db):
        h = users["as_admin"]
        data = testapp.get("/v1/ldap/ping", headers=h).json["data"]
        assert data["status"] == "failed" and "unavailable" in data["error"]
        testapp.post("/v1/adm/ldap_sync_results/run", headers=h, status=503)
        db.expire_all()
        assert db.get(Adm, "ldap_sync_results").val["success"] is False
