"""rtnetlink over a raw NETLINK_ROUTE socket: links, bridges, veth pairs, IPv4 addresses and routes.

Why not ``ip`` or pyroute2: container networking has a budget of a few milliseconds per start. An
``ip`` process costs milliseconds each and pyroute2's import alone tens; one netlink round trip
costs tens of microseconds. So messages are packed here by hand, from netlink(7), rtnetlink(7) and
the constants of ``linux/netlink.h``, ``linux/rtnetlink.h``, ``linux/if_link.h`` and
``linux/veth.h``. Only cheap stdlib modules are imported (``_socket`` rather than ``socket``, whose
import costs ~2 ms, as in ``linux.py``).

A :class:`Netlink` object is one socket and is not thread-safe: give each thread its own.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct
from types import TracebackType
from typing import NamedTuple

from pytest_pods.engine import linux  # ctypes: loaded already wherever containers are networked
from pytest_pods.engine.network import rootless_net
from pytest_pods.errors import NetlinkError

__all__ = ["Link", "Netlink", "NetlinkError"]

# linux/netlink.h
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # on NLMSG_ERROR: the request was not echoed back in full
NLM_F_ACK_TLVS = 0x200  # on NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_MULTIPATH = 9
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

# linux/if_link.h, linux/veth.h, linux/if_addr.h, linux/if.h
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_PID = 19
IFLA_NET_NS_FD = 28
IFLA_IFALIAS = 20
IFLA_EXT_MASK = 29
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3  # keep link replies small; older kernels ignore the bit
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFF_UP = 0x1
IFNAMSIZ = 16

AF_UNSPEC = 0
AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
IFA_F_NODAD = 0x02  # an address usable at once: no duplicate address detection (as docker's)

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_NLA = struct.Struct("=HH")  # len, type
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_RTNEXTHOP = struct.Struct("=HBBi")  # len, flags, hops, ifindex

_RECV_SIZE = 1 << 16  # the kernel fills a dump reply up to the reader's buffer size


def _check_name(name: str) -> bytes:
    """Refuse names the kernel would refuse, before a round trip, and say which name it was."""
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r}: must be 1 to {IFNAMSIZ - 1} bytes, not {len(raw)}")
    if raw in (b".", b"..") or any(c in b"/: \t\n\r\x0b\x0c\x00" for c in raw):
        raise ValueError(f"interface name {name!r}: must not be '.', '..' or contain '/', ':' or spaces")
    return raw


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to NLA_ALIGNTO (4)."""
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _attr_str(kind: int, value: bytes) -> bytes:
    return _attr(kind, value + b"\0")


def _attr_u32(kind: int, value: int) -> bytes:
    return _attr(kind, _U32.pack(value))


def _parse_attrs(data: bytes, offset: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Attributes of a message body as {type: payload}; a repeated type keeps its last value."""
    attrs: dict[int, bytes] = {}
    end = len(data) if end is None else end
    while offset + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size or offset + length > end:
            break  # malformed or truncated: stop rather than read garbage
        attrs[kind & NLA_TYPE_MASK] = data[offset + _NLA.size : offset + length]
        offset += (length + 3) & ~3
    return attrs


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _ipv4(text: str, what: str) -> bytes:
    """4 packed bytes; inet_pton refuses the shorthand forms inet_aton would accept ("10.1")."""
    try:
        return _socket.inet_pton(AF_INET, text)
    except OSError:
        raise ValueError(f"{what} {text!r}: not an IPv4 address") from None


def _cidr(text: str, what: str) -> tuple[bytes, int]:
    addr, sep, plen = text.partition("/")
    if not sep or not plen.isdigit() or not 0 <= int(plen) <= 32:
        raise ValueError(f"{what} {text!r}: expected IPv4 address/prefix length, e.g. 10.89.0.1/24")
    return _ipv4(addr, what), int(plen)


def _cidr6(text: str, what: str) -> tuple[bytes, int]:
    addr, sep, plen = text.partition("/")
    if not sep or not plen.isdigit() or not 0 <= int(plen) <= 128:
        raise ValueError(f"{what} {text!r}: expected IPv6 address/prefix length, e.g. fd00:1::2/64")
    try:
        return _socket.inet_pton(AF_INET6, addr), int(plen)
    except OSError:
        raise ValueError(f"{what} {text!r}: not an IPv6 address") from None


def _mask(prefixlen: int) -> int:
    return (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF


class Link(NamedTuple):
    """One link of a dump: what the reaper needs to tell ours from others'."""

    ifindex: int
    name: str
    kind: str     # IFLA_INFO_KIND: "bridge", "veth", or "" (loopback, physical)
    master: int   # the index of its bridge, 0 if none
    alias: str    # IFLA_IFALIAS ("ip link set NAME alias TEXT"), "" if none


class Netlink:
    """One NETLINK_ROUTE socket, optionally bound inside another network namespace.

    A netlink socket acts on the namespace it was created in, whatever the calling thread's
    namespace is later, so a socket made inside a container's namespace configures it from here.

    :param netns_fd: an open ``/proc/<pid>/ns/net`` (or ``/run/netns/NAME``) to create the socket in.
    """

    @classmethod
    def at(cls, netns: str | None) -> Netlink:
        """A socket in the namespace at path ``netns`` (a ``/proc/PID/ns/net``), or in ours for None."""
        if netns is None:
            return cls()
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return cls(netns_fd=fd)
        finally:
            os.close(fd)

    def __init__(self, netns_fd: int | None = None) -> None:
        self._seq = 0
        self._buf = bytearray(_RECV_SIZE)
        if netns_fd is None:
            self._sock = self._open()
            return
        if rootless_net.active():
            # inside the engine's user namespace this thread could enter the namespace but never
            # come back to the host's: a throwaway thread makes the socket
            self._sock = rootless_net.run_in_netns(netns_fd, self._open)
            return
        CLONE_NEWNET = 0x40000000
        # setns acts on the calling thread only; thread-self so other threads keep their namespace
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(netns_fd, CLONE_NEWNET)
            try:
                self._sock = self._open()
            finally:
                # if this fails the thread is stranded in the other namespace: let it raise
                linux.setns(home, CLONE_NEWNET)
        finally:
            os.close(home)

    @staticmethod
    def _open() -> _socket.socket:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _socket.NETLINK_ROUTE)
        try:
            sock.bind((0, 0))  # the kernel picks our port id
            # errors carry only the request's header back, plus the kernel's reason text
            for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
                try:
                    sock.setsockopt(SOL_NETLINK, opt, 1)
                except OSError:  # older kernel: plain acks still work
                    pass
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the wire -------------------------------------------------------------------------------

    def _request(self, kind: int, flags: int, body: bytes, operation: str) -> list[tuple[int, bytes]]:
        """Send one request and collect its replies until the ack, the error or NLMSG_DONE.

        Replies to other sequence numbers (left over from a request interrupted mid-dump) are
        skipped, so one bad read cannot shift every later answer.
        """
        self._seq = seq = (self._seq + 1) & 0xFFFFFFFF
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self._sock.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, seq, 0) + body)
        replies: list[tuple[int, bytes]] = []
        buf = self._buf
        while True:
            size = self._sock.recv_into(buf)
            offset = 0
            while offset + _NLMSGHDR.size <= size:
                length, mtype, mflags, mseq, _pid = _NLMSGHDR.unpack_from(buf, offset)
                if length < _NLMSGHDR.size or offset + length > size:
                    break
                body_at = offset + _NLMSGHDR.size
                if mseq == seq:
                    if mtype == NLMSG_ERROR:
                        err = -_I32.unpack_from(buf, body_at)[0]
                        if err:
                            raise NetlinkError(err, operation, self._extack(buf, body_at, offset + length, mflags))
                        return replies
                    if mtype == NLMSG_DONE:
                        err = -_I32.unpack_from(buf, body_at)[0] if length >= _NLMSGHDR.size + 4 else 0
                        if err:
                            raise NetlinkError(err, operation)
                        return replies
                    if mtype != NLMSG_NOOP:
                        replies.append((mtype, bytes(buf[body_at : offset + length])))
                offset += (length + 3) & ~3

    @staticmethod
    def _extack(buf: bytearray, body_at: int, end: int, flags: int) -> str:
        """The kernel's reason text from an extended ack (NLMSGERR_ATTR_MSG), or ""."""
        if not flags & NLM_F_ACK_TLVS:
            return ""
        orig_at = body_at + 4  # after the error code comes the request's header (and maybe body)
        if flags & NLM_F_CAPPED:
            tlvs_at = orig_at + _NLMSGHDR.size
        else:
            tlvs_at = orig_at + ((_U32.unpack_from(buf, orig_at)[0] + 3) & ~3)
        msg = _parse_attrs(bytes(buf[:end]), tlvs_at, end).get(NLMSGERR_ATTR_MSG)
        return _cstr(msg) if msg else ""

    # -- links ----------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """The index of link ``name`` in this socket's namespace, or None if there is none."""
        raw = _check_name(name)
        body = _IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr_str(IFLA_IFNAME, raw)
        body += _attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        try:
            replies = self._request(RTM_GETLINK, 0, body, f"get link {name}")
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for mtype, reply in replies:
            if mtype == RTM_NEWLINK:
                index: int = _IFINFOMSG.unpack_from(reply)[2]
                return index
        return None

    def links(self) -> list[tuple[int, str, str]]:
        """Every link as (index, name, kind); kind is IFLA_INFO_KIND ("bridge", "veth") or ""."""
        return [(link.ifindex, link.name, link.kind) for link in self.link_table()]

    def link_table(self) -> list[Link]:
        """Every link with its kind, its master (bridge) and its alias, in one dump."""
        body = _IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        out = []
        for mtype, reply in self._request(RTM_GETLINK, NLM_F_DUMP, body, "list links"):
            if mtype != RTM_NEWLINK:
                continue
            index = _IFINFOMSG.unpack_from(reply)[2]
            attrs = _parse_attrs(reply, _IFINFOMSG.size)
            kind = ""
            if IFLA_LINKINFO in attrs:
                raw_kind = _parse_attrs(attrs[IFLA_LINKINFO]).get(IFLA_INFO_KIND)
                kind = _cstr(raw_kind) if raw_kind else ""
            master = _U32.unpack(attrs[IFLA_MASTER][:4])[0] if len(attrs.get(IFLA_MASTER, b"")) >= 4 else 0
            alias = _cstr(attrs[IFLA_IFALIAS]) if IFLA_IFALIAS in attrs else ""
            out.append(Link(index, _cstr(attrs.get(IFLA_IFNAME, b"")), kind, master, alias))
        return out

    def _index_or_raise(self, name: str, operation: str) -> int:
        index = self.link_index(name)
        if index is None:
            raise NetlinkError(errno.ENODEV, operation)
        return index

    def _new_link(self, name: str, attrs: bytes, operation: str) -> int:
        """RTM_NEWLINK create-only; the index from the kernel's echo (Linux 6.3+) or a lookup."""
        raw = _check_name(name)
        body = _IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr_str(IFLA_IFNAME, raw) + attrs
        replies = self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, body, operation)
        for mtype, reply in replies:
            if mtype == RTM_NEWLINK and _parse_attrs(reply, _IFINFOMSG.size).get(IFLA_IFNAME) == raw + b"\0":
                index: int = _IFINFOMSG.unpack_from(reply)[2]
                return index
        return self._index_or_raise(name, operation)

    def create_bridge(self, name: str) -> int:
        """Create bridge ``name`` (down, no address); its index. EEXIST if the name is taken."""
        linkinfo = _attr(IFLA_LINKINFO, _attr_str(IFLA_INFO_KIND, b"bridge"))
        return self._new_link(name, linkinfo, f"create bridge {name}")

    def create_veth(
        self,
        name: str,
        peer: str,
        *,
        peer_netns_fd: int | None = None,
        peer_netns_pid: int | None = None,
        master: str | None = None,
        peer_mac: bytes | None = None,
    ) -> int:
        """Create veth pair ``name``/``peer`` in one request; the host side's (``name``) index.

        The peer is created directly in the container's namespace (by fd or by pid) so it never
        shows up on the host under a name that could collide with another container's ``eth0``.
        """
        if peer_netns_fd is not None and peer_netns_pid is not None:
            raise ValueError(f"create veth {name}/{peer}: give peer_netns_fd or peer_netns_pid, not both")
        operation = f"create veth {name}/{peer}"
        peer_attrs = _attr_str(IFLA_IFNAME, _check_name(peer))
        if peer_mac is not None:
            peer_attrs += _attr(IFLA_ADDRESS, peer_mac)
        if peer_netns_fd is not None:
            peer_attrs += _attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        elif peer_netns_pid is not None:
            peer_attrs += _attr_u32(IFLA_NET_NS_PID, peer_netns_pid)
        peer_info = _attr(VETH_INFO_PEER, _IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + peer_attrs)
        attrs = _attr(IFLA_LINKINFO, _attr_str(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, peer_info))
        if master is not None:
            attrs += _attr_u32(IFLA_MASTER, self._index_or_raise(master, f"{operation}: master {master}"))
        return self._new_link(name, attrs, operation)

    def _set_link(self, name: str, attrs: bytes, operation: str, flags: int = 0, change: int = 0) -> None:
        # index 0 + IFLA_IFNAME: the kernel looks the link up by name, one round trip
        body = _IFINFOMSG.pack(AF_UNSPEC, 0, 0, flags, change) + _attr_str(IFLA_IFNAME, _check_name(name)) + attrs
        self._request(RTM_SETLINK, 0, body, operation)

    def set_up(self, name: str) -> None:
        """Set IFF_UP on link ``name``."""
        self._set_link(name, b"", f"set up {name}", IFF_UP, IFF_UP)

    def set_master(self, name: str, master: str | None) -> None:
        """Enslave link ``name`` to bridge ``master``, or release it with None."""
        if master is None:
            self._set_link(name, _attr_u32(IFLA_MASTER, 0), f"set nomaster {name}")
            return
        operation = f"set master {name} {master}"
        self._set_link(name, _attr_u32(IFLA_MASTER, self._index_or_raise(master, operation)), operation)

    def set_alias(self, name: str, alias: str) -> None:
        """Set the alias (IFLA_IFALIAS, at most 255 bytes) of link ``name``: a label that
        survives the process that made the link, as ``ip link set NAME alias TEXT``."""
        raw = alias.encode()
        if len(raw) > 255 or b"\0" in raw:
            raise ValueError(f"link alias {alias!r}: must be at most 255 bytes, without NUL")
        self._set_link(name, _attr_str(IFLA_IFALIAS, raw), f"set alias {name}")

    def set_mtu(self, name: str, mtu: int) -> None:
        """Set the MTU of link ``name``."""
        self._set_link(name, _attr_u32(IFLA_MTU, mtu), f"set mtu {name} {mtu}")

    def delete_link(self, name: str, *, missing_ok: bool = True) -> None:
        """Delete link ``name``; deleting one veth end removes both. ENODEV is ignored if missing_ok."""
        body = _IFINFOMSG.pack(AF_UNSPEC, 0, 0, 0, 0) + _attr_str(IFLA_IFNAME, _check_name(name))
        try:
            self._request(RTM_DELLINK, 0, body, f"delete link {name}")
        except NetlinkError as exc:
            if not (missing_ok and exc.errno == errno.ENODEV):
                raise

    def _names(self) -> dict[int, str]:
        return {index: name for index, name, _kind in self.links()}

    # -- addresses ------------------------------------------------------------------------------

    def add_address(self, name: str, cidr: str) -> None:
        """Add IPv4 ``cidr`` (e.g. "10.89.0.1/24") to link ``name``, with its broadcast address; an
        IPv6 ``cidr`` (e.g. "fd00:1::2/64") without duplicate address detection (usable at once).

        :raises NetlinkError: EEXIST if the link already has that address.
        """
        operation = f"add address {cidr} {name}"
        if ":" in cidr:
            addr6, prefixlen = _cidr6(cidr, "address")
            index = self._index_or_raise(name, operation)
            body = _IFADDRMSG.pack(AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index)
            body += _attr(IFA_LOCAL, addr6) + _attr(IFA_ADDRESS, addr6)
            self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, operation)
            return
        addr, prefixlen = _cidr(cidr, "address")
        index = self._index_or_raise(name, operation)
        body = _IFADDRMSG.pack(AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += _attr(IFA_LOCAL, addr) + _attr(IFA_ADDRESS, addr)
        if prefixlen < 31:  # /31 and /32 have no broadcast address (RFC 3021)
            host = int.from_bytes(addr, "big") | (~_mask(prefixlen) & 0xFFFFFFFF)
            body += _attr(IFA_BROADCAST, host.to_bytes(4, "big"))
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, operation)

    def addresses(self, name: str | None = None) -> list[tuple[str, str]]:
        """IPv4 addresses as (link name, "a.b.c.d/len"), of every link or of link ``name``."""
        names = self._names()
        want = None
        if name is not None:
            _check_name(name)
            want = next((i for i, n in names.items() if n == name), None)
            if want is None:
                raise NetlinkError(errno.ENODEV, f"list addresses {name}")
        body = _IFADDRMSG.pack(AF_INET, 0, 0, 0, 0)
        out = []
        for mtype, reply in self._request(RTM_GETADDR, NLM_F_DUMP, body, "list addresses"):
            family, prefixlen, _flags, _scope, index = _IFADDRMSG.unpack_from(reply)
            if mtype != RTM_NEWADDR or family != AF_INET or (want is not None and index != want):
                continue
            attrs = _parse_attrs(reply, _IFADDRMSG.size)
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)  # IFA_ADDRESS is the peer on ptp links
            if raw:
                out.append((names.get(index, str(index)), f"{_socket.inet_ntop(AF_INET, raw)}/{prefixlen}"))
        return out

    # -- routes ---------------------------------------------------------------------------------

    def add_route(self, gateway: str, *, dev: str | None = None, dst: str = "0.0.0.0/0") -> None:
        """Add an IPv4 route to ``dst`` via ``gateway`` to the main table (proto boot); an IPv6
        ``gateway`` adds the IPv6 default route via it."""
        if ":" in gateway:
            operation = f"add route ::/0 via {gateway}" + (f" dev {dev}" if dev else "")
            try:
                gw6 = _socket.inet_pton(AF_INET6, gateway)
            except OSError:
                raise ValueError(f"gateway {gateway!r}: not an IPv6 address") from None
            body = _RTMSG.pack(AF_INET6, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            body += _attr(RTA_GATEWAY, gw6)
            if dev is not None:
                body += _attr_u32(RTA_OIF, self._index_or_raise(dev, operation))
            self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, operation)
            return
        net, dst_len = _cidr(dst, "route destination")
        if int.from_bytes(net, "big") & ~_mask(dst_len) & 0xFFFFFFFF:
            raise ValueError(f"route destination {dst!r}: host bits set, e.g. 10.89.0.0/24 not 10.89.0.1/24")
        operation = f"add route {dst} via {gateway}" + (f" dev {dev}" if dev else "")
        body = _RTMSG.pack(AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        if dst_len:
            body += _attr(RTA_DST, net)
        body += _attr(RTA_GATEWAY, _ipv4(gateway, "gateway"))
        if dev is not None:
            body += _attr_u32(RTA_OIF, self._index_or_raise(dev, operation))
        self._request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, operation)

    def routes(self) -> list[tuple[str, str | None, str | None]]:
        """IPv4 routes of the main table as (dst cidr, gateway or None, link name or None).

        Multipath routes report their first next hop.
        """
        body = _RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        found: list[tuple[str, bytes | None, int | None]] = []
        for mtype, reply in self._request(RTM_GETROUTE, NLM_F_DUMP, body, "list routes"):
            family, dst_len, _src, _tos, table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(reply)
            if mtype != RTM_NEWROUTE or family != AF_INET:
                continue
            attrs = _parse_attrs(reply, _RTMSG.size)
            if RTA_TABLE in attrs:  # tables above 255 only fit the attribute
                table = _U32.unpack(attrs[RTA_TABLE][:4])[0]
            if table != RT_TABLE_MAIN:
                continue
            gateway = attrs.get(RTA_GATEWAY)
            oif = _U32.unpack(attrs[RTA_OIF][:4])[0] if RTA_OIF in attrs else None
            multipath = attrs.get(RTA_MULTIPATH)
            if multipath and len(multipath) >= _RTNEXTHOP.size:
                hop_len, _f, _h, oif = _RTNEXTHOP.unpack_from(multipath)
                gateway = _parse_attrs(multipath, _RTNEXTHOP.size, min(hop_len, len(multipath))).get(RTA_GATEWAY)
            dst = _socket.inet_ntop(AF_INET, attrs[RTA_DST]) if RTA_DST in attrs else "0.0.0.0"
            found.append((f"{dst}/{dst_len}", gateway, oif))
        names = self._names() if any(oif for _d, _g, oif in found) else {}
        return [
            (
                dst,
                _socket.inet_ntop(AF_INET, gw) if gw else None,
                names.get(oif, str(oif)) if oif else None,
            )
            for dst, gw, oif in found
        ]
