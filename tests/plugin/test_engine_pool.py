"""Past one machine (issue 20): several engines, one pytest run, clean-up on the engine's side.

Two ``pods daemon --tcp`` (TLS, one CA) on roots of their own stand in for two hosts. The tests
check that they coexist (cleaning one leaves the other working), that ``-n 2 --pods-host A,B``
puts each worker's containers on its own engine and a shared session container once, on the
first, reached from the other engine through its published address; that ``--tx
popen//env:PODS_HOST=`` gives each worker its engine with no other setting; and that a run whose
processes are all SIGKILLed (watchdogs included) leaves nothing on either daemon once the
heartbeat timeout has passed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import make_pki, wait_until

from pytest_pods import Client
from pytest_pods.client.contract import rootless_engine
from pytest_pods.client.remote import RemoteClient
from pytest_pods.errors import NotFoundError

pytest.importorskip("xdist")
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

OWNER_LABEL = "pytest-pods.owner"
SESSION_LABEL = "pytest-pods.session"
HEARTBEAT = 3.0  # PODS_HEARTBEAT_TIMEOUT in the crash tests: short, so that the test is too


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    """One ``pods daemon --tcp`` on a root of its own, and a local Client on that root (to see
    what is left, bridges included)."""

    def __init__(self, base: Path, pki: Path) -> None:
        self.base, self.pki = base, pki
        self.root = base / "root"
        self.client = Client(self.root)
        self.client.images.bootstrap_busybox()
        self.port = _free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(self.root), "daemon", "--tcp",
             f"127.0.0.1:{self.port}", "--tlscert", str(self.pki / "server.pem"), "--tlskey",
             str(self.pki / "server-key.pem"), "--tlscacert", str(self.pki / "ca.pem"),
             "--log-file", str(self.base / "daemon.log")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            time.sleep(0.05)
        raise RuntimeError(f"pods daemon on {self.host} did not listen in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remote(self) -> RemoteClient:
        return RemoteClient(self.host)

    def left(self, label: str, value: str) -> list[str]:
        """Containers and networks on this engine whose ``label`` is ``value``."""
        out = [f"container {st['name']}" for st in self.client.runtime.list(all=True)
               if (st.get("labels") or {}).get(label) == value]
        out += [f"network {n['name']}" for n in self.client.runtime.networks.list()
                if (n.get("labels") or {}).get(label) == value]
        return out

    def release(self) -> None:
        for st in self.client.runtime.list(all=True):
            with contextlib.suppress(Exception):
                self.client.runtime.remove(st["id"], force=True)
        self.client.cleanup(prune_networks=True)


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[Engine, Engine]]:
    """Scope: module. Two TLS daemons (one CA) on roots of their own; PODS_CERT_PATH is set for
    this process and the inner sessions."""
    pki = Path(tempfile.mkdtemp(prefix="pods-pool-pki-"))
    certs = make_pki(pki)
    bases = [Path(tempfile.mkdtemp(prefix=f"pods-pool-{n}-", dir="/var/tmp")) for n in "ab"]
    made: list[Engine] = []
    old = os.environ.get("PODS_CERT_PATH")
    os.environ["PODS_CERT_PATH"] = str(certs)
    try:
        for base in bases:
            made.append(Engine(base, pki))
            made[-1].start()
        yield made[0], made[1]
    finally:
        for e in made:
            e.stop()
            e.release()
        for base in bases:
            shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(pki, ignore_errors=True)
        if old is None:
            os.environ.pop("PODS_CERT_PATH", None)
        else:
            os.environ["PODS_CERT_PATH"] = old


def _get(addr: tuple[str, int]) -> bytes:
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


HTTPD = ["sh", "-c", "echo served-by-$NAME > /www/index.html && exec httpd -f -p 8080 -h /www"]


def _serve(rc: RemoteClient, name: str) -> Any:
    ctr = rc.containers.run("busybox:latest", ["sh", "-c", "mkdir /www && " + HTTPD[2]], detach=True,
                            environment={"NAME": name}, ports=["8080/tcp"], labels={"pool-test": name})
    wait_until(lambda: _try_get(ctr.address(8080)), 20, f"{name} serving")
    return ctr


def _try_get(addr: tuple[str, int]) -> bytes | None:
    try:
        return _get(addr) or None
    except OSError:
        return None


def _links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ": pods" in line}


def test_two_daemons_coexist_and_cleaning_one_leaves_the_other_working(engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    ra, rb = a.remote(), b.remote()
    ca, cb = _serve(ra, "a"), _serve(rb, "b")
    try:
        links = _links()
        bridge_a = a.client.networks.get("bridge")
        bridge_b = b.client.networks.get("bridge")
        # each root has its own default bridge (name and subnet), so neither can take the other's
        assert bridge_a["Id"] != bridge_b["Id"]
        assert bridge_a["IPAM"]["Config"][0]["Subnet"] != bridge_b["IPAM"]["Config"][0]["Subnet"]
        names = [n["Options"]["com.docker.network.bridge.name"] for n in (bridge_a, bridge_b)]
        assert names[0] != names[1]
        if not rootless_engine():  # rootless, the bridges are in each user's rootless network namespace
            assert set(names) <= links, links
        # stop A's container, clean A up (system prune, the reaper's cleanup, its daemon's end)
        ca.remove(force=True)
        subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(a.root), "system", "prune", "-f"],
                       check=True, capture_output=True)
        a.client.cleanup()
        a.stop()
        # B's container, bridge and published port (its rules) still work
        assert b"served-by-b" in _get(cb.address(8080))
        assert cb.status == "running"
        assert b.client.networks.get("bridge")["Id"] == bridge_b["Id"]
        if not rootless_engine():
            assert names[1] in _links() and names[0] not in _links()
        out = cb.exec(["wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"])
        assert b"served-by-b" in out.output
    finally:
        with contextlib.suppress(NotFoundError):
            cb.remove(force=True)
        if a.proc is None:
            a.start()


INNER = '''
import json, os, socket
from pytest_pods import container, network
from pytest_pods.client.remote import RemoteClient
from pytest_pods.errors import NotFoundError

POOL = os.environ["POOL"].split(",")
OUT = os.environ["OUT"]

shared_srv = container(image="busybox:latest", scope="session", ports=[8080], wait=8080,
                       command=["sh", "-c", "mkdir /www && echo shared > /www/index.html && exec httpd -f -p 8080 -h /www"])
net = network()
mine = container(image="busybox:latest", command=["sleep", "300"], network=net)
user = container(image="busybox:latest", command=["sleep", "300"],
                 environment={"SRV": "{shared_srv.published[8080]}"})
bad = container(image="busybox:latest", command=["sleep", "300"], environment={"SRV": "{shared_srv.ip}"})


def _expected():
    w = os.environ["PYTEST_XDIST_WORKER"]
    return POOL[int(w[2:]) % len(POOL)]


def _record(**kw):
    with open(OUT, "a") as f:
        f.write(json.dumps(dict(kw, worker=os.environ["PYTEST_XDIST_WORKER"])) + "\\n")


def test_placed(mine, pods):
    here = _expected()
    RemoteClient(here).containers.get(mine.id)  # on this worker's engine
    for other in POOL:
        if other != here:
            try:
                RemoteClient(other).containers.get(mine.id)
                raise AssertionError(f"{mine.name} is on {other} too")
            except NotFoundError:
                pass
    _record(test="placed", engine=here, container=mine.id)


def test_shared(shared_srv, user):
    host, port = shared_srv.address(8080)
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET /index.html HTTP/1.0\\r\\n\\r\\n")
        assert b"shared" in s.recv(4096) + s.recv(4096)
    seen = user.exec(["sh", "-c", "echo $SRV"]).output.decode().strip()
    assert seen == f"{host}:{port}"
    RemoteClient(POOL[0]).containers.get(shared_srv.id)  # on the home engine
    _record(test="shared", shared=shared_srv.id, engine=_expected(), user=user.id)


def test_bad_reference(bad):
    _record(test="bad", engine=_expected())
'''


def _inner_env(pool: list[str], out: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, POOL=",".join(pool), OUT=str(out), **extra)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_TESTRUNUID", None)
    return env


def _records(out: Path) -> list[dict[str, str]]:
    import json

    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def _run(pytester: pytest.Pytester, args: list[str], env: dict[str, str],
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args],
                          cwd=pytester.path, env=env, capture_output=True, text=True, timeout=timeout)


def _sid(output: str) -> str:
    import re

    m = re.search(r"^pods: root .*, session (\w+),", output, re.M)
    assert m, output
    return m.group(1)


def test_workers_spread_over_the_pool_share_one_container(engines: tuple[Engine, Engine],
                                                          pytester: pytest.Pytester) -> None:
    a, b = engines
    pytester.makepyfile(test_inner=INNER)
    out = pytester.path / "records.jsonl"
    res = _run(pytester, ["-n", "2", "--dist", "each", f"--pods-host={a.host},{b.host}",
                          f"--pods-root={pytester.path / 'state'}"], _inner_env([a.host, b.host], out))
    text = res.stdout + res.stderr
    sid = _sid(text)
    recs = _records(out)
    placed = {r["worker"]: r["engine"] for r in recs if r["test"] == "placed"}
    assert placed == {"gw0": a.host, "gw1": b.host}, text
    shared = {r["shared"] for r in recs if r["test"] == "shared"}
    assert len(shared) == 1 and len([r for r in recs if r["test"] == "shared"]) == 2, text
    # the reference across engines: gw0's is on the home engine (fine), gw1's fails naming both
    assert [r["engine"] for r in recs if r["test"] == "bad"] == [a.host], text
    assert "5 passed, 1 error" in text, text
    assert f"runs on engine {a.host}, 'bad' on engine {b.host}" in text, text
    assert f"engine pool {a.host}, {b.host}" in text
    # the run's end: nothing of it on either engine (the shared one removed by the controller)
    assert a.left(SESSION_LABEL, sid) == [] and b.left(SESSION_LABEL, sid) == []


def test_tx_env_gives_each_worker_its_engine(engines: tuple[Engine, Engine], pytester: pytest.Pytester) -> None:
    a, b = engines
    pytester.makepyfile(test_inner=INNER)
    out = pytester.path / "records.jsonl"
    env = _inner_env([a.host, b.host], out)
    env.pop("PODS_HOST", None)
    # execnet cuts a spec at '//': the engine is written tcp:HOST:PORT there
    tx = [f"popen//env:PODS_HOST={e.host.replace('tcp://', 'tcp:')}" for e in (a, b)]
    res = _run(pytester, ["--tx", tx[0], "--tx", tx[1],
                          "--dist", "each", "-k", "placed or shared", f"--pods-root={pytester.path / 'state'}"], env)
    text = res.stdout + res.stderr
    recs = _records(out)
    assert {r["worker"]: r["engine"] for r in recs if r["test"] == "placed"} == {"gw0": a.host, "gw1": b.host}, text
    assert len({r["shared"] for r in recs if r["test"] == "shared"}) == 1, text
    assert "4 passed" in text, text
    # the controller (started with --tx, no -n) owned the shared container and removed it
    for e in (a, b):
        assert [c for c in e.client.runtime.list(all=True) if "-shared-" in c["name"]] == [], text


CRASH = '''
import os, time
from pytest_pods import container

shared_srv = container(image="busybox:latest", scope="session", command=["sleep", "300"])
mine = container(image="busybox:latest", command=["sleep", "300"])


def test_hang(shared_srv, mine):
    open(os.path.join(os.environ["OUT"], "ready-" + os.environ["PYTEST_XDIST_WORKER"]), "w").close()
    time.sleep(300)
'''


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
    return out


def _watchdogs_of(pids: set[int]) -> list[int]:
    """The watchdogs of these pytest processes: ``-m pytest_pods.watchdog ROOT HOST:PID-START``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"pytest_pods.watchdog" in argv and len(argv) > 4:
                    owner = argv[4].decode().rpartition(":")[2]
                    if int(owner.partition("-")[0]) in pids:
                        out.append(int(entry))
    return out


def test_a_killed_run_leaves_nothing_after_the_heartbeat_timeout(engines: tuple[Engine, Engine],
                                                                  pytester: pytest.Pytester) -> None:
    a, b = engines
    pytester.makepyfile(test_crash=CRASH)
    env = _inner_env([a.host, b.host], pytester.path / "unused")
    env.update(OUT=str(pytester.path), PODS_HEARTBEAT_TIMEOUT=str(HEARTBEAT))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "each",
                             f"--pods-host={a.host},{b.host}", f"--pods-root={pytester.path / 'state'}"],
                            cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: all((pytester.path / f"ready-gw{n}").exists() for n in (0, 1)) or proc.poll() is not None,
                   60, "both workers in their test")
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        workers = _children(proc.pid)
        pytests = {proc.pid, *workers}
        dogs = _watchdogs_of(pytests)
        assert len(dogs) == 3, (dogs, pytests)  # the controller's and one per worker
        made = {e.host: [c["name"] for c in e.client.runtime.list(all=True) if OWNER_LABEL in (c.get("labels") or {})
                         and (c.get("labels") or {})[OWNER_LABEL].rpartition(":")[2].partition("-")[0]
                         in {str(p) for p in pytests}] for e in (a, b)}
        assert made[a.host] and made[b.host], made
        for pid in [*dogs, *workers, proc.pid]:  # the watchdogs first: nobody on this side cleans up
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        time.sleep(1)
        still = {h: [n for n in names if _exists(e, n)] for (h, names), e in zip(made.items(), (a, b), strict=True)}
        assert still[a.host] and still[b.host], "removed before the heartbeat timeout: not by the engine"

        def gone() -> bool:
            return not any(_exists(e, n) for (_h, names), e in zip(made.items(), (a, b), strict=True) for n in names)

        wait_until(gone, HEARTBEAT + 5, "the engines' reapers")
        took = time.monotonic() - killed
        print(f"heartbeat {HEARTBEAT:g} s: everything gone {took:.1f} s after the kill")
        assert took < HEARTBEAT + 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _exists(e: Engine, name: str) -> bool:
    return any(c["name"] == name for c in e.client.runtime.list(all=True))


def test_three_engines_with_a_real_dockerd(engines: tuple[Engine, Engine], reference_docker: Any,
                                          pytester: pytest.Pytester) -> None:
    """A third host: Debian's dockerd. Its worker's containers are on it, the shared container
    (on the first engine) is reached from it by its published address; it has no Ryuk image,
    and the header says what happens instead."""
    a, b = engines
    d = reference_docker.host
    before = set(reference_docker.docker("ps", "-aq").stdout.split())  # the shared dockerd: other tests' things
    pytester.makepyfile(test_inner=INNER)
    out = pytester.path / "records.jsonl"
    res = _run(pytester, ["-n", "3", "--dist", "each", f"--pods-host={a.host},{b.host},{d}",
                          f"--pods-root={pytester.path / 'state'}"], _inner_env([a.host, b.host, d], out))
    text = res.stdout + res.stderr
    recs = _records(out)
    assert {r["worker"]: r["engine"] for r in recs if r["test"] == "placed"} == {"gw0": a.host, "gw1": b.host,
                                                                                 "gw2": d}, text
    assert len({r["shared"] for r in recs if r["test"] == "shared"}) == 1, text
    assert len([r for r in recs if r["test"] == "shared"]) == 3, text
    assert "7 passed, 2 errors" in text, text
    assert f"pods: no Ryuk on {d}" in text and "removed by the next session's sweep" in text, text
    assert "no Ryuk on tcp://" not in text  # our daemons keep a heartbeat
    assert set(reference_docker.docker("ps", "-aq").stdout.split()) <= before, "left on dockerd"


KILLED_ON_DOCKERD = '''
import os, time
from pytest_pods import container

box = container(image="busybox:latest", command=["sleep", "300"])


def test_hang(box):
    open(os.path.join(os.environ["OUT"], "ready"), "w").close()
    time.sleep(300)
'''


def test_without_ryuk_the_next_session_sweeps_what_a_killed_one_left(reference_docker: Any,
                                                                     pytester: pytest.Pytester) -> None:
    d = reference_docker.host
    before = set(reference_docker.docker("ps", "-aq").stdout.split())  # the shared dockerd: other tests' things
    pytester.makepyfile(test_killed=KILLED_ON_DOCKERD, test_next="def test_next(pods):\n    pass\n")
    env = _inner_env([d], pytester.path / "unused")
    env.update(OUT=str(pytester.path))
    state = f"--pods-root={pytester.path / 'state'}"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--pods-host={d}", state,
                             "test_killed.py"], cwd=pytester.path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (pytester.path / "ready").exists() or proc.poll() is not None, 60, "the test running")
        assert proc.poll() is None
        for pid in [*_watchdogs_of({proc.pid}), proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.wait()
        time.sleep(2)
        left = reference_docker.docker("ps", "-aq", "--filter", f"label={OWNER_LABEL}").stdout.split()
        assert len(left) == 1, "the killed session's container should still be there (no Ryuk, no watchdog)"
        res = _run(pytester, [f"--pods-host={d}", state, "test_next.py"], env)
        assert "1 passed" in res.stdout, res.stdout
        assert set(reference_docker.docker("ps", "-aq").stdout.split()) <= before, "the next session did not sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


REGISTRY_BIN = Path("/usr/bin/docker-registry")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Scope: function. ``127.0.0.1:PORT`` of a docker-registry (Debian's) of this test."""
    if not REGISTRY_BIN.exists():
        pytest.skip(f"no {REGISTRY_BIN} (Debian's docker-registry)")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([str(REGISTRY_BIN), "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(up, 20, "docker-registry listening")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


BUILT = '''
import json, os
from pytest_pods import container, image

img = image(path="ctx", tag="pool-built:latest")
box = container(image=img, command=["sleep", "300"])


def test_built(img, box, pods):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"worker": os.environ["PYTEST_XDIST_WORKER"], "id": img.id, "ref": img.ref,
                            "built_at": box.exec(["cat", "/built-at"]).output.decode().strip()}) + "\\n")
'''


def test_an_image_is_built_once_and_pulled_by_digest_on_the_other_engine(engines: tuple[Engine, Engine],
                                                                          registry: str,
                                                                          pytester: pytest.Pytester) -> None:
    a, b = engines
    ctx = pytester.path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox:latest\nARG NONCE={os.urandom(8).hex()}\n"
                                    "RUN date +%s%N > /built-at\n")
    pytester.makepyfile(test_built=BUILT)
    out = pytester.path / "records.jsonl"
    res = _run(pytester, ["-n", "2", "--dist", "each", f"--pods-host={a.host},{b.host}",
                          f"--pods-pool-registry={registry}/pods", f"--pods-root={pytester.path / 'state'}"],
               _inner_env([a.host, b.host], out))
    text = res.stdout + res.stderr
    assert "2 passed" in text, text
    recs = _records(out)
    assert {r["worker"] for r in recs} == {"gw0", "gw1"}, text
    assert len({r["built_at"] for r in recs}) == 1, recs  # one build
    assert len({r["id"] for r in recs}) == 1, recs  # the same image ID on both engines
    image_id = recs[0]["id"]
    for e in (a, b):
        got = e.remote().images.get("pool-built:latest")
        assert got.id == image_id
    digests = {d for e in (a, b) for d in [e.remote().images.inspect("pool-built:latest").get("RepoDigests") or []]
               for d in d}
    assert any(d.startswith(f"{registry}/pods/pods-build-") for d in digests), digests


def test_the_ryuk_stand_in_removes_only_what_matches_every_filter_of_a_line(engines: tuple[Engine, Engine]) -> None:
    """Ryuk reads a line as a query string whose filters all hold: the heartbeat's owner AND
    session (a later in-process session with the same owner key keeps its containers)."""
    a, _ = engines
    rc = a.remote()
    tag = os.urandom(4).hex()
    both = rc.containers.run("busybox:latest", ["sleep", "300"], detach=True, network="none",
                             labels={"t.owner": tag, "t.session": "1"})
    other = rc.containers.run("busybox:latest", ["sleep", "300"], detach=True, network="none",
                              labels={"t.owner": tag, "t.session": "2"})
    ryuk = rc.containers.create("testcontainers/ryuk:0.11.0", environment={"RYUK_RECONNECTION_TIMEOUT": "1s"},
                                ports=["8080/tcp"])
    try:
        ryuk.start()
        with socket.create_connection(ryuk.address(8080), timeout=5) as s:
            s.sendall(f"label=t.owner={tag}&label=t.session=1\n".encode())
            assert s.recv(16).startswith(b"ACK")
        wait_until(lambda: both.id not in {c.id for c in rc.containers.list(all=True)}, 10, "the stand-in's prune")
        assert other.status == "running"
    finally:
        for c in (both, other):
            with contextlib.suppress(NotFoundError):
                c.remove(force=True)
