"""Download links: signed, time-limited URLs that download exactly one image or manifest.

`POST /v1/get-download-token` (a reader of the object) returns a link with a
`temp_token` (an HS256 JWT with audience `hinkskalle-download`, lifetime
`hinkskalle.download_token_expiry`). Whoever holds the link may download that one object,
even a private one, until it expires; a forged, altered, expired or mismatched token is
refused. Without a token the download routes follow the container's ACL like any pull.
"""
from __future__ import annotations

import json
import time

from pyramid.authorization import Allow, Everyone
from pyramid.view import view_config

from ..errors import BadRequest, Denied, NotAcceptable, NotFound, Unauthorized
from ..models import Image, Manifest
from ..models.registry import SIF_MEDIA_TYPE
from ..schemas import accounts as schemas
from ..resources import find_by_id
from ..security.permissions import Permission
from ..security.tokens import sign, unsign
from ..services import accounts
from ..services.registry import find_image, record_pull
from .accounts import is_admin
from .common import blob_response, read_json, service_url

AUDIENCE = "hinkskalle-download"
TITLE = "org.opencontainers.image.title"
MODELS = {"image": Image, "manifest": Manifest}
# A manifest is served like an OCI pull (logged-in readers), an image like a library pull.
PERMISSIONS = {"image": Permission.PULL, "manifest": Permission.OCI_PULL}


class DownloadGrant:
    """The context of a download with a valid link: anyone may fetch this one object."""

    def __init__(self, target):
        self.target = target
        self.__parent__ = target.container
        self.__name__ = "download"
        self.__acl__ = [(Allow, Everyone, (Permission.PULL, Permission.OCI_PULL))]


def _find(request, kind: str, object_id: str):
    found = find_by_id(request.dbsession, MODELS[kind], object_id)
    if found is None:
        raise NotFound(f"{kind} {object_id} not found")
    return found


def download_factory(kind: str):
    def factory(request):
        target = _find(request, kind, request.matchdict["id"])
        temp_token = request.params.get("temp_token")
        if temp_token is None:
            return target          # its container's ACL decides, as for any pull
        claims = unsign(request.registry.settings, temp_token, AUDIENCE)
        if claims is None:
            raise Unauthorized("Not Authorized")
        if claims.get("type") != kind or claims.get("id") != str(target.id) \
                or claims.get("digest") != target.digest:
            raise NotAcceptable("download token is not valid for this object")
        signer = accounts.find_user(request.dbsession, str(claims.get("sub", "")))
        if signer is None or not signer.is_active:
            raise Unauthorized("Not Authorized")
        return DownloadGrant(target)
    return factory


@view_config(route_name="rest.download_token", request_method="POST", renderer="json",
             permission=Permission.AUTHENTICATED)
def get_download_token(request):
    data = schemas.validate(schemas.strict(schemas.DownloadTokenSchema), read_json(request))
    settings = request.registry.settings
    if (data["username"] is not None or data["exp"] is not None) and not is_admin(request):
        raise Denied("cannot override username and expiration date")
    target = _find(request, data["type"], data["id"])
    # Only someone who may download the object can hand out a link to it.
    if not request.has_permission(PERMISSIONS[data["type"]], target):
        raise Denied("access denied")
    username = request.user.username
    if data["username"] is not None:
        signer = accounts.find_user(request.dbsession, data["username"])
        if signer is None:
            raise NotFound(f"user {data['username']} not found")
        username = signer.username
    lifetime = settings["hinkskalle.download_token_expiry"]
    if data["exp"] is not None:
        lifetime = data["exp"] - int(time.time())
        if lifetime <= 0:
            raise BadRequest("exp lies in the past")
    # The digest too: ids of deleted rows can come back (SQLite), the link must not follow them.
    claims = {"id": str(target.id), "digest": target.digest, "type": data["type"], "sub": username}
    token = sign(settings, claims, lifetime, AUDIENCE)
    path = "manifests/{}/download" if data["type"] == "manifest" else "download/images/{}"
    location = f"{service_url(request)}/v1/{path.format(target.id)}?temp_token={token}"
    request.response.status_int = 202
    request.response.headers["Location"] = location
    return {"location": location}


def _target(context):
    return context.target if isinstance(context, DownloadGrant) else context


def _serve(request, container, image: Image, *, filename: str, manifest: Manifest | None = None):
    if not image.completed:
        raise NotAcceptable("image upload is not complete")
    if not request.blobstore.exists(image.digest):
        raise NotFound("image data is gone")
    record_pull(request, container, protocol="library", digest=image.digest, size=image.size,
                media_type=image.media_type, target="image", image=image, manifest=manifest)
    return blob_response(request, request.blobstore.path(image.digest), image.size, headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Docker-Content-Digest": image.digest})


@view_config(route_name="rest.image_download", request_method=("GET", "HEAD"), permission=Permission.PULL)
def download_image(context, request):
    image = _target(context)
    suffix = ".sif" if image.media_type == SIF_MEDIA_TYPE else ""
    return _serve(request, image.container, image, filename=f"{image.container.name}_{image.hash}{suffix}")


@view_config(route_name="rest.manifest_download", request_method=("GET", "HEAD"), permission=Permission.OCI_PULL)
def download_manifest(context, request):
    """The single layer of a SIF or ORAS manifest, named by its title annotation."""
    manifest = _target(context)
    try:
        layers = json.loads(manifest.content).get("layers") or []
    except (ValueError, AttributeError):
        layers = []
    if len(layers) != 1 or not isinstance(layers[0], dict):
        raise NotAcceptable("only manifests with exactly one layer can be downloaded")
    layer = layers[0]
    filename = (layer.get("annotations") or {}).get(TITLE)
    if not filename or "/" in filename or '"' in filename:
        raise NotAcceptable("manifest layer has no usable file name")
    image = find_image(request.dbsession, manifest.container, str(layer.get("digest")))
    if image is None:
        raise NotFound("manifest layer not found")
    return _serve(request, manifest.container, image, filename=filename, manifest=manifest)
