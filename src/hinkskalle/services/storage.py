"""Content-addressed blob store on the filesystem.

Layout under the storage root::

    blobs/sha256/<h0h1>/<hex>     finished blobs, one file per digest, never rewritten
    uploads/<upload-id>           partial data of an upload session (survives restarts)
    tmp/                          single-request uploads being hashed

A blob becomes visible only by an atomic rename after its digest has been verified and
its bytes fsync'd. Nothing here ever holds a whole blob in memory.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import mmap
import os
import queue
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

CHUNK = 1024 * 1024
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


class DigestMismatch(ValueError):
    def __init__(self, expected: str, actual: str):
        super().__init__(f"digest {actual} does not match expected {expected}")
        self.expected, self.actual = expected, actual


class SizeMismatch(ValueError):
    def __init__(self, expected: int, actual: int):
        super().__init__(f"size {actual} does not match expected {expected}")
        self.expected, self.actual = expected, actual


class TooLarge(ValueError):
    pass


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.match(value or ""))


class _Writer:
    """Writes chunks one after the other into a file from `offset` on and feeds them to
    `hashers`, from a thread of its own once a second chunk comes, so that receiving and
    hashing the next chunk overlap with the kernel's copy of this one into the page cache
    (writing, hashing and receiving each release the GIL). A push then uses two cores.

    Chunks must be bytes (never changed after they are handed over). At most DEPTH of them
    wait: with the one being written and the one being received, a push holds at most four
    chunks (4 MiB); with `direct`, the chunks after the first go through one more, the
    aligned copy of _DirectOutput. `close` waits until all are written and raises what the
    writing failed with, unless the caller is failing already; `write` raises it as soon as
    it is known.
    """

    DEPTH = 2

    def __init__(self, fd: int, offset: int, hashers: list = (), direct: bool = False):
        self.fd, self.position, self.hashers = fd, offset, hashers
        self.direct = direct
        self._out: _DirectOutput | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._queue is None:               # the first chunk: small bodies need no thread
            self._queue = queue.Queue(self.DEPTH)
            self._write(chunk)
            return
        if self._thread is None:
            if self.direct:
                self._out = _DirectOutput(self.fd, self.position)
            self._thread = threading.Thread(target=self._run, name="blob-writer", daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def close(self, raise_error: bool = True) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._out is not None:
            try:
                self._out.close()
            except BaseException as err:  # noqa: BLE001
                self._error = self._error or err
            self._out = None
        error, self._error = self._error, None      # (its traceback refers back to us)
        if error is not None and raise_error:
            raise error

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        # An error of the caller's (TooLarge, a client gone) is the one to report.
        self.close(raise_error=exc_type is None)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:          # after a failure: only drain, so `put` never blocks
                try:
                    self._write(chunk)
                except BaseException as err:  # noqa: BLE001 - re-raised in the request thread
                    self._error = err

    def _write(self, chunk: bytes) -> None:
        if self._out is not None:
            self._out.write(chunk)
        else:
            _write_buffered(self.fd, chunk, self.position)
            self.position += len(chunk)
        for hasher in self.hashers:
            hasher.update(chunk)


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        count = os.pwrite(fd, view, offset)
        view, offset = view[count:], offset + count


def _write_buffered(fd: int, data, offset: int) -> None:
    """Through the page cache, with its writeback started at once (start_writeback)."""
    _pwrite_all(fd, data, offset)
    start_writeback(fd, offset, len(data))


DIRECT_ALIGN = 4096   # O_DIRECT's alignment of offsets, lengths and memory (covers 512-byte devices)


class _DirectOutput:
    """Writes a file's bytes past the page cache (O_DIRECT), through an aligned buffer.

    A page-cache page that is new to the file costs the kernel a free page to find and fill
    and, on a virtual machine, often a fault in the host as well: here one GiB written
    through the page cache took 2.5 s of CPU (370 MiB/s), written direct 0.04 s (2750
    MiB/s). The price: the first read of a new blob comes from the disk (1270 MiB/s direct,
    600 through the page cache here); a blob nobody pulls soon never costs page cache at all.
    Whole blocks only go direct: the unaligned head and tail go through the page cache, and
    so does everything where the filesystem refuses O_DIRECT (EINVAL).
    """

    def __init__(self, fd: int, position: int):
        self.fd, self.position = fd, position     # file offset of buffer[0]
        self.buffer = mmap.mmap(-1, CHUNK + DIRECT_ALIGN)   # page-aligned memory
        self.filled = 0
        self.flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        self.direct: bool | None = None           # not yet decided: at the first block boundary

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        if self.direct is None:       # up to the first block boundary through the page cache
            head = view[:-self.position % DIRECT_ALIGN]
            _pwrite_all(self.fd, head, self.position)
            self.position += len(head)
            view = view[len(head):]
            if self.position % DIRECT_ALIGN:
                return
            self.direct = self._set_direct(True)
        if not self.direct:           # refused: no copy through the buffer
            self._flush(self.filled)
            _write_buffered(self.fd, view, self.position)
            self.position += len(view)
            return
        while view:
            count = min(len(view), len(self.buffer) - self.filled)
            self.buffer[self.filled:self.filled + count] = view[:count]
            self.filled += count
            view = view[count:]
            self._flush(self.filled - self.filled % DIRECT_ALIGN)

    def _flush(self, length: int) -> None:
        if length == 0:
            return
        with memoryview(self.buffer) as whole:
            if self.direct:
                try:
                    _pwrite_all(self.fd, whole[:length], self.position)
                except OSError as err:
                    if err.errno != errno.EINVAL:
                        raise
                    self.direct = self._set_direct(False)
            if not self.direct:
                _write_buffered(self.fd, whole[:length], self.position)
        rest = self.buffer[length:self.filled]
        self.buffer[:len(rest)] = rest
        self.position += length
        self.filled = len(rest)

    def _set_direct(self, on: bool) -> bool:
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, self.flags | os.O_DIRECT if on else self.flags)
            return on
        except OSError:
            return False

    def close(self) -> None:
        """Write what is left (less than a block) through the page cache."""
        try:
            if self.direct:
                self.direct = self._set_direct(False)
            self._flush(self.filled)
        finally:
            self.buffer.close()


def _sync_file_range():
    """sync_file_range(2) of the C library, or None where there is none (not Linux)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()
SYNC_FILE_RANGE_WRITE = 2      # <fcntl.h>: start writing dirty pages out, do not wait
PAGE = 4096


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing these bytes to disk now, without waiting for it (the
    write-behind databases use). The fsync before a blob is published then waits only for
    what is still in flight instead of flushing the whole blob at once: 0.45 s per GiB
    at the end of every push here. Whole pages only: the next write into a page under
    writeback could have to wait for it; a page left out goes with the next chunk. Only a
    hint: errors show up in that fsync."""
    begin, end = offset - offset % PAGE, (offset + length) - (offset + length) % PAGE
    if _SYNC_FILE_RANGE is not None and end > begin:
        _SYNC_FILE_RANGE(fd, begin, end - begin, SYNC_FILE_RANGE_WRITE)


def _read_range(path: str, start: int, stop: int, direct: bool) -> Iterator[bytes | memoryview]:
    """The bytes of `path` from `start` to `stop` (or its end), a chunk at a time, each valid
    until the next. With `direct`, past the page cache: a file written with _DirectOutput is
    on the disk, not in the page cache, and a GiB read direct here took 0.1 s of CPU (1370
    MiB/s) against 1.3-1.9 s through the page cache (520-740 MiB/s)."""
    fd = -1
    if direct:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
    if fd < 0:
        with open(path, "rb") as handle:
            handle.seek(start)
            while start < stop and (chunk := handle.read(min(CHUNK, stop - start))):
                yield chunk
                start += len(chunk)
        return
    buffer = memoryview(mmap.mmap(-1, CHUNK))                # page-aligned memory
    try:
        position = start - start % DIRECT_ALIGN
        while position < stop and (count := os.preadv(fd, [buffer], position)) > 0:
            yield buffer[max(start - position, 0):min(count, stop - position)]
            position += count
    finally:
        os.close(fd)


def _pour(fd: int, chunks: Iterable[bytes], offset: int, max_bytes: int | None,
          hashers: list, direct: bool = False) -> int:
    """Write `chunks` into `fd` from `offset` on, feeding each hasher; returns bytes written.
    Raises TooLarge before writing more than `max_bytes`. The first hasher is fed here, the
    others beside the write (a multipart part with an announced sha256 has two). `direct`:
    a body of more than one chunk goes past the page cache (_DirectOutput)."""
    here, beside = hashers[:1], hashers[1:]
    written = 0
    with _Writer(fd, offset, beside, direct) as writer:
        for chunk in chunks:
            if max_bytes is not None and written + len(chunk) > max_bytes:
                raise TooLarge(f"more than {max_bytes} bytes")
            writer.write(chunk)
            for hasher in here:
                hasher.update(chunk)
            written += len(chunk)
    return written


@dataclass
class _Hashing:
    """A running sha256 over the first `offset` bytes of a partial upload."""
    offset: int
    hasher: "hashlib._Hash"
    busy: bool = False        # a write_at is extending it right now
    stamp: int | None = None  # the file's mtime (ns) as this process left it (see _stamp)


class BlobStore:
    def __init__(self, root: str, direct_writes: bool = True):
        self.root = os.path.abspath(root)
        self.direct_writes = direct_writes and hasattr(os, "O_DIRECT")
        self.blob_root = os.path.join(self.root, "blobs", "sha256")
        self.upload_root = os.path.join(self.root, "uploads")
        self.tmp_root = os.path.join(self.root, "tmp")
        for folder in (self.blob_root, self.upload_root, self.tmp_root):
            os.makedirs(folder, exist_ok=True)
        # Running hashes of uploads in flight in this process, so finishing an upload does not
        # read it again. After a restart (or in another process) the partial file is re-hashed once.
        self._hashing: dict[str, _Hashing] = {}
        self._lock = threading.Lock()

    # -- finished blobs -------------------------------------------------------------
    def path(self, digest: str) -> str:
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        hexdigest = digest[7:]
        return os.path.join(self.blob_root, hexdigest[:2], hexdigest)

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.stat(self.path(digest)).st_size

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(digest, mtime) of every finished blob."""
        for shard in os.scandir(self.blob_root):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                if re.fullmatch(r"[a-f0-9]{64}", entry.name):
                    yield "sha256:" + entry.name, entry.stat().st_mtime

    def touch(self, digest: str) -> None:
        """Refresh a blob's mtime so that gc's grace period starts again (dedup re-use)."""
        try:
            os.utime(self.path(digest))
        except FileNotFoundError:
            pass

    def _publish(self, tmp_path: str, digest: str) -> None:
        """fsync and atomically rename a verified file into place (one copy per digest)."""
        target = self.path(digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            os.unlink(tmp_path)
            self.touch(digest)
            return
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, target)
        dir_fd = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- one-shot ingest ------------------------------------------------------------
    def ingest(self, chunks: Iterable[bytes], expected_digest: str | None = None,
               expected_size: int | None = None) -> tuple[str, int]:
        """Write `chunks` to the store, hashing on the fly; returns (digest, size).

        Raises DigestMismatch/SizeMismatch (and stores nothing) when the data is not what was
        announced.
        """
        hasher = hashlib.sha256()
        fd, tmp_path = tempfile.mkstemp(dir=self.tmp_root)
        try:
            try:
                size = _pour(fd, chunks, 0, None, [hasher], self.direct_writes)
            finally:
                os.close(fd)
            digest = "sha256:" + hasher.hexdigest()
            if expected_size is not None and size != expected_size:
                raise SizeMismatch(expected_size, size)
            if expected_digest is not None and digest != expected_digest:
                raise DigestMismatch(expected_digest, digest)
            self._publish(tmp_path, digest)
            return digest, size
        except BaseException:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise

    # -- resumable uploads ----------------------------------------------------------
    def upload_path(self, upload_id: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", upload_id):
            raise ValueError(f"invalid upload id {upload_id!r}")
        return os.path.join(self.upload_root, upload_id)

    def upload_size(self, upload_id: str) -> int:
        try:
            return os.stat(self.upload_path(upload_id)).st_size
        except FileNotFoundError:
            return 0

    def append(self, upload_id: str, chunks: Iterable[bytes], offset: int,
               limit: int | None = None) -> int:
        """Append `chunks` to the partial upload at byte `offset`; returns bytes written.

        `offset` is the size the database recorded; a longer file (an interrupted earlier
        append) is cut back to it, so a retried chunk never duplicates data. Raises TooLarge
        when more than `limit` bytes arrive in total.
        """
        hashing = self._hashing_at(upload_id, offset)
        hasher = hashing.hasher.copy()       # the running hash advances only once all is written
        path = self.upload_path(upload_id)
        written = None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, offset)
            written = _pour(fd, chunks, offset, None if limit is None else limit - offset, [hasher],
                            self.direct_writes)
        except TooLarge:
            os.ftruncate(fd, offset)
            raise
        finally:
            os.close(fd)
            stamp = self._stamp(path)
            with self._lock:
                if written is not None:
                    self._advance(upload_id, hashing, offset, hasher, written)
                self._restamp(upload_id, stamp, hashing)   # the bytes before `offset` are as hashed
        return written

    def write_at(self, upload_id: str, chunks: Iterable[bytes], offset: int,
                 limit: int | None = None, expected_sha256: str | None = None) -> int:
        """Write `chunks` into the partial upload at `offset`, for parts that arrive in any order
        or in parallel (library multipart); returns the bytes written.

        A part that continues the upload's running hash (parts in order) also advances it, so
        committing needs no second read of it. The part's own sha256 is computed only when
        the client announced one (`expected_sha256`): a mismatch raises DigestMismatch after
        the write and leaves the running hash where it was. A write into bytes already hashed
        drops the running hash: the commit then re-reads the file, so what is published is
        always what was hashed. Raises TooLarge when more than `limit` bytes arrive.
        """
        path = self.upload_path(upload_id)
        with self._lock:
            running = self._current(upload_id)
            if running is None and offset == 0:
                running = self._hashing[upload_id] = _Hashing(0, hashlib.sha256())
            feeding = running is not None and running.offset == offset and not running.busy
            if feeding:
                running.busy = True
            elif running is not None and offset <= running.offset:
                self._hashing.pop(upload_id, None)
        own = hashlib.sha256() if expected_sha256 else None
        candidate = running.hasher.copy() if feeding else None
        written = None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                count = _pour(fd, chunks, offset, limit, [h for h in (own, candidate) if h is not None],
                              self.direct_writes)
            finally:
                os.close(fd)          # (network filesystems report write errors here)
            written = count
        finally:
            matches = own is None or own.hexdigest() == expected_sha256
            stamp = self._stamp(path)
            with self._lock:
                if feeding:
                    running.busy = False
                    if written is None:
                        self._hashing.pop(upload_id, None)
                    elif matches:
                        self._advance(upload_id, running, offset, candidate, written)
                # If still registered, it hashed bytes this write did not touch.
                self._restamp(upload_id, stamp, running)
        if not matches:
            raise DigestMismatch(expected_sha256, own.hexdigest())
        return written

    # A running hash lives in one server process, but any process may write the file (the
    # database's row lock makes them take turns): another process's write (a part sent
    # again, a failed retry) may change bytes this process already hashed. So every write
    # leaves its own mark on the file, an mtime that no other write sets, and a running hash
    # is trusted only while the file still carries the mark of this process's last write.
    def _stamp(self, path: str) -> int | None:
        """Set the file's mtime to a value of our own and return it; None where the file is
        gone or the filesystem does not keep nanoseconds (running hashes are then never
        trusted: the commit re-reads the file). The value lies a second or two in the past,
        so any later write, which sets the clock's time, changes it."""
        mark = time.time_ns() - 1_000_000_000 - secrets.randbelow(1_000_000_000)
        try:
            os.utime(path, ns=(mark, mark))
            return mark if self._mtime(path) == mark else None
        except OSError:            # gone, or not ours to touch (EPERM, a mount that refuses)
            return None

    @staticmethod
    def _mtime(path: str) -> int:
        """The file's mtime in ns, from an open descriptor: opening makes NFS revalidate its
        cached attributes, which a plain stat may serve for seconds (mounts without `nocto`)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)

    def _restamp(self, upload_id: str, stamp: int | None, hashing: _Hashing | None) -> None:
        """After a write of this process: `hashing`, if it is still the registered running
        hash, is valid for the file as it now is. Call with the lock held."""
        if hashing is not None and self._hashing.get(upload_id) is hashing and not hashing.busy:
            hashing.stamp = stamp

    def _current(self, upload_id: str) -> _Hashing | None:
        """The registered running hash, unless another process wrote the file since this one
        last did (then it is dropped). Call with the lock held."""
        hashing = self._hashing.get(upload_id)
        if hashing is None or hashing.busy or hashing.offset == 0:
            return hashing
        try:
            untouched = hashing.stamp is not None and self._mtime(self.upload_path(upload_id)) == hashing.stamp
        except OSError:
            untouched = False
        if not untouched:
            self._hashing.pop(upload_id, None)
            return None
        return hashing

    def _advance(self, upload_id: str, running: _Hashing, offset: int, hasher, written: int) -> None:
        """After a complete write at `offset`: `hasher` (a copy of `running`'s, fed with the
        write) becomes the running hash, unless another write moved or replaced it meanwhile.
        Call with the lock held."""
        if self._hashing.get(upload_id) is running and running.offset == offset:
            running.hasher, running.offset = hasher, offset + written

    def _hashing_at(self, upload_id: str, offset: int) -> _Hashing:
        """The running hash of the first `offset` bytes, catching up from the file if behind.

        The file is read outside the store's lock: catching up on gigabytes (after a restart,
        or after another process wrote) must not stall the other uploads of this process.
        Writes to one upload take turns anyway (the database's row lock).
        """
        with self._lock:
            current = self._current(upload_id)
        if current is not None and current.offset == offset and not current.busy:
            return current
        if current is None or current.offset > offset or current.busy:
            hashing = _Hashing(0, hashlib.sha256())
        else:
            hashing = _Hashing(current.offset, current.hasher.copy())
        path = self.upload_path(upload_id)
        if hashing.offset < offset and os.path.exists(path):
            for chunk in _read_range(path, hashing.offset, offset, self.direct_writes):
                hashing.hasher.update(chunk)
                hashing.offset += len(chunk)
            hashing.stamp = self._stamp(path)
        with self._lock:
            self._hashing[upload_id] = hashing
        return hashing

    def upload_digest(self, upload_id: str) -> str:
        """sha256 of the whole partial upload (from the running hash when it is current)."""
        size = self.upload_size(upload_id)
        return "sha256:" + self._hashing_at(upload_id, size).hasher.copy().hexdigest()

    def commit_upload(self, upload_id: str, expected_digest: str | None = None,
                      expected_size: int | None = None) -> tuple[str, int]:
        """Verify and publish a partial upload as a blob; returns (digest, size)."""
        path = self.upload_path(upload_id)
        if not os.path.exists(path):
            open(path, "ab").close()
        size = os.stat(path).st_size
        if expected_size is not None and size != expected_size:
            raise SizeMismatch(expected_size, size)
        digest = self.upload_digest(upload_id)
        if expected_digest is not None and digest != expected_digest:
            raise DigestMismatch(expected_digest, digest)
        self._publish(path, digest)
        self.forget_upload(upload_id)
        return digest, size

    def forget_upload(self, upload_id: str) -> None:
        with self._lock:
            self._hashing.pop(upload_id, None)

    def discard_upload(self, upload_id: str) -> None:
        self.forget_upload(upload_id)
        try:
            os.unlink(self.upload_path(upload_id))
        except FileNotFoundError:
            pass

    def iter_uploads(self) -> Iterator[tuple[str, float]]:
        for entry in os.scandir(self.upload_root):
            yield entry.name, entry.stat().st_mtime

    def cleanup_tmp(self, older_than: float) -> int:
        removed = 0
        for entry in os.scandir(self.tmp_root):
            if entry.stat().st_mtime < time.time() - older_than:
                os.unlink(entry.path)
                removed += 1
        return removed


class FileWindow:
    """An open file that ends at `stop`: what a server's `file_wrapper` gets for a Range.

    Servers read a wrapped file their own way: gunicorn sends it with sendfile(2) from the
    current position for Content-Length bytes, or, with `sendfile = false`, reads it to its
    end and drops what lies past Content-Length; waitress seeks to the end to learn its
    length. Reads, `seek(0, SEEK_END)` and so the length all stop at `stop`; positions are
    the file's own.
    """

    def __init__(self, file, stop: int):
        self.file, self.stop = file, stop

    def read(self, size: int | None = -1) -> bytes:
        left = max(self.stop - self.file.tell(), 0)
        return self.file.read(left if size is None or size < 0 else min(size, left))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self.file.seek(self.stop + offset)
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()


class BlobIter:
    """WSGI app_iter over a blob with seek-based ranges (webob calls `app_iter_range`).

    With the server's `file_wrapper` a range is handed to the server's own file sending,
    as a `FileWindow` positioned at the start.
    """

    def __init__(self, path: str, start: int = 0, stop: int | None = None, block_size: int = CHUNK,
                 file_wrapper=None):
        self.path, self.start, self.stop, self.block_size = path, start, stop, block_size
        self.file_wrapper = file_wrapper
        self.file = open(path, "rb")
        self.file.seek(start)

    def app_iter_range(self, start, stop):
        if self.file_wrapper is not None and self.start == 0 and self.stop is None:
            self.file.seek(start or 0)
            window = self.file if stop is None else FileWindow(self.file, stop)
            return self.file_wrapper(window, self.block_size)
        self.file.close()
        return BlobIter(self.path, self.start + (start or 0),
                        None if stop is None else self.start + stop, self.block_size)

    def __iter__(self):
        return self

    def __next__(self):
        want = self.block_size
        if self.stop is not None:
            want = min(want, self.stop - self.file.tell())
        if want <= 0:
            raise StopIteration
        data = self.file.read(want)
        if not data:
            raise StopIteration
        return data

    def close(self):
        self.file.close()


def store_from_settings(settings: dict) -> BlobStore:
    return BlobStore(settings["hinkskalle.storage.path"], settings["hinkskalle.storage.direct_writes"])


def includeme(config):
    store = store_from_settings(config.get_settings())
    config.registry["blobstore"] = store
    config.add_request_method(lambda request: request.registry["blobstore"], "blobstore", reify=True)
