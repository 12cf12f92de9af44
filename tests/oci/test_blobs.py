"""Blobs and upload sessions (spec end-2, end-4a/b, end-5, end-6, end-10, end-11, end-13, end-14)."""
from __future__ import annotations

import pytest
import webtest

from hinkskalle import make_app
from hinkskalle.models import Container, Image, Upload

from .conftest import Client, errors, sha

NAME = "hase/coll/cont"


def test_single_post_upload_then_pull(hase, recorder):
    data = b"hello blob"
    response = hase.push_blob(NAME, data)
    assert response.headers["Location"] == f"http://localhost/v2/{NAME}/blobs/{sha(data)}"
    assert response.headers["Docker-Content-Digest"] == sha(data)
    got = hase.get(f"/v2/{NAME}/blobs/{sha(data)}")
    assert got.body == data
    assert got.headers["Docker-Content-Digest"] == sha(data)
    head = hase.head(f"/v2/{NAME}/blobs/{sha(data)}")
    assert head.headers["Content-Length"] == str(len(data)) and head.body == b""
    ranged = hase.request("GET", f"/v2/{NAME}/blobs/{sha(data)}", headers={"Range": "bytes=6-"}, status=206)
    assert ranged.body == b"blob"
    push = recorder.of("push")[0]
    assert (push.target, push.repository, push.protocol) == ("blob", NAME, "oci")
    assert len(recorder.of("pull")) == 2      # GET and ranged GET count, HEAD does not


def test_short_names_map_to_default_entity(admin):
    admin.push_blob("solo", b"x")
    admin.get(f"/v2/default/default/solo/blobs/{sha(b'x')}")
    admin.push_blob("coll/two", b"y")
    admin.get(f"/v2/default/coll/two/blobs/{sha(b'y')}")


def test_single_post_with_wrong_digest_stores_nothing(hase, db):
    response = hase.request("POST", f"/v2/{NAME}/blobs/uploads/?digest={sha(b'other')}",
                            body=b"data", status=400)
    assert errors(response) == ["DIGEST_INVALID"]
    assert db.query(Image).count() == 0


@pytest.mark.parametrize("digest, code", [("sha256:abc", "DIGEST_INVALID"), ("nonsense", "DIGEST_INVALID"),
                                          ("sha512:" + "a" * 128, "UNSUPPORTED")])
def test_bad_digests(hase, digest, code):
    hase.push_blob(NAME, b"x")
    assert errors(hase.get(f"/v2/{NAME}/blobs/{digest}", status=400)) == [code]
    response = hase.request("POST", f"/v2/{NAME}/blobs/uploads/?digest={digest}", body=b"x", status=400)
    assert errors(response) == [code]


def test_unknown_blob_and_repository(hase):
    hase.push_blob(NAME, b"x")
    assert errors(hase.get(f"/v2/{NAME}/blobs/{sha(b'nope')}", status=404)) == ["BLOB_UNKNOWN"]
    assert errors(hase.get(f"/v2/hase/coll/other/blobs/{sha(b'x')}", status=404)) == ["NAME_UNKNOWN"]
    assert errors(hase.get(f"/v2/a/b/c/d/blobs/{sha(b'x')}", status=400)) == ["NAME_INVALID"]


def test_session_post_then_put(hase):
    start = hase.request("POST", f"/v2/{NAME}/blobs/uploads/", status=202)
    location = start.headers["Location"]
    assert location.startswith(f"http://localhost/v2/{NAME}/blobs/uploads/")
    assert start.headers["Docker-Upload-UUID"] in location
    assert start.headers["Range"] == "0-0"
    assert int(start.headers["OCI-Chunk-Min-Length"]) > 0
    done = hase.request("PUT", f"{location}?digest={sha(b'whole')}", body=b"whole", status=201,
                        headers={"Content-Type": "application/octet-stream"})
    assert done.headers["Docker-Content-Digest"] == sha(b"whole")
    assert hase.get(f"/v2/{NAME}/blobs/{sha(b'whole')}").body == b"whole"


def _start(client: Client, name=NAME) -> str:
    return client.request("POST", f"/v2/{name}/blobs/uploads/", status=202).headers["Location"]


def test_chunked_upload_with_status_and_final_chunk_in_put(hase, db):
    location = _start(hase)
    first = hase.request("PATCH", location, body=b"abc", headers={"Content-Range": "0-2"}, status=202)
    assert first.headers["Range"] == "0-2"
    hase.request("PATCH", first.headers["Location"], body=b"def", headers={"Content-Range": "3-5"}, status=202)
    status = hase.get(location, status=204)
    assert status.headers["Range"] == "0-5" and status.headers["Location"] == location
    assert status.headers["Docker-Upload-UUID"]
    whole = b"abcdefgh"
    hase.request("PUT", f"{location}?digest={sha(whole)}", body=b"gh",
                 headers={"Content-Range": "6-7"}, status=201)
    assert hase.get(f"/v2/{NAME}/blobs/{sha(whole)}").body == whole
    assert db.query(Upload).count() == 0


def test_streamed_patch_without_content_range(hase):
    location = _start(hase)
    hase.request("PATCH", location, body=b"stream", status=202)
    hase.request("PATCH", location, body=b"ed", status=202)
    hase.request("PUT", f"{location}?digest={sha(b'streamed')}", status=201)


def test_out_of_order_chunk_is_416(hase):
    location = _start(hase)
    hase.request("PATCH", location, body=b"abc", headers={"Content-Range": "0-2"}, status=202)
    response = hase.request("PATCH", location, body=b"xyz", headers={"Content-Range": "5-7"}, status=416)
    assert errors(response) == ["RANGE_INVALID"]
    assert response.headers["Range"] == "0-2"
    first_not_zero = _start(hase)
    hase.request("PATCH", first_not_zero, body=b"abc", headers={"Content-Range": "1-3"}, status=416)


def test_bad_content_range(hase):
    location = _start(hase)
    response = hase.request("PATCH", location, body=b"abc", headers={"Content-Range": "zero-two"}, status=400)
    assert errors(response) == ["BLOB_UPLOAD_INVALID"]
    response = hase.request("PATCH", location, body=b"abc", headers={"Content-Range": "0-5"}, status=400)
    assert errors(response) == ["SIZE_INVALID"]
    # nothing of the failed chunks was kept
    assert hase.get(location, status=204).headers["Range"] == "0-0"


def test_put_with_wrong_or_missing_digest(hase, db):
    location = _start(hase)
    hase.request("PATCH", location, body=b"abc", status=202)
    assert errors(hase.request("PUT", location, status=400)) == ["DIGEST_INVALID"]
    assert errors(hase.request("PUT", f"{location}?digest={sha(b'xyz')}", status=400)) == ["DIGEST_INVALID"]
    assert db.query(Image).count() == 0


def test_unknown_upload_session(hase):
    hase.push_blob(NAME, b"make the repository")
    for method, status in (("GET", 404), ("PATCH", 404), ("PUT", 404), ("DELETE", 404)):
        url = f"/v2/{NAME}/blobs/uploads/0000000000000000?digest={sha(b'')}"
        assert errors(hase.request(method, url, status=status)) == ["BLOB_UPLOAD_UNKNOWN"]
    assert errors(hase.request("GET", f"/v2/{NAME}/blobs/uploads/not-an-id!", status=404)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_cancel_upload(hase, db):
    location = _start(hase)
    hase.request("PATCH", location, body=b"abc", status=202)
    hase.request("DELETE", location, status=204)
    hase.get(location, status=404)
    assert db.query(Upload).count() == 0


def test_session_belongs_to_its_repository(hase, igel):
    location = _start(hase)
    upload_id = location.rsplit("/", 1)[1]
    hase.push_blob("hase/coll/other", b"x")
    hase.get(f"/v2/hase/coll/other/blobs/uploads/{upload_id}", status=404)
    # another user may not touch it at all
    assert errors(igel.request("PATCH", location, body=b"x", status=403)) == ["DENIED"]


def test_upload_resumes_after_restart(hase, settings, engine):
    location = _start(hase)
    hase.request("PATCH", location, body=b"first-", headers={"Content-Range": "0-5"}, status=202)
    # A new application instance (as after a restart) continues the same session.
    restarted = Client(webtest.TestApp(make_app(settings),
                                       extra_environ={"HTTP_HOST": "localhost"}), hase.token)
    assert restarted.get(location, status=204).headers["Range"] == "0-5"
    restarted.request("PATCH", location, body=b"second", headers={"Content-Range": "6-11"}, status=202)
    restarted.request("PUT", f"{location}?digest={sha(b'first-second')}", status=201)
    assert restarted.get(f"/v2/{NAME}/blobs/{sha(b'first-second')}").body == b"first-second"


def test_mount_from_readable_repository(hase, igel, recorder):
    hase.push_blob("hase/coll/public", b"shared layer")
    response = igel.request("POST", f"/v2/igel/coll/copy/blobs/uploads/?mount={sha(b'shared layer')}"
                            "&from=hase/coll/public", status=201)
    assert response.headers["Location"].endswith(f"/v2/igel/coll/copy/blobs/{sha(b'shared layer')}")
    assert igel.get(f"/v2/igel/coll/copy/blobs/{sha(b'shared layer')}").body == b"shared layer"


def test_mount_from_unreadable_repository_starts_a_session(hase, igel, factory, db):
    factory.container("hase/secret/box", private=True)
    db.commit()
    hase.push_blob("hase/secret/box", b"private layer")
    response = igel.request("POST", f"/v2/igel/coll/copy/blobs/uploads/?mount={sha(b'private layer')}"
                            "&from=hase/secret/box", status=202)
    assert "/blobs/uploads/" in response.headers["Location"]
    igel.get(f"/v2/igel/coll/copy/blobs/{sha(b'private layer')}", status=404)


def test_blob_delete(hase, igel, recorder):
    hase.push_blob(NAME, b"gone soon")
    assert errors(igel.delete(f"/v2/{NAME}/blobs/{sha(b'gone soon')}", status=403)) == ["DENIED"]
    hase.delete(f"/v2/{NAME}/blobs/{sha(b'gone soon')}")
    hase.get(f"/v2/{NAME}/blobs/{sha(b'gone soon')}", status=404)
    assert errors(hase.delete(f"/v2/{NAME}/blobs/{sha(b'gone soon')}", status=404)) == ["BLOB_UNKNOWN"]
    assert recorder.of("delete")[0].digest == sha(b"gone soon")


def test_anonymous_gets_the_token_challenge(anonymous, hase):
    hase.push_blob(NAME, b"x")
    response = anonymous.get(f"/v2/{NAME}/blobs/{sha(b'x')}", status=401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://localhost/v2/token",service="localhost')
    assert challenge.endswith(f',scope="repository:{NAME}:pull"')
    response = anonymous.request("POST", "/v2/other/blobs/uploads/", status=401)
    assert response.headers["WWW-Authenticate"].endswith('scope="repository:other:pull,push"')
    assert errors(response) == ["UNAUTHORIZED"]


def test_push_only_into_own_entity_or_contributor_group(hase, igel, factory, db, accounts):
    assert errors(igel.push_blob(NAME, b"x", status=403)) == ["DENIED"]
    assert errors(igel.push_blob("newentity/c/n", b"x", status=403)) == ["DENIED"]
    assert errors(hase.push_blob("default/c/n", b"x", status=403)) == ["DENIED"]
    users = {name: db.merge(user) for name, (user, _) in accounts.items()}
    factory.group("Hasen", members={users["hase"]: "contributor", users["igel"]: "readonly"})
    db.commit()
    hase.push_blob("hasen/c/n", b"x")
    assert errors(igel.push_blob("hasen/c/n", b"y", status=403)) == ["DENIED"]


def test_private_repository_is_not_readable_by_others(hase, igel, factory, db):
    factory.container("hase/coll/private", private=True)
    db.commit()
    hase.push_blob("hase/coll/private", b"secret")
    assert errors(igel.get(f"/v2/hase/coll/private/blobs/{sha(b'secret')}", status=403)) == ["DENIED"]
    # public repositories are readable by any logged-in user
    hase.push_blob(NAME, b"public")
    igel.get(f"/v2/{NAME}/blobs/{sha(b'public')}")


def test_quota_exceeded_is_oci_error_and_stores_nothing(testapp, factory, db):
    user = factory.user("kurz", quota=5)
    factory.entity("kurz", owner=user)
    client = Client(testapp, factory.token(user))
    db.commit()
    response = client.push_blob("kurz/c/n", b"more than five bytes", status=413)
    assert errors(response) == ["DENIED"]
    assert db.query(Image).count() == 0


def test_plugin_veto_refuses_blob(hase, recorder, db):
    recorder.vetoes["push"] = "virus found"
    response = hase.push_blob(NAME, b"evil", status=403)
    assert response.json["errors"][0]["detail"] == "virus found"
    assert db.query(Image).count() == 0


def test_read_only_container_refuses_uploads_and_deletes(hase, db):
    hase.push_blob("hase/coll/frozen", b"before")
    db.query(Container).filter_by(name="frozen").one().read_only = True
    db.commit()
    assert errors(hase.push_blob("hase/coll/frozen", b"x", status=403)) == ["DENIED"]
    assert errors(hase.delete(f"/v2/hase/coll/frozen/blobs/{sha(b'before')}", status=403)) == ["DENIED"]
