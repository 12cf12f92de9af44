"""Deny by default: every view of the application declares a permission.

Walks every view registered in the Pyramid introspector. A view without a permission, with
one that security/permissions.py does not define, or a public one (NO_PERMISSION_REQUIRED)
that is not in the short list below fails the test.
"""
import inspect

import pytest
from pyramid.security import NO_PERMISSION_REQUIRED

from hinkskalle.plugins import hookimpl
from hinkskalle.security.permissions import Permission

# Public views: "route name -> view function" with the reason. Keep it short and honest.
PUBLIC = {
    ("library.version", "hinkskalle.views.discovery.version"): "discovery, before any login",
    ("library.config", "hinkskalle.views.discovery.library_config"): "discovery for `remote add`",
    ("library.slashes", "hinkskalle.views.library.slashes"): "redirects double slashes, serves nothing",
    ("library.imagefile", "hinkskalle.views.library.pull_image_signed"): "capability URL: signed download link",
    ("library.upload_put", "hinkskalle.views.library_uploads.put_upload"): "capability URL: upload id from an authorized start",
    ("rest.get_token", "hinkskalle.views.accounts.get_token"): "password login",
    ("rest.register", "hinkskalle.views.accounts.register"): "self-registration (off unless enabled)",
    ("keys.lookup", "hinkskalle.views.keys.lookup"): "keyserver lookups are public by protocol",
    ("oci.token", "hinkskalle.views.oci_auth.token_get"): "docker token endpoint (anonymous tokens allowed)",
    ("oci.token", "hinkskalle.views.oci_auth.token_post"): "OAuth2 token endpoint",
    ("oci.base", "hinkskalle.views.oci_auth.token_post"): "OAuth2 refresh at /v2/",
    ("shub.container", "hinkskalle.views.shub.shub_container"): "shub:// is anonymous; privacy checked inside",
}


def registered_views(app):
    """(route name, view function, permission) of every view a request can be routed to."""
    for item in app.registry.introspector.get_category("views"):
        intr = item["introspectable"]
        context = intr["context"]
        if intr["exception_only"] or (inspect.isclass(context) and issubclass(context, BaseException)) \
                or (context is not None and "IExceptionResponse" in repr(context)):
            continue   # error renderers: they run after the permission check has failed
        permissions = [related["value"] for related in item["related"]
                       if related.category_name == "permissions"]
        function = intr["callable"]
        name = f"{function.__module__}.{function.__qualname__}"
        yield intr["route_name"], name, permissions[0] if permissions else None


def test_every_view_declares_a_known_permission(app):
    views = list(registered_views(app))
    assert len(views) >= 3
    missing = [(route, name) for route, name, permission in views if permission is None]
    assert not missing, f"views without a permission: {missing}"
    unknown = [(route, name, permission) for route, name, permission in views
               if permission != NO_PERMISSION_REQUIRED and permission not in set(Permission)]
    assert not unknown, f"permissions that security/permissions.py does not define: {unknown}"


def test_only_the_listed_views_are_public(app):
    public = {(route, name) for route, name, permission in registered_views(app)
              if permission == NO_PERMISSION_REQUIRED}
    assert sorted(public - set(PUBLIC)) == [], "public views missing from the allow-list of this test"
    assert sorted(set(PUBLIC) - public) == [], "allow-list entries that are not (or no longer) public views"


class Sloppy:
    """A plugin that forgets the permission on its view."""

    @hookimpl
    def hinkskalle_configure(self, config):
        config.add_route("library._test.sloppy", "/_test/sloppy")
        config.add_view(lambda request: {}, route_name="library._test.sloppy", renderer="json")


@pytest.mark.parametrize("extra_plugins", [(Sloppy(),)])
def test_the_walk_finds_a_view_without_permission(app):
    sloppy = [permission for route, _, permission in registered_views(app) if route == "library._test.sloppy"]
    assert sloppy == [None]
