"""SIF over ORAS in both directions: library SIFs get a generated ORAS manifest
(`singularity pull oras://`), and a SIF pushed as an ORAS artifact becomes a library image."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hinkskalle.models import Container, Image, Manifest, Tag
from hinkskalle.models.registry import SIF_CONFIG_MEDIA_TYPE, SIF_MEDIA_TYPE

from .conftest import OCI_MANIFEST, descriptor, sha

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[3] / "shared" / "fixtures"))
NAME = "hase/coll/cont"


@pytest.fixture
def sif_bytes():
    return (FIXTURES / "tiny.sif").read_bytes(), (FIXTURES / "tiny_signed.sif").read_bytes()


def library_sif(app, db, data: bytes, tag: str = "latest") -> Image:
    """A SIF as a library push leaves it: a visible, completed image with a default-arch tag."""
    digest, size = app.registry["blobstore"].ingest([data])
    container = db.query(Container).filter_by(name="cont").one()
    image = db.query(Image).filter_by(container=container, digest=digest).one_or_none() or Image(
        container=container, digest=digest, size=size, media_type=SIF_MEDIA_TYPE, upload_state="completed")
    db.add(image)
    existing = db.query(Tag).filter_by(container=container, name=tag, arch="amd64").one_or_none()
    if existing is None:
        existing = Tag(container=container, name=tag, arch="amd64")
        db.add(existing)
    existing.image = image
    existing.manifest = None          # what registry.set_tag does for a library tag
    db.commit()
    return image


def test_library_sif_gets_an_oras_manifest(app, hase, factory, db, sif_bytes):
    factory.container(NAME)
    db.commit()
    library_sif(app, db, sif_bytes[0])
    got = hase.get(f"/v2/{NAME}/manifests/latest")
    manifest = json.loads(got.body)
    assert got.headers["Content-Type"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == SIF_CONFIG_MEDIA_TYPE
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIF_MEDIA_TYPE and layer["digest"] == sha(sif_bytes[0])
    assert layer["size"] == len(sif_bytes[0])
    assert layer["annotations"]["org.opencontainers.image.title"] == "cont"
    # everything the manifest names can be pulled, and the bytes are stored once
    assert hase.get(f"/v2/{NAME}/blobs/{layer['digest']}").body == sif_bytes[0]
    assert hase.get(f"/v2/{NAME}/blobs/{manifest['config']['digest']}").body == b"{}"
    assert hase.get(f"/v2/{NAME}/manifests/{got.headers['Docker-Content-Digest']}").body == got.body
    assert "latest" in hase.get(f"/v2/{NAME}/tags/list").json["tags"]
    # the second request re-uses the stored manifest
    assert hase.get(f"/v2/{NAME}/manifests/latest").body == got.body
    assert db.query(Manifest).count() == 1


def test_generated_manifest_follows_the_tag(app, hase, factory, db, sif_bytes):
    factory.container(NAME)
    db.commit()
    library_sif(app, db, sif_bytes[0])
    first = hase.get(f"/v2/{NAME}/manifests/latest").headers["Docker-Content-Digest"]
    library_sif(app, db, sif_bytes[1])          # library re-push of the tag
    second = hase.head(f"/v2/{NAME}/manifests/latest").headers["Docker-Content-Digest"]
    assert second != first
    layer = json.loads(hase.get(f"/v2/{NAME}/manifests/latest").body)["layers"][0]
    assert layer["digest"] == sha(sif_bytes[1])
    db.expire_all()
    assert [m.digest for m in db.query(Manifest)] == [second]     # the stale one is gone


def test_sif_pushed_over_oras_is_a_library_image(hase, testapp, db, sif_bytes):
    sif = sif_bytes[0]
    hase.push_blob(NAME, b"{}")
    hase.push_blob(NAME, sif)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(b"{}", SIF_CONFIG_MEDIA_TYPE),
                "layers": [descriptor(sif, SIF_MEDIA_TYPE,
                                      annotations={"org.opencontainers.image.title": "tiny.sif"})]}
    hase.push_manifest(NAME, "v1", manifest)
    image = db.query(Image).filter_by(digest=sha(sif)).one()
    assert image.media_type == SIF_MEDIA_TYPE and not image.hidden
    tag = db.query(Tag).filter_by(name="v1").one()
    assert tag.image_id == image.id and tag.manifest_id is not None
    # the library API shows it under its tag
    shown = testapp.get(f"/v1/images/{NAME.rsplit('/', 1)[0]}/cont:v1", headers=hase.headers).json["data"]
    assert shown["hash"] == "sha256." + sha(sif)[7:]
    # and the pushed manifest is served as pushed, not replaced by a generated one
    assert json.loads(hase.get(f"/v2/{NAME}/manifests/v1").body) == manifest
