"""``pods stats``, ``pods top`` and ``pods export`` (issue 19) next to the docker CLI. The reference
is the docker CLI on the same engine: on ``pods daemon`` and on a real dockerd (``@both_engines``),
with ``pods --host`` pointed at that engine; on ours also ``pods --root``, the local engine without
the daemon. Containers are named after the test and removed by ``made``."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dockerd_helper import both_engines

from pytest_pods.engine import rootless

ROOTLESS = rootless.active()  # this process may be "root" in the engine's user namespace

DockerCLI = Any  # conftest's (conftest modules are not imported by name)
Pods = Callable[..., "subprocess.CompletedProcess[bytes]"]

SPIN = "trap 'exit 0' TERM; while :; do :; done"
SLEEP = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


class Made:
    """Container names a test made; ``remove()`` takes them away (``docker rm -f``)."""

    def __init__(self, docker: DockerCLI) -> None:
        self.docker, self.names = docker, []

    def __call__(self, name: str) -> str:
        self.names.append(name)
        return name

    def remove(self) -> None:
        for n in self.names:
            self.docker("rm", "-f", n, check=False)


@pytest.fixture
def made(docker: DockerCLI) -> Iterator[Made]:
    """Scope: function. Depends on: docker. Names recorded here are removed at teardown."""
    m = Made(docker)
    yield m
    m.remove()


@pytest.fixture
def faces(docker_engine: Any, daemon: Any) -> list[Pods]:
    """Scope: function. Depends on: docker_engine, daemon. Our CLI on the engine under test:
    through ``--host``, and on ours also through ``--root`` (the local engine)."""

    def face(*where: str) -> Pods:
        def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
            proc = subprocess.run([sys.executable, "-m", "pytest_pods.cli", *where, *args], capture_output=True,
                                  timeout=120)
            assert not check or proc.returncode == 0, (args, proc.stderr.decode())
            return proc
        return run

    out = [face("--host", docker_engine.host)]
    if docker_engine is daemon:
        out.append(face("--root", str(daemon.root)))
    return out


def stats_rows(output: str) -> dict[str, dict[str, str]]:
    rows = [json.loads(line) for line in output.splitlines()]
    return {r["Name"]: r for r in rows}


@both_engines
def test_stats_show_what_docker_shows_cpu_memory_net_and_pids(docker: DockerCLI, made: Made, name: str,
                                                              faces: list[Pods]) -> None:
    spin, idle = made(f"{name}-spin"), made(f"{name}-idle")
    limit = [] if ROOTLESS else ["-m", "64m"]  # rootless here has no cgroup to limit with (refused)
    docker("run", "-d", "--name", spin, *limit, "busybox", "sh", "-c", SPIN)
    docker("run", "-d", "--name", idle, "busybox", "sh", "-c", SLEEP)
    theirs = stats_rows(docker("stats", "--no-stream", "--format", "json", spin, idle, timeout=60).stdout)
    header = docker("stats", "--no-stream", idle, timeout=60).stdout.splitlines()[0]
    for pods in faces:
        ours = stats_rows(pods("stats", "--no-stream", "--format", "json", spin, idle).stdout.decode())
        assert set(ours) == set(theirs) == {spin, idle}
        for n in (spin, idle):
            assert set(ours[n]) == set(theirs[n])  # the same fields
            for key in ("Container", "ID"):
                assert ours[n][key] == theirs[n][key], (n, key, ours[n], theirs[n])
            for key in ("MemUsage", "NetIO", "BlockIO"):
                assert re.fullmatch(r"[\d.]+[kKMGT]?i?B / [\d.]+[kKMGT]?i?B", ours[n][key]), ours[n]
        # the limit as docker prints it (rootless without a delegated cgroup there is none: the host's memory)
        assert ours[spin]["MemUsage"].split(" / ")[1] == theirs[spin]["MemUsage"].split(" / ")[1]
        if not ROOTLESS:
            assert ours[spin]["MemUsage"].split(" / ")[1] == "64MiB"
        assert float(ours[spin]["CPUPerc"].rstrip("%")) > 50, ours[spin]  # one busy loop: about 100%
        assert float(ours[idle]["CPUPerc"].rstrip("%")) < 20, ours[idle]
        assert ours[spin]["PIDs"] == theirs[spin]["PIDs"] == "1"
        assert float(ours[spin]["MemPerc"].rstrip("%")) > 0
        ours_header = pods("stats", "--no-stream", idle).stdout.decode().splitlines()[0]
        assert re.split(r"  +", ours_header) == re.split(r"  +", header)  # widths follow the values
        lines = pods("stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", idle).stdout.decode()
        head, row = lines.splitlines()
        assert head.split() == ["NAME", "PIDS"] and row.split()[0] == idle
        assert head.index("PIDS") == len(idle) + 3 and row[len(idle) + 3:].isdigit()  # docker's tabwriter
    assert float(theirs[spin]["CPUPerc"].rstrip("%")) > 50, theirs[spin]


@both_engines
def test_stats_count_the_bytes_a_container_moves(docker: DockerCLI, made: Made, name: str,
                                                 faces: list[Pods]) -> None:
    """NET I/O of a container that served 50 kB to another one over HTTP (docker counts the
    container's interfaces but loopback; both on the default bridge, which a rootless engine
    keeps in its own network namespace)."""
    a = made(f"{name}-a")
    docker("run", "-d", "--name", a, "busybox", "sh", "-c",
           "mkdir /www && head -c 50000 /dev/zero > /www/big && exec httpd -f -p 80 -h /www")
    ip = json.loads(docker("inspect", a).stdout)[0]["NetworkSettings"]["IPAddress"]
    got = docker("run", "--rm", "busybox", "sh", "-c",
                 f"for i in $(seq 50); do wget -qO- http://{ip}/big | wc -c | grep -qx 50000 && exit 0; sleep 0.1; done; "
                 "exit 1", check=False, timeout=60)
    assert got.returncode == 0, got.stderr
    theirs = stats_rows(docker("stats", "--no-stream", "--format", "json", a, timeout=60).stdout)[a]
    for row in [theirs] + [stats_rows(pods("stats", "--no-stream", "--format", "json", a).stdout.decode())[a]
                           for pods in faces]:
        tx = row["NetIO"].split(" / ")[1]
        assert re.fullmatch(r"[\d.]+kB", tx) and float(tx[:-2]) >= 50, row  # sent: the file and the headers


@both_engines
def test_top_prints_what_docker_top_prints(docker: DockerCLI, made: Made, name: str, faces: list[Pods]) -> None:
    n = made(name)
    docker("run", "-d", "--name", n, "busybox", "sh", "-c", "sleep 1000 & sleep 2000")
    for _ in range(100):  # until both sleeps run
        if len(docker("top", n).stdout.splitlines()) == 3:
            break
        time.sleep(0.05)
    for ps_args in ([], ["-o", "pid,ppid,args"], ["x"]):
        theirs = docker("top", n, *ps_args).stdout
        for pods in faces:
            ours = pods("top", n, *ps_args).stdout.decode()
            if not ps_args:  # but C (CPU %) and STIME, which may change between the two calls
                assert [line.split()[:3] + line.split()[5:] for line in ours.splitlines()] == \
                       [line.split()[:3] + line.split()[5:] for line in theirs.splitlines()]
            else:
                assert ours == theirs, ps_args
    assert len(theirs.splitlines()) == 3  # the header and the two sleeps (ps x: this host's, filtered)
    for pods in faces:
        bad = pods("top", n, "--no-such-option", check=False)
        assert bad.returncode != 0 and b"ps: error" in bad.stderr and b"Traceback" not in bad.stderr
        docker("stop", "-t", "1", n)
        stopped = pods("top", n, check=False)
        assert stopped.returncode != 0 and b"is not running" in stopped.stderr.lower()
        docker("start", n)
    assert docker("top", n, "--no-such-option", check=False).returncode != 0


def names_of(tar_bytes: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tf:
        return {m.name: m for m in tf.getmembers()}


@both_engines
def test_export_writes_the_containers_files_as_docker_does(docker: DockerCLI, made: Made, name: str,
                                                           faces: list[Pods], tmp_path: Path) -> None:
    """Names relative to the root; a hard link as a link entry; a volume's and /proc's contents
    left out but their mount points kept; a stopped container exports too."""
    n = made(name)
    docker("run", "-d", "--name", n, "-v", "/vol", "busybox", "sh", "-c",
           "echo hi > /root/new; ln /root/new /root/hard; echo v > /vol/f; touch /ready; " + SLEEP)
    for _ in range(100):
        if docker("exec", n, "test", "-e", "/ready", check=False).returncode == 0:
            break
        time.sleep(0.1)
    docker("export", "-o", str(tmp_path / "theirs.tar"), n)
    theirs = names_of((tmp_path / "theirs.tar").read_bytes())
    for pods in faces:
        for stopped in (False, True):
            entries = names_of(pods("export", n).stdout)
            assert not [x for x in entries if x.startswith(("/", "./"))]
            assert {"bin/busybox", "root/new", "root/hard", "vol", "proc"} <= set(entries)
            assert entries["root/hard"].isfile() and entries["root/new"].islnk()
            assert entries["root/new"].linkname == "root/hard"  # the first one met, in name order
            assert not [x for x in entries if x.startswith(("vol/", "proc/", "sys/"))]
            assert {x for x in entries if x.startswith(("bin/", "root/", "vol"))} == \
                   {x for x in theirs if x.startswith(("bin/", "root/", "vol"))}
            if not stopped:
                docker("stop", "-t", "1", n)
        docker("start", n)
        out = pods("export", "-o", str(tmp_path / "ours.tar"), n)
        assert out.stdout == b"" and names_of((tmp_path / "ours.tar").read_bytes()).keys() == entries.keys()
        missing = pods("export", "-o", str(tmp_path / "no" / "x.tar"), n, check=False)
        assert missing.returncode != 0 and str(tmp_path / "no" / "x.tar").encode() in missing.stderr
        assert not (tmp_path / "no").exists() and b"Traceback" not in missing.stderr
    assert theirs["root/new"].islnk() and "vol/f" not in theirs


CORE_ACTIONS = ("create", "start", "kill", "die", "stop", "pause", "unpause", "rename", "destroy")


@both_engines
def test_events_list_a_containers_life_as_docker_events_does(docker: DockerCLI, made: Made, name: str,
                                                             faces: list[Pods]) -> None:
    """The same life seen by ``docker events`` and ``pods events`` (through the daemon, and on
    ours from the engine's own journal, which every process writes: the CLI, sessions, the
    daemon, the monitors)."""
    since = f"{time.time() - 0.5:.3f}"
    n = made(name)
    cid = docker("run", "-d", "--name", n, "-l", "pods.test=events", "busybox", "sh", "-c", SLEEP).stdout.strip()
    paused = docker("pause", n, check=False)
    # rootless without a delegated cgroup there is no freezer: no pause, said so
    can_pause = not ROOTLESS or "no cgroup freezer" not in paused.stderr
    if can_pause:
        assert paused.returncode == 0, paused.stderr
        docker("unpause", n)
    docker("rename", n, made(f"{name}-2"))
    docker("stop", "-t", "5", f"{name}-2")
    docker("rm", f"{name}-2")
    until = f"{time.time() + 0.5:.3f}"
    fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}} {{.Actor.Attributes.signal}}"
    query = ["events", "--since", since, "--until", until, "--filter", f"container={cid}", "--format", fmt]
    theirs = [line for line in docker(*query, timeout=30).stdout.splitlines() if line.split()[1] in CORE_ACTIONS]
    pausing = [f"container pause {n} <no value> <no value>",
               f"container unpause {n} <no value> <no value>"] if can_pause else []
    assert theirs == [f"container create {n} <no value> <no value>", f"container start {n} <no value> <no value>",
                      *pausing, f"container rename {name}-2 <no value> <no value>", f"container kill {name}-2 <no value> 15",
                      f"container die {name}-2 0 <no value>", f"container stop {name}-2 <no value> <no value>",
                      f"container destroy {name}-2 <no value> <no value>"], theirs
    for pods in faces:
        ours = [line for line in pods(*query).stdout.decode().splitlines() if line.split()[1] in CORE_ACTIONS]
        assert ours == theirs
    default = faces[-1]("events", "--since", since, "--until", until, "--filter", f"container={cid}").stdout.decode()
    assert re.search(rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}(Z|[+-]\d\d:\d\d) container create {cid} "
                     rf"\(image=busybox, name={n}, pods.test=events\)$", default, re.MULTILINE), default


def test_events_follow_until_interrupted_and_filter(docker: DockerCLI, made: Made, name: str, daemon: Any) -> None:
    """Without ``--until``, new events as they happen (a container made by the docker CLI
    through the daemon shows in the local engine's journal); filters by type and label."""
    proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), "events",
                             "-f", "type=container", "-f", "label=pods.test=follow", "--format", "{{.Action}}"],
                            stdout=subprocess.PIPE)
    try:
        time.sleep(1)
        docker("run", "--rm", "--name", made(name), "-l", "pods.test=follow", "busybox", "true")
        docker("run", "--rm", "--name", made(f"{name}-other"), "busybox", "true")  # filtered out
        time.sleep(1)
    finally:
        proc.terminate()  # our own child, by its PID
        out = proc.communicate(timeout=10)[0].decode().split()
    assert out == ["create", "start", "die", "destroy"]


@both_engines
def test_event_filters_as_dockerd_applies_them(docker: DockerCLI, made: Made, name: str, faces: list[Pods]) -> None:
    """Labels and-ed, a container filter keeps other types out, network events by name, an
    unknown filter refused: the docker CLI and ours, on each engine."""
    since = f"{time.time() - 0.5:.3f}"
    docker("run", "--rm", "--name", made(f"{name}-ab"), "-l", "a=1", "-l", "b=2", "busybox", "true")
    docker("run", "--rm", "--name", made(f"{name}-a"), "-l", "a=1", "busybox", "true")
    docker("network", "create", f"{name}-net")
    docker("network", "rm", f"{name}-net")
    until = f"{time.time() + 0.5:.3f}"
    window = ["events", "--since", since, "--until", until, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"]
    queries = {
        "labels": ["-f", "label=a=1", "-f", "label=b=2", "-f", "event=create"],
        "container": ["-f", f"container={name}-a", "-f", "event=create"],
        "network": ["-f", "type=network", "-f", f"network={name}-net"],
    }
    # a container filter is a prefix of the ID or the name, as dockerd's (NAME-a keeps NAME-ab too)
    expected = {"labels": [f"container create {name}-ab"],
                "container": [f"container create {name}-ab", f"container create {name}-a"],
                "network": [f"network create {name}-net", f"network destroy {name}-net"]}
    for key, flags in queries.items():
        theirs = docker(*window, *flags, timeout=30).stdout.splitlines()
        assert theirs == expected[key], (key, theirs)
        for pods in faces:
            assert pods(*window, *flags).stdout.decode().splitlines() == theirs, key
    # a filter name dockerd does not know is ignored (Docker 20.10's daemon as today's)
    unknown = [*window, "-f", "colour=red", "-f", f"container={name}-ab"]
    theirs = docker(*unknown, timeout=30).stdout.splitlines()
    assert [x for x in theirs if x.split()[1] == "create"] == [f"container create {name}-ab"]
    for pods in faces:
        assert pods(*unknown).stdout.decode().splitlines() == theirs
    bad = faces[0]("events", "-f", "colour", check=False)
    assert bad.returncode == 125 and b'invalid argument "colour" for "-f, --filter" flag: bad format of filter ' \
        b"(expected name=value)" in bad.stderr  # the docker CLI's words


@both_engines
def test_exec_and_network_events_and_rm_f_as_dockerd_sends_them(docker: DockerCLI, made: Made, name: str,
                                                                faces: list[Pods]) -> None:
    """A container's whole life with an exec and a forced removal, network events included."""
    since = f"{time.time() - 0.5:.3f}"
    cid = docker("run", "-d", "--name", made(name), "busybox", "sleep", "600").stdout.strip()
    assert docker("exec", name, "sh", "-c", "exit 3", check=False).returncode == 3
    docker("rm", "-f", name)
    until = f"{time.time() + 0.5:.3f}"
    query = ["events", "--since", since, "--until", until, "--format",
             "{{.Type}}|{{.Action}}|{{.Actor.ID}}|{{.Actor.Attributes.container}}|{{.Actor.Attributes.exitCode}}"]

    def life(out: str) -> list[str]:
        kept = []
        for line in out.splitlines():
            kind, action, actor, container, code = line.split("|")
            if cid in (actor, container) and action.split(":")[0] != "attach":
                kept.append(f"{kind} {action} {code}")
        return kept

    theirs = life(docker(*query, timeout=30).stdout)
    assert theirs == ["container create <no value>", "network connect <no value>", "container start <no value>",
                      "container exec_create: sh -c exit 3 <no value>", "container exec_start: sh -c exit 3 <no value>",
                      "container exec_die 3", "container kill <no value>", "container die 137",
                      "network disconnect <no value>", "container destroy <no value>"], theirs
    for pods in faces:
        assert life(pods(*query).stdout.decode()) == theirs


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. A real docker-registry on loopback (tests/registry_helper.py)."""
    from registry_helper import serve_registry

    with serve_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@both_engines
def test_image_events_of_a_push_and_a_pull(docker: DockerCLI, name: str, registry: str, faces: list[Pods]) -> None:
    ref = f"{registry}/events/{name}:1"
    since = f"{time.time() - 0.5:.3f}"
    docker("tag", "busybox", ref)
    docker("push", ref, timeout=120)
    docker("rmi", ref)
    docker("pull", ref, timeout=120)
    docker("rmi", ref)
    until = f"{time.time() + 0.5:.3f}"
    query = ["events", "--since", since, "--until", until, "-f", "type=image", "--format",
             "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"]
    theirs = [line for line in docker(*query, timeout=30).stdout.splitlines() if line.split()[0] in ("push", "pull")]
    assert theirs == [f"push {ref} {registry}/events/{name}", f"pull {ref} {registry}/events/{name}"], theirs
    for pods in faces:
        ours = [line for line in pods(*query).stdout.decode().splitlines() if line.split()[0] in ("push", "pull")]
        assert ours == theirs
