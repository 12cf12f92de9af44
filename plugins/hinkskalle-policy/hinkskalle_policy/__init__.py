"""hinkskalle-policy: veto pushes by rules from the settings.

Each named rule applies to the repositories matching its glob patterns and may require a
verified SIF signature from trusted keys, limit SIF architectures, the size of what is
pushed and its media types. Every rule that applies must pass; the first failure vetoes the
push inside the transaction, and the client gets the reason in its protocol's error format.
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass

from hinkskalle import hookimpl
from hinkskalle.config import as_bool, as_list, as_size, plugin_settings
from hinkskalle.models.registry import SIF_MEDIA_TYPE

log = logging.getLogger(__name__)

PREFIX = "hinkskalle_policy"
# OCI blobs are stored as this type until a manifest names their real type.
UNTYPED = "application/octet-stream"
RULE_SETTINGS = {
    "repositories": (as_list, ["*"]),        # fnmatch patterns of "entity/collection/container"
    "require_signature": (as_bool, False),   # SIF images must carry verified signatures
    "trusted_keys": (as_list, []),           # ... by one of these key fingerprints (empty: any key we know)
    "architectures": (as_list, []),          # allowed SIF architectures (empty: any)
    "max_size": (as_size, 0),                # largest image, blob or manifest in bytes (0: no limit)
    "media_types": (as_list, []),            # allowed media types of images and typed blobs, fnmatch (empty: any)
}


@dataclass(frozen=True)
class Rule:
    name: str
    repositories: list
    require_signature: bool
    trusted_keys: list
    architectures: list
    max_size: int
    media_types: list

    def applies(self, repository: str) -> bool:
        return any(fnmatch.fnmatchcase(repository, pattern) for pattern in self.repositories)

    def violation(self, event) -> str | None:
        """Why `event` (a PushEvent) breaks this rule, or None."""
        if self.max_size and event.size > self.max_size:
            return f"{event.size} bytes exceed the limit of {self.max_size}"
        typed = event.target != "manifest" and event.media_type != UNTYPED
        if self.media_types and typed and not any(
                fnmatch.fnmatchcase(event.media_type, pattern) for pattern in self.media_types):
            return f"media type {event.media_type} is not allowed"
        if event.media_type != SIF_MEDIA_TYPE:
            return None
        if self.architectures and event.arch not in self.architectures:
            return f"architecture {event.arch or 'unknown'} is not allowed (allowed: {', '.join(self.architectures)})"
        if self.require_signature:
            if not event.signed:
                return "the image must be signed"
            if not event.signature_verified:
                return "the image's signature could not be verified (is the key in the keystore?)"
            if self.trusted_keys and not set(event.fingerprints) & set(self.trusted_keys):
                return "the image is not signed by a trusted key"
        return None


def load_rules(settings: dict) -> list[Rule]:
    names = plugin_settings(settings, PREFIX, {"rules": (as_list, [])})["rules"]
    rules = []
    for name in names:
        options = plugin_settings(settings, f"{PREFIX}.{name}", RULE_SETTINGS)
        options["trusted_keys"] = [key.upper() for key in options["trusted_keys"]]
        rules.append(Rule(name=name, **options))
    return rules


@hookimpl
def hinkskalle_configure(config):
    rules = load_rules(config.get_settings())
    config.registry[PREFIX] = rules
    if not rules:
        log.warning("hinkskalle-policy is installed but %s.rules names no rule: every push passes", PREFIX)


@hookimpl
def hinkskalle_check_push(request, event):
    for rule in request.registry.get(PREFIX, ()):
        if rule.applies(event.repository):
            reason = rule.violation(event)
            if reason:
                return f"push to {event.repository} refused by policy {rule.name}: {reason}"
    return None
