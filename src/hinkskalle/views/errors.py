"""Exception views: every error in the format of the protocol the request came in by."""
from __future__ import annotations

import logging

from pyramid.httpexceptions import HTTPException, HTTPForbidden, HTTPNotFound
from pyramid.response import Response
from pyramid.view import exception_view_config, forbidden_view_config, notfound_view_config
from sqlalchemy.exc import DataError

from ..errors import BadRequest, RegistryError, Unauthorized
from .common import service_url

log = logging.getLogger(__name__)


def protocol(request) -> str:
    route = request.matched_route
    name = route.name if route is not None else ""
    if name.startswith("oci.") or (not name and request.path.startswith("/v2/")
                                   and not request.path.startswith(("/v2/imagefile", "/v2/tags"))):
        return "oci"
    return "library"


def challenge(request) -> str:
    """The WWW-Authenticate header for this request's protocol."""
    base = service_url(request)
    if protocol(request) == "oci":
        scope = request.__dict__.get("oci_scope")
        value = f'Bearer realm="{base}/v2/token",service="{request.host}"'
        return value + (f',scope="{scope}"' if scope else "")
    return f'Bearer realm="{base}/v2/"'


def render_error(request, error: RegistryError) -> Response:
    if protocol(request) == "oci":
        body = {"errors": [{"code": error.code, "message": error.message, "detail": error.detail}]}
    else:
        body = {"message": error.text}
        if error.errors:
            body["errors"] = error.errors
    response = Response(status=error.status, json_body=body)
    for key, value in error.headers.items():
        response.headers[key] = value
    if error.status == 401:
        response.headers["WWW-Authenticate"] = challenge(request)
    return response


@exception_view_config(RegistryError)
def registry_error(exc, request):
    # pyramid_tm aborts the transaction of any request that ended in an exception view,
    # so a failed request never commits half of its work.
    return render_error(request, exc)


@forbidden_view_config()
def forbidden(exc, request):
    try:
        anonymous = request.identity is None
    except RegistryError as err:
        return render_error(request, err)
    if anonymous:
        return render_error(request, Unauthorized("authentication required"))
    return render_error(request, RegistryError("access denied", status=403, code="DENIED"))


@notfound_view_config()
def not_found(exc, request):
    return render_error(request, RegistryError("Not Found", status=404, code="NOT_FOUND"))


@exception_view_config(HTTPException)
def http_exception(exc, request):
    if isinstance(exc, (HTTPForbidden, HTTPNotFound)):
        return forbidden(exc, request) if isinstance(exc, HTTPForbidden) else not_found(exc, request)
    if exc.code < 400:
        return exc
    return render_error(request, RegistryError(exc.title, status=exc.code, code="UNSUPPORTED"))


@exception_view_config(UnicodeDecodeError)
def undecodable(exc, request):
    # webob decodes query strings and form bodies lazily, on first access, as UTF-8.
    return render_error(request, RegistryError("request is not valid UTF-8", status=400, code="UNSUPPORTED"))


@exception_view_config(DataError)
def value_refused_by_database(exc, request):
    # Input no column can hold (ids beyond 64 bits, NUL characters on PostgreSQL) is the
    # client's mistake, not ours; views should catch it earlier, this keeps it from being a 500.
    log.info("database refused a value on %s %s: %s", request.method, request.path, exc.orig)
    return render_error(request, BadRequest("invalid value in the request"))


@exception_view_config(Exception)
def internal_error(exc, request):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(request, RegistryError("Sorry, there was an internal error.", status=500,
                                               code="UNKNOWN"))
