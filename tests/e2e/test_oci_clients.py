"""Real OCI clients against a real server on 127.0.0.1 with docker token login:
skopeo (copy, inspect, list-tags, delete, a multi-arch index with --all), podman and buildah
(push and pull, vfs storage), and the oras Python SDK (artifacts). Test images are built
with umoci."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hinkskalle.server import use_plain_http_channel
from hinkskalle.testing import LiveServer, require_tool, run

pytestmark = pytest.mark.e2e
PASSWORD = "geheim-e2e"


@pytest.fixture
def registry(app, factory, db):
    """host:port of the test app served over HTTP, with users hase and igel."""
    for name in ("hase", "igel"):
        factory.entity(name, owner=factory.user(name, password=PASSWORD))
    db.commit()
    server = LiveServer(app, threads=8)
    use_plain_http_channel(server.server)
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def env(tmp_path):
    """Client environment: a private auth file, no user configuration."""
    (tmp_path / "auth.json").write_text("{}")
    return dict(os.environ, REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"), HOME=str(tmp_path))


def sh(cmd: list[str], env=None, ok=True, **kw) -> subprocess.CompletedProcess:
    result = run(cmd, env=env, timeout=120, **kw)
    if ok and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# -- test images ------------------------------------------------------------------------

def _blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """An OCI layout with images `amd64` and `arm64` (built by umoci) and an index `multi`."""
    require_tool("umoci")
    root = tmp_path_factory.mktemp("images")
    layout = root / "layout"
    sh(["umoci", "init", "--layout", str(layout)])
    for arch in ("amd64", "arm64"):
        image = f"{layout}:{arch}"
        bundle = root / f"bundle-{arch}"
        sh(["umoci", "new", "--image", image])
        sh(["umoci", "unpack", "--rootless", "--image", image, str(bundle)])
        (bundle / "rootfs" / "hello.txt").write_text(f"hello from {arch}\n")
        sh(["umoci", "repack", "--image", image, str(bundle)])
        sh(["umoci", "config", "--image", image, "--architecture", arch, "--os", "linux",
            "--config.cmd", "/hello.txt"])
    index_file = layout / "index.json"
    index = json.loads(index_file.read_text())
    refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    children = [dict(mediaType=refs[arch]["mediaType"], digest=refs[arch]["digest"],
                     size=refs[arch]["size"], platform={"architecture": arch, "os": "linux"})
                for arch in ("amd64", "arm64")]
    multi = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": children}).encode()
    index["manifests"].append(dict(_blob(layout, multi), mediaType="application/vnd.oci.image.index.v1+json",
                                   annotations={"org.opencontainers.image.ref.name": "multi"}))
    index_file.write_text(json.dumps(index))
    return layout


# -- skopeo -----------------------------------------------------------------------------

def skopeo(*args, env=None, ok=True):
    return sh(["skopeo", *args], env=env, ok=ok)


def test_skopeo_copy_inspect_list_tags_delete(registry, layout, env, tmp_path):
    require_tool("skopeo")
    creds = ["--creds", f"hase:{PASSWORD}"]
    ref = f"docker://{registry}/hase/e2e/image"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"hase:{PASSWORD}", f"oci:{layout}:amd64",
           f"{ref}:v1", env=env)
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", f"hase:{PASSWORD}",
           "--dest-creds", f"hase:{PASSWORD}", f"{ref}:v1", f"{ref}:v2", env=env)
    info = json.loads(skopeo("inspect", "--tls-verify=false", *creds, f"{ref}:v1", env=env).stdout)
    assert info["Architecture"] == "amd64" and sorted(info["RepoTags"]) == ["v1", "v2"]
    # stored credentials (skopeo login) work as well as --creds
    skopeo("login", "--tls-verify=false", "-u", "hase", "-p", PASSWORD, registry, env=env)
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", ref, env=env).stdout)
    assert sorted(tags["Tags"]) == ["v1", "v2"]
    # pull it back and compare what arrived
    skopeo("copy", "--src-tls-verify=false", "--src-creds", f"hase:{PASSWORD}", f"{ref}:v1",
           f"oci:{tmp_path}/back:v1", env=env)
    back = json.loads((tmp_path / "back" / "index.json").read_text())["manifests"][0]["digest"]
    assert back == info["Digest"]
    # another user may read a public image but not delete it
    assert skopeo("delete", "--tls-verify=false", "--creds", f"igel:{PASSWORD}", f"{ref}:v1",
                  env=env, ok=False).returncode != 0
    skopeo("delete", "--tls-verify=false", *creds, f"{ref}:v1", env=env)
    gone = skopeo("inspect", "--tls-verify=false", *creds, f"{ref}:v2", env=env, ok=False)
    assert gone.returncode != 0          # deleting by digest took both tags


def test_skopeo_multi_arch_index(registry, layout, env, tmp_path):
    require_tool("skopeo")
    creds = ["--creds", f"hase:{PASSWORD}"]
    ref = f"docker://{registry}/hase/e2e/multi:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false", "--dest-creds", f"hase:{PASSWORD}",
           f"oci:{layout}:multi", ref, env=env)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", *creds, ref, env=env).stdout)
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == ["amd64", "arm64"]
    arm = json.loads(skopeo("inspect", "--override-arch", "arm64", "--tls-verify=false", *creds, ref,
                            env=env).stdout)
    assert arm["Architecture"] == "arm64"
    skopeo("copy", "--all", "--src-tls-verify=false", "--src-creds", f"hase:{PASSWORD}", ref,
           f"oci:{tmp_path}/back:multi", env=env)
    assert len(list((tmp_path / "back" / "blobs" / "sha256").iterdir())) == 7   # index, 2x(manifest, config, layer)


def test_push_outside_own_entity_is_denied(registry, layout, env):
    require_tool("skopeo")
    result = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"igel:{PASSWORD}",
                    f"oci:{layout}:amd64", f"docker://{registry}/hase/e2e/intruder:v1", env=env, ok=False)
    assert result.returncode != 0
    assert "denied" in result.stderr.lower() or "unauthorized" in result.stderr.lower()


# -- podman and buildah ------------------------------------------------------------------

@pytest.fixture
def storage(tmp_path):
    """Container storage flags: vfs (works without overlay or user namespaces) in temp folders;
    the run root must be a short path (podman refuses more than 50 characters)."""
    runroot = tempfile.mkdtemp(prefix="hk-run-")
    yield ["--root", str(tmp_path / "storage"), "--runroot", runroot, "--storage-driver", "vfs"]
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_push_and_pull(registry, layout, env, storage):
    require_tool("podman")
    require_tool("skopeo")
    podman = ["podman", *storage, "--cgroup-manager", "cgroupfs",
              "--events-backend", "file"]
    source = f"{registry}/hase/e2e/source:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"hase:{PASSWORD}", f"oci:{layout}:amd64",
           f"docker://{source}", env=env)
    sh([*podman, "login", "--tls-verify=false", "-u", "hase", "-p", PASSWORD, registry], env=env)
    sh([*podman, "pull", "--tls-verify=false", source], env=env)
    target = f"{registry}/hase/podman/image:v2"
    sh([*podman, "tag", source, target], env=env)
    sh([*podman, "push", "--tls-verify=false", target], env=env)
    sh([*podman, "rmi", "-a", "-f"], env=env)
    sh([*podman, "pull", "--tls-verify=false", target], env=env)
    listed = sh([*podman, "images", "--format", "{{.Repository}}:{{.Tag}}"], env=env).stdout
    assert f"{registry}/hase/podman/image:v2" in listed


def test_buildah_push_and_pull(registry, layout, env, storage):
    require_tool("buildah")
    require_tool("skopeo")
    buildah = ["buildah", *storage]
    creds = ["--creds", f"hase:{PASSWORD}"]
    source = f"{registry}/hase/e2e/base:v1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"hase:{PASSWORD}", f"oci:{layout}:amd64",
           f"docker://{source}", env=env)
    sh([*buildah, "pull", "--tls-verify=false", *creds, source], env=env)
    container = sh([*buildah, "from", "--pull=never", source], env=env).stdout.strip().splitlines()[-1]
    sh([*buildah, "config", "--label", "built-by=buildah", container], env=env)
    sh([*buildah, "commit", container, "built:latest"], env=env)
    target = f"{registry}/hase/buildah/built:v1"
    sh([*buildah, "push", "--tls-verify=false", *creds, "built:latest", f"docker://{target}"], env=env)
    sh([*buildah, "rmi", "-a", "-f"], env=env)
    sh([*buildah, "pull", "--tls-verify=false", *creds, target], env=env)
    info = json.loads(skopeo("inspect", "--tls-verify=false", *creds, f"docker://{target}", env=env).stdout)
    assert info["Labels"]["built-by"] == "buildah"


# -- oras -------------------------------------------------------------------------------

def test_oras_push_and_pull_artifacts(registry, tmp_path, monkeypatch):
    oras_client = pytest.importorskip("oras.client")
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("an artifact\n")
    Path("data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    client = oras_client.OrasClient(hostname=registry, insecure=True, auth_backend="basic")
    client.login(username="hase", password=PASSWORD, hostname=registry)
    target = f"{registry}/hase/oras/artifact:v1"
    response = client.push(files=["notes.txt", "data.bin"], target=target)
    assert response.status_code == 201
    pulled = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert sorted(Path(p).name for p in pulled) == ["data.bin", "notes.txt"]
    assert (tmp_path / "out" / "data.bin").read_bytes() == Path("data.bin").read_bytes()
    assert client.get_tags(f"{registry}/hase/oras/artifact") == ["v1"]
    # without the right to push, nothing is written
    other = oras_client.OrasClient(hostname=registry, insecure=True, auth_backend="basic")
    other.login(username="igel", password=PASSWORD, hostname=registry)
    with pytest.raises(Exception):
        other.push(files=["notes.txt"], target=f"{registry}/hase/oras/artifact:stolen")
    assert client.get_tags(f"{registry}/hase/oras/artifact") == ["v1"]
