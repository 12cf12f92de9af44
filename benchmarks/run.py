#!/usr/bin/env python3
"""Benchmark Hinkskalle against CNCF distribution on this machine: `make bench`.

Starts, on 127.0.0.1 and free ports, this server (pserve on a temporary ini made from
production.ini, SQLite in WAL mode, a temporary data folder) and two distribution instances
(Debian `docker-registry`, filesystem storage in a temporary folder, one with htpasswd auth,
one without). Runs the same workloads against both and prints a table: figure, ours,
distribution, ratio ours/theirs, target. Everything is bounded and every process started
here is stopped at the end, also on errors.

Needs: apt-get install docker-registry apache2-utils wrk; optional .venv/bin/py-spy (--profile).
See benchmarks/README.md for the figures and how they are measured.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import configparser
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MiB = 1024 * 1024
GiB = 1024 * MiB
BLOCK = MiB                     # client read/write block size
HTTP_TIMEOUT = 300              # seconds for one request (a 1 GiB body at >=4 MiB/s)
USER, PASSWORD = "bench", "bench-" + secrets.token_hex(8)
THEIRS = "distribution"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([MANIFEST_TYPE, "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes ----------------------------------------------------------------------

_STARTED: list[subprocess.Popen] = []


def start(argv: list[str], logfile: Path, **kw) -> subprocess.Popen:
    """Start a process in its own session; stop_all() ends it (also at exit)."""
    handle = open(logfile, "ab")
    proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, **kw)
    handle.close()
    _STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stop_all() -> None:
    while _STARTED:
        stop(_STARTED.pop())


atexit.register(stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, logfile: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {logfile}:\n"
                               + logfile.read_text(errors="replace")[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not come up in {timeout}s; see {logfile}")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn serves from worker processes below pserve)."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            queue += [int(child) for child in children]
    return pids


def _tree_sum(pid: int, filename: str, key: str) -> int:
    """The number after `key:` in /proc/<pid>/<filename>, summed over the process tree."""
    total = 0
    for each in process_tree(pid):
        for line in Path(f"/proc/{each}/{filename}").read_text().splitlines():
            if line.startswith(key + ":"):
                total += int(line.split()[1])
    return total


def proc_status(pid: int, key: str) -> int:
    """A /proc/<pid>/status memory figure (VmHWM, VmRSS) in bytes, summed over the process tree."""
    return _tree_sum(pid, "status", key) * 1024


def proc_pss(pid: int) -> int:
    """Proportional set size of the process tree in bytes (shared pages counted once)."""
    return _tree_sum(pid, "smaps_rollup", "Pss") * 1024


class MemorySampler(threading.Thread):
    """Peak PSS of a process tree, sampled: VmHWM would count a gunicorn master's pages
    again in its worker (copy-on-write after fork)."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            try:
                self.peak = max(self.peak, proc_pss(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return


def peak_memory(registry) -> float:
    """MiB: exact VmHWM for one process, sampled peak PSS for a tree of processes."""
    if len(process_tree(registry.pid)) == 1:
        return proc_status(registry.pid, "VmHWM") / MiB
    return max(registry.sampler.peak, proc_pss(registry.pid)) / MiB


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process tree (all threads) so far."""
    total = 0.0
    for each in process_tree(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def proc_writes(pid: int) -> int:
    """Bytes the process tree caused to be written to storage (/proc/<pid>/io write_bytes)."""
    return _tree_sum(pid, "io", "write_bytes")


# -- HTTP client --------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


class Client:
    """One keep-alive connection to a registry, with its auth header."""

    def __init__(self, port: int, auth=None):
        self.port = port
        self.auth = auth or {}           # headers, or a function returning fresh ones
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT,
                                                   blocksize=BLOCK)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, method: str, url: str, body=None, headers: dict | None = None,
             auth: bool = True) -> http.client.HTTPResponse:
        """Send a request; returns the response unread (for streaming bodies)."""
        url = self.relative(url)
        all_headers = {}
        if auth:
            all_headers.update(self.auth() if callable(self.auth) else self.auth)
        all_headers.update(headers or {})
        if body is None and method in ("POST", "PUT", "PATCH"):
            all_headers.setdefault("Content-Length", "0")
        conn = self._connection()
        try:
            conn.request(method, url, body=body, headers=all_headers)
            return conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.close()
            raise

    def call(self, method: str, url: str, body=None, headers: dict | None = None,
             auth: bool = True) -> Reply:
        response = self.send(method, url, body, headers, auth)
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return Reply(response.status, response.headers, data)

    def expect(self, status: int | tuple, method: str, url: str, body=None,
               headers: dict | None = None) -> Reply:
        reply = self.call(method, url, body, headers)
        if reply.status not in (status if isinstance(status, tuple) else (status,)):
            raise RuntimeError(f"{method} {url}: {reply.status} {reply.body[:300]!r}")
        return reply

    def relative(self, url: str) -> str:
        """Location headers may be absolute (http://host/...) or relative."""
        parts = urllib.parse.urlsplit(url)
        return parts.path + ("?" + parts.query if parts.query else "")

    def drain(self, method: str, url: str, headers: dict | None = None) -> int:
        """GET a body without keeping it (and without hashing it); returns bytes read."""
        response = self.send(method, url, headers=headers)
        if response.status not in (200, 206):
            raise RuntimeError(f"{method} {url}: {response.status} {response.read()[:300]!r}")
        buffer = memoryview(bytearray(BLOCK))
        total = 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            total += n
        return total


def with_query(url: str, **params) -> str:
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)


# -- registries under test ----------------------------------------------------------

@dataclass
class Registry:
    label: str
    port: int
    proc: subprocess.Popen
    basic: tuple[str, str] | None = None         # credentials, None = no auth configured
    auth_note: str = ""
    token_cache: dict = field(default_factory=dict)
    column: str = THEIRS                         # the table column its figures go to
    sampler: MemorySampler | None = None
    ini: Path | None = None                      # ours: the ini it runs with

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __post_init__(self):
        self.sampler = MemorySampler(self.proc.pid)
        self.sampler.start()

    def auth_headers(self, repos: list[str]) -> dict[str, str]:
        """Authorization for pull+push on `repos`, the way a docker client gets it."""
        if self.basic is None:
            return {}
        key = tuple(sorted(repos))
        cached = self.token_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        basic = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
        probe = Client(self.port).call("GET", "/v2/")
        challenge = probe.headers.get("WWW-Authenticate", "")
        headers = {"Authorization": basic}
        if challenge.lower().startswith("bearer"):
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            query = [("service", params.get("service", ""))]
            query += [("scope", f"repository:{repo}:pull,push") for repo in repos]
            realm = params["realm"]
            reply = Client(self.port).call("GET", realm + ("&" if "?" in realm else "?")
                                           + urllib.parse.urlencode(query),
                                           headers={"Authorization": basic})
            if reply.status == 200:
                body = reply.json()
                headers = {"Authorization": "Bearer " + (body.get("token") or body["access_token"])}
                self.auth_note = "docker token flow (GET /v2/token with Basic)"
        if not self.auth_note:
            self.auth_note = "Basic " + ("user:API token" if self.column != THEIRS else "htpasswd (bcrypt)")
        # Registry tokens expire (minutes): fetch a new one well before.
        self.token_cache[key] = (time.monotonic() + 60, headers)
        return headers

    def client(self, repos: list[str]) -> Client:
        return Client(self.port, lambda: self.auth_headers(repos))


def start_distribution(work: Path, auth: bool) -> Registry:
    if not shutil.which("docker-registry"):
        sys.exit("docker-registry not found: apt-get install docker-registry apache2-utils wrk")
    name = "distribution" + ("" if auth else "-noauth")
    folder = work / name
    (folder / "storage").mkdir(parents=True)
    port = free_port()
    auth_block = ""
    if auth:
        if not shutil.which("htpasswd"):
            sys.exit("htpasswd not found: apt-get install apache2-utils")
        line = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True,
                              text=True, timeout=30).stdout.strip()
        (folder / "htpasswd").write_text(line + "\n")
        auth_block = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {folder / 'htpasswd'}\n"
    (folder / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {folder / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(16)}\n"
        + auth_block)
    logfile = folder / "server.log"
    proc = start(["docker-registry", "serve", str(folder / "config.yml")], logfile)
    wait_port(port, proc, logfile)
    return Registry(name, port, proc, (USER, PASSWORD) if auth else None)


def hinkskalle(ini: Path, *args: str) -> str:
    result = subprocess.run([str(VENV_BIN / "hinkskalle"), "-c", str(ini), *args], capture_output=True,
                            text=True, timeout=120, env=OURS_ENV)
    if result.returncode != 0:
        raise RuntimeError(f"hinkskalle {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def write_ours_ini(work: Path, base_ini: Path, server: str, port: int,
                   disable_plugins: list[str]) -> Path:
    """production.ini with a loopback address, temporary data and a fixed secret."""
    folder = work / f"ours-{server}"
    (folder / "data").mkdir(parents=True)
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.read(base_ini)
    app = parser["app:main"]
    app["sqlalchemy.url"] = f"sqlite:///{folder / 'data' / 'hinkskalle.db'}"
    app["hinkskalle.storage.path"] = str(folder / "data" / "blobs")
    app["hinkskalle.backend_url"] = f"http://127.0.0.1:{port}"
    app["hinkskalle.secret_key"] = secrets.token_hex(32)
    if disable_plugins:
        app["hinkskalle.plugins.disabled"] = " ".join(disable_plugins)
    section = f"server:{server}"
    if not parser.has_section(section):
        sys.exit(f"{base_ini} has no [{section}]")
    for key in ("listen", "bind"):        # waitress, gunicorn
        if parser.has_option(section, key):
            parser[section][key] = f"127.0.0.1:{port}"
            break
    else:
        parser[section]["host"], parser[section]["port"] = "127.0.0.1", str(port)
    ini = folder / "bench.ini"
    with open(ini, "w") as handle:
        parser.write(handle)
    return ini


# Environment of our server and CLI: --src puts a scratch copy of the code first on the path.
OURS_ENV = dict(os.environ)
# First-party plugins installed in a development venv; production installs choose their own.
OPTIONAL_PLUGINS = ["audit", "policy", "scan", "webhook"]


def server_available(ini: Path, server: str) -> bool:
    """False (with a message) for a server section whose server is not installed."""
    parser = configparser.RawConfigParser()
    parser.read(ini)
    use = parser.get(f"server:{server}", "use", fallback="")
    package = use.removeprefix("egg:").split("#")[0]
    if package and subprocess.run([str(VENV_BIN / "python"), "-c", f"import {package}"],
                                  capture_output=True, timeout=60).returncode != 0:
        log(f"skipping [server:{server}]: {package} is not installed (pip install {package})")
        return False
    return True


def start_ours(work: Path, base_ini: Path, server: str, disable_plugins: list[str]) -> Registry:
    port = free_port()
    ini = write_ours_ini(work, base_ini, server, port, disable_plugins)
    hinkskalle(ini, "init")
    hinkskalle(ini, "user", "add", USER, "--email", f"{USER}@localhost", "--password", PASSWORD)
    token = hinkskalle(ini, "token", "create", USER).strip().splitlines()[-1]
    logfile = ini.parent / "server.log"
    proc = start([str(VENV_BIN / "pserve"), str(ini), f"--server-name={server}"], logfile,
                 cwd=str(ini.parent), env=OURS_ENV)
    wait_port(port, proc, logfile)
    label = f"ours[{server}]"
    return Registry(label, port, proc, (USER, token), column=label, ini=ini)


# -- blobs on the client side -------------------------------------------------------

class BlobFile:
    """A generated file whose first 16 bytes are rewritten per push so each push is new."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size
        self.counter = 0
        with open(path, "wb") as handle:
            block = os.urandom(BLOCK)
            for i in range(size // BLOCK):
                # Vary blocks cheaply so no compression or dedup below us can shortcut.
                handle.write(i.to_bytes(8, "big") + block[8:])
            handle.write(os.urandom(size % BLOCK))

    def next_variant(self) -> str:
        """Make the file unique again; returns its digest (hashed here, before any timing)."""
        self.counter += 1
        with open(self.path, "r+b") as handle:
            handle.write(self.counter.to_bytes(8, "big") + os.urandom(8))
        hasher = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(4 * MiB):
                hasher.update(chunk)
        return "sha256:" + hasher.hexdigest()


def push_monolithic(client: Client, repo: str, blob: BlobFile, digest: str) -> None:
    start_reply = client.expect(202, "POST", f"/v2/{repo}/blobs/uploads/")
    location = start_reply.headers["Location"]
    with open(blob.path, "rb") as body:
        client.expect(201, "PUT", with_query(location, digest=digest), body=body,
                      headers={"Content-Length": str(blob.size),
                               "Content-Type": "application/octet-stream"})


def push_chunked(client: Client, repo: str, blob: BlobFile, digest: str, chunk: int) -> None:
    location = client.expect(202, "POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    with open(blob.path, "rb") as handle:
        offset = 0
        while offset < blob.size:
            n = min(chunk, blob.size - offset)
            part = _FileSlice(handle, offset, n)
            reply = client.expect(202, "PATCH", location, body=part, headers={
                "Content-Length": str(n), "Content-Range": f"{offset}-{offset + n - 1}",
                "Content-Type": "application/octet-stream"})
            location = reply.headers["Location"]
            offset += n
    client.expect(201, "PUT", with_query(location, digest=digest))


class _FileSlice:
    """A file-like view of `length` bytes of an open file (http.client reads it in blocks)."""

    def __init__(self, handle, offset: int, length: int):
        self.handle, self.remaining = handle, length
        handle.seek(offset)

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self.handle.read(size)
        self.remaining -= len(data)
        return data


def push_small_blob(client: Client, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = client.expect(202, "POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    client.expect(201, "PUT", with_query(location, digest=digest), body=data,
                  headers={"Content-Type": "application/octet-stream"})
    return digest


def push_image(client: Client, repo: str, tags: list[str], layer: tuple[str, int] | None = None) -> str:
    """A small OCI image (config + one layer) tagged with every name in `tags`."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = push_small_blob(client, repo, config)
    if layer is None:
        data = os.urandom(4096)
        layer = (push_small_blob(client, repo, data), len(data))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer[0], "size": layer[1]}],
    }).encode()
    for tag in tags:
        client.expect(201, "PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                      headers={"Content-Type": MANIFEST_TYPE})
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


# -- measuring ----------------------------------------------------------------------

@dataclass
class Figure:
    name: str
    unit: str
    target: str                          # human-readable target
    check: str = "ratio>="               # how a value is judged against `bound`
    bound: float | None = None
    values: dict[str, float] = field(default_factory=dict)   # column -> value

    def ratio(self, column: str) -> float | None:
        ours, theirs = self.values.get(column), self.values.get(THEIRS)
        if ours is None or not theirs:
            return None
        return ours / theirs

    def verdict(self, column: str) -> str:
        value = self.values.get(column)
        if self.bound is None or value is None:
            return ""
        if self.check.startswith("ratio"):
            value = self.ratio(column)
            if value is None:
                return ""
        ok = value >= self.bound if self.check.endswith(">=") else value <= self.bound
        return "ok" if ok else "MISS"


class Profiler:
    """py-spy on the server while a workload runs (optional: --profile)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.headlines: dict[str, str] = {}
        self.pyspy = VENV_BIN / "py-spy"

    @contextmanager
    def record(self, name: str, pid: int):
        if self.folder is None or not self.pyspy.exists():
            yield
            return
        raw = self.folder / f"{name}.txt"
        proc = start([str(self.pyspy), "record", "--pid", str(pid), "--rate", "200",
                      "--subprocesses", "--format", "raw", "--output", str(raw), "--nonblocking"],
                     self.folder / f"{name}.log")
        time.sleep(0.5)
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                stop(proc)
            if raw.exists():
                self.headlines[name] = summarize_profile(raw)

def summarize_profile(raw: Path, top: int = 5) -> str:
    """Where busy threads spend their samples: the hottest leaf frames, and the hottest
    frames of this project's own code (inclusive: everything they call)."""
    leaves: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    idle = re.compile(r"^(wait|select|poll|accept|sleep|acquire|_wait_for_tstate_lock|handle_write_event)\b")
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if idle.match(frames[-1].strip()) and "hinkskalle/" not in stack:
            continue      # a parked worker thread or the server loop waiting
        n = int(count)
        total += n
        leaf = _short_frame(frames[-1])
        leaves[leaf] = leaves.get(leaf, 0) + n
        own = [f for f in frames if "hinkskalle/" in f]
        if own:
            key = _short_frame(own[-1])
            ours[key] = ours.get(key, 0) + n
    if not total:
        return "no busy samples"

    def best(counts):
        return "; ".join(f"{100 * n / total:.0f}% {frame}"
                         for frame, n in sorted(counts.items(), key=lambda kv: -kv[1])[:top])
    return f"leaves: {best(leaves)}\n    our code (inclusive): {best(ours)}"


def _short_frame(frame: str) -> str:
    """`func (path/to/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`."""
    return re.sub(r"\(\S*?/(site-packages|src|lib/python3\.\d+)/", "(", frame.strip())


def new_file_speed(work: Path, size: int) -> float:
    """MiB/s of writing `size` bytes into a new file in the page cache (1 MiB writes, no
    fsync). On this VM a page the guest has not used lately costs the hypervisor a fault:
    1.3-3.4 s per GiB, against 0.2-0.3 s for pages just freed by a deleted file. A second
    call right after the first measures the latter."""
    block, path = bytes(BLOCK), work / "new-file-speed"
    began = time.perf_counter()
    with open(path, "wb", buffering=0) as handle:
        for _ in range(size // BLOCK):
            handle.write(block)
    seconds = time.perf_counter() - began
    path.unlink()
    return size / MiB / seconds


def cpu_times() -> tuple[int, int]:
    """(steal, total) clock ticks of all cores so far, from /proc/stat's `cpu` line. Steal is
    time the hypervisor gave this VM's cores to others: on this shared host it swings the
    absolute figures of a run by 2x, and the ratios of alternated runs much less."""
    with open("/proc/stat") as handle:
        ticks = [int(value) for value in handle.readline().split()[1:]]
    return ticks[7] if len(ticks) > 7 else 0, sum(ticks[:8])


def median_of(runs: int, measure) -> float:
    return statistics.median(measure() for _ in range(runs))


def timed(action) -> float:
    begin = time.perf_counter()
    action()
    return time.perf_counter() - begin


def wrk(port: int, path: str, headers: dict[str, str], seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, p99 latency in ms); refuses results with non-2xx answers."""
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    argv = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "--timeout", "5s"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"wrk {path}: {bad.group(1)} non-2xx answers\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return rps, float(p99.group(1)) * scale


# -- the workloads ------------------------------------------------------------------

class Bench:
    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.size = args.size * MiB
        self.figures: dict[str, Figure] = {}
        self.profiler = Profiler(work / "profiles" if args.profile else None)
        if args.profile:
            (work / "profiles").mkdir()
        self.notes: list[str] = []

    def figure(self, key: str, *args, **kw) -> Figure:
        if key not in self.figures:
            self.figures[key] = Figure(*args, **kw)
        return self.figures[key]

    def record(self, key: str, registry: Registry, value: float) -> None:
        self.figures[key].values[registry.column] = value

    def guarded(self, what: str, registry: Registry, action) -> None:
        """Run one workload; a failure (e.g. an endpoint not there yet) is noted, not fatal."""
        log(f"{registry.label}: {what}")
        try:
            action()
        except Exception as err:  # noqa: BLE001 - report and go on with the next figure
            message = f"{registry.label}: {what} failed: {str(err).splitlines()[0][:200]}"
            log(message)
            self.notes.append(message)

    # blob push / pull
    def alternate(self, what: str, registries: list[Registry], once) -> dict[str, list]:
        """Run `once(registry)` `runs` times, alternating the registries so that load from
        other processes on the machine hits both alike; failures are noted per registry."""
        results: dict[str, list] = {r.label: [] for r in registries}
        failed: set[str] = set()
        for n in range(self.args.runs):
            for registry in registries:
                if registry.label in failed:
                    continue
                log(f"{registry.label}: {what} ({n + 1}/{self.args.runs})")
                try:
                    results[registry.label].append(once(registry))
                except Exception as err:  # noqa: BLE001 - report and go on with the other figures
                    failed.add(registry.label)
                    message = f"{registry.label}: {what} failed: {str(err).splitlines()[0][:200]}"
                    log(message)
                    self.notes.append(message)
        return results

    def record_medians(self, key: str, registries: list[Registry], results: dict, index=None) -> None:
        for registry in registries:
            values = results[registry.label]
            if values:
                self.record(key, registry, statistics.median(
                    v if index is None else v[index] for v in values))

    def blob_figures(self, registries: list[Registry], blob: BlobFile) -> None:
        repo = f"{USER}/perf/blob"
        size_label = f"{self.args.size} MiB"
        self.figure("push_mono", f"OCI blob push monolithic ({size_label})", "MiB/s", ">= 1.5x",
                    "ratio>=", 1.5)
        self.figure("push_chunked", f"OCI blob push chunked ({self.args.chunk} MiB PATCH)", "MiB/s",
                    ">= 1.5x", "ratio>=", 1.5)
        self.figure("push_cpu", "  server CPU seconds per GiB pushed (monolithic)", "s", "")
        # 2.01: the database's own writes during a push come on top of the blob's bytes.
        self.figure("disk_writes", "disk writes per pushed byte (monolithic)", "x", "<= 2",
                    "ours<=", 2.01)
        self.figure("disk_writes_chunked", "disk writes per pushed byte (chunked)", "x", "<= 2",
                    "ours<=", 2.01)
        self.figure("pull", f"OCI blob pull ({size_label})", "MiB/s", ">= 1.0x", "ratio>=", 1.0)
        self.figure("pull_first", "  the first of these pulls, right after the push", "MiB/s", "")
        self.figure("pull_range", f"OCI blob pull in {self.args.chunk} MiB Ranges", "MiB/s",
                    ">= 1.0x", "ratio>=", 1.0)
        self.figure("pull_cpu", "  server CPU seconds per GiB pulled (full)", "s", "")
        clients = {r.label: r.client([repo]) for r in registries}
        pushed: dict[str, str] = {}

        def measure_push(registry: Registry, push) -> tuple[float, float, float]:
            digest = blob.next_variant()
            os.sync()       # start with clean page cache writeback: earlier runs do not count
            before_io, before_cpu = proc_writes(registry.pid), proc_cpu(registry.pid)
            with self.profiler.record(f"{registry.label}-{push.__name__}", registry.pid):
                seconds = timed(lambda: push(clients[registry.label], repo, blob, digest))
            written = proc_writes(registry.pid) - before_io
            cpu = proc_cpu(registry.pid) - before_cpu
            pushed[registry.label] = digest
            return blob.size / MiB / seconds, written / blob.size, cpu * GiB / blob.size

        def chunked(client, repo_, blob_, digest):
            push_chunked(client, repo_, blob_, digest, self.args.chunk * MiB)

        results = self.alternate("blob push monolithic", registries,
                                 lambda r: measure_push(r, push_monolithic))
        self.record_medians("push_mono", registries, results, 0)
        self.record_medians("disk_writes", registries, results, 1)
        self.record_medians("push_cpu", registries, results, 2)
        results = self.alternate("blob push chunked", registries, lambda r: measure_push(r, chunked))
        self.record_medians("push_chunked", registries, results, 0)
        self.record_medians("disk_writes_chunked", registries, results, 1)
        for registry in registries:
            self.memory_mark(registry, "after pushes")

        def pull_full(registry: Registry) -> tuple[float, float]:
            url = f"/v2/{repo}/blobs/{pushed[registry.label]}"
            before_cpu = proc_cpu(registry.pid)
            with self.profiler.record(f"{registry.label}-pull", registry.pid):
                seconds = timed(lambda: self._check_size(
                    clients[registry.label].drain("GET", url), blob.size))
            cpu = proc_cpu(registry.pid) - before_cpu
            return blob.size / MiB / seconds, cpu * GiB / blob.size

        def pull_ranges(registry: Registry) -> float:
            url = f"/v2/{repo}/blobs/{pushed[registry.label]}"
            step = self.args.chunk * MiB
            client = clients[registry.label]

            def all_ranges():
                total = 0
                for begin in range(0, blob.size, step):
                    end = min(begin + step, blob.size) - 1
                    total += client.drain("GET", url, {"Range": f"bytes={begin}-{end}"})
                self._check_size(total, blob.size)

            with self.profiler.record(f"{registry.label}-pull-range", registry.pid):
                seconds = timed(all_ranges)
            return blob.size / MiB / seconds

        ready = [r for r in registries if r.label in pushed]
        results = self.alternate("blob pull", ready, pull_full)
        self.record_medians("pull", ready, results, 0)
        self.record_medians("pull_cpu", ready, results, 1)
        for registry in ready:     # our blob is on disk, not in the page cache (direct_writes)
            if results[registry.label]:
                self.record("pull_first", registry, results[registry.label][0][0])
        self.record_medians("pull_range", ready, self.alternate("blob pull with Range", ready, pull_ranges))
        for registry in ready:
            self.memory_mark(registry, "after pulls")

    @staticmethod
    def _check_size(got: int, want: int) -> None:
        if got != want:
            raise RuntimeError(f"received {got} bytes, expected {want}")

    # manifests and tags
    def manifest_figures(self, registry: Registry, anonymous: bool) -> None:
        repo = f"{USER}/perf/manifest"
        key = "manifest_noauth" if anonymous else "manifest"
        label = "without auth" if anonymous else "with auth"
        self.figure(key, f"manifest GET by tag, 16 connections, {label}", "req/s",
                    ">= 0.5x" if anonymous else ">= 1.0x", "ratio>=", 0.5 if anonymous else 1.0)
        self.figure(key + "_p99", f"  p99 latency {label}", "ms", "< 50 ms", "ours<=", 50.0)

        def run():
            push_image(registry.client([repo]), repo, ["latest"])
            headers = {"Accept": ACCEPT}
            if not anonymous:
                headers.update(registry.auth_headers([repo]))
            path = f"/v2/{repo}/manifests/latest"
            probe = Client(registry.port).call("GET", path, headers=headers, auth=False)
            if anonymous and probe.status == 401:
                # OCI pulls need a login here even for public repositories: measure the
                # cheapest way a client has (the docker token) against distribution without auth.
                self.notes.append(f"{registry.label}: manifest GET 'without auth' row measured with "
                                  "the docker token (anonymous OCI pulls are refused)")
                headers.update(registry.auth_headers([repo]))
                probe = Client(registry.port).call("GET", path, headers=headers, auth=False)
            if probe.status != 200:
                raise RuntimeError(f"GET {path}: {probe.status} {probe.body[:200]!r}")
            with self.profiler.record(f"{registry.label}-{key}", registry.pid):
                rps, p99 = wrk(registry.port, path, headers, self.args.wrk_seconds, 16)
            self.record(key, registry, rps)
            self.record(key + "_p99", registry, p99)

        self.guarded(f"manifest GET {label}", registry, run)

    def tag_list_figure(self, registry: Registry) -> None:
        repo = f"{USER}/perf/tags"
        self.figure("tags", f"tag list of {self.args.tags} tags", "ms", "<= 2x time", "ratio<=", 2.0)

        def run():
            client = registry.client([repo])
            log(f"{registry.label}: tagging {self.args.tags} times")
            push_image(client, repo, [f"t{i:05d}" for i in range(self.args.tags)])
            url = f"/v2/{repo}/tags/list?n={self.args.tags}"
            reply = client.expect(200, "GET", url)
            count = len(reply.json()["tags"])
            if count != self.args.tags:
                raise RuntimeError(f"tag list returned {count} tags, expected {self.args.tags}")
            with self.profiler.record(f"{registry.label}-tags", registry.pid):
                ms = 1000 * median_of(max(20, self.args.runs), lambda: timed(
                    lambda: client.expect(200, "GET", url)))
            self.record("tags", registry, ms)

        self.guarded("tag list", registry, run)

    # memory
    def memory_mark(self, registry: Registry, when: str) -> None:
        if registry.proc.poll() is None:
            log(f"{registry.label}: peak memory {peak_memory(registry):.0f} MiB {when}")

    def memory_figure(self, registries: list[Registry]) -> None:
        self.figure("rss", "server peak memory (VmHWM; summed PSS for several processes)", "MiB",
                    "<= 100 MiB", "ours<=", 100.0)
        for registry in registries:
            if registry.proc.poll() is None:
                self.record("rss", registry, peak_memory(registry))

    # report
    def table(self, columns: list[str]) -> str:
        """One row per figure: each of our servers with its ratio to distribution, then
        distribution, the target and whether each of ours meets it."""
        header = ["figure", "unit"]
        for column in columns:
            header += [column, "ratio"]
        rows = [tuple(header + [THEIRS, "target", "verdict"])]
        fmt = lambda v: "-" if v is None else (f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}")
        for fig in self.figures.values():
            row = [fig.name, fig.unit]
            for column in columns:
                ratio = fig.ratio(column)
                row += [fmt(fig.values.get(column)), "-" if ratio is None else f"{ratio:.2f}"]
            verdicts = [fig.verdict(c) for c in columns]
            row += [fmt(fig.values.get(THEIRS)), fig.target, "/".join(verdicts) if any(verdicts) else ""]
            rows.append(tuple(row))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        left = {0, 1, len(widths) - 2, len(widths) - 1}
        lines = []
        for n, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
                                   for i, cell in enumerate(row)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="blob size in MiB (default 1024)")
    parser.add_argument("--chunk", type=int, default=64, help="PATCH chunk and Range size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is shown")
    parser.add_argument("--tags", type=int, default=1000, help="tags for the tag list figure")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--catalog-sizes", default="10,1000,100000",
                        help="numbers of repositories for the catalog figures")
    parser.add_argument("--only", default="blobs,manifests,tags,catalog,library",
                        help="comma-separated workload groups")
    parser.add_argument("--ini", default=str(REPO_ROOT / "production.ini"),
                        help="base ini for our server (default production.ini)")
    parser.add_argument("--servers", default="main,waitress",
                        help="server sections of the ini to compare (default main,waitress)")
    parser.add_argument("--with-plugins", action="store_true",
                        help=f"keep the installed first-party plugins ({', '.join(OPTIONAL_PLUGINS)}) loaded")
    parser.add_argument("--src", default=None,
                        help="put this source folder first on our server's path (try a scratch copy)")
    parser.add_argument("--no-distribution", action="store_true", help="measure only this server")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during each workload")
    parser.add_argument("--workdir", default=None, help="parent of the temporary folder (default $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    groups = set(args.only.split(","))

    if args.src:
        OURS_ENV["PYTHONPATH"] = os.path.abspath(args.src)
    work = Path(tempfile.mkdtemp(prefix="hinkskalle-bench-", dir=args.workdir))
    log(f"working in {work}")
    bench = Bench(args, work)
    ours: list[Registry] = []
    theirs = theirs_noauth = None
    try:
        for server in args.servers.split(","):
            if not server_available(Path(args.ini), server):
                continue
            ours.append(start_ours(work, Path(args.ini), server,
                                   [] if args.with_plugins else OPTIONAL_PLUGINS))
            log(f"{ours[-1].label}: pserve pid {ours[-1].pid} on 127.0.0.1:{ours[-1].port}")
        if not args.no_distribution:
            theirs = start_distribution(work, auth=True)
            theirs_noauth = start_distribution(work, auth=False)
            log(f"distribution: pid {theirs.pid} on :{theirs.port} (htpasswd), "
                f"pid {theirs_noauth.pid} on :{theirs_noauth.port} (no auth)")
        registries = ours + ([theirs] if theirs else [])
        steal_before = cpu_times()

        bench.notes.append(f"machine: writing {args.size} MiB into a new file (what every push does, and "
                           f"the Apptainer client's pull) {new_file_speed(work, args.size * MiB):.0f} MiB/s; "
                           f"into the pages of a file just deleted {new_file_speed(work, args.size * MiB):.0f} MiB/s")
        if "blobs" in groups:
            log(f"generating a {args.size} MiB blob")
            blob = BlobFile(work / "blob.bin", args.size * MiB)
            bench.blob_figures(registries, blob)
            blob.path.unlink()
        if "manifests" in groups:
            for registry in registries:
                bench.manifest_figures(registry, anonymous=False)
            for registry in ours + ([theirs_noauth] if theirs_noauth else []):
                bench.manifest_figures(registry, anonymous=True)
        if "tags" in groups:
            for registry in registries:
                bench.tag_list_figure(registry)
        if "catalog" in groups:
            for registry in ours:
                catalog_figures(bench, registry)
        if "library" in groups:
            for registry in ours:
                library_figures(bench, registry)
        bench.memory_figure(registries)
        steal, total = (after - before for after, before in zip(cpu_times(), steal_before))
        bench.notes.append(f"machine: the hypervisor took {100 * steal / max(total, 1):.1f}% of this "
                           "VM's CPU time during the run (steal)")
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    print()
    print(bench.table([r.column for r in ours]))
    print()
    plugins = "all installed plugins" if args.with_plugins else f"without {', '.join(OPTIONAL_PLUGINS)}"
    print(f"ours: {args.ini} {', '.join(f'[server:{r.label[5:-1]}]' for r in ours)}, {plugins}")
    for registry in registries:
        print(f"auth {registry.label}: {registry.auth_note or 'n/a'}")
    for name, headline in bench.profiler.headlines.items():
        print(f"profile {name}: {headline}")
    for note in bench.notes:
        print("note:", note)
    return 0


LIBCLIENT = "hinkskalle-libclient"   # Apptainer's library client in our e2e driver (tests/e2e/libclient)


def library_figures(bench: Bench, ours: Registry) -> None:
    """Library push (v2 multipart) and pull of a SIF: with Apptainer's own library client
    (the e2e driver, when built: `.ci/setup.d/20-libclient.sh`), which is what the targets
    are about, and with the Python client of benchmarks/library_bench.py (64 MiB parts,
    hashing while it pulls)."""
    import requests  # noqa: PLC0415 - the library client's HTTP library
    import library_bench  # noqa: PLC0415 - beside this script
    size_label = f"{bench.args.size} MiB SIF"
    driver = shutil.which(LIBCLIENT)
    if driver:
        bench.figure("library_push_go", f"library push, Apptainer client ({size_label})", "MiB/s",
                     ">= 300 MiB/s", "ours>=", 300.0)
        bench.figure("library_prepass_go", "  of which the client's md5 + sha256 pre-pass alone", "MiB/s", "")
        bench.figure("library_pull_go", f"library pull, Apptainer client ({size_label})", "MiB/s",
                     ">= 800 MiB/s", "ours>=", 800.0)
        bench.figure("library_pull_go_ranges", "  the same in 4 parallel ranges (CLI's way)", "MiB/s",
                     ">= 800 MiB/s", "ours>=", 800.0)
    else:
        bench.notes.append(f"{LIBCLIENT} not built (.ci/setup.d/20-libclient.sh): library figures "
                           "only with the Python client")
    bench.figure("library_push", f"library push, Python client, 64 MiB parts ({size_label})", "MiB/s",
                 ">= 300 MiB/s", "ours>=", 300.0)
    bench.figure("library_pull", f"library pull, Python client hashing ({size_label})", "MiB/s",
                 ">= 800 MiB/s", "ours>=", 800.0)
    size = bench.args.size * MiB
    sif = bench.work / "bench.sif"
    pulled = bench.work / "pulled.sif"
    base = f"http://127.0.0.1:{ours.port}"

    def with_driver(*args: str) -> float:
        """MiB/s of one driver call, from the time the library client's own call took."""
        result = subprocess.run([driver, *args, "-url", base, "-token", ours.basic[1]],
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"{LIBCLIENT} {args[0]} failed: {result.stderr[-500:]}")
        seconds = float(re.findall(r"^elapsed ([0-9.]+)$", result.stderr, re.M)[-1])
        if args[0] in ("pull", "checksums") and json.loads(result.stdout)["sha256"] != sha:
            raise RuntimeError(f"library {args[0]} saw other bytes")
        return size / MiB / seconds

    def run():
        nonlocal sha
        sha = library_bench.write_sif(sif, size)
        if driver:
            pushes = []
            for run_number in range(bench.args.runs):
                if run_number:       # other bytes each time: the server must not find them stored
                    sha = library_bench.write_sif(sif, size)
                os.sync()
                with bench.profiler.record(f"{ours.label}-library-push-go", ours.pid):
                    pushes.append(with_driver(
                        "push", "-file", str(sif), "-ref", f"{USER}/go/big{run_number}", "-tags", "latest"))
            bench.record("library_push_go", ours, statistics.median(pushes))
            # The client hashes the whole file before it sends anything: time that alone,
            # so the table shows how much of the push the server cannot shorten.
            bench.record("library_prepass_go", ours, median_of(bench.args.runs, lambda: with_driver(
                "checksums", "-file", str(sif))))
            last = f"{USER}/go/big{bench.args.runs - 1}"
            bench.record("library_pull_go", ours, median_of(bench.args.runs, lambda: with_driver(
                "pull", "-ref", last, "-file", str(pulled))))
            bench.record("library_pull_go_ranges", ours, median_of(bench.args.runs, lambda: with_driver(
                "pull", "-ref", last, "-file", str(pulled), "-concurrent",
                "-part-size", str(8 * MiB))))
            pulled.unlink(missing_ok=True)
            sha = library_bench.write_sif(sif, size)
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {ours.basic[1]}"
            os.sync()
            with bench.profiler.record(f"{ours.label}-library-push", ours.pid):
                seconds = timed(lambda: library_bench.push(base, session, sif, sha, size))
            bench.record("library_push", ours, size / MiB / seconds)

            def pull() -> float:
                with bench.profiler.record(f"{ours.label}-library-pull", ours.pid):
                    began = time.perf_counter()
                    if library_bench.pull_single(base, session) != sha:
                        raise RuntimeError("library pull returned other bytes")
                    return size / MiB / (time.perf_counter() - began)
            bench.record("library_pull", ours, median_of(bench.args.runs, pull))

    sha = ""
    try:
        bench.guarded("library push/pull", ours, run)
    finally:
        sif.unlink(missing_ok=True)
        pulled.unlink(missing_ok=True)


def catalog_figures(bench: Bench, ours: Registry) -> None:
    """Catalog and tag list page times as the number of repositories grows; the rows are
    bulk-inserted into our database directly (the server reads them like any other)."""
    from sqlalchemy import create_engine, insert, select  # noqa: PLC0415 - our server's stack
    from hinkskalle.models import Collection, Container, Entity  # noqa: PLC0415
    sizes = [int(n) for n in bench.args.catalog_sizes.split(",")]
    for size in sizes:
        bench.figure(f"catalog_{size}", f"catalog page (n=100) at {size:,} repositories", "ms", "")
        bench.figure(f"tags_{size}", f"  tag list (n=100) at {size:,} repositories", "ms", "")
    bench.figure("catalog_flat", f"catalog page time {sizes[-1]:,} / {sizes[0]:,} repositories", "x",
                 "flat (<= 2)", "ours<=", 2.0)
    bench.figure("tags_flat", f"tag list time {sizes[-1]:,} / {sizes[0]:,} repositories", "x",
                 "flat (<= 2)", "ours<=", 2.0)
    url = [line.split("=", 1)[1].strip() for line in ours.ini.read_text().splitlines()
           if line.startswith("sqlalchemy.url")][0]
    engine = create_engine(url)
    tag_repo = f"{USER}/perf/tags"

    def run():
        client = ours.client([tag_repo])
        push_image(client, tag_repo, [f"t{i:03d}" for i in range(100)])
        with engine.begin() as conn:
            entity_id = conn.scalar(select(Entity.id).where(Entity.name == USER))
            owner_id = conn.scalar(select(Entity.owner_id).where(Entity.id == entity_id))
            collection_id = conn.execute(insert(Collection).values(
                name="catalog", entity_id=entity_id, owner_id=owner_id)).inserted_primary_key[0]
        have = 0
        for size in sizes:
            with engine.begin() as conn:
                rows = [{"name": f"r{i:07d}", "collection_id": collection_id, "owner_id": owner_id}
                        for i in range(have, size)]
                for start in range(0, len(rows), 10000):
                    conn.execute(insert(Container), rows[start:start + 10000])
            have = size
            middle = f"{USER}/catalog/r{size // 2:07d}"

            def page() -> float:
                began = time.perf_counter()
                client.expect(200, "GET", with_query("/v2/_catalog", n=100, last=middle))
                return 1000 * (time.perf_counter() - began)

            def tags() -> float:
                began = time.perf_counter()
                client.expect(200, "GET", f"/v2/{tag_repo}/tags/list?n=100")
                return 1000 * (time.perf_counter() - began)
            with bench.profiler.record(f"{ours.label}-catalog-{size}", ours.pid):
                bench.record(f"catalog_{size}", ours, median_of(3, page))
            bench.record(f"tags_{size}", ours, median_of(5, tags))
        first, last = sizes[0], sizes[-1]
        values = bench.figures
        bench.record("catalog_flat", ours, values[f"catalog_{last}"].values[ours.column]
                     / values[f"catalog_{first}"].values[ours.column])
        bench.record("tags_flat", ours, values[f"tags_{last}"].values[ours.column]
                     / values[f"tags_{first}"].values[ours.column])

    bench.guarded("catalog and tag list with many repositories", ours, run)
    engine.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
