"""``save``/``load`` for real: docker-archive, OCI archive and OCI layout, cross-checked with skopeo.

Loading unpacks every layer (mknod, xattrs), which needs root; the images come from the host's
static busybox and from small rootfs tarballs built here. Each test uses fresh stores.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_pods.engine.image.archive import load, save
from pytest_pods.engine.image.bootstrap import BUSYBOX_PATHS, image_config, import_rootfs
from pytest_pods.engine.image.bootstrap import bootstrap_busybox as _bootstrap_busybox
from pytest_pods.engine.image.store import REF_NAME, Image, Store
from pytest_pods.errors import InvalidArgumentError, LayerError, StoreError, UnsafeLayerError

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="loading unpacks layers (mknod, xattrs): needs root"),
]
needs_busybox = pytest.mark.skipif(
    not any(os.path.isfile(p) for p in BUSYBOX_PATHS), reason="no static busybox: apt-get install busybox-static"
)
needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo missing: apt-get install skopeo")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isreg()}  # type: ignore[union-attr]


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "root")


@pytest.fixture
def other(tmp_path: Path) -> Store:
    """A second store, as on another machine."""
    return Store(tmp_path / "other")


@pytest.fixture
def busybox(store: Store) -> Image:
    if not any(os.path.isfile(p) for p in BUSYBOX_PATHS):
        pytest.skip("no static busybox: apt-get install busybox-static")
    return _bootstrap_busybox(store)


def make_app(store: Store, tmp_path: Path, tag: str | None, text: bytes = b"hello\n") -> Image:
    tarball = tmp_path / f"rootfs-{hashlib.sha256(text).hexdigest()[:8]}.tar"
    tarball.write_bytes(tar_bytes({"etc/app.conf": text, "srv/data": text * 3}))
    return import_rootfs(store, tarball, tag)


def assert_same_image(a: Image, b: Image) -> None:
    assert b.id == a.id
    assert b.diff_ids == a.diff_ids
    assert b.config == a.config
    assert [layer["digest"] for layer in b.layers] == a.diff_ids  # stored uncompressed


def assert_empty(store: Store) -> None:
    assert store.images() == []
    assert [p.name for p in store.blobs.iterdir()] == []
    assert [p.name for p in store.snapshots.iterdir()] == []


# -- round trips -----------------------------------------------------------------------------


@needs_busybox
def test_docker_archive_round_trip_keeps_id_tags_and_diff_ids(
    store: Store, other: Store, busybox: Image, tmp_path: Path
) -> None:
    out = tmp_path / "busybox.tar"
    save(store, ["busybox"], out)

    files = members(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{
        "Config": f"blobs/sha256/{busybox.id.removeprefix('sha256:')}",
        "RepoTags": ["busybox:latest"],
        "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d in busybox.diff_ids],
    }]
    assert sha256(files[manifest[0]["Config"]]) == busybox.id  # the original config bytes
    assert sha256(files[manifest[0]["Layers"][0]]) == busybox.diff_ids[0]  # a plain tar
    assert json.loads(files["repositories"]) == {"busybox": {"latest": busybox.id.removeprefix("sha256:")}}
    index = json.loads(files["index.json"])
    assert index["manifests"][0]["annotations"][REF_NAME] == "latest"
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left

    assert load(other, out) == ["Loaded image: busybox:latest"]
    loaded = other.get_image("busybox:latest")
    assert_same_image(busybox, loaded)
    assert loaded.tags == ("docker.io/library/busybox:latest",)
    assert other.snapshot_path(busybox.diff_ids[0]).is_dir()

    again = tmp_path / "again.tar"
    save(other, ["busybox"], again)
    assert again.read_bytes() == out.read_bytes()  # reproducible: same image, same archive


def test_multiple_images_in_one_archive(store: Store, other: Store, tmp_path: Path) -> None:
    one = make_app(store, tmp_path, "localhost:5000/team/app:1", b"one\n")
    two = make_app(store, tmp_path, "two:2.0", b"two\n")
    store.tag("two:2.0", "two:stable")
    out = tmp_path / "both.tar"
    save(store, ["localhost:5000/team/app:1", "two:2.0", "two:stable"], out)

    manifest = json.loads(members(out)["manifest.json"])
    assert [m["RepoTags"] for m in manifest] == [["localhost:5000/team/app:1"], ["two:2.0", "two:stable"]]

    lines = load(other, out)
    assert lines == [
        "Loaded image: localhost:5000/team/app:1", "Loaded image: two:2.0", "Loaded image: two:stable",
    ]
    assert_same_image(one, other.get_image("localhost:5000/team/app:1"))
    assert_same_image(two, other.get_image("two:stable"))
    assert len(other.images()) == 2


def test_saving_by_id_writes_no_repotags(store: Store, other: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    out = tmp_path / "byid.tar"
    save(store, [app.short_id], out)

    files = members(out)
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in files
    assert load(other, out) == [f"Loaded image ID: {app.id}"]
    loaded = other.get_image(app.id)
    assert loaded.tags == ()
    assert_same_image(app, loaded)


def test_load_and_save_through_unseekable_streams(store: Store, other: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    r, w = os.pipe()
    errors: list[BaseException] = []

    def writer() -> None:  # the pipe would fill before save returns
        with os.fdopen(w, "wb") as wf:
            try:
                save(store, ["app:1"], wf)
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(r, "rb") as rf:
        assert load(other, rf) == ["Loaded image: app:1"]
    thread.join()
    assert errors == []
    assert_same_image(app, other.get_image("app:1"))
    assert [p.name for p in other.tmp.iterdir()] == []  # the spool is gone


def test_oci_archive_round_trip(store: Store, other: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    out = tmp_path / "app-oci.tar"
    save(store, ["app:1"], out, format="oci-archive")

    files = members(out)
    assert "manifest.json" not in files
    desc = json.loads(files["index.json"])["manifests"][0]
    assert desc["annotations"][REF_NAME] == "docker.io/library/app:1"
    assert desc["digest"] == app.manifest_digest  # stored blobs as they are
    assert load(other, out) == ["Loaded image: app:1"]
    assert_same_image(app, other.get_image("app:1"))


def test_oci_dir_round_trip(store: Store, other: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    out = tmp_path / "layout"
    save(store, ["app:1"], out, format="oci-dir")
    assert (out / "oci-layout").is_file()
    assert (out / "blobs/sha256" / app.id.removeprefix("sha256:")).is_file()
    assert load(other, out) == ["Loaded image: app:1"]
    assert_same_image(app, other.get_image("app:1"))
    with pytest.raises(InvalidArgumentError, match="not an empty directory"):
        save(store, ["app:1"], out, format="oci-dir")


def test_save_leaves_nothing_when_a_blob_is_corrupt(store: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    with open(store.blob_path(app.diff_ids[0]), "r+b") as f:
        f.seek(600)
        f.write(b"X")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(StoreError, match="corrupt"):
        save(store, ["app:1"], out_dir / "app.tar")
    assert list(out_dir.iterdir()) == []


# -- skopeo ----------------------------------------------------------------------------------


@needs_busybox
@needs_skopeo
def test_skopeo_reads_our_docker_archive_and_we_load_its_oci_layout(
    store: Store, other: Store, busybox: Image, tmp_path: Path
) -> None:
    out = tmp_path / "busybox.tar"
    save(store, ["busybox:latest"], out)

    info = json.loads(skopeo("inspect", f"docker-archive:{out}"))
    assert info["Layers"] == busybox.diff_ids
    raw_config = subprocess.run(
        ["skopeo", "inspect", "--raw", "--config", f"docker-archive:{out}"], capture_output=True, check=True
    ).stdout
    assert sha256(raw_config) == busybox.id

    copied = tmp_path / "skopeo-dir"  # dir: keeps the docker manifest, so the config as it is
    skopeo("copy", f"docker-archive:{out}", f"dir:{copied}")
    assert json.loads((copied / "manifest.json").read_bytes())["config"]["digest"] == busybox.id

    # oci: converts the manifest, and skopeo re-marshals the config and gzips the layers
    layout = tmp_path / "skopeo-oci"
    skopeo("copy", f"docker-archive:{out}", f"oci:{layout}:name")
    index = json.loads((layout / "index.json").read_bytes())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    config = (layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes()
    assert json.loads(config) == busybox.config
    assert manifest["layers"][0]["mediaType"].endswith("+gzip")

    assert load(other, layout) == ["Loaded image: name:latest"]
    loaded = other.get_image("name:latest")
    assert loaded.id == sha256(config)  # the layout's own config bytes, kept as they are
    assert loaded.diff_ids == busybox.diff_ids
    assert [layer["digest"] for layer in loaded.layers] == busybox.diff_ids  # stored decompressed

    # and back: skopeo's classic docker-archive (<hex>.json, symlinked <id>/layer.tar, full names)
    classic = tmp_path / "skopeo.tar"
    skopeo("copy", f"oci:{layout}:name", f"docker-archive:{classic}:foo:1")
    third = Store(tmp_path / "third")
    assert load(third, classic) == ["Loaded image: foo:1"]
    assert third.get_image("foo:1").id == loaded.id


@needs_skopeo
def test_skopeo_reads_our_oci_archive(store: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    out = tmp_path / "app-oci.tar"
    save(store, ["app:1"], out, format="oci-archive")
    info = json.loads(skopeo("inspect", f"oci-archive:{out}"))
    assert info["Layers"] == app.diff_ids


# -- bad input -------------------------------------------------------------------------------


def _docker_entry(prefix: str, layer: bytes, *, diff_id: str | None = None, layer_path: str | None = None,
                  with_layer: bool = True, tag: str | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    config = json.dumps(image_config([diff_id or sha256(layer)], created="2024-01-01T00:00:00Z")).encode()
    files = {f"{prefix}.json": config}
    if with_layer:
        files[f"{prefix}/layer.tar"] = layer
    entry = {"Config": f"{prefix}.json", "RepoTags": [tag or f"{prefix}:latest"],
             "Layers": [layer_path or f"{prefix}/layer.tar"]}
    return files, entry


def _bad_archive(path: Path, case: str) -> str:
    """A classic docker-archive whose first image is fine and whose second is bad; returns the culprit."""
    good_files, good = _docker_entry("good", tar_bytes({"etc/good": b"good\n"}))
    layer = tar_bytes({"etc/bad": b"bad\n"})
    if case == "missing-layer":
        files, bad = _docker_entry("bad", layer, with_layer=False)
        culprit = "bad/layer.tar"
    elif case == "digest-mismatch":
        files, bad = _docker_entry("bad", layer, diff_id=sha256(b"something else"))
        culprit = "bad/layer.tar"
    elif case == "layer-path-escapes":
        files, bad = _docker_entry("bad", layer, layer_path="../x")
        culprit = "../x"
    elif case == "malicious-layer":
        files, bad = _docker_entry("bad", tar_bytes({"../x": b"gotcha\n"}))
        culprit = "bad/layer.tar"
    else:
        raise AssertionError(case)
    archive = {**good_files, **files, "manifest.json": json.dumps([good, bad]).encode()}
    path.write_bytes(tar_bytes(archive))
    return culprit


@pytest.mark.parametrize("case", ["garbage", "no-manifest", "missing-layer", "digest-mismatch",
                                  "layer-path-escapes", "malicious-layer"])
def test_bad_archive_is_refused_and_leaves_no_image(other: Store, tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.tar"
    if case == "garbage":
        path.write_bytes(os.urandom(4096))
        expected: type[Exception] = StoreError
        match = "not a tar archive"
    elif case == "no-manifest":
        path.write_bytes(tar_bytes({"hello.txt": b"hi\n"}))
        expected, match = StoreError, "no manifest.json"
    else:
        culprit = _bad_archive(path, case)
        expected = UnsafeLayerError if case == "malicious-layer" else StoreError
        match = {"missing-layer": "missing", "digest-mismatch": "diff_ids", "layer-path-escapes": "escapes",
                 "malicious-layer": "escapes"}[case]
    with pytest.raises(expected, match=match) as info:
        load(other, path)
    text = str(info.value) + "\n".join(getattr(info.value, "__notes__", []))
    assert str(path) in text
    if case not in ("garbage", "no-manifest"):
        assert repr(culprit) in text
    assert_empty(other)
    if case == "malicious-layer":
        assert isinstance(info.value, LayerError)
        assert not (tmp_path / "x").exists()


def test_load_refuses_oci_blob_that_does_not_match_its_digest(store: Store, other: Store, tmp_path: Path) -> None:
    app = make_app(store, tmp_path, "app:1")
    out = tmp_path / "layout"
    save(store, ["app:1"], out, format="oci-dir")
    blob = out / "blobs/sha256" / app.diff_ids[0].removeprefix("sha256:")
    blob.write_bytes(tar_bytes({"etc/evil": b"evil\n"}))
    with pytest.raises(StoreError, match="diff_ids") as info:
        load(other, out)
    assert str(out) in str(info.value)
    assert_empty(other)


def test_load_accepts_gzip_layers_symlinked_members_and_a_gzipped_archive(other: Store, tmp_path: Path) -> None:
    import gzip

    layer = tar_bytes({"etc/shared": b"shared\n"})
    files, one = _docker_entry("one", gzip.compress(layer), diff_id=sha256(layer), tag="one:1")
    two_files, two = _docker_entry("two", b"", diff_id=sha256(layer), with_layer=False, tag="two:1")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in {**files, **two_files, "manifest.json": json.dumps([one, two]).encode()}.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        link = tarfile.TarInfo("two/layer.tar")  # as docker < 25 and skopeo share a layer
        link.type, link.linkname = tarfile.SYMTYPE, "../one/layer.tar"
        tf.addfile(link)
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(gzip.compress(buf.getvalue()))

    assert load(other, path) == ["Loaded image: one:1", "Loaded image: two:1"]
    image = other.get_image("two:1")
    assert image.layers == [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                             "digest": sha256(layer), "size": len(layer)}]
    assert other.read_blob(sha256(layer)) == layer
