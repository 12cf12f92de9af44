"""The waitress server entry for paste ini files (`use = egg:hinkskalle#waitress`).

Plain waitress, with one change for registries served over plain HTTP: container clients
(podman, skopeo, buildah) try TLS first even for insecure registries, and waitress would
wait for a request line until the client's 10 s handshake timeout. Such connections are
closed at once, so the client falls back to HTTP immediately.
"""
from __future__ import annotations

import logging

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

TLS_HANDSHAKE = b"\x16"   # first byte of a TLS ClientHello record


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
