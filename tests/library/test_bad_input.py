"""No 500 for bad input: every library and REST endpoint, with malformed JSON, wrong types,
huge numbers, unicode, negative values and missing fields, as user, admin and anonymous."""
import json

import pytest

from .conftest import add_image

BODIES = [b"{", b"[]", b"null", b"123", b'"x"', json.dumps({"name": 5}).encode(),
          json.dumps({"name": "\u00e4\u0000x", "entity": "x", "collection": -1, "container": 10**30,
                      "hash": 5}).encode(),
          json.dumps({"entity": [1], "collection": {"a": 1}, "container": True, "hash": "sha256." + "a"*64,
                      "private": "yes", "description": 7, "customData": ["x"], "expiresAt": "nope", "arch": 5,
                      "filesize": "big", "uploadID": 5, "partNumber": -1, "tags": "x", "Tag": 1, "ImageID": [],
                      "Arch": 3, "username": 3, "password": None, "email": 5, "isAdmin": "x", "quota": -5,
                      "role": "boss", "type": 7, "id": "x", "members": 5, "createdBy": 5, "expires_at": 5,
                      "comment": ["x"], "source": 5, "firstname": 5, "lastname": None, "isActive": "x"}).encode(),
          b'{"filesize": 1e400, "quota": 1e400, "partNumber": 1e400, "exp": 1e400}',
          json.dumps({"type": "image", "id": "1", "exp": 10**20, "username": "user.hase"}).encode(),
          json.dumps({"quota": 10**20}).encode(),
          json.dumps({"expiresAt": "0001-01-01T00:00:00+05:00", "hash": "sha256." + "c" * 64, "container": "CONT"}
                     ).encode(),
          json.dumps({"expiresAt": "9999-12-31T23:59:59-05:00"}).encode(),
          json.dumps({"quota": 10**20, "filesize": 10**20, "partNumber": 10**20, "partSize": 10**20,
                      "uploadID": "x", "username": "x" * 300, "email": "a@" + "b" * 300}).encode(),
          json.dumps({"latest": "abc", "x y": "1", "": None}).encode(),
          json.dumps({"amd64": "x", "": {"latest": 5}}).encode(),
          json.dumps({"amd64": {"latest": {"x": 1}}}).encode(),
          json.dumps({"completedParts": [{"partNumber": True}], "uploadID": "abc"}).encode(),
          json.dumps({"tags": ["a" * 5000]}).encode(),
          json.dumps({"name": "a"*5000, "entity": 1, "collection": 1, "container": 1, "hash": "sha256." + "b"*64,
                      "description": "x"*100000}).encode(),
          ]

PATHS = [
    ("GET", "/v1/entities"), ("POST", "/v1/entities"), ("PUT", "/v1/entities/user.hase"),
    ("GET", "/v1/entities/user.hase"), ("DELETE", "/v1/entities/nope"),
    ("POST", "/v1/collections"), ("PUT", "/v1/collections/user.hase/coll"),
    ("POST", "/v1/containers"), ("PUT", "/v1/containers/user.hase/coll/cont"),
    ("POST", "/v1/images"), ("PUT", "/v1/images/user.hase/coll/cont:latest"),
    ("PUT", "/v1/images/user.hase/coll/cont:latest/tags"),
    ("GET", "/v1/images/user.hase/coll/cont:latest/inspect"),
    ("GET", "/v1/images/user.hase/coll/cont:sha256.zz"),
    ("GET", "/v1/images/user.hase/coll/cont:latest?arch=%00"),
    ("POST", "/v1/imagefile/IMG"), ("POST", "/v2/imagefile/IMG"), ("PUT", "/v2/imagefile/IMG/_complete"),
    ("POST", "/v2/imagefile/IMG/_multipart"), ("PUT", "/v2/imagefile/IMG/_multipart"),
    ("PUT", "/v2/imagefile/IMG/_multipart_complete"), ("PUT", "/v2/imagefile/IMG/_multipart_abort"),
    ("PUT", "/v2/imagefile/_upload/00000000-0000-0000-0000-000000000000"),
    ("PUT", "/v2/imagefile/_upload/xx"),
    ("POST", "/v2/imagefile/99999999999999999999999"),
    ("GET", "/v1/tags/CONT"), ("POST", "/v1/tags/CONT"), ("POST", "/v2/tags/CONT"),
    ("GET", "/v1/tags/99999999999999999999999"), ("GET", "/v1/tags/%C2%B2"), ("GET", "/v1/search?value=%ff"),
    ("GET", "/v1/search?value=%00&arch=,,&signed=x&description=%25"),
    ("GET", "/v1/imagefile/user.hase/coll/cont:latest?download_token=abc"),
    ("GET", "/v1/imagefile/user.hase/coll/cont:latest?arch=%ff"),
    ("GET", "/api/container/coll/cont:%00"),
    ("POST", "/pks/add"), ("GET", "/pks/lookup?op=get&search=0x%00"),
    ("GET", "/pks/lookup?op=index&search=" + "a" * 5000),
    ("GET", "/pks/lookup?op=get&search=0xZZ"), ("GET", "/pks/lookup?op=x"), ("GET", "/pks/lookup"),
    ("POST", "/v1/get-token"), ("GET", "/v1/token-status"), ("POST", "/v1/register"),
    ("GET", "/v1/users"), ("POST", "/v1/users"), ("GET", "/v1/users/user.hase"), ("PUT", "/v1/users/user.hase"),
    ("PATCH", "/v1/users/user.hase"), ("DELETE", "/v1/users/nobody"),
    ("GET", "/v1/users/user.hase/tokens"), ("POST", "/v1/users/user.hase/tokens"),
    ("PUT", "/v1/users/user.hase/tokens/1"), ("DELETE", "/v1/users/user.hase/tokens/99999999999999999999"),
    ("PUT", "/v1/users/user.hase/tokens/abc"),
    ("GET", "/v1/users/user.hase/stars"), ("POST", "/v1/users/user.hase/stars/CONT"),
    ("POST", "/v1/users/user.hase/stars/99999999999999999999999"), ("DELETE", "/v1/users/user.hase/stars/x"),
    ("GET", "/v1/groups"), ("POST", "/v1/groups"), ("GET", "/v1/groups/grp"), ("PUT", "/v1/groups/grp"),
    ("DELETE", "/v1/groups/nope"), ("GET", "/v1/groups/grp/members"), ("PUT", "/v1/groups/grp/members"),
    ("POST", "/v1/groups/grp/members"), ("DELETE", "/v1/groups/grp/members"),
    ("POST", "/v1/get-download-token"), ("GET", "/v1/manifests/1/download?temp_token=abc"),
    ("GET", "/v1/manifests/99999999999999999999/download"), ("GET", "/v1/download/images/x?temp_token=a.b.c"),
    ("GET", "/v1/latest"), ("GET", "/v1/latest?limit=-1"), ("GET", "/v1/adm/nope"), ("PUT", "/v1/adm/expire_images"),
    ("PUT", "/v1/adm/ldap_sync_results"), ("POST", "/v1/adm/expire_images/run"), ("POST", "/v1/adm/nope/run"),
    ("POST", "/v1/ldap/sync"), ("GET", "/v1/ldap/status"), ("GET", "/v1/ldap/ping"),
]


@pytest.mark.parametrize("who", ["user", "admin", None])
def test_bad_input_is_never_a_500(testapp, users, factory, db, store, who):
    cont = factory.container("user.hase/coll/cont", owner=users["user"])
    img = add_image(store, db, cont, b"hello")
    factory.group("grp", members={users["user"]: "admin"})
    db.commit()
    headers = users["headers"][who] if who else {}
    failures = []
    for method, path in PATHS:
        path = path.replace("IMG", str(img.id)).replace("CONT", str(cont.id))
        with_body = method in ("POST", "PUT", "PATCH", "DELETE")
        for body in ([b.replace(b"CONT", str(cont.id).encode()) for b in BODIES] if with_body else [None]):
            resp = testapp.request(path, method=method, body=body, expect_errors=True,
                                   headers=dict(headers, **{"Content-Type": "application/json"}))
            if resp.status_int >= 500:
                failures.append((method, path, body[:80] if body else None, resp.status, resp.text[:300]))
    assert not failures
