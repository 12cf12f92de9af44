"""Helpers for the OCI tests: accounts with tokens and a small client over webtest."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest

from hinkskalle.testing import auth_header

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors(response) -> list[str]:
    return [e["code"] for e in response.json["errors"]]


@dataclass
class Client:
    """An OCI client speaking through webtest with one account's token."""
    app: object
    token: str | None

    @property
    def headers(self) -> dict:
        return auth_header(self.token) if self.token else {}

    def request(self, method: str, url: str, status=None, headers=None, body=b"", **kw):
        merged = dict(self.headers, **(headers or {}))
        return self.app.request(url, method=method, headers=merged, body=body,
                                status=status, expect_errors=status is not None and status >= 400, **kw)

    def get(self, url, status=200, **kw):
        return self.request("GET", url, status=status, **kw)

    def head(self, url, status=200, **kw):
        return self.request("HEAD", url, status=status, **kw)

    def delete(self, url, status=202, **kw):
        return self.request("DELETE", url, status=status, **kw)

    def push_blob(self, name: str, data: bytes, status=201):
        """Single-request upload."""
        return self.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha(data)}", status=status,
                            headers={"Content-Type": "application/octet-stream"}, body=data)

    def push_manifest(self, name: str, reference: str, manifest: dict | bytes, status=201,
                      media_type: str = OCI_MANIFEST):
        body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", status=status,
                            headers={"Content-Type": media_type}, body=body)

    def push_image(self, name: str, tag: str | None = "latest", layer: bytes = b"layer-bytes",
                   config: bytes = b'{"architecture":"amd64"}', **extra) -> tuple[dict, str]:
        """Blobs and an OCI image manifest; returns (manifest, digest)."""
        self.push_blob(name, config)
        self.push_blob(name, layer)
        manifest = image_manifest(config, layer, **extra)
        body = json.dumps(manifest).encode()
        self.push_manifest(name, tag or sha(body), body)
        return manifest, sha(body)


def descriptor(data: bytes, media_type: str, **extra) -> dict:
    return dict({"mediaType": media_type, "digest": sha(data), "size": len(data)}, **extra)


def image_manifest(config: bytes, layer: bytes, config_type: str = CONFIG, layer_type: str = LAYER,
                   **extra) -> dict:
    return dict({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": descriptor(config, config_type),
                 "layers": [descriptor(layer, layer_type)]}, **extra)


@pytest.fixture
def accounts(factory, db):
    """hase (owner of entity hase), igel (another user), admin; tokens in `.token`."""
    made = {}
    for name, admin in (("hase", False), ("igel", False), ("admin", True)):
        user = factory.user(name, admin=admin, password="geheim")
        factory.entity(name, owner=user)
        made[name] = (user, factory.token(user))
    db.commit()
    return made


@pytest.fixture
def hase(testapp, accounts):
    return Client(testapp, accounts["hase"][1])


@pytest.fixture
def igel(testapp, accounts):
    return Client(testapp, accounts["igel"][1])


@pytest.fixture
def admin(testapp, accounts):
    return Client(testapp, accounts["admin"][1])


@pytest.fixture
def anonymous(testapp):
    return Client(testapp, None)
