"""Manifests, tags, deletes, referrers and the catalog (spec end-3, end-7, end-8, end-9, end-12)."""
from __future__ import annotations

import json

from hinkskalle.models import Manifest, ManifestReference, Tag

from .conftest import (CONFIG, LAYER, OCI_INDEX, OCI_MANIFEST, descriptor, errors,
                       image_manifest, sha)

NAME = "hase/coll/cont"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def test_push_and_pull_by_tag_and_digest(hase, recorder):
    manifest, digest = hase.push_image(NAME, tag="v1")
    body = json.dumps(manifest).encode()
    for reference in ("v1", digest):
        got = hase.get(f"/v2/{NAME}/manifests/{reference}")
        assert got.body == body                                  # byte-exact
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        head = hase.head(f"/v2/{NAME}/manifests/{reference}")
        assert head.body == b"" and head.headers["Content-Length"] == str(len(body))
    pushes = [e for e in recorder.of("push") if e.target == "manifest"]
    assert pushes[0].digest == digest and pushes[0].tags == ("v1",)
    assert [e.reference for e in recorder.of("pull") if e.target == "manifest"] == ["v1", digest]


def test_push_response_headers_and_bytes_kept_exactly(hase):
    hase.push_blob(NAME, b"{}")
    hase.push_blob(NAME, b"layer")
    # odd but valid formatting must survive untouched
    body = ('{ "schemaVersion" : 2, "mediaType": "%s",\n "config": %s, "layers": [%s] }' % (
        OCI_MANIFEST, json.dumps(descriptor(b"{}", CONFIG)), json.dumps(descriptor(b"layer", LAYER)))).encode()
    response = hase.push_manifest(NAME, "odd", body)
    assert response.headers["Location"] == f"http://localhost/v2/{NAME}/manifests/{sha(body)}"
    assert response.headers["Docker-Content-Digest"] == sha(body)
    assert hase.get(f"/v2/{NAME}/manifests/odd").body == body


def test_push_by_digest(hase, db):
    hase.push_blob(NAME, b"c")
    hase.push_blob(NAME, b"l")
    body = json.dumps(image_manifest(b"c", b"l")).encode()
    hase.push_manifest(NAME, sha(body), body)
    hase.get(f"/v2/{NAME}/manifests/{sha(body)}")
    assert db.query(Tag).count() == 0
    response = hase.push_manifest(NAME, sha(b"something else"), body, status=400)
    assert errors(response) == ["DIGEST_INVALID"]


def test_unknown_blob_in_manifest_is_rejected_and_nothing_stored(hase, db):
    hase.push_blob(NAME, b"config")
    response = hase.push_manifest(NAME, "v1", image_manifest(b"config", b"never uploaded"), status=400)
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert db.query(Manifest).count() == 0 and db.query(Tag).count() == 0


def test_blob_of_another_repository_does_not_count(hase):
    hase.push_blob("hase/coll/other", b"layer elsewhere")
    hase.push_blob(NAME, b"config")
    response = hase.push_manifest(NAME, "v1", image_manifest(b"config", b"layer elsewhere"), status=400)
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_invalid_manifests(hase):
    hase.push_blob(NAME, b"x")
    for body in (b"not json", b"[]", b'{"schemaVersion": 1}', b'{"schemaVersion": 2, "config": {}}',
                 b'{"schemaVersion": 2, "mediaType": "application/x-nope", "layers": []}',
                 json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                             "config": {"mediaType": CONFIG, "digest": "sha256:bad", "size": 1}}).encode()):
        response = hase.push_manifest(NAME, "bad", body, status=400)
        assert errors(response) == ["MANIFEST_INVALID"], body
    # Content-Type contradicting the manifest's own mediaType
    hase.push_blob(NAME, b"c")
    hase.push_blob(NAME, b"l")
    response = hase.push_manifest(NAME, "bad", image_manifest(b"c", b"l"), media_type=DOCKER_MANIFEST,
                                  status=400)
    assert errors(response) == ["MANIFEST_INVALID"]


def test_oversized_manifest_is_413(hase, settings):
    hase.push_blob(NAME, b"x")
    body = b'{"schemaVersion": 2, "annotations": {"a": "' + b"x" * (4 * 1024 * 1024) + b'"}}'
    response = hase.push_manifest(NAME, "big", body, status=413)
    assert response.json["errors"][0]["code"]


def test_invalid_tag(hase):
    hase.push_blob(NAME, b"c")
    hase.push_blob(NAME, b"l")
    response = hase.push_manifest(NAME, "-bad", image_manifest(b"c", b"l"), status=400)
    assert errors(response) == ["TAG_INVALID"]


def test_unknown_manifest(hase):
    hase.push_image(NAME)
    assert errors(hase.get(f"/v2/{NAME}/manifests/nope", status=404)) == ["MANIFEST_UNKNOWN"]
    assert errors(hase.get(f"/v2/{NAME}/manifests/{sha(b'nope')}", status=404)) == ["MANIFEST_UNKNOWN"]
    assert errors(hase.get(f"/v2/{NAME}/manifests/sha256:zz", status=400)) == ["DIGEST_INVALID"]


def test_index_needs_its_children(hase, db):
    _, amd = hase.push_image(NAME, tag=None, layer=b"amd64 layer")
    _, arm = hase.push_image(NAME, tag=None, layer=b"arm64 layer")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}}]}
    hase.push_manifest(NAME, "multi", index, media_type=OCI_INDEX)
    got = hase.get(f"/v2/{NAME}/manifests/multi")
    assert got.headers["Content-Type"] == OCI_INDEX
    kinds = {r.digest: r.kind for r in db.query(ManifestReference)}
    assert kinds[amd] == kinds[arm] == "manifest"
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": sha(b"missing"), "size": 1})
    response = hase.push_manifest(NAME, "broken", index, media_type=OCI_INDEX, status=400)
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_docker_schema2_manifest_and_list(hase):
    hase.push_blob(NAME, b"dc")
    hase.push_blob(NAME, b"dl")
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": descriptor(b"dc", "application/vnd.docker.container.image.v1+json"),
                "layers": [descriptor(b"dl", "application/vnd.docker.image.rootfs.diff.tar.gzip")]}
    body = json.dumps(manifest).encode()
    hase.push_manifest(NAME, "docker", body, media_type=DOCKER_MANIFEST)
    listing = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
               "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": sha(body), "size": len(body),
                              "platform": {"architecture": "amd64", "os": "linux"}}]}
    hase.push_manifest(NAME, "list", listing, media_type=DOCKER_LIST)
    assert hase.get(f"/v2/{NAME}/manifests/list").headers["Content-Type"] == DOCKER_LIST
    assert hase.get(f"/v2/{NAME}/manifests/docker").headers["Content-Type"] == DOCKER_MANIFEST


def test_content_negotiation(hase):
    hase.push_image(NAME, tag="v1")
    url = f"/v2/{NAME}/manifests/v1"
    hase.get(url, headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})
    hase.get(url, headers={"Accept": "*/*"})
    response = hase.get(url, headers={"Accept": DOCKER_MANIFEST}, status=404)
    assert errors(response) == ["MANIFEST_UNKNOWN"]


def test_layers_get_their_media_type_and_tag_shows_visible_layer(hase, db):
    hase.push_image(NAME, tag="v1", layer=b"the layer", config=b"the config")
    from hinkskalle.models import Image
    images = {i.digest: i for i in db.query(Image)}
    assert images[sha(b"the layer")].media_type == LAYER and not images[sha(b"the layer")].hidden
    assert images[sha(b"the config")].media_type == CONFIG and images[sha(b"the config")].hidden
    tag = db.query(Tag).one()
    assert tag.image_id == images[sha(b"the layer")].id and tag.arch == "amd64"


def test_retag_moves_only_that_tag(hase, db):
    _, first = hase.push_image(NAME, tag="latest", layer=b"one")
    hase.push_manifest(NAME, "stable", hase.get(f"/v2/{NAME}/manifests/latest").body)
    _, second = hase.push_image(NAME, tag="latest", layer=b"two")
    assert hase.get(f"/v2/{NAME}/manifests/latest").headers["Docker-Content-Digest"] == second
    assert hase.get(f"/v2/{NAME}/manifests/stable").headers["Docker-Content-Digest"] == first


def test_delete_tag_keeps_manifest(hase, recorder):
    _, digest = hase.push_image(NAME, tag="v1")
    hase.delete(f"/v2/{NAME}/manifests/v1")
    hase.get(f"/v2/{NAME}/manifests/v1", status=404)
    hase.get(f"/v2/{NAME}/manifests/{digest}")
    assert errors(hase.delete(f"/v2/{NAME}/manifests/v1", status=404)) == ["MANIFEST_UNKNOWN"]
    assert recorder.of("tag")[-1].action == "remove"


def test_delete_by_digest_removes_manifest_and_tags(hase, db, recorder):
    _, digest = hase.push_image(NAME, tag="v1")
    hase.push_manifest(NAME, "v2", hase.get(f"/v2/{NAME}/manifests/v1").body)
    hase.delete(f"/v2/{NAME}/manifests/{digest}")
    for reference in ("v1", "v2", digest):
        hase.get(f"/v2/{NAME}/manifests/{reference}", status=404)
    assert db.query(Tag).count() == 0 and db.query(ManifestReference).count() == 0
    assert recorder.of("delete")[-1].target == "manifest"
    assert errors(hase.delete(f"/v2/{NAME}/manifests/{digest}", status=404)) == ["MANIFEST_UNKNOWN"]


def test_delete_by_digest_is_scoped_to_the_repository(hase):
    _, digest = hase.push_image(NAME, tag="v1")
    hase.push_image("hase/coll/twin", tag="v1")          # same manifest bytes, other repository
    hase.delete(f"/v2/hase/coll/twin/manifests/{digest}")
    hase.get(f"/v2/{NAME}/manifests/{digest}")


def test_writes_need_write_permission(hase, igel, factory, db, accounts):
    _, digest = hase.push_image(NAME, tag="v1")
    body = hase.get(f"/v2/{NAME}/manifests/v1").body
    igel.get(f"/v2/{NAME}/manifests/v1")                  # public: readable by any user
    assert errors(igel.push_manifest(NAME, "mine", body, status=403)) == ["DENIED"]
    assert errors(igel.delete(f"/v2/{NAME}/manifests/v1", status=403)) == ["DENIED"]
    assert errors(igel.delete(f"/v2/{NAME}/manifests/{digest}", status=403)) == ["DENIED"]
    # a read-only group member may pull but not tag or delete
    users = {name: db.merge(user) for name, (user, _) in accounts.items()}
    factory.group("Hasen", members={users["hase"]: "admin", users["igel"]: "readonly"})
    db.commit()
    hase.push_image("hasen/c/n", tag="v1")
    igel.get("/v2/hasen/c/n/manifests/v1")
    assert errors(igel.push_manifest("hasen/c/n", "v2", body, status=403)) == ["DENIED"]
    assert errors(igel.delete("/v2/hasen/c/n/manifests/v1", status=403)) == ["DENIED"]
    # nobody but admins writes into `default`
    assert errors(igel.push_manifest("default/c/n", "v1", body, status=403)) == ["DENIED"]


def test_private_manifest_not_readable_by_others(hase, igel, factory, db):
    factory.container("hase/coll/private", private=True)
    db.commit()
    hase.push_image("hase/coll/private", tag="v1")
    assert errors(igel.get("/v2/hase/coll/private/manifests/v1", status=403)) == ["DENIED"]
    assert errors(igel.get("/v2/hase/coll/private/tags/list", status=403)) == ["DENIED"]


def test_tags_list_with_pagination(hase):
    _, digest = hase.push_image(NAME, tag="b")
    body = hase.get(f"/v2/{NAME}/manifests/b").body
    for tag in ("a", "C", "d", "e"):
        hase.push_manifest(NAME, tag, body)
    listing = hase.get(f"/v2/{NAME}/tags/list")
    assert listing.json == {"name": NAME, "tags": ["C", "a", "b", "d", "e"]}
    assert "Link" not in listing.headers
    page = hase.get(f"/v2/{NAME}/tags/list?n=2")
    assert page.json["tags"] == ["C", "a"]
    assert page.headers["Link"] == f'</v2/{NAME}/tags/list?n=2&last=a>; rel="next"'
    page = hase.get(f"/v2/{NAME}/tags/list?n=2&last=a")
    assert page.json["tags"] == ["b", "d"]
    assert hase.get(f"/v2/{NAME}/tags/list?n=5&last=b").json["tags"] == ["d", "e"]
    assert "Link" not in hase.get(f"/v2/{NAME}/tags/list?n=5&last=b").headers
    zero = hase.get(f"/v2/{NAME}/tags/list?n=0")
    assert zero.json["tags"] == [] and "Link" not in zero.headers
    assert hase.get(f"/v2/{NAME}/tags/list?last=d").json["tags"] == ["e"]
    hase.get(f"/v2/{NAME}/tags/list?n=x", status=400)
    assert errors(hase.get("/v2/hase/coll/none/tags/list", status=404)) == ["NAME_UNKNOWN"]


def test_subject_and_referrers(hase):
    _, subject = hase.push_image(NAME, tag="v1")
    hase.push_blob(NAME, b"{}")
    hase.push_blob(NAME, b"sbom")
    hase.push_blob(NAME, b"sig")
    empty = descriptor(b"{}", "application/vnd.oci.empty.v1+json")
    subject_desc = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    sbom = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
            "config": empty, "layers": [descriptor(b"sbom", "application/json")], "subject": subject_desc,
            "annotations": {"org.example": "yes"}}
    response = hase.push_manifest(NAME, sha(json.dumps(sbom).encode()), sbom)
    assert response.headers["OCI-Subject"] == subject
    signature = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": descriptor(b"{}", "application/vnd.example.signature"),
                 "layers": [descriptor(b"sig", "application/octet-stream")], "subject": subject_desc}
    hase.push_manifest(NAME, sha(json.dumps(signature).encode()), signature)
    listing = hase.get(f"/v2/{NAME}/referrers/{subject}")
    assert listing.headers["Content-Type"] == OCI_INDEX
    found = {d["artifactType"]: d for d in listing.json["manifests"]}
    assert set(found) == {"application/vnd.example.sbom", "application/vnd.example.signature"}
    assert found["application/vnd.example.sbom"]["annotations"] == {"org.example": "yes"}
    filtered = hase.get(f"/v2/{NAME}/referrers/{subject}?artifactType=application/vnd.example.sbom")
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["artifactType"] for d in filtered.json["manifests"]] == ["application/vnd.example.sbom"]
    # no referrers: an empty index, never 404; a bad digest: 400
    assert hase.get(f"/v2/{NAME}/referrers/{sha(b'none')}").json["manifests"] == []
    assert errors(hase.get(f"/v2/{NAME}/referrers/sha256:zz", status=400)) == ["DIGEST_INVALID"]


def test_subject_may_be_pushed_before_its_target(hase):
    hase.push_blob(NAME, b"{}")
    early = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": descriptor(b"{}", "application/vnd.oci.empty.v1+json"), "layers": [],
             "artifactType": "application/vnd.example.early",
             "subject": {"mediaType": OCI_MANIFEST, "digest": sha(b"later"), "size": 5}}
    hase.push_manifest(NAME, "early", early)
    assert len(hase.get(f"/v2/{NAME}/referrers/{sha(b'later')}").json["manifests"]) == 1


def test_catalog_lists_only_visible_repositories(hase, igel, admin, factory, db):
    hase.push_image(NAME)
    hase.push_image("hase/coll/a")
    factory.container("hase/secret/box", private=True)
    db.commit()
    hase.push_image("hase/secret/box")
    assert hase.get("/v2/_catalog").json["repositories"] == ["hase/coll/a", "hase/coll/cont", "hase/secret/box"]
    assert igel.get("/v2/_catalog").json["repositories"] == ["hase/coll/a", "hase/coll/cont"]
    page = hase.get("/v2/_catalog?n=1")
    assert page.json["repositories"] == ["hase/coll/a"]
    assert page.headers["Link"] == '</v2/_catalog?n=1&last=hase%2Fcoll%2Fa>; rel="next"'
    assert hase.get("/v2/_catalog?n=1&last=hase/coll/a").json["repositories"] == ["hase/coll/cont"]
