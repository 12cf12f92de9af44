"""Docker token login and the OCI base endpoint, plus the route factories of OCI routes.

Clients that get a 401 follow the `WWW-Authenticate: Bearer realm=.../v2/token` challenge:
they fetch a short-lived signed token there (Basic credentials, or the OAuth2 `password` and
`refresh_token` grants) for the scopes they need, and send it as Bearer. The token carries
only the actions the user really has on each repository; the security policy confines it
to them. Hinkskalle clients keep working: Basic at `GET /v2/` returns an API token.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..errors import BadRequest, NameInvalid, Unauthorized
from ..events import LoginEvent
from ..models.meta import utcnow
from ..resources import oci_container_factory, oci_push_factory, resolve_path, split_oci_name
from ..security.permissions import Permission
from ..security.policy import REGISTRY_AUDIENCE, Identity, decode_basic, parse_authorization
from ..security.tokens import create_token, find_token, sign
from ..services import manifests, registry
from .common import body_chunks

ACTIONS = {"pull": Permission.OCI_PULL, "push": Permission.PUSH, "delete": Permission.DELETE}


# -- route factories -------------------------------------------------------------------

def _challenge_scope(request) -> None:
    """Name the scope a 401 should ask for; anonymous callers get the challenge at once
    (OCI needs a login even for public repositories), before anything is looked up."""
    actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(request.method, "pull,push")
    request.__dict__["oci_scope"] = f"repository:{request.matchdict['name']}:{actions}"
    if request.identity is None:
        raise Unauthorized("authentication required")


def repository_factory(request):
    """Context of OCI routes on an existing repository."""
    _challenge_scope(request)
    return oci_container_factory(request)


def push_target_factory(request):
    """Context of OCI routes whose writes may create the repository (upload start, manifest PUT).
    A manifest read by tag finds the tag in the same query."""
    _challenge_scope(request)
    if request.method in ("POST", "PUT"):
        return oci_push_factory(request)
    reference = request.matchdict.get("reference")
    if request.method in ("GET", "HEAD") and reference and not manifests.is_digest_reference(reference):
        return oci_container_factory(request, tag=(reference, registry.default_arch(request)))
    return oci_container_factory(request)


# -- GET /v2/ --------------------------------------------------------------------------

@view_config(route_name="oci.base", renderer="json", permission=Permission.AUTHENTICATED,
             request_method=("GET", "HEAD"))
def oci_base(request):
    """Version check; with Basic credentials also the Hinkskalle login (an API token)."""
    request.response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    if _basic_secret(request) is None:
        return {}
    lifetime = request.registry.settings["hinkskalle.token_expiry"]
    _, secret = create_token(request.dbsession, request.user, source="auto",
                             expires_at=utcnow() + timedelta(seconds=lifetime))
    return _token_body(secret, lifetime, scope="all")


def _token_body(token: str, lifetime: int, **extra) -> dict:
    issued = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return dict({"token": token, "access_token": token, "token_type": "Bearer",
                 "expires_in": lifetime, "issued_at": issued}, **extra)


# -- /v2/token -------------------------------------------------------------------------

def parse_scopes(values: list[str]) -> list[tuple[str, str, list[str]]]:
    """(type, name, actions) of every `type:name:actions` scope; unknown shapes are ignored."""
    scopes = []
    for value in values:
        for item in value.split():
            kind, _, rest = item.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name and actions:
                scopes.append((kind, name, [a for a in actions.split(",") if a]))
    return scopes


def granted_access(request, scopes) -> dict[str, list[str]]:
    """{canonical repository path: actions} the caller really has among those asked for."""
    access: dict[str, list[str]] = {}
    for kind, name, wanted in scopes:
        if kind != "repository":
            continue
        try:
            context = resolve_path(request, *split_oci_name(name))
        except NameInvalid:
            continue
        if "*" in wanted:
            wanted = list(ACTIONS)
        have = access.setdefault(context.path, [])
        for action in wanted:
            permission = ACTIONS.get(action)
            if permission and action not in have and request.has_permission(permission, context):
                have.append(action)
    return {path: actions for path, actions in access.items() if actions}


def issue(request, identity: Identity | None, scopes, **extra) -> dict:
    settings = request.registry.settings
    lifetime = settings["hinkskalle.oci_token_expiry"]
    claims = {"access": granted_access(request, scopes) if identity else {}}
    if identity is not None:
        claims["sub"] = identity.user.username
        request.emit(LoginEvent(repository="", actor=identity.user.username, address=request.client_address,
                                protocol="oci", success=True, method="registry-token"))
    token = sign(settings, claims, lifetime, audience=REGISTRY_AUDIENCE)
    return _token_body(token, lifetime, **extra)


@view_config(route_name="oci.token", renderer="json", permission=NO_PERMISSION_REQUIRED,
             request_method="GET")
def token_get(request):
    """Docker token flow: Basic credentials (password or API token) or anonymous."""
    identity = request.identity          # wrong credentials raise Unauthorized here
    extra = {}
    secret = _basic_secret(request)
    if (secret and identity.token is not None and identity.token.source == "manual"
            and request.GET.get("offline_token") == "true"):
        # Docker keeps a refresh token instead of the password; a manual API token is one.
        extra["refresh_token"] = secret
    return issue(request, identity, parse_scopes(request.GET.getall("scope")), **extra)


def _basic_secret(request) -> str | None:
    """The secret of Basic credentials (already checked by the security policy), else None."""
    parsed = parse_authorization(request.headers.get("Authorization"))
    if parsed is None or parsed[0] != "basic":
        return None
    return decode_basic(parsed[1])[1]


@view_config(route_name="oci.token", renderer="json", permission=NO_PERMISSION_REQUIRED,
             request_method="POST")
@view_config(route_name="oci.base", renderer="json", permission=NO_PERMISSION_REQUIRED,
             request_method="POST")
def token_post(request):
    """OAuth2 grants: `password` (username + password or API token) and `refresh_token`
    (a manual API token, as `docker login` stores it)."""
    raw = b"".join(body_chunks(request, limit=64 * 1024)).decode("utf-8", "replace")
    form = {key: values[-1] for key, values in parse_qs(raw).items()}
    grant = form.get("grant_type", "refresh_token" if "refresh_token" in form else None)
    if grant == "password":
        if not form.get("username") or not form.get("password"):
            raise Unauthorized("username and password are required")
        identity = request.authenticate_login(form["username"], form["password"])
        if identity is None:
            raise Unauthorized("invalid username or password")
        extra = {}
    elif grant == "refresh_token":
        token = find_token(request.dbsession, form.get("refresh_token", ""))
        if token is None:
            raise Unauthorized("no valid refresh token")
        if token.source != "manual":
            raise Unauthorized("only manual tokens allowed")
        identity = Identity(token.user, "token", token)
        extra = {"refresh_token": form["refresh_token"]}
    else:
        raise BadRequest(f"unsupported grant_type {grant!r}")
    # Permission checks below are for this identity, not for the (absent) Authorization header.
    request.__dict__["_hinkskalle_identity"] = identity
    request.__dict__.pop("_hinkskalle_principals", None)
    scopes = parse_scopes(parse_qs(raw).get("scope", []))
    return issue(request, identity, scopes, scope=" ".join(parse_qs(raw).get("scope", [])), **extra)
