"""Volumes over the Engine API as dockerd has them (issue 16): drivers, options, prune by API
version with its real SpaceReclaimed. From docker-py's side, on ``pods daemon`` and on the
reference dockerd (``@both_engines``) where it has the API version asked for.

Every prune here carries the test's label filter: an unfiltered prune would take other tests'
volumes.
"""

from __future__ import annotations

import uuid
from typing import Any

import docker
import pytest
from dockerd_helper import both_engines


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@both_engines
def test_unknown_volume_drivers_and_options_are_refused_as_dockerd_says(
        docker_client: Any, labels: dict[str, str]) -> None:
    name = unique("h1-vol")
    with pytest.raises(docker.errors.NotFound,
                       match=f'create {name}: error looking up volume plugin h1nosuch: plugin "h1nosuch" not found'):
        docker_client.volumes.create(name, driver="h1nosuch", labels=labels)
    with pytest.raises(docker.errors.APIError, match=f'create {name}: invalid option: "bogus"') as exc:
        docker_client.volumes.create(name, driver="local", driver_opts={"bogus": "1"}, labels=labels)
    assert exc.value.status_code == 400
    assert name not in {v.name for v in docker_client.volumes.list()}
    made = docker_client.api.create_volume(name, labels=labels)
    assert (made["Name"], made["Driver"], made["Options"]) == (name, "local", None)
    assert docker_client.api.inspect_volume(name)["Options"] is None
    listed = docker_client.api.volumes(filters={"name": name})
    assert [v["Name"] for v in listed["Volumes"]] == [name] and listed["Warnings"] is None


@both_engines
def test_a_container_volume_driver_that_is_not_there_is_refused(docker_client: Any, labels: dict[str, str]) -> None:
    name = unique("h1-vd")
    with pytest.raises(docker.errors.NotFound,
                       match=f'create {name}: error looking up volume plugin h1nosuch: plugin "h1nosuch" not found'):
        docker_client.api.create_container("busybox", ["true"], labels=labels, host_config=docker_client.api.
                                           create_host_config(binds=[f"{name}:/d"], volume_driver="h1nosuch"))
    assert name not in {v.name for v in docker_client.volumes.list()}
    ctr = docker_client.api.create_container("busybox", ["true"], labels=labels, host_config=docker_client.api.
                                             create_host_config(binds=[f"{name}:/d"], volume_driver="local"))
    docker_client.api.remove_container(ctr["Id"])
    docker_client.volumes.get(name).remove()


def fill(client: Any, labels: dict[str, str], volume: str, kib: int) -> None:
    """``kib`` KiB in one file of ``volume``, and a hard link to it (counted once)."""
    client.containers.run("busybox", ["sh", "-c", f"dd if=/dev/zero of=/v/f bs=1024 count={kib} && ln /v/f /v/g"],
                          volumes={volume: {"bind": "/v", "mode": "rw"}}, labels=labels, remove=True)


@both_engines
def test_volume_prune_before_api_1_42_takes_every_unused_volume_with_its_size(
        docker_engine: Any, docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    named = docker_client.volumes.create(unique("h1-named"), labels=labels)
    used = docker_client.volumes.create(unique("h1-used"), labels=labels)
    fill(docker_client, labels, named.name, 100)
    docker_client.containers.create("busybox", ["true"], labels=labels, volumes={used.name: {"bind": "/u"}})
    old = docker.APIClient(base_url=docker_engine.host, version="1.41")
    try:
        pruned = old.prune_volumes(filters={"label": f"{key}={value}"})
    finally:
        old.close()
    assert pruned["VolumesDeleted"] == [named.name]
    assert pruned["SpaceReclaimed"] == 100 * 1024
    left = {v.name for v in docker_client.volumes.list()}
    assert named.name not in left and used.name in left


def test_volume_prune_from_api_1_42_takes_only_anonymous_volumes_unless_all(private_daemon: Any) -> None:
    """``pods daemon`` only (the reference dockerd, 20.10, speaks API 1.41 at most), on a daemon
    of its own: an unfiltered prune takes every unused anonymous volume there is."""
    client = docker.DockerClient(base_url=private_daemon.host, version="1.42")
    try:
        named = client.volumes.create(unique("h1-named"))
        ctr = client.containers.create("busybox", ["true"], volumes=["/anon"])
        anon = next(m["Name"] for m in client.api.inspect_container(ctr.id)["Mounts"] if m["Destination"] == "/anon")
        ctr.remove()  # without v: its anonymous volume stays, unused
        assert {v.name for v in client.volumes.list()} == {named.name, anon}
        assert client.volumes.prune() == {"VolumesDeleted": [anon], "SpaceReclaimed": 0}
        assert [v.name for v in client.volumes.list()] == [named.name]
        assert client.volumes.prune(filters={"all": "true"}) == {"VolumesDeleted": [named.name], "SpaceReclaimed": 0}
        assert client.volumes.list() == []
    finally:
        client.close()
