"""Image metadata, downloads (HEAD, Range, signed 303), tags v1/v2, search, inspect, shub
(reference 4.5-4.7, 4.9, 5)."""
import time

import jwt
import pytest

from hinkskalle.models import Image

from .conftest import add_image, fixture_bytes, fresh, sha256

TINY = fixture_bytes("tiny.sif")
SIGNED = fixture_bytes("tiny_signed.sif")
H = f"sha256.{sha256(TINY)}"


@pytest.fixture
def image(store, db, container):
    image = add_image(store, db, container, TINY)
    db.commit()
    return image


def test_get_image_by_tag_anonymous(testapp, image):
    data = testapp.get("/v1/images/user.hase/coll/cont").json["data"]
    assert data["hash"] == H and data["size"] == len(TINY) and data["id"] == str(image.id)
    assert data["canEdit"] is False and data["tags"] == ["latest"] and data["type"] == "singularity"
    assert data["containerName"] == "cont" and data["entityName"] == "user.hase"
    assert testapp.get("/v1/images/user.hase/coll/cont:latest?arch=amd64").json["data"]["id"] == str(image.id)
    assert testapp.get("/v1/images/user.hase/coll/cont:LATEST").json["data"]["id"] == str(image.id)


def test_get_image_by_hash_and_404s(testapp, image):
    assert testapp.get(f"/v1/images/user.hase/coll/cont:{H}?arch=arm64").json["data"]["id"] == str(image.id)
    testapp.get(f"/v1/images/user.hase/coll/cont:sha256.{'0' * 64}", status=404)
    testapp.get("/v1/images/user.hase/coll/cont:nope", status=404)
    testapp.get("/v1/images/user.hase/coll/nope", status=404)


def test_arch_specific_tags(testapp, store, db, container):
    add_image(store, db, container, TINY, tag="v1", arch="c64")
    db.commit()
    testapp.get("/v1/images/user.hase/coll/cont:v1", status=404)
    testapp.get("/v1/images/user.hase/coll/cont:v1?arch=c64", status=200)
    testapp.get("/v1/images/user.hase/coll/cont:v1?arch%3Dc64", status=200)   # singularity 3.7 quirk
    testapp.get("/v1/images/user.hase/coll/cont:v1?arch=", status=404)


def test_short_forms(testapp, users, store, db, factory):
    add_image(store, db, factory.container("default/default/hase", owner=users["admin"]), TINY)
    add_image(store, db, factory.container("default/coll/hase", owner=users["admin"]), SIGNED)
    db.commit()
    assert testapp.get("/v1/images/hase").json["data"]["hash"] == H
    assert testapp.get("/v1/images/coll/hase").json["data"]["hash"] == f"sha256.{sha256(SIGNED)}"
    assert testapp.get("/v1/imagefile/hase").body == TINY


@pytest.mark.parametrize("private,collection_private", [(True, False), (False, True)])
def test_private_images(testapp, users, store, db, factory, private, collection_private):
    container = factory.container("user.hase/priv/cont", owner=users["user"], private=private,
                                  collection_private=collection_private)
    add_image(store, db, container, TINY)
    db.commit()
    testapp.get("/v1/images/user.hase/priv/cont", status=401)   # anonymous: log in first
    testapp.get("/v1/images/user.hase/priv/cont", headers=users["headers"]["other"], status=403)
    testapp.get("/v1/imagefile/user.hase/priv/cont", headers=users["headers"]["other"], status=403)
    testapp.get("/v1/images/user.hase/priv/cont/inspect", headers=users["headers"]["other"], status=403)
    testapp.get("/v1/images/user.hase/priv/cont:latest/inspect", headers=users["headers"]["other"], status=403)
    testapp.get("/v1/images/user.hase/priv/cont", headers=users["headers"]["user"], status=200)
    testapp.get("/v1/imagefile/user.hase/priv/cont", headers=users["headers"]["admin"], status=200)


def test_singularity_user_agent_wants_sif(testapp, store, db, container):
    add_image(store, db, container, b"layer", tag="oci", media_type="application/vnd.oci.image.layer.v1.tar")
    db.commit()
    testapp.get("/v1/images/user.hase/coll/cont:oci", headers={"User-Agent": "Singularity/3.7.3 (Linux)"},
                status=406)
    assert testapp.get("/v1/images/user.hase/coll/cont:oci").json["data"]["type"] == "oci"
    testapp.get("/v1/imagefile/user.hase/coll/cont:oci", status=406)


def test_missing_blob_is_broken(testapp, store, db, image):
    store.delete(image.digest)
    assert testapp.get("/v1/images/user.hase/coll/cont").json["data"]["uploadState"] == "broken"
    testapp.get("/v1/imagefile/user.hase/coll/cont", status=404)


def test_download_counts_and_head(testapp, db, image, recorder):
    response = testapp.get("/v1/imagefile/user.hase/coll/cont:latest?arch=amd64")
    assert response.body == TINY and response.headers["Accept-Ranges"] == "bytes"
    head = testapp.head("/v1/imagefile/user.hase/coll/cont")
    assert head.headers["Content-Length"] == str(len(TINY)) and head.body == b""
    fresh(db)
    row = db.get(Image, image.id)
    assert row.download_count == 1 and row.container.download_count == 1
    assert len(recorder.of("pull")) == 1


def test_range_download(testapp, db, image):
    response = testapp.get("/v1/imagefile/user.hase/coll/cont", headers={"Range": "bytes=10-19"}, status=206)
    assert response.body == TINY[10:20]
    assert response.headers["Content-Range"] == f"bytes 10-19/{len(TINY)}"
    testapp.get("/v1/imagefile/user.hase/coll/cont", headers={"Range": f"bytes={len(TINY) + 5}-"}, status=416)
    fresh(db)
    assert db.get(Image, image.id).download_count == 0


def test_library_clients_get_signed_redirect(testapp, db, image, recorder):
    agent = {"User-Agent": "apptainer/1.2.2 (Linux x86_64) Go/1.21"}
    response = testapp.get("/v1/imagefile/user.hase/coll/cont:latest?arch=amd64", headers=agent, status=303)
    location = response.headers["Location"]
    assert location.startswith(f"http://localhost/v1/imagefile/user.hase/coll/cont:{H}?download_token=")
    path = location.replace("http://localhost", "")
    ranged = testapp.get(path, headers={"Range": "bytes=0-1024"}, status=206)
    assert ranged.headers["Content-Range"] == f"bytes 0-1024/{len(TINY)}"
    assert testapp.get(path).body == TINY
    fresh(db)
    assert db.get(Image, image.id).download_count == 1 and len(recorder.of("pull")) == 1
    # a token is bound to its image
    testapp.get(path.replace("cont:", "other:"), status=404)
    testapp.get(path[:-3] + "abc", status=403)


def test_signed_redirect_for_private_image(testapp, users, store, db, factory):
    container = factory.container("user.hase/priv/cont", owner=users["user"], private=True)
    add_image(store, db, container, TINY)
    db.commit()
    agent = {"User-Agent": "Singularity/4.1"}
    testapp.get("/v1/imagefile/user.hase/priv/cont", headers=agent, status=401)
    location = testapp.get("/v1/imagefile/user.hase/priv/cont", headers=dict(agent, **users["headers"]["user"]),
                           status=303).headers["Location"]
    assert testapp.get(location.replace("http://localhost", "")).body == TINY


def test_image_not_uploaded_is_404_on_pull(testapp, db, container):
    from hinkskalle.models import Tag
    image = Image(container=container, digest="sha256:" + "a" * 64, upload_state="initialized")
    db.add(image)
    db.add(Tag(container=container, name="latest", arch="amd64", image=image))
    db.commit()
    testapp.get("/v1/imagefile/user.hase/coll/cont", status=404)


def test_update_and_delete_image(testapp, users, db, image, store, recorder):
    headers = users["headers"]["user"]
    image_id = image.id
    data = testapp.put_json("/v1/images/user.hase/coll/cont:latest", {"description": "Oink", "hash": "x"},
                            headers=headers).json["data"]
    assert data["description"] == "Oink" and data["hash"] == H
    testapp.put_json("/v1/images/user.hase/coll/cont:latest", {"signed": True}, headers=headers, status=400)
    testapp.put_json("/v1/images/user.hase/coll/cont:latest", {"description": "x"},
                     headers=users["headers"]["other"], status=403)
    testapp.delete("/v1/images/user.hase/coll/cont:latest?arch=amd64", headers=users["headers"]["other"], status=403)
    assert testapp.delete("/v1/images/user.hase/coll/cont:latest?arch=amd64", headers=headers).json == {"status": "ok"}
    db.expunge_all()
    assert db.get(Image, image_id) is None
    assert len(recorder.of("delete")) == 1


def test_expires_at_only_by_uploader(testapp, users, db, image):
    data = testapp.put_json("/v1/images/user.hase/coll/cont:latest", {"expiresAt": "2030-08-05T23:47:45.480581"},
                            headers=users["headers"]["user"]).json["data"]
    assert data["expiresAt"] == "2030-08-05T23:47:45.480581+00:00"


def test_inspect_serves_deffile(testapp, users, store, db, container):
    from hinkskalle.services import sif
    image = add_image(store, db, container, SIGNED, tag="signed")
    image.sif_info = sif.inspect_file(store.path(image.digest))
    db.commit()
    data = testapp.get("/v1/images/user.hase/coll/cont:signed/inspect").json["data"]["attributes"]
    assert data["deffile"] == "Bootstrap: scratch\n"
    assert data["signatures"][0]["fingerprint"] == "D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"


def test_container_with_tags(testapp, users, image, store, db, container):
    add_image(store, db, container, SIGNED, tag="v1", arch="arm64")
    db.commit()
    data = testapp.get("/v1/containers/user.hase/coll/cont", headers=users["headers"]["user"]).json["data"]
    assert data["imageTags"] == {"latest": str(image.id)}
    assert set(data["archTags"]) == {"amd64", "arm64"}
    assert data["size"] == 2 and data["type"] == "singularity"
    images = testapp.get("/v1/containers/user.hase/coll/cont/images", headers=users["headers"]["user"]).json["data"]
    assert len(images) == 2


# -- tags ------------------------------------------------------------------------------

def test_tags_v1(testapp, users, image, store, db, container):
    headers = users["headers"]["user"]
    second = add_image(store, db, container, SIGNED, tag=None)
    db.commit()
    base = f"/v1/tags/{container.id}"
    assert testapp.get(base, headers=headers).json["data"] == {"latest": str(image.id)}
    data = testapp.post_json(base, {"Tag": "TestHase", "ImageID": str(second.id)}, headers=headers).json["data"]
    assert data == {"latest": str(image.id), "testhase": str(second.id)}
    data = testapp.post_json(base, {"latest": str(second.id), "OInK": None, "testhase": None},
                             headers=headers).json["data"]
    assert data == {"latest": str(second.id)}
    testapp.post_json(base, {"-bad": str(second.id)}, headers=headers, status=400)
    testapp.post_json(base, {"v1": "999999"}, headers=headers, status=404)
    testapp.post_json(base, {"v1": str(image.id)}, headers=users["headers"]["other"], status=403)
    testapp.get(base, headers=users["headers"]["other"], status=403)
    testapp.get("/v1/tags/999999", headers=headers, status=404)


def test_tags_v2(testapp, users, image, store, db, container, recorder):
    headers = users["headers"]["user"]
    second = add_image(store, db, container, SIGNED, tag=None)
    db.commit()
    base = f"/v2/tags/{container.id}"
    data = testapp.post_json(base, {"Arch": "arm64", "Tag": "latest", "ImageID": str(second.id)},
                             headers=headers).json["data"]
    assert data == {"amd64": {"latest": str(image.id)}, "arm64": {"latest": str(second.id)}}
    assert testapp.get("/v1/images/user.hase/coll/cont?arch=arm64").json["data"]["arch"] == "arm64"
    data = testapp.post_json(base, {"arm64": {"latest": None}, "amd64": {"v2": str(image.id)}},
                             headers=headers).json["data"]
    assert data == {"amd64": {"latest": str(image.id), "v2": str(image.id)}}
    assert testapp.get(base, headers=headers).json["data"] == data
    assert [e.action for e in recorder.of("tag")] == ["set", "remove", "set"]


def test_tag_from_other_container_is_404(testapp, users, image, factory, store, db):
    other = factory.container("user.hase/coll/other", owner=users["user"])
    db.commit()
    testapp.post_json(f"/v1/tags/{other.id}", {"Tag": "x", "ImageID": str(image.id)},
                      headers=users["headers"]["user"], status=404)


def test_replace_image_tags(testapp, users, image, store, db, container):
    second = add_image(store, db, container, SIGNED, tag="oink")
    db.commit()
    data = testapp.put_json("/v1/images/user.hase/coll/cont:latest/tags", {"tags": ["oink", "grunz"]},
                            headers=users["headers"]["user"]).json["data"]
    assert data == {"tags": ["grunz", "oink"]}
    tags = testapp.get(f"/v1/tags/{container.id}", headers=users["headers"]["user"]).json["data"]
    assert tags == {"oink": str(image.id), "grunz": str(image.id)}
    assert second.id
    testapp.put_json("/v1/images/user.hase/coll/cont:oink/tags", {"tags": ["-x"]},
                     headers=users["headers"]["user"], status=400)


# -- search -----------------------------------------------------------------------------

def test_search(testapp, users, image, store, db, factory):
    private = factory.container("other.hase/coll/secret", owner=users["other"], private=True)
    add_image(store, db, private, SIGNED)
    db.commit()
    headers = users["headers"]["user"]
    data = testapp.get("/v1/search?value=cont", headers=headers).json["data"]
    assert [c["name"] for c in data["container"]] == ["cont"]
    assert [i["id"] for i in data["image"]] == [str(image.id)]
    data = testapp.get("/v1/search?value=secret", headers=headers).json["data"]
    assert data["container"] == [] and data["image"] == []
    data = testapp.get("/v1/search?value=secret", headers=users["headers"]["other"]).json["data"]
    assert len(data["image"]) == 1
    data = testapp.get(f"/v1/search?value={sha256(TINY)[:10]}", headers=headers).json["data"]
    assert [i["id"] for i in data["image"]] == [str(image.id)]
    data = testapp.get("/v1/search?value=cont&arch=arm64", headers=headers).json["data"]
    assert data == {"entity": [], "collection": [], "container": [], "image": []}
    data = testapp.get("/v1/search?value=user", headers=headers).json["data"]
    assert [e["name"] for e in data["entity"]] == ["user.hase"]
    testapp.get("/v1/search?value=cont", status=401)


def test_search_signed(testapp, users, image, store, db, container):
    signed = add_image(store, db, container, SIGNED, tag="signed", signed=True,
                       fingerprints=["D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"])
    db.commit()
    data = testapp.get("/v1/search?value=cont&signed=true", headers=users["headers"]["user"]).json["data"]
    assert [i["id"] for i in data["image"]] == [str(signed.id)]
    assert data["image"][0]["fingerprints"] == ["D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"]


# -- shub -------------------------------------------------------------------------------

def test_shub(testapp, users, store, db, factory):
    add_image(store, db, factory.container("default/coll/hase", owner=users["admin"]), TINY)
    add_image(store, db, factory.container("default/coll/secret", owner=users["admin"], private=True), TINY)
    add_image(store, db, factory.container("default/closed/hase", owner=users["admin"], collection_private=True),
              TINY)
    db.commit()
    data = testapp.get("/api/container/coll/hase:latest").json
    assert data == {"image": "http://localhost/v1/imagefile/default/coll/hase:latest", "name": "hase", "tag": "latest"}
    assert testapp.get("/api/container/coll/hase").json["tag"] == "latest"
    assert testapp.get(data["image"].replace("http://localhost", "")).body == TINY
    testapp.get("/api/container/coll/secret", status=403)
    testapp.get("/api/container/closed/hase", status=403)
    testapp.get("/api/container/coll/hase:nope", status=404)
    testapp.get("/api/container/coll/nope", status=404)


def test_library_cli_gets_double_slash_pull_without_redirect(testapp, image):
    agent = {"User-Agent": "apptainer/1.4.0"}
    response = testapp.get("/v1/imagefile//user.hase/coll/cont:latest?arch=amd64", headers=agent, status=303)
    assert f":{H}?download_token=" in response.headers["Location"]
    assert testapp.get("/v1/imagefile//user.hase/coll/cont:latest?arch=amd64", status=308)


def test_signed_redirect_token_opens_only_its_image(testapp, users, store, db, factory, settings):
    """The 303 token names one image (id and digest), expires, and is no other kind of token."""
    mine = factory.container("user.hase/priv/cont", owner=users["user"], private=True)
    theirs = factory.container("other.hase/priv/cont", owner=users["other"], private=True)
    add_image(store, db, mine, TINY)
    add_image(store, db, theirs, TINY)   # same bytes, same hash: only the image id tells them apart
    db.commit()
    agent = {"User-Agent": "Singularity/4.1"}
    location = testapp.get("/v1/imagefile/user.hase/priv/cont", headers=dict(agent, **users["headers"]["user"]),
                           status=303).headers["Location"]
    path = location.replace("http://localhost", "")
    testapp.get(path.replace("/user.hase/", "/other.hase/"), status=403)
    token = path.split("download_token=")[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    secret = settings["hinkskalle.secret_key"]
    base = path.split("?")[0] + "?download_token="
    for forged in (dict(claims, exp=int(time.time()) - 10), dict(claims, aud="hinkskalle-download"),
                   dict(claims, aud="hinkskalle-registry")):
        testapp.get(base + jwt.encode(forged, secret, algorithm="HS256"), status=403)
    assert testapp.get(path).body == TINY
