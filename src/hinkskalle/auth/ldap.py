"""LDAP authentication (ldap3), a built-in plugin (`hinkskalle.plugins.disabled = ldap` turns it off).

A login searches the user below `hinkskalle.ldap.base_dn` with `user_filter` (the name
escaped for LDAP filters), checks the password by binding as the entry found, and creates
or updates the local account (source `ldap`) from the mapped attributes. Accounts of
another source are never taken over: their name is left to the local method. When the
server cannot be reached, local accounts still log in and LDAP users get a 503.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RegistryError, Unauthorized
from ..models import User
from ..models.meta import utcnow
from ..models.names import InvalidName, check_name, slugify
from ..plugins import hookimpl
from ..services.accounts import AccountError, create_user, find_user, set_email

# ldap3 (with pyasn1, ~5 MiB) is imported where it is used: most servers never talk to LDAP.
if TYPE_CHECKING:
    import ldap3


class LdapUnavailable(RegistryError):
    status, code, message = 503, "UNAVAILABLE", "the LDAP server is not available"


@dataclass(frozen=True)
class LdapProfile:
    dn: str
    username: str
    email: str
    firstname: str
    lastname: str


class Directory:
    """The LDAP server as configured in the `hinkskalle.ldap.*` settings."""

    def __init__(self, settings: dict):
        self.settings = settings
        self.timeout = settings["hinkskalle.ldap.timeout"]
        self.attributes = {field: settings[f"hinkskalle.ldap.attr_{field}"]
                           for field in ("username", "email", "firstname", "lastname")}

    def _server(self) -> ldap3.Server:
        import ldap3
        return ldap3.Server(self.settings["hinkskalle.ldap.url"].rstrip("/"), connect_timeout=self.timeout,
                            get_info=ldap3.NONE)

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        import ldap3
        return ldap3.Connection(self._server(), user=user or None, password=password or None,
                                receive_timeout=self.timeout, read_only=True, raise_exceptions=False)

    def _service(self) -> ldap3.Connection:
        """A connection bound as the search account (anonymous without a bind DN)."""
        from ldap3.core.exceptions import LDAPException
        try:
            conn = self._connection(self.settings["hinkskalle.ldap.bind_dn"],
                                    self.settings["hinkskalle.ldap.bind_password"])
            if not conn.bind():
                raise LdapUnavailable(f"LDAP bind failed: {conn.result.get('description')}")
        except LDAPException as err:
            raise LdapUnavailable(f"LDAP server unavailable: {type(err).__name__}") from None
        return conn

    def ping(self) -> None:
        self._service().unbind()

    def search(self, ldap_filter: str) -> list[LdapProfile | str]:
        """Profiles of the entries matching `ldap_filter`; entries lacking a name or email
        come back as their DN (a string) so that callers can report them."""
        from ldap3.core.exceptions import LDAPException
        conn = self._service()
        try:
            conn.search(self.settings["hinkskalle.ldap.base_dn"], ldap_filter,
                        attributes=list(self.attributes.values()))
            entries = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
            conn.unbind()
        except LDAPException as err:
            raise LdapUnavailable(f"LDAP search failed: {type(err).__name__}") from None
        return [self._profile(entry) for entry in entries]

    def _profile(self, entry: dict) -> LdapProfile | str:
        attrs = entry.get("attributes", {})

        def first(field: str) -> str:
            value = attrs.get(self.attributes[field])
            if isinstance(value, (list, tuple)):
                value = value[0] if value else ""
            return str(value or "").strip()

        username, email = first("username"), first("email")
        if not username or not email:
            return entry["dn"]
        return LdapProfile(dn=entry["dn"], username=username, email=email,
                           firstname=first("firstname"), lastname=first("lastname"))

    def find_user(self, username: str) -> LdapProfile | None:
        from ldap3.utils.conv import escape_filter_chars
        user_filter = self.settings["hinkskalle.ldap.user_filter"].replace(
            "{username}", escape_filter_chars(username))
        found = [p for p in self.search(user_filter) if isinstance(p, LdapProfile)]
        return found[0] if len(found) == 1 else None

    def check_password(self, dn: str, password: str) -> bool:
        from ldap3.core.exceptions import LDAPException
        if not password:    # an empty password would be an anonymous bind, which "succeeds"
            return False
        try:
            conn = self._connection(dn, password)
            ok = bool(conn.bind())
            conn.unbind()
            return ok
        except LDAPException as err:
            raise LdapUnavailable(f"LDAP server unavailable: {type(err).__name__}") from None


def local_name(username: str) -> str:
    """The local username of an LDAP name (names that fail our rules are slugified with dots)."""
    try:
        return check_name(username)
    except InvalidName:
        return check_name(slugify(username, "."))


def sync_user(session, settings: dict, profile: LdapProfile) -> User:
    """Create or update the local account of an LDAP entry; AccountError on a name conflict."""
    username = local_name(profile.username)
    user = find_user(session, username)
    if user is not None and user.source != "ldap":
        raise AccountError(f"user {username} exists as a {user.source} account")
    if user is None:
        return create_user(session, settings, username=username, email=profile.email,
                           firstname=profile.firstname, lastname=profile.lastname,
                           source="ldap", created_by="ldap")
    set_email(session, user, profile.email)
    user.firstname, user.lastname = profile.firstname, profile.lastname
    user.updated_at = utcnow()
    session.flush()
    return user


def sync_all(session, settings: dict) -> dict:
    """Import every entry of the `all_users_filter`: {"synced", "conflict", "failed"} lists."""
    result = {"synced": [], "conflict": [], "failed": []}
    for profile in Directory(settings).search(settings["hinkskalle.ldap.all_users_filter"]):
        if isinstance(profile, str):
            result["failed"].append(profile)
            continue
        # Every refusal happens before anything is written, so one bad entry spoils nothing.
        try:
            user = sync_user(session, settings, profile)
        except AccountError:
            result["conflict"].append(profile.dn)
            continue
        except (RegistryError, InvalidName):
            result["failed"].append(profile.dn)
            continue
        result["synced"].append(user.username)
    return result


@hookimpl
def hinkskalle_authenticate(request, username, password):
    settings = request.registry.settings
    if not settings["hinkskalle.ldap.enabled"] or not password:
        return None
    try:
        local = find_user(request.dbsession, local_name(username))
    except InvalidName:
        return None
    if local is not None and local.source != "ldap":
        return None        # a local account's name cannot be taken over through LDAP
    directory = Directory(settings)
    profile = directory.find_user(username)
    if profile is None:
        return None
    if not directory.check_password(profile.dn, password):
        raise Unauthorized("Not Authorized")
    return sync_user(request.dbsession, settings, profile)
