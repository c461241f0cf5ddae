"""The real docker CLI (v28) against ``pods daemon``: what a docker user types, and what they see.

Every test names what it makes after the ``name`` fixture and ``made`` removes it by that name at
teardown, whatever failed; a registry a test starts is stopped by its PID. Where the daemon
cannot do what dockerd does, the test is a strict xfail naming the file and line to fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import wait_until
from dockerd_helper import both_engines
from pty_helper import Terminal

#: conftest's DockerCLI and Daemon (conftest modules are not imported by name)
DockerCLI = Any
Daemon = Any

REGISTRY_BIN = "/usr/bin/docker-registry"
#: Serves /www/index.html on port 80; ``trap`` so that ``docker stop`` ends it at once (busybox
#: httpd as PID 1 ignores SIGTERM, and dockerd would wait out the stop timeout just the same).
HTTPD = ("trap 'exit 0' TERM; mkdir -p /www && echo hello-pods > /www/index.html; "
         "httpd -f -p 80 -h /www & wait")
#: Runs until stopped, and stops at once on SIGTERM.
SLEEPER = "trap 'exit 0' TERM; while :; do sleep 0.1; done"


def http_get(port: int, path: str = "/", timeout: float = 5) -> tuple[str, bytes]:
    """(status line, body) of ``GET path`` on 127.0.0.1:port over a raw socket (HTTP/1.0)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), body


def inspect(docker: DockerCLI, *refs: str) -> list[dict[str, Any]]:
    return json.loads(docker("inspect", *refs).stdout)  # type: ignore[no-any-return]


def server_api(docker: DockerCLI) -> tuple[int, ...]:
    """The daemon's API version, e.g. (1, 47): where Docker's answer changed between versions."""
    return tuple(int(p) for p in docker("version", "--format", "{{.Server.APIVersion}}").stdout.split("."))


# -- what a test made, removed by name ---------------------------------------------------------
class Made:
    """Names of what a test made through the CLI; ``remove()`` takes them away again."""

    #: The daemon's texts for "already gone": the only failure teardown ignores.
    GONE = re.compile(r"No such (container|image|object)|not found|no such volume")

    def __init__(self, docker: DockerCLI) -> None:
        self.docker = docker
        self.containers: list[str] = []
        self.images: list[str] = []
        self.networks: list[str] = []
        self.volumes: list[str] = []

    def container(self, name: str) -> str:
        self.containers.append(name)
        return name

    def image(self, ref: str) -> str:
        self.images.append(ref)
        return ref

    def network(self, name: str) -> str:
        self.networks.append(name)
        return name

    def volume(self, name: str) -> str:
        self.volumes.append(name)
        return name

    def remove(self) -> None:
        """Every step runs (containers first: they hold images, networks and volumes)."""
        steps = ([("rm", "-f", c) for c in self.containers] + [("rmi", i) for i in self.images]
                 + [("network", "rm", n) for n in self.networks] + [("volume", "rm", v) for v in self.volumes])
        errors: list[Exception] = []
        for args in steps:
            proc = self.docker(*args, check=False)
            if proc.returncode != 0 and not self.GONE.search(proc.stderr):
                errors.append(AssertionError(f"teardown: docker {' '.join(args)} exited {proc.returncode}: "
                                             f"{proc.stderr.strip()}"))
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("teardown: remove what the test made", errors)


@pytest.fixture
def made(docker: DockerCLI) -> Iterator[Made]:
    """Scope: function. Depends on: docker. Record names here; they are removed at teardown."""
    m = Made(docker)
    yield m
    m.remove()


@pytest.fixture
def sleeper(docker: DockerCLI, made: Made, name: str) -> str:
    """Scope: function. A running busybox container (``docker run -d``) that stops at once."""
    docker("run", "-d", "--name", made.container(name), "busybox", "sh", "-c", SLEEPER)
    return name


# -- a registry --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. ``127.0.0.1:PORT`` of a real docker-registry (Debian's, distribution 2.8)
    on a temporary config and storage; stopped by its PID."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"no {REGISTRY_BIN}: apt-get install docker-registry")
    work = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = work / "config.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n"
                      f"  filesystem:\n    rootdirectory: {work / 'data'}\n  delete:\n    enabled: true\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = work / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"docker-registry exited {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                return bool(r.status == 200)
            return False

        wait_until(up, 10, f"docker-registry on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# == system ====================================================================================
def test_version_shows_our_engine_and_api_1_47(docker: DockerCLI) -> None:
    out = docker("version").stdout
    server = out[out.index("Server:"):]
    assert server.startswith("Server: pytest-pods")
    assert re.search(r"^ Engine:\n  Version:\s+28\.0\.0-pods$", server, re.MULTILINE), server
    assert re.search(r"^  API version:\s+1\.47 \(minimum version 1\.24\)$", server, re.MULTILINE), server
    assert re.search(r"^  OS/Arch:\s+linux/\w+$", server, re.MULTILINE), server
    assert re.search(r"^  Go version:\s+\S", server, re.MULTILINE), server  # not left blank
    assert docker("version", "--format", "{{.Server.APIVersion}}").stdout == "1.47\n"


def test_info_describes_the_engine_and_its_root(docker: DockerCLI, daemon: Daemon) -> None:
    out = docker("info").stdout
    assert " Server Version: 28.0.0-pods\n" in out
    assert " Operating System: pytest-pods\n" in out
    assert f" Docker Root Dir: {daemon.root}\n" in out
    assert " Storage Driver: overlay2\n" in out
    assert re.search(r"^ Containers: \d+\n  Running: \d+\n  Paused: 0\n  Stopped: \d+$", out, re.MULTILINE), out
    assert docker("info", "--format", "{{.OSType}} {{.DefaultRuntime}}").stdout == "linux pods\n"


# == run, ps, logs =============================================================================
@both_engines
def test_run_rm_prints_the_output_and_exits_with_the_container(docker: DockerCLI, made: Made, name: str) -> None:
    proc = docker("run", "--rm", "--name", made.container(name), "busybox", "sh", "-c",
                  "echo out; echo err >&2; exit 3", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    wait_until(lambda: docker("ps", "-aq", "--filter", f"name=^{name}$").stdout == "", 10, f"--rm to remove {name}")
    assert docker("run", "--rm", "busybox", "true").returncode == 0


@both_engines
def test_run_exit_codes_are_dockers(docker: DockerCLI) -> None:
    missing = docker("run", "--rm", "busybox", "no-such-command", check=False)
    assert missing.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in missing.stderr.replace("'", '"')
    denied = docker("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert denied.returncode == 126 and "permission denied" in denied.stderr
    # a process killed by a signal: 128 + the signal, as the shell reports it
    assert docker("run", "--rm", "busybox", "sh", "-c", "sleep 60 & kill -KILL $!; wait $!", check=False).returncode == 137


@both_engines
def test_run_t_gets_a_raw_stream(docker: DockerCLI) -> None:
    # without a terminal on our side, docker run -t still sends the raw (unframed) stream
    proc = docker("run", "--rm", "-t", "busybox", "sh", "-c", "echo one; echo two >&2")
    assert proc.stdout.replace("\r\n", "\n") == "one\ntwo\n"


@both_engines
def test_run_i_feeds_stdin(docker: DockerCLI) -> None:
    assert docker("run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input="piped\n").stdout == "PIPED\n"


@both_engines
def test_run_d_publishes_a_port_reached_from_the_host(docker: DockerCLI, made: Made, name: str) -> None:
    cid = docker("run", "-d", "--name", made.container(name), "-p", "80", "busybox", "sh", "-c", HTTPD).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    m = re.fullmatch(r"(0\.0\.0\.0|127\.0\.0\.1):(\d+)\n(.*\n)?", docker("port", name, "80/tcp").stdout)
    assert m, docker("port", name, "80/tcp").stdout
    port = int(m.group(2))

    def served() -> tuple[str, bytes] | None:
        with contextlib.suppress(OSError):
            return http_get(port, "/index.html")
        return None

    status, body = wait_until(served, 10, f"httpd on host port {port}")
    assert status.endswith(" 200 OK") and body == b"hello-pods\n"
    row = docker("ps", "--filter", f"name=^{name}$", "--format", "{{.Ports}}").stdout
    assert f":{port}->80/tcp" in row


@both_engines
def test_ps_lists_running_all_quiet_and_by_label(docker: DockerCLI, made: Made, name: str) -> None:
    up, done = made.container(f"{name}-up"), made.container(f"{name}-done")
    up_id = docker("run", "-d", "--name", up, "-l", f"pods.test={name}", "busybox", "sh", "-c", SLEEPER).stdout.strip()
    docker("run", "--name", done, "-l", f"pods.test={name}-other", "busybox", "true")

    ps = docker("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    row = next(line for line in ps if line.endswith(f" {up}"))
    assert row.startswith(up_id[:12]) and ' busybox ' in row and re.search(r"\bUp\b", row), row
    assert not any(line.endswith(f" {done}") for line in ps)

    every = docker("ps", "-a").stdout.splitlines()
    row = next(line for line in every if line.endswith(f" {done}"))
    assert re.search(r"Exited \(0\) .* ago", row), row

    assert up_id[:12] in docker("ps", "-q").stdout.split()
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in docker("ps", "-aq").stdout.split())
    labelled = docker("ps", "-a", "--filter", f"label=pods.test={name}", "--format", "{{.Names}}").stdout
    assert labelled == f"{up}\n"
    assert docker("ps", "-a", "--filter", "label=pods.test", "--format", "{{.Names}}").stdout.split().count(done) == 1


@both_engines
def test_logs_f_follows_until_the_container_exits(docker: DockerCLI, made: Made, name: str) -> None:
    docker("run", "-d", "--name", made.container(name), "busybox", "sh", "-c",
           "echo one; sleep 1; echo two >&2; sleep 1; echo three")
    started = time.monotonic()
    proc = docker("logs", "-f", name, timeout=30)
    assert time.monotonic() - started >= 1  # it waited for the lines still to come
    assert (proc.stdout, proc.stderr) == ("one\nthree\n", "two\n")
    assert inspect(docker, name)[0]["State"]["Status"] == "exited"
    stamped = docker("logs", "-t", name).stdout.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z one", stamped[0]), stamped
    assert docker("logs", "--tail", "1", name).stdout == "three\n"


# == exec ======================================================================================
@both_engines
def test_exec_runs_in_the_container_with_its_exit_code(docker: DockerCLI, sleeper: str) -> None:
    proc = docker("exec", sleeper, "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, "out\n", "err\n")
    assert docker("exec", "-e", "FOO=bar", "-w", "/tmp", sleeper, "sh", "-c", 'echo "$FOO $PWD"').stdout == "bar /tmp\n"
    assert docker("exec", "-i", sleeper, "cat", input="fed\n").stdout == "fed\n"
    assert docker("exec", sleeper, "tty", check=False).stdout == "not a tty\n"
    # Docker since its exec start errors take the container start's codes: 127; 20.10 (API 1.41) answered 126
    missing = 127 if server_api(docker) > (1, 41) else 126
    assert docker("exec", sleeper, "no-such-command", check=False).returncode == missing


@both_engines
def test_exec_it_drives_a_shell_through_a_pty(docker: DockerCLI, sleeper: str) -> None:
    term = Terminal(["docker", "exec", "-it", sleeper, "sh"], docker.env)
    try:
        term.expect(rb"/ # ")  # busybox sh's prompt for root
        term.send("echo $((6*7))\r")
        term.expect(rb"^42\r?$")
        term.send("tty\r")
        term.expect(rb"^/dev/pts/\d+\r?$")
        term.send("stty size\r")
        term.expect(rb"^24 80\r?$")  # the CLI's terminal size reached the container's
        term.send("exit 3\r")
        assert term.wait() == 3, term.output
    finally:
        term.close()


# == cp ========================================================================================
@both_engines
def test_cp_copies_files_and_directories_both_ways(docker: DockerCLI, sleeper: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "deep.txt").write_text("deep\n")
    script = src / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    one = tmp_path / "one.txt"
    one.write_text("one\n")

    docker("cp", str(one), f"{sleeper}:/tmp/")  # into a directory: keeps its name
    docker("cp", str(one), f"{sleeper}:/tmp/renamed.txt")  # to a new name
    docker("cp", str(src), f"{sleeper}:/tmp/tree")  # a directory to a new name
    docker("cp", str(src), f"{sleeper}:/tmp/")  # a directory into a directory
    listing = docker("exec", sleeper, "sh", "-c", "cd /tmp && find . | sort").stdout.split()
    assert listing == [".", "./one.txt", "./renamed.txt", "./src", "./src/run.sh", "./src/sub", "./src/sub/deep.txt",
                       "./tree", "./tree/run.sh", "./tree/sub", "./tree/sub/deep.txt"]
    assert docker("exec", sleeper, "cat", "/tmp/renamed.txt").stdout == "one\n"
    assert docker("exec", sleeper, "/tmp/tree/run.sh").stdout == "ran\n"  # the mode came along

    back = tmp_path / "back"
    back.mkdir()
    docker("cp", f"{sleeper}:/tmp/renamed.txt", str(back))  # into a directory
    docker("cp", f"{sleeper}:/tmp/one.txt", str(back / "again.txt"))  # to a new name
    docker("cp", f"{sleeper}:/tmp/tree", str(back / "tree"))  # a directory to a new name
    docker("cp", f"{sleeper}:/tmp/src", str(back))  # a directory into a directory
    assert (back / "renamed.txt").read_text() == (back / "again.txt").read_text() == "one\n"
    for tree in (back / "tree", back / "src"):
        assert (tree / "sub" / "deep.txt").read_text() == "deep\n"
        assert os.access(tree / "run.sh", os.X_OK)

    contents = tmp_path / "contents"
    contents.mkdir()
    docker("cp", f"{sleeper}:/tmp/tree/.", str(contents))  # DIR/. : what the directory holds
    assert sorted(p.relative_to(contents).as_posix() for p in contents.rglob("*")) == ["run.sh", "sub",
                                                                                        "sub/deep.txt"]

    streamed = docker("cp", f"{sleeper}:/etc/hostname", "-").stdout  # a tar on stdout
    assert streamed[:8] == "hostname"
    missing = docker("cp", f"{sleeper}:/no/such", str(back), check=False)
    assert missing.returncode == 1 and "Could not find the file /no/such in container" in missing.stderr


@both_engines
def test_cp_to_a_container_reads_a_tar_from_stdin(docker: DockerCLI, sleeper: str, tmp_path: Path) -> None:
    (tmp_path / "piped.txt").write_text("piped\n")
    tar = tmp_path / "in.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(tmp_path / "piped.txt", arcname="piped.txt")
    with open(tar, "rb") as f:
        proc = subprocess.run(["docker", "cp", "-", f"{sleeper}:/tmp"], stdin=f, env=docker.env,
                              capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert docker("exec", sleeper, "cat", "/tmp/piped.txt").stdout == "piped\n"


# == stop, rm, restart, kill, wait =============================================================
@both_engines
def test_stop_ends_the_container_with_its_signal_then_sigkill(docker: DockerCLI, sleeper: str, made: Made,
                                                              name: str) -> None:
    started = time.monotonic()
    assert docker("stop", sleeper).stdout == f"{sleeper}\n"
    assert time.monotonic() - started < 5  # SIGTERM ended it: no waiting out the timeout
    state = inspect(docker, sleeper)[0]["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 0)
    assert docker("stop", sleeper).stdout == f"{sleeper}\n"  # stopping a stopped one is fine

    stubborn = made.container(f"{name}-stubborn")
    docker("run", "-d", "--name", stubborn, "busybox", "sleep", "1000")  # PID 1 ignores SIGTERM
    started = time.monotonic()
    docker("stop", "-t", "1", stubborn)
    assert 0.9 <= time.monotonic() - started < 10
    assert inspect(docker, stubborn)[0]["State"]["ExitCode"] == 137


@both_engines
def test_rm_removes_stopped_and_rm_f_running_containers(docker: DockerCLI, made: Made, name: str) -> None:
    done, up = made.container(f"{name}-done"), made.container(f"{name}-up")
    docker("run", "--name", done, "busybox", "true")
    docker("run", "-d", "--name", up, "busybox", "sleep", "1000")
    assert docker("rm", done).stdout == f"{done}\n"
    refused = docker("rm", up, check=False)
    assert refused.returncode == 1
    if server_api(docker) > (1, 41):
        assert f'cannot remove container "/{up}": container is running' in refused.stderr
    else:  # 20.10's words
        assert "You cannot remove a running container" in refused.stderr
    assert docker("rm", "-f", up).stdout == f"{up}\n"
    assert docker("ps", "-a", "--filter", f"name={name}", "-q").stdout == ""
    missing = docker("rm", "nosuch-" + name, check=False)
    assert missing.returncode == 1 and f"No such container: nosuch-{name}" in missing.stderr


@both_engines
def test_restart_starts_a_new_process(docker: DockerCLI, sleeper: str) -> None:
    before = inspect(docker, sleeper)[0]["State"]
    assert docker("restart", "-t", "1", sleeper).stdout == f"{sleeper}\n"
    after = inspect(docker, sleeper)[0]["State"]
    assert after["Running"] and after["Pid"] != before["Pid"] and after["StartedAt"] > before["StartedAt"]
    assert docker("exec", sleeper, "echo", "back").stdout == "back\n"


@both_engines
def test_kill_sends_sigkill_or_the_signal_given(docker: DockerCLI, sleeper: str, made: Made, name: str) -> None:
    assert docker("kill", sleeper).stdout == f"{sleeper}\n"
    assert docker("wait", sleeper).stdout == "137\n"
    assert inspect(docker, sleeper)[0]["State"]["ExitCode"] == 137
    refused = docker("kill", sleeper, check=False)
    assert refused.returncode == 1 and "is not running" in refused.stderr

    trapper = made.container(f"{name}-usr1")
    docker("run", "-d", "--name", trapper, "busybox", "sh", "-c",
           "trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.1; done")
    wait_until(lambda: "ready" in docker("logs", trapper).stdout, 10, f"{trapper} to trap USR1")
    docker("kill", "--signal", "USR1", trapper)
    assert docker("wait", trapper).stdout == "5\n"
    assert docker("logs", trapper).stdout == "ready\ngot-usr1\n"


@both_engines
def test_wait_prints_the_exit_code(docker: DockerCLI, made: Made, name: str) -> None:
    docker("run", "-d", "--name", made.container(name), "busybox", "sh", "-c", "sleep 1; exit 7")
    assert docker("wait", name).stdout == "7\n"
    assert docker("wait", name).stdout == "7\n"  # and again, once it has exited


# == stats, top, events ========================================================================
@both_engines
def test_stats_no_stream_prints_one_row(docker: DockerCLI, sleeper: str) -> None:
    out = docker("stats", "--no-stream", sleeper, timeout=30).stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert len(out) == 2, out
    row = out[1].split()
    cid = inspect(docker, sleeper)[0]["Id"]
    assert row[0] == cid[:12] and row[1] == sleeper
    assert re.fullmatch(r"\d+\.\d\d%", row[2]) and re.fullmatch(r"[\d.]+(B|KiB|MiB|GiB)", row[3]), row
    assert int(row[-1]) >= 1
    formatted = docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", sleeper, timeout=30).stdout
    assert re.fullmatch(rf"{sleeper} \d+\n", formatted)


@both_engines
def test_top_lists_the_containers_processes(docker: DockerCLI, made: Made, name: str) -> None:
    docker("run", "-d", "--name", made.container(name), "busybox", "sleep", "1000")
    pid = inspect(docker, name)[0]["State"]["Pid"]
    out = docker("top", name).stdout.splitlines()
    assert out[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = [line.split(None, 7) for line in out[1:]]
    assert [(r[0], r[1], r[7]) for r in rows] == [(pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name, str(pid),
                                                    "sleep 1000")]


@both_engines
def test_events_since_until_show_a_containers_life(docker: DockerCLI, made: Made, name: str) -> None:
    since = time.time() - 1
    docker("run", "--name", made.container(name), "busybox", "sh", "-c", "exit 2", check=False)
    until = time.time() + 1  # the die event comes from the exit watcher, just after the exit
    proc = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", f"container={name}",
                  "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", timeout=30)
    lines = proc.stdout.splitlines()
    assert [x for x in lines if x.split()[1] in ("create", "start", "die")] == [
        f"container create {name}", f"container start {name}", f"container die {name}"], lines
    died = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", f"container={name}",
                  "--filter", "event=die", "--format", "{{.Actor.Attributes.exitCode}}").stdout
    assert died == "2\n"
    default = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", timeout=30).stdout
    assert re.search(rf"^\d{{4}}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d) container create [0-9a-f]{{64}} "
                     rf"\((image=busybox, )?.*name={name}.*\)$", default, re.MULTILINE), default
    assert docker("events", "--since", f"{since - 10:.3f}", "--until", f"{since:.3f}",
                  "--filter", f"container={name}").stdout == ""


# == images: build, images, tag, commit, push, pull ===========================================
@both_engines
def test_build_prints_steps_and_tags_the_image(docker: DockerCLI, made: Made, name: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\nLABEL pods.test=build\n"
                                         'CMD ["cat", "/built"]\n')
    tag = made.image(f"test/{name}:1")
    out = docker("build", "-t", tag, str(tmp_path), timeout=300).stdout
    steps = re.findall(r"^Step (\d+)/(\d+) : (.*)$", out, re.MULTILINE)
    assert steps == [("1", "4", "FROM busybox"), ("2", "4", "RUN echo built > /built"),
                     ("3", "4", "LABEL pods.test=build"), ("4", "4", 'CMD ["cat", "/built"]')], out
    built = re.search(r"^Successfully built ([0-9a-f]{12})$", out, re.MULTILINE)
    assert built and re.search(rf"^Successfully tagged {re.escape(tag)}$", out, re.MULTILINE), out
    assert inspect(docker, tag)[0]["Id"] == f"sha256:{built.group(1)}" + inspect(docker, tag)[0]["Id"][19:]
    assert docker("run", "--rm", tag).stdout == "built\n"
    quiet = docker("build", "-q", str(tmp_path), timeout=300).stdout
    assert quiet.strip() == inspect(docker, tag)[0]["Id"]  # -q: only the ID (the cache made the same image)


@both_engines
def test_images_lists_and_tag_adds_a_name(docker: DockerCLI, made: Made, name: str) -> None:
    busybox_id = inspect(docker, "busybox")[0]["Id"]
    rows = docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines()
    assert f"busybox:latest {busybox_id[7:19]}" in rows
    header = docker("images", "busybox").stdout.splitlines()[0].split()
    assert header == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]

    docker("tag", "busybox", made.image(f"test/{name}:v1"))
    docker("tag", f"test/{name}:v1", made.image(f"test/{name}:v2"))
    mine = docker("images", f"test/{name}", "--format", "{{.Tag}} {{.ID}}").stdout.split("\n")
    assert sorted(filter(None, mine)) == [f"v1 {busybox_id[7:19]}", f"v2 {busybox_id[7:19]}"]
    assert docker("images", "-q", f"test/{name}:v1").stdout == f"{busybox_id[7:19]}\n"
    assert docker("rmi", f"test/{name}:v2").stdout == f"Untagged: test/{name}:v2\n"
    assert docker("images", "-q", "busybox").stdout == f"{busybox_id[7:19]}\n"  # untagging kept the image


@both_engines
def test_commit_makes_an_image_of_the_changes(docker: DockerCLI, sleeper: str, made: Made, name: str) -> None:
    docker("exec", sleeper, "sh", "-c", "echo committed > /c")
    tag = made.image(f"test/{name}:c")
    out = docker("commit", "-c", 'CMD ["cat", "/c"]', "-m", "a message", sleeper, tag).stdout
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out)
    assert inspect(docker, tag)[0]["Id"] == out.strip()
    assert inspect(docker, tag)[0]["Config"]["Cmd"] == ["cat", "/c"]
    assert docker("run", "--rm", tag).stdout == "committed\n"


@both_engines
def test_push_and_pull_through_a_local_registry(docker: DockerCLI, registry: str, made: Made, name: str) -> None:
    ref = made.image(f"{registry}/test/x:1")
    docker("tag", "busybox", ref)
    pushed = docker("push", ref, timeout=300).stdout
    assert pushed.startswith(f"The push refers to repository [{registry}/test/x]\n"), pushed
    digest = re.search(r"^1: digest: (sha256:[0-9a-f]{64}) size: \d+$", pushed, re.MULTILINE)
    assert digest, pushed

    # the last tag of a repository takes the repository's digest reference (from the push) with it
    assert docker("rmi", ref).stdout == f"Untagged: {ref}\nUntagged: {registry}/test/x@{digest.group(1)}\n"
    assert docker("images", "-q", ref).stdout == ""
    pulled = docker("pull", ref, timeout=300).stdout
    assert pulled.startswith("1: Pulling from test/x\n"), pulled
    assert f"Digest: {digest.group(1)}\n" in pulled
    assert f"Status: Downloaded newer image for {ref}\n" in pulled
    assert pulled.endswith(f"\n{ref}\n")
    assert docker("pull", ref, timeout=300).stdout.count(f"Status: Image is up to date for {ref}\n") == 1
    assert inspect(docker, ref)[0]["Id"] == inspect(docker, "busybox")[0]["Id"]
    assert docker("run", "--rm", ref, "echo", "pulled").stdout == "pulled\n"


@both_engines
def test_push_all_tags_of_a_repository(docker: DockerCLI, registry: str, made: Made, name: str) -> None:
    """``docker push --all-tags`` (docker-py's ``push("repo")``) sends no tag: every local tag of
    the repository goes, each with its digest line; a repository with none is named in the error."""
    repo = f"{registry}/test/{name}"
    docker("tag", "busybox", made.image(f"{repo}:a"))
    docker("tag", "busybox", made.image(f"{repo}:b"))
    pushed = docker("push", "--all-tags", repo, timeout=300).stdout
    assert re.findall(r"^(\w+): digest: sha256:[0-9a-f]{64} size: \d+$", pushed, re.MULTILINE) == ["a", "b"], pushed
    with urllib.request.urlopen(f"http://{registry}/v2/test/{name}/tags/list", timeout=10) as r:
        assert sorted(json.load(r)["tags"]) == ["a", "b"]
    none = docker("push", "--all-tags", f"{registry}/test/{name}-none", check=False, timeout=300)
    assert none.returncode != 0
    assert f"An image does not exist locally with the tag: {registry}/test/{name}-none" in none.stderr


# == networks, volumes, inspect ================================================================
@both_engines
def test_network_create_ls_run_by_name_and_rm(docker: DockerCLI, made: Made, name: str) -> None:
    net = made.network(f"{name}-net")
    net_id = docker("network", "create", net).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", net_id)
    rows = docker("network", "ls", "--format", "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}").stdout.splitlines()
    assert f"{net_id[:12]} {net} bridge local" in rows
    assert {"bridge", "host", "none"} <= {r.split()[1] for r in rows}

    server = made.container(f"{name}-srv")
    docker("run", "-d", "--name", server, "--network", net, "busybox", "sh", "-c", HTTPD)

    def fetched() -> str:
        proc = docker("run", "--rm", "--network", net, "busybox", "wget", "-qO-", f"http://{server}/", check=False)
        return proc.stdout if proc.returncode == 0 else ""

    assert wait_until(fetched, 15, f"{server} to answer by name on {net}") == "hello-pods\n"
    shown = inspect(docker, net)[0]
    assert (shown["Name"], shown["Driver"]) == (net, "bridge")
    assert [c["Name"] for c in shown["Containers"].values()] == [server]

    busy = docker("network", "rm", net, check=False)
    assert busy.returncode != 0  # a container is on it
    docker("rm", "-f", server)
    assert docker("network", "rm", net).stdout == f"{net}\n"
    assert net not in docker("network", "ls", "--format", "{{.Name}}").stdout.split()


@both_engines
def test_volume_create_ls_mount_and_rm(docker: DockerCLI, made: Made, name: str) -> None:
    vol = made.volume(f"{name}-vol")
    assert docker("volume", "create", vol).stdout == f"{vol}\n"
    assert f"local     {vol}" in docker("volume", "ls").stdout.splitlines()
    docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert docker("run", "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/f").stdout == "kept\n"
    shown = json.loads(docker("volume", "inspect", vol).stdout)[0]
    assert (shown["Name"], shown["Driver"]) == (vol, "local")
    assert docker("volume", "rm", vol).stdout == f"{vol}\n"
    assert vol not in docker("volume", "ls", "-q").stdout.split()


@both_engines
def test_inspect_containers_images_networks_and_nosuch(docker: DockerCLI, made: Made, name: str) -> None:
    net = made.network(f"{name}-net")
    docker("network", "create", net)
    ctr = made.container(name)
    docker("run", "-d", "--name", ctr, "--network", net, "-l", "pods.test=inspect", "busybox", "sleep", "1000")

    c = inspect(docker, ctr)[0]
    assert c["Name"] == f"/{ctr}" and re.fullmatch(r"[0-9a-f]{64}", c["Id"])
    assert (c["State"]["Status"], c["State"]["Running"]) == ("running", True)
    assert c["Config"]["Image"] == "busybox" and c["Config"]["Labels"] == {"pods.test": "inspect"}
    assert c["Path"] == "sleep" and c["Args"] == ["1000"]
    assert c["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", c["Created"])
    assert docker("inspect", "-f", "{{.State.Status}} {{.HostConfig.NetworkMode}}", ctr).stdout == f"running {net}\n"
    assert docker("container", "inspect", "-f", "{{.Name}}", ctr).stdout == f"/{ctr}\n"

    i = inspect(docker, "busybox")[0]
    assert i["Id"].startswith("sha256:") and "busybox:latest" in i["RepoTags"] and i["Os"] == "linux"
    assert i["Id"] == c["Image"]

    n = inspect(docker, net)[0]
    assert (n["Name"], n["Driver"], n["Scope"]) == (net, "bridge", "local") and c["Id"] in n["Containers"]

    missing = docker("inspect", "nosuch", check=False)
    assert missing.returncode == 1
    assert missing.stdout.strip() == "[]"
    assert "Error: No such object: nosuch" in missing.stderr
    assert docker("image", "inspect", "nosuch", check=False).returncode == 1


# == the daemon itself =========================================================================
def test_a_second_daemon_on_the_same_root_refuses_naming_the_first(daemon: Daemon, tmp_path: Path) -> None:
    assert daemon.proc is not None
    sock = tmp_path / "second.sock"
    proc = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), "daemon",
                           "--socket", str(sock)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 125
    assert f"pid {daemon.proc.pid}" in proc.stderr and str(daemon.root) in proc.stderr, proc.stderr
    assert not sock.exists()
    assert daemon.proc.poll() is None  # the first one serves on


def test_daemon_restarts_without_losing_running_containers(private_daemon: Daemon,
                                                           docker_for: Callable[[Daemon], DockerCLI],
                                                           name: str) -> None:
    docker = docker_for(private_daemon)
    cid = docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo up; " + SLEEPER).stdout.strip()
    pid = inspect(docker, name)[0]["State"]["Pid"]
    first = private_daemon.proc
    assert first is not None

    private_daemon.stop()  # SIGTERM
    assert first.returncode == 0, private_daemon.log.read_text()
    assert not private_daemon.sock.exists()
    os.kill(pid, 0)  # the container lives on without a daemon

    private_daemon.start()  # the same root and socket
    assert private_daemon.proc is not None and private_daemon.proc.pid != first.pid
    rows = docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout.splitlines()
    assert any(re.fullmatch(rf"{cid[:12]} {name} Up .*", r) for r in rows), rows
    assert inspect(docker, name)[0]["State"]["Pid"] == pid
    assert docker("exec", name, "echo", "still here").stdout == "still here\n"
    assert docker("logs", name).stdout == "up\n"
    docker("rm", "-f", name)


@both_engines
def test_ps_filters_by_exit_code(docker: DockerCLI, names: list[str]) -> None:
    name = f"exited-{uuid.uuid4().hex[:8]}"
    names.append(name)
    docker("run", "--name", name, "busybox:latest", "sh", "-c", "exit 3", check=False)
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
    assert cid[:12] in docker("ps", "-aq", "--filter", "exited=3").stdout.split()
    assert cid[:12] not in docker("ps", "-aq", "--filter", "exited=4").stdout.split()
    assert cid[:12] in docker("ps", "-aq", "--filter", "exited=3", "--filter", "health=none").stdout.split()
