"""`pserve` on the shipped ini files, as an operator runs it; server options valid for the installed servers."""
import configparser
import hashlib
import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config
from waitress.adjustments import Adjustments

from hinkskalle.server import AccessLogOnDemand, PlainHTTPThreadWorker
from hinkskalle.testing import free_port

REPO = Path(__file__).resolve().parents[1]
PSERVE = Path(sys.executable).parent / "pserve"


def server_options(ini: Path, section: str = "server:main") -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    return {key: value for key, value in parser[section].items() if key != "use"}


@pytest.mark.parametrize("name, section", [("development.ini", "server:main"),
                                           ("production.ini", "server:waitress")])
def test_waitress_options_are_valid(name, section):
    options = server_options(REPO / name, section)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # deprecated options count as wrong
        adjustments = Adjustments(**options)
    assert adjustments.max_request_body_size >= 100 * 1024**3   # a 100 GiB SIF fits


def test_gunicorn_options_are_valid():
    config = Config()
    for key, value in server_options(REPO / "production.ini").items():
        config.set(key, value)                  # unknown keys and bad values raise
    assert config.worker_class_str == "hinkskalle.server.PlainHTTPThreadWorker"
    assert config.worker_class is PlainHTTPThreadWorker
    assert config.logger_class is AccessLogOnDemand
    assert config.workers >= 2 and config.threads >= 8


ARENAS = """
import ctypes, os, sys, threading
import hinkskalle
if sys.argv[1] == "limited":
    hinkskalle.limit_malloc_arenas()
count = len(os.sched_getaffinity(0)) + 2
barrier = threading.Barrier(count)
def work():
    data = bytearray(300_000)      # allocated by this thread's malloc arena
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()   # one "Arena N:" block per arena, on stderr
"""


def test_server_processes_keep_one_malloc_arena_per_core():
    def arenas(mode: str) -> int:
        env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
        result = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True,
                                timeout=60, check=True, env=env)
        return sum(line.startswith("Arena ") for line in result.stderr.splitlines())
    # glibc gives each of these threads an arena of its own; limited, they share one per core.
    assert arenas("limited") <= len(os.sched_getaffinity(0)) < arenas("default")


def test_malloc_arenas_are_left_alone_without_glibc_or_when_the_operator_chose(monkeypatch):
    import hinkskalle
    monkeypatch.setattr(hinkskalle.ctypes, "CDLL", lambda name: object())   # musl, macOS: no mallopt
    hinkskalle.limit_malloc_arenas()
    calls = []
    monkeypatch.setattr(hinkskalle.ctypes, "CDLL", lambda name: SimpleNamespace(
        mallopt=lambda *args: calls.append(args)))
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    hinkskalle.limit_malloc_arenas()
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    hinkskalle.limit_malloc_arenas()
    assert calls == [(hinkskalle.M_ARENA_MAX, len(os.sched_getaffinity(0)))]


def test_production_listens_everywhere_and_logs_warnings():
    assert server_options(REPO / "production.ini")["bind"].startswith("0.0.0.0:")
    assert server_options(REPO / "production.ini", "server:waitress")["listen"].startswith("0.0.0.0:")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "production.ini")
    assert parser["logger_root"]["level"] == "WARN"


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pserve exited with {process.returncode}: {process.stderr.read()}")
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@contextmanager
def pserve(ini: Path, port: int):
    """`pserve INI` in the ini's folder until the block ends; yields it once /version answers."""
    process = subprocess.Popen([str(PSERVE), str(ini)], cwd=ini.parent, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        response = wait_for(f"http://127.0.0.1:{port}/version", process)
        assert response.status_code == 200 and response.json()["data"]["apiVersion"]
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_pserve_development_ini(make_ini, tmp_path):
    port = free_port()
    ini = make_ini(server={"listen": f"127.0.0.1:{port}"})
    assert not (tmp_path / "data").exists()
    with pserve(ini, port):
        # first start made the data folder: the database with its schema, and the blob store
        assert (tmp_path / "data" / "hinkskalle.db").is_file()
        assert (tmp_path / "data" / "blobs").is_dir()
        login = requests.post(f"http://127.0.0.1:{port}/v1/get-token", json={"username": "nobody",
                                                                             "password": "x"}, timeout=10)
        assert login.status_code == 401 and login.json()["message"]
        assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=10).status_code == 401


def test_pserve_production_ini_serves_blobs_with_gunicorn_workers(make_ini, tmp_path):
    port = free_port()
    ini = make_ini("production.ini", server={"bind": f"127.0.0.1:{port}"},
                   **{"hinkskalle.secret_key": "a-test-secret-of-enough-length-for-hs256!"})
    with pserve(ini, port) as process:
        assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=10).status_code == 401
        # the master and its two workers (the second may still be starting when the first answers)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        deadline = time.monotonic() + 30
        while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(pid) for pid in children.read_text().split()]
        assert len(workers) == 2
        connections_reach_every_worker(port, workers)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as tls:
            tls.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            assert tls.recv(100) == b""       # TLS is refused at once, not after a timeout
        blob_push_and_pull_through(f"http://127.0.0.1:{port}", ini)


def _tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of this host's TCP sockets on local `port` in `state` (0A listening, 01 established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(int(fields[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connections_reach_every_worker(port: int, workers: list[int]) -> None:
    """Each worker listens on a socket of its own (reuse_port), so the kernel spreads new
    connections over them. On one shared socket, the first worker to wake often took every
    connection of a client's pool (measured: 17 of 17, and half the manifest throughput)."""
    deadline = time.monotonic() + 30     # a worker just forked may not listen yet
    while True:
        listening = _tcp_sockets(port, "0A")
        per_worker = [_socket_inodes(pid) & listening for pid in workers]
        if all(per_worker) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(len(inodes) == 1 for inodes in per_worker) and per_worker[0] != per_worker[1]
    clients = []
    try:
        for _ in range(32):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"GET /version HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert client.recv(12).startswith(b"HTTP/1.1 200")   # accepted and answered
            clients.append(client)
        established = _tcp_sockets(port, "01")
        served = [len(_socket_inodes(pid) & established) for pid in workers]
        # A hash spreads 32 connections; all on one worker has a chance of 2 in 2**32.
        assert sum(served) >= 32 and min(served) > 0, served     # (+ earlier kept-alive ones)
    finally:
        for client in clients:
            client.close()


def blob_push_and_pull_through(base: str, ini: Path) -> None:
    """Bodies above 1 MiB (read from the socket by our gunicorn worker), chunked and whole,
    and downloads whole and in ranges, on kept-alive connections."""
    run = [str(PSERVE.parent / "hinkskalle"), "-c", str(ini)]
    subprocess.run(run + ["user", "add", "hase", "--email", "hase@example.org", "--password", "geheim"],
                   check=True, capture_output=True, timeout=120)
    token = subprocess.run(run + ["token", "create", "hase"], check=True, capture_output=True, text=True,
                           timeout=120).stdout.strip().splitlines()[-1]
    blob = os.urandom(3 * 1024 * 1024 + 7)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with requests.Session() as session:
        session.auth = ("hase", token)
        whole = session.post(f"{base}/v2/hase/serve/whole/blobs/uploads/", params={"digest": digest},
                             data=blob, timeout=60)
        assert whole.status_code == 201, whole.text
        start = session.post(f"{base}/v2/hase/serve/chunked/blobs/uploads/", timeout=60)
        location, half = start.headers["Location"], len(blob) // 2
        for begin, end in ((0, half), (half, len(blob))):
            patch = session.patch(base + location if location.startswith("/") else location,
                                  data=blob[begin:end], timeout=60,
                                  headers={"Content-Range": f"{begin}-{end - 1}",
                                           "Content-Type": "application/octet-stream"})
            assert patch.status_code == 202, patch.text
            location = patch.headers["Location"]
        done = session.put(base + location if location.startswith("/") else location,
                           params={"digest": digest}, timeout=60)
        assert done.status_code == 201, done.text
        for name in ("whole", "chunked"):
            pulled = session.get(f"{base}/v2/hase/serve/{name}/blobs/{digest}", timeout=60)
            assert pulled.status_code == 200 and pulled.content == blob
            ranged = session.get(f"{base}/v2/hase/serve/{name}/blobs/{digest}", timeout=60,
                                 headers={"Range": "bytes=1048576-2097151"})
            assert ranged.status_code == 206 and ranged.content == blob[1048576:2097152]
