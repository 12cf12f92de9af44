"""Groups: create (creator = group admin, entity = slug), read/edit rights, members, delete."""
from __future__ import annotations

import pytest

from hinkskalle.models import Collection, Entity, Group


def make_group(testapp, headers, name="Test Gruppe", **kw):
    return testapp.post_json("/v1/groups", dict({"name": name, "email": "g@example.com"}, **kw),
                             headers=headers).json["data"]


def members(testapp, headers, group="Test Gruppe", body=None, status=200):
    url = f"/v1/groups/{group}/members"
    if body is None:
        return testapp.get(url, headers=headers, status=status)
    return testapp.put_json(url, body, headers=headers, status=status)


def test_create_group_makes_entity_and_admin(testapp, users, db):
    data = make_group(testapp, users["as_user"], name="Test h&sen ställ.")
    assert data["entityRef"] == "test-h-sen-stall"
    assert data["createdBy"] == "user.hase" and data["canEdit"] is True
    assert [(m["role"], m["user"]["username"]) for m in data["users"]] == [("admin", "user.hase")]
    entity = db.query(Entity).filter_by(name="test-h-sen-stall").one()
    assert entity.group.name == "Test h&sen ställ."
    me = testapp.get("/v1/users/user.hase", headers=users["as_user"]).json["data"]
    assert me["groups"][0]["role"] == "admin" and me["groups"][0]["group"]["name"] == "Test h&sen ställ."


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.default_group_quota": 4000}])
def test_group_quota_default_and_admin_only(testapp, users, extra_settings):
    assert make_group(testapp, users["as_user"], name="g1", quota=1)["quota"] == 4000
    assert make_group(testapp, users["as_admin"], name="g2", quota=1)["quota"] == 1
    r = testapp.put_json("/v1/groups/g1", {"quota": 0}, headers=users["as_user"]).json["data"]
    assert r["quota"] == 4000
    r = testapp.put_json("/v1/groups/g1", {"quota": 0}, headers=users["as_admin"]).json["data"]
    assert r["quota"] == 0


def test_create_group_errors(testapp, users, factory, db):
    factory.entity("taken")
    db.commit()
    make_group(testapp, users["as_user"], name="Dupe")
    h = users["as_user"]
    testapp.post_json("/v1/groups", {"name": "Dupe", "email": "g@example.com"}, headers=h, status=412)
    testapp.post_json("/v1/groups", {"name": "DUPE!", "email": "g@example.com"}, headers=h, status=412)
    testapp.post_json("/v1/groups", {"name": "Taken", "email": "g@example.com"}, headers=h, status=412)
    testapp.post_json("/v1/groups", {"name": "###", "email": "g@example.com"}, headers=h, status=412)
    testapp.post_json("/v1/groups", {"name": "ok"}, headers=h, status=400)
    testapp.post_json("/v1/groups", {"name": "ok", "email": "x@example.com", "x": 1}, headers=h, status=400)
    testapp.post_json("/v1/groups", {"name": "ok", "email": "x@example.com"}, status=401)


def test_read_and_edit_rights(testapp, users):
    make_group(testapp, users["as_user"])
    members(testapp, users["as_user"], body=[
        {"role": "admin", "user": {"username": "user.hase"}},
        {"role": "readonly", "user": {"username": "other.hase", "email": "ignored"}}])
    # readonly member: may look, may not change
    got = testapp.get("/v1/groups/Test Gruppe", headers=users["as_other"]).json["data"]
    assert got["canEdit"] is False
    testapp.put_json("/v1/groups/Test Gruppe", {"description": "x"}, headers=users["as_other"], status=403)
    members(testapp, users["as_other"], body=[{"role": "admin", "user": {"username": "other.hase"}}], status=403)
    testapp.delete("/v1/groups/Test Gruppe", headers=users["as_other"], status=403)
    # listing shows only my groups, admins see all
    assert [g["name"] for g in testapp.get("/v1/groups", headers=users["as_other"]).json["data"]] == ["Test Gruppe"]
    make_group(testapp, users["as_admin"], name="Admins Only")
    assert len(testapp.get("/v1/groups", headers=users["as_user"]).json["data"]) == 1
    assert len(testapp.get("/v1/groups", headers=users["as_admin"]).json["data"]) == 2
    assert len(testapp.get("/v1/groups?name=admins", headers=users["as_admin"]).json["data"]) == 1
    # non-members are refused
    testapp.get("/v1/groups/Admins Only", headers=users["as_user"], status=403)
    testapp.get("/v1/groups/Nope", headers=users["as_user"], status=404)
    testapp.get("/v1/groups/Nope", status=401)


def test_members_roles_and_last_admin(testapp, users):
    make_group(testapp, users["as_user"])
    h = users["as_user"]
    data = members(testapp, h, body=[{"role": "admin", "user": {"username": "user.hase"}},
                                     {"role": "contributor", "user": {"username": "OTHER.hase"}}]).json["data"]
    assert [(m["role"], m["user"]["username"]) for m in data] == [("contributor", "other.hase"),
                                                                  ("admin", "user.hase")]
    assert set(data[0]["user"]) == {"id", "username", "email", "firstname", "lastname", "isActive", "isAdmin"}
    r = members(testapp, h, body=[{"role": "contributor", "user": {"username": "user.hase"}}], status=412)
    assert "admin" in r.json["message"]
    members(testapp, h, body=[], status=412)
    r = members(testapp, h, body=[{"role": "owner", "user": {"username": "user.hase"}}], status=400)
    assert "errors" in r.json
    members(testapp, h, body=[{"role": "admin", "user": {"username": "ghost"}}], status=404)
    members(testapp, h, body=[{"role": "admin"}], status=400)
    members(testapp, h, body={"role": "admin"}, status=400)
    # hand over: other becomes the only admin, user is gone
    members(testapp, h, body=[{"role": "admin", "user": {"username": "other.hase"}}])
    data = members(testapp, users["as_other"]).json["data"]
    assert [(m["role"], m["user"]["username"]) for m in data] == [("admin", "other.hase")]


def test_rename_and_delete_group(testapp, users, factory, db):
    make_group(testapp, users["as_user"])
    data = testapp.put_json("/v1/groups/Test Gruppe", {"name": "Neue Gruppe"}, headers=users["as_user"]).json["data"]
    assert data["entityRef"] == "neue-gruppe"
    make_group(testapp, users["as_user"], name="Zweite")
    testapp.put_json("/v1/groups/Zweite", {"name": "neue gruppe!"}, headers=users["as_user"], status=409)
    entity = db.query(Entity).filter_by(name="neue-gruppe").one()
    db.add(Collection(name="stuff", entity=entity))
    db.commit()
    r = testapp.delete("/v1/groups/Neue Gruppe", headers=users["as_user"], status=412)
    assert r.json["message"] == "Cannot delete, entity not empty"
    assert testapp.delete("/v1/groups/Zweite", headers=users["as_user"]).json == {"status": "ok"}
    db.expire_all()
    assert db.query(Group).filter_by(name="Zweite").one_or_none() is None
    assert db.query(Entity).filter_by(name="zweite").one_or_none() is None


def test_site_admin_manages_any_group(testapp, users):
    make_group(testapp, users["as_user"])
    testapp.get("/v1/groups/Test Gruppe", headers=users["as_admin"])
    members(testapp, users["as_admin"], body=[{"role": "admin", "user": {"username": "admin.hase"}}])
    testapp.delete("/v1/groups/Test Gruppe", headers=users["as_admin"])


def test_group_names_stay_addressable(testapp, users):
    testapp.post_json("/v1/groups", {"name": "a/b", "email": "g@example.com"}, headers=users["as_user"], status=400)
    make_group(testapp, users["as_user"], name="ok")
    testapp.put_json("/v1/groups/ok", {"name": "x\\y"}, headers=users["as_user"], status=400)
