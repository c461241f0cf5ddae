"""Docker parity, issue 16 (a slice): what the docker CLI, docker-py and testcontainers see of
``pods daemon`` where it used to differ from dockerd.

- ``docker cp`` and the archive endpoints on created and stopped containers (testcontainers copies
  files in before the start), and the Client API's ``copy_in``/``copy_out``/``read_file`` likewise;
  no path leaves the container's root.
- ``POST /containers/{id}/kill`` (SIGKILL) answers once the container is dead.
- ``POST /swarm/leave`` and the manager-only paths answer dockerd's 503s.
- ``OpenStdin`` without an attached client keeps stdin open (``docker run -d -i busybox cat``).

Every test names what it makes after ``name`` (CLI) or labels it (docker-py), and its teardown
removes that, whatever failed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import wait_until
from dockerd_helper import both_engines
from tc_helper import pointed_testcontainers

from pytest_pods import Client

dockerpy = pytest.importorskip("docker")
tc_config = pytest.importorskip("testcontainers.core.config")
from testcontainers.core.container import DockerContainer  # noqa: E402

DockerCLI = Any  # conftest's (conftest modules are not imported by name)
NO_SWARM = "This node is not part of a swarm"
NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
                 "node to swarm and try again.")


def inspect(docker_cli: DockerCLI, ref: str) -> dict[str, Any]:
    return json.loads(docker_cli("inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar_one(data: bytes) -> tuple[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        member = tf.next()
        assert member is not None
        f = tf.extractfile(member)
        return member.name, f.read() if f is not None else b""


@pytest.fixture
def tc(docker_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Scope: function. Depends on: docker_engine. testcontainers pointed at the daemon, without Ryuk
    (as in test_clients.py's ``tc``: its settings are read at import and reset here)."""
    with pointed_testcontainers(docker_engine.host, monkeypatch, ryuk=False) as c:
        yield c


# -- docker cp on created and stopped containers ----------------------------------------------------
@both_engines
def test_cp_into_a_created_container_shows_when_it_starts(docker: DockerCLI, names: list[str], name: str,
                                                          tmp_path: Path) -> None:
    src = tmp_path / "greeting.txt"
    src.write_text("hello before start\n")
    tree = tmp_path / "conf.d"
    tree.mkdir()
    (tree / "a.conf").write_text("a=1\n")
    names.append(name)
    docker("create", "--name", name, "busybox", "sh", "-c", "cat /greeting.txt /etc/conf.d/a.conf")
    docker("cp", str(src), f"{name}:/greeting.txt")
    docker("cp", str(tree), f"{name}:/etc/")
    assert inspect(docker, name)["State"]["Status"] == "created"
    assert docker("start", "-a", name).stdout == "hello before start\na=1\n"


@both_engines
def test_cp_out_of_a_stopped_container_reads_its_files(docker: DockerCLI, names: list[str], name: str,
                                                       tmp_path: Path) -> None:
    names.append(name)
    docker("run", "--name", name, "busybox", "sh", "-c", "echo made-in-run > /out.txt; rm /etc/group")
    assert inspect(docker, name)["State"]["Status"] == "exited"
    docker("cp", f"{name}:/out.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "made-in-run\n"
    # `-`: a tar on stdout; a file of the image's own layers reads through
    proc = subprocess.run(["docker", "cp", f"{name}:/etc/passwd", "-"], env=docker.env, capture_output=True,
                          timeout=60, check=True)
    member, data = untar_one(proc.stdout)
    assert member == "passwd" and data.startswith(b"root:")
    # a file the container deleted is gone (its whiteout hides the image's)
    gone = docker("cp", f"{name}:/etc/group", str(tmp_path / "group"), check=False)
    assert gone.returncode != 0 and not (tmp_path / "group").exists()
    assert "Could not find the file /etc/group in container" in gone.stderr or "No such container:path" in gone.stderr


@both_engines
def test_cp_through_symlinks_stays_in_the_container(docker: DockerCLI, names: list[str], name: str,
                                                    tmp_path: Path) -> None:
    # a host directory the container's links name, absolute and by climbing out with ..
    host_dir = Path(tempfile.mkdtemp(prefix="pods-parity-host-", dir="/var/tmp"))
    try:
        (host_dir / "shadow").write_text("HOST SECRET\n")
        names.append(name)
        script = (f"ln -s {host_dir} /abs; ln -s ../../../../../..{host_dir} /climb; "
                  f"ln -s {host_dir}/shadow /file-link")
        docker("run", "--name", name, "busybox", "sh", "-c", script)
        for path in ("/abs/shadow", "/climb/shadow"):  # resolved in the container: no such file there
            proc = docker("cp", f"{name}:{path}", str(tmp_path / "leak"), check=False)
            assert proc.returncode != 0 and not (tmp_path / "leak").exists(), proc.stdout
        # the link itself is copied as a link, never its host target
        docker("cp", f"{name}:/file-link", str(tmp_path / "link"))
        assert (tmp_path / "link").is_symlink() and os.readlink(tmp_path / "link") == f"{host_dir}/shadow"
        # writing through the links never reaches the host's directory
        (tmp_path / "payload").write_text("from cp\n")
        for dest in ("/abs/", "/climb/", "/abs/payload"):
            docker("cp", str(tmp_path / "payload"), f"{name}:{dest}", check=False)
        assert sorted(p.name for p in host_dir.iterdir()) == ["shadow"]
        assert (host_dir / "shadow").read_text() == "HOST SECRET\n"
        # once the container has its own file there, that is what cp reads
        (tmp_path / "own").write_text("CONTAINER OWN\n")
        docker("cp", str(tmp_path / "own"), f"{name}:/")
        docker("cp", f"{name}:/own", str(tmp_path / "own-back"))
        assert (tmp_path / "own-back").read_text() == "CONTAINER OWN\n"
    finally:
        shutil.rmtree(host_dir)


@both_engines
def test_docker_py_put_archive_before_start_and_get_archive_after_exit(docker_client: Any,
                                                                       labels: dict[str, str]) -> None:
    api = docker_client.api
    cid = api.create_container("busybox", ["sh", "-c", "cat /etc/app.conf; echo done > /etc/result"],
                               labels=labels)["Id"]
    assert api.put_archive(cid, "/etc", tar_of({"app.conf": b"setting=1\n"})) is True
    stream, stat = api.get_archive(cid, "/etc/app.conf")
    assert stat["name"] == "app.conf" and stat["size"] == len(b"setting=1\n")
    assert untar_one(b"".join(stream)) == ("app.conf", b"setting=1\n")
    api.start(cid)
    assert api.wait(cid, timeout=60)["StatusCode"] == 0
    assert api.logs(cid) == b"setting=1\n"
    stream, _ = api.get_archive(cid, "/etc/result")
    assert untar_one(b"".join(stream)) == ("result", b"done\n")
    with pytest.raises(dockerpy.errors.NotFound):
        api.get_archive(cid, "/no/such/file")


@both_engines
def test_testcontainers_copies_into_the_container_before_it_starts(tc: Any, docker_client: Any) -> None:
    ctr = (DockerContainer("busybox").with_command("sh -c 'cat /opt/copied.txt; sleep 60'")
           .with_copy_into_container(b"copied before start\n", "/opt/copied.txt"))
    with ctr:
        wrapped = ctr.get_wrapped_container()
        wait_until(lambda: b"copied before start" in wrapped.logs(), 10, "the copied file in the logs")
        assert wrapped.logs() == b"copied before start\n"
        cid = wrapped.id
    with pytest.raises(dockerpy.errors.NotFound):
        docker_client.containers.get(cid)


def test_client_api_copies_in_and_out_of_created_and_stopped_containers(client: Client, tmp_path: Path) -> None:
    ctr = client.containers.create("busybox", ["sh", "-c", "cat /in.txt; echo out > /out.txt"])
    try:
        (tmp_path / "in.txt").write_text("into created\n")
        ctr.copy_in(tmp_path / "in.txt", "/in.txt")
        assert ctr.read_file("/in.txt") == b"into created\n"
        ctr.start()
        assert ctr.wait(timeout=60) == 0
        assert ctr.read_file("/out.txt") == b"out\n"
        ctr.copy_out("/out.txt", tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "out\n"
    finally:
        ctr.remove(force=True)


# -- kill ----------------------------------------------------------------------------------------------
@both_engines
def test_kill_returns_once_the_container_is_dead(docker_client: Any, labels: dict[str, str]) -> None:
    api = docker_client.api
    cid = api.create_container("busybox", ["sleep", "600"], labels=labels)["Id"]
    for i in range(50):
        api.start(cid)
        api.kill(cid)
        state = api.inspect_container(cid)["State"]
        assert (state["Running"], state["Status"], state["ExitCode"]) == (False, "exited", 137), f"round {i}"


@both_engines
def test_docker_kill_then_inspect_and_kill_s_term_returns_at_once(docker: DockerCLI, names: list[str],
                                                                  name: str) -> None:
    names.append(name)
    docker("run", "-d", "--name", name, "busybox", "sleep", "600")
    docker("kill", name)
    assert inspect(docker, name)["State"]["Running"] is False
    # another signal: answered once sent (the shell exits on it a moment later)
    other = f"{name}-t"
    names.append(other)
    docker("run", "-d", "--name", other, "busybox", "sh", "-c", "trap 'sleep 1; exit 3' TERM; while :; do sleep 0.1; done")
    started = time.monotonic()
    docker("kill", "-s", "TERM", other)
    assert time.monotonic() - started < 1.0
    wait_until(lambda: inspect(docker, other)["State"]["Status"] == "exited", 10, "the TERM'd container to exit")
    assert inspect(docker, other)["State"]["ExitCode"] == 3


def test_pods_kill_returns_once_the_container_is_dead(pods_cli: Any, name: str) -> None:
    pods_cli("run", "-d", "--name", name, "busybox", "sleep", "600", check=True)
    try:
        pods_cli("kill", name, check=True)
        state = json.loads(pods_cli("inspect", name, check=True).stdout)[0]["State"]
        assert (state["Running"], state["ExitCode"]) == (False, 137)
    finally:
        pods_cli("rm", "-f", name)


# -- swarm ---------------------------------------------------------------------------------------------
@both_engines
def test_swarm_leave_answers_dockers_not_part_of_a_swarm(docker: DockerCLI, docker_client: Any) -> None:
    proc = docker("swarm", "leave", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error response from daemon: {NO_SWARM}"
    # docker-py's teardown call: a 503 with force is "left" (its own rule for dockerd's answer)
    assert docker_client.swarm.leave(force=True) is True
    with pytest.raises(dockerpy.errors.APIError) as err:
        docker_client.swarm.leave()
    assert err.value.status_code == 503 and err.value.explanation == NO_SWARM
    proc = docker("node", "ls", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == f"Error response from daemon: {NOT_A_MANAGER}"
    with pytest.raises(dockerpy.errors.APIError) as err:
        docker_client.api.inspect_swarm()
    assert err.value.status_code == 503 and err.value.explanation == NOT_A_MANAGER


# -- stdin of OpenStdin containers -----------------------------------------------------------------------
@both_engines
def test_run_d_i_keeps_stdin_open_so_cat_runs(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "-i", "--name", name, "busybox", "cat")
    time.sleep(2)
    state = inspect(docker, name)
    assert state["State"]["Running"] is True and state["Config"]["OpenStdin"] is True
    assert docker("exec", name, "echo", "exec works").stdout == "exec works\n"
    started = time.monotonic()
    docker("stop", "-t", "10", name)  # cat as pid 1 ignores TERM: the stop ends in SIGKILL
    assert inspect(docker, name)["State"]["Running"] is False
    assert time.monotonic() - started < 15


@both_engines
def test_run_i_attached_cat_ends_when_the_client_closes_stdin(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    proc = docker("run", "-i", "--name", name, "busybox", "cat", input="line one\nline two\n", timeout=60)
    assert proc.stdout == "line one\nline two\n"
    state = inspect(docker, name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


@both_engines
def test_docker_py_stdin_open_container_keeps_running(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", "cat", stdin_open=True, detach=True, labels=labels)
    time.sleep(1)
    ctr.reload()
    assert ctr.status == "running"
    assert ctr.exec_run(["echo", "alive"]) == (0, b"alive\n")
    ctr.kill(signal.SIGKILL.name)
    ctr.reload()
    assert ctr.status == "exited"
