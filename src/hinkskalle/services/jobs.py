"""Maintenance jobs: LDAP sync, quota recomputation, image expiry.

Each runs synchronously, from the CLI (`hinkskalle ldap sync | quotas check | expire`) or
from `POST /v1/adm/<key>/run`, and stores its result in the Adm row of its key
(reference section 9.2). Jobs take a request (the web request, or a JobRequest built by
the CLI) so that they go through the same service functions, and their events, as the
protocols do.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from .. import plugins
from ..errors import RegistryError
from ..events import Event
from ..models import Adm, Image
from ..models.meta import utcnow
from . import quotas
from .registry import delete_image


class JobDisabled(RegistryError):
    status, code, message = 406, "UNSUPPORTED", "job not available"


@dataclass
class JobRequest:
    """What the service functions need of a request, for jobs run outside of one.

    Events are collected and delivered by `deliver_after_commit` once the caller committed.
    """
    dbsession: object
    settings: dict
    user: object = None
    client_address: str | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def authenticated_userid(self) -> str | None:
        return self.user.username if self.user else None

    def emit(self, event: Event) -> None:
        self.events.append(event)


def expire_images(request, settings: dict) -> dict:
    """Delete every completed image whose `expiresAt` has passed.

    Only the rows go (with their tags, through `delete_image`); blob files are left to gc,
    which removes a file only when no image row refers to its digest any more.
    """
    session = request.dbsession
    expired = session.scalars(select(Image).where(
        Image.expires_at.is_not(None), Image.expires_at < utcnow(),
        Image.upload_state == "completed")).all()
    digests = {image.digest: image.size or 0 for image in expired}
    for image in expired:
        delete_image(request, image, protocol="library")
    unreferenced = [d for d in digests if not session.scalar(select(exists().where(Image.digest == d)))]
    return {"updated": len(expired), "space_reclaimed": sum(digests[d] for d in unreferenced)}


def check_quotas(request, settings: dict) -> dict:
    result = quotas.recompute_all(request.dbsession)
    result["over_quota"] = quotas.over_quota(request.dbsession)
    return result


def ldap_sync(request, settings: dict) -> dict:
    if not settings["hinkskalle.ldap.enabled"]:
        raise JobDisabled("LDAP not configured.")
    from ..auth.ldap import sync_all
    return sync_all(request.dbsession, settings)


JOBS = {
    "expire_images": expire_images,
    "check_quotas": check_quotas,
    "ldap_sync_results": ldap_sync,
}


def run(request, settings: dict, key: str) -> dict:
    """Run job `key` and record its result in the Adm row of the same key.

    A failing job is recorded as `success: false` with the error, and raises again so the
    caller rolls back the job's own changes (the CLI and REST store the failure separately).
    """
    started = utcnow()
    result = JOBS[key](request, settings)
    result.update(success=True, started=started.isoformat(), finished=utcnow().isoformat())
    store(request.dbsession, key, result)
    return result


def failure(started, error: BaseException) -> dict:
    return {"success": False, "started": started.isoformat(), "finished": utcnow().isoformat(),
            "exception": "".join(traceback.format_exception_only(type(error), error)).strip()}


def store(session, key: str, val: dict) -> Adm:
    adm = session.get(Adm, key)
    if adm is None:
        adm = Adm(key=key)
        session.add(adm)
    adm.val = val
    adm.updated_at = utcnow()
    session.flush()
    return adm


def run_outside_request(session_factory, settings: dict, pm, key: str) -> dict:
    """Run a job in its own transaction (CLI); events are delivered after the commit."""
    started = utcnow()
    try:
        with session_factory() as session, session.begin():
            request = JobRequest(dbsession=session, settings=settings)
            result = run(request, settings, key)
    except Exception as err:
        with session_factory() as session, session.begin():
            store(session, key, failure(started, err))
        raise
    plugins.deliver(pm, request.events)
    return result
