"""hinkskalle-scan: run an external scanner on every pushed image or layer, off the request path.

After a push commits, the image is queued; worker threads run the configured command on
the blob's file in the store (an argument list built with shlex, never a shell) and record
``{"status", "output", "scanner", "finished"}`` in ``Image.scan`` with their own database
session. With quarantine on, ``hinkskalle_check_pull`` refuses images whose scan failed.
"""
from __future__ import annotations

import fnmatch
import logging
import queue
import shlex
import subprocess
import threading
from datetime import datetime, timezone

from hinkskalle import hookimpl
from hinkskalle.config import SettingsError, as_bool, as_int, as_list, as_str, plugin_settings
from hinkskalle.models import Image

log = logging.getLogger(__name__)

PREFIX = "hinkskalle_scan"
SETTINGS = {
    "command": (as_str, ""),                      # e.g. "clamdscan --fdpass {path}"; empty: inactive
    "failed_exit_codes": (as_list, ["1"]),        # exit codes meaning "found something"; other non-zero: error
    "timeout": (as_int, 600),                     # seconds per scan
    "media_types": (as_list, ["*"]),              # fnmatch patterns of media types to scan
    "quarantine": (as_bool, False),               # refuse pulls of images whose scan failed
    "workers": (as_int, 1),                       # scans running at the same time
    "queue_size": (as_int, 10000),                # pushes waiting to be scanned before new ones are skipped
    "output_limit": (as_int, 4000),               # characters of scanner output kept (the end of it)
}
PLACEHOLDERS = ("{path}", "{digest}", "{repository}")
_STOP = object()


def build_command(template: str, path: str, digest: str, repository: str) -> list[str]:
    """The scanner's argument list: the template split like a shell would, placeholders filled.

    Placeholders are replaced inside single arguments after splitting, so a file name can
    never turn into extra arguments or shell syntax.
    """
    values = {"{path}": path, "{digest}": digest, "{repository}": repository}
    args = []
    for arg in shlex.split(template):
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        args.append(arg)
    return args


class Scanner:
    """The queue and worker threads of one application."""

    def __init__(self, registry, options: dict):
        if "{path}" not in options["command"]:
            raise SettingsError({f"{PREFIX}.command": "must contain {path}, the file to scan"})
        self.options = options
        self.failed_codes = {int(code) for code in options["failed_exit_codes"]}
        self.store = registry["blobstore"]
        self.session_factory = registry["dbsession_factory"]
        self.queue: queue.Queue = queue.Queue(maxsize=options["queue_size"])
        self.idle = threading.Condition()
        self.busy = 0
        self.threads = [threading.Thread(target=self._run, name=f"scan worker {n}", daemon=True)
                        for n in range(options["workers"])]
        for thread in self.threads:
            thread.start()

    def wants(self, event) -> bool:
        return event.target != "manifest" and event.image_id is not None and any(
            fnmatch.fnmatchcase(event.media_type, pattern) for pattern in self.options["media_types"])

    def submit(self, event) -> None:
        with self.idle:
            self.busy += 1
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self._done()
            log.error("scan queue full: %s %s in %s is not scanned", event.target, event.digest, event.repository)

    def wait(self, timeout: float) -> bool:
        """Wait until every submitted scan is recorded (for tests and orderly shutdowns)."""
        with self.idle:
            return self.idle.wait_for(lambda: self.busy == 0, timeout)

    def close(self, timeout: float = 10) -> None:
        """Stop the workers after the scans queued so far (waiting at most `timeout` seconds)."""
        for _ in self.threads:
            try:
                self.queue.put(_STOP, timeout=timeout)
            except queue.Full:
                break
        for thread in self.threads:
            thread.join(timeout)

    def _done(self) -> None:
        with self.idle:
            self.busy -= 1
            self.idle.notify_all()

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is _STOP:
                return
            try:
                self.record(event, self.scan(event))
            except Exception:  # noqa: BLE001 - one broken scan must not stop the worker
                log.exception("scan of %s in %s failed", event.digest, event.repository)
            finally:
                self._done()

    def scan(self, event) -> dict:
        args = build_command(self.options["command"], self.store.path(event.digest), event.digest,
                             event.repository)
        try:
            done = subprocess.run(args, capture_output=True, text=True, errors="replace",
                                  timeout=self.options["timeout"], stdin=subprocess.DEVNULL)
            output = done.stdout + done.stderr
            if done.returncode == 0:
                status = "passed"
            elif done.returncode in self.failed_codes:
                status = "failed"
            else:
                status = "error"
                output += f"\n(exit code {done.returncode})"
        except subprocess.TimeoutExpired:
            status, output = "error", f"timed out after {self.options['timeout']} seconds"
        except OSError as err:
            status, output = "error", f"cannot run {args[0]}: {err}"
        return {"status": status, "output": output[-self.options["output_limit"]:].strip(),
                "scanner": self.options["command"],
                "finished": datetime.now(timezone.utc).isoformat()}

    def record(self, event, result: dict) -> None:
        with self.session_factory() as session, session.begin():
            image = session.get(Image, event.image_id)
            if image is None or image.digest != event.digest:
                return   # deleted (or replaced) while it was being scanned
            image.scan = result
        level = logging.WARNING if result["status"] != "passed" else logging.INFO
        log.log(level, "scan of %s in %s: %s", event.digest, event.repository, result["status"])


@hookimpl
def hinkskalle_configure(config):
    options = plugin_settings(config.get_settings(), PREFIX, SETTINGS)
    if options["command"]:
        config.registry[PREFIX] = Scanner(config.registry, options)
    else:
        log.warning("hinkskalle-scan is installed but %s.command is not set: nothing is scanned", PREFIX)


@hookimpl
def hinkskalle_on_push(event, registry):
    scanner = registry.get(PREFIX) if registry is not None else None
    if scanner is not None and scanner.wants(event):
        scanner.submit(event)


@hookimpl
def hinkskalle_check_pull(request, event):
    scanner = request.registry.get(PREFIX)
    if scanner is None or not scanner.options["quarantine"] or event.image_id is None:
        return None
    scan = request.dbsession.get(Image, event.image_id).scan
    if scan and scan.get("status") == "failed":
        return f"{event.repository} {event.digest} is quarantined: its scan found a problem"
    return None
