"""BlobStore.write_at: multipart parts written in place, in any order."""
import hashlib

import pytest

from hinkskalle.services.storage import BlobStore, TooLarge


def test_parts_out_of_order_make_the_blob(tmp_path):
    store = BlobStore(str(tmp_path))
    data = bytes(range(256)) * 1000
    parts = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    for number in reversed(range(len(parts))):
        size, hexdigest = store.write_at("upload-1", [parts[number]], number * 100_000)
        assert size == len(parts[number]) and hexdigest == hashlib.sha256(parts[number]).hexdigest()
    digest, size = store.commit_upload("upload-1", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    assert open(store.path(digest), "rb").read() == data


def test_limit(tmp_path):
    store = BlobStore(str(tmp_path))
    with pytest.raises(TooLarge):
        store.write_at("upload-2", [b"x" * 10, b"y" * 10], 0, limit=15)
