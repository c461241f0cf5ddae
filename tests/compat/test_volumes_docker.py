"""Volumes as Docker has them (issue 16), from the docker CLI's and docker-py's side: a new
volume's first mount copies the image's content there, ``nocopy`` does not, image ``VOLUME``s are
anonymous volumes shown in ``inspect`` and removed by ``rm -v``, ``--volumes-from``; and the
case that broke: Postgres with ``-v pgdata:/var/lib/postgresql/data``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker as docker_py
import pytest
from dockerd_helper import both_engines

#: conftest's DockerCLI (conftest modules are not imported by name)
DockerCLI = Any

DOCKERFILE = """FROM busybox
RUN mkdir -p /data && echo seed > /data/seed && chown -R 1000:1000 /data && chmod 0750 /data
VOLUME /data
"""
POSTGRES = "pytest-pods/postgres:15"


class Made:
    """Containers and volumes a test made; removed at teardown (``rm -fv``, ``volume rm -f``)."""

    def __init__(self, docker_cli: DockerCLI) -> None:
        self.docker = docker_cli
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def container(self) -> str:
        self.containers.append(f"tv-{uuid.uuid4().hex[:10]}")
        return self.containers[-1]

    def volume(self) -> str:
        self.volumes.append(f"tvol-{uuid.uuid4().hex[:10]}")
        return self.volumes[-1]


@pytest.fixture
def made(docker: DockerCLI) -> Iterator[Made]:
    """Scope: function. Depends on: docker. Names to use; what they name is removed at the end."""
    m = Made(docker)
    yield m
    for c in reversed(m.containers):
        docker("rm", "-fv", c, check=False)
    for v in m.volumes:
        docker("volume", "rm", "-f", v, check=False)


@pytest.fixture(scope="module")
def seeded_images() -> Iterator[dict[str, str]]:
    """Scope: module. The ``seeded`` image's tag by daemon (``host``); removed from each at the end."""
    built: dict[str, str] = {}
    yield built
    for host, tag in built.items():
        client = docker_py.DockerClient(base_url=host, timeout=120)
        try:
            client.images.remove(tag, force=True)
        finally:
            client.close()


@pytest.fixture
def seeded(docker_engine: Any, seeded_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Scope: function. Depends on: docker_engine. An image with /data/seed (uid 1000, 0750 dir) and
    VOLUME /data, built once per daemon."""
    if docker_engine.host not in seeded_images:
        ctx = tmp_path_factory.mktemp("seeded")
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        tag = f"test/volseed-{uuid.uuid4().hex[:8]}:1"
        client = docker_py.DockerClient(base_url=docker_engine.host, timeout=120)
        try:
            client.images.build(path=str(ctx), tag=tag, rm=True)
        finally:
            client.close()
        seeded_images[docker_engine.host] = tag
    return seeded_images[docker_engine.host]


def volume_names(docker_cli: DockerCLI) -> set[str]:
    return set(docker_cli("volume", "ls", "-q").stdout.split())


@both_engines
def test_docker_run_v_fills_a_new_volume_once_and_nocopy_does_not(docker: DockerCLI, made: Made,
                                                                  seeded: str) -> None:
    vol = made.volume()
    out = docker("run", "--rm", "--network", "none", "-v", f"{vol}:/data", seeded,
                 "sh", "-c", "cat /data/seed; stat -c '%u %a' /data; echo more > /data/more").stdout
    assert out == "seed\n1000 750\n"
    again = docker("run", "--rm", "--network", "none", "-v", f"{vol}:/data", seeded, "ls", "/data").stdout
    assert again.split() == ["more", "seed"]
    empty = made.volume()
    out = docker("run", "--rm", "--network", "none", "-v", f"{empty}:/data:nocopy", seeded,
                 "sh", "-c", "ls -A /data | wc -l").stdout
    assert out.strip() == "0"


@both_engines
def test_image_volume_shows_in_inspect_and_goes_with_rm_v(docker: DockerCLI, made: Made, seeded: str) -> None:
    before = volume_names(docker)
    ctr = made.container()
    docker("create", "--name", ctr, "--network", "none", seeded, "true")
    mounts = json.loads(docker("inspect", ctr).stdout)[0]["Mounts"]
    assert [(m["Type"], m["Destination"], len(m["Name"])) for m in mounts] == [("volume", "/data", 64)]
    assert mounts[0]["Name"] in volume_names(docker) - before
    docker("rm", "-v", ctr)
    assert mounts[0]["Name"] not in volume_names(docker)
    kept = made.container()
    docker("create", "--name", kept, "--network", "none", seeded, "true")
    name = json.loads(docker("inspect", kept).stdout)[0]["Mounts"][0]["Name"]
    docker("rm", kept)
    assert name in volume_names(docker)  # as Docker: without -v, an anonymous volume stays
    docker("volume", "rm", name)


@both_engines
def test_volumes_from_and_ro(docker: DockerCLI, made: Made, seeded: str) -> None:
    src = made.container()
    docker("create", "--name", src, "--network", "none", seeded, "true")
    out = docker("run", "--rm", "--network", "none", "--volumes-from", src, "busybox",
                 "sh", "-c", "cat /data/seed; echo w > /data/w").stdout
    assert out == "seed\n"
    ro = docker("run", "--rm", "--network", "none", "--volumes-from", f"{src}:ro", "busybox",
                "sh", "-c", "cat /data/w; touch /data/x", check=False)
    assert ro.returncode != 0 and ro.stdout == "w\n" and "Read-only file system" in ro.stderr


@both_engines
def test_a_bind_inside_another_bind_is_seen_whatever_the_order(docker: DockerCLI, tmp_path: Path) -> None:
    """testcontainers' SFTPContainer binds a key file under a home it also binds, the file first:
    dockerd mounts parents first (by depth), so the file stays visible."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "mine").write_text("home\n")
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519 AAAA test\n")
    out = docker("run", "--rm", "--network", "none", "-v", f"{key}:/home/u/.ssh/keys/key.pub:ro",
                 "-v", f"{home}:/home/u", "--tmpfs", "/home/u/.ssh/tmp", "busybox",
                 "sh", "-c", "cat /home/u/.ssh/keys/key.pub /home/u/mine; touch /home/u/.ssh/tmp/x && echo tmpfs").stdout
    assert out == "ssh-ed25519 AAAA test\nhome\ntmpfs\n"


@both_engines
def test_docker_py_mounts_nocopy_and_volumes_from(docker_engine: Any, docker: DockerCLI, made: Made,
                                                  seeded: str) -> None:
    client = docker_py.DockerClient(base_url=docker_engine.host, timeout=60)
    try:
        vol = made.volume()
        mount = docker_py.types.Mount("/data", vol, type="volume", no_copy=True)
        out = client.containers.run(seeded, ["sh", "-c", "ls -A /data | wc -l"], mounts=[mount],
                                    network_mode="none", remove=True)
        assert out.strip() == b"0"
        src = made.container()
        client.containers.create(seeded, "true", name=src, network_mode="none")
        out = client.containers.run("busybox", ["cat", "/data/seed"], volumes_from=[src], network_mode="none",
                                    remove=True)
        assert out == b"seed\n"
    finally:
        client.close()


@pytest.fixture(scope="module")
def postgres_image(daemon: Any) -> str:
    """Scope: module. Depends on: daemon. The plugin's Postgres image, built by its recipe if missing."""
    root = daemon.root
    client = docker_py.DockerClient(base_url=daemon.host, timeout=60)
    try:
        client.images.get(POSTGRES)
    except docker_py.errors.ImageNotFound:
        recipe = Path(__file__).resolve().parents[2] / "pytest_pods/plugin/recipes/postgres"
        subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root),
                        "build", "-t", POSTGRES, str(recipe)], check=True, timeout=1200)
    finally:
        client.close()
    return POSTGRES


def psql(docker_cli: DockerCLI, ctr: str, sql: str) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 60
    while True:
        res = docker_cli("exec", "-u", "postgres", ctr, "psql", "-tAc", sql, check=False)
        if res.returncode == 0 or time.monotonic() > deadline:
            return res
        time.sleep(0.2)


def test_postgres_on_a_named_volume_starts_and_keeps_its_data(docker: DockerCLI, made: Made,
                                                              postgres_image: str) -> None:
    vol = made.volume()
    first = made.container()
    docker("run", "-d", "--name", first, "--network", "none", "-v", f"{vol}:/var/lib/postgresql/data",
           postgres_image)
    res = psql(docker, first, "select 1")
    assert (res.returncode, res.stdout.strip()) == (0, "1"), (res.stderr, docker("logs", first, check=False).stderr)
    assert psql(docker, first, "create table kept (x int); insert into kept values (42)").returncode == 0
    docker("stop", first)
    second = made.container()
    docker("run", "-d", "--name", second, "--network", "none", "-v", f"{vol}:/var/lib/postgresql/data",
           postgres_image)
    res = psql(docker, second, "select x from kept")
    assert (res.returncode, res.stdout.strip()) == (0, "42"), res.stderr
