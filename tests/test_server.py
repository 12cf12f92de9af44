"""The waitress entry of the ini files closes TLS handshakes on its plain-HTTP port at once."""
import socket
import threading

from waitress import create_server

from hinkskalle.server import use_plain_http_channel


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _serve():
    server = create_server(_app, listen="127.0.0.1:0", threads=1)
    use_plain_http_channel(server)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def test_tls_handshake_is_closed_at_once_and_http_still_works():
    server, thread = _serve()
    port = server.socket.getsockname()[1]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as tls:
            tls.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            assert tls.recv(100) == b""      # closed, not left waiting for a request line
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := plain.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"ok")
    finally:
        server.close()
        thread.join(timeout=5)
