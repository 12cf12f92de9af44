#!/usr/bin/env python3
"""library:// throughput: push and pull a 1 GiB SIF over the v2 multipart path.

Starts this server with pserve (waitress) on 127.0.0.1, a free port and a temporary data
folder (the same setup as benchmarks/run.py), then with a Python client (requests, streaming,
never the whole file in memory):

  push   POST /v1/images, POST _multipart, per 64 MiB part: PUT _multipart + PUT part URL,
         PUT _multipart_complete (includes the server's reassembly, sha256 and SIF parse)
  pull   GET /v1/imagefile (one stream), and the library CLIs' way: 303 to a signed URL
         fetched in 4 parallel 8 MiB ranges

and prints push/pull MiB/s and the server's peak RSS (VmHWM). Usage:
    .venv/bin/python benchmarks/library_bench.py [--size-mib 1024] [--keep]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import struct
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import REPO_ROOT, proc_status, start_ours, stop_all  # noqa: E402  (shared process helpers)

MiB = 1024 * 1024
CHUNK = MiB


def write_sif(path: Path, size: int) -> str:
    """A structurally valid SIF (header, descriptor table, one primary squashfs partition of
    random bytes) of `size` bytes in total; returns its sha256 hex. Written in 1 MiB chunks."""
    data_offset, slots = 32768, 48
    data_size = size - data_offset
    header = bytearray(128)
    header[0:32] = b"#!/usr/bin/env run-singularity\n".ljust(32, b"\0")
    header[32:42] = b"SIF_MAGIC\0"
    header[42:45] = b"01\0"
    header[45:48] = b"02\0"
    header[48:64] = uuid.uuid4().bytes
    now = int(time.time())
    header[64:128] = struct.pack("<qqqqqqqq", now, now, slots - 1, slots, 4096, slots * 585, data_offset, data_size)
    descriptor = bytearray(585)
    struct.pack_into("<iBIIIqqqqqqq", descriptor, 0, 0x4004, 1, 1, 0xF0000001, 0, data_offset, data_size,
                     data_size, now, now, 0, 0)
    descriptor[73:73 + 11] = b"bench.squash"[:11]
    struct.pack_into("<ii3s", descriptor, 201, 1, 2, b"02\0")
    head = bytes(header).ljust(4096, b"\0") + bytes(descriptor).ljust(slots * 585, b"\0")
    head = head.ljust(data_offset, b"\0")
    digest = hashlib.sha256(head)
    with open(path, "wb") as handle:
        handle.write(head)
        remaining = data_size
        while remaining:
            chunk = os.urandom(min(CHUNK, remaining))
            handle.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


class FileSlice:
    """`length` bytes of a file from `offset`, streamed by requests in 1 MiB chunks."""

    def __init__(self, path: Path, offset: int, length: int):
        self.path, self.offset, self.length = path, offset, length

    def __len__(self):
        return self.length

    def __iter__(self):
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            remaining = self.length
            while remaining:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    raise IOError("file ended early")
                remaining -= len(chunk)
                yield chunk


def check(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.url}: {response.status_code} {response.text[:300]}")
    return response


def push(base: str, session: requests.Session, path: Path, sha: str, size: int) -> float:
    """Push the file; returns the seconds `_multipart_complete` took (reassembly on the server)."""
    entity = check(session.get(f"{base}/v1/entities/bench")).json()["data"]
    collection = check(session.post(f"{base}/v1/collections", json={"name": "bench", "entity": entity["id"]}))
    container = check(session.post(f"{base}/v1/containers",
                                   json={"name": "big", "collection": collection.json()["data"]["id"]}))
    image = check(session.post(f"{base}/v1/images", json={"hash": f"sha256.{sha}",
                                                          "container": container.json()["data"]["id"]}))
    image_id = image.json()["data"]["id"]
    start = check(session.post(f"{base}/v2/imagefile/{image_id}/_multipart", json={"filesize": size})).json()["data"]
    part_size, parts = start["partSize"], []
    for number in range(1, start["totalParts"] + 1):
        offset = (number - 1) * part_size
        length = min(part_size, size - offset)
        url = check(session.put(f"{base}/v2/imagefile/{image_id}/_multipart",
                                json={"uploadID": start["uploadID"], "partNumber": number, "partSize": length,
                                      "sha256sum": ""})).json()["data"]["presignedURL"]
        # No Authorization to the upload URL, as the real clients do.
        etag = check(requests.put(url, data=FileSlice(path, offset, length), timeout=600)).headers["ETag"]
        parts.append({"partNumber": number, "token": etag})
    began = time.monotonic()
    check(session.put(f"{base}/v2/imagefile/{image_id}/_multipart_complete",
                      json={"uploadID": start["uploadID"], "completedParts": parts}, timeout=600))
    complete_seconds = time.monotonic() - began
    check(session.post(f"{base}/v2/tags/{container.json()['data']['id']}",
                       json={"Arch": "amd64", "Tag": "latest", "ImageID": image_id}))
    return complete_seconds


def pull_single(base: str, session: requests.Session) -> str:
    digest = hashlib.sha256()
    with check(session.get(f"{base}/v1/imagefile/bench/bench/big:latest?arch=amd64", stream=True,
                           timeout=600)) as response:
        for chunk in response.iter_content(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pull_ranged(base: str, session: requests.Session, size: int, target: Path, streams: int = 4,
                part: int = 8 * MiB) -> str:
    response = check(session.get(f"{base}/v1/imagefile/bench/bench/big:latest?arch=amd64",
                                 headers={"User-Agent": "apptainer/1.3 (benchmark)"}, allow_redirects=False))
    assert response.status_code == 303, response.status_code
    location = response.headers["Location"]
    with open(target, "wb") as handle:
        handle.truncate(size)

    def fetch(offset: int) -> None:
        end = min(offset + part, size) - 1
        with requests.get(location, headers={"Range": f"bytes={offset}-{end}"}, stream=True, timeout=600) as ranged:
            check(ranged)
            with open(target, "r+b") as handle:
                handle.seek(offset)
                for chunk in ranged.iter_content(CHUNK):
                    handle.write(chunk)

    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(fetch, range(0, size, part)))
    digest = hashlib.sha256()
    with open(target, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--ini", default=str(REPO_ROOT / "production.ini"))
    parser.add_argument("--server-name", default="main")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hinkskalle-library-bench-"))
    try:
        size = args.size_mib * MiB
        sif = work / "bench.sif"
        sha = write_sif(sif, size)
        server = start_ours(work, Path(args.ini), args.server_name, disable_plugins=[])
        base = f"http://127.0.0.1:{server.port}"
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {server.basic[1]}"
        began = time.monotonic()
        rss = {"idle": proc_status(server.proc.pid, "VmHWM") / MiB}
        complete_seconds = push(base, session, sif, sha, size)
        push_seconds = time.monotonic() - began
        rss["push"] = proc_status(server.proc.pid, "VmHWM") / MiB
        began = time.monotonic()
        assert pull_single(base, session) == sha, "single-stream pull returned other bytes"
        single_seconds = time.monotonic() - began
        rss["single pull"] = proc_status(server.proc.pid, "VmHWM") / MiB
        began = time.monotonic()
        assert pull_ranged(base, session, size, work / "ranged.sif") == sha, "ranged pull returned other bytes"
        ranged_seconds = time.monotonic() - began
        peak = proc_status(server.proc.pid, "VmHWM") / MiB
        print(f"library v2 multipart, {args.size_mib} MiB SIF, 127.0.0.1, pserve/waitress ({args.ini})")
        print(f"  push (multipart, 64 MiB parts, incl. complete): {size / MiB / push_seconds:8.1f} MiB/s"
              f"  ({push_seconds:.1f} s, of which _multipart_complete {complete_seconds:.1f} s)")
        print(f"  pull (single stream):                           {size / MiB / single_seconds:8.1f} MiB/s"
              f"  ({single_seconds:.1f} s)")
        print(f"  pull (303 + 4 parallel 8 MiB ranges, to disk):  {size / MiB / ranged_seconds:8.1f} MiB/s"
              f"  ({ranged_seconds:.1f} s)")
        print(f"  server peak RSS (VmHWM):                        {peak:8.1f} MiB"
              f"  (after {', '.join(f'{k} {v:.0f}' for k, v in rss.items())})")
    finally:
        stop_all()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
