"""Local accounts: passwords hashed with argon2id in the `user` table."""
from __future__ import annotations

from sqlalchemy import select

from ..models import User
from ..plugins import hookimpl
from ..security.passwords import verify_decoy, verify_password


@hookimpl(trylast=True)
def hinkskalle_authenticate(request, username, password):
    user = request.dbsession.scalar(select(User).where(User.username == username.lower()))
    if user is None or user.source != "local" or not user.password_hash:
        verify_decoy(password)
        return None
    if verify_password(user, password, request.dbsession):
        return user
    return None
