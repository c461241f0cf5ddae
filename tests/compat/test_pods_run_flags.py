"""``pods run`` flags that change what a container sees (issue 19): ``--dns*``, ``--cpuset-cpus``,
``--ipc``, ``--expose``, ``--label-file``, ``--ip``. Each runs the same command through ``pods run``
on the local engine and through ``docker run`` on the reference dockerd, and the outputs must
match; the error cases name the flag and the value, before any work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from dockerd_helper import both_engines

ReferenceDocker = Any  # tests/dockerd_helper.py's
DockerCLI = Any  # conftest's


def pods(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120)


def both(reference_docker: ReferenceDocker, pods_root: Path, *args: str) -> tuple[str, str]:
    """``run --rm ARGS`` on both engines: (ours, dockerd's) output, each checked to succeed."""
    ours = pods(pods_root, "run", "--rm", *args)
    assert ours.returncode == 0, ours.stderr
    theirs = reference_docker.docker("run", "--rm", *args)
    return ours.stdout, theirs.stdout


def test_dns_flags_write_resolv_conf_as_dockerd(reference_docker: ReferenceDocker, pods_root: Path) -> None:
    flags = ["--dns", "192.0.2.53", "--dns", "192.0.2.54", "--dns-search", "a.example", "--dns-search", "b.example",
             "--dns-option", "ndots:2", "--dns-option", "timeout:3"]
    ours, theirs = both(reference_docker, pods_root, *flags, "busybox", "cat", "/etc/resolv.conf")
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), (ours, theirs)
    ours, theirs = both(reference_docker, pods_root, "--dns", "192.0.2.53", "--dns-search", ".", "busybox",
                        "sh", "-c", "grep -c ^search /etc/resolv.conf; true")
    assert ours == theirs  # "." alone: no search line
    bad = pods(pods_root, "run", "--rm", "--dns", "not-an-ip", "busybox", "true")
    assert bad.returncode == 125 and "--dns" in bad.stderr and "not-an-ip" in bad.stderr


def test_cpuset_cpus_binds_the_processes(reference_docker: ReferenceDocker, pods_root: Path) -> None:
    last = max(os.sched_getaffinity(0))
    cmd = ["busybox", "sh", "-c", "grep Cpus_allowed_list /proc/self/status"]
    ours, theirs = both(reference_docker, pods_root, "--cpuset-cpus", str(last), *cmd)
    assert ours == theirs == f"Cpus_allowed_list:\t{last}\n"
    name = f"t-cpuset-{uuid.uuid4().hex[:8]}"
    assert pods(pods_root, "run", "-d", "--name", name, "--cpuset-cpus", str(last), "busybox", "sleep", "60").returncode == 0
    try:  # an exec'd process is bound to them too
        assert pods(pods_root, "exec", name, *cmd[1:]).stdout == f"Cpus_allowed_list:\t{last}\n"
    finally:
        pods(pods_root, "rm", "-f", name)
    for value, words in (("64-65", "Requested CPUs are not available - requested 64-65"),
                         ("a-b", "Invalid value a-b for cpuset cpus")):
        bad = pods(pods_root, "run", "--rm", "--cpuset-cpus", value, "busybox", "true")
        assert bad.returncode == 125 and words in bad.stderr
        ref = reference_docker.docker("run", "--rm", "--cpuset-cpus", value, "busybox", "true", check=False)
        assert words.split(" - ")[0] in ref.stderr


def test_ipc_modes_as_dockerd(reference_docker: ReferenceDocker, pods_root: Path) -> None:
    probe = ["busybox", "sh", "-c", "test -d /dev/shm && echo has-shm || echo no-shm; readlink /proc/self/ns/ipc"]
    host_ipc = os.readlink("/proc/self/ns/ipc")
    for mode in ("private", "shareable", "none", "host"):
        ours, theirs = both(reference_docker, pods_root, "--ipc", mode, *probe)
        assert ours.splitlines()[0] == theirs.splitlines()[0], mode
        assert (ours.splitlines()[1] == host_ipc) == (theirs.splitlines()[1] == host_ipc) == (mode == "host")
    bad = pods(pods_root, "run", "--rm", "--ipc", "bogus", "busybox", "true")
    assert bad.returncode == 125 and "bogus" in bad.stderr


def test_expose_and_label_file_land_in_the_config(reference_docker: ReferenceDocker, pods_root: Path,
                                                  tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# a comment\na=1\n\nb\nc=from-file\n")
    flags = ["--expose", "80", "--expose", "9000-9002/udp", "--label-file", str(labels), "-l", "c=flag"]
    name = f"t-expose-{uuid.uuid4().hex[:8]}"
    made = pods(pods_root, "create", "--name", name, *flags, "busybox", "true")
    assert made.returncode == 0, made.stderr
    try:
        ours = json.loads(pods(pods_root, "inspect", name).stdout)[0]["Config"]
    finally:
        pods(pods_root, "rm", "-f", name)
    reference_docker.docker("create", "--name", name, *flags, "busybox", "true")
    try:
        theirs = json.loads(reference_docker.docker("inspect", name).stdout)[0]["Config"]
    finally:
        reference_docker.docker("rm", "-f", name)
    assert ours["ExposedPorts"] == theirs["ExposedPorts"] == {
        "80/tcp": {}, "9000/udp": {}, "9001/udp": {}, "9002/udp": {}}
    assert ours["Labels"] == theirs["Labels"] == {"a": "1", "c": "flag"}  # a bare "b" line is dropped
    bad = pods(pods_root, "run", "--rm", "--expose", "80-x", "busybox", "true")
    assert bad.returncode == 125 and "--expose" in bad.stderr and "80-x" in bad.stderr


def test_ip_on_a_user_network(pods_root: Path) -> None:
    net = f"t-ipnet-{uuid.uuid4().hex[:6]}"
    subnet_octet = 100 + int(uuid.uuid4().hex[:2], 16) % 100
    assert pods(pods_root, "network", "create", "--subnet", f"10.77.{subnet_octet}.0/24", net).returncode == 0
    try:
        out = pods(pods_root, "run", "--rm", "--network", net, "--ip", f"10.77.{subnet_octet}.42", "busybox",
                   "ip", "-4", "-o", "addr", "show", "eth0")
        assert out.returncode == 0 and f"10.77.{subnet_octet}.42/24" in out.stdout, out.stderr
    finally:
        pods(pods_root, "network", "rm", net)


@both_engines
def test_the_same_flags_through_the_api(docker: DockerCLI) -> None:
    """``docker run`` with them against ``pods daemon`` (HostConfig.Dns, DnsSearch, CpusetCpus,
    IpcMode) gives what it gives on dockerd."""
    last = max(os.sched_getaffinity(0))
    out = docker("run", "--rm", "--dns", "192.0.2.53", "--dns-search", "x.example", "--cpuset-cpus", str(last),
                 "--ipc", "none", "busybox", "sh", "-c",
                 "cat /etc/resolv.conf; grep Cpus_allowed_list /proc/self/status; test -d /dev/shm || echo no-shm")
    assert sorted(out.stdout.splitlines()) == sorted(["nameserver 192.0.2.53", "search x.example",
                                                     f"Cpus_allowed_list:\t{last}", "no-shm"])


@pytest.mark.parametrize("argv, flag, closest", [
    (["run", "--rm", "--nam", "x", "busybox", "true"], "--nam", "--name"),
    (["run", "--rm", "--detach-key", "x", "busybox", "true"], "--detach-key", "--detach-keys"),
    (["stats", "--no-strem"], "--no-strem", "--no-stream"),
])
def test_an_unknown_or_abbreviated_flag_is_refused_naming_the_closest(pods_root: Path, argv: list[str], flag: str,
                                                                      closest: str) -> None:
    """No long option is taken by an abbreviation (the docker CLI takes none: it says "unknown
    flag", exit 125, before any work); ours names the closest flag and the verb's help."""
    ours = pods(pods_root, *argv)
    assert ours.returncode == 125 and ours.stdout == ""
    assert f"unknown flag: {flag} (did you mean {closest}?). See 'pods {argv[0]} --help'." in ours.stderr
    if shutil.which("docker"):
        theirs = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
        assert theirs.returncode == 125 and f"unknown flag: {flag}" in theirs.stderr
