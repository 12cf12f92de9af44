"""OCI distribution-spec v1.1: blobs, manifests, tags, referrers and the catalog.

Upload sessions are in `oci_uploads.py`, login and route factories in `oci_auth.py`.
Reading needs OCI_PULL on the repository, writing PUSH, deleting DELETE; the context is the
Container (or, for writes that may create it, a PendingPath below its nearest ancestor).
"""
from __future__ import annotations

from urllib.parse import urlencode

from pyramid.interfaces import ISecurityPolicy
from pyramid.response import Response
from pyramid.authorization import Authenticated
from pyramid.view import view_config
from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.exc import IntegrityError

from ..errors import BadRequest, BlobUnknown, ManifestUnknown
from ..models import Collection, Container, Entity, Group, Manifest, Tag, User
from ..models.user import ROLES
from ..resources import oci_container_factory
from ..security.permissions import ADMIN_PRINCIPAL, Permission
from ..services import manifests, registry
from .common import blob_response, body_chunks, service_url

CHUNK_MIN_LENGTH = 1024 * 1024      # advertised as OCI-Chunk-Min-Length
CATALOG_PAGE = 1000                 # most repositories per catalog page (Link header for more)


def repository_url(request, container: Container, suffix: str) -> str:
    """Absolute URL below a repository, always with the full three-part name."""
    return f"{service_url(request)}/v2/{container.path}/{suffix}"


def push_container(request, context) -> Container:
    """The container a write goes to, creating its path if needed (the caller checked PUSH)."""
    if isinstance(context, Container):
        registry.check_writable(context, "oci")
        return context
    private = request.GET.get("private", "").lower() in ("1", "true", "yes")
    try:
        with request.dbsession.begin_nested():
            return registry.ensure_container(request, context, private=private)
    except IntegrityError:
        # A parallel push (docker pushes layers concurrently) created the path first.
        return oci_container_factory(request)


# -- blobs -----------------------------------------------------------------------------

@view_config(route_name="oci.blob", permission=Permission.OCI_PULL, request_method=("GET", "HEAD"))
def blob_get(context, request):
    digest = manifests.check_digest(request.matchdict["digest"])
    image = registry.find_image(request.dbsession, context, digest)
    store = request.blobstore
    if image is None or not image.completed or not store.exists(digest):
        raise BlobUnknown(f"blob {digest} not found")
    registry.record_pull(request, context, protocol="oci", digest=digest, size=image.size,
                         media_type=image.media_type, target="blob", image=image)
    return blob_response(request, store.path(digest), image.size,
                         headers={"Docker-Content-Digest": digest})


@view_config(route_name="oci.blob", permission=Permission.DELETE, request_method="DELETE")
def blob_delete(context, request):
    registry.check_writable(context, "oci")
    digest = manifests.check_digest(request.matchdict["digest"])
    image = registry.find_image(request.dbsession, context, digest)
    if image is None:
        raise BlobUnknown(f"blob {digest} not found")
    registry.delete_image(request, image, protocol="oci")
    return Response(status=202)


# -- manifests -------------------------------------------------------------------------

def _acceptable(request, media_type: str) -> bool:
    """Content negotiation: without an Accept header (or with a wildcard) anything goes."""
    offered = {item.split(";")[0].strip().lower()
               for item in request.headers.get("Accept", "").split(",")} - {""}
    return not offered or bool(offered & {"*/*", "application/*", media_type})


@view_config(route_name="oci.manifest", permission=Permission.OCI_PULL, request_method=("GET", "HEAD"))
def manifest_get(context, request):
    reference = request.matchdict["reference"]
    manifest = manifests.resolve(request, context, reference)
    if manifest is None:
        raise ManifestUnknown(f"manifest {reference} not found")
    if not _acceptable(request, manifest.media_type):
        raise ManifestUnknown(f"manifest {reference} is a {manifest.media_type}, which the client does not accept")
    registry.record_pull(request, context, protocol="oci", digest=manifest.digest, size=manifest.size,
                         media_type=manifest.media_type, target="manifest", manifest=manifest,
                         reference=reference)
    response = Response(body=manifest.content)
    response.headers["Content-Type"] = manifest.media_type
    response.headers["Docker-Content-Digest"] = manifest.digest
    response.etag = manifest.digest
    return response


@view_config(route_name="oci.manifest", permission=Permission.PUSH, request_method="PUT")
def manifest_put(context, request):
    limit = request.registry.settings["hinkskalle.max_manifest_size"]
    body = b"".join(body_chunks(request, limit=limit))
    container = push_container(request, context)
    manifest = manifests.push(request, container, request.matchdict["reference"], body,
                              request.headers.get("Content-Type"))
    response = Response(status=201)
    response.headers["Location"] = repository_url(request, container, f"manifests/{manifest.digest}")
    response.headers["Docker-Content-Digest"] = manifest.digest
    if manifest.subject:
        response.headers["OCI-Subject"] = manifest.subject
    return response


@view_config(route_name="oci.manifest", permission=Permission.DELETE, request_method="DELETE")
def manifest_delete(context, request):
    registry.check_writable(context, "oci")
    reference = request.matchdict["reference"]
    if not manifests.delete(request, context, reference):
        raise ManifestUnknown(f"manifest {reference} not found")
    return Response(status=202)


# -- content discovery -----------------------------------------------------------------

def _page_size(request) -> int | None:
    """The `n` query parameter, or None without one."""
    if "n" not in request.GET:
        return None
    try:
        n = int(request.GET["n"])
    except ValueError:
        raise BadRequest("n must be a number") from None
    if n < 0:
        raise BadRequest("n must not be negative")
    return n


def _next_link(route_path: str, n: int, last: str) -> dict:
    return {"Link": f'<{route_path}?{urlencode({"n": n, "last": last})}>; rel="next"'}


def _page(request, names: list[str], route_path: str) -> tuple[list[str], dict]:
    """One page of sorted `names` after `last`, at most `n`, and a Link header for the rest."""
    last = request.GET.get("last")
    if last is not None:
        names = [name for name in names if name > last]
    headers = {}
    n = _page_size(request)
    if n is not None:
        if 0 < n < len(names):
            headers = _next_link(route_path, n, names[n - 1])
        names = names[:n]
    return names, headers


def _json(body: dict, headers: dict, content_type: str = "application/json") -> Response:
    response = Response(json_body=body)
    response.headers["Content-Type"] = content_type
    response.headers.update(headers)
    return response


@view_config(route_name="oci.tags", permission=Permission.OCI_PULL, request_method=("GET", "HEAD"))
def tags_list(context, request):
    names = sorted(set(request.dbsession.scalars(
        select(Tag.name).where(Tag.container_id == context.id))))
    name = request.matchdict["name"]
    names, headers = _page(request, names, f"/v2/{name}/tags/list")
    return _json({"name": name, "tags": names}, headers)


@view_config(route_name="oci.catalog", permission=Permission.AUTHENTICATED, request_method=("GET", "HEAD"))
def catalog(request):
    """Repositories the caller may pull from or browse, by their full three-part name.

    Ordered by (entity, collection, container) name and paged after `last` in SQL.
    """
    policy = request.registry.queryUtility(ISecurityPolicy)
    # The catalog lists what the account may see, whatever scopes a registry token names.
    principals = policy.principals(request)
    n = _page_size(request)
    if n == 0:
        return _json({"repositories": []}, {})
    limit = min(n or CATALOG_PAGE, CATALOG_PAGE)
    last = request.GET.get("last")
    names = _catalog_page(request.dbsession, visible_containers(principals),
                          last.split("/", 2) if last is not None else [], limit + 1)
    headers = {}
    if len(names) > limit:
        names = names[:limit]
        headers = _next_link("/v2/_catalog", limit, names[-1])
    return _json({"repositories": names}, headers)


def _catalog_page(session, visible, last: list[str], count: int) -> list[str]:
    """Up to `count` visible names after `last` (its 0-3 name parts), in name order.

    Walks entity, collection and container names level by level, each a range on a
    unique (parent, name) index, so a page costs the same at any number of repositories
    (one query ordering all three names makes SQLite scan and sort every container).
    """
    names: list[str] = []

    def take(collection_id, after=None):
        query = (select(Entity.name, Collection.name, Container.name).select_from(Container)
                 .join(Container.collection).join(Collection.entity)
                 .where(Container.collection_id == collection_id, visible)
                 .order_by(Container.name).limit(count - len(names)))
        if after is not None:
            query = query.where(Container.name > after)
        names.extend("/".join(row) for row in session.execute(query))
        return len(names) >= count

    def collections(entity_id, after=None):
        return _ordered_ids(session, Collection, Collection.entity_id == entity_id, after)

    entity, collection, container = (last + [None, None, None])[:3]
    if entity is not None:
        found = session.scalar(select(Entity.id).where(Entity.name == entity))
        if found is not None:
            if collection is not None:
                current = session.scalar(select(Collection.id).where(
                    Collection.entity_id == found, Collection.name == collection))
                if current is not None and take(current, container):
                    return names
            for collection_id in collections(found, collection):
                if take(collection_id):
                    return names
    for entity_id in _ordered_ids(session, Entity, true(), entity):
        for collection_id in collections(entity_id):
            if take(collection_id):
                return names
    return names


def _ordered_ids(session, model, where, after, batch: int = 100):
    """Ids of `model` rows matching `where` with a name after `after`, in name order."""
    while True:
        query = select(model.id, model.name).where(where).order_by(model.name).limit(batch)
        if after is not None:
            query = query.where(model.name > after)
        rows = session.execute(query).all()
        yield from (row.id for row in rows)
        if len(rows) < batch:
            return
        after = rows[-1].name


def visible_containers(principals: list[str]):
    """SQL condition: the container grants OCI_PULL or BROWSE to one of `principals`.

    Mirrors the ACLs of models/registry.py (which only allow, never deny), so it equals
    `ACLHelper.permits` on each row; tests/oci/test_catalog.py compares the two.
    """
    if ADMIN_PRINCIPAL in principals:
        return true()
    conditions = []
    if Authenticated in principals:
        conditions += [and_(Container.private.is_(False), Collection.private.is_(False)),
                       Entity.name == "default"]
    usernames = [p.split(":", 1)[1] for p in principals if p.startswith("user:")]
    if usernames:
        owners = select(User.id).where(User.username.in_(usernames)).scalar_subquery()
        conditions += [Container.owner_id.in_(owners), Collection.owner_id.in_(owners),
                       Entity.owner_id.in_(owners)]
    groups = {p.split(":")[1] for p in principals
              if p.startswith("group:") and p.count(":") == 2 and p.rsplit(":", 1)[1] in ROLES}
    if groups:
        conditions.append(Entity.group_id.in_(select(Group.id).where(Group.name.in_(groups)).scalar_subquery()))
    return or_(*conditions) if conditions else false()


@view_config(route_name="oci.referrers", permission=Permission.OCI_PULL, request_method=("GET", "HEAD"))
def referrers(context, request):
    digest = manifests.check_digest(request.matchdict["digest"])
    query = select(Manifest).where(Manifest.container_id == context.id, Manifest.subject == digest)
    artifact_type = request.GET.get("artifactType")
    found = request.dbsession.scalars(query.order_by(Manifest.id)).all()
    descriptors = []
    for manifest in found:
        kind = manifest.artifact_type or (manifest.config_media_type
                                          if manifest.media_type in manifests.MANIFEST_TYPES else None)
        if artifact_type and kind != artifact_type:
            continue
        descriptor = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
        if kind:
            descriptor["artifactType"] = kind
        if manifest.annotations:
            descriptor["annotations"] = manifest.annotations
        descriptors.append(descriptor)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": descriptors}
    return _json(body, headers, content_type=manifests.OCI_INDEX)
