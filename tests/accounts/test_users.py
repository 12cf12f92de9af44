"""Users: list/get, admin create/update/deactivate/delete, self-service, registration, tokens."""
from __future__ import annotations

import pytest

from hinkskalle.models import Entity, Token, User
from hinkskalle.testing import auth_header


def test_list_and_filter_users(testapp, users):
    data = testapp.get("/v1/users", headers=users["as_user"]).json["data"]
    assert [u["username"] for u in data] == ["admin.hase", "other.hase", "user.hase"]
    mine = next(u for u in data if u["username"] == "user.hase")
    assert mine["canEdit"] is True and mine["id"] == str(users["user"].id)
    assert next(u for u in data if u["username"] == "other.hase")["canEdit"] is False
    assert "argon2" not in str(data) and "password_hash" not in str(data)
    data = testapp.get("/v1/users?username=OTH", headers=users["as_user"]).json["data"]
    assert [u["username"] for u in data] == ["other.hase"]
    assert testapp.get("/v1/users?username=%25", headers=users["as_user"]).json["data"] == []


def test_users_need_login(testapp, users):
    testapp.get("/v1/users", status=401)
    testapp.get("/v1/users/user.hase", status=401)
    testapp.get("/v1/users/nobody", status=401)   # anonymous callers learn nothing


def test_get_user_shape(testapp, users):
    data = testapp.get("/v1/users/other.hase", headers=users["as_user"]).json["data"]
    for key in ("id", "username", "email", "firstname", "lastname", "isAdmin", "isActive",
                "passwordDisabled", "source", "quota", "used_quota", "image_count", "groups",
                "createdAt", "createdBy", "updatedAt", "deletedAt", "deleted", "canEdit"):
        assert key in data
    assert data["createdAt"].endswith("+00:00")
    testapp.get("/v1/users/nobody", headers=users["as_user"], status=404)


def test_admin_creates_user_with_entity_and_default_quota(testapp, users, db, settings):
    body = {"username": "New.Hase", "email": "New@Example.com", "firstname": "N", "lastname": "H",
            "password": "pw-neu"}
    data = testapp.post_json("/v1/users", body, headers=users["as_admin"]).json["data"]
    assert data["username"] == "new.hase" and data["email"] == "new@example.com"
    assert data["createdBy"] == "admin.hase" and data["source"] == "local"
    assert db.query(Entity).filter_by(name="new.hase").one().owner_id == int(data["id"])
    testapp.post_json("/v1/get-token", {"username": "new.hase", "password": "pw-neu"})


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.default_user_quota": 1000}])
def test_new_users_get_default_quota(testapp, users, extra_settings):
    body = {"username": "new.hase", "email": "new@example.com"}
    assert testapp.post_json("/v1/users", body, headers=users["as_admin"]).json["data"]["quota"] == 1000
    body = {"username": "q.hase", "email": "q@example.com", "quota": 5}
    assert testapp.post_json("/v1/users", body, headers=users["as_admin"]).json["data"]["quota"] == 5


def test_create_user_errors(testapp, users, factory, db):
    factory.entity("taken-entity")
    db.commit()
    h = users["as_admin"]
    testapp.post_json("/v1/users", {"username": "x.hase", "email": "y@example.com"}, headers=users["as_user"],
                      status=403)
    r = testapp.post_json("/v1/users", {"username": "user.hase", "email": "n@example.com"}, headers=h, status=412)
    assert "already exists" in r.json["message"]
    testapp.post_json("/v1/users", {"username": "n2", "email": "USER.hase@example.com"}, headers=h, status=412)
    testapp.post_json("/v1/users", {"username": "taken-entity", "email": "t@example.com"}, headers=h, status=412)
    r = testapp.post_json("/v1/users", {"username": "-bad", "email": "b@example.com"}, headers=h, status=400)
    assert "username" in r.json["errors"]
    testapp.post_json("/v1/users", {"username": "ok", "email": "not-an-email"}, headers=h, status=400)
    testapp.post_json("/v1/users", {"username": "ok", "email": "o@example.com", "bogus": 1}, headers=h, status=400)
    testapp.post_json("/v1/users", {"username": "ok", "email": "o@example.com", "quota": -1}, headers=h, status=400)


def test_self_service_profile(testapp, users, db):
    h = users["as_user"]
    data = testapp.put_json("/v1/users/user.hase", {"firstname": "Neu", "email": "Neu@example.com"},
                            headers=h).json["data"]
    assert data["firstname"] == "Neu" and data["email"] == "neu@example.com"
    assert data["updatedAt"] is not None
    # Another user's profile is out of reach; admin-only fields are too.
    testapp.put_json("/v1/users/other.hase", {"firstname": "X"}, headers=h, status=403)
    for field, value in (("isAdmin", True), ("isActive", False), ("source", "ldap"),
                         ("passwordDisabled", True)):
        testapp.put_json("/v1/users/user.hase", {field: value}, headers=h, status=403)
    # Sending the current value back is fine (the frontend sends the whole object).
    testapp.put_json("/v1/users/user.hase", {"isAdmin": False}, headers=h)
    # Quota is silently ignored for non-admins.
    assert testapp.put_json("/v1/users/user.hase", {"quota": 99}, headers=h).json["data"]["quota"] == 0
    testapp.put_json("/v1/users/user.hase", {"email": "other.hase@example.com"}, headers=h, status=409)
    testapp.put_json("/v1/users/user.hase", {"nope": 1}, headers=h, status=400)


def test_password_change_needs_old_password(testapp, users):
    h = users["as_user"]
    r = testapp.put_json("/v1/users/user.hase", {"password": "neu"}, headers=h, status=412)
    assert r.json["message"] == "Old password required"
    testapp.put_json("/v1/users/user.hase", {"password": "neu", "oldPassword": "wrong"}, headers=h, status=403)
    testapp.put_json("/v1/users/user.hase", {"password": "neu", "oldPassword": "user-pw"}, headers=h)
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "user-pw"}, status=401)
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "neu"})
    # Admins reset passwords without knowing the old one.
    testapp.put_json("/v1/users/user.hase", {"password": "reset"}, headers=users["as_admin"])
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "reset"})


def test_rename_user_renames_entity(testapp, users, factory, db):
    factory.entity("user.hase", owner=users["user"])
    db.commit()
    data = testapp.put_json("/v1/users/user.hase", {"username": "renamed.hase"},
                            headers=users["as_user"]).json["data"]
    assert data["username"] == "renamed.hase"
    assert db.query(Entity).filter_by(name="renamed.hase").one().owner_id == users["user"].id
    testapp.put_json("/v1/users/renamed.hase", {"username": "other.hase"}, headers=users["as_admin"],
                     status=409)
    testapp.put_json("/v1/users/renamed.hase", {"username": "bad name"}, headers=users["as_admin"], status=400)


def test_ldap_accounts_keep_their_profile(testapp, users, factory, db):
    factory.user("ldap.hase", source="ldap", password=None)
    db.commit()
    data = testapp.put_json("/v1/users/ldap.hase", {"firstname": "X", "quota": 7},
                            headers=users["as_admin"]).json["data"]
    assert data["firstname"] == "Test" and data["quota"] == 7


def test_admin_deactivates_user(testapp, users, db):
    testapp.put_json("/v1/users/user.hase", {"isActive": False}, headers=users["as_admin"])
    testapp.get("/v1/token-status", headers=users["as_user"], status=401)
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "user-pw"}, status=401)
    testapp.put_json("/v1/users/user.hase", {"isActive": True}, headers=users["as_admin"])
    testapp.get("/v1/token-status", headers=users["as_user"])


def test_admin_deletes_user(testapp, users, factory, db):
    factory.entity("user.hase", owner=users["user"])
    user_id = users["user"].id
    db.commit()
    testapp.delete("/v1/users/user.hase", headers=users["as_user"], status=403)
    assert testapp.delete("/v1/users/user.hase", headers=users["as_admin"]).json == {"status": "ok"}
    db.expire_all()
    assert db.query(User).filter_by(username="user.hase").one_or_none() is None
    assert db.query(Token).filter_by(user_id=user_id).count() == 0
    entity = db.query(Entity).filter_by(name="user.hase").one()
    assert entity.owner_id is None
    testapp.get("/v1/token-status", headers=users["as_user"], status=401)
    testapp.delete("/v1/users/user.hase", headers=users["as_admin"], status=404)


def test_register_disabled_by_default(testapp):
    body = {"username": "reg", "email": "r@example.com", "firstname": "R", "lastname": "H", "password": "pw"}
    r = testapp.post_json("/v1/register", body, status=403)
    assert r.json["message"] == "Registration is disabled."


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.enable_register": True,
                                             "hinkskalle.default_user_quota": 123}])
def test_register(testapp, db, extra_settings):
    body = {"username": "reg", "email": "r@example.com", "firstname": "R", "lastname": "H", "password": "pw"}
    data = testapp.post_json("/v1/register", body).json["data"]
    assert data["username"] == "reg" and data["quota"] == 123 and data["createdBy"] is None
    assert data["isAdmin"] is False
    testapp.post_json("/v1/register", body, status=412)
    testapp.post_json("/v1/register", dict(body, username="r2", isAdmin=True), status=400)
    testapp.post_json("/v1/register", {"username": "r3"}, status=400)
    testapp.post_json("/v1/get-token", {"username": "reg", "password": "pw"})


# -- tokens -------------------------------------------------------------------------------

def test_manual_tokens_lifecycle(testapp, users):
    h = users["as_user"]
    created = testapp.post_json("/v1/users/user.hase/tokens", {"comment": "ci"}, headers=h).json["data"]
    secret = created["generatedToken"]
    assert created["source"] == "manual" and created["comment"] == "ci" and created["expiresAt"] is None
    testapp.get("/v1/token-status", headers=auth_header(secret))
    listed = testapp.get("/v1/users/user.hase/tokens", headers=h).json["data"]
    assert {t["comment"] for t in listed} >= {"ci"}
    assert all("generatedToken" not in t for t in listed)
    assert all(t["source"] == "manual" for t in listed)
    updated = testapp.put_json(f"/v1/users/user.hase/tokens/{created['id']}",
                               {"comment": "renamed", "expiresAt": "2000-01-01T00:00:00Z"}, headers=h).json["data"]
    assert updated["comment"] == "renamed" and updated["expiresAt"].startswith("2000-01-01")
    testapp.get("/v1/token-status", headers=auth_header(secret), status=401)   # expired now
    assert testapp.delete(f"/v1/users/user.hase/tokens/{created['id']}", headers=h).json == {"status": "ok"}
    testapp.delete(f"/v1/users/user.hase/tokens/{created['id']}", headers=h, status=404)


def test_login_tokens_are_not_listed(testapp, users):
    testapp.post_json("/v1/get-token", {"username": "user.hase", "password": "user-pw"})
    listed = testapp.get("/v1/users/user.hase/tokens", headers=users["as_user"]).json["data"]
    assert all(t["source"] == "manual" for t in listed)


def test_tokens_are_self_or_admin(testapp, users):
    theirs = testapp.post_json("/v1/users/other.hase/tokens", {}, headers=users["as_other"]).json["data"]
    testapp.get("/v1/users/other.hase/tokens", headers=users["as_user"], status=403)
    testapp.post_json("/v1/users/other.hase/tokens", {}, headers=users["as_user"], status=403)
    testapp.delete(f"/v1/users/other.hase/tokens/{theirs['id']}", headers=users["as_user"], status=403)
    # A token id of another user is not found under my name.
    testapp.delete(f"/v1/users/user.hase/tokens/{theirs['id']}", headers=users["as_user"], status=404)
    testapp.get("/v1/users/other.hase/tokens", headers=users["as_admin"])
    testapp.post_json("/v1/users/other.hase/tokens", {}, headers=users["as_admin"])
    testapp.get("/v1/users/nobody/tokens", headers=users["as_admin"], status=404)


@pytest.mark.parametrize("raw", ["%C2%B2", "99999999999999999999"])
def test_odd_ids_in_urls_are_404(testapp, users, raw):
    """Non-ASCII digits (str.isdigit accepts them, int() does not) and huge numbers name nothing."""
    testapp.delete(f"/v1/users/user.hase/tokens/{raw}", headers=users["as_user"], status=404)
    testapp.post(f"/v1/users/user.hase/stars/{raw}", headers=users["as_user"], status=404)


@pytest.mark.parametrize("body", [{"comment": 5, "x": 1}, {"expiresAt": "yesterday"}, [1]])
def test_token_bad_input(testapp, users, body):
    testapp.post_json("/v1/users/user.hase/tokens", body, headers=users["as_user"], status=400)


def test_token_bad_ids(testapp, users):
    testapp.put_json("/v1/users/user.hase/tokens/abc", {}, headers=users["as_user"], status=404)
    testapp.delete("/v1/users/user.hase/tokens/99999999", headers=users["as_user"], status=404)


def test_renamed_creator_keeps_editing_their_group(testapp, users, factory, db):
    factory.entity("user.hase", owner=users["user"])
    db.commit()
    testapp.post_json("/v1/groups", {"name": "Meine", "email": "m@example.com"}, headers=users["as_user"])
    testapp.put_json("/v1/groups/Meine/members", [{"role": "admin", "user": {"username": "other.hase"}}],
                     headers=users["as_user"])
    testapp.put_json("/v1/users/user.hase", {"username": "neu.hase"}, headers=users["as_user"])
    testapp.put_json("/v1/groups/Meine", {"description": "still mine"}, headers=users["as_user"])


@pytest.mark.parametrize("url", ["/v1/users/user.hase/tokens/99999999999999999999999",
                                 "/v1/users/user.hase/tokens/-1", "/v1/users/user.hase/stars/1e5",
                                 "/v1/users/user.hase/stars/99999999999999999999999",
                                 "/v1/download/images/99999999999999999999999",
                                 "/v1/manifests/99999999999999999999/download"])
def test_ids_no_row_can_have_are_404(testapp, users, url):
    assert testapp.delete(url, headers=users["as_user"], expect_errors=True).status_int in (404, 405)
    assert testapp.get(url, headers=users["as_user"], expect_errors=True).status_int in (404, 405)


def test_registry_tokens_cannot_manage_accounts(testapp, users):
    import base64
    basic = base64.b64encode(b"user.hase:user-pw").decode()
    body = testapp.get("/v2/token", params={"scope": "repository:user.hase/c/c:pull,push"},
                       headers={"Authorization": f"Basic {basic}"}).json
    registry = auth_header(body["token"])
    testapp.put_json("/v1/users/user.hase", {"firstname": "X"}, headers=registry, status=403)
    testapp.post_json("/v1/users/user.hase/tokens", {}, headers=registry, status=403)
    testapp.get("/v1/users/user.hase/tokens", headers=registry, status=403)
    testapp.put_json("/v1/users/user.hase", {"firstname": "X"}, headers=users["as_user"])
