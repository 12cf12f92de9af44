"""The front doors of both protocols: discovery, /version and the OCI base endpoint."""
import base64


def test_version(testapp):
    body = testapp.get("/version").json
    assert body["data"]["apiVersion"] == "2.0.0-alpha.2"


def test_library_config_points_at_this_server(testapp):
    body = testapp.get("/assets/config/config.prod.json").json
    assert body["libraryAPI"]["uri"] == "http://localhost"
    assert body["keystoreAPI"]["uri"] == "http://localhost"
    assert body["tokenAPI"]["uri"] == "http://localhost"


def test_oci_base_anonymous_gets_challenge(testapp):
    response = testapp.get("/v2/", status=401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="http://localhost/v2/token"')
    assert response.json["errors"][0]["code"] == "UNAUTHORIZED"


def test_oci_base_with_basic_password(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    creds = base64.b64encode(b"user.hase:geheim").decode()
    testapp.get("/v2/", headers={"Authorization": f"Basic {creds}"}, status=200)


def test_oci_base_with_wrong_password(testapp, factory, db):
    factory.user("user.hase", password="geheim")
    db.commit()
    creds = base64.b64encode(b"user.hase:falsch").decode()
    response = testapp.get("/v2/", headers={"Authorization": f"Basic {creds}"}, status=401)
    assert response.json["errors"][0]["code"] == "UNAUTHORIZED"


def test_oci_base_with_bearer_token(testapp, factory, db):
    token = factory.token(factory.user())
    db.commit()
    testapp.get("/v2/", headers={"Authorization": f"bearer {token}"}, status=200)


def test_malformed_authorization_is_a_clear_4xx(testapp):
    response = testapp.get("/v2/", headers={"Authorization": "complicated x"}, status=400)
    assert response.json["errors"][0]["code"] == "UNAUTHORIZED"
