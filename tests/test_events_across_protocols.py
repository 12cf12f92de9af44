"""Push, pull, tag and delete events are the same whichever protocol caused them.

The same SIF goes through the library API (`singularity push/pull library://`), an
ORAS-style OCI push and OCI pulls (`singularity push/pull oras://`), and a shub pull (which
downloads through the library endpoint). The events about the SIF carry the same fields;
only `protocol`, `repository` and `image_id` (different containers) and the protocol's own
way of naming things (`reference`, what an OCI tag points at) differ.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hinkskalle.models.registry import SIF_CONFIG_MEDIA_TYPE, SIF_MEDIA_TYPE
from hinkskalle.testing import auth_header

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures")).resolve()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LIBRARY, ORAS = "default/lib/cont", "default/oras/cont"
# What identifies the content and who acted: equal across protocols.
SAME = {
    "push": ("kind", "actor", "address", "digest", "size", "media_type", "target", "arch", "signed",
             "signature_verified", "fingerprints"),
    "pull": ("kind", "actor", "address", "digest", "size", "media_type", "target"),
    "tag": ("kind", "actor", "address", "tag", "arch", "action"),
    "delete": ("kind", "actor", "address", "target", "digest"),
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(data: bytes, media_type: str, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}


@pytest.fixture
def sif():
    return (FIXTURES / "tiny_signed.sif").read_bytes()


@pytest.fixture
def admin(factory, db, testapp):
    user = factory.user("admin.hase", admin=True)
    factory.entity("default", owner=user)
    library = factory.container(LIBRARY, owner=user)
    factory.container(ORAS, owner=user)
    headers = auth_header(factory.token(user))
    db.commit()
    # The signing key is known, so both protocols can verify the signature.
    keytext = (FIXTURES / "testhase-pub.asc").read_text()
    testapp.post("/pks/add", {"keytext": keytext}, headers=headers)
    return {"headers": headers, "library_id": library.id}


def library_push(testapp, admin, data):
    headers = admin["headers"]
    image = testapp.post_json("/v1/images", {"hash": "sha256." + sha(data)[7:],
                                             "container": str(admin["library_id"])}, headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{image['id']}", data, headers=headers)
    testapp.post_json(f"/v2/tags/{admin['library_id']}", {"Tag": "v1", "ImageID": image["id"], "Arch": "amd64"},
                      headers=headers)


def oras_push(testapp, admin, data):
    headers = dict(admin["headers"], **{"Content-Type": "application/octet-stream"})
    for blob in (b"{}", data):
        testapp.post(f"/v2/{ORAS}/blobs/uploads/?digest={sha(blob)}", blob, headers=headers, status=201)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(b"{}", SIF_CONFIG_MEDIA_TYPE),
                "layers": [descriptor(data, SIF_MEDIA_TYPE, annotations={"org.opencontainers.image.title": "c.sif"})]}
    testapp.put(f"/v2/{ORAS}/manifests/v1", json.dumps(manifest).encode(),
                headers=dict(admin["headers"], **{"Content-Type": OCI_MANIFEST}), status=201)


def about(recorder, kind, repository, digest=None):
    """The events of `kind` in `repository` (about `digest`, if given), as comparable tuples."""
    return [tuple(getattr(e, field) for field in SAME[kind]) for e in recorder.of(kind)
            if e.repository == repository and (digest is None or getattr(e, "digest", None) == digest)]


def test_push_events_are_the_same(testapp, admin, recorder, sif):
    library_push(testapp, admin, sif)
    oras_push(testapp, admin, sif)
    library = about(recorder, "push", LIBRARY, sha(sif))
    oras = about(recorder, "push", ORAS, sha(sif))
    assert len(library) == 1
    assert library[0] in oras            # the ORAS push also announced the blob before its type was known
    assert dict(zip(SAME["push"], library[0])) | {"fingerprints": ()} == {
        "kind": "push", "actor": "admin.hase", "address": "127.0.0.1", "digest": sha(sif), "size": len(sif),
        "media_type": SIF_MEDIA_TYPE, "target": "image", "arch": "amd64", "signed": True,
        "signature_verified": True, "fingerprints": ()}
    assert library[0][-1] == ("D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7",)


def test_tag_events_are_the_same(testapp, admin, recorder, sif):
    library_push(testapp, admin, sif)
    oras_push(testapp, admin, sif)
    assert about(recorder, "tag", LIBRARY) == about(recorder, "tag", ORAS) == \
        [("tag", "admin.hase", "127.0.0.1", "v1", "amd64", "set")]
    assert {e.protocol for e in recorder.events if e.repository == LIBRARY} == {"library"}
    assert {e.protocol for e in recorder.events if e.repository == ORAS} == {"oci"}


def test_pull_events_are_the_same(testapp, admin, recorder, sif):
    library_push(testapp, admin, sif)
    oras_push(testapp, admin, sif)
    recorder.events.clear()
    headers = admin["headers"]
    assert testapp.get(f"/v1/imagefile/{LIBRARY}:v1", headers=headers).body == sif
    shub = testapp.get("/api/container/lib/cont:v1").json
    assert testapp.get(shub["image"].removeprefix("http://localhost"), headers=headers).body == sif
    manifest = json.loads(testapp.get(f"/v2/{ORAS}/manifests/v1", headers=headers).body)
    assert testapp.get(f"/v2/{ORAS}/blobs/{manifest['layers'][0]['digest']}", headers=headers).body == sif
    library = about(recorder, "pull", LIBRARY)
    oras = about(recorder, "pull", ORAS, sha(sif))
    assert library == [library[0]] * 2 == [oras[0]] * 2      # library, shub, ORAS: one event each, alike
    assert dict(zip(SAME["pull"], oras[0])) == {
        "kind": "pull", "actor": "admin.hase", "address": "127.0.0.1", "digest": sha(sif), "size": len(sif),
        "media_type": SIF_MEDIA_TYPE, "target": "image"}


def test_delete_events_are_the_same(testapp, admin, recorder, sif):
    library_push(testapp, admin, sif)
    oras_push(testapp, admin, sif)
    recorder.events.clear()
    testapp.delete(f"/v1/images/{LIBRARY}:v1", headers=admin["headers"])
    testapp.delete(f"/v2/{ORAS}/blobs/{sha(sif)}", headers=admin["headers"], status=202)
    assert about(recorder, "delete", LIBRARY) == about(recorder, "delete", ORAS) == \
        [("delete", "admin.hase", "127.0.0.1", "image", sha(sif))]
