"""Every route of every protocol, in one file, read top to bottom.

Route names are dotted by protocol: `library.*` and `rest.*` answer in the library error
format, `oci.*` in the OCI one, `keys.*` is the HKP keyserver, `shub.*` Singularity Hub.
Order matters where patterns overlap: specific library `/v2/imagefile` and `/v2/tags`
routes come before the OCI catch-all `/v2/{name}/...` patterns.
"""
from __future__ import annotations

from .resources import (library_container_factory, oci_container_factory,
                        oci_push_factory)

# An OCI repository name: 1-3 path components (validated again by the factory).
OCI_NAME = r"{name:[^/]+(?:/[^/]+)*?}"


def includeme(config):
    # -- discovery ------------------------------------------------------------------
    config.add_route("library.version", "/version")
    config.add_route("library.config", "/assets/config/config.prod.json")

    # -- library API (entities, collections, containers, images, uploads, tags, search)
    # (filled in by the library protocol work)

    # -- Hinkskalle REST (users, tokens, groups, admin) ----------------------------------

    # -- HKP keyserver ----------------------------------------------------------------

    # -- shub ---------------------------------------------------------------------------

    # -- OCI distribution ---------------------------------------------------------------
    config.add_route("oci.base", "/v2/")
