"""Networks over the Engine API as dockerd has them (issue 16), from the clients' side: docker-py
and the docker CLI, each test on ``pods daemon`` and on the reference dockerd (``@both_engines``).

Subnets: 10.231.0.0/16 and fd00:a1:231::/48 are this file's (no other test uses them; our
engine's pool is 10.89.0.0/16, the reference dockerd's 10.213-214.0.0/16); each test has its own
/24, so a network another run left behind makes that test fail alone.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import docker
import pytest
from dockerd_helper import both_engines

ENDPOINT_KEYS = {"IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "NetworkID", "EndpointID", "Gateway",
                 "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ipam(*pools: dict[str, Any]) -> Any:
    return docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(**p) for p in pools])


def sleeper(client: Any, labels: dict[str, str], network: str, **kw: Any) -> Any:
    ctr = client.containers.run("busybox", ["sleep", "300"], detach=True, labels=labels, network=network, **kw)
    ctr.reload()
    return ctr


@both_engines
def test_ipam_config_is_kept_as_given_and_honoured(docker_client: Any, labels: dict[str, str]) -> None:
    net = docker_client.networks.create(unique("h1-ipam"), labels=labels, ipam=ipam(
        {"subnet": "10.231.3.0/24", "iprange": "10.231.3.128/25", "gateway": "10.231.3.254",
         "aux_addresses": {"reserved": "10.231.3.129"}}))
    net.reload()
    assert net.attrs["IPAM"]["Config"] == [{"Subnet": "10.231.3.0/24", "IPRange": "10.231.3.128/25",
                                            "Gateway": "10.231.3.254",
                                            "AuxiliaryAddresses": {"reserved": "10.231.3.129"}}]
    first = sleeper(docker_client, labels, net.name)
    second = sleeper(docker_client, labels, net.name)
    a = first.attrs["NetworkSettings"]["Networks"][net.name]
    b = second.attrs["NetworkSettings"]["Networks"][net.name]
    # the range's first address, then the next one that is not the auxiliary address
    assert (a["IPAddress"], b["IPAddress"]) == ("10.231.3.128", "10.231.3.130")
    assert a["Gateway"] == b["Gateway"] == "10.231.3.254"
    assert a["IPPrefixLen"] == 24
    route = first.exec_run(["ip", "route"]).output.decode()
    assert "default via 10.231.3.254" in route


@both_engines
def test_endpoint_fields_in_container_and_network_inspect(docker_client: Any, labels: dict[str, str]) -> None:
    net = docker_client.networks.create(unique("h1-ep"), labels=labels, ipam=ipam({"subnet": "10.231.5.0/24"}))
    ctr = docker_client.containers.create("busybox", ["sleep", "300"], labels=labels, network=net.name)
    docker_client.api.disconnect_container_from_network(ctr.id, net.id)
    docker_client.api.connect_container_to_network(ctr.id, net.id, aliases=["h1-alias"])
    ctr.start()
    ctr.reload()
    ep = ctr.attrs["NetworkSettings"]["Networks"][net.name]
    assert set(ep) >= ENDPOINT_KEYS, sorted(ENDPOINT_KEYS - set(ep))
    assert ep["NetworkID"] == net.id
    assert re.fullmatch(r"[0-9a-f]{64}", ep["EndpointID"])
    assert re.fullmatch(r"02:42(:[0-9a-f]{2}){4}", ep["MacAddress"])
    assert "h1-alias" in ep["Aliases"]
    assert ep["IPAddress"].startswith("10.231.5.") and ep["Gateway"] == "10.231.5.1"
    assert ep["GlobalIPv6Address"] == "" and ep["GlobalIPv6PrefixLen"] == 0
    mac = ctr.exec_run(["cat", "/sys/class/net/eth0/address"]).output.decode().strip()
    assert mac == ep["MacAddress"]

    net.reload()
    shown = net.attrs["Containers"][ctr.id]
    assert shown["Name"] == ctr.name
    assert shown["EndpointID"] == ep["EndpointID"]
    assert shown["MacAddress"] == ep["MacAddress"]
    assert shown["IPv4Address"] == f"{ep['IPAddress']}/24"
    assert shown["IPv6Address"] == ""
    assert net.attrs["EnableIPv6"] is False
    assert net.attrs["Options"] == {}  # none given (docker-compose compares them with its file's)
    listed, = docker_client.networks.list(names=[net.name])
    assert listed.attrs["Containers"] == {}  # only inspect lists them (docker-py's greedy=True asks for it)
    listed, = docker_client.networks.list(names=[net.name], greedy=True)
    assert list(listed.attrs["Containers"]) == [ctr.id]


@both_engines
def test_ipv6_network_gives_containers_an_ipv6_address(docker_client: Any, labels: dict[str, str]) -> None:
    net = docker_client.networks.create(unique("h1-v6"), labels=labels, enable_ipv6=True, ipam=ipam(
        {"subnet": "10.231.6.0/24"}, {"subnet": "fd00:a1:231:6::/64"}))
    net.reload()
    assert net.attrs["EnableIPv6"] is True
    assert {"Subnet": "fd00:a1:231:6::/64"} in net.attrs["IPAM"]["Config"]
    a = sleeper(docker_client, labels, net.name)
    b = sleeper(docker_client, labels, net.name)
    ep = a.attrs["NetworkSettings"]["Networks"][net.name]
    assert ep["GlobalIPv6Address"] == "fd00:a1:231:6::2"
    assert ep["GlobalIPv6PrefixLen"] == 64
    assert ep["IPv6Gateway"] == "fd00:a1:231:6::1"
    assert "inet6 fd00:a1:231:6::2/64" in a.exec_run(["ip", "-6", "addr", "show", "eth0"]).output.decode()
    assert "default via fd00:a1:231:6::1" in a.exec_run(["ip", "-6", "route"]).output.decode()
    hosts = a.exec_run(["cat", "/etc/hosts"]).output.decode().splitlines()
    assert f"fd00:a1:231:6::2\t{a.attrs['Config']['Hostname']}" in hosts, hosts
    peer = b.attrs["NetworkSettings"]["Networks"][net.name]["GlobalIPv6Address"]
    assert peer == "fd00:a1:231:6::3"
    assert a.exec_run(["ping", "-6", "-c", "1", "-W", "5", peer]).exit_code == 0
    net.reload()
    assert net.attrs["Containers"][a.id]["IPv6Address"] == "fd00:a1:231:6::2/64"


@both_engines
def test_ipv6_subnet_without_enable_ipv6_is_kept_and_gives_no_ipv6_address(
        docker_client: Any, labels: dict[str, str]) -> None:
    net = docker_client.networks.create(unique("h1-v6off"), labels=labels, ipam=ipam(
        {"subnet": "10.231.7.0/24"}, {"subnet": "fd00:a1:231:7::/64"}))
    net.reload()
    assert net.attrs["EnableIPv6"] is False
    assert {"Subnet": "fd00:a1:231:7::/64"} in net.attrs["IPAM"]["Config"]
    ep = sleeper(docker_client, labels, net.name).attrs["NetworkSettings"]["Networks"][net.name]
    assert ep["GlobalIPv6Address"] == ""


@both_engines
def test_ipam_mistakes_are_refused_as_dockerd_says(docker_client: Any, labels: dict[str, str]) -> None:
    with pytest.raises(docker.errors.APIError, match=r"auxiliary address: \(x:10\.231\.8\.1\) must belong to "
                                                     r"the master pool: 10\.231\.9\.0/24"):
        docker_client.networks.create(unique("h1-aux"), labels=labels, ipam=ipam(
            {"subnet": "10.231.9.0/24", "aux_addresses": {"x": "10.231.8.1"}}))
    with pytest.raises(docker.errors.APIError, match=r"failed to allocate gateway \(10\.231\.10\.1\): "
                                                     r"Requested address is out of range"):
        docker_client.networks.create(unique("h1-gw"), labels=labels, ipam=ipam(
            {"subnet": "10.231.11.0/24", "gateway": "10.231.10.1"}))
    with pytest.raises(docker.errors.NotFound, match='plugin "h1nosuch" not found'):
        docker_client.networks.create(unique("h1-drv"), driver="h1nosuch", labels=labels)
    with pytest.raises(docker.errors.APIError) as exc:
        docker_client.networks.create("bridge", labels=labels)
    assert exc.value.status_code in (403, 409)  # predefined (409 where dockerd finds the name taken first)
    name = unique("h1-dup")
    docker_client.networks.create(name, labels=labels)
    with pytest.raises(docker.errors.APIError, match=f"network with name {name} already exists") as exc:
        docker_client.networks.create(name, labels=labels, check_duplicate=True)
    assert exc.value.status_code == 409


@both_engines
def test_network_names_with_spaces_work_as_in_dockerd(docker: Any) -> None:
    name = unique("h1 net with spaces")
    nid = docker("network", "create", name).stdout.strip()
    try:
        assert docker("network", "inspect", "--format", "{{.Name}}", name).stdout.strip() == name
        assert name in docker("network", "ls", "--format", "{{.Name}}").stdout.splitlines()
        out = docker("run", "--rm", "--network", name, "busybox", "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert "inet " in out
    finally:
        docker("network", "rm", nid)


@both_engines
def test_network_prune_removes_unused_networks_by_label_and_until(
        docker_client: Any, labels: dict[str, str]) -> None:
    (key, value), = labels.items()
    mine = f"{key}={value}"
    unused = docker_client.networks.create(unique("h1-prune-unused"), labels=labels)
    used = docker_client.networks.create(unique("h1-prune-used"), labels=labels)
    other = docker_client.networks.create(unique("h1-prune-other"), labels={**labels, key: value + "-other"})
    sleeper(docker_client, labels, used.name)
    try:
        before = int(time.time()) - 3600
        assert not docker_client.networks.prune(filters={"label": mine, "until": str(before)})["NetworksDeleted"]
        assert not docker_client.networks.prune(filters={"label": mine, "until": "1h"})["NetworksDeleted"]
        assert docker_client.networks.prune(filters={"label": mine})["NetworksDeleted"] == [unused.name]
        names = {n.name for n in docker_client.networks.list()}
        assert unused.name not in names and used.name in names and other.name in names
    finally:
        other.remove()


@both_engines
def test_networking_config_names_the_network_joined(docker_engine: Any, docker_client: Any,
                                                   labels: dict[str, str]) -> None:
    """dockerd joins the network EndpointsConfig names (NetworkMode's is not joined besides it);
    two entries are refused below API 1.44."""
    api = docker_client.api
    a = docker_client.networks.create(unique("h1-nc-a"), labels=labels, ipam=ipam({"subnet": "10.231.12.0/24"}))
    b = docker_client.networks.create(unique("h1-nc-b"), labels=labels, ipam=ipam({"subnet": "10.231.13.0/24"}))
    made = api.create_container("busybox", ["sleep", "300"], labels=labels,
                                host_config=api.create_host_config(network_mode=a.name),
                                networking_config=api.create_networking_config(
                                    {b.name: api.create_endpoint_config(aliases=["h1-b"])}))
    api.start(made["Id"])
    nets = api.inspect_container(made["Id"])["NetworkSettings"]["Networks"]
    assert list(nets) == [b.name]
    assert "h1-b" in nets[b.name]["Aliases"]
    assert nets[b.name]["IPAddress"].startswith("10.231.13.")

    old = docker.APIClient(base_url=docker_engine.host, version="1.41")
    try:
        with pytest.raises(docker.errors.APIError, match="Container cannot be connected to network endpoints") as exc:
            old.create_container("busybox", ["true"], labels=labels,
                                 host_config=old.create_host_config(network_mode=a.name),
                                 networking_config=old.create_networking_config(
                                     {a.name: old.create_endpoint_config(), b.name: old.create_endpoint_config()}))
        assert exc.value.status_code == 400
    finally:
        old.close()

    missing = unique("h1-no-such-net")
    with pytest.raises(docker.errors.NotFound, match=f"network {missing} not found"):
        # dockerd 20.10 refuses at start, later ones at create: either way, a 404 naming it
        made = api.create_container("busybox", ["true"], labels=labels,
                                    networking_config=api.create_networking_config(
                                        {missing: api.create_endpoint_config()}))
        api.start(made["Id"])


def create_and_start(api: Any, **kw: Any) -> str:
    """A container made and started (dockerd checks some endpoint settings at create, some at start)."""
    made = api.create_container("busybox", ["sleep", "300"], **kw)
    api.start(made["Id"])
    return str(made["Id"])


@both_engines
def test_fixed_addresses_on_create_and_connect(docker_client: Any, labels: dict[str, str]) -> None:
    api = docker_client.api
    net = docker_client.networks.create(unique("h1-fixed"), labels=labels, ipam=ipam({"subnet": "10.231.14.0/24"}))
    auto = docker_client.networks.create(unique("h1-auto"), labels=labels)

    def on(network: str, address: str) -> dict[str, Any]:
        return {"labels": labels, "host_config": api.create_host_config(network_mode=network),
                "networking_config": api.create_networking_config(
                    {network: api.create_endpoint_config(ipv4_address=address)})}

    cid = create_and_start(api, **on(net.name, "10.231.14.50"))
    ep = api.inspect_container(cid)["NetworkSettings"]["Networks"][net.name]
    assert ep["IPAddress"] == "10.231.14.50"
    assert ep["IPAMConfig"] == {"IPv4Address": "10.231.14.50"}

    later = api.create_container("busybox", ["sleep", "300"], labels=labels)
    api.disconnect_container_from_network(later["Id"], "bridge")
    api.connect_container_to_network(later["Id"], net.id, ipv4_address="10.231.14.60", aliases=["h1-fixed"])
    api.start(later["Id"])
    ep = api.inspect_container(later["Id"])["NetworkSettings"]["Networks"][net.name]
    assert (ep["IPAddress"], ep["IPAMConfig"]) == ("10.231.14.60", {"IPv4Address": "10.231.14.60"})
    assert "h1-fixed" in ep["Aliases"]
    shown = docker_client.containers.get(cid).exec_run(["ping", "-c", "1", "-W", "5", "h1-fixed"]).output.decode()
    assert "10.231.14.60" in shown

    with pytest.raises(docker.errors.APIError, match="Address already in use"):
        create_and_start(api, **on(net.name, "10.231.14.50"))
    with pytest.raises(docker.errors.APIError, match="does not belong to any of this network's subnets"):
        create_and_start(api, **on(net.name, "10.231.99.5"))
    with pytest.raises(docker.errors.APIError, match="user specified IP address is supported only when connecting "
                                                     "to networks with user configured subnets"):
        create_and_start(api, **on(auto.name, "10.231.15.5"))


def test_endpoint_aliases_and_dns_names_follow_the_api_version(daemon: Any, docker_client: Any,
                                                              labels: dict[str, str]) -> None:
    """``pods daemon`` only (the reference dockerd, 20.10, speaks API 1.41 at most): the Engine
    API's version history says DNSNames came in 1.44 and the short ID left Aliases in 1.45."""
    net = docker_client.networks.create(unique("h1-dns"), labels=labels)
    ctr = sleeper(docker_client, labels, net.name, name=unique("h1-dns-ctr"))
    docker_client.api.connect_container_to_network(ctr.id, "bridge")
    seen = {}
    for version in ("1.41", "1.44", "1.45"):
        api = docker.APIClient(base_url=daemon.host, version=version)
        try:
            seen[version] = api.inspect_container(ctr.id)["NetworkSettings"]["Networks"]
        finally:
            api.close()
    short = ctr.id[:12]
    assert seen["1.41"][net.name]["Aliases"] == [short] and "DNSNames" not in seen["1.41"][net.name]
    assert seen["1.44"][net.name]["Aliases"] == [short]
    assert seen["1.44"][net.name]["DNSNames"] == [ctr.name, short]
    assert seen["1.45"][net.name]["Aliases"] is None
    assert seen["1.45"][net.name]["DNSNames"] == [ctr.name, short]
    assert seen["1.45"]["bridge"]["DNSNames"] is None and seen["1.41"]["bridge"]["Aliases"] is None


def test_from_api_1_44_a_create_joins_every_network_it_names(daemon: Any, docker_client: Any,
                                                             labels: dict[str, str]) -> None:
    """``pods daemon`` only (the reference dockerd, 20.10, refuses two: see
    test_networking_config_names_the_network_joined)."""
    a = docker_client.networks.create(unique("h1-multi-a"), labels=labels, ipam=ipam({"subnet": "10.231.16.0/24"}))
    b = docker_client.networks.create(unique("h1-multi-b"), labels=labels, ipam=ipam({"subnet": "10.231.17.0/24"}))
    api = docker.APIClient(base_url=daemon.host, version="1.44")
    try:
        made = api.create_container("busybox", ["sleep", "300"], labels=labels,
                                    host_config=api.create_host_config(network_mode=a.name),
                                    networking_config=api.create_networking_config({
                                        a.name: api.create_endpoint_config(aliases=["h1-on-a"]),
                                        b.name: api.create_endpoint_config(ipv4_address="10.231.17.9")}))
        api.start(made["Id"])
        nets = api.inspect_container(made["Id"])["NetworkSettings"]["Networks"]
        assert sorted(nets) == sorted([a.name, b.name])
        assert "h1-on-a" in nets[a.name]["Aliases"] and nets[b.name]["IPAddress"] == "10.231.17.9"
        missing = unique("h1-no-such-net")
        with pytest.raises(docker.errors.NotFound, match=f"network {missing} not found"):
            api.create_container("busybox", ["true"], labels=labels, name=unique("h1-multi-gone"),
                                 host_config=api.create_host_config(network_mode=a.name),
                                 networking_config=api.create_networking_config({
                                     a.name: api.create_endpoint_config(), missing: api.create_endpoint_config()}))
        (key, value), = labels.items()
        assert [c["Id"] for c in api.containers(all=True, filters={"label": f"{key}={value}"})] == [made["Id"]]
    finally:
        api.close()


@both_engines
def test_host_and_none_are_listed_and_inspected(docker_client: Any) -> None:
    for name, driver in (("host", "host"), ("none", "null")):
        doc = docker_client.api.inspect_network(name)
        assert (doc["Name"], doc["Driver"], doc["Scope"]) == (name, driver, "local")
        assert name in {n["Name"] for n in docker_client.api.networks(names=[name])}


@both_engines
def test_filters_and_connect_errors_as_dockerd(docker_client: Any, labels: dict[str, str]) -> None:
    api = docker_client.api
    net = docker_client.networks.create(unique("h1-filt"), labels=labels)
    for call in (lambda: api.networks(filters={"h1bogus": "x"}), lambda: api.prune_networks(filters={"h1bogus": "x"}),
                 lambda: api.volumes(filters={"h1bogus": "x"}), lambda: api.prune_volumes(filters={"h1bogus": "x"}),
                 lambda: api.prune_images(filters={"h1bogus": "x"})):
        with pytest.raises(docker.errors.APIError, match="Invalid filter 'h1bogus'") as exc:
            call()
        assert exc.value.status_code == 400
    ctr = sleeper(docker_client, labels, net.name)
    with pytest.raises(docker.errors.APIError, match=f"endpoint with name {ctr.name} already exists in network "
                                                     f"{net.name}") as exc:
        api.connect_container_to_network(ctr.id, net.id)
    assert exc.value.status_code == 403

    volume = docker_client.volumes.create(unique("h1-dangling"), labels=labels)
    assert volume.name in {v["Name"] for v in api.volumes(filters={"dangling": "true"})["Volumes"]}
    docker_client.containers.create("busybox", ["true"], labels=labels, volumes={volume.name: {"bind": "/v"}})
    assert volume.name not in {v["Name"] for v in api.volumes(filters={"dangling": "true"})["Volumes"]}
    assert volume.name in {v["Name"] for v in api.volumes(filters={"dangling": "false"})["Volumes"]}


def test_network_list_dangling_filter_means_no_container_uses_it(docker_client: Any, labels: dict[str, str]) -> None:
    """``pods daemon`` only, as the Engine API reference defines ``dangling``: dockerd 20.10 lists
    every custom network as dangling (its list rows carry no containers to look at)."""
    api = docker_client.api
    net = docker_client.networks.create(unique("h1-dangling"), labels=labels)
    assert net.name in {n["Name"] for n in api.networks(filters={"dangling": "true"})}
    sleeper(docker_client, labels, net.name)
    assert net.name not in {n["Name"] for n in api.networks(filters={"dangling": "true"})}
    assert net.name in {n["Name"] for n in api.networks(filters={"dangling": "false"})}
    assert not {"bridge", "host", "none"} & {n["Name"] for n in api.networks(filters={"dangling": "true"})}


def test_enable_ipv6_without_a_subnet_takes_one_of_the_engines(docker_client: Any, labels: dict[str, str]) -> None:
    """``pods daemon`` only: dockerd 20.10 has no default IPv6 pool and refuses this; newer ones
    pick a ULA /64, as the engine does from fd70:6f64:7300::/48."""
    import ipaddress

    net = docker_client.networks.create(unique("h1-v6auto"), labels=labels, enable_ipv6=True)
    net.reload()
    v6 = [c for c in net.attrs["IPAM"]["Config"] if ":" in c["Subnet"]]
    assert len(v6) == 1 and ipaddress.ip_network(v6[0]["Subnet"]).subnet_of(ipaddress.ip_network("fd70:6f64:7300::/48"))
    ep = sleeper(docker_client, labels, net.name).attrs["NetworkSettings"]["Networks"][net.name]
    assert ipaddress.ip_address(ep["GlobalIPv6Address"]) in ipaddress.ip_network(v6[0]["Subnet"])
    assert ep["IPv6Gateway"] == v6[0]["Gateway"]
