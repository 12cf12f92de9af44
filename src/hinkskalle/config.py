"""Settings: defaults, typed coercion and environment overrides.

Every setting lives in the paste ini under the ``hinkskalle.`` prefix (framework keys
keep their own, e.g. ``sqlalchemy.url``). Any of them can be overridden from the
environment by upper-casing the key and turning dots into underscores
(``hinkskalle.storage.path`` <- ``HINKSKALLE_STORAGE_PATH``); ``sqlalchemy.url`` also
reads ``DATABASE_URL``. Values are coerced to their declared type, so the string
``"false"`` is False and ``"10GiB"`` is a number of bytes.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable


class SettingsError(ValueError):
    """One or more settings are invalid; ``errors`` maps key -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None


def as_size(value: Any) -> int:
    """Bytes from ``1024``, ``10GiB``, ``512 MB`` (SI and binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    else:
        match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(f"expected a size like 1024, 500MB or 10GiB, got {value!r}")
        number, unit = int(match.group(1)), match.group(2).lower()
    return int(number) * _UNITS[unit]


def as_str(value: Any) -> str:
    return str(value).strip()


def as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [v for v in re.split(r"[\s,]+", str(value)) if v]


def as_networks(value: Any) -> list[str]:
    """Addresses or networks (127.0.0.1, ::1, 10.0.0.0/24)."""
    entries = as_list(value)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"expected IP addresses or networks, got {entry!r}") from None
    return entries


def as_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if text and not re.match(r"^https?://[^/\s]+", text):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return text


def as_choice(*choices: str) -> Callable[[Any], str]:
    def coerce(value: Any) -> str:
        text = str(value).strip()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text
    return coerce


@dataclass(frozen=True)
class Setting:
    key: str
    coerce: Callable[[Any], Any]
    default: Any
    help: str


# The single table of our settings; the README's configuration reference mirrors it.
SETTINGS: tuple[Setting, ...] = (
    Setting("sqlalchemy.url", as_str, "sqlite:///%(here)s/data/hinkskalle.db",
            "Database URL (SQLite, postgresql://, mysql+pymysql://). Env: DATABASE_URL."),
    Setting("hinkskalle.storage.path", as_str, "%(here)s/data/blobs",
            "Folder of the content-addressed blob store and partial uploads."),
    Setting("hinkskalle.storage.direct_writes", as_bool, True,
            "Write uploads past the page cache (O_DIRECT) where the filesystem allows: faster pushes, "
            "the first pull of a new blob reads the disk."),
    Setting("hinkskalle.backend_url", as_url, "",
            "Public base URL used in generated links; empty = derived from the request."),
    Setting("hinkskalle.frontend_url", as_url, "", "URL of the web frontend (config.prod.json)."),
    Setting("hinkskalle.keyserver_url", as_url, "",
            "External HKP keyserver for clients; empty = the built-in keyserver of this server."),
    Setting("hinkskalle.secret_key", as_str, "",
            "Secret for signed tokens and download links; empty = random per start (links die on restart)."),
    Setting("hinkskalle.default_arch", as_str, "amd64", "Architecture of tags that do not name one."),
    Setting("hinkskalle.multipart_chunk", as_size, "64MiB", "Part size handed to library multipart uploads."),
    Setting("hinkskalle.upload_expiry", as_int, 3600,
            "Seconds an unfinished upload session stays usable after its last activity."),
    Setting("hinkskalle.gc_grace", as_int, 3600,
            "Seconds an unreferenced blob is kept before gc removes it (protects pushes in flight)."),
    Setting("hinkskalle.max_manifest_size", as_size, "4MiB", "Largest manifest accepted (413 above)."),
    Setting("hinkskalle.default_user_quota", as_size, 0, "Bytes for new users; 0 = unlimited."),
    Setting("hinkskalle.default_group_quota", as_size, 0, "Bytes for new groups; 0 = unlimited."),
    Setting("hinkskalle.enable_register", as_bool, False, "Allow self-registration at /v1/register."),
    Setting("hinkskalle.download_token_expiry", as_int, 86400, "Lifetime of download links in seconds."),
    Setting("hinkskalle.token_expiry", as_int, 86400, "Lifetime of login (auto) tokens, sliding, seconds."),
    Setting("hinkskalle.oci_token_expiry", as_int, 300, "Lifetime of docker registry tokens in seconds."),
    Setting("hinkskalle.trusted_proxies", as_networks, ["127.0.0.1", "::1"],
            "Addresses or networks of reverse proxies whose X-Forwarded-For header names the client "
            "(login throttle, event addresses); connections over a unix socket count as the proxy's."),
    Setting("hinkskalle.registry_token_cache", as_int, 5,
            "Seconds a registry token's user and groups are remembered between requests "
            "(deactivations and group changes apply after at most this long); 0 = check every request."),
    Setting("hinkskalle.login_throttle", as_int, 5,
            "Failed logins per user and address within a minute before logins are slowed down."),
    Setting("hinkskalle.counter_flush_interval", as_int, 5,
            "Seconds between batched writes of download counters (pulls do not write); "
            "0 = count in each pull's own transaction."),
    Setting("hinkskalle.plugins.disabled", as_list, [], "Names of plugins not to load."),
    Setting("hinkskalle.plugins.entrypoints", as_bool, True, "Load plugins from the 'hinkskalle' entry point group."),
    Setting("hinkskalle.ldap.enabled", as_bool, False, "Authenticate against LDAP."),
    Setting("hinkskalle.ldap.url", as_str, "ldap://127.0.0.1:389", "LDAP server URL."),
    Setting("hinkskalle.ldap.bind_dn", as_str, "", "DN to bind as for searches (empty = anonymous)."),
    Setting("hinkskalle.ldap.bind_password", as_str, "", "Password of bind_dn."),
    Setting("hinkskalle.ldap.base_dn", as_str, "", "Search base for users."),
    Setting("hinkskalle.ldap.user_filter", as_str, "(&(uid={username})(objectClass=person))",
            "Filter to find a user; {username} is replaced by the escaped login name."),
    Setting("hinkskalle.ldap.all_users_filter", as_str, "(objectClass=person)", "Filter for `ldap sync`."),
    Setting("hinkskalle.ldap.attr_username", as_str, "uid", "Attribute holding the username."),
    Setting("hinkskalle.ldap.attr_email", as_str, "mail", "Attribute holding the email address."),
    Setting("hinkskalle.ldap.attr_firstname", as_str, "givenName", "Attribute holding the first name."),
    Setting("hinkskalle.ldap.attr_lastname", as_str, "sn", "Attribute holding the last name."),
    Setting("hinkskalle.ldap.timeout", as_int, 5, "Seconds to wait for the LDAP server."),
)
_BY_KEY = {s.key: s for s in SETTINGS}
ENV_ALIASES = {"sqlalchemy.url": ("DATABASE_URL",)}


def env_name(key: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", key.upper())


def load_settings(raw: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, ini values and environment overrides and coerce them.

    Unknown ``hinkskalle.*`` keys pass through untouched (plugins own their prefixes).
    Raises SettingsError naming every invalid key.
    """
    environ = os.environ if environ is None else environ
    here = raw.get("here", os.getcwd())
    settings = dict(raw)
    errors: dict[str, str] = {}
    for setting in SETTINGS:
        value = settings.get(setting.key, setting.default)
        for name in (env_name(setting.key),) + ENV_ALIASES.get(setting.key, ()):
            if name in environ:
                value = environ[name]
        if isinstance(value, str):
            value = value.replace("%(here)s", here)
        try:
            settings[setting.key] = setting.coerce(value)
        except ValueError as err:
            errors[setting.key] = str(err)
    # Plugin settings (and any other dotted key) may be overridden the same way, as strings.
    for key in list(settings):
        if "." in key and key not in _BY_KEY and env_name(key) in environ:
            settings[key] = environ[env_name(key)]
    if errors:
        raise SettingsError(errors)
    if not settings["hinkskalle.secret_key"]:
        settings["hinkskalle.secret_key"] = secrets.token_urlsafe(32)
    return settings


def plugin_settings(settings: dict[str, Any], prefix: str,
                    table: dict[str, tuple[Callable[[Any], Any], Any]],
                    environ: dict[str, str] | None = None) -> dict[str, Any]:
    """A plugin's own settings ``<prefix>.<name>``, typed, keyed by ``<name>``.

    ``table`` maps each name to ``(coerce, default)``, e.g. ``{"urls": (as_list, [])}``.
    The environment overrides the ini by the same rule as ours
    (``hinkskalle_webhook.urls`` <- ``HINKSKALLE_WEBHOOK_URLS``), also for keys the ini
    does not mention. Raises SettingsError naming every invalid key.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (coerce, default) in table.items():
        key = f"{prefix}.{name}"
        value = environ.get(env_name(key), settings.get(key, default))
        try:
            values[name] = coerce(value)
        except ValueError as err:
            errors[key] = str(err)
    if errors:
        raise SettingsError(errors)
    return values


def markdown_table() -> str:
    """The configuration reference of the README, generated from SETTINGS (`make settings-doc`)."""
    rows = ["| Setting | Default | Environment | Meaning |", "|---|---|---|---|"]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, list):
            default = " ".join(default)
        default = f"`{default}`" if default != "" else "(empty)"
        env = ", ".join(f"`{name}`" for name in (env_name(setting.key),) + ENV_ALIASES.get(setting.key, ()))
        rows.append(f"| `{setting.key}` | {default} | {env} | {setting.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
