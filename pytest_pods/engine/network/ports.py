"""Published ports: one :class:`PortBinding` for every form a user or a client gives them in.

The forms, each read by one constructor and all ending as the same value:

- ``docker run -p`` text (:meth:`PortBinding.parse`): ``80``, ``8080:80``, ``127.0.0.1:8080:80``,
  ``127.0.0.1::80``, ``80/udp``, ranges ``8000-8001:80-81`` and IPv6 ``[::1]:8080:80``, by the
  rules of moby's ``nat.ParsePortSpec``;
- docker-py's ``ports=`` mapping (:meth:`PortBinding.from_docker_py`);
- the Engine API's ``HostConfig.PortBindings`` (:meth:`PortBinding.from_api`), and back
  (:func:`to_api`);
- the container state file's records (:class:`PortRecord`, :meth:`PortBinding.to_record`).

Publishing (the engine's side): the container's monitor binds a socket on each host port and
holds it for the container's lifetime (:func:`reserve`), so the port is reserved against other
processes and auto-assigned ports (bind to port 0) are unique under parallel starts; the traffic
itself is kernel DNAT (:func:`publish`), with no userland proxy. Rootless, no DNAT can reach
from the host's namespace into the rootless netns: :func:`publish` forks a forwarder that keeps
those same sockets and relays to the container (``network/rootless_net.py``).
"""

from __future__ import annotations

import ipaddress  # already loaded with pathlib (urllib.parse imports it)
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

from pytest_pods.engine.network import iptables
from pytest_pods.errors import InvalidArgumentError, NetworkError

if TYPE_CHECKING:  # socket costs milliseconds to import: only the monitor binds
    import socket

PROTOCOLS = ("tcp", "udp", "sctp")
ANY_ADDRESS = "0.0.0.0"  # the state file's word for "every address" (PortBinding says "")
FORM = "[IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp|sctp]"
_DIGITS = re.compile(r"[0-9]+")
FORWARDER = "rootless-forwarder"  # publish's record, rootless: {FORWARDER: ["PID"]} instead of rules
# the sockets reserve() bound in this process, by (proto, host ip, host port): a rootless publish
# hands them to the forwarder
_held: dict[tuple[str, str, int], socket.socket] = {}


class PortRecord(TypedDict):
    """A binding as the container state file keeps it (``port_specs``; ``ports`` once bound)."""

    container_port: int
    proto: str
    host_ip: str      # "0.0.0.0": every address
    host_port: int    # 0: any free port (in ``port_specs``)


# API forms: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
ApiBindings = dict[str, list[dict[str, str]]]


class PortBinding(NamedTuple):
    """One container port published on one host address and port (a NamedTuple, not a dataclass:
    ``dataclasses`` costs ~6 ms to import, on every ``pods run -p``)."""

    container_port: int
    proto: str = "tcp"          # tcp | udp | sctp
    host_ip: str = ""           # "" = every address
    host_port: int = 0          # 0 = any free port

    @property
    def key(self) -> str:
        """Docker's name for the container port: ``80/tcp``."""
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        """The ``-p`` form: ``127.0.0.1:8080:80/tcp``, ``[::1]::80/udp``."""
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        host = f"{ip}:{self.host_port or ''}:" if ip else f"{self.host_port}:" if self.host_port else ""
        return f"{host}{self.key}"

    @property
    def any_address(self) -> bool:
        return self.host_ip in ("", ANY_ADDRESS)

    # -- the forms in --------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> list[PortBinding]:
        """``docker run -p``: ``[IP:][HOSTPORT:]CONTAINERPORT[/PROTO]``, ports or equal-length ranges.

        :raises InvalidArgumentError: naming the value and the form.
        """
        def bad(why: str) -> InvalidArgumentError:
            return InvalidArgumentError(f"invalid port {text!r}: {why}")

        parts = str(text).split(":")
        ctr = parts[-1]
        host = parts[-2] if len(parts) >= 2 else ""
        ip = ":".join(parts[:-2])
        if ip.startswith("["):
            if not ip.endswith("]"):
                raise bad(f"invalid IP address {ip}: expected {FORM}")
            ip = ip[1:-1]
        if ip:
            ip = _host_ip(ip, bad)
        ctr, _, proto = ctr.partition("/")
        proto = (proto or "tcp").lower()
        if not ctr:
            raise bad(f"no port specified: expected {FORM}")
        if proto not in PROTOCOLS:
            raise bad("protocol must be tcp, udp or sctp")
        first, last = _port_range(ctr, bad)
        if first == 0:
            raise bad("ports are 1 to 65535")
        if host:
            hfirst, hlast = _port_range(host, bad)
            if hlast - hfirst != last - first:
                if hlast != hfirst and first == last:
                    # docker: a range of host ports for one container port, allocated from
                    raise bad("a range of host ports for one container port is not supported: give one host port")
                raise bad(f"invalid ranges specified for container and host ports: {ctr} and {host}")
        else:
            hfirst = 0
        return [cls(first + i, proto, ip, hfirst + i if hfirst else 0) for i in range(last - first + 1)]

    @classmethod
    def from_docker_py(cls, ports: Mapping[str | int, Any]) -> list[PortBinding]:
        """docker-py's ``ports=``: ``{"80/tcp": 8080}``, the value ``None`` (any free port),
        ``"8080"``, ``("127.0.0.1", 8080)``, ``("127.0.0.1",)``, ``{"HostIp": .., "HostPort": ..}``
        or a list of those (several host ports for one container port)."""
        out = []
        for key, value in ports.items():
            port, proto = parse_container_port(key)
            for one in value if isinstance(value, list) else [value]:
                ip: Any = ""
                host: Any = one
                if isinstance(one, tuple):
                    if len(one) == 2:
                        ip, host = one
                    elif len(one) == 1 and isinstance(one[0], str):
                        ip, host = one[0], None
                    elif len(one) == 1:
                        host = one[0]
                    else:
                        raise InvalidArgumentError(f"invalid port binding {one!r} for {key}: "
                                                   "expected (host_ip, host_port)")
                elif isinstance(one, Mapping):
                    ip, host = one.get("HostIp") or "", one.get("HostPort")
                out.append(cls._bound(port, proto, ip, host, f"{key}: {one!r}"))
        return out

    @classmethod
    def from_api(cls, port_bindings: Mapping[str, Any] | None) -> list[PortBinding]:
        """The Engine API's ``HostConfig.PortBindings``: ``{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}``.

        ``null`` or an empty list publishes the port on any free host port (as before).

        :raises InvalidArgumentError: a value of the wrong type, a bad port or address.
        """
        out = []
        for key, binds in (port_bindings or {}).items():
            port, proto = parse_container_port(key)
            if binds is not None and not isinstance(binds, list):
                raise InvalidArgumentError(f"json: cannot unmarshal PortBindings[{key}]: want a list")
            for b in binds or [{}]:
                b = b or {}
                if not isinstance(b, dict):
                    raise InvalidArgumentError(f"json: cannot unmarshal PortBindings[{key}]: want objects")
                out.append(cls._bound(port, proto, str(b.get("HostIp") or ""), str(b.get("HostPort") or ""),
                                      f"{key}: {b!r}"))
        return out

    @classmethod
    def _bound(cls, port: int, proto: str, ip: Any, host: Any, what: str) -> PortBinding:
        def bad(why: str) -> InvalidArgumentError:
            return InvalidArgumentError(f"invalid port binding {what}: {why}")

        ip = _host_ip(str(ip).removeprefix("[").removesuffix("]"), bad) if ip else ""
        if host is None or host == "":
            return cls(port, proto, ip, 0)
        first, last = _port_range(str(host), bad)
        if first != last:
            raise bad("a range of host ports for one container port is not supported: give one host port")
        return cls(port, proto, ip, first)

    # -- the state file ------------------------------------------------------------------
    def to_record(self) -> PortRecord:
        return {"container_port": self.container_port, "proto": self.proto,
                "host_ip": self.host_ip or ANY_ADDRESS, "host_port": self.host_port}

    @classmethod
    def from_record(cls, rec: PortRecord) -> PortBinding:
        ip = rec.get("host_ip") or ""
        return cls(int(rec["container_port"]), rec.get("proto") or "tcp", "" if ip == ANY_ADDRESS else ip,
                   int(rec.get("host_port") or 0))


def parse_container_port(value: int | str) -> tuple[int, str]:
    """A container port as docker-py and the Engine API name it: ``80``, ``"80"``, ``"80/udp"``
    -> ``(80, "udp")``.

    :raises InvalidArgumentError: not a port from 1 to 65535, or not tcp, udp or sctp.
    """
    text = str(value)
    num, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgumentError(f"invalid port {text!r}: protocol must be tcp, udp or sctp")
    if isinstance(value, bool) or not _DIGITS.fullmatch(num) or not 0 < int(num) < 65536:
        raise InvalidArgumentError(f"invalid port {text!r}: expected a port from 1 to 65535[/tcp|udp|sctp]")
    return int(num), proto


def parse_ports(ports: Mapping[str | int, Any] | Iterable[str | int | PortBinding] | None) -> list[PortBinding]:
    """Every user form at once: docker-py's mapping, or ``-p`` texts (an int is a container port),
    or bindings already made."""
    if not ports:
        return []
    if isinstance(ports, Mapping):
        return PortBinding.from_docker_py(ports)
    if isinstance(ports, (str, int)):
        ports = [ports]
    out: list[PortBinding] = []
    for p in ports:
        if isinstance(p, PortBinding):
            out.append(p)
        elif isinstance(p, int) and not isinstance(p, bool):
            out.append(PortBinding(parse_container_port(p)[0]))
        else:
            out.extend(PortBinding.parse(str(p)))
    return out


def to_api(bindings: Iterable[PortBinding | PortRecord]) -> ApiBindings:
    """Back to the Engine API form, keyed by ``80/tcp``: from bindings as asked
    (``HostConfig.PortBindings``: HostIp "" for every address, HostPort "" for any free port), or
    from the state file's records as bound (``NetworkSettings.Ports``: HostIp "0.0.0.0")."""
    out: ApiBindings = {}
    for b in bindings:
        if isinstance(b, PortBinding):
            key, ip, port = b.key, b.host_ip, b.host_port
        else:
            key, ip, port = f"{b['container_port']}/{b['proto']}", b["host_ip"], b["host_port"]
        out.setdefault(key, []).append({"HostIp": ip, "HostPort": str(port) if port else ""})
    return out


def _port_range(text: str, bad: Any) -> tuple[int, int]:
    """``"80"`` or ``"8000-8010"`` (moby's ParsePortRange: decimal digits, at most 65535)."""
    first, dash, last = text.partition("-")
    if not _DIGITS.fullmatch(first) or (dash and not _DIGITS.fullmatch(last)):
        raise bad(f"expected {FORM}")
    a, b = int(first), int(last) if dash else int(first)
    if a > 65535 or b > 65535:
        raise bad("ports are 1 to 65535")
    if b < a:
        raise bad(f"invalid range specified for port: {text}")
    return a, b


def _host_ip(text: str, bad: Any) -> str:
    if "%" in text:
        raise bad(f"invalid IP address: {text}")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise bad(f"invalid IP address: {text}") from None


# -- publishing (the engine) -------------------------------------------------------------------
def check_publishable(bindings: Sequence[PortBinding]) -> None:
    """What the engine cannot publish (yet), refused at create rather than at start.

    :raises InvalidArgumentError: an IPv6 host address (our rules are IPv4 iptables).
    """
    for b in bindings:
        if ":" in b.host_ip:
            raise InvalidArgumentError(f"invalid port {b}: publishing on an IPv6 address is not supported")


def reserve(bindings: Sequence[PortBinding]) -> tuple[list[PortBinding], list[socket.socket]]:
    """Bind each host port (0: the kernel picks one); the sockets are held while the container runs.

    Rootless, the TCP sockets are the forwarder's listeners, and they listen from here on, with
    ``SO_REUSEADDR`` as Docker's userland proxy's (Go's listeners) have: the forwarder closes a
    connection first when the container does, and that connection then waits out TIME_WAIT on
    the host port for a minute; without the option on both sides, the next container on the same
    fixed port failed to bind it all that time (issue 15). Listening at once keeps the
    reservation exclusive (two sockets with the option may share a port while neither listens).

    :returns: the bindings with their host ports filled in, and the sockets to hold.
    :raises NetworkError: a port is in use (docker's words: "port is already allocated").
    """
    import socket  # lazy: start latency (only the monitor binds)

    from pytest_pods.engine.network import rootless_net  # lazy: as in publish

    forwarded = rootless_net.active()

    kinds = {"tcp": (socket.SOCK_STREAM, 0), "udp": (socket.SOCK_DGRAM, 0),
             "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP)}
    held: list[socket.socket] = []
    out = []
    try:
        for b in bindings:
            where = f"{b.host_ip or ANY_ADDRESS}:{b.host_port}"
            kind, proto = kinds[b.proto]
            try:
                s = socket.socket(socket.AF_INET, kind, proto)
            except OSError as exc:
                raise NetworkError(f"Bind for {where}/{b.proto} failed: {exc.strerror}") from None
            held.append(s)
            listens = forwarded and b.proto == "tcp"
            try:
                if listens:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((b.host_ip, b.host_port))
                if listens:
                    s.listen(512)
            except PermissionError as exc:
                raise NetworkError(f"Bind for {where} failed: {exc.strerror} (ports below "
                                   "net.ipv4.ip_unprivileged_port_start need root)") from None
            except OSError as exc:
                raise NetworkError(f"Bind for {where} failed: port is already allocated ({exc.strerror})") from None
            out.append(b._replace(host_port=s.getsockname()[1]))
    except BaseException:
        for s in held:
            s.close()
        raise
    for b, s in zip(out, held, strict=True):
        _held[(b.proto, b.host_ip, b.host_port)] = s
    return out, held


def publish_rules(cid: str, ip: str, bindings: Iterable[PortBinding]) -> iptables.RuleSet:
    """The DNAT rules that send each bound host port to ``ip`` (the container's first address)."""
    c = f"-m comment --comment {iptables.container_tag(cid)}"
    nat = []
    for b in bindings:
        dst = "" if b.any_address else f"-d {b.host_ip} "
        nat.append(f"-A PODS-DNAT {dst}-p {b.proto} -m {b.proto} --dport {b.host_port} {c} "
                   f"-j DNAT --to-destination {ip}:{b.container_port}")
    return {"nat": nat}


def publish(cid: str, ip: str, bindings: Iterable[PortBinding]) -> iptables.RuleSet:
    """Add the DNAT rules; returns them, for :func:`unpublish` to delete line by line.

    Rootless: start the container's forwarder with the sockets :func:`reserve` bound in this
    process; returns ``{FORWARDER: [pid]}`` for :func:`unpublish`.
    """
    from pytest_pods.engine.network import rootless_net  # lazy: start latency (-p parsing never needs it)

    if rootless_net.active():
        root = rootless_net.remembered()
        if root is None:
            raise NetworkError(f"publish ports of {cid[:12]}: no rootless network root in this process")
        listeners = []
        for b in bindings:
            s = _held.get((b.proto, b.host_ip, b.host_port))
            if s is None:
                raise NetworkError(f"publish {b}: its host port was not reserved by this process")
            listeners.append((s, b.proto, b.container_port))
        return {FORWARDER: [str(rootless_net.forward(root, cid, ip, listeners))]}
    rules = publish_rules(cid, ip, bindings)
    iptables.restore(rules)
    return rules


def unpublish(cid: str, added: iptables.RuleSet | None = None) -> None:
    """Delete a container's DNAT rules: ``added`` line by line (one exec), or, when those are
    not all there any more (or unknown), every rule tagged with the container (best effort).

    Rootless: end its forwarder (``added`` names it; else its record in the run dir).
    """
    from pytest_pods.engine.network import rootless_net  # lazy: as in publish

    if rootless_net.active():
        pids = (added or {}).get(FORWARDER) or []
        rootless_net.stop_forwarder(rootless_net.remembered(), cid, int(pids[0]) if pids else None)
        return
    try:
        if not added:
            raise NetworkError("no record of the rules")
        iptables.restore(iptables.inverse(added))
    except NetworkError:
        iptables.delete_rules(iptables.container_tag(cid))
