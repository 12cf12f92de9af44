"""Policy rules veto pushes; the reason reaches the client in its protocol's error format."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

import hinkskalle_policy
from hinkskalle.models import Image
from hinkskalle.testing import Driver, auth_header

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures")).resolve()
FINGERPRINT = "D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"   # testhase-pub.asc, signed tiny_signed.sif
UNTRUSTED = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, Driver(), hinkskalle_policy)


@pytest.fixture
def settings(settings):
    settings.update({
        "hinkskalle_policy.rules": "prod small sifonly",
        "hinkskalle_policy.prod.repositories": "prod/*",
        "hinkskalle_policy.prod.require_signature": "true",
        "hinkskalle_policy.prod.trusted_keys": f"{UNTRUSTED}, {FINGERPRINT.lower()}",
        "hinkskalle_policy.prod.architectures": "amd64",
        "hinkskalle_policy.small.max_size": "10KiB",
        "hinkskalle_policy.small.repositories": "tiny/*/*",
        "hinkskalle_policy.sifonly.repositories": "sif/only/*",
        "hinkskalle_policy.sifonly.media_types": "application/vnd.sylabs.sif.*",
    })
    return settings


@pytest.fixture
def headers(factory, db):
    admin = factory.user("admin.hase", admin=True)
    token = factory.token(admin)
    db.commit()
    return auth_header(token)


def push(testapp, headers, path, data, protocol="library", status=200, **query):
    url = f"/_test/{protocol}/push/{path}?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
    return testapp.post(url, data, headers=headers, status=status)


def add_trusted_key(testapp, headers):
    keytext = (FIXTURES / "testhase-pub.asc").read_text()
    testapp.post("/pks/add", "keytext=" + quote(keytext), headers=headers,
                 content_type="application/x-www-form-urlencoded")


def test_prod_requires_a_verified_signature_from_a_trusted_key(testapp, headers, db):
    unsigned = (FIXTURES / "tiny.sif").read_bytes()
    signed = (FIXTURES / "tiny_signed.sif").read_bytes()
    response = push(testapp, headers, "prod/tools/tiny", unsigned, status=403)
    assert response.json == {"message": "push to prod/tools/tiny refused by policy prod: the image must be signed"}
    response = push(testapp, headers, "prod/tools/tiny", signed, status=403)     # key not in the keystore
    assert "could not be verified" in response.json["message"]
    add_trusted_key(testapp, headers)
    push(testapp, headers, "prod/tools/tiny", signed)
    # Elsewhere no rule asks for signatures.
    push(testapp, headers, "dev/tools/tiny", unsigned)
    assert db.scalar(select(func.count()).select_from(Image)) == 2


def test_untrusted_key_is_refused(testapp, headers, app):
    add_trusted_key(testapp, headers)
    (rule,) = [r for r in app.registry["hinkskalle_policy"] if r.name == "prod"]
    app.registry["hinkskalle_policy"] = [hinkskalle_policy.Rule(**{**vars(rule), "trusted_keys": [UNTRUSTED]})]
    response = push(testapp, headers, "prod/tools/tiny", (FIXTURES / "tiny_signed.sif").read_bytes(),
                    protocol="oci", status=403)
    error = response.json["errors"][0]
    assert error["code"] == "DENIED"
    assert error["detail"] == "push to prod/tools/tiny refused by policy prod: the image is not signed by a trusted key"


def test_architecture(testapp, headers, app):
    (rule,) = [r for r in app.registry["hinkskalle_policy"] if r.name == "prod"]
    app.registry["hinkskalle_policy"] = [hinkskalle_policy.Rule(**{**vars(rule), "architectures": ["arm64"],
                                                                   "require_signature": False})]
    response = push(testapp, headers, "prod/tools/tiny", (FIXTURES / "tiny.sif").read_bytes(), status=403)
    assert "architecture amd64 is not allowed (allowed: arm64)" in response.json["message"]


def test_max_size_in_both_formats_also_through_real_oci_upload(testapp, headers, recorder):
    big = b"x" * (10 * 1024 + 1)
    response = push(testapp, headers, "tiny/a/b", big, status=403)
    assert response.json["message"].endswith(f"{len(big)} bytes exceed the limit of 10240")
    push(testapp, headers, "tiny/a/b", big[:-1])
    digest = "sha256:" + hashlib.sha256(big).hexdigest()
    response = testapp.post(f"/v2/tiny/a/b/blobs/uploads/?digest={digest}", big, headers=headers,
                            content_type="application/octet-stream", status=403)
    assert response.json["errors"][0]["code"] == "DENIED"
    assert "exceed the limit" in response.json["errors"][0]["detail"]
    assert [e.size for e in recorder.of("push")] == [len(big) - 1]


def test_media_types(testapp, headers):
    sif = (FIXTURES / "tiny.sif").read_bytes()
    push(testapp, headers, "sif/only/x", sif)
    response = push(testapp, headers, "sif/only/x", b"layer", protocol="oci", status=403,
                    media_type="application/vnd.oci.image.layer.v1.tar+gzip")
    assert "media type application/vnd.oci.image.layer.v1.tar+gzip is not allowed" in \
        response.json["errors"][0]["detail"]
    push(testapp, headers, "sif/only/x", b"untyped OCI blob", protocol="oci",
         media_type="application/octet-stream")


def test_bad_settings_stop_the_start():
    from hinkskalle.config import SettingsError
    with pytest.raises(SettingsError) as err:
        hinkskalle_policy.load_rules({"hinkskalle_policy.rules": "a", "hinkskalle_policy.a.max_size": "huge"})
    assert list(err.value.errors) == ["hinkskalle_policy.a.max_size"]


def test_oras_push_of_an_unsigned_sif_is_refused_at_the_manifest(testapp, headers, db):
    import json
    sif = (FIXTURES / "tiny.sif").read_bytes()
    blob_headers = dict(headers, **{"Content-Type": "application/octet-stream"})
    for blob in (b"{}", sif):     # untyped blobs pass: what they are is not known yet
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        testapp.post(f"/v2/prod/tools/oras/blobs/uploads/?digest={digest}", blob, headers=blob_headers, status=201)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.sylabs.sif.config.v1+json", "size": 2,
                           "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                "layers": [{"mediaType": "application/vnd.sylabs.sif.layer.v1.sif", "size": len(sif),
                            "digest": "sha256:" + hashlib.sha256(sif).hexdigest()}]}
    response = testapp.put("/v2/prod/tools/oras/manifests/v1", json.dumps(manifest).encode(), status=403,
                           headers=dict(headers, **{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    assert response.json["errors"][0]["code"] == "DENIED"
    assert response.json["errors"][0]["detail"] == \
        "push to prod/tools/oras refused by policy prod: the image must be signed"
    testapp.get("/v2/prod/tools/oras/manifests/v1", headers=headers, status=404)
