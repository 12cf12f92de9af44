"""Hinkskalle REST: `/v1/latest`, admin job records (`/v1/adm/<key>`), LDAP status and ping
(reference sections 3.10, 4.10, 4.17).

Jobs run synchronously when asked to (`POST /v1/adm/<key>/run`): this server has no job
queue, and each job is a few queries. A failed job is recorded after the request's own
transaction was rolled back.
"""
from __future__ import annotations

from pyramid.view import view_config
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..errors import BadRequest, NotAcceptable, NotFound, RegistryError
from ..models import Adm, Collection, Container, Tag
from ..models.meta import utcnow
from ..models.registry import SIF_CONFIG_MEDIA_TYPE
from ..schemas import accounts as schemas
from ..schemas.library import container_json, container_stats, image_type
from ..security.permissions import Permission
from ..services import jobs
from .common import read_json

LATEST_CONTAINERS = 10
LATEST_SCAN = 1000       # newest tags looked at; enough for 10 readable containers in practice


def _manifest_type(manifest) -> str | None:
    if manifest is None:
        return None
    if manifest.config_media_type == SIF_CONFIG_MEDIA_TYPE:
        return "singularity"
    if manifest.artifact_type or (manifest.config_media_type or "").endswith("empty.v1+json"):
        return "oras"
    return "oci"


@view_config(route_name="rest.latest", request_method="GET", renderer="json",
             permission=Permission.AUTHENTICATED)
def latest(request):
    """The containers with the newest tags (that the caller may pull), with all their tags."""
    tags = request.dbsession.scalars(select(Tag).order_by(Tag.created_at.desc(), Tag.id.desc())
                                      .limit(LATEST_SCAN).options(
                                          selectinload(Tag.image), selectinload(Tag.manifest),
                                          selectinload(Tag.container).selectinload(Container.collection)
                                          .selectinload(Collection.entity))).all()
    found: dict[int, dict] = {}
    for tag in tags:
        container = tag.container
        if container.id not in found:
            if len(found) >= LATEST_CONTAINERS or not request.has_permission(Permission.PULL, container):
                continue
            found[container.id] = {"container": container, "tags": []}
        found[container.id]["tags"].append({
            "name": tag.name, "arch": tag.arch,
            "imageType": image_type(tag.image) if tag.image is not None else None, "manifestType": _manifest_type(tag.manifest)})
    stats = container_stats(request, found)
    for entry in found.values():
        entry["container"] = container_json(request, entry["container"], stats)
    return {"data": list(found.values())}


# -- adm records and jobs ---------------------------------------------------------------------

def _key(request, unknown=NotFound) -> str:
    key = request.matchdict["key"]
    if key not in jobs.JOBS:
        raise unknown(f"unknown key {key}; one of {', '.join(sorted(jobs.JOBS))}")
    return key


@view_config(route_name="rest.adm", request_method="GET", renderer="json", permission=Permission.ADMIN)
def get_adm(request):
    key = _key(request)
    adm = request.dbsession.get(Adm, key)
    if adm is None:
        raise NotFound(f"no results for {key} yet")
    return {"data": {"key": adm.key, "val": adm.val}}


@view_config(route_name="rest.adm", request_method="PUT", renderer="json", permission=Permission.ADMIN)
def put_adm(request):
    key = _key(request, unknown=BadRequest)
    data = schemas.validate(schemas.strict(schemas.AdmSchema), read_json(request))
    adm = jobs.store(request.dbsession, key, data["val"])
    return {"data": {"key": adm.key, "val": adm.val}}


def _run(request, key: str) -> dict:
    settings = request.registry.settings
    started = utcnow()
    try:
        result = jobs.run(request, settings, key)
    except RegistryError as err:
        session_factory = request.registry["dbsession_factory"]
        failed = jobs.failure(started, err)

        def record(_request):
            with session_factory() as session, session.begin():
                jobs.store(session, key, failed)
        request.add_finished_callback(record)
        raise
    return {"data": {
        "id": f"{key}-{started.strftime('%Y%m%d%H%M%S%f')}", "status": "finished", "origin": "sync",
        "funcName": f"hinkskalle.services.jobs.{jobs.JOBS[key].__name__}", "description": key,
        "meta": {"progress": "done", "result": result}, "result": result,
        "enqueuedAt": started.isoformat(), "startedAt": started.isoformat(),
        "endedAt": result["finished"], "excInfo": None}}


@view_config(route_name="rest.adm_run", request_method="POST", renderer="json", permission=Permission.ADMIN)
def run_adm(request):
    return _run(request, _key(request, unknown=NotAcceptable))


@view_config(route_name="rest.ldap_sync", request_method="POST", renderer="json", permission=Permission.ADMIN)
def ldap_sync(request):
    """Deprecated alias of `POST /v1/adm/ldap_sync_results/run`."""
    return _run(request, "ldap_sync_results")


# -- LDAP ---------------------------------------------------------------------------------------

@view_config(route_name="rest.ldap_status", request_method="GET", renderer="json", permission=Permission.ADMIN)
def ldap_status(request):
    settings = request.registry.settings
    if not settings["hinkskalle.ldap.enabled"]:
        return {"data": {"status": "disabled"}}
    prefix = "hinkskalle.ldap."
    config = {key[len(prefix):]: value for key, value in settings.items()
              if key.startswith(prefix) and key != prefix + "bind_password"}
    return {"data": {"status": "configured", "config": config}}


@view_config(route_name="rest.ldap_ping", request_method="GET", renderer="json", permission=Permission.ADMIN)
def ldap_ping(request):
    settings = request.registry.settings
    if not settings["hinkskalle.ldap.enabled"]:
        return {"data": {"status": "failed", "error": "LDAP not configured."}}
    from ..auth.ldap import Directory
    try:
        Directory(settings).ping()
    except RegistryError as err:
        return {"data": {"status": "failed", "error": err.text}}
    return {"data": {"status": "ok"}}
