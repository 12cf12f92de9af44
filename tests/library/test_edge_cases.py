"""Library edge cases of reference 11.1 not covered elsewhere (numbers refer to that list)."""
from urllib.parse import quote

import pytest

from hinkskalle.models import Entity, Image
from hinkskalle.testing import auth_header

from .conftest import add_image, fixture_bytes, fresh, sha256

TINY = fixture_bytes("tiny.sif")
SIGNED = fixture_bytes("tiny_signed.sif")


def test_27_28_v2_arch_scoped_removal(testapp, users, store, db, container):
    image = add_image(store, db, container, TINY, tag=None)
    db.commit()
    base = f"/v2/tags/{container.id}"
    headers = users["headers"]["user"]
    testapp.post_json(base, {"Arch": "c64", "Tag": "oink", "ImageID": str(image.id)}, headers=headers)
    testapp.post_json(base, {"amiga": {"oink": str(image.id)}}, headers=headers)
    data = testapp.post_json(base, {"c64": {"oink": None}}, headers=headers).json["data"]
    assert data == {"amiga": {"oink": str(image.id)}}
    fresh(db)
    assert db.get(Image, image.id).arch == "amiga"


@pytest.mark.parametrize("image_id", ["oink", "-1", "999999"])
def test_29_invalid_image_id_in_tag_post_is_404(testapp, users, container, image_id):
    testapp.post_json(f"/v1/tags/{container.id}", {"Tag": "v1", "ImageID": image_id},
                      headers=users["headers"]["user"], status=404)
    testapp.post_json(f"/v2/tags/{container.id}", {"Arch": "amd64", "Tag": "v1", "ImageID": image_id},
                      headers=users["headers"]["user"], status=404)


def test_30_delete_image_drops_used_quota(testapp, users, container, db):
    headers = users["headers"]["user"]
    image = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(TINY)}", "container": str(container.id)},
                              headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{image['id']}", TINY, headers=headers)
    fresh(db)
    assert db.query(Entity).filter_by(name="user.hase").one().used_quota == len(TINY)
    testapp.delete(f"/v1/images/user.hase/coll/cont:sha256.{sha256(TINY)}", headers=headers)
    fresh(db)
    assert db.query(Entity).filter_by(name="user.hase").one().used_quota == 0


def test_31_expires_at_of_someone_elses_image(testapp, users, store, db, factory):
    contributor = factory.user("contri.hase")
    factory.group("Hasen", members={contributor: "contributor", users["user"]: "admin"})
    container = factory.container("hasen/coll/cont", owner=users["user"])
    image = add_image(store, db, container, TINY)
    image.owner = db.merge(users["user"])
    headers = auth_header(factory.token(contributor))
    db.commit()
    testapp.put_json("/v1/images/hasen/coll/cont:latest", {"expiresAt": "2030-01-01T00:00:00+00:00"},
                     headers=headers, status=403)
    testapp.put_json("/v1/images/hasen/coll/cont:latest", {"expiresAt": None}, headers=headers, status=200)
    testapp.put_json("/v1/images/hasen/coll/cont:latest", {"description": "fine"}, headers=headers, status=200)


def test_32_container_delete_cascade(testapp, users, store, db, container, recorder):
    add_image(store, db, container, TINY)
    db.commit()
    headers = users["headers"]["user"]
    testapp.delete("/v1/containers/user.hase/coll/cont", headers=headers, status=412)
    testapp.delete("/v1/containers/user.hase/coll/cont?cascade=1", headers=headers)
    testapp.get("/v1/containers/user.hase/coll/cont", headers=headers, status=404)
    assert [e.target for e in recorder.of("delete")] == ["image"]


def test_24_upload_state_in_create_is_ignored(testapp, users, container):
    data = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(TINY)}", "container": str(container.id),
                                            "uploadState": "completed"},
                             headers=users["headers"]["user"]).json["data"]
    # an image only becomes completed by uploading its bytes (or from a copy the caller may read)
    assert data["uploadState"] == "initialized" and data["uploaded"] is False


def test_push_to_collection_private_container_is_not_pullable(testapp, users, store, db, factory):
    """Reference 12.8 fixed: a private collection also blocks library pulls and search."""
    container = factory.container("user.hase/closed/cont", owner=users["user"], collection_private=True)
    add_image(store, db, container, TINY)
    db.commit()
    testapp.get("/v1/imagefile/user.hase/closed/cont", headers=users["headers"]["other"], status=403)
    found = testapp.get("/v1/search?value=cont", headers=users["headers"]["other"]).json["data"]
    assert found["image"] == []


def test_overlong_or_odd_values_are_400_not_500(testapp, users, store, db, container):
    image = add_image(store, db, container, TINY, tag=None)
    db.commit()
    headers = users["headers"]["user"]
    testapp.post_json(f"/v2/tags/{container.id}", {"Arch": "x" * 40, "Tag": "v1", "ImageID": str(image.id)},
                      headers=headers, status=400)
    testapp.post_json(f"/v2/tags/{container.id}", {"AMD 64": {"v1": str(image.id)}}, headers=headers, status=400)
    testapp.post_json(f"/v2/tags/{container.id}", {"Arch": 5, "Tag": "v1", "ImageID": str(image.id)},
                      headers=headers, status=400)
    testapp.put_json("/v1/containers/user.hase/coll/cont", {"vcsUrl": "h" * 2000}, headers=headers, status=400)
    testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(SIGNED)}", "container": str(container.id),
                                     "arch": "a" * 40}, headers=headers, status=400)
    testapp.post_json(f"/v1/tags/{container.id}", {"x" * 200: str(image.id)}, headers=headers, status=400)
    testapp.post_json(f"/v1/tags/{container.id}", "[]", headers=headers, status=400)


@pytest.mark.parametrize("raw", ["99999999999999999999999", "\u00b2", "\u0661"])
def test_ids_no_row_can_have_are_404(testapp, users, container, raw):
    """Huge numbers and non-ASCII digits in URLs and bodies name nothing (not a database error)."""
    headers = users["headers"]["user"]
    in_url = quote(raw)
    testapp.get(f"/v1/tags/{in_url}", headers=headers, status=404)
    testapp.post_json(f"/v2/imagefile/{in_url}", {}, headers=headers, status=404)
    testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(SIGNED)}", "container": raw},
                      headers=headers, status=404)
    testapp.post_json(f"/v1/tags/{container.id}", {"Tag": "v1", "ImageID": raw}, headers=headers, status=404)


def test_undecodable_query_string_is_400(testapp, users, store, db, container):
    add_image(store, db, container, TINY)
    db.commit()
    testapp.get("/v1/imagefile/user.hase/coll/cont:latest?arch=%ff", status=400)
    testapp.get("/v1/search?value=%ff", headers=users["headers"]["user"], status=400)
