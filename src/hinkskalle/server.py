"""The servers of the paste ini files, each closing TLS handshakes on plain HTTP at once.

Container clients (podman, skopeo, buildah) try TLS first even for registries configured as
insecure, and an HTTP server would wait for a request line until the client's 10 s handshake
timeout. Both servers here close such connections at once, so the client falls back to HTTP
immediately:

- `use = egg:hinkskalle#waitress`: waitress (one process; development.ini, small sites);
- `use = egg:gunicorn#main` with `worker_class = hinkskalle.server.PlainHTTPThreadWorker`:
  gunicorn's threaded worker (production.ini: several processes, request bodies streamed to
  the app, blobs sent with sendfile(2)).
"""
from __future__ import annotations

import logging
import socket

from gunicorn.workers.gthread import DEFAULT_WORKER_DATA_TIMEOUT, ThreadWorker
from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

TLS_HANDSHAKE = b"\x16"   # first byte of a TLS ClientHello record


# -- waitress ----------------------------------------------------------------------------

class PlainHTTPChannel(HTTPChannel):
    def received(self, data):
        if data[:1] == TLS_HANDSHAKE and not self.requests and self.request is None:
            self.close()
            return False
        return super().received(data)


def use_plain_http_channel(server) -> None:
    """Make a server from waitress.create_server (single or multi-socket) use PlainHTTPChannel."""
    servers = [server] if isinstance(server, BaseWSGIServer) else [
        s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
    for each in servers:
        each.channel_class = PlainHTTPChannel


def serve_paste(app, global_conf, **kw):
    logging.basicConfig()
    server = create_server(app, **kw)
    use_plain_http_channel(server)
    server.print_listen("Serving on http://{}:{}")
    server.run()
    return 0


# -- gunicorn ----------------------------------------------------------------------------

class PlainHTTPThreadWorker(ThreadWorker):
    """gunicorn's `gthread` worker, closing a new connection whose first byte starts TLS."""

    def handle(self, conn):
        # wait_for_data marks the connection ready, so the worker does not wait a second time.
        if not conn.initialized and conn.wait_for_data(DEFAULT_WORKER_DATA_TIMEOUT):
            try:
                first = conn.sock.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            if first == TLS_HANDSHAKE:
                return False       # the worker closes connections it is not to keep
        return super().handle(conn)
