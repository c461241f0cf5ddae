"""Container networks on the real kernel: names, isolation, published ports, NAT, cleanup (issue acceptance).

Traffic stays on loopback and the containers' own addresses, except where a test says it reaches the
Debian mirror through a container's NAT. A name that must *not* resolve is looked up with the
container's resolver pointed at its own loopback, so the upstream name server is never asked and
what is checked is only what the engine publishes (``/etc/hosts``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from network_helper import Made, Pods, inspect_network

from pytest_pods import Client, ContainerStartError
from pytest_pods.engine.linux import process_start_time
from pytest_pods.engine.network.networks import root_tag
from pytest_pods.engine.runtime.cgroups import list_cgroups
from pytest_pods.errors import NotFoundError

MIRROR = "http://deb.debian.org/debian/dists/bookworm/Release"
NO_UPSTREAM_DNS = "echo nameserver 127.0.0.1 > /etc/resolv.conf"  # see the module docstring


def serve(text: str, port: int = 80) -> list[str]:
    """busybox httpd serving ``text`` at ``/`` (written before the server starts)."""
    return ["sh", "-c", f"mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www"]


def bridge_of(made: Made, net: dict[str, Any]) -> str:
    """The network's Linux bridge, named by the engine's rule (inspect shows it for the default
    network only, as dockerd: see pytest_pods/engine/network/networks.py)."""
    return f"podsb{root_tag(made.client.root)}{net['Id'][:7]}"


def gateway_of(net: dict[str, Any]) -> str:
    return str(net["IPAM"]["Config"][0]["Gateway"])


def ip_of(pods_cli: Pods, ctr: str, network: str) -> str:
    return pods_cli("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", ctr,
                check=True).stdout.strip()


def in_ctr(pods_cli: Pods, network: str, script: str,
           timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A throwaway busybox on ``network`` running ``script``."""
    return pods_cli("run", "--rm", "--network", network, "busybox", "sh", "-c", script, timeout=timeout)


def wait_serving(client: Client, ctr: str, port: int = 80, deadline: float = 10.0) -> None:
    """Until the server in ``ctr`` answers on its own loopback."""
    end = time.monotonic() + deadline
    while True:
        r = client.containers.get(ctr).exec(["timeout", "2", "wget", "-qO", "/dev/null", f"http://127.0.0.1:{port}/"])
        if r.exit_code == 0:
            return
        if time.monotonic() > end:
            raise TimeoutError(f"wait for httpd in {ctr} on port {port}: not serving after {deadline} s")
        time.sleep(0.05)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


def http_get(host: str, port: int, deadline: float = 10.0) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with _OPENER.open(f"http://{host}:{port}/", timeout=3) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def rules() -> str:
    """Every rule of the filter and nat tables, as ``iptables -S`` prints them."""
    return "".join(subprocess.run(["iptables", "-w", "-t", t, "-S"], capture_output=True, text=True,
                                  check=True).stdout for t in ("filter", "nat"))


def links() -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return [line.split(": ")[1].split("@")[0] for line in out.splitlines()]


def netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def net_files(client: Client, net: dict[str, Any]) -> dict[str, list[str]]:
    d = client.root / "networks" / net["Id"]
    return {k: sorted(os.listdir(d / k)) if (d / k).is_dir() else [] for k in ("leases", "endpoints")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procs_with(marker: str) -> list[int]:
    """Live processes whose command line carries ``marker`` (our containers' shells do)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if marker.encode() in (p / "cmdline").read_bytes() and process_start_time(int(p.name)):
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


# -- names and isolation ------------------------------------------------------------------------
def test_user_network_peers_reach_each_other_by_name_and_alias_and_other_networks_cannot(
        made: Made, client: Client, pods_cli: Pods) -> None:
    net, other = made.network(), made.network()
    srv = made.run("--network", net["Name"], "--network-alias", "web", "busybox", *serve("hello-from-srv"))
    wait_serving(client, srv)
    r = in_ctr(pods_cli, net["Name"], f"timeout 5 wget -qO- http://{srv}/ && timeout 5 wget -qO- http://web/")
    assert (r.returncode, r.stdout) == (0, "hello-from-srv\n" * 2), r.stderr

    ip = ip_of(pods_cli, srv, net["Name"])
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(net["IPAM"]["Config"][0]["Subnet"])
    r = in_ctr(pods_cli, other["Name"], f"timeout 3 wget -qO- http://{ip}/; echo rc=$?")
    assert r.stdout.startswith("rc=") and r.stdout != "rc=0\n", r.stdout  # nothing served, wget failed
    r = in_ctr(pods_cli, other["Name"], f"{NO_UPSTREAM_DNS}; grep -c {srv} /etc/hosts; timeout 3 wget -qO- http://{srv}/")
    assert r.returncode != 0 and r.stdout == "0\n"
    assert f"bad address '{srv}'" in r.stderr


def test_default_bridge_reaches_peers_by_address_only(made: Made, client: Client, pods_cli: Pods) -> None:
    srv = made.run("busybox", *serve("on-the-bridge"))
    wait_serving(client, srv)
    ip = ip_of(pods_cli, srv, "bridge")
    r = in_ctr(pods_cli, "bridge", f"timeout 5 wget -qO- http://{ip}/")
    assert (r.returncode, r.stdout) == (0, "on-the-bridge\n"), r.stderr
    r = in_ctr(pods_cli, "bridge", f"{NO_UPSTREAM_DNS}; timeout 3 wget -qO- http://{srv}/")
    assert r.returncode != 0 and f"bad address '{srv}'" in r.stderr
    r = pods_cli("run", "--rm", "--network-alias", "x", "busybox", "true")
    assert r.returncode == 125 and "only supported for user-defined networks" in r.stderr


# -- published ports ----------------------------------------------------------------------------
def test_twenty_parallel_auto_ports_are_distinct_and_each_reaches_its_own_container(
        made: Made, client: Client) -> None:
    marker = uuid.uuid4().hex[:8]
    names = [made.name() for _ in range(20)]
    barrier = threading.Barrier(len(names))
    errors: list[BaseException] = []

    def start(i: int, n: str) -> None:
        try:
            barrier.wait()
            client.containers.run("busybox", serve(f"box-{i}-{marker}"), detach=True, name=n, ports={"80/tcp": None})
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    addresses = [client.containers.get(n).address(80) for n in names]
    assert {host for host, _ in addresses} == {"127.0.0.1"}
    assert len({port for _, port in addresses}) == 20, addresses
    for i, (host, port) in enumerate(addresses):
        assert http_get(host, port) == f"box-{i}-{marker}\n"


def test_published_ports_show_in_port_inspect_and_address_and_are_reached_from_the_host_and_containers(
        made: Made, client: Client, pods_cli: Pods) -> None:
    net, other = made.network(), made.network()
    fixed = free_port()
    script = "mkdir /www && echo published > /www/index.html && httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www"
    srv = made.run("--network", net["Name"], "-p", "80", "-p", f"127.0.0.1:{fixed}:8080", "busybox", "sh", "-c", script)
    wait_serving(client, srv)
    c = client.containers.get(srv)
    host, auto = c.address(80)
    assert (host, c.host_port(80)) == ("127.0.0.1", auto)
    assert c.address("8080/tcp") == ("127.0.0.1", fixed)

    assert pods_cli("port", srv, check=True).stdout.splitlines() == [
        f"80/tcp -> 0.0.0.0:{auto}", f"8080/tcp -> 127.0.0.1:{fixed}"]
    assert pods_cli("port", srv, "80", check=True).stdout == f"0.0.0.0:{auto}\n"
    ports = json.loads(pods_cli("inspect", "-f", "{{json .NetworkSettings.Ports}}", srv, check=True).stdout)
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(auto)}],
                     "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(fixed)}]}

    assert http_get("127.0.0.1", auto) == "published\n"
    assert http_get("127.0.0.1", fixed) == "published\n"
    bridge = inspect_network(pods_cli, "bridge")
    for network, gateway in ((other["Name"], gateway_of(other)), ("bridge", gateway_of(bridge))):
        r = in_ctr(pods_cli, network, f"timeout 5 wget -qO- http://{gateway}:{auto}/")
        assert (r.returncode, r.stdout) == (0, "published\n"), (network, r.stderr)


def test_fixed_host_port_in_use_fails_with_125_naming_the_port_and_keeps_nothing(
        made: Made, client: Client, pods_cli: Pods) -> None:
    net = made.network()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        n = made.name()
        r = pods_cli("run", "-d", "--name", n, "--network", net["Name"], "-p", f"127.0.0.1:{port}:80",
                 "busybox", "sleep", "30")
        assert r.returncode == 125
        assert len(r.stderr.splitlines()) == 1 and f"127.0.0.1:{port}" in r.stderr, r.stderr
        assert r.stdout == ""
        assert n not in pods_cli("ps", check=True).stdout
        assert net_files(client, net) == {"leases": [], "endpoints": []}
        assert f"--dport {port} " not in rules()

        with pytest.raises(ContainerStartError) as err:  # the API removes what it could not start
            client.containers.run("busybox", ["sleep", "30"], detach=True, name=made.name(), network=net["Name"],
                                  ports={"80/tcp": ("127.0.0.1", port)})
        assert err.value.exit_code == 125 and f"127.0.0.1:{port}" in str(err.value)
        assert made.containers[-1] not in {x.name for x in client.containers.list(all=True)}
        assert net_files(client, net) == {"leases": [], "endpoints": []}
        assert f"--dport {port} " not in rules()


def test_pods_run_that_cannot_bind_its_port_leaves_no_container(made: Made, pods_cli: Pods) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        n = made.name()
        assert pods_cli("run", "-d", "--name", n, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "30").returncode == 125
        assert n not in pods_cli("ps", "-a", check=True).stdout


# -- outbound NAT -------------------------------------------------------------------------------
@pytest.mark.slow
def test_debian_on_the_default_bridge_runs_apt_get_update(made: Made, pods_cli: Pods, debian: str) -> None:
    n = made.name()  # reaches the Debian mirror through the bridge's NAT
    r = pods_cli("run", "--name", n, debian, "sh", "-c", "apt-get update && ls /var/lib/apt/lists", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Reading package lists" in r.stdout and "Err:" not in r.stdout, r.stdout
    assert any(f.endswith("_Packages") or f.endswith("_Packages.lz4") for f in r.stdout.split()), r.stdout


def test_internal_network_cannot_reach_outside_while_the_default_bridge_can(made: Made, pods_cli: Pods) -> None:
    internal = made.network("--internal")  # the bridge's side reaches the Debian mirror through its NAT
    assert internal["Internal"] is True
    fetch = f"timeout 5 wget -qO- {MIRROR}"
    mirror_ip = socket.gethostbyname("deb.debian.org")  # by address too: not just a name that fails
    by_ip = f"timeout 5 wget -qO- --header 'Host: deb.debian.org' http://{mirror_ip}/debian/dists/bookworm/Release"
    r = in_ctr(pods_cli, "bridge", f"{fetch} && {by_ip}")
    assert r.returncode == 0 and r.stdout.count("Codename: bookworm") == 2, r.stderr
    r = in_ctr(pods_cli, internal["Name"], f"({fetch}; echo name=$?) & ({by_ip}; echo ip=$?) & wait")
    assert "Codename" not in r.stdout
    codes = dict(line.split("=") for line in r.stdout.split())
    assert codes["name"] != "0" and codes["ip"] != "0", r.stdout


# -- cleanup ------------------------------------------------------------------------------------
def test_thirty_containers_on_three_networks_leave_no_link_rule_lease_or_netns(
        made: Made, client: Client, pods_cli: Pods) -> None:
    tag = root_tag(client.root)
    netns_before = netns()
    nets = [made.network() for _ in range(3)]
    names = [made.name() for _ in range(30)]
    started: dict[str, Any] = {}
    errors: list[BaseException] = []

    def start(i: int, n: str) -> None:
        try:
            started[n] = client.containers.run("busybox", ["sleep", "60"], detach=True, name=n,
                                               network=nets[i % 3]["Name"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    cids = [started[n].id for n in names]
    for i, net in enumerate(nets):
        ips = [started[n].ip for n in names[i::3]]
        assert len(set(ips)) == 10 and all(ips), ips
        assert len(net_files(client, net)["leases"]) == 10
    assert sum(link.startswith(f"podsv{tag}{cid[:6]}") for link in links() for cid in cids) == 30

    removers = [threading.Thread(target=started[n].remove, kwargs={"force": True}) for n in names]
    for t in removers:
        t.start()
    for t in removers:
        t.join()
    client.runtime.settle()  # rm -f hands the release to the monitors: wait for them
    for net in nets:
        assert net_files(client, net) == {"leases": [], "endpoints": []}
    for net in nets:
        assert pods_cli("network", "rm", net["Name"], check=True).stdout == f"{net['Name']}\n"
        assert not (client.root / "networks" / net["Id"]).exists()

    left = links()
    assert [x for x in left if any(x.startswith(f"podsv{tag}{cid[:6]}") for cid in cids)] == []
    assert [x for x in left if x in {bridge_of(made, net) for net in nets}] == []
    text = rules()
    assert [t for t in [f"pods:net:{net['Id'][:12]}" for net in nets] + [f"pods:ctr:{c[:12]}" for c in cids]
            if t in text] == []
    assert netns() == netns_before


def test_reap_after_a_killed_monitor_releases_processes_lease_endpoint_rules_and_port(
        made: Made, client: Client, pods_cli: Pods) -> None:
    net = made.network()
    marker = uuid.uuid4().hex
    n = made.run("--network", net["Name"], "-p", "80", "busybox", "sh", "-c", f"sleep 300; : {marker}")
    c = client.containers.get(n)
    st = json.loads((client.runtime.dir / c.id / "state.json").read_text())
    _, port = c.address(80)
    assert net_files(client, net)["endpoints"] == [f"{c.id}.json"]
    assert f"pods:ctr:{c.id[:12]}" in rules()

    os.kill(st["monitor_pid"], 9)
    assert eventually(lambda: process_start_time(st["monitor_pid"]) != st["monitor_start"])
    assert procs_with(marker) == [st["pid"]]  # the container outlives its monitor until reaped
    out = pods_cli("system", "reap", check=True).stdout
    assert f"stopped container {c.id[:12]}" in out and f"on {net['Name']} ({c.id[:12]})" in out

    assert eventually(lambda: procs_with(marker) == []), procs_with(marker)
    assert c.id not in list_cgroups(parent=client.runtime.cgroup_parent)
    status = pods_cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", n, check=True).stdout
    assert status.split() == ["exited", "137"]
    assert net_files(client, net) == {"leases": [], "endpoints": []}
    assert f"pods:ctr:{c.id[:12]}" not in rules()
    assert not any(x.startswith(f"podsv{root_tag(client.root)}{c.id[:6]}") for x in links())
    with socket.socket() as s:  # the monitor's hold on the host port went with it
        s.bind(("0.0.0.0", port))

    assert pods_cli("network", "rm", net["Name"], check=True).stdout == f"{net['Name']}\n"
    assert bridge_of(made, net) not in links()
    assert f"pods:net:{net['Id'][:12]}" not in rules()


def test_sigkill_of_pods_run_mid_start_leaves_nothing_after_rm_and_reap(
        made: Made, client: Client, pods_cli: Pods) -> None:
    net = made.network()
    marker = uuid.uuid4().hex
    cli = [sys.executable, "-m", "pytest_pods.cli", "--root", str(client.root)]
    names: list[str] = []
    cids: set[str] = set()
    killed_after_create = 0
    full = None
    for i in range(13):  # the first runs to the end; its time spreads the kill points of the others
        n = made.name()
        names.append(n)
        t0 = time.monotonic()
        proc = subprocess.Popen([*cli, "run", "-d", "--name", n, "--network", net["Name"], "-p", "80", "busybox",
                                 "sh", "-c", f"sleep 60; : {marker}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if full is None:
            proc.wait(timeout=30)
            full = time.monotonic() - t0
        else:
            time.sleep(full * (i - 1) / 12)
            proc.kill()
        out, _ = proc.communicate()
        if out.strip():
            cids.add(out.decode().strip())
        time.sleep(0.15)  # the monitor is detached: a start it had begun goes on without the CLI
        try:
            cids.add(client.runtime.resolve(n))
            killed_after_create += proc.returncode == -9
        except NotFoundError:
            pass
        r = pods_cli("rm", "-f", n)
        assert r.returncode == 0 or "No such container" in r.stderr, r.stderr
    assert killed_after_create, "no kill landed between create and the end of the start"
    pods_cli("system", "reap", check=True)

    assert not any(n in pods_cli("ps", "-a", check=True).stdout for n in names)
    assert eventually(lambda: procs_with(marker) == []), procs_with(marker)
    assert net_files(client, net) == {"leases": [], "endpoints": []}
    master = subprocess.run(["ip", "-o", "link", "show", "master", bridge_of(made, net)], capture_output=True, text=True)
    assert master.stdout == ""
    text = rules()
    assert [c for c in cids if f"pods:ctr:{c[:12]}" in text] == []
    subnet = ipaddress.ip_network(net["IPAM"]["Config"][0]["Subnet"])
    assert [line for line in text.splitlines() if "--to-destination" in line
            and ipaddress.ip_address(line.split("--to-destination ")[1].split(":")[0]) in subnet] == []
    assert [c for c in cids if c in list_cgroups(parent=client.runtime.cgroup_parent)] == []
    assert pods_cli("network", "rm", net["Name"], check=True).returncode == 0
    assert bridge_of(made, net) not in links()


# -- network verbs ------------------------------------------------------------------------------
def test_network_create_refuses_a_duplicate_name_and_an_overlapping_subnet(made: Made, pods_cli: Pods) -> None:
    net = made.network()
    r = pods_cli("network", "create", net["Name"])
    assert r.returncode == 125 and "already exists" in r.stderr and len(r.stderr.splitlines()) == 1
    subnet = ipaddress.ip_network(net["IPAM"]["Config"][0]["Subnet"])
    inner = next(subnet.subnets(new_prefix=subnet.prefixlen + 1))
    dup = f"tn-{uuid.uuid4().hex[:10]}"
    made.networks.append(dup)
    r = pods_cli("network", "create", "--subnet", str(inner), dup)
    assert r.returncode == 125 and f"{inner} overlaps with {subnet}" in r.stderr, r.stderr
    assert dup not in pods_cli("network", "ls", check=True).stdout


def test_network_rm_of_a_network_in_use_is_refused_naming_the_container(made: Made, pods_cli: Pods) -> None:
    net = made.network()
    n = made.run("--network", net["Name"], "busybox", "sleep", "60")
    r = pods_cli("network", "rm", net["Name"])
    assert r.returncode != 0 and "active endpoints" in r.stderr and n in r.stderr, r.stderr
    assert net["Name"] in pods_cli("network", "ls", check=True).stdout
    assert bridge_of(made, net) in links()
    pods_cli("rm", "-f", n, check=True)
    assert pods_cli("network", "rm", net["Name"], check=True).stdout == f"{net['Name']}\n"
    assert net["Name"] not in pods_cli("network", "ls", check=True).stdout


def test_network_connect_with_alias_then_disconnect(made: Made, client: Client, pods_cli: Pods) -> None:
    home, net = made.network(), made.network()
    srv = made.run("--network", home["Name"], "busybox", *serve("connected"))
    peer = made.run("--network", net["Name"], "busybox", "sleep", "60")
    wait_serving(client, srv)
    fetch = f"{NO_UPSTREAM_DNS}; timeout 5 wget -qO- http://svc/"
    r = client.containers.get(peer).exec(fetch)
    assert r.exit_code != 0 and b"bad address 'svc'" in r.stderr

    assert pods_cli("network", "connect", "--alias", "svc", net["Name"], srv).returncode == 0
    r = client.containers.get(peer).exec(fetch)
    assert (r.exit_code, r.output) == (0, b"connected\n"), r.stderr
    shown = inspect_network(pods_cli, net["Name"])["Containers"]
    mine = next(v for v in shown.values() if v["Name"] == srv)
    addrs = client.containers.get(srv).exec(["ip", "-o", "-4", "addr"]).output.decode()
    assert mine["IPv4Address"] in addrs
    # the aliases are the container's endpoint's (dockerd's network inspect does not list them)
    assert client.containers.get(srv).inspect()["NetworkSettings"]["Networks"][net["Name"]]["Aliases"][0] == "svc"
    assert ip_of(pods_cli, srv, net["Name"]) == mine["IPv4Address"].split("/")[0]

    assert pods_cli("network", "disconnect", net["Name"], srv).returncode == 0
    r = client.containers.get(peer).exec(fetch)
    assert r.exit_code != 0 and b"bad address 'svc'" in r.stderr
    assert srv not in json.dumps(inspect_network(pods_cli, net["Name"])["Containers"])
    assert mine["IPv4Address"] not in client.containers.get(srv).exec(["ip", "-o", "-4", "addr"]).output.decode()
    r = in_ctr(pods_cli, home["Name"], f"timeout 5 wget -qO- http://{srv}/")  # its first network is untouched
    assert (r.returncode, r.stdout) == (0, "connected\n"), r.stderr


def test_a_disconnected_container_no_longer_resolves_the_networks_peers(
        made: Made, client: Client, pods_cli: Pods) -> None:
    home, net = made.network(), made.network()
    srv = made.run("--network", home["Name"], "busybox", "sleep", "60")
    peer = made.run("--network", net["Name"], "busybox", "sleep", "60")
    pods_cli("network", "connect", net["Name"], srv, check=True)
    assert peer in client.containers.get(srv).exec(["cat", "/etc/hosts"]).output.decode()
    pods_cli("network", "disconnect", net["Name"], srv, check=True)
    hosts = client.containers.get(srv).exec(["cat", "/etc/hosts"]).output.decode()
    assert peer not in hosts, hosts


def test_run_on_an_unknown_network_fails_with_125(made: Made, pods_cli: Pods) -> None:
    n = made.name()
    r = pods_cli("run", "--rm", "--name", n, "--network", "nosuch", "busybox", "true")
    assert r.returncode == 125
    assert r.stderr.strip() == "pods: network nosuch not found"
    assert n not in pods_cli("ps", "-a", check=True).stdout


def test_publish_all_maps_every_exposed_port_to_a_free_host_port(made: Made, client: Client, pods_cli: Pods) -> None:
    """``-P``: each port in the image's EXPOSE gets a host port of its own, and it answers."""
    from pytest_pods.engine.image.bootstrap import image_config

    base = client.images.get("busybox")
    tag = f"test/exposes-{uuid.uuid4().hex[:8]}:1"
    cfg = image_config(base.diff_ids, config={"Env": ["PATH=/bin:/sbin"], "ExposedPorts": {"80/tcp": {}, "81/tcp": {}}})
    client.store.create_image(cfg, base.layers, [tag])
    try:
        srv = made.run("-P", tag, "sh", "-c", "mkdir /w && echo eighty > /w/index.html && "
                       "(httpd -p 81 -h /w &) && exec httpd -f -p 80 -h /w")
        c = client.containers.get(srv)
        ports = {c.host_port(80), c.host_port(81)}
        assert len(ports) == 2
        lines = pods_cli("port", srv, check=True).stdout.split("\n")
        assert {ln.split(" -> ")[0] for ln in lines if ln} == {"80/tcp", "81/tcp"}
        for port in ports:
            deadline = time.monotonic() + 5
            while True:
                try:
                    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            assert body == b"eighty\n"
    finally:
        made.teardown()  # the containers first, then their image
        made.containers.clear()
        client.images.remove(tag, force=True)


def test_disconnecting_the_network_with_the_default_route_moves_it(made: Made, client: Client, pods_cli: Pods) -> None:
    first, second = made.network(), made.network()
    ctr = made.run("--network", first["Name"], "busybox", "sleep", "60")
    pods_cli("network", "connect", second["Name"], ctr, check=True)
    pods_cli("network", "disconnect", first["Name"], ctr, check=True)
    routes = client.containers.get(ctr).exec(["ip", "route"]).output.decode()
    gateway = second["IPAM"]["Config"][0]["Gateway"]
    assert f"default via {gateway} dev eth1" in routes, routes


def test_networks_made_one_after_another_add_our_base_rule_once(client: Client) -> None:
    """iptables-save quotes comments: a check that missed that added one ACCEPT rule per network."""
    names = [f"t-base-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    try:
        for n in names:
            client.networks.create(n)
            client.containers.run("busybox", ["true"], network=n, remove=True)
        base = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True).stdout
        assert base.count("pods:base") == 1, base
    finally:
        for n in names:
            client.networks.remove(n)
