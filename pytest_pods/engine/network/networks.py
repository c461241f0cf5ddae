"""Container networks: the default ``bridge`` and user networks, addresses, names, endpoints.

A network is a Linux bridge with the network's gateway address, and a record under
``ROOT/networks/<id>/``: ``network.json`` (a :class:`NetworkRecord`), ``leases/<ip>`` (one file per
address in use, made with O_EXCL so concurrent processes never hand out the same address) and
``endpoints/<cid>.json`` (an :class:`EndpointRecord`: who is attached, under which names, with
which ``/etc/hosts`` file).

Mechanisms, and why:
- rtnetlink directly (``network/netlink.py``) for bridges, veth pairs, addresses and routes: a
  few hundred microseconds per container, where ``ip`` commands cost milliseconds each and
  pyroute2 tens of milliseconds to import.
- iptables for outbound NAT and isolation between networks (``network/iptables.py``: our own
  chains, every rule tagged with its network or container); published ports are
  ``network/ports.py``.
- Rootless (``network/rootless_net.py``): the same bridges, veths, addresses, routes and rules,
  made in the root's rootless netns (the namespace holder's) instead of the host's, with an
  outbound helper (pasta) for NAT to leave by and port forwarders instead of DNAT.
- Reading creates nothing (issue 14): ``list`` and ``get`` report the default ``bridge`` from its
  definition until a container needs it; its ID is derived from the root, so what a listing showed
  is what is made. Every bridge is labelled (its alias: :func:`marker`) so that the reaper can
  release one whose record is gone, and never touches another's.
- A container's host-side veth is deleted by us, at once (``detach``, ``release_links``): left to
  the kernel it lives as long as the container's netns, which an orphaned TCP connection still
  sending keeps alive for minutes after the container died.
- ``internal`` networks give no default route; a container's default route goes via its first
  non-internal network (as in Docker).
- IPAM (issue 16, ``network/ipam.py``): one IPv4 and at most one IPv6 pool per network, each
  with the gateway, ``IPRange`` and auxiliary addresses as given (kept in the record, shown in
  inspect as given, honoured by the allocator). With ``enable_ipv6`` the bridge carries the IPv6
  gateway and each container an IPv6 address (no duplicate address detection, as docker's) and
  an IPv6 default route: containers reach each other and the gateway over IPv6. Not done: IPv6
  forwarding or NAT beyond the host (the host's ``net.ipv6.conf.all.forwarding`` is left as it
  is, since turning it on changes how the host takes router advertisements), IPv6 names in
  ``/etc/hosts`` and published ports on IPv6. An IPv6 subnet without ``enable_ipv6`` is kept and
  shown, and gives no addresses (as dockerd); ``enable_ipv6`` without one takes a /64 of
  ``DEFAULT_POOL6`` (a ULA prefix), as newer dockerd picks one of its own.
- Names: each container's ``/etc/hosts`` lists the containers of its user networks by name and
  alias, rewritten in place (the file is bind-mounted, its inode must stay) when one joins or
  leaves. The default ``bridge`` network has no name resolution, as in Docker.
"""

from __future__ import annotations

import builtins  # Networks.list shadows the name in the class
import contextlib
import errno
import ipaddress  # already loaded with pathlib (urllib.parse imports it)
import json
import os
import re
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from pytest_pods.engine import events
from pytest_pods.engine.files import remove_tree
from pytest_pods.engine.linux import process_start_time
from pytest_pods.engine.locks import FileLock
from pytest_pods.engine.network import ipam, iptables, rootless_net
from pytest_pods.engine.network.netlink import Netlink
from pytest_pods.errors import (
    ConflictError,
    InvalidArgumentError,
    NetlinkError,
    NetworkError,
    NetworkNotFoundError,
)

if TYPE_CHECKING:
    from hashlib import sha256 as _sha256  # the same interface, with types
else:  # lazy: start latency: the builtin sha256 imports in a millisecond, hashlib (OpenSSL) in several
    try:
        from _sha256 import sha256 as _sha256  # lazy: as above
    except ImportError:  # pragma: no cover - a Python without it (3.12 renamed it _sha2)
        from hashlib import sha256 as _sha256  # lazy: as above


class NetworkRecord(TypedDict):
    """``networks/<id>/network.json``."""

    id: str
    name: str
    driver: str        # "bridge"
    subnet: str        # "10.89.0.0/24"
    gateway: str       # the bridge's address, the subnet's first
    bridge: str        # the Linux bridge: podsb<root tag><id[:7]>
    internal: bool     # no outbound NAT, no traffic leaving the bridge
    labels: dict[str, str]
    created: float     # time.time()
    # the IPAM config as given (issue 16); records made before have none of these
    ip_range: NotRequired[str]            # "" = the whole subnet
    aux: NotRequired[dict[str, str]]      # auxiliary addresses: never handed out
    ipam_config: NotRequired[list[dict[str, Any]]]  # IPAM.Config as inspect shows it
    ipam_options: NotRequired[dict[str, str] | None]
    enable_ipv6: NotRequired[bool]        # containers get an address of pool6
    pool6: NotRequired[ipam.Pool | None]  # the IPv6 pool, kept (and used with enable_ipv6)
    options: NotRequired[dict[str, str]]  # the driver options given
    attachable: NotRequired[bool]
    subnet_given: NotRequired[bool]       # the IPv4 subnet was the creator's (fixed addresses are allowed)


class EndpointRecord(TypedDict):
    """``networks/<id>/endpoints/<cid>.json``: one container on one network (also kept, by
    network name, in the container's state as ``endpoints``)."""

    cid: str
    name: str              # the container's name: resolvable by its peers on a user network
    aliases: list[str]
    ip: str
    pid: int               # the container's pid 1 (with pid_start: alive?)
    pid_start: int | None
    hosts: str             # its /etc/hosts (bind-mounted: rewritten in place)
    hostname: str
    veth: str              # the host end
    ifname: str            # the container end: eth0, eth1, ...
    network: str
    network_id: str
    gateway: str
    prefix: int
    # issue 16; endpoints made before have none of these
    endpoint_id: NotRequired[str]
    mac: NotRequired[str]
    ip6: NotRequired[str]          # "" without IPv6
    prefix6: NotRequired[int]
    gateway6: NotRequired[str]
    ipam_config: NotRequired[dict[str, Any] | None]  # the addresses asked for (IPAMConfig, LinkLocalIPs a list)
    links: NotRequired[list[str] | None]
    driver_opts: NotRequired[dict[str, str] | None]


DEFAULT_NETWORK = "bridge"
SPECIAL_MODES = ("none", "host")
DEFAULT_POOL = ipaddress.IPv4Network("10.89.0.0/16")  # /24s handed out from here
DEFAULT_POOL6 = ipaddress.IPv6Network("fd70:6f64:7300::/48")  # /64s for EnableIPv6 without a subnet ("pods")


def root_tag(root: Path) -> str:
    """3 hex digits naming a state root in kernel object names (bridges ``podsb…``, veths
    ``podsv…``): link names are at most 15 bytes, and a reaper only touches its own root's."""
    return f"{zlib.crc32(os.fsencode(os.path.realpath(root))) & 0xFFF:03x}"


def root_hash(root: Path) -> str:
    """16 hex digits naming a state root without the collisions of :func:`root_tag` (12 bits)."""
    return _sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]


def default_network_id(root: Path) -> str:
    """The default network's ID: fixed per root, so that the record a listing reports before the
    network exists and the one made when a container needs it agree (and a container created
    before then names the right network)."""
    return _sha256(b"pods default network\0" + os.fsencode(os.path.realpath(root))).hexdigest()


def marker(root: Path, network_id: str) -> str:
    """The alias of a bridge of ours: which root made it and for which network. The reaper
    releases a bridge whose record is gone only when its alias says it is this root's."""
    return f"pods:{root_hash(root)}:{network_id}"


# -- the networks of one root ----------------------------------------------------------------
class Networks:
    """Networks and endpoints recorded under one state root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "networks"  # made by the first create: reading makes nothing (issue 14)
        self.tag = root_tag(root)
        self._lock = FileLock(str(root / "locks" / "networks.lock"))
        self.rootless = rootless_net.active()
        if self.rootless:
            rootless_net.remember(root)

    # where the kernel objects live: the host's namespace (root), or the rootless netns
    def netns(self, *, start: bool) -> str | None:
        """None: the host's namespace (the root engine). Rootless: the holder's ``/proc/PID/ns/net``,
        made with ``start`` (else "" when no holder runs: nothing of ours exists in any kernel)."""
        if not self.rootless:
            return None
        return rootless_net.netns_path(self.root, start=start) or ""

    def _iptables_lock(self) -> FileLock:
        if not self.rootless:
            return iptables.host_lock()
        from pytest_pods.engine import rootless  # lazy: ~15 ms to import, only the rootless engine needs it

        return FileLock(str(rootless.run_dir(self.root) / "iptables.lock"))

    # lookup
    def _dirs(self) -> builtins.list[Path]:
        try:
            return builtins.list(self.dir.iterdir())
        except FileNotFoundError:
            return []

    def _records(self) -> builtins.list[NetworkRecord]:
        out: builtins.list[NetworkRecord] = []
        for d in self._dirs():
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads((d / "network.json").read_text()))
        return out

    def get(self, ref: str) -> NetworkRecord:
        """The network named or identified (or ID-prefixed) by ``ref``; the default ``bridge``
        from its definition if it was not made yet (nothing is made here)."""
        recs = self._records()
        for r in recs:
            if r["name"] == ref or r["id"] == ref:
                return r
        matches = [r for r in recs if len(ref) >= 3 and r["id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not any(r["name"] == DEFAULT_NETWORK for r in recs):
            default = self._default_definition(recs)
            if ref == DEFAULT_NETWORK or (len(ref) >= 3 and default["id"].startswith(ref)):
                return default
        raise NetworkNotFoundError(f"network {ref} not found")

    def list(self) -> builtins.list[NetworkRecord]:
        """Every network, the default one too (from its definition if it was not made yet)."""
        recs = self.records()
        if not any(r["name"] == DEFAULT_NETWORK for r in recs):
            recs.insert(0, self._default_definition(recs))
        return recs

    def exists(self, rec: NetworkRecord) -> bool:
        """Made (recorded), rather than the default network's definition."""
        return (self.dir / rec["id"] / "network.json").exists()

    def _default_definition(self, recs: builtins.list[NetworkRecord]) -> NetworkRecord:
        """The default network as :meth:`ensure_default` would make it now, made of nothing: its
        subnet is the one a user network made before it leaves free (see :meth:`create`)."""
        nid = default_network_id(self.root)
        subnet = self._choose_subnet(os.environ.get("PODS_BRIDGE_SUBNET"), self._taken(recs, start=False),
                                     DEFAULT_NETWORK, check=False)
        return {"id": nid, "name": DEFAULT_NETWORK, "driver": "bridge", "subnet": str(subnet),
                "gateway": str(next(subnet.hosts())), "bridge": f"podsb{self.tag}{nid[:7]}", "internal": False,
                "labels": {}, "created": _ctime(self.root)}

    def _taken(self, recs: builtins.list[NetworkRecord], *, start: bool) -> builtins.list[ipaddress.IPv4Network]:
        """The subnets of our networks and of the routes in our namespace (read only, unless
        ``start``: rootless, the holder is made then)."""
        taken = [ipaddress.IPv4Network(r["subnet"]) for r in recs]
        ns = self.netns(start=start)
        if ns == "":
            return taken  # rootless, no holder yet: its namespace will have only what we make
        if ns and start:  # the helper copies the host's addresses and routes into the netns: avoid them too
            rootless_net.ensure_helper(self.root, ns)
        with Netlink.at(ns) as nl:
            taken += [ipaddress.IPv4Network(dst, strict=False) for dst, _gw, _dev in nl.routes()
                      if dst != "0.0.0.0/0"]
        return taken

    def records(self) -> builtins.list[NetworkRecord]:
        """The networks that exist, without making the default one (for sweeps and cleanup)."""
        return sorted(self._records(), key=lambda r: r["created"])

    def endpoints(self, net: NetworkRecord) -> builtins.list[EndpointRecord]:
        out: builtins.list[EndpointRecord] = []
        for p in (self.dir / net["id"] / "endpoints").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(p.read_text()))
        return out

    # create / remove
    def ensure_default(self) -> NetworkRecord:
        for r in self._records():
            if r["name"] == DEFAULT_NETWORK:
                return r
        subnet = os.environ.get("PODS_BRIDGE_SUBNET")
        try:
            return self.create(DEFAULT_NETWORK, subnet=subnet, _default=True)
        except ConflictError:
            return next(r for r in self._records() if r["name"] == DEFAULT_NETWORK)

    def create(self, name: str, *, subnet: str | None = None, internal: bool = False,
               labels: dict[str, str] | None = None, _default: bool = False,
               ipam_config: builtins.list[Any] | None = None, ipam_options: dict[str, str] | None = None,
               enable_ipv6: bool = False, options: dict[str, str] | None = None,
               attachable: bool = False) -> NetworkRecord:
        """Make a network. ``subnet`` (the CLI's ``--subnet``) or ``ipam_config`` (the Engine API's
        ``IPAM.Config``: at most one IPv4 and one IPv6 entry, each with ``Subnet``, ``IPRange``,
        ``Gateway``, ``AuxiliaryAddresses``); an IPv4 subnet is chosen from the pool when none is
        given. The IPv6 pool is kept in any case; containers get an IPv6 address with ``enable_ipv6``.

        Names: anything but the empty name and control characters (dockerd takes spaces too);
        ``bridge``, ``host`` and ``none`` are reserved."""
        if not name or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            raise InvalidArgumentError(f"invalid name: {name!r}")
        if name in (DEFAULT_NETWORK, *SPECIAL_MODES) and not _default:
            raise InvalidArgumentError(f"operation is not permitted on predefined {name} network")
        configs: builtins.list[Any] = builtins.list(ipam_config or [])
        if subnet:
            configs.insert(0, {"Subnet": subnet})
        req4, req6 = ipam.split_configs(configs, name)
        with self._lock:
            recs = self._records()
            if any(r["name"] == name for r in recs):
                raise ConflictError(f"network with name {name} already exists")
            taken = self._taken(recs, start=True)
            if not _default and not any(r["name"] == DEFAULT_NETWORK for r in recs):
                # keep the default network's subnet free: a listing showed it, a container makes it
                with contextlib.suppress(NetworkError):  # the pool is full: the default finds its own later
                    taken.append(self._choose_subnet(os.environ.get("PODS_BRIDGE_SUBNET"), taken,
                                                     DEFAULT_NETWORK, check=False))
            net_subnet = self._choose_subnet(str(req4["subnet"]) if req4 else None, taken, name)
            pool4 = ipam.pool_of(net_subnet, req4)
            pool6: ipam.Pool | None = None
            if req6 is not None:
                assert req6["subnet"] is not None
                for r in recs:
                    other_pool = r.get("pool6")
                    other = other_pool["subnet"] if other_pool else ""
                    if other and ipaddress.ip_network(other).overlaps(req6["subnet"]):
                        raise ConflictError(f"network create {name}: subnet {req6['subnet']} overlaps with "
                                            f"{other} of network {r['name']}: Pool overlaps with other one on "
                                            "this address space")
                pool6 = ipam.pool_of(req6["subnet"], req6)
            elif enable_ipv6:  # none given: a /64 of the engine's ULA pool, as newer dockerd picks one
                taken6 = [ipaddress.ip_network(p["subnet"]) for r in recs if (p := r.get("pool6"))]
                free = next((c for c in DEFAULT_POOL6.subnets(new_prefix=64)
                             if not any(c.overlaps(t) for t in taken6)), None)
                if free is None:  # pragma: no cover - 65536 IPv6 networks
                    raise NetworkError(f"network create {name}: no free IPv6 subnet left in {DEFAULT_POOL6}")
                pool6 = ipam.pool_of(free, None)
            shown = [req4["shown"] if req4 else {"Subnet": pool4["subnet"], "Gateway": pool4["gateway"]}]
            if req6 is not None:
                shown.append(req6["shown"])
            elif pool6 is not None:
                shown.append({"Subnet": pool6["subnet"], "Gateway": pool6["gateway"]})
            nid = default_network_id(self.root) if _default else os.urandom(32).hex()
            rec: NetworkRecord = {"id": nid, "name": name, "driver": "bridge", "subnet": pool4["subnet"],
                   "gateway": pool4["gateway"], "bridge": f"podsb{self.tag}{nid[:7]}", "internal": internal,
                   "labels": labels or {}, "created": time.time(), "ip_range": pool4["ip_range"],
                   "aux": pool4["aux"], "ipam_config": shown, "ipam_options": ipam_options,
                   "enable_ipv6": bool(enable_ipv6 and pool6), "pool6": pool6, "options": dict(options or {}),
                   "attachable": attachable, "subnet_given": req4 is not None}
            ndir = self.dir / nid
            try:
                self.dir.mkdir(exist_ok=True)
                (ndir / "leases").mkdir(parents=True)
                (ndir / "endpoints").mkdir()
                self._bring_up(rec)
                tmp = ndir / ".network.json"
                tmp.write_text(json.dumps(rec))
                tmp.rename(ndir / "network.json")
            except BaseException:
                self._tear_down(rec)
                remove_tree(ndir)
                raise
        if not _default:  # the default network is made on first use, as dockerd's exists from the start
            events.record(self.root, "network", "create", rec["id"], {"name": name, "type": "bridge"})
        return rec

    def _choose_subnet(self, subnet: str | None, taken: builtins.list[ipaddress.IPv4Network],
                       name: str, *, check: bool = True) -> ipaddress.IPv4Network:
        """``subnet`` if it is valid and free (``check=False``: as given), else the first free /24
        of the pool."""
        if subnet and not check:
            with contextlib.suppress(ValueError):
                return ipaddress.IPv4Network(subnet, strict=False)
        if subnet:
            try:
                net = ipaddress.IPv4Network(subnet, strict=False)
            except ValueError as exc:
                raise InvalidArgumentError(f"network create {name}: invalid --subnet {subnet!r}: {exc}") from None
            if net.num_addresses < 4:
                raise InvalidArgumentError(f"network create {name}: --subnet {subnet} is too small")
            for t in taken:
                if net.overlaps(t):
                    raise ConflictError(f"network create {name}: subnet {net} overlaps with {t} already in use")
            return net
        for candidate in DEFAULT_POOL.subnets(new_prefix=24):
            if not any(candidate.overlaps(t) for t in taken):
                return candidate
        raise NetworkError(f"network create {name}: no free subnet left in {DEFAULT_POOL}: give --subnet")

    def _bring_up(self, rec: NetworkRecord) -> None:
        net = ipaddress.IPv4Network(rec["subnet"])
        ns = self.netns(start=True)
        if ns and not rec.get("internal"):
            rootless_net.ensure_helper(self.root, ns)
        with Netlink.at(ns) as nl:
            if nl.link_index(rec["bridge"]) is None:
                nl.create_bridge(rec["bridge"])
                nl.set_alias(rec["bridge"], marker(self.root, rec["id"]))  # before anything else: reapable
                nl.add_address(rec["bridge"], f"{rec['gateway']}/{net.prefixlen}")
                pool6 = rec.get("pool6")
                if rec.get("enable_ipv6") and pool6:
                    nl.add_address(rec["bridge"], f"{pool6['gateway']}/{ipaddress.ip_network(pool6['subnet']).prefixlen}")
            nl.set_up(rec["bridge"])
        if ns:  # rootless: no DNAT (published ports are forwarded), the netns's own ip_forward
            if not rec.get("internal"):
                rootless_net.set_sysctl(ns, "net.ipv4.ip_forward", "1")
        else:
            with contextlib.suppress(OSError):  # DNAT from 127.0.0.1 needs the bridge to route localnet
                Path(f"/proc/sys/net/ipv4/conf/{rec['bridge']}/route_localnet").write_text("1")
            if not rec.get("internal"):
                with contextlib.suppress(OSError):
                    if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
                        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
        with self._iptables_lock():
            iptables.ensure_chains(ns)
            iptables.delete_rules(iptables.network_tag(rec["id"]), ns)
            iptables.restore(iptables.network_rules(rec), ns)

    def _tear_down(self, rec: NetworkRecord) -> None:
        ns = self.netns(start=False)
        if ns == "":
            return  # rootless, no holder: its netns, bridges and rules are gone already
        with self._iptables_lock():
            with contextlib.suppress(NetworkError):
                iptables.restore(iptables.rules_tagged(iptables.network_tag(rec["id"]), ns=ns), ns)
            iptables.remove_chains_if_unused(ns=ns)
        with contextlib.suppress(OSError), Netlink.at(ns) as nl:
            nl.delete_link(rec["bridge"], missing_ok=True)

    def remove(self, ref: str, *, predefined_ok: bool = False) -> str:
        """Remove a network; ``bridge`` only when a whole root is being released."""
        rec = self.get(ref)
        if rec["name"] == DEFAULT_NETWORK and not predefined_ok:
            raise ConflictError(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
        if not self.exists(rec):
            return rec["name"]  # the default network's definition: nothing was made
        with self._lock:
            users = [e for e in self.endpoints(rec) if _pid_alive(e.get("pid"), e.get("pid_start"))]
            if users:
                raise ConflictError(
                    f"error while removing network: network {rec['name']} id {rec['id']} has active endpoints "
                    f"({', '.join(e['name'] for e in users)})")
            self._tear_down(rec)
            remove_tree(self.dir / rec["id"])
        events.record(self.root, "network", "destroy", rec["id"], {"name": rec["name"], "type": "bridge"})
        return rec["name"]

    # endpoints
    def attach(self, ref: str, *, cid: str, name: str, aliases: builtins.list[str], pid: int, pid_start: int | None,
               hosts_path: str, hostname: str, ifname: str, default_route: bool,
               endpoint_config: Mapping[str, Any] | None = None) -> EndpointRecord:
        """Give the container (its pid 1 is ``pid``) an interface and an address on the network
        (an IPv6 one too where the network has ``enable_ipv6``).

        :param default_route: this is the container's first network. The default route goes via
            the first network that is not ``internal`` (an internal one routes only its subnet,
            as in Docker), so a later network gets it when the container has none yet.
        :param endpoint_config: the Engine API's ``EndpointSettings`` as given (``IPAMConfig``
            with ``IPv4Address``/``IPv6Address`` for a fixed address, ``Links``, ``DriverOpts``):
            kept in the endpoint, the addresses honoured.
        """
        epc = endpoint_config or {}
        rec = self.get(ref)
        if not self.exists(rec):  # the default network, needed now: make it
            rec = self.ensure_default()
        want4, want6 = self.check_endpoint(rec, epc)
        pool4 = _pool4(rec)
        pool6 = rec.get("pool6") if rec.get("enable_ipv6") else None
        asked = epc.get("IPAMConfig") or {}
        ns = self.netns(start=True)
        with Netlink.at(ns) as nl:
            if nl.link_index(rec["bridge"]) is None:  # e.g. after a reboot, a manual delete, a new holder
                self._bring_up(rec)
        if ns and not rec.get("internal"):  # a helper that died: outbound again (a pid file read)
            rootless_net.ensure_helper(self.root, ns)
        ip = self._lease(rec, cid, pool4, want4)
        ip6 = ""
        if pool6:
            try:
                ip6 = self._lease(rec, cid, pool6, want6)
            except BaseException:
                self._release(rec, ip)
                raise
        link_local = _link_local_ips(asked)
        veth = f"podsv{self.tag}{cid[:6]}{ifname[3:]}"[:15]
        prefix = ipaddress.IPv4Network(rec["subnet"]).prefixlen
        prefix6 = ipaddress.ip_network(pool6["subnet"]).prefixlen if pool6 else 0
        # the MAC follows from the address (as docker's 02:42:...): a reused address keeps
        # its MAC, so the host's ARP entry for it stays right (a random one would leave a
        # stale entry that black-holes the next container's first connections); or the one asked for
        mac = parse_mac(epc.get("MacAddress")) or b"\x02\x42" + ipaddress.IPv4Address(ip).packed
        try:
            with Netlink.at(ns) as nl:
                try:
                    nl.create_veth(veth, ifname, peer_netns_pid=pid, master=rec["bridge"], peer_mac=mac)
                except NetlinkError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
                    # this container's last run: its netns is gone, but the kernel frees a
                    # namespace's veths in deferred work, so the host end can outlive it briefly
                    nl.delete_link(veth, missing_ok=True)
                    nl.create_veth(veth, ifname, peer_netns_pid=pid, master=rec["bridge"], peer_mac=mac)
                nl.set_up(veth)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with Netlink(netns_fd=fd) as inner:
                    inner.add_address(ifname, f"{ip}/{prefix}")
                    inner.set_up(ifname)
                    if ip6 and pool6:
                        inner.add_address(ifname, f"{ip6}/{prefix6}")
                    for ll in link_local:  # IPAMConfig.LinkLocalIPs: on the interface too, as docker adds them
                        inner.add_address(ifname, f"{ll}/{64 if ll.version == 6 else 16}")
                    if not rec.get("internal") and (default_route or not _has_default_route(inner)):
                        inner.add_route(rec["gateway"], dev=ifname)
                        if ip6 and pool6:
                            with contextlib.suppress(NetlinkError):  # one IPv6 default route is enough
                                inner.add_route(pool6["gateway"], dev=ifname)
            finally:
                os.close(fd)
        except BaseException:
            self._release(rec, ip)
            if ip6:
                self._release(rec, ip6)
            with contextlib.suppress(OSError), Netlink.at(ns) as nl:
                nl.delete_link(veth, missing_ok=True)
            raise
        user_net = rec["name"] != DEFAULT_NETWORK
        links = epc.get("Links")
        driver_opts = epc.get("DriverOpts")
        ep: EndpointRecord = {"cid": cid, "name": name, "aliases": aliases if user_net else [], "ip": ip, "pid": pid,
              "pid_start": pid_start, "hosts": hosts_path, "hostname": hostname, "veth": veth,
              "ifname": ifname, "network": rec["name"], "network_id": rec["id"], "gateway": rec["gateway"],
              "prefix": prefix, "endpoint_id": os.urandom(32).hex(), "mac": ":".join(f"{b:02x}" for b in mac),
              "ip6": ip6, "prefix6": prefix6 if ip6 else 0, "gateway6": pool6["gateway"] if pool6 else "",
              "ipam_config": {k: [str(x) for x in v] if isinstance(v, builtins.list) else str(v)
                              for k, v in asked.items() if v} if isinstance(asked, Mapping) and asked else None,
              "links": [str(x) for x in links] if isinstance(links, builtins.list) else None,
              "driver_opts": {str(k): str(v) for k, v in driver_opts.items()} if isinstance(driver_opts, Mapping)
              else None}
        path = self.dir / rec["id"] / "endpoints" / f"{cid}.json"
        path.write_text(json.dumps(ep))
        if user_net:
            self.refresh_hosts(rec)
        else:  # no names on the default bridge: only the container's own file changes
            write_hosts(Path(hosts_path), self.hosts_lines(cid, hostname))
        events.record(self.root, "network", "connect", rec["id"], {"container": cid, "name": rec["name"],
                                                                   "type": "bridge"})
        return ep

    def check_endpoint(self, rec: NetworkRecord, endpoint_config: Mapping[str, Any] | None) -> tuple[str, str]:
        """The fixed IPv4 and IPv6 addresses an ``EndpointSettings`` asks for ("" for none),
        checked as dockerd checks them (a connect or create fails at once, not at the start).

        :raises InvalidArgumentError: a fixed address on the default network or on one whose
            subnet was chosen by the engine, or an address outside the network's subnets; a
            ``MacAddress`` that is not an Ethernet address.
        """
        parse_mac((endpoint_config or {}).get("MacAddress"))
        asked = (endpoint_config or {}).get("IPAMConfig") or {}
        if not isinstance(asked, Mapping):
            raise InvalidArgumentError("IPAMConfig must be an object (IPv4Address, IPv6Address)")
        _link_local_ips(asked)
        want4, want6 = str(asked.get("IPv4Address") or ""), str(asked.get("IPv6Address") or "")
        if not (want4 or want6):
            return "", ""
        if rec["name"] == DEFAULT_NETWORK:
            raise InvalidArgumentError("user specified IP address is supported on user defined networks only")
        if want4 and not rec.get("subnet_given"):
            raise InvalidArgumentError(
                "user specified IP address is supported only when connecting to networks with user configured subnets")
        pool6 = rec.get("pool6") if rec.get("enable_ipv6") else None
        # an IPv6 address on a network without IPv6 is kept in IPAMConfig and not assigned (dockerd's way)
        return (ipam.check_static(_pool4(rec), want4, rec["name"]) if want4 else "",
                ipam.check_static(pool6, want6, rec["name"]) if want6 and pool6 else "")

    def detach(self, ref: str, cid: str, *, port_rules: bool = True) -> None:
        """Release the container's endpoint: its host-side veth (deleted now, not left to the
        kernel with the netns, which a lingering socket keeps for minutes: see :meth:`release_links`),
        address, record and names; ``port_rules=False`` when the caller deletes them once for all
        networks (each ``iptables -S`` costs milliseconds)."""
        try:
            rec = self.get(ref)
        except NetworkNotFoundError:
            return
        path = self.dir / rec["id"] / "endpoints" / f"{cid}.json"
        try:
            ep = cast(EndpointRecord, json.loads(path.read_text()))
        except (OSError, ValueError):
            return
        with contextlib.suppress(NetworkError):  # the reaper retries what is left
            self.release_links([ep])
        if port_rules and not self.rootless:  # rootless: forwarders, no rules (see ports.unpublish)
            iptables.delete_rules(iptables.container_tag(cid))
        self._release(rec, ep["ip"])
        if ep.get("ip6"):
            self._release(rec, ep.get("ip6", ""))
        path.unlink(missing_ok=True)
        self.refresh_hosts(rec)
        with contextlib.suppress(OSError):  # and its own file: the peers it left are no names now
            write_hosts(Path(ep["hosts"]), self.hosts_lines(cid, ep["hostname"]))
        events.record(self.root, "network", "disconnect", rec["id"], {"container": cid, "name": rec["name"],
                                                                      "type": "bridge"})

    def release_links(self, endpoints: builtins.list[EndpointRecord] | Mapping[str, EndpointRecord]) -> None:
        """Delete the host-side veths of these endpoints (a container's ``endpoints`` state) and
        make sure they are gone before returning; one already gone is fine (ENODEV).

        Deleting one end of a veth pair deletes both, synchronously. Left to the kernel, the pair
        goes only when the container's network namespace is freed, and a TCP connection still
        sending from it (an orphaned socket retransmitting to a peer that does not read) holds the
        namespace for minutes after the container died: that is how veths of removed containers
        lingered (issue 14). ``rm`` calls this so that the veth is gone when it returns.

        :raises NetworkError: a veth is still there after its deletion.
        """
        eps = builtins.list(endpoints.values()) if isinstance(endpoints, Mapping) else endpoints
        names = [ep["veth"] for ep in eps if ep.get("veth")]
        if not names:
            return
        ns = self.netns(start=False)
        if ns == "":
            return  # rootless, no holder: its netns and every link in it are gone already
        errors = []
        with Netlink.at(ns) as nl:
            for name in names:
                try:
                    nl.delete_link(name, missing_ok=True)
                except OSError as exc:
                    errors.append(f"{name}: {exc}")
                    continue
                if nl.link_index(name) is not None:
                    errors.append(f"{name}: still there after its deletion")
        if errors:
            raise NetworkError(f"delete veth {', '.join(errors)}")

    def move_default_route(self, pid: int, endpoints: Mapping[str, EndpointRecord]) -> None:
        """The network that held the container's default route is gone: route through the first
        remaining one that is not ``internal`` (as Docker moves the gateway); none if all are.
        EEXIST (a default route remains) is fine."""
        for ep in sorted(endpoints.values(), key=lambda e: e.get("ifname", "")):
            try:
                internal = bool(self.get(ep["network_id"]).get("internal"))
            except NetworkNotFoundError:
                continue
            if internal:
                continue
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with contextlib.suppress(OSError), Netlink(netns_fd=fd) as nl:
                    if not _has_default_route(nl):
                        nl.add_route(ep["gateway"], dev=ep["ifname"])
            finally:
                os.close(fd)
            return

    def _lease(self, rec: NetworkRecord, cid: str, pool: ipam.Pool, want: str = "") -> str:
        """An address of ``pool`` for the container: ``want`` if given (it must be free), else
        the first free one of the pool's range (never the gateway nor an auxiliary address)."""
        leases = self.dir / rec["id"] / "leases"
        if want:
            try:
                fd = os.open(leases / want, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise ConflictError(f"Address already in use: {want} on network {rec['name']}") from None
            os.write(fd, cid.encode())
            os.close(fd)
            return want
        used = set(os.listdir(leases))
        for ip in ipam.candidates(pool):
            if ip in used:
                continue
            try:
                fd = os.open(leases / ip, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue  # another process took it between our listing and now
            os.write(fd, cid.encode())
            os.close(fd)
            return ip
        raise NetworkError(f"network {rec['name']}: no free address left in {pool['ip_range'] or pool['subnet']}")

    def _release(self, rec: NetworkRecord, ip: str) -> None:
        (self.dir / rec["id"] / "leases" / ip).unlink(missing_ok=True)

    def refresh_hosts(self, rec: NetworkRecord) -> None:
        """Rewrite, in place, the /etc/hosts of every container on this network."""
        if rec["name"] == DEFAULT_NETWORK:
            return  # no names there: nothing of the others changes
        for ep in self.endpoints(rec):
            with contextlib.suppress(OSError):
                write_hosts(Path(ep["hosts"]), self.hosts_lines(ep["cid"], ep["hostname"]))

    def hosts_lines(self, cid: str, hostname: str) -> builtins.list[str]:
        """/etc/hosts for a container: itself, then its peers on its user networks."""
        own, peers = [], []
        for rec in self._records():
            eps = self.endpoints(rec)
            mine = next((e for e in eps if e["cid"] == cid), None)
            if mine is None:
                continue
            own.append(f"{mine['ip']}\t{hostname}")
            if mine.get("ip6"):
                own.append(f"{mine.get('ip6')}\t{hostname}")  # as docker's (peers: IPv4 names only)
            if rec["name"] == DEFAULT_NETWORK:
                continue
            for e in eps:
                if e["cid"] != cid and _pid_alive(e.get("pid"), e.get("pid_start")):
                    names = " ".join(dict.fromkeys([e["name"], *e["aliases"], e["cid"][:12]]))
                    peers.append(f"{e['ip']}\t{names}")
        return self._extra_hosts(cid) + own + peers

    def _extra_hosts(self, cid: str) -> builtins.list[str]:
        """The container's ``--add-host`` entries (``extra_hosts`` in its state, ``NAME:IP``)."""
        try:
            st = json.loads((self.root / "containers" / cid / "state.json").read_text())
        except (OSError, ValueError):
            return []
        out = []
        for entry in st.get("extra_hosts") or []:
            name, _, ip = str(entry).partition(":")
            out.append(f"{ip}\t{name}")
        return out

    # reaping
    def reap(self, live: set[str]) -> builtins.list[str]:
        """Drop endpoints, leases and rules of containers that are not running any more, and
        what a network removal interrupted half-way left (a directory without network.json,
        its bridge, its rules); release our bridges whose record is gone (the state removed
        after a crash: found by their alias, :func:`marker`) and veths on our bridges that no
        endpoint and no live container owns."""
        done = []
        ns = self.netns(start=False)
        if ns != "":
            done += self._reap_links(ns, live)
        for d in self._dirs():
            if (d / "network.json").exists() or time.time() - d.stat().st_mtime < 30:
                continue
            if ns != "":
                with contextlib.suppress(OSError), Netlink.at(ns) as nl:
                    nl.delete_link(f"podsb{self.tag}{d.name[:7]}", missing_ok=True)
                with self._iptables_lock():
                    iptables.delete_rules(iptables.network_tag(d.name), ns)
            remove_tree(d)
            done.append(f"removed half-removed network {d.name[:12]}")
        for rec in self._records():
            for ep in self.endpoints(rec):
                if ep["cid"] not in live or not _pid_alive(ep.get("pid"), ep.get("pid_start")):
                    self.detach(rec["id"], ep["cid"])
                    done.append(f"released {ep['ip']} on {rec['name']} ({ep['cid'][:12]})")
            leases = self.dir / rec["id"] / "leases"
            eps = {ip for e in self.endpoints(rec) for ip in (e["ip"], e.get("ip6")) if ip}
            for ip in os.listdir(leases):
                if ip not in eps and time.time() - (leases / ip).stat().st_mtime > 30:
                    (leases / ip).unlink(missing_ok=True)
                    done.append(f"released stale lease {ip} on {rec['name']}")
        if self.rootless:
            return done  # no container rules rootless (forwarders end with their monitors)
        ours = {iptables.container_tag(c) for c in live}
        for tag in iptables.all_tags():
            if tag.startswith("pods:ctr:") and tag not in ours and self._owns_ctr_tag(tag):
                iptables.delete_rules(tag)
                done.append(f"deleted rules {tag}")
        return done

    def _reap_links(self, ns: str | None, live: set[str]) -> builtins.list[str]:
        """Bridges of this root without a network directory, and stray veths on our bridges."""
        done: builtins.list[str] = []
        recs = {r["bridge"]: r for r in self._records()}
        mine = f"pods:{root_hash(self.root)}:"
        try:
            with Netlink.at(ns) as nl:
                table = nl.link_table()
        except OSError:
            return done
        orphans: dict[int, tuple[str, str]] = {}  # bridge index -> (name, network id)
        ours: dict[int, NetworkRecord] = {}  # bridge index -> its record
        for link in table:
            if link.kind != "bridge" or not link.name.startswith(f"podsb{self.tag}"):
                continue
            rec = recs.get(link.name)
            if rec is not None and link.alias in ("", marker(self.root, rec["id"])):
                ours[link.ifindex] = rec  # (no alias: made before bridges had one)
            elif link.alias.startswith(mine):
                nid = link.alias.removeprefix(mine)
                if re.fullmatch(r"[0-9a-f]{64}", nid) and not (self.dir / nid).exists():
                    orphans[link.ifindex] = (link.name, nid)
        endpoint_veths = {ep["veth"] for rec in ours.values() for ep in self.endpoints(rec)}
        stray = [link.name for link in table
                 if link.kind == "veth" and (link.master in orphans or (
                     link.master in ours and link.name.startswith(f"podsv{self.tag}")
                     and link.name not in endpoint_veths
                     and not any(c.startswith(link.name[8:14]) for c in live)
                     and not self._container_active(link.name[8:14])))]
        with contextlib.suppress(OSError), Netlink.at(ns) as nl:
            for name in stray:
                nl.delete_link(name, missing_ok=True)
                done.append(f"deleted veth {name}")
            for name, _nid in orphans.values():
                nl.delete_link(name, missing_ok=True)
                done.append(f"deleted bridge {name} (its network's record is gone)")
        if orphans:
            with self._iptables_lock():
                for _name, nid in orphans.values():
                    with contextlib.suppress(NetworkError):
                        iptables.restore(iptables.rules_tagged(iptables.network_tag(nid), ns=ns), ns)
                iptables.remove_chains_if_unused(ns=ns)
        return done

    def _container_active(self, short: str) -> bool:
        """Whether a container of this root whose ID starts with ``short`` is starting or running,
        read after the link dump: a container is marked starting before its monitor makes its
        veth, and its endpoint record comes after the veth, so a veth without a record whose
        container is not starting by now is a leftover (a veth is named podsv<tag><cid[:6]>)."""
        cdir = self.root / "containers"
        try:
            names = [p.name for p in cdir.iterdir() if p.name.startswith(short)]
        except OSError:
            return False
        for name in names:
            try:
                status = json.loads((cdir / name / "state.json").read_text()).get("status")
            except (OSError, ValueError):
                return True  # unreadable now (being written, or broken): not ours to judge
            if status in ("starting", "running", "dead"):
                return True
        return False

    def release_idle(self, *, prune: bool = False) -> builtins.list[str]:
        """Release what no running container uses, for a session's end and the sweeps: the
        default network (its bridge and rules; it is made again from its definition on first use).
        A user network is its maker's, as ``docker network create``'s is: it keeps its record and
        bridge until removed, whoever made it (issue 15: the plugin's automatic paths removed the
        user's own networks; the plugin removes its own by their owner label, ``watchdog.sweep``).
        ``prune``: the user asked (``pods system prune``, as ``docker system prune``): user
        networks no running container uses go too.

        :returns: ``Deleted network: NAME`` for each.
        """
        done = []
        for rec in self.records():
            if rec["name"] != DEFAULT_NETWORK and not prune:
                continue
            try:
                done.append(f"Deleted network: {self.remove(rec['id'], predefined_ok=True)}")
            except (ConflictError, NetworkNotFoundError):
                continue  # a container uses it, or another process removed it meanwhile
        return done

    def remove_all(self) -> builtins.list[str]:
        """Every network of this root, the default one too (a root being thrown away)."""
        return [self.remove(r["id"], predefined_ok=True) for r in self._records()]

    def _owns_ctr_tag(self, tag: str) -> bool:
        """A container rule belongs to this root when one of our records mentions that container."""
        short = tag.removeprefix("pods:ctr:")
        return (self.root / "containers").exists() and any(
            p.name.startswith(short) for p in (self.root / "containers").iterdir())


def write_hosts(path: Path, extra: list[str]) -> None:
    """In place (same inode: the file is bind-mounted into the container)."""
    base = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    data = ("\n".join(base + extra) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, data)
    finally:
        os.close(fd)


def _pool4(rec: NetworkRecord) -> ipam.Pool:
    return {"subnet": rec["subnet"], "gateway": rec["gateway"], "ip_range": rec.get("ip_range", ""),
            "aux": rec.get("aux") or {}}


def _has_default_route(nl: Netlink) -> bool:
    return any(dst == "0.0.0.0/0" for dst, _gw, _dev in nl.routes())


def _ctime(path: Path) -> float:
    try:
        return path.stat().st_ctime
    except OSError:
        return 0.0


def _pid_alive(pid: int | None, start: int | None) -> bool:
    return bool(pid) and process_start_time(int(pid or 0)) == start


def parse_mac(text: object) -> bytes | None:
    """An endpoint's ``MacAddress`` (``02:42:ac:11:00:0a``) as its 6 bytes; None when not given.

    :raises InvalidArgumentError: not six two-digit hex bytes, or a multicast address (a NIC's
        own address cannot be one)
    """
    if text is None or text == "":
        return None
    parts = str(text).replace("-", ":").split(":")
    try:
        if len(parts) != 6 or not all(len(p) == 2 for p in parts):
            raise ValueError(text)
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise InvalidArgumentError(f"invalid MAC address: {text} (want six hex bytes, e.g. 02:42:ac:11:00:0a)") \
            from None
    if mac[0] & 1:
        raise InvalidArgumentError(f"invalid MAC address: {text} is a multicast address")
    return mac


def _link_local_ips(ipam_config: Mapping[str, Any]) -> builtins.list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """``IPAMConfig.LinkLocalIPs``: the addresses, each link-local.

    :raises InvalidArgumentError: not a list of addresses, or one that is not link-local
    """
    given = ipam_config.get("LinkLocalIPs") or []
    if not isinstance(given, builtins.list):
        raise InvalidArgumentError("IPAMConfig.LinkLocalIPs must be a list of addresses")
    out: builtins.list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in given:
        try:
            ip = ipaddress.ip_address(str(text))
        except ValueError:
            raise InvalidArgumentError(f"invalid link-local IP address: {text}") from None
        if not ip.is_link_local:
            raise InvalidArgumentError(f"invalid link-local IP address: {text} is not link-local "
                                       "(169.254.0.0/16 or fe80::/10)")
        out.append(ip)
    return out
