"""Signed, time-limited download links for images and (single-layer) manifests."""
from __future__ import annotations

import hashlib
import json
import os
import time
from urllib.parse import urlsplit

import jwt
import pytest

from hinkskalle.models import Container, Image, Manifest
from hinkskalle.models.registry import SIF_MEDIA_TYPE
from hinkskalle.services.storage import BlobStore

CONTENT = b"SIF-bytes " * 100


@pytest.fixture
def private(factory, db, users, settings):
    """A private container of user.hase with one SIF image and a manifest for it."""
    store = BlobStore(settings["hinkskalle.storage.path"])
    digest, size = store.ingest([CONTENT])
    container = factory.container("user.hase/c/secret", owner=users["user"], private=True)
    image = Image(container=container, digest=digest, size=size, upload_state="completed",
                  media_type=SIF_MEDIA_TYPE, owner=users["user"])
    content = json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": SIF_MEDIA_TYPE, "digest": digest, "size": size,
         "annotations": {"org.opencontainers.image.title": "secret.sif"}}]}).encode()
    manifest = Manifest(container=container, digest="sha256:" + hashlib.sha256(content).hexdigest(),
                        media_type="application/vnd.oci.image.manifest.v1+json", content=content,
                        size=len(content))
    db.add_all([image, manifest])
    db.commit()
    return {"image": image, "manifest": manifest, "container": container}


def link(testapp, headers, kind, object_id, status=202, **extra):
    response = testapp.post_json("/v1/get-download-token", dict({"type": kind, "id": str(object_id)}, **extra),
                                 headers=headers, status=status)
    if status != 202:
        return response
    assert response.headers["Location"] == response.json["location"]
    url = urlsplit(response.json["location"])
    return f"{url.path}?{url.query}"


@pytest.mark.parametrize("kind,filename", [("image", None), ("manifest", "secret.sif")])
def test_link_downloads_private_object_anonymously(testapp, users, private, kind, filename):
    url = link(testapp, users["as_user"], kind, private[kind].id)
    response = testapp.get(url)
    assert response.body == CONTENT
    assert response.headers["Docker-Content-Digest"] == private["image"].digest
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and (filename is None or filename in disposition)
    # Ranges work as for every blob.
    ranged = testapp.get(url, headers={"Range": "bytes=0-2"}, status=206)
    assert ranged.body == CONTENT[:3]


def test_without_link_the_acl_decides(testapp, users, private):
    image_id, manifest_id = private["image"].id, private["manifest"].id
    testapp.get(f"/v1/download/images/{image_id}", status=401)
    testapp.get(f"/v1/download/images/{image_id}", headers=users["as_other"], status=403)
    testapp.get(f"/v1/manifests/{manifest_id}/download", headers=users["as_other"], status=403)
    assert testapp.get(f"/v1/download/images/{image_id}", headers=users["as_user"]).body == CONTENT
    assert testapp.get(f"/v1/manifests/{manifest_id}/download", headers=users["as_admin"]).body == CONTENT


def test_only_readers_get_links(testapp, users, private):
    link(testapp, users["as_other"], "image", private["image"].id, status=403)
    link(testapp, users["as_other"], "manifest", private["manifest"].id, status=403)
    testapp.post_json("/v1/get-download-token", {"type": "image", "id": "1"}, status=401)
    link(testapp, users["as_user"], "image", 999999, status=404)


def test_only_admins_override_username_and_expiry(testapp, users, private):
    r = link(testapp, users["as_user"], "image", private["image"].id, status=403, exp=int(time.time()) + 5)
    assert r.json["message"] == "cannot override username and expiration date"
    link(testapp, users["as_user"], "image", private["image"].id, status=403, username="user.hase")
    url = link(testapp, users["as_admin"], "image", private["image"].id, username="user.hase",
               exp=int(time.time()) + 60)
    testapp.get(url)
    link(testapp, users["as_admin"], "image", private["image"].id, status=400, exp=int(time.time()) - 5)


@pytest.mark.parametrize("body", [{"type": "blob", "id": "1"}, {"type": "image", "id": "x"},
                                  {"type": "image"}, {"type": "image", "id": "1", "extra": True}])
def test_bad_requests(testapp, users, body):
    testapp.post_json("/v1/get-download-token", body, headers=users["as_user"], status=400)


def test_forged_altered_expired_and_misused_links_are_refused(testapp, users, private, settings):
    image_id = private["image"].id
    url = link(testapp, users["as_user"], "image", image_id)
    token = url.split("temp_token=")[1]
    base = f"/v1/download/images/{image_id}?temp_token="
    header, payload, signature = token.split(".")
    # altered signature, altered claims, garbage
    testapp.get(base + f"{header}.{payload}.{signature[:-2]}xx", status=401)
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(dict(claims, id=str(image_id)), "wrong-secret", algorithm="HS256")
    testapp.get(base + forged, status=401)
    none_alg = jwt.encode(claims, key="", algorithm="none")
    testapp.get(base + none_alg, status=401)
    testapp.get(base + "not-a-jwt", status=401)
    # expired
    expired = jwt.encode(dict(claims, exp=int(time.time()) - 10), settings["hinkskalle.secret_key"], algorithm="HS256")
    testapp.get(base + expired, status=401)
    # a link for the image does not open the manifest, nor another image
    testapp.get(f"/v1/manifests/{private['manifest'].id}/download?temp_token={token}", status=406)
    other = jwt.encode(dict(claims, id=str(image_id + 1)), settings["hinkskalle.secret_key"], algorithm="HS256")
    testapp.get(base + other, status=406)
    # a registry token (other audience) is no download link
    registry = jwt.encode(dict(claims, aud="hinkskalle-registry"), settings["hinkskalle.secret_key"], algorithm="HS256")
    testapp.get(base + registry, status=401)


def test_link_does_not_open_a_later_object_with_the_same_id(testapp, users, private, db, factory):
    """Ids can come back (SQLite reuses the highest rowid after a delete): a link names the
    object by id and digest."""
    old = private["image"]
    url = link(testapp, users["as_user"], "image", old.id)
    image_id, container_id, size = old.id, old.container_id, old.size
    db.delete(old)
    db.flush()
    db.add(Image(id=image_id, container_id=container_id, digest="sha256:" + "0" * 64, size=size,
                 upload_state="completed", media_type=SIF_MEDIA_TYPE, owner=users["user"]))
    db.commit()
    testapp.get(url, status=406)


def test_missing_image_data_is_404_not_500(testapp, users, private, settings):
    url = link(testapp, users["as_user"], "image", private["image"].id)
    os.unlink(BlobStore(settings["hinkskalle.storage.path"]).path(private["image"].digest))
    testapp.get(url, status=404)


def test_link_dies_with_its_signer(testapp, users, private, db):
    url = link(testapp, users["as_user"], "image", private["image"].id)
    testapp.put_json("/v1/users/user.hase", {"isActive": False}, headers=users["as_admin"])
    testapp.get(url, status=401)


def test_download_counts_and_pull_event(testapp, users, private, db, recorder):
    url = link(testapp, users["as_user"], "image", private["image"].id)
    testapp.get(url)
    testapp.head(url)
    db.expire_all()
    assert db.get(Image, private["image"].id).download_count == 1
    assert db.get(Container, private["container"].id).download_count == 1
    assert len(recorder.of("pull")) == 1
