"""``pods volume`` against ``docker volume`` (issue 19): the same verbs on the same daemon's volumes
print the same thing, and prune keeps what a container mounts."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helper import Daemon

DockerCLI = Any  # conftest's (conftest modules are not imported by name)


def pods(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), "volume", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def tag() -> Iterator[str]:
    yield f"vc{uuid.uuid4().hex[:8]}"


def test_create_ls_inspect_and_rm_print_what_docker_prints(docker: DockerCLI, daemon: Daemon, tag: str) -> None:
    made = pods(daemon, "create", "--label", f"t={tag}", "--label", "kind=data", f"{tag}-a")
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"{tag}-a\n"
    docker("volume", "create", "--label", f"t={tag}", f"{tag}-b")
    try:
        for args in (["ls", "-q", "--filter", f"label=t={tag}"], ["ls", "-q", "--filter", f"name={tag}-b"],
                     ["inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}", f"{tag}-a", f"{tag}-b"],
                     ["inspect", "-f", "{{json .Labels}}", f"{tag}-a"]):
            want = docker("volume", *args)
            got = pods(daemon, *args)
            assert (got.returncode, got.stdout) == (0, want.stdout), (args, got.stderr)
        missing = pods(daemon, "inspect", f"{tag}-none")
        assert missing.returncode == 1 and f"No such volume: {tag}-none" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        removed = pods(daemon, "rm", f"{tag}-a", f"{tag}-b")
    assert removed.stdout == f"{tag}-a\n{tag}-b\n"
    assert docker("volume", "ls", "-q", "--filter", f"label=t={tag}").stdout == ""


def test_prune_removes_unused_anonymous_volumes_and_all_only_with_a(docker: DockerCLI, daemon: Daemon,
                                                                     tag: str) -> None:
    docker("volume", "create", "--label", f"t={tag}", f"{tag}-named")
    docker("volume", "create", "--label", f"t={tag}", f"{tag}-used")
    docker("create", "--name", f"{tag}-c", "-v", f"{tag}-used:/data", "-v", "/anon", "--label", f"t={tag}",
           "busybox:latest", "true")
    anon = [m["Name"] for m in __import__("json").loads(docker("inspect", f"{tag}-c").stdout)[0]["Mounts"]
            if m["Destination"] == "/anon"]
    try:
        docker("rm", f"{tag}-c")  # without -v: its anonymous volume stays, unused
        assert anon[0] in docker("volume", "ls", "-q").stdout.split()
        docker("create", "--name", f"{tag}-c2", "-v", f"{tag}-used:/data", "busybox:latest", "true")
        pruned = pods(daemon, "prune", "-f")
        assert pruned.returncode == 0, pruned.stderr
        left = docker("volume", "ls", "-q").stdout.split()
        assert anon[0] not in left and f"{tag}-named" in left and f"{tag}-used" in left
        assert "Total reclaimed space:" in pruned.stdout
        pruned = pods(daemon, "prune", "-a", "-f", "--filter", f"label=t={tag}")
        left = docker("volume", "ls", "-q").stdout.split()
        assert f"{tag}-named" not in left, pruned.stdout
        assert f"{tag}-used" in left  # a (stopped) container mounts it
    finally:
        docker("rm", "-f", f"{tag}-c2", check=False)
        docker("volume", "rm", "-f", f"{tag}-named", f"{tag}-used", *anon, check=False)


def test_unknown_driver_and_bad_filter_are_named(daemon: Daemon, tag: str) -> None:
    bad = pods(daemon, "create", "-d", "nfs", f"{tag}-x")
    assert bad.returncode == 125 and 'plugin "nfs" not found' in bad.stderr
    bad = pods(daemon, "ls", "-f", "colour=red")
    assert bad.returncode == 125 and "invalid filter 'colour=red'" in bad.stderr
    assert f"{tag}-x" not in pods(daemon, "ls", "-q").stdout
