"""`pserve` on the shipped ini files, as an operator runs it; waitress options valid for this waitress."""
import configparser
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import requests
from waitress.adjustments import Adjustments

REPO = Path(__file__).resolve().parents[1]
PSERVE = Path(sys.executable).parent / "pserve"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_options(ini: Path) -> dict:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    return {key: value for key, value in parser["server:main"].items() if key != "use"}


@pytest.mark.parametrize("name", ["development.ini", "production.ini"])
def test_waitress_options_are_valid(name):
    options = server_options(REPO / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # deprecated options count as wrong
        adjustments = Adjustments(**options)
    assert adjustments.max_request_body_size >= 100 * 1024**3   # a 100 GiB SIF fits


def test_production_listens_everywhere_and_logs_warnings():
    options = server_options(REPO / "production.ini")
    assert options["listen"].startswith("0.0.0.0:")
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


def test_pserve_development_ini(make_ini, tmp_path):
    port = free_port()
    ini = make_ini(server={"listen": f"127.0.0.1:{port}"})
    assert not (tmp_path / "data").exists()
    process = subprocess.Popen([str(PSERVE), str(ini)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        response = wait_for(f"http://127.0.0.1:{port}/version", process)
        assert response.status_code == 200 and response.json()["data"]["apiVersion"]
        # first start made the data folder: the database with its schema, and the blob store
        assert (tmp_path / "data" / "hinkskalle.db").is_file()
        assert (tmp_path / "data" / "blobs").is_dir()
        login = requests.post(f"http://127.0.0.1:{port}/v1/get-token", json={"username": "nobody",
                                                                             "password": "x"}, timeout=10)
        assert login.status_code == 401 and login.json()["message"]
        assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=10).status_code == 401
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
