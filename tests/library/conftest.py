"""Shared helpers of the library protocol tests: fixture files, users, containers, images."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hinkskalle.models import Image
from hinkskalle.testing import auth_header

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures")).resolve()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def users(factory, db):
    """user.hase (with entity), other.hase (with entity), admin.hase; tokens as headers."""
    user = factory.user("user.hase")
    other = factory.user("other.hase")
    admin = factory.user("admin.hase", admin=True)
    factory.entity("user.hase", owner=user)
    factory.entity("other.hase", owner=other)
    headers = {name: auth_header(factory.token(u)) for name, u in
               (("user", user), ("other", other), ("admin", admin))}
    db.commit()
    return {"user": user, "other": other, "admin": admin, "headers": headers}


def add_image(request_store, db, container, data: bytes, tag: str | None = "latest", arch="amd64",
              media_type="application/vnd.sylabs.sif.layer.v1.sif", **kw) -> Image:
    """Store `data` as a completed image of `container` (and tag it)."""
    from hinkskalle.models import Tag
    digest, size = request_store.ingest([data])
    image = Image(container=container, digest=digest, size=size, upload_state="completed",
                  media_type=media_type, arch=arch, owner=container.owner, **kw)
    db.add(image)
    if tag:
        db.add(Tag(container=container, name=tag, arch=arch, image=image))
    db.flush()
    return image


@pytest.fixture
def container(users, factory, db):
    """user.hase/coll/cont, owned by user.hase."""
    container = factory.container("user.hase/coll/cont", owner=users["user"])
    db.commit()
    return container


@pytest.fixture
def store(app):
    """The app's blob store (to put images in place without an upload)."""
    return app.registry["blobstore"]


def fresh(session) -> None:
    """See what the app committed: end the session's transaction (MariaDB reads repeatably
    inside one) and forget loaded values (the test session does not expire on commit)."""
    session.rollback()
    session.expire_all()
