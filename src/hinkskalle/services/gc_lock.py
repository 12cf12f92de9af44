"""The lock that lets `hinkskalle gc` run beside a server with pushes in flight.

A push publishes its blob file first and commits the row that references it afterwards;
a gc pass in between would see an unreferenced file. So every request that may write
(anything but GET/HEAD/OPTIONS) holds a shared lock on ``<storage>/gc.lock`` from its start
until after its commit, and gc removes files only while holding that lock exclusively.
flock(2) works across processes: the gc command and every server process on the storage.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from typing import Iterator

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GCLock:
    def __init__(self, storage_root: str):
        self.path = os.path.join(storage_root, "gc.lock")

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held by write requests; many at once, never together with gc's removal phase."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)          # closing the descriptor releases the lock

    @contextmanager
    def exclusive(self, wait: float) -> Iterator[bool]:
        """Held by gc while it removes files; yields False if writes kept it busy for `wait` seconds."""
        fd = self._open()
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    acquired = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        acquired = False
                        break
                    time.sleep(0.05)
            yield acquired
        finally:
            os.close(fd)


def gc_lock_tween_factory(handler, registry):
    lock = GCLock(registry["blobstore"].root)

    def gc_lock_tween(request):
        if request.method in READ_ONLY_METHODS:
            return handler(request)
        with lock.shared():
            return handler(request)

    return gc_lock_tween


def includeme(config):
    # Outside pyramid_tm, so that the lock is held until the transaction has committed.
    config.add_tween("hinkskalle.services.gc_lock.gc_lock_tween_factory", over="pyramid_tm.tm_tween_factory")
