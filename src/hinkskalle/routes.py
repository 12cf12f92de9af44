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
    # Views and factories: views/library.py, views/library_uploads.py. Reference forms use
    # `default` for missing entity/collection; `{ref}` is `container[:tag|:sha256.<hex>]`.
    from .views import library as lib
    config.add_route_predicate("double_slash", lib.DoubleSlashPredicate)
    config.add_route("library.slashes", "/v1/*rest", double_slash=True)
    config.add_route("library.entities", "/v1/entities")
    config.add_route("library.entity_default", "/v1/entities/", factory=lib.entity_factory)
    config.add_route("library.entity", "/v1/entities/{entity}", factory=lib.entity_factory)
    config.add_route("library.collections", "/v1/collections")
    config.add_route("library.collections_default", "/v1/collections/", factory=lib.collection_factory)
    config.add_route("library.entity_collections", "/v1/collections/{entity}", factory=lib.entity_factory)
    config.add_route("library.collection_default", "/v1/collections/{entity}/", factory=lib.collection_factory)
    config.add_route("library.collection", "/v1/collections/{entity}/{collection}", factory=lib.collection_factory)
    config.add_route("library.containers", "/v1/containers")
    config.add_route("library.container_short", "/v1/containers/{container}", factory=library_container_factory)
    config.add_route("library.collection_containers", "/v1/containers/{entity}/{collection}",
                     factory=lib.collection_factory)
    config.add_route("library.container", "/v1/containers/{entity}/{collection}/{container}",
                     factory=library_container_factory)
    config.add_route("library.container_images", "/v1/containers/{entity}/{collection}/{container}/images",
                     factory=library_container_factory)
    config.add_route("library.images", "/v1/images")
    config.add_route("library.image_tags", "/v1/images/{entity}/{collection}/{ref}/tags", factory=lib.image_factory)
    config.add_route("library.image_inspect", "/v1/images/{entity}/{collection}/{ref}/inspect",
                     factory=lib.image_factory)
    config.add_route("library.image", "/v1/images/{entity}/{collection}/{ref}", factory=lib.image_factory)
    config.add_route("library.image_c", "/v1/images/{collection}/{ref}", factory=lib.image_factory)
    config.add_route("library.image_n", "/v1/images/{ref}", factory=lib.image_factory)
    # POST /v1/imagefile/<imageId> is the v1 upload; GET with one segment is a short-form pull.
    config.add_route("library.upload_v1", "/v1/imagefile/{image_id}", request_method="POST",
                     factory=lib.image_id_factory)
    config.add_route("library.imagefile", "/v1/imagefile/{entity}/{collection}/{ref}", factory=lib.image_factory)
    config.add_route("library.imagefile_c", "/v1/imagefile/{collection}/{ref}", factory=lib.image_factory)
    config.add_route("library.imagefile_n", "/v1/imagefile/{ref}", factory=lib.image_factory)
    config.add_route("library.upload_put", "/v2/imagefile/_upload/{upload_id}")
    config.add_route("library.upload_v2", "/v2/imagefile/{image_id}", factory=lib.image_id_factory)
    config.add_route("library.upload_complete", "/v2/imagefile/{image_id}/_complete", factory=lib.image_id_factory)
    config.add_route("library.multipart", "/v2/imagefile/{image_id}/_multipart", factory=lib.image_id_factory)
    config.add_route("library.multipart_complete", "/v2/imagefile/{image_id}/_multipart_complete",
                     factory=lib.image_id_factory)
    config.add_route("library.multipart_abort", "/v2/imagefile/{image_id}/_multipart_abort",
                     factory=lib.image_id_factory)
    config.add_route("library.tags_v1", "/v1/tags/{container_id}", factory=lib.container_id_factory)
    config.add_route("library.tags_v2", "/v2/tags/{container_id}", factory=lib.container_id_factory)
    config.add_route("library.search", "/v1/search")

    # -- Hinkskalle REST (users, tokens, groups, admin) ----------------------------------
    from .views.accounts import user_factory
    from .views.accounts_download import download_factory
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
    config.add_route("rest.download_token", "/v1/get-download-token")
    config.add_route("rest.manifest_download", "/v1/manifests/{id}/download",
                     factory=download_factory("manifest"))
    config.add_route("rest.image_download", "/v1/download/images/{id}", factory=download_factory("image"))
    config.add_route("rest.latest", "/v1/latest")
    config.add_route("rest.adm", "/v1/adm/{key}")
    config.add_route("rest.adm_run", "/v1/adm/{key}/run")
    config.add_route("rest.ldap_sync", "/v1/ldap/sync")
    config.add_route("rest.ldap_status", "/v1/ldap/status")
    config.add_route("rest.ldap_ping", "/v1/ldap/ping")

    # -- HKP keyserver ----------------------------------------------------------------
    config.add_route("keys.add", "/pks/add")
    config.add_route("keys.lookup", "/pks/lookup")

    # -- shub ---------------------------------------------------------------------------
    config.add_route("shub.container", "/api/container/{collection}/{ref}")

    # -- OCI distribution ---------------------------------------------------------------
    # Fixed paths first; upload routes before the blob route (`uploads` is no digest).
    from .views.oci_auth import push_target_factory, repository_factory
    config.add_route("oci.base", "/v2/")
    config.add_route("oci.token", "/v2/token")
    config.add_route("oci.catalog", "/v2/_catalog")
    config.add_route("oci.uploads", f"/v2/{OCI_NAME}/blobs/uploads/", factory=push_target_factory)
    config.add_route("oci.upload", f"/v2/{OCI_NAME}/blobs/uploads/{{upload_id}}",
                     factory=repository_factory)
    config.add_route("oci.blob", f"/v2/{OCI_NAME}/blobs/{{digest}}", factory=repository_factory)
    config.add_route("oci.manifest", f"/v2/{OCI_NAME}/manifests/{{reference}}",
                     factory=push_target_factory)
    config.add_route("oci.tags", f"/v2/{OCI_NAME}/tags/list", factory=repository_factory)
    config.add_route("oci.referrers", f"/v2/{OCI_NAME}/referrers/{{digest}}", factory=repository_factory)
