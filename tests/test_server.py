"""Both servers of the ini files close TLS handshakes on their plain-HTTP port at once."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from waitress import create_server

from hinkskalle.server import use_plain_http_channel
from hinkskalle.testing import free_port


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _serve():
    server = create_server(_app, listen="127.0.0.1:0", threads=1)
    use_plain_http_channel(server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def assert_tls_closed_at_once_and_http_served(port: int) -> None:
    hello = b"\x16\x03\x01\x01\x2c\x01\x00\x01\x28\x03\x03" + bytes(range(32, 250))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as tls:
        started = time.monotonic()
        tls.sendall(hello)
        assert tls.recv(100) == b""      # closed, not left waiting for a request line
        assert time.monotonic() - started < 3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := plain.recv(4096):
            data += chunk
        assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"ok")


def test_tls_handshake_is_closed_at_once_and_http_still_works():
    server, thread = _serve()
    try:
        assert_tls_closed_at_once_and_http_served(server.socket.getsockname()[1])
    finally:
        server.close()
        thread.join(timeout=5)


GUNICORN_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def _wait_for(port: int, proc, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port}")


@contextmanager
def gunicorn_serving(folder, module_source: str, *options: str):
    """Our gunicorn worker on a free loopback port serving `app` of `module_source`; its port."""
    (folder / "someapp.py").write_text(module_source)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--worker-class", "hinkskalle.server.PlainHTTPThreadWorker",
         "--threads", "2", "--bind", f"127.0.0.1:{port}", "--chdir", str(folder), *options, "someapp:app"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_gunicorn_worker_closes_tls_handshakes_at_once_and_serves_http(tmp_path):
    with gunicorn_serving(tmp_path, GUNICORN_APP) as port:
        assert_tls_closed_at_once_and_http_served(port)


def _self_signed(folder):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(
        1).not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1)).sign(key, hashes.SHA256())
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_gunicorn_worker_with_its_own_tls_keeps_tls_handshakes(tmp_path):
    import ssl
    cert, key = _self_signed(tmp_path)
    with gunicorn_serving(tmp_path, GUNICORN_APP, "--certfile", cert, "--keyfile", key) as port:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
        assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"ok")


BODY_APP = '''
import hashlib, json

def app(environ, start_response):
    body = environ["wsgi.input"]
    digest, count = hashlib.sha256(), 0
    if environ["QUERY_STRING"] == "most":          # leaves 10 kB for the server to drain
        want = int(environ["CONTENT_LENGTH"]) - 10000
        while count < want:
            data = body.read(min(65536, want - count))
            digest.update(data)
            count += len(data)
    elif environ["QUERY_STRING"] == "lines":
        while line := body.readline(None):
            digest.update(line)
            count += len(line)
    elif environ["QUERY_STRING"] == "once":          # one read of the whole body, as WebOb does
        data = body.read(int(environ["CONTENT_LENGTH"]))
        digest.update(data)
        count = len(data)
    elif environ["QUERY_STRING"] == "all":
        data = body.read()
        digest.update(data)
        count = len(data)
    else:
        while data := body.read(1 << 20):
            digest.update(data)
            count += len(data)
    out = json.dumps({"sha": digest.hexdigest(), "n": count, "reader": type(body).__name__}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
    return [out]
'''


def test_gunicorn_worker_reads_large_bodies_from_the_socket_and_keeps_connections_sound(tmp_path):
    big = os.urandom(5 * 1024 * 1024 + 123).replace(b"\n", b"x")
    big = big[:4_000_000] + b"\n" + big[4_000_001:]            # one line break for readline
    small = b"a small body"
    with gunicorn_serving(tmp_path, BODY_APP) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)   # kept alive throughout

        def post(query: str, body: bytes) -> dict:
            connection.request("POST", "/?" + query, body=body)
            return json.loads(connection.getresponse().read())

        for query in ("", "lines", "once", "all", "most", ""):
            reply = post(query, big)
            sent = big[:len(big) - 10000] if query == "most" else big
            assert reply == {"sha": hashlib.sha256(sent).hexdigest(), "n": len(sent), "reader": "SocketBody"}
            # the next request on the connection starts where this body ended
            assert post("", small) == {"sha": hashlib.sha256(small).hexdigest(), "n": len(small), "reader": "Body"}


BLOB_APP = '''
import os
from pyramid.config import Configurator
from hinkskalle.views.common import blob_response

BLOB = os.path.join(os.path.dirname(__file__), "blob")

def view(request):
    return blob_response(request, BLOB, os.path.getsize(BLOB))

with Configurator() as config:
    config.add_route("blob", "/blob")
    config.add_view(view, route_name="blob")
    app = config.make_wsgi_app()
'''


@pytest.mark.parametrize("sendfile", ["sendfile", "no-sendfile"])
def test_gunicorn_worker_serves_blobs_and_their_ranges(tmp_path, sendfile):
    """Full and ranged GETs on one kept-alive connection, with sendfile(2) and with reads."""
    data = os.urandom(3 * 1024 * 1024 + 77)
    (tmp_path / "blob").write_bytes(data)
    options = () if sendfile == "sendfile" else ("--no-sendfile",)
    with gunicorn_serving(tmp_path, BLOB_APP, *options) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for start, stop in [(None, None), (0, 99), (1048570, 2097160), (len(data) - 5, None), (None, None)]:
            headers = {} if start is None else {"Range": f"bytes={start}-{'' if stop is None else stop}"}
            connection.request("GET", "/blob", headers=headers)
            response = connection.getresponse()
            body = response.read()
            if start is None:
                assert response.status == 200 and body == data
            else:
                end = len(data) - 1 if stop is None else stop
                assert response.status == 206 and body == data[start:end + 1]
                assert response.getheader("Content-Range") == f"bytes {start}-{end}/{len(data)}"
        connection.close()


ACCESS_LOGGING = '''
import sys
from gunicorn import glogging
from gunicorn.config import Config
from hinkskalle.server import AccessLogOnDemand
built = []
glogging.Logger.atoms = lambda self, *args: built.append(1) or {"s": "200"}
config = Config()
for option in sys.argv[3:]:
    config.set(*option.split("=", 1))
logger = {"ours": AccessLogOnDemand, "gunicorn": glogging.Logger}[sys.argv[1]](config)
for _ in range(int(sys.argv[2])):
    logger.access(None, None, {}, 0.0)
print("built", len(built))
'''

WITH_ACCESS_HANDLER = """
[logger_gunicorn_access]
level = INFO
handlers = console
propagate = 0
qualname = gunicorn.access
"""


def _access_lines(logger: str, *options: str) -> tuple[int, str]:
    """How many access lines `logger` built for 3 requests, and what it wrote to stdout."""
    result = subprocess.run([sys.executable, "-c", ACCESS_LOGGING, logger, "3", "access_log_format=%(s)s line",
                             *options], capture_output=True, text=True, timeout=60, check=True)
    built = int(result.stdout.strip().splitlines()[-1].split()[1])
    return built, result.stdout + result.stderr


def test_access_lines_are_built_only_where_they_are_written(tmp_path):
    """Under pserve, gunicorn takes the ini's [loggers] as its log configuration: that alone made
    it format an access line for every request, which no handler then took."""
    production = Path(__file__).resolve().parents[1] / "production.ini"
    assert _access_lines("gunicorn", f"logconfig={production}")[0] == 3      # gunicorn's own logger
    built, output = _access_lines("ours", f"logconfig={production}")
    assert built == 0 and "line" not in output
    # An access log asked for is written: `accesslog`, or a handler for gunicorn.access.
    built, output = _access_lines("ours", "accesslog=-")
    assert built == 3 and output.count("200 line") == 3
    ini = tmp_path / "logging.ini"
    ini.write_text(production.read_text().replace("keys = root, hinkskalle", "keys = root, hinkskalle, gunicorn_access")
                   + WITH_ACCESS_HANDLER)
    built, output = _access_lines("ours", f"logconfig={ini}")
    assert built == 3 and output.count("200 line") == 3
