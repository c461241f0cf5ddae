"""Images and the classic builder over the Engine API as dockerd has them (issue 16): load of a
bad archive, import with changes, prune's real SpaceReclaimed, and ``POST /build``'s stream
(the aux line's place, RUN's stderr, the error text), ``extrahosts``, ``networkmode`` naming a
user network, ``cachefrom``. From docker-py's and the docker CLI's side, on ``pods daemon`` and
on the reference dockerd (``@both_engines``).

Subnets: 10.231.20.0/24 (see test_api_networks.py for the range).
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
from dockerd_helper import both_engines


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def context(dockerfile: str) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build_stream(client: Any, dockerfile: str, **kw: Any) -> list[dict[str, Any]]:
    """Every document of ``POST /build``'s stream, decoded as docker-py reads it."""
    return list(client.api.build(fileobj=context(dockerfile), custom_context=True, decode=True, rm=True, **kw))


def rootfs_tar(path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        data = b"hi\n"
        info = tarfile.TarInfo("f")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


# -- load, import, prune ---------------------------------------------------------------------------
@both_engines
def test_load_of_a_bad_archive_is_an_error_in_the_stream(docker_engine: Any, docker_client: Any) -> None:
    resp = docker_client.api._post(docker_client.api._url("/images/load"), data=b"not a tar archive\n" * 40)
    assert resp.status_code == 200
    docs = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
    assert docs and "error" in docs[-1] and docs[-1]["errorDetail"]["message"] == docs[-1]["error"]
    with pytest.raises(docker.errors.ImageLoadError):
        docker_client.images.load(b"not a tar archive\n" * 40)


def test_load_error_names_no_path_of_the_daemon(daemon: Any, docker_client: Any) -> None:
    """``pods daemon`` only: dockerd 20.10 names its own temp directory here (``open /var/lib/docker/tmp/
    docker-import-.../repositories``), which tells a client nothing it can use."""
    for data in (b"garbage\n", io.BytesIO().getvalue() + b"\0" * 10240):
        resp = docker_client.api._post(docker_client.api._url("/images/load"), data=data)
        error = json.loads(resp.text.splitlines()[-1])["error"]
        assert str(daemon.root) not in error and "/tmp" not in error, error


@both_engines
def test_import_applies_changes_as_docker_import_c(docker: Any, tmp_path: Path) -> None:
    tarball = rootfs_tar(tmp_path / "rootfs.tar")
    tag = f"h1-import:{uuid.uuid4().hex[:8]}"
    docker("import", "-c", 'CMD ["/bin/x", "y"]', "-c", "ENV A=b", "-c", "ENV C d", "-c", "WORKDIR /w",
           "-c", "EXPOSE 80", "-c", "LABEL k=v", "-c", "USER nobody", str(tarball), tag)
    try:
        cfg = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", tag).stdout)
        assert cfg["Cmd"] == ["/bin/x", "y"]
        assert cfg["Env"] == ["A=b", "C=d"]
        assert cfg["WorkingDir"] == "/w"
        assert cfg["ExposedPorts"] == {"80/tcp": {}}
        assert cfg["Labels"] == {"k": "v"}
        assert cfg["User"] == "nobody"
    finally:
        docker("rmi", tag)
    bad = docker("import", "-c", "RUN x", str(tarball), tag, check=False)
    assert bad.returncode != 0 and "run is not a valid change command" in bad.stderr


@both_engines
def test_image_prune_takes_dangling_images_and_says_what_it_reclaimed(
        docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    tag = f"h1-prune:{uuid.uuid4().hex[:8]}"
    first = docker_client.images.build(fileobj=context(f"FROM busybox\nLABEL {key}={value}\nRUN echo one > /one\n"),
                                       custom_context=True, tag=tag, rm=True)[0]
    second = docker_client.images.build(fileobj=context(f"FROM busybox\nLABEL {key}={value}\nRUN echo two > /two\n"),
                                        custom_context=True, tag=tag, rm=True)[0]
    try:
        assert docker_client.images.get(first.id).tags == []  # dangling: its tag moved
        pruned = docker_client.images.prune(filters={"label": f"{key}={value}"})
        assert {"Deleted": first.id} in pruned["ImagesDeleted"]
        assert second.id not in json.dumps(pruned["ImagesDeleted"])
        assert pruned["SpaceReclaimed"] > 0
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(first.id)
    finally:
        docker_client.images.remove(second.id, force=True)


# -- POST /build ---------------------------------------------------------------------------------------
@both_engines
def test_build_stream_ends_with_successfully_tagged_and_marks_stderr(docker_client: Any) -> None:
    tag = f"h1-build:{uuid.uuid4().hex[:8]}"
    docs = build_stream(docker_client, "FROM busybox\nRUN echo out; echo err >&2\n", tag=tag, nocache=True)
    try:
        streams = [d.get("stream", "") for d in docs]
        assert docs[-1] == {"stream": f"Successfully tagged {tag}\n"}
        built = next(i for i, s in enumerate(streams) if s.startswith("Successfully built"))
        aux = [i for i, d in enumerate(docs) if "aux" in d]
        assert aux == [built - 1]
        image_id = docs[aux[0]]["aux"]["ID"]
        assert streams[built] == f"Successfully built {image_id.removeprefix('sha256:')[:12]}\n"
        assert "out\n" in streams
        assert "\x1b[91merr\n\x1b[0m" in streams
        # docker-py's images.build reads the stream for "Successfully built" and returns the image
        img, _logs = docker_client.images.build(fileobj=context("FROM busybox\nRUN echo out\n"), custom_context=True,
                                                tag=tag, rm=True)
        assert tag in img.tags
    finally:
        docker_client.images.remove(tag, force=True)


@both_engines
def test_build_of_a_failing_run_says_what_dockerd_says(docker_client: Any) -> None:
    docs = build_stream(docker_client, "FROM busybox\nRUN exit 3\n", nocache=True)
    assert docs[-1]["error"] == "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert docs[-1]["errorDetail"] == {"code": 3, "message": docs[-1]["error"]}
    with pytest.raises(docker.errors.BuildError, match=r"The command '/bin/sh -c exit 1' returned a non-zero code: 1"):
        docker_client.images.build(fileobj=context("FROM busybox\nRUN exit 1\n"), custom_context=True, rm=True)


@both_engines
def test_build_extrahosts_and_a_user_network(docker_client: Any, labels: dict[str, str]) -> None:
    net = docker_client.networks.create(unique("h1-buildnet"), labels=labels,
                                        ipam=docker.types.IPAMConfig(
                                            pool_configs=[docker.types.IPAMPool(subnet="10.231.20.0/24")]))
    peer = docker_client.containers.run("busybox", ["sleep", "300"], detach=True, labels=labels, network=net.name,
                                        name=unique("h1-peer"))
    peer.reload()
    address = peer.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
    docs = build_stream(docker_client, f"FROM busybox\nRUN grep h1x /etc/hosts && ping -c1 -W5 {peer.name} "
                                       "&& ip -4 -o addr show eth0\n",
                        nocache=True, extra_hosts={"h1x": "10.1.2.3"}, network_mode=net.name)
    out = "".join(d.get("stream", "") for d in docs)
    assert "error" not in docs[-1], docs[-1]
    assert "10.1.2.3\th1x" in out
    assert f"({address})" in out  # the peer's name resolved on the network
    assert "inet 10.231.20." in out  # the step ran on it
    for d in docs:
        if "aux" in d:
            docker_client.images.remove(d["aux"]["ID"], force=True)


@both_engines
def test_build_cachefrom_uses_only_those_images(docker_client: Any) -> None:
    """docker-py's own test of ``cache_from``, as the classic builder answers it."""
    script = f"FROM busybox\nENV H1={uuid.uuid4().hex}\nRUN touch baz\nRUN touch bax\n"
    tag1, tag2 = f"h1-cache1:{uuid.uuid4().hex[:8]}", f"h1-cache2:{uuid.uuid4().hex[:8]}"

    def hits(**kw: Any) -> int:
        docs = build_stream(docker_client, script, **kw)
        assert "error" not in docs[-1], docs[-1]
        return sum("Using cache" in d.get("stream", "") for d in docs)

    try:
        hits(tag=tag1)
        assert hits(tag=tag2, cache_from=[tag1]) == 3
        docker_client.images.remove(tag2)
        assert hits(tag=tag2, cache_from=[f"h1-no-such-image:{uuid.uuid4().hex[:8]}"]) == 0
    finally:
        for t in (tag2, tag1):
            try:
                docker_client.images.remove(t, force=True)
            except docker.errors.ImageNotFound:
                pass
