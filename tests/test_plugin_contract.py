"""The plugin contract stays true: every hook documented and tested, every plugin loadable.

docs/plugins.md must have a heading with each hook's exact signature and a section for
each event class naming all its fields; tests/ must hold a `test_hook_<name>` for each
hook; every distribution under plugins/ must be installed and pass pluggy's check.
"""
from __future__ import annotations

import configparser
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from hinkskalle import events, hookspecs
from hinkskalle.config import SettingsError, as_bool, as_list, plugin_settings
from hinkskalle.plugins import make_plugin_manager, plugin_list

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = sorted(name for name, value in vars(hookspecs).items()
               if name.startswith("hinkskalle_") and inspect.isfunction(value))
EVENTS = [cls for cls in vars(events).values()
          if inspect.isclass(cls) and issubclass(cls, events.Event) and cls is not events.Event]
PLUGINS = sorted(path.parent for path in ROOT.glob("plugins/*/setup.cfg"))


def signature(name: str) -> str:
    return f"{name}{inspect.signature(getattr(hookspecs, name))}"


def test_there_are_hooks_and_plugins():
    assert "hinkskalle_check_push" in HOOKS and len(EVENTS) == 5
    assert {p.name for p in PLUGINS} >= {"hinkskalle-audit", "hinkskalle-webhook",
                                        "hinkskalle-policy", "hinkskalle-scan"}


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_exact_signature(name):
    headings = [line for line in GUIDE.splitlines() if line.startswith("#")]
    assert any(f"`{signature(name)}`" in line for line in headings), \
        f"docs/plugins.md needs a heading with `{signature(name)}`"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_test(name):
    pattern = re.compile(rf"^\s*def test_hook_{name}\b", re.MULTILINE)
    assert any(pattern.search(path.read_text()) for path in (ROOT / "tests").rglob("*.py")), \
        f"tests/ needs a function test_hook_{name}"


@pytest.mark.parametrize("event", EVENTS, ids=lambda cls: cls.__name__)
def test_event_is_documented_with_all_fields(event):
    section = GUIDE.split(f"### {event.__name__}\n", 1)
    assert len(section) == 2, f"docs/plugins.md needs a section ### {event.__name__}"
    text = section[1].split("\n#", 1)[0] + GUIDE.split("### PushEvent", 1)[0]   # + common fields
    for field in dataclasses.fields(event):
        assert f"`{field.name}`" in text, f"{event.__name__}.{field.name} is not documented"


def entry_points(plugin_dir: Path) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(plugin_dir / "setup.cfg")
    text = parser.get("options.entry_points", "hinkskalle", fallback="")
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in text.splitlines() if line.strip())


@pytest.mark.parametrize("plugin_dir", PLUGINS, ids=lambda path: path.name)
def test_plugin_is_installed_and_passes_check_pending(plugin_dir):
    # make_plugin_manager runs pm.check_pending(): a hookimpl with a typo fails here.
    pm = make_plugin_manager({}, load_entrypoints=True)
    names = {row["name"]: row for row in plugin_list(pm)}
    for name in entry_points(plugin_dir):
        assert name in names, f"{plugin_dir.name} is not installed: pip install -e plugins/{plugin_dir.name}"
        assert names[name]["distribution"] == plugin_dir.name
        assert names[name]["hooks"]


def test_plugin_settings_reads_prefix_types_and_environment():
    table = {"urls": (as_list, []), "enabled": (as_bool, True), "missing": (as_list, ["*"])}
    settings = {"example.urls": "http://a, http://b", "example.enabled": "false", "other.urls": "x"}
    assert plugin_settings(settings, "example", table, environ={}) == \
        {"urls": ["http://a", "http://b"], "enabled": False, "missing": ["*"]}
    environ = {"EXAMPLE_ENABLED": "yes", "EXAMPLE_MISSING": "lib/*"}
    assert plugin_settings(settings, "example", table, environ=environ) == \
        {"urls": ["http://a", "http://b"], "enabled": True, "missing": ["lib/*"]}
    with pytest.raises(SettingsError) as err:
        plugin_settings({"example.enabled": "perhaps"}, "example", table, environ={})
    assert list(err.value.errors) == ["example.enabled"]


def test_plugins_list_shows_installed_and_disabled(tmp_path, capsys):
    from hinkskalle import cli
    ini = tmp_path / "test.ini"
    ini.write_text(f"[app:main]\nuse = egg:hinkskalle\nsqlalchemy.url = sqlite:///{tmp_path}/x.db\n"
                   "hinkskalle.plugins.disabled = webhook\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["-c", str(ini), "plugins", "list"])
    assert exit_.value.code == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "hinkskalle-audit 1.0.0" in rows["audit"] and "hinkskalle_on_login" in rows["audit"]
    assert "hinkskalle-policy" in rows["policy"] and "hinkskalle-scan" in rows["scan"]
    assert rows["local"].split()[1] == "built-in"
    assert rows["webhook"].split()[1:] == ["disabled"]
