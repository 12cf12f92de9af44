"""Event data handed to ``hinkskalle_on_*`` and ``hinkskalle_check_*`` hooks.

Frozen dataclasses of plain values, never ORM objects: they are read after the commit,
when the session is gone. ``request.emit(event)`` queues an event; it is delivered only if
the request's transaction commits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from .models.meta import utcnow


@dataclass(frozen=True)
class Event:
    repository: str                 # "entity/collection/container"
    actor: str | None               # username, None for anonymous
    address: str | None             # client address
    protocol: str                   # "library", "oci", "shub"
    created: datetime = field(default_factory=utcnow, compare=False)

    @property
    def kind(self) -> str:
        return type(self).__name__.removesuffix("Event").lower()

    def to_dict(self) -> dict:
        """The event as JSON-ready values: ``event`` (the kind), ``time`` and every field but ``path``."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("created", "path")}
        fields = {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()}
        return {"event": self.kind, "time": self.created.isoformat(), **fields}


@dataclass(frozen=True)
class PushEvent(Event):
    digest: str = ""                 # "sha256:<hex>" of the image, blob or manifest
    size: int = 0
    media_type: str = ""
    target: str = "image"            # "image" (library/SIF), "blob", "manifest"
    tags: tuple[str, ...] = ()
    arch: str | None = None
    image_id: int | None = None
    path: str | None = field(default=None, compare=False)   # blob file, for check/scan hooks
    signed: bool = False
    signature_verified: bool = False
    fingerprints: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullEvent(Event):
    digest: str = ""
    size: int = 0
    media_type: str = ""
    target: str = "image"
    reference: str | None = None     # tag or digest the client asked for
    image_id: int | None = None


@dataclass(frozen=True)
class TagEvent(Event):
    tag: str = ""
    arch: str | None = None
    digest: str | None = None        # None when the tag was removed
    action: str = "set"              # "set" or "remove"


@dataclass(frozen=True)
class DeleteEvent(Event):
    target: str = "image"            # "image", "manifest", "blob", "tag", "container"
    digest: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class LoginEvent(Event):
    success: bool = False
    method: str = "password"         # "password", "token", "registry-token"
