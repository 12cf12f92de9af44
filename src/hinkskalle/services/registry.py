"""Registry operations shared by every protocol: create paths, complete pushes, tag, pull, delete.

Views translate their protocol into these calls; everything here speaks in models and
raises `hinkskalle.errors`. Events are queued with `request.emit` and delivered after commit.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select

from .. import plugins
from ..errors import Denied, PolicyVeto
from ..events import DeleteEvent, PullEvent, PushEvent, TagEvent
from ..models import Collection, Container, Entity, Image, Manifest, Tag, User
from ..models.meta import utcnow
from ..models.registry import SIF_MEDIA_TYPE, VISIBLE_MEDIA_TYPES
from ..resources import PendingEntity, PendingPath, take_found_tag
from . import quotas


def event_fields(request, container: Container | str, protocol: str) -> dict:
    """The fields every event carries."""
    path = container if isinstance(container, str) else container.path
    return {
        "repository": path,
        "actor": request.authenticated_userid,
        "address": request.client_address,
        "protocol": protocol,
    }


def default_arch(request) -> str:
    return request.registry.settings["hinkskalle.default_arch"]


# -- paths -------------------------------------------------------------------------

def ensure_container(request, context: Container | PendingPath, private: bool = False) -> Container:
    """Create whatever is missing of a pushed path; the caller has checked PUSH on `context`.

    Ownership: a new entity belongs to the user it is named after (admins may push on a
    user's behalf); new collections and containers belong to the entity's owner, else to
    the caller. Privacy flows down: `defaultPrivate` entities make private collections,
    private collections make private containers.
    """
    if isinstance(context, Container):
        return context
    session = request.dbsession
    entity_name, collection_name, container_name = context.names
    parent = context.__parent__
    if isinstance(parent, PendingEntity):
        namesake = session.scalar(select(User).where(User.username == entity_name))
        entity = Entity(name=entity_name, owner=namesake or request.user)
        session.add(entity)
        parent = entity
    entity = parent if isinstance(parent, Entity) else parent.entity
    owner = entity.owner or request.user
    if isinstance(parent, Entity):
        collection = Collection(name=collection_name, entity=entity, owner=owner,
                                private=entity.default_private or private)
        session.add(collection)
    else:
        collection = parent
    container = Container(name=container_name, collection=collection, owner=owner,
                          private=collection.private or private)
    session.add(container)
    session.flush()
    return container


# -- images ------------------------------------------------------------------------

def find_image(session, container: Container, digest: str) -> Image | None:
    return session.scalar(select(Image).where(Image.container_id == container.id, Image.digest == digest))


def complete_image(request, container: Container, digest: str, size: int, *, protocol: str,
                   media_type: str | None = None, image: Image | None = None,
                   path: str | None = None, target: str = "image") -> Image:
    """Make an uploaded blob a completed image of `container`.

    Checks quotas and the plugins' `hinkskalle_check_push` veto before anything becomes
    visible; parses SIF metadata; queues the PushEvent. `image` is the placeholder row of a
    library upload, if there is one.
    """
    session = request.dbsession
    user = request.user
    if image is None:
        image = find_image(session, container, digest)
    if image is None:
        image = Image(container=container, digest=digest, owner=user,
                      media_type=media_type or SIF_MEDIA_TYPE)
        session.add(image)
    if media_type:
        image.media_type = media_type
    image.hidden = image.media_type not in VISIBLE_MEDIA_TYPES
    already_completed = image.completed and image.digest == digest
    quotas.check(session, user, container.entity, digest, size)
    image.digest, image.size = digest, size
    if image.is_sif and path is not None:
        from . import sif
        sif.annotate_image(request, image, path)
    event = _checked_push_event(request, container, image, protocol=protocol, target=target, path=path)
    image.upload_state = "completed"
    image.updated_at = utcnow()
    session.flush()
    quotas.refresh(session, user, container.entity)
    if not already_completed:
        request.emit(_with_image_id(event, image))
    return image


def _checked_push_event(request, container: Container, image: Image, *, protocol: str, target: str,
                        path: str | None) -> PushEvent:
    """The PushEvent of `image`, after the plugins' `hinkskalle_check_push` let it pass.

    A SIF is an "image" whichever protocol pushed it, so plugins see the same event.
    """
    event = PushEvent(**event_fields(request, container, protocol), digest=image.digest, size=image.size,
                      media_type=image.media_type, target="image" if image.is_sif else target,
                      arch=image.arch, path=path, signed=image.signed,
                      signature_verified=image.signature_verified,
                      fingerprints=tuple(image.fingerprints or ()))
    reason = plugins.check(request, "hinkskalle_check_push", event)
    if reason:
        raise PolicyVeto(reason)
    return event


def type_blob(request, image: Image, media_type: str, *, protocol: str) -> None:
    """Give an uploaded blob the media type a manifest names for it.

    OCI blobs arrive untyped. One that turns out to be a SIF image is parsed, checked by the
    plugins and announced like a library push (a PushEvent with target "image"), so an ORAS
    push of a SIF fires the same event as `singularity push library://`.
    """
    image.media_type = media_type
    image.hidden = media_type not in VISIBLE_MEDIA_TYPES
    if not image.is_sif:
        return
    from . import sif
    path = request.blobstore.path(image.digest)
    sif.annotate_image(request, image, path)
    event = _checked_push_event(request, image.container, image, protocol=protocol, target="image", path=path)
    request.emit(_with_image_id(event, image))


def _with_image_id(event: PushEvent, image: Image) -> PushEvent:
    from dataclasses import replace
    return replace(event, image_id=image.id, path=None)


def check_writable(container: Container, protocol: str) -> None:
    if container.read_only:
        if protocol == "oci":
            raise Denied("Container is readonly")
        from ..errors import NotAcceptable
        raise NotAcceptable("Container is readonly")


# -- tags --------------------------------------------------------------------------

# A tag and its manifest as one flat row (tag.manifest then needs no SQL): cheaper than
# eager loading on the hottest read path. Built once with bound parameters.
TAG_WITH_MANIFEST = select(Tag, Manifest).outerjoin(Manifest, Manifest.id == Tag.manifest_id).where(
    Tag.container_id == bindparam("container"), Tag.name == bindparam("name"), Tag.arch == bindparam("arch"))


def find_tag(session, container: Container, name: str, arch: str) -> Tag | None:
    """The tag with its manifest; no SQL where the container's lookup found it already."""
    looked_up, tag = take_found_tag(container, name, arch)
    if looked_up:
        return tag
    row = session.execute(TAG_WITH_MANIFEST, {"container": container.id, "name": name, "arch": arch}).first()
    if row is None:
        return None
    row.Tag._loaded_with = row.Manifest     # keeps its manifest in the session (rows are held weakly)
    return row.Tag


def set_tag(request, container: Container, name: str, arch: str, *, protocol: str,
            image: Image | None = None, manifest: Manifest | None = None) -> Tag:
    """Point tag (name, arch) of `container` at an image and/or manifest (moving it)."""
    session = request.dbsession
    tag = find_tag(session, container, name, arch)
    if tag is None:
        tag = Tag(container=container, name=name, arch=arch,
                  owner_id=request.user.id if request.user else None)
        session.add(tag)
    else:
        tag.updated_at = utcnow()
    tag.image = image
    tag.manifest = manifest
    session.flush()
    digest = manifest.digest if manifest is not None else (image.digest if image is not None else None)
    request.emit(TagEvent(**event_fields(request, container, protocol), tag=name, arch=arch,
                          digest=digest, action="set"))
    return tag


def remove_tag(request, tag: Tag, *, protocol: str) -> None:
    request.emit(TagEvent(**event_fields(request, tag.container, protocol), tag=tag.name,
                          arch=tag.arch, digest=None, action="remove"))
    request.dbsession.delete(tag)
    request.dbsession.flush()


# -- pulls -------------------------------------------------------------------------

def record_pull(request, container: Container, *, protocol: str, digest: str, size: int,
                media_type: str, target: str, image: Image | None = None,
                manifest: Manifest | None = None, reference: str | None = None) -> None:
    """Ask plugins whether the pull may go ahead, count it and queue the PullEvent.

    HEAD requests are not downloads: no counters, no event (but the veto still applies).
    Without a plugin for pulls there is no event to build.
    """
    event = None
    if plugins.implemented(request, "hinkskalle_check_pull", "hinkskalle_on_pull"):
        if image is not None and image.is_sif:
            target = "image"      # a SIF is an image whichever protocol serves it
        event = PullEvent(**event_fields(request, container, protocol), digest=digest, size=size,
                          media_type=media_type, target=target, reference=reference,
                          image_id=image.id if image is not None else None)
        reason = plugins.check(request, "hinkskalle_check_pull", event)
        if reason:
            raise PolicyVeto(reason)
    if request.method == "HEAD":
        return
    now = utcnow()
    counted = [row for row in (container, image, manifest) if row is not None]
    counter = request.registry["download_counter"]
    if counter.interval > 0:
        counter.add(counted, now)      # written later in a batch: pulls stay read-only
    else:
        for row in counted:
            row.download_count = (row.download_count or 0) + 1
            row.latest_download = now
    if event is not None:
        request.emit(event)


# -- deletes -----------------------------------------------------------------------

def delete_image(request, image: Image, *, protocol: str) -> None:
    """Delete an image row; its blob file goes when gc finds nothing else refers to it."""
    container = image.container
    request.emit(DeleteEvent(**event_fields(request, container, protocol), target="image",
                             digest=image.digest))
    session = request.dbsession
    owner = image.owner
    session.delete(image)
    session.flush()
    quotas.refresh(session, owner, container.entity)


def delete_manifest(request, manifest: Manifest, *, protocol: str) -> None:
    request.emit(DeleteEvent(**event_fields(request, manifest.container, protocol),
                             target="manifest", digest=manifest.digest))
    request.dbsession.delete(manifest)
    request.dbsession.flush()
