"""The servers of the paste ini files, each closing TLS handshakes on plain HTTP at once.

Container clients (podman, skopeo, buildah) try TLS first even for registries configured as
insecure, and an HTTP server would wait for a request line until the client's 10 s handshake
timeout. Both servers here close such connections at once, so the client falls back to HTTP
immediately:

- `use = egg:hinkskalle#waitress`: waitress (one process; development.ini, small sites);
- `use = egg:gunicorn#main` with `worker_class = hinkskalle.server.PlainHTTPThreadWorker`:
  gunicorn's threaded worker (production.ini: several processes, request bodies streamed to
  the app), with `logger_class = hinkskalle.server.AccessLogOnDemand`.
"""
from __future__ import annotations

import io
import logging
import socket

from gunicorn.glogging import Logger
from gunicorn.http.body import LengthReader
from gunicorn.workers.gthread import _DEFER, DEFAULT_WORKER_DATA_TIMEOUT, ThreadWorker
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
    """gunicorn's `gthread` worker, closing a new connection whose first byte starts TLS,
    and reading large request bodies straight from the socket (`SocketBody`)."""

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = stream_large_bodies(self.wsgi)

    def handle(self, conn):
        # Only on plain HTTP: with gunicorn's own TLS (certfile) a ClientHello is welcome.
        # wait_for_data marks the connection ready, so gthread's handle does not wait again.
        if not self.cfg.is_ssl and not conn.initialized:
            if not conn.wait_for_data(DEFAULT_WORKER_DATA_TIMEOUT):
                return _DEFER      # nothing sent yet: back to the poller, as gthread itself does
            try:
                first = conn.sock.recv(1, socket.MSG_PEEK)
            except OSError:
                first = b""
            if first == TLS_HANDSHAKE:
                return False       # the worker closes connections it is not to keep
        return super().handle(conn)


class AccessLogOnDemand(Logger):
    """gunicorn's logger, building a request's access log line only where it is written.

    Under pserve gunicorn takes the ini file's [loggers] as its log configuration and from then
    on formats an access line for every request, even when no handler takes it: 7% of a
    worker's GIL-held samples for manifest GETs. Lines are written as before with `accesslog`
    or with a handler for the `gunicorn.access` logger in the ini file.
    """

    def setup(self, cfg):
        super().setup(cfg)
        self.writes_access = self.access_log.isEnabledFor(logging.INFO) and self.access_log.hasHandlers()

    def access(self, resp, req, environ, request_time):
        if self.writes_access:
            super().access(resp, req, environ, request_time)


# Bodies from this size on are read by SocketBody; smaller ones keep gunicorn's reader.
SOCKET_BODY_MIN = 1024 * 1024


class SocketBody:
    """`wsgi.input` for a large body of known length, received straight from the socket.

    gunicorn's reader passes each received chunk through several buffers: about a third of
    the server's samples while a 1 GiB blob is pushed. This hands out what gunicorn had read
    ahead, then one recv() per read. What the app leaves unread goes back to gunicorn's
    reader (`give_back`), which drains it before the connection serves another request.
    """

    def __init__(self, body, sock):
        self.body, self.sock = body, sock
        reader = body.reader
        received = reader.unreader.buf.getvalue()
        self.ahead = body.buf.getvalue() + received[:reader.length]
        self.left = reader.length - min(len(received), reader.length)   # still in the socket
        body.buf = io.BytesIO()
        reader.unreader.buf = io.BytesIO(received[reader.length:])
        reader.unreader.buf.seek(0, io.SEEK_END)
        reader.length = 0

    def _recv(self, size: int) -> bytes:
        try:
            data = self.sock.recv(min(size, self.left))
        except OSError:
            self.body.failed = True        # where the next request starts is unknown now
            raise
        if not data:
            self.body.failed = True
        self.left -= len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        """`size` bytes (all that is left without one); fewer only at the end of the body."""
        if size is None or size < 0:
            size = len(self.ahead) + self.left
        parts = []
        if self.ahead:
            parts.append(self.ahead[:size])
            self.ahead = self.ahead[size:]
        wanted = min(size - len(parts[0]) if parts else size, self.left)
        while wanted > 0:
            part = self._recv(wanted)
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        if size is None:
            size = -1
        while b"\n" not in self.ahead and self.left and (size < 0 or len(self.ahead) < size):
            part = self._recv(64 * 1024)
            if not part:
                break
            self.ahead += part
        end = self.ahead.find(b"\n") + 1 or len(self.ahead)
        if size >= 0:
            end = min(end, size)
        line, self.ahead = self.ahead[:end], self.ahead[end:]
        return line

    def __iter__(self):
        return iter(self.readline, b"")

    def give_back(self) -> None:
        reader = self.body.reader
        following = reader.unreader.buf.getvalue()
        reader.unreader.buf = io.BytesIO(self.ahead + following)
        reader.unreader.buf.seek(0, io.SEEK_END)
        reader.length = len(self.ahead) + self.left
        self.ahead, self.left = b"", 0


def stream_large_bodies(app):
    """WSGI middleware for gunicorn: large bodies of known length through SocketBody."""
    def wrapped(environ, start_response):
        body = environ.get("wsgi.input")
        if (int(environ.get("CONTENT_LENGTH") or 0) < SOCKET_BODY_MIN
                or not isinstance(getattr(body, "reader", None), LengthReader)
                or "gunicorn.socket" not in environ):
            return app(environ, start_response)
        socket_body = environ["wsgi.input"] = SocketBody(body, environ["gunicorn.socket"])
        try:
            return app(environ, start_response)
        finally:
            socket_body.give_back()
    return wrapped
