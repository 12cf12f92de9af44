"""BlobStore.write_at: multipart parts written in place, in any order."""
import hashlib

import pytest

from hinkskalle.services.storage import BlobStore, DigestMismatch, TooLarge


def test_parts_out_of_order_make_the_blob(tmp_path):
    store = BlobStore(str(tmp_path))
    data = bytes(range(256)) * 1000
    parts = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    for number in reversed(range(len(parts))):
        assert store.write_at("upload-1", [parts[number]], number * 100_000) == len(parts[number])
    digest, size = store.commit_upload("upload-1", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    assert open(store.path(digest), "rb").read() == data


def test_limit(tmp_path):
    store = BlobStore(str(tmp_path))
    with pytest.raises(TooLarge):
        store.write_at("upload-2", [b"x" * 10, b"y" * 10], 0, limit=15)


def test_an_announced_sha256_is_checked_after_the_write(tmp_path):
    store = BlobStore(str(tmp_path))
    part = b"p" * 1000
    assert store.write_at("upload-3", [part], 0, expected_sha256=hashlib.sha256(part).hexdigest()) == 1000
    with pytest.raises(DigestMismatch) as raised:
        store.write_at("upload-3", [b"q" * 1000], 1000, expected_sha256="0" * 64)
    assert raised.value.actual == hashlib.sha256(b"q" * 1000).hexdigest()


def test_a_part_without_announced_sha256_is_hashed_once(tmp_path, monkeypatch):
    """Only the running hash of the upload is fed; no hash of the part alone is made."""
    import hinkskalle.services.storage as storage
    made = []
    real = hashlib.sha256
    monkeypatch.setattr(storage.hashlib, "sha256", lambda *a: made.append(1) or real(*a))
    store = BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000]
    for number, part in enumerate(parts):
        store.write_at("upload-4", [part], number * 1000)
    assert len(made) == 1                     # the running hash, made at offset 0
    assert store.upload_digest("upload-4") == "sha256:" + real(b"".join(parts)).hexdigest()
