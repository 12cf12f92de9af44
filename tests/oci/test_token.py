"""Docker token login: /v2/token (GET Basic, POST OAuth2 grants), scoped tokens, /v2/ compatibility."""
from __future__ import annotations

import base64
import time

import jwt
import pytest
from sqlalchemy import delete

from hinkskalle.models import Membership
from hinkskalle.errors import Unauthorized
from hinkskalle.security.policy import REGISTRY_AUDIENCE, Account, Identity, RegistryTokenCache

from .conftest import Client, errors, sha

NAME = "hase/coll/cont"


def basic(username: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


def claims(token: str) -> dict:
    return jwt.decode(token, "test-secret", algorithms=["HS256"], audience=REGISTRY_AUDIENCE)


def test_token_with_password_carries_only_granted_actions(testapp, hase, igel):
    hase.push_blob(NAME, b"x")
    response = testapp.get("/v2/token", params=[("service", "localhost"),
                                                 ("scope", f"repository:{NAME}:pull,push,delete"),
                                                 ("scope", "repository:igel/c/new:pull,push")],
                           headers=basic("igel", "geheim"))
    body = response.json
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300 and body["issued_at"]
    granted = claims(body["token"])
    assert granted["sub"] == "igel"
    # igel may pull hase's public repository but neither push nor delete there;
    # a not-yet-existing repository in igel's own entity may be pushed.
    assert granted["access"] == {NAME: ["pull"], "igel/c/new": ["pull", "push"]}


def test_token_with_api_token_and_wildcard(testapp, hase, accounts):
    hase.push_blob(NAME, b"x")
    token = accounts["hase"][1]
    body = testapp.get("/v2/token", params={"scope": "repository:hase/coll/cont:*"},
                       headers=basic("hase", token)).json
    assert sorted(claims(body["token"])["access"][NAME]) == ["delete", "pull", "push"]


def test_short_names_are_canonical_in_the_token(testapp, admin):
    admin.push_blob("solo", b"x")
    body = testapp.get("/v2/token", params={"scope": "repository:solo:pull"},
                       headers=basic("admin", "geheim")).json
    assert claims(body["token"])["access"] == {"default/default/solo": ["pull"]}


def test_registry_token_is_confined_to_its_scopes(testapp, hase):
    hase.push_blob(NAME, b"x")
    hase.push_blob("hase/coll/other", b"y")
    body = testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"},
                       headers=basic("hase", "geheim")).json
    scoped = Client(testapp, body["token"])
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}")
    # push is not in the token, although hase owns the repository
    scoped.push_blob(NAME, b"z", status=403)
    scoped.get(f"/v2/hase/coll/other/blobs/{sha(b'y')}", status=403)
    scoped.get("/v2/", status=200)


def test_wrong_credentials_and_anonymous(testapp, hase):
    response = testapp.get("/v2/token", headers=basic("hase", "falsch"), status=401)
    assert errors(response) == ["UNAUTHORIZED"]
    anonymous = testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"}).json
    assert claims(anonymous["token"])["access"] == {}
    # an anonymous token is no login
    testapp.get(f"/v2/{NAME}/tags/list", headers={"Authorization": f"Bearer {anonymous['token']}"},
                status=401)


def test_forged_or_expired_token(testapp, hase):
    forged = jwt.encode({"sub": "hase", "aud": REGISTRY_AUDIENCE, "access": {NAME: ["push"]}},
                        "not-the-secret", algorithm="HS256")
    testapp.get("/v2/", headers={"Authorization": f"Bearer {forged}"}, status=401)
    expired = jwt.encode({"sub": "hase", "aud": REGISTRY_AUDIENCE, "exp": 1, "access": {}},
                         "test-secret", algorithm="HS256")
    testapp.get("/v2/", headers={"Authorization": f"Bearer {expired}"}, status=401)


def test_oauth2_password_grant(testapp, hase):
    hase.push_blob(NAME, b"x")
    body = testapp.post("/v2/token", {"grant_type": "password", "username": "hase", "password": "geheim",
                                      "service": "localhost", "scope": f"repository:{NAME}:pull,push",
                                      "client_id": "docker"}).json
    assert claims(body["access_token"])["access"] == {NAME: ["pull", "push"]}
    response = testapp.post("/v2/token", {"grant_type": "password", "username": "hase",
                                          "password": "falsch"}, status=401)
    assert errors(response) == ["UNAUTHORIZED"]


def test_oauth2_refresh_token_grant_needs_a_manual_token(testapp, hase, accounts, factory, db):
    manual = accounts["hase"][1]
    body = testapp.post("/v2/token", {"grant_type": "refresh_token", "refresh_token": manual,
                                      "scope": f"repository:{NAME}:pull"}).json
    assert claims(body["access_token"])["sub"] == "hase"
    assert body["refresh_token"] == manual
    auto = factory.token(db.merge(accounts["hase"][0]), source="auto")
    db.commit()
    response = testapp.post("/v2/token", {"grant_type": "refresh_token", "refresh_token": auto}, status=401)
    assert response.json["errors"][0]["detail"] == "only manual tokens allowed"
    testapp.post("/v2/token", {"grant_type": "refresh_token", "refresh_token": "x" * 64}, status=401)
    testapp.post("/v2/token", {"grant_type": "client_credentials"}, status=400)


def test_offline_token_returns_the_manual_token_as_refresh_token(testapp, accounts):
    manual = accounts["hase"][1]
    body = testapp.get("/v2/token", params={"offline_token": "true"}, headers=basic("hase", manual)).json
    assert body["refresh_token"] == manual
    assert "refresh_token" not in testapp.get("/v2/token", params={"offline_token": "true"},
                                              headers=basic("hase", "geheim")).json


def test_basic_at_base_returns_an_api_token(testapp, accounts):
    body = testapp.get("/v2/", headers=basic("hase", "geheim")).json
    assert body["token"] == body["access_token"] and body["expires_in"] > 0
    # it works as a Bearer token everywhere (Hinkskalle clients rely on that)
    testapp.get("/v2/_catalog", headers={"Authorization": f"Bearer {body['token']}"})
    assert testapp.get("/v2/", headers={"Authorization": f"Bearer {body['token']}"}).json == {}


def test_post_base_refresh_token_compatibility(testapp, accounts):
    body = testapp.post("/v2/", {"refresh_token": accounts["hase"][1]}).json
    assert claims(body["access_token"])["sub"] == "hase"


def test_registry_token_logins_are_login_events(testapp, hase, recorder):
    testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"}, headers=basic("hase", "geheim"))
    testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"})          # anonymous: no login
    testapp.get("/v2/token", headers=basic("hase", "falsch"), status=401)
    logins = recorder.of("login")
    assert [(e.actor, e.success, e.method, e.protocol) for e in logins] == [
        ("hase", True, "registry-token", "oci"), ("hase", False, "password", "oci")]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def remembered_for(app, seconds: float) -> Clock:
    """Give the app a registry-token cache of `seconds` on a clock the test moves."""
    clock = Clock()
    app.registry["registry_token_cache"] = RegistryTokenCache(seconds, clock=clock)
    return clock


def test_a_deactivated_user_is_refused_once_the_cache_has_forgotten_the_token(app, testapp, hase, accounts, db):
    hase.push_blob(NAME, b"x")
    clock = remembered_for(app, 5)
    scoped = Client(testapp, testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"},
                                         headers=basic("hase", "geheim")).json["token"])
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}")
    accounts["hase"][0].is_active = False
    db.commit()
    clock.now += 4.9                  # still remembered: at most `ttl` seconds late
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}")
    clock.now += 0.2
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}", status=401)


def test_without_the_cache_a_deactivation_applies_at_once(app, testapp, hase, accounts, db):
    hase.push_blob(NAME, b"x")
    remembered_for(app, 0)
    scoped = Client(testapp, testapp.get("/v2/token", params={"scope": f"repository:{NAME}:pull"},
                                         headers=basic("hase", "geheim")).json["token"])
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}")
    accounts["hase"][0].is_active = False
    db.commit()
    scoped.get(f"/v2/{NAME}/blobs/{sha(b'x')}", status=401)


def test_group_changes_reach_a_remembered_token_after_the_ttl(app, testapp, igel, accounts, factory, db):
    igel_user = accounts["igel"][0]
    group = factory.group("herde", members={igel_user: "readonly"})
    factory.container("herde/coll/private", private=True)
    db.commit()
    admin = Client(testapp, accounts["admin"][1])
    admin.push_blob("herde/coll/private", b"secret")
    clock = remembered_for(app, 5)
    token = testapp.get("/v2/token", params={"scope": "repository:herde/coll/private:pull"},
                        headers=basic("igel", "geheim")).json["token"]
    assert claims(token)["access"] == {"herde/coll/private": ["pull"]}
    member = Client(testapp, token)
    member.get(f"/v2/herde/coll/private/blobs/{sha(b'secret')}")
    db.execute(delete(Membership).where(Membership.group_id == group.id))
    db.commit()
    clock.now += 4
    member.get(f"/v2/herde/coll/private/blobs/{sha(b'secret')}")       # remembered groups
    clock.now += 2
    member.get(f"/v2/herde/coll/private/blobs/{sha(b'secret')}", status=403)


def test_a_remembered_token_never_outlives_its_expiry(app, testapp, hase):
    clock = remembered_for(app, 3600)
    cache = app.registry["registry_token_cache"]
    account = Account(1, "hase", False, ())
    cache.put("t", account, {"exp": time.time() + 2})
    assert cache.get("t")[0] == account
    clock.now += 2.5
    assert cache.get("t") is None
    cache.put("u", account, {"exp": time.time() - 1})
    assert cache.get("u") is None


def test_a_remembered_account_is_not_taken_for_another_user_with_its_id(accounts, db):
    hase = accounts["hase"][0]
    impostor = Identity(None, "registry-token", account=Account(hase.id, "somebody-deleted", False, ()),
                        session=db)
    with pytest.raises(Unauthorized):
        impostor.user
    assert Identity(None, "registry-token", account=Account.of(hase), session=db).user is hase
    hase.is_active = False
    db.flush()
    with pytest.raises(Unauthorized):
        Identity(None, "registry-token", account=Account.of(hase), session=db).user
