"""Front door of the library protocol: discovery and /version (the OCI base endpoint is in oci_auth.py)."""
from __future__ import annotations

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from .common import service_url

VERSION = {"version": "v5.0.0", "apiVersion": "2.0.0-alpha.2"}


@view_config(route_name="library.version", renderer="json", permission=NO_PERMISSION_REQUIRED,
             request_method=("GET", "HEAD"))
def version(request):
    return {"data": VERSION}


@view_config(route_name="library.config", renderer="json", permission=NO_PERMISSION_REQUIRED,
             request_method=("GET", "HEAD"))
def library_config(request):
    settings = request.registry.settings
    base = service_url(request)
    return {
        "libraryAPI": {"uri": base},
        "keystoreAPI": {"uri": settings["hinkskalle.keyserver_url"] or base},
        "tokenAPI": {"uri": base},
        "params": {
            "enable_register": settings["hinkskalle.enable_register"],
            "default_user_quota": settings["hinkskalle.default_user_quota"],
            "default_group_quota": settings["hinkskalle.default_group_quota"],
            "frontend_url": settings["hinkskalle.frontend_url"] or base,
            "singularity_flavor": "apptainer",
        },
    }
