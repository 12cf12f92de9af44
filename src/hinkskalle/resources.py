"""The root of the resource tree, route factories and repository name mapping.

Library routes name entity/collection/container explicitly (with `default` for the short
forms); OCI routes carry a 1-3 segment name. Both end up with the same `Container` as the
request context, so the same ACL decides.
"""
from __future__ import annotations

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated
from sqlalchemy import and_, bindparam, select

from .errors import NameInvalid, NameUnknown, NotFound
from .models import Collection, Container, Entity, Manifest, Tag
from .models.names import OCI_COMPONENT
from .security.permissions import ADMIN_PRINCIPAL, READ, WRITE, Permission, user_principal


class Root:
    __name__ = ""
    __parent__ = None
    __acl__ = [
        (Allow, ADMIN_PRINCIPAL, ALL_PERMISSIONS),
        (Allow, Authenticated, Permission.AUTHENTICATED),
    ]

    def __init__(self, request=None):
        self.request = request

    def __getitem__(self, name):
        entity = find_entity(self.request.dbsession, name)
        if entity is None:
            raise KeyError(name)
        return entity


ROOT = Root()


def root_factory(request):
    return Root(request)


def find_entity(dbsession, name: str) -> Entity | None:
    return dbsession.scalar(select(Entity).where(Entity.name == name.lower()))


def find_by_id(dbsession, model, raw):
    """The row of `model` whose id is `raw` (URL text or JSON value), or None: also for values
    no id column can hold (non-ASCII digits, more than 18 digits, booleans)."""
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return dbsession.get(model, int(text))


# The ACL walk needs the parents (and the names of their owners and group, which come as
# columns of their rows). One flat row of all three puts them in the session, where the
# many-to-one relationships find them without SQL: half the cost of eager-loading them.
# Built once with bound parameters.
CONTAINER_BY_NAMES = select(Container, Collection, Entity).join(Container.collection).join(
    Collection.entity).where(
    Entity.name == bindparam("entity"),
    Collection.name == bindparam("collection"),
    Container.name == bindparam("container"))


# The same with one tag and its manifest: a manifest or image read by tag needs one query.
CONTAINER_WITH_TAG = CONTAINER_BY_NAMES.add_columns(Tag, Manifest).outerjoin(Tag, and_(
    Tag.container_id == Container.id, Tag.name == bindparam("tag"), Tag.arch == bindparam("arch"))
).outerjoin(Manifest, Manifest.id == Tag.manifest_id)


def find_container(dbsession, entity: str, collection: str, container: str,
                   tag: tuple[str, str] | None = None) -> Container | None:
    """The container with its parents; with `tag` (name, arch) that tag and its manifest too,
    found or not (see `take_found_tag`)."""
    names = {"entity": entity.lower(), "collection": collection.lower(), "container": container.lower()}
    if tag is None:
        row = dbsession.execute(CONTAINER_BY_NAMES, names).first()
    else:
        row = dbsession.execute(CONTAINER_WITH_TAG, dict(names, tag=tag[0], arch=tag[1])).first()
    if row is None:
        return None
    found = row[0]
    found._loaded_with = tuple(row)[1:]   # the session holds rows weakly: keep the parents
    if tag is not None:
        found._tags_found = {tag: row[3]}
    return found


def take_found_tag(container: Container, name: str, arch: str):
    """(True, the tag or None) where `find_container` looked this tag up, else (False, None).
    Once: later lookups in the request go to the database, which may have changed since."""
    found = getattr(container, "_tags_found", {})
    if (name, arch) not in found:
        return False, None
    return True, found.pop((name, arch))


def split_oci_name(name: str) -> tuple[str, str, str]:
    """Map an OCI repository name of 1-3 segments to (entity, collection, container)."""
    parts = name.split("/")
    if len(parts) > 3 or not all(OCI_COMPONENT.match(p) for p in parts):
        raise NameInvalid(f"name {name} is illegal")
    while len(parts) < 3:
        parts.insert(0, "default")
    return parts[0], parts[1], parts[2]


class PendingEntity:
    """An entity that a push would create: only its namesake user (and admins) may."""

    __parent__ = ROOT

    def __init__(self, name: str):
        self.__name__ = name
        self.name = name

    @property
    def __acl__(self):
        return [(Allow, user_principal(self.name), READ + WRITE)]


class PendingPath:
    """A container path that does not exist (yet) below its nearest existing ancestor.

    It inherits that ancestor's ACL, so "may push here" means "may create inside the
    ancestor"; the service creates the missing levels once the push is allowed.
    """

    __acl__: list = []

    def __init__(self, parent, entity: str, collection: str, container: str):
        self.__parent__ = parent
        self.__name__ = container
        self.names = (entity, collection, container)

    @property
    def path(self) -> str:
        return "/".join(self.names)


def resolve_path(request, entity: str, collection: str, container: str):
    """The Container, or a PendingPath below the nearest existing ancestor."""
    found = find_container(request.dbsession, entity, collection, container)
    if found is not None:
        return found
    parent = find_entity(request.dbsession, entity)
    if parent is None:
        parent = PendingEntity(entity.lower())
    else:
        try:
            parent = parent[collection]
        except KeyError:
            pass
    return PendingPath(parent, entity.lower(), collection.lower(), container.lower())


def library_path(request) -> tuple[str, str, str]:
    md = request.matchdict
    return (md.get("entity") or "default", md.get("collection") or "default", md["container"])


def library_container_factory(request):
    """Context for library routes that name an existing container."""
    names = library_path(request)
    found = find_container(request.dbsession, *names)
    if found is None:
        raise NotFound(f"container {'/'.join(names)} not found")
    return found


def oci_container_factory(request, tag: tuple[str, str] | None = None):
    """Context for OCI routes on an existing repository (with `tag`: see find_container)."""
    names = split_oci_name(request.matchdict["name"])
    found = find_container(request.dbsession, *names, tag=tag)
    if found is None:
        raise NameUnknown(f"repository {request.matchdict['name']} not found")
    return found


def oci_push_factory(request):
    """Context for OCI routes that may create the repository (upload start)."""
    return resolve_path(request, *split_oci_name(request.matchdict["name"]))
