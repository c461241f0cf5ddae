"""The IPAM of a network (pytest_pods/engine/network/ipam.py): configs checked with dockerd's
texts, gateways, and the order addresses are handed out in."""

from __future__ import annotations

import itertools

import pytest

from pytest_pods.engine.network import ipam
from pytest_pods.errors import InvalidArgumentError


def test_a_config_is_kept_as_given() -> None:
    req = ipam.parse_config({"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25", "Gateway": "10.1.0.254",
                             "AuxiliaryAddresses": {"a": "10.1.0.129"}})
    assert req is not None
    assert req["shown"] == {"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25", "Gateway": "10.1.0.254",
                            "AuxiliaryAddresses": {"a": "10.1.0.129"}}
    assert ipam.parse_config({}) is None
    assert ipam.parse_config({"Subnet": "10.1.0.0/24"})["shown"] == {"Subnet": "10.1.0.0/24"}  # type: ignore[index]


@pytest.mark.parametrize(("cfg", "text"), [
    ({"Subnet": "10.1.0.0/24", "Gateway": "10.2.0.1"}, "failed to allocate gateway (10.2.0.1): Requested address is out of range"),
    ({"Subnet": "10.1.0.0/24", "Gateway": "bogus"}, "invalid gateway address bogus in Ipam configuration"),
    ({"Subnet": "10.1.0.0/24", "AuxiliaryAddresses": {"x": "10.9.0.1"}},
     "auxiliary address: (x:10.9.0.1) must belong to the master pool: 10.1.0.0/24"),
    ({"Subnet": "10.1.0.0/24", "IPRange": "10.2.0.0/25"}, "it must be within subnet 10.1.0.0/24"),
    ({"Subnet": "10.1.0.0/33"}, "invalid CIDR address: 10.1.0.0/33"),
    ({"Subnet": "10.1.0.0/31"}, "too small"),
    ({"IPRange": "10.1.0.0/25"}, "a Subnet is required"),
])
def test_mistakes_are_refused(cfg: dict[str, object], text: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        ipam.parse_config(cfg)
    assert text in str(exc.value)


def test_one_subnet_per_family() -> None:
    v4, v6 = ipam.split_configs([{"Subnet": "fd00:1::/64"}, {"Subnet": "10.1.0.0/24"}], "n")
    assert v4 is not None and v6 is not None and str(v6["subnet"]) == "fd00:1::/64"
    with pytest.raises(InvalidArgumentError, match="more than one IPv4 subnet"):
        ipam.split_configs([{"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}], "n")


def test_addresses_come_from_the_range_and_skip_gateway_and_auxiliary_addresses() -> None:
    req = ipam.parse_config({"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25", "Gateway": "10.1.0.254",
                             "AuxiliaryAddresses": {"a": "10.1.0.129"}})
    assert req is not None and req["subnet"] is not None
    pool = ipam.pool_of(req["subnet"], req)
    got = list(ipam.candidates(pool))
    assert got[:3] == ["10.1.0.128", "10.1.0.130", "10.1.0.131"]
    assert "10.1.0.254" not in got and "10.1.0.255" not in got and got[-1] == "10.1.0.253"
    whole = ipam.pool_of(req["subnet"], None)
    assert whole["gateway"] == "10.1.0.1"
    assert list(itertools.islice(ipam.candidates(whole), 2)) == ["10.1.0.2", "10.1.0.3"]


def test_ipv6_addresses_are_walked_lazily() -> None:
    req = ipam.parse_config({"Subnet": "fd00:1::/64"})
    assert req is not None and req["subnet"] is not None
    pool = ipam.pool_of(req["subnet"], req)
    assert pool["gateway"] == "fd00:1::1"
    assert list(itertools.islice(ipam.candidates(pool), 2)) == ["fd00:1::2", "fd00:1::3"]


def test_fixed_addresses_are_checked() -> None:
    pool: ipam.Pool = {"subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "ip_range": "", "aux": {"a": "10.1.0.9"}}
    assert ipam.check_static(pool, "10.1.0.50", "n") == "10.1.0.50"
    with pytest.raises(InvalidArgumentError, match="does not belong to any of this network's subnets"):
        ipam.check_static(pool, "10.2.0.50", "n")
    with pytest.raises(InvalidArgumentError, match="Address already in use"):
        ipam.check_static(pool, "10.1.0.9", "n")
    with pytest.raises(InvalidArgumentError, match="does not belong"):
        ipam.check_static(None, "fd00::5", "n")
