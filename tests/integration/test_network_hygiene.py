"""Network hygiene on the real kernel (issue 14): reading makes nothing, ``rm`` returns with the
container's veth gone, internal networks route only their subnet, and the reaper releases our
leftovers (and nothing of anyone else's).

Links and rules are read in the engine's own namespace: the host's as root (``ip -o link``,
``iptables-save``), the rootless netns otherwise (by netlink, as nothing outside the user namespace
can enter it). Every name, label and subnet carries a per-test token, so that tests of other
developers and xdist workers on the same root never collide with ours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from network_helper import Made, Pods

from pytest_pods import Client
from pytest_pods.engine.network import iptables
from pytest_pods.engine.network.netlink import Netlink
from pytest_pods.engine.network.networks import marker, root_hash, root_tag


# -- what is in the engine's namespace ---------------------------------------------------------
def _netns(client: Client) -> str | None:
    return client.runtime.networks.netns(start=False)


def links(client: Client) -> list[str]:
    """The names of every link where this engine makes them."""
    ns = _netns(client)
    if ns is None:
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        return [line.split(": ")[1].split("@")[0] for line in out.splitlines()]
    if ns == "":
        return []
    with Netlink.at(ns) as nl:
        return [name for _i, name, _k in nl.links()]


def rules(client: Client) -> str:
    ns = _netns(client)
    if ns is None:
        return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    if ns == "":
        return ""
    return "\n".join(line for lines in iptables.saved(ns).values() for line in lines)


def tree(root: Path) -> list[str]:
    """Every path under ``root`` with its kind and, for files, its size and mtime."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out.append(f"{p.relative_to(root)} {st.st_mode:o} {st.st_size if p.is_file() else ''} "
                       f"{st.st_mtime_ns if p.is_file() else ''}")
    return sorted(out)


def routes_in(client: Client, ctr: str) -> str:
    r = client.containers.get(ctr).exec(["ip", "route"])
    assert r.exit_code == 0, r.output
    return r.output.decode()


def veth_of(client: Client, cid: str) -> str:
    return f"podsv{root_tag(client.root)}{cid[:6]}0"


# -- reading makes nothing -----------------------------------------------------------------------
def test_network_ls_and_inspect_on_a_fresh_root_make_no_bridge_rule_or_file(tmp_path: Path) -> None:
    root = tmp_path / "root"

    def pods(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args],
                              capture_output=True, text=True, timeout=60, check=True)

    pods("images")  # the store's own files, whoever makes them: not what is checked here
    client = Client(root)
    tag = f"{root_tag(root)}"
    before = tree(root)

    listed = pods("network", "ls").stdout
    doc = json.loads(pods("network", "inspect", "bridge").stdout)[0]
    assert doc["Name"] == "bridge" and doc["Driver"] == "bridge" and doc["IPAM"]["Config"][0]["Subnet"]
    assert doc["Id"][:12] in listed and "bridge" in listed
    assert json.loads(pods("network", "inspect", doc["Id"][:12]).stdout)[0]["Id"] == doc["Id"]
    assert [n["Name"] for n in client.networks.list()] == ["bridge"]

    assert tree(root) == before
    assert not (root / "networks").exists() and not (root / "locks" / "networks.lock").exists()
    assert [x for x in links(client) if x.startswith((f"podsb{tag}", f"podsv{tag}"))] == []
    assert iptables.network_tag(doc["Id"]) not in rules(client)


def test_the_default_network_made_for_a_container_is_the_one_listed_before(made: Made, client: Client,
                                                                           tmp_path: Path) -> None:
    root = tmp_path / "root"
    fresh = Client(root)
    fresh.images.bootstrap_busybox()
    listed = fresh.networks.get("bridge")
    try:
        fresh.containers.run("busybox", ["true"], remove=True)
        made_doc = fresh.networks.get("bridge")
        assert (made_doc["Id"], made_doc["IPAM"]) == (listed["Id"], listed["IPAM"])
        assert made_doc["Options"]["com.docker.network.bridge.name"] in links(fresh)
    finally:
        fresh.cleanup()
    assert [x for x in links(fresh) if x.startswith(f"podsb{root_tag(root)}")] == []


# -- rm returns with the veth gone ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["stop-then-rm", "rm-f"])
def test_rm_returns_with_the_veth_gone_even_while_a_connection_holds_the_netns(
        made: Made, client: Client, how: str) -> None:
    """A TCP connection still sending to a peer that does not read outlives its container as an
    orphaned socket, and keeps the container's netns (and, left to the kernel, its veth) for
    minutes: what was seen lingering."""
    net = made.network()
    sink = made.run("--network", net["Name"], "busybox", "sh", "-c", "nc -l -p 5000 </dev/null | sleep 600")
    sink_ip = client.containers.get(sink).ip
    sender = made.run("--network", net["Name"], "busybox", "sh", "-c",
                      f"sleep 0.3; dd if=/dev/zero bs=64k count=200 2>/dev/null | nc {sink_ip} 5000; sleep 600")
    c = client.containers.get(sender)
    veth = veth_of(client, c.id)
    assert veth in links(client)
    time.sleep(1)  # the connection is up and its window full
    if how == "rm-f":
        client.runtime.remove(sender, force=True)
    else:
        client.runtime.stop(sender, timeout=0)
        client.runtime.remove(sender)
    assert veth not in links(client)  # at once: no sleep, no polling
    client.runtime.settle()  # rm -f: the monitor releases the address and the record
    assert not (client.root / "networks" / net["Id"] / "endpoints" / f"{c.id}.json").exists()


# -- internal networks route only their subnet -----------------------------------------------------
def test_an_internal_network_gives_no_default_route_and_a_normal_one_does(made: Made, client: Client) -> None:
    internal, normal = made.network("--internal"), made.network()
    a = made.run("--network", internal["Name"], "busybox", "sleep", "600")
    b = made.run("--network", normal["Name"], "busybox", "sleep", "600")
    r = routes_in(client, a)
    assert "default" not in r and f"{internal['IPAM']['Config'][0]['Subnet']} dev eth0" in r, r
    gateway = normal["IPAM"]["Config"][0]["Gateway"]
    assert f"default via {gateway} dev eth0" in routes_in(client, b)


def test_on_an_internal_and_a_normal_network_the_default_route_goes_via_the_normal_one(
        made: Made, client: Client, pods_cli: Pods) -> None:
    internal, normal = made.network("--internal"), made.network()
    gateway = normal["IPAM"]["Config"][0]["Gateway"]
    first_internal = made.run("--network", internal["Name"], "busybox", "sleep", "600")
    pods_cli("network", "connect", normal["Name"], first_internal, check=True)
    r = routes_in(client, first_internal)
    assert f"default via {gateway} dev eth1" in r and r.count("default") == 1, r

    first_normal = made.run("--network", normal["Name"], "busybox", "sleep", "600")
    pods_cli("network", "connect", internal["Name"], first_normal, check=True)
    r = routes_in(client, first_normal)
    assert f"default via {gateway} dev eth0" in r and r.count("default") == 1, r

    # and once stopped and started again, the networks join in their order: the same routes
    client.runtime.stop(first_internal, timeout=0)
    client.runtime.start(first_internal)
    r = routes_in(client, first_internal)
    assert f"default via {gateway} dev eth1" in r and r.count("default") == 1, r


def test_disconnecting_the_normal_network_leaves_an_internal_one_without_default_route(
        made: Made, client: Client, pods_cli: Pods) -> None:
    internal, normal = made.network("--internal"), made.network()
    ctr = made.run("--network", normal["Name"], "busybox", "sleep", "600")
    pods_cli("network", "connect", internal["Name"], ctr, check=True)
    pods_cli("network", "disconnect", normal["Name"], ctr, check=True)
    assert "default" not in routes_in(client, ctr)


# -- rm, prune and the reaper leave nothing -------------------------------------------------------
def test_network_rm_and_prune_leave_no_bridge_rule_or_veth(tmp_path: Path) -> None:
    root = tmp_path / "root"
    client = Client(root)  # its own root: prune removes every unused network of the root it is given
    client.images.bootstrap_busybox()
    tag = root_tag(root)

    def pods(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_pods.cli", "--root", str(root), *args],
                              capture_output=True, text=True, timeout=60, check=True)

    try:
        ids = {}
        for n in ("removed", "pruned", "labelled"):
            pods("network", "create", *(["--label", "keep=no"] if n == "labelled" else []), n)
            ids[n] = client.networks.get(n)["Id"]
            client.containers.run("busybox", ["true"], network=n, remove=True)
        pods("network", "rm", "removed")
        assert pods("network", "prune", "--filter", "label=keep=no").stdout == "Deleted Networks:\nlabelled\n"
        assert pods("network", "prune").stdout == "Deleted Networks:\npruned\n"
        assert [n["Name"] for n in client.networks.list()] == ["bridge"]
        left = links(client)
        assert [n for n, i in ids.items() if f"podsb{tag}{i[:7]}" in left] == []
        assert [x for x in links(client) if x.startswith(f"podsv{tag}")] == []
        text = rules(client)
        assert [n for n, i in ids.items() if iptables.network_tag(i) in text] == []
    finally:
        client.cleanup()



def test_cleanup_releases_the_idle_default_bridge_and_keeps_a_user_network_until_pruned(tmp_path: Path) -> None:
    """A session's end and the plugin's sweeps (``cleanup``) release the default bridge, made
    again on first use; a user network keeps its record, bridge and rules, as a network made with
    ``docker network create`` does, until the user removes it or prunes (issue 15)."""
    root = tmp_path / "root"
    client = Client(root)
    client.images.bootstrap_busybox()
    tag = root_tag(root)
    try:
        mine = client.networks.create("mine")
        assert client.containers.run("busybox", ["true"], remove=True).exit_code == 0  # makes the default bridge
        default = client.networks.get("bridge")["Id"]
        bridges = {n: f"podsb{tag}{i[:7]}" for n, i in (("mine", mine["id"]), ("bridge", default))}
        assert set(bridges.values()) <= set(links(client))

        done = client.cleanup()
        assert "Deleted network: bridge" in done and "Deleted network: mine" not in done
        assert [n["Name"] for n in client.networks.list(create_default=False)] == ["mine"]
        assert bridges["mine"] in links(client) and bridges["bridge"] not in links(client)
        assert iptables.network_tag(mine["id"]) in rules(client)
        res = client.containers.run("busybox", ["ip", "-4", "-o", "addr", "show", "eth0"], network="mine", remove=True)
        assert res.exit_code == 0 and mine["subnet"].rsplit(".", 1)[0] in res.output.decode()

        assert "Deleted network: mine" in client.cleanup(prune_networks=True)  # `pods system prune`
        assert client.networks.list(create_default=False) == []
        assert [x for x in links(client) if x.startswith(f"podsb{tag}")] == []
        assert iptables.network_tag(mine["id"]) not in rules(client)
    finally:
        client.cleanup(prune_networks=True)


def test_reap_releases_our_bridge_whose_record_is_gone_and_never_anothers(made: Made, client: Client) -> None:
    net = made.network()
    made.network()  # another one stays recorded: Runtime.reap skips networks when none is (see below)
    bridge = client.runtime.networks.get(net["Id"])["bridge"]
    tag = root_tag(client.root)
    ns = _netns(client)
    decoys = [f"podsb{tag}{uuid.uuid4().hex[:7]}" for _ in range(2)]
    try:
        with Netlink.at(ns) as nl:
            # same name prefix (another root of the same 3-hex tag, or made by hand): one with
            # another root's marker, one with none; neither is ours to delete
            for d in decoys:
                nl.create_bridge(d)
            nl.set_alias(decoys[0], f"pods:{'0' * 16}:{uuid.uuid4().hex * 2}")
            assert root_hash(client.root) != "0" * 16
        assert iptables.network_tag(net["Id"]) in rules(client)
        shutil.rmtree(client.root / "networks" / net["Id"])  # the state lost in a crash
        made.networks.clear()
        out = client.reap()  # (a reap of another process on this root may have come first)
        left = links(client)
        assert bridge not in left, out
        assert iptables.network_tag(net["Id"]) not in rules(client)
        assert all(d in left for d in decoys), left
    finally:
        with Netlink.at(ns) as nl:
            for d in decoys:
                nl.delete_link(d, missing_ok=True)


def test_reap_deletes_a_veth_on_our_bridge_that_no_container_owns(made: Made, client: Client) -> None:
    net = made.network()
    bridge = client.runtime.networks.get(net["Id"])["bridge"]
    ns = _netns(client)
    stray = f"podsv{root_tag(client.root)}{'f' * 6}9"  # no container ID starts with ffffff here
    assert not any(p.name.startswith("ffffff") for p in (client.root / "containers").iterdir())
    peer = f"thp{uuid.uuid4().hex[:8]}"
    try:
        with Netlink.at(ns) as nl:
            nl.create_veth(stray, peer, master=bridge)
            assert marker(client.root, net["Id"]) in [link.alias for link in nl.link_table() if link.name == bridge]
        out = client.reap()  # (a reap of another process on this root may have come first)
        left = links(client)
        assert stray not in left and peer not in left, out
    finally:
        with Netlink.at(ns) as nl:
            nl.delete_link(stray, missing_ok=True)


def test_reap_releases_our_bridges_when_the_whole_network_state_is_gone(tmp_path: Path) -> None:
    """The state directory removed after a crash: the bridges are found by their alias alone.
    (``Networks.reap`` directly: ``Runtime.reap`` calls it only while a network is recorded.)"""
    root = tmp_path / "root"
    client = Client(root)
    net = client.networks.create(f"th-{uuid.uuid4().hex[:10]}")
    assert net["bridge"] in links(client)
    shutil.rmtree(root / "networks")
    out = client.runtime.networks.reap(set())
    assert f"deleted bridge {net['bridge']} (its network's record is gone)" in out
    assert net["bridge"] not in links(client)
    assert iptables.network_tag(net["id"]) not in rules(client)
