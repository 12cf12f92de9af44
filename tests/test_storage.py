"""The content-addressed blob store: layout, verified atomic publishing, dedup, ranges, resumable uploads."""
import hashlib
import os
import threading
import time

import pytest
from webob import Request, Response

from hinkskalle.services import storage
from hinkskalle.services.storage import BlobIter, BlobStore, DigestMismatch, SizeMismatch, TooLarge

DATA = os.urandom(3 * 1024 * 1024 + 17)     # more than one CHUNK, not a multiple of it


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chunks(data: bytes, size: int = 100_000):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def files_under(folder) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.fixture
def store(tmp_path):
    return BlobStore(str(tmp_path / "store"))


def test_sharded_layout(store, tmp_path):
    digest, size = store.ingest(chunks(DATA))
    hexdigest = digest[len("sha256:"):]
    assert (digest, size) == (sha(DATA), len(DATA))
    assert store.path(digest) == str(tmp_path / "store" / "blobs" / "sha256" / hexdigest[:2] / hexdigest)
    assert files_under(store.blob_root) == [os.path.join(hexdigest[:2], hexdigest)]
    with store.open(digest) as handle:
        assert handle.read() == DATA


def test_bad_digests_are_refused(store):
    for bad in ("sha256:" + "A" * 64, "sha512:" + "a" * 64, "sha256:../../etc/passwd", ""):
        with pytest.raises(ValueError):
            store.path(bad)


def test_not_visible_while_streaming(store):
    digest = sha(DATA)

    def watched():
        for chunk in chunks(DATA):
            assert not store.exists(digest)          # nothing before the end is verified
            assert files_under(store.blob_root) == []
            yield chunk

    assert store.ingest(watched(), expected_digest=digest) == (digest, len(DATA))
    assert store.exists(digest)


def test_digest_mismatch_leaves_nothing(store):
    with pytest.raises(DigestMismatch):
        store.ingest(chunks(DATA), expected_digest=sha(b"something else"))
    assert files_under(store.root) == []


def test_size_mismatch_leaves_nothing(store):
    with pytest.raises(SizeMismatch):
        store.ingest(chunks(DATA), expected_size=len(DATA) + 1)
    assert files_under(store.root) == []


def test_interrupted_stream_leaves_nothing(store):
    def broken():
        yield DATA[:1000]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.ingest(broken())
    assert files_under(store.root) == []


def writer_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "blob-writer"]


def test_chunks_after_the_first_are_written_by_a_writer_thread(store, monkeypatch):
    writers = set()
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda *a: (writers.add(threading.current_thread().name),
                                                  real_pwrite(*a))[1])
    assert store.ingest(chunks(DATA)) == (sha(DATA), len(DATA))
    assert writers == {"MainThread", "blob-writer"}       # the first chunk inline, then the thread
    assert not writer_threads()                           # joined before ingest returned
    with store.open(sha(DATA)) as handle:
        assert handle.read() == DATA


def test_a_failed_write_in_the_writer_thread_reaches_the_caller(store, monkeypatch):
    calls = []
    real_pwrite = os.pwrite

    def full_disk(fd, data, position):
        calls.append(position)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, position)

    received = []

    def body():
        for chunk in chunks(DATA):
            received.append(chunk)
            yield chunk

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store.ingest(body())
    assert files_under(store.root) == [] and not writer_threads()
    # The request stops reading soon after the failure, not at the end of the body.
    assert len(received) <= 3 + storage._Writer.DEPTH + 2 < len(DATA) // 100_000


def test_the_callers_error_wins_over_the_writers(store, monkeypatch):
    real_pwrite = os.pwrite

    def full_disk_after_the_first(fd, data, position):
        if position:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, position)

    monkeypatch.setattr(os, "pwrite", full_disk_after_the_first)
    # The second chunk fails in the writer thread, the third is over the limit: the client
    # is told that (413), and the partial upload is cut back.
    with pytest.raises(TooLarge):
        store.append("upload-0008", [b"x" * 10, b"y" * 10, b"z" * 10], offset=0, limit=25)
    assert store.upload_size("upload-0008") == 0 and not writer_threads()


def test_writer_waits_for_queued_chunks_before_the_caller_cleans_up(store, monkeypatch):
    real_pwrite = os.pwrite
    written = []

    def slow_pwrite(fd, data, position):
        threading.Event().wait(0.01)
        count = real_pwrite(fd, data, position)
        written.append(count)
        return count

    def broken():
        yield from chunks(DATA[:600_000])
        raise ConnectionResetError("client went away")

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    with pytest.raises(ConnectionResetError):
        store.append("upload-0006", broken(), offset=0)
    assert sum(written) == 600_000 and not writer_threads()   # all of it, and nothing after
    time.sleep(0.05)
    assert sum(written) == 600_000


def test_append_retried_after_a_broken_connection_hashes_right(store):
    def broken():
        yield DATA[1000:3000]
        raise ConnectionResetError("client went away")

    store.append("upload-0007", chunks(DATA[:1000]), offset=0)
    with pytest.raises(ConnectionResetError):
        store.append("upload-0007", broken(), offset=1000)
    # The client sends the chunk again from the recorded offset, in the same process.
    store.append("upload-0007", chunks(DATA[1000:]), offset=1000)
    assert store.commit_upload("upload-0007", expected_digest=sha(DATA)) == (sha(DATA), len(DATA))


def test_a_slow_disk_holds_the_request_back_instead_of_queueing_chunks(store, monkeypatch):
    disk = threading.Event()
    real_pwrite = os.pwrite
    # The first chunk is written inline; the writer thread then hangs on the second.
    monkeypatch.setattr(os, "pwrite", lambda fd, data, position: (
        position and disk.wait(30), real_pwrite(fd, data, position))[1])
    received = []

    def body():
        for chunk in chunks(DATA):
            received.append(len(chunk))
            yield chunk

    pushing = threading.Thread(target=store.ingest, args=(body(),))
    pushing.start()
    # Received: the inline chunk, the one being written, the queue's DEPTH and the one waiting
    # to be queued; then the request thread waits for the disk instead of reading on.
    bound = storage._Writer.DEPTH + 3
    deadline = time.monotonic() + 10
    while len(received) < bound and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)                                       # time to read on, if it would
    assert len(received) == bound
    disk.set()
    pushing.join(30)
    assert len(received) == len(DATA) // 100_000 + 1 and store.exists(sha(DATA))


def test_published_with_fsync_and_atomic_rename(store, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", fd)), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", b)), real_replace(a, b))[1])
    digest, _ = store.ingest(chunks(DATA))
    kinds = [kind for kind, _ in calls]
    # The data is fsync'd before the rename and the folder after it (so the rename is durable).
    assert kinds.count("replace") == 1 and "fsync" in kinds[:kinds.index("replace")]
    assert "fsync" in kinds[kinds.index("replace"):]
    assert ("replace", store.path(digest)) in calls


def test_writeback_of_each_chunk_starts_while_the_rest_arrives(tmp_path, monkeypatch):
    """Written through the page cache, every range is handed to sync_file_range(2) at once,
    so the fsync before publishing has little left to flush."""
    store = BlobStore(str(tmp_path / "store"), direct_writes=False)
    ranges = []
    real = storage._SYNC_FILE_RANGE
    assert real is not None                  # Linux with glibc: the real call exists
    monkeypatch.setattr(storage, "_SYNC_FILE_RANGE", lambda fd, offset, length, flags: (
        ranges.append((offset, length, flags)), real(fd, offset, length, flags))[1])
    store.ingest(chunks(DATA))
    assert {flags for _, _, flags in ranges} == {storage.SYNC_FILE_RANGE_WRITE}
    ranges.sort()
    assert all(offset % storage.PAGE == 0 and length % storage.PAGE == 0 for offset, length, _ in ranges)
    # one after the other, with no gap, up to the last whole page
    assert ranges[0][0] == 0 and all(a + n == b for (a, n, _), (b, _, _) in zip(ranges, ranges[1:]))
    assert ranges[-1][0] + ranges[-1][1] == len(DATA) - len(DATA) % storage.PAGE


def test_no_writeback_hint_where_the_system_has_none(store, monkeypatch):
    monkeypatch.setattr(storage, "_SYNC_FILE_RANGE", None)
    digest, _ = store.ingest(chunks(DATA))
    with store.open(digest) as handle:
        assert handle.read() == DATA


def test_one_copy_per_digest(store):
    first = store.ingest(chunks(DATA))
    second = store.ingest(chunks(DATA, 7777))
    assert first == second
    assert len(files_under(store.blob_root)) == 1
    assert files_under(store.tmp_root) == []


def test_concurrent_ingest_of_the_same_blob(store):
    results, errors = [], []

    def push():
        try:
            results.append(store.ingest(chunks(DATA, 65536)))
        except Exception as err:   # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=push) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and results == [(sha(DATA), len(DATA))] * 4
    assert len(files_under(store.blob_root)) == 1
    with store.open(sha(DATA)) as handle:
        assert handle.read() == DATA


@pytest.mark.parametrize("start, stop", [(0, 10), (5, 1024 * 1024 + 5), (len(DATA) - 3, len(DATA)), (0, None),
                                         (1024 * 1024, None)])
def test_range_reads_with_app_iter_range(store, start, stop):
    digest, _ = store.ingest(chunks(DATA))
    whole = BlobIter(store.path(digest))
    part = whole.app_iter_range(start, stop)
    try:
        assert b"".join(part) == DATA[start:stop]
    finally:
        part.close()


@pytest.mark.parametrize("header, status, expected", [
    ("bytes=0-99", 206, DATA[:100]),
    ("bytes=1048570-1048580", 206, DATA[1048570:1048581]),
    ("bytes=-5", 206, DATA[-5:]),
    (None, 200, DATA),
], ids=["first-100", "across-chunks", "suffix", "whole"])   # DATA is random: name the cases
def test_range_requests_through_webob(store, header, status, expected):
    """The way views serve blobs: a conditional Response with BlobIter as app_iter."""
    digest, size = store.ingest(chunks(DATA))
    response = Response(conditional_response=True, app_iter=BlobIter(store.path(digest)), content_length=size)
    request = Request.blank("/", headers={"Range": header} if header else {})
    result = request.get_response(response)
    assert result.status_int == status
    assert result.body == expected


# -- direct writes (O_DIRECT) ---------------------------------------------------------

def record_writes(monkeypatch) -> list[tuple[int, int, bool]]:
    """(offset, length, with O_DIRECT) of every pwrite from now on."""
    import fcntl
    writes, real_pwrite = [], os.pwrite

    def pwrite(fd, data, position):
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        count = real_pwrite(fd, data, position)
        writes.append((position, count, direct))
        return count

    monkeypatch.setattr(os, "pwrite", pwrite)
    return writes


def test_a_large_body_is_written_past_the_page_cache(store, monkeypatch):
    writes = record_writes(monkeypatch)
    assert store.ingest(chunks(DATA, storage.CHUNK)) == (sha(DATA), len(DATA))
    direct = [(offset, length) for offset, length, is_direct in writes if is_direct]
    # The first chunk inline through the page cache, then whole blocks direct, the tail not.
    assert sum(length for _, length in direct) == len(DATA) - storage.CHUNK - 17
    assert all(offset % storage.DIRECT_ALIGN == 0 == length % storage.DIRECT_ALIGN
               for offset, length in direct)
    with store.open(sha(DATA)) as handle:
        assert handle.read() == DATA


def test_small_bodies_and_a_store_without_direct_writes_use_the_page_cache(tmp_path, monkeypatch):
    writes = record_writes(monkeypatch)
    BlobStore(str(tmp_path / "a")).ingest([DATA[:storage.CHUNK]])          # one chunk
    BlobStore(str(tmp_path / "b"), direct_writes=False).ingest(chunks(DATA))
    assert writes and not any(is_direct for *_, is_direct in writes)


def test_direct_writes_keep_every_byte_at_unaligned_offsets_and_sizes(store, monkeypatch):
    writes = record_writes(monkeypatch)
    # OCI appends that end and start mid-block, in chunks of odd sizes.
    cuts = [0, 1000, 1_500_001, 2_700_000, len(DATA)]
    for begin, end in zip(cuts, cuts[1:]):
        store.append("upload-odd1", chunks(DATA[begin:end], 100_003), offset=begin)
    assert store.commit_upload("upload-odd1", expected_digest=sha(DATA)) == (sha(DATA), len(DATA))
    # Library parts at unaligned offsets, the last one first.
    parts = [(0, 1_234_567), (1_234_567, 2_500_000), (2_500_000, len(DATA))]
    for begin, end in reversed(parts):
        store.write_at("upload-odd2", chunks(DATA[begin:end], 333_333), offset=begin)
    with open(store.upload_path("upload-odd2"), "rb") as handle:
        assert handle.read() == DATA
    assert any(is_direct for *_, is_direct in writes)


def test_a_filesystem_without_o_direct_gets_the_page_cache(store, monkeypatch):
    import fcntl
    real_fcntl = fcntl.fcntl

    def refusing(fd, command, arg=0):
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(22, "Invalid argument")          # as tmpfs before Linux 6.6, some FUSE
        return real_fcntl(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    writes = record_writes(monkeypatch)
    store.append("upload-nodi", chunks(DATA), offset=0)
    assert store.commit_upload("upload-nodi", expected_digest=sha(DATA)) == (sha(DATA), len(DATA))
    assert not any(is_direct for *_, is_direct in writes)


def test_a_direct_write_refused_midway_is_written_through_the_page_cache(store, monkeypatch):
    import fcntl
    refused, real_pwrite = [], os.pwrite

    def pwrite(fd, data, position):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT and not refused:
            refused.append(position)                       # a device wanting larger alignment
            raise OSError(22, "Invalid argument")
        return real_pwrite(fd, data, position)

    monkeypatch.setattr(os, "pwrite", pwrite)
    assert store.ingest(chunks(DATA)) == (sha(DATA), len(DATA))
    assert refused
    with store.open(sha(DATA)) as handle:
        assert handle.read() == DATA


@pytest.mark.parametrize("direct", [True, False])
def test_catching_up_reads_the_file_exactly(tmp_path, monkeypatch, direct):
    """Re-reading a partial upload to catch its hash up starts mid-block and ends mid-file."""
    store = BlobStore(str(tmp_path / "store"), direct_writes=direct)
    store.append("upload-read", chunks(DATA), offset=0)
    path = store.upload_path("upload-read")
    for start, stop in [(0, len(DATA)), (5, 4096 * 3 + 1), (storage.CHUNK - 1, len(DATA) - 3),
                        (4096, 4096), (len(DATA) - 10, len(DATA) + 100)]:
        got = b"".join(bytes(chunk) for chunk in storage._read_range(path, start, stop, direct))
        assert got == DATA[start:stop]
    restarted = BlobStore(store.root, direct_writes=direct)
    assert restarted.upload_digest("upload-read") == sha(DATA)


def test_catching_up_reads_direct_and_falls_back_where_refused(tmp_path, monkeypatch):
    import fcntl
    store = BlobStore(str(tmp_path / "store"))
    store.append("upload-cold", chunks(DATA), offset=0)
    flags, real_open = [], os.open

    def recording_open(path, mode, *args, **kw):
        if str(path).endswith("upload-cold"):
            flags.append(mode & os.O_DIRECT)
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr(os, "open", recording_open)
    assert BlobStore(store.root).upload_digest("upload-cold") == sha(DATA)
    assert os.O_DIRECT in flags

    def refusing_open(path, mode, *args, **kw):
        if mode & os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_open(path, mode, *args, **kw)

    monkeypatch.setattr(os, "open", refusing_open)
    assert BlobStore(store.root).upload_digest("upload-cold") == sha(DATA)


def test_unsatisfiable_range(store):
    digest, size = store.ingest(chunks(DATA))
    response = Response(conditional_response=True, app_iter=BlobIter(store.path(digest)), content_length=size)
    result = Request.blank("/", headers={"Range": f"bytes={size + 10}-"}).get_response(response)
    assert result.status_int == 416


def test_resumable_upload_continues_after_restart(tmp_path):
    root = str(tmp_path / "store")
    first, second, third = DATA[:1000], DATA[1000:2_000_000], DATA[2_000_000:]
    store = BlobStore(root)
    assert store.append("upload-0001", chunks(first), offset=0) == len(first)
    assert store.append("upload-0001", chunks(second), offset=len(first)) == len(second)

    restarted = BlobStore(root)          # a new process: no running hash in memory
    assert restarted.upload_size("upload-0001") == len(first) + len(second)
    restarted.append("upload-0001", chunks(third), offset=len(first) + len(second))
    assert restarted.upload_digest("upload-0001") == sha(DATA)
    assert restarted.commit_upload("upload-0001", expected_digest=sha(DATA), expected_size=len(DATA)) \
        == (sha(DATA), len(DATA))
    assert restarted.exists(sha(DATA)) and files_under(restarted.upload_root) == []


def test_catching_up_on_one_upload_does_not_stall_the_others(tmp_path, monkeypatch):
    """A restarted process re-reads a partial upload to go on hashing it (gigabytes, seconds);
    meanwhile its other uploads go on."""
    root = str(tmp_path / "store")
    BlobStore(root).append("upload-big1", chunks(DATA), offset=0)
    restarted = BlobStore(root)
    reading, release = threading.Event(), threading.Event()
    real_read_range = storage._read_range

    def held_read_range(path, *args):     # the re-read of upload-big1 waits for `release`
        for chunk in real_read_range(path, *args):
            if path.endswith("upload-big1"):
                reading.set()
                assert release.wait(30)
            yield chunk

    monkeypatch.setattr(storage, "_read_range", held_read_range)
    catching_up = threading.Thread(target=restarted.upload_digest, args=("upload-big1",))
    catching_up.start()
    try:
        assert reading.wait(30)
        other = threading.Thread(target=lambda: (
            restarted.append("upload-new1", chunks(DATA[:1000]), offset=0),
            restarted.write_at("upload-new2", [DATA[:1000]], 0)))
        other.start()
        other.join(10)
        assert not other.is_alive(), "another upload waited for the re-read"
    finally:
        release.set()
        catching_up.join(30)
    monkeypatch.undo()
    assert restarted.commit_upload("upload-big1") == (sha(DATA), len(DATA))
    assert restarted.commit_upload("upload-new1") == (sha(DATA[:1000]), 1000)
    assert restarted.upload_digest("upload-new2") == sha(DATA[:1000])


def test_torn_append_is_cut_back_to_the_recorded_offset(tmp_path):
    root = str(tmp_path / "store")
    recorded = 2_000_000
    store = BlobStore(root)
    store.append("upload-0002", chunks(DATA[:recorded]), offset=0)
    # The process died half-way through the next append: bytes the database never recorded.
    with open(store.upload_path("upload-0002"), "ab") as handle:
        handle.write(b"torn" * 1000)

    restarted = BlobStore(root)
    restarted.append("upload-0002", chunks(DATA[recorded:]), offset=recorded)   # the client retries
    assert restarted.commit_upload("upload-0002", expected_digest=sha(DATA)) == (sha(DATA), len(DATA))


def test_retried_chunk_does_not_duplicate_data(store):
    store.append("upload-0003", chunks(DATA[:1000]), offset=0)
    store.append("upload-0003", chunks(DATA[1000:5000]), offset=1000)
    store.append("upload-0003", chunks(DATA[1000:5000]), offset=1000)     # same chunk again
    store.append("upload-0003", chunks(DATA[5000:]), offset=5000)
    assert store.commit_upload("upload-0003") == (sha(DATA), len(DATA))


def test_upload_commit_with_wrong_digest_publishes_nothing(store):
    store.append("upload-0004", chunks(DATA), offset=0)
    with pytest.raises(DigestMismatch):
        store.commit_upload("upload-0004", expected_digest=sha(b"other"))
    assert files_under(store.blob_root) == []
    assert store.upload_size("upload-0004") == len(DATA)    # the client may still fix it


def test_append_limit(store):
    with pytest.raises(TooLarge):
        store.append("upload-0005", chunks(DATA), offset=0, limit=1000)
    assert store.upload_size("upload-0005") == 0


def test_upload_ids_cannot_escape_the_store(store):
    for bad in ("../../etc/passwd", "a/b", "short", ""):
        with pytest.raises(ValueError):
            store.upload_path(bad)


def test_parts_in_order_advance_the_running_hash_without_a_second_read(tmp_path, monkeypatch, rereads):
    store = BlobStore(str(tmp_path))
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 500]
    for number, part in enumerate(parts):
        store.write_at("upload-1234", [part], number * 1000,
                       expected_sha256=hashlib.sha256(part).hexdigest())
    digest = store.upload_digest("upload-1234")
    assert digest == "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    assert not [path for path in rereads if path.endswith("upload-1234")]   # nothing re-read


def test_parts_out_of_order_and_rewrites_are_hashed_from_the_file(tmp_path):
    store = BlobStore(str(tmp_path))
    first, second = b"x" * 100, b"y" * 100
    store.write_at("upload-5678", [second], 100)
    store.write_at("upload-5678", [first], 0)
    assert store.upload_digest("upload-5678") == "sha256:" + hashlib.sha256(first + second).hexdigest()
    # A part re-sent with other bytes over already-hashed data: the commit sees the file's bytes.
    with pytest.raises(DigestMismatch):
        store.write_at("upload-5678", [b"z" * 100], 0, expected_sha256="0" * 64)
    assert store.upload_digest("upload-5678") == "sha256:" + hashlib.sha256(b"z" * 100 + second).hexdigest()


def test_a_part_with_the_wrong_checksum_does_not_advance_the_hash(tmp_path):
    store = BlobStore(str(tmp_path))
    with pytest.raises(DigestMismatch):
        store.write_at("upload-9999", [b"bad!" * 10], 0, expected_sha256="0" * 64)
    store.write_at("upload-9999", [b"good" * 10], 0, expected_sha256=hashlib.sha256(b"good" * 10).hexdigest())
    assert store.upload_digest("upload-9999") == "sha256:" + hashlib.sha256(b"good" * 10).hexdigest()
