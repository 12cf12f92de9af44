"""The Sylabs library API (library://): entities, collections, containers, images, tags,
search, image downloads and the path redirects singularity relies on.

Uploads live in `library_uploads.py`. Contexts are the ORM objects themselves (their ACLs
decide); creating children through POST bodies checks PUSH on the named parent explicitly.
"""
from __future__ import annotations

import re
from urllib.parse import quote

from pyramid.httpexceptions import HTTPPermanentRedirect, HTTPSeeOther
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from ..errors import BadRequest, Denied, NotAcceptable, NotFound, PreconditionFailed
from ..models import Collection, Container, Entity, Image, Tag, User
from ..models.meta import utcnow
from ..models.names import InvalidName, check_name
from ..models.registry import SIF_MEDIA_TYPE
from ..resources import Root, find_by_id, find_container, find_entity
from ..schemas import library as schemas
from ..security.permissions import Permission
from ..security.tokens import sign, unsign
from ..services import registry
from .common import blob_response, read_json, service_url

DOWNLOAD_AUDIENCE = "hinkskalle-library-download"
HASH_REF = re.compile(r"^sha256\.([a-f0-9]{64})$")
# Library CLIs (all versions) download in parallel ranges after a 303 and follow it otherwise.
REDIRECTING_CLIENTS = ("singularity", "apptainer")


def _library_cli(request) -> bool:
    return (request.user_agent or "").lower().startswith(REDIRECTING_CLIENTS)


# -- path redirects (reference 1.5) ---------------------------------------------------

class DoubleSlashPredicate:
    """Route predicate: the path contains `//` (singularity sends `/v1/imagefile//e/c/n`)."""

    def __init__(self, value, config):
        self.value = value

    def text(self):
        return f"double_slash = {self.value}"

    phash = text

    def __call__(self, info, request):
        return ("//" in request.path) == self.value


@view_config(route_name="library.slashes", permission=NO_PERMISSION_REQUIRED)
def slashes(request):
    """`//` -> `/default/` (except right after `imagefile`), then merge the remaining ones.

    The query string is kept on both redirects (the original dropped it on the first).
    """
    path = request.path
    query = ("?" + request.query_string) if request.query_string else ""
    fixed = re.sub(r"(?<!imagefile)//", "/default/", path, count=0)
    if fixed != path:
        return HTTPPermanentRedirect(location=fixed + query)
    merged = re.sub(r"/{2,}", "/", path)
    if request.method in ("GET", "HEAD") and merged.startswith("/v1/imagefile/") and _library_cli(request):
        # Library CLIs download without following redirects (they expect 200 or 303):
        # answer for the merged path right away.
        subrequest = request.copy()
        subrequest.path_info = merged
        return request.invoke_subrequest(subrequest, use_tweens=True)
    return HTTPPermanentRedirect(location=request.application_url + merged + query)


# -- factories ------------------------------------------------------------------------

def entity_factory(request):
    name = request.matchdict.get("entity") or "default"
    entity = find_entity(request.dbsession, name)
    if entity is None:
        raise NotFound(f"entity {name} not found")
    return entity


def collection_factory(request):
    entity = entity_factory(request)
    name = request.matchdict.get("collection") or "default"
    collection = request.dbsession.scalar(select(Collection).where(
        Collection.entity_id == entity.id, func.lower(Collection.name) == name.lower()))
    if collection is None:
        raise NotFound(f"collection {entity.name}/{name} not found")
    return collection


def _by_id(request, model, key: str, label: str):
    raw = request.matchdict[key]
    found = find_by_id(request.dbsession, model, raw)
    if found is None:
        raise NotFound(f"{label} {raw} not found")
    return found


def container_id_factory(request):
    return _by_id(request, Container, "container_id", "container")


def image_id_factory(request):
    return _by_id(request, Image, "image_id", "image")


def split_ref(ref: str) -> tuple[str, str]:
    """`name`, `name:tag`, `name:sha256.<hex>` -> (container name, reference); only the first `:` splits."""
    name, _, reference = ref.partition(":")
    return name, reference or "latest"


def requested_arch(request) -> str | None:
    """`?arch=` (empty means the default), also singularity 3.7's `?arch%3Damd64` quirk."""
    arch = request.GET.get("arch")
    if arch is None:
        for key in request.GET:
            if key.startswith("arch="):
                arch = key[len("arch="):]
    return arch or None


def image_factory(request):
    """The Image a library reference names: by hash, or by tag for an architecture."""
    md = request.matchdict
    name, reference = split_ref(md["ref"])
    entity, collection = md.get("entity") or "default", md.get("collection") or "default"
    match = HASH_REF.match(reference)
    tag = None if match else (reference.lower(), requested_arch(request) or registry.default_arch(request))
    container = find_container(request.dbsession, entity, collection, name, tag=tag)   # tag too
    if container is None:
        raise NotFound(f"container {entity}/{collection}/{name} not found")
    request.library_reference = reference
    if match:
        image = registry.find_image(request.dbsession, container, "sha256:" + match.group(1))
        if image is None:
            raise NotFound(f"image with hash {reference} not found in container {container.name}")
    else:
        tag_name, arch = tag
        found = registry.find_tag(request.dbsession, container, tag_name, arch)
        if found is None or found.image is None:
            raise NotFound(f"Tag {reference} for architecture {arch} on container {container.path} not found")
        image = found.image
    # The session holds rows weakly: without this the container and the parents loaded with
    # it went with this function, and the ACL walk and the response loaded them again one by
    # one (each range of a parallel pull: 3 SELECTs instead of 2).
    image._loaded_with = container
    return image


# -- helpers --------------------------------------------------------------------------

def _ok():
    return {"status": "ok"}


def _lookup_by_id(request, model, raw, label: str):
    if not raw:
        raise BadRequest("JSON body parameters are invalid.", errors={label: "Missing data for required field."})
    found = find_by_id(request.dbsession, model, raw)
    if found is None:
        raise NotFound(f"{label} {raw} not found")
    return found


def _owner_from(request, data: dict, current: User | None) -> User | None:
    """`createdBy` in a body: admins may set any user; others only their current value."""
    if "createdBy" not in data:
        return current
    wanted = data["createdBy"]
    if current is not None and wanted == current.username:
        return current
    if not request.has_permission(Permission.ADMIN, Root(request)):
        raise Denied("only admins may change the owner")
    if wanted is None:
        return None
    user = request.dbsession.scalar(select(User).where(User.username == wanted.lower()))
    if user is None:
        raise NotFound(f"user {wanted} not found")
    return user


def _is_admin(request) -> bool:
    return bool(request.user and request.user.is_admin)


def _sticky_owner(request, entity: Entity) -> User | None:
    """What admins create inside a user's entity belongs to that user; otherwise to the caller."""
    return entity.owner if _is_admin(request) and entity.owner else request.user


def _new_owner(request, data: dict, default: User | None) -> User | None:
    """Owner of a new object: `default`, or the body's `createdBy` when an admin sends one."""
    if not _is_admin(request):
        return default or request.user
    return _owner_from(request, data, default)


# JSON field -> attribute, per kind: what create and update bodies may set.
_ENTITY_FIELDS = {"description": "description", "customData": "custom_data", "defaultPrivate": "default_private"}
_COLLECTION_FIELDS = {"description": "description", "customData": "custom_data", "private": "private"}
_CONTAINER_FIELDS = {"description": "description", "fullDescription": "full_description",
                     "customData": "custom_data", "vcsUrl": "vcs_url", "private": "private",
                     "readOnly": "read_only"}


def _apply(obj, data: dict, fields: dict[str, str]) -> None:
    for key, attr in fields.items():
        if key in data:
            setattr(obj, attr, data[key])


def _update(request, context, schema, fields: dict[str, str]) -> None:
    """PUT of an entity, collection or container: owner (admins), fields, updatedAt."""
    data = schemas.load(schema, read_json(request))
    context.owner = _owner_from(request, data, context.owner)
    _apply(context, data, fields)
    context.updated_at = utcnow()
    request.dbsession.flush()


def _name(data: dict) -> str:
    try:
        return check_name(data.get("name") or "default")
    except InvalidName as err:
        raise BadRequest("JSON body parameters are invalid.", errors={"name": str(err)}) from None


# What the permission check and the JSON of each listed row read, loaded for all rows at once
# (the owners' and groups' names come with the rows; an entity's JSON reads their quotas).
_LIST_LOADS = {
    Entity: (selectinload(Entity.owner), selectinload(Entity.group), selectinload(Entity.collections)),
    Collection: (selectinload(Collection.containers), selectinload(Collection.entity)),
    Container: (selectinload(Container.collection).selectinload(Collection.entity),),
}


# -- entities -------------------------------------------------------------------------

@view_config(route_name="library.entities", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def list_entities(request):
    entities = request.dbsession.scalars(select(Entity).order_by(Entity.name).options(*_LIST_LOADS[Entity])).all()
    return {"data": [schemas.entity_json(request, e) for e in entities
                     if request.has_permission(Permission.BROWSE, e)]}


@view_config(route_name="library.entities", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def create_entity(request):
    data = schemas.load(schemas.ENTITY_CREATE, read_json(request))
    name = _name(data)
    user = request.user
    if not _is_admin(request) and name != user.username:
        raise Denied("you may only create an entity named like your username")
    if find_entity(request.dbsession, name) is not None:
        raise PreconditionFailed(f"Entity {name} already exists")
    # Admins create entities on behalf of the user they are named after (or set createdBy).
    namesake = request.dbsession.scalar(select(User).where(User.username == name))
    entity = Entity(name=name, owner=_new_owner(request, data, namesake or user))
    _apply(entity, data, _ENTITY_FIELDS)
    request.dbsession.add(entity)
    request.dbsession.flush()
    return {"data": schemas.entity_json(request, entity)}


@view_config(route_name="library.entity", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
@view_config(route_name="library.entity_default", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def get_entity(context, request):
    return {"data": schemas.entity_json(request, context)}


@view_config(route_name="library.entity", request_method="PUT", renderer="json", permission=Permission.EDIT)
def update_entity(context, request):
    _update(request, context, schemas.ENTITY_UPDATE, _ENTITY_FIELDS)
    return {"data": schemas.entity_json(request, context)}


@view_config(route_name="library.entity", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
def delete_entity(context, request):
    if context.collections:
        raise PreconditionFailed(f"Entity {context.name} still has collections.")
    request.dbsession.delete(context)
    return _ok()


# -- collections ----------------------------------------------------------------------

@view_config(route_name="library.entity_collections", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def list_collections(context, request):
    collections = request.dbsession.scalars(select(Collection).where(Collection.entity_id == context.id)
                                            .options(*_LIST_LOADS[Collection])).all()
    return {"data": [schemas.collection_json(request, c) for c in sorted(collections, key=lambda c: c.name)
                     if request.has_permission(Permission.BROWSE, c)]}


@view_config(route_name="library.collections", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def create_collection(request):
    data = schemas.load(schemas.COLLECTION_CREATE, read_json(request), required=("entity",))
    entity = _lookup_by_id(request, Entity, data["entity"], "entity")
    if not request.has_permission(Permission.PUSH, entity):
        raise Denied("Access denied to entity.")
    name = _name(data)
    if entity.name == "default" and name in ("default", "pipeline") and not _is_admin(request):
        raise Denied(f"collection name {name} is reserved")
    if any(c.name == name for c in entity.collections):
        raise PreconditionFailed(f"Collection {name} already exists in entity {entity.name}")
    collection = Collection(name=name, entity=entity,
                            owner=_new_owner(request, data, _sticky_owner(request, entity)))
    _apply(collection, data, _COLLECTION_FIELDS)
    collection.private = bool(collection.private) or bool(entity.default_private)
    request.dbsession.add(collection)
    request.dbsession.flush()
    return {"data": schemas.collection_json(request, collection)}


@view_config(route_name="library.collection", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
@view_config(route_name="library.collection_default", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
@view_config(route_name="library.collections_default", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def get_collection(context, request):
    return {"data": schemas.collection_json(request, context)}


@view_config(route_name="library.collection", request_method="PUT", renderer="json",
             permission=Permission.EDIT)
def update_collection(context, request):
    _update(request, context, schemas.COLLECTION_UPDATE, _COLLECTION_FIELDS)
    return {"data": schemas.collection_json(request, context)}


@view_config(route_name="library.collection", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
def delete_collection(context, request):
    if context.containers:
        raise PreconditionFailed(f"Collection {context.name} still has containers.")
    request.dbsession.delete(context)
    return _ok()


# -- containers -----------------------------------------------------------------------

@view_config(route_name="library.collection_containers", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def list_containers(context, request):
    return {"data": schemas.containers_json(request, [c for c in sorted(context.containers, key=lambda c: c.name)
                                                      if request.has_permission(Permission.BROWSE, c)])}


@view_config(route_name="library.containers", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def create_container(request):
    data = schemas.load(schemas.CONTAINER_CREATE, read_json(request), required=("collection",))
    collection = _lookup_by_id(request, Collection, data["collection"], "collection")
    if not request.has_permission(Permission.PUSH, collection):
        raise Denied("Access denied to collection.")
    name = _name(data)
    if name == "default" and not data.get("name"):
        raise BadRequest("JSON body parameters are invalid.", errors={"name": "Missing data for required field."})
    if any(c.name == name for c in collection.containers):
        raise PreconditionFailed(f"Container {name} already exists in {collection.entity.name}/{collection.name}")
    container = Container(name=name, collection=collection,
                          owner=_new_owner(request, data, _sticky_owner(request, collection.entity)))
    _apply(container, data, _CONTAINER_FIELDS)
    container.private = bool(container.private) or bool(collection.private)
    request.dbsession.add(container)
    request.dbsession.flush()
    return {"data": schemas.container_json(request, container)}


@view_config(route_name="library.container", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
@view_config(route_name="library.container_short", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def get_container(context, request):
    return {"data": schemas.container_json(request, context)}


@view_config(route_name="library.container", request_method="PUT", renderer="json", permission=Permission.EDIT)
def update_container(context, request):
    _update(request, context, schemas.CONTAINER_UPDATE, _CONTAINER_FIELDS)
    return {"data": schemas.container_json(request, context)}


@view_config(route_name="library.container", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
def delete_container(context, request):
    cascade = request.GET.get("cascade", "").lower() in ("1", "true", "yes")
    if context.images and not cascade:
        raise PreconditionFailed(f"Container {context.name} still has images.")
    for image in list(context.images):
        registry.delete_image(request, image, protocol="library")
    request.dbsession.delete(context)
    return _ok()


@view_config(route_name="library.container_images", request_method="GET", renderer="json",
             permission=Permission.BROWSE)
def list_images(context, request):
    images = [i for i in context.images if not i.hidden]
    return {"data": schemas.images_json(request, sorted(images, key=lambda i: i.id))}


# -- images ---------------------------------------------------------------------------

def _check_client_wants_sif(request, image: Image) -> None:
    agent = (request.user_agent or "").lower()
    if agent.startswith("singularity") and image.media_type != SIF_MEDIA_TYPE:
        raise NotAcceptable("Not a singularity image")


def _check_present(request, image: Image) -> None:
    """A completed image whose blob is gone is reported (and stored) as broken."""
    if image.completed and not request.blobstore.exists(image.digest):
        image.upload_state = "broken"


@view_config(route_name="library.images", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def create_image(request):
    data = schemas.load(schemas.IMAGE_CREATE, read_json(request), required=("container", "hash"))
    container = _lookup_by_id(request, Container, data["container"], "container")
    if not request.has_permission(Permission.PUSH, container):
        raise Denied("Access denied to container.")
    registry.check_writable(container, "library")
    match = HASH_REF.match(data["hash"])
    if not match:
        raise BadRequest("JSON body parameters are invalid.", errors={"hash": "hash must be sha256.<hex>"})
    digest = "sha256:" + match.group(1)
    if registry.find_image(request.dbsession, container, digest) is not None:
        raise PreconditionFailed(f"Image {data['hash']} already exists in container {container.name}")
    image = Image(container=container, digest=digest, owner=request.user, media_type=SIF_MEDIA_TYPE,
                  upload_state="initialized")
    _apply(image, data, {"description": "description", "customData": "custom_data", "blob": "blob",
                         "arch": "arch", "encrypted": "encrypted", "expiresAt": "expires_at"})
    request.dbsession.add(image)
    request.dbsession.flush()
    if _readable_copy_exists(request, digest, container):
        # The same bytes are already here and the caller may read them: no upload needed.
        registry.complete_image(request, container, digest, request.blobstore.size(digest),
                                protocol="library", image=image, path=request.blobstore.path(digest))
    return {"data": schemas.image_json(request, image)}


def _readable_copy_exists(request, digest: str, container: Container) -> bool:
    """Dedup only from images the caller may pull, so knowing a hash never leaks private data."""
    if not request.blobstore.exists(digest):
        return False
    copies = request.dbsession.scalars(select(Image).where(
        Image.digest == digest, Image.upload_state == "completed", Image.container_id != container.id)).all()
    return any(request.has_permission(Permission.PULL, copy) for copy in copies)


@view_config(route_name="library.image", request_method="GET", renderer="json", permission=Permission.PULL)
@view_config(route_name="library.image_c", request_method="GET", renderer="json", permission=Permission.PULL)
@view_config(route_name="library.image_n", request_method="GET", renderer="json", permission=Permission.PULL)
def get_image(context, request):
    _check_client_wants_sif(request, context)
    _check_present(request, context)
    return {"data": schemas.image_json(request, context)}


@view_config(route_name="library.image", request_method="PUT", renderer="json", permission=Permission.EDIT)
def update_image(context, request):
    data = schemas.load(schemas.IMAGE_UPDATE, read_json(request))
    if "expiresAt" in data and data["expiresAt"] != context.expires_at \
            and (request.user is None or context.owner_id != request.user.id) and not _is_admin(request):
        raise Denied("only the uploader may change the expiry date")
    _apply(context, data, {"description": "description", "customData": "custom_data", "arch": "arch",
                           "encrypted": "encrypted", "expiresAt": "expires_at"})
    context.updated_at = utcnow()
    request.dbsession.flush()
    return {"data": schemas.image_json(request, context)}


@view_config(route_name="library.image", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
@view_config(route_name="library.image_c", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
@view_config(route_name="library.image_n", request_method="DELETE", renderer="json",
             permission=Permission.DELETE)
def delete_image(context, request):
    for tag in list(context.tags):
        if tag.manifest is None:
            registry.remove_tag(request, tag, protocol="library")
    registry.delete_image(request, context, protocol="library")
    return _ok()


def _tag_name(name) -> str:
    try:
        return check_name(name)
    except InvalidName as err:
        raise BadRequest(f"invalid tag {name}: {err}") from None


@view_config(route_name="library.image_tags", request_method="PUT", renderer="json", permission=Permission.PUSH)
def replace_image_tags(context, request):
    body = read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list) \
            or not all(isinstance(t, str) for t in body["tags"]):
        raise BadRequest("JSON body parameters are invalid.", errors={"tags": "a list of tag names is required"})
    wanted = {_tag_name(t) for t in body["tags"]}
    arch = context.arch or registry.default_arch(request)
    for tag in list(context.tags):
        if tag.name not in wanted and tag.manifest is None:
            registry.remove_tag(request, tag, protocol="library")
    for name in sorted(wanted):
        _point_tag(request, context.container, context, name, arch)
    request.dbsession.refresh(context)
    return {"data": {"tags": sorted({t.name for t in context.tags})}}


@view_config(route_name="library.image_inspect", request_method="GET", renderer="json",
             permission=Permission.PULL)
def inspect_image(context, request):
    """Definition file and SIF metadata from the stored parse (never the singularity binary)."""
    if not context.completed or not context.is_sif:
        raise NotAcceptable("Image is not an uploaded SIF image")
    info = context.sif_info or {}
    return {"data": {"attributes": {"deffile": info.get("deffile"), "labels": info.get("labels"),
                                    "partitions": info.get("partitions", []),
                                    "signatures": info.get("signatures", []),
                                    "arch": info.get("arch")}}}


# -- image downloads ------------------------------------------------------------------

def _download_url(request, image: Image) -> str:
    settings = request.registry.settings
    token = sign(settings, {"img": image.id, "digest": image.digest}, settings["hinkskalle.download_token_expiry"],
                 DOWNLOAD_AUDIENCE)
    container = image.container
    path = "/".join(quote(p) for p in (container.entity.name, container.collection.name, container.name))
    return f"{service_url(request)}/v1/imagefile/{path}:{image.hash}?download_token={token}"


def _pullable(request, image: Image) -> None:
    if not image.completed:
        raise NotFound("Image is not uploaded yet or already deleted.")
    if image.media_type != SIF_MEDIA_TYPE:
        raise NotAcceptable("Not a singularity image")
    if not request.blobstore.exists(image.digest):
        # Not marked broken here: the error rolls the request's transaction back (GET of the
        # image metadata marks it, see _check_present).
        raise NotFound("Image is not uploaded yet or already deleted.")


def _serve(request, image: Image):
    return blob_response(request, request.blobstore.path(image.digest), image.size,
                         headers={"Content-Disposition": f"attachment; filename={image.container.name}.sif",
                                  "ETag": f'"{image.digest}"', "Docker-Content-Digest": image.digest})


def _range_start(request) -> int:
    ranges = request.range
    if ranges is None:
        return 0
    start = ranges.start
    return start if start is not None and start >= 0 else -1


@view_config(route_name="library.imagefile", request_method=("GET", "HEAD"), permission=Permission.PULL)
@view_config(route_name="library.imagefile_c", request_method=("GET", "HEAD"), permission=Permission.PULL)
@view_config(route_name="library.imagefile_n", request_method=("GET", "HEAD"), permission=Permission.PULL)
def pull_image(context, request):
    """Library CLIs get a 303 to a signed, Range-capable URL of this exact image (they fetch it in
    parallel ranges); other clients get the bytes directly (with Range and HEAD)."""
    _pullable(request, context)
    if _range_start(request) == 0:
        # A download counts once: at the 303 or at the first range, not per range of a parallel download.
        registry.record_pull(request, context.container, protocol="library", digest=context.digest,
                             size=context.size, media_type=context.media_type, target="image", image=context,
                             reference=request.library_reference)
    if request.method == "GET" and request.range is None and _library_cli(request):
        return HTTPSeeOther(location=_download_url(request, context))
    return _serve(request, context)


@view_config(route_name="library.imagefile", request_method=("GET", "HEAD"), request_param="download_token",
             permission=NO_PERMISSION_REQUIRED)
def pull_image_signed(context, request):
    """The capability URL of a 303: the signature stands in for the Authorization header (clients
    do not send it to a redirect target); the pull was counted when the URL was handed out."""
    claims = unsign(request.registry.settings, request.GET["download_token"], DOWNLOAD_AUDIENCE)
    if not claims or claims.get("img") != context.id or claims.get("digest") != context.digest:
        raise Denied("download link invalid or expired")
    _pullable(request, context)
    return _serve(request, context)


# -- tags -----------------------------------------------------------------------------

def _point_tag(request, container: Container, image: Image, name: str, arch: str) -> Tag:
    """The library tagging rule: the image takes the tag's arch; the tag moves if it exists."""
    image.arch = arch
    existing = registry.find_tag(request.dbsession, container, name, arch)
    manifest = existing.manifest if existing is not None and existing.image_id == image.id else None
    return registry.set_tag(request, container, name, arch, protocol="library", image=image, manifest=manifest)


def _image_of(request, container: Container, image_id) -> Image:
    image = find_by_id(request.dbsession, Image, image_id) if isinstance(image_id, str) else None
    if image is None or image.container_id != container.id:
        raise NotFound(f"Image {image_id} not found for container {container.id}")
    return image


def _remove_tags(request, container: Container, name: str, arch: str | None) -> None:
    for tag in list(container.tags):
        if tag.name == name and (arch is None or tag.arch == arch) and tag.manifest is None:
            registry.remove_tag(request, tag, protocol="library")


def _apply_tag_map(request, container: Container, mapping, arch: str | None) -> None:
    if not isinstance(mapping, dict):
        raise BadRequest("tag map must be an object of tag -> image id")
    if arch is not None and not schemas.ARCH.match(arch):
        raise BadRequest(f"invalid architecture {arch!r}")
    for raw_name, image_id in mapping.items():
        name = _tag_name(raw_name)
        if image_id in (None, ""):
            _remove_tags(request, container, name, arch)
        else:
            image = _image_of(request, container, image_id)
            _point_tag(request, container, image, name, arch or registry.default_arch(request))


@view_config(route_name="library.tags_v1", request_method="GET", renderer="json", permission=Permission.BROWSE)
def get_tags_v1(context, request):
    return {"data": schemas.tag_maps(request, context)[0]}


@view_config(route_name="library.tags_v1", request_method="POST", renderer="json", permission=Permission.PUSH)
def set_tags_v1(context, request):
    body = read_json(request)
    if isinstance(body, dict) and "Tag" in body and "ImageID" in body:
        _apply_tag_map(request, context, {body["Tag"]: body["ImageID"]}, None)
    else:
        _apply_tag_map(request, context, body, None)
    request.dbsession.expire(context, ["tags"])
    return {"data": schemas.tag_maps(request, context)[0]}


@view_config(route_name="library.tags_v2", request_method="GET", renderer="json", permission=Permission.BROWSE)
def get_tags_v2(context, request):
    return {"data": schemas.tag_maps(request, context)[1]}


@view_config(route_name="library.tags_v2", request_method="POST", renderer="json", permission=Permission.PUSH)
def set_tags_v2(context, request):
    body = read_json(request)
    if isinstance(body, dict) and "Tag" in body and "ImageID" in body:
        arch = body.get("Arch") or registry.default_arch(request)
        if not isinstance(arch, str):
            raise BadRequest("Arch must be a string")
        _apply_tag_map(request, context, {body["Tag"]: body["ImageID"]}, arch)
    elif isinstance(body, dict):
        for arch, mapping in body.items():
            _apply_tag_map(request, context, mapping, arch or registry.default_arch(request))
    else:
        raise BadRequest("Fields must be in JSON body.")
    request.dbsession.expire(context, ["tags"])
    return {"data": schemas.tag_maps(request, context)[1]}


# -- search ---------------------------------------------------------------------------

@view_config(route_name="library.search", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def search(request):
    """Entities/collections/containers the caller may browse, images the caller may pull."""
    params = request.GET
    value = (params.get("value") or "").strip().lower()
    description = (params.get("description") or "").strip().lower()
    arches = [a for a in (params.get("arch") or "").split(",") if a]
    signed = (params.get("signed") or "").lower() == "true"
    images_only = signed or bool(arches)
    session = request.dbsession

    def like(column, text):
        return func.lower(column).contains(text, autoescape=True)

    def named(model):
        where = []
        if value:
            where.append(like(model.name, value))
        if description:
            where.append(like(model.description, description))
        return where

    result = {"entity": [], "collection": [], "container": [], "image": []}
    if not images_only:
        each = (lambda render: lambda request, rows: [render(request, row) for row in rows])
        for model, key, render in ((Entity, "entity", each(schemas.entity_json)),
                                   (Collection, "collection", each(schemas.collection_json)),
                                   (Container, "container", schemas.containers_json)):
            rows = session.scalars(select(model).where(*named(model)).order_by(model.id).limit(500)
                                   .options(*_LIST_LOADS[model])).all()
            result[key] = render(request, [row for row in rows if request.has_permission(Permission.BROWSE, row)])
    query = select(Image).join(Container).where(Image.hidden.is_(False), Image.upload_state == "completed")
    if value:
        query = query.where(or_(like(Container.name, value), Image.digest.startswith("sha256:" + value)))
    if description:
        query = query.where(or_(like(Container.description, description), like(Image.description, description)))
    if signed:
        query = query.where(Image.signed.is_(True))
    if arches:
        query = query.where(Image.arch.in_(arches))
    if _library_cli(request):
        query = query.where(Image.media_type == SIF_MEDIA_TYPE)
    # The permission check walks container, collection and entity of every image: load them together.
    parents = selectinload(Image.container).selectinload(Container.collection).selectinload(Collection.entity)
    images = session.scalars(query.order_by(Image.id).limit(500).options(selectinload(Image.tags), parents)).all()
    result["image"] = schemas.images_json(request, [i for i in images if request.has_permission(Permission.PULL, i)])
    return {"data": result}
