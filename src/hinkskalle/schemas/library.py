"""Library API input schemas (colander) and JSON output of Entity, Collection, Container, Image.

Inputs: create schemas ignore unknown and read-only fields (singularity sends whole Sylabs
objects with zero values), update schemas reject them. JSON types are strict, because the
Go client is: ids are strings, flags booleans.

Outputs: the shapes of reference section 3 - ids as strings, RFC 3339 datetimes with an
offset, constant ``deleted``/``deletedAt``, ``canEdit`` for the caller.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import colander
from sqlalchemy import func, select

from ..errors import BadRequest
from ..models import Collection, Container, Entity, Image, Tag
from ..models.names import InvalidName, check_name
from ..models.registry import SIF_MEDIA_TYPE, VISIBLE_MEDIA_TYPES
from ..security.permissions import Permission

# -- strict JSON types ------------------------------------------------------------------


BIGINT_MAX = 2**63 - 1   # the largest number a BIGINT column holds


def utc_datetime(node, value: datetime) -> None:
    """Validator: `value` has a UTC equivalent (an offset near year 1 or 9999 has none)."""
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        raise colander.Invalid(node, "Datetime out of range.") from None


class JSONString(colander.String):
    """A JSON string (a number is an error, as ids must be strings); null is allowed."""

    def deserialize(self, node, cstruct):
        if cstruct is None:
            return None
        if cstruct is not colander.null and not isinstance(cstruct, str):
            raise colander.Invalid(node, "Not a valid string.")
        return super().deserialize(node, cstruct)


class JSONBool(colander.SchemaType):
    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, bool):
            raise colander.Invalid(node, "Not a valid boolean.")
        return cstruct


class JSONInt(colander.SchemaType):
    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if isinstance(cstruct, bool) or not isinstance(cstruct, int):
            raise colander.Invalid(node, "Not a valid integer.")
        if not -BIGINT_MAX - 1 <= cstruct <= BIGINT_MAX:
            raise colander.Invalid(node, "Number too large.")
        return cstruct


class JSONDateTime(colander.SchemaType):
    """ISO 8601, with or without offset (without = UTC); null clears the value."""

    def deserialize(self, node, cstruct):
        if cstruct is colander.null or cstruct is None:
            return cstruct
        try:
            value = datetime.fromisoformat(str(cstruct).replace("Z", "+00:00"))
        except ValueError:
            raise colander.Invalid(node, "Not a valid datetime.") from None
        value = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        utc_datetime(node, value)
        return value


def _name_validator(node, value):
    if value:
        try:
            check_name(value)
        except InvalidName as err:
            raise colander.Invalid(node, str(err)) from None


ARCH = re.compile(r"^[a-z0-9_]{1,32}$")


def _arch_validator(node, value):
    if value is not None and not ARCH.match(value):
        raise colander.Invalid(node, "arch must be 1-32 lower-case letters, digits or _")


def _max_length(limit):
    def validate(node, value):
        if value is not None and len(value) > limit:
            raise colander.Invalid(node, f"at most {limit} characters")
    return validate


def _field(kind, name, validator=None):
    return colander.SchemaNode(kind(), name=name, missing=colander.drop, validator=validator)


def _string(name, validator=None):
    return _field(JSONString, name, validator)


def _schema(unknown: str, *nodes) -> colander.SchemaNode:
    schema = colander.SchemaNode(colander.Mapping(unknown=unknown))
    for node in nodes:
        schema.add(node.clone())
    return schema


_NAME = _string("name", _name_validator)
_DESCRIPTION = _string("description")
_CUSTOM = _string("customData")
_CREATED_BY = _string("createdBy")

ENTITY_CREATE = _schema("ignore", _NAME, _DESCRIPTION, _CUSTOM, _field(JSONBool, "defaultPrivate"), _CREATED_BY)
ENTITY_UPDATE = _schema("raise", _NAME, _DESCRIPTION, _CUSTOM, _field(JSONBool, "defaultPrivate"), _CREATED_BY)
COLLECTION_CREATE = _schema("ignore", _NAME, _DESCRIPTION, _CUSTOM, _field(JSONBool, "private"),
                            _CREATED_BY, _string("entity"))
COLLECTION_UPDATE = _schema("raise", _NAME, _DESCRIPTION, _CUSTOM, _field(JSONBool, "private"),
                            _CREATED_BY, _string("entity"))
_CONTAINER_FIELDS = (_NAME, _DESCRIPTION, _string("fullDescription"), _CUSTOM,
                     _string("vcsUrl", _max_length(1024)),
                     _field(JSONBool, "private"), _field(JSONBool, "readOnly"), _CREATED_BY,
                     _string("collection"))
CONTAINER_CREATE = _schema("ignore", *_CONTAINER_FIELDS)
CONTAINER_UPDATE = _schema("raise", *_CONTAINER_FIELDS)
_IMAGE_FIELDS = (_string("hash"), _DESCRIPTION, _CUSTOM, _string("blob", _max_length(255)),
                 _string("arch", _arch_validator),
                 _field(JSONBool, "encrypted"), _field(JSONDateTime, "expiresAt"), _string("container"),
                 _string("uploadState"))
IMAGE_CREATE = _schema("ignore", *_IMAGE_FIELDS)
IMAGE_UPDATE = _schema("raise", *_IMAGE_FIELDS)
# Loadable on update but discarded (reference 1.4).
IGNORED_ON_UPDATE = {"name", "entity", "collection", "hash", "blob", "container", "uploadState"}

UPLOAD_START = _schema("ignore", _field(JSONInt, "filesize"), _string("sha256sum"), _string("md5sum"))
MULTIPART_START = _schema("ignore", _field(JSONInt, "filesize"))
MULTIPART_PART = _schema("ignore", _string("uploadID"), _field(JSONInt, "partNumber"),
                         _field(JSONInt, "partSize"), _string("sha256sum"))
MULTIPART_ID = _schema("ignore", _string("uploadID"))


def load(schema: colander.SchemaNode, body, *, required: tuple[str, ...] = ()) -> dict:
    """Validate a JSON body; 400 in the library format with per-field messages."""
    if body is None:
        raise BadRequest("Fields must be in JSON body.")
    if not isinstance(body, dict):
        raise BadRequest("JSON body parameters are invalid.", errors={"_schema": "Invalid input type."})
    try:
        data = schema.deserialize(body)
    except colander.Invalid as err:
        errors = {key.split(".")[-1] or "_schema": value for key, value in err.asdict().items()}
        raise BadRequest("JSON body parameters are invalid.", errors=errors) from None
    missing = {name: "Missing data for required field." for name in required if data.get(name) is None}
    if missing:
        raise BadRequest("JSON body parameters are invalid.", errors=missing)
    return data


# -- output ---------------------------------------------------------------------------


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _base(obj, request, permission=Permission.EDIT) -> dict:
    return {
        "id": str(obj.id),
        "createdAt": timestamp(obj.created_at),
        "createdBy": obj.owner_name,
        "updatedAt": timestamp(getattr(obj, "updated_at", None)),
        "deleted": False,
        "deletedAt": None,
        "canEdit": bool(request.user is not None and request.has_permission(permission, obj)),
    }


def entity_json(request, entity: Entity) -> dict:
    if entity.group is not None:
        quota = entity.group.quota or 0
    else:
        quota = entity.owner.quota if entity.owner is not None else 0
    return dict(_base(entity, request), **{
        "name": entity.name,
        "description": entity.description,
        "customData": entity.custom_data,
        "defaultPrivate": bool(entity.default_private),
        "size": len(entity.collections),
        "quota": quota or 0,
        "usedQuota": entity.used_quota or 0,
        "isGroup": entity.group is not None,
        "groupRef": entity.group.name if entity.group is not None else None,
    })


def collection_json(request, collection: Collection) -> dict:
    return dict(_base(collection, request), **{
        "name": collection.name,
        "description": collection.description,
        "customData": collection.custom_data,
        "private": bool(collection.private),
        "size": len(collection.containers),
        "usedQuota": collection.used_quota or 0,
        "entity": str(collection.entity_id),
        "entityName": collection.entity.name,
    })


def container_stats(request, container_ids) -> dict[int, dict]:
    """Tags, image count, image types and stars of many containers in four queries (list
    endpoints render hundreds of containers; one query each per container would not do)."""
    from ..models import user_stars
    ids = list(set(container_ids))
    stats = {i: {"tags": [], "size": 0, "types": set(), "stars": 0} for i in ids}
    if not ids:
        return stats
    session = request.dbsession
    visible = (Image.container_id.in_(ids), Image.hidden.is_(False))
    for cid, name, arch, image_id in session.execute(
            select(Tag.container_id, Tag.name, Tag.arch, Tag.image_id)
            .where(Tag.container_id.in_(ids), Tag.image_id.is_not(None)).order_by(Tag.id)):
        stats[cid]["tags"].append((name, arch, image_id))
    for cid, count in session.execute(select(Image.container_id, func.count()).where(
            *visible, Image.upload_state == "completed").group_by(Image.container_id)):
        stats[cid]["size"] = int(count)
    for cid, media_type in session.execute(select(Image.container_id, Image.media_type).where(*visible).distinct()):
        stats[cid]["types"].add(media_type)
    for cid, count in session.execute(select(user_stars.c.container_id, func.count())
                                      .where(user_stars.c.container_id.in_(ids)).group_by(user_stars.c.container_id)):
        stats[cid]["stars"] = int(count)
    return stats


def _stats_of(request, container: Container, stats: dict | None) -> dict:
    return stats[container.id] if stats is not None else container_stats(request, [container.id])[container.id]


def tag_maps(request, container: Container, stats: dict | None = None) -> tuple[dict, dict]:
    """(imageTags for the default arch, archTags for all arches); tags without image are left out."""
    default_arch = request.registry.settings["hinkskalle.default_arch"]
    image_tags: dict[str, str] = {}
    arch_tags: dict[str, dict[str, str]] = {}
    for name, arch, image_id in _stats_of(request, container, stats)["tags"]:
        arch_tags.setdefault(arch, {})[name] = str(image_id)
        if arch == default_arch:
            image_tags[name] = str(image_id)
    return image_tags, arch_tags


def _container_type(types: set[str]) -> str:
    if len(types) != 1:
        return "mixed"
    (media_type,) = types
    if media_type == SIF_MEDIA_TYPE:
        return "singularity"
    if media_type.startswith("application/vnd.docker.image.rootfs.diff"):
        return "docker"
    return "generic"


def _parents(collection: Collection) -> dict:
    """Ids and names of a collection and its entity, as containers and images show them."""
    return {"collection": str(collection.id), "collectionName": collection.name,
            "entity": str(collection.entity_id), "entityName": collection.entity.name}


def container_json(request, container: Container, stats: dict | None = None) -> dict:
    """`stats`: from container_stats() for a list of containers (loaded here if not given)."""
    own = _stats_of(request, container, stats)
    image_tags, arch_tags = tag_maps(request, container, {container.id: own})
    return dict(_base(container, request), **{
        "name": container.name,
        "description": container.description,
        "fullDescription": container.full_description,
        "customData": container.custom_data,
        "vcsUrl": container.vcs_url,
        "private": bool(container.private),
        "readOnly": bool(container.read_only),
        "size": own["size"],
        "type": _container_type(own["types"]),
        "downloadCount": container.download_count or 0,
        "stars": own["stars"],
        "usedQuota": container.used_quota or 0,
        **_parents(container.collection),
        "imageTags": image_tags,
        "archTags": arch_tags,
    })


def containers_json(request, containers) -> list[dict]:
    containers = list(containers)
    stats = container_stats(request, [c.id for c in containers])
    return [container_json(request, c, stats) for c in containers]


def image_type(image: Image) -> str:
    if image.media_type == SIF_MEDIA_TYPE:
        return "singularity"
    if image.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip":
        return "docker"
    if image.media_type in VISIBLE_MEDIA_TYPES:
        return "oci"
    return "other"


def image_json(request, image: Image, stats: dict | None = None) -> dict:
    """`stats`: from container_stats() for a list of images (loaded here if not given)."""
    container = image.container
    return dict(_base(image, request), **{
        "hash": image.hash,
        "description": image.description,
        "customData": image.custom_data,
        "blob": image.blob,
        "size": image.size,
        "uploadState": image.upload_state,
        "uploaded": image.completed,
        "arch": image.arch,
        "signed": bool(image.signed),
        "signatureVerified": bool(image.signature_verified),
        "encrypted": bool(image.encrypted),
        "type": image_type(image),
        "downloadCount": image.download_count or 0,
        "containerDownloads": container.download_count or 0,
        "containerStars": _stats_of(request, container, stats)["stars"],
        "expiresAt": timestamp(image.expires_at),
        "container": str(container.id),
        "containerName": container.name,
        **_parents(container.collection),
        "tags": sorted({tag.name for tag in image.tags}),
        "fingerprints": list(image.fingerprints or []),
        "scan": image.scan,   # recorded by scanner plugins (hinkskalle-scan), None if never scanned
    })


def images_json(request, images) -> list[dict]:
    images = list(images)
    stats = container_stats(request, [i.container_id for i in images])
    return [image_json(request, i, stats) for i in images]
