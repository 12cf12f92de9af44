"""Helpers every protocol's views share: streaming request bodies, serving blobs, URLs."""
from __future__ import annotations

import json
from typing import Iterator

from pyramid.response import Response

from ..errors import BadRequest, TooLarge
from ..services.storage import CHUNK, BlobIter


def body_chunks(request, limit: int | None = None) -> Iterator[bytes]:
    """The request body in chunks, never all of it in memory.

    Reads exactly Content-Length bytes, or to the end for chunked transfer encoding.
    Raises TooLarge beyond `limit` and BadRequest when the client sends less than announced.
    """
    stream = request.environ["wsgi.input"]
    length = request.content_length
    if length is not None and limit is not None and length > limit:
        raise TooLarge(f"body of {length} bytes exceeds the limit of {limit}")
    remaining = length
    total = 0
    while remaining is None or remaining > 0:
        chunk = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not chunk:
            if remaining:
                raise BadRequest(f"body ended {remaining} bytes early")
            break
        total += len(chunk)
        if limit is not None and total > limit:
            raise TooLarge(f"body exceeds the limit of {limit} bytes")
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def read_json(request, limit: int = 4 * 1024 * 1024):
    """A small JSON body (any Content-Type: singularity sends none); None when empty."""
    raw = b"".join(body_chunks(request, limit=limit))
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Failed to decode JSON body.") from None


def blob_response(request, path: str, size: int, *, content_type: str = "application/octet-stream",
                  headers: dict | None = None) -> Response:
    """Serve a stored file with Range (206), HEAD and conditional request support."""
    response = Response(content_type=content_type, conditional_response=True)
    response.accept_ranges = "bytes"
    if request.method != "HEAD":
        # The server's own file sending: waitress sends from its I/O thread, gunicorn with
        # sendfile(2) or, with `sendfile = false`, its own reads.
        wrapper = request.environ.get("wsgi.file_wrapper")
        if wrapper is not None and request.range is None:
            response.app_iter = wrapper(open(path, "rb"), CHUNK)
        else:
            response.app_iter = BlobIter(path, file_wrapper=wrapper)
    # After app_iter: assigning app_iter resets Content-Length, and Range needs it.
    response.content_length = size
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def service_url(request) -> str:
    """Public base URL of this server (setting, else from the request)."""
    return request.registry.settings.get("hinkskalle.backend_url") or request.application_url
