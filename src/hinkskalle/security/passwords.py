"""Password hashing with argon2id (argon2-cffi), with transparent re-hashing."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def set_hasher(hasher: PasswordHasher) -> None:
    """Tests swap in cheap parameters; production keeps argon2-cffi's defaults."""
    global _hasher
    _hasher = hasher


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user, password: str, dbsession=None) -> bool:
    if not user.password_hash or not password:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True
