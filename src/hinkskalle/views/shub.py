"""shub:// (Singularity Hub) pulls, reference section 5: `/api/container/<collection>/<container>[:tag]`
in the `default` entity answers where the library download of that tag is."""
from __future__ import annotations

from urllib.parse import quote

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..errors import Denied, NotFound
from ..resources import find_container
from ..security.permissions import Permission
from ..services import registry
from .common import service_url
from .library import split_ref


@view_config(route_name="shub.container", request_method=("GET", "HEAD"), renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def shub_container(request):
    collection = request.matchdict["collection"]
    name, tag = split_ref(request.matchdict["ref"])
    container = find_container(request.dbsession, "default", collection, name)
    if container is None:
        raise NotFound(f"container {collection}/{name} not found")
    # Public containers for everybody; private ones (container or collection) only for their readers.
    if not request.has_permission(Permission.PULL, container):
        raise Denied("Private image, access denied.")
    found = registry.find_tag(request.dbsession, container, tag.lower(), registry.default_arch(request))
    if found is None or found.image is None:
        raise NotFound(f"Tag {tag} on container {collection}/{name} does not exist.")
    path = f"default/{quote(container.collection.name)}/{quote(container.name)}:{quote(found.name)}"
    return {"image": f"{service_url(request)}/v1/imagefile/{path}", "name": container.name, "tag": found.name}
