"""Settings: defaults, environment overrides, typed values, and how invalid ones stop start-up."""
import subprocess
import sys
from pathlib import Path

import pytest

from hinkskalle import main
from hinkskalle.config import SETTINGS, SettingsError, as_bool, as_size, load_settings, markdown_table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent       # the console scripts of this environment

def test_defaults_fill_every_setting():
    settings = load_settings({"here": "/srv/hs"}, environ={})
    assert {s.key for s in SETTINGS} <= set(settings)
    assert settings["sqlalchemy.url"] == "sqlite:////srv/hs/data/hinkskalle.db"
    assert settings["hinkskalle.storage.path"] == "/srv/hs/data/blobs"
    assert settings["hinkskalle.multipart_chunk"] == 64 * 1024**2


def test_environment_overrides_the_ini():
    raw = {"here": "/srv/hs", "hinkskalle.storage.path": "/ini/blobs",
           "sqlalchemy.url": "sqlite:////ini.db", "hinkskalle.enable_register": "true"}
    settings = load_settings(raw, environ={
        "HINKSKALLE_STORAGE_PATH": "/env/blobs",
        "DATABASE_URL": "postgresql://hs@db/hinkskalle",
        "HINKSKALLE_ENABLE_REGISTER": "false",
    })
    assert settings["hinkskalle.storage.path"] == "/env/blobs"
    assert settings["sqlalchemy.url"] == "postgresql://hs@db/hinkskalle"
    assert settings["hinkskalle.enable_register"] is False


def test_plugin_settings_present_in_the_ini_are_overridable_too():
    settings = load_settings({"hinkskalle_webhook.url": "http://a"},
                             environ={"HINKSKALLE_WEBHOOK_URL": "http://b"})
    assert settings["hinkskalle_webhook.url"] == "http://b"


@pytest.mark.parametrize("text, value", [("false", False), ("False", False), ("no", False), ("0", False),
                                         ("", False), ("true", True), ("ON", True), ("1", True)])
def test_booleans(text, value):
    assert as_bool(text) is value


@pytest.mark.parametrize("text, value", [("1024", 1024), ("10GiB", 10 * 1024**3), ("512 MB", 512 * 1000**2),
                                         ("5TiB", 5 * 1024**4), ("64mib", 64 * 1024**2), (7, 7)])
def test_sizes(text, value):
    assert as_size(text) == value


def test_typed_values_from_the_ini():
    settings = load_settings({"hinkskalle.enable_register": "false",
                              "hinkskalle.default_user_quota": "10GiB",
                              "hinkskalle.gc_grace": "60",
                              "hinkskalle.plugins.disabled": "ldap, webhook"}, environ={})
    assert settings["hinkskalle.enable_register"] is False
    assert settings["hinkskalle.default_user_quota"] == 10 * 1024**3
    assert settings["hinkskalle.gc_grace"] == 60
    assert settings["hinkskalle.plugins.disabled"] == ["ldap", "webhook"]


def test_every_invalid_setting_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        load_settings({"hinkskalle.enable_register": "maybe", "hinkskalle.default_user_quota": "lots",
                       "hinkskalle.backend_url": "registry.example.com"}, environ={"HINKSKALLE_GC_GRACE": "soon"})
    assert set(caught.value.errors) == {"hinkskalle.enable_register", "hinkskalle.default_user_quota",
                                        "hinkskalle.backend_url", "hinkskalle.gc_grace"}


def test_empty_secret_becomes_a_random_one():
    first = load_settings({}, environ={})["hinkskalle.secret_key"]
    assert len(first) >= 32 and first != load_settings({}, environ={})["hinkskalle.secret_key"]


def test_main_stops_with_one_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main({"here": str(tmp_path)}, **{"hinkskalle.default_user_quota": "lots"})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "hinkskalle: invalid setting hinkskalle.default_user_quota: "
        "expected a size like 1024, 500MB or 10GiB, got 'lots'"]


def test_pserve_refuses_invalid_settings_without_traceback(make_ini, tmp_path):
    ini = make_ini(**{"hinkskalle.enable_register": "perhaps"})
    pserve = BIN / "pserve"
    result = subprocess.run([str(pserve), str(ini)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "hinkskalle: invalid setting hinkskalle.enable_register: expected a boolean" in result.stderr


def test_check_config_reports_every_problem(make_ini):
    ini = make_ini(**{"hinkskalle.enable_register": "perhaps",
                                 "hinkskalle.gc_grace": "an hour"})
    cli = BIN / "hinkskalle"
    result = subprocess.run([str(cli), "-c", str(ini), "check-config"], capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "HINKSKALLE_DEFAULT_USER_QUOTA": "x"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    reported = sorted(line.split()[2].rstrip(":") for line in result.stderr.splitlines())
    assert reported == ["hinkskalle.default_user_quota", "hinkskalle.enable_register", "hinkskalle.gc_grace"]


def test_check_config_accepts_the_shipped_ini_files(tmp_path):
    cli = BIN / "hinkskalle"
    for name in ("development.ini", "production.ini"):
        result = subprocess.run([str(cli), "-c", str(REPO / name), "check-config"], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "configuration ok" in result.stderr


def test_readme_documents_every_setting():
    readme = (REPO / "README.md").read_text()
    missing = [s.key for s in SETTINGS if f"| `{s.key}` |" not in readme]
    assert not missing, f"settings missing from the README (run `make settings-doc`): {missing}"
    assert markdown_table() in readme, "README's configuration reference is stale: run `make settings-doc`"
