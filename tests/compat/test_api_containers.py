"""Container endpoints and fields as dockerd has them (issue 16), from the clients' side: the docker
CLI and docker-py, each test run on ``pods daemon`` and on the reference dockerd (``@both_engines``),
so the expected values are Docker's own.

update, changes (docker diff), pause/unpause, rename, ``DELETE ?link=1``; restart policies; inspect's
HostConfig; --pid/--uts host; GroupAdd, an Env entry without ``=``, legacy links; log drivers;
commit of an exiting container, prune's SpaceReclaimed, list right after create, wait next-exit.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest
from daemon_helper import wait_until
from dockerd_helper import both_engines
from pty_helper import Terminal

from pytest_pods.engine import rootless

dockerpy = pytest.importorskip("docker")
requests = pytest.importorskip("requests")

DockerCLI = Any  # conftest's (conftest modules are not imported by name)
ROOTLESS = rootless.active()
CGROUPS = not ROOTLESS or rootless.delegated_cgroup() is not None
NO_CGROUPS = ("rootless: cgroup limits and the freezer need a delegated cgroup v2 subtree, which an ordinary user "
              "has not here (the engine refuses them and says so; checked before the skip)")


def inspect(docker: DockerCLI, ref: str) -> dict[str, Any]:
    return json.loads(docker("inspect", ref).stdout)[0]  # type: ignore[no-any-return]


def fails(docker: DockerCLI, *args: str) -> str:
    """Run ``docker ARGS``, which must fail; its stderr."""
    proc = docker(*args, check=False)
    assert proc.returncode != 0, f"docker {' '.join(args)} succeeded:\n{proc.stdout}"
    return str(proc.stderr)


def api_error(call: Any) -> Any:
    with pytest.raises(dockerpy.errors.APIError) as info:
        call()
    return info.value


# -- pause / unpause --------------------------------------------------------------------------------
@both_engines
def test_pause_freezes_the_container_until_unpause(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "--name", name, "busybox", "sh", "-c",
           "while true; do echo tick >> /ticks; sleep 0.05; done")
    wait_until(lambda: docker("exec", name, "wc", "-l", "/ticks", check=False).returncode == 0, 10, "the first tick")
    if not CGROUPS:
        assert "no cgroup freezer here" in fails(docker, "pause", name)
        pytest.skip(NO_CGROUPS)
    docker("pause", name)
    state = inspect(docker, name)["State"]
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    row = docker("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.State}}|{{.Status}}").stdout.strip()
    assert row.startswith("paused|Up ") and row.endswith("(Paused)")
    assert docker("ps", "--filter", "status=paused", "--format", "{{.Names}}").stdout.split() == [name]
    cid = inspect(docker, name)["Id"]
    assert f"Container {cid} is already paused" in fails(docker, "pause", name)
    assert f"Container {name} is paused, unpause the container before exec" in fails(docker, "exec", name, "true")
    before = docker("cp", f"{name}:/ticks", "-").stdout.count("tick")
    time.sleep(0.5)
    assert docker("cp", f"{name}:/ticks", "-").stdout.count("tick") == before  # frozen: no tick written
    docker("unpause", name)
    assert inspect(docker, name)["State"]["Status"] == "running"
    wait_until(lambda: int(docker("exec", name, "wc", "-l", "/ticks").stdout.split()[0]) > before + 2, 10,
               "ticks after unpause")
    assert f"Container {cid} is not paused" in fails(docker, "unpause", name)


@both_engines
def test_stop_and_kill_of_a_paused_container_end_it(docker: DockerCLI, names: list[str], name: str) -> None:
    names += [name, name + "-k"]
    if not CGROUPS:
        pytest.skip(NO_CGROUPS)
    for n in (name, name + "-k"):
        docker("run", "-d", "--name", n, "busybox", "sleep", "300")
        docker("pause", n)
    started = time.monotonic()
    docker("stop", "-t", "1", name)  # its SIGTERM waits in the freezer: the grace runs out, SIGKILL
    assert time.monotonic() - started < 8
    docker("kill", name + "-k")
    for n in (name, name + "-k"):
        state = inspect(docker, n)["State"]
        assert (state["Status"], state["Paused"], state["ExitCode"]) == ("exited", False, 137)
    cid = inspect(docker, name)["Id"]
    assert f"Container {cid} is not running" in fails(docker, "pause", name)


# -- rename -----------------------------------------------------------------------------------------
@both_engines
def test_rename_moves_the_name_and_refuses_a_taken_one(docker: DockerCLI, docker_client: Any, names: list[str],
                                                       name: str) -> None:
    names += [name, name + "-new", name + "-other"]
    since = int(time.time()) - 1
    docker("create", "--name", name, "busybox", "true")
    docker("create", "--name", name + "-other", "busybox", "true")
    docker("rename", name, name + "-new")
    assert inspect(docker, name + "-new")["Name"] == f"/{name}-new"
    assert "No such" in fails(docker, "inspect", name)
    other_id = inspect(docker, name + "-other")["Id"]
    err = fails(docker, "rename", name + "-new", name + "-other")
    assert (f'Error when allocating new name: Conflict. The container name "/{name}-other" is already in use by '
            f'container "{other_id}"') in err
    assert "Renaming a container with the same name as its current name" in fails(
        docker, "rename", name + "-new", name + "-new")
    assert "Invalid container name (/bad name)" in fails(docker, "rename", name + "-new", "bad name")
    docker("create", "--name", name, "busybox", "true")  # the old name is free again
    events = list(docker_client.events(since=since, until=int(time.time()) + 1, decode=True,
                                       filters={"event": "rename"}))
    assert [(e["Actor"]["Attributes"]["name"], e["Actor"]["Attributes"]["oldName"]) for e in events] == [
        (f"{name}-new", f"/{name}")]


# -- changes (docker diff) --------------------------------------------------------------------------
@both_engines
def test_diff_lists_what_the_container_added_changed_and_deleted(docker: DockerCLI, docker_client: Any,
                                                                 names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert docker("diff", name).stdout == ""
    assert docker_client.api.diff(name) is None  # dockerd answers null, not []
    docker("exec", name, "sh", "-c",
           "touch /tmp/new; echo x >> /etc/passwd; rm /bin/ls; mkdir -p /a/b; echo hi > /a/b/c")
    assert set(docker("diff", name).stdout.splitlines()) == {
        "A /a", "A /a/b", "A /a/b/c", "C /tmp", "A /tmp/new", "C /etc", "C /etc/passwd", "C /bin", "D /bin/ls"}
    assert {"Path": "/bin/ls", "Kind": 2} in docker_client.api.diff(name)
    assert "No such container" in fails(docker, "diff", name + "-none")


# -- update -----------------------------------------------------------------------------------------
@both_engines
def test_update_changes_the_limits_of_a_running_container(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    if not CGROUPS:
        assert "limit refused: rootless containers have no cgroup here" in fails(
            docker, "update", "--memory", "64m", name)
        assert inspect(docker, name)["HostConfig"]["Memory"] == 0  # not shown as if applied
        pytest.skip(NO_CGROUPS)
    docker("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50", "--cpus", "0.5",
           "--cpu-shares", "256", "--restart", "on-failure:3", name)
    hc = inspect(docker, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["NanoCpus"], hc["CpuShares"]) == (
        64 << 20, 128 << 20, 50, 500_000_000, 256)
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    # the running container's cgroup has them (seen from inside, v1 or v2)
    pids_max = docker("exec", name, "sh", "-c",
                      "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max").stdout
    assert pids_max.strip() == "50"
    mem = docker("exec", name, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
                 "|| cat /sys/fs/cgroup/memory.max").stdout
    assert mem.strip() == str(64 << 20)
    assert "Minimum memory limit allowed is 6MB" in fails(docker, "update", "--memory", "1m", name)


@both_engines
def test_update_of_a_restart_policy_of_an_rm_container_is_refused(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["sleep", "300"], detach=True, auto_remove=True, labels=labels)
    err = api_error(lambda: docker_client.api.update_container(ctr.id, restart_policy={"Name": "always"}))
    assert err.status_code == 409
    assert (f"Cannot update container {ctr.id}: Restart policy cannot be updated because AutoRemove is enabled "
            "for the container") in str(err)
    err = api_error(lambda: docker_client.api.update_container(ctr.id, restart_policy={"Name": "sometimes"}))
    assert err.status_code == 400 and "invalid restart policy 'sometimes'" in str(err)


# -- restart policies -------------------------------------------------------------------------------
@both_engines
def test_on_failure_restarts_up_to_its_count(docker: DockerCLI, docker_client: Any, names: list[str],
                                             name: str) -> None:
    names.append(name)
    since = int(time.time()) - 1
    docker("run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3")

    def done() -> bool:
        doc = inspect(docker, name)
        return doc["State"]["Status"] == "exited" and doc["RestartCount"] == 2

    wait_until(done, 20, "the second restart and exit")
    time.sleep(1)  # and no third run
    doc = inspect(docker, name)
    assert (doc["State"]["Status"], doc["State"]["ExitCode"], doc["RestartCount"]) == ("exited", 3, 2)
    assert docker("logs", name).stdout == "run\n" * 3
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True,
                                  filters={"container": name, "event": ["start", "die"]})
    assert [(e["Action"], e["Actor"]["Attributes"].get("exitCode")) for e in events] == [
        ("start", None), ("die", "3")] * 3
    assert inspect(docker, name)["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    docker("start", name)  # an explicit start: its retries count from zero again
    wait_until(lambda: docker("logs", name).stdout.count("run") == 6, 20, "three more runs")
    wait_until(lambda: inspect(docker, name)["State"]["Status"] == "exited", 20, "the last run's end")
    assert inspect(docker, name)["RestartCount"] == 2


@both_engines
def test_always_restarts_until_stopped_or_killed(docker: DockerCLI, names: list[str], name: str) -> None:
    names += [name, name + "-k"]
    for n in (name, name + "-k"):
        docker("run", "-d", "--name", n, "--restart", "always", "busybox", "sh", "-c", "sleep 0.3; exit 0")
    for n in (name, name + "-k"):
        wait_until(lambda n=n: inspect(docker, n)["RestartCount"] >= 2, 20, "two restarts")  # type: ignore[misc]
    docker("stop", "-t", "1", name)
    docker("kill", name + "-k")
    wait_until(lambda: inspect(docker, name + "-k")["State"]["Status"] == "exited", 10, "the killed one exited")
    counts = {n: inspect(docker, n)["RestartCount"] for n in (name, name + "-k")}
    time.sleep(1.5)
    for n in (name, name + "-k"):
        doc = inspect(docker, n)
        assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == counts[n]
    docker("start", name)  # an explicit start runs it under its policy again
    wait_until(lambda: inspect(docker, name)["RestartCount"] > counts[name], 20, "a restart after start")


@both_engines
def test_restart_policy_values_are_checked(docker: DockerCLI, docker_client: Any, labels: dict[str, str]) -> None:
    assert "invalid restart policy 'sometimes'" in fails(docker, "create", "--restart", "sometimes", "busybox")
    assert "maximum retry count cannot be used with restart policy 'always'" in fails(
        docker, "create", "--restart", "always:3", "busybox")
    err = api_error(lambda: docker_client.api.create_container(
        "busybox", labels=labels,
        host_config=docker_client.api.create_host_config(auto_remove=True, restart_policy={"Name": "always"})))
    assert err.status_code == 400 and "can't create 'AutoRemove' container with restart policy" in str(err)


# -- inspect's HostConfig ---------------------------------------------------------------------------
HOST_CONFIG_KEYS = {
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch",
    "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
    "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize", "Runtime",
    "ConsoleSize", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight",
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus",
    "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemory", "KernelMemoryTCP",
    "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount",
    "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "MaskedPaths", "ReadonlyPaths"}
"""The HostConfig keys dockerd 20.10 (API 1.41) answers for every container."""


@both_engines
def test_inspect_host_config_has_dockers_fields_and_defaults(docker_client: Any, docker_engine: Any,
                                                            labels: dict[str, str]) -> None:
    api = docker_client.api
    plain = api.create_container("busybox", ["true"], labels=labels)
    api.start(plain["Id"])  # dockerd fills Runtime at the first start
    api.wait(plain["Id"], timeout=30)
    hc = api.inspect_container(plain["Id"])["HostConfig"]
    assert set(hc) >= HOST_CONFIG_KEYS
    assert {k: hc[k] for k in ("CpuShares", "CpusetCpus", "PidMode", "UTSMode", "IpcMode", "Runtime", "Isolation",
                               "MemorySwappiness", "VolumesFrom", "VolumeDriver", "DeviceCgroupRules", "GroupAdd",
                               "RestartPolicy", "LogConfig", "Links", "ConsoleSize", "OomScoreAdj")} == {
        "CpuShares": 0, "CpusetCpus": "", "PidMode": "", "UTSMode": "", "IpcMode": "private", "Runtime": "runc",
        "Isolation": "", "MemorySwappiness": None, "VolumesFrom": None, "VolumeDriver": "",
        "DeviceCgroupRules": None, "GroupAdd": None, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
        "LogConfig": {"Type": "json-file", "Config": {}}, "Links": None, "ConsoleSize": [0, 0], "OomScoreAdj": 0}
    given = api.create_container(
        "busybox", ["true"], labels=labels, mac_address="02:42:ac:11:00:99",
        host_config=api.create_host_config(
            cpu_shares=512 if CGROUPS else None, cpuset_cpus="0", mem_swappiness=10, group_add=["nogroup", "1234"], runtime="runc",
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 5}, device_cgroup_rules=["c 1:3 mr"],
            log_config={"Type": "json-file", "Config": {"max-size": "10m"}}, volumes_from=[plain["Id"]],
            extra_hosts={"somehost": "10.1.2.3"}))
    doc = api.inspect_container(given["Id"])
    hc = doc["HostConfig"]
    assert {k: hc[k] for k in ("CpuShares", "CpusetCpus", "MemorySwappiness", "GroupAdd", "Runtime",
                               "RestartPolicy", "DeviceCgroupRules", "LogConfig", "VolumesFrom", "ExtraHosts")} == {
        "CpuShares": 512 if CGROUPS else 0, "CpusetCpus": "0", "MemorySwappiness": 10, "GroupAdd": ["nogroup", "1234"],
        "Runtime": "runc", "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5},
        "DeviceCgroupRules": ["c 1:3 mr"], "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
        "VolumesFrom": [plain["Id"]], "ExtraHosts": ["somehost:10.1.2.3"]}
    old_api = dockerpy.APIClient(base_url=docker_engine.host, version="1.41")
    try:  # API 1.41 keeps it in Config (1.44 moved it to the endpoint)
        assert old_api.inspect_container(given["Id"])["Config"]["MacAddress"] == "02:42:ac:11:00:99"
    finally:
        old_api.close()


# -- namespaces of the host ---------------------------------------------------------------------------
@both_engines
def test_pid_and_uts_host_share_the_hosts_namespaces(docker: DockerCLI) -> None:
    mine = os.getpid()
    if ROOTLESS:  # refused, and said why, rather than run in a pid namespace of its own
        err = fails(docker, "run", "--rm", "--pid", "host", "busybox", "true")
        assert "PidMode 'host' is not supported rootless" in err
    else:
        out = docker("run", "--rm", "--pid", "host", "busybox", "sh", "-c",
                     f"test -d /proc/{mine} && echo sees-host; echo $$").stdout.split()
        assert out[0] == "sees-host" and int(out[1]) > 1  # not pid 1 of a namespace of its own
        assert inspect_run(docker, "--pid", "host")["PidMode"] == "host"
    assert docker("run", "--rm", "--uts", "host", "busybox", "hostname").stdout.strip() == os.uname().nodename
    assert "conflicting options: hostname and the UTS mode" in fails(
        docker, "run", "--rm", "--uts", "host", "-h", "other", "busybox", "true")


def inspect_run(docker: DockerCLI, *flags: str) -> dict[str, Any]:
    """The HostConfig of a container created with ``flags`` (removed again)."""
    cid = docker("create", *flags, "busybox", "true").stdout.strip()
    try:
        return inspect(docker, cid)["HostConfig"]
    finally:
        docker("rm", "-f", cid)


# -- accepted and applied -------------------------------------------------------------------------------
@both_engines
def test_group_add_gives_the_process_those_groups(docker: DockerCLI, docker_client: Any, labels: dict[str, str],
                                                  names: list[str], name: str) -> None:
    out = docker("run", "--rm", "--group-add", "nogroup", "--group-add", "1234", "busybox", "id", "-G").stdout
    assert set(out.split()) == {"0", "65534", "1234"}
    names.append(name)
    docker("create", "--name", name, "--group-add", "nosuchgroup", "busybox", "id")  # the create stands
    err = api_error(lambda: docker_client.api.start(name))
    assert err.status_code == 500
    assert "Unable to find group nosuchgroup: no matching entries in group file" in str(err)


@both_engines
def test_an_env_entry_without_equals_unsets_the_name(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.create("busybox", ["env"], labels=labels,
                                          environment=["A=1", "FOO", "HOSTNAME"])
    ctr.start()
    assert ctr.wait(timeout=30)["StatusCode"] == 0
    env = ctr.logs().decode().split()
    assert "A=1" in env and not any(e.startswith(("FOO", "HOSTNAME=")) for e in env)
    assert any(e.startswith("PATH=") for e in env)
    ctr.reload()
    assert "FOO" in ctr.attrs["Config"]["Env"]  # kept as given
    # PATH alone unsets PATH too: the command is then not found
    bad = docker_client.containers.create("busybox", ["sleep", "1"], labels=labels, environment=["PATH"])
    with pytest.raises(dockerpy.errors.APIError, match="executable file not found in"):
        bad.start()


@both_engines
def test_legacy_links_give_address_variables_and_a_hosts_entry(docker: DockerCLI, names: list[str],
                                                               name: str) -> None:
    db = name + "-db"
    names += [db, name]
    docker("run", "-d", "--name", db, "--expose", "5432", "-e", "DB_MODE=test", "busybox", "sleep", "300")
    ip = inspect(docker, db)["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    out = docker("run", "--name", name, "--link", f"{db}:my-db", "busybox", "sh", "-c",
                 "env | grep ^MY_DB_ | sort; grep my-db /etc/hosts").stdout.splitlines()
    want = ["MY_DB_ENV_DB_MODE=test", f"MY_DB_NAME=/{name}/my-db", f"MY_DB_PORT=tcp://{ip}:5432",
            f"MY_DB_PORT_5432_TCP=tcp://{ip}:5432", f"MY_DB_PORT_5432_TCP_ADDR={ip}",
            "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_PROTO=tcp"]
    assert out[:-1] == want
    assert out[-1].split() == [ip, "my-db", inspect(docker, db)["Config"]["Hostname"], db]
    assert inspect(docker, name)["HostConfig"]["Links"] == [f"/{db}:/{name}/my-db"]
    docker("rm", "--link", f"/{name}/my-db")  # the link goes, the container stays
    assert inspect(docker, name)["HostConfig"]["Links"] is None
    again = docker("start", "-a", name, check=False)  # no link variables, no hosts entry: grep finds none
    assert (again.returncode, again.stdout) == (1, "")


# -- logging --------------------------------------------------------------------------------------------
@both_engines
def test_log_drivers_none_local_and_unknown(docker: DockerCLI, names: list[str], name: str) -> None:
    names += [name, name + "-local"]
    docker("run", "--name", name, "--log-driver", "none", "busybox", "echo", "hidden")
    assert inspect(docker, name)["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
    assert "configured logging driver does not support reading" in fails(docker, "logs", name)
    docker("run", "--name", name + "-local", "--log-driver", "local", "--log-opt", "max-size=10m", "busybox",
           "echo", "kept")
    assert docker("logs", name + "-local").stdout == "kept\n"
    assert inspect(docker, name + "-local")["HostConfig"]["LogConfig"] == {"Type": "local",
                                                                          "Config": {"max-size": "10m"}}
    assert 'error looking up logging plugin foo: plugin "foo" not found' in fails(
        docker, "create", "--log-driver", "foo", "busybox")
    assert "unknown log opt 'foo' for json-file log driver" in fails(
        docker, "create", "--log-opt", "foo=bar", "busybox")


def test_logs_of_a_none_driver_container_answer_501(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["echo", "hi"], detach=True, labels=labels,
                                       log_config={"Type": "none"})
    ctr.wait(timeout=30)
    err = api_error(ctr.logs)
    assert err.status_code == 501


# -- remove --link, commit, prune, list, wait -------------------------------------------------------------
@both_engines
def test_rm_link_of_a_containers_own_name_is_refused(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("create", "--name", name, "busybox", "true")
    assert "Conflict, cannot remove the default link name of the container" in fails(docker, "rm", "--link", name)
    assert inspect(docker, name)["Name"] == f"/{name}"  # still there


@both_engines
def test_commit_of_a_container_that_is_exiting_succeeds(docker: DockerCLI, names: list[str], name: str) -> None:
    tags = []
    try:
        for i in range(6):
            n = f"{name}-{i}"
            names.append(n)
            docker("run", "-d", "--name", n, "busybox", "sh", "-c", "echo x > /f; sleep 0.3")
            time.sleep(0.25 + i * 0.02)  # around its exit
            tag = f"pods-commit-exiting-{name}:{i}"
            docker("commit", n, tag)  # pause by default
            tags.append(tag)
            assert docker("run", "--rm", tag, "cat", "/f").stdout == "x\n"
    finally:
        for tag in tags:
            docker("rmi", "-f", tag, check=False)


@both_engines
def test_prune_reports_the_space_it_reclaimed(docker_client: Any, labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["dd", "if=/dev/zero", "of=/big", "bs=1024", "count=2048"],
                                       detach=True, labels=labels)
    ctr.wait(timeout=30)
    key, value = next(iter(labels.items()))
    out = docker_client.api.prune_containers(filters={"label": f"{key}={value}"})
    assert out["ContainersDeleted"] == [ctr.id]
    assert out["SpaceReclaimed"] >= 2 * 1024 * 1024


@both_engines
def test_list_all_right_after_a_create_always_has_it(docker_client: Any, labels: dict[str, str]) -> None:
    missing: list[str] = []

    def worker() -> None:
        for _ in range(6):
            cid = docker_client.api.create_container("busybox", ["true"], labels=labels)["Id"]
            if cid not in {c["Id"] for c in docker_client.api.containers(all=True)}:
                missing.append(cid)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert missing == []


@both_engines
def test_wait_next_exit_of_an_exited_container_waits_for_its_next_run(docker_client: Any, docker_engine: Any,
                                                                      labels: dict[str, str]) -> None:
    ctr = docker_client.containers.run("busybox", ["sh", "-c", "sleep 0.5; exit 4"], detach=True, labels=labels)
    assert ctr.wait(timeout=30)["StatusCode"] == 4
    slow = dockerpy.APIClient(base_url=docker_engine.host, timeout=2)
    try:  # no answer: it waits for a run that has not begun
        with pytest.raises((requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
            slow.wait(ctr.id, timeout=2, condition="next-exit")
    finally:
        slow.close()
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(docker_client.api.wait(ctr.id, condition="next-exit",
                                                                             timeout=30)))
    t.start()
    time.sleep(0.5)
    ctr.start()
    t.join(30)
    assert result.get("StatusCode") == 4


# -- attach -----------------------------------------------------------------------------------------------
@both_engines
def test_docker_attach_types_into_a_running_tty_container(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "-it", "--name", name, "busybox", "sh")
    wait_until(lambda: inspect(docker, name)["State"]["Running"], 10, "the shell running")
    term = Terminal(["docker", "attach", name], docker.env)
    try:
        time.sleep(0.5)  # attached
        term.send("echo typed-$((6*7))\n")
        term.expect(rb"typed-42")
        term.send("\x10\x11")  # ctrl-p ctrl-q: the client goes (exit 1, as docker attach does), it stays
        assert term.wait() == 1, term.output
        assert b"read escape sequence" in term.output
    finally:
        term.close()
    assert inspect(docker, name)["State"]["Running"]
    assert "typed-42" in docker("logs", name).stdout


# -- tmpfs --------------------------------------------------------------------------------------------------
@both_engines
def test_tmpfs_mounts_from_tmpfs_and_mounts(docker: DockerCLI, docker_client: Any, labels: dict[str, str]) -> None:
    mount = dockerpy.types.Mount("/m", "", type="tmpfs", tmpfs_size=1 << 20, tmpfs_mode=0o700)
    ctr = docker_client.containers.run(
        "busybox", ["sh", "-c", "grep -E ' /(t|m) ' /proc/mounts; stat -c %a /m; echo x > /m/f && cat /m/f"],
        detach=True, labels=labels, tmpfs={"/t": "size=2m"}, mounts=[mount])
    assert ctr.wait(timeout=30)["StatusCode"] == 0
    lines = ctr.logs().decode().splitlines()
    mounts = {line.split()[1]: set(line.split()[3].split(",")) for line in lines[:2]}
    assert {"rw", "size=2048k"} <= mounts["/t"] and {"rw", "size=1024k", "mode=700"} <= mounts["/m"]
    assert lines[2:] == ["700", "x"]
    out = docker("run", "--rm", "--mount", "type=tmpfs,target=/w,tmpfs-size=3m", "busybox", "grep", " /w ",
                 "/proc/mounts").stdout
    assert "size=3072k" in out
