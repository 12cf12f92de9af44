"""Account operations shared by the REST API, the CLI and logins: users, groups, members,
and the login throttle."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from sqlalchemy import func, select

from .. import plugins
from ..errors import Conflict, NotFound, PreconditionFailed, TooManyRequests, Unauthorized
from ..events import LoginEvent
from ..models import Entity, Group, Membership, User
from ..models.meta import utcnow
from ..models.names import InvalidName, check_name, slugify
from ..models.user import ROLES
from ..security.passwords import hash_password


class AccountError(PreconditionFailed):
    """An account operation is refused (duplicate, invalid name, last group admin...)."""


# -- users ----------------------------------------------------------------------------

def find_user(session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username.lower()))


def create_user(session, settings: dict, *, username: str, email: str, password: str | None = None,
                is_admin: bool = False, firstname: str = "", lastname: str = "", source: str = "local",
                created_by: str | None = None, quota: int | None = None, **extra) -> User:
    """Create a user and the entity named after it."""
    try:
        username = check_name(username)
    except InvalidName as err:
        raise AccountError(f"invalid username: {err}") from None
    email = email.strip().lower()
    if session.scalar(select(User).where((User.username == username) | (func.lower(User.email) == email))):
        raise AccountError(f"User {username} already exists (username or email taken)")
    if session.scalar(select(Entity).where(Entity.name == username)):
        raise AccountError(f"entity {username} already exists")
    user = User(username=username, email=email, firstname=firstname, lastname=lastname,
                is_admin=is_admin, source=source, created_by=created_by,
                password_hash=hash_password(password) if password else None,
                quota=settings.get("hinkskalle.default_user_quota", 0) if quota is None else quota,
                **extra)
    session.add(user)
    session.add(Entity(name=username, owner=user))
    session.flush()
    return user


def ensure_entity(session, user: User) -> Entity:
    """The entity named after `user`, created for them if it is missing (first login)."""
    entity = session.scalar(select(Entity).where(Entity.name == user.username))
    if entity is None:
        entity = Entity(name=user.username, owner=user)
        session.add(entity)
        session.flush()
    return entity


def rename_user(session, user: User, new_name: str) -> None:
    """Rename a user and the entity named after them (if they own it)."""
    new_name = check_name(new_name)
    if new_name == user.username:
        return
    if find_user(session, new_name) is not None:
        raise Conflict(f"username {new_name} is taken")
    if session.scalar(select(Entity).where(Entity.name == new_name)) is not None:
        raise Conflict(f"entity {new_name} already exists")
    entity = session.scalar(select(Entity).where(Entity.name == user.username))
    if entity is not None:
        if entity.owner_id != user.id:
            raise AccountError(f"Cannot rename entity {entity.name}: not owned by the user")
        entity.name = new_name
        entity.updated_at = utcnow()
    # Groups remember their creator by name (it grants edit rights): follow the rename.
    for group in session.scalars(select(Group).where(Group.created_by == user.username)):
        group.created_by = new_name
    user.username = new_name


def set_email(session, user: User, email: str) -> None:
    email = email.strip().lower()
    taken = session.scalar(select(User).where(func.lower(User.email) == email, User.id != user.id))
    if taken is not None:
        raise Conflict("email address is taken")
    user.email = email


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)


# -- groups ---------------------------------------------------------------------------

def find_group(session, name: str) -> Group | None:
    return session.scalar(select(Group).where(Group.name == name))


def group_entity_name(name: str) -> str:
    slug = slugify(name)
    try:
        return check_name(slug)
    except InvalidName as err:
        raise AccountError(f"group name {name!r} gives no valid entity name: {err}") from None


def create_group(session, settings: dict, creator: User, *, name: str, email: str,
                 description: str | None = None, quota: int | None = None) -> Group:
    """Create a group, its entity (the slug of its name) and make the creator its admin."""
    name = name.strip()
    entity_name = group_entity_name(name)
    if find_group(session, name) is not None:
        raise AccountError(f"group {name} already exists")
    if session.scalar(select(Entity).where(Entity.name == entity_name)) is not None:
        raise AccountError(f"entity {entity_name} already exists")
    group = Group(name=name, email=email.strip().lower(), description=description,
                  created_by=creator.username,
                  quota=settings.get("hinkskalle.default_group_quota", 0) if quota is None else quota)
    session.add(group)
    session.add(Membership(user=creator, group=group, role="admin"))
    session.add(Entity(name=entity_name, group=group, owner=creator))
    session.flush()
    return group


def rename_group(session, group: Group, new_name: str) -> None:
    new_name = new_name.strip()
    if new_name == group.name:
        return
    entity_name = group_entity_name(new_name)
    if find_group(session, new_name) is not None:
        raise Conflict(f"group {new_name} already exists")
    entity = group.entity
    if (entity is None or entity.name != entity_name) and session.scalar(
            select(Entity).where(Entity.name == entity_name)) is not None:
        raise Conflict(f"entity {entity_name} already exists")
    group.name = new_name
    if entity is not None:
        entity.name = entity_name


def set_members(session, group: Group, members: list[dict]) -> None:
    """Replace the member list; at least one member must stay a group admin."""
    wanted: dict[str, str] = {}
    for member in members:
        role = member["role"]
        if role not in ROLES:
            raise AccountError(f"invalid role {role}")
        wanted[member["user"]["username"].lower()] = role
    if "admin" not in wanted.values():
        raise AccountError("a group needs at least one admin")
    users = {}
    for username in wanted:
        user = find_user(session, username)
        if user is None:
            raise NotFound(f"user {username} not found")
        users[username] = user
    current = {m.user.username: m for m in group.memberships}
    for username, membership in current.items():
        if username not in wanted:
            group.memberships.remove(membership)
    for username, role in wanted.items():
        if username in current:
            current[username].role = role
        else:
            group.memberships.append(Membership(user=users[username], role=role))
    group.updated_at = utcnow()
    session.flush()


def delete_group(session, group: Group) -> None:
    entity = group.entity
    if entity is not None and entity.collections:
        raise AccountError("Cannot delete, entity not empty")
    if entity is not None:
        session.delete(entity)
    session.delete(group)
    session.flush()


# -- login throttle ----------------------------------------------------------------------

class LoginThrottle:
    """Counts failed logins per (address, username) over the last minute.

    Kept in process memory: it only has to slow down guessing, and a restart forgetting
    the counts is harmless. Beyond `limit` failures a login is refused without even
    checking the password, until the oldest failure is a minute old.
    """

    WINDOW = 60.0
    MAX_KEYS = 10000

    def __init__(self, limit: int):
        self.limit = limit
        self._failures: dict[tuple[str, str], deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key, now: float) -> deque:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.WINDOW:
            failures.popleft()
        return failures

    def check(self, address: str | None, username: str) -> None:
        if self.limit <= 0:
            return
        key = (address or "", username.lower())
        now = time.monotonic()
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) >= self.limit:
                retry_after = max(1, int(failures[0] + self.WINDOW - now) + 1)
                raise TooManyRequests("Too many failed logins, try again later.",
                                      headers={"Retry-After": str(retry_after)})
            if not failures:
                self._failures.pop(key, None)

    def failed(self, address: str | None, username: str) -> None:
        key = (address or "", username.lower())
        now = time.monotonic()
        with self._lock:
            if len(self._failures) >= self.MAX_KEYS:
                # Someone is spraying names: forget whatever is older than the window.
                for stale in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[stale]
            self._recent(key, now).append(now)

    def succeeded(self, address: str | None, username: str) -> None:
        with self._lock:
            self._failures.pop((address or "", username.lower()), None)


def guarded_login(request, username: str, secret: str, authenticate):
    """Run a password login through the throttle; failures are counted and reported.

    A failed login commits nothing, so its LoginEvent is delivered when the request is
    finished rather than after a commit. Neither the password nor a token ever reaches
    the event or the log.
    """
    throttle: LoginThrottle = request.registry["login_throttle"]
    address = request.client_address
    throttle.check(address, username)
    try:
        identity = authenticate(request, username, secret)
    except Unauthorized:
        identity = None
    if identity is not None:
        throttle.succeeded(address, username)
        return identity
    throttle.failed(address, username)
    from ..views.errors import protocol
    event = LoginEvent(repository="", actor=username.lower(), address=address, protocol=protocol(request),
                       success=False, method="password")
    pm = request.registry["plugin_manager"]
    request.add_finished_callback(lambda _request: plugins.deliver(pm, [event], request.registry))
    return None
