"""``pods run|create|start|ps|logs|exec|wait|stop|kill|rm|stats|port|commit``: containers."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
from typing import TYPE_CHECKING, Any, TypedDict

from pytest_pods.cli.output import ago, binary_size, each, print_rows, size, table
from pytest_pods.cli.verb import LocalVerb, Subparsers, Verb
from pytest_pods.client.contract import (
    device_list,
    parse_bytes,
    parse_duration,
    parse_ports,
    parse_reference,
    parse_signal,
    security_opts,
    shm_bytes,
    sysctl_map,
    tmpfs_list,
    ulimit_list,
)
from pytest_pods.errors import ContainerStartError, ImageNotFoundError, PodsError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pytest_pods.client.contract import ClientAPI, ContainerAPI, LogLine, PortBinding
    from pytest_pods.client.local import Client


# each verb's line in `pods --help`, docker's words
HELP = {
    "run": "create and run a new container from an image",
    "create": "create a new container",
    "start": "start one or more stopped containers",
    "ps": "list containers",
    "logs": "fetch the logs of a container",
    "exec": "execute a command in a running container",
    "attach": "attach local standard input, output, and error streams to a running container",
    "wait": "block until one or more containers stop, then print their exit codes",
    "stop": "stop one or more running containers",
    "kill": "kill one or more running containers",
    "rm": "remove one or more containers",
    "stats": "display a live stream of container(s) resource usage statistics",
    "pause": "pause all processes within one or more containers",
    "unpause": "unpause all processes within one or more containers",
    "rename": "rename a container",
    "update": "update configuration of one or more containers",
    "diff": "inspect changes to files or directories on a container's filesystem",
    "port": "list port mappings or a specific mapping for the container",
    "top": "display the running processes of a container",
    "export": "export a container's filesystem as a tar archive",
}


# -- run, create ----------------------------------------------------------------------------------
def env_of(args: argparse.Namespace) -> list[str]:
    """``--env-file`` lines (comments and blank lines skipped), then ``-e`` values."""
    env: list[str] = []
    for path in args.env_file or []:
        try:
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    line = line.lstrip().rstrip("\n")
                    if not line or line.startswith("#"):
                        continue
                    key = line.partition("=")[0]
                    if not key or any(c.isspace() for c in key):
                        raise PodsError(f"--env-file {path}:{n}: variable {key!r} contains whitespaces")
                    env.append(line)
        except OSError as exc:
            raise PodsError(f"read --env-file {path}: {exc.strerror}") from None
    return env + list(args.env or [])


VOLUME_FORMS = "use -v /HOST:/PATH[:ro|rw], -v NAME:/PATH[:ro|rw|nocopy] or -v /PATH (an anonymous volume)"
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")  # a local volume's name, as the engine's Volumes check it
VOLUME_MODES = {"ro", "rw", "nocopy", "z", "Z"}


def volume_list(values: list[str] | None) -> list[str]:
    """``-v``/``--volume``, docker's rule: ``[SOURCE:]PATH[:MODE]`` where a source that is a path
    (absolute, or ``./x`` made absolute as docker 23 does) is a bind mount and any other a named
    volume (made on first use); ``PATH`` alone is an anonymous volume. Checked before any work.

    :raises PodsError: a spec that is none of those forms, named with the fix
    """
    out: list[str] = []
    for text in values or []:
        def bad(reason: str, spec: str = text) -> PodsError:
            return PodsError(f"-v/--volume: invalid volume specification {spec!r}: {reason}; {VOLUME_FORMS}")

        parts = text.split(":")
        if len(parts) > 3:
            raise bad("too many colons")
        if not all(parts):
            raise bad("empty section between colons" if len(parts) > 1 else "empty")
        if len(parts) == 1:
            source, target, mode = "", parts[0], ""
        else:
            source, target, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
        if not target.startswith("/"):
            raise bad(f"the container path {target!r} must be absolute")
        opts = set(mode.split(",")) if mode else set()
        if not opts <= VOLUME_MODES or {"ro", "rw"} <= opts:
            raise bad(f"unknown mode {mode!r}")
        if source.startswith("."):
            source = os.path.abspath(source)
        if source.startswith("/"):
            if "nocopy" in opts:
                raise bad("nocopy is for volumes, not bind mounts")
        elif source and not VOLUME_NAME.fullmatch(source):
            raise bad(f"{source!r} includes invalid characters for a local volume name, "
                      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if not source and mode:
            raise bad("an anonymous volume takes no mode")
        out.append(":".join(x for x in (source, os.path.normpath(target), mode) if x))
    return out


def volumes_from_list(values: list[str] | None) -> list[str]:
    """``--volumes-from CTR[:ro|rw]`` (repeatable), checked before any work."""
    for text in values or []:
        ref, _, mode = text.partition(":")
        if not ref or mode not in ("", "ro", "rw"):
            raise PodsError(f"--volumes-from: invalid value {text!r}: use --volumes-from CONTAINER[:ro|rw]")
    return list(values or [])


class CreateOptions(TypedDict):
    """The flags of ``run``/``create`` as keyword arguments of ``client.containers.create``."""

    entrypoint: list[str] | None
    name: str | None
    environment: list[str]
    working_dir: str | None
    user: str | None
    hostname: str | None
    volumes: list[str]
    volumes_from: list[str]
    tmpfs: list[str]
    memory: str | None
    memory_swap: str | None
    pids_limit: int | None
    cpus: float | None
    network: str
    read_only: bool
    init: bool
    network_aliases: list[str]
    ports: list[PortBinding]
    publish_all_ports: bool
    labels: dict[str, str]
    stop_signal: str | None
    stop_timeout: int | None
    cap_add: list[str]
    cap_drop: list[str]
    stdin_open: bool
    privileged: bool
    security_opt: list[str]
    devices: list[str]
    sysctls: dict[str, str]
    ulimits: list[str]
    shm_size: int | None
    healthcheck: dict[str, Any] | None
    restart_policy: dict[str, Any] | None
    group_add: list[str]
    pid_mode: str | None
    uts_mode: str | None
    log_config: dict[str, Any] | None
    cpu_shares: int | None
    links: list[str]
    extra_hosts: list[str]
    expose: list[str]
    ipc_mode: str | None
    host_config: dict[str, Any]
    network_endpoint: dict[str, Any] | None


def restart_arg(text: str) -> dict[str, Any]:
    """``--restart no|always|unless-stopped|on-failure[:N]`` as a RestartPolicy."""
    name, _, count = text.partition(":")
    if count and not count.isdigit():
        raise argparse.ArgumentTypeError(f"invalid restart policy {text!r}: maximum retry count must be an integer")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def log_config_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--log-driver`` and ``--log-opt KEY=VALUE`` as a LogConfig."""
    opts = {}
    for opt in args.log_opt or []:
        key, sep, value = opt.partition("=")
        if not sep:
            raise PodsError(f"invalid --log-opt {opt!r}: use KEY=VALUE")
        opts[key] = value
    if args.log_driver is None and not opts:
        return None
    return {"Type": args.log_driver or "json-file", "Config": opts}


def mount_args(mounts: list[str] | None) -> tuple[list[str], list[str]]:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-nocopy][,tmpfs-size=N]
    [,tmpfs-mode=M]`` as (-v forms, --tmpfs forms), as the docker CLI reads it."""
    volumes: list[str] = []
    tmpfs: list[str] = []
    for text in mounts or []:
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            fields[key.strip().lower()] = value if sep else "true"
        kind = fields.pop("type", "volume")
        target = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
        source = fields.pop("source", None) or fields.pop("src", None) or ""
        readonly = fields.pop("readonly", None) or fields.pop("ro", None)
        if not target:
            raise PodsError(f"invalid argument {text!r} for --mount: target is required")
        ro = readonly not in (None, "false", "0")
        if kind == "tmpfs":
            if source:
                raise PodsError(f"invalid argument {text!r} for --mount: source is not allowed for tmpfs mounts")
            opts = [*(["ro"] if ro else []), *([f"size={fields.pop('tmpfs-size')}"] if "tmpfs-size" in fields else []),
                    *([f"mode={fields.pop('tmpfs-mode')}"] if "tmpfs-mode" in fields else [])]
            tmpfs.append(target + (":" + ",".join(opts) if opts else ""))
        elif kind in ("bind", "volume"):
            if kind == "bind" and not source.startswith("/"):
                raise PodsError(f"invalid argument {text!r} for --mount: a bind mount's source must be an "
                                "absolute path")
            nocopy = fields.pop("volume-nocopy", None) not in (None, "false", "0")
            modes = [*(["ro"] if ro else []), *(["nocopy"] if nocopy and kind == "volume" else [])]
            if not source and modes:
                raise PodsError(f"invalid argument {text!r} for --mount: an anonymous volume takes no "
                                "readonly or volume-nocopy here (name the volume: source=NAME)")
            volumes.append(f"{source}:{target}{':' + ','.join(modes) if modes else ''}" if source else target)
        else:
            raise PodsError(f"invalid argument {text!r} for --mount: type {kind!r} is not one of bind, volume, "
                            "tmpfs")
        unknown = sorted(k for k in fields if k not in ("bind-propagation", "consistency"))
        if unknown:
            raise PodsError(f"invalid argument {text!r} for --mount: unexpected key {unknown[0]!r}")
    return volumes, tmpfs


def health_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--health-*`` and ``--no-healthcheck`` as the Engine API's ``Config.Healthcheck`` (None:
    the image's), as the docker CLI sends them (issue 16)."""
    durations = {"Interval": ("--health-interval", args.health_interval),
                 "Timeout": ("--health-timeout", args.health_timeout),
                 "StartPeriod": ("--health-start-period", args.health_start_period),
                 "StartInterval": ("--health-start-interval", args.health_start_interval)}
    given = args.health_cmd is not None or args.health_retries is not None or any(
        v is not None for _, v in durations.values())
    if args.no_healthcheck:
        if given:
            raise PodsError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    hc: dict[str, Any] = {}
    if args.health_cmd is not None:
        hc["Test"] = ["CMD-SHELL", args.health_cmd]
    for key, (flag, text) in durations.items():
        if text is not None:
            ns = parse_duration(text, flag)
            if ns < 0:
                raise PodsError(f"{flag} cannot be negative")
            hc[key] = ns
    if args.health_retries is not None:
        if args.health_retries < 0:
            raise PodsError("--health-retries cannot be negative")
        hc["Retries"] = args.health_retries
    return hc


def create_options(args: argparse.Namespace) -> CreateOptions:
    """The flags of ``run``/``create``, checked (a bad value fails before any work)."""
    if args.memory is not None:
        parse_bytes(args.memory)
    mount_volumes, mount_tmpfs = mount_args(args.mount)
    args.volume = [*(args.volume or []), *mount_volumes]
    args.tmpfs = [*(args.tmpfs or []), *mount_tmpfs]
    return CreateOptions(
        entrypoint=([args.entrypoint] if args.entrypoint else [""]) if args.entrypoint is not None else None,
        name=args.name, environment=env_of(args), working_dir=args.workdir, user=args.user,
        hostname=args.hostname, volumes=volume_list(args.volume),
        volumes_from=volumes_from_list(args.volumes_from), tmpfs=tmpfs_list(args.tmpfs),
        memory=args.memory, memory_swap=args.memory_swap, pids_limit=args.pids_limit, cpus=args.cpus,
        network=args.network, read_only=args.read_only, init=args.init,
        network_aliases=args.network_alias or [], ports=parse_ports(args.publish or []),
        publish_all_ports=args.publish_all, labels=labels_of(args),
        stop_signal=args.stop_signal, stop_timeout=args.stop_timeout,
        cap_add=args.cap_add or [], cap_drop=args.cap_drop or [], stdin_open=args.interactive,
        privileged=args.privileged, security_opt=security_opts(args.security_opt), devices=device_list(args.device),
        sysctls=sysctl_map(args.sysctl), ulimits=ulimit_list(args.ulimit), shm_size=args.shm_size,
        healthcheck=health_options(args), restart_policy=args.restart, group_add=args.group_add or [],
        pid_mode=args.pid, uts_mode=args.uts, log_config=log_config_of(args), cpu_shares=args.cpu_shares,
        links=args.link or [], extra_hosts=args.add_host or [],
        expose=[port for ports in args.expose or [] for port in ports], ipc_mode=args.ipc,
        host_config={k: v for k, v in (("Dns", args.dns), ("DnsSearch", args.dns_search),
                                       ("DnsOptions", args.dns_option), ("CpusetCpus", args.cpuset_cpus)) if v},
        network_endpoint={"IPAMConfig": {"IPv4Address": args.ip}} if args.ip else None,
    )


def cpus_arg(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid argument {text!r} for --cpus: expected a number such as 0.5") from None


def memory_arg(text: str) -> str:
    try:
        parse_bytes(text)
    except PodsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def shm_size_arg(text: str) -> int | None:
    try:
        return shm_bytes(text)
    except PodsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_run(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, add_help=False, help=HELP[verb])  # -h is --hostname, as in docker
    p.add_argument("--help", action="help")
    if verb == "run":
        p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append")
    p.add_argument("--env-file", action="append")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument("-v", "--volume", action="append", metavar="[SOURCE:]PATH[:ro|rw|nocopy]",
                   help="a bind mount (SOURCE an absolute path), a named volume (SOURCE a name, made on first "
                        "use and filled from the image) or, PATH alone, an anonymous volume")
    p.add_argument("--volumes-from", action="append", metavar="CONTAINER[:ro|rw]",
                   help="that container's volumes and bind mounts at the same paths (repeatable)")
    p.add_argument("--tmpfs", action="append")
    p.add_argument("--mount", action="append", metavar="type=bind|volume|tmpfs,source=...,target=...",
                   help="a mount in the long form (readonly, volume-nocopy, tmpfs-size, tmpfs-mode)")
    p.add_argument("--restart", type=restart_arg, metavar="no|always|unless-stopped|on-failure[:N]")
    p.add_argument("--group-add", action="append")
    p.add_argument("--pid", help="host: the host's pid namespace")
    p.add_argument("--uts", help="host: the host's hostname")
    p.add_argument("--log-driver", help="json-file, local or none")
    p.add_argument("--log-opt", action="append")
    p.add_argument("--link", action="append", metavar="CONTAINER[:ALIAS]")
    p.add_argument("--add-host", action="append", metavar="NAME:IP")
    p.add_argument("--cpu-shares", "-c", type=int)
    p.add_argument("-m", "--memory", type=memory_arg)
    p.add_argument("--memory-swap", type=str)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--cpus", type=cpus_arg)
    p.add_argument("--network", "--net", default="bridge")
    p.add_argument("--network-alias", "--net-alias", action="append")
    p.add_argument("-p", "--publish", action="append")
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--init", action="store_true")
    p.add_argument("-l", "--label", action="append")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--security-opt", action="append")
    p.add_argument("--cap-add", action="append")
    p.add_argument("--cap-drop", action="append")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--device", action="append")
    p.add_argument("--sysctl", action="append")
    p.add_argument("--ulimit", action="append")
    p.add_argument("--shm-size", type=shm_size_arg)
    p.add_argument("--health-cmd")
    p.add_argument("--health-interval")
    p.add_argument("--health-timeout")
    p.add_argument("--health-retries", type=int)
    p.add_argument("--health-start-period")
    p.add_argument("--health-start-interval")
    p.add_argument("--no-healthcheck", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true", help="a pseudo-terminal as the container's stdio")
    p.add_argument("--detach-keys", help="the key sequence that lets go of a -it container (default ctrl-p,ctrl-q)")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--pull", type=pull_arg, default="missing", metavar="always|missing|never",
                   help="pull the image before creating (default missing: only when it is not here)")
    p.add_argument("-q", "--quiet", action="store_true", help="no pull output")
    p.add_argument("--platform", help="linux/amd64 (the host's platform; no emulation here)")
    p.add_argument("--cidfile", help="Write the container ID to the file")
    p.add_argument("--expose", action="append", type=expose_arg, metavar="PORT[-PORT][/PROTO]",
                   help="a port (or range) the container listens on, not published (-P publishes it)")
    p.add_argument("--dns", action="append", type=ip_arg, help="a name server for /etc/resolv.conf")
    p.add_argument("--dns-search", action="append", help="a search domain (. alone: none)")
    p.add_argument("--dns-option", "--dns-opt", action="append", help="a resolv.conf option (ndots:2)")
    p.add_argument("--cpuset-cpus", help="the CPUs it may run on (0-3, 0,1)")
    p.add_argument("--ipc", help="private (the default), shareable, none (no /dev/shm) or host")
    p.add_argument("--ip", type=ip_arg, help="its IPv4 address on a user-defined network")
    p.add_argument("--label-file", action="append", help="labels, a KEY=VALUE line each")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def expose_arg(text: str) -> list[str]:
    """``--expose 80``, ``80/udp``, ``8000-8002``: each port of a range is one exposed port, as docker's."""
    ports, _, proto = text.partition("/")
    first, dash, last = ports.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()) or proto not in ("", "tcp", "udp", "sctp") \
            or not 0 < int(first) <= int(last or first) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid range format for --expose: {text}")
    return [f"{n}/{proto or 'tcp'}" for n in range(int(first), int(last or first) + 1)]


def ip_arg(text: str) -> str:
    import ipaddress  # lazy: start latency (only --dns, --ip)

    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"IP address is not correctly formatted: {text}") from None
    return text


def labels_of(args: argparse.Namespace) -> dict[str, str]:
    """``--label-file`` KEY=VALUE lines (others skipped), then ``-l`` values over them."""
    labels: dict[str, str] = {}
    for path in args.label_file or []:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    key, eq, value = line.partition("=")
                    if eq and not line.startswith("#"):  # a bare KEY line is dropped, as docker's
                        labels[key] = value
        except OSError as exc:
            raise PodsError(f"read --label-file {path}: {exc.strerror}") from None
    return labels | dict(lbl.partition("=")[::2] for lbl in args.label or [])


def pull_arg(text: str) -> str:
    if text not in ("always", "missing", "never"):
        raise argparse.ArgumentTypeError(f"invalid pull option: '{text}': must be one of \"always\", "
                                         "\"missing\" or \"never\"")
    return text


def familiar(ref: str) -> str:
    """``busybox`` as docker names it in its messages: ``busybox:latest`` (a digest or tag kept)."""
    return ref if "@" in ref or ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"


def pull_for_run(client: ClientAPI, ref: str, *, quiet: bool) -> None:
    """The pull ``run``/``create`` make, its lines on stderr as docker's: one a layer status (no
    progress bars), then the digest and the status."""
    def show(event: dict[str, Any]) -> None:
        status = event.get("status", "")
        if quiet or "id" not in event or status in ("Downloading", "Extracting", "Waiting", "Verifying Checksum"):
            return
        print(f"{event['id']}: {status}", file=sys.stderr, flush=True)

    name = familiar(ref)
    before = ""
    with contextlib.suppress(ImageNotFoundError):
        before = client.images.get(name).id
    if not quiet:
        repo, _, tag = name.partition("@") if "@" in name else name.rpartition(":")
        first, _, rest = repo.partition("/")
        path = rest if rest and ("." in first or ":" in first or first == "localhost") else \
            repo if rest else f"library/{repo}"
        print(f"{tag}: Pulling from {path}", file=sys.stderr, flush=True)
    image = client.images.pull(name, progress=show)
    if not quiet:
        digest = getattr(image, "manifest_digest", "") or ""
        if digest:
            print(f"Digest: {digest}", file=sys.stderr)
        state = "Image is up to date" if image.id == before else "Downloaded newer image"
        print(f"Status: {state} for {name}", file=sys.stderr, flush=True)


def host_platform() -> str:
    import platform  # lazy: start latency (only --platform)

    machine = platform.machine()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def check_platform(text: str) -> None:
    """``--platform``: the host's is taken (``linux/amd64``, ``amd64``, ``linux/x86_64``); any
    other is refused, named, before any work (no emulation)."""
    host = host_platform()
    parts = text.lower().split("/")
    if parts[0] != "linux":
        parts.insert(0, "linux")
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}.get(parts[1] if len(parts) > 1 else "", "")
    arch = arch or (parts[1] if len(parts) > 1 else host.split("/")[1])
    if len(parts) > 3 or f"linux/{arch}" != host:
        raise PodsError(f"--platform {text}: this engine runs {host} images only (the host's platform; "
                        "there is no emulation)")


def create_pulling(client: ClientAPI, args: argparse.Namespace, opts: CreateOptions) -> ContainerAPI:
    """``--pull``: always pulls first; missing (docker's default) pulls when the create finds no
    image, saying so first; never creates or fails."""
    if args.platform:
        check_platform(args.platform)
    if args.cidfile and os.path.exists(args.cidfile):
        raise PodsError(f"container ID file found, make sure the other container isn't running or delete "
                        f"{args.cidfile}")
    container = _create_pulling(client, args, opts)
    if args.cidfile:
        try:
            with open(args.cidfile, "x") as f:
                f.write(container.id)
        except OSError as exc:
            with contextlib.suppress(PodsError):
                client.containers.remove(container.id, force=True)
            raise PodsError(f"failed to create the container ID file: {exc.strerror}: {args.cidfile}") from None
    return container


def _create_pulling(client: ClientAPI, args: argparse.Namespace, opts: CreateOptions) -> ContainerAPI:
    if args.pull == "always":
        pull_for_run(client, args.image, quiet=args.quiet)
    try:
        return client.containers.create(args.image, args.command or None, auto_remove=args.rm, **opts)
    except ImageNotFoundError:
        if args.pull != "missing":
            raise
    if not args.quiet:
        print(f"Unable to find image '{familiar(args.image)}' locally", file=sys.stderr, flush=True)
    pull_for_run(client, args.image, quiet=args.quiet)
    return client.containers.create(args.image, args.command or None, auto_remove=args.rm, **opts)


def run(client: ClientAPI, args: argparse.Namespace) -> int:
    """``run`` and ``create``: a foreground run exits with the container's code."""
    if args.detach_keys:  # a bad sequence fails before any work, terminal or not
        from pytest_pods.daemon.streams import parse_detach_keys  # lazy: start latency (only --detach-keys)

        try:
            parse_detach_keys(args.detach_keys)
        except ValueError as exc:
            raise PodsError(str(exc)) from None
    opts = create_options(args)
    container = create_pulling(client, args, opts)
    if args.tty:
        _use_terminal(client, container.id)
    if args.verb == "create":
        print(container.id)
        return 0
    stdin = 0 if args.interactive else None
    relay = None
    if args.tty and args.interactive and not args.detach and os.isatty(0):
        relay = _TerminalRelay(args.detach_keys)  # our stdin through the detach keys, its output back
    try:
        if relay is not None:
            handle = client.containers.start(container.id, attach=(relay.out_w, relay.out_w), stdin=relay.in_r)
            relay.started()
        else:
            handle = client.containers.start(container.id, attach=None if args.detach else (1, 2),
                                             stdin=None if args.detach else stdin)
    except ContainerStartError:
        # docker keeps a "Created" container after a failed start; a run that failed leaves
        # nothing here (one clear error, nothing half-made), as `pods create` + `start` would not
        if relay is not None:
            relay.close()
        with contextlib.suppress(PodsError):
            client.containers.remove(container.id, force=True)
        raise
    if args.detach:
        handle.close()
        print(container.id)
        return 0

    def forward(sig: int, _frame: object) -> None:
        with contextlib.suppress(PodsError):
            client.containers.kill(container.id, sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    if relay is not None:
        code = _on_terminal(client, container.id, lambda: relay.run(handle.wait), raw=True)
        return 0 if code == DETACHED else code  # docker run -it lets go with 0
    if args.tty:
        return _on_terminal(client, container.id, handle.wait, raw=args.interactive)
    return handle.wait()


DETACHED = -1
"""What a relay returns when the detach keys were typed (an exit code is never negative)."""


class _TerminalRelay:
    """``run -it`` on a terminal: our keys go to the container through a pipe, watched for the
    detach sequence (``--detach-keys``, docker's ``ctrl-p,ctrl-q`` by default), and its output
    comes back through another; on the sequence we let go and it runs on, as after docker's."""

    def __init__(self, detach_keys: str | None) -> None:
        from pytest_pods.daemon.streams import EscapeProxy, parse_detach_keys  # lazy: start latency (only -it)

        try:
            self.escape = EscapeProxy(parse_detach_keys(detach_keys))
        except ValueError as exc:
            raise PodsError(str(exc)) from None
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()

    def started(self) -> None:
        """The monitor holds its ends now."""
        os.close(self.in_r)
        os.close(self.out_w)
        self.in_r = self.out_w = -1

    def close(self) -> None:
        """Close what is still open (-1: closed already; never a number another file took since)."""
        for fd in (self.in_r, self.in_w, self.out_r, self.out_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.in_r = self.in_w = self.out_r = self.out_w = -1

    def run(self, wait: Callable[[], int]) -> int:
        """Relay until the container exits (its code) or the detach keys are typed (DETACHED;
        the container runs on)."""
        import select  # lazy: start latency (only -it)
        import threading  # lazy: as above

        wake_r, wake_w = os.pipe()
        code: list[int] = []

        def waiter() -> None:
            code.append(wait())
            with contextlib.suppress(OSError):
                os.write(wake_w, b"x")

        threading.Thread(target=waiter, name="pods-run-wait", daemon=True).start()
        readers = [0, self.out_r, wake_r]
        try:
            while True:
                ready, _, _ = select.select(readers, [], [])
                if self.out_r in ready and not self._copy_out():
                    readers.remove(self.out_r)
                if 0 in ready:
                    data = os.read(0, 65536)
                    if not data:
                        readers.remove(0)
                        if self.in_w >= 0:
                            os.close(self.in_w)  # end of our input: the terminal stays, as docker's
                        self.in_w = -1
                    else:
                        data, detached = self.escape.feed(data)
                        if data and self.in_w >= 0:
                            with contextlib.suppress(OSError):
                                os.write(self.in_w, data)
                        if detached:
                            return DETACHED
                if wake_r in ready:
                    while self._copy_out(timeout=0.2):  # what it printed last
                        pass
                    return code[0]
        finally:
            os.close(wake_r)
            os.close(wake_w)
            self.close()

    def _copy_out(self, timeout: float | None = None) -> bool:
        import select  # lazy: start latency (only -it)

        if timeout is not None and not select.select([self.out_r], [], [], timeout)[0]:
            return False
        try:
            data = os.read(self.out_r, 65536)
        except OSError:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
        return bool(data)


def _use_terminal(client: ClientAPI, cid: str) -> None:
    """``-t``: the container's process runs on a pty its monitor holds (issue 16)."""
    from pytest_pods.client.local import Client  # lazy: start latency (only -t)

    if not isinstance(client, Client):
        with contextlib.suppress(PodsError):
            client.containers.remove(cid, force=True)
        raise PodsError("run -t: a terminal needs the local engine (unset PODS_HOST, or use the docker CLI "
                        "against that daemon)")
    client.containers.use_terminal(cid)


def _on_terminal(client: ClientAPI, cid: str, wait: Callable[[], int], *, raw: bool) -> int:
    """Wait for a tty container attached to our terminal: ours in raw mode (with ``-i``: keys go
    to the container's pty as typed), its window size followed, restored at the end."""
    import termios  # lazy: start latency (only -t)
    import tty  # lazy: as above

    from pytest_pods.client.local import Client  # lazy: as above

    assert isinstance(client, Client)  # _use_terminal made sure

    def follow_size(_sig: int = 0, _frame: object = None) -> None:
        for fd in (1, 0, 2):
            try:
                cols, rows = os.get_terminal_size(fd)
            except OSError:
                continue
            client.containers.resize(cid, rows, cols)
            return

    saved = None
    if raw and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        follow_size()
        signal.signal(signal.SIGWINCH, follow_size)
        return wait()
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


# -- attach ------------------------------------------------------------------------------------------
def add_attach(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("--detach-keys", help="the key sequence that lets go (default ctrl-p,ctrl-q)")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                   help="Proxy all received signals to the process (default true)")
    p.add_argument("container")


def attach(client: Client, args: argparse.Namespace) -> int:
    """docker's ``attach``: the running container's output from now on, and (a tty container)
    our keys into its terminal; its exit code when it ends, 1 after the detach keys, as docker's.
    Output comes line by line from its log (a prompt without a newline shows with the next line,
    as through the daemon's attach)."""
    import threading  # lazy: start latency (only attach)

    st = client.containers.state(args.container)
    if st["status"] != "running":
        raise PodsError("You cannot attach to a stopped container, start it first")
    cid = st["id"]
    tty = client.containers.has_terminal(cid)
    relay = _TerminalRelay(args.detach_keys)
    os.close(relay.in_r)
    os.close(relay.in_w)
    fd = client.containers.terminal_input(cid) if tty and not args.no_stdin else None
    relay.in_r, relay.in_w = -1, fd if fd is not None else -1
    out_w, relay.out_w = relay.out_w, -1  # the pump's to close: the relay sees the end of the output

    def pump() -> None:
        try:
            for stream, _, line in client.containers.logs(cid, follow=True, tail=0, partial=True):
                with contextlib.suppress(OSError):
                    os.write(out_w if tty or stream == "stdout" else 2, line)
        except PodsError:
            pass  # removed while we followed it
        finally:
            os.close(out_w)

    pumping = threading.Thread(target=pump, name="pods-attach-logs", daemon=True)
    pumping.start()

    def wait() -> int:
        pumping.join()
        try:
            return client.containers.wait(cid)
        except PodsError:
            return 0

    if not tty and args.sig_proxy == "true":
        def forward(sig: int, _frame: object) -> None:
            with contextlib.suppress(PodsError):
                client.containers.kill(cid, sig)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, forward)
    if tty and os.isatty(0):
        code = _on_terminal(client, cid, lambda: relay.run(wait), raw=True)
    else:
        code = relay.run(wait)
    if code == DETACHED:
        print("read escape sequence", file=sys.stderr)
        return 1
    return code


# -- start, ps, logs, exec ------------------------------------------------------------------------
def add_start(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("--detach-keys", help="the key sequence that lets go of a tty container (default ctrl-p,ctrl-q)")
    p.add_argument("containers", nargs="+")


def start(client: ClientAPI, args: argparse.Namespace) -> int:
    """``start``; ``-a`` waits for the container's end (its exit code), ``-a -i`` also gives it
    our stdin, a tty container our terminal (raw, detach keys: as ``docker start -ai``)."""
    for ref in args.containers:
        has_terminal = getattr(client.containers, "has_terminal", None)  # the local engine's pty
        if args.attach and args.interactive and has_terminal is not None and os.isatty(0) and has_terminal(ref):
            return _start_on_terminal(client, ref, args.detach_keys)
        handle = client.containers.start(ref, attach=(1, 2) if args.attach else None,
                                         stdin=0 if args.attach and args.interactive else None)
        if args.attach:
            return handle.wait()
        handle.close()
        print(ref)
    return 0


def _start_on_terminal(client: ClientAPI, ref: str, detach_keys: str | None) -> int:
    """``start -ai`` of a tty container: our terminal relayed to its pty, as ``run -it``."""
    relay = _TerminalRelay(detach_keys)
    handle = client.containers.start(ref, attach=(relay.out_w, relay.out_w), stdin=relay.in_r)
    relay.started()
    code = _on_terminal(client, client.containers.state(ref)["id"], lambda: relay.run(handle.wait), raw=True)
    return 0 if code == DETACHED else code


def add_ps(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output based on conditions provided: id=, name=, label=KEY[=VALUE], status=, "
                   "exited=CODE, ancestor=IMAGE, network=, health=")
    p.add_argument("--format", help="Format output using a custom template: 'table', 'table TEMPLATE' "
                   "(a header and aligned columns), 'json' or a Go template")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container (includes all states)")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes (not kept here: shown as 0B)")


PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "network", "health")
PS_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
              "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
              "LocalVolumes": "LOCAL VOLUMES"}


def ps_filters(values: list[str]) -> dict[str, list[str]]:
    """``-f KEY=VALUE`` (repeatable; one key's values are or-ed, the keys and-ed, as docker's).

    :raises PodsError: an unknown key or status, named
    """
    out: dict[str, list[str]] = {}
    for text in values:
        key, eq, value = text.partition("=")
        if not eq or key not in PS_FILTERS:
            raise PodsError(f"invalid filter '{text}'")
        if key == "status" and value not in PS_STATUSES:
            raise PodsError(f"invalid filter 'status={value}'")
        if key == "exited" and not value.lstrip("-").isdigit():
            raise PodsError(f"invalid filter 'exited={value}'")
        out.setdefault(key, []).append(value)
    return out


def _ps_match(st: Any, doc: dict[str, Any], state: str, wanted: dict[str, list[str]]) -> bool:
    def any_of(key: str, test: Callable[[str], bool]) -> bool:
        return key not in wanted or any(test(v) for v in wanted[key])

    labels = doc["Config"].get("Labels") or {}
    networks = (doc.get("NetworkSettings") or {}).get("Networks") or {}
    return (any_of("id", lambda v: st["id"].startswith(v))
            and any_of("name", lambda v: re.search(v, st["name"]) is not None)
            and any_of("label", lambda v: (v.partition("=")[0] in labels and
                                           ("=" not in v or labels[v.partition("=")[0]] == v.partition("=")[2])))
            and any_of("status", lambda v: v == state)
            and any_of("exited", lambda v: state == "exited" and int(v) == st["exit_code"])
            and any_of("ancestor", lambda v: v in (st["image_name"], st["image"]) or st["image"].removeprefix(
                "sha256:").startswith(v.removeprefix("sha256:")) or familiar(v) == familiar(st["image_name"]))
            and any_of("network", lambda v: v in networks or v == st["network"])
            and any_of("health", lambda v: v == (st["health"]["Status"] if "health" in st else "none")))


def ps(client: ClientAPI, args: argparse.Namespace) -> int:
    wanted = ps_filters(args.filter)
    last = 1 if args.latest else args.last
    every = args.all or last > 0 or "status" in wanted or "exited" in wanted
    items = client.containers.states(all=every)
    if last > 0:
        items = items[:last]
    if args.quiet and not wanted:
        for st in items:
            print(st["id"] if args.no_trunc else st["id"][:12])
        return 0
    keys = list(PS_HEADERS)
    rows: list[dict[str, str]] = []
    for st in items:
        doc = client.containers.get(st["id"]).inspect()
        state = "paused" if doc["State"].get("Paused") else st["status"]
        if wanted and not _ps_match(st, doc, state, wanted):
            continue
        if args.quiet:
            print(st["id"] if args.no_trunc else st["id"][:12])
            continue
        cmd = " ".join([doc["Path"], *doc["Args"]])
        if not args.no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        health = st["health"]["Status"] if "health" in st else None
        suffix = "" if not health else " (health: starting)" if health == "starting" else f" ({health})"
        if state == "paused":
            suffix = " (Paused)"
        status = {"running": f"Up {ago(st['started_at']).removesuffix(' ago')}{suffix}",
                  "restarting": f"Restarting ({st['exit_code']}) {ago(st['finished_at'])}",
                  "created": "Created", "dead": "Dead"}.get(st["status"], f"Exited ({st['exit_code']}) {ago(st['finished_at'])}")
        ports = ", ".join(f"{p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['proto']}"
                          for p in (st.get("ports") or []) if st["status"] == "running")
        labels = doc["Config"].get("Labels") or {}
        mounts = [m.get("Name") or m.get("Source", "") for m in doc.get("Mounts") or []]
        networks = list((doc.get("NetworkSettings") or {}).get("Networks") or {})
        rows.append(dict(zip(keys, [
            st["id"] if args.no_trunc else st["id"][:12], st["image_name"], f'"{cmd}"'.replace("\n", " "),
            _go_time(st["created"]), ago(st["created"]), ports, "paused" if state == "paused" else st["status"],
            status, "0B", st["name"], ",".join(f"{k}={v}" for k, v in labels.items()), ",".join(mounts),
            ",".join(networks), str(sum(1 for m in doc.get("Mounts") or [] if m.get("Type") == "volume"))],
            strict=True)))
    if args.quiet:
        return 0
    print_rows(rows, args.format, PS_HEADERS, ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"))
    return 0


def _go_time(rfc3339: str) -> str:
    """``.CreatedAt`` as the docker CLI prints it: Go's time.String() in local time."""
    import datetime  # lazy: start latency (only ps)

    try:
        t = datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00"))
    except ValueError:
        return rfc3339
    local = t.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S %z ") + (local.tzname() or "")


def add_logs(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("-n", "--tail", default="all", help='Number of lines to show from the end of the logs (default "all")')
    p.add_argument("--since", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" '
                   "for 42 minutes)")
    p.add_argument("--until", help='Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. '
                   '"42m" for 42 minutes)')
    p.add_argument("--details", action="store_true", help="Show extra details provided to logs (none here)")
    p.add_argument("container")


GO_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def time_arg(flag: str, text: str, now: float) -> int:
    """docker's time forms for ``--since``/``--until`` as unix nanoseconds: a Go duration back
    from now (``10m``, ``1h30m``), unix seconds (``1700000000.5``) or an RFC 3339 date/time
    (without a zone: local time; a date alone: its midnight).

    :raises PodsError: none of those, named
    """
    if text and not GO_DURATION.sub("", text):
        total = 0.0
        for part in GO_DURATION.findall(text):
            unit = part.lstrip("0123456789.")
            total += float(part[: len(part) - len(unit)]) * GO_UNITS[unit]
        return int((now - total) * 1e9)
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        whole, _, frac = text.partition(".")
        return int(whole) * 10**9 + int(frac.ljust(9, "0") or 0)
    import datetime  # lazy: start latency (only --since/--until)

    fraction = re.search(r"\.(\d+)", text)
    iso = re.sub(r"\.\d+", "", text).replace("z", "Z")
    try:
        base = int(datetime.datetime.fromisoformat(iso).timestamp())
    except ValueError:
        raise PodsError(f'invalid value for "{flag}": failed to parse value as time or duration: "{text}"') from None
    return base * 10**9 + (int(fraction.group(1)[:9].ljust(9, "0")) if fraction else 0)


def log_time(ts: str) -> int:
    """A log line's RFC 3339 time (UTC, nanoseconds) as unix nanoseconds."""
    import calendar  # lazy: start latency (only --since/--until)

    whole, _, frac = ts.rstrip("Z").partition(".")
    day, _, clock = whole.partition("T")
    y, mo, d = (int(x) for x in day.split("-"))
    h, mi, sec = (int(x) for x in clock.split(":"))
    return calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) * 10**9 + int(frac[:9].ljust(9, "0") or 0)


def logs(client: ClientAPI, args: argparse.Namespace) -> int:
    if args.tail in ("all", "") or (args.tail.lstrip("-").isdigit() and int(args.tail) < 0):
        tail = None
    elif args.tail.isdigit():
        tail = int(args.tail)
    else:
        raise PodsError(f'invalid value for "tail": {args.tail!r}: use a number of lines or "all"')
    since = until = None
    if args.since or args.until:
        import time  # lazy: start latency (only --since/--until)

        now = time.time()
        since = time_arg("since", args.since, now) if args.since else None
        until = time_arg("until", args.until, now) if args.until else None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    filtered = since is not None or until is not None
    lines = client.containers.logs(args.container, follow=args.follow,
                                   tail=tail if args.follow or not filtered else None)
    if filtered:
        lines = _between(lines, since, until, None if args.follow else tail)
    for stream, ts, line in lines:
        target = out if stream == "stdout" else err
        if args.timestamps:
            target.write(ts.encode() + b" ")
        target.write(line)
        if args.follow:
            target.flush()
    return 0


def _between(lines: Iterator[LogLine], since: int | None, until: int | None,
             tail: int | None) -> Iterator[LogLine]:
    """The lines from ``since`` up to ``until`` (docker: a followed log ends there), as they
    come; with ``tail``, the last that many of them (not following)."""
    import collections  # lazy: start latency (only --since/--until)

    kept: collections.deque[LogLine] = collections.deque(maxlen=tail)
    for item in lines:
        t = log_time(item[1])
        if until is not None and t > until:
            break
        if since is None or t >= since:
            if tail is None:
                yield item
            else:
                kept.append(item)
    yield from kept


def add_exec(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true", help="every capability for this process, as docker exec")
    p.add_argument("--detach-keys", help="with -it: the key sequence that lets go (default ctrl-p,ctrl-q)")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)


def exec_(client: ClientAPI, args: argparse.Namespace) -> int:
    if not args.command:
        raise PodsError("exec: no command given: pods exec CONTAINER COMMAND [ARG...]")
    if args.tty and os.isatty(1):
        from pytest_pods.client.local import Client  # lazy: start latency (only exec -t)

        if isinstance(client, Client):  # a pty of the local engine's container
            return _exec_on_terminal(client, args)
    null = os.open("/dev/null", os.O_RDONLY)
    stdio = (0 if args.interactive else null, 1, 2)
    result = client.containers.exec(args.container, args.command, env=args.env, user=args.user,
                                    workdir=args.workdir, stdio=stdio, privileged=args.privileged)
    return result.exit_code


def _exec_on_terminal(client: Client, args: argparse.Namespace) -> int:
    """``exec -t`` (``-it``): the process on a pty of the container's own devpts (``tty`` names
    ``/dev/pts/N`` there, as under docker), our terminal raw and its size followed, with ``-i``
    our keys typed into it (detach keys: we let go, it runs on); its exit code is ours."""
    import termios  # lazy: start latency (only exec -t)
    import tty  # lazy: as above

    from pytest_pods.daemon.streams import container_pty, resize_pty  # lazy: as above

    st = client.containers.state(args.container)
    if st["status"] != "running":
        raise PodsError(f"Container {st['id']} is not running")
    try:
        cols, rows = os.get_terminal_size(1)
    except OSError:
        cols, rows = 80, 24
    master, slave = container_pty(int(st["pid"]), [rows, cols])
    relay = _TerminalRelay(args.detach_keys)
    relay.close()  # its pipes are not used: the pty's master is both ends
    relay.in_w = os.dup(master) if args.interactive else -1
    relay.out_r = master

    def run() -> int:
        try:
            return client.containers.exec(st["id"], args.command, env=args.env, user=args.user, workdir=args.workdir,
                                          stdio=(slave, slave, slave), tty=True,
                                          privileged=args.privileged).exit_code
        finally:
            os.close(slave)  # the master reads the end of the output once no process holds the pty

    def follow_size(_sig: int = 0, _frame: object = None) -> None:
        with contextlib.suppress(OSError):
            cols, rows = os.get_terminal_size(1)
            resize_pty(master, rows, cols)

    saved = None
    if args.interactive and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        signal.signal(signal.SIGWINCH, follow_size)
        code = relay.run(run) if args.interactive else _copy_until_done(relay, run)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return 0 if code == DETACHED else code


def _copy_until_done(relay: _TerminalRelay, run: Callable[[], int]) -> int:
    """``exec -t`` without ``-i``: the pty's output until the process ends (no keys read)."""
    import threading  # lazy: start latency (only exec -t)

    code: list[int] = []
    worker = threading.Thread(target=lambda: code.append(run()), name="pods-exec-tty", daemon=True)
    worker.start()
    try:
        while relay._copy_out(timeout=0.1) or worker.is_alive():
            pass
        worker.join()
    finally:
        relay.close()
    return code[0] if code else 126


# -- wait, stop, kill, rm -------------------------------------------------------------------------
def add_wait(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb, help=HELP[verb]).add_argument("containers", nargs="+")


def wait(client: ClientAPI, args: argparse.Namespace) -> int:
    return each(args.containers, client.containers.wait)


def add_stop(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int)
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+")


def stop(client: ClientAPI, args: argparse.Namespace) -> int:
    sig = parse_signal(args.signal) if args.signal else None

    def stop_one(ref: str) -> str:
        client.containers.stop(ref, args.time, stop_signal=sig)
        return ref

    return each(args.containers, stop_one)


def add_kill(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")


def kill(client: ClientAPI, args: argparse.Namespace) -> int:
    def kill_one(ref: str) -> str:
        client.containers.kill(ref, args.signal)
        return ref

    return each(args.containers, kill_one)


def add_rm(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="its anonymous volumes too (-v /PATH, the image's VOLUMEs); named ones stay")
    p.add_argument("containers", nargs="+")


def rm(client: ClientAPI, args: argparse.Namespace) -> int:
    def remove_one(ref: str) -> str:
        if args.volumes:
            client.containers.get(ref).remove(force=args.force, v=True)
        else:
            client.containers.remove(ref, force=args.force)
        return ref

    return each(args.containers, remove_one)


# -- stats, port, commit --------------------------------------------------------------------------
def add_stats(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("--format", help="Format output using a custom template: 'table', 'table TEMPLATE', 'json' "
                   "or a Go template ({{.Container}} {{.Name}} {{.ID}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} "
                   "{{.NetIO}} {{.BlockIO}} {{.PIDs}})")
    p.add_argument("containers", nargs="*", help="the containers (default: all running ones, and those that start)")


STATS_HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}
STATS_INTERVAL = 1.0  # seconds between samples: dockerd's collector interval


def stats(client: ClientAPI, args: argparse.Namespace) -> int:
    """docker's ``stats``: CPU % from the CPU time used between two samples a second apart (the
    first frame of a stream shows 0.00%, as docker's), memory against the limit or the host's."""
    import time  # lazy: start latency (only stats)

    from pytest_pods.daemon.containers import mem_total  # lazy: the host's memory, one reading of it

    for ref in args.containers:  # an unknown name fails before any output
        client.containers.state(ref)
    host_memory = mem_total()
    before: dict[str, tuple[int, int]] = {}  # container id -> (wall ns, its CPU ns) at the last sample

    def row(st: Any, shown: str) -> dict[str, str]:
        cid = st["id"]
        zero = {"CPUPerc": "0.00%", "MemUsage": "0B / 0B", "MemPerc": "0.00%", "NetIO": "0B / 0B",
                "BlockIO": "0B / 0B", "PIDs": "0"}
        sample = zero
        if st["status"] == "running":
            try:
                s = client.containers.stats(cid)
            except PodsError:
                s = None  # it stopped or went between the listing and the sample
            if s is not None:
                now = time.monotonic_ns()
                wall, cpu = before.get(cid, (now, s["cpu_usage_ns"]))
                before[cid] = (now, s["cpu_usage_ns"])
                limit = s["memory_limit"] or host_memory
                rx = sum(n[0] for n in s["net"].values())
                tx = sum(n[1] for n in s["net"].values())
                sample = {"CPUPerc": f"{(s['cpu_usage_ns'] - cpu) / (now - wall) * 100 if now > wall else 0.0:.2f}%",
                          "MemUsage": f"{binary_size(s['memory_usage'])} / {binary_size(limit)}",
                          "MemPerc": f"{s['memory_usage'] / limit * 100 if limit else 0.0:.2f}%",
                          "NetIO": f"{size(rx)} / {size(tx)}",
                          "BlockIO": f"{size(s['block_read'])} / {size(s['block_written'])}",
                          "PIDs": str(s["pids"])}
        short = cid if args.no_trunc else cid[:12]
        return {"Container": shown or short, "Name": st["name"], "ID": short, **sample}

    def rows() -> list[dict[str, str]]:
        if args.containers:
            pairs = [(client.containers.state(ref), ref) for ref in args.containers]
        else:
            pairs = [(st, "") for st in client.containers.states(all=args.all)]
        return [row(st, shown) for st, shown in pairs]

    columns = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
    if args.no_stream:
        rows()  # the first sample: CPU % is the time used until the second
        time.sleep(STATS_INTERVAL)
        print_rows(rows(), args.format, STATS_HEADERS, columns)
        return 0
    try:
        while True:
            current = rows()
            sys.stdout.write("\033[2J\033[H")  # docker's redraw: clear the screen, cursor home
            print_rows(current, args.format, STATS_HEADERS, columns)
            sys.stdout.flush()
            time.sleep(STATS_INTERVAL)
    except KeyboardInterrupt:
        return 0


def add_top(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb], usage="pods top CONTAINER [ps OPTIONS]")
    p.add_argument("container")
    p.add_argument("ps_options", nargs=argparse.REMAINDER, help="options for the host's ps (default -ef)")


def top(client: ClientAPI, args: argparse.Namespace) -> int:
    listing = client.containers.processes(args.container, " ".join(args.ps_options))
    table([listing.titles, *listing.processes], min_width=20)  # docker top's tabwriter: 20 wide at least
    return 0


def add_export(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container")


def export(client: ClientAPI, args: argparse.Namespace) -> int:
    """The tar goes to a file (written aside, then renamed: a failed export leaves none) or to
    stdout, never to a terminal."""
    if not args.output:
        if sys.stdout.isatty():
            raise PodsError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        sys.stdout.flush()
        with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
            client.containers.export(args.container, out)
        return 0
    tmp = f"{args.output}.pods-export-{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            client.containers.export(args.container, out)
        os.replace(tmp, args.output)
    except OSError as exc:
        raise PodsError(f"export to {args.output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return 0


def add_port(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("container")
    p.add_argument("private", nargs="?", help="PORT[/PROTO]")


def port(client: Client, args: argparse.Namespace) -> int:
    st = client.containers.state(args.container)
    shown = 0
    for p in st.get("ports") or [] if st["status"] == "running" else []:
        key = f"{p['container_port']}/{p['proto']}"
        if args.private and args.private not in (key, str(p["container_port"])):
            continue
        print(f"{key} -> {p['host_ip']}:{p['host_port']}" if not args.private else f"{p['host_ip']}:{p['host_port']}")
        shown += 1
    if args.private and not shown:
        raise PodsError(f"No public port '{args.private}' published for {st['name']}")
    return 0


def add_commit(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="make an image of a container's changes")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-c", "--change", action="append", default=[], help="CMD/ENTRYPOINT/ENV/EXPOSE/LABEL/... to set")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"],
                   help="freeze a running container while its changes are read (default true)")
    p.add_argument("--stop", action="store_true", help="stop the container cleanly first (consistent data files)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")


def commit(client: Client, args: argparse.Namespace) -> int:
    if args.repository:
        parse_reference(args.repository)  # a bad name fails before any work
    img = client.containers.get(args.container).commit(
        args.repository, message=args.message, author=args.author, changes=args.change,
        pause=args.pause == "true", stop=args.stop)
    print(img.id)
    return 0


# -- pause, unpause, rename, update, diff -------------------------------------------------------------
def add_containers(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb, help=HELP[verb]).add_argument("containers", nargs="+")


def pause(client: ClientAPI, args: argparse.Namespace) -> int:
    def pause_one(ref: str) -> str:
        client.containers.pause(ref)
        return ref

    return each(args.containers, pause_one)


def unpause(client: ClientAPI, args: argparse.Namespace) -> int:
    def unpause_one(ref: str) -> str:
        client.containers.unpause(ref)
        return ref

    return each(args.containers, unpause_one)


def add_rename(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("container")
    p.add_argument("new_name")


def rename(client: ClientAPI, args: argparse.Namespace) -> int:
    client.containers.rename(args.container, args.new_name)
    return 0


def add_update(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help=HELP[verb])
    p.add_argument("-m", "--memory", type=memory_arg)
    p.add_argument("--memory-swap", type=str)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--cpus", type=cpus_arg)
    p.add_argument("--cpu-shares", "-c", type=int)
    p.add_argument("--restart", type=restart_arg, metavar="no|always|unless-stopped|on-failure[:N]")
    p.add_argument("containers", nargs="+")


def update(client: ClientAPI, args: argparse.Namespace) -> int:
    def update_one(ref: str) -> str:
        client.containers.update(ref, memory=args.memory, memory_swap=args.memory_swap, pids_limit=args.pids_limit,
                                 cpus=args.cpus, cpu_shares=args.cpu_shares, restart_policy=args.restart)
        return ref

    return each(args.containers, update_one)


def add_diff(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb, help=HELP[verb]).add_argument("container")


def diff(client: ClientAPI, args: argparse.Namespace) -> int:
    for path, kind in client.containers.changes(args.container):
        print(f"{'CAD'[kind]} {path}")
    return 0


def add_cp(sub: Subparsers, verb: str) -> None:
    from pytest_pods.cli import copy  # lazy: start latency (tarfile, tempfile: only cp)

    copy.add_cp(sub, verb)


def cp(client: ClientAPI, args: argparse.Namespace) -> int:
    from pytest_pods.cli import copy  # lazy: start latency (tarfile, tempfile: only cp)

    return copy.cp(client, args)


VERBS: dict[str, Verb | LocalVerb] = {
    "cp": Verb(add_cp, cp),
    "pause": Verb(add_containers, pause),
    "unpause": Verb(add_containers, unpause),
    "rename": Verb(add_rename, rename),
    "update": Verb(add_update, update),
    "diff": Verb(add_diff, diff),
    "commit": LocalVerb(add_commit, commit),
    "run": Verb(add_run, run),
    "create": Verb(add_run, run),
    "start": Verb(add_start, start),
    "ps": Verb(add_ps, ps),
    "logs": Verb(add_logs, logs),
    "exec": Verb(add_exec, exec_),
    "attach": LocalVerb(add_attach, attach),
    "wait": Verb(add_wait, wait),
    "stop": Verb(add_stop, stop),
    "kill": Verb(add_kill, kill),
    "rm": Verb(add_rm, rm),
    "stats": Verb(add_stats, stats),
    "top": Verb(add_top, top),
    "export": Verb(add_export, export),
    "port": LocalVerb(add_port, port),
}
