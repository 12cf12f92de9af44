"""Account operations shared by the REST API, the CLI and logins."""
from __future__ import annotations

from sqlalchemy import func, select

from ..models import Entity, User
from ..models.names import InvalidName, check_name
from ..security.passwords import hash_password


class AccountError(ValueError):
    pass


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
