"""LDAP authentication (ldap3). Placeholder until the accounts work lands: passes every login."""
from __future__ import annotations

from ..plugins import hookimpl


@hookimpl
def hinkskalle_authenticate(request, username, password):
    return None
