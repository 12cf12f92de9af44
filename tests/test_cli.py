"""The `hinkskalle` command in the exact forms operators' scripts use, run as a real process."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import webtest
from pyramid.paster import get_app
from sqlalchemy import create_engine, inspect

from hinkskalle.models import Base

HINKSKALLE = Path(sys.executable).parent / "hinkskalle"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{64}$")


@pytest.fixture(scope="module")
def ini(tmp_path_factory, ini_writer):
    """One migrated registry for the module (each process start costs a second or two)."""
    folder = tmp_path_factory.mktemp("cli")
    ini = ini_writer(folder, **{"hinkskalle.secret_key": "cli-test"})
    hinkskalle(ini, "db", "upgrade")
    return ini


def hinkskalle(ini, *args, ok=True):
    result = subprocess.run([str(HINKSKALLE), "-c", str(ini), *args], capture_output=True, text=True,
                            timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def app_for(ini):
    return webtest.TestApp(get_app(str(ini)), extra_environ={"HTTP_HOST": "localhost"})


def test_db_upgrade_builds_every_table(ini):
    tables = set(inspect(create_engine(f"sqlite:///{ini.parent}/data/hinkskalle.db")).get_table_names())
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables
    assert "up to date" in hinkskalle(ini, "db", "upgrade").stderr   # again: nothing to do


def test_user_add_and_token_create(ini):
    hinkskalle(ini, "user", "add", "Test.Hase", "--email", "hase@example.com", "--password", "geheim", "--admin")
    hinkskalle(ini, "user", "add", "igel", "--email", "igel@example.com")
    result = hinkskalle(ini, "token", "create", "test.hase")
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and TOKEN_RE.match(token)

    app = app_for(ini)
    app.get("/v2/", headers={"Authorization": f"Bearer {token}"}, status=200)
    app.get("/v2/", headers={"Authorization": "Basic " + _basic("test.hase", "geheim")}, status=200)
    # An account made without a password cannot log in with one.
    app.get("/v2/", headers={"Authorization": "Basic " + _basic("igel", "x")}, status=401)


def test_user_add_refuses_duplicates_and_bad_names(ini):
    hinkskalle(ini, "user", "add", "maus", "--email", "maus@example.com")
    again = hinkskalle(ini, "user", "add", "maus", "--email", "other@example.com", ok=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = hinkskalle(ini, "user", "add", "ma us", "--email", "x@example.com", ok=False)
    assert bad.returncode == 1 and "invalid" in bad.stderr


def test_token_create_for_unknown_user(ini):
    result = hinkskalle(ini, "token", "create", "nobody", ok=False)
    assert result.returncode == 1 and result.stdout == "" and "nobody" in result.stderr


def test_init_makes_a_first_admin_once(make_ini):
    ini = make_ini()
    first = hinkskalle(ini, "init")
    fields = dict(re.findall(r"^\s+(\w+):\s+(\S+)$", first.stdout, re.M))
    assert fields["username"] == "admin"
    app = app_for(ini)
    app.get("/v2/", headers={"Authorization": f"Bearer {fields['token']}"}, status=200)
    app.get("/v2/", headers={"Authorization": "Basic " + _basic("admin", fields["password"])}, status=200)
    second = hinkskalle(ini, "init")
    assert second.stdout == "" and "accounts exist" in second.stderr


def test_plugins_list(ini):
    text = hinkskalle(ini, "plugins", "list").stdout
    assert re.search(r"^local\s+built-in", text, re.M) and "hinkskalle_authenticate" in text
    listed = json.loads(hinkskalle(ini, "plugins", "list", "--json").stdout)
    assert {"local", "ldap"} <= {row["name"] for row in listed["enabled"]}


def test_plugins_list_shows_disabled(make_ini):
    ini = make_ini(**{"hinkskalle.plugins.disabled": "ldap"})
    listed = json.loads(hinkskalle(ini, "plugins", "list", "--json").stdout)
    assert "ldap" not in {row["name"] for row in listed["enabled"]}
    assert listed["disabled"] == ["ldap"]


def test_check_config(ini):
    assert "configuration ok" in hinkskalle(ini, "check-config").stderr


def test_gc_reports(ini):
    assert hinkskalle(ini, "gc", "--grace", "0").stdout.startswith("removed 0 blobs")


def test_missing_ini_is_one_clear_message(tmp_path):
    result = hinkskalle(tmp_path / "nothere.ini", "db", "upgrade", ok=False)
    assert result.returncode == 2 and "nothere.ini not found" in result.stderr


def _basic(user, password):
    import base64
    return base64.b64encode(f"{user}:{password}".encode()).decode()
