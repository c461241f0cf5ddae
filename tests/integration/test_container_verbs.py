"""``pods pause|unpause|rename|update|diff`` and ``pods run --restart|--mount|--group-add|--log-driver``
on the local engine (issue 16): what a user of the CLI sees. The Engine API side of the same verbs is
tests/compat/test_api_containers.py, compared with dockerd there."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.engine import rootless

Pods = Callable[..., Any]
CGROUPS = not rootless.active() or rootless.delegated_cgroup() is not None


@pytest.fixture
def ctr_names(pods_cli: Pods) -> Iterator[list[str]]:
    """Scope: function. Depends on: pods_cli. Names the test uses; rm -f at the end."""
    made: list[str] = []
    yield made
    for n in made:
        pods_cli("rm", "-f", n)


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_pause_rename_diff_and_update_from_the_cli(pods_cli: Pods, client: Client, ctr_names: list[str]) -> None:
    name, new = unique(), unique()
    ctr_names += [name, new]
    pods_cli("run", "-d", "--name", name, "busybox", "sleep", "300", check=True)
    pods_cli("exec", name, "sh", "-c", "mkdir /made && echo x > /made/f; rm /bin/ls", check=True)
    assert sorted(pods_cli("diff", name, check=True).stdout.splitlines()) == [
        "A /made", "A /made/f", "C /bin", "D /bin/ls"]
    pods_cli("rename", name, new, check=True)
    assert client.containers.state(new)["name"] == new
    taken = pods_cli("rename", new, new)
    assert taken.returncode != 0 and "Renaming a container with the same name as its current name" in taken.stderr
    if CGROUPS:
        pods_cli("pause", new, check=True)
        assert client.containers.state(new).get("paused")
        row = next(line for line in pods_cli("ps", check=True).stdout.splitlines() if line.endswith(new))
        assert "(Paused)" in row
        refused = pods_cli("exec", new, "true")
        assert refused.returncode != 0 and "is paused, unpause the container before exec" in refused.stderr
        pods_cli("unpause", new, check=True)
        pods_cli("update", "--memory", "32m", "--pids-limit", "20", "--restart", "always", new, check=True)
        st = client.containers.state(new)
        assert (st["limits"]["memory"], st["limits"]["pids"]) == (32 << 20, 20)
        assert st["restart_policy"] == {"Name": "always", "MaximumRetryCount": 0}
    else:
        refused = pods_cli("pause", new)
        assert refused.returncode != 0 and "no cgroup freezer here" in refused.stderr


def test_run_restart_on_failure_and_its_count(pods_cli: Pods, client: Client, ctr_names: list[str]) -> None:
    name = unique()
    ctr_names.append(name)
    pods_cli("run", "-d", "--name", name, "--restart", "on-failure:1", "busybox", "sh", "-c", "echo go; exit 2",
             check=True)
    deadline = time.monotonic() + 20
    while not (client.containers.state(name)["status"] == "exited" and client.containers.state(name)["restart_count"]):
        assert time.monotonic() < deadline, client.containers.state(name)
        time.sleep(0.05)
    time.sleep(0.5)
    st = client.containers.state(name)
    assert (st["status"], st["exit_code"], st["restart_count"]) == ("exited", 2, 1)
    assert pods_cli("logs", name, check=True).stdout == "go\ngo\n"
    bad = pods_cli("run", "--rm", "--restart", "sometimes", "busybox", "true")
    assert bad.returncode != 0 and "invalid restart policy 'sometimes'" in bad.stderr


def test_run_mount_volume_bind_and_tmpfs(pods_cli: Pods, client: Client, tmp_path: Path) -> None:
    vol = f"t-vol-{uuid.uuid4().hex[:8]}"
    (tmp_path / "in.txt").write_text("from the host\n")
    try:
        out = pods_cli(
            "run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/host,readonly",
            "--mount", f"type=volume,source={vol},target=/data", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m",
            "busybox", "sh", "-c",
            "cat /host/in.txt; touch /host/x 2>/dev/null || echo read-only; echo kept > /data/f; "
            "grep ' /scratch ' /proc/mounts | grep -o size=1024k", check=True).stdout
        assert out.splitlines() == ["from the host", "read-only", "size=1024k"]
        again = pods_cli("run", "--rm", "--mount", f"source={vol},target=/data", "busybox", "cat", "/data/f",
                         check=True).stdout
        assert again == "kept\n"  # type volume is the default, as docker's --mount
        bad = pods_cli("run", "--rm", "--mount", "type=bind,source=rel,target=/x", "busybox", "true")
        assert bad.returncode != 0 and "a bind mount's source must be an absolute path" in bad.stderr
    finally:
        pods_cli("volume", "rm", "-f", vol)


def test_run_group_add_log_driver_none_and_pid_host(pods_cli: Pods, ctr_names: list[str]) -> None:
    assert set(pods_cli("run", "--rm", "--group-add", "nogroup", "busybox", "id", "-G", check=True).stdout.split()) == {
        "0", "65534"}
    name = unique()
    ctr_names.append(name)
    pods_cli("run", "--name", name, "--log-driver", "none", "busybox", "echo", "unseen", check=True)
    logs = pods_cli("logs", name)
    assert logs.returncode != 0 and "configured logging driver does not support reading" in logs.stderr
    inspect = json.loads(pods_cli("inspect", name, check=True).stdout)[0]
    assert inspect["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    if rootless.active():
        refused = pods_cli("run", "--rm", "--pid", "host", "busybox", "true")
        assert refused.returncode != 0 and "PidMode 'host' is not supported rootless" in refused.stderr
    else:
        assert pods_cli("run", "--rm", "--pid", "host", "busybox", "sh", "-c", "echo $$", check=True).stdout.strip() != "1"
