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
    import types

    import hinkskalle.services.storage as storage
    made = []
    real = hashlib.sha256
    # Only the store's own hashes are counted (not those of other threads of the test run).
    monkeypatch.setattr(storage, "hashlib", types.SimpleNamespace(sha256=lambda *a: made.append(1) or real(*a)))
    store = BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000]
    for number, part in enumerate(parts):
        store.write_at("upload-4", [part], number * 1000)
    assert len(made) == 1                     # the running hash, made at offset 0
    assert store.upload_digest("upload-4") == "sha256:" + real(b"".join(parts)).hexdigest()


# Two BlobStores on one root stand for two server processes: each has its own running
# hashes, the file is shared. What is published must always be what the file holds.

def _parts(store, upload, parts):
    for number, part in enumerate(parts):
        store.write_at(upload, [part], number * 1000)


def test_a_part_rewritten_by_another_process_is_not_hashed_from_memory(tmp_path):
    mine, other = BlobStore(str(tmp_path)), BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 1000]
    _parts(mine, "upload-5", parts)                   # this process hashed all of it
    other.write_at("upload-5", [b"X" * 1000], 0)      # a part sent again, to another process
    on_disk = b"X" * 1000 + parts[1] + parts[2]
    original = "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    with pytest.raises(DigestMismatch):
        mine.commit_upload("upload-5", original, 3000)
    assert mine.upload_digest("upload-5") == "sha256:" + hashlib.sha256(on_disk).hexdigest()


def test_a_failed_write_of_another_process_is_noticed(tmp_path):
    mine, other = BlobStore(str(tmp_path)), BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000]
    _parts(mine, "upload-6", parts)

    def broken():
        yield b"Y" * 500
        raise ConnectionError("client gone")
    with pytest.raises(ConnectionError):
        other.write_at("upload-6", broken(), 0)
    assert mine.upload_digest("upload-6") == "sha256:" + hashlib.sha256(b"Y" * 500 + b"a" * 500 + parts[1]).hexdigest()
    # and a mismatching announced sha256 (422) changes the file just the same
    _parts(mine, "upload-7", parts)
    with pytest.raises(DigestMismatch):
        other.write_at("upload-7", [b"Z" * 1000], 1000, expected_sha256="0" * 64)
    assert mine.upload_digest("upload-7") == "sha256:" + hashlib.sha256(parts[0] + b"Z" * 1000).hexdigest()


def test_an_append_of_another_process_is_noticed(tmp_path):
    """OCI chunks: this process hashed bytes whose commit was lost; another process then
    appends other bytes at the recorded offset, up to the same size."""
    mine, other = BlobStore(str(tmp_path)), BlobStore(str(tmp_path))
    mine.append("upload-8", [b"a" * 100], 0)
    mine.append("upload-8", [b"b" * 100], 100)        # (its database commit failed)
    other.append("upload-8", [b"c" * 100], 100)
    assert mine.upload_digest("upload-8") == "sha256:" + hashlib.sha256(b"a" * 100 + b"c" * 100).hexdigest()


def test_own_writes_keep_the_running_hash(tmp_path, monkeypatch, rereads):
    """The mark check costs no re-read while this process is the only writer."""
    store = BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000]
    _parts(store, "upload-9", parts)
    assert store.upload_digest("upload-9") == "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    assert not [path for path in rereads if path.endswith("upload-9")]


def test_without_nanosecond_mtimes_the_file_is_always_read_again(tmp_path, monkeypatch, rereads):
    store = BlobStore(str(tmp_path))
    monkeypatch.setattr(store, "_stamp", lambda path: None)    # a filesystem keeping seconds only
    _parts(store, "upload-10", [b"a" * 1000, b"b" * 1000])
    assert store.upload_digest("upload-10") == "sha256:" + hashlib.sha256(b"a" * 1000 + b"b" * 1000).hexdigest()
    assert [path for path in rereads if path.endswith("upload-10")]


def test_a_filesystem_that_rounds_mtimes_or_refuses_them_costs_a_re_read_only(tmp_path, monkeypatch):
    import os

    for broken in ("rounds", "refuses"):
        store = BlobStore(str(tmp_path / broken))
        real_utime = os.utime

        def utime(path, ns=None, **kw):
            if broken == "refuses":
                raise PermissionError(1, "Operation not permitted", path)
            return real_utime(path, ns=tuple(n - n % 1_000_000_000 for n in ns), **kw)
        monkeypatch.setattr(os, "utime", utime)
        parts = [b"a" * 1000, b"b" * 1000]
        _parts(store, "upload-11", parts)
        assert all(h.stamp is None for h in store._hashing.values())
        digest = "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
        assert store.commit_upload("upload-11", digest, 2000) == (digest, 2000)
        monkeypatch.undo()


def test_an_append_keeps_its_running_hash_while_no_one_else_writes(tmp_path, monkeypatch, rereads):
    store = BlobStore(str(tmp_path))
    store.append("upload-12", [b"a" * 100], 0)
    store.append("upload-12", [b"b" * 100], 100)
    assert store.upload_digest("upload-12") == "sha256:" + hashlib.sha256(b"a" * 100 + b"b" * 100).hexdigest()
    assert not [path for path in rereads if path.endswith("upload-12")]
