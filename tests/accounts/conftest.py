"""Fixtures for the accounts tests: per-test settings and logged-in callers."""
from __future__ import annotations

import pytest

from hinkskalle.testing import auth_header


@pytest.fixture
def extra_settings():
    """Settings a test changes; override with `@pytest.mark.parametrize("extra_settings", [...])`."""
    return {}


@pytest.fixture
def settings(settings, extra_settings):
    settings.update(extra_settings)
    return settings


@pytest.fixture
def users(factory, db):
    """An admin, a user and another user, each with an API token (as request headers)."""
    admin = factory.user("admin.hase", admin=True, password="admin-pw")
    user = factory.user("user.hase", password="user-pw")
    other = factory.user("other.hase", password="other-pw")
    headers = {u.username: auth_header(factory.token(u)) for u in (admin, user, other)}
    db.commit()
    return {"admin": admin, "user": user, "other": other, "headers": headers,
            "as_admin": headers["admin.hase"], "as_user": headers["user.hase"],
            "as_other": headers["other.hase"]}
