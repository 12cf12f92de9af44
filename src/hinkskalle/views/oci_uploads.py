"""OCI blob uploads: sessions (POST, PATCH chunks, status GET, PUT to close, DELETE to
cancel), single-request POST with a digest, and cross-repository mounts.

A session is an `Upload` row (kind "oci") plus its partial file in the blob store, so it
survives a restart and continues in any process sharing database and store. Session URLs
need the same credentials as the push that opened them (no capability URLs).
"""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy import select

from ..errors import (BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, NameInvalid,
                      RangeInvalid, SizeInvalid)
from ..models import Container, Upload
from ..models.meta import utcnow
from ..resources import find_container, split_oci_name
from ..security.permissions import Permission
from ..services import manifests, registry
from ..services.storage import DigestMismatch, SizeMismatch
from .common import body_chunks
from .oci import CHUNK_MIN_LENGTH, push_container, repository_url

CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _blob_created(request, container: Container, digest: str) -> Response:
    response = Response(status=201)
    response.headers["Location"] = repository_url(request, container, f"blobs/{digest}")
    response.headers["Docker-Content-Digest"] = digest
    return response


def _progress_headers(request, upload: Upload) -> dict:
    """Where a session stands: its URL, the bytes received (`Range`, inclusive) and its id."""
    return {
        "Location": repository_url(request, upload.container, f"blobs/uploads/{upload.id}"),
        "Range": f"0-{max(upload.size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _progress(request, upload: Upload, status: int) -> Response:
    response = Response(status=status)
    response.headers.update(_progress_headers(request, upload))
    return response


def finish_blob(request, container: Container, digest: str, size: int) -> None:
    """Register a blob that is now in the store as an image of `container` (quota, veto, event)."""
    existing = registry.find_image(request.dbsession, container, digest)
    if existing is not None and existing.completed:
        request.blobstore.touch(digest)
        return
    # A new blob's type is unknown until a manifest names it; an existing row keeps its own.
    registry.complete_image(request, container, digest, size, protocol="oci", target="blob",
                            media_type=None if existing is not None else manifests.BLOB_MEDIA_TYPE,
                            image=existing, path=request.blobstore.path(digest))


# -- start -----------------------------------------------------------------------------

def _mount(request, container: Container, digest: str, source_name: str) -> bool:
    """Share a blob of another repository the caller may read; False if that is not possible."""
    try:
        source = find_container(request.dbsession, *split_oci_name(source_name))
    except NameInvalid:
        return False
    if source is None or not request.has_permission(Permission.OCI_PULL, source):
        return False
    image = registry.find_image(request.dbsession, source, digest)
    if image is None or not image.completed or not request.blobstore.exists(digest):
        return False
    if registry.find_image(request.dbsession, container, digest) is None:
        registry.complete_image(request, container, digest, image.size, protocol="oci",
                                target="blob", media_type=image.media_type,
                                path=request.blobstore.path(digest))
    return True


@view_config(route_name="oci.uploads", permission=Permission.PUSH, request_method="POST")
def upload_start(context, request):
    mount, source, digest = request.GET.get("mount"), request.GET.get("from"), request.GET.get("digest")
    if digest is not None and not (mount and source):
        # Single-request upload: the whole blob is the body. It is stored before the
        # repository path is created, so no database write waits for the bytes.
        manifests.check_digest(digest)
        try:
            digest, size = request.blobstore.ingest(body_chunks(request), expected_digest=digest,
                                                    expected_size=request.content_length)
        except DigestMismatch as err:
            raise DigestInvalid(str(err)) from None
        except SizeMismatch as err:
            raise SizeInvalid(str(err)) from None
        container = push_container(request, context)
        finish_blob(request, container, digest, size)
        return _blob_created(request, container, digest)
    container = push_container(request, context)
    if mount and source and _mount(request, container, manifests.check_digest(mount), source):
        return _blob_created(request, container, mount)
    now = utcnow()
    upload = Upload(id=str(uuid.uuid4()), kind="oci", state="initialized", container=container,
                    owner=request.user, size=0, created_at=now, updated_at=now,
                    expires_at=now + timedelta(seconds=request.registry.settings["hinkskalle.upload_expiry"]))
    request.dbsession.add(upload)
    request.dbsession.flush()
    response = _progress(request, upload, 202)
    response.headers["OCI-Chunk-Min-Length"] = str(CHUNK_MIN_LENGTH)
    return response


# -- session ---------------------------------------------------------------------------

def find_upload(request, container: Container) -> Upload:
    """The open session named in the URL, locked for this request."""
    upload_id = request.matchdict["upload_id"]
    upload = None
    if UPLOAD_ID.match(upload_id):
        upload = request.dbsession.scalar(select(Upload).where(Upload.id == upload_id).with_for_update())
    if (upload is None or upload.kind != "oci" or upload.container_id != container.id
            or upload.expires_at < utcnow()):
        raise BlobUploadUnknown(f"upload {upload_id} not found")
    return upload


def _receive(request, upload: Upload) -> None:
    """Append the request body at the session's end, checking `Content-Range` if present."""
    header = request.headers.get("Content-Range")
    expected = None
    if header:
        match = CONTENT_RANGE.match(header.strip())
        if not match:
            raise BlobUploadInvalid(f"invalid Content-Range {header!r}")
        start, end = int(match.group(1)), int(match.group(2))
        if start != upload.size or end < start:
            raise RangeInvalid(f"chunk must start at byte {upload.size}",
                               headers=_progress_headers(request, upload))
        expected = end - start + 1
        if request.content_length is not None and request.content_length != expected:
            raise SizeInvalid("Content-Length does not match Content-Range")
    written = request.blobstore.append(upload.id, body_chunks(request), offset=upload.size)
    if expected is not None and written != expected:
        raise SizeInvalid(f"received {written} bytes, Content-Range announced {expected}")
    now = utcnow()
    upload.size += written
    upload.state = "uploading"
    upload.updated_at = now
    upload.expires_at = now + timedelta(seconds=request.registry.settings["hinkskalle.upload_expiry"])


@view_config(route_name="oci.upload", permission=Permission.PUSH, request_method="PATCH")
def upload_chunk(context, request):
    upload = find_upload(request, context)
    _receive(request, upload)
    return _progress(request, upload, 202)


@view_config(route_name="oci.upload", permission=Permission.PUSH, request_method="GET")
def upload_status(context, request):
    return _progress(request, find_upload(request, context), 204)


@view_config(route_name="oci.upload", permission=Permission.PUSH, request_method="PUT")
def upload_close(context, request):
    digest = manifests.check_digest(request.GET.get("digest"))
    upload = find_upload(request, context)
    if request.content_length or request.headers.get("Transfer-Encoding"):
        _receive(request, upload)
    try:
        digest, size = request.blobstore.commit_upload(upload.id, expected_digest=digest,
                                                       expected_size=upload.size)
    except DigestMismatch as err:
        raise DigestInvalid(str(err)) from None
    except SizeMismatch as err:
        raise BlobUploadInvalid(str(err)) from None
    finish_blob(request, context, digest, size)
    request.dbsession.delete(upload)
    return _blob_created(request, context, digest)


@view_config(route_name="oci.upload", permission=Permission.PUSH, request_method="DELETE")
def upload_cancel(context, request):
    upload = find_upload(request, context)
    request.blobstore.discard_upload(upload.id)
    request.dbsession.delete(upload)
    return Response(status=204)
