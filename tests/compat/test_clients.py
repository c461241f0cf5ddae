"""docker-py and testcontainers-python, unchanged, against ``pods daemon``.

Each test labels what it creates (``labels``) and its teardown removes whatever carries the label,
so a failed assertion leaves nothing behind. Where the daemon differs from Docker the test asserts
Docker's behaviour; the few that cannot be worked around are strict xfails naming the handler.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import socket
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from daemon_helper import wait_until
from dockerd_helper import ReferenceDocker, both_engines, privileged_unavailable
from tc_helper import pointed_testcontainers

docker = pytest.importorskip("docker")
tc_config = pytest.importorskip("testcontainers.core.config")

from testcontainers.core import utils as tc_utils  # noqa: E402
from testcontainers.core.container import DockerContainer, Reaper  # noqa: E402
from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID  # noqa: E402
from testcontainers.core.waiting_utils import wait_for_logs  # noqa: E402

RYUK_NAME = "testcontainers-ryuk-"  # + the session id: testcontainers' name for its Ryuk
#: busybox httpd on 8080 under a shell that exits on SIGTERM (a PID 1 without a handler ignores
#: it, and the stop would wait out its timeout, with Docker too)
HTTPD = ("trap 'exit 0' TERM; mkdir -p /www && echo hi > /www/index.html; "
         "httpd -f -p 8080 -h /www & echo ready; wait")


def api_version(client: Any) -> tuple[int, ...]:
    """The API version docker-py speaks to this daemon (negotiated), e.g. (1, 47)."""
    return tuple(int(p) for p in client.api.api_version.split("."))


def gone(get: Callable[[], Any]) -> bool:
    try:
        get()
    except docker.errors.NotFound:
        return True
    return False


def http_get(host: str, port: int, timeout: float = 5) -> bytes:
    """The body of ``GET /`` at host:port (HTTP/1.0, so the server closes when done)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), head
    return body


def try_http(host: str, port: int) -> bytes | None:
    """``http_get``, or None while nothing listens yet."""
    try:
        return http_get(host, port)
    except OSError:
        return None


def read_line(conn: socket.socket) -> bytes:
    """One line from ``conn``, without its end (Ryuk answers ``ACK`` and a newline)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            break
        data += chunk
    return data.strip()


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_httpd(client: Any, labels: dict[str, str]) -> Any:
    """``HTTPD``, 8080 published on an ephemeral host port, once it said ``ready``."""
    ctr = client.containers.run("busybox", ["sh", "-c", HTTPD], detach=True, labels=labels,
                                ports={"8080/tcp": None})
    wait_until(lambda: b"ready" in ctr.logs(), 10, f"'ready' in the logs of {ctr.short_id}")
    return ctr


# -- docker-py -----------------------------------------------------------------------------------
@both_engines
def test_docker_py_runs_a_container_and_reads_logs_exec_ports_and_stops_it(
        docker_client: Any, labels: dict[str, str]) -> None:
    ctr = run_httpd(docker_client, labels)

    assert ctr.logs() == b"ready\n"
    assert ctr.logs(stdout=False) == b""
    result = ctr.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert sorted(result.output.splitlines()) == [b"err", b"out"]
    assert ctr.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True).output == (b"o\n", b"e\n")
    assert ctr.exec_run(["cat", "/www/index.html"]) == (0, b"hi\n")

    ctr.reload()
    state = ctr.attrs["State"]
    assert ctr.status == "running"
    assert state["Running"] is True and state["Pid"] > 0 and state["ExitCode"] == 0
    assert ctr.attrs["Config"]["Labels"] == labels
    bindings = ctr.attrs["NetworkSettings"]["Ports"]["8080/tcp"]
    assert bindings and bindings[0]["HostPort"].isdigit()
    port = int(bindings[0]["HostPort"])
    body = wait_until(lambda: try_http("127.0.0.1", port), 10, f"httpd on 127.0.0.1:{port}")
    assert body == b"hi\n"

    started = time.monotonic()
    ctr.stop(timeout=10)
    assert time.monotonic() - started < 5, "the shell exits on SIGTERM: stop must not wait out its timeout"
    ctr.reload()
    assert ctr.status == "exited"
    assert ctr.attrs["State"]["ExitCode"] == 0
    assert ctr.wait(timeout=10)["StatusCode"] == 0

    ctr.remove()
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(ctr.id)


@both_engines
def test_docker_py_lists_and_gets_images(docker_client: Any) -> None:
    busybox = docker_client.images.get("busybox")
    assert "busybox:latest" in busybox.tags
    assert busybox.id.startswith("sha256:")
    assert docker_client.images.get(busybox.id).id == busybox.id
    assert docker_client.images.get(busybox.short_id).id == busybox.id
    assert busybox.id in {i.id for i in docker_client.images.list()}
    assert [i.id for i in docker_client.images.list(name="busybox")] == [busybox.id]
    assert docker_client.images.list(name=f"no-such-{uuid.uuid4().hex[:8]}") == []


@both_engines
def test_docker_py_filters_containers_by_label(docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    a = docker_client.containers.create("busybox", ["true"], labels={**labels, "role": "a"})
    b = docker_client.containers.create("busybox", ["true"], labels={**labels, "role": "b"})

    def ids(**filters: Any) -> set[str]:
        return {c.id for c in docker_client.containers.list(all=True, filters=filters)}

    assert ids(label=f"{key}={value}") == {a.id, b.id}
    assert ids(label=[f"{key}={value}", "role=a"]) == {a.id}
    assert ids(label=[f"{key}={value}", "role=c"]) == set()
    assert ids(label=key) >= {a.id, b.id}
    assert docker_client.containers.list(filters={"label": f"{key}={value}"}) == [], "created is not running"


@both_engines
def test_docker_py_raises_not_found_for_a_missing_container(docker_client: Any) -> None:
    name = f"no-such-container-{uuid.uuid4().hex[:8]}"
    with pytest.raises(docker.errors.NotFound) as info:
        docker_client.containers.get(name)
    assert info.value.status_code == 404
    assert f"No such container: {name}" in str(info.value)


@both_engines
def test_docker_py_raises_image_not_found_for_a_missing_image(docker_client: Any) -> None:
    image = f"no-such-image-{uuid.uuid4().hex[:8]}:1"
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image)
    with pytest.raises(docker.errors.ImageNotFound):  # docker-py picks the class from the text
        docker_client.containers.create(image, ["true"])


@both_engines
def test_docker_py_gets_409_removing_a_running_container(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, labels=labels)
    with pytest.raises(docker.errors.APIError) as info:
        ctr.remove()
    assert info.value.status_code == 409
    assert not isinstance(info.value, docker.errors.NotFound)
    ctr.reload()
    assert ctr.status == "running"
    ctr.remove(force=True)
    assert gone(lambda: docker_client.containers.get(ctr.id))


@both_engines
def test_docker_py_starts_a_container_again_right_after_it_exited(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.create("busybox", ["true"], labels=labels)
    for _ in range(50):  # when this was written, one round in four or five failed
        ctr.start()
        assert ctr.wait(timeout=10)["StatusCode"] == 0
    ctr.restart(timeout=1)


def test_docker_py_version_and_ping(docker_client: Any, daemon: Any) -> None:
    assert docker_client.ping() is True
    bare = docker_client.api.version(api_version=False)  # GET /version, no /v1.xx prefix
    versioned = docker_client.version()
    for doc in (bare, versioned):
        assert doc["ApiVersion"] == "1.47"
        assert doc["MinAPIVersion"] == "1.24"
        assert doc["Os"] == "linux"
        assert doc["Version"]
    negotiated = docker.APIClient(base_url=daemon.host, version="auto")
    try:
        assert negotiated.api_version == "1.47"
    finally:
        negotiated.close()


@both_engines
def test_docker_py_puts_and_gets_an_archive(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, labels=labels)
    assert ctr.put_archive("/tmp", tar_of({"hello.txt": b"from the host\n", "sub/deeper.txt": b"x"})) is True
    assert ctr.exec_run(["cat", "/tmp/hello.txt", "/tmp/sub/deeper.txt"]) == (0, b"from the host\nx")

    stream, stat = ctr.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == len(b"from the host\n")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
        assert tf.extractfile("hello.txt").read() == b"from the host\n"  # type: ignore[union-attr]

    stream, stat = ctr.get_archive("/tmp/sub")
    assert stat["name"] == "sub"
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
        assert tf.extractfile("sub/deeper.txt").read() == b"x"  # type: ignore[union-attr]

    with pytest.raises(docker.errors.NotFound):
        ctr.get_archive("/no/such/path")
    with pytest.raises(docker.errors.NotFound):
        ctr.put_archive("/no/such/dir", tar_of({"f": b""}))


@both_engines
def test_docker_py_gets_an_archive_of_the_root_directory(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, labels=labels)
    stream, _stat = ctr.get_archive("/")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tf:
        names = set(tf.getnames())
    assert {"bin/busybox", "etc"} <= {n.lstrip("./").lstrip("/") for n in names}, sorted(names)[:20]


@both_engines
def test_docker_py_creates_and_removes_a_network(docker_client: Any, labels: dict[str, str]) -> None:
    name = f"pods-t-{uuid.uuid4().hex[:8]}"
    net = docker_client.networks.create(name, driver="bridge", labels=labels)
    assert docker_client.networks.get(name).id == net.id
    assert docker_client.networks.get(net.id).attrs["Labels"] == labels
    assert [n.id for n in docker_client.networks.list(names=[name])] == [net.id]
    if api_version(docker_client) >= (1, 44):  # since 1.44 a name is one network's
        with pytest.raises(docker.errors.APIError) as info:
            docker_client.networks.create(name)
        assert info.value.status_code == 409
    else:  # before, only with CheckDuplicate, which docker-py does not send
        docker_client.networks.create(name, labels=labels).remove()
    net.remove()
    assert gone(lambda: docker_client.networks.get(name))
    with pytest.raises(docker.errors.NotFound):
        net.remove()


@both_engines
def test_docker_py_creates_and_removes_a_volume(docker_client: Any, labels: dict[str, str]) -> None:
    name = f"pods-t-{uuid.uuid4().hex[:8]}"
    vol = docker_client.volumes.create(name, labels=labels)
    assert vol.name == name
    got = docker_client.volumes.get(name)
    assert got.attrs["Labels"] == labels and got.attrs["Driver"] == "local"
    assert name in {v.name for v in docker_client.volumes.list()}
    vol.remove()
    assert gone(lambda: docker_client.volumes.get(name))
    with pytest.raises(docker.errors.NotFound):
        vol.remove()


@both_engines
def test_docker_py_filters_volumes_by_label_and_name(docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    tagged = docker_client.volumes.create(f"pods-t-{uuid.uuid4().hex[:8]}", labels={**labels, "role": "a"})
    other = docker_client.volumes.create(f"pods-t-{uuid.uuid4().hex[:8]}", labels=labels)
    assert {v.name for v in docker_client.volumes.list(filters={"label": [f"{key}={value}", "role=a"]})} == {tagged.name}
    assert {v.name for v in docker_client.volumes.list(filters={"name": other.name})} == {other.name}


@pytest.fixture
def anonymous_volumes(docker_client: Any) -> Iterator[Callable[[], set[str]]]:
    """Scope: function. Depends on: docker_client. The volumes made since the test began (they
    carry no label); teardown removes them."""
    before = {v.name for v in docker_client.volumes.list()}

    def new() -> set[str]:
        return {v.name for v in docker_client.volumes.list()} - before

    yield new
    for name in new():
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.volumes.get(name).remove(force=True)


@both_engines
def test_docker_py_remove_with_v_removes_anonymous_volumes(
        docker_client: Any, labels: dict[str, str], anonymous_volumes: Callable[[], set[str]]) -> None:
    ctr = docker_client.containers.create("busybox", ["true"], labels=labels,
                                          mounts=[docker.types.Mount("/data", None, type="volume")])
    made = anonymous_volumes()
    assert len(made) == 1, made
    ctr.remove(v=True)
    assert anonymous_volumes() == set(), "docker rm -v removes the anonymous volumes with the container"


@both_engines
def test_docker_py_config_volumes_make_an_anonymous_volume(
        docker_client: Any, labels: dict[str, str], anonymous_volumes: Callable[[], set[str]]) -> None:
    cid = docker_client.api.create_container("busybox", ["true"], volumes=["/data"], labels=labels)["Id"]
    mounts = docker_client.containers.get(cid).attrs["Mounts"]
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("volume", "/data")], mounts
    assert anonymous_volumes() == {mounts[0]["Name"]}
    docker_client.containers.get(cid).remove(v=True)  # (docker-py drops volume rm's force: remove it so)
    assert anonymous_volumes() == set()


@both_engines
def test_docker_py_inspect_reports_a_volume_mount_as_a_volume(docker_client: Any, labels: dict[str, str]) -> None:
    vol = docker_client.volumes.create(f"pods-t-{uuid.uuid4().hex[:8]}", labels=labels)
    ctr = docker_client.containers.create("busybox", ["true"], labels=labels,
                                          volumes={vol.name: {"bind": "/v", "mode": "rw"}})
    mount, = ctr.attrs["Mounts"]
    assert (mount["Type"], mount.get("Name"), mount["Destination"], mount["RW"]) == ("volume", vol.name, "/v", True)


@both_engines
def test_docker_py_prune_spares_containers_the_filter_does_not_match(
        docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    stopped = [c for c in docker_client.containers.list(all=True) if c.status != "running"]
    if any(c.labels.get(key) != value for c in stopped):
        pytest.skip("this root has stopped containers of others: a prune that ignores its filter would remove them")
    doomed = docker_client.containers.create("busybox", ["true"], labels={**labels, "prune": "yes"})
    kept = docker_client.containers.create("busybox", ["true"], labels=labels)
    deleted = docker_client.containers.prune(filters={"label": "prune=yes"})["ContainersDeleted"] or []
    assert doomed.id in deleted
    assert kept.id not in deleted
    assert not gone(lambda: docker_client.containers.get(kept.id))


# -- testcontainers ------------------------------------------------------------------------------
@pytest.fixture
def tc(docker_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Scope: function. Depends on: docker_engine. testcontainers' configuration, pointed at the daemon.

    testcontainers reads most settings once, at import: the environment is set for what it reads
    late (``DOCKER_HOST``, ``TESTCONTAINERS_RYUK_DISABLED``), and the cached values are reset on its
    configuration object. It caches no client (each container makes its own, and writes
    ``DOCKER_HOST`` back to ``os.environ``: monkeypatch restores it). Its Reaper is a process-wide
    singleton: a test starts from none and the teardown ends the one it made.
    """
    with pointed_testcontainers(docker_engine.host, monkeypatch, ryuk=True) as c:
        yield c


@pytest.fixture
def ryuk_image(tc: Any, docker_client: Any) -> Iterator[str]:
    """Scope: function. Depends on: tc, docker_client. testcontainers' Ryuk image, resolvable.

    testcontainers inspects (and else pulls) the Ryuk image before it creates the container the
    daemon answers with its stand-in; the daemon does not answer that inspect (see
    ``test_ryuk_image_resolves_without_a_registry``) and there is no Docker Hub here. Until it
    does, busybox is tagged as the image for the test and untagged after.
    """
    image = tc.ryuk_image
    try:
        docker_client.images.get(image)
        yield image
        return
    except docker.errors.ImageNotFound:
        pass
    repo, _, tag = image.rpartition(":")
    docker_client.images.get("busybox").tag(repo, tag)
    yield image
    docker_client.images.remove(image)


# testcontainers 4.x deprecates wait_for_logs(container, "text") for its wait strategies; it is
# still what most suites call
WAIT_FOR_LOGS_DEPRECATED = pytest.mark.filterwarnings("ignore:The wait_for_logs function:DeprecationWarning")


@WAIT_FOR_LOGS_DEPRECATED
@both_engines
def test_testcontainers_runs_busybox_without_ryuk(tc: Any, docker_client: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    assert tc.ryuk_disabled is True
    ctr = DockerContainer("busybox").with_command("sh -c 'echo ready; sleep 60'").with_exposed_ports(8080)
    with ctr:
        wait_for_logs(ctr, "ready", timeout=10)
        assert ctr.get_logs() == (b"ready\n", b"")
        assert ctr.exec("echo hi") == (0, b"hi\n")
        assert ctr.exec(["sh", "-c", "exit 7"]).exit_code == 7
        # serve the published port from inside (httpd daemonizes: exec returns)
        assert ctr.exec(["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && httpd -p 8080 -h /www"]).exit_code == 0
        host, port = ctr.get_container_host_ip(), ctr.get_exposed_port(8080)
        assert wait_until(lambda: try_http(host, port), 10, f"httpd on {host}:{port}") == b"hi\n"
        wrapped = ctr.get_wrapped_container()
        assert wrapped.labels[LABEL_SESSION_ID] == SESSION_ID
        cid = wrapped.id
    assert gone(lambda: docker_client.containers.get(cid))
    assert not [c for c in docker_client.containers.list(all=True) if RYUK_NAME in c.name]



@both_engines
def test_docker_py_types_and_the_low_level_api_carry_the_confinement_fields(
        docker_client: Any, labels: dict[str, str]) -> None:
    # issue 14: docker.types.Ulimit, create_host_config's names, and the HostConfig read back
    api = docker_client.api
    hc = api.create_host_config(network_mode="none", cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE"],
                                ulimits=[docker.types.Ulimit(name="nofile", soft=1024, hard=2048)],
                                shm_size="96m", sysctls={"net.ipv4.ip_forward": "1"}, read_only=True,
                                tmpfs={"/x": "size=1m"}, security_opt=["no-new-privileges"],
                                devices=["/dev/zero:/dev/myzero:rw"])
    script = ("grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; ulimit -n; df -k /dev/shm | tail -1; "
              "cat /proc/sys/net/ipv4/ip_forward; touch /x/f /y 2>&1; ls /dev/myzero")
    cid = api.create_container("busybox", ["sh", "-c", script], host_config=hc, labels=labels)["Id"]
    api.start(cid)
    assert api.wait(cid, timeout=60)["StatusCode"] == 0
    out = api.logs(cid).decode().split("\n")
    assert out[:4] == ["CapEff:\t0000000000000400", "NoNewPrivs:\t1", "1024", out[3]] and "98304" in out[3]
    assert out[4:7] == ["1", "touch: /y: Read-only file system", "/dev/myzero"], out
    attrs = api.inspect_container(cid)["HostConfig"]
    assert attrs["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}] and attrs["ShmSize"] == 96 << 20
    cap = "CAP_NET_BIND_SERVICE" if api_version(docker_client) > (1, 41) else "NET_BIND_SERVICE"  # 20.10: as given
    assert attrs["CapAdd"] == [cap] and attrs["CapDrop"] == ["ALL"]


@both_engines
def test_testcontainers_passes_privileged_and_security_opt(tc: Any, docker_client: Any, docker_engine: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if isinstance(docker_engine, ReferenceDocker) and (reason := privileged_unavailable()) is not None:
        pytest.skip(reason)
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    ctr = (DockerContainer("busybox").with_command("sleep 60")
           .with_kwargs(privileged=True, security_opt=["no-new-privileges"], network_mode="none"))
    with ctr:
        code, out = ctr.exec(["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"])
        assert code == 0 and out.decode().split() == ["NoNewPrivs:", "1", "Seccomp:", "0"], out
        assert ctr.get_wrapped_container().attrs["HostConfig"]["Privileged"] is True

def test_ryuk_image_resolves_without_a_registry(tc: Any, docker_client: Any) -> None:
    image = tc.ryuk_image
    try:  # testcontainers' DockerClient.create: inspect, else pull
        docker_client.images.get(image)
    except docker.errors.ImageNotFound:
        docker_client.images.pull(image)
    docker_client.images.get(image)


@WAIT_FOR_LOGS_DEPRECATED
def test_testcontainers_with_ryuk_starts_and_ryuk_reaps_the_session(
        tc: Any, ryuk_image: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tc, "ryuk_reconnection_timeout", "1s")  # RYUK_RECONNECTION_TIMEOUT, read at import
    assert tc.ryuk_disabled is False
    ctr = DockerContainer("busybox").with_command("sh -c 'echo ready; sleep 60'")
    ctr.start()
    cid = ctr.get_container_id()
    try:
        wait_for_logs(ctr, "ready", timeout=10)
        assert ctr.exec("echo hi") == (0, b"hi\n")
        ryuk, reaper_socket = Reaper._container, Reaper._socket
        assert ryuk is not None and reaper_socket is not None
        ryuk_id = ryuk.get_container_id()
        ryuk_attrs = docker_client.containers.get(ryuk_id).attrs
        assert ryuk_attrs["State"]["Running"] is True
        assert ryuk_attrs["Name"] == f"/{RYUK_NAME}{SESSION_ID}"
        # what the end of the test session does: testcontainers' connection to Ryuk closes
        reaper_socket.close()
        Reaper._socket = None
        wait_until(lambda: gone(lambda: docker_client.containers.get(cid)), 1 + 6,
                   "Ryuk to remove the session's container after its reconnection timeout (1 s)")
        wait_until(lambda: gone(lambda: docker_client.containers.get(ryuk_id)), 5,
                   "the Ryuk container to end after its prune")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(cid).remove(force=True)


@WAIT_FOR_LOGS_DEPRECATED
def test_testcontainers_inside_a_container_reaches_the_ryuk_stand_in_by_its_bridge_entry(
        tc: Any, ryuk_image: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 16: on a CI runner with /.dockerenv and a local daemon, testcontainers picks its
    # connection mode itself and reads Ryuk's NetworkSettings.Networks["bridge"] from the list
    # (it failed with KeyError: 'bridge'); each failed try left another stand-in of the same name
    monkeypatch.setattr(tc_utils, "inside_container", lambda: True)
    monkeypatch.setattr(tc, "tc_host_override", "127.0.0.1")
    monkeypatch.setattr(tc, "connection_mode_override", None)
    ctr = DockerContainer("busybox").with_command("sh -c 'echo ready; sleep 60'")
    with ctr:
        wait_for_logs(ctr, "ready", timeout=10)
        ryuks = [c for c in docker_client.api.containers(filters={"name": RYUK_NAME})]
        assert len(ryuks) == 1 and ryuks[0]["NetworkSettings"]["Networks"]["bridge"]["Gateway"] == "127.0.0.1"
        with pytest.raises(docker.errors.APIError) as conflict:  # a name is one container's, as in dockerd
            docker_client.api.create_container(ryuk_image, name=ryuks[0]["Names"][0].lstrip("/"))
        assert conflict.value.status_code == 409 and "is already in use by container" in str(conflict.value)


def test_ryuk_stand_in_speaks_the_ryuk_protocol(docker_client: Any, labels: dict[str, str], daemon: Any) -> None:
    """What testcontainers (any language) does with Ryuk, over the wire: filters in, ACK out, and
    when the last connection has been gone RYUK_RECONNECTION_TIMEOUT, what matched is removed."""
    session = uuid.uuid4().hex
    reaped = {**labels, "org.testcontainers.session-id": session}
    sock_path = daemon.host.removeprefix("unix://")
    ryuk = docker_client.containers.run(
        tc_config.testcontainers_config.ryuk_image, detach=True, name=f"{RYUK_NAME}{session}", auto_remove=True,
        ports={"8080/tcp": None}, environment={"RYUK_RECONNECTION_TIMEOUT": "1s"},
        volumes={sock_path: {"bind": "/var/run/docker.sock", "mode": "rw"}}, labels=labels)
    try:
        ryuk.reload()
        assert ryuk.status == "running"
        wait_until(lambda: b"Started!" in ryuk.logs(), 10, "Ryuk's 'Started!' line")
        port = int(ryuk.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(f"label=org.testcontainers.session-id={session}\r\n".encode())
            assert read_line(conn) == b"ACK"
            doomed = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, labels=reaped)
            kept = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, labels=labels)
            net = docker_client.networks.create(f"pods-t-{session[:8]}", labels=reaped)
            vol = docker_client.volumes.create(f"pods-t-{session[:8]}", labels=reaped)
            time.sleep(1.5)  # connected: nothing is reaped, however long
            assert not gone(lambda: docker_client.containers.get(doomed.id))
        wait_until(lambda: gone(lambda: docker_client.containers.get(doomed.id)), 1 + 5,
                   "Ryuk to remove the labelled container 1 s after the last connection closed")
        # Ryuk removes one by one: containers, then networks, then volumes
        wait_until(lambda: gone(lambda: docker_client.networks.get(net.id)), 5, "Ryuk to remove the labelled network")
        wait_until(lambda: gone(lambda: docker_client.volumes.get(vol.name)), 5, "Ryuk to remove the labelled volume")
        kept.reload()
        assert kept.status == "running", "a container without the session's label is not Ryuk's"
        wait_until(lambda: gone(ryuk.reload), 5, "the Ryuk container to end after its prune")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            ryuk.remove(force=True)


def _threads_and_fds(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return threads, len(os.listdir(f"/proc/{pid}/fd"))


SOAK_SESSIONS = 200


def test_ryuk_stand_in_soak_leaves_no_stand_in_thread_or_fd(tc: Any, ryuk_image: str, docker_client: Any,
                                                           daemon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: 200 testcontainers sessions in a loop (each its own Ryuk, connected, then ended as
    testcontainers ends it) leave no stand-in, and the daemon no more threads or open files than
    after the first session."""
    import testcontainers.core.container as tc_container

    assert daemon.proc is not None
    pid = daemon.proc.pid

    def one_session(n: int) -> None:
        monkeypatch.setattr(tc_container, "SESSION_ID", f"soak{uuid.uuid4().hex[:12]}{n}")
        Reaper.get_instance()
        Reaper.delete_instance()

    def settled(than: tuple[int, int], within: float) -> tuple[int, int]:
        """The daemon's figures once its stand-ins are gone and its threads back near ``than``
        (a stand-in ends its connection threads after testcontainers stops it), or at ``within``;
        the clients testcontainers made are collected first (their keep-alive connections hold
        a daemon thread each until they close)."""
        gc.collect()
        wait_until(lambda: not docker_client.api.containers(all=True, filters={"name": RYUK_NAME}), 10,
                   "the stand-ins to be gone")
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and _threads_and_fds(pid)[0] > than[0] + 2:
            time.sleep(0.2)
        return _threads_and_fds(pid)

    one_session(0)
    first = settled(_threads_and_fds(pid), 20)
    for n in range(1, SOAK_SESSIONS):
        one_session(n)
    last = settled(first, 20)
    assert docker_client.api.containers(all=True, filters={"name": RYUK_NAME}) == []
    assert last[0] <= first[0] + 2, f"daemon threads: {first[0]} after the first session, {last[0]} after {SOAK_SESSIONS}"
    assert last[1] <= first[1] + 2, f"daemon fds: {first[1]} after the first session, {last[1]} after {SOAK_SESSIONS}"
