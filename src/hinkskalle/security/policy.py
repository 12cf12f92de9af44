"""The security policy: who is calling (identity), as which principals, allowed what.

Reads ``Authorization: Basic`` (username with password or API token) and ``Bearer`` (API
token, or a short-lived registry token from the docker token flow). The scheme is
case-insensitive. A malformed header raises MalformedAuthorization; credentials that are
present but wrong raise Unauthorized, so they never silently degrade to anonymous.
"""
from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.interfaces import ISecurityPolicy
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from zope.interface import implementer

from .. import plugins
from ..errors import MalformedAuthorization, Unauthorized
from ..models import Membership, User
from ..services.accounts import LoginThrottle, guarded_login
from .permissions import ADMIN_PRINCIPAL, Permission, group_principal, user_principal
from .tokens import find_token, looks_like_jwt, slide_expiry, unsign

REGISTRY_AUDIENCE = "hinkskalle-registry"
# Which registry-token action each permission needs; anything else is out of a registry token's reach.
SCOPE_ACTIONS = {
    Permission.OCI_PULL: "pull",
    Permission.PULL: "pull",
    Permission.BROWSE: "pull",
    Permission.PUSH: "push",
    Permission.DELETE: "delete",
}


# A user with the memberships and groups of its principals, in one query (built once).
USER_WITH_GROUPS = select(User).options(joinedload(User.memberships).joinedload(Membership.group)).where(
    User.username == bindparam("username"))


@dataclass(frozen=True)
class Account:
    """What permission checks need of a user; unlike a User row it may outlive its request."""
    id: int
    username: str
    is_admin: bool
    groups: tuple[tuple[str, str], ...]      # (group name, role)

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(user.id, user.username, user.is_admin,
                   tuple((m.group.name, m.role) for m in user.memberships))


class Identity:
    """Who is calling: a User row, or an Account remembered from an earlier request (whose
    row is then only loaded if a view asks for `user`)."""

    def __init__(self, user: User | None, method: str, token=None,
                 scopes: dict[str, set[str]] | None = None, *, account: Account | None = None, session=None):
        self.method = method             # "password", "token", "registry-token"
        self.token = token
        # For registry tokens: {repository path: {actions}}; None means not restricted.
        self.scopes = scopes
        self._user, self._account, self._session = user, account, session

    @property
    def user(self) -> User:
        if self._user is None:
            user = self._session.get(User, self._account.id)
            # Deleted or deactivated since its token was remembered, or the id reused since.
            if user is None or user.username != self._account.username or not user.is_active:
                raise Unauthorized("Not Authorized")
            self._user = user
        return self._user

    @property
    def account(self) -> Account:
        if self._account is None:
            self._account = Account.of(self._user)
        return self._account

    @property
    def username(self) -> str:
        return (self._account or self._user).username


class RegistryTokenCache:
    """Registry tokens seen in the last few seconds, with their user's Account.

    A docker client sends the same short-lived token with every request of a pull; checking
    its signature and loading the user with its groups each time was a third of a manifest
    GET. Entries live `ttl` seconds at most (never past the token's expiry), so deactivating
    a user or changing its groups takes effect within that time; ttl 0 turns this off.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float, clock=time.monotonic):
        self.ttl, self.clock = ttl, clock
        self.entries: dict[str, tuple[float, Account, dict]] = {}

    def get(self, token: str) -> tuple[Account, dict] | None:
        entry = self.entries.get(token)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self.entries.pop(token, None)
            return None
        return entry[1], entry[2]

    def put(self, token: str, account: Account, claims: dict) -> None:
        if self.ttl <= 0:
            return
        if len(self.entries) >= self.MAX_ENTRIES:
            self.entries.clear()     # simplest bound; refilled within one round of requests
        until = self.clock() + min(self.ttl, max(0.0, claims.get("exp", 0) - time.time()))
        self.entries[token] = (until, account, claims)


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """(scheme, credentials) with the scheme lower-cased, or None without a header."""
    if header is None or not header.strip():
        return None
    parts = header.split()
    if len(parts) == 1:
        raise MalformedAuthorization("Token not found in Authorization header")
    if len(parts) > 2:
        raise MalformedAuthorization("Too many parts in Authorization header")
    scheme = parts[0].lower()
    if scheme not in ("basic", "bearer"):
        raise MalformedAuthorization(f"Unsupported Authorization scheme {parts[0]}")
    return scheme, parts[1]


def decode_basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedAuthorization("Basic credentials are not valid base64") from None
    username, sep, secret = decoded.partition(":")
    if not sep or not username or not secret:
        raise Unauthorized("Basic credentials need a username and a password")
    return username, secret


def authenticate_password(request, username: str, secret: str) -> Identity | None:
    """Username with an API token or a password; None when neither fits."""
    token = find_token(request.dbsession, secret)
    if token is not None and token.user.username == username.lower():
        return Identity(token.user, "token", token)
    user = request.hook.hinkskalle_authenticate(request=request, username=username, password=secret)
    if user is not None and user.is_active and not user.password_disabled:
        return Identity(user, "password")
    return None


@implementer(ISecurityPolicy)
class HinkskallePolicy:
    def __init__(self):
        self.acl = ACLHelper()

    def identity(self, request) -> Identity | None:
        if "_hinkskalle_identity" not in request.__dict__:
            request.__dict__["_hinkskalle_identity"] = self._identify(request)
        return request.__dict__["_hinkskalle_identity"]

    def _identify(self, request) -> Identity | None:
        parsed = parse_authorization(request.headers.get("Authorization"))
        if parsed is None:
            return None
        scheme, credentials = parsed
        settings = request.registry.settings
        if scheme == "basic":
            username, secret = decode_basic(credentials)
            identity = request.authenticate_login(username, secret)
            if identity is None:
                raise Unauthorized("Not Authorized")
            return identity
        if looks_like_jwt(credentials):
            return self._registry_identity(request, credentials)
        token = find_token(request.dbsession, credentials)
        if token is None:
            raise Unauthorized("Not Authorized")
        slide_expiry(token, settings["hinkskalle.token_expiry"])
        return Identity(token.user, "token", token)

    def _registry_identity(self, request, credentials: str) -> Identity | None:
        cache = request.registry["registry_token_cache"]
        known = cache.get(credentials)
        if known is None:
            claims = unsign(request.registry.settings, credentials, REGISTRY_AUDIENCE)
            if claims is not None and not claims.get("sub"):
                return None           # an anonymous registry token grants nothing
            user = claims and request.dbsession.scalars(
                USER_WITH_GROUPS, {"username": claims["sub"]}).unique().one_or_none()
            if not user or not user.is_active:
                raise Unauthorized("Not Authorized")
            known = Account.of(user), claims
            cache.put(credentials, *known)
        account, claims = known
        scopes = {repo: set(actions) for repo, actions in claims.get("access", {}).items()}
        return Identity(None, "registry-token", scopes=scopes, account=account, session=request.dbsession)

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity.username if identity else None

    def principals(self, request) -> list[str]:
        identity = self.identity(request)
        if identity is None:
            return [Everyone]
        account = identity.account
        principals = [Everyone, Authenticated, user_principal(account.username)]
        if account.is_admin:
            principals.append(ADMIN_PRINCIPAL)
        principals += [group_principal(name, role) for name, role in account.groups]
        if plugins.implemented(request, "hinkskalle_principals"):    # loads the user row: only if asked
            for extra in request.hook.hinkskalle_principals(request=request, user=identity.user):
                principals += list(extra or ())
        return principals

    def permits(self, request, context, permission):
        identity = self.identity(request)
        if identity is not None and identity.scopes is not None:
            action = SCOPE_ACTIONS.get(permission)
            repository = getattr(context, "path", None)
            if permission != Permission.AUTHENTICATED and (
                    action is None or action not in identity.scopes.get(repository, ())):
                return self.acl.permits(context, [Everyone], permission)
        principals = request.__dict__.get("_hinkskalle_principals")
        if principals is None:
            principals = request.__dict__["_hinkskalle_principals"] = self.principals(request)
        return self.acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


def _authenticate_login(request, username: str, secret: str) -> Identity | None:
    # Throttled: repeated failures for one user from one address are refused for a while.
    return guarded_login(request, username, secret, authenticate_password)


def includeme(config):
    config.set_security_policy(HinkskallePolicy())
    settings = config.get_settings()
    config.registry["login_throttle"] = LoginThrottle(settings["hinkskalle.login_throttle"])
    config.registry["registry_token_cache"] = RegistryTokenCache(settings["hinkskalle.registry_token_cache"])
    config.add_request_method(_authenticate_login, "authenticate_login")
    config.add_request_method(lambda request: (request.identity.user if request.identity else None),
                              "user", reify=True)
