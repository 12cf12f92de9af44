"""Fixtures for the accounts tests: per-test settings and logged-in callers."""
from __future__ import annotations

import pytest

from hinkskalle.testing import auth_header, free_port


@pytest.fixture
def extra_settings():
    """Settings a test changes; override with `@pytest.mark.parametrize("extra_settings", [...])`."""
    return {}


@pytest.fixture
def settings(settings, extra_settings):
    settings.update(extra_settings)
    return settings


@pytest.fixture
def ini(tmp_path, settings):
    """Write an ini file for the `hinkskalle` command on the test database and store."""
    def make(**extra):
        values = {"sqlalchemy.url": settings["sqlalchemy.url"],
                  "hinkskalle.storage.path": settings["hinkskalle.storage.path"],
                  "hinkskalle.secret_key": "cli", **extra}
        path = tmp_path / "cli.ini"
        path.write_text("[app:main]\nuse = egg:hinkskalle\n" +
                        "".join(f"{k} = {v}\n" for k, v in values.items()))
        return str(path)
    return make


@pytest.fixture
def hinkskalle():
    """Run the `hinkskalle` command in-process: hinkskalle(ini, *args, code=0) -> click Result."""
    from click.testing import CliRunner

    from hinkskalle.cli import cli

    def invoke(ini_path, *args, code=0):
        result = CliRunner().invoke(cli, ["-c", ini_path, *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result
    return invoke


@pytest.fixture
def users(factory, db):
    """An admin, a user and another user, each with an API token (as request headers)."""
    admin = factory.user("admin.hase", admin=True, password="admin-pw")
    user = factory.user("user.hase", password="user-pw")
    other = factory.user("other.hase", password="other-pw")
    headers = {u.username: auth_header(factory.token(u)) for u in (admin, user, other)}
    db.commit()
    return {"admin": admin, "user": user, "other": other, "headers": headers,
            "as_admin": headers["admin.hase"], "as_user": headers["user.hase"],
            "as_other": headers["other.hase"]}


# -- a real slapd ---------------------------------------------------------------------------

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "slapd-root-pw"
SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {tmp}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {tmp}/db
"""


def _person(key: str, uid: str, mail: str | None, password: str, given="Ldap", sn="Hase") -> str:
    import base64
    lines = [f"dn: cn={key},ou=people,{SUFFIX}", "objectClass: inetOrgPerson", f"cn: {key}",
             f"uid:: {base64.b64encode(uid.encode()).decode()}",
             f"sn: {sn}", f"givenName: {given}", f"userPassword: {password}"]
    if mail:
        lines.append(f"mail: {mail}")
    return "\n".join(lines) + "\n"


LDAP_ENTRIES = "\n".join([
    f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
    f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
    _person("hase", "ldap.hase", "ldap.hase@example.org", "ldap-pw"),
    _person("zwei", "ldap.zwei", "Zwei@Example.org", "zwei-pw", given="Zwei"),
    _person("clash", "user.hase", "user.hase@ldap.example.org", "ldap-user-pw"),   # a local name
    _person("nomail", "nomail", None, "nomail-pw"),
    _person("taest", "täst&.haße", "taest@example.org", "taest-pw"),
])


class Slapd:
    def __init__(self, url: str):
        self.url = url
        self.settings = {
            "hinkskalle.ldap.enabled": True,
            "hinkskalle.ldap.url": url,
            "hinkskalle.ldap.bind_dn": ROOT_DN,
            "hinkskalle.ldap.bind_password": ROOT_PW,
            "hinkskalle.ldap.base_dn": f"ou=people,{SUFFIX}",
            "hinkskalle.ldap.timeout": 3,
        }


@pytest.fixture
def dead_ldap_url() -> str:
    """An LDAP URL on which nothing listens: the server is down."""
    return f"ldap://127.0.0.1:{free_port()}/"


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """A throw-away OpenLDAP server on 127.0.0.1 with the LDAP_ENTRIES loaded."""
    import socket
    import subprocess
    import time

    from hinkskalle.testing import require_tool, run
    slapd_bin = require_tool("slapd")
    ldapadd = require_tool("ldapadd")
    tmp = tmp_path_factory.mktemp("slapd")
    (tmp / "db").mkdir()
    conf = tmp / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(tmp=tmp, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW))
    port = free_port()
    url = f"ldap://127.0.0.1:{port}/"
    log = open(tmp / "slapd.log", "wb")
    proc = subprocess.Popen([slapd_bin, "-h", url, "-f", str(conf), "-d", "0"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"slapd did not start: {(tmp / 'slapd.log').read_text()}")
                time.sleep(0.1)
        (tmp / "entries.ldif").write_text(LDAP_ENTRIES)
        added = run([ldapadd, "-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PW, "-f", str(tmp / "entries.ldif")],
                    timeout=30)
        assert added.returncode == 0, added.stderr
        yield Slapd(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
