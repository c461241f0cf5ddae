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
