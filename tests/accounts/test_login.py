"""Password login (/v1/get-token), token status, sliding expiry, login events, throttle."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

import hinkskalle
from hinkskalle.errors import Unauthorized
from hinkskalle.models import Entity, Token, User
from hinkskalle.models.meta import utcnow
from hinkskalle.security import passwords
from hinkskalle.testing import auth_header


def login(testapp, username, password, status=200, **kw):
    return testapp.post_json("/v1/get-token", {"username": username, "password": password},
                             status=status, **kw)


def test_login_returns_auto_token_that_works(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    data = login(testapp, "user.hase", "geheim").json["data"]
    assert data["source"] == "auto"
    assert len(data["generatedToken"]) == 64
    assert data["key_uid"] == data["generatedToken"][:12]
    assert data["user"]["username"] == "user.hase"
    status = testapp.get("/v1/token-status", headers=auth_header(data["generatedToken"])).json
    assert status["status"] == "welcome"
    assert status["data"]["username"] == "user.hase"
    assert status["data"]["isAdmin"] is False


def test_login_is_case_insensitive_on_username_and_creates_entity(testapp, factory, db):
    user = factory.user("user.hase", password="geheim")
    db.query(Entity).filter_by(name="user.hase").delete()
    db.commit()
    login(testapp, "User.Hase", "geheim")
    db.expire_all()
    entity = db.query(Entity).filter_by(name="user.hase").one()
    assert entity.owner_id == user.id


@pytest.mark.parametrize("username,password", [
    ("user.hase", "falsch"), ("nobody", "geheim"), ("inactive.hase", "geheim"),
    ("disabled.hase", "geheim")])
def test_failed_logins_look_the_same(testapp, factory, db, username, password):
    factory.user("user.hase", password="geheim")
    factory.user("inactive.hase", password="geheim", is_active=False)
    factory.user("disabled.hase", password="geheim", password_disabled=True)
    db.commit()
    response = login(testapp, username, password, status=401)
    assert response.json == {"message": "Not Authorized"}


def test_api_token_is_not_a_password(testapp, factory, db):
    token = factory.token(factory.user("user.hase", password="geheim"))
    db.commit()
    login(testapp, "user.hase", token, status=401)


@pytest.mark.parametrize("body", [{}, {"username": "x"}, {"password": "x"},
                                  {"username": "x", "password": ""},
                                  {"username": "x", "password": "y", "extra": 1}, [1, 2], "text"])
def test_login_bad_bodies_are_400(testapp, body):
    response = testapp.post_json("/v1/get-token", body, status=400)
    assert "message" in response.json


def test_login_malformed_json_is_400(testapp):
    testapp.post("/v1/get-token", "{nope", content_type="application/json", status=400)


def test_token_status_needs_valid_token(testapp):
    testapp.get("/v1/token-status", status=401)
    testapp.get("/v1/token-status", headers=auth_header("x" * 64), status=401)
    testapp.get("/v1/token-status", headers={"Authorization": "Bearer"}, status=400)
    testapp.get("/v1/token-status", headers={"Authorization": "Bearer a b"}, status=400)


def test_auto_token_expiry_slides(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    secret = login(testapp, "user.hase", "geheim").json["data"]["generatedToken"]
    token = db.query(Token).filter_by(key_uid=secret[:12]).one()
    token.expires_at = utcnow() + timedelta(minutes=5)
    db.commit()
    testapp.get("/v1/token-status", headers=auth_header(secret))
    db.expire_all()
    assert db.get(Token, token.id).expires_at > utcnow() + timedelta(hours=23)


def test_expired_token_is_refused(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    secret = login(testapp, "user.hase", "geheim").json["data"]["generatedToken"]
    db.query(Token).filter_by(key_uid=secret[:12]).one().expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    testapp.get("/v1/token-status", headers=auth_header(secret), status=401)


def test_login_events(testapp, factory, db, recorder):
    factory.user("user.hase", password="geheim")
    db.commit()
    login(testapp, "user.hase", "geheim")
    login(testapp, "user.hase", "falsch", status=401)
    events = recorder.of("login")
    assert [(e.actor, e.success, e.method) for e in events] == [
        ("user.hase", True, "password"), ("user.hase", False, "password")]
    assert events[0].address == "127.0.0.1"


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.login_throttle": 3}])
def test_repeated_failures_are_throttled(testapp, factory, db, extra_settings):
    factory.user("user.hase", password="geheim")
    factory.user("other.hase", password="geheim")
    db.commit()
    for _ in range(3):
        login(testapp, "user.hase", "falsch", status=401)
    # Even the right password is refused now, with a hint when to come back.
    response = login(testapp, "user.hase", "geheim", status=429)
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    # Basic credentials on other routes go through the same door.
    testapp.get("/v2/", headers={"Authorization": "Basic dXNlci5oYXNlOmdlaGVpbQ=="}, status=429)
    # Other users and other addresses are not affected.
    login(testapp, "other.hase", "geheim")
    login(testapp, "user.hase", "geheim", extra_environ={"REMOTE_ADDR": "10.0.0.2"})


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.login_throttle": 3}])
def test_a_forged_forwarded_for_does_not_escape_the_throttle(testapp, factory, db, recorder, extra_settings):
    factory.user("user.hase", password="geheim")
    db.commit()
    direct = {"REMOTE_ADDR": "10.0.0.9"}               # not a trusted proxy
    for n in range(3):
        login(testapp, "user.hase", "falsch", status=401,
              extra_environ=dict(direct, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}"))
    login(testapp, "user.hase", "geheim", status=429,
          extra_environ=dict(direct, HTTP_X_FORWARDED_FOR="192.0.2.99"))
    assert {e.address for e in recorder.of("login")} == {"10.0.0.9"}


def test_behind_a_trusted_proxy_the_client_is_the_nearest_forwarded_address(testapp, factory, db, recorder):
    factory.user("user.hase", password="geheim")
    db.commit()
    # The proxy (127.0.0.1, trusted by default) appends the address it saw; what the client
    # itself put in front of it does not count.
    login(testapp, "user.hase", "geheim",
          extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.7"})
    login(testapp, "user.hase", "geheim", extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert [e.address for e in recorder.of("login")] == ["198.51.100.7", "127.0.0.1"]


@pytest.mark.parametrize("extra_settings", [{"hinkskalle.trusted_proxies": ["::1", "10.1.0.0/16"]}])
def test_trusted_proxies_are_networks_and_ipv4_mapped_peers_count(testapp, factory, db, recorder, extra_settings):
    factory.user("user.hase", password="geheim")
    db.commit()
    via = {"HTTP_X_FORWARDED_FOR": "198.51.100.7, 10.1.2.3"}       # the client, then a proxy
    login(testapp, "user.hase", "geheim", extra_environ=dict(via, REMOTE_ADDR="10.1.9.9"))
    login(testapp, "user.hase", "geheim", extra_environ=dict(via, REMOTE_ADDR="::ffff:10.1.9.9"))
    login(testapp, "user.hase", "geheim", extra_environ=dict(via, REMOTE_ADDR=""))   # unix socket
    login(testapp, "user.hase", "geheim", extra_environ=dict(via, REMOTE_ADDR="127.0.0.1"))  # not trusted here
    assert [e.address for e in recorder.of("login")] == ["198.51.100.7"] * 3 + ["127.0.0.1"]


def test_trusted_proxies_must_be_addresses():
    from hinkskalle.config import SettingsError, load_settings
    with pytest.raises(SettingsError) as err:
        load_settings({"hinkskalle.trusted_proxies": "127.0.0.1 proxy.example.org"}, environ={})
    assert "hinkskalle.trusted_proxies" in err.value.errors


def test_success_resets_the_failure_count(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    for _ in range(4):
        login(testapp, "user.hase", "falsch", status=401)
    login(testapp, "user.hase", "geheim")
    for _ in range(4):
        login(testapp, "user.hase", "falsch", status=401)
    login(testapp, "user.hase", "geheim")


def test_passwords_and_tokens_never_logged(testapp, factory, db, caplog):
    factory.user("user.hase", password="sehr-geheim-123")
    db.commit()
    caplog.set_level(logging.DEBUG)
    secret = login(testapp, "user.hase", "sehr-geheim-123").json["data"]["generatedToken"]
    login(testapp, "user.hase", "falsch-456", status=401)
    testapp.get("/v1/token-status", headers=auth_header(secret))
    testapp.get("/v1/token-status", headers=auth_header(secret[:-1] + "x"), status=401)
    manual = testapp.post_json("/v1/users/user.hase/tokens", {}, headers=auth_header(secret))
    logged = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for value in ("sehr-geheim-123", "falsch-456", secret, secret[:-1] + "x",
                  manual.json["data"]["generatedToken"]):
        assert value not in logged


@pytest.mark.parametrize("value", ["Bearer " + "a" * 5000, "Bearer a.b.c", "Bearer e30.e30.e30",
                                   "Bearer " + "%" * 64, "Basic !!!notbase64", "Basic " + "eA==",
                                   "Token abc", "bearer"])
def test_malformed_tokens_are_clear_4xx(testapp, value):
    response = testapp.get("/v1/token-status", headers={"Authorization": value}, expect_errors=True)
    assert response.status_int in (400, 401)
    assert "message" in response.json


class AlwaysKnowsHase:
    """A site plugin with its own login method: accepts one hard-wired password."""

    @hinkskalle.hookimpl
    def hinkskalle_authenticate(self, request, username, password):
        if username == "user.hase" and password == "plugin-pw":
            return request.dbsession.query(User).filter_by(username="user.hase").one()
        if username == "blocked.hase":
            raise Unauthorized("blocked by the site")
        return None


class TestSitePluginLogin:
    @pytest.fixture
    def extra_plugins(self, recorder):
        return (recorder, AlwaysKnowsHase())

    def test_a_site_plugin_adds_a_login_method(self, testapp, factory, db):
        factory.user("user.hase", password="geheim")
        factory.user("blocked.hase", password="geheim")
        db.commit()
        login(testapp, "user.hase", "plugin-pw")
        login(testapp, "user.hase", "geheim")          # the built-in methods still work
        login(testapp, "blocked.hase", "geheim", status=401)   # a plugin may refuse outright


class CountingHasher(PasswordHasher):
    """argon2 with cheap parameters that counts how often it checks a password."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=64, parallelism=1)
        self.checks = 0

    def verify(self, hash, password):
        self.checks += 1
        return super().verify(hash, password)


def test_unknown_user_costs_a_password_check_too(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    hasher = CountingHasher()
    passwords.set_hasher(hasher)
    login(testapp, "user.hase", "falsch", status=401)
    login(testapp, "niemand", "falsch", status=401)
    assert hasher.checks == 2


def test_throttle_forgets_stale_entries_when_sprayed():
    from hinkskalle.services.accounts import LoginThrottle
    throttle = LoginThrottle(limit=3)
    throttle.MAX_KEYS = 5
    for i in range(5):
        throttle.failed("10.0.0.1", f"user{i}")
    for failures in throttle._failures.values():        # age them past the window
        failures[0] -= throttle.WINDOW + 1
    throttle.failed("10.0.0.1", "fresh")
    assert list(throttle._failures) == [("10.0.0.1", "fresh")]
