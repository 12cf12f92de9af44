"""hinkskalle-audit: an append-only JSON-lines audit log of logins, pushes, pulls, tags and deletes.

One line per event, written after the commit (failed logins too): the event's kind, time,
actor, address, repository, digest and the rest of its fields. Lines are appended with a
single write to a file opened with O_APPEND, so concurrent threads and processes never
interleave them.
"""
from __future__ import annotations

import json
import logging
import os
import threading

from hinkskalle import hookimpl
from hinkskalle.config import as_bool, as_str, plugin_settings

log = logging.getLogger(__name__)

PREFIX = "hinkskalle_audit"
SETTINGS = {
    "path": (as_str, ""),       # the log file; empty: the plugin stays inactive
    "fsync": (as_bool, False),  # fsync after every line (survives a power cut, costs a disk flush)
}


class AuditLog:
    def __init__(self, path: str, fsync: bool = False):
        self.path = os.path.abspath(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def write(self, event) -> None:
        line = (json.dumps(event.to_dict(), sort_keys=True) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)


@hookimpl
def hinkskalle_configure(config):
    options = plugin_settings(config.get_settings(), PREFIX, SETTINGS)
    if options["path"]:
        config.registry[PREFIX] = AuditLog(options["path"], options["fsync"])
    else:
        log.warning("hinkskalle-audit is installed but %s.path is not set: nothing is logged", PREFIX)


@hookimpl
def hinkskalle_on_push(event, registry):
    """Every event hook is this one function (each kind of event is handled alike)."""
    audit = registry.get(PREFIX) if registry is not None else None
    if audit is not None:
        audit.write(event)


hinkskalle_on_pull = hinkskalle_on_tag = hinkskalle_on_delete = hinkskalle_on_login = hinkskalle_on_push
