"""library:// end to end with a real client: Apptainer's library and key clients (Debian's Go
packages, driven by tests/e2e/libclient/driver, built by .ci/setup.d/20-libclient.sh) against
the app served over HTTP on 127.0.0.1.

One scenario, in order: push (single and multipart over 64 MiB), pull (single stream and
concurrent ranged), tags, search, delete, and the keyserver with signature verification.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from hinkskalle.testing import require_tool, run

pytestmark = pytest.mark.e2e

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures")).resolve()
FINGERPRINT = "D0C9D4A5706CDBC8AC0AEDC5BFC8644CE3D3E9D7"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_sif(tmp_path: Path, name: str, payload_size: int, deffile: str) -> Path:
    """A valid SIF from Debian's tools: a squashfs of random bytes as primary partition."""
    require_tool("siftool")
    mksquashfs = require_tool("mksquashfs")
    root = tmp_path / f"{name}-root"
    root.mkdir()
    with open(root / "payload", "wb") as handle:
        remaining = payload_size
        while remaining:
            chunk = os.urandom(min(remaining, 1 << 20))
            handle.write(chunk)
            remaining -= len(chunk)
    squash = tmp_path / f"{name}.squashfs"
    assert run([mksquashfs, str(root), str(squash), "-noappend", "-no-progress", "-noI", "-noD", "-noF"]).returncode == 0
    (tmp_path / f"{name}.def").write_text(deffile)
    sif = tmp_path / f"{name}.sif"
    for cmd in (["siftool", "new", str(sif)],
                ["siftool", "add", str(sif), str(tmp_path / f"{name}.def"), "--datatype", "1", "--groupid", "1"],
                ["siftool", "add", str(sif), str(squash), "--datatype", "4", "--partfs", "1", "--parttype", "2",
                 "--partarch", "2", "--groupid", "1"]):
        result = run(cmd)
        assert result.returncode == 0, result.stderr
    shutil.rmtree(root)
    return sif


class Driver:
    def __init__(self, url: str, token: str):
        self.binary = require_tool("hinkskalle-libclient")
        self.url, self.token = url, token

    def __call__(self, command: str, *args: str, ok: bool = True):
        result = run([self.binary, command, "-url", self.url, "-token", self.token, *args], timeout=600)
        if ok:
            assert result.returncode == 0, f"{command} failed: {result.stderr[-2000:]}"
            return json.loads(result.stdout), result.stderr
        assert result.returncode != 0, f"{command} should have failed"
        return None, result.stderr


@pytest.fixture
def driver(live_server, factory, db):
    user = factory.user("test.hase")
    token = factory.token(user)
    db.commit()
    return Driver(live_server.url, token)


def test_library_client_end_to_end(driver, tmp_path, app, db):
    small = make_sif(tmp_path, "small", 256 * 1024, "Bootstrap: scratch\n")
    large = make_sif(tmp_path, "large", 70 * 1024 * 1024, "Bootstrap: scratch\n# large\n")
    assert large.stat().st_size > 64 * 1024 * 1024

    version, _ = driver("version")
    assert version["apiVersion"] == "2.0.0-alpha.2"

    # push: small goes the v2 single way, large (> 64 MiB) multipart; entity/collection/container
    # are created on the way
    done, log = driver("push", "-file", str(small), "-ref", "test.hase/e2e/small", "-tags", "latest,v1")
    assert "legacyPostFileV2" in log and "Multi-part" not in log
    assert done["containerUrl"] == "entities/test.hase/collections/e2e/containers/small"
    done, log = driver("push", "-file", str(large), "-ref", "test.hase/e2e/large", "-tags", "latest")
    assert "totalParts=[2]" in log and "Uploaded 2 parts" in log
    assert "S3 compliant option: false" in log     # so the client sends parts without hashing each
    assert done["quota"]["quotaUsage"] >= large.stat().st_size

    image, _ = driver("image", "-ref", "test.hase/e2e/large", "-tag", "latest")
    assert image["hash"] == f"sha256.{sha256_file(large)}" and image["size"] == large.stat().st_size

    # pull: single stream and concurrent ranges (the server sends library clients a 303)
    out = tmp_path / "pulled-single.sif"
    result, _ = driver("pull", "-ref", "test.hase/e2e/small", "-tag", "v1", "-file", str(out))
    assert result["sha256"] == sha256_file(small)
    out = tmp_path / "pulled-ranged.sif"
    result, log = driver("pull", "-ref", "test.hase/e2e/large", "-file", str(out), "-concurrent")
    assert result["sha256"] == sha256_file(large)
    assert "parts: 71" in log      # 1 MiB ranges
    out.unlink()

    # tags: a re-push of the same file only sets tags (the image says uploaded: true)
    _, log = driver("push", "-file", str(small), "-ref", "test.hase/e2e/small", "-tags", "stable")
    assert "already present in the library - not uploading" in log
    small_image, _ = driver("image", "-ref", "test.hase/e2e/small", "-tag", "stable")
    tags, _ = driver("tags", "-container-id", small_image["container"])
    assert tags == {"amd64": {"latest": small_image["id"], "v1": small_image["id"], "stable": small_image["id"]}}
    assert sorted(small_image["tags"]) == ["latest", "stable", "v1"]

    # search
    found, _ = driver("search", "-value", "large")   # with an arch (the client always sends one): images only
    assert [i["hash"] for i in found["image"]] == [image["hash"]]

    # delete
    driver("delete", "-ref", "test.hase/e2e/large", "-tag", "latest")
    driver("image", "-ref", "test.hase/e2e/large", "-tag", "latest", ok=False)


def test_driver_pre_pass_hashes_like_the_tools(tmp_path):
    """`checksums` (the client's md5 + sha256 pre-pass, timed by benchmarks/run.py)."""
    binary = require_tool("hinkskalle-libclient")
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "file").write_bytes(data)
    result = run([binary, "checksums", "-file", str(tmp_path / "file")])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"md5": hashlib.md5(data).hexdigest(),
                                         "sha256": hashlib.sha256(data).hexdigest()}
    assert "elapsed " in result.stderr


def test_key_client_and_signature_verification(driver, tmp_path):
    driver("key-push", "-file", str(FIXTURES / "testhase-pub.asc"))
    index, _ = driver("key-search", "-value", "fintitax@gmail.com")
    assert f"pub:{FINGERPRINT}:1:4096:" in index["index"]
    key, _ = driver("key-pull", "-value", FINGERPRINT.lower())
    assert key["key"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    driver("key-pull", "-value", "00" * 20, ok=False)

    # a signed SIF pushed after its key is known shows as verified, and `--signed` search finds it
    signed = FIXTURES / "busybox_signed.sif"
    driver("push", "-file", str(signed), "-ref", "test.hase/e2e/signed", "-tags", "latest")
    image, _ = driver("image", "-ref", "test.hase/e2e/signed")
    assert image["signed"] is True and image["fingerprints"] == [FINGERPRINT]
    found, _ = driver("search", "-value", "signed", "-signed")
    assert [i["hash"] for i in found["image"]] == [image["hash"]]
