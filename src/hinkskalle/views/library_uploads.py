"""Library image uploads: v1 raw POST, v2 single upload (start, upload URL, `_complete`) and
v2 multipart (`_multipart` start and part URLs, `_multipart_complete`, `_multipart_abort`).

Upload URLs are capability URLs: a random UUID that names one upload (or part) session of one
image, valid until the session expires (`hinkskalle.upload_expiry` after its last activity).
Bytes stream into the blob store's partial files; nothing becomes a visible image before its
size and sha256 match what the image announced.

Every request on an upload locks its Upload row first (`_locked`), the body PUTs for as long
as they write. Completing therefore waits for writes in flight, and a write that comes later
finds the upload completed: no byte lands in the file after it was hashed and published as
a content-addressed blob (which other users' pushes of the same digest would then share).
"""
from __future__ import annotations

import math
import secrets
import uuid
from datetime import timedelta

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import select

from ..errors import BadRequest, Denied, NotAcceptable, NotFound, Unprocessable
from ..models import Image, Upload, UploadPart
from ..models.meta import utcnow
from ..schemas import library as schemas
from ..security.permissions import Permission
from ..services import quotas, registry
from ..services import storage
from .common import body_chunks, read_json, service_url

SINGLE, MULTIPART = "library-single", "library-multipart"


def _expires(request):
    return utcnow() + timedelta(seconds=request.registry.settings["hinkskalle.upload_expiry"])


def _upload_url(request, session_id: str) -> str:
    return f"{service_url(request)}/v2/imagefile/_upload/{session_id}"


def _thanks() -> Response:
    return Response("Danke!", content_type="text/plain")


def _stored(etag: str) -> Response:
    """What an object store answers to a PUT of an upload URL: 200, the ETag, and no body.
    (The original server sent "Danke!": Go's HTTP client does not read a body it does not
    need, and then cannot reuse the connection, so every part came on a new connection,
    to any of the server's processes, and lost the running hash of the one before.)"""
    response = Response(status=200, content_type=None)
    response.headers["ETag"] = etag
    return response


def _finish(request, image: Image, digest: str, size: int) -> Image:
    """Make the verified blob the image: quotas, plugin veto, SIF parse, push event."""
    container = image.container
    registry.complete_image(request, container, digest, size, protocol="library", image=image,
                            path=request.blobstore.path(digest))
    error = (image.sif_info or {}).get("error")
    if error:
        raise Unprocessable(f"not a valid SIF image: {error}")
    return image


def _completion(request, image: Image) -> dict:
    user = request.user
    container = image.container
    return {"data": {
        "quota": {"quotaTotal": (user.quota or 0) if user else 0, "quotaUsage": (user.used_quota or 0) if user else 0},
        "containerUrl": f"entities/{container.entity.name}/collections/{container.collection.name}"
                        f"/containers/{container.name}",
    }}


def _check_push(request, image: Image) -> None:
    registry.check_writable(image.container, "library")


# -- v1 -------------------------------------------------------------------------------

@view_config(route_name="library.upload_v1", request_method="POST", permission=Permission.PUSH)
def upload_v1(context, request):
    """The whole file as the request body."""
    _check_push(request, context)
    try:
        digest, size = request.blobstore.ingest(body_chunks(request), expected_digest=context.digest)
    except storage.DigestMismatch as err:
        raise Unprocessable(f"Image hash {context.hash} does not match: {err.actual}") from None
    _finish(request, context, digest, size)
    return _thanks()


# -- v2 single ------------------------------------------------------------------------

def _announced(context, data: dict) -> None:
    sha = data.get("sha256sum")
    if sha and "sha256:" + sha.lower() != context.digest:
        raise Unprocessable(f"announced sha256 {sha} does not match image hash {context.hash}")


def _quota_precheck(request, context: Image, size) -> None:
    if size is not None:
        if size < 0:
            raise BadRequest("filesize must not be negative")
        quotas.check(request.dbsession, request.user, context.container.entity, context.digest, size)


@view_config(route_name="library.upload_v2", request_method="POST", renderer="json", permission=Permission.PUSH)
def start_upload(context, request):
    _check_push(request, context)
    data = schemas.load(schemas.UPLOAD_START, read_json(request) or {})
    _announced(context, data)
    _quota_precheck(request, context, data.get("filesize"))
    upload = Upload(id=str(uuid.uuid4()), kind=SINGLE, container=context.container, image=context,
                    owner=request.user, expected_digest=context.digest, expected_size=data.get("filesize"),
                    expires_at=_expires(request))
    request.dbsession.add(upload)
    request.dbsession.flush()
    return {"data": {"uploadURL": _upload_url(request, upload.id)}}


def _receive(request, session_id: str, expected_size: int | None, expected_sha256: str | None) -> tuple[int, str]:
    """Stream the body into the session's partial file; verify size and sha256 (422)."""
    store = request.blobstore
    try:
        size = store.append(session_id, body_chunks(request), offset=0, limit=expected_size)
        digest = store.upload_digest(session_id)
    except storage.TooLarge:
        store.discard_upload(session_id)
        raise Unprocessable(f"upload is larger than the announced size {expected_size}") from None
    except BaseException:
        store.discard_upload(session_id)
        raise
    if expected_size is not None and size != expected_size:
        store.discard_upload(session_id)
        raise Unprocessable(f"Image size {size} does not match announced size: {expected_size}")
    hexdigest = digest.removeprefix("sha256:")
    if expected_sha256 and hexdigest != expected_sha256.lower():
        store.discard_upload(session_id)
        raise Unprocessable(f"sha256 {hexdigest} does not match the announced {expected_sha256}")
    return size, hexdigest


def _receive_part(request, part: UploadPart) -> int:
    """Write a part straight into its place in the upload's file (no reassembly copy later)."""
    upload = part.upload
    part.state = "uploading"
    try:
        size = request.blobstore.write_at(upload.id, body_chunks(request),
                                          (part.part_number - 1) * upload.part_size,
                                          limit=part.expected_size, expected_sha256=part.expected_sha256)
    except storage.TooLarge:
        raise Unprocessable(f"part {part.part_number} is larger than {part.expected_size} bytes") from None
    except storage.DigestMismatch as err:
        raise Unprocessable(f"sha256 {err.actual} of part {part.part_number} does not match {err.expected}") from None
    if size != part.expected_size:
        raise Unprocessable(f"part {part.part_number} has {size} bytes, not {part.expected_size}")
    return size


def _locked(request, upload_id: str) -> Upload | None:
    """The upload, its row locked until this request's transaction ends (and read afresh)."""
    return request.dbsession.get(Upload, upload_id, with_for_update=True, populate_existing=True)


def _alive(upload: Upload) -> None:
    if upload.state in ("completed", "failed"):
        raise NotAcceptable(f"Upload {upload.id} has invalid state {upload.state}")
    if upload.expires_at <= utcnow():
        raise NotAcceptable("Upload already expired. Please to be faster.")


@view_config(route_name="library.upload_put", request_method="PUT", permission=NO_PERMISSION_REQUIRED)
def put_upload(request):
    """The capability URL of a single upload or a multipart part. The ETag is the sha256 of the
    upload, or of the part when the client announced it; else an opaque token of this write."""
    session_id = request.matchdict["upload_id"]
    try:
        uuid.UUID(session_id)
    except ValueError:
        raise NotFound(f"upload {session_id} not found") from None
    session = request.dbsession
    # A part's URL names the part: lock its upload first, then read the part afresh.
    part_of = session.scalar(select(UploadPart.upload_id).where(UploadPart.id == session_id))
    upload = _locked(request, part_of or session_id)
    if upload is None or (part_of is None and upload.kind != SINGLE):
        raise NotFound(f"upload {session_id} not found")
    if part_of is None:
        _alive(upload)
        if upload.state == "uploaded":
            raise NotAcceptable(f"Upload {upload.id} has invalid state {upload.state}")
        sha = upload.expected_digest.removeprefix("sha256:")
        size, hexdigest = _receive(request, upload.id, upload.expected_size, sha)
        upload.size, upload.state, upload.updated_at = size, "uploaded", utcnow()
        upload.expires_at = _expires(request)
        return _stored(hexdigest)
    part = session.get(UploadPart, session_id, populate_existing=True)
    _alive(upload)
    part.size = _receive_part(request, part)
    part.etag, part.state = part.expected_sha256 or secrets.token_hex(32), "uploaded"
    upload.updated_at, upload.expires_at = utcnow(), _expires(request)
    return _stored(part.etag)


def _own_upload(request, upload: Upload) -> None:
    if request.user is None or (upload.owner_id != request.user.id and not request.user.is_admin):
        raise Denied("this upload belongs to somebody else")


@view_config(route_name="library.upload_complete", request_method="PUT", renderer="json",
             permission=Permission.PUSH)
def complete_upload(context, request):
    _check_push(request, context)
    read_json(request)
    found = request.dbsession.scalar(
        select(Upload.id).where(Upload.image_id == context.id, Upload.kind == SINGLE, Upload.state == "uploaded")
        .order_by(Upload.updated_at.desc()).limit(1))
    upload = _locked(request, found) if found is not None else None
    if upload is None or upload.state != "uploaded":
        raise NotFound(f"No valid upload for {context.id} found")
    _own_upload(request, upload)
    _alive(upload)
    digest, size = _commit(request, upload)
    _finish(request, context, digest, size)
    upload.state = "completed"
    return _completion(request, context)


def _commit(request, upload: Upload) -> tuple[str, int]:
    try:
        return request.blobstore.commit_upload(upload.id, upload.expected_digest, upload.expected_size)
    except (storage.DigestMismatch, storage.SizeMismatch) as err:
        request.blobstore.discard_upload(upload.id)
        raise Unprocessable(str(err)) from None


# -- v2 multipart ---------------------------------------------------------------------

def _multipart(request, context: Image, upload_id) -> Upload:
    if not upload_id:
        raise BadRequest("JSON body parameters are invalid.", errors={"uploadID": "Missing data for required field."})
    upload = _locked(request, upload_id) if isinstance(upload_id, str) else None
    if upload is None or upload.image_id != context.id:
        raise NotFound(f"upload {upload_id} not found")
    if upload.kind != MULTIPART:
        raise NotAcceptable(f"upload {upload_id} is not a multipart upload")
    return upload


@view_config(route_name="library.multipart", request_method="POST", renderer="json", permission=Permission.PUSH)
def start_multipart(context, request):
    _check_push(request, context)
    data = schemas.load(schemas.MULTIPART_START, read_json(request), required=("filesize",))
    filesize = data["filesize"]
    if filesize <= 0:
        raise BadRequest("filesize must be positive")
    _quota_precheck(request, context, filesize)
    part_size = request.registry.settings["hinkskalle.multipart_chunk"]
    upload = Upload(id=str(uuid.uuid4()), kind=MULTIPART, container=context.container, image=context,
                    owner=request.user, expected_digest=context.digest, expected_size=filesize,
                    part_size=part_size, total_parts=math.ceil(filesize / part_size),
                    expires_at=_expires(request))
    request.dbsession.add(upload)
    request.dbsession.flush()
    # s3compliant "false": the client then sends parts without a sha256 of their own. It
    # hashes each part before sending it (a third pass over the file after its md5 and
    # sha256 pre-pass), and we hashed it a second time; yet it aborts the whole upload on
    # any failed part, so a per-part check only moves the failure it would catch to
    # completion, where the sha256 of the whole file is checked anyway. Parts that come
    # with a sha256 are still checked.
    return {"data": {"uploadID": upload.id, "partSize": part_size, "totalParts": upload.total_parts,
                     "options": {"s3compliant": "false"}}}


def _expected_part_size(upload: Upload, number: int) -> int:
    if number < upload.total_parts:
        return upload.part_size
    return upload.expected_size - upload.part_size * (upload.total_parts - 1)


@view_config(route_name="library.multipart", request_method="PUT", renderer="json", permission=Permission.PUSH)
def request_part(context, request):
    _check_push(request, context)
    data = schemas.load(schemas.MULTIPART_PART, read_json(request), required=("uploadID", "partNumber"))
    upload = _multipart(request, context, data["uploadID"])
    _own_upload(request, upload)
    _alive(upload)
    number = data["partNumber"]
    if not 1 <= number <= upload.total_parts:
        raise NotAcceptable(f"part number {number} is out of range 1-{upload.total_parts}")
    expected = _expected_part_size(upload, number)
    if data.get("partSize") is not None and data["partSize"] != expected:
        raise Unprocessable(f"part {number} must be {expected} bytes, not {data['partSize']}")
    part = next((p for p in upload.parts if p.part_number == number), None)
    if part is None:
        part = UploadPart(id=str(uuid.uuid4()), upload=upload, part_number=number)
        request.dbsession.add(part)
    part.expected_size = expected
    part.expected_sha256 = (data.get("sha256sum") or "").lower() or None
    upload.state, upload.updated_at, upload.expires_at = "uploading", utcnow(), _expires(request)
    request.dbsession.flush()
    return {"data": {"presignedURL": _upload_url(request, part.id)}}


def _completed_parts(body) -> dict[int, str]:
    parts = body.get("completedParts") if isinstance(body, dict) else None
    if parts is None:
        return {}
    if not isinstance(parts, list):
        raise BadRequest("completedParts must be a list")
    tokens: dict[int, str] = {}
    for entry in parts:
        if not isinstance(entry, dict) or not isinstance(entry.get("partNumber"), int):
            raise BadRequest("completedParts entries need a partNumber")
        if entry["partNumber"] in tokens:
            raise BadRequest(f"part {entry['partNumber']} listed twice")
        tokens[entry["partNumber"]] = str(entry.get("token") or "").strip('"').lower()
    return tokens


@view_config(route_name="library.multipart_complete", request_method="PUT", renderer="json",
             permission=Permission.PUSH)
def complete_multipart(context, request):
    _check_push(request, context)
    body = read_json(request)
    data = schemas.load(schemas.MULTIPART_ID, body, required=("uploadID",))
    upload = _multipart(request, context, data["uploadID"])
    _own_upload(request, upload)
    _alive(upload)
    tokens = _completed_parts(body)
    by_number = {p.part_number: p for p in upload.parts}
    store = request.blobstore
    for number in range(1, upload.total_parts + 1):
        part = by_number.get(number)
        if part is None or part.state != "uploaded":
            raise NotAcceptable(f"Part {number} not uploaded yet")
        if tokens and tokens.get(number) != part.etag:
            raise Unprocessable(f"ETag of part {number} does not match")
    if tokens and set(tokens) - set(by_number):
        raise NotAcceptable("completedParts names parts that were never requested")
    if store.upload_size(upload.id) != upload.expected_size:
        raise NotAcceptable("upload data is missing, upload the parts again")
    digest, size = _commit(request, upload)
    _finish(request, context, digest, size)
    upload.state = "completed"
    for part in upload.parts:
        part.state = "completed"
    return _completion(request, context)


@view_config(route_name="library.multipart_abort", request_method="PUT", permission=Permission.PUSH)
def abort_multipart(context, request):
    data = schemas.load(schemas.MULTIPART_ID, read_json(request), required=("uploadID",))
    upload = _multipart(request, context, data["uploadID"])
    _own_upload(request, upload)
    for part in upload.parts:
        part.state = "failed"
    request.blobstore.discard_upload(upload.id)
    upload.state = "failed"
    if not context.completed:
        context.upload_state = "failed"
    return Response("Sorry it did not work out", content_type="text/plain")
