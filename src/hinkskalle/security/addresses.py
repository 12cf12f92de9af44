"""The caller's network address, for the login throttle and events.

WebOb's `client_addr` believes any `X-Forwarded-For` header, so a client could pick the
address its failed logins are counted against. Here the header counts only when the
connection comes from a trusted reverse proxy (`hinkskalle.trusted_proxies`: addresses or
networks; a connection over a unix socket is the local proxy's too): the client is then the
nearest address in the header that is not one of those proxies.
"""
from __future__ import annotations

import ipaddress


def _address(text: str):
    """An ip_address (IPv4-mapped IPv6 as IPv4), or None for anything else."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def trusted_networks(settings: dict) -> list:
    return [ipaddress.ip_network(entry, strict=False) for entry in settings["hinkskalle.trusted_proxies"]]


def client_address(request) -> str | None:
    networks = request.registry["trusted_proxies"]

    def trusted(address) -> bool:
        return any(address.version == network.version and address in network for network in networks)

    remote = request.environ.get("REMOTE_ADDR") or ""
    peer = _address(remote)
    if peer is not None and not trusted(peer):
        return str(peer)
    for hop in reversed(request.environ.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is not None and not trusted(address):
            return str(address)
    return str(peer) if peer is not None else remote or None


def includeme(config):
    config.registry["trusted_proxies"] = trusted_networks(config.get_settings())
    config.add_request_method(client_address, "client_address", reify=True)
