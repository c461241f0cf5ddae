"""ContainerSpec (what a user asks for) and the OCI runtime-spec ``config.json`` made from it.

The bundle's ``config.json`` is the single description of a container: our own init reads it to set
the container up, and a standard runtime (runc) can run the same bundle. The defaults follow moby's
(``oci/defaults.go``): capabilities, masked and read-only paths, the /dev set and the mounts.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_pods.engine import linux, rootless
from pytest_pods.errors import InvalidArgumentError

if TYPE_CHECKING:  # the network package is off the CLI's start path
    from pytest_pods.engine.network.ports import PortBinding

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set.
DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

# moby oci/defaults.go
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# (path, major, minor, mode): the device nodes every container gets
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3, 0o666), ("/dev/zero", 1, 5, 0o666), ("/dev/full", 1, 7, 0o666),
    ("/dev/random", 1, 8, 0o666), ("/dev/urandom", 1, 9, 0o666), ("/dev/tty", 5, 0, 0o666),
)

NETWORK_MODES = ("none", "host")  # and any network by name: "bridge" (the default) or a user network

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str | int, what: str = "--memory") -> int:
    """Docker's RAMInBytes: ``64m``, ``1g``, ``512k``, ``1048576``."""
    if isinstance(text, int):
        return text
    raw = text.strip().lower()
    num = raw.rstrip("bkmgt")
    unit = raw[len(num):].removesuffix("b") if raw[len(num):] not in ("", "b") else ""
    try:
        value = float(num)
    except ValueError:
        raise InvalidArgumentError(f"invalid {what} value {text!r}: expected a size such as 64m or 1g") from None
    if unit not in _UNITS or value < 0:
        raise InvalidArgumentError(f"invalid {what} value {text!r}: expected a size such as 64m or 1g")
    return int(value * _UNITS[unit])


def parse_signal(value: str | int) -> int:
    """``SIGTERM``, ``TERM``, ``15`` -> 15."""
    if isinstance(value, int) or str(value).isdigit():
        num = int(value)
        if not 0 < num < 65:
            raise InvalidArgumentError(f"invalid signal: {value}")
        return num
    name = str(value).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgumentError(f"invalid signal: {value}") from None


class Bind(NamedTuple):
    """A bind mount from the host into the container (``-v HOST:CTR[:ro]``); a volume's is its
    data directory, filled from the image at first mount unless ``nocopy`` (issue 16)."""

    source: str
    target: str
    readonly: bool = False
    nocopy: bool = False

    @classmethod
    def parse(cls, text: str) -> Bind:
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise InvalidArgumentError(f"invalid volume specification {text!r}: expected HOSTPATH:PATH[:ro|rw]")
        ro = nocopy = False
        if len(parts) == 3:
            opts = set(parts[2].split(","))
            # a bind is private (rprivate) here: asking for that is fine; another propagation is
            # Docker's (shared, slave) but not this engine's, and is refused by its name
            opts -= {"rprivate", "private"}
            other = sorted(opts & {"shared", "rshared", "slave", "rslave"})
            if other:
                raise InvalidArgumentError(f"invalid volume specification {text!r}: mount propagation {other[0]!r} "
                                           "is not supported by this engine: its binds are rprivate (drop the mode)")
            if not opts <= {"ro", "rw", "z", "Z", "nocopy"} or {"ro", "rw"} <= opts:
                raise InvalidArgumentError(f"invalid volume specification {text!r}: unknown mode {parts[2]!r}")
            ro, nocopy = "ro" in opts, "nocopy" in opts
        if not parts[0].startswith("/"):
            raise InvalidArgumentError(
                f"invalid volume specification {text!r}: the host path must be absolute (named volumes come later)"
            )
        if not parts[1].startswith("/"):
            raise InvalidArgumentError(f"invalid volume specification {text!r}: the container path must be absolute")
        return cls(os.path.abspath(parts[0]), os.path.normpath(parts[1]), ro, nocopy)


class ContainerSpec(NamedTuple):
    """Everything a user can ask of a container at create time; image config fills the rest."""

    image: str
    command: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    name: str | None = None
    env: Mapping[str, str] | Sequence[str] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    binds: Sequence[Bind] = ()
    tmpfs: Sequence[str] = ()
    memory: int | None = None
    memory_swap: int | None = None
    pids_limit: int | None = None
    cpus: float | None = None
    network: str = "bridge"
    network_aliases: Sequence[str] = ()
    network_endpoint: Mapping[str, Any] | None = None  # EndpointSettings: fixed IPAMConfig addresses, Links, DriverOpts
    ports: Sequence[str | PortBinding] = ()  # -p specs ([IP:][HOSTPORT:]CTRPORT[/proto]) or bindings
    publish_all: bool = False       # -P: every port the image EXPOSEs, on free host ports
    read_only: bool = False
    init: bool = False
    labels: Mapping[str, str] = MappingProxyType({})
    stop_signal: str | None = None
    stop_timeout: int | None = None
    auto_remove: bool = False
    no_new_privileges: bool = False  # Docker's default: setuid binaries (su, ping) work; security_opt sets it
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    stdin_open: bool = False
    privileged: bool = False        # all capabilities, host devices, no seccomp, writable /sys and cgroupfs
    security_opt: Sequence[str] = ()  # Docker's: seccomp=unconfined|PROFILE.json|<json>, no-new-privileges[=bool]
    devices: Sequence[str] = ()     # --device HOST[:CONTAINER[:PERMISSIONS]]
    sysctls: Mapping[str, str] = MappingProxyType({})  # namespaced ones only (net.*, kernel.shm*, fs.mqueue.*)
    ulimits: Sequence[str] = ()     # --ulimit NAME=SOFT[:HARD]
    shm_size: int | None = None     # bytes of /dev/shm (Docker's default is 64 MiB)
    healthcheck: Mapping[str, Any] | None = None  # Config.Healthcheck (ns); overrides the image's field by field
    volumes_from: Sequence[str] = ()  # CTR[:ro|rw]: its volumes and binds at the same paths
    restart_policy: Mapping[str, Any] | None = None  # {Name: no|on-failure|always|unless-stopped, MaximumRetryCount}
    group_add: Sequence[str] = ()   # supplementary groups: names (the image's /etc/group) or numbers
    pid_mode: str = ""              # "" (its own pid namespace) or "host"
    uts_mode: str = ""              # "" (its own hostname) or "host"
    ipc_mode: str = ""              # "", "private" or "shareable" (its own ipc namespace)
    cgroupns_mode: str = ""         # "" or "private" (its own cgroup namespace) or "host"
    log_config: Mapping[str, Any] | None = None  # {Type: json-file|local|none, Config: {...}}
    host_config: Mapping[str, Any] = MappingProxyType({})  # other HostConfig fields, kept for inspect
    cpu_shares: int | None = None   # --cpu-shares (cpu.shares; cpu.weight on v2)
    env_bare_unsets: bool = False   # an API body: an Env entry without "=" unsets the name (see merge_env)
    links: Sequence[str] = ()       # legacy links, NAME[:ALIAS]: the linked one's address in env and /etc/hosts
    extra_hosts: Sequence[str] = ()  # --add-host NAME:IP
    expose: Sequence[str] = ()      # --expose PORT[/PROTO] (Config.ExposedPorts): not published

    def env_list(self) -> list[str]:
        if isinstance(self.env, Mapping):
            return [f"{k}={v}" for k, v in self.env.items()]
        return list(self.env)


def merge_env(image_env: Sequence[str], user_env: Sequence[str], *, bare_unsets: bool = False) -> list[str]:
    """Image Env, overridden key by key by the user's; PATH defaults as in Docker.

    A user entry without ``=`` takes the caller's value (``docker run -e NAME``, where the client
    is this process); with ``bare_unsets`` (an Engine API body: the client resolved its own) it
    unsets the name instead, PATH too, as dockerd does."""
    merged: dict[str, str] = {}
    unset: set[str] = set()
    for item in [*image_env, *user_env]:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgumentError(f"invalid environment variable {item!r}: empty name")
        if not sep and bare_unsets:
            merged.pop(key, None)
            unset.add(key)
            continue
        if not sep:
            host = os.environ.get(key)
            if host is None:
                continue  # docker: `-e NAME` without a value passes the host's, or nothing
            value = host
        merged[key] = value
        unset.discard(key)
    if "PATH" not in unset:
        merged.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in merged.items()]


def resolve_args(spec: ContainerSpec, image_config: Mapping[str, Any]) -> list[str]:
    """Entrypoint + Cmd with Docker's override rules."""
    entrypoint = list(image_config.get("Entrypoint") or [])
    cmd = list(image_config.get("Cmd") or [])
    if spec.entrypoint is not None:
        entrypoint = [a for a in spec.entrypoint if a != ""] if list(spec.entrypoint) != [""] else []
        cmd = []  # docker: a new entrypoint resets the image's Cmd
    if spec.command is not None and len(spec.command) > 0:
        cmd = list(spec.command)
    args = entrypoint + cmd
    if not args:
        raise InvalidArgumentError(f"create container from {spec.image}: no command specified")
    return args


# -- confinement: security options, devices, sysctls, ulimits (issue 14) ---------------------------
SECCOMP_FILTER_KEY = "io.pytest-pods.seccomp-filter"  # annotation (and exec process key): the cached BPF
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")  # Go's strconv.ParseBool, as dockerd parses these


class SecurityOptions(NamedTuple):
    """``security_opt`` as dockerd reads it (``daemon/daemon_unix.go`` parseSecurityOpt)."""

    seccomp: str | None = None          # None: Docker's default profile; "unconfined"; "builtin"; JSON text or path
    no_new_privileges: bool = False
    writable_cgroups: bool | None = None  # None: only with privileged


def _parse_bool(opt: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgumentError(f"invalid --security-opt {opt!r}: {value!r} is not a boolean (true or false)")


def parse_security_opt(values: Sequence[str], *, no_new_privileges: bool = False) -> SecurityOptions:
    """Docker's ``--security-opt`` values. ``apparmor=`` and ``label=`` are accepted and ignored: this
    engine loads no AppArmor profile and sets no SELinux label, as dockerd on a host without
    AppArmor (its WithApparmor does nothing when the host lacks it) or without SELinux (go-selinux's
    InitLabels returns no labels when SELinux is disabled) accepts and ignores them."""
    seccomp: str | None = None
    nnp = no_new_privileges
    writable: bool | None = None
    for opt in values:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "writable-cgroups":
            writable = True
            continue
        if opt == "disable":  # an old spelling of label=disable
            continue
        sep = "=" if "=" in opt else ":"
        key, found, value = opt.partition(sep)
        if not found:
            raise InvalidArgumentError(
                f"invalid --security-opt {opt!r}: expected KEY=VALUE (seccomp=unconfined|PROFILE.json, "
                "no-new-privileges[=true|false], apparmor=..., label=...)")
        if key in ("label", "apparmor"):
            continue
        if key == "seccomp":
            if not value:
                raise InvalidArgumentError(f"invalid --security-opt {opt!r}: give seccomp=unconfined, "
                                           "seccomp=builtin or seccomp=PROFILE.json")
            seccomp = value
        elif key == "no-new-privileges":
            nnp = _parse_bool(opt, value)
        elif key == "writable-cgroups":
            writable = _parse_bool(opt, value)
        else:
            raise InvalidArgumentError(
                f"invalid --security-opt {opt!r}: unknown option {key!r} (seccomp, no-new-privileges, "
                "apparmor, label, writable-cgroups)")
    return SecurityOptions(seccomp, nnp, writable)


# go-units' ulimit names
ULIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
RLIM_INFINITY = 2**64 - 1  # the OCI spec's uint64 (-1 in Docker's syntax)


def parse_ulimit(text: str) -> dict[str, Any]:
    """``NAME=SOFT[:HARD]`` (Docker's go-units ParseUlimit; -1 is unlimited) -> an OCI rlimit."""
    name, sep, values = text.partition("=")
    if not sep:
        raise InvalidArgumentError(f"invalid ulimit argument: {text} (expected NAME=SOFT[:HARD], e.g. nofile=1024:2048)")
    if name not in ULIMITS:
        raise InvalidArgumentError(f"invalid ulimit type: {name} (one of {', '.join(sorted(ULIMITS))})")
    parts = values.split(":")
    if len(parts) > 2:
        raise InvalidArgumentError(f"too many limit value arguments - {values}, can only have up to two, `soft[:hard]`")
    try:
        nums = [int(p, 10) for p in parts]
    except ValueError:
        raise InvalidArgumentError(f"invalid ulimit {text}: {values!r} is not a number (-1 is unlimited)") from None
    soft, hard = nums[0], nums[-1]
    if any(n < -1 for n in nums):
        raise InvalidArgumentError(f"invalid ulimit {text}: a limit is a number >= 0, or -1 for unlimited")
    if hard != -1 and (soft == -1 or soft > hard):
        raise InvalidArgumentError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")

    def oci(n: int) -> int:
        return RLIM_INFINITY if n == -1 else n

    return {"type": ULIMITS[name], "soft": oci(soft), "hard": oci(hard)}


def _device_entry(host: str, container: str, perms: str) -> dict[str, Any]:
    st = os.stat(host)
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else ""
    if not kind:
        raise InvalidArgumentError(f"error gathering device information while adding custom device {host!r}: "
                                   "not a device node")
    return {"path": container, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0,
            "hostPath": host, "access": perms}


def device_parts(text: str) -> tuple[str, str, str]:
    """``HOST[:CONTAINER[:PERMISSIONS]]`` -> (host, container, permissions), as the docker CLI
    reads ``--device`` (a second field of only r, w and m is the permissions).

    :raises InvalidArgumentError: naming the value and the expected form
    """
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise InvalidArgumentError(f"invalid --device {text!r}: bad format (expected HOST[:CONTAINER[:rwm]], "
                                   "e.g. /dev/fuse or /dev/zero:/dev/myzero:rw)")
    host, container, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if parts[1] and set(parts[1]) <= set("rwm"):
            perms = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, perms = parts[1], parts[2]
        if not perms or not set(perms) <= set("rwm"):
            raise InvalidArgumentError(f"invalid --device {text!r}: bad permissions {perms!r} (a combination of "
                                       "r, w and m)")
    if not container.startswith("/"):
        raise InvalidArgumentError(f"invalid --device {text!r}: {container} is not an absolute path")
    return host, os.path.normpath(container), perms


def parse_device(text: str) -> list[dict[str, Any]]:
    """``HOST[:CONTAINER[:PERMISSIONS]]`` (a directory adds every device below it) -> OCI devices
    (each with ``hostPath`` and ``access`` for our init and the cgroup rule)."""
    host, container, perms = device_parts(text)
    try:
        if os.path.isdir(host):
            found = []
            for dirpath, _dirs, names in os.walk(host):
                for n in sorted(names):
                    path = os.path.join(dirpath, n)
                    mode = os.lstat(path).st_mode
                    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                        found.append(_device_entry(path, container + path[len(host):], perms))
            return found
        return [_device_entry(host, container, perms)]
    except OSError as exc:
        raise InvalidArgumentError(f"error gathering device information while adding custom device {host!r}: "
                                   f"{exc.strerror}") from None


_SKIP_DEV = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


def host_devices() -> list[dict[str, Any]]:
    """Every device node of the host's /dev, for a privileged container (as runc lists them)."""
    found: list[dict[str, Any]] = []
    defaults = {p for p, *_ in DEFAULT_DEVICES} | {"/dev/console", "/dev/ptmx"}
    for dirpath, dirs, names in os.walk("/dev"):
        dirs[:] = [d for d in dirs if d not in _SKIP_DEV]
        for n in sorted(names):
            path = os.path.join(dirpath, n)
            try:
                mode = os.lstat(path).st_mode
                if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and path not in defaults:
                    found.append(_device_entry(path, path, "rwm"))
            except (OSError, InvalidArgumentError):
                continue  # gone meanwhile
    return found


# kernel.* sysctls that live in the IPC namespace (runc's validator)
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
                "kernel.shmmni", "kernel.shm_rmid_forced"}


def check_sysctls(sysctls: Mapping[str, str], network: str) -> dict[str, str]:
    """Only sysctls of a namespace the container has of its own, as runc allows them."""
    out: dict[str, str] = {}
    for key, value in sysctls.items():
        name = key.replace("/", ".")
        if name in _IPC_SYSCTLS or name.startswith("fs.mqueue."):
            pass
        elif name.startswith("net."):
            if network == "host":
                raise InvalidArgumentError(f"sysctl {name!r} not allowed in host network namespace: with "
                                           "--network host it would change the host's")
        elif name in ("kernel.domainname", "kernel.hostname"):
            pass
        else:
            raise InvalidArgumentError(
                f"sysctl {name!r} is not allowed: it is not in a separate kernel namespace (namespaced ones are "
                "net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname)")
        if not name or ".." in name or name.startswith(".") or name.endswith("."):
            raise InvalidArgumentError(f"invalid sysctl {key!r}")
        out[name] = str(value)
    return out


def cap_mask(names: Sequence[str]) -> int:
    mask = 0
    for n in names:
        mask |= 1 << CAP_NUMBERS[n]
    return mask


def own_capabilities() -> list[str]:
    """Every capability this process's bounding set holds: what privileged means here (a root
    whose bounding set lacks one, as in some VMs and nested containers, cannot hand it on; runc
    fails the start then, we give what there is)."""
    try:
        with open("/proc/self/status") as f:
            bnd = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    except (OSError, StopIteration, ValueError):
        return list(CAP_NUMBERS)
    return [c for c, n in CAP_NUMBERS.items() if bnd >> n & 1]


def effective_caps(cap_add: Sequence[str], cap_drop: Sequence[str], *, privileged: bool = False) -> list[str]:
    """Docker's default set with ``cap_drop`` then ``cap_add`` applied (``ALL`` in either); every
    capability for a privileged container (Docker ignores cap_add and cap_drop then)."""
    if privileged:
        return own_capabilities()

    def norm(c: str) -> str:
        c = c.upper()
        return c if c.startswith("CAP_") else "CAP_" + c

    caps = list(DEFAULT_CAPS)
    for c in map(norm, cap_drop):
        if c == "CAP_ALL":
            caps = []
        elif c not in CAP_NUMBERS:
            raise InvalidArgumentError(f"invalid --cap-drop {c!r}: unknown capability")
        elif c in caps:
            caps.remove(c)
    for c in map(norm, cap_add):
        if c == "CAP_ALL":
            caps = list(CAP_NUMBERS)
        elif c not in CAP_NUMBERS:
            raise InvalidArgumentError(f"invalid --cap-add {c!r}: unknown capability")
        elif c not in caps:
            caps.append(c)
    return caps


def default_rlimits() -> list[dict[str, Any]]:
    """Open files as high as this host allows (never above its hard limit: raising needs a cap)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = min(hard, 1048576) if hard != resource.RLIM_INFINITY else 1048576
    return [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]


def _depth(destination: str) -> int:
    """Path components of a mount's destination: the key dockerd sorts a container's mounts by."""
    return len([p for p in os.path.normpath(destination).split("/") if p])


def rootless_mounts(mounts: list[dict[str, Any]], *, host_network: bool) -> None:
    """Adapt the default mounts to a user namespace, as rootless runc and crun do: device nodes are
    bind-mounted from the host (mknod is refused), devpts gets ``gid=5`` only when gid 5 is mapped,
    and with the host's network (no netns of our own, so no sysfs mount) /sys is a read-only bind."""
    gids = rootless.id_maps()[1]
    for m in mounts:
        if m["type"] == "devpts" and not any(g.to_host(5) is not None for g in gids):
            m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
        if m["type"] == "sysfs" and host_network:
            m.update({"type": "bind", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    at = next(i for i, m in enumerate(mounts) if m["destination"] == "/dev") + 1
    mounts[at:at] = [{"destination": path, "type": "bind", "source": path, "options": ["bind", "nosuid", "noexec"]}
                     for path, *_ in DEFAULT_DEVICES]


def build_config(
    *,
    args: list[str],
    env: list[str],
    cwd: str,
    uid: int,
    gid: int,
    additional_gids: list[int],
    hostname: str,
    spec: ContainerSpec,
    cgroups_path: str,
    etc_files: Mapping[str, str],
    caps: list[str],
    annotations: Mapping[str, str],
    security: SecurityOptions | None = None,
    seccomp: Mapping[str, Any] | None = None,
    seccomp_filter: str | None = None,
) -> dict[str, Any]:
    """The OCI runtime-spec config for one container (``root.path`` is the bundle's ``rootfs``).

    ``seccomp`` is the resolved ``linux.seccomp`` section and ``seccomp_filter`` its compiled
    filter in the engine's cache (our init loads that; runc compiles the section itself)."""
    security = security or parse_security_opt(spec.security_opt, no_new_privileges=spec.no_new_privileges)
    privileged = spec.privileged
    writable_cgroups = privileged if security.writable_cgroups is None else security.writable_cgroups
    if spec.shm_size is not None and spec.shm_size <= 0:
        raise InvalidArgumentError(f"invalid --shm-size {spec.shm_size}: must be greater than 0")
    shm_size = spec.shm_size or 64 * 1024 * 1024
    sysctls = check_sysctls(spec.sysctls, spec.network)
    devices = host_devices() if privileged else []
    for d in spec.devices:
        devices.extend(parse_device(d))
    rlimits = {r["type"]: r for r in default_rlimits()}
    for u in spec.ulimits:
        r = parse_ulimit(u)
        rlimits[r["type"]] = r
    shared = {"pid": spec.pid_mode == "host", "uts": spec.uts_mode == "host", "ipc": spec.ipc_mode == "host",
              "cgroup": spec.cgroupns_mode == "host"}  # the host's namespace: none of its own
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup") if not shared.get(t)]
    if spec.network != "host":
        namespaces.append({"type": "network"})
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["rw" if writable_cgroups else "ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]
    if spec.ipc_mode in ("host", "none"):  # docker's: the host's /dev/shm, or none at all
        mounts.pop()
        if spec.ipc_mode == "host":
            mounts.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                           "options": ["rbind", "nosuid", "noexec", "nodev"]})
    if rootless.active():
        rootless_mounts(mounts, host_network=spec.network == "host")
        # no mknod in a user namespace: the devices asked for are bind-mounted from the host
        mounts.extend({"destination": d["path"], "type": "bind", "source": d["hostPath"], "options": ["bind", "nosuid"]}
                      for d in devices)
    user_mounts = [{"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}
                   for dest, src in etc_files.items()]
    for bind in spec.binds:
        user_mounts.append({"destination": bind.target, "type": "bind", "source": bind.source,
                            "options": ["rbind", "rprivate", "ro" if bind.readonly else "rw"]})
    for t in spec.tmpfs:
        path, _, opts = t.partition(":")
        options = ["nosuid", "nodev", "noexec", *([o for o in opts.split(",") if o] or [])]
        user_mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": options})
    # parents before children whatever the order asked (dockerd sorts by depth): a bind at /home/u
    # would hide a key file bound at /home/u/.ssh/key if it came second
    mounts.extend(sorted(user_mounts, key=lambda m: _depth(m["destination"])))
    device_rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    if privileged:
        device_rules.append({"allow": True, "access": "rwm"})
    device_rules.extend({"allow": True, "type": d["type"], "major": d["major"], "minor": d["minor"],
                         "access": d["access"]} for d in devices if not privileged)
    resources: dict[str, Any] = {"devices": device_rules}
    if spec.memory is not None:
        resources["memory"] = {"limit": spec.memory}
        if spec.memory_swap is not None:
            resources["memory"]["swap"] = spec.memory_swap
    if spec.pids_limit is not None:
        resources["pids"] = {"limit": spec.pids_limit}
    if spec.cpus is not None:
        resources["cpu"] = {"quota": int(spec.cpus * 100000), "period": 100000}
    cpuset = cpuset_cpus(spec.host_config.get("CpusetCpus"))
    if cpuset:
        resources.setdefault("cpu", {})["cpus"] = cpuset
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": additional_gids},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": list(rlimits.values()),
            "noNewPrivileges": security.no_new_privileges,
        },
        "root": {"path": "rootfs", "readonly": spec.read_only},
        **({} if shared["uts"] else {"hostname": hostname}),  # --uts host: the host's, never set
        "mounts": mounts,
        "annotations": dict(annotations) | ({SECCOMP_FILTER_KEY: seccomp_filter} if seccomp_filter else {}),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroups_path,
            "resources": resources,
            # privileged: nothing masked, nothing read-only (moby's WithMaskedPaths/WithReadonlyPaths)
            "maskedPaths": [] if privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if privileged else list(READONLY_PATHS),
            "devices": [{k: v for k, v in d.items() if k not in ("hostPath", "access")} for d in devices],
        },
    }
    if sysctls:
        config["linux"]["sysctl"] = sysctls
    if seccomp is not None:
        config["linux"]["seccomp"] = dict(seccomp)
    return config


def cpuset_cpus(text: Any) -> str:
    """``--cpuset-cpus`` (HostConfig.CpusetCpus) checked against the CPUs this host offers; the
    container's processes are bound to them (an affinity each inherits; see nsinit).

    :raises InvalidArgumentError: not a CPU list, or CPUs the host does not have, in dockerd's words
    """
    if not text:
        return ""
    try:
        wanted = linux.cpu_list(str(text))
    except ValueError:
        raise InvalidArgumentError(f"Invalid value {text} for cpuset cpus") from None
    available = os.sched_getaffinity(0)
    if not wanted <= available:
        ranges = ",".join(str(c) for c in sorted(available))
        raise InvalidArgumentError(f"Requested CPUs are not available - requested {text}, available: {ranges}")
    return str(text)


def group_ids(groups: Sequence[str], etc_dirs: Sequence[Path]) -> list[int]:
    """``--group-add``: each a number, or a group name of the container's /etc/group.

    :raises InvalidArgumentError: a name the image's /etc/group does not have
    """
    rows: list[list[str]] = []
    for d in etc_dirs:
        p = d / "etc" / "group"
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                rows = [line.split(":") for line in p.read_text(errors="replace").splitlines()
                        if line and not line.startswith("#")]
                break
    out: list[int] = []
    for g in groups:
        if g.isdigit():
            gid = int(g)
        else:
            found = next((r[2] for r in rows if len(r) >= 3 and r[0] == g and r[2].isdigit()), None)
            if found is None:
                raise InvalidArgumentError(f"Unable to find group {g}: no matching entries in group file")
            gid = int(found)
        if gid not in out:
            out.append(gid)
    return out


def check_namespace_modes(spec: ContainerSpec) -> None:
    """PidMode, UTSMode, IpcMode, CgroupnsMode as the engine can honour them.

    :raises InvalidArgumentError: a mode it cannot (another container's namespace), in words that
        say so rather than run the container otherwise than asked
    """
    for field, value, allowed in (("PidMode", spec.pid_mode, ("", "host")),
                                  ("UTSMode", spec.uts_mode, ("", "host")),
                                  ("IpcMode", spec.ipc_mode, ("", "private", "shareable", "host", "none")),
                                  ("CgroupnsMode", spec.cgroupns_mode, ("", "private", "host"))):
        if value not in allowed:
            kind = "container:NAME" if value.startswith("container:") else repr(value)
            raise InvalidArgumentError(f"{field} {kind} is not supported by this engine (it supports "
                                       f"{', '.join(repr(a) for a in allowed if a)})")
    if spec.uts_mode == "host" and spec.hostname:
        raise InvalidArgumentError("conflicting options: hostname and the UTS mode")
    if spec.ipc_mode == "host" and rootless.active():
        raise InvalidArgumentError("IpcMode 'host' is not supported rootless: the host's IPC namespace belongs to "
                                   "another user namespace, so the container cannot mount its /dev/mqueue")
    if spec.pid_mode == "host" and rootless.active():
        raise InvalidArgumentError("PidMode 'host' is not supported rootless: the host's pid namespace belongs to "
                                   "another user namespace, so the container cannot mount its /proc")


def lookup_user(user: str | None, etc_dirs: Sequence[Path]) -> tuple[int, int, list[int], str]:
    """Resolve ``USER[:GROUP]`` against the container's /etc/passwd and /etc/group.

    ``etc_dirs`` are the rootfs layers top first; the first that has a file wins. Returns
    (uid, gid, supplementary gids, home).
    """

    def read(name: str) -> list[list[str]]:
        for d in etc_dirs:
            p = d / "etc" / name
            try:
                if p.is_file() and not p.is_symlink():
                    return [line.split(":") for line in p.read_text(errors="replace").splitlines() if line and not line.startswith("#")]
            except OSError:
                continue
        return []

    spec = user or "0"
    name, _, group = spec.partition(":")
    passwd = read("passwd")
    uid: int | None = None
    gid: int | None = None
    home = "/"
    username = None
    for row in passwd:
        if len(row) >= 7 and (row[0] == name or (name.isdigit() and row[2] == name)):
            uid, gid, home, username = int(row[2]), int(row[3]), row[5] or "/", row[0]
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgumentError(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), 0
        if uid == 0:
            home = "/root"
    groups = read("group")
    if group:
        for row in groups:
            if len(row) >= 3 and (row[0] == group or (group.isdigit() and row[2] == group)):
                gid = int(row[2])
                break
        else:
            if not group.isdigit():
                raise InvalidArgumentError(f"unable to find group {group}: no matching entries in group file")
            gid = int(group)
    extra: list[int] = []
    if username is not None and not group:  # runc's rule: an explicit group means no supplementary ones
        for row in groups:
            if len(row) >= 4 and username in row[3].split(",") and row[2].isdigit():
                g = int(row[2])
                if g != gid and g not in extra:
                    extra.append(g)
    assert gid is not None
    for ident in (uid, gid):
        if not 0 <= ident <= 2147483647:  # (u32)-1 would mean "unchanged" to setresuid: root stays root
            raise InvalidArgumentError(f"uids and gids must be in range 0-2147483647, not {ident}")
    return uid, gid, extra, home
