"""The image verbs through the real CLI: bootstrap, import, images, tag, inspect, rmi, save, load,
prune, and several processes writing the store at once.

Every test names its images with a uuid and removes them again, so the shared root stays tidy.
Each imported rootfs holds a file with unique content, so its layer blob and snapshot belong to
that test alone and can be checked for removal.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path


import pytest

from pytest_pods import Client
from pytest_pods.engine.image.reference import parse_reference

BUSYBOX = "/bin/busybox"
Pods = Callable[..., "subprocess.CompletedProcess[str]"]


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def make_rootfs(path: Path, content: bytes) -> Path:
    """A tiny rootfs: the host's static busybox, a few applet links, and ``/file``."""
    with tarfile.open(path, "w") as tf:
        tf.add(BUSYBOX, "bin/busybox")
        for applet in ("sh", "cat", "true", "ls"):
            ti = tarfile.TarInfo(f"bin/{applet}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(ti)
        ti = tarfile.TarInfo("file")
        ti.size = len(content)
        tf.addfile(ti, io.BytesIO(content))
    return path


@pytest.fixture
def cleanup(client: Client) -> Iterator[list[str]]:
    """Names and IDs of images to remove at the end, whatever happened (``rmi -f``)."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            client.images.remove(n, force=True)
        except Exception:
            pass  # already removed by the test


def _imported(pods_cli: Pods, tmp_path: Path, name: str, content: bytes, *changes: str) -> str:
    tar = make_rootfs(tmp_path / f"{_uid()}.tar", content)
    flags = [a for c in changes for a in ("-c", c)]
    proc = pods_cli("import", *flags, str(tar), name, check=True)
    image_id = proc.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71, proc.stdout
    return image_id


def _own_files(client: Client, image_id: str) -> list[Path]:
    """The blobs and snapshots of a (single-image) image: manifest, config, layers."""
    img = client.images.get(image_id)
    blobs = [client.store.blob_path(d) for d in (img.manifest_digest, img.id, *(layer["digest"] for layer in img.layers))]
    return blobs + [client.store.snapshot_path(d) for d in img.diff_ids]


def _rows(pods_cli: Pods) -> list[list[str]]:
    lines = pods_cli("images", check=True).stdout.splitlines()
    assert lines[0].split()[:4] == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    return [line.split()[:3] for line in lines[1:]]


# -- bootstrap, import, run -----------------------------------------------------------------
def test_bootstrap_busybox_with_a_tag_gives_the_same_image_and_runs(
    pods_cli: Pods, client: Client, cleanup: list[str]
) -> None:
    name = f"test/bb-{_uid()}:tag"
    cleanup.append(name)
    proc = pods_cli("bootstrap", "busybox", "-t", name, check=True)
    assert proc.stdout.strip() == client.images.get("busybox").id  # reproducible: one image, two names
    assert pods_cli("run", "--rm", name, "echo", "hi", check=True).stdout == "hi\n"
    # the image has another name, so rmi only untags it
    out = pods_cli("rmi", name, check=True).stdout.splitlines()
    assert out == [f"Untagged: {name}"]
    assert client.images.get("busybox")


def test_import_a_rootfs_and_run_it(pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str]) -> None:
    name = f"test/import-{_uid()}:1"
    cleanup.append(name)
    content = f"hello {_uid()}\n".encode()
    image_id = _imported(pods_cli, tmp_path, name, content)
    assert pods_cli("run", "--rm", name, "cat", "/file", check=True).stdout == content.decode()
    # no Cmd given: run needs a command
    proc = pods_cli("run", "--rm", name)
    assert proc.returncode == 125 and "no command specified" in proc.stderr
    repo, tag = name.split(":")
    assert [repo, tag, image_id[7:19]] in _rows(pods_cli)


def test_import_with_changes_sets_the_config(pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str]) -> None:
    name = f"test/import-cmd-{_uid()}:v2"
    cleanup.append(name)
    content = f"cmd {_uid()}\n".encode()
    image_id = _imported(pods_cli, tmp_path, name, content, 'CMD ["cat","/file"]', "ENV GREETING=hi there",
                         "WORKDIR /bin", "LABEL org.example=yes")
    assert pods_cli("run", "--rm", name, check=True).stdout == content.decode()
    assert pods_cli("run", "--rm", name, "sh", "-c", "echo $GREETING; pwd", check=True).stdout == "hi there\n/bin\n"
    docs = json.loads(pods_cli("inspect", name, check=True).stdout)
    assert isinstance(docs, list) and len(docs) == 1
    doc = docs[0]
    assert doc["Id"] == image_id and doc["Id"] == "sha256:" + doc["Id"][7:] and len(doc["Id"]) == 71
    assert doc["RepoTags"] == [name]
    assert doc["Config"]["Cmd"] == ["cat", "/file"]
    assert "GREETING=hi there" in doc["Config"]["Env"]
    assert doc["Config"]["WorkingDir"] == "/bin"
    assert doc["Config"]["Labels"] == {"org.example": "yes"}
    assert doc["RootFS"]["Layers"] == client.images.get(name).diff_ids
    assert pods_cli("inspect", "--format", "{{.Id}} {{json .Config.Cmd}}", name, check=True).stdout == \
        f'{image_id} ["cat","/file"]\n'
    # by short ID, too
    assert json.loads(pods_cli("inspect", image_id[7:19], check=True).stdout)[0]["Id"] == image_id


# -- tag and rmi ----------------------------------------------------------------------------
def test_tag_then_rmi_untags_and_deletes_with_its_blobs(
    pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str]
) -> None:
    first, second = f"test/rmi-{_uid()}:1", f"test/rmi-{_uid()}:other"
    cleanup += [first, second]
    image_id = _imported(pods_cli, tmp_path, first, f"rmi {_uid()}\n".encode())
    own = _own_files(client, image_id)
    assert all(p.exists() for p in own)
    assert pods_cli("tag", first, second, check=True).stdout == ""
    rows = _rows(pods_cli)
    for ref in (first, second):
        assert [*ref.split(":"), image_id[7:19]] in rows
    assert sorted(client.images.get(image_id).familiar_tags) == sorted([first, second])
    # by ID with two names: refused without -f
    proc = pods_cli("rmi", image_id[7:19])
    assert proc.returncode == 1 and "must be forced" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert pods_cli("rmi", first, check=True).stdout.splitlines() == [f"Untagged: {first}"]
    assert all(p.exists() for p in own)
    assert pods_cli("rmi", second, check=True).stdout.splitlines() == [f"Untagged: {second}", f"Deleted: {image_id}"]
    assert not [p for p in own if p.exists()]
    assert pods_cli("inspect", image_id).returncode == 1
    proc = pods_cli("rmi", second)
    assert proc.returncode == 1 and "No such image" in proc.stderr


def test_rmi_keeps_a_layer_another_image_uses(pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str]) -> None:
    content = f"shared {_uid()}\n".encode()
    a, b = f"test/share-{_uid()}:1", f"test/share-{_uid()}:1"
    cleanup += [a, b]
    tar = make_rootfs(tmp_path / "rootfs.tar", content)
    id_a = pods_cli("import", str(tar), a, check=True).stdout.strip()
    id_b = pods_cli("import", "-c", 'CMD ["cat","/file"]', str(tar), b, check=True).stdout.strip()
    assert id_a != id_b
    img_a, img_b = client.images.get(a), client.images.get(b)
    assert img_a.diff_ids == img_b.diff_ids
    layer = client.store.blob_path(img_a.layers[0]["digest"])
    snap = client.store.snapshot_path(img_a.diff_ids[0])
    pods_cli("rmi", a, check=True)
    assert not client.store.blob_path(id_a).exists()
    assert layer.exists() and snap.exists()
    assert pods_cli("run", "--rm", b, check=True).stdout == content.decode()
    pods_cli("rmi", b, check=True)
    assert not layer.exists() and not snap.exists()


def test_rmi_of_an_image_a_container_uses_needs_force(
    pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str], name: str
) -> None:
    ref = f"test/inuse-{_uid()}:1"
    cleanup.append(ref)
    content = f"in use {_uid()}\n".encode()
    image_id = _imported(pods_cli, tmp_path, ref, content)
    own = _own_files(client, image_id)
    pods_cli("create", "--name", name, ref, "cat", "/file", check=True)
    try:
        proc = pods_cli("rmi", ref)
        assert proc.returncode == 1, proc
        assert "container is using its referenced image" in proc.stderr and len(proc.stderr.splitlines()) == 1
        assert client.images.get(ref).id == image_id
        out = pods_cli("rmi", "-f", ref, check=True).stdout.splitlines()
        assert out == [f"Untagged: {ref}", f"Deleted: {image_id}"]
        assert pods_cli("inspect", "--type", "image", ref).returncode == 1
        # the container still has its root file system (its snapshot stays while it exists)
        assert pods_cli("start", "-a", name, check=True).stdout == content.decode()
    finally:
        pods_cli("rm", "-f", name)
    assert not [p for p in own[:3] if p.exists()]  # the blobs went with the image


# -- save and load --------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_rmi_load_restores_the_same_image(
    pods_cli: Pods, client: Client, tmp_path: Path, cleanup: list[str], fmt: str
) -> None:
    ref = f"test/save-{_uid()}:1"
    cleanup.append(ref)
    content = f"saved {_uid()}\n".encode()
    image_id = _imported(pods_cli, tmp_path, ref, content, 'CMD ["cat","/file"]')
    out = tmp_path / "image.tar"
    pods_cli("save", "--format", fmt, "-o", str(out), ref, check=True)
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
    if fmt == "oci-archive":
        assert {"oci-layout", "index.json"} <= names
        assert f"blobs/sha256/{image_id[7:]}" in names
    else:
        assert "manifest.json" in names
    pods_cli("rmi", ref, check=True)
    assert not client.store.blob_path(image_id).exists()
    proc = pods_cli("load", "-i", str(out), check=True)
    assert proc.stdout.splitlines() == [f"Loaded image: {ref}"]
    assert json.loads(pods_cli("inspect", ref, check=True).stdout)[0]["Id"] == image_id
    assert pods_cli("run", "--rm", ref, check=True).stdout == content.decode()


# -- concurrency ----------------------------------------------------------------------------
def test_concurrent_imports_and_tags_all_succeed(
    pods_root: Path, client: Client, tmp_path: Path, cleanup: list[str]
) -> None:
    imports = [f"test/par-import-{_uid()}:{i}" for i in range(6)]
    tags = [f"test/par-tag-{_uid()}:{i}" for i in range(6)]
    cleanup += imports + tags
    base = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    cmds = [[*base, "import", str(make_rootfs(tmp_path / f"{i}.tar", f"par {i} {_uid()}\n".encode())), ref]
            for i, ref in enumerate(imports)]
    cmds += [[*base, "tag", "busybox", ref] for ref in tags]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0] * 12, [r[2] for r in results]
    index = json.loads((pods_root / "oci/index.json").read_text())
    names = {m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]}
    assert {str(parse_reference(r)) for r in imports + tags} <= names
    for ref, (_, out, _) in zip(imports, results):
        assert client.images.get(ref).id == out.strip()
    busybox_id = client.images.get("busybox").id
    assert all(client.images.get(r).id == busybox_id for r in tags)


# -- prune ----------------------------------------------------------------------------------
@pytest.fixture
def private_root(release_root: Callable[[Client], None]) -> Iterator[Path]:
    """A root of its own: prune removes *every* stopped container and unused blob in a root."""
    root = Path(tempfile.mkdtemp(prefix="pods-prune-", dir="/var/tmp"))
    try:
        yield root
    finally:
        c = Client(root)
        release_root(c)  # and this root's cgroup parent and networks
        shutil.rmtree(root, ignore_errors=True)


def test_system_prune_removes_stopped_containers_and_unused_blobs(private_root: Path, tmp_path: Path) -> None:
    def pods_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(private_root), *args],
                              capture_output=True, text=True, timeout=60)
        assert not check or proc.returncode == 0, proc
        return proc

    c = Client(private_root)
    pods_cli("bootstrap", "busybox")
    exited = pods_cli("run", "-d", "busybox", "true").stdout.strip()
    created = pods_cli("create", "busybox", "true").stdout.strip()
    running = pods_cli("run", "-d", "busybox", "sleep", "30").stdout.strip()
    c.containers.get(exited).wait(timeout=10)
    # an image removed while a container used it: its snapshot is unused once that container goes
    content = f"prune {_uid()}\n".encode()
    pods_cli("import", str(make_rootfs(tmp_path / "r.tar", content)), "gone:1")
    gone = c.images.get("gone:1")
    snap = c.store.snapshot_path(gone.diff_ids[0])
    user = pods_cli("create", "gone:1", "cat", "/file").stdout.strip()
    pods_cli("rmi", "-f", "gone:1")
    assert snap.exists()
    pods_cli("rm", user)
    stray, _ = c.store.put_bytes(f"stray {_uid()}".encode())  # a blob no image references
    young, _ = c.store.put_bytes(f"young {_uid()}".encode())  # as a concurrent import would leave it
    hour_ago = time.time() - 7200
    os.utime(c.store.blob_path(stray), (hour_ago, hour_ago))
    os.utime(snap, (hour_ago, hour_ago))
    keep = _own_files(c, "busybox")
    unused_net = f"unused-{_uid()}"
    pods_cli("network", "create", unused_net)  # no container on it: docker system prune removes it

    assert pods_cli("system", "prune", check=False).returncode == 1  # asks for -f
    assert c.store.has_blob(stray)
    out = pods_cli("system", "prune", "-f").stdout
    assert f"Deleted container: {exited}" in out and f"Deleted container: {created}" in out
    assert f"Deleted network: {unused_net}" in out
    assert unused_net not in pods_cli("network", "ls").stdout
    ps = pods_cli("ps", "-a", "-q", "--no-trunc").stdout.split()
    assert ps == [running]
    assert not c.store.has_blob(stray)
    assert c.store.has_blob(young)  # too young to be garbage: a writer may be about to record it
    assert not snap.exists()
    assert all(p.exists() for p in keep)
    assert c.containers.get(running).exec(["true"]).exit_code == 0
    pods_cli("rm", "-f", running)
