"""Download counters batched in memory, so that pulls (GET requests) never write.

`record_pull` adds to the process's `DownloadCounter`; a background thread writes the sums
in one short transaction every `hinkskalle.counter_flush_interval` seconds, and once more
when the process exits. With an interval of 0 counters are written in the pull's own
transaction instead (tests, and anyone who wants exact counts at once).
"""
from __future__ import annotations

import atexit
import logging
import threading
from datetime import datetime

from sqlalchemy import func, update

log = logging.getLogger(__name__)


class DownloadCounter:
    def __init__(self, session_factory, interval: float):
        self.session_factory = session_factory
        self.interval = interval
        self._pending: dict[tuple[type, int], list] = {}    # (model, id) -> [count, latest]
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.close)

    def add(self, rows, when: datetime) -> None:
        """Count one download of each ORM object in `rows`."""
        with self._lock:
            for row in rows:
                entry = self._pending.setdefault((type(row), row.id), [0, when])
                entry[0] += 1
                entry[1] = max(entry[1], when)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="download-counter", daemon=True)
                self._thread.start()

    def flush(self) -> None:
        """Write what was counted so far in one transaction (kept for the next try on errors)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            with self.session_factory() as session, session.begin():
                # Batches are written in time order, so a batch's latest is the newest.
                for (model, row_id), (count, latest) in pending.items():
                    session.execute(update(model).where(model.id == row_id).values(
                        download_count=func.coalesce(model.download_count, 0) + count,
                        latest_download=latest))
        except Exception:
            log.exception("writing %d download counters failed; retrying later", len(pending))
            with self._lock:
                for key, (count, latest) in pending.items():
                    entry = self._pending.setdefault(key, [0, latest])
                    entry[0] += count
                    entry[1] = max(entry[1], latest)

    def _run(self) -> None:
        while not self._wakeup.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._wakeup.set()
        self.flush()


def includeme(config):
    settings = config.get_settings()
    config.registry["download_counter"] = DownloadCounter(
        config.registry["dbwrite_session_factory"], settings["hinkskalle.counter_flush_interval"])
