"""hinkskalle-webhook: POST registry events as signed JSON to webhook receivers.

Events that pass the filters (event kinds, repository glob patterns) are put on a bounded
queue per receiver URL right after the commit; a daemon thread per receiver POSTs them
with retries and exponential backoff. A slow or dead receiver therefore never slows a
request, and it does not hold up the other receivers either. Events that cannot be
delivered (queue full, retries exhausted) are logged at ERROR level.

Delivery uses urllib from the standard library: one POST with a timeout needs no extra
dependency in the server's environment.
"""
from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from hinkskalle import hookimpl
from hinkskalle.config import SettingsError, as_int, as_list, as_str, plugin_settings

log = logging.getLogger(__name__)

PREFIX = "hinkskalle_webhook"
KINDS = ("push", "pull", "tag", "delete", "login")
SETTINGS = {
    "urls": (as_list, []),                          # receivers; empty: the plugin stays inactive
    "secret": (as_str, ""),                         # HMAC-SHA256 key for X-Hinkskalle-Signature
    "events": (as_list, ["push", "tag", "delete"]),  # event kinds to send
    "repositories": (as_list, ["*"]),               # fnmatch patterns of "entity/collection/container"
    "timeout": (float, 10.0),                       # seconds per POST
    "retries": (as_int, 5),                         # further attempts after a failed one
    "backoff": (float, 1.0),                        # seconds before the first retry, doubled each time
    "queue_size": (as_int, 1000),                   # events waiting per receiver before new ones are dropped
}
_STOP = object()


def signature(secret: str, body: bytes) -> str:
    """The X-Hinkskalle-Signature value: ``sha256=<hex HMAC of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Receiver:
    """One webhook URL: its queue and the thread that delivers from it."""

    def __init__(self, url: str, options: dict):
        self.url = url
        # For logs: receiver URLs often carry their secret (user:password, a token in the path).
        parts = urlsplit(url)
        self.label = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        self.options = options
        self.queue: queue.Queue = queue.Queue(maxsize=options["queue_size"])
        self._closing = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"webhook {self.label}", daemon=True)
        self.thread.start()

    def submit(self, kind: str, body: bytes) -> None:
        try:
            self.queue.put_nowait((kind, body))
        except queue.Full:
            log.error("webhook %s: queue full, %s event not delivered: %s", self.label, kind, body.decode())

    def close(self, timeout: float = 10) -> None:
        """Stop the thread (pending retries are given up and logged as undelivered)."""
        self._closing.set()
        try:
            self.queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self.thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            self._deliver(*item)

    def _deliver(self, kind: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "hinkskalle-webhook/1.0",
                   "X-Hinkskalle-Event": kind, "X-Hinkskalle-Delivery": str(uuid.uuid4())}
        if self.options["secret"]:
            headers["X-Hinkskalle-Signature"] = signature(self.options["secret"], body)
        delay = self.options["backoff"]
        for attempt in range(self.options["retries"] + 1):
            if attempt and self._closing.wait(delay):
                break
            if attempt:
                delay *= 2
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.options["timeout"]) as response:
                    response.read()
                return
            except (urllib.error.URLError, OSError, ValueError) as err:
                log.warning("webhook %s: attempt %d failed: %s", self.label, attempt + 1, err)
        log.error("webhook %s: %s event not delivered: %s", self.label, kind, body.decode())


class Webhooks:
    """The receivers and filters of one application."""

    def __init__(self, options: dict):
        unknown = set(options["events"]) - set(KINDS)
        if unknown:
            raise SettingsError({f"{PREFIX}.events": f"unknown event kinds {sorted(unknown)}; known: {KINDS}"})
        self.options = options
        self.receivers = [Receiver(url, options) for url in options["urls"]]

    def wants(self, event) -> bool:
        return event.kind in self.options["events"] and any(
            fnmatch.fnmatchcase(event.repository, pattern) for pattern in self.options["repositories"])

    def send(self, event) -> None:
        if not self.wants(event):
            return
        body = json.dumps(event.to_dict(), sort_keys=True).encode()
        for receiver in self.receivers:
            receiver.submit(event.kind, body)

    def close(self, timeout: float = 10) -> None:
        for receiver in self.receivers:
            receiver.close(timeout)


@hookimpl
def hinkskalle_configure(config):
    options = plugin_settings(config.get_settings(), PREFIX, SETTINGS)
    if options["urls"]:
        config.registry[PREFIX] = Webhooks(options)
    else:
        log.warning("hinkskalle-webhook is installed but %s.urls is not set: nothing is sent", PREFIX)


@hookimpl
def hinkskalle_on_push(event, registry):
    """Every event hook is this one function (each kind of event is handled alike)."""
    webhooks = registry.get(PREFIX) if registry is not None else None
    if webhooks is not None:
        webhooks.send(event)


hinkskalle_on_pull = hinkskalle_on_tag = hinkskalle_on_delete = hinkskalle_on_login = hinkskalle_on_push
