"""Garbage collection: remove what nothing references any more, safely beside a running server.

A blob file is removed only when no image row refers to its digest and it has not been
written or re-used for `grace` seconds, so uploads in flight (whose file is renamed into
place shortly before their row commits) are never touched.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, delete, exists, select

from ..models import Image, ManifestReference, Manifest, Upload
from ..models.meta import utcnow
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
    removed: list[str] = field(default_factory=list)


def collect(session_factory, store: BlobStore, grace: int) -> GCReport:
    report = GCReport()
    cutoff = utcnow() - timedelta(seconds=grace)
    with session_factory() as session, session.begin():
        # OCI blobs (hidden images) that no manifest of their repository references any more.
        referenced = exists().where(and_(ManifestReference.digest == Image.digest,
                                         ManifestReference.manifest_id == Manifest.id,
                                         Manifest.container_id == Image.container_id))
        orphans = session.scalars(select(Image).where(
            Image.hidden.is_(True), Image.created_at < cutoff, ~referenced)).all()
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

    live_uploads: set[str] = set()
    with session_factory() as session:
        live_uploads = set(session.scalars(select(Upload.id)))
        from ..models import UploadPart
        live_uploads |= set(session.scalars(select(UploadPart.id)))

    deadline = time.time() - grace
    for digest, mtime in list(store.iter_blobs()):
        if mtime >= deadline:
            report.kept_recent += 1
            continue
        with session_factory() as session:
            if session.scalar(select(exists().where(Image.digest == digest))):
                continue
        # Re-check right before unlinking: a push may have re-used the file meanwhile.
        try:
            stat = os.stat(store.path(digest))
        except FileNotFoundError:
            continue
        if stat.st_mtime >= deadline:
            report.kept_recent += 1
            continue
        if store.delete(digest):
            report.blobs_removed += 1
            report.bytes_removed += stat.st_size
            report.removed.append(digest)
    for name, mtime in list(store.iter_uploads()):
        if name not in live_uploads and mtime < deadline:
            store.discard_upload(name)
            report.upload_files_removed += 1
    store.cleanup_tmp(grace)
    log.info("gc: %s", report)
    return report
