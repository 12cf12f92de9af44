"""Entities, collections, containers: get/create/update/delete, short forms, redirects (reference 4.2-4.4, 1.5)."""
import pytest


def _entity(testapp, users, name="user.hase"):
    return testapp.get(f"/v1/entities/{name}", headers=users["headers"]["user"]).json["data"]


def test_entity_get_shape_and_case_insensitive(testapp, users):
    data = testapp.get("/v1/entities/User.Hase", headers=users["headers"]["user"]).json["data"]
    assert data["name"] == "user.hase"
    assert isinstance(data["id"], str)
    assert data["createdBy"] == "user.hase"
    assert data["canEdit"] is True
    assert data["deleted"] is False and data["deletedAt"] is None
    assert data["createdAt"].endswith("+00:00")
    assert data["size"] == 0 and data["isGroup"] is False


def test_entity_of_other_user_is_forbidden_unknown_is_404(testapp, users):
    testapp.get("/v1/entities/other.hase", headers=users["headers"]["user"], status=403)
    response = testapp.get("/v1/entities/nobody", headers=users["headers"]["user"], status=404)
    assert response.json["message"] == "entity nobody not found"
    testapp.get("/v1/entities/user.hase", status=401)


def test_entity_list_shows_only_browsable(testapp, users):
    names = [e["name"] for e in testapp.get("/v1/entities", headers=users["headers"]["user"]).json["data"]]
    assert names == ["user.hase"]
    names = [e["name"] for e in testapp.get("/v1/entities", headers=users["headers"]["admin"]).json["data"]]
    assert names == ["other.hase", "user.hase"]


SYLABS_ENTITY = {"id": "", "name": "admin.hase", "description": "No description", "collections": None,
                 "createdAt": "0001-01-01T00:00:00Z", "deleted": False, "size": 0, "quota": 0,
                 "defaultPrivate": False, "customData": ""}


def test_entity_create_own_name_with_sylabs_payload(testapp, users):
    data = testapp.post_json("/v1/entities", SYLABS_ENTITY, headers=users["headers"]["admin"]).json["data"]
    assert data["name"] == "admin.hase"
    assert data["createdBy"] == "admin.hase"


def test_entity_create_rules(testapp, users):
    headers = users["headers"]["user"]
    testapp.post_json("/v1/entities", {"name": "someone.else"}, headers=headers, status=403)
    testapp.post_json("/v1/entities", {"name": ""}, headers=headers, status=403)   # -> default
    testapp.post_json("/v1/entities", {"name": "user.hase"}, headers=headers, status=412)
    admin = users["headers"]["admin"]
    data = testapp.post_json("/v1/entities", {"name": "Test-Kuh"}, headers=admin).json["data"]
    assert data["name"] == "test-kuh"
    # admin creating an entity named like a user: that user owns it
    testapp.delete("/v1/entities/user.hase", headers=admin)
    data = testapp.post_json("/v1/entities", {"name": "user.hase"}, headers=admin).json["data"]
    assert data["createdBy"] == "user.hase"


@pytest.mark.parametrize("name", ["Babsi Streusand", "-oink", "oink-", "oink.", "_oink", "test%%hase"])
def test_entity_invalid_names(testapp, users, name):
    response = testapp.post_json("/v1/entities", {"name": name}, headers=users["headers"]["admin"], status=400)
    assert "name" in response.json["errors"]


def test_malformed_json_is_400(testapp, users):
    response = testapp.post("/v1/entities", "{oops", headers=users["headers"]["admin"], status=400)
    assert response.json["message"] == "Failed to decode JSON body."
    response = testapp.post("/v1/entities", "", headers=users["headers"]["admin"], status=400)
    testapp.post_json("/v1/entities", [1, 2], headers=users["headers"]["admin"], status=400)


def test_entity_update(testapp, users):
    headers = users["headers"]["user"]
    data = testapp.put_json("/v1/entities/user.hase", {"description": "Oink", "name": "ignored"},
                            headers=headers).json["data"]
    assert data["description"] == "Oink" and data["name"] == "user.hase" and data["updatedAt"]
    testapp.put_json("/v1/entities/user.hase", {"size": 3}, headers=headers, status=400)
    testapp.put_json("/v1/entities/user.hase", {"createdBy": "other.hase"}, headers=headers, status=403)
    testapp.put_json("/v1/entities/other.hase", {"description": "x"}, headers=headers, status=403)


def _collection(testapp, users, name="coll", who="user"):
    entity = _entity(testapp, users)
    return testapp.post_json("/v1/collections", {"name": name, "entity": entity["id"]},
                             headers=users["headers"][who]).json["data"]


def test_collection_create_get_list(testapp, users):
    headers = users["headers"]["user"]
    entity = _entity(testapp, users)
    data = testapp.post_json("/v1/collections", {"name": "Coll", "entity": entity["id"], "id": "",
                                                 "containers": None, "createdAt": "0001-01-01T00:00:00Z"},
                             headers=headers).json["data"]
    assert data["name"] == "coll" and data["entity"] == entity["id"] and data["entityName"] == "user.hase"
    assert testapp.get("/v1/collections/user.hase/COLL", headers=headers).json["data"]["id"] == data["id"]
    listing = testapp.get("/v1/collections/user.hase", headers=headers).json["data"]
    assert [c["name"] for c in listing] == ["coll"]
    testapp.post_json("/v1/collections", {"name": "coll", "entity": entity["id"]}, headers=headers, status=412)


def test_collection_create_errors(testapp, users):
    headers = users["headers"]["user"]
    entity = _entity(testapp, users)
    response = testapp.post_json("/v1/collections", {"name": "x", "entity": int(entity["id"])}, headers=headers,
                                 status=400)
    assert response.json["errors"]["entity"] == "Not a valid string."
    testapp.post_json("/v1/collections", {"name": "x", "entity": "999999"}, headers=headers, status=404)
    other = testapp.get("/v1/entities/other.hase", headers=users["headers"]["other"]).json["data"]
    testapp.post_json("/v1/collections", {"name": "x", "entity": other["id"]}, headers=headers, status=403)


def test_collection_empty_name_is_default_and_default_private(testapp, users):
    headers = users["headers"]["user"]
    testapp.put_json("/v1/entities/user.hase", {"defaultPrivate": True}, headers=headers)
    data = _collection(testapp, users, name="")
    assert data["name"] == "default" and data["private"] is True
    assert testapp.get("/v1/collections/user.hase/", headers=headers).json["data"]["id"] == data["id"]


def test_collection_update_delete(testapp, users):
    headers = users["headers"]["user"]
    coll = _collection(testapp, users)
    assert testapp.put_json("/v1/collections/user.hase/coll", {"private": True, "entity": "1"},
                            headers=headers).json["data"]["private"] is True
    testapp.put_json("/v1/collections/user.hase/coll", {"usedQuota": 1}, headers=headers, status=400)
    testapp.post_json("/v1/containers", {"name": "cont", "collection": coll["id"]}, headers=headers)
    testapp.delete("/v1/collections/user.hase/coll", headers=headers, status=412)
    testapp.delete("/v1/containers/user.hase/coll/cont", headers=headers)
    assert testapp.delete("/v1/collections/user.hase/coll", headers=headers).json == {"status": "ok"}


def test_container_create_get_update_delete(testapp, users):
    headers = users["headers"]["user"]
    coll = _collection(testapp, users)
    data = testapp.post_json("/v1/containers", {"name": "Cont", "collection": coll["id"], "id": "",
                                                "images": None, "imageTags": None, "description": "d"},
                             headers=headers).json["data"]
    assert data["name"] == "cont" and data["collection"] == coll["id"] and data["entityName"] == "user.hase"
    assert data["imageTags"] == {} and data["archTags"] == {} and data["type"] == "mixed" and data["size"] == 0
    got = testapp.get("/v1/containers/user.hase/coll/cont", headers=headers).json["data"]
    assert got["id"] == data["id"]
    testapp.post_json("/v1/containers", {"name": "cont", "collection": coll["id"]}, headers=headers, status=412)
    updated = testapp.put_json("/v1/containers/user.hase/coll/cont", {"readOnly": True, "vcsUrl": "http://x"},
                               headers=headers).json["data"]
    assert updated["readOnly"] is True and updated["vcsUrl"] == "http://x"
    testapp.put_json("/v1/containers/user.hase/coll/cont", {"size": 1}, headers=headers, status=400)
    testapp.get("/v1/containers/user.hase/coll/cont", headers=users["headers"]["other"], status=403)
    assert [c["name"] for c in testapp.get("/v1/containers/user.hase/coll", headers=headers).json["data"]] == ["cont"]
    assert testapp.delete("/v1/containers/user.hase/coll/cont", headers=headers).json == {"status": "ok"}


def test_container_private_collection_forces_private(testapp, users):
    headers = users["headers"]["user"]
    coll = _collection(testapp, users)
    testapp.put_json("/v1/collections/user.hase/coll", {"private": True}, headers=headers)
    data = testapp.post_json("/v1/containers", {"name": "c", "collection": coll["id"], "private": False},
                             headers=headers).json["data"]
    assert data["private"] is True


def test_default_entity_short_forms(testapp, users, factory, db):
    factory.container("default/default/hase", owner=users["admin"])
    factory.container("default/coll/hase", owner=users["admin"])
    db.commit()
    headers = users["headers"]["user"]
    assert testapp.get("/v1/entities/", headers=headers).json["data"]["name"] == "default"
    assert testapp.get("/v1/collections/", headers=headers).json["data"]["name"] == "default"
    data = testapp.get("/v1/containers/hase", headers=headers).json["data"]
    assert data["collectionName"] == "default" and data["entityName"] == "default"
    # everybody may look around `default`, nobody but admins may create there
    entity = testapp.get("/v1/entities/default", headers=headers).json["data"]
    assert entity["canEdit"] is False
    testapp.post_json("/v1/collections", {"name": "pipeline", "entity": entity["id"]}, headers=headers, status=403)


def test_double_slash_redirects(testapp, users):
    response = testapp.get("/v1/collections//x", headers=users["headers"]["user"], status=308)
    assert response.headers["Location"].endswith("/v1/collections/default/x")
    first = testapp.get("/v1/containers///x", status=308)
    assert first.headers["Location"].endswith("/v1/containers/default//x")
    second = testapp.get("/v1/containers/default//x", status=308)
    assert second.headers["Location"].endswith("/v1/containers/default/default/x")
    response = testapp.get("/v1/imagefile//e/c/n:t?arch=amd64", status=308)
    assert response.headers["Location"] == "http://localhost/v1/imagefile/e/c/n:t?arch=amd64"


def test_imagefile_redirect_chain(testapp):
    path = "/v1/imagefile////c:t"
    hops = 0
    while True:
        response = testapp.get(path, expect_errors=True)
        if response.status_int != 308:
            break
        path = response.headers["Location"].replace("http://localhost", "")
        hops += 1
    # /v1/imagefile//default//c:t -> /v1/imagefile//default/default/c:t -> merged (reference 1.5)
    assert hops == 3 and path == "/v1/imagefile/default/default/c:t"


def test_oci_redirect_probe_is_404(testapp, users):
    testapp.get("/v1/oci-redirect?namespace=a/b/c&accessTypes=pull,push&mapped=1", status=404)
    testapp.get("/v1/oci-redirect?namespace=a/b/c", headers=users["headers"]["user"], status=404)


def test_group_member_may_push_readonly_may_not(testapp, users, factory, db):
    from hinkskalle.testing import auth_header
    contributor = factory.user("contri.hase")
    reader = factory.user("read.hase")
    factory.group("Hasen", members={contributor: "contributor", reader: "readonly"})
    headers = {"c": auth_header(factory.token(contributor)), "r": auth_header(factory.token(reader))}
    db.commit()
    entity = testapp.get("/v1/entities/hasen", headers=headers["r"]).json["data"]
    assert entity["isGroup"] is True and entity["groupRef"] == "Hasen"
    testapp.post_json("/v1/collections", {"name": "x", "entity": entity["id"]}, headers=headers["r"], status=403)
    testapp.post_json("/v1/collections", {"name": "x", "entity": entity["id"]}, headers=headers["c"])
