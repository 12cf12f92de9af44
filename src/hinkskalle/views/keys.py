"""The built-in HKP keyserver (draft-shaw-openpgp-hkp) that `singularity key push/search/pull`
and signature verification talk to: `POST /pks/add`, `GET /pks/lookup` (op=get, op=index).

Lookups are public, as on any keyserver; adding a key needs a login (the CLI sends the
remote's token) and only the key's first uploader or an admin may replace it. Only public
keys are stored: a secret key block is refused, never kept. Setting `hinkskalle.keyserver_url`
sends clients to an external keyserver instead (config.prod.json).
"""
from __future__ import annotations

import re
import warnings
from urllib.parse import parse_qs, quote

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import select

from ..errors import BadRequest, Denied, NotFound, RegistryError, Unprocessable
from ..models import Image, PublicKey
from ..models.meta import utcnow
from ..security.permissions import Permission
from ..services import sif
from .common import body_chunks

MAX_KEY_SIZE = 1024 * 1024
HEX_SEARCH = re.compile(r"^(?:0x)?([0-9a-fA-F]{8}|[0-9a-fA-F]{16}|[0-9a-fA-F]{32}|[0-9a-fA-F]{40})$")


def parse_keys(text: str) -> list:
    """Public keys (PGPy) in an ASCII-armored block; raises Unprocessable for anything else."""
    import pgpy   # imported on use: PGPy and its dependencies cost ~13 MiB of server memory
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key, others = pgpy.PGPKey.from_blob(text)
    except Exception as err:  # noqa: BLE001 - PGPy raises many kinds of errors for bad input
        raise Unprocessable(f"not an OpenPGP public key: {err}") from None
    keys = [key] + [k for k in others.values() if k.is_primary and k.fingerprint != key.fingerprint]
    if any(not k.is_public for k in keys):
        raise Unprocessable("this is a secret key; only public keys may be uploaded")
    return keys


def _uid_text(uid) -> str:
    text = uid.name or ""
    if uid.comment:
        text += f" ({uid.comment})"
    if uid.email:
        text += f" <{uid.email}>"
    return text.strip()


@view_config(route_name="keys.add", request_method="POST", permission=Permission.AUTHENTICATED)
def add_key(request):
    raw = b"".join(body_chunks(request, limit=MAX_KEY_SIZE))
    form = parse_qs(raw.decode("utf-8", "replace"))
    text = (form.get("keytext") or [""])[0]
    if not text.strip():
        raise BadRequest("keytext is required")
    added = []
    for key in parse_keys(text):
        fingerprint = str(key.fingerprint).replace(" ", "").upper()
        row = request.dbsession.get(PublicKey, fingerprint)
        if row is not None and row.owner_id not in (None, request.user.id) and not request.user.is_admin:
            raise Denied(f"key {fingerprint} was uploaded by somebody else")
        if row is None:
            row = PublicKey(fingerprint=fingerprint, owner_id=request.user.id)
            request.dbsession.add(row)
        else:
            row.updated_at = utcnow()
        row.key_id = fingerprint[-16:]
        row.armored = str(key)
        row.uids = [_uid_text(u) for u in key.userids]
        row.algorithm = int(key.key_algorithm.value)
        row.bits = int(key.key_size if isinstance(key.key_size, int) else 0)
        row.key_created = key.created
        row.key_expires = key.expires_at
        added.append(fingerprint)
    request.dbsession.flush()
    _recheck_images(request, set(added))
    return Response(f"Added {', '.join(added)}\n", content_type="text/plain")


def _recheck_images(request, fingerprints: set[str]) -> None:
    """Images signed by a key that just arrived can now be verified."""
    candidates = request.dbsession.scalars(select(Image).where(
        Image.signed.is_(True), Image.signature_verified.is_(False))).all()
    for image in candidates:
        if fingerprints & set(image.fingerprints or ()):
            sif.recheck_image(request, image)


def _matches(row: PublicKey, search: str, exact: bool) -> bool:
    hex_match = HEX_SEARCH.match(search)
    if hex_match:
        wanted = hex_match.group(1).upper()
        return row.fingerprint.endswith(wanted) if len(wanted) < 40 else row.fingerprint == wanted
    needle = search.lower()
    for uid in row.uids or ():
        text = uid.lower()
        email = text[text.rfind("<") + 1:text.rfind(">")] if "<" in text else ""
        if (exact and needle in (text, email)) or (not exact and needle in text):
            return True
    return False


def _epoch(value) -> str:
    return str(int(value.timestamp())) if value is not None else ""


def _index(rows: list[PublicKey]) -> str:
    lines = [f"info:1:{len(rows)}"]
    for row in rows:
        expired = "e" if row.key_expires is not None and row.key_expires <= utcnow() else ""
        lines.append(f"pub:{row.fingerprint}:{row.algorithm}:{row.bits}:{_epoch(row.key_created)}:"
                     f"{_epoch(row.key_expires)}:{expired}")
        for uid in row.uids or ():
            lines.append(f"uid:{quote(uid, safe=' <>@()')}:{_epoch(row.key_created)}::")
    return "\n".join(lines) + "\n"


@view_config(route_name="keys.lookup", request_method=("GET", "HEAD"), permission=NO_PERMISSION_REQUIRED)
def lookup(request):
    op = request.GET.get("op", "get")
    search = (request.GET.get("search") or "").strip()
    if not search:
        raise BadRequest("search is required")
    exact = request.GET.get("exact", "").lower() == "on"
    if op not in ("get", "index", "vindex"):
        raise RegistryError(f"operation {op} is not implemented", status=501)
    hex_match = HEX_SEARCH.match(search)
    query = select(PublicKey).order_by(PublicKey.fingerprint)
    if hex_match and len(hex_match.group(1)) == 40:
        query = query.where(PublicKey.fingerprint == hex_match.group(1).upper())
    elif hex_match and len(hex_match.group(1)) == 16:
        query = query.where(PublicKey.key_id == hex_match.group(1).upper())
    rows = [r for r in request.dbsession.scalars(query).all() if _matches(r, search, exact)]
    if not rows:
        raise NotFound("No matching keys found")
    if op == "get":
        armored = "\n".join(r.armored.strip() for r in rows) + "\n"
        return Response(armored, content_type="application/pgp-keys", charset="utf-8")
    return Response(_index(rows), content_type="text/plain")
