"""Every permission a view can require, and the principals they are granted to.

Principals are plain strings: ``user:<name>``, ``group:<name>:<role>``, ``role:admin``
plus Pyramid's ``system.Everyone`` and ``system.Authenticated``.
"""
from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    ADMIN = "admin"                  # site administration
    AUTHENTICATED = "authenticated"  # any logged-in account (search, token status, own profile)
    BROWSE = "browse"                # library metadata of entities, collections, containers
    DELETE = "delete"                # delete images, tags, manifests, blobs, containers
    EDIT = "edit"                    # change metadata of entities, collections, containers
    OCI_PULL = "oci-pull"            # OCI/ORAS pulls (need a login even for public repositories)
    PULL = "pull"                    # library/shub image downloads (public unless private)
    PUSH = "push"                    # upload, create children, tag, put manifests


READ = (Permission.BROWSE, Permission.PULL, Permission.OCI_PULL)
WRITE = (Permission.PUSH, Permission.DELETE, Permission.EDIT)

ADMIN_PRINCIPAL = "role:admin"


def user_principal(username: str) -> str:
    return f"user:{username}"


def group_principal(group_name: str, role: str) -> str:
    return f"group:{group_name}:{role}"
