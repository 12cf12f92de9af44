"""Hinkskalle: a container registry for Singularity/Apptainer and OCI clients."""
from __future__ import annotations

import ctypes
import gc
import os
import sys

from pyramid.config import Configurator
from pyramid.renderers import JSON

from .config import SettingsError, load_settings
from .plugins import PluginError, hookimpl  # noqa: F401  (hookimpl: re-exported for plugin authors)

__version__ = "5.0.0.dev0"


def make_config(settings: dict) -> Configurator:
    from .resources import root_factory

    config = Configurator(settings=settings, root_factory=root_factory)
    config.add_renderer("json", JSON(sort_keys=True))
    # Order matters: the database and the blob store first, then plugins (the security
    # policy asks them to authenticate), then security, then routes and views.
    config.include(".models")             # SQLAlchemy session joined to pyramid_tm
    config.include(".services.storage")   # content-addressed blob store
    config.include(".services.gc_lock")   # write requests hold off gc's removals until committed
    config.include(".services.counters")  # download counters batched off the pull requests
    config.include(".plugins")            # plugin manager, request.hook, request.emit
    config.include(".security.policy")    # Authorization header -> identity -> principals
    config.include(".security.addresses") # the caller's address, through trusted proxies only
    config.include(".routes")             # every route of every protocol
    config.scan(".views")
    config.registry["plugin_manager"].hook.hinkskalle_configure(config=config)
    return config


def make_app(settings: dict):
    """The WSGI application of `settings`: the configuration, committed and made fast."""
    config = make_config(settings)
    bake_request_extensions(config)
    return config.make_wsgi_app()


def bake_request_extensions(config: Configurator) -> None:
    """Put the methods and properties added with `add_request_method` (ours and the plugins')
    on one request class, made once. Pyramid otherwise makes a new class for every request
    to hold them: 9% of a manifest GET's CPU in-process (958 -> 868 us), and a class per
    request for the garbage collector. Extensions added after this still work; they are
    applied per request as before; so is everything when the request factory is not a class."""
    from pyramid.interfaces import IRequestExtensions, IRequestFactory
    from pyramid.request import Request

    config.commit()
    registry = config.registry
    extensions = registry.queryUtility(IRequestExtensions)
    if extensions is None:
        return
    base = registry.queryUtility(IRequestFactory, default=Request)
    if not isinstance(base, type):
        return
    attributes = {**extensions.methods, **extensions.descriptors, "__module__": base.__module__}
    config.set_request_factory(type(base.__name__, (base,), attributes))
    registry.unregisterUtility(provided=IRequestExtensions)
    config.commit()


def main(global_config, **settings):
    """Paste entry point (`pserve development.ini`)."""
    try:
        settings = load_settings(dict(global_config, **settings))
    except SettingsError as err:
        for key, message in err.errors.items():
            print(f"hinkskalle: invalid setting {key}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    _create_schema_on_first_start(settings)
    try:
        app = make_app(settings)
    except PluginError as err:
        print(f"hinkskalle: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    # Everything loaded so far lives as long as the process: keep the garbage collector off
    # it. Forked server processes then share these pages instead of copying them when a
    # collection touches them (measured: 199 -> 161 MiB for gunicorn's three processes),
    # and collections during requests get shorter (manifest GET p99 230 -> 128 ms).
    gc.freeze()
    limit_malloc_arenas()
    return app


M_ARENA_MAX = -8     # glibc's malloc.h


def limit_malloc_arenas() -> None:
    """One glibc malloc arena per core instead of eight: each server thread otherwise gets an
    arena of its own, which keeps the large buffers it freed (measured with waitress: +8 MiB
    per thread after a Range download, 92 -> 220 MiB at 16 threads; gunicorn's manifest run
    160 -> 149 MiB). Python allocates under the GIL, so more arenas bought no throughput
    (pushes and manifest GETs measured the same). An operator's MALLOC_ARENA_MAX wins; no-op
    where malloc is not glibc's."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mallopt(M_ARENA_MAX, cores or 1)


def _create_schema_on_first_start(settings: dict) -> None:
    """An empty database gets the schema, so `pserve development.ini` works on its own.

    A database with tables is left alone: upgrades stay `hinkskalle db upgrade`'s job.
    """
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from .models import get_engine
    engine = get_engine(settings)
    try:
        empty = not inspect(engine).get_table_names()
    except OperationalError as err:
        print(f"hinkskalle: cannot use the database {engine.url!r}: {err.orig}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        engine.dispose()
    if empty:
        from .migrations import upgrade   # alembic costs ~12 MiB: only import it when needed
        upgrade(settings["sqlalchemy.url"])
