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
    from .views.accounts import user_factory
    from .views.accounts_groups import group_factory
    config.add_route("rest.get_token", "/v1/get-token")
    config.add_route("rest.token_status", "/v1/token-status")
    config.add_route("rest.register", "/v1/register")
    config.add_route("rest.users", "/v1/users")
    config.add_route("rest.user", "/v1/users/{username}", factory=user_factory)
    config.add_route("rest.user_tokens", "/v1/users/{username}/tokens", factory=user_factory)
    config.add_route("rest.user_token", "/v1/users/{username}/tokens/{token_id}", factory=user_factory)
    config.add_route("rest.user_stars", "/v1/users/{username}/stars", factory=user_factory)
    config.add_route("rest.user_star", "/v1/users/{username}/stars/{container_id}", factory=user_factory)
    config.add_route("rest.groups", "/v1/groups")
    config.add_route("rest.group", "/v1/groups/{name}", factory=group_factory)
    config.add_route("rest.group_members", "/v1/groups/{name}/members", factory=group_factory)

    # -- HKP keyserver ----------------------------------------------------------------

    # -- shub ---------------------------------------------------------------------------

    # -- OCI distribution ---------------------------------------------------------------
    config.add_route("oci.base", "/v2/")
