"""Byte quotas: a user's usage is the sum of the distinct completed images (by digest) the
user pushed, wherever they went; a group's usage is the sum of the distinct completed images
in the group's entity. 0 means unlimited."""
from __future__ import annotations

from sqlalchemy import func, select

from ..errors import QuotaExceeded
from ..models import Collection, Container, Entity, Image, User


def _distinct_size(session, *where, exclude_digest: str | None = None) -> int:
    if exclude_digest:
        where += (Image.digest != exclude_digest,)
    per_digest = (select(Image.digest, func.max(Image.size).label("size"))
                  .join(Container, Image.container_id == Container.id)
                  .join(Collection, Container.collection_id == Collection.id)
                  .where(Image.upload_state == "completed", Image.size.is_not(None), *where)
                  .group_by(Image.digest).subquery())
    return int(session.scalar(select(func.coalesce(func.sum(per_digest.c.size), 0))) or 0)


def user_usage(session, user: User, exclude_digest: str | None = None) -> int:
    return _distinct_size(session, Image.owner_id == user.id, exclude_digest=exclude_digest)


def entity_usage(session, entity: Entity, exclude_digest: str | None = None) -> int:
    return _distinct_size(session, Collection.entity_id == entity.id, exclude_digest=exclude_digest)


def check(session, user: User | None, entity: Entity, digest: str | None, size: int) -> None:
    """Raise QuotaExceeded if adding `size` bytes (of `digest`) would exceed a quota.

    An image the user (or group) already stores under the same digest costs nothing again.
    """
    if user is not None and user.quota:
        used = user_usage(session, user, exclude_digest=digest)
        if used + size > user.quota:
            raise QuotaExceeded(f"quota exceeded: user {user.username} uses {used} of {user.quota} bytes")
    group = entity.group
    if group is not None and group.quota:
        used = entity_usage(session, entity, exclude_digest=digest)
        if used + size > group.quota:
            raise QuotaExceeded(f"quota exceeded: group {group.name} uses {used} of {group.quota} bytes")


def refresh(session, user: User | None, entity: Entity) -> None:
    """Store the current usage on the user and entity rows (shown by the REST API)."""
    if user is not None:
        user.used_quota = user_usage(session, user)
    entity.used_quota = entity_usage(session, entity)


def recompute_all(session) -> dict:
    """Recompute the stored usage of every user and entity (`hinkskalle quotas check`)."""
    updated = 0
    for user in session.scalars(select(User)):
        user.used_quota = user_usage(session, user)
        updated += 1
    for entity in session.scalars(select(Entity)):
        entity.used_quota = entity_usage(session, entity)
        updated += 1
    session.flush()
    return {"updated": updated, "total_space": _distinct_size(session)}


def over_quota(session) -> list[str]:
    """Users and groups whose stored usage exceeds their quota (after recompute_all)."""
    over = [f"user {u.username}: {u.used_quota} of {u.quota} bytes"
            for u in session.scalars(select(User).where(User.quota > 0, User.used_quota > User.quota))]
    for entity in session.scalars(select(Entity).where(Entity.group_id.is_not(None))):
        group = entity.group
        if group.quota and entity.used_quota > group.quota:
            over.append(f"group {group.name}: {entity.used_quota} of {group.quota} bytes")
    return over
