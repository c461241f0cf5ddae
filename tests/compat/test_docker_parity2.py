"""Docker parity, issue 16 (another slice), as the docker CLI sees ``pods daemon``:

- ``docker run --rm`` removes the container's anonymous volumes (``-v /data``, an image's
  ``VOLUME``), as dockerd does; a named volume stays.
- ``docker start -a`` of an exited container runs it again and shows that run's output and exit
  code (the attach waits for the next start, as for a created container).

Every test names what it makes after ``name`` and removes it at teardown, whatever failed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dockerd_helper import both_engines
from daemon_helper import wait_until

DockerCLI = Any  # conftest's (conftest modules are not imported by name)


@pytest.fixture
def made(docker: DockerCLI) -> Iterator[dict[str, list[str]]]:
    """Scope: function. Depends on: docker. What the test made, by kind; removed at teardown."""
    things: dict[str, list[str]] = {"container": [], "volume": [], "image": []}
    yield things
    errors = []
    for kind, cmd in (("container", ("rm", "-f")), ("volume", ("volume", "rm", "-f")), ("image", ("rmi", "-f"))):
        for ref in things[kind]:
            proc = docker(*cmd, ref, check=False)
            if proc.returncode != 0 and "No such" not in proc.stderr:
                errors.append(AssertionError(f"teardown: docker {' '.join(cmd)} {ref}: {proc.stderr.strip()}"))
    if errors:
        raise ExceptionGroup("teardown: remove what the test made", errors)


def docker_inspect(docker: DockerCLI, ref: str) -> dict[str, Any]:
    return json.loads(docker("inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def volumes(docker: DockerCLI) -> set[str]:
    return set(docker("volume", "ls", "-q").stdout.split())


def assert_no_new_volume(docker: DockerCLI, before: set[str]) -> None:
    try:
        wait_until(lambda: volumes(docker) <= before, 10, "the --rm container's anonymous volume to go")
    except TimeoutError:
        raise AssertionError(f"left behind: {sorted(volumes(docker) - before)}") from None


@both_engines
def test_run_rm_removes_its_anonymous_volume(docker: DockerCLI, made: dict[str, list[str]], name: str) -> None:
    made["container"].append(name)
    before = volumes(docker)
    proc = docker("run", "--rm", "--name", name, "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f; cat /data/f")
    assert proc.stdout == "x\n"
    assert_no_new_volume(docker, before)


@both_engines
def test_run_rm_removes_the_volume_of_an_images_volume(docker: DockerCLI, made: dict[str, list[str]],
                                                       name: str) -> None:
    tag = f"pods-test-volume-{uuid.uuid4().hex[:12]}:latest"
    made["container"].append(name)
    made["image"].append(tag)
    docker("build", "-q", "-t", tag, "-", input="FROM busybox\nVOLUME /data\n")
    before = volumes(docker)
    proc = docker("run", "--rm", "--name", name, tag, "sh", "-c", "touch /data/f && ls /data")
    assert proc.stdout == "f\n"
    assert_no_new_volume(docker, before)


@both_engines
def test_run_rm_keeps_a_named_volume(docker: DockerCLI, made: dict[str, list[str]], name: str) -> None:
    vol = f"pods-test-{uuid.uuid4().hex[:12]}"
    made["container"].append(name)
    made["volume"].append(vol)
    docker("run", "--rm", "--name", name, "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert vol in volumes(docker)
    proc = docker("run", "--rm", "--name", name, "-v", f"{vol}:/data", "busybox", "cat", "/data/f")
    assert proc.stdout == "kept\n"


@both_engines
def test_run_rm_keeps_an_anonymous_volume_another_container_mounts(docker: DockerCLI,
                                                                   made: dict[str, list[str]], name: str) -> None:
    # as rm -v: the volume goes only when nothing mounts it any more
    keeper = f"{name}-keeper"
    made["container"] += [name, keeper]
    docker("create", "--name", keeper, "-v", "/data", "busybox", "true")
    vol = next(m["Name"] for m in docker_inspect(docker, keeper)["Mounts"] if m["Destination"] == "/data")
    docker("run", "--rm", "--name", name, "--volumes-from", keeper, "busybox", "touch", "/data/f")
    assert vol in volumes(docker)
    docker("rm", "-v", keeper)
    assert vol not in volumes(docker)


@both_engines
def test_start_a_of_an_exited_container_shows_each_run(docker: DockerCLI, made: dict[str, list[str]],
                                                      name: str) -> None:
    made["container"].append(name)
    docker("create", "--name", name, "busybox", "sh", "-c", "echo hello; exit 3")
    for _ in range(2):
        proc = docker("start", "-a", name, check=False, timeout=60)
        assert (proc.returncode, proc.stdout) == (3, "hello\n"), proc.stderr
    assert docker_inspect(docker, name)["State"]["ExitCode"] == 3


@both_engines
def test_start_a_of_an_exited_container_shows_the_new_runs_output(docker: DockerCLI, made: dict[str, list[str]],
                                                                  name: str) -> None:
    made["container"].append(name)
    docker("create", "--name", name, "busybox", "sh", "-c", "echo run-$RANDOM-$$; echo err >&2")
    runs = []
    for _ in range(2):
        proc = docker("start", "-a", name, timeout=60)
        assert proc.stderr == "err\n"
        runs.append(proc.stdout)
    assert all(r.startswith("run-") and r.count("\n") == 1 for r in runs), runs
    assert runs[0] != runs[1]
    assert docker("logs", name).stdout.count("run-") == 2
