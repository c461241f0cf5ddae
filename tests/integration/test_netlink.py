"""rtnetlink against the real kernel: a bridge on the host, a veth pair into a throwaway namespace.

The namespace belongs to a child process (``unshare --net``) rather than ``ip netns add``: when the
child ends, the namespace and every link in it go too, so a crashed test cannot leave a named
netns behind. Links on the host carry a per-test token and are deleted in ``finally`` blocks.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pytest_pods.engine import linux
from pytest_pods.engine.network.netlink import Netlink
from pytest_pods.errors import NetlinkError

CAP_NET_ADMIN = 12


def _no_net_admin() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                if not int(line.split()[1], 16) & (1 << CAP_NET_ADMIN):
                    return "needs CAP_NET_ADMIN"
    if shutil.which("unshare") is None:
        return "needs util-linux unshare to make a throwaway network namespace"
    return None


pytestmark = pytest.mark.skipif(_no_net_admin() is not None, reason=_no_net_admin() or "")


@dataclass
class Netns:
    pid: int
    fd: int

    @property
    def path(self) -> str:
        return f"/proc/{self.pid}/ns/net"


@pytest.fixture
def netns() -> Iterator[Netns]:
    """Scope: function. A fresh network namespace held by a child that exits when its stdin closes."""
    child = subprocess.Popen(
        ["unshare", "--net", "--", "sh", "-c", "echo ready; read _"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    fd = -1
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        fd = os.open(f"/proc/{child.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        assert os.stat(f"/proc/{child.pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        yield Netns(child.pid, fd)
    finally:
        if fd >= 0:
            os.close(fd)
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@pytest.fixture
def token() -> Iterator[str]:
    """Scope: function. A hex token for this test's link names; asserts none is left afterwards."""
    tok = uuid.uuid4().hex[:6]
    yield tok
    with Netlink() as nl:
        leftovers = [name for _i, name, _k in nl.links() if tok in name]
        for name in leftovers:
            nl.delete_link(name)
    assert leftovers == [], f"links left behind: {leftovers}"


def _ipv4_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def _free_slash24(nl: Netlink) -> int:
    """A third octet x such that 10.250.x.0/24 overlaps no route but the default one."""
    used = []
    for dst, _gw, _dev in nl.routes():
        addr, plen = dst.split("/")
        if int(plen) == 0:
            continue
        mask = (0xFFFFFFFF << (32 - int(plen))) & 0xFFFFFFFF
        used.append((_ipv4_int(addr) & mask, mask))
    candidates = list(range(256))
    random.shuffle(candidates)
    for x in candidates:
        net = _ipv4_int(f"10.250.{x}.0")
        # two prefixes overlap iff they agree on the shorter one's mask
        if all((net & m) != n and (net & 0xFFFFFF00) != (n & 0xFFFFFF00) for n, m in used):
            return x
    pytest.skip("no free /24 in 10.250.0.0/16 on this host")


def _connect_from(ns: Netns, host: str, port: int) -> bytes:
    """Open a TCP connection from inside ``ns``: a socket stays in the namespace it was made in."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(ns.fd, linux.CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            linux.setns(home, linux.CLONE_NEWNET)
    finally:
        os.close(home)
    with sock:
        sock.settimeout(2)
        sock.connect((host, port))
        return sock.recv(16)


def test_bridge_and_veth_into_namespace_carry_traffic(netns: Netns, token: str) -> None:
    bridge, veth = f"podsT{token}", f"podsT{token}v"
    with Netlink() as nl:
        x = _free_slash24(nl)
        gateway, addr = f"10.250.{x}.1", f"10.250.{x}.2"
        try:
            br_index = nl.create_bridge(bridge)
            assert nl.link_index(bridge) == br_index
            nl.add_address(bridge, f"{gateway}/24")
            nl.set_up(bridge)

            index = nl.create_veth(veth, "eth0", peer_netns_fd=netns.fd, master=bridge)
            assert nl.link_index(veth) == index
            nl.set_up(veth)
            assert nl.link_index("eth0") != index  # the peer went straight into the namespace

            with Netlink(netns.fd) as inner:
                inner.add_address("eth0", f"{addr}/24")
                inner.set_up("eth0")
                inner.set_up("lo")
                inner.add_route(gateway)

                assert inner.addresses("eth0") == [("eth0", f"{addr}/24")]
                assert ("lo", "127.0.0.1/8") in inner.addresses()
                assert ("0.0.0.0/0", gateway, "eth0") in inner.routes()
                assert (f"10.250.{x}.0/24", None, "eth0") in inner.routes()
                assert [(n, k) for _i, n, k in inner.links()] == [("lo", ""), ("eth0", "veth")]

            assert nl.addresses(bridge) == [(bridge, f"{gateway}/24")]
            assert (f"10.250.{x}.0/24", None, bridge) in nl.routes()
            kinds = {name: kind for _i, name, kind in nl.links()}
            assert kinds[bridge] == "bridge" and kinds[veth] == "veth"

            if shutil.which("ping") and shutil.which("nsenter"):
                ping = subprocess.run(
                    ["nsenter", f"--net={netns.path}", "ping", "-c1", "-W1", gateway],
                    capture_output=True, text=True, timeout=10,
                )
                assert ping.returncode == 0, ping.stdout + ping.stderr

            # TCP from the namespace to the host's bridge address: real traffic over the veth
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
                server.bind((gateway, 0))
                server.listen(1)
                server.settimeout(5)

                def serve() -> None:
                    conn, _ = server.accept()
                    with conn:
                        conn.sendall(b"pong")

                t = threading.Thread(target=serve)
                t.start()
                try:
                    assert _connect_from(netns, gateway, server.getsockname()[1]) == b"pong"
                finally:
                    t.join(10)

            nl.delete_link(veth, missing_ok=False)
            assert nl.link_index(veth) is None
            with Netlink(netns.fd) as inner:
                assert inner.link_index("eth0") is None  # deleting one end removed both
        finally:
            nl.delete_link(veth)
            nl.delete_link(bridge)
        assert not [n for _i, n, _k in nl.links() if token in n]


def test_errors_name_the_operation_and_carry_the_errno(token: str) -> None:
    bridge = f"podsT{token}"
    with Netlink() as nl:
        try:
            nl.create_bridge(bridge)
            with pytest.raises(NetlinkError) as info:
                nl.create_bridge(bridge)
            assert info.value.errno == errno.EEXIST
            assert str(info.value).startswith(f"netlink: create bridge {bridge}: File exists")

            cidr = f"10.250.{_free_slash24(nl)}.1/24"
            nl.add_address(bridge, cidr)
            with pytest.raises(NetlinkError) as info:
                nl.add_address(bridge, cidr)
            assert info.value.errno == errno.EEXIST

            long_name = f"podsT{token}xxxxx"
            assert len(long_name) == 16
            with pytest.raises(ValueError, match=long_name):
                nl.create_bridge(long_name)
            with pytest.raises(ValueError, match=long_name):
                nl.create_veth(f"podsT{token}v", long_name)

            missing = f"podsT{token}m"
            with pytest.raises(NetlinkError) as info:
                nl.delete_link(missing, missing_ok=False)
            assert info.value.errno == errno.ENODEV
            assert missing in str(info.value)
            nl.delete_link(missing)  # missing_ok by default

            with pytest.raises(NetlinkError) as info:
                nl.set_master(missing, bridge)
            assert info.value.errno == errno.ENODEV

            with pytest.raises(ValueError, match="host bits"):
                nl.add_route("10.250.255.254", dst="10.250.0.1/16")
        finally:
            nl.delete_link(bridge)


def _ip_link(name: str) -> str:
    """iproute2's view of a link: a cross-check made by another netlink client than ours."""
    return subprocess.run(["ip", "-o", "link", "show", name], capture_output=True, text=True, check=True).stdout


def test_veth_by_pid_master_mtu_and_nomaster(netns: Netns, token: str) -> None:
    bridge, veth = f"podsT{token}", f"podsT{token}w"
    with Netlink() as nl:
        try:
            br_index = nl.create_bridge(bridge)
            nl.create_veth(veth, "eth1", peer_netns_pid=netns.pid)
            nl.set_master(veth, bridge)
            nl.set_mtu(veth, 1400)
            out = _ip_link(veth)
            assert "mtu 1400" in out and f"master {bridge}" in out
            nl.set_master(veth, None)
            assert "master" not in _ip_link(veth)
            with Netlink(netns.fd) as inner:
                assert inner.link_index("eth1") is not None
            assert br_index != nl.link_index(veth)
        finally:
            nl.delete_link(veth)
            nl.delete_link(bridge)


def test_veth_setup_timing(netns: Netns, token: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion: prints what one container's veth costs, end to end (budget: 5 ms)."""
    bridge = f"podsT{token}"
    x = 0
    samples = []
    with Netlink() as nl:
        x = _free_slash24(nl)
        try:
            nl.create_bridge(bridge)
            nl.add_address(bridge, f"10.250.{x}.1/24")
            nl.set_up(bridge)
            for i in range(10):
                veth = f"podsT{token}{i}"
                start = time.perf_counter()
                with Netlink() as host:
                    host.create_veth(veth, "eth0", peer_netns_fd=netns.fd, master=bridge)
                    host.set_up(veth)
                with Netlink(netns.fd) as inner:
                    inner.add_address("eth0", f"10.250.{x}.2/24")
                    inner.set_up("eth0")
                    inner.set_up("lo")
                    inner.add_route(f"10.250.{x}.1")
                samples.append(time.perf_counter() - start)
                nl.delete_link(veth, missing_ok=False)
        finally:
            for i in range(10):
                nl.delete_link(f"podsT{token}{i}")
            nl.delete_link(bridge)
    samples.sort()
    with capsys.disabled():
        print(
            f"\nveth pair create+configure: median {samples[len(samples) // 2] * 1e3:.2f} ms, "
            f"min {samples[0] * 1e3:.2f} ms, max {samples[-1] * 1e3:.2f} ms over {len(samples)}"
        )
