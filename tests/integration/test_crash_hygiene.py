"""Crash hygiene and visible broken state (issue 14).

A process killed at any point (the builder in a RUN, a COPY, a commit or a cache write; the CLI in
create, start, rm, pull, push, commit) leaves nothing that ``pods system reap`` does not release,
and a RUN step dies with its builder by itself. A container whose state files are broken is shown
(``ps -a``, ``inspect``: status dead, the file named) and removed by ``rm -f`` and ``system prune``.

The kill loop runs on a private root, so that its host snapshot (processes, mounts, cgroups,
links, rules, files) sees only what it made, whatever else runs on the machine. Its seed comes
from ``PODS_CRASH_SEED`` (default: fixed), and a failure names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.engine import rootless
from pytest_pods.engine.linux import process_start_time
from pytest_pods.engine.locks import lease_of
from pytest_pods.engine.network.networks import root_tag
from pytest_pods.engine.runtime.cgroups import list_cgroups
from pytest_pods.engine.runtime.commit import FROZEN_MARK

REGISTRY_BIN = "/usr/bin/docker-registry"
SEED = int(os.environ.get("PODS_CRASH_SEED", "14014"))


# -- helpers --------------------------------------------------------------------------------------
def pods(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=timeout)


def pods_ok(root: Path, *args: str, timeout: float = 120) -> str:
    r = pods(root, *args, timeout=timeout)
    assert r.returncode == 0, f"pods {' '.join(args)} exited {r.returncode}: {r.stderr}"
    return r.stdout


def procs_with(marker: str) -> list[int]:
    """Live processes whose command line (its arguments joined by spaces) carries ``marker``."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if marker.encode() in (p / "cmdline").read_bytes().replace(b"\0", b" ") and process_start_time(int(p.name)):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def eventually(check: Callable[[], bool], deadline: float = 5.0) -> bool:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def cgroup_dirs(parent: str) -> list[str]:
    """Every cgroup directory of the root's parent group, in every hierarchy."""
    out = []
    base = Path("/sys/fs/cgroup")
    for ctrl in [base, *(p for p in base.iterdir() if p.is_dir() and not p.is_symlink())]:
        top = ctrl / parent
        if top.is_dir():
            out += [str(Path(d).relative_to(base)) for d, _, _ in os.walk(top)]
    return sorted(out)


def host_snapshot(client: Client, marker: str) -> dict[str, Any]:
    """What the root holds on the host: processes (its CLIs, monitors, fork servers and the
    containers' ``sleep MARKER``), mounts, cgroups, links, iptables rules, and files."""
    root = str(client.root)
    procs = sorted(set(procs_with(root)) | set(procs_with(marker)))
    mounts = sorted(line.split(" ")[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                    if root in line)
    tag = root_tag(client.root)
    names = (line.split(": ")[1].split("@")[0] for line in subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines())
    # this root's bridges and veths by name (the tag anywhere in the line would also match another
    # root's link whose MAC address or alias happens to hold those three hex digits)
    links = sorted(n for n in names if n.startswith((f"podsb{tag}", f"podsv{tag}")))
    nets = [p.name[:12] for p in (client.root / "networks").iterdir()] if (client.root / "networks").is_dir() else []
    rules = sorted(line for line in _iptables_save().splitlines() if any(f"pods:net:{n}" in line for n in nets))
    files = {
        "tmp": sorted(os.listdir(client.store.tmp)),
        "containers": sorted(os.listdir(client.runtime.dir)),
        # half-unpacked ones; the layers of images made or pulled meanwhile are intended
        "snapshots": sorted(p for p in os.listdir(client.store.snapshots) if p.startswith(".")),
        "cache": sorted(p for p in os.listdir(client.root / "build-cache") if p.startswith("."))
        if (client.root / "build-cache").is_dir() else [],
        "oci": sorted(p for p in os.listdir(client.root / "oci") if p.startswith(".")),
        "names": sorted(os.listdir(client.runtime.names)),
    }
    return {"procs": procs, "mounts": mounts, "cgroups": cgroup_dirs(client.runtime.cgroup_parent),
            "links": links, "rules": rules, "files": files}


def _iptables_save() -> str:
    if rootless.active():
        return ""  # rootless rules live in the rootless netns, released with it
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def store_consistent(client: Client, root: Path) -> list[str]:
    """What is wrong with the store: an image that cannot be inspected or run, a blob an image
    uses that is missing or not what its digest says, a blob file not named by its content."""
    wrong = []
    for img in client.store.images():
        ref = img.short_id
        r = pods(root, "inspect", "--type", "image", ref)
        if r.returncode != 0:
            wrong.append(f"inspect {ref}: {r.stderr}")
        r = pods(root, "run", "--rm", "--network", "none", ref, "true")
        if r.returncode != 0:
            wrong.append(f"run {ref}: {r.stderr}")
        for desc in [img.manifest["config"], *img.layers]:
            if not client.store.has_blob(desc["digest"]):
                wrong.append(f"{ref}: blob {desc['digest']} missing")
    for p in client.store.blobs.iterdir():
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != p.name:
            wrong.append(f"blob {p.name[:12]} holds other content (half-written?)")
    return wrong


@pytest.fixture
def private_root(own_root: Callable[[str], AbstractContextManager[Client]]) -> Iterator[Client]:
    """A root of its own, with busybox, released and deleted at the end."""
    with own_root("pods-crash-") as c:
        yield c


# -- a RUN step dies with its builder ---------------------------------------------------------------
def test_killed_build_during_run_takes_its_step_with_it_and_reap_leaves_nothing(
        private_root: Client, tmp_path: Path) -> None:
    client, root = private_root, private_root.root
    marker = str(random.randint(10_000_000, 99_999_999))
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nCOPY f /f\nRUN echo started && sleep {marker}\n")
    (tmp_path / "f").write_text("x")
    pods_ok(root, "run", "--rm", "busybox", "true")  # the steady state: the default bridge, its rules
    pods_ok(root, "system", "reap")
    before = host_snapshot(client, marker)
    proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "build", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    cid12 = ""
    for line in proc.stdout:
        if "Running in" in line:
            cid12 = line.split()[-1]
        if line.strip() == "started":
            break
    assert cid12 and eventually(lambda: procs_with(f"sleep {marker}") != []), "the RUN step did not start"
    proc.kill()
    proc.wait()
    t0 = time.monotonic()
    # by itself, without a reap: its process, its monitor, its directory and its cgroup go
    assert eventually(lambda: procs_with(f"sleep {marker}") == [], 3.0), procs_with(f"sleep {marker}")
    gone = eventually(lambda: not any(p.startswith(cid12) for p in os.listdir(client.runtime.dir)), 3.0)
    assert gone, os.listdir(client.runtime.dir)
    assert time.monotonic() - t0 < 3.0
    assert not any(cid12 in d for d in cgroup_dirs(client.runtime.cgroup_parent))
    assert not any(f"podsv{root_tag(root)}{cid12[:6]}" in link for link in host_snapshot(client, marker)["links"])
    pods_ok(root, "system", "reap")
    after = host_snapshot(client, marker)
    assert after == before


def test_reap_removes_a_step_container_whose_builder_died_before_starting_it(private_root: Client) -> None:
    """A builder killed between create and start leaves a created container with its lease: the
    reaper removes it (nobody will run or commit it)."""
    from pytest_pods.engine.runtime.lifecycle import LABEL_OWNER
    from pytest_pods.engine.runtime.spec import ContainerSpec

    client = private_root
    dead = subprocess.Popen(["true"])
    lease = f"p{dead.pid}-{process_start_time(dead.pid) or 1}"
    dead.wait()
    cid = client.runtime.create(ContainerSpec(image="busybox", command=["true"], network="none",
                                              labels={LABEL_OWNER: lease}), client.store.get_image("busybox"))
    kept = client.runtime.create(ContainerSpec(image="busybox", command=["true"], network="none"),
                                 client.store.get_image("busybox"))
    done = client.reap()
    assert any(cid[:12] in line and "builder" in line for line in done), done
    assert not (client.runtime.dir / cid).exists()
    assert (client.runtime.dir / kept).exists()
    client.runtime.remove(kept)


def test_reap_thaws_a_container_a_killed_commit_left_frozen(private_root: Client) -> None:
    if not client_has_cgroups(private_root):
        pytest.skip("no cgroup: commit does not freeze here")
    client = private_root
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, network="none")
    try:
        cg = client.runtime.cgroup(c.id)
        cg.freeze()
        (client.runtime.dir / c.id / f"{FROZEN_MARK}p1-1-").touch()  # pid 1 never has start time 1
        done = client.reap()
        assert any("thawed" in line for line in done), done
        assert client.containers.exec(c.id, ["echo", "alive"]).output == b"alive\n"
        assert not any(p.name.startswith(FROZEN_MARK) for p in (client.runtime.dir / c.id).iterdir())
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("finisher", ["reap", "rm -f by ID"])
def test_an_rm_f_killed_after_marking_its_container_is_finished_later(private_root: Client, finisher: str) -> None:
    """``rm -f`` marks the container ``removing`` and frees its name before it kills it; killed
    between the two (found by the kill loop, rootless), the container ran on, hidden from ``ps``
    and out of reach of the reaper. The reaper, or an ``rm -f`` by ID, now finishes the job."""
    from pytest_pods.engine.runtime.state import update_state

    client, root = private_root, private_root.root
    marker = str(random.randint(10_000_000, 99_999_999))
    name = f"half-rm-{marker}"
    cid = pods_ok(root, "run", "-d", "--name", name, "--network", "none", "busybox", "sleep", marker).strip()
    assert procs_with(marker)
    update_state(client.runtime.dir / cid, lambda s: s.update({"status": "removing", "remove_requested": True}))
    (client.runtime.names / name).unlink()  # where the killed rm -f stopped
    assert cid not in pods_ok(root, "ps", "-a", "-q", "--no-trunc")
    if finisher == "reap":
        assert cid[:12] in pods_ok(root, "system", "reap")
    else:
        pods_ok(root, "rm", "-f", cid)
        client.runtime.settle()
    assert procs_with(marker) == []
    assert not (client.runtime.dir / cid).exists()
    assert "No such object" in pods(root, "inspect", cid).stderr


@pytest.mark.parametrize("route", ["/images/load", "/build?t=crash/daemon:1", "/images/create?fromSrc=-"])
def test_a_daemon_killed_mid_upload_leaves_nothing_after_reap(private_root: Client, route: str) -> None:
    """The daemon stages an upload (a load, a build context, an import) in the store's tmp; killed
    mid-request, what it staged carries its lease, so the next reap frees it at once."""
    from daemon_helper import Daemon, run_dir_base

    root = private_root.root
    d = Path(tempfile.mkdtemp(prefix="pods-daemon-", dir=run_dir_base()))
    daemon = Daemon(root, d / "pods.sock", d / "daemon.log")
    daemon.start()
    try:
        before = sorted(os.listdir(private_root.store.tmp))
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(d / "pods.sock"))
            s.sendall(f"POST {route} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n"
                      f"Content-Length: {50 << 20}\r\n\r\n".encode() + os.urandom(1 << 20))
            if route == "/images/load":
                # a load stages into an unnamed file (O_TMPFILE): nothing to see, and nothing a kill
                # could leave; give the daemon the time to read the megabyte sent
                time.sleep(0.5)
            else:
                staged = eventually(lambda: sorted(os.listdir(private_root.store.tmp)) != before)
                assert staged, "the daemon staged nothing"
            assert daemon.proc is not None
            daemon.proc.kill()
            daemon.proc.wait()
        left = sorted(set(os.listdir(private_root.store.tmp)) - set(before))
        assert left or route == "/images/load", "nothing was left to reap: the test saw no staging"
        assert all(lease_of(name) is not None for name in left), left
        pods_ok(root, "system", "reap")
        assert sorted(os.listdir(private_root.store.tmp)) == before
    finally:
        daemon.stop()
        shutil.rmtree(d, ignore_errors=True)


def client_has_cgroups(client: Client) -> bool:
    return not rootless.active() or rootless.delegated_cgroup() is not None


# -- broken state is visible --------------------------------------------------------------------
def _break(state: Path, form: str) -> None:
    doc = json.loads(state.read_text())
    if form == "garbage":
        state.write_bytes(b"\x00{not json at all")
    elif form == "truncated":
        state.write_text(json.dumps(doc)[:40])
    elif form == "empty":
        state.write_text("")
    elif form == "missing":
        state.unlink()
        old = time.time() - 60  # older than any create in progress
        os.utime(state.parent, (old, old))
    elif form == "wrong-types":
        doc["pid"], doc["status"], doc["labels"] = "1234", 7, []
        state.write_text(json.dumps(doc))
    elif form == "array":
        state.write_text(json.dumps([doc]))
    else:
        raise AssertionError(form)


FORMS = ["garbage", "truncated", "empty", "missing", "wrong-types", "array"]


@pytest.mark.parametrize("form", [*FORMS, "garbage, config.json too"])
def test_broken_state_shows_in_ps_and_inspect_and_rm_f_removes_it_all(
        private_root: Client, form: str) -> None:
    client, root = private_root, private_root.root
    marker = str(random.randint(10_000_000, 99_999_999))
    name = f"broken-{uuid.uuid4().hex[:8]}"
    cid = pods_ok(root, "run", "-d", "--name", name, "busybox", "sleep", marker).strip()
    other = pods_ok(root, "run", "-d", "busybox", "sleep", "300").strip()
    assert procs_with(f"sleep {marker}")
    if form == "garbage, config.json too":  # the bundle broken as well: inspect cannot lean on it
        _break(client.runtime.dir / cid / "state.json", "garbage")
        (client.runtime.dir / cid / "config.json").write_text("{broken")
    else:
        _break(client.runtime.dir / cid / "state.json", form)
    (root / ".last-reap").touch()  # no reap at the CLI's start in between: this test is about the verbs

    ps = pods(root, "ps", "-a")
    assert ps.returncode == 0, ps.stderr
    row = next((line for line in ps.stdout.splitlines() if line.startswith(cid[:12])), None)
    assert row is not None, ps.stdout
    assert other[:12] in ps.stdout  # the healthy one is listed as before
    assert "Traceback" not in ps.stderr

    r = pods(root, "inspect", cid)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    state = json.loads(r.stdout)[0]["State"]
    assert state["Status"] == "dead"
    assert "state.json" in state["Error"]

    r = pods(root, "rm", "-f", name if form != "missing" else cid)
    assert r.returncode == 0, r.stderr
    assert eventually(lambda: procs_with(f"sleep {marker}") == []), procs_with(f"sleep {marker}")
    assert not (client.runtime.dir / cid).exists()
    assert cid not in list_cgroups(parent=client.runtime.cgroup_parent)
    assert not any(link.startswith(f"podsv{root_tag(root)}{cid[:6]}")
                   for link in host_snapshot(client, marker)["links"])
    assert cid[:12] not in pods_ok(root, "ps", "-a")
    pods_ok(root, "run", "-d", "--name", name, "busybox", "true")  # the name is free again
    pods_ok(root, "rm", "-f", name, other)


def test_ps_a_prints_dead_for_a_broken_container(private_root: Client) -> None:
    client, root = private_root, private_root.root
    cid = pods_ok(root, "create", "busybox", "true").strip()
    _break(client.runtime.dir / cid / "state.json", "garbage")
    (root / ".last-reap").touch()
    try:
        row = next(line for line in pods_ok(root, "ps", "-a").splitlines() if line.startswith(cid[:12]))
        assert "Dead" in row
    finally:
        pods_ok(root, "rm", "-f", cid)


def test_system_prune_removes_broken_containers_and_reap_leaves_them_visible(private_root: Client) -> None:
    client, root = private_root, private_root.root
    ids = [pods_ok(root, "create", "--network", "none", "busybox", "true").strip() for _ in FORMS]
    for cid, form in zip(ids, FORMS, strict=True):
        _break(client.runtime.dir / cid / "state.json", form)
    (root / ".last-reap").touch()
    reaped = pods_ok(root, "system", "reap")
    # a missing state file is what a killed create leaves: the reaper removes that one;
    # the others are no crash of ours, and stay visible until the user removes them
    assert not (client.runtime.dir / ids[FORMS.index("missing")]).exists(), reaped
    listed = pods_ok(root, "ps", "-a", "-q")
    assert sorted(listed.split()) == sorted(c[:12] for c, f in zip(ids, FORMS, strict=True) if f != "missing")
    out = pods_ok(root, "system", "prune", "-f")
    for cid in ids:
        assert not (client.runtime.dir / cid).exists(), out
    assert pods_ok(root, "ps", "-a", "-q") == ""


# -- the kill loop -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A real docker-registry on a free loopback port (as in test_registry.py), stopped by its PID."""
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip(f"{REGISTRY_BIN} is missing: apt-get install docker-registry")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    with open(tmp_path / "registry.log", "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Seen:
    """Every container ID that appears under the root while the loop runs (a killed CLI prints none)."""

    def __init__(self, d: Path) -> None:
        self.d, self.ids, self._stop = d, set[str](), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ids.update(n for n in os.listdir(self.d) if len(n) == 64)
            time.sleep(0.02)

    def stop(self) -> set[str]:
        self._stop.set()
        self._t.join()
        return self.ids


def test_kill_9_at_random_points_of_build_run_rm_pull_push_and_commit_leaves_nothing_after_reap(
        private_root: Client, registry: str, tmp_path: Path) -> None:
    client, root = private_root, private_root.root
    rng = random.Random(SEED)
    marker = str(rng.randint(10_000_000, 99_999_999))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for i in range(20):
        (ctx / f"file{i}").write_bytes(os.urandom(20_000))
    remote = f"{registry}/crash/busybox:{uuid.uuid4().hex[:8]}"
    names: list[str] = []
    tags: list[str] = []

    def build(i: int) -> list[str]:
        (ctx / "Dockerfile").write_text(
            f"FROM busybox\nCOPY . /ctx/\nRUN echo {i}-{marker} > /id && sleep 0.5\nCOPY file1 /again\n"
            f"RUN cat /id > /id2\n")
        tags.append(f"crash/built:{i}")
        return ["build", "-t", tags[-1], str(ctx)]

    def run(i: int) -> list[str]:
        names.append(f"crash-{i}-{marker}")
        publish = ["-p", "80"] if i % 3 == 0 and not rootless.active() else []
        return ["run", "-d", "--name", names[-1], *publish, "busybox", "sleep", marker]

    def rm(i: int) -> list[str]:
        pods(root, "run", "-d", "--name", f"crash-rm-{i}", "busybox", "sleep", marker)
        names.append(f"crash-rm-{i}")
        return ["rm", "-f", names[-1]]

    def pull(i: int) -> list[str]:
        pods(root, "rmi", "-f", remote)
        return ["pull", remote]

    def push(i: int) -> list[str]:
        pods(root, "tag", "busybox", remote)
        return ["push", remote]

    def commit(i: int) -> list[str]:
        pods(root, "run", "-d", "--name", f"crash-c-{i}", "busybox", "sh", "-c",
             f"echo {i} > /changed; sleep {marker}")
        names.append(f"crash-c-{i}")
        tags.append(f"crash/commit:{i}")
        return ["commit", names[-1], tags[-1]]

    ops: dict[str, Callable[[int], list[str]]] = {"build": build, "run": run, "rm": rm, "pull": pull,
                                                 "push": push, "commit": commit}
    # once each to the end: the steady state (bridge, rules, the cache, the pushed image), and
    # each operation's duration, over which its kill points spread
    pods_ok(root, "tag", "busybox", remote)
    pods_ok(root, "push", remote)
    full: dict[str, float] = {}
    for op, make in ops.items():
        args = make(1000)
        t0 = time.monotonic()
        r = pods(root, *args)
        full[op] = time.monotonic() - t0
        assert r.returncode == 0, f"{op}: {r.stderr}"
    for n in names:
        pods(root, "rm", "-f", n)
    names.clear()
    pods_ok(root, "system", "reap")
    before = host_snapshot(client, marker)
    t0 = time.monotonic()
    pods_ok(root, "ps", "-q")
    startup = time.monotonic() - t0  # the interpreter and the imports: kills before that touch nothing

    seen = _Seen(client.runtime.dir)
    log: list[str] = []
    kills = 0
    started = time.monotonic()
    i = 0
    while kills < 40 and time.monotonic() - started < 150:
        op = rng.choice(list(ops))
        args = ops[op](i)
        delay = rng.uniform(startup * 0.8, max(full[op], startup) * 1.15)
        proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(delay)
            log.append(f"{op} #{i}: ended before its kill at {delay:.2f} s")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
            log.append(f"{op} #{i}: killed at {delay:.2f} s")
        i += 1
        if rng.random() < 0.3 and names:  # rm -f now and then, as a user tidying up would
            pods(root, "rm", "-f", rng.choice(names))
    ids = seen.stop()
    where = f"(PODS_CRASH_SEED={SEED}; {kills} kills in {time.monotonic() - started:.0f} s)\n" + "\n".join(log)
    if os.environ.get("PODS_CRASH_LOG"):
        Path(os.environ["PODS_CRASH_LOG"]).write_text(where + "\n")
    assert kills >= 30, where

    for n in names:
        r = pods(root, "rm", "-f", n)
        assert r.returncode == 0 or "No such container" in r.stderr, f"rm -f {n}: {r.stderr}\n{where}"
    time.sleep(5.5)  # past the window a create or start in progress is granted
    pods_ok(root, "system", "reap")
    after = host_snapshot(client, marker)
    assert after == before, where
    text = _iptables_save()
    assert [c for c in ids if f"pods:ctr:{c[:12]}" in text] == [], where
    assert store_consistent(client, root) == [], where
    for t in tags:
        pods(root, "rmi", "-f", t)
    pods(root, "rmi", "-f", remote)
