"""The security policy: credentials in both schemes, clear errors per protocol, stored secrets,
principals, and ACLs inherited along Root -> Entity -> Collection -> Container."""
import base64
import hashlib
from datetime import timedelta

import pytest
from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.interfaces import ISecurityPolicy
from sqlalchemy import select

from hinkskalle.models import Group, Token, User
from hinkskalle.models.meta import utcnow
from hinkskalle.plugins import hookimpl
from hinkskalle.resources import find_container
from hinkskalle.security.permissions import Permission
from hinkskalle.services.accounts import create_user
from hinkskalle.testing import Factory, statements

LIBRARY = "/_test/security/whoami"      # a library-format route that needs a login
OCI = "/v2/"


class WhoAmI:
    """Adds a library route answering with the caller's principals (login required)."""

    @hookimpl
    def hinkskalle_configure(self, config):
        config.add_route("library._test.whoami", LIBRARY)
        config.add_view(self.whoami, route_name="library._test.whoami", renderer="json",
                        permission=Permission.AUTHENTICATED)

    @staticmethod
    def whoami(request):
        policy = request.registry.getUtility(ISecurityPolicy)
        return {"username": request.user.username, "principals": sorted(policy.principals(request))}


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, WhoAmI())


def basic(username, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()}


@pytest.fixture
def hase(factory, db):
    user = factory.user("test.hase", password="geheim")
    token = factory.token(user)
    db.commit()
    return user, token


@pytest.mark.parametrize("path", [LIBRARY, OCI])
def test_basic_with_password_and_with_token(testapp, hase, path):
    _, token = hase
    testapp.get(path, headers=basic("test.hase", "geheim"), status=200)
    testapp.get(path, headers=basic("test.hase", token), status=200)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_token_any_case(testapp, hase, scheme):
    _, token = hase
    assert testapp.get(LIBRARY, headers={"Authorization": f"{scheme} {token}"}).json["username"] == "test.hase"
    testapp.get(OCI, headers={"Authorization": f"{scheme} {token}"}, status=200)


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_any_case(testapp, hase, scheme):
    creds = base64.b64encode(b"test.hase:geheim").decode()
    testapp.get(LIBRARY, headers={"Authorization": f"{scheme} {creds}"}, status=200)


def test_token_of_another_user_does_not_log_in_as_basic(testapp, hase, factory, db):
    factory.user("igel")
    db.commit()
    testapp.get(LIBRARY, headers=basic("igel", hase[1]), status=401)


MALFORMED = ["Bearer", "Bearer a b", "Token abc", "Complicated x", "Basic !!notbase64!!", "Basic"]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_header_is_a_clear_4xx_in_the_library_format(testapp, header):
    response = testapp.get(LIBRARY, headers={"Authorization": header}, expect_errors=True)
    assert response.status_int == 400
    assert set(response.json) == {"message"} and response.json["message"]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_header_is_a_clear_4xx_in_the_oci_format(testapp, header):
    response = testapp.get(OCI, headers={"Authorization": header}, expect_errors=True)
    assert response.status_int == 400
    error, = response.json["errors"]
    assert error["code"] == "UNAUTHORIZED" and error["detail"]


def test_basic_without_password_is_refused(testapp):
    creds = base64.b64encode(b"test.hase").decode()
    response = testapp.get(LIBRARY, headers={"Authorization": f"Basic {creds}"}, status=401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")


@pytest.mark.parametrize("headers", [basic("test.hase", "falsch"), basic("nobody", "geheim"),
                                     {"Authorization": "Bearer " + "x" * 64}])
def test_wrong_credentials_get_401_with_challenge(testapp, hase, headers):
    library = testapp.get(LIBRARY, headers=headers, status=401)
    assert library.headers["WWW-Authenticate"].startswith('Bearer realm="http://localhost')
    assert library.json["message"]
    oci = testapp.get(OCI, headers=headers, status=401)
    assert oci.headers["WWW-Authenticate"].startswith('Bearer realm="http://localhost/v2/token"')
    assert oci.json["errors"][0]["code"] == "UNAUTHORIZED"


def test_anonymous_gets_401_with_challenge(testapp):
    response = testapp.get(LIBRARY, status=401)
    assert "WWW-Authenticate" in response.headers and response.json["message"]


def test_inactive_user_is_refused(testapp, hase, db):
    user, token = hase
    db.execute(User.__table__.update().where(User.id == user.id).values(is_active=False))
    db.commit()
    testapp.get(LIBRARY, headers=basic("test.hase", "geheim"), status=401)
    testapp.get(LIBRARY, headers=basic("test.hase", token), status=401)
    testapp.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}, status=401)


def test_expired_token_is_refused(testapp, hase, db):
    user, token = hase
    db.execute(Token.__table__.update().where(Token.user_id == user.id)
               .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    testapp.get(LIBRARY, headers={"Authorization": f"Bearer {token}"}, status=401)
    testapp.get(OCI, headers={"Authorization": f"Bearer {token}"}, status=401)


def test_passwords_are_stored_as_argon2_hashes(dbsession):
    user = create_user(dbsession, {}, username="hase", email="hase@example.com", password="geheim")
    dbsession.flush()
    stored = dbsession.execute(select(User.password_hash).where(User.id == user.id)).scalar_one()
    assert stored.startswith("$argon2id$") and "geheim" not in stored


def test_api_tokens_are_stored_only_as_hashes(dbsession):
    from hinkskalle.security.tokens import create_token
    user = User(username="hase", email="h@example.com")
    dbsession.add(user)
    row, secret = create_token(dbsession, user)
    stored = dbsession.execute(select(Token.__table__).where(Token.id == row.id)).one()._asdict()
    assert stored["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(isinstance(value, str) and secret in value for value in stored.values())


def test_principals(testapp, factory, db):
    admin = factory.user("chef", admin=True)
    hase = factory.user("test.hase")
    factory.group("Hasen", members={hase: "contributor", admin: "admin"})
    tokens = {user.username: factory.token(user) for user in (admin, hase)}
    db.commit()
    principals = testapp.get(LIBRARY, headers={"Authorization": f"Bearer {tokens['test.hase']}"}).json["principals"]
    assert principals == sorted([Everyone, Authenticated, "user:test.hase", "group:Hasen:contributor"])
    principals = testapp.get(LIBRARY, headers={"Authorization": f"Bearer {tokens['chef']}"}).json["principals"]
    assert {"user:chef", "role:admin", "group:Hasen:admin"} <= set(principals)


def allowed(context, principals, permission):
    return bool(ACLHelper().permits(context, [Everyone, Authenticated, *principals], permission))


def test_acl_inheritance(dbsession):
    from hinkskalle.testing import Factory
    factory = Factory(dbsession)
    owner = factory.user("besitzer")
    reader = factory.user("leser")
    factory.group("Hasen", members={reader: "readonly"})
    public = factory.container("besitzer/coll/public", owner=owner)     # entity owner wins below
    private = factory.container("besitzer/coll/private", private=True)
    hidden_collection = factory.container("besitzer/secret/cont", collection_private=True)
    group_cont = factory.container("hasen/coll/cont")

    # Entity owner: everything, inherited down to containers owned by nobody in particular.
    for cont in (public, private, hidden_collection):
        for permission in (Permission.PUSH, Permission.PULL, Permission.DELETE, Permission.EDIT):
            assert allowed(cont, ["user:besitzer"], permission)
    # Others: public containers are pullable by anyone, OCI pulls need a login; nothing private.
    assert allowed(public, [], Permission.PULL) and allowed(public, [], Permission.OCI_PULL)
    assert not allowed(public, ["user:leser"], Permission.PUSH)
    for cont in (private, hidden_collection):
        assert not allowed(cont, ["user:leser"], Permission.PULL)
        assert not allowed(cont, ["user:leser"], Permission.OCI_PULL)
    # Group roles from the entity: readonly reads, contributor writes.
    assert allowed(group_cont, ["group:Hasen:readonly"], Permission.PULL)
    assert not allowed(group_cont, ["group:Hasen:readonly"], Permission.PUSH)
    assert allowed(group_cont, ["group:Hasen:contributor"], Permission.PUSH)
    assert not allowed(group_cont, ["group:Hasen:contributor"], Permission.ADMIN)
    # Admins: everything, from the Root.
    for cont in (private, hidden_collection, group_cont):
        assert allowed(cont, ["role:admin"], Permission.DELETE)
        assert allowed(cont, ["role:admin"], Permission.ADMIN)


def test_a_looked_up_container_walks_its_acl_without_sql_or_user_rows(dbsession, engine):
    """The owners' and the group's names come as columns of the rows that find_container
    loads: the ACL walk runs no SQL, and no User or Group row is loaded for it."""
    factory = Factory(dbsession)
    owner = factory.user("besitzer")
    reader = factory.user("leser")
    factory.group("Hasen", members={reader: "contributor"})
    factory.container("hasen/coll/cont", owner=owner)
    dbsession.expunge_all()
    container = find_container(dbsession, "hasen", "coll", "cont")
    with statements(engine) as seen:
        assert allowed(container, ["user:besitzer"], Permission.DELETE)
        assert allowed(container, ["group:Hasen:contributor"], Permission.PUSH)
        assert allowed(container, ["group:Hasen:readonly"], Permission.PULL)
        assert not allowed(container, ["group:Hasen:readonly"], Permission.PUSH)
        assert not allowed(container, ["user:leser"], Permission.PUSH)
    assert seen == []
    assert not [row for row in dbsession.identity_map.values() if isinstance(row, (User, Group))]


def test_an_owner_assigned_in_the_request_decides_at_once(dbsession):
    """Before any flush: the ACL takes the owner from the row assigned, not the loaded name."""
    factory = Factory(dbsession)
    factory.container("besitzer/coll/cont", owner=factory.user("besitzer"))
    factory.user("leser")
    dbsession.expunge_all()
    container = find_container(dbsession, "besitzer", "coll", "cont")
    assert allowed(container, ["user:besitzer"], Permission.PUSH)
    assert not allowed(container, ["user:leser"], Permission.PUSH)
    container.owner = dbsession.scalar(select(User).where(User.username == "leser"))
    assert allowed(container, ["user:leser"], Permission.PUSH)
    container.owner = container.collection.owner = container.entity.owner = None
    for name in ("besitzer", "leser"):
        assert not allowed(container, [f"user:{name}"], Permission.PUSH)
