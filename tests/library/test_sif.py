"""SIF parsing and signature checks against the real fixture files."""
import shutil

import pytest

from hinkskalle.services import sif

from .conftest import FIXTURES


@pytest.fixture
def public_key():
    return (FIXTURES / "testhase-pub.asc").read_text()


FINGERPRINT = "D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"


@pytest.mark.parametrize("name", ["busybox_signed.sif", "tiny_signed.sif"])
def test_signed_fixture_verifies_with_testhase_key(name, public_key):
    info = sif.inspect_file(str(FIXTURES / name), lambda fp: public_key if fp == FINGERPRINT else None)
    assert info["arch"] == "amd64"
    assert [s["fingerprint"] for s in info["signatures"]] == [FINGERPRINT]
    assert info["signatures"][0]["verified"] is True


def test_signed_fixture_without_key_is_signed_but_unknown():
    info = sif.inspect_file(str(FIXTURES / "busybox_signed.sif"))
    assert info["signatures"][0]["verified"] is False
    assert info["signatures"][0]["reason"] == "Unknown"


@pytest.mark.parametrize("name", ["busybox.sif", "tiny.sif", "alpine_latest.sif"])
def test_unsigned_fixture(name):
    info = sif.inspect_file(str(FIXTURES / name))
    assert info["signatures"] == []
    assert info["arch"] == "amd64"
    assert info["partitions"][0]["parttype"] == "primary-system"
    assert info["partitions"][0]["fstype"] == "squashfs"


def test_definition_file_and_objects():
    info = sif.inspect_file(str(FIXTURES / "busybox.sif"))
    assert info["deffile"] == "bootstrap: docker\nfrom: busybox\n\n"
    assert [o["type"] for o in info["objects"]] == ["deffile", "generic-json", "partition"]
    assert info["objects"][1]["name"] == "oci-config.json"


def test_modified_partition_fails_verification(tmp_path, public_key):
    copy = tmp_path / "tampered.sif"
    shutil.copy(FIXTURES / "busybox_signed.sif", copy)
    with open(copy, "r+b") as handle:
        sif_file = sif.parse(handle)
        part = next(d for d in sif_file.descriptors if d.data_type == 0x4004)
        handle.seek(part.offset + 100)
        byte = handle.read(1)
        handle.seek(part.offset + 100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    info = sif.inspect_file(str(copy), lambda fp: public_key)
    assert info["signatures"][0]["verified"] is False
    assert info["signatures"][0]["reason"] == "Modified"


def test_other_key_does_not_verify():
    import pgpy
    from pgpy.constants import EllipticCurveOID, HashAlgorithm, KeyFlags, PubKeyAlgorithm
    key = pgpy.PGPKey.new(PubKeyAlgorithm.EdDSA, EllipticCurveOID.Ed25519)
    key.add_uid(pgpy.PGPUID.new("Other Hase"), usage={KeyFlags.Sign}, hashes=[HashAlgorithm.SHA256])
    info = sif.inspect_file(str(FIXTURES / "tiny_signed.sif"), lambda fp: str(key.pubkey))
    assert info["signatures"][0]["verified"] is False


@pytest.mark.parametrize("content", [b"", b"Hello Dorian!", b"\0" * 200,
                                     b"#!/usr/bin/env run-singularity\n\0SIF_MAGIC\0" + b"\0" * 200])
def test_not_a_sif(tmp_path, content):
    path = tmp_path / "x.sif"
    path.write_bytes(content)
    with pytest.raises(sif.SifError):
        sif.inspect_file(str(path))


def test_truncated_sif(tmp_path):
    path = tmp_path / "cut.sif"
    path.write_bytes((FIXTURES / "busybox.sif").read_bytes()[:50000])
    with pytest.raises(sif.SifError):
        sif.inspect_file(str(path))
