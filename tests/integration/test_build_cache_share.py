"""A build cache CI can share (issue 18): ``pods build --cache-to type=local,dest=DIR`` writes every
step of a build (an OCI layout: the key map as the config, the steps' layers as blobs), and a fresh
root given ``--cache-from type=local,src=DIR`` rebuilds only what changed."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.errors import BuildError

DOCKERFILE = """FROM busybox
ARG NONCE
RUN echo "$NONCE $(cat /proc/sys/kernel/random/uuid)" > /stamp
COPY app.txt /app.txt
RUN cat /app.txt /stamp > /both
"""


@pytest.fixture
def fresh(client: Client, tmp_path: Path) -> Iterator[Client]:
    """Scope: function. Depends: client. Another machine: an empty root with the same busybox."""
    archive = tmp_path / "busybox.tar"
    client.images.save(["busybox:latest"], archive)
    other = Client(tmp_path / "fresh-root")
    try:
        other.images.load(archive)
        yield other
    finally:
        for st in other.runtime.list(all=True):
            other.runtime.remove(st["id"], force=True)
        other.cleanup(prune_networks=True)
        shutil.rmtree(tmp_path / "fresh-root", ignore_errors=True)


def _context(tmp_path: Path, app: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.txt").write_text(app)
    return ctx


def test_a_fresh_root_rebuilds_only_what_changed(client: Client, fresh: Client, pods_cli: Any, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex  # this test's steps are in no cache yet
    cache = tmp_path / "cache"
    ctx = _context(tmp_path, "one\n")
    tag = f"cache-share-{nonce[:8]}"
    proc = pods_cli("build", "-t", tag, "--network", "none", "--build-arg", f"NONCE={nonce}",
                    "--cache-to", f"type=local,dest={cache}", str(ctx), timeout=120)
    assert proc.returncode == 0, proc.stderr
    try:
        first = client.images.get(tag)
        index = json.loads((cache / "index.json").read_text())
        assert index["manifests"][0]["artifactType"] == "application/vnd.pytest-pods.build-cache.v1+json"

        lines: list[str] = []
        again = fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none", cache_import=[cache],
                                   progress=lines.append)
        assert again.id == first.id  # the same layers, the random stamp included: nothing ran
        assert sum(line == " ---> Using cache" for line in lines) == 3, lines  # RUN, COPY, RUN

        (ctx / "app.txt").write_text("two\n")
        lines.clear()
        fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none", cache_import=[cache],
                           progress=lines.append)
        assert sum(line == " ---> Using cache" for line in lines) == 1, lines  # the stamp
    finally:
        client.images.remove(tag, force=True)


def test_a_cache_dir_that_lies_is_refused_and_a_missing_one_is_empty(client: Client, fresh: Client,
                                                                       tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    cache = tmp_path / "cache"
    ctx = _context(tmp_path, "one\n")
    tag = f"cache-share-{nonce[:8]}"
    client.images.build(ctx, tag=tag, buildargs={"NONCE": nonce}, network="none", cache_export=cache)
    try:
        lines: list[str] = []
        fresh.images.build(ctx, buildargs={"NONCE": nonce + "x"}, network="none",
                           cache_import=[tmp_path / "nothing-yet"], progress=lines.append)
        assert any("No build cache at" in line for line in lines)
        manifest = json.loads((cache / "blobs" / "sha256" / json.loads((cache / "index.json").read_text())
                               ["manifests"][0]["digest"][7:]).read_text())
        for desc in manifest["layers"]:  # every one: those the fresh root has already are not read
            layer = cache / "blobs" / "sha256" / desc["digest"][7:]
            layer.write_bytes(layer.read_bytes() + b"tampered")
        with pytest.raises(BuildError, match="--cache-from"):
            fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none", cache_import=[cache])
    finally:
        client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. A real docker-registry on loopback (tests/registry_helper.py)."""
    from registry_helper import serve_registry

    with serve_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


def test_a_cache_pushed_to_a_registry_rebuilds_only_what_changed(client: Client, fresh: Client, tmp_path: Path,
                                                                 registry: str) -> None:
    """``--cache-to type=registry,ref=`` on one machine, ``--cache-from type=registry,ref=`` on a
    fresh one (BuildKit's registry cache, our artifact format), through the real docker-registry."""
    import subprocess
    import sys

    nonce = uuid.uuid4().hex
    ctx = _context(tmp_path, "one")
    ref = f"{registry}/cache/{nonce[:8]}:buildcache"
    tag = f"cache-share-{nonce[:8]}"
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(client.root)]
    first = subprocess.run([*cli, "build", "-t", tag, "--build-arg", f"NONCE={nonce}", "--network", "none",
                            "--cache-to", f"type=registry,ref={ref}", str(ctx)], capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Exported the build cache (" in first.stdout and ref in first.stdout
    try:
        lines: list[str] = []
        again = fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none", cache_import_refs=[ref],
                                   progress=lines.append)
        assert sum(line == " ---> Using cache" for line in lines) == 3, lines  # RUN, COPY, RUN
        assert any(f"Imported the build cache from {ref}" in line for line in lines)
        assert [x["digest"] for x in again.layers] == [x["digest"] for x in client.images.get(tag).layers]
        (ctx / "app.txt").write_text("two")
        lines = []
        changed = fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none", cache_import_refs=[ref],
                                     progress=lines.append)
        assert sum(line == " ---> Using cache" for line in lines) == 1, lines  # the stamp only
        assert changed.layers[-3]["digest"] == again.layers[-3]["digest"]  # the stamp's layer came from the cache
        lines = []
        fresh.images.build(ctx, buildargs={"NONCE": nonce}, network="none",
                           cache_import_refs=[f"{registry}/cache/{nonce[:8]}:not-yet"], progress=lines.append)
        assert any("No build cache at" in line for line in lines)
        bad = subprocess.run([*cli, "build", "--cache-to", "type=registry", str(ctx)], capture_output=True,
                             text=True, timeout=60)
        assert bad.returncode == 125 and "ref=REGISTRY/REPO:TAG is required" in bad.stderr
        with pytest.raises(BuildError, match="not a build cache"):  # an image, not a cache
            client.images.push(tag, f"{registry}/cache/{nonce[:8]}:image")
            fresh.images.build(ctx, network="none", cache_import_refs=[f"{registry}/cache/{nonce[:8]}:image"])
    finally:
        client.images.remove(tag, force=True)
