"""``pods run``'s pull of a missing image (``--pull``, ``-q``) next to the docker CLI on the same
daemon (issue 19); the registry is a real docker-registry on loopback, stopped by its PID."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import Daemon, wait_until

DockerCLI = Any  # conftest's (conftest modules are not imported by name)
REGISTRY_BIN = "/usr/bin/docker-registry"


def pods(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(daemon.root), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. ``127.0.0.1:PORT`` of a docker-registry on a temporary config and storage."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"no {REGISTRY_BIN}: apt-get install docker-registry")
    work = tmp_path_factory.mktemp("registry")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = work / "config.yml"
    config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n"
                      f"  filesystem:\n    rootdirectory: {work / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    with open(work / "registry.log", "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            assert proc.poll() is None, (work / "registry.log").read_text()
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


@pytest.fixture
def pushed(daemon: Daemon, registry: str) -> Iterator[str]:
    """busybox pushed as ``REGISTRY/h/ID/bb:1`` and untagged here, so a run must pull it."""
    ref = f"{registry}/h/{uuid.uuid4().hex[:8]}/bb:1"
    assert pods(daemon, "push", "busybox:latest", ref).returncode == 0
    assert pods(daemon, "rmi", ref).returncode == 0
    yield ref
    pods(daemon, "rmi", ref)


def shape(stderr: str) -> list[str]:
    """The pull's lines without the per-layer ones (which layers exist depends on the order)."""
    return [line for line in stderr.splitlines() if not re.fullmatch(r"[0-9a-f]{12}: .*", line)]


def test_run_pulls_a_missing_image_as_docker_does(docker: DockerCLI, daemon: Daemon, pushed: str) -> None:
    tag, path = "1", pushed.split("/", 1)[1].rsplit(":", 1)[0]
    want = docker("run", "--rm", pushed, "echo", "hi")
    docker("rmi", pushed)
    got = pods(daemon, "run", "--rm", pushed, "echo", "hi")
    assert (got.returncode, got.stdout) == (0, want.stdout) == (0, "hi\n"), got.stderr
    lines = shape(got.stderr)
    assert lines[:2] == shape(want.stderr)[:2] == [f"Unable to find image '{pushed}' locally",
                                                   f"{tag}: Pulling from {path}"]
    assert lines[-2].startswith("Digest: sha256:") and lines[-2] == shape(want.stderr)[-2]
    assert lines[-1] == shape(want.stderr)[-1] == f"Status: Downloaded newer image for {pushed}"
    # present now: no pull, nothing on stderr; --pull always says it is up to date
    again = pods(daemon, "run", "--rm", pushed, "true")
    assert (again.returncode, again.stderr) == (0, "")
    always = pods(daemon, "run", "--rm", "--pull", "always", pushed, "true")
    assert shape(always.stderr)[-1] == f"Status: Image is up to date for {pushed}", always.stderr
    assert "Unable to find" not in always.stderr
    # -q: the pull says nothing
    pods(daemon, "rmi", pushed)
    quiet = pods(daemon, "create", "-q", pushed, "true")
    assert (quiet.returncode, quiet.stderr) == (0, ""), quiet.stderr
    assert pods(daemon, "rm", quiet.stdout.strip()).returncode == 0


def test_pull_never_and_a_bad_pull_value_are_refused(docker: DockerCLI, daemon: Daemon, pushed: str) -> None:
    want = docker("run", "--rm", "--pull", "never", pushed, "true", check=False)
    got = pods(daemon, "run", "--rm", "--pull", "never", pushed, "true")
    assert (got.returncode, want.returncode) == (125, 125)
    assert f"No such image: {pushed}" in got.stderr and f"No such image: {pushed}" in want.stderr
    assert pods(daemon, "images", "-q", pushed).stdout == ""
    bad = pods(daemon, "run", "--pull", "sometimes", "busybox", "true")
    want_bad = docker("run", "--pull", "sometimes", "busybox", "true", check=False)
    assert bad.returncode == 125 and "invalid pull option: 'sometimes'" in want_bad.stderr
    assert "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\"" in bad.stderr


# == cp ==========================================================================================
MAKE_FILES = ("mkdir -p /d/sub && echo a > /d/f && echo b > /d/sub/g && chmod 750 /d/sub && "
              "chown 7:7 /d/f && ln -s /d/f /lnk")


def tree(root: Path) -> list[tuple[str, str, int]]:
    """Every entry under ``root``: its path, what it is (content or link target) and its mode."""
    out = []
    for p in sorted(root.rglob("*")):
        what = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_text() if p.is_file() else "dir"
        out.append((str(p.relative_to(root)), what, p.lstat().st_mode))
    return out


@pytest.fixture
def made_files(docker: DockerCLI) -> Iterator[str]:
    """A stopped busybox container holding /d/f, /d/sub/g and the link /lnk -> /d/f."""
    name = f"cp{uuid.uuid4().hex[:8]}"
    docker("run", "--name", name, "busybox", "sh", "-c", MAKE_FILES)
    yield name
    docker("rm", "-f", name, check=False)


@pytest.mark.parametrize("src", ["/d", "/d/.", "/d/f", "/lnk", "/d/sub/"])
@pytest.mark.parametrize("dest", ["into", "new"])
def test_cp_out_lands_what_docker_lands(docker: DockerCLI, daemon: Daemon, made_files: str, tmp_path: Path,
                                        src: str, dest: str) -> None:
    for who, run in (("docker", docker), ("pods", lambda *a: pods(daemon, *a))):
        (tmp_path / who).mkdir()
        target = tmp_path / who / "x" if dest == "new" else tmp_path / who
        got = run("cp", f"{made_files}:{src}", str(target))
        assert got.returncode == 0, got.stderr
    if src != "/d/.":
        assert tree(tmp_path / "pods") == tree(tmp_path / "docker") != []
        return
    # the contents into DEST, as docker's reference says (the docker CLI through our daemon
    # nests them as d/ today: the daemon names the archive's root d, not .)
    contents = [("f", "a\n"), ("sub", "dir"), ("sub/g", "b\n")]
    want = [("x", "dir")] + [("x/" + n, w) for n, w in contents] if dest == "new" else contents
    assert [t[:2] for t in tree(tmp_path / "pods")] == want


def test_cp_follow_link_archive_and_errors(docker: DockerCLI, daemon: Daemon, made_files: str,
                                           tmp_path: Path) -> None:
    assert pods(daemon, "cp", "-L", f"{made_files}:/lnk", str(tmp_path / "l")).returncode == 0
    assert (tmp_path / "l").read_text() == "a\n" and not (tmp_path / "l").is_symlink()
    if os.geteuid() == 0:  # -a keeps the owner; without it the files are the invoking user's
        pods(daemon, "cp", "-a", f"{made_files}:/d/f", str(tmp_path / "a"))
        pods(daemon, "cp", f"{made_files}:/d/f", str(tmp_path / "b"))
        assert ((tmp_path / "a").stat().st_uid, (tmp_path / "b").stat().st_uid) == (7, 0)
    for args, text in (([f"{made_files}:/nope", str(tmp_path)], "Could not find the file /nope in container"),
                       ([str(tmp_path / "nope"), f"{made_files}:/"], "no such file or directory"),
                       ([f"{made_files}:/d", str(tmp_path / "l")], "cannot copy a directory to a file"),
                       ([str(tmp_path), str(tmp_path)], "must specify at least one container source"),
                       ([f"{made_files}:/d", f"{made_files}:/e"], "copying between containers is not supported"),
                       ([str(tmp_path / "l"), "nosuchcontainer:/"], "No such container: nosuchcontainer")):
        got = pods(daemon, "cp", *args)
        assert got.returncode != 0 and text in got.stderr and "Traceback" not in got.stderr, (args, got.stderr)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "host"])
def test_cp_in_and_tar_streams(docker: DockerCLI, daemon: Daemon, made_files: str, tmp_path: Path,
                               remote: bool) -> None:
    def cp(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        where = ["--host", daemon.host] if remote else ["--root", str(daemon.root)]
        return subprocess.run([sys.executable, "-m", "pytest_pods.cli", *where, "cp", *args], input=input,
                              capture_output=True, timeout=120)

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "h").write_text("hello\n")
    os.chmod(tmp_path / "in" / "h", 0o640)
    assert cp(str(tmp_path / "in" / "h"), f"{made_files}:/d/").returncode == 0
    assert cp(str(tmp_path / "in"), f"{made_files}:/newdir").returncode == 0
    assert cp(str(tmp_path / "in" / "h"), f"{made_files}:/d/renamed").returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    docker("cp", f"{made_files}:/d", str(out))
    docker("cp", f"{made_files}:/newdir", str(out))
    assert (out / "d" / "h").read_text() == (out / "newdir" / "h").read_text() == "hello\n"
    assert (out / "d" / "renamed").stat().st_mode & 0o777 == 0o640
    # '-': a tar out as docker streams it, and one in
    got, want = cp(f"{made_files}:/d/sub", "-"), subprocess.run(
        ["docker", "cp", f"{made_files}:/d/sub", "-"], env=docker.env, capture_output=True, timeout=60)
    assert got.returncode == 0, got.stderr

    def names(data: bytes) -> list[str]:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            return sorted(m.name.rstrip("/") for m in tf)

    assert names(got.stdout) == names(want.stdout) == ["sub", "sub/g"]
    mine = io.BytesIO()
    with tarfile.open(fileobj=mine, mode="w") as tf:
        info = tarfile.TarInfo("sub/k")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"b\n"))
    assert cp("-", f"{made_files}:/d/sub", input=mine.getvalue()).returncode == 0
    docker("cp", f"{made_files}:/d/sub/sub/k", str(tmp_path / "k"))
    assert (tmp_path / "k").read_text() == "b\n"
    bad = cp("-", f"{made_files}:/d/f", input=want.stdout)
    assert bad.returncode == 125 and b"must be a directory" in bad.stderr
    junk = cp("-", f"{made_files}:/d", input=b"not a tar" * 100)
    assert junk.returncode == 125 and b"not a tar archive" in junk.stderr and b"Traceback" not in junk.stderr


# == logs ========================================================================================
def test_logs_since_until_tail_timestamps_as_docker(docker: DockerCLI, daemon: Daemon) -> None:
    name = f"lg{uuid.uuid4().hex[:8]}"
    docker("run", "--name", name, "busybox", "sh", "-c", "echo one; sleep 1.1; echo two >&2; sleep 1.1; echo three")
    try:
        stamped = docker("logs", "-t", name)
        got = pods(daemon, "logs", "-t", name)
        assert (got.stdout, got.stderr) == (stamped.stdout, stamped.stderr)
        first, third = (line.split()[0] for line in stamped.stdout.splitlines())
        second = stamped.stderr.split()[0]
        for args in (["--since", second], ["--until", second], ["--since", second, "--until", second],
                     ["-n", "1"], ["--tail", "0"], ["--since", "10m", "-n", "2"], ["--since", "1h", "-t"],
                     ["--since", "2000-01-01"], ["--until", first[:19]  + "Z"], ["--since", third.split(".")[0] + "Z"],
                     ["--since", "4102444800"]):
            want = docker("logs", *args, name)
            got = pods(daemon, "logs", *args, name)
            assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, want.stderr), args
        bad = pods(daemon, "logs", "--since", "yesterday", name)
        assert bad.returncode == 125 and 'failed to parse value as time or duration: "yesterday"' in bad.stderr
    finally:
        docker("rm", "-f", name, check=False)


# == help ========================================================================================
def test_help_lists_every_verb_with_a_line() -> None:
    from pytest_pods.cli.main import VERBS

    out = subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    listed = {m.group(1): m.group(2) for m in re.finditer(r"^    ([a-z]+) +(\S.*)$", out, re.M)}
    assert set(listed) == set(VERBS), set(VERBS) ^ set(listed)


# == ps ==========================================================================================
def test_ps_filters_and_formats_as_docker(docker: DockerCLI, daemon: Daemon) -> None:
    t = uuid.uuid4().hex[:8]
    up, gone = f"psup{t}", f"psgone{t}"
    docker("run", "-d", "--name", up, "--label", f"t={t}", "--label", "role=web", "busybox", "sleep", "60")
    docker("run", "--name", gone, "--label", f"t={t}", "busybox", "sh", "-c", "exit 3", check=False)
    try:
        for args in (["-a", "--format", "{{.Names}} {{.State}} {{.Image}} {{.Command}}"],
                     ["-a", "--format", "table {{.Names}}\\t{{.State}}\\t{{.Labels}}"],
                     ["-q", "-f", "status=exited"],
                     ["--format", "{{.ID}}:{{.Names}}", "-f", "label=role=web"],
                     ["-a", "--format", "{{.Names}}", "-f", "label=role", "-f", "status=running"],
                     ["-a", "--format", "{{.Names}}", "-f", f"name=psgone{t}"],
                     ["-a", "--format", "{{.Names}}", "-f", "ancestor=busybox", "-f", "status=exited"],
                     ["-a", "--no-trunc", "--format", "{{.ID}} {{.Networks}}"]):
            scoped = [*args, "-f", f"label=t={t}"]
            want, got = docker("ps", *scoped), pods(daemon, "ps", *scoped)
            assert (got.returncode, got.stdout) == (0, want.stdout), (args, got.stderr)
        # exited=CODE as docker's reference has it (our daemon's /containers/json ignores it today)
        exited = pods(daemon, "ps", "-a", "--format", "{{.Names}}", "-f", "exited=3", "-f", f"label=t={t}")
        assert exited.stdout == f"{gone}\n"
        bad = pods(daemon, "ps", "-f", "colour=red")
        assert bad.returncode == 125 and "invalid filter 'colour=red'" in bad.stderr
    finally:
        docker("rm", "-f", up, gone, check=False)


# == run flags ===================================================================================
def test_run_platform_and_cidfile(docker: DockerCLI, daemon: Daemon, tmp_path: Path) -> None:
    ok = pods(daemon, "run", "--rm", "--platform", "linux/amd64", "busybox", "echo", "ok")
    if os.uname().machine == "x86_64":
        assert (ok.returncode, ok.stdout) == (0, "ok\n"), ok.stderr
    other = pods(daemon, "run", "--rm", "--platform", "linux/s390x", "busybox", "true")
    assert other.returncode == 125 and "--platform linux/s390x: this engine runs linux/" in other.stderr
    cid = tmp_path / "cid"
    made = pods(daemon, "create", "--cidfile", str(cid), "busybox", "true")
    assert made.returncode == 0 and cid.read_text() == made.stdout.strip()
    try:
        want = docker("create", "--cidfile", str(cid), "busybox", "true", check=False)
        again = pods(daemon, "create", "--cidfile", str(cid), "busybox", "true")
        text = "container ID file found, make sure the other container isn't running or delete"
        assert want.returncode != 0 and text in want.stderr
        assert again.returncode == 125 and text in again.stderr
        assert pods(daemon, "ps", "-aq", "--no-trunc").stdout.count("\n") == \
            docker("ps", "-aq").stdout.count("\n")
    finally:
        pods(daemon, "rm", "-f", made.stdout.strip())
