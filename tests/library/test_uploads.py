"""Library pushes: v1 raw upload, v2 single, v2 multipart, and every way they can go wrong (reference 4.8)."""
import json
import threading
import time

import pytest
from webob import Request

from hinkskalle.models import Image, Upload

from .conftest import fixture_bytes, fresh, sha256

TINY = fixture_bytes("tiny.sif")
SIGNED = fixture_bytes("tiny_signed.sif")


def new_image(testapp, users, container, data=TINY, who="user", status=200):
    response = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(data)}", "container": str(container.id),
                                                "id": "", "uploaded": False, "description": ""},
                                 headers=users["headers"][who], status=status)
    return response.json["data"] if status == 200 else response


def v2_upload(testapp, users, image_id, data=TINY, who="user"):
    headers = users["headers"][who]
    url = testapp.post_json(f"/v2/imagefile/{image_id}", {"filesize": len(data), "sha256sum": sha256(data),
                                                          "md5sum": "x"}, headers=headers).json["data"]["uploadURL"]
    put = testapp.put(url.replace("http://localhost", ""), data, content_type="application/octet-stream")
    assert put.headers["ETag"] == sha256(data) and put.body == b""
    return testapp.put_json(f"/v2/imagefile/{image_id}/_complete", {}, headers=headers)


def test_v1_upload(testapp, users, container, db, recorder):
    image = new_image(testapp, users, container)
    assert image["uploaded"] is False and image["uploadState"] == "initialized"
    assert testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["user"]).text == "Danke!"
    row = db.get(Image, int(image["id"]))
    assert row.upload_state == "completed" and row.size == len(TINY) and row.arch == "amd64"
    assert row.sif_info["deffile"] == "Bootstrap: scratch\n"
    assert [e.digest for e in recorder.of("push")] == [f"sha256:{sha256(TINY)}"]


def test_v1_upload_wrong_hash_is_422_and_invisible(testapp, users, container, db):
    image = new_image(testapp, users, container)
    response = testapp.post(f"/v1/imagefile/{image['id']}", SIGNED, headers=users["headers"]["user"], status=422)
    assert "does not match" in response.json["message"]
    assert db.get(Image, int(image["id"])).upload_state == "initialized"


def test_not_a_sif_is_422(testapp, users, container, db):
    data = b"Hello Dorian!"
    image = new_image(testapp, users, container, data=data)
    response = testapp.post(f"/v1/imagefile/{image['id']}", data, headers=users["headers"]["user"], status=422)
    assert "SIF" in response.json["message"]
    assert db.get(Image, int(image["id"])).upload_state == "initialized"


def test_upload_permissions_and_readonly(testapp, users, container, db):
    image = new_image(testapp, users, container)
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["other"], status=403)
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, status=401)
    testapp.post("/v1/imagefile/999999", TINY, headers=users["headers"]["user"], status=404)
    new_image(testapp, users, container, data=SIGNED, who="other", status=403)
    testapp.put_json("/v1/containers/user.hase/coll/cont", {"readOnly": True}, headers=users["headers"]["user"])
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["user"], status=406)
    new_image(testapp, users, container, data=SIGNED, status=406)


def test_image_create_duplicate_and_bad_hash(testapp, users, container):
    new_image(testapp, users, container)
    new_image(testapp, users, container, status=412)
    testapp.post_json("/v1/images", {"hash": "sha256.xyz", "container": str(container.id)},
                      headers=users["headers"]["user"], status=400)
    testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(TINY)}", "container": container.id},
                      headers=users["headers"]["user"], status=400)


def test_v2_single_upload(testapp, users, container, db, recorder):
    image = new_image(testapp, users, container)
    body = v2_upload(testapp, users, image["id"]).json["data"]
    assert body["containerUrl"] == "entities/user.hase/collections/coll/containers/cont"
    assert body["quota"] == {"quotaTotal": 0, "quotaUsage": len(TINY)}
    assert db.get(Image, int(image["id"])).upload_state == "completed"
    assert len(recorder.of("push")) == 1


def test_v2_upload_url_is_unguessable_uuid_and_single_use(testapp, users, container):
    image = new_image(testapp, users, container)
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)},
                            headers=users["headers"]["user"]).json["data"]["uploadURL"]
    upload_id = url.rsplit("/", 1)[1]
    assert len(upload_id) == 36
    testapp.put(f"/v2/imagefile/_upload/{upload_id}", TINY)
    testapp.put(f"/v2/imagefile/_upload/{upload_id}", TINY, status=406)
    testapp.put("/v2/imagefile/_upload/not-a-uuid", TINY, status=404)
    testapp.put("/v2/imagefile/_upload/00000000-0000-4000-8000-000000000000", TINY, status=404)


@pytest.mark.parametrize("body,message", [(TINY[:-1], "size"), (TINY + b"x", "larger"),
                                          (SIGNED[:len(TINY)], "sha256")])
def test_v2_put_mismatch_is_422(testapp, users, container, db, body, message):
    image = new_image(testapp, users, container)
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)},
                            headers=users["headers"]["user"]).json["data"]["uploadURL"]
    response = testapp.put(url.replace("http://localhost", ""), body, status=422)
    assert message in response.json["message"]
    testapp.put_json(f"/v2/imagefile/{image['id']}/_complete", {}, headers=users["headers"]["user"], status=404)


def test_v2_announced_sha_mismatch(testapp, users, container):
    image = new_image(testapp, users, container)
    testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY), "sha256sum": sha256(SIGNED)},
                      headers=users["headers"]["user"], status=422)


def test_v2_expired_upload_is_406(testapp, users, container, db):
    from datetime import timedelta

    from hinkskalle.models.meta import utcnow
    image = new_image(testapp, users, container)
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)},
                            headers=users["headers"]["user"]).json["data"]["uploadURL"]
    upload = db.get(Upload, url.rsplit("/", 1)[1])
    upload.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    response = testapp.put(url.replace("http://localhost", ""), TINY, status=406)
    assert "expired" in response.json["message"]


def test_v2_complete_by_other_user_is_403(testapp, users, container, db, factory):
    image = new_image(testapp, users, container)
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)},
                            headers=users["headers"]["user"]).json["data"]["uploadURL"]
    testapp.put(url.replace("http://localhost", ""), TINY)
    # an admin may finish it, another writer may not
    testapp.put_json(f"/v2/imagefile/{image['id']}/_complete", {}, headers=users["headers"]["other"], status=403)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_complete", {}, headers=users["headers"]["admin"])


def test_v2_quota_precheck_413(testapp, users, container, db):
    user = db.merge(users["user"])
    user.quota = 100
    db.commit()
    image = new_image(testapp, users, container)
    testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)}, headers=users["headers"]["user"],
                      status=413)
    testapp.post_json(f"/v2/imagefile/{image['id']}/_multipart", {"filesize": len(TINY)},
                      headers=users["headers"]["user"], status=413)
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["user"], status=413)
    assert db.get(Image, int(image["id"])).upload_state != "completed"


@pytest.fixture
def small_parts(app):
    app.registry.settings["hinkskalle.multipart_chunk"] = 16 * 1024
    return 16 * 1024


def multipart_push(testapp, users, image_id, data=TINY, part_size=16 * 1024, announce=True):
    """Start a multipart upload and send every part, with its sha256 (`announce`) as clients
    in S3 mode do, or without, as clients do when told s3compliant "false"."""
    headers = users["headers"]["user"]
    start = testapp.post_json(f"/v2/imagefile/{image_id}/_multipart", {"filesize": len(data)},
                              headers=headers).json["data"]
    assert start["partSize"] == part_size and start["options"] == {"s3compliant": "false"}
    parts = []
    for number in range(1, start["totalParts"] + 1):
        chunk = data[(number - 1) * part_size:number * part_size]
        ask = {"uploadID": start["uploadID"], "partNumber": number, "partSize": len(chunk),
               "sha256sum": sha256(chunk) if announce else ""}
        url = testapp.put_json(f"/v2/imagefile/{image_id}/_multipart", ask,
                               headers=headers).json["data"]["presignedURL"]
        stored = testapp.put(url.replace("http://localhost", ""), chunk)
        # An object store's answer: no body, so that clients which do not read one (Go's)
        # can reuse the connection.
        assert stored.body == b"" and stored.headers["Content-Length"] == "0"
        if announce:
            assert stored.headers["ETag"] == sha256(chunk)
        parts.append({"partNumber": number, "token": stored.headers["ETag"]})
    return start, parts


def test_multipart_upload(testapp, users, container, db, small_parts):
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"])
    assert start["totalParts"] == 3
    body = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                            {"uploadID": start["uploadID"], "completedParts": parts},
                            headers=users["headers"]["user"]).json["data"]
    assert body["containerUrl"].endswith("/containers/cont")
    row = db.get(Image, int(image["id"]))
    assert row.upload_state == "completed" and row.size == len(TINY)


def test_multipart_parts_without_sha256_get_opaque_etags(testapp, users, container, db, small_parts):
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"], announce=False)
    tokens = [p["token"] for p in parts]
    assert len(set(tokens)) == len(tokens) and all(len(t) == 64 for t in tokens)
    assert tokens[0] != sha256(TINY[:16 * 1024])
    # The tokens name exactly these writes: the part's sha256 is not one of them.
    forged = [dict(parts[0], token=sha256(TINY[:16 * 1024]))] + parts[1:]
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": forged}, headers=headers, status=422)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": parts}, headers=headers)
    assert db.get(Image, int(image["id"])).upload_state == "completed"


def test_multipart_part_with_a_wrong_sha256_is_422(testapp, users, container, db, small_parts):
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start = testapp.post_json(f"/v2/imagefile/{image['id']}/_multipart", {"filesize": len(TINY)},
                              headers=headers).json["data"]
    chunk = TINY[:16 * 1024]
    url = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart",
                           {"uploadID": start["uploadID"], "partNumber": 1, "partSize": len(chunk),
                            "sha256sum": sha256(b"something else")}, headers=headers).json["data"]["presignedURL"]
    response = testapp.put(url.replace("http://localhost", ""), chunk, status=422)
    assert "of part 1 does not match" in response.json["message"]
    assert db.get(Upload, start["uploadID"]).parts[0].state != "uploaded"


def test_multipart_part_rules(testapp, users, container, small_parts):
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start = testapp.post_json(f"/v2/imagefile/{image['id']}/_multipart", {"filesize": 2 * 16 * 1024 + 1},
                              headers=headers).json["data"]
    assert start["totalParts"] == 3
    ask = {"uploadID": start["uploadID"], "partNumber": 1, "partSize": 16 * 1024}
    first = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", ask, headers=headers).json["data"]
    again = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", ask, headers=headers).json["data"]
    assert first == again
    for number in (0, -1, 4):
        testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", dict(ask, partNumber=number), headers=headers,
                         status=406)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", dict(ask, partNumber=3, partSize=5),
                     headers=headers, status=422)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", dict(ask, uploadID="nope"), headers=headers,
                     status=404)
    # a single upload is no multipart upload
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": 3}, headers=headers).json["data"]["uploadURL"]
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart", dict(ask, uploadID=url.rsplit("/", 1)[1]),
                     headers=headers, status=406)
    # a part of wrong content
    testapp.put(first["presignedURL"].replace("http://localhost", ""), b"x" * 16 * 1024, status=200)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete", {"uploadID": start["uploadID"]},
                     headers=headers, status=406)


def test_multipart_complete_failures(testapp, users, container, db, small_parts):
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"])
    bad = [dict(parts[0], token="0" * 64)] + parts[1:]
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": bad}, headers=headers, status=422)
    twice = parts + [parts[0]]
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": twice}, headers=headers, status=400)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": parts}, headers=users["headers"]["admin"])


@pytest.mark.parametrize("announce", [True, False])
def test_multipart_wrong_total_hash_is_422(testapp, users, container, db, small_parts, announce):
    # parts that verify individually (or come without a sha256 of their own, as clients send
    # them when told s3compliant "false") but do not add up to the image's hash
    image = new_image(testapp, users, container)
    other = SIGNED[:len(TINY)]
    start, parts = multipart_push(testapp, users, image["id"], data=other, announce=announce)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": parts}, headers=users["headers"]["user"],
                     status=422)
    assert db.get(Image, int(image["id"])).upload_state == "initialized"


def test_multipart_abort(testapp, users, container, db, small_parts):
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"])
    response = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_abort", {"uploadID": start["uploadID"]},
                                headers=headers)
    assert response.text == "Sorry it did not work out"
    assert db.get(Image, int(image["id"])).upload_state == "failed"
    upload = db.get(Upload, start["uploadID"])
    assert upload.state == "failed" and all(p.state == "failed" for p in upload.parts)
    testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                     {"uploadID": start["uploadID"], "completedParts": parts}, headers=headers, status=406)
    # and the image can still be pushed afterwards
    v2_upload(testapp, users, image["id"])


def test_upload_of_another_image_cannot_be_used(testapp, users, container, small_parts):
    headers = users["headers"]["user"]
    first = new_image(testapp, users, container)
    second = new_image(testapp, users, container, data=SIGNED)
    start = testapp.post_json(f"/v2/imagefile/{first['id']}/_multipart", {"filesize": len(TINY)},
                              headers=headers).json["data"]
    testapp.put_json(f"/v2/imagefile/{second['id']}/_multipart_abort", {"uploadID": start["uploadID"]},
                     headers=headers, status=404)


def test_dedup_from_readable_copy(testapp, users, container, factory, db):
    image = new_image(testapp, users, container)
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["user"])
    other = factory.container("other.hase/coll/cont", owner=users["other"])
    db.commit()
    # user.hase's container is public: other.hase may pull it, so the copy is instant
    copy = new_image(testapp, users, other, who="other")
    assert copy["uploaded"] is True and copy["uploadState"] == "completed"


def test_no_dedup_from_private_copy(testapp, users, container, factory, db):
    testapp.put_json("/v1/containers/user.hase/coll/cont", {"private": True}, headers=users["headers"]["user"])
    image = new_image(testapp, users, container)
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=users["headers"]["user"])
    other = factory.container("other.hase/coll/cont", owner=users["other"])
    db.commit()
    copy = new_image(testapp, users, other, who="other")
    assert copy["uploaded"] is False


def test_truncated_upload_leaves_nothing(live_server, testapp, users, container, db):
    """A client that announces more than it sends and hangs up: the session stays usable."""
    import socket
    image = new_image(testapp, users, container)
    url = testapp.post_json(f"/v2/imagefile/{image['id']}", {"filesize": len(TINY)},
                            headers=users["headers"]["user"]).json["data"]["uploadURL"]
    path = url.replace("http://localhost", "")
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(TINY)}\r\n\r\n".encode()
                     + TINY[:1000])
    fresh(db)
    assert db.get(Upload, path.rsplit("/", 1)[1]).state == "initialized"
    testapp.put(path, TINY)
    v2_done = testapp.put_json(f"/v2/imagefile/{image['id']}/_complete", {}, headers=users["headers"]["user"])
    assert v2_done.json["data"]["containerUrl"].endswith("/cont")


class HeldBody:
    """`wsgi.input` that hands out a few bytes, then waits until released: a part still being
    written when another request arrives."""

    def __init__(self, data: bytes):
        self.data, self.sent = data, 0
        self.reading, self.release = threading.Event(), threading.Event()

    def read(self, size=-1):
        if self.sent:
            self.release.wait(30)
        size = len(self.data) - self.sent if size is None or size < 0 else size
        piece = self.data[self.sent:self.sent + (size if self.sent else min(size, 10))]
        self.sent += len(piece)
        self.reading.set()
        return piece


def test_completing_waits_for_a_part_still_being_written(app, testapp, users, container, db, small_parts):
    """No byte may land in the file after it was hashed and published under its digest (the
    blob other pushes of that digest share): completion waits for writes in flight."""
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"])
    number = start["totalParts"]
    last = TINY[(number - 1) * 16 * 1024:]
    url = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart",
                           {"uploadID": start["uploadID"], "partNumber": number, "partSize": len(last),
                            "sha256sum": sha256(last)}, headers=headers).json["data"]["presignedURL"]
    body = HeldBody(last)          # the client sends its last part again, slowly
    finished = {}

    def call(name, request):
        finished[name] = (request.get_response(app).status_int, time.monotonic())

    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"}
    resend = Request.blank(url.replace("http://localhost", ""), environ=dict(environ), method="PUT")
    resend.environ.update({"wsgi.input": body, "CONTENT_LENGTH": str(len(last))})
    complete = Request.blank(f"/v2/imagefile/{image['id']}/_multipart_complete", environ=dict(environ),
                             method="PUT", headers=dict(headers, **{"Content-Type": "application/json"}),
                             body=json.dumps({"uploadID": start["uploadID"], "completedParts": parts}).encode())
    writing = threading.Thread(target=call, args=("part", resend))
    writing.start()
    assert body.reading.wait(30)
    completing = threading.Thread(target=call, args=("complete", complete))
    completing.start()
    completing.join(1.0)
    assert "complete" not in finished            # waiting for the part's lock
    body.release.set()
    writing.join(30)
    completing.join(30)
    assert finished["part"][0] == 200 and finished["complete"][0] == 200
    assert finished["part"][1] < finished["complete"][1]
    with open(app.registry["blobstore"].path("sha256:" + sha256(TINY)), "rb") as published:
        assert published.read() == TINY
    # A part sent after completion finds the upload completed.
    testapp.put(url.replace("http://localhost", ""), last, status=406)


def test_a_part_sent_again_to_another_process_is_what_gets_checked(app, testapp, settings, users,
                                                                    container, db, small_parts):
    """Two server processes (two apps on one database and store): one received every part
    and hashed them as they came; the first part is then sent again, with other bytes, to
    the other. Completing in the first must check the bytes in the file, not its memory."""
    import webtest

    from hinkskalle import make_app
    other = webtest.TestApp(make_app(settings),
                            extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"})
    headers = users["headers"]["user"]
    image = new_image(testapp, users, container)
    start, parts = multipart_push(testapp, users, image["id"], announce=False)
    first = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart",
                             {"uploadID": start["uploadID"], "partNumber": 1, "partSize": 16 * 1024},
                             headers=headers).json["data"]["presignedURL"]
    forged = other.put(first.replace("http://localhost", ""), b"\0" * 16 * 1024)
    parts[0]["token"] = forged.headers["ETag"]
    response = testapp.put_json(f"/v2/imagefile/{image['id']}/_multipart_complete",
                                {"uploadID": start["uploadID"], "completedParts": parts}, headers=headers,
                                status=422)
    assert response.json["message"].startswith("digest ")        # the file's, not an ETag's
    assert db.get(Image, int(image["id"])).upload_state != "completed"
    assert not app.registry["blobstore"].exists("sha256:" + sha256(TINY))
