"""``pods images`` filters, ``image prune`` and ``system prune``/``df`` (issue 19), next to the
docker CLI on the same daemon's images."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import Daemon

DockerCLI = Any  # conftest's (conftest modules are not imported by name)


def pods(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def tag() -> str:
    return f"ic{uuid.uuid4().hex[:8]}"


def without_age(table: str) -> str:
    """A listing's cells, its CREATED ones blanked: they tick between the two runs, and with
    them the column's width ("Less than a second ago" against "2 seconds ago")."""
    age = re.compile(r"(\d+ seconds?|Less than a second|About a minute) ago")
    return "\n".join(" | ".join("AGE" if age.fullmatch(cell) else cell for cell in re.split(r" {2,}", line))
                     for line in table.splitlines())


def build(docker: DockerCLI, tmp_path: Path, tag: str, content: str, *, name: str | None = None) -> str:
    """An image with ``LABEL t=<tag>``; built twice under one name, the first becomes dangling."""
    (tmp_path / "Dockerfile").write_text(f"FROM busybox:latest\nLABEL t={tag}\nRUN echo {content} > /c\n")
    args = ["build", "-q", "--no-cache"] + (["-t", name] if name else []) + [str(tmp_path)]
    return docker(*args).stdout.strip().removeprefix("sha256:")


def test_image_filters_and_format_list_what_docker_lists(docker: DockerCLI, daemon: Daemon, tmp_path: Path,
                                                         tag: str) -> None:
    old = build(docker, tmp_path, tag, "one", name=f"{tag}/app:1")
    build(docker, tmp_path, tag, "two", name=f"{tag}/app:1")  # the first loses its name
    build(docker, tmp_path, tag, "three", name=f"{tag}/other:2")
    try:
        for args in (["images", "-q", "-f", "dangling=true", "-f", f"label=t={tag}"],
                     ["images", "-q", "-f", "dangling=false", "-f", f"label=t={tag}"],
                     ["images", "-q", "-f", f"reference={tag}/app"],
                     ["images", "-q", "-f", f"reference={tag}/*:2"],
                     ["images", "--format", "{{.Repository}}:{{.Tag}}", f"{tag}/app"],
                     ["images", "-f", f"reference={tag}/other"],
                     ["images", "busybox:latest"]):
            want = docker(*args)
            got = pods(daemon, *args)
            assert (got.returncode, without_age(got.stdout)) == (0, without_age(want.stdout)), (args, got.stderr)
        assert old[:12] in pods(daemon, "images", "-q", "-f", "dangling=true").stdout
        bad = pods(daemon, "images", "-f", "colour=red")
        assert bad.returncode == 125 and "invalid filter 'colour=red'" in bad.stderr
    finally:
        docker("rmi", "-f", f"{tag}/app:1", f"{tag}/other:2", old, check=False)


def test_image_prune_removes_dangling_and_with_a_every_unused_image(docker: DockerCLI, daemon: Daemon,
                                                                   tmp_path: Path, tag: str) -> None:
    old = build(docker, tmp_path, tag, "one", name=f"{tag}/app:1")
    build(docker, tmp_path, tag, "two", name=f"{tag}/app:1")
    build(docker, tmp_path, tag, "three", name=f"{tag}/kept:1")
    docker("create", "--name", f"{tag}-c", f"{tag}/kept:1", "true")
    try:
        pruned = pods(daemon, "image", "prune", "-f", "--filter", f"label=t={tag}")
        assert pruned.returncode == 0, pruned.stderr
        assert f"sha256:{old}" in pruned.stdout and "Total reclaimed space:" in pruned.stdout
        left = docker("images", "-q", "-f", f"label=t={tag}").stdout.split()
        assert old[:12] not in left and len(left) == 2  # both named images stay
        pods(daemon, "image", "prune", "-a", "-f", "--filter", f"label=t={tag}")
        left = docker("images", "--format", "{{.Repository}}", "-f", f"label=t={tag}").stdout.split()
        assert left == [f"{tag}/kept"]  # a (stopped) container uses it
    finally:
        docker("rm", "-f", f"{tag}-c", check=False)
        docker("rmi", "-f", f"{tag}/app:1", f"{tag}/kept:1", old, check=False)


def test_system_prune_takes_dangling_images_and_df_counts_them(docker: DockerCLI, daemon: Daemon,
                                                               tmp_path: Path, tag: str) -> None:
    old = build(docker, tmp_path, tag, "one", name=f"{tag}/app:1")
    build(docker, tmp_path, tag, "two", name=f"{tag}/app:1")
    try:
        df = pods(daemon, "system", "df")
        assert df.returncode == 0, df.stderr
        header, images_row = df.stdout.splitlines()[:2]
        assert header.split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        total = len(set(docker("images", "-aq").stdout.split()))  # a row per name: an image once
        assert images_row.split()[:2] == ["Images", str(total)]
        refused = pods(daemon, "system", "prune")
        assert refused.returncode == 1 and "Use -f" in refused.stderr
        pruned = pods(daemon, "system", "prune", "-f")
        assert pruned.returncode == 0, pruned.stderr
        assert old[:12] not in docker("images", "-aq").stdout
        assert f"{tag}/app" in docker("images", "--format", "{{.Repository}}").stdout
    finally:
        docker("rmi", "-f", f"{tag}/app:1", old, check=False)
