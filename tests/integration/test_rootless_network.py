"""Rootless networking (issue 13), run by root's ``make test`` as the ordinary user ``pods-rootless``.

Each test runs ``pods`` as that user (``runuser``, the rootless venv's python) on a root of its own
under the user's home, and checks from the host, as root, what the kernel made of it: every bridge
and host-side veth in the root's rootless netns (the namespace holder's), none in the host's;
names and isolation as for root; published ports answering on the host's loopback through the
forwarder; outbound traffic through the helper (pasta, or slirp4netns); nothing left after release.
"""

from __future__ import annotations

import http.server
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_pods.engine.network.networks import root_tag

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".cache/venv-rootless/bin/python"
USER = "pods-rootless"
HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"


def _pw() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        return None


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "runs as root, which drives the ordinary user with runuser"
    if shutil.which("runuser") is None or shutil.which("newuidmap") is None:
        return "runuser (util-linux) or newuidmap (uidmap) is missing"
    if _pw() is None:
        return f"user {USER} is missing (the Makefile's rootless setup makes it)"
    if not VENV_PY.exists():
        return f"{VENV_PY} is missing (the Makefile's rootless setup makes it)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


class User:
    """``pods`` as the ordinary user on one root of its own."""

    def __init__(self, root_name: str, env: dict[str, str] | None = None) -> None:
        pw = _pw()
        assert pw is not None
        self.pw = pw
        self.root = Path(pw.pw_dir) / ".local/share" / root_name
        self.run_dir = Path(f"/run/user/{pw.pw_uid}")
        if not self.run_dir.is_dir():
            self.run_dir.mkdir(mode=0o700, parents=True)
            os.chown(self.run_dir, pw.pw_uid, pw.pw_gid)
        self.env = env or {}

    def pods(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        envs = [f"XDG_RUNTIME_DIR={self.run_dir}", f"HOME={self.pw.pw_dir}", "PYTHONDONTWRITEBYTECODE=1",
                f"PATH={VENV_PY.parent}:/usr/bin:/bin:/usr/sbin:/sbin"] + [f"{k}={v}" for k, v in self.env.items()]
        cmd = ["runuser", "-u", USER, "--", "env", *envs, str(VENV_PY), "-m", "pytest_pods.cli",
               "--root", str(self.root), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and done.returncode != 0:
            raise AssertionError(f"pods {' '.join(args)} as {USER}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def out(self, *args: str) -> str:
        return self.pods(*args).stdout.strip()

    # what the run dir records
    @property
    def state_dir(self) -> Path:
        return self.run_dir / "pytest-pods" / "user"  # the user's one rootless engine (rootless.run_dir)

    def recorded(self, name: str) -> int | None:
        try:
            return int((self.state_dir / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def in_netns(self, *cmd: str) -> str:
        """A command (as root) in this root's rootless netns."""
        holder = self.recorded("holder")
        assert holder is not None and _alive(holder), "no namespace holder runs"
        return subprocess.run(["nsenter", "-t", str(holder), "-n", *cmd], capture_output=True, text=True,
                              check=True).stdout

    def links_in_netns(self) -> list[str]:
        return [line.split()[0].split("@")[0] for line in self.in_netns("ip", "-br", "link").splitlines()]

    def release(self) -> str:
        """Remove every container, then reap until the holder goes (an exiting monitor counts as a
        user of the namespace until it is reaped)."""
        for cid in self.out("ps", "-aq").split():
            self.pods("rm", "-f", cid, check=False)
        done = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done += self.out("system", "reap") + "\n"
            holder = self.recorded("holder")
            if holder is None or not _alive(holder):
                break
            time.sleep(0.2)
        return done


def _alive(pid: int) -> bool:
    """Alive and not a zombie (this machine's pid 1 reaps late)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def host_links() -> list[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0].split("@")[0] for line in out.splitlines()]


def ours(links: list[str], user: User) -> list[str]:
    tag = root_tag(user.root)
    return [n for n in links if n.startswith((f"podsb{tag}", f"podsv{tag}"))]


def user_processes(*names: str) -> list[str]:
    """Live processes of the user whose command names one of ``names``."""
    pw = _pw()
    assert pw is not None
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if st.st_uid == pw.pw_uid and _alive(int(entry)) and any(n in cmd for n in names):
            out.append(f"{entry} {cmd}")
    return out


def helper_available() -> str | None:
    """Why the user gets no outbound helper here, or None."""
    if not os.access("/dev/net/tun", os.F_OK) or os.stat("/dev/net/tun").st_mode & 0o006 != 0o006:
        return "/dev/net/tun is not usable by ordinary users (Debian makes it 0666)"
    if not (shutil.which("pasta") or shutil.which("slirp4netns")):
        return "neither pasta (passt) nor slirp4netns is installed"
    return None


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    u = User("pytest-pods-nettest")
    if u.pods("inspect", "--type", "image", "busybox:latest", check=False).returncode != 0:
        u.pods("bootstrap", "busybox")
    yield u
    u.release()


@pytest.fixture
def host_http() -> Iterator[int]:
    """An HTTP server on the host's loopback only; its port."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"hello-from-the-host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _get(port: int, host: str = "127.0.0.1", path: str = "/index.html") -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# -- the tests -----------------------------------------------------------------------------
def test_names_on_a_user_network_and_nothing_on_the_host(user: User) -> None:
    user.pods("network", "create", "rl-names")
    web = user.out("run", "-d", "--name", "rl-web", "--network", "rl-names", "--network-alias", "rl-alias",
                   "busybox", "sh", "-c", HTTPD.format(text="web-by-name"))
    try:
        got = user.out("run", "--rm", "--network", "rl-names", "busybox", "sh", "-c",
                       "wget -q -O - http://rl-web/; wget -q -O - http://rl-alias/; cat /etc/hosts")
        assert got.count("web-by-name") == 2, got
        assert "rl-web rl-alias" in got
        # the bridges and veths are in the rootless netns, none in the host's
        inside = ours(user.links_in_netns(), user)
        assert any(n.startswith("podsb") for n in inside) and any(n.startswith("podsv") for n in inside), inside
        assert ours(host_links(), user) == []
        # and so are the rules: the netns has our chains, with the INVALID drop that pasta needs
        rules = user.in_netns("iptables-save")
        assert "PODS-FORWARD" in rules and "MASQUERADE" in rules
    finally:
        user.pods("rm", "-f", web)
        user.pods("network", "rm", "rl-names")


def test_isolation_between_networks(user: User) -> None:
    user.pods("network", "create", "rl-a")
    user.pods("network", "create", "rl-b")
    web = user.out("run", "-d", "--network", "rl-a", "busybox", "sh", "-c", HTTPD.format(text="on-a"))
    try:
        ip = json.loads(user.out("inspect", web))[0]["NetworkSettings"]["Networks"]["rl-a"]["IPAddress"]
        same = user.out("run", "--rm", "--network", "rl-a", "busybox", "sh", "-c",
                        f"timeout 5 wget -q -O - http://{ip}/ || echo unreachable")
        assert "on-a" in same
        other = user.out("run", "--rm", "--network", "rl-b", "busybox", "sh", "-c",
                         f"timeout 3 wget -q -O - http://{ip}/ 2>/dev/null || echo unreachable")
        assert "on-a" not in other and "unreachable" in other
    finally:
        user.pods("rm", "-f", web)
        user.pods("network", "rm", "rl-a")
        user.pods("network", "rm", "rl-b")


def test_published_ports_answer_on_the_hosts_loopback(user: User) -> None:
    with socket.socket() as s:  # a free fixed port
        s.bind(("127.0.0.1", 0))
        fixed = s.getsockname()[1]
    cid = user.out("run", "-d", "-p", "80", "-p", "127.0.0.1::80", "-p", f"{fixed}:80",
                   "busybox", "sh", "-c", HTTPD.format(text="published"))
    try:
        lines = user.out("port", cid).splitlines()
        ports = {line.split(" -> ")[1] for line in lines if line.startswith("80/tcp")}
        assert f"0.0.0.0:{fixed}" in ports and any(p.startswith("127.0.0.1:") for p in ports), lines
        for where in ports:
            port = int(where.rsplit(":", 1)[1])
            assert _get(port).strip() == "published"
        # the forwarder is a process of the user, recorded in the run dir
        fwd = user.recorded(f"forwarder-{cid[:12]}")
        assert fwd is not None and _alive(fwd)
    finally:
        user.pods("rm", "-f", cid)
    deadline = time.monotonic() + 5
    while _alive(fwd) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(fwd), "the forwarder outlived its container"
    assert user.recorded(f"forwarder-{cid[:12]}") is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fixed), timeout=2).close()


def test_a_published_port_answers_other_containers_at_the_gateway(user: User) -> None:
    """Under Docker the bridge's address is a host address, so a port published on every host
    address answers there too: the way a container reaches another's published port through the
    host (testcontainers' pattern for a container talking to a service it published)."""
    cid = user.out("run", "-d", "-p", "80", "busybox", "sh", "-c", HTTPD.format(text="via-gateway"))
    loopback = user.out("run", "-d", "-p", "127.0.0.1::80", "busybox", "sh", "-c", HTTPD.format(text="loopback"))
    try:
        doc = json.loads(user.out("inspect", cid))[0]["NetworkSettings"]
        gateway, port = doc["Gateway"], doc["Ports"]["80/tcp"][0]["HostPort"]
        lo_port = json.loads(user.out("inspect", loopback))[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        got = user.out("run", "--rm", "busybox", "sh", "-c",
                       f"timeout 5 wget -q -O - http://{gateway}:{port}/ || echo unreachable; "
                       f"timeout 3 wget -q -O - http://{gateway}:{lo_port}/ 2>/dev/null || echo lo-unreachable")
        assert "via-gateway" in got, got
        assert "lo-unreachable" in got, got  # a port published on the loopback only is the host's alone
    finally:
        user.pods("rm", "-f", cid, loopback)


def test_outbound_through_the_helper(user: User, host_http: int) -> None:
    why = helper_available()
    if why:
        pytest.skip(why)
    # pasta maps the default gateway's address to the host's loopback (--map-gw, its default)
    route = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    if "via" not in route or not shutil.which("pasta"):
        pytest.skip("no default route on the host, or no pasta (slirp4netns keeps the host's loopback closed)")
    gateway = route[route.index("via") + 1]
    got = user.out("run", "--rm", "busybox", "sh", "-c", f"timeout 10 wget -q -O - http://{gateway}:{host_http}/")
    assert "hello-from-the-host" in got
    helper = user.recorded("network-helper")
    assert helper is not None and _alive(helper)
    assert "pasta" in Path(f"/proc/{helper}/cmdline").read_text()


def _mirror_reachable() -> bool:
    try:
        with urllib.request.urlopen("http://deb.debian.org/debian/dists/bookworm/Release", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.mark.parametrize("helper", ["pasta", "slirp4netns"])
def test_the_debian_mirror_through_each_helper(helper: str) -> None:
    """What ``RUN apt-get`` needs: a name lookup and an HTTP fetch from the outside, through each
    helper (a root of its own, so that the helper is started afresh)."""
    why = helper_available()
    if why or not shutil.which(helper):
        pytest.skip(why or f"{helper} is not installed")
    if not _mirror_reachable():
        pytest.skip("the host cannot reach deb.debian.org")
    u = User(f"pytest-pods-nettest-{helper}", env={"PODS_NETWORK_HELPER": helper})
    u.pods("system", "reap", check=False)  # the user's engine (and its helper) starts afresh: nothing runs
    try:
        if u.pods("inspect", "--type", "image", "busybox:latest", check=False).returncode != 0:
            u.pods("bootstrap", "busybox")
        got = u.out("run", "--rm", "busybox", "sh", "-c",
                    "timeout 20 wget -q -O - http://deb.debian.org/debian/dists/bookworm/Release | head -3")
        assert "Origin: Debian" in got
        pid = u.recorded("network-helper")
        assert pid is not None and helper in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        u.release()
    assert pid is not None and not _alive(pid)


def test_release_leaves_nothing(user: User) -> None:
    user.pods("network", "create", "rl-gone")
    cid = user.out("run", "-d", "--network", "rl-gone", "-p", "127.0.0.1::80", "busybox", "sh", "-c",
                   HTTPD.format(text="x"))
    holder, helper = user.recorded("holder"), user.recorded("network-helper")
    fwd = user.recorded(f"forwarder-{cid[:12]}")
    assert holder and fwd and _alive(holder) and _alive(fwd)
    user.pods("rm", "-f", cid)
    user.pods("network", "rm", "rl-gone")
    done = user.release()
    assert f"holder {holder}" in done
    for pid in (holder, helper, fwd):
        assert pid is None or not _alive(pid), f"{pid} is still running after release"
    root_cmd = str(user.root)
    assert [p for p in user_processes("pasta", "slirp4netns") if user.state_dir.name in p] == []
    assert [p for p in user_processes(root_cmd)] == [], "a monitor or forwarder of the root is left"
    assert ours(host_links(), user) == []
    assert not (user.state_dir / "holder.pid").exists()


# -- the figure: published-port throughput, rootless (forwarder) against root (kernel DNAT) --
TOOL_C = r"""
/* tool blast PORT BYTES: send BYTES of zeros to each TCP connection; tool udpecho PORT: echo datagrams */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int udp = strcmp(argv[1], "udpecho") == 0, one = 1;
    int s = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[2]));
    if (bind(s, (struct sockaddr *)&a, sizeof a) || (!udp && listen(s, 16))) return 1;
    static char buf[1 << 20];
    if (udp) {
        for (;;) {
            struct sockaddr_in from;
            socklen_t len = sizeof from;
            ssize_t n = recvfrom(s, buf, 65536, 0, (struct sockaddr *)&from, &len);
            if (n >= 0) sendto(s, buf, n, 0, (struct sockaddr *)&from, len);
        }
    }
    long long total = atoll(argv[3]);
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        for (long long left = total; left > 0;) {
            ssize_t n = write(c, buf, left < (long long)sizeof buf ? left : (long long)sizeof buf);
            if (n <= 0) break;
            left -= n;
        }
        close(c);
    }
}
"""


@pytest.fixture(scope="module")
def tool() -> Iterator[Path]:
    """A static binary (blast, udpecho) in a directory the user can read, to bind-mount into busybox."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler for the static test tool")
    bindir = Path(tempfile.mkdtemp(prefix="pods-rootless-net-", dir="/var/tmp"))
    try:
        os.chmod(bindir, 0o755)
        (bindir / "tool.c").write_text(TOOL_C)
        subprocess.run(["cc", "-O2", "-static", "-o", str(bindir / "tool"), str(bindir / "tool.c")], check=True)
        yield bindir
    finally:
        shutil.rmtree(bindir)


def test_published_udp_port(user: User, tool: Path) -> None:
    cid = user.out("run", "-d", "-v", f"{tool}:/t:ro", "-p", "127.0.0.1::9999/udp", "busybox", "/t/tool", "udpecho",
                   "9999")
    try:
        port = int(user.out("port", cid, "9999/udp").split()[0].rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(1)
            for _ in range(20):  # until the container's socket is bound
                u.sendto(b"datagram-through", ("127.0.0.1", port))
                try:
                    assert u.recv(100) == b"datagram-through"
                    break
                except TimeoutError:
                    continue
            else:
                raise AssertionError("no UDP echo through the published port")
    finally:
        user.pods("rm", "-f", cid)


SIZE = 200_000_000


def _receive(port: int) -> float:
    """Seconds to read SIZE bytes from the port on the host's loopback."""
    deadline = time.monotonic() + 10
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    buf = bytearray(1 << 20)
    n = 0
    t = time.perf_counter()
    with s:
        while k := s.recv_into(buf):
            n += k
    dt = time.perf_counter() - t
    assert n == SIZE, n
    return dt


def test_published_port_throughput_against_root(user: User, tool: Path, pods_root: Path) -> None:
    run = ["run", "-d", "-v", f"{tool}:/t:ro", "-p", "127.0.0.1::80", "busybox", "/t/tool", "blast", "80", str(SIZE)]

    def as_root(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root), *args],
                              capture_output=True, text=True, check=True).stdout.strip()

    def best(pods: Callable[..., str]) -> float:
        cid = pods(*run)
        try:
            port = int(pods("port", cid, "80").split()[0].rsplit(":", 1)[1])
            return SIZE / 1e6 / min(_receive(port) for _ in range(5))
        finally:
            pods("rm", "-f", cid)

    root_mbs = best(as_root)
    rootless_mbs = best(user.out)
    print(f"\npublished-port throughput, {SIZE // 1_000_000} MB from the container to the host's loopback: "
          f"root (DNAT) {root_mbs:.0f} MB/s, rootless (forwarder, splice) {rootless_mbs:.0f} MB/s, "
          f"ratio {rootless_mbs / root_mbs:.2f}")
    assert rootless_mbs > 0.2 * root_mbs
