"""What both engines of the Client API provide: the local one in process (:mod:`.local`) and a
remote one over the Docker Engine API (:mod:`.remote`).

The faces (the plugin, the ``pods`` CLI, the daemon) code against these protocols and import the
value helpers they need from here, never from ``pytest_pods.engine``: this module is the one door
from the faces into the engine's vocabulary (references, binds, sizes, signals, port bindings,
the confinement options: tmpfs, ulimits, devices, sysctls, security options, shm size).

The results shared by both engines live here too: :class:`ContainerHandle` (what a container
handle of either engine builds on ``id`` and ``address()``), :class:`ExecResult`, :class:`RunResult`.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple, NotRequired, Protocol, TypedDict, overload

from pytest_pods.engine import rootless
from pytest_pods.engine.image.reference import Reference, parse_reference
from pytest_pods.engine.image.store import DEFAULT_ROOT
from pytest_pods.engine.runtime.lifecycle import ExecResult
from pytest_pods.engine.runtime.spec import (
    Bind,
    ContainerSpec,
    device_parts,
    parse_bytes,
    parse_security_opt,
    parse_signal,
    parse_ulimit,
)
from pytest_pods.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pytest_pods.engine.network.ports import ApiBindings, PortBinding, PortRecord
    from pytest_pods.engine.runtime.health import HealthState
    from pytest_pods.wait import Probe, Strategy

__all__ = [
    "DEFAULT_ROOT",
    "NO_NEW_PRIVILEGES",
    "Bind",
    "ClientAPI",
    "ContainerAPI",
    "ContainerHandle",
    "ContainerSummary",
    "ContainersAPI",
    "Devices",
    "EngineInfo",
    "ExecResult",
    "ImageAPI",
    "ImagesAPI",
    "LogLine",
    "NetworkCreated",
    "NetworksAPI",
    "PortBinding",
    "Ports",
    "Reference",
    "RunResult",
    "StartedAPI",
    "Stats",
    "Sysctls",
    "Tmpfs",
    "Ulimits",
    "VolumesAPI",
    "api_port_fields",
    "apply_changes",
    "cgroup_version",
    "device_list",
    "device_parts",
    "engine_unavailable",
    "extract_tar",
    "health_config",
    "parse_bytes",
    "parse_container_port",
    "parse_duration",
    "parse_ports",
    "parse_reference",
    "parse_signal",
    "port_bindings_doc",
    "rootless_engine",
    "security_opts",
    "shm_bytes",
    "sysctl_map",
    "tmpfs_list",
    "ulimit_list",
]

Ports = Mapping[str | int, Any] | Iterable["str | int | PortBinding"] | None
"""Published ports in any user form: docker-py's ``ports=`` mapping, ``-p`` texts (an int is a
container port), or :class:`PortBinding` values."""

LogLine = tuple[str, str, bytes]
"""One line of a container's log: (``"stdout"`` or ``"stderr"``, RFC 3339 time, the bytes)."""


def cgroup_version() -> int:
    """2 on a cgroup2 host, else 1."""
    from pytest_pods.engine.runtime import cgroups  # lazy: start latency (cgroups are off the CLI's path)

    return cgroups.cgroup_version()


def rootless_engine() -> bool:
    """Whether the local engine runs rootless here (an ordinary user, or a process already in the
    engine's user namespace)."""
    return rootless.active()


def engine_unavailable() -> str | None:
    """None when the local engine can run containers on this host, else why not (one line)."""
    from pytest_pods.engine.preflight import unavailable  # lazy: not on the CLI's start path

    return unavailable()


def apply_changes(config: Mapping[str, Any], changes: Sequence[str], verb: str = "commit") -> dict[str, Any]:
    """An image config with ``--change`` Dockerfile instructions (CMD, ENV, EXPOSE, ...) applied."""
    from pytest_pods.engine.runtime import commit  # lazy: not on the CLI's start path

    return commit.apply_changes(config, changes, verb)


def extract_tar(src: IO[bytes], dest_fd: int) -> None:
    """Unpack the tar stream ``src`` under the directory open as ``dest_fd`` (no path escapes it)."""
    from pytest_pods.engine.image.layers import extract_into  # lazy: start latency (tarfile, gzip)

    extract_into(src, dest_fd)


def parse_ports(ports: Ports) -> list[PortBinding]:
    """Every user form of published ports as :class:`PortBinding` values: docker-py's ``ports=``
    mapping, or ``-p`` texts (an int is a container port).

    :raises InvalidArgumentError: a value in no form Docker accepts
    """
    if not ports:
        return []  # the usual case: no port module to import
    from pytest_pods.engine.network import ports as forms  # lazy: start latency (only with ports)

    return forms.parse_ports(ports)


def parse_container_port(value: int | str) -> tuple[int, str]:
    """``80``, ``"80"``, ``"80/udp"`` -> ``(80, "udp")``."""
    from pytest_pods.engine.network import ports as forms  # lazy: start latency (dataclasses, ~20 ms)

    return forms.parse_container_port(value)


def port_bindings_doc(bindings: Iterable[PortBinding | PortRecord]) -> ApiBindings:
    """Bindings (or the state file's records) in the Engine API's form, keyed by ``80/tcp``."""
    from pytest_pods.engine.network import ports as forms  # lazy: start latency (dataclasses, ~20 ms)

    return forms.to_api(bindings)


def api_port_fields(ports: Ports) -> tuple[dict[str, dict[str, Any]], ApiBindings]:
    """docker-py's ``ports=`` as the Engine API's ``ExposedPorts`` and ``HostConfig.PortBindings``."""
    bindings = parse_ports(ports)
    return {b.key: {} for b in bindings}, port_bindings_doc(bindings)


# -- confinement: the values of privileged, security_opt, devices, sysctls, ulimits, shm_size and
# tmpfs in every form a user gives them (docker-py's and the CLI's), checked, in ContainerSpec's
# forms (issue 14). The engine checks what needs the host (a device node, a profile file).
NO_NEW_PRIVILEGES: bool = bool(ContainerSpec._field_defaults["no_new_privileges"])
"""The engine's default for ``no_new_privileges`` (Docker's: off): every face's default follows it."""

Tmpfs = Mapping[str, str] | Sequence[str]
"""docker-py's ``tmpfs={"/run": "size=64m"}``, or ``--tmpfs`` texts ``PATH[:OPTIONS]``."""
Ulimits = Sequence["str | Mapping[str, Any]"]
"""``--ulimit`` texts ``NAME=SOFT[:HARD]``, or docker-py's ``Ulimit``/dicts ``{Name, Soft, Hard}``."""
Devices = Sequence["str | Mapping[str, Any]"]
"""``--device`` texts ``HOST[:CONTAINER[:rwm]]``, or the Engine API's ``{PathOnHost, PathInContainer,
CgroupPermissions}``."""
Sysctls = Mapping[str, Any] | Sequence[str]
"""docker-py's ``sysctls={"net.ipv4.ip_forward": "1"}``, or ``--sysctl`` texts ``KEY=VALUE``."""

# moby's mount.ParseTmpfsOptions: the data options tmpfs takes, and the mount flags
_TMPFS_DATA = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})
_TMPFS_FLAGS = frozenset({
    "defaults", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync",
    "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "bind", "rbind", "unbindable",
    "runbindable", "private", "rprivate", "shared", "rshared", "slave", "rslave", "relatime", "norelatime",
    "strictatime", "nostrictatime"})


def tmpfs_list(tmpfs: Tmpfs | None) -> list[str]:
    """``tmpfs`` as ``PATH[:OPTIONS]`` texts, each checked as dockerd checks them: an absolute
    path, options tmpfs knows (``size=``, ``mode=``, ``uid=``, ``gid=``, ``nr_inodes=``, and the
    mount flags ``exec``, ``noexec``, ``ro`` ...).

    :raises InvalidArgumentError: naming the entry and what is wrong
    """
    if not tmpfs:
        return []
    if isinstance(tmpfs, str):
        tmpfs = [tmpfs]
    if isinstance(tmpfs, Mapping):
        items = [f"{k}:{v}" if v else str(k) for k, v in tmpfs.items()]
    else:
        items = [str(t) for t in tmpfs]
    for item in items:
        path, _, opts = item.partition(":")
        if not path.startswith("/"):
            raise InvalidArgumentError(f"invalid --tmpfs {item!r}: the container path must be absolute "
                                       "(e.g. /run or /run:size=64m,mode=1777)")
        if os.path.normpath(path) == "/":
            raise InvalidArgumentError(f"invalid --tmpfs {item!r}: destination can't be '/'")
        for opt in filter(None, opts.split(",")):
            key, eq, value = opt.partition("=")
            if key in _TMPFS_DATA and eq and value:
                if key in ("uid", "gid") and not value.isdigit():
                    raise InvalidArgumentError(f"invalid --tmpfs {item!r}: {key}= takes a number, not {value!r}")
                if key == "mode" and not (value.isdigit() and set(value) <= set("01234567")):
                    raise InvalidArgumentError(f"invalid --tmpfs {item!r}: mode= takes an octal mode such as 1777")
                if key in ("size", "nr_inodes", "nr_blocks") and not _kernel_size(value):
                    raise InvalidArgumentError(f"invalid --tmpfs {item!r}: {key}= takes a size such as 64m, "
                                               f"not {value!r}")
            elif key in _TMPFS_FLAGS and not eq:
                pass
            else:
                raise InvalidArgumentError(
                    f"invalid --tmpfs {item!r}: invalid tmpfs option {opt!r} (size=, mode=, uid=, gid=, nr_inodes=, "
                    "nr_blocks=, mpol=, or a mount flag such as exec, noexec, ro)")
    return items


def _kernel_size(value: str) -> bool:
    """The kernel's memparse (``64m``, ``1G``, ``4096``), or a percentage of memory for size."""
    digits = value.rstrip("%") if value.endswith("%") else value.rstrip("kKmMgGtTpPeE")
    return digits.isdigit() and len(value) - len(digits) <= 1


def ulimit_list(ulimits: Ulimits | None) -> list[str]:
    """Ulimits as ``NAME=SOFT:HARD`` texts: ``"nofile=1024:2048"``, docker-py's
    ``Ulimit(name=, soft=, hard=)`` or a dict ``{"Name": ..., "Soft": ..., "Hard": ...}`` (a missing
    hard limit is the soft one, as in Docker).

    :raises InvalidArgumentError: as Docker's go-units words it
    """
    if not ulimits:
        return []
    if isinstance(ulimits, str):
        ulimits = [ulimits]
    out: list[str] = []
    for u in ulimits:
        if isinstance(u, Mapping):
            doc = {str(k).lower(): v for k, v in u.items()}
            name, soft, hard = doc.get("name"), doc.get("soft"), doc.get("hard", doc.get("soft"))
            if (not isinstance(name, str) or not isinstance(soft, int) or not isinstance(hard, int)
                    or isinstance(soft, bool) or isinstance(hard, bool)):
                raise InvalidArgumentError(f"invalid ulimit {dict(u)!r}: want {{'Name': str, 'Soft': int, 'Hard': int}} "
                                           "or 'NAME=SOFT[:HARD]' (e.g. 'nofile=1024:2048')")
            text = f"{name}={soft}:{hard}"
        elif isinstance(u, str):
            text = u
        else:
            raise InvalidArgumentError(f"invalid ulimit {u!r}: want 'NAME=SOFT[:HARD]' (e.g. 'nofile=1024:2048') "
                                       "or {'Name': ..., 'Soft': ..., 'Hard': ...}")
        parse_ulimit(text)
        out.append(text)
    return out


def device_list(devices: Devices | None) -> list[str]:
    """Devices as ``HOST:CONTAINER:PERMISSIONS`` texts, from ``--device`` texts or the Engine
    API's ``{PathOnHost, PathInContainer, CgroupPermissions}``.

    :raises InvalidArgumentError: a value in neither form
    """
    if not devices:
        return []
    if isinstance(devices, str):
        devices = [devices]
    out: list[str] = []
    for d in devices:
        if isinstance(d, Mapping):
            host = d.get("PathOnHost")
            if not isinstance(host, str) or not host:
                raise InvalidArgumentError(f"invalid device {dict(d)!r}: PathOnHost is required")
            text = f"{host}:{d.get('PathInContainer') or host}:{d.get('CgroupPermissions') or 'rwm'}"
        elif isinstance(d, str):
            text = d
        else:
            raise InvalidArgumentError(f"invalid device {d!r}: want 'HOST[:CONTAINER[:rwm]]'")
        out.append(":".join(device_parts(text)))
    return out


def sysctl_map(sysctls: Sysctls | None) -> dict[str, str]:
    """Sysctls as a dict of texts, from a mapping or ``KEY=VALUE`` texts (which ones a container
    may set is the engine's to say: it knows the network mode).

    :raises InvalidArgumentError: a text without ``=``
    """
    if not sysctls:
        return {}
    if isinstance(sysctls, Mapping):
        return {str(k): str(v) for k, v in sysctls.items()}
    if isinstance(sysctls, str):
        sysctls = [sysctls]
    out: dict[str, str] = {}
    for item in sysctls:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"invalid --sysctl {item!r}: expected KEY=VALUE (e.g. net.ipv4.ip_forward=1)")
        out[key.strip()] = value
    return out


def security_opts(opts: Sequence[str] | str | None) -> list[str]:
    """``security_opt`` values, checked as dockerd reads them (a profile's file is read by the
    engine that runs the container).

    :raises InvalidArgumentError: naming the option and the forms it takes
    """
    if not opts:
        return []
    items = [opts] if isinstance(opts, str) else [str(o) for o in opts]
    parse_security_opt(items)
    return items


def shm_bytes(value: str | int | None) -> int | None:
    """``shm_size`` (``"64m"``, bytes) as bytes; None (or 0, as in Docker) for the default 64 MiB.

    :raises InvalidArgumentError: not a size, or below 0
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise InvalidArgumentError(f"invalid --shm-size {value!r}: expected a size such as 64m or 1g")
        return None
    size = parse_bytes(value, "--shm-size")
    if size < 0:
        raise InvalidArgumentError(f"invalid --shm-size {value!r}: SHM size can not be less than 0")
    return size or None


# -- health checks (issue 16): docker-py's ``healthcheck=`` and the CLI's --health-* durations -------
_HEALTH_KEYS = (("test", "Test"), ("interval", "Interval"), ("timeout", "Timeout"), ("retries", "Retries"),
                ("start_period", "StartPeriod"), ("start_interval", "StartInterval"))
_GO_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000}


def health_config(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``healthcheck=`` in docker-py's form (``test``, ``interval``, ``timeout``, ``retries``,
    ``start_period``, ``start_interval``; durations in nanoseconds; a ``test`` string is run by
    the shell) or the Engine API's (``Test``, ``Interval``, ...), as the API's ``Config.Healthcheck``.
    ``{"test": ["NONE"]}`` disables the image's.

    :raises InvalidArgumentError: not a mapping
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"healthcheck: expected a mapping such as {{'test': 'true', 'interval': 10**9}}, "
                                   f"not {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, api in _HEALTH_KEYS:
        v = value.get(key, value.get(api))
        if v is None:
            continue
        if api == "Test":
            v = ["CMD-SHELL", v] if isinstance(v, str) else [str(t) for t in v]
        out[api] = v
    return out


def parse_duration(text: str, what: str) -> int:
    """A Go duration (``200ms``, ``1.5s``, ``1m30s``; ``0``) in nanoseconds, as the docker CLI reads
    ``--health-interval``.

    :raises InvalidArgumentError: not a duration (the flag named)
    """
    import re  # lazy: start latency (only with --health-* flags)

    rest = text.strip()
    if rest == "0":
        return 0
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)", rest)
    if not parts or "".join(n + u for n, u in parts) != rest:
        raise InvalidArgumentError(f'invalid argument "{text}" for "{what}" flag: time: invalid duration "{text}"')
    for number, unit in parts:
        total += float(number) * _GO_UNITS[unit]
    return int(total)


def __getattr__(name: str) -> type[PortBinding]:
    """``PortBinding``, imported on first use: the port forms cost ~20 ms to import, and this
    module is on the CLI's start path."""
    if name == "PortBinding":
        from pytest_pods.engine.network.ports import PortBinding  # lazy: start latency (see above)

        return PortBinding
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ContainerSummary(TypedDict):
    """What both engines tell of a container (``containers.state(ref)``, ``container.state``):
    the local engine's state file has these keys and more, a remote engine's inspect document
    is read into them."""

    id: str
    name: str
    status: str                  # created | starting | running | exited (| removing, local)
    pid: int                     # its pid 1 as the engine's host sees it; 0 when not running
    exit_code: int
    image: str                   # the image ID
    image_name: str              # as the user named it
    network: str                 # the mode: none, host, or the first network's name
    labels: dict[str, str]
    created: str                 # RFC 3339
    started_at: str
    finished_at: str
    ports: NotRequired[list[PortRecord]]  # as bound, while it runs
    health: NotRequired[HealthState]      # State.Health (Status, FailingStreak, Log) of a health-checked one


class Stats(TypedDict):
    """What both engines report of a running container's resource use (None: not limited)."""

    memory_usage: int
    memory_limit: int | None
    pids: int
    cpu_usage_ns: int
    net: dict[str, tuple[int, int]]  # interface -> (received, sent) bytes (docker's NET I/O)
    block_read: int  # bytes (docker's BLOCK I/O)
    block_written: int


class ProcessList(NamedTuple):
    """``top``: the columns of ``ps`` and a row per process of the container (docker's shape)."""

    titles: list[str]
    processes: list[list[str]]


class NetworkCreated(TypedDict):
    """What ``networks.create`` returns on both engines (the local one: its whole record)."""

    id: str
    name: str


class EngineInfo(TypedDict):
    """What ``Client.info()`` reports: ``pods system info`` and the daemon's ``/info``."""

    root: str
    cgroup_version: int
    containers: int
    containers_running: int
    containers_stopped: int
    images: int
    mode: NotRequired[str]                 # "root" or "rootless"
    uid_map: NotRequired[str]              # rootless: container:host:size,...
    gid_map: NotRequired[str]
    network_helper: NotRequired[str]       # rootless: pasta, slirp4netns or none
    limited: NotRequired[list[str]]        # what does not work as for root, and why


class RunResult(NamedTuple):
    """What a foreground ``run`` returns: the exit code and what the process printed."""

    exit_code: int
    output: bytes
    stderr: bytes
    id: str


class ContainerHandle:
    """What a container handle of any engine (local or remote) builds on ``id`` and
    ``address()``: the same helpers, written once."""

    id: str

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id[:12]}>"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def address(self, port: int | str) -> tuple[str, int]:
        raise NotImplementedError

    def host_port(self, port: int | str) -> int:
        return self.address(port)[1]

    def url(self, port: int | str = 80, path: str = "/", scheme: str = "http") -> str:
        """The URL of a published container port from this host: ``url(8080, "/health")``."""
        host, hport = self.address(port)
        return f"{scheme}://{host}:{hport}/{path.lstrip('/')}"

    def wait_ready(self, strategy: Strategy | str | int | Sequence[Any], timeout: float = 60.0) -> float:
        """Block until ``strategy`` (see :mod:`pytest_pods.wait`) holds; the seconds it took."""
        from pytest_pods.wait import wait_ready  # lazy: start latency (http.client, tenacity)

        return wait_ready(self, strategy, timeout)  # type: ignore[arg-type]  # mypy: subclasses are Watched, not this base


# -- the protocols both engines keep ---------------------------------------------------------
class ImageAPI(Protocol):
    """An image as either engine describes it."""

    @property
    def id(self) -> str:
        """Docker's image ID: the digest of its config."""
    @property
    def short_id(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def tags(self) -> Sequence[str]:
        """The references that name it."""
    @property
    def familiar_tags(self) -> Sequence[str]:
        """``RepoTags``: the names with a tag, as docker shows them (``busybox:latest``)."""
    @property
    def config(self) -> Mapping[str, Any]:
        """The image config (at least ``config``: Env, Cmd, ...; and ``created``)."""
    @property
    def manifest_digest(self) -> str:
        """The digest of its manifest ("" when the engine does not say)."""


class ImagesAPI(Protocol):
    def get(self, name: str) -> ImageAPI: ...
    def list(self) -> Sequence[ImageAPI]: ...
    def inspect(self, name: str) -> dict[str, Any]: ...
    def tag(self, source: str, target: str) -> ImageAPI: ...
    def remove(self, name: str, *, force: bool = False) -> builtins.list[str]: ...
    def pull(self, ref: str, *, platform: str | None = None, insecure: bool = False,
             progress: Any = None) -> ImageAPI: ...
    def push(self, name: str, dest: str | None = None, *, insecure: bool = False, progress: Any = None) -> str: ...
    def bootstrap_busybox(self, tag: str = "busybox:latest") -> ImageAPI:
        """busybox from the host's static binary (local engine only)."""
    def bootstrap_debian(self, suite: str = "bookworm", tag: str | None = None) -> ImageAPI:
        """A Debian rootfs made by mmdebstrap (local engine only)."""
    def build(self, path: str | os.PathLike[str] = ".", *, tag: str | Sequence[str] | None = None,
              dockerfile: str | os.PathLike[str] | None = None, buildargs: Mapping[str, str] | None = None,
              target: str | None = None, nocache: bool = False, labels: Mapping[str, str] | None = None,
              network: str = "bridge", progress: Any = None) -> ImageAPI: ...


class ContainerAPI(Protocol):
    """One container, by ID; what the plugin and the readiness strategies use."""

    id: str

    @property
    def short_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def ip(self) -> str: ...
    @property
    def state(self) -> ContainerSummary: ...
    def inspect(self) -> dict[str, Any]: ...
    def start(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def stop(self, timeout: float | None = None) -> None: ...
    def kill(self, signal: str | int = ...) -> None: ...
    def remove(self, *, force: bool = False, v: bool = True) -> None:
        """Remove the container and (``v``, unlike docker-py's default: fixtures leave nothing)
        the anonymous volumes it made (``-v /data``, the image's ``VOLUME``s)."""
    def restart(self, timeout: float | None = None) -> None: ...
    def stats(self) -> Stats: ...
    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None) -> bytes: ...
    def stream_logs(self, *, follow: bool = True) -> Iterator[LogLine]: ...
    def follow_logs(self, until: float | None = None) -> Iterator[LogLine]: ...
    def exec(self, cmd: Sequence[str] | str, *, environment: Sequence[str] | None = None,
             user: str | None = None, workdir: str | None = None, privileged: bool = False) -> ExecResult: ...
    def address(self, port: int | str) -> tuple[str, int]: ...
    def host_port(self, port: int | str) -> int: ...
    def url(self, port: int | str = 80, path: str = "/", scheme: str = "http") -> str: ...
    def copy_in(self, src: str | os.PathLike[str], dest: str) -> None: ...
    def copy_out(self, src: str, dest: str | os.PathLike[str]) -> None: ...
    def read_file(self, path: str) -> bytes: ...
    def commit(self, repository: str | None = None, tag: str | None = None, *, message: str = "",
               author: str = "", changes: Sequence[str] | str = (), conf: Mapping[str, Any] | None = None,
               pause: bool = True, stop: bool = False) -> ImageAPI: ...
    def probe(self, st: Mapping[str, Any] | None = None) -> Probe: ...


class StartedAPI(Protocol):
    """What ``containers.start`` returns: wait for the exit (its code), or let go."""

    def wait(self) -> int: ...
    def close(self) -> None: ...


class ContainersAPI(Protocol):
    """Containers: the handles (``get``, ``list``, ``create``, ``run``) and the verbs by reference
    that the CLI and the daemon use (a name, an ID or a unique ID prefix)."""

    def create(
        self, image: str, command: Sequence[str] | str | None = None, *,
        entrypoint: Sequence[str] | None = None, name: str | None = None,
        environment: Mapping[str, str] | Sequence[str] | None = None, working_dir: str | None = None,
        user: str | None = None, hostname: str | None = None, volumes: Sequence[str | Bind] = (),
        tmpfs: Tmpfs | None = None, memory: str | int | None = None, memory_swap: str | int | None = None,
        pids_limit: int | None = None, cpus: float | None = None, network: str = "bridge",
        network_aliases: Sequence[str] = (), ports: Ports = (),
        publish_all_ports: bool = False, read_only: bool = False, init: bool = False,
        labels: Mapping[str, str] | None = None, stop_signal: str | None = None, stop_timeout: int | None = None,
        auto_remove: bool = False, no_new_privileges: bool = NO_NEW_PRIVILEGES, cap_add: Sequence[str] = (),
        cap_drop: Sequence[str] = (), stdin_open: bool = False, privileged: bool = False,
        security_opt: Sequence[str] | None = None, devices: Devices | None = None, sysctls: Sysctls | None = None,
        ulimits: Ulimits | None = None, shm_size: str | int | None = None,
        healthcheck: Mapping[str, Any] | None = None, volumes_from: Sequence[str] = (),
        restart_policy: Mapping[str, Any] | None = None, group_add: Sequence[str | int] = (),
        pid_mode: str | None = None, uts_mode: str | None = None, log_config: Mapping[str, Any] | None = None,
        cpu_shares: int | None = None, links: Sequence[str] | Mapping[str, str] = (),
        extra_hosts: Sequence[str] | Mapping[str, str] = (), expose: Sequence[str | int] = (),
        ipc_mode: str | None = None, host_config: Mapping[str, Any] | None = None,
        network_endpoint: Mapping[str, Any] | None = None,
    ) -> ContainerAPI:
        """Create (not start) a container; docker-py's argument names and meanings.

        Confinement as in Docker: ``privileged`` (every capability, host devices, no seccomp
        filter), ``security_opt`` (``seccomp=unconfined``, ``seccomp=PROFILE.json`` or its JSON,
        ``no-new-privileges``), ``cap_add``/``cap_drop`` (``ALL`` too), ``devices``
        (``HOST[:CONTAINER[:rwm]]``), ``sysctls`` (namespaced ones), ``ulimits``
        (``"nofile=1024:2048"`` or ``{Name, Soft, Hard}``), ``shm_size`` (``"128m"`` or bytes),
        ``read_only`` with ``tmpfs`` (``{"/run": "size=64m"}`` or ``["/run:size=64m"]``).
        ``healthcheck``: docker-py's form (see :func:`health_config`), overriding the image's
        HEALTHCHECK field by field; the engine runs it and reports ``State.Health``.
        ``volumes``: ``/host:/path[:ro]``, ``NAME:/path[:ro][,nocopy]`` (a new volume is filled
        from the image's content at ``/path`` unless ``nocopy``); the image's ``VOLUME``s get
        anonymous volumes. ``volumes_from``: ``CTR[:ro|rw]``, that container's mounts.
        ``restart_policy``: ``{"Name": "on-failure", "MaximumRetryCount": 3}`` (also ``always``,
        ``unless-stopped``); ``group_add``: supplementary groups; ``pid_mode``/``uts_mode``
        ``"host"``; ``log_config``: ``{"Type": "json-file"|"local"|"none", "Config": {...}}``;
        ``links``: legacy ``NAME[:ALIAS]`` links; ``extra_hosts``: ``NAME:IP`` for /etc/hosts.
        ``expose``: ports listened on, not published (``80/udp``); ``ipc_mode``: ``private``,
        ``shareable``, ``none`` or ``host``; ``host_config``: other HostConfig fields as the API
        names them (``Dns``, ``DnsSearch``, ``DnsOptions`` and ``CpusetCpus`` are applied);
        ``network_endpoint``: EndpointSettings on ``network`` (``{"IPAMConfig": {"IPv4Address": ...}}``).
        """
    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[True],
            remove: bool = False, **kwargs: Any) -> ContainerAPI: ...
    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[False] = False,
            remove: bool = False, **kwargs: Any) -> RunResult: ...
    def get(self, ref: str) -> ContainerAPI: ...
    def list(self, *, all: bool = False) -> Sequence[ContainerAPI]: ...
    def start(self, ref: str, attach: tuple[int, int] | None = None, stdin: int | None = None) -> StartedAPI: ...
    def stop(self, ref: str, timeout: float | None = None, stop_signal: int | None = None) -> None: ...
    def kill(self, ref: str, signal: int | str = ...) -> None: ...
    def remove(self, ref: str, force: bool = False) -> str: ...
    def exec(self, ref: str, cmd: Sequence[str], *, env: Sequence[str] | None = None, user: str | None = None,
             workdir: str | None = None, stdio: tuple[int, int, int] | None = None,
             privileged: bool = False) -> ExecResult: ...
    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             partial: bool = False) -> Iterator[LogLine]: ...
    def wait(self, ref: str, timeout: float | None = None) -> int: ...
    def state(self, ref: str) -> ContainerSummary: ...
    def states(self, all: bool = False) -> Sequence[ContainerSummary]: ...
    def stats(self, ref: str) -> Stats: ...
    def pause(self, ref: str) -> None: ...
    def unpause(self, ref: str) -> None: ...
    def rename(self, ref: str, name: str) -> str: ...
    def update(self, ref: str, *, memory: str | int | None = None, memory_swap: str | int | None = None,
               pids_limit: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               restart_policy: Mapping[str, Any] | None = None) -> None: ...
    def changes(self, ref: str) -> builtins.list[tuple[str, int]]: ...
    def processes(self, ref: str, ps_args: str = "") -> ProcessList: ...
    def export(self, ref: str, out: IO[bytes]) -> None: ...


class NetworksAPI(Protocol):
    def create(self, name: str, *, subnet: str | None = None, internal: bool = False,
               labels: Mapping[str, str] | None = None) -> NetworkCreated: ...
    def get(self, name: str) -> dict[str, Any]: ...
    def list(self, *, create_default: bool = True) -> builtins.list[dict[str, Any]]: ...
    def remove(self, name: str) -> str: ...
    def connect(self, network: str, container: str, aliases: Sequence[str] = ()) -> None: ...
    def disconnect(self, network: str, container: str) -> None: ...


class VolumesAPI(Protocol):
    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> dict[str, Any]: ...
    def get(self, name: str) -> dict[str, Any]: ...
    def list(self) -> builtins.list[dict[str, Any]]: ...
    def remove(self, name: str, *, force: bool = False) -> None: ...


class ClientAPI(Protocol):
    """An engine: ``Client(root)`` (local) or ``RemoteClient(host)``."""

    @property
    def images(self) -> ImagesAPI: ...
    @property
    def containers(self) -> ContainersAPI: ...
    @property
    def networks(self) -> NetworksAPI: ...
    @property
    def volumes(self) -> VolumesAPI: ...
    @property
    def root(self) -> Path | None: ...
    def reap(self) -> builtins.list[str]: ...
    def cleanup(self) -> builtins.list[str]: ...
    def prune(self) -> builtins.list[str]: ...
    def events(self, since: float | None = None, until: float | None = None, *, follow: bool = True,
               stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]: ...
