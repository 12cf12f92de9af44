"""Garbage collection: remove what nothing references any more, safely beside a running server.

A blob file is removed only when no image row refers to its digest and it has not been
written or re-used for `grace` seconds. Removal happens under the exclusive gc lock
(services/gc_lock.py), which write requests hold shared until they have committed, so a
push in flight never loses its blob whatever the grace period. The grace period protects
what spans several requests: OCI blobs waiting for their manifest.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select

from ..models import Image, ManifestReference, Manifest, Tag, Upload, UploadPart
from ..models.registry import SIF_MEDIA_TYPE
from ..models.meta import utcnow
from .gc_lock import GCLock
from .storage import BlobStore

log = logging.getLogger(__name__)


@dataclass
class GCReport:
    orphan_blob_rows: int = 0
    expired_uploads: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    upload_files_removed: int = 0
    kept_recent: int = 0
    busy: bool = False
    removed: list[str] = field(default_factory=list)


def _referenced(session_factory, digest: str) -> bool:
    with session_factory() as session:
        return bool(session.scalar(select(exists().where(Image.digest == digest))))


def _remove_rows(session_factory, store: BlobStore, grace: int, report: GCReport) -> set[str]:
    """Delete orphaned blob rows and expired upload sessions; returns the orphans' digests."""
    cutoff = utcnow() - timedelta(seconds=grace)
    with session_factory() as session, session.begin():
        # OCI blobs (hidden images, and layers that are not SIFs and carry no tag) that no
        # manifest of their repository references any more.
        referenced = exists().where(and_(ManifestReference.digest == Image.digest,
                                         ManifestReference.manifest_id == Manifest.id,
                                         Manifest.container_id == Image.container_id))
        tagged = exists().where(Tag.image_id == Image.id)
        orphans = session.scalars(select(Image).where(
            or_(Image.hidden.is_(True), and_(Image.media_type != SIF_MEDIA_TYPE, ~tagged)),
            Image.created_at < cutoff, ~referenced)).all()
        for image in orphans:
            session.delete(image)
        report.orphan_blob_rows = len(orphans)
        # Upload sessions nobody finished.
        stale = session.scalars(select(Upload).where(Upload.expires_at < cutoff)).all()
        for upload in stale:
            for part in upload.parts:
                store.discard_upload(part.id)
            store.discard_upload(upload.id)
            session.delete(upload)
        report.expired_uploads = len(stale)
    return {image.digest for image in orphans}


def collect(session_factory, store: BlobStore, grace: int, wait: float = 300) -> GCReport:
    """Remove what nothing references; `wait` bounds how long it waits for write requests."""
    report = GCReport()
    deadline = time.time() - grace
    # Slow part first, without the lock: blob files that look unreferenced.
    candidates = set()
    for digest, mtime in list(store.iter_blobs()):
        if mtime >= deadline:
            report.kept_recent += 1
        elif not _referenced(session_factory, digest):
            candidates.add(digest)

    # Rows and files go only while no write request runs (see gc_lock): a push that has
    # published its blob but not committed its row yet holds the lock, so it never loses
    # the blob, and a manifest being put never loses the blobs it references.
    with GCLock(store.root).exclusive(wait) as acquired:
        if not acquired:
            report.busy = True
            log.warning("gc: writes kept the store busy for %s s; nothing removed, try again later", wait)
            return report
        candidates |= _remove_rows(session_factory, store, grace, report)
        for digest in sorted(candidates):
            if _referenced(session_factory, digest):
                continue
            try:
                stat = os.stat(store.path(digest))
            except FileNotFoundError:
                continue
            if stat.st_mtime >= deadline:      # re-used by a push meanwhile
                report.kept_recent += 1
                continue
            if store.delete(digest):
                report.blobs_removed += 1
                report.bytes_removed += stat.st_size
                report.removed.append(digest)
        with session_factory() as session:
            live_uploads = set(session.scalars(select(Upload.id))) | set(session.scalars(select(UploadPart.id)))
        for name, mtime in list(store.iter_uploads()):
            if name not in live_uploads and mtime < deadline:
                store.discard_upload(name)
                report.upload_files_removed += 1
        store.cleanup_tmp(grace)
    log.info("gc: %s", report)
    return report
