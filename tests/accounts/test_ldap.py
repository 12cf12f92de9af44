"""LDAP logins and sync against a real slapd started by the test suite (see conftest.slapd)."""
from __future__ import annotations

import pytest

from hinkskalle.auth.ldap import Directory, sync_all
from hinkskalle.models import Entity, User
from hinkskalle.testing import auth_header

pytestmark = pytest.mark.e2e


@pytest.fixture
def extra_settings(slapd):
    return dict(slapd.settings)


def login(testapp, username, password, status=200):
    return testapp.post_json("/v1/get-token", {"username": username, "password": password}, status=status)


def test_ldap_login_creates_local_account(testapp, db):
    data = login(testapp, "ldap.hase", "ldap-pw").json["data"]
    assert data["user"]["source"] == "ldap"
    assert data["user"]["email"] == "ldap.hase@example.org"
    assert data["user"]["firstname"] == "Ldap" and data["user"]["lastname"] == "Hase"
    user = db.query(User).filter_by(username="ldap.hase").one()
    assert user.password_hash is None
    assert db.query(Entity).filter_by(name="ldap.hase").one().owner_id == user.id
    testapp.get("/v1/token-status", headers=auth_header(data["generatedToken"]))
    # Basic credentials work with LDAP passwords as well (docker login).
    testapp.get("/v2/", headers={"Authorization": "Basic bGRhcC5oYXNlOmxkYXAtcHc="})


def test_ldap_login_updates_account(testapp, factory, db):
    factory.user("ldap.zwei", source="ldap", password=None, email="old@example.com", firstname="Alt")
    db.commit()
    data = login(testapp, "LDAP.Zwei", "zwei-pw").json["data"]["user"]
    assert data["email"] == "zwei@example.org" and data["firstname"] == "Zwei"
    assert db.query(User).filter_by(source="ldap").count() == 1


def test_wrong_ldap_password_and_unknown_user_look_alike(testapp):
    assert login(testapp, "ldap.hase", "falsch", status=401).json == {"message": "Not Authorized"}
    assert login(testapp, "ldap.niemand", "falsch", status=401).json == {"message": "Not Authorized"}


@pytest.mark.parametrize("username", ["*", "ldap.*", "ldap.hase)(uid=*", "*)(|(uid=*", "\\2a"])
def test_filter_input_is_escaped(testapp, username):
    login(testapp, username, "ldap-pw", status=401)


def test_local_account_cannot_be_taken_over(testapp, factory, db):
    factory.user("user.hase", password="local-pw")
    db.commit()
    login(testapp, "user.hase", "ldap-user-pw", status=401)
    data = login(testapp, "user.hase", "local-pw").json["data"]["user"]
    assert data["source"] == "local" and data["email"] == "user.hase@example.com"


def test_local_accounts_log_in_beside_ldap(testapp, factory, db):
    factory.user("local.hase", password="local-pw")
    db.commit()
    login(testapp, "local.hase", "local-pw")


class TestLdapDown:
    @pytest.fixture
    def extra_settings(self, slapd, dead_ldap_url):
        return dict(slapd.settings, **{"hinkskalle.ldap.url": dead_ldap_url,
                                      "hinkskalle.ldap.timeout": 1})

    def test_local_users_log_in_ldap_users_get_a_clear_error(self, testapp, factory, db):
        factory.user("local.hase", password="local-pw")
        factory.user("ldap.hase", source="ldap", password=None)
        db.commit()
        login(testapp, "local.hase", "local-pw")
        response = login(testapp, "ldap.hase", "ldap-pw", status=503)
        assert "LDAP" in response.json["message"]
        # OCI clients get it in their format.
        response = testapp.get("/v2/", headers={"Authorization": "Basic bGRhcC5oYXNlOmxkYXAtcHc="}, status=503)
        assert response.json["errors"][0]["code"] == "UNAVAILABLE"


def test_sync_all(slapd, db, settings):
    settings = dict(settings)
    db.add(User(username="user.hase", email="local@example.com", source="local"))
    db.flush()
    result = sync_all(db, settings)
    db.commit()
    assert sorted(result["synced"]) == ["ldap.hase", "ldap.zwei", "tast.hasse"]
    assert result["conflict"] == ["cn=clash,ou=people,dc=example,dc=org"]
    assert result["failed"] == ["cn=nomail,ou=people,dc=example,dc=org"]
    assert db.query(User).filter_by(source="ldap").count() == 3
    assert db.query(Entity).filter_by(name="tast.hasse").one() is not None
    # A second run updates and creates nothing new.
    again = sync_all(db, settings)
    assert sorted(again["synced"]) == sorted(result["synced"])
    assert db.query(User).filter_by(source="ldap").count() == 3


def test_ping(slapd, settings):
    Directory(settings).ping()
