#!/usr/bin/env python3
"""What the first-party plugins cost a push: `.venv/bin/python benchmarks/plugins_overhead.py`.

Pushes the same number of small OCI blobs (single-POST uploads, in process through webtest,
SQLite) into an application without plugins and into one with all four: audit (fsync on
every line), policy (three rules), scan (a scanner taking 0.2 s per blob) and webhook
(one receiver that accepts connections and never answers, one that is dead). Prints the
median and 95th percentile push latency of both. The point: a slow or dead receiver and a
slow scanner must not show up in push latency.

Needs the plugins installed (`pip install -e plugins/hinkskalle-*`).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from hinkskalle import make_config
from hinkskalle.config import load_settings
from hinkskalle.migrations import upgrade
from hinkskalle.models import get_engine
from hinkskalle.plugins import make_plugin_manager
from hinkskalle.security.tokens import create_token
from hinkskalle.services.accounts import create_user


def build_app(folder: Path, plugin_settings: dict, plugins: tuple):
    url = f"sqlite:///{folder}/db.sqlite"
    upgrade(url)
    settings = load_settings({"here": str(folder), "sqlalchemy.url": url,
                              "hinkskalle.storage.path": str(folder / "store"),
                              "hinkskalle.secret_key": "bench", **plugin_settings}, environ={})
    settings["hinkskalle.plugin_manager"] = make_plugin_manager(settings, load_entrypoints=False, extra=plugins)
    with Session(get_engine(settings)) as session, session.begin():
        user = create_user(session, settings, username="bench", email="bench@localhost", password=None,
                           is_admin=True, created_by="bench")
        token = create_token(session, user, source="manual")[1]
    return make_config(settings).make_wsgi_app(), token


def push_latencies(app, token: str, count: int, size: int) -> list[float]:
    import webtest
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost"})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    latencies = []
    for n in range(count):
        blob = os.urandom(size)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        started = time.perf_counter()
        client.post(f"/v2/bench/coll/cont/blobs/uploads/?digest={digest}", blob, headers=headers, status=201)
        latencies.append(time.perf_counter() - started)
    return latencies


def describe(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"{name:<34} median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--size", type=int, default=64 * 1024, help="bytes per blob")
    args = parser.parse_args()
    # Undelivered webhooks are logged one by one: thousands of lines that are expected here.
    logging.getLogger("hinkskalle_webhook").setLevel(logging.CRITICAL)
    import hinkskalle_audit
    import hinkskalle_policy
    import hinkskalle_scan
    import hinkskalle_webhook

    # A receiver that accepts TCP connections (the kernel's backlog) but never answers.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(1024)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    webhook_urls = f"http://127.0.0.1:{hanging.getsockname()[1]}/ http://127.0.0.1:{dead_port}/"
    configurations = {
        "no plugins": ({}, ()),
        "audit (fsync)": ({"hinkskalle_audit.path": "{folder}/audit.jsonl", "hinkskalle_audit.fsync": "true"},
                          (hinkskalle_audit,)),
        "policy (3 rules)": ({"hinkskalle_policy.rules": "a b c", "hinkskalle_policy.a.max_size": "1GiB",
                              "hinkskalle_policy.b.repositories": "prod/*",
                              "hinkskalle_policy.b.require_signature": "true",
                              "hinkskalle_policy.c.media_types": "application/*"}, (hinkskalle_policy,)),
        "scan (0.2 s scanner)": ({"hinkskalle_scan.command": "sh -c 'sleep 0.2' scanner {path}"},
                                 (hinkskalle_scan,)),
        "webhook (hanging + dead receiver)": ({"hinkskalle_webhook.urls": webhook_urls,
                                               "hinkskalle_webhook.timeout": "30",
                                               "hinkskalle_webhook.backoff": "0.1"}, (hinkskalle_webhook,)),
    }
    configurations["all four"] = ({k: v for options, _ in configurations.values() for k, v in options.items()},
                                  (hinkskalle_audit, hinkskalle_policy, hinkskalle_scan, hinkskalle_webhook))
    print(f"{args.pushes} pushes of {args.size} bytes each (OCI single POST, in process, SQLite)")
    try:
        for name, (options, plugins) in configurations.items():
            with tempfile.TemporaryDirectory() as folder:
                options = {k: v.replace("{folder}", folder) for k, v in options.items()}
                app, token = build_app(Path(folder), options, plugins)
                print(describe(name, push_latencies(app, token, args.pushes, args.size)), flush=True)
                for key in ("hinkskalle_webhook", "hinkskalle_scan"):
                    if key in app.registry:
                        app.registry[key].close(timeout=0)
    finally:
        hanging.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
