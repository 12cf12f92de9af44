"""The `hinkskalle` command line: `hinkskalle -c INI <command>`."""
from __future__ import annotations

import json
import os
import sys

import click
from sqlalchemy import select

from .config import SettingsError, load_settings


class Env:
    """Settings, database and blob store of one ini file, built on first use."""

    def __init__(self, ini: str):
        self.ini = ini
        self._settings = None

    @property
    def raw_settings(self) -> dict:
        from pyramid.paster import get_appsettings
        if not os.path.isfile(self.ini):
            click.echo(f"hinkskalle: config file {self.ini} not found (use -c INI)", err=True)
            raise SystemExit(2)
        return dict(get_appsettings(self.ini))

    @property
    def settings(self) -> dict:
        if self._settings is None:
            try:
                self._settings = load_settings(self.raw_settings)
            except SettingsError as err:
                for key, message in err.errors.items():
                    click.echo(f"invalid setting {key}: {message}", err=True)
                raise SystemExit(2) from None
        return self._settings

    def session_factory(self):
        from .models import get_engine, get_session_factory
        return get_session_factory(get_engine(self.settings))

    def store(self):
        from .services.storage import store_from_settings
        return store_from_settings(self.settings)

    def plugin_manager(self):
        from .plugins import make_plugin_manager
        return make_plugin_manager(self.settings)


@click.group()
@click.option("-c", "--config", "ini", default="development.ini", show_default=True,
              envvar="HINKSKALLE_CONFIG", help="paste ini file")
@click.pass_context
def cli(ctx, ini):
    """Administer a Hinkskalle registry."""
    ctx.obj = Env(ini)


@cli.group()
def db():
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(env):
    """Create or migrate the schema to the newest version."""
    from .migrations import upgrade
    upgrade(env.settings["sqlalchemy.url"])
    click.echo("database is up to date", err=True)


@cli.group()
def user():
    """Accounts."""


@user.command("add")
@click.argument("name")
@click.option("--email", required=True)
@click.option("--password", default=None, help="omit to create an account without a password")
@click.option("--admin", is_flag=True, default=False)
@click.option("--firstname", default="")
@click.option("--lastname", default="")
@click.pass_obj
def user_add(env, name, email, password, admin, firstname, lastname):
    """Create a local user and its entity."""
    from .services.accounts import AccountError, create_user
    with env.session_factory()() as session, session.begin():
        try:
            create_user(session, env.settings, username=name, email=email, password=password,
                        is_admin=admin, firstname=firstname, lastname=lastname,
                        created_by="cli")
        except AccountError as err:
            click.echo(f"error: {err}", err=True)
            raise SystemExit(1) from None
    click.echo(f"created user {name.lower()}", err=True)


def _user(session, name: str):
    from .services.accounts import find_user
    found = find_user(session, name)
    if found is None:
        click.echo(f"error: no user {name}", err=True)
        raise SystemExit(1)
    return found


def _size(value: str | None) -> int | None:
    from .config import as_size
    try:
        return None if value is None else as_size(value)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--quota") from None


class _Transaction:
    """A session in a transaction; refusals of the services end the command with their reason."""

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        self.session = self.env.session_factory()()
        self.session.begin()
        return self.session

    def __exit__(self, kind, error, _traceback):
        from .errors import RegistryError
        if kind is None:
            self.session.commit()
        self.session.close()
        if isinstance(error, RegistryError):
            click.echo(f"error: {error.text}", err=True)
            raise SystemExit(1) from None


@user.command("list")
@click.pass_obj
def user_list(env):
    """Every account: name, email, source, flags, usage and quota in bytes."""
    from .models import User
    with _Transaction(env) as session:
        for account in session.scalars(select(User).order_by(User.username)):
            flags = ",".join(f for f, on in (("admin", account.is_admin), ("inactive", not account.is_active))
                             if on) or "-"
            click.echo(f"{account.username}\t{account.email}\t{account.source}\t{flags}\t"
                       f"{account.used_quota}/{account.quota or 'unlimited'}")


@user.command("set")
@click.argument("name")
@click.option("--admin/--no-admin", default=None)
@click.option("--active/--inactive", default=None)
@click.option("--quota", default=None, help="bytes, e.g. 10GiB; 0 = unlimited")
@click.option("--password", default=None, help="new password (local accounts)")
@click.pass_obj
def user_set(env, name, admin, active, quota, password):
    """Change an account's admin flag, activity, quota or password."""
    from .models.meta import utcnow
    from .services.accounts import set_password
    quota = _size(quota)
    with _Transaction(env) as session:
        account = _user(session, name)
        for attr, value in (("is_admin", admin), ("is_active", active), ("quota", quota)):
            if value is not None:
                setattr(account, attr, value)
        if password is not None:
            set_password(account, password)
        account.updated_at = utcnow()
    click.echo(f"updated user {account.username}", err=True)


@user.command("remove")
@click.argument("name")
@click.pass_obj
def user_remove(env, name):
    """Delete an account with its tokens and memberships; its entity and images stay."""
    with _Transaction(env) as session:
        session.delete(_user(session, name))
    click.echo(f"removed user {name.lower()}", err=True)


@cli.group()
def group():
    """Groups and their members."""


@group.command("list")
@click.pass_obj
def group_list(env):
    """Every group with its entity and members (role:username)."""
    from .models import Group
    with _Transaction(env) as session:
        for found in session.scalars(select(Group).order_by(Group.name)):
            members = " ".join(f"{m.role}:{m.user.username}" for m in found.memberships)
            entity = found.entity.name if found.entity is not None else "-"
            click.echo(f"{found.name}\t{entity}\t{members}")


@group.command("add")
@click.argument("name")
@click.option("--email", required=True)
@click.option("--admin", "admin_name", required=True, help="the group's first admin")
@click.option("--quota", default=None, help="bytes; default: hinkskalle.default_group_quota")
@click.pass_obj
def group_add(env, name, email, admin_name, quota):
    """Create a group, its entity (the slug of NAME) and its first admin."""
    from .services.accounts import create_group
    quota = _size(quota)
    with _Transaction(env) as session:
        created = create_group(session, env.settings, _user(session, admin_name), name=name, email=email,
                               quota=quota)
    click.echo(f"created group {created.name} with entity {created.entity.name}", err=True)


@group.command("member")
@click.argument("name")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "contributor", "readonly", "none"]), required=True,
              help="`none` removes the member")
@click.pass_obj
def group_member(env, name, username, role):
    """Add USERNAME to group NAME, change their role, or remove them (a group keeps one admin)."""
    from .services.accounts import find_group, set_members
    with _Transaction(env) as session:
        found = find_group(session, name)
        if found is None:
            click.echo(f"error: no group {name}", err=True)
            raise SystemExit(1)
        account = _user(session, username)
        members = {m.user.username: m.role for m in found.memberships}
        members.pop(account.username, None)
        if role != "none":
            members[account.username] = role
        set_members(session, found, [{"role": r, "user": {"username": u}} for u, r in members.items()])
    click.echo(f"group {name}: {account.username} is {role}", err=True)


@cli.group()
def token():
    """API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--comment", default="created on the command line")
@click.pass_obj
def token_create(env, username, comment):
    """Create a manual API token for USERNAME; prints the token alone on stdout."""
    from .models import User
    from .security.tokens import create_token
    with env.session_factory()() as session, session.begin():
        account = session.scalar(select(User).where(User.username == username.lower()))
        if account is None:
            click.echo(f"error: no user {username}", err=True)
            raise SystemExit(1)
        _, secret = create_token(session, account, source="manual", comment=comment)
    click.echo(secret)


@cli.group()
def plugins():
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def plugins_list(env, as_json):
    """Show every loaded plugin and the hooks it implements."""
    from .plugins import plugin_list
    pm = env.plugin_manager()
    rows = plugin_list(pm)
    disabled = env.settings["hinkskalle.plugins.disabled"]
    if as_json:
        click.echo(json.dumps({"enabled": rows, "disabled": disabled}, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {row['distribution'] or ''} {row['version'] or ''}  "
                   f"hooks: {', '.join(row['hooks']) or '-'}")
    for name in disabled:
        click.echo(f"{name:<20} disabled")


@cli.command("check-config")
@click.pass_obj
def check_config(env):
    """Validate every setting; reports all problems at once."""
    try:
        settings = load_settings(env.raw_settings)
    except SettingsError as err:
        for key, message in err.errors.items():
            click.echo(f"invalid setting {key}: {message}", err=True)
        raise SystemExit(1) from None
    from .plugins import PluginError, make_plugin_manager
    try:
        make_plugin_manager(settings)
    except PluginError as err:
        click.echo(f"plugins: {err}", err=True)
        raise SystemExit(1) from None
    click.echo("configuration ok", err=True)


@cli.command("gc")
@click.option("--grace", type=int, default=None, help="seconds (default: hinkskalle.gc_grace)")
@click.option("--wait", type=float, default=300, show_default=True,
              help="seconds to wait for running pushes before giving up")
@click.pass_obj
def gc(env, grace, wait):
    """Remove unreferenced blobs and abandoned uploads (safe while the server runs)."""
    from .services.gc import collect
    report = collect(env.session_factory(), env.store(),
                     env.settings["hinkskalle.gc_grace"] if grace is None else grace, wait=wait)
    if report.busy:
        click.echo(f"error: pushes kept the store busy for {wait} s; nothing removed, try again", err=True)
        raise SystemExit(75)    # EX_TEMPFAIL: cron may simply retry
    click.echo(f"removed {report.blobs_removed} blobs ({report.bytes_removed} bytes), "
               f"{report.orphan_blob_rows} orphaned blob records, {report.expired_uploads} "
               f"expired uploads, {report.upload_files_removed} stray upload files; "
               f"kept {report.kept_recent} recent blobs")


def _run_job(env, key: str) -> dict:
    from .errors import RegistryError
    from .services.jobs import run_outside_request
    try:
        return run_outside_request(env.session_factory(), env.settings, env.plugin_manager(), key)
    except RegistryError as err:
        click.echo(f"error: {err.text}", err=True)
        raise SystemExit(1) from None


@cli.group()
def ldap():
    """LDAP directory."""


@ldap.command("sync")
@click.pass_obj
def ldap_sync(env):
    """Create or update a local account for every user of the LDAP `all_users_filter`."""
    result = _run_job(env, "ldap_sync_results")
    click.echo(f"synced {len(result['synced'])} users, {len(result['conflict'])} conflicts "
               f"with local accounts, {len(result['failed'])} failed")
    for dn in result["conflict"]:
        click.echo(f"conflict: {dn}", err=True)
    for dn in result["failed"]:
        click.echo(f"failed: {dn}", err=True)


@cli.group()
def quotas():
    """Storage quotas."""


@quotas.command("check")
@click.pass_obj
def quotas_check(env):
    """Recompute the usage of every user and entity; list who is over quota."""
    result = _run_job(env, "check_quotas")
    click.echo(f"updated {result['updated']} users and entities; {result['total_space']} bytes stored")
    for line in result["over_quota"]:
        click.echo(f"over quota: {line}")


@cli.command("expire")
@click.pass_obj
def expire(env):
    """Delete images whose expiresAt has passed (their files go with the next gc)."""
    result = _run_job(env, "expire_images")
    click.echo(f"expired {result['updated']} images; {result['space_reclaimed']} bytes for gc to reclaim")


def main(argv=None):
    """Entry point that lets plugins add commands before click parses the arguments."""
    argv = sys.argv[1:] if argv is None else argv
    _add_plugin_commands(argv)
    return cli.main(args=argv, prog_name="hinkskalle")


def _add_plugin_commands(argv):
    ini = "development.ini"
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            ini = argv[i + 1]
        elif arg.startswith("--config="):
            ini = arg.split("=", 1)[1]
    from .plugins import make_plugin_manager
    if not os.path.isfile(ini):
        return
    try:
        pm = make_plugin_manager(load_settings(Env(ini).raw_settings))
    except Exception:  # noqa: BLE001 - a broken config is reported by the command itself
        return
    pm.hook.hinkskalle_add_commands(cli=cli)


@cli.command("init")
@click.option("--admin", "admin_name", default="admin", show_default=True)
@click.pass_obj
def init(env, admin_name):
    """Migrate the database and, on an empty one, create the first admin.

    Prints the admin's generated password and an API token (once).
    """
    import secrets as _secrets

    from .migrations import upgrade
    from .models import User
    from .security.tokens import create_token
    from .services.accounts import create_user
    upgrade(env.settings["sqlalchemy.url"])
    with env.session_factory()() as session, session.begin():
        if session.scalar(select(User).limit(1)) is not None:
            click.echo("database ready (accounts exist already)", err=True)
            return
        password = _secrets.token_urlsafe(12)
        admin = create_user(session, env.settings, username=admin_name, email=f"{admin_name}@localhost",
                            password=password, is_admin=True, created_by="init")
        _, secret = create_token(session, admin, source="manual", comment="first admin token")
    click.echo(f"created admin account\n  username: {admin_name}\n  password: {password}\n  token:    {secret}")
