"""The caller's network address, for the login throttle and events.

WebOb's `client_addr` believes any `X-Forwarded-For` header, so a client could pick the
address its failed logins are counted against. Here the header counts only when the
connection comes from a trusted reverse proxy (`hinkskalle.trusted_proxies`): the client is
then the nearest address in the header that is not one of those proxies.
"""
from __future__ import annotations


def client_address(request) -> str | None:
    trusted = set(request.registry.settings["hinkskalle.trusted_proxies"])
    remote = request.environ.get("REMOTE_ADDR")
    if remote not in trusted:
        return remote
    hops = [hop.strip() for hop in request.environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted:
            return hop
    return remote


def includeme(config):
    config.add_request_method(client_address, "client_address", reify=True)
