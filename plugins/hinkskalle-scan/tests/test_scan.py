"""Scans run after the commit with a fake scanner; results show in the API; failures quarantine."""
from __future__ import annotations

import hashlib
import sys
import textwrap

import pytest

import hinkskalle_scan
from hinkskalle.testing import Driver, auth_header

WAIT = 30   # seconds: upper bound for the background scans
PUSH = "/_test/library/push/test-hase/coll/cont?tag={tag}"
# Exits 0 (clean), 1 (found something), 2 (scanner error) by the file's content; with a
# gate file given, it waits for the gate to exist first (a slow scanner).
FAKE_SCANNER = textwrap.dedent("""
    import os, sys, time
    path = sys.argv[1]
    if len(sys.argv) > 2:
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
            time.sleep(0.01)
    data = open(path, "rb").read()
    print("scanned", len(data), "bytes")
    if b"EICAR" in data:
        print("FOUND: test signature")
        sys.exit(1)
    if b"BROKEN" in data:
        print("cannot read the database", file=sys.stderr)
        sys.exit(2)
""")


@pytest.fixture
def gate(tmp_path):
    return tmp_path / "gate"


@pytest.fixture
def command(tmp_path, gate):
    script = tmp_path / "fake scanner.py"       # a space: arguments must stay arguments
    script.write_text(FAKE_SCANNER)
    gate.touch()
    return f"{sys.executable} '{script}' {{path}} '{gate}'"


@pytest.fixture
def settings(settings, command):
    settings["hinkskalle_scan.command"] = command
    settings["hinkskalle_scan.quarantine"] = "true"
    settings["hinkskalle_scan.workers"] = "2"
    return settings


@pytest.fixture
def extra_plugins(recorder):
    return (recorder, Driver(), hinkskalle_scan)


@pytest.fixture
def scanner(app):
    scanner = app.registry["hinkskalle_scan"]
    yield scanner
    scanner.close()


@pytest.fixture
def headers(factory, db, scanner):
    user = factory.user("test.hase")
    factory.container("test-hase/coll/cont", owner=user)
    token = factory.token(user)
    db.commit()
    return auth_header(token)


def push(testapp, headers, data, tag):
    return testapp.post(PUSH.format(tag=tag), data, headers=headers).json


def scan_of(testapp, headers, tag):
    return testapp.get(f"/v1/images/test-hase/coll/cont:{tag}", headers=headers).json["data"]["scan"]


def test_clean_image_passes_and_shows_in_the_api(testapp, headers, scanner, command):
    push(testapp, headers, b"harmless", "clean")
    assert scanner.wait(WAIT)
    scan = scan_of(testapp, headers, "clean")
    assert scan["status"] == "passed"
    assert scan["output"] == "scanned 8 bytes"
    assert scan["scanner"] == command
    assert scan["finished"].endswith("+00:00")


def test_failed_scan_quarantines_the_image(testapp, headers, scanner):
    push(testapp, headers, b"X5O!P%@AP EICAR test", "bad")
    push(testapp, headers, b"fine", "good")
    assert scanner.wait(WAIT)
    scan = scan_of(testapp, headers, "bad")
    assert scan["status"] == "failed" and "FOUND: test signature" in scan["output"]
    response = testapp.get("/_test/library/pull/test-hase/coll/cont?ref=bad", headers=headers, status=403)
    assert "quarantined" in response.json["message"]
    response = testapp.get("/v1/imagefile/test-hase/coll/cont:bad", headers=headers, status=403)
    assert "quarantined" in response.json["message"]
    testapp.get("/v1/imagefile/test-hase/coll/cont:good", headers=headers, status=(200, 303))


def test_scanner_errors_are_recorded_not_quarantined(testapp, headers, scanner):
    push(testapp, headers, b"BROKEN on purpose", "err")
    assert scanner.wait(WAIT)
    scan = scan_of(testapp, headers, "err")
    assert scan["status"] == "error"
    assert "cannot read the database" in scan["output"] and "(exit code 2)" in scan["output"]
    testapp.get("/_test/library/pull/test-hase/coll/cont?ref=err", headers=headers)


def test_scans_run_off_the_request_path(testapp, headers, scanner, gate):
    gate.unlink()                                  # the scanner now waits for the gate
    push(testapp, headers, b"slowly scanned", "slow")   # returns while the scan waits
    assert scan_of(testapp, headers, "slow") is None
    gate.touch()
    assert scanner.wait(WAIT)
    assert scan_of(testapp, headers, "slow")["status"] == "passed"


@pytest.mark.parametrize("command", ["/nonexistent/scanner {path}"])
def test_missing_scanner_is_an_error_result(testapp, headers, scanner):
    push(testapp, headers, b"whatever", "x")
    assert scanner.wait(WAIT)
    scan = scan_of(testapp, headers, "x")
    assert scan["status"] == "error" and "cannot run /nonexistent/scanner" in scan["output"]


def test_build_command_keeps_paths_single_arguments():
    digest = "sha256:" + hashlib.sha256(b"").hexdigest()
    args = hinkskalle_scan.build_command("trivy rootfs --quiet '{path}' --label={repository}",
                                         "/store/a b; rm -rf ~", digest, "e/c/x")
    assert args == ["trivy", "rootfs", "--quiet", "/store/a b; rm -rf ~", "--label=e/c/x"]


def test_command_without_path_is_a_settings_error(app):
    from hinkskalle.config import SettingsError
    with pytest.raises(SettingsError):
        hinkskalle_scan.Scanner(app.registry, {"command": "clamdscan"})


def test_oci_layers_are_scanned_and_quarantined_too(testapp, headers, scanner):
    layer = b"an OCI layer with EICAR inside"
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    testapp.post(f"/v2/test-hase/coll/cont/blobs/uploads/?digest={digest}", layer, status=201,
                 headers=dict(headers, **{"Content-Type": "application/octet-stream"}))
    assert scanner.wait(WAIT)
    response = testapp.get(f"/v2/test-hase/coll/cont/blobs/{digest}", headers=headers, status=403)
    assert response.json["errors"][0]["code"] == "DENIED"
    assert "quarantined" in response.json["errors"][0]["detail"]
