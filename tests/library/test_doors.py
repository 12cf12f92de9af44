"""One blob, many doors: a SIF pushed over library:// is the blob OCI/ORAS clients pull, stored once."""
from hinkskalle.models.registry import SIF_MEDIA_TYPE

from .conftest import fixture_bytes, sha256

TINY = fixture_bytes("tiny.sif")


def test_library_push_is_pullable_over_oci(testapp, users, factory, db, store):
    container = factory.container("user.hase/coll/cont", owner=users["user"])
    db.commit()
    headers = users["headers"]["user"]
    image = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(TINY)}", "container": str(container.id)},
                              headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=headers)
    testapp.post_json(f"/v2/tags/{container.id}", {"Arch": "amd64", "Tag": "v1", "ImageID": image["id"]},
                      headers=headers)
    manifest = testapp.get("/v2/user.hase/coll/cont/manifests/v1", headers=headers).json
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIF_MEDIA_TYPE and layer["digest"] == f"sha256:{sha256(TINY)}"
    assert testapp.get(f"/v2/user.hase/coll/cont/blobs/{layer['digest']}", headers=headers).body == TINY
    assert [digest for digest, _ in store.iter_blobs() if digest == layer["digest"]] == [layer["digest"]]
