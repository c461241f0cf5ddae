"""Terminals (issue 16): ``Tty`` containers on a pty of their own, as docker gives them.

From the client's side: the real docker CLI on a pseudo-terminal (as a user at a shell runs it),
docker-py's attach and resize, and ``pods run -it`` on the local engine. Every container a test
makes carries its name and is removed at teardown (``docker rm -f``), whatever failed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemon_helper import wait_until
from dockerd_helper import both_engines
from pty_helper import Terminal

#: conftest's DockerCLI (conftest modules are not imported by name)
DockerCLI = Any


# == docker CLI ================================================================================
def test_docker_run_it_drives_a_shell_through_a_pty(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    term = Terminal(["docker", "run", "-it", "--name", name, "busybox", "sh"], docker.env)
    try:
        term.expect(rb"/ # ")
        term.send("echo hi-$((1+2))\n")
        term.expect(rb"^hi-3\r?$")
        term.send("tty; test -t 0 && echo stdin-is-a-tty\n")
        term.expect(rb"^/dev/pts/0\r?$")
        term.expect(rb"^stdin-is-a-tty\r?$")
        term.send("stty size\n")
        term.expect(rb"^24 80\r?$")  # the CLI's terminal size reached the container's pty
        term.send("exit 3\n")
        assert term.wait() == 3, term.output
    finally:
        term.close()
    assert docker("inspect", "-f", "{{.Config.Tty}} {{.State.ExitCode}}", name).stdout.split() == ["true", "3"]


def test_docker_run_t_prints_the_containers_pty(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    out = docker("run", "-t", "--name", name, "busybox", "tty").stdout
    assert out.strip() == "/dev/pts/0"
    # the log holds the pty's one stream, as stdout
    logs = docker("logs", name)
    assert logs.stdout.strip() == "/dev/pts/0" and logs.stderr == ""


def test_docker_run_without_t_has_no_tty(docker: DockerCLI) -> None:
    proc = docker("run", "--rm", "busybox", "tty", check=False)
    assert proc.returncode == 1 and proc.stdout.strip() == "not a tty"


def test_stderr_of_a_tty_container_is_its_pty(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    proc = docker("run", "-t", "--name", name, "busybox", "sh", "-c", "echo to-stderr >&2")
    assert proc.stdout.strip() == "to-stderr" and proc.stderr == ""


def test_detach_keys_leave_the_container_running(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    term = Terminal(["docker", "run", "-it", "--name", name, "busybox", "sh"], docker.env)
    try:
        term.expect(rb"/ # ")
        term.send("\x10\x11")  # ctrl-p ctrl-q
        assert term.wait() == 0, term.output
    finally:
        term.close()
    assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    assert docker("exec", name, "echo", "still-here").stdout == "still-here\n"


def test_docker_run_d_t_keeps_a_shell_running(docker: DockerCLI, names: list[str], name: str) -> None:
    names.append(name)
    docker("run", "-d", "-t", "--name", name, "busybox", "sh")  # its stdin is the pty: it waits
    time.sleep(0.5)
    assert docker("inspect", "-f", "{{.State.Running}} {{.Config.Tty}}", name).stdout.split() == ["true", "true"]


# == docker-py =================================================================================
def test_resize_reaches_the_pty(docker_client: Any, names: list[str], name: str) -> None:
    names.append(name)
    script = "trap 'stty size' WINCH; echo ready; while :; do sleep 0.1; done"
    ctr = docker_client.containers.run("busybox", ["sh", "-c", script], tty=True, detach=True, name=name)
    wait_until(lambda: b"ready" in ctr.logs(), timeout=20, what="the container's ready line")
    docker_client.api.resize(ctr.id, height=30, width=100)
    wait_until(lambda: b"30 100" in ctr.logs(), timeout=20, what="stty size after the resize")
    assert ctr.logs().splitlines()[-1].strip() == b"30 100"


def test_attach_to_a_tty_container_is_the_raw_stream(docker_client: Any, names: list[str], name: str) -> None:
    names.append(name)
    ctr = docker_client.containers.create("busybox", ["sh"], tty=True, stdin_open=True, name=name)
    sock = docker_client.api.attach_socket(ctr.id, params={"stdin": 1, "stdout": 1, "stream": 1})
    raw: socket.socket = sock._sock
    try:
        ctr.start()
        raw.sendall(b"echo raw-$((40+2))\n")
        got = b""
        deadline = time.monotonic() + 20
        while b"raw-42\r\n" not in got and time.monotonic() < deadline:
            raw.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = raw.recv(4096)
            if not chunk:
                break
            got += chunk
        assert b"raw-42\r\n" in got, got
        assert not got.startswith(b"\x01\x00\x00\x00")  # no multiplexed frame header
        raw.sendall(b"exit 5\n")
        assert ctr.wait(timeout=20)["StatusCode"] == 5
    finally:
        raw.close()
    assert docker_client.api.inspect_container(ctr.id)["Config"]["Tty"] is True


# == pods run -it ==============================================================================
def test_pods_run_it_drives_a_shell_through_a_pty(pods_root: Path, name: str) -> None:
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    term = Terminal([*cli, "run", "-it", "--rm", "--name", name, "busybox", "sh"], rows=33, cols=99)
    try:
        term.expect(rb"/ # ")
        term.send("echo hi-$((1+2))\n")
        term.expect(rb"^hi-3\r?$")
        term.send("tty; stty size\n")
        term.expect(rb"^/dev/pts/0\r?$")
        term.expect(rb"^33 99\r?$")
        term.send("exit 3\n")
        assert term.wait() == 3, term.output
    finally:
        term.close()
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


def test_pods_run_t_prints_the_containers_pty(pods_cli: Any) -> None:
    proc = pods_cli("run", "--rm", "-t", "busybox", "tty")
    assert proc.returncode == 0 and proc.stdout.strip() == "/dev/pts/0", proc.stderr


def test_pods_run_it_detach_keys_leave_the_container_running(pods_root: Path, name: str) -> None:
    """ctrl-p ctrl-q (or ``--detach-keys``) lets go: exit 0, as ``docker run -it`` (the test above
    on the docker CLI), and the shell runs on; a ctrl-p not followed by ctrl-q reaches it."""
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        for keys, typed in ((None, "\x10\x11"), ("ctrl-x,x", "\x18x")):
            subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)
            term = Terminal([*cli, "run", "-it", "--name", name, *(["--detach-keys", keys] if keys else []),
                             "busybox", "sh"])
            try:
                term.expect(rb"/ # ")
                term.send("od -c\n")
                time.sleep(0.3)
                term.send("a\x10b\n\x04")  # a lone ctrl-p is no detach: it is typed, od sees it
                term.expect(rb"a +020 +b")
                term.send("echo before-detach\n")
                term.expect(rb"^before-detach\r?$")
                term.send(typed)
                assert term.wait() == 0, term.output
            finally:
                term.close()
            state = subprocess.run([*cli, "inspect", "-f", "{{.State.Running}}", name], capture_output=True,
                                   text=True, timeout=60)
            assert state.stdout.strip() == "true", (keys, state.stderr)
            ran = subprocess.run([*cli, "exec", name, "echo", "still-here"], capture_output=True, text=True,
                                 timeout=60)
            assert ran.stdout == "still-here\n"
        bad = subprocess.run([*cli, "run", "-it", "--rm", "--detach-keys", "ctrl-1", "busybox", "true"],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert bad.returncode == 125 and "Invalid escape keys (ctrl-1) provided" in bad.stderr
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


def test_pods_attach_types_into_a_running_tty_container_and_detaches(pods_root: Path, name: str) -> None:
    """As ``docker attach`` (test_api_containers' test of it, on both engines): what we type runs,
    its output comes back, ctrl-p ctrl-q lets go with exit 1 and "read escape sequence"."""
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        subprocess.run([*cli, "run", "-d", "-it", "--name", name, "busybox", "sh"], check=True, capture_output=True,
                       timeout=60)
        term = Terminal([*cli, "attach", name])
        try:
            time.sleep(0.5)  # attached
            term.send("echo typed-$((6*7))\n")
            term.expect(rb"typed-42")
            term.send("\x10\x11")
            assert term.wait() == 1, term.output
            assert b"read escape sequence" in term.output
        finally:
            term.close()
        state = subprocess.run([*cli, "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True,
                               timeout=60)
        assert state.stdout.strip() == "true"
        assert "typed-42" in subprocess.run([*cli, "logs", name], capture_output=True, text=True, timeout=60).stdout
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


def test_pods_attach_to_a_plain_container_follows_it_to_its_exit_code(pods_root: Path, name: str) -> None:
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        subprocess.run([*cli, "run", "-d", "--name", name, "busybox", "sh", "-c",
                        "sleep 1; echo out; echo err >&2; exit 3"], check=True, capture_output=True, timeout=60)
        got = subprocess.run([*cli, "attach", name], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        assert (got.returncode, got.stdout, got.stderr) == (3, "out\n", "err\n")
        stopped = subprocess.run([*cli, "attach", name], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 125 and "You cannot attach to a stopped container, start it first" in stopped.stderr
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


PROMPTING = ["busybox", "sh", "-c", "sleep 1; printf 'name? '; sleep 4; echo ok"]


@both_engines
def test_docker_attach_shows_a_prompt_before_its_line_ends(docker: DockerCLI, names: list[str], name: str) -> None:
    """A program that asks without a newline: ``docker attach`` shows the question while the
    program waits; ``logs`` gives whole lines, the question once its line ended (at the exit)."""
    names.append(name)
    docker("run", "-d", "--name", name, *PROMPTING)
    term = Terminal(["docker", "attach", "--no-stdin", name], docker.env)
    try:
        term.expect(rb"name\? ", timeout=3)  # before the line's end (4 s later)
        assert b"ok" not in term.output
    finally:
        term.close()
    docker("wait", name)
    assert docker("logs", name).stdout == "name? ok\n"


def test_pods_attach_shows_a_prompt_before_its_line_ends(pods_root: Path, name: str) -> None:
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        subprocess.run([*cli, "run", "-d", "--name", name, *PROMPTING], check=True, capture_output=True, timeout=60)
        term = Terminal([*cli, "attach", "--no-stdin", name])
        try:
            term.expect(rb"name\? ", timeout=3)
            assert b"ok" not in term.output
            term.expect(rb"ok")
            assert term.wait() == 0, term.output
        finally:
            term.close()
        logs = subprocess.run([*cli, "logs", name], capture_output=True, text=True, timeout=60)
        assert logs.stdout == "name? ok\n"
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


def test_pods_start_ai_gives_a_created_tty_container_our_terminal(pods_root: Path, name: str) -> None:
    """``pods create -it`` then ``pods start -ai``: a shell on our terminal, its exit code ours."""
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        subprocess.run([*cli, "create", "-it", "--name", name, "busybox", "sh"], check=True, capture_output=True,
                       timeout=60)
        term = Terminal([*cli, "start", "-ai", name])
        try:
            term.expect(rb"/ # ")
            term.send("echo started-$((2*3))\n")
            term.expect(rb"^started-6\r?$")
            term.send("exit 4\n")
            assert term.wait() == 4, term.output
        finally:
            term.close()
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)


def test_pods_exec_it_runs_a_shell_on_a_pty_of_the_container(pods_root: Path, name: str) -> None:
    """``pods exec -it``: a pty of the container's own devpts, our terminal's size, its exit
    code ours; ``-t`` alone prints through the pty and reads no keys."""
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root)]
    try:
        subprocess.run([*cli, "run", "-d", "--name", name, "busybox", "sleep", "600"], check=True,
                       capture_output=True, timeout=60)
        term = Terminal([*cli, "exec", "-it", name, "sh"], rows=31, cols=97)
        try:
            term.expect(rb"/ # ")
            term.send("tty; stty size\n")
            term.expect(rb"^/dev/pts/\d+\r?$")
            term.expect(rb"^31 97\r?$")
            term.send("exit 5\n")
            assert term.wait() == 5, term.output
        finally:
            term.close()
        term = Terminal([*cli, "exec", "-t", name, "sh", "-c", "test -t 1 && echo on-a-tty; exit 2"])
        try:
            term.expect(rb"on-a-tty")
            assert term.wait() == 2, term.output
        finally:
            term.close()
    finally:
        subprocess.run([*cli, "rm", "-f", name], capture_output=True, timeout=60)
