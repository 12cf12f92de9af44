"""Clients push layers in parallel; the first pushes into a new repository all create its path."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import sha


def test_parallel_first_pushes_create_the_repository_once(live_server, accounts):
    # On SQLite write requests begin with BEGIN IMMEDIATE, so they wait for each other
    # instead of failing with "database is locked".
    token = accounts["hase"][1]
    blobs = [f"layer {n}".encode() for n in range(6)]

    def push(data: bytes) -> int:
        response = requests.post(f"{live_server.url}/v2/hase/new/repo/blobs/uploads/",
                                 params={"digest": sha(data)}, data=data, timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/octet-stream"})
        return response.status_code

    with ThreadPoolExecutor(len(blobs)) as pool:
        assert list(pool.map(push, blobs)) == [201] * len(blobs)
    for data in blobs:
        response = requests.get(f"{live_server.url}/v2/hase/new/repo/blobs/{sha(data)}", timeout=60,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.content == data
