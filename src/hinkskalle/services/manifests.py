"""OCI manifests: parse and check them, store them byte-exact, tag them, and generate the
ORAS manifest that lets `singularity pull oras://` fetch a SIF pushed over library://.

A manifest may only name blobs and child manifests that exist in its own repository; the
references are recorded (ManifestReference) so garbage collection knows what is in use.
A manifest whose layer is a SIF makes that image a visible library image and tags it.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from .. import plugins
from ..errors import (DigestInvalid, ManifestBlobUnknown, ManifestInvalid, PolicyVeto,
                      TagInvalid, Unsupported)
from ..events import PushEvent
from ..models import Container, Image, Manifest, ManifestReference, Tag
from ..models.meta import utcnow
from ..models.names import OCI_TAG
from ..models.registry import SIF_CONFIG_MEDIA_TYPE, SIF_MEDIA_TYPE
from . import registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
# Media type of an uploaded blob until a manifest says what it is (hidden from library listings).
BLOB_MEDIA_TYPE = "application/octet-stream"
# The config of generated SIF manifests: the JSON document `{}`.
SIF_CONFIG = b"{}"
SIF_CONFIG_DIGEST = "sha256:" + hashlib.sha256(SIF_CONFIG).hexdigest()
TITLE = "org.opencontainers.image.title"

# Any algorithm the spec's grammar allows; only sha256 is supported for storage.
ANY_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def check_digest(value: str | None) -> str:
    """A sha256 digest, or the OCI error for what is wrong with `value`."""
    if not value or not ANY_DIGEST.match(value):
        raise DigestInvalid(f"invalid digest {value!r}")
    if not value.startswith("sha256:"):
        raise Unsupported(f"digest algorithm of {value} is not supported, only sha256")
    if not SHA256.match(value):
        raise DigestInvalid(f"invalid sha256 digest {value!r}")
    return value


def is_digest_reference(reference: str) -> bool:
    return ":" in reference


def check_tag(reference: str) -> str:
    if not OCI_TAG.match(reference):
        raise TagInvalid(f"invalid tag {reference!r}")
    return reference


@dataclass
class Reference:
    digest: str
    media_type: str
    kind: str                      # "blob" or "manifest"


@dataclass
class ParsedManifest:
    media_type: str
    artifact_type: str | None
    config_media_type: str | None
    subject: str | None
    annotations: dict | None
    layers: list[Reference] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)   # config + layers, or children


def _descriptor(value, where: str) -> Reference:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} is not a descriptor")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where} has no mediaType")
    if not isinstance(digest, str) or not ANY_DIGEST.match(digest):
        raise ManifestInvalid(f"{where} has an invalid digest")
    if not digest.startswith("sha256:") or not SHA256.match(digest):
        raise ManifestInvalid(f"{where}: only sha256 digests are supported")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where} has an invalid size")
    return Reference(digest, media_type, "blob")


def parse(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest or index; raises ManifestInvalid with the reason."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ManifestInvalid("manifest is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise ManifestInvalid("only schemaVersion 2 manifests are supported")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip().lower()
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if declared and header in MANIFEST_TYPES + INDEX_TYPES and header != declared:
        raise ManifestInvalid(f"Content-Type {header} does not match mediaType {declared}")
    media_type = declared or (header if header in MANIFEST_TYPES + INDEX_TYPES else None)
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type}")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    annotations = doc.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid("annotations must be an object")
    subject = _descriptor(doc["subject"], "subject").digest if doc.get("subject") is not None else None
    parsed = ParsedManifest(media_type, artifact_type or None, None, subject, annotations)
    if media_type in INDEX_TYPES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index needs a manifests list")
        for number, child in enumerate(children):
            ref = _descriptor(child, f"manifests[{number}]")
            ref.kind = "manifest"
            parsed.references.append(ref)
        return parsed
    config = _descriptor(doc.get("config"), "config")
    parsed.config_media_type = config.media_type
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise ManifestInvalid("layers must be a list")
    parsed.layers = [_descriptor(layer, f"layers[{n}]") for n, layer in enumerate(layers)]
    parsed.references = [config] + parsed.layers
    return parsed


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


# -- lookups ---------------------------------------------------------------------------

def find_manifest(session, container: Container, digest: str) -> Manifest | None:
    return session.scalar(select(Manifest).where(Manifest.container_id == container.id,
                                                 Manifest.digest == digest))


def resolve(request, container: Container, reference: str) -> Manifest | None:
    """The manifest a tag or digest names (generating the ORAS manifest of a library SIF)."""
    session = request.dbsession
    if is_digest_reference(reference):
        return find_manifest(session, container, check_digest(reference))
    tag = registry.find_tag(session, container, reference, registry.default_arch(request))
    if tag is None:
        return None
    if tag.image_id is not None and (tag.manifest is None or tag.manifest.generated):
        image = tag.image
        if image.is_sif and image.completed:
            return sif_manifest(request, tag, image)
    return tag.manifest


# -- push ------------------------------------------------------------------------------

def _check_references(session, container: Container, parsed: ParsedManifest) -> dict[str, Image]:
    """The images of the referenced blobs; MANIFEST_BLOB_UNKNOWN for anything missing."""
    blobs = {r.digest for r in parsed.references if r.kind == "blob"}
    children = {r.digest for r in parsed.references if r.kind == "manifest"}
    images = {}
    if blobs:
        images = {i.digest: i for i in session.scalars(select(Image).where(
            Image.container_id == container.id, Image.digest.in_(blobs),
            Image.upload_state == "completed"))}
    known = set(images)
    if children:
        known |= set(session.scalars(select(Manifest.digest).where(
            Manifest.container_id == container.id, Manifest.digest.in_(children))))
    missing = sorted((blobs | children) - known)
    if missing:
        raise ManifestBlobUnknown(f"unknown blob or manifest {missing[0]} in this repository")
    return images


def _type_images(request, parsed: ParsedManifest, images: dict[str, Image]) -> Image | None:
    """Give uploaded blobs the media type the manifest names; returns the tag's image.

    Only blobs still carrying the upload placeholder type change, so a SIF pushed over
    library:// never turns into something else. The last visible layer is what a tag
    shows in the library API (the SIF of an ORAS push).
    """
    visible = None
    for ref in parsed.layers + parsed.references[:1]:
        image = images.get(ref.digest)
        if image is None:
            continue
        if image.media_type == BLOB_MEDIA_TYPE and ref.media_type != BLOB_MEDIA_TYPE:
            registry.type_blob(request, image, ref.media_type, protocol="oci")
        if ref in parsed.layers and not image.hidden:
            visible = image
    return visible


def store(request, container: Container, body: bytes, parsed: ParsedManifest, digest: str,
          generated: bool = False) -> Manifest:
    """The stored manifest row for `body` in `container` (re-used if it exists)."""
    session = request.dbsession
    manifest = find_manifest(session, container, digest)
    if manifest is not None:
        return manifest
    manifest = Manifest(container=container, digest=digest, media_type=parsed.media_type,
                        artifact_type=parsed.artifact_type, config_media_type=parsed.config_media_type,
                        subject=parsed.subject, annotations=parsed.annotations, content=body,
                        size=len(body), generated=generated,
                        owner_id=request.user.id if request.user else None)
    seen = set()
    for ref in parsed.references:
        if ref.digest not in seen:
            seen.add(ref.digest)
            manifest.references.append(ManifestReference(digest=ref.digest, kind=ref.kind,
                                                         media_type=ref.media_type))
    session.add(manifest)
    session.flush()
    return manifest


def push(request, container: Container, reference: str, body: bytes, content_type: str | None) -> Manifest:
    """Store a pushed manifest under a tag or its digest; the caller checked PUSH."""
    registry.check_writable(container, "oci")
    digest = digest_of(body)
    tag_name = None
    if is_digest_reference(reference):
        if check_digest(reference) != digest:
            raise DigestInvalid(f"manifest digest is {digest}, not {reference}")
    else:
        tag_name = check_tag(reference)
    parsed = parse(body, content_type)
    session = request.dbsession
    images = _check_references(session, container, parsed)
    tag_image = _type_images(request, parsed, images)
    event = PushEvent(**registry.event_fields(request, container, "oci"), digest=digest,
                      size=len(body), media_type=parsed.media_type, target="manifest",
                      tags=(tag_name,) if tag_name else ())
    reason = plugins.check(request, "hinkskalle_check_push", event)
    if reason:
        raise PolicyVeto(reason)
    manifest = store(request, container, body, parsed, digest)
    if tag_name is not None:
        registry.set_tag(request, container, tag_name, registry.default_arch(request),
                         protocol="oci", image=tag_image, manifest=manifest)
    request.emit(event)
    return manifest


def delete(request, container: Container, reference: str) -> bool:
    """Delete a tag (only the tag) or a manifest by digest (with its tags); False if unknown."""
    session = request.dbsession
    if not is_digest_reference(reference):
        tag = registry.find_tag(session, container, reference, registry.default_arch(request))
        if tag is None or (tag.manifest_id is None and tag.image_id is None):
            return False
        registry.remove_tag(request, tag, protocol="oci")
        return True
    manifest = find_manifest(session, container, check_digest(reference))
    if manifest is None:
        return False
    for tag in list(manifest.tags):
        registry.remove_tag(request, tag, protocol="oci")
    registry.delete_manifest(request, manifest, protocol="oci")
    return True


# -- SIF over ORAS ---------------------------------------------------------------------

def sif_manifest_body(container: Container, image: Image) -> bytes:
    """The ORAS manifest of a SIF image: what `singularity push oras://` would have sent."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": SIF_CONFIG_MEDIA_TYPE, "digest": SIF_CONFIG_DIGEST,
                   "size": len(SIF_CONFIG)},
        "layers": [{"mediaType": SIF_MEDIA_TYPE, "digest": image.digest, "size": image.size,
                    "annotations": {TITLE: container.name}}],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _ensure_sif_config(request, container: Container) -> None:
    """The `{}` config blob of generated manifests, stored once, hidden, in the container."""
    session = request.dbsession
    if registry.find_image(session, container, SIF_CONFIG_DIGEST) is not None:
        return
    store_ = request.blobstore
    if not store_.exists(SIF_CONFIG_DIGEST):
        store_.ingest([SIF_CONFIG], expected_digest=SIF_CONFIG_DIGEST)
    session.add(Image(container=container, digest=SIF_CONFIG_DIGEST, size=len(SIF_CONFIG),
                      media_type=SIF_CONFIG_MEDIA_TYPE, hidden=True, upload_state="completed"))
    session.flush()


def sif_manifest(request, tag: Tag, image: Image) -> Manifest:
    """The generated manifest for a tag pointing at a SIF; regenerated when the image changed."""
    container = tag.container
    body = sif_manifest_body(container, image)
    digest = digest_of(body)
    if tag.manifest is not None and tag.manifest.digest == digest:
        return tag.manifest
    _ensure_sif_config(request, container)
    manifest = store(request, container, body, parse(body, OCI_MANIFEST), digest, generated=True)
    tag.manifest = manifest
    tag.updated_at = utcnow()
    session = request.dbsession
    session.flush()
    # Generated manifests no tag uses any more (the library moved the tag) are dropped.
    unused = session.scalars(select(Manifest).where(
        Manifest.container_id == container.id, Manifest.generated.is_(True),
        ~exists().where(Tag.manifest_id == Manifest.id))).all()
    for stale in unused:
        session.delete(stale)
    session.flush()
    return manifest
