"""Hinkskalle REST: password login, token status, users, self-registration, API tokens, stars.

Contexts: `/v1/users/{username}...` routes get a `UserContext` whose ACL lets the user
edit themselves; the Root grants admins everything and every logged-in account
`Permission.AUTHENTICATED`. Shapes follow reference sections 3.6-3.8 and 4.1/4.14.
"""
from __future__ import annotations

from datetime import timedelta, timezone

from pyramid.authorization import Allow
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..errors import Denied, NotFound, PreconditionFailed, Unauthorized
from ..events import LoginEvent
from ..models import Container, Entity, Group, Image, Membership, Token, User
from ..models.meta import utcnow
from ..resources import ROOT, find_by_id
from ..schemas import accounts as schemas
from ..schemas.library import containers_json
from ..security.passwords import verify_password
from ..security.permissions import Permission, user_principal
from ..security.tokens import create_token
from ..services import accounts
from .common import read_json


class UserContext:
    """A user as a resource: the user may edit themselves (profile, tokens, stars)."""

    __parent__ = ROOT

    def __init__(self, user: User):
        self.user = user
        self.__name__ = user.username

    def __acl__(self):
        return [(Allow, user_principal(self.user.username), Permission.EDIT)]


def user_factory(request) -> UserContext:
    user = accounts.find_user(request.dbsession, request.matchdict["username"])
    if user is None:
        require_login(request)
        raise NotFound(f"user {request.matchdict['username']} not found")
    return UserContext(user)


def require_login(request) -> None:
    """Anonymous callers learn nothing about which accounts or groups exist."""
    if request.identity is None:
        raise Unauthorized("Not Authorized")


def is_admin(request) -> bool:
    return request.user is not None and request.user.is_admin


def image_counts(session, user_ids: list[int]) -> dict[int, int]:
    rows = session.execute(select(Image.owner_id, func.count(Image.id))
                           .where(Image.owner_id.in_(user_ids), Image.upload_state == "completed",
                                  Image.hidden.is_(False))
                           .group_by(Image.owner_id))
    return dict(rows.all())


def render_user(request, user: User) -> dict:
    me = request.user
    can_edit = me is not None and (me.is_admin or me.id == user.id)
    return schemas.user_json(user, can_edit=can_edit,
                             image_count=image_counts(request.dbsession, [user.id]).get(user.id, 0))


# -- login ------------------------------------------------------------------------------

@view_config(route_name="rest.get_token", request_method="POST", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def get_token(request):
    """Password login: a new `auto` token whose expiry slides with every use."""
    data = schemas.validate(schemas.strict(schemas.LoginSchema), read_json(request))
    identity = request.authenticate_login(data["username"], data["password"])
    # Only passwords log in here; an API token is not a password.
    if identity is None or identity.method != "password":
        raise Unauthorized("Not Authorized")
    user = identity.user
    accounts.ensure_entity(request.dbsession, user)
    lifetime = request.registry.settings["hinkskalle.token_expiry"]
    token, secret = create_token(request.dbsession, user, source="auto", comment="login",
                                 expires_at=utcnow() + timedelta(seconds=lifetime))
    request.emit(LoginEvent(repository="", actor=user.username, address=request.client_address,
                            protocol="library", success=True, method="password"))
    return {"data": schemas.token_json(token, secret)}


@view_config(route_name="rest.token_status", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def token_status(request):
    return {"data": render_user(request, request.user), "status": "welcome"}


# -- users ------------------------------------------------------------------------------

@view_config(route_name="rest.users", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def list_users(request):
    # user_json reads every membership's group and its entity: load them for all users at once.
    query = select(User).order_by(User.username).options(
        selectinload(User.memberships).selectinload(Membership.group).selectinload(Group.entity)
        .selectinload(Entity.collections))
    needle = request.params.get("username")
    if needle:
        escaped = needle.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(User.username.like(f"%{escaped}%", escape="\\"))
    users = request.dbsession.scalars(query).all()
    counts = image_counts(request.dbsession, [u.id for u in users])
    me = request.user
    return {"data": [schemas.user_json(u, can_edit=me.is_admin or me.id == u.id,
                                       image_count=counts.get(u.id, 0)) for u in users]}


@view_config(route_name="rest.users", request_method="POST", renderer="json",
             permission=Permission.ADMIN)
def create_user(request):
    data = schemas.validate(schemas.strict(schemas.UserCreateSchema), read_json(request))
    user = accounts.create_user(
        request.dbsession, request.registry.settings, username=data["username"], email=data["email"],
        password=data["password"], is_admin=data["isAdmin"], firstname=data["firstname"],
        lastname=data["lastname"], source=data["source"], quota=data["quota"],
        created_by=request.user.username, is_active=data["isActive"],
        password_disabled=data["passwordDisabled"])
    return {"data": render_user(request, user)}


@view_config(route_name="rest.register", request_method="POST", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def register(request):
    if not request.registry.settings["hinkskalle.enable_register"]:
        raise Denied("Registration is disabled.")
    data = schemas.validate(schemas.strict(schemas.RegisterSchema), read_json(request))
    user = accounts.create_user(request.dbsession, request.registry.settings, **data)
    return {"data": schemas.user_json(user)}


@view_config(route_name="rest.user", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def get_user(context, request):
    return {"data": render_user(request, context.user)}


# Fields only admins may change, and the fields that non-local accounts keep from their source.
ADMIN_FIELDS = {"isAdmin": "is_admin", "isActive": "is_active", "source": "source",
                "passwordDisabled": "password_disabled"}


@view_config(route_name="rest.user", request_method="PUT", renderer="json",
             permission=Permission.EDIT)
def update_user(context, request):
    data = schemas.validate(schemas.strict(schemas.UserUpdateSchema), read_json(request))
    user, session, admin = context.user, request.dbsession, is_admin(request)
    for field, attr in ADMIN_FIELDS.items():
        if field in data and data[field] != getattr(user, attr):
            if not admin:
                raise Denied(f"only admins may change {field}")
            setattr(user, attr, data[field])
    if "quota" in data and admin:
        user.quota = data["quota"]
    # Accounts from LDAP (or another source) get their profile and password from there.
    if user.source == "local":
        if "password" in data:
            if not admin:
                if "oldPassword" not in data:
                    raise PreconditionFailed("Old password required")
                if not verify_password(user, data["oldPassword"]):
                    raise Denied("Old password does not match")
            accounts.set_password(user, data["password"])
        if "email" in data:
            accounts.set_email(session, user, data["email"])
        for field in ("firstname", "lastname"):
            if field in data:
                setattr(user, field, data[field])
        if "username" in data:
            accounts.rename_user(session, user, data["username"])
    user.updated_at = utcnow()
    session.flush()
    return {"data": render_user(request, user)}


@view_config(route_name="rest.user", request_method="DELETE", renderer="json",
             permission=Permission.ADMIN)
def delete_user(context, request):
    """Delete the account with its tokens and memberships; its entity and images stay."""
    request.dbsession.delete(context.user)
    request.dbsession.flush()
    return {"status": "ok"}


# -- API tokens ---------------------------------------------------------------------------

def _aware(value):
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@view_config(route_name="rest.user_tokens", request_method="GET", renderer="json",
             permission=Permission.EDIT)
def list_tokens(context, request):
    tokens = request.dbsession.scalars(select(Token).where(
        Token.user_id == context.user.id, Token.source == "manual").order_by(Token.id)).all()
    return {"data": [schemas.token_json(t) for t in tokens]}


@view_config(route_name="rest.user_tokens", request_method="POST", renderer="json",
             permission=Permission.EDIT)
def create_manual_token(context, request):
    data = schemas.validate(schemas.strict(schemas.TokenSchema), read_json(request) or {})
    token, secret = create_token(request.dbsession, context.user, source="manual",
                                 comment=data.get("comment"), expires_at=_aware(data.get("expiresAt")))
    return {"data": schemas.token_json(token, secret)}


def _token(context, request) -> Token:
    token = find_by_id(request.dbsession, Token, request.matchdict["token_id"])
    if token is None or token.user_id != context.user.id:
        raise NotFound("Invalid token id.")
    return token


@view_config(route_name="rest.user_token", request_method="PUT", renderer="json",
             permission=Permission.EDIT)
def update_token(context, request):
    token = _token(context, request)
    data = schemas.validate(schemas.strict(schemas.TokenSchema), read_json(request) or {})
    if "comment" in data:
        token.comment = data["comment"]
    if "expiresAt" in data:
        token.expires_at = _aware(data["expiresAt"])
    token.updated_at = utcnow()
    request.dbsession.flush()
    return {"data": schemas.token_json(token)}


@view_config(route_name="rest.user_token", request_method="DELETE", renderer="json",
             permission=Permission.EDIT)
def delete_token(context, request):
    request.dbsession.delete(_token(context, request))
    request.dbsession.flush()
    return {"status": "ok"}


# -- stars ------------------------------------------------------------------------------

def _readable_stars(request, user: User) -> list[dict]:
    return containers_json(request, [c for c in sorted(user.starred, key=lambda c: c.id)
                                     if request.has_permission(Permission.PULL, c)])


def _container(request) -> Container:
    container = find_by_id(request.dbsession, Container, request.matchdict["container_id"])
    if container is None:
        raise NotFound("container not found")
    return container


@view_config(route_name="rest.user_stars", request_method="GET", renderer="json",
             permission=Permission.EDIT)
def list_stars(context, request):
    return {"data": _readable_stars(request, context.user)}


@view_config(route_name="rest.user_star", request_method="POST", renderer="json",
             permission=Permission.EDIT)
def add_star(context, request):
    container = _container(request)
    if not request.has_permission(Permission.PULL, container):
        raise Denied("access denied")
    if container not in context.user.starred:
        context.user.starred.append(container)
        request.dbsession.flush()
    return {"data": _readable_stars(request, context.user)}


@view_config(route_name="rest.user_star", request_method="DELETE", renderer="json",
             permission=Permission.EDIT)
def remove_star(context, request):
    container = _container(request)
    if container not in context.user.starred:
        raise NotFound("container is not starred")
    context.user.starred.remove(container)
    request.dbsession.flush()
    return {"data": _readable_stars(request, context.user)}
