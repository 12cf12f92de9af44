"""Registry errors, independent of the protocol that reports them.

A view raises one of these; the exception views in `views/errors.py` render it in the
format of the protocol the request came in by: library/REST ``{"message": ...}``, OCI
``{"errors": [{"code", "message", "detail"}]}``.
"""
from __future__ import annotations


class RegistryError(Exception):
    status = 400
    code = "UNSUPPORTED"            # OCI error code
    message = "the request is invalid"

    def __init__(self, detail=None, *, status: int | None = None, code: str | None = None,
                 headers: dict | None = None, errors: dict | None = None):
        super().__init__(detail or self.message)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.errors = errors          # per-field validation messages (library format)

    @property
    def text(self) -> str:
        return str(self.detail) if self.detail is not None else self.message


class BadRequest(RegistryError):
    status, code, message = 400, "UNSUPPORTED", "bad request"


class NameInvalid(RegistryError):
    status, code, message = 400, "NAME_INVALID", "invalid repository name"


class NameUnknown(RegistryError):
    status, code, message = 404, "NAME_UNKNOWN", "repository name not known to registry"


class NotFound(RegistryError):
    status, code, message = 404, "NOT_FOUND", "not found"


class BlobUnknown(RegistryError):
    status, code, message = 404, "BLOB_UNKNOWN", "blob unknown to registry"


class BlobUploadUnknown(RegistryError):
    status, code, message = 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"


class BlobUploadInvalid(RegistryError):
    status, code, message = 400, "BLOB_UPLOAD_INVALID", "blob upload invalid"


class DigestInvalid(RegistryError):
    status, code, message = 400, "DIGEST_INVALID", "provided digest did not match uploaded content"


class SizeInvalid(RegistryError):
    status, code, message = 400, "SIZE_INVALID", "provided length did not match content length"


class ManifestUnknown(RegistryError):
    status, code, message = 404, "MANIFEST_UNKNOWN", "manifest unknown"


class ManifestInvalid(RegistryError):
    status, code, message = 400, "MANIFEST_INVALID", "manifest invalid"


class ManifestBlobUnknown(RegistryError):
    status, code, message = 400, "MANIFEST_BLOB_UNKNOWN", "manifest references a blob or manifest unknown to registry"


class RangeInvalid(RegistryError):
    status, code, message = 416, "RANGE_INVALID", "requested range not satisfiable"


class TagInvalid(RegistryError):
    status, code, message = 400, "TAG_INVALID", "manifest tag did not match URI"


class Unsupported(RegistryError):
    status, code, message = 400, "UNSUPPORTED", "the operation is unsupported"


class Unauthorized(RegistryError):
    status, code, message = 401, "UNAUTHORIZED", "authentication required"


class MalformedAuthorization(RegistryError):
    status, code, message = 400, "UNAUTHORIZED", "malformed Authorization header"


class Denied(RegistryError):
    status, code, message = 403, "DENIED", "requested access to the resource is denied"


class QuotaExceeded(RegistryError):
    status, code, message = 413, "DENIED", "quota exceeded"


class TooLarge(RegistryError):
    status, code, message = 413, "SIZE_INVALID", "request entity too large"


class Conflict(RegistryError):
    status, code, message = 409, "UNSUPPORTED", "conflict"


class PreconditionFailed(RegistryError):
    status, code, message = 412, "UNSUPPORTED", "precondition failed"


class NotAcceptable(RegistryError):
    status, code, message = 406, "UNSUPPORTED", "not acceptable"


class Unprocessable(RegistryError):
    status, code, message = 422, "DIGEST_INVALID", "unprocessable entity"


class TooManyRequests(RegistryError):
    status, code, message = 429, "TOOMANYREQUESTS", "too many requests"


class PolicyVeto(Denied):
    """A `hinkskalle_check_*` hook refused the operation; the reason reaches the client."""
