"""IP address management of a network: its IPAM configs checked, gateways chosen, addresses handed out.

A network has at most one IPv4 pool and one IPv6 pool (:class:`Pool`), each a subnet with a
gateway, an optional ``ip_range`` (the part of the subnet containers are given addresses from) and
auxiliary addresses (kept for something else on the network: never given to a container), as the
Engine API's ``IPAM.Config`` entries have them (``Subnet``, ``IPRange``, ``Gateway``,
``AuxiliaryAddresses``). The checks and their texts follow dockerd's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict

from pytest_pods.errors import InvalidArgumentError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Pool(TypedDict):
    """One address family's pool of a network."""

    subnet: str
    gateway: str
    ip_range: str          # "" = the whole subnet
    aux: dict[str, str]    # name -> address, never handed out


class Requested(TypedDict):
    """One ``IPAM.Config`` entry as given, checked; ``shown`` is what inspect shows of it."""

    subnet: IPNetwork | None
    gateway: IPAddress | None
    ip_range: IPNetwork | None
    aux: dict[str, IPAddress]
    shown: dict[str, Any]


def _network(text: str, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgumentError(f"invalid {what} {text!r}: invalid CIDR address: {text}") from None


def parse_config(cfg: Mapping[str, Any]) -> Requested | None:
    """One ``IPAM.Config`` entry checked (None for an empty one: a pool is chosen).

    :raises InvalidArgumentError: as dockerd refuses it (no subnet with a range, gateway or
        auxiliary address; a gateway, range or address outside the subnet; bad addresses).
    """
    subnet_text = str(cfg.get("Subnet") or "")
    range_text = str(cfg.get("IPRange") or "")
    gw_text = str(cfg.get("Gateway") or "")
    aux_in = cfg.get("AuxiliaryAddresses") or cfg.get("AuxAddress") or {}
    if not isinstance(aux_in, Mapping):
        raise InvalidArgumentError("invalid IPAM config: AuxiliaryAddresses must be an object of name: address")
    if not (subnet_text or range_text or gw_text or aux_in):
        return None
    if not subnet_text:
        raise InvalidArgumentError(f"invalid IPAM config: a Subnet is required with IPRange, Gateway or "
                                   f"AuxiliaryAddresses (got {dict(cfg)})")
    subnet = _network(subnet_text, "subnet")
    if subnet.num_addresses < 4:
        raise InvalidArgumentError(f"invalid subnet {subnet_text}: too small, at least 4 addresses are needed")
    shown: dict[str, Any] = {"Subnet": subnet_text}
    ip_range = None
    if range_text:
        ip_range = _network(range_text, "ip-range")
        if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
            raise InvalidArgumentError(f"invalid ip-range {range_text}: it must be within subnet {subnet_text}")
        shown["IPRange"] = range_text
    gateway = None
    if gw_text:
        try:
            gateway = ipaddress.ip_address(gw_text)
        except ValueError:
            raise InvalidArgumentError(f"invalid gateway address {gw_text} in Ipam configuration") from None
        if gateway not in subnet:
            raise InvalidArgumentError(f"failed to allocate gateway ({gw_text}): Requested address is out of range")
        shown["Gateway"] = gw_text
    aux: dict[str, IPAddress] = {}
    for key, value in aux_in.items():
        try:
            addr = ipaddress.ip_address(str(value))
        except ValueError:
            raise InvalidArgumentError(f"invalid auxiliary address {key}={value}: not an IP address") from None
        if addr not in subnet:
            raise InvalidArgumentError(f"auxiliary address: ({key}:{value}) must belong to the master pool: {subnet_text}")
        aux[str(key)] = addr
    if aux:
        shown["AuxiliaryAddresses"] = {k: str(v) for k, v in aux.items()}
    return {"subnet": subnet, "gateway": gateway, "ip_range": ip_range, "aux": aux, "shown": shown}


def split_configs(configs: list[Any], name: str) -> tuple[Requested | None, Requested | None]:
    """The IPv4 and the IPv6 entry of ``IPAM.Config`` (either may be None).

    :raises InvalidArgumentError: not a list of objects, a bad entry, or more than one per family
        (one subnet per family is what this engine's bridges carry).
    """
    v4: Requested | None = None
    v6: Requested | None = None
    for cfg in configs:
        if not isinstance(cfg, Mapping):
            raise InvalidArgumentError("json: cannot unmarshal IPAM.Config: want a list of objects")
        req = parse_config(cfg)
        if req is None:
            continue
        assert req["subnet"] is not None
        if req["subnet"].version == 4:
            if v4 is not None:
                raise InvalidArgumentError(f"network create {name}: more than one IPv4 subnet is not supported")
            v4 = req
        else:
            if v6 is not None:
                raise InvalidArgumentError(f"network create {name}: more than one IPv6 subnet is not supported")
            v6 = req
    return v4, v6


def pool_of(subnet: IPNetwork, req: Requested | None) -> Pool:
    """The pool for ``subnet``: the requested gateway, range and auxiliary addresses, else the
    subnet's first address as the gateway (as dockerd)."""
    gateway = req["gateway"] if req and req["gateway"] is not None else next(subnet.hosts())
    return {"subnet": str(subnet), "gateway": str(gateway),
            "ip_range": str(req["ip_range"]) if req and req["ip_range"] is not None else "",
            "aux": {k: str(v) for k, v in (req["aux"] if req else {}).items()}}


def candidates(pool: Pool) -> Iterator[str]:
    """The addresses a container may be given, in order: those of ``ip_range`` (or of the
    subnet), without the subnet's own network and broadcast addresses, the gateway and the
    auxiliary addresses. Lazy: an IPv6 /64 is walked only as far as needed."""
    subnet = ipaddress.ip_network(pool["subnet"])
    span = ipaddress.ip_network(pool["ip_range"]) if pool["ip_range"] else subnet
    reserved = {subnet.network_address, ipaddress.ip_address(pool["gateway"]),
                *(ipaddress.ip_address(a) for a in pool["aux"].values())}
    if subnet.version == 4:
        reserved.add(subnet.broadcast_address)
    first = int(span.network_address)
    for i in range(span.num_addresses):
        addr = ipaddress.ip_address(first + i) if subnet.version == 6 else ipaddress.IPv4Address(first + i)
        if addr not in reserved:
            yield str(addr)


def check_static(pool: Pool | None, address: str, network: str) -> str:
    """A container's requested address (``IPAMConfig.IPv4Address``/``IPv6Address``) checked
    against the network's pool (dockerd's texts).

    :raises InvalidArgumentError: not an address, or outside the network's subnets.
    """
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidArgumentError(f"invalid IP address {address!r}") from None
    if pool is None or addr not in ipaddress.ip_network(pool["subnet"]):
        raise InvalidArgumentError(
            f"Invalid address {address}: It does not belong to any of this network's subnets ({network})")
    if str(addr) == pool["gateway"] or str(addr) in pool["aux"].values():
        raise InvalidArgumentError(f"Address already in use: {address} is reserved on network {network}")
    return str(addr)
