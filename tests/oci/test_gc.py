"""Blobs that no manifest needs any more go away through the blob store's garbage collection."""
from __future__ import annotations

from hinkskalle.models import Image, get_session_factory
from hinkskalle.services import gc

from .conftest import sha

NAME = "hase/coll/cont"


def test_deleted_image_leaves_its_blobs_to_gc(app, hase, engine, db):
    store = app.registry["blobstore"]
    _, digest = hase.push_image(NAME, tag="v1", layer=b"layer to go", config=b"config to go")
    _, kept = hase.push_image(NAME, tag="v2", layer=b"layer to keep", config=b"config to keep")
    gc.collect(get_session_factory(engine), store, grace=0)
    assert db.query(Image).count() == 4                   # everything is still in use
    hase.delete(f"/v2/{NAME}/manifests/{digest}")
    report = gc.collect(get_session_factory(engine), store, grace=0)
    assert report.orphan_blob_rows == 2
    assert sorted(i.digest for i in db.query(Image)) == sorted([sha(b"layer to keep"), sha(b"config to keep")])
    assert not store.exists(sha(b"layer to go")) and not store.exists(sha(b"config to go"))
    hase.get(f"/v2/{NAME}/manifests/v2")
    hase.get(f"/v2/{NAME}/blobs/{sha(b'layer to keep')}")
