"""Pull and push against a real registry (Debian's docker-registry, distribution 2.8), with skopeo
as the other client, and faults injected by a small proxy between us and the registry.

One registry serves the module; every test uses repositories of its own (a uuid) and fresh stores,
so tests do not see each other's blobs.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.engine.image.archive import save
from pytest_pods.engine.image.bootstrap import bootstrap_busybox
from pytest_pods.engine.image.store import (
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER,
    Image,
    Store,
    canonical_json,
    digest_hex,
)
from pytest_pods.engine.registry.distribution import pull, push
from pytest_pods.errors import InvalidArgumentError, RegistryError

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = shutil.which("skopeo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uid() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class Registry:
    host: str
    log: Path


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Scope: module. A real docker-registry on a free loopback port (tests/registry_helper.py)."""
    from registry_helper import serve_registry

    work = tmp_path_factory.mktemp("registry")
    with serve_registry(work) as host:
        yield Registry(host, work / "registry.log")


# --------------------------------------------------------------------------------------------
# a fault-injecting proxy


@dataclass
class Fault:
    """What the proxy does to requests matching ``method`` and containing ``path``."""

    method: str
    path: str
    kind: str  # "status", "truncate", "corrupt", "drop", "delay"
    times: int = 1_000_000
    status: int = 500
    delay: float = 0.0


@dataclass
class Proxy:
    host: str
    log: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, method: str, contains: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.log if e["method"] == method and contains in e["path"]]

    def clear(self) -> None:
        with self.lock:
            self.log.clear()


def _handler(proxy: Proxy, upstream: str) -> type[BaseHTTPRequestHandler]:
    up_host, up_port = upstream.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _fault(self) -> Fault | None:
            with proxy.lock:
                for f in proxy.faults:
                    if f.method == self.command and f.path in self.path and f.times > 0:
                        f.times -= 1
                        return f
            return None

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = self._fault()
            entry: dict[str, Any] = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                     "fault": fault.kind if fault else None}
            with proxy.lock:
                proxy.log.append(entry)
            if fault and fault.kind == "delay":
                time.sleep(fault.delay)
            if fault and fault.kind == "status":
                entry["status"] = fault.status
                self.send_response(fault.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=30)
            try:
                # the Host header goes through unchanged: the registry then writes Locations
                # that point back at the proxy
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("connection", "keep-alive"):
                        conn.putheader(k, v)
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                headers = [(k, v) for k, v in resp.getheaders()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length")]
            finally:
                conn.close()
            entry["status"] = resp.status
            full = len(data) if self.command != "HEAD" else int(resp.getheader("Content-Length") or 0)
            if fault and fault.kind == "corrupt":
                data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
            self.send_response(resp.status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(full))
            self.end_headers()
            if self.command == "HEAD":
                return
            if fault and fault.kind in ("truncate", "drop"):
                cut = len(data) // 2 if fault.kind == "truncate" else len(data) // 4
                self.wfile.write(data[:cut])
                self.wfile.flush()
                if fault.kind == "drop":  # a reset, not a clean close: the peer sees ECONNRESET
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    """A loopback proxy to the registry that logs every request and injects ``faults``."""
    port = _free_port()
    p = Proxy(f"127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(p, registry.host))
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield p
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def busybox(tmp_path: Path) -> tuple[Store, Image]:
    store = Store(tmp_path / "src")
    return store, bootstrap_busybox(store)


@pytest.fixture
def run_ok(release_root: Callable[[Client], None]) -> Iterator[Callable[[Path, str], None]]:
    clients: list[Client] = []

    def run(root: Path, image: str) -> None:
        c = Client(root)
        clients.append(c)
        result = c.containers.run(image, ["echo", "ok"], remove=True, network="none")
        assert (result.exit_code, result.output) == (0, b"ok\n"), result

    yield run
    for c in clients:
        release_root(c)


def _statuses(events: list[dict[str, Any]]) -> list[str]:
    return [str(e.get("status")) for e in events]


def _uploads(proxy: Proxy) -> list[dict[str, Any]]:
    return [e for e in proxy.log if e["method"] in ("PUT", "PATCH") and "/blobs/uploads/" in e["path"]]


# --------------------------------------------------------------------------------------------
# round trips


def test_push_then_pull_into_empty_store_keeps_digests_and_runs(registry: Registry, busybox: tuple[Store, Image],
                                                                tmp_path: Path, run_ok: Callable[[Path, str], None]) -> None:
    src, image = busybox
    ref = f"{registry.host}/t/{_uid()}/busybox:1"
    events: list[dict[str, Any]] = []
    digest = push(src, "busybox:latest", ref, progress=events.append)
    assert digest == image.manifest_digest
    assert "Pushed" in _statuses(events)

    events.clear()
    dst = Store(tmp_path / "dst")
    result = pull(dst, ref, progress=events.append)
    assert result.digest == digest
    assert result.image.id == image.id
    assert (result.layers_fetched, result.layers_present) == (1, 0)
    assert dst.get_image(ref).manifest_digest == digest
    statuses = _statuses(events)
    assert {"Pulling fs layer", "Downloading", "Download complete", "Pull complete"} <= set(statuses)
    run_ok(dst.root, ref)

    again = pull(dst, ref)
    assert (again.layers_fetched, again.layers_present) == (0, 1)


def test_second_push_uploads_nothing(proxy: Proxy, busybox: tuple[Store, Image]) -> None:
    src, _ = busybox
    ref = f"{proxy.host}/t/{_uid()}/busybox:1"
    push(src, "busybox", ref)
    assert len(_uploads(proxy)) == 2  # the layer and the config, one PUT each
    proxy.clear()
    events: list[dict[str, Any]] = []
    push(src, "busybox", ref, progress=events.append)
    assert _uploads(proxy) == []
    assert proxy.requests("POST") == []
    assert _statuses(events).count("Layer already exists") == 2
    assert "Pushed" not in _statuses(events)


def test_pushing_pulled_image_to_another_repo_mounts_its_blobs(proxy: Proxy, busybox: tuple[Store, Image],
                                                               tmp_path: Path) -> None:
    src, image = busybox
    name = _uid()
    first = f"{proxy.host}/t/{name}/a:1"
    push(src, "busybox", first)
    dst = Store(tmp_path / "dst")
    pull(dst, first)
    proxy.clear()
    events: list[dict[str, Any]] = []
    digest = push(dst, first, f"{proxy.host}/t/{name}/b:1", progress=events.append)
    assert digest == image.manifest_digest
    mounts = [e for e in proxy.requests("POST", "mount=") if e["status"] == 201]
    assert len(mounts) == 2, proxy.log
    assert _uploads(proxy) == []
    assert _statuses(events).count(f"Mounted from t/{name}/a") == 2
    assert pull(Store(tmp_path / "third"), f"{proxy.host}/t/{name}/b:1").digest == digest


def test_chunked_upload(proxy: Proxy, busybox: tuple[Store, Image], tmp_path: Path) -> None:
    src, image = busybox
    ref = f"{proxy.host}/t/{_uid()}/busybox:chunked"
    layer_size = image.layers[0]["size"]
    assert layer_size > 1 << 20  # else one chunk would prove little
    digest = push(src, "busybox", ref, chunk_size=1 << 20)
    patches = proxy.requests("PATCH", "/blobs/uploads/")
    assert len(patches) >= 3 and all(p["status"] == 202 for p in patches)
    result = pull(Store(tmp_path / "dst"), ref)
    assert (result.digest, result.image.id) == (digest, image.id)


def test_index_chooses_platform(registry: Registry, busybox: tuple[Store, Image], tmp_path: Path) -> None:
    src, amd = busybox
    cfg = dict(amd.config, architecture="arm64", variant="v8")
    arm = src.create_image(cfg, amd.layers, ["busybox:arm"])
    repo = f"{registry.host}/t/{_uid()}/multi"
    entries = []
    for img, tag, arch in ((amd, "amd", "amd64"), (arm, "arm", "arm64")):
        push(src, img.tags[0], f"{repo}:{tag}")
        size = src.blob_path(img.manifest_digest).stat().st_size
        entries.append({"mediaType": img.manifest["mediaType"], "digest": img.manifest_digest, "size": size,
                        "platform": {"os": "linux", "architecture": arch, **({"variant": "v8"} if arch == "arm64" else {})}})
    index = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": entries})
    path = repo.split("/", 1)[1]
    req = urllib.request.Request(f"http://{registry.host}/v2/{path}/manifests/all", data=index, method="PUT",
                                 headers={"Content-Type": MEDIA_OCI_INDEX})
    with urllib.request.urlopen(req) as r:
        assert r.status == 201
    got = pull(Store(tmp_path / "a"), f"{repo}:all", platform="linux/arm64")
    assert got.image.id == arm.id and got.digest == arm.manifest_digest
    got = pull(Store(tmp_path / "b"), f"{repo}:all", platform="linux/amd64")
    assert got.image.id == amd.id
    with pytest.raises(RegistryError, match=r"no manifest for platform linux/s390x .*linux/amd64"):
        pull(Store(tmp_path / "c"), f"{repo}:all", platform="linux/s390x")


# --------------------------------------------------------------------------------------------
# interop with skopeo


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    if SKOPEO is None:
        pytest.skip("skopeo is not installed: apt-get install skopeo")
    proc = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc


def test_skopeo_reads_what_we_push(registry: Registry, busybox: tuple[Store, Image], tmp_path: Path) -> None:
    src, image = busybox
    ref = f"{registry.host}/t/{_uid()}/busybox:1"
    digest = push(src, "busybox", ref)
    info = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{ref}").stdout)
    assert info["Digest"] == digest
    assert info["Layers"] == [layer["digest"] for layer in image.layers]
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'layout'}:copied")
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["copied"]
    manifest = json.loads((tmp_path / "layout/blobs/sha256" / digest_hex(index["manifests"][0]["digest"])).read_text())
    assert manifest["config"]["digest"] == image.id


@pytest.mark.parametrize("compress", [False, True], ids=["as-is", "dest-compress"])
def test_we_pull_and_run_what_skopeo_pushes(registry: Registry, busybox: tuple[Store, Image], tmp_path: Path,
                                            run_ok: Callable[[Path, str], None], compress: bool) -> None:
    src, base = busybox
    # a layer of its own: skopeo's blob-info cache would otherwise reuse the uncompressed busybox
    # layer an earlier test pushed to this registry, instead of compressing it
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("unique")
        data = uuid.uuid4().bytes
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    unique, size = src.put_bytes(buf.getvalue())
    extra = {"mediaType": MEDIA_OCI_LAYER, "digest": unique, "size": size}
    cfg = dict(base.config, rootfs={"type": "layers", "diff_ids": [*base.diff_ids, unique]})
    image = src.create_image(cfg, [*base.layers, extra], ["unique:1"])
    layout = tmp_path / "layout"
    save(src, ["unique:1"], layout, format="oci-dir")
    ref = f"{registry.host}/t/{_uid()}/from-skopeo:1"
    _skopeo("copy", "--dest-tls-verify=false", *(["--dest-compress"] if compress else []), f"oci:{layout}", f"docker://{ref}")
    dst = Store(tmp_path / "dst")
    result = pull(dst, ref)
    assert result.image.diff_ids == image.diff_ids
    if compress:
        layer = result.image.layers[-1]
        assert "gzip" in layer["mediaType"]
        assert dst.blob_path(layer["digest"]).read_bytes()[:2] == b"\x1f\x8b"  # stored as served
        assert layer["digest"] != unique
    run_ok(dst.root, ref)


# --------------------------------------------------------------------------------------------
# faults


@pytest.fixture
def pushed(proxy: Proxy, busybox: tuple[Store, Image]) -> tuple[str, Image]:
    """busybox pushed through the proxy; the proxy's log cleared."""
    src, image = busybox
    ref = f"{proxy.host}/t/{_uid()}/busybox:1"
    push(src, "busybox", ref)
    proxy.clear()
    return ref, image


def test_pull_retries_server_errors(proxy: Proxy, pushed: tuple[str, Image], tmp_path: Path) -> None:
    ref, image = pushed
    layer = image.layers[0]["digest"]
    proxy.faults += [Fault("GET", "/manifests/", "status", times=2),
                     Fault("GET", f"/blobs/{layer}", "status", status=503, times=2)]
    result = pull(Store(tmp_path / "dst"), ref)
    assert result.image.id == image.id
    assert [e["status"] for e in proxy.requests("GET", "/manifests/")] == [500, 500, 200]
    assert [e["status"] for e in proxy.requests("GET", f"/blobs/{layer}")] == [503, 503, 200]


def test_pull_retries_truncated_blob(proxy: Proxy, pushed: tuple[str, Image], tmp_path: Path) -> None:
    ref, image = pushed
    layer = image.layers[0]["digest"]
    proxy.faults.append(Fault("GET", f"/blobs/{layer}", "truncate", times=1))
    store = Store(tmp_path / "dst")
    result = pull(store, ref)
    assert result.image.id == image.id
    assert len(proxy.requests("GET", f"/blobs/{layer}")) == 2
    assert store.has_blob(layer)


def test_pull_resumes_after_connection_dropped_mid_layer(proxy: Proxy, pushed: tuple[str, Image], tmp_path: Path) -> None:
    ref, image = pushed
    layer = image.layers[0]["digest"]
    proxy.faults.append(Fault("GET", f"/blobs/{layer}", "drop", times=1))
    result = pull(Store(tmp_path / "dst"), ref)
    assert result.image.id == image.id
    first, second = proxy.requests("GET", f"/blobs/{layer}")
    assert first["range"] is None
    assert second["range"] is not None and second["range"] != "bytes=0-" and second["status"] == 206


def test_pull_refuses_blob_with_wrong_bytes_and_keeps_nothing(proxy: Proxy, pushed: tuple[str, Image], tmp_path: Path) -> None:
    ref, image = pushed
    layer = image.layers[0]["digest"]
    proxy.faults.append(Fault("GET", f"/blobs/{layer}", "corrupt"))
    store = Store(tmp_path / "dst")
    with pytest.raises(RegistryError, match=layer) as info:
        pull(store, ref)
    assert str(info.value).startswith(f"pull {ref}: blob {layer}:")
    assert len(proxy.requests("GET", f"/blobs/{layer}")) == 5
    assert not store.has_blob(layer)
    assert list(store.tmp.iterdir()) == []
    assert [p.name for p in store.blobs.iterdir()] == [digest_hex(image.id)]  # only the config
    assert store.images() == []


def test_two_processes_pulling_at_once_download_each_blob_once(proxy: Proxy, pushed: tuple[str, Image], tmp_path: Path) -> None:
    ref, image = pushed
    proxy.faults.append(Fault("GET", "/blobs/sha256:", "delay", delay=0.5))  # make them overlap
    root = tmp_path / "shared"
    Store(root)
    code = ("import sys; from pytest_pods.engine.image.store import Store; from pytest_pods.engine.registry.distribution import pull; "
            "r = pull(Store(sys.argv[1]), sys.argv[2]); print(r.image.id, r.layers_fetched)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), ref], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    fetched = 0
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        image_id, n = out.split()
        assert image_id == image.id
        fetched += int(n)
    assert fetched == 1  # one process downloaded the layer, the other found it present
    for digest in (image.id, image.layers[0]["digest"]):
        assert len(proxy.requests("GET", f"/blobs/{digest}")) == 1, proxy.log


# --------------------------------------------------------------------------------------------
# errors


def test_malformed_reference_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid reference format"):
        pull(Store(tmp_path / "s"), "127.0.0.1:1/Bad::ref")


def test_unknown_tag_is_manifest_unknown(registry: Registry, busybox: tuple[Store, Image], tmp_path: Path) -> None:
    src, _ = busybox
    repo = f"{registry.host}/t/{_uid()}/busybox"
    push(src, "busybox", f"{repo}:1")
    with pytest.raises(RegistryError, match=rf"^pull {repo}:nope: manifest unknown$"):
        pull(Store(tmp_path / "dst"), f"{repo}:nope")


def test_cli_push_pull_and_a_build_from_a_registry_image(registry: Registry, pods_root: Path, tmp_path: Path,
                                                         pods_cli) -> None:  # type: ignore[no-untyped-def]
    """Through the real CLI: push, remove, pull, run; then a Dockerfile whose FROM is only in the
    registry builds (FROM pulls what the store lacks), and mirrors redirect a name to it."""
    name = f"{registry.host}/cli/{_uid()}:1"
    pods_cli("tag", "busybox", name, check=True)
    pushed = pods_cli("push", name, check=True).stdout
    assert "digest: sha256:" in pushed
    pods_cli("rmi", name, check=True)
    pulled = pods_cli("pull", name, check=True).stdout
    assert "Downloaded image for" in pulled and pushed.split("digest: ")[1].strip() in pulled
    repo_digests = json.loads(pods_cli("inspect", "--type", "image", name, check=True).stdout)[0]["RepoDigests"]
    assert f"{name.rsplit(':', 1)[0]}@{pushed.split('digest: ')[1].strip()}" in repo_digests  # (+ other repos of it)
    assert pods_cli("run", "--rm", "--network", "none", name, "echo", "pulled-ok").stdout == "pulled-ok\n"
    pods_cli("rmi", name, check=True)
    (tmp_path / "Dockerfile").write_text(f"FROM {name}\nRUN echo built-on-pulled > /x\n")
    tag = f"test/from-registry:{_uid()}"
    try:
        built = pods_cli("build", "-t", tag, "--network", "none", str(tmp_path))
        assert built.returncode == 0, built.stderr
        assert pods_cli("run", "--rm", "--network", "none", tag, "cat", "/x").stdout == "built-on-pulled\n"
        config = tmp_path / "registries.json"
        alias = f"mirror.invalid/cli/{_uid()}"  # never resolved: the rewrite sends it to the registry
        config.write_text(json.dumps({"rewrites": {alias: name.rsplit(":", 1)[0]}}))
        env_pull = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root), "pull",
                                   alias + ":1"], capture_output=True, text=True,
                                  env={**os.environ, "PODS_REGISTRY_CONFIG": str(config)})
        assert env_pull.returncode == 0, env_pull.stderr
        assert pods_cli("run", "--rm", "--network", "none", alias + ":1", "echo", "via-rewrite").stdout == "via-rewrite\n"
    finally:
        pods_cli("rmi", "-f", tag)
        pods_cli("rmi", "-f", name)
        pods_cli("rmi", "-f", alias + ":1")
