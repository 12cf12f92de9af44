"""The live_server fixture: a real HTTP server on the test app, stopped after the test."""
import socket

import requests


def test_live_server_answers_and_sees_committed_data(live_server, factory, db):
    token = factory.token(factory.user())
    db.commit()
    assert live_server.url.startswith("http://127.0.0.1:")
    assert requests.get(f"{live_server.url}/version", timeout=10).json()["data"]["apiVersion"]
    response = requests.get(f"{live_server.url}/v2/", headers={"Authorization": f"Bearer {token}"},
                            timeout=10)
    assert response.status_code == 200


def test_live_server_stops(app):
    from hinkskalle.testing import live_server_for
    with live_server_for(app) as server:
        port = server.port
        assert requests.get(f"{server.url}/version", timeout=10).ok
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
