"""Input schemas and JSON shapes of users, groups and tokens (reference sections 3.6-3.8).

Input is validated with colander; unknown fields are refused (`unknown="raise"`), so a typo
never silently does nothing. Output is built by plain functions: ids as strings,
datetimes in ISO 8601 with offset, `deleted`/`deletedAt` as Sylabs compatibility fields.
"""
from __future__ import annotations

from datetime import datetime, timezone

import colander

from ..errors import BadRequest
from ..models import Group, Token, User
from ..models.names import InvalidName, check_name
from ..models.user import ROLES
from .library import BIGINT_MAX, utc_datetime

QUOTA_RANGE = colander.Range(min=0, max=BIGINT_MAX)


def _name(node, value):
    try:
        check_name(value)
    except InvalidName as err:
        raise colander.Invalid(node, str(err)) from None


class LoginSchema(colander.MappingSchema):
    username = colander.SchemaNode(colander.String(), validator=colander.Length(min=1, max=255))
    password = colander.SchemaNode(colander.String(), validator=colander.Length(min=1, max=4096))


class UserCreateSchema(colander.MappingSchema):
    username = colander.SchemaNode(colander.String(), validator=_name)
    email = colander.SchemaNode(colander.String(), validator=colander.Email())
    firstname = colander.SchemaNode(colander.String(), missing="")
    lastname = colander.SchemaNode(colander.String(), missing="")
    password = colander.SchemaNode(colander.String(), missing=None, validator=colander.Length(min=1))
    isAdmin = colander.SchemaNode(colander.Boolean(), missing=False)
    isActive = colander.SchemaNode(colander.Boolean(), missing=True)
    passwordDisabled = colander.SchemaNode(colander.Boolean(), missing=False)
    source = colander.SchemaNode(colander.String(), missing="local")
    quota = colander.SchemaNode(colander.Integer(), missing=None, validator=QUOTA_RANGE)


class RegisterSchema(colander.MappingSchema):
    username = colander.SchemaNode(colander.String(), validator=_name)
    email = colander.SchemaNode(colander.String(), validator=colander.Email())
    firstname = colander.SchemaNode(colander.String())
    lastname = colander.SchemaNode(colander.String())
    password = colander.SchemaNode(colander.String(), validator=colander.Length(min=1))


class UserUpdateSchema(colander.MappingSchema):
    """Partial update: absent fields are left alone (`colander.drop`)."""
    username = colander.SchemaNode(colander.String(), validator=_name, missing=colander.drop)
    email = colander.SchemaNode(colander.String(), validator=colander.Email(), missing=colander.drop)
    firstname = colander.SchemaNode(colander.String(), missing=colander.drop)
    lastname = colander.SchemaNode(colander.String(), missing=colander.drop)
    password = colander.SchemaNode(colander.String(), validator=colander.Length(min=1), missing=colander.drop)
    oldPassword = colander.SchemaNode(colander.String(), missing=colander.drop)
    isAdmin = colander.SchemaNode(colander.Boolean(), missing=colander.drop)
    isActive = colander.SchemaNode(colander.Boolean(), missing=colander.drop)
    passwordDisabled = colander.SchemaNode(colander.Boolean(), missing=colander.drop)
    source = colander.SchemaNode(colander.String(), missing=colander.drop)
    quota = colander.SchemaNode(colander.Integer(), validator=QUOTA_RANGE, missing=colander.drop)
    # Read-only fields the frontend sends back with the object; ignored.
    id = colander.SchemaNode(colander.String(), missing=colander.drop)


class TokenSchema(colander.MappingSchema):
    comment = colander.SchemaNode(colander.String(), missing=colander.drop)
    expiresAt = colander.SchemaNode(colander.DateTime(), missing=colander.drop, validator=utc_datetime)


# Group names are free text, but must stay addressable in a URL path segment.
GROUP_NAME = colander.All(colander.Length(min=1, max=255),
                          colander.Regex(r"^[^/\\]+$", "group names cannot contain slashes"))


class GroupCreateSchema(colander.MappingSchema):
    name = colander.SchemaNode(colander.String(), validator=GROUP_NAME)
    email = colander.SchemaNode(colander.String(), validator=colander.Email())
    description = colander.SchemaNode(colander.String(), missing=None)
    quota = colander.SchemaNode(colander.Integer(), missing=None, validator=QUOTA_RANGE)


class GroupUpdateSchema(colander.MappingSchema):
    name = colander.SchemaNode(colander.String(), validator=GROUP_NAME, missing=colander.drop)
    email = colander.SchemaNode(colander.String(), validator=colander.Email(), missing=colander.drop)
    description = colander.SchemaNode(colander.String(), missing=colander.drop)
    quota = colander.SchemaNode(colander.Integer(), validator=QUOTA_RANGE, missing=colander.drop)
    id = colander.SchemaNode(colander.String(), missing=colander.drop)


class MemberUserSchema(colander.MappingSchema):
    username = colander.SchemaNode(colander.String())


class MemberSchema(colander.MappingSchema):
    role = colander.SchemaNode(colander.String(), validator=colander.OneOf(ROLES))
    user = MemberUserSchema(colander.Mapping(unknown="ignore"))   # the frontend sends whole users


class MembersSchema(colander.SequenceSchema):
    member = MemberSchema(colander.Mapping(unknown="raise"))


class DownloadTokenSchema(colander.MappingSchema):
    type = colander.SchemaNode(colander.String(), validator=colander.OneOf(("manifest", "image")))
    id = colander.SchemaNode(colander.String(), validator=colander.Regex(r"^\d{1,18}$", "must be a numeric id"))
    username = colander.SchemaNode(colander.String(), missing=None)
    # Unix time; at most the last second of year 9999 (datetimes end there).
    exp = colander.SchemaNode(colander.Integer(), missing=None, validator=colander.Range(max=253402300799))


class AdmSchema(colander.MappingSchema):
    val = colander.SchemaNode(colander.Mapping(unknown="preserve"))


def validate(schema: colander.SchemaNode, data):
    """Deserialize `data` or raise a library-style 400 naming each bad field."""
    if data is None:
        raise BadRequest("Fields must be in JSON body.")
    if isinstance(schema, colander.MappingSchema) and not isinstance(data, dict):
        raise BadRequest("JSON body must be an object.")
    if isinstance(schema, colander.SequenceSchema) and not isinstance(data, list):
        raise BadRequest("JSON body must be a list.")
    try:
        return schema.deserialize(data)
    except colander.Invalid as err:
        errors = {key or "_schema": value for key, value in err.asdict().items()}
        raise BadRequest("JSON body parameters are invalid.", errors=errors) from None


def strict(schema_class) -> colander.SchemaNode:
    """An instance of a mapping schema that refuses unknown keys."""
    return schema_class(colander.Mapping(unknown="raise"))


# -- output -------------------------------------------------------------------------

def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _compat(obj) -> dict:
    return {
        "createdAt": iso(obj.created_at),
        "createdBy": getattr(obj, "created_by", None),
        "updatedAt": iso(obj.updated_at),
        "deletedAt": None,
        "deleted": False,
    }


def user_json(user: User, *, can_edit: bool = False, with_groups: bool = True,
              image_count: int | None = None) -> dict:
    data = {
        "id": str(user.id),
        "username": user.username,
        "email": user.email,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "isAdmin": user.is_admin,
        "isActive": user.is_active,
        "passwordDisabled": user.password_disabled,
        "source": user.source,
        "quota": user.quota,
        "used_quota": user.used_quota,
        "image_count": image_count or 0,
        "canEdit": can_edit,
        **_compat(user),
    }
    if with_groups:
        data["groups"] = [{"role": m.role, "group": group_json(m.group, with_users=False)}
                          for m in sorted(user.memberships, key=lambda m: m.group.name)]
    return data


def member_json(membership) -> dict:
    user = membership.user
    return {"role": membership.role, "user": {
        "id": str(user.id), "username": user.username, "email": user.email,
        "firstname": user.firstname, "lastname": user.lastname,
        "isActive": user.is_active, "isAdmin": user.is_admin}}


def group_json(group: Group, *, can_edit: bool = False, with_users: bool = True) -> dict:
    entity = group.entity
    data = {
        "id": str(group.id),
        "name": group.name,
        "email": group.email,
        "description": group.description,
        "quota": group.quota,
        "used_quota": entity.used_quota if entity is not None else 0,
        "image_count": 0,
        "entityRef": entity.name if entity is not None else None,
        "collections": len(entity.collections) if entity is not None else 0,
        "canEdit": can_edit,
        **_compat(group),
    }
    if with_users:
        data["users"] = [{"role": m.role, "user": user_json(m.user, with_groups=False)}
                         for m in sorted(group.memberships, key=lambda m: m.user.username)]
    return data


def token_json(token: Token, secret: str | None = None) -> dict:
    data = {
        "id": str(token.id),
        "key_uid": token.key_uid,
        "comment": token.comment,
        "source": token.source,
        "expiresAt": iso(token.expires_at),
        "user": user_json(token.user),
        **_compat(token),
    }
    data["createdBy"] = token.user.username
    if secret is not None:
        data["generatedToken"] = secret
    return data
