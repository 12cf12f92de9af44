"""The built-in HKP keyserver and signature verification against its keys."""
from urllib.parse import quote

import pytest

from hinkskalle.models import Image

from .conftest import FIXTURES, fixture_bytes, sha256

PUBLIC = (FIXTURES / "testhase-pub.asc").read_text()
FINGERPRINT = "D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"


def add_key(testapp, headers, text=PUBLIC, status=200):
    return testapp.post("/pks/add", "keytext=" + quote(text, safe=""), headers=headers,
                        content_type="application/x-www-form-urlencoded", status=status)


def test_add_and_get_by_fingerprint_long_and_short_id(testapp, users):
    assert FINGERPRINT in add_key(testapp, users["headers"]["user"]).text
    for search in (FINGERPRINT.lower(), "0x" + FINGERPRINT, "0xbfc8644ce3d3e9d7", "0xE3D3E9D7"):
        response = testapp.get(f"/pks/lookup?op=get&search={search}&exact=on")
        assert response.text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        assert response.content_type == "application/pgp-keys"
    testapp.get("/pks/lookup?op=get&search=0x0000000000000000", status=404)


def test_index_machine_readable(testapp, users):
    add_key(testapp, users["headers"]["user"])
    text = testapp.get("/pks/lookup?op=index&options=mr&fingerprint=on&search=finti").text
    lines = text.splitlines()
    assert lines[0] == "info:1:1"
    assert lines[1].startswith(f"pub:{FINGERPRINT}:1:4096:1609839103:")
    assert lines[2].startswith("uid:Finti Tax (test) <fintitax@gmail.com>:")
    testapp.get("/pks/lookup?op=index&options=mr&search=nobody", status=404)
    exact = testapp.get("/pks/lookup?op=index&options=mr&search=fintitax@gmail.com&exact=on").text
    assert exact.startswith("info:1:1")
    testapp.get("/pks/lookup?op=index&options=mr&search=fintitax&exact=on", status=404)


def test_add_needs_login_and_public_key(testapp, users):
    add_key(testapp, {}, status=401)
    response = add_key(testapp, users["headers"]["user"], (FIXTURES / "testhase-priv.asc").read_text(), status=422)
    assert "secret key" in response.json["message"]
    add_key(testapp, users["headers"]["user"], "garbage", status=422)
    testapp.post("/pks/add", "", headers=users["headers"]["user"], status=400)


def test_only_uploader_or_admin_replaces(testapp, users):
    add_key(testapp, users["headers"]["user"])
    add_key(testapp, users["headers"]["user"])
    add_key(testapp, users["headers"]["other"], status=403)
    add_key(testapp, users["headers"]["admin"])


def test_lookup_errors(testapp):
    testapp.get("/pks/lookup?op=get", status=400)
    testapp.get("/pks/lookup?op=stats&search=x", status=501)


def test_signed_image_verifies_once_key_is_known(testapp, users, factory, db):
    container = factory.container("user.hase/coll/cont", owner=users["user"])
    db.commit()
    headers = users["headers"]["user"]
    data = fixture_bytes("busybox_signed.sif")
    image = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(data)}", "container": str(container.id)},
                              headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{image['id']}", data, headers=headers)
    pushed = testapp.get(f"/v1/images/user.hase/coll/cont:sha256.{sha256(data)}").json["data"]
    assert pushed["signed"] is True and pushed["signatureVerified"] is False
    assert pushed["fingerprints"] == [FINGERPRINT]
    add_key(testapp, headers)
    checked = testapp.get(f"/v1/images/user.hase/coll/cont:sha256.{sha256(data)}").json["data"]
    assert checked["signatureVerified"] is True
    row = db.get(Image, int(image["id"]))
    assert row.sif_info["signatures"][0]["reason"] == "Verified"


@pytest.mark.parametrize("name", ["busybox.sif", "alpine_latest.sif"])
def test_unsigned_fixture_pushes_unsigned(testapp, users, factory, db, name):
    container = factory.container("user.hase/coll/cont", owner=users["user"])
    db.commit()
    headers = users["headers"]["user"]
    data = fixture_bytes(name)
    image = testapp.post_json("/v1/images", {"hash": f"sha256.{sha256(data)}", "container": str(container.id)},
                              headers=headers).json["data"]
    testapp.post(f"/v1/imagefile/{image['id']}", data, headers=headers)
    got = testapp.get(f"/v1/images/user.hase/coll/cont:sha256.{sha256(data)}").json["data"]
    assert got["signed"] is False and got["signatureVerified"] is False and got["fingerprints"] == []
    assert got["arch"] == "amd64"
