"""The permission matrix (reference section 8, without the holes of section 12).

Every role (anonymous, another user, the owner, group readonly / contributor / admin, site
admin) tries every operation (pull, push, tag, delete, browse, search) over the HTTP API of
both protocols, on a public and a private container, in a personal entity, a group entity
and the shared `default` entity. Each test covers one protocol, entity and privacy flag: every
role gets a fresh container of its own (deletes are destructive), and the whole table is
compared at once, so a failure shows every cell that differs.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hinkskalle.models import Container, Entity, Image, Tag
from hinkskalle.models.registry import SIF_MEDIA_TYPE
from hinkskalle.testing import auth_header

FIXTURES = Path(os.environ.get("HINKSKALLE_FIXTURES",
                               Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures")).resolve()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OPERATIONS = ("browse", "search", "pull", "tag", "push", "delete")

# The accounts of the scenario; each role below logs in as one of them.
ACCOUNTS = {"owner": "hase", "other": "igel", "readonly": "leser", "contributor": "helfer",
            "groupadmin": "chef", "admin": "admin"}
TARGETS = {
    "personal": ("anonymous", "other", "owner", "admin"),
    "group": ("anonymous", "other", "readonly", "contributor", "groupadmin", "admin"),
    "default": ("anonymous", "other", "admin"),
}
ENTITIES = {"personal": "hase", "group": "team", "default": "default"}
READERS = {"personal": {"owner"}, "group": {"readonly", "contributor", "groupadmin"}, "default": set()}
WRITERS = {"personal": {"owner"}, "group": {"contributor", "groupadmin"}, "default": set()}


def expected(protocol: str, target: str, role: str, private: bool) -> dict[str, bool]:
    """Which of the operations `role` may do (reference 8.1/8.2, holes of 12.1 fixed)."""
    admin = role == "admin"
    reader = admin or role in READERS[target]
    writer = admin or role in WRITERS[target]
    logged_in = role != "anonymous"
    # `default` may be looked around in by every account (its containers' privacy still
    # decides pulls); everywhere else browsing needs a reader.
    browser = reader or (target == "default" and logged_in)
    if protocol == "library":
        pull = reader if private else True
        return {"browse": browser, "search": browser and logged_in, "search_images": logged_in and pull,
                "pull": pull, "tag": writer, "push": writer, "delete": writer}
    pull = reader if private else logged_in
    return {"browse": pull, "search": pull or browser, "pull": pull, "tag": writer, "push": writer,
            "delete": writer}


# -- scenario --------------------------------------------------------------------------------

def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(data: bytes, media_type: str) -> dict:
    return {"mediaType": media_type, "digest": sha(data), "size": len(data)}


@pytest.fixture
def scenario(factory, db, testapp, app):
    accounts = {}
    for role, name in ACCOUNTS.items():
        user = factory.user(name, admin=(role == "admin"))
        if role == "owner":
            factory.entity(name, owner=user)
        accounts[role] = user
    factory.group("team", members={accounts["readonly"]: "readonly", accounts["contributor"]: "contributor",
                                   accounts["groupadmin"]: "admin"})
    factory.entity("default")
    headers = {role: auth_header(factory.token(user)) for role, user in accounts.items()}
    headers["anonymous"] = {}
    db.commit()
    return {"headers": headers, "store": app.registry["blobstore"]}


def prepare(testapp, db, scenario, target: str, private: bool, name: str = "cont") -> dict:
    """A container in `target`'s entity with an OCI image (tag v1) and a SIF (tag latest), pushed by the admin."""
    path = f"{ENTITIES[target]}/coll/{name}"
    admin = scenario["headers"]["admin"]
    config, layer = b'{"architecture":"amd64"}', f"layer of {path}".encode()
    for blob in (config, layer):
        testapp.post(f"/v2/{path}/blobs/uploads/?digest={sha(blob)}", blob, headers=dict(
            admin, **{"Content-Type": "application/octet-stream"}), status=201)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor(config, OCI_CONFIG),
                           "layers": [descriptor(layer, OCI_LAYER)]}).encode()
    testapp.put(f"/v2/{path}/manifests/v1", manifest, headers=dict(admin, **{"Content-Type": OCI_MANIFEST}),
                status=201)
    entity, collection, name = path.split("/")
    container = db.query(Container).join(Container.collection).join(Entity).filter(
        Entity.name == entity, Container.name == name).one()
    digest, size = scenario["store"].ingest([f"SIF of {path}".encode()])
    image = Image(container=container, digest=digest, size=size, upload_state="completed",
                  media_type=SIF_MEDIA_TYPE, arch="amd64", owner=container.owner)
    db.add_all([image, Tag(container=container, name="latest", arch="amd64", image=image)])
    container.private = private
    db.commit()
    return {"path": path, "container_id": container.id, "image_id": image.id, "manifest": manifest}


def run_library(testapp, headers, spot) -> dict:
    path, codes = spot["path"], {}
    codes["browse"] = testapp.get(f"/v1/containers/{path}", headers=headers, expect_errors=True).status_int
    found = testapp.get(f"/v1/search?value={path.rsplit('/', 1)[1]}", headers=headers, expect_errors=True)
    if found.status_int == 200:
        listed = {f"{c['entityName']}/{c['collectionName']}/{c['name']}" for c in found.json["data"]["container"]}
        codes["search"] = path in listed
        codes["search_images"] = any(i["id"] == str(spot["image_id"]) for i in found.json["data"]["image"])
    else:
        codes["search"] = codes["search_images"] = found.status_int
    codes["pull"] = testapp.get(f"/v1/imagefile/{path}:latest", headers=headers, expect_errors=True).status_int
    codes["tag"] = testapp.post_json(f"/v1/tags/{spot['container_id']}", {"newtag": str(spot["image_id"])},
                                     headers=headers, expect_errors=True).status_int
    sif = (FIXTURES / "tiny.sif").read_bytes()
    created = testapp.post_json("/v1/images", {"hash": "sha256." + sha(sif)[7:], "container": str(spot["container_id"])},
                                headers=headers, expect_errors=True)
    codes["push"] = created.status_int
    if created.status_int == 200:
        uploaded = testapp.post(f"/v1/imagefile/{created.json['data']['id']}", sif, headers=headers,
                                expect_errors=True)
        codes["push"] = uploaded.status_int
    codes["delete"] = testapp.delete(f"/v1/images/{path}:latest", headers=headers, expect_errors=True).status_int
    return codes


def run_oci(testapp, headers, spot) -> dict:
    path, codes = spot["path"], {}
    codes["browse"] = testapp.get(f"/v2/{path}/tags/list", headers=headers, expect_errors=True).status_int
    catalog = testapp.get("/v2/_catalog", headers=headers, expect_errors=True)
    codes["search"] = path in catalog.json["repositories"] if catalog.status_int == 200 else catalog.status_int
    codes["pull"] = testapp.get(f"/v2/{path}/manifests/v1", headers=dict(headers, Accept=OCI_MANIFEST),
                                expect_errors=True).status_int
    codes["tag"] = testapp.put(f"/v2/{path}/manifests/v2", spot["manifest"], expect_errors=True,
                               headers=dict(headers, **{"Content-Type": OCI_MANIFEST})).status_int
    blob = f"new blob in {path}".encode()
    codes["push"] = testapp.post(f"/v2/{path}/blobs/uploads/?digest={sha(blob)}", blob, expect_errors=True,
                                 headers=dict(headers, **{"Content-Type": "application/octet-stream"})).status_int
    codes["delete"] = testapp.delete(f"/v2/{path}/manifests/{sha(spot['manifest'])}", headers=headers,
                                     expect_errors=True).status_int
    return codes


SUCCESS = {"library": {"browse": 200, "pull": 200, "tag": 200, "push": 200, "delete": 200},
           "oci": {"browse": 200, "pull": 200, "tag": 201, "push": 201, "delete": 202}}


def outcome(protocol: str, role: str, allowed: dict[str, bool]) -> dict:
    """The answer each operation must get: its success code, or 401 (anonymous) / 403."""
    deny = 401 if role == "anonymous" else 403
    result = {}
    for op, ok in allowed.items():
        if op.startswith("search"):
            result[op] = ok if role != "anonymous" else 401
        else:
            result[op] = SUCCESS[protocol][op] if ok else deny
    return result


CASES = [(protocol, target, private)
         for protocol in ("library", "oci")
         for target in TARGETS
         for private in (False, True)]


@pytest.mark.parametrize("protocol,target,private", CASES,
                         ids=[f"{p}-{t}-{'private' if pr else 'public'}" for p, t, pr in CASES])
def test_permission_matrix(testapp, db, scenario, protocol, target, private):
    run = run_library if protocol == "library" else run_oci
    got, want = {}, {}
    for role in TARGETS[target]:
        spot = prepare(testapp, db, scenario, target, private, name=f"cont-{role}")
        got[role] = run(testapp, scenario["headers"][role], spot)
        want[role] = outcome(protocol, role, expected(protocol, target, role, private))
    assert got == want


# -- the flags around the matrix ----------------------------------------------------------------

def test_read_only_container_refuses_pushes_but_not_tags_and_deletes(testapp, db, scenario):
    spot = prepare(testapp, db, scenario, "personal", False)
    db.get(Container, spot["container_id"]).read_only = True
    db.commit()
    owner = scenario["headers"]["owner"]
    got = run_library(testapp, owner, spot)
    assert (got["push"], got["tag"], got["delete"]) == (406, 200, 200)
    blob = b"read-only"
    testapp.post(f"/v2/hase/coll/cont/blobs/uploads/?digest={sha(blob)}", blob, status=403,
                 headers=dict(owner, **{"Content-Type": "application/octet-stream"}))
    testapp.put("/v2/hase/coll/cont/manifests/v3", spot["manifest"], status=403,
                headers=dict(owner, **{"Content-Type": OCI_MANIFEST}))


def test_default_private_entity_makes_new_pushes_private(testapp, db, scenario):
    db.query(Entity).filter_by(name="hase").one().default_private = True
    db.commit()
    owner, other = scenario["headers"]["owner"], scenario["headers"]["other"]
    blob = b"private by default"
    testapp.post(f"/v2/hase/neu/repo/blobs/uploads/?digest={sha(blob)}", blob, status=201,
                 headers=dict(owner, **{"Content-Type": "application/octet-stream"}))
    container = db.query(Container).filter_by(name="repo").one()
    assert container.private and container.collection.private
    testapp.get(f"/v2/hase/neu/repo/blobs/{sha(blob)}", headers=owner, status=200)
    testapp.get(f"/v2/hase/neu/repo/blobs/{sha(blob)}", headers=other, status=403)


def test_private_collection_blocks_oci_pulls(testapp, db, scenario):
    spot = prepare(testapp, db, scenario, "personal", False)
    db.get(Container, spot["container_id"]).collection.private = True
    db.commit()
    testapp.get("/v2/hase/coll/cont/manifests/v1", headers=scenario["headers"]["other"], status=403)
    testapp.get("/v2/hase/coll/cont/manifests/v1", headers=scenario["headers"]["owner"], status=200)


def test_only_the_namesake_creates_an_entity_by_pushing(testapp, scenario):
    blob = b"new entity"
    upload = f"/v2/newbie/coll/cont/blobs/uploads/?digest={sha(blob)}"
    octet = {"Content-Type": "application/octet-stream"}
    testapp.post(upload, blob, headers=dict(scenario["headers"]["other"], **octet), status=403)
    testapp.post(upload, blob, headers=dict(scenario["headers"]["admin"], **octet), status=201)
    upload = f"/v2/igel/coll/cont/blobs/uploads/?digest={sha(blob)}"
    testapp.post(upload, blob, headers=dict(scenario["headers"]["owner"], **octet), status=403)
    testapp.post(upload, blob, headers=dict(scenario["headers"]["other"], **octet), status=201)
