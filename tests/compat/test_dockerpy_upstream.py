"""What docker-py's own integration suite (tests/integration of docker/docker-py 7.1) found where
``pods daemon`` answered otherwise than dockerd, each checked here in our own words with docker-py
on ``pods daemon`` and on the reference dockerd (``@both_engines``), so the expected outcome is
Docker's.

Volumes of a stopped container in ``docker cp``'s archive routes; an exec's pty and its stream's
framing (the exec's Tty and the start's are two things); an exec's detach keys.
"""

from __future__ import annotations

import io
import socket
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helper import wait_until
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


# -- exec: the pty, the stream's framing, detach keys ----------------------------------------------
@pytest.fixture
def sleeper(docker_client: Any, made: list[str], labels: dict[str, str]) -> str:
    """Scope: function. A running busybox container (``cat`` on an open stdin): its ID."""
    ctr = docker_client.api.create_container("busybox", "cat", stdin_open=True, labels=labels)
    made.append(ctr["Id"])
    docker_client.api.start(ctr)
    return str(ctr["Id"])


TWO_LINES = ["sh", "-c", "echo out; sleep 0.3; echo err >&2"]


@both_engines
def test_a_tty_exec_started_without_tty_sends_the_ptys_output_in_stdout_frames(docker_client: Any,
                                                                               sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, TWO_LINES, tty=True)
    assert api.exec_start(ex, demux=True) == (b"out\r\nerr\r\n", None)  # a pty's line ends, all on stdout
    # a start with no body at all (Tty false) frames it too
    ex = api.exec_create(sleeper, ["echo", "hi"], tty=True)
    resp = api._post_json(api._url("/exec/{0}/start", ex["Id"]), data={})
    assert resp.status_code == 200
    assert resp.content == b"\x01\x00\x00\x00\x00\x00\x00\x04hi\r\n"


@both_engines
def test_a_tty_exec_started_with_tty_streams_raw(docker_client: Any, sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, TWO_LINES, tty=True)
    assert api.exec_start(ex, tty=True) == b"out\r\nerr\r\n"
    ex = api.exec_create(sleeper, TWO_LINES)  # no pty: the stream's two, framed apart
    assert api.exec_start(ex, demux=True) == (b"out\n", b"err\n")


@both_engines
@pytest.mark.parametrize("keys", [None, "ctrl-x,y"])
def test_detach_keys_typed_into_a_tty_exec_end_the_attach_and_its_stdin(docker_client: Any, sleeper: str,
                                                                        keys: str | None) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, "cat", stdin=True, tty=True, detach_keys=keys)
    sock = api.exec_start(ex, tty=True, socket=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    try:
        raw.settimeout(10)
        raw.sendall(b"echo me\n")
        seen = b""
        while seen.count(b"echo me\r\n") < 2:  # the pty's echo, then cat's
            seen += raw.recv(4096)
        raw.sendall(b"\x10\x11" if keys is None else b"\x18y")  # ctrl-p ctrl-q, or ctrl-x y
        rest = b""
        while chunk := raw.recv(4096):  # the daemon says why and closes the stream
            rest += chunk
        assert rest == b"exec attach failed: error on attach stdin: read escape sequence\r\n"
    finally:
        raw.close()
    # its stdin ended with the attach: cat reads its end and exits
    wait_until(lambda: not api.exec_inspect(ex)["Running"], 10, "the detached exec's end")


@both_engines
def test_an_exec_that_cannot_start_says_why_on_its_stdout(docker_client: Any, sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, ["no-such-command"])
    out, err = api.exec_start(ex, demux=True)
    assert err is None
    assert b"no-such-command" in out and b"executable file not found in $PATH" in out and out.endswith(b"\r\n")
    # Docker since API 1.42 gives exec start errors the container start's codes: 127; 20.10 answered 126
    api_version = tuple(int(x) for x in docker_client.version()["ApiVersion"].split("."))
    assert api.exec_inspect(ex)["ExitCode"] == (127 if api_version > (1, 41) else 126)


@both_engines
def test_invalid_detach_keys_are_refused_at_exec_create(docker_client: Any, sleeper: str) -> None:
    with pytest.raises(dockerpy.errors.APIError) as info:
        docker_client.api.exec_create(sleeper, "cat", stdin=True, tty=True, detach_keys="ctrl-1")
    assert info.value.status_code in (400, 500)
    assert "Invalid escape keys (ctrl-1) provided" in str(info.value)
