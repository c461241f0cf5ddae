"""What docker-py's own integration suite (tests/integration of docker/docker-py 7.1) found where
``pods daemon`` answered otherwise than dockerd, each checked here in our own words with docker-py
on ``pods daemon`` and on the reference dockerd (``@both_engines``), so the expected outcome is
Docker's.

Volumes of a stopped container in ``docker cp``'s archive routes.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from dockerd_helper import both_engines

dockerpy = pytest.importorskip("docker")


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar(chunks: Iterator[bytes]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def made(docker_client: Any) -> Iterator[list[str]]:
    """Scope: function. Depends on: docker_client. Containers the test made: removed at the end
    with their anonymous volumes (``rm -fv``), which carry no label to find them by."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        try:
            docker_client.api.remove_container(cid, force=True, v=True)
        except dockerpy.errors.NotFound:
            pass


# -- docker cp and a stopped container's volumes ---------------------------------------------------
@both_engines
def test_archive_of_an_exited_container_reaches_into_its_anonymous_volume(docker_client: Any, made: list[str],
                                                                          labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", ["sh", "-c", "printf kept > /data/note"], volumes=["/data"],
                               labels=labels)
    made.append(ctr["Id"])
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    stream, stat = api.get_archive(ctr, "/data/note")
    assert (stat["name"], stat["size"]) == ("note", 4)
    assert untar(stream) == {"note": b"kept"}
    stream, _ = api.get_archive(ctr, "/data")
    assert untar(stream) == {"data/note": b"kept"}


@both_engines
def test_files_put_into_a_created_containers_volume_are_there_when_it_runs(docker_client: Any, made: list[str],
                                                                          labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", ["sh", "-c", "cat /data/in /data/sub/deeper"], volumes=["/data"],
                               labels=labels)
    made.append(ctr["Id"])
    assert api.put_archive(ctr, "/data", tar_of({"in": b"one\n", "sub/deeper": b"two\n"})) is True
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    assert api.logs(ctr) == b"one\ntwo\n"
    # the volume, not the image's directory under it, holds them: a container that mounts it sees them
    vol = next(m["Name"] for m in api.inspect_container(ctr)["Mounts"] if m["Destination"] == "/data")
    other = api.create_container("busybox", ["cat", "/v/in"], labels=labels,
                                 host_config=api.create_host_config(binds=[f"{vol}:/v:ro"]))
    made.insert(0, other["Id"])  # removed before the container whose volume it mounts
    api.start(other)
    assert api.wait(other)["StatusCode"] == 0
    assert api.logs(other) == b"one\n"
