"""Every hook a Hinkskalle plugin can implement.

Plugins are pluggy plugins registered under the entry point group ``hinkskalle``; mark
implementations with ``hinkskalle.hookimpl``. Hooks named ``hinkskalle_check_*`` run inside
the request's database transaction and may veto; hooks named ``hinkskalle_on_*`` run after
a successful commit with frozen event data and the application's Pyramid ``registry`` (for
state a plugin keeps there, ``registry.settings``, ``registry["dbsession_factory"]`` and
``registry["blobstore"]``); their failures are logged, never raised. Implementations may
leave out arguments they do not use (``def hinkskalle_on_push(event)`` is fine).
docs/plugins.md documents each hook with its exact signature; a test keeps the two in step.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hinkskalle")

# -- start-up -----------------------------------------------------------------------


@hookspec
def hinkskalle_configure(config):
    """Extend the Pyramid configuration while the application is built.

    Called once at start-up, after Hinkskalle's own routes and views are added and before
    the configuration is committed. Add routes, views, request methods or tweens here; read
    your settings from ``config.get_settings()`` (use your own key prefix, e.g.
    ``hinkskalle_webhook.url``). Return value is ignored.
    """


@hookspec
def hinkskalle_add_commands(cli):
    """Add subcommands to the ``hinkskalle`` command line.

    ``cli`` is the root ``click.Group``; call ``cli.add_command(...)``. Called once when the
    command line starts. Return value is ignored.
    """


# -- authentication -----------------------------------------------------------------


@hookspec(firstresult=True)
def hinkskalle_authenticate(request, username, password):
    """Check a username and password; return the ``User`` they log in, or None to pass.

    Called for password logins (``/v1/get-token``, Basic credentials, docker token login)
    inside the request's transaction, so an implementation may create or update the local
    account (as LDAP does). Stops at the first non-None result. Raise
    ``hinkskalle.errors.Unauthorized`` to refuse the login outright (no further method is
    tried), or ``hinkskalle.errors.RegistryError`` when the method is unavailable.
    """


@hookspec
def hinkskalle_principals(request, user):
    """Return extra principal strings (a list) for an authenticated ``user``, or None.

    Called once per request that checks a permission. The returned strings join the
    built-in ones (``user:<name>``, ``group:<name>:<role>``, ``role:admin``) and may be
    granted permissions in resource ACLs by other plugins.
    """


# -- policy checks inside the transaction ----------------------------------------------


@hookspec
def hinkskalle_check_push(request, event):
    """Decide whether a push may complete; return a reason string to veto it, or None.

    Called inside the transaction right before an image, blob or manifest becomes visible
    (library upload completion, OCI blob upload, OCI manifest PUT, and when a manifest
    reveals an uploaded blob to be a SIF image, as in ORAS pushes), with ``event`` the
    ``PushEvent`` that would be delivered afterwards and ``event.path`` the uploaded blob's
    file (None for manifests). The first non-None reason vetoes: nothing becomes visible and
    the client receives the reason in its protocol's error format (403). All
    implementations run; the first veto wins.
    """


@hookspec
def hinkskalle_check_pull(request, event):
    """Decide whether a pull may go ahead; return a reason string to refuse it, or None.

    Called inside the transaction before a library image, shub image, OCI blob or manifest
    is served, with the ``PullEvent`` that would be delivered. Used e.g. to quarantine
    images a scanner rejected. The first non-None reason refuses the pull (403).
    """


# -- events after commit --------------------------------------------------------------


@hookspec
def hinkskalle_on_push(event, registry):
    """An image, blob or manifest was pushed (``PushEvent``), after the commit.

    Fires once per completed push whichever protocol did it (library, OCI, ORAS). Runs in
    the request's thread after commit: keep it quick or hand the work to a thread or queue.
    ``event.path`` is None here; the blob's file is ``registry["blobstore"].path(event.digest)``.
    Exceptions are logged and never reach the client. Return value is ignored.
    """


@hookspec
def hinkskalle_on_pull(event, registry):
    """An image, blob or manifest was downloaded (``PullEvent``), after the commit.

    HEAD requests and ranged re-requests of the same download do not fire it twice within
    one request. Exceptions are logged. Return value is ignored.
    """


@hookspec
def hinkskalle_on_tag(event, registry):
    """A tag was set, moved or removed (``TagEvent``), after the commit.

    Exceptions are logged. Return value is ignored.
    """


@hookspec
def hinkskalle_on_delete(event, registry):
    """An image, manifest, blob, tag or container was deleted (``DeleteEvent``), after the commit.

    Exceptions are logged. Return value is ignored.
    """


@hookspec
def hinkskalle_on_login(event, registry):
    """A login succeeded or failed (``LoginEvent``), after the request.

    Fires for password logins and token creation; failed logins are delivered even though
    nothing is committed. Exceptions are logged. Return value is ignored.
    """
