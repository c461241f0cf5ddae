"""A reference dockerd for the tests: Debian's ``docker.io``, started once per test session.

Where Docker defines a behaviour, a test runs the same input through ``pods daemon`` and through a
real dockerd and asserts the same outcome: a difference then fails on our side only, and a test
that fails on dockerd was wrong about Docker. The fixture ``reference_docker`` (tests/conftest.py)
gives a :class:`ReferenceDocker`; ``reference_docker.host`` is its ``unix://`` URL (for
``DOCKER_HOST``, docker-py's ``base_url`` or ``--pods-host``), ``reference_docker.env`` an
environment for a docker client, ``reference_docker.docker("ps", "-a")`` runs the docker CLI on it.
Its images: busybox:latest and debian:bookworm, loaded from the base-images archive the Makefile
saves (``pods save``; no Docker Hub).

In tests/compat, the client fixtures (``docker_env``, ``docker``, ``docker_client``, ``labels``,
``names``) talk to the fixture ``docker_engine``: ``pods daemon`` by default; a test written from a
client's side that asserts Docker's behaviour is marked to run on both daemons::

    from dockerd_helper import both_engines

    @both_engines
    def test_x(docker, docker_client): ...   # test_x[pods], then test_x[dockerd]

so that a difference fails as ``[pods]`` only (``[dockerd]`` failing means the test is wrong about
Docker). Such a test uses ``docker_engine.host``, never ``daemon`` (that is always ours).

It runs only as root where ``dockerd`` is installed; elsewhere the fixture skips with the reason.

What it starts is its own and leaves the host as it found it: a containerd and a dockerd with their
own data and exec roots, socket and pid files, ``--iptables=false`` (dockerd touches neither the
host's FORWARD policy nor its NAT table; our engine shares them) and ``--ip-forward=false``,
containers on a bridge it makes (``podsref…``, a /24 of 10.213.0.0/16, apart from our engine's
10.89.0.0/16; user networks from 10.214.0.0/16) with one MASQUERADE rule of its own for builds'
downloads (where the host forwards already), a cgroup parent of its own, published ports through
dockerd's userland proxy.
At the end: every container removed, dockerd and containerd stopped by their pids, its links,
mounts, cgroups and directories removed. A session that crashed leaves its state directory under
``/run/pods-refdocker``; the next start cleans every one whose lock no live session holds, killing
only pids whose command line is that dockerd or containerd with that state directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STATE_BASE = Path("/run/pods-refdocker")
"""One directory per session (short: it holds the unix sockets); ``lock`` is held while it lives."""
DATA_BASE = Path("/var/tmp")
BRIDGE_POOL = ipaddress.IPv4Network("10.213.0.0/16")
USER_POOL = "base=10.214.0.0/16,size=24"
BASE_IMAGES_TAR = Path(__file__).resolve().parent.parent / ".cache" / "base-images.tar"
DOCKER_CLI = "docker"
REGISTRY_BIN = "/usr/bin/docker-registry"
#: the service images sessions on the reference dockerd use (the plugin's own two and the catalogue
#: services whose tests run on every engine kind)
DOCKERD_SERVICES = ("postgres", "redis", "nginx", "registry")


ENGINES = ("pods", "dockerd")
both_engines = pytest.mark.parametrize("docker_engine", ENGINES, indirect=True)
"""Run a compat test on ``pods daemon`` and on the reference dockerd (see the module's docstring)."""


def both_engines_but_pods_xfails(reason: str) -> pytest.MarkDecorator:
    """``@both_engines`` where ours is known to differ from dockerd: ``[pods]`` is a strict xfail
    with ``reason`` (name the file and function to fix), so the fix shows as an XPASS to unmark."""
    return pytest.mark.parametrize(
        "docker_engine", [pytest.param("pods", marks=pytest.mark.xfail(strict=True, reason=reason)), "dockerd"],
        indirect=True)


def privileged_unavailable() -> str | None:
    """Why dockerd's ``--privileged`` fails here, or None: it asks runc for every capability the
    kernel knows, and runc cannot grant one this process's bounding set lacks (a container host)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            missing = [bit for bit in range(last + 1) if not int(line.split()[1], 16) >> bit & 1]
            if missing:
                return (f"this host's capability bounding set lacks cap number(s) {missing}: dockerd's --privileged "
                        "asks runc for all of them and the start fails ('unable to apply caps')")
    return None


def left_by_label(host: str, key: str, value: str) -> list[str]:
    """Containers and networks on the daemon at ``host`` labelled ``key=value`` (what a plugin
    session left), as ``container NAME (STATUS)`` and ``network NAME``."""
    env = dict(os.environ, DOCKER_HOST=host)
    env.pop("DOCKER_CONTEXT", None)

    def ls(*args: str) -> list[str]:
        proc = subprocess.run([DOCKER_CLI, *args, "--filter", f"label={key}={value}"], env=env, capture_output=True,
                              text=True, timeout=60, check=True)
        return proc.stdout.splitlines()

    return ([f"container {line}" for line in ls("ps", "-a", "--format", "{{.Names}} ({{.State}})")]
            + [f"network {line}" for line in ls("network", "ls", "--format", "{{.Name}}")])


def unavailable() -> str | None:
    """None where a reference dockerd can start here, else why not."""
    from pytest_pods.engine import rootless

    if os.geteuid() != 0 or rootless.active():  # (a rootless session's process is "root" in its user namespace)
        return "the reference dockerd runs only as root (Debian's dockerd is not rootless here)"
    for tool in ("dockerd", "containerd", DOCKER_CLI):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (Debian's docker.io package provides the reference dockerd)"
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _kill_if(pid: int, must_contain: str, wait: float = 20) -> None:
    """SIGTERM, then SIGKILL, ``pid`` if its command line still names ``must_contain``."""
    if not any(must_contain in arg for arg in _cmdline(pid)):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not any(must_contain in arg for arg in _cmdline(pid)):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _cgroup_dirs(parent: str) -> list[Path]:
    """The cgroup directories named ``parent`` under every mounted hierarchy (v1 and v2)."""
    found = []
    for mnt in Path("/proc/self/mounts").read_text().splitlines():
        fields = mnt.split()
        if len(fields) > 2 and fields[2] in ("cgroup", "cgroup2"):
            d = Path(fields[1]) / parent
            if d.is_dir():
                found.append(d)
    return found


def _remove_cgroups(parent: str) -> None:
    """Kill what is left in the cgroup ``parent`` (containers of a crashed dockerd) and remove it."""
    for top in _cgroup_dirs(parent):
        for d in [*sorted(top.rglob("*"), key=lambda p: -len(p.parts)), top]:
            if not d.is_dir():
                continue
            procs = d / "cgroup.procs"
            with contextlib.suppress(OSError):
                for line in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(line), signal.SIGKILL)
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _unmount_under(*dirs: Path) -> None:
    """Lazily unmount every mount at or below ``dirs`` (deepest first)."""
    prefixes = [str(d) for d in dirs]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


class ReferenceDocker:
    """One dockerd (and its containerd) of this session; see the module's docstring."""

    def __init__(self) -> None:
        self.sid = uuid.uuid4().hex[:6]
        self.state = STATE_BASE / self.sid
        self.data = DATA_BASE / f"pods-refdocker-{self.sid}"
        self.bridge = f"podsref{self.sid}"
        self.cgroup_parent = f"pods-refdocker-{self.sid}"
        self.sock = self.state / "docker.sock"
        self.cfg = self.state / "client-config"
        self._lock_fd: int | None = None
        self.dockerd: subprocess.Popen[bytes] | None = None
        self.containerd: subprocess.Popen[bytes] | None = None
        self.registry: subprocess.Popen[bytes] | None = None
        self._registry_host: str | None = None
        self._registry_port = 0

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        """An environment for a docker client on this dockerd (a client config of its own)."""
        env = dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.cfg))
        env.pop("DOCKER_CONTEXT", None)
        return env

    def docker(self, *args: str, check: bool = True, input: str | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI on this dockerd.

        :raises AssertionError: with ``check``, when it exits non-zero (with its output).
        """
        proc = subprocess.run([DOCKER_CLI, *args], env=self.env, capture_output=True, text=True, input=input,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} (reference dockerd) exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    # -- start ---------------------------------------------------------------------------------
    def start(self, images: Path | None = BASE_IMAGES_TAR, timeout: float = 60) -> None:
        """Start containerd and dockerd, then load ``images`` (a ``docker save`` archive).

        :raises RuntimeError: if either does not come up (with the end of its log).
        """
        clean_stale()
        STATE_BASE.mkdir(mode=0o700, exist_ok=True)
        self.state.mkdir(mode=0o700)
        self._lock_fd = os.open(self.state / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        (self.state / "data-root").write_text(str(self.data))
        self.data.mkdir(mode=0o711)
        self.cfg.mkdir()
        self._make_bridge()
        self._start_containerd(timeout)
        self._start_dockerd(timeout)
        if images is not None:
            if not images.is_file():
                raise RuntimeError(f"no base images at {images} (`make test-images` saves them)")
            self.docker("load", "-q", "-i", str(images))

    def _make_bridge(self) -> None:
        with open(STATE_BASE / "bridge.lock", "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)  # two sessions picking at once take different subnets
            used = set()
            for line in _ip("-o", "-4", "addr", "show").stdout.splitlines():
                addr = line.split()[3]
                used.add(ipaddress.IPv4Interface(addr).network)
            for net in BRIDGE_POOL.subnets(new_prefix=24):
                if not any(net.overlaps(u) for u in used):
                    break
            else:
                raise RuntimeError(f"no free /24 left in {BRIDGE_POOL} for the reference dockerd's bridge")
            (self.state / "bridge").write_text(self.bridge)
            for args in (("link", "add", self.bridge, "type", "bridge"),
                         ("addr", "add", f"{net[1]}/24", "dev", self.bridge),
                         ("link", "set", self.bridge, "up")):
                proc = _ip(*args)
                if proc.returncode != 0:
                    raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
        self._add_nat(net)

    def _add_nat(self, net: ipaddress.IPv4Network) -> None:
        """Outbound NAT for the default bridge (``RUN apt-get`` in builds): one MASQUERADE rule of
        ours, with a comment naming this session, recorded to be removed (dockerd adds none with
        ``--iptables=false``). Only where the host forwards already (our engine turns that on);
        this never changes the host's sysctls."""
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1" or shutil.which("iptables") is None:
            return
        tag = ["-m", "comment", "--comment", f"pods-refdocker:{self.sid}", "-j", "MASQUERADE"]
        user_pool = USER_POOL.split(",")[0].removeprefix("base=")
        rules = [["POSTROUTING", "-s", str(net), "!", "-o", self.bridge, *tag],
                 # user networks too: their embedded DNS forwards what it does not know to the host's
                 # resolver from the container's netns (without NAT: 5 s timeouts, twice)
                 ["POSTROUTING", "-s", user_pool, "!", "-d", user_pool, *tag]]
        (self.state / "nat-rules").write_text(json.dumps(rules))
        for rule in rules:
            proc = subprocess.run(["iptables", "-w", "-t", "nat", "-A", *rule], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"iptables -t nat -A {' '.join(rule)}: {proc.stderr.strip()}")

    def _start_containerd(self, timeout: float) -> None:
        root = self.data / "containerd"
        cstate = self.state / "containerd"
        config = self.state / "containerd.toml"
        config.write_text(
            "version = 2\n"
            f"root = {json.dumps(str(root))}\n"
            f"state = {json.dumps(str(cstate))}\n"
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f"  address = {json.dumps(str(self.state / 'containerd.sock'))}\n"
            "[ttrpc]\n"
            f"  address = {json.dumps(str(self.state / 'containerd.sock.ttrpc'))}\n"
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n')
        with open(self.state / "containerd.log", "wb") as log:
            self.containerd = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log,
                                               stdin=subprocess.DEVNULL, start_new_session=True)
        (self.state / "containerd.pid").write_text(str(self.containerd.pid))
        self._wait_for_socket(self.state / "containerd.sock", self.containerd, "containerd", timeout)

    def _start_dockerd(self, timeout: float) -> None:
        with open(self.state / "dockerd.log", "wb") as log:
            self.dockerd = subprocess.Popen(
                ["dockerd", "--data-root", str(self.data / "docker"), "--exec-root", str(self.state / "exec"),
                 "--pidfile", str(self.state / "dockerd.pid"), "-H", self.host,
                 "--containerd", str(self.state / "containerd.sock"), "--containerd-namespace", f"pods-ref-{self.sid}",
                 "--containerd-plugins-namespace", f"pods-ref-{self.sid}-plugins",
                 "--iptables=false", "--ip-forward=false", "--ip-masq=false", f"--bridge={self.bridge}",
                 "--userland-proxy=true", "--cgroup-parent", self.cgroup_parent, "--exec-opt",
                 "native.cgroupdriver=cgroupfs", "--default-address-pool", USER_POOL, "--storage-driver", "overlay2",
                 "--config-file", str(self._daemon_json())],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        (self.state / "dockerd.popen.pid").write_text(str(self.dockerd.pid))
        self._wait_for_socket(self.sock, self.dockerd, "dockerd", timeout, ping=True)

    def _daemon_json(self) -> Path:
        path = self.state / "daemon.json"
        path.write_text("{}\n")  # not /etc/docker/daemon.json: the host's settings stay out of the tests
        return path

    def _wait_for_socket(self, sock: Path, proc: subprocess.Popen[bytes], what: str, timeout: float,
                         ping: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited {proc.returncode}:\n{self._log_tail(what)}")
            if sock.exists():
                if not ping:
                    return
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(str(sock))
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not come up within {timeout:g} s:\n{self._log_tail(what)}")

    def _log_tail(self, what: str) -> str:
        try:
            return "\n".join((self.state / f"{what}.log").read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    # -- the plugin's service images -----------------------------------------------------------
    def service_registry(self, client: Any, timeout: float = 30) -> str:
        """``127.0.0.1:PORT`` of a docker-registry (Debian's) holding our engine's builds of the
        plugin's service images (``client`` builds them from the recipes, a cache hit where it
        has): for ``--pods-registry``, so that a session on this dockerd pulls them. dockerd does
        not build the recipes itself: Debian's 20.10 classic builder refuses their ``HEALTHCHECK
        --start-interval`` (Docker 25 has it), and each session's fresh data root would download
        the packages again. Started once; stopped by stop().

        :raises RuntimeError: if docker-registry is missing or does not come up.
        """
        if self._registry_host is not None:
            return self._registry_host
        from pytest_pods.plugin.services import RECIPES, SERVICE_IMAGES

        if not Path(REGISTRY_BIN).exists():
            raise RuntimeError(f"no {REGISTRY_BIN} (Debian's docker-registry) for the service images")
        if self.registry is None:  # once: a failed build or push below is retried on the same registry
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            config = self.state / "registry.yml"
            config.write_text("version: 0.1\nlog:\n  level: warn\nstorage:\n"
                              f"  filesystem:\n    rootdirectory: {self.data / 'registry'}\n"
                              f"http:\n  addr: 127.0.0.1:{port}\n")
            with open(self.state / "registry.log", "wb") as log:
                self.registry = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                                                 stdin=subprocess.DEVNULL, start_new_session=True)
            (self.state / "registry.pid").write_text(str(self.registry.pid))
            self._registry_port = port
        port = self._registry_port
        host = f"127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if self.registry.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.registry.returncode}:\n{self._log_tail('registry')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not listen on {host} within {timeout:g} s")
            time.sleep(0.05)
        for service, tag in SERVICE_IMAGES.items():
            if service not in DOCKERD_SERVICES:
                continue  # the catalogue's other tests run on our engine only (chromium alone is ~1 GB)
            client.images.build(RECIPES / service, tag=tag)
            client.images.push(tag, f"{host}/{tag}", insecure=True)
        self._registry_host = host
        return host

    # -- stop ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Remove every container and network it holds, stop dockerd and containerd, remove the rest."""
        if self.dockerd is not None and self.dockerd.poll() is None:
            ids = self.docker("ps", "-aq", check=False, timeout=60).stdout.split()
            if ids:
                self.docker("rm", "-f", "-v", *ids, check=False, timeout=120)
            self.docker("network", "prune", "-f", check=False, timeout=60)
        _clean(self.state)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        for proc in (self.dockerd, self.containerd, self.registry):
            if proc is not None:
                with contextlib.suppress(ChildProcessError):
                    proc.wait(timeout=1)


def _clean(state: Path) -> None:
    """Everything a session's state directory records: processes (by pid, if still theirs), the
    containers' cgroups, shims, mounts, links, directories. Safe to call twice."""
    try:
        data = Path((state / "data-root").read_text().strip())
    except OSError:
        data = None
    sid = state.name
    for name in ("dockerd.pid", "dockerd.popen.pid"):
        pid = _read_pid(state / name)
        if pid is not None:
            _kill_if(pid, str(state))
    # the shims outlive containerd: theirs name its socket
    for pid_dir in Path("/proc").iterdir():
        cmd = _cmdline(int(pid_dir.name)) if pid_dir.name.isdigit() else []
        if cmd and "containerd-shim" in cmd[0] and any(str(state) in a for a in cmd):
            _kill_if(int(pid_dir.name), str(state), wait=5)
    for name in ("containerd.pid", "registry.pid"):
        pid = _read_pid(state / name)
        if pid is not None:
            _kill_if(pid, str(state))
    _remove_cgroups(f"pods-refdocker-{sid}")
    _unmount_under(*(p for p in (state, data) if p is not None))
    # dockerd's own network links: its default bridge, user networks' br-<id> and their veths
    if data is not None:
        for br in _user_bridges(data):
            _ip("link", "del", br)
    with contextlib.suppress(OSError, ValueError):
        recorded = state / "nat-rules"
        old_form = state / "nat-rule"  # one rule, as sessions of the first version recorded it
        rules = json.loads(recorded.read_text()) if recorded.exists() else [json.loads(old_form.read_text())]
        for rule in rules:
            if f"pods-refdocker:{sid}" in rule:  # ours: delete it while it is there
                while subprocess.run(["iptables", "-w", "-t", "nat", "-D", *rule], capture_output=True).returncode == 0:
                    pass
    with contextlib.suppress(OSError):
        bridge = (state / "bridge").read_text().strip()
        if bridge.startswith("podsref"):
            _ip("link", "del", bridge)
    if data is not None and data.name.startswith("pods-refdocker-"):
        shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


def _user_bridges(data: Path) -> list[str]:
    """The ``br-<id>`` links of networks dockerd still recorded under ``data`` (a crash or a failed prune)."""
    found = []
    for line in _ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if not name.startswith("br-"):
            continue
        # the network's id is in dockerd's store: only remove bridges of networks it holds
        netdb = data / "docker" / "network" / "files" / "local-kv.db"
        with contextlib.suppress(OSError):
            if name[3:].encode() in netdb.read_bytes():
                found.append(name)
    return found


def clean_stale() -> None:
    """Clean the state of every earlier session that is gone (its lock free)."""
    if not STATE_BASE.is_dir():
        return
    for state in STATE_BASE.iterdir():
        if not state.is_dir():
            continue
        try:
            fd = os.open(state / "lock", os.O_RDWR)
        except FileNotFoundError:
            fd = None  # made before its lock: its session died at once (or is starting now; wait a moment)
            if time.time() - state.stat().st_mtime < 30:
                continue
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live session's
            _clean(state)
        finally:
            if fd is not None:
                os.close(fd)


@contextlib.contextmanager
def reference_dockerd() -> Iterator[ReferenceDocker]:
    """A started :class:`ReferenceDocker`, stopped and removed at the end (also when start fails)."""
    ref = ReferenceDocker()
    try:
        ref.start()
        yield ref
    finally:
        ref.stop()


if __name__ == "__main__":  # a shell for trying it: prints DOCKER_HOST, waits for Enter, cleans up
    with reference_dockerd() as r:
        print(f"DOCKER_HOST={r.host}", flush=True)
        with contextlib.suppress(EOFError):
            input("press Enter to stop the reference dockerd ")
