"""Hinkskalle REST: groups and their members (reference sections 3.7 and 4.16).

A group owns one entity (the slug of its name); members have the role admin, contributor
or readonly there (see Entity.__acl__). Reading a group needs membership (or being its
creator); changing it needs the group's admin role (or being its creator).
"""
from __future__ import annotations

from pyramid.authorization import Allow
from pyramid.view import view_config
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..errors import NotFound
from ..models import Entity, Group, Membership
from ..models.meta import utcnow
from ..models.user import ROLES
from ..resources import ROOT
from ..schemas import accounts as schemas
from ..security.permissions import Permission, group_principal, user_principal
from ..services import accounts
from .accounts import is_admin, require_login
from .common import read_json


class GroupContext:
    __parent__ = ROOT

    def __init__(self, group: Group):
        self.group = group
        self.__name__ = group.name

    def __acl__(self):
        name = self.group.name
        acl = [(Allow, group_principal(name, "admin"), (Permission.BROWSE, Permission.EDIT))]
        acl += [(Allow, group_principal(name, role), Permission.BROWSE) for role in ROLES if role != "admin"]
        if self.group.created_by:
            acl.append((Allow, user_principal(self.group.created_by), (Permission.BROWSE, Permission.EDIT)))
        return acl


def group_factory(request) -> GroupContext:
    group = accounts.find_group(request.dbsession, request.matchdict["name"])
    if group is None:
        require_login(request)
        raise NotFound(f"group {request.matchdict['name']} not found")
    return GroupContext(group)


def render_group(request, group: Group) -> dict:
    return schemas.group_json(group, can_edit=bool(request.has_permission(Permission.EDIT, GroupContext(group))))


@view_config(route_name="rest.groups", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def list_groups(request):
    # group_json reads the entity, its collections and every member: load them for all groups at once.
    query = select(Group).order_by(Group.name).options(
        selectinload(Group.entity).selectinload(Entity.collections),
        selectinload(Group.memberships).selectinload(Membership.user))
    if not is_admin(request):
        query = query.join(Membership).where(Membership.user_id == request.user.id)
    needle = request.params.get("name")
    groups = [g for g in request.dbsession.scalars(query).unique()
              if not needle or needle.lower() in g.name.lower()]
    return {"data": [render_group(request, g) for g in groups]}


@view_config(route_name="rest.groups", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def create_group(request):
    data = schemas.validate(schemas.strict(schemas.GroupCreateSchema), read_json(request))
    if not is_admin(request):
        data["quota"] = None        # the default from the settings
    group = accounts.create_group(request.dbsession, request.registry.settings, request.user, **data)
    return {"data": render_group(request, group)}


@view_config(route_name="rest.group", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def get_group(context, request):
    return {"data": render_group(request, context.group)}


@view_config(route_name="rest.group", request_method="PUT", renderer="json",
             permission=Permission.EDIT)
def update_group(context, request):
    data = schemas.validate(schemas.strict(schemas.GroupUpdateSchema), read_json(request))
    group = context.group
    if "email" in data:
        group.email = data["email"].strip().lower()
    if "description" in data:
        group.description = data["description"]
    if "quota" in data and is_admin(request):
        group.quota = data["quota"]
    if "name" in data:
        accounts.rename_group(request.dbsession, group, data["name"])
    group.updated_at = utcnow()
    request.dbsession.flush()
    return {"data": render_group(request, group)}


@view_config(route_name="rest.group", request_method="DELETE", renderer="json",
             permission=Permission.EDIT)
def delete_group(context, request):
    accounts.delete_group(request.dbsession, context.group)
    return {"status": "ok"}


def _members(group: Group) -> list[dict]:
    return [schemas.member_json(m) for m in sorted(group.memberships, key=lambda m: m.user.username)]


@view_config(route_name="rest.group_members", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def get_members(context, request):
    return {"data": _members(context.group)}


@view_config(route_name="rest.group_members", request_method="PUT", renderer="json",
             permission=Permission.EDIT)
def set_members(context, request):
    members = schemas.validate(schemas.MembersSchema(), read_json(request))
    accounts.set_members(request.dbsession, context.group, members)
    return {"data": _members(context.group)}
