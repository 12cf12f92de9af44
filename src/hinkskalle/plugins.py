"""The plugin manager: built-in plugins, installed ones, and after-commit event delivery."""
from __future__ import annotations

import logging

import pluggy

from . import hookspecs
from .events import (DeleteEvent, Event, LoginEvent, PullEvent, PushEvent,
                     TagEvent)

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("hinkskalle")

# Behaviour of our own that goes through the same hooks as third-party plugins, so a site
# can disable it by name (e.g. `hinkskalle.plugins.disabled = ldap`).
BUILTIN_PLUGINS = (
    ("local", "hinkskalle.auth.local"),
    ("ldap", "hinkskalle.auth.ldap"),
)

_EVENT_HOOKS = {
    PushEvent: "hinkskalle_on_push",
    PullEvent: "hinkskalle_on_pull",
    TagEvent: "hinkskalle_on_tag",
    DeleteEvent: "hinkskalle_on_delete",
    LoginEvent: "hinkskalle_on_login",
}


class PluginError(RuntimeError):
    pass


def make_plugin_manager(settings: dict | None = None, load_entrypoints: bool = True,
                        extra: tuple = ()) -> pluggy.PluginManager:
    settings = settings or {}
    disabled = set(settings.get("hinkskalle.plugins.disabled", ()))
    pm = pluggy.PluginManager("hinkskalle")
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    for name, module_name in BUILTIN_PLUGINS:
        if name not in disabled:
            module = __import__(module_name, fromlist=["_"])
            pm.register(module, name=name)
    if load_entrypoints and settings.get("hinkskalle.plugins.entrypoints", True):
        pm.load_setuptools_entrypoints("hinkskalle")
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(f"plugin implements an unknown hook: {err}") from None
    return pm


def plugin_list(pm: pluggy.PluginManager) -> list[dict]:
    """Name, origin and implemented hooks of every registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        rows.append({
            "name": name,
            "version": dist.version if dist else None,
            "distribution": dist.project_name if dist else "built-in",
            "hooks": hooks,
        })
    return rows


def deliver(pm: pluggy.PluginManager, events: list[Event], registry=None) -> None:
    """Call every implementation of each event's hook, isolating their failures.

    pluggy stops at the first exception, so implementations are called one by one: a broken
    plugin must never keep the others from seeing the event or fail the request. Each
    implementation gets the arguments it names (`event`, `registry`); the registry defaults
    to the application's the plugin manager was included in.
    """
    if registry is None:
        registry = getattr(pm, "hinkskalle_registry", None)
    for event in events:
        hook_name = _EVENT_HOOKS[type(event)]
        arguments = {"event": event, "registry": registry}
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            try:
                impl.function(**{name: arguments[name] for name in impl.argnames})
            except Exception:  # noqa: BLE001 - a plugin's failure must stay the plugin's
                log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)


def implemented(request, *hook_names: str) -> bool:
    """Whether any plugin implements one of these hooks: what only a plugin would read need
    not be built on hot paths (a manifest GET's pull event was 7% of its CPU)."""
    hook = request.registry["plugin_manager"].hook
    return any(getattr(hook, name).get_hookimpls() for name in hook_names)


def check(request, hook_name: str, event: Event) -> str | None:
    """Run a `hinkskalle_check_*` hook; the first veto reason (a string) wins."""
    for reason in getattr(request.registry["plugin_manager"].hook, hook_name)(request=request, event=event):
        if reason:
            return str(reason)
    return None


def _emit(request, event: Event) -> None:
    """Queue an event; it is delivered after the transaction commits, and never otherwise."""
    queue = request.__dict__.setdefault("_hinkskalle_events", [])
    if not queue:
        registry = request.registry
        pm = registry["plugin_manager"]

        def after_commit(success: bool, events=queue):
            if success:
                deliver(pm, events, registry)

        request.tm.get().addAfterCommitHook(after_commit)
    queue.append(event)


def includeme(config):
    settings = config.get_settings()
    pm = settings.get("hinkskalle.plugin_manager") or make_plugin_manager(settings)
    config.registry["plugin_manager"] = pm
    pm.hinkskalle_registry = config.registry   # for deliver() calls outside a request's commit
    config.add_request_method(lambda request: request.registry["plugin_manager"].hook, "hook", reify=True)
    config.add_request_method(_emit, "emit")
