"""Password hashing with argon2id (argon2-cffi), with transparent re-hashing."""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_decoy: str | None = None      # a hash nobody knows the password of (see verify_decoy)


def set_hasher(hasher: PasswordHasher) -> None:
    """Tests swap in cheap parameters; production keeps argon2-cffi's defaults."""
    global _hasher, _decoy
    _hasher, _decoy = hasher, None


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


def verify_decoy(password: str) -> None:
    """Spend the time of a real check, so that an unknown account answers as slowly as a
    wrong password does (no user enumeration by timing)."""
    global _decoy
    if _decoy is None:
        _decoy = _hasher.hash(secrets.token_urlsafe(16))
    try:
        _hasher.verify(_decoy, password or "-")
    except (VerificationError, InvalidHashError):
        pass
