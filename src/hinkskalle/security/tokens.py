"""API tokens (random secrets stored as hashes) and signed short-lived tokens (JWT)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

import jwt
from sqlalchemy import select

from ..models import Token, User
from ..models.meta import utcnow

KEY_UID_LENGTH = 12


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(dbsession, user: User, source: str = "manual", comment: str | None = None,
                 expires_at: datetime | None = None) -> tuple[Token, str]:
    """Make a token; returns (row, secret). The secret is shown once and never stored."""
    secret = secrets.token_urlsafe(48)          # 64 characters
    token = Token(user=user, key_uid=secret[:KEY_UID_LENGTH], secret_hash=_digest(secret),
                  source=source, comment=comment, expires_at=expires_at)
    dbsession.add(token)
    dbsession.flush()
    return token, secret


def find_token(dbsession, secret: str) -> Token | None:
    """The valid token row for `secret`, or None (unknown, wrong, expired, inactive user)."""
    if not secret or len(secret) < KEY_UID_LENGTH + 8:
        return None
    token = dbsession.scalar(select(Token).where(Token.key_uid == secret[:KEY_UID_LENGTH]))
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)):
        return None
    if token.expires_at is not None and token.expires_at <= utcnow():
        return None
    if not token.user.is_active:
        return None
    return token


def slide_expiry(token: Token, lifetime: int) -> None:
    """Login tokens live `lifetime` seconds after their last use; write at most once a minute."""
    if token.source != "auto":
        return
    new_expiry = utcnow() + timedelta(seconds=lifetime)
    if token.expires_at is None or new_expiry - token.expires_at > timedelta(seconds=60):
        token.expires_at = new_expiry


# -- signed tokens ------------------------------------------------------------------

def sign(settings: dict, claims: dict, lifetime: int, audience: str) -> str:
    now = datetime.now(timezone.utc)
    payload = dict(claims, iat=now, nbf=now, exp=now + timedelta(seconds=lifetime), aud=audience)
    return jwt.encode(payload, settings["hinkskalle.secret_key"], algorithm="HS256")


def unsign(settings: dict, token: str, audience: str) -> dict | None:
    """Claims of a valid signed token for `audience`, or None if forged, altered or expired."""
    try:
        return jwt.decode(token, settings["hinkskalle.secret_key"], algorithms=["HS256"],
                          audience=audience)
    except jwt.PyJWTError:
        return None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2
