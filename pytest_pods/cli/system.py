"""``pods system prune|reap|info``, ``pods inspect`` (containers, images and networks) and
``pods daemon``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from pytest_pods.cli.output import print_docs
from pytest_pods.cli.verb import Command, LocalVerb, Subparsers, Verb
from pytest_pods.errors import (
    ContainerNotFoundError,
    DaemonError,
    ImageNotFoundError,
    InvalidArgumentError,
    NetworkNotFoundError,
    PodsError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pytest_pods.client.contract import ClientAPI
    from pytest_pods.client.local import Client


def add_system(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="manage the engine (prune, df, reap, info)")
    ss = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    q = ss.add_parser("prune", help="remove stopped containers, unused networks, dangling images")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("-a", "--all", action="store_true", help="every image no container uses, not only dangling ones")
    q.add_argument("--volumes", action="store_true", help="unused anonymous volumes too")
    q = ss.add_parser("df", help="disk usage of images, containers, volumes")
    q.add_argument("-v", "--verbose", action="store_true")
    ss.add_parser("reap", help="release what crashed sessions left behind")
    ss.add_parser("info", help="the root, the mode and the limits")


def system(client: Client, args: argparse.Namespace) -> int:
    if args.action == "prune":
        if not args.force:
            images = "all images without at least one container" if args.all else "all dangling images"
            volumes = ", all anonymous volumes not used by a container" if args.volumes else ""
            print(f"WARNING! This will remove all stopped containers, all networks not used by a container"
                  f"{volumes}, {images} and unused blobs. Use -f to do so.", file=sys.stderr)
            return 1
        from pytest_pods.cli.images import prune_images  # lazy: start latency (only prune)
        from pytest_pods.cli.output import size

        # as docker prunes: stopped containers (and unused blobs), networks, volumes, then images
        for line in client.prune() + client.cleanup(prune_networks=True):
            print(line)
        if args.volumes:
            from pytest_pods.cli.volumes import prune_volumes  # lazy: start latency (only prune --volumes)

            for name in prune_volumes(client, {}, everything=False)[0]:
                print(f"Deleted volume: {name}")
        lines, reclaimed = prune_images(client, everything=args.all)
        if lines:
            print("Deleted Images:\n" + "".join(f"{line}\n" for line in lines))
        print(f"Total reclaimed space: {size(reclaimed)}")
    elif args.action == "df":
        disk_usage(client, verbose=args.verbose)
    elif args.action == "reap":
        for line in client.reap():
            print(line)
    elif args.action == "info":
        print_info(client)
    return 0


def disk_usage(client: Client, *, verbose: bool) -> None:
    """``system df``: TYPE, TOTAL, ACTIVE, SIZE and RECLAIMABLE as docker prints them."""
    from pytest_pods.cli.output import size, table  # lazy: start latency (only df)
    from pytest_pods.cli.volumes import disk_usage as du  # lazy: start latency (only df)

    containers = [c.inspect() for c in client.containers.list(all=True)]
    used = {c.get("Image") for c in containers}
    images = client.images.list()
    img_total = sum(i.size for i in images)
    img_free = sum(i.size for i in images if i.id not in used)
    running = [c for c in containers if c.get("State", {}).get("Running")]
    ctr_sizes = {c["Id"]: du(str((c.get("GraphDriver") or {}).get("Data", {}).get("UpperDir", ""))) for c in containers}
    mounted = {m.get("Name") for c in containers for m in c.get("Mounts") or [] if m.get("Type") == "volume"}
    volumes = client.volumes.list()
    vol_sizes = {v["Name"]: du(v.get("Mountpoint", "")) for v in volumes}

    def pct(part: int, whole: int) -> str:
        return f"{size(part)} ({100 * part // whole if whole else 0}%)"

    table([["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
           ["Images", str(len(images)), str(sum(1 for i in images if i.id in used)), size(img_total),
            pct(img_free, img_total)],
           ["Containers", str(len(containers)), str(len(running)), size(sum(ctr_sizes.values())),
            pct(sum(v for k, v in ctr_sizes.items() if k not in {c["Id"] for c in running}), sum(ctr_sizes.values()))],
           ["Local Volumes", str(len(volumes)), str(sum(1 for v in volumes if v["Name"] in mounted)),
            size(sum(vol_sizes.values())),
            pct(sum(n for k, n in vol_sizes.items() if k not in mounted), sum(vol_sizes.values()))],
           ["Build Cache", "0", "0", "0B", "0B"]])
    if verbose:
        print("\nLocal Volumes space usage:\n")
        table([["VOLUME NAME", "LINKS", "SIZE"]] + [[v["Name"], str(sum(
            1 for c in containers for m in c.get("Mounts") or [] if m.get("Name") == v["Name"])),
            size(vol_sizes[v["Name"]])] for v in volumes])


def add_info(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb, help="the engine's root, mode and limits")


def info(client: Client, args: argparse.Namespace) -> int:
    print_info(client)
    return 0


def print_info(client: Client) -> None:
    """``pods info``: the root, the mode (root or rootless), the id maps, the network helper and
    what is limited."""
    got = client.info()
    doc: dict[str, object] = {"Root": got["root"], "Mode": got.get("mode", "root"),
                              "CgroupVersion": got["cgroup_version"], "Images": got["images"],
                              "Containers": got["containers"]}
    if got.get("mode") == "rootless":
        doc.update({"UidMap": got.get("uid_map", ""), "GidMap": got.get("gid_map", ""),
                    "NetworkHelper": got.get("network_helper", "none"), "Limited": got.get("limited", [])})
    print(json.dumps(doc, indent=2))


def add_inspect(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="show containers, images or networks as JSON (-f: a Go template)")
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=["container", "image", "network"])
    p.add_argument("names", nargs="+")


def inspect(client: Client, args: argparse.Namespace) -> int:
    """A container, else an image, else a network of that name (``--type`` picks one)."""
    docs, code = [], 0
    for name in args.names:
        doc: dict[str, Any] | None = None
        if args.type in (None, "container"):
            try:
                doc = client.containers.get(name).inspect()
            except ContainerNotFoundError:
                pass
        if doc is None and args.type in (None, "image"):
            try:
                doc = client.images.inspect(name)
                doc.pop("_Names", None)
            except (ImageNotFoundError, InvalidArgumentError):
                pass
        if doc is None and args.type in (None, "network") and (client.root / "networks").is_dir():
            try:
                doc = client.networks.get(name)
            except NetworkNotFoundError:
                pass
        if doc is None:
            print(f"Error: No such object: {name}", file=sys.stderr)
            code = 1
            continue
        docs.append(doc)
    print_docs(docs, args.format)
    return code


def add_daemon(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="serve the Docker Engine API on a unix socket (or TCP with TLS)")
    p.add_argument("--socket", help="unix socket path (default /run/pytest-pods/pods.sock)")
    p.add_argument("--tcp", metavar="ADDR", help="HOST:PORT, only with --tlscert/--tlskey/--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--tlscacert", help="CA that signs the client certificates (they are required)")
    p.add_argument("--log-file")
    p.add_argument("--image-aliases", metavar="SPEC",
                   help="official image names served by local images: 'official' (the preset: postgres[:N] and "
                        "redis[:N] -> the shipped recipes, built on first use), NAME=IMAGE words, or 'none' "
                        "(env PODS_IMAGE_ALIASES)")
    p.add_argument("--image-alias", metavar="NAME=IMAGE", action="append", default=[],
                   help="one image alias (repeatable), e.g. postgres:16=pytest-pods/postgres:15")


def daemon(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT.

    :raises PodsError: ``daemon: <why>`` (a bad flag, a socket in use, another daemon on the root)
    """
    # lazy: start latency (the daemon's HTTP server, ssl and threads are for `pods daemon` only)
    from pytest_pods.client.aliases import ENV as ALIASES_ENV  # lazy: as above
    from pytest_pods.client.aliases import parse_or_raise  # lazy: as above
    from pytest_pods.daemon.server import serve  # lazy: as above

    aliases = parse_or_raise([args.image_aliases or os.environ.get(ALIASES_ENV), *args.image_alias])
    tls = None
    if any((args.tlscert, args.tlskey, args.tlscacert)):
        if not all((args.tlscert, args.tlskey, args.tlscacert)):
            raise PodsError("daemon: --tlscert, --tlskey and --tlscacert go together")
        tls = (args.tlscert, args.tlskey, args.tlscacert)
    try:
        serve(args.root, args.socket, args.tcp, tls, log_file=args.log_file, image_aliases=aliases)
    except (DaemonError, PodsError) as exc:
        raise PodsError(f"daemon: {exc}") from None
    return 0


def add_events(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="get real time events from the engine")
    p.add_argument("--since", help="Show all events created since timestamp (unix seconds, RFC 3339, or a "
                   "duration back from now: 10m)")
    p.add_argument("--until", help="Stream events until this timestamp (then exit)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="type=, event=, container=, image=, label=KEY[=VALUE], network=, volume= (repeatable)")
    p.add_argument("--format", help="a Go template, or json")


def event_filter(values: list[str]) -> Callable[[Mapping[str, Any]], bool]:
    """``-f KEY=VALUE`` (repeatable) as dockerd filters events (daemon/filters.py; a key it does
    not know is ignored, as dockerd's).

    :raises PodsError: a filter without ``=``, as the docker CLI refuses it
    """
    from pytest_pods.daemon.filters import event_matches  # lazy: start latency (only events)

    wanted: dict[str, list[str]] = {}
    for text in values:
        key, eq, value = text.partition("=")
        if not eq:
            raise PodsError(f'invalid argument "{text}" for "-f, --filter" flag: bad format of filter '
                            "(expected name=value)")
        wanted.setdefault(key, []).append(value)
    return lambda ev: event_matches(ev, wanted)


def events(client: ClientAPI, args: argparse.Namespace) -> int:
    """Docker's ``events``: the kept ones from ``--since``, then new ones until ``--until``
    (without it, until interrupted); a line each, as the docker CLI prints them."""
    import time  # lazy: start latency (only events)

    from pytest_pods.cli.containers import time_arg  # lazy: start latency (docker's time forms, as logs takes them)

    now = time.time()
    since = time_arg("since", args.since, now) / 1e9 if args.since else None
    until = time_arg("until", args.until, now) / 1e9 if args.until else None
    match = event_filter(args.filter)
    template = (args.format or "").replace("\\t", "\t").replace("\\n", "\n")
    try:
        for ev in client.events(since, until, follow=until is None or until > now):
            if match(ev):
                print(event_line(ev, template), flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def event_line(ev: Mapping[str, Any], template: str) -> str:
    """An event as ``docker events`` prints it: its local time with nine digits, type, action,
    actor and its attributes sorted; or through ``--format``."""
    if template == "json":
        return json.dumps(ev, separators=(",", ":"))
    if template:
        from pytest_pods.cli.output import format_template  # lazy: start latency (only --format)

        # a Go template sees the event's struct fields: the JSON's old lower-case names too
        return format_template(template, {**ev, "Status": ev.get("status", ""), "ID": ev.get("id", ""),
                                          "From": ev.get("from", ""), "Scope": ev.get("scope", "")})
    import datetime  # lazy: start latency (only events)

    ns = int(ev.get("timeNano") or int(ev.get("time") or 0) * 10**9)
    t = datetime.datetime.fromtimestamp(ns // 10**9).astimezone()
    zone = t.strftime("%z")
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}" + (
        "Z" if zone == "+0000" else f"{zone[:3]}:{zone[3:]}")
    actor = ev.get("Actor") or {}
    line = f"{stamp} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(sorted(f"{k}={v}" for k, v in attrs.items())) + ")"
    return line


VERBS: dict[str, Verb | LocalVerb | Command] = {
    "events": Verb(add_events, events),
    "inspect": LocalVerb(add_inspect, inspect),
    "system": LocalVerb(add_system, system),
    "info": LocalVerb(add_info, info),
    "daemon": Command(add_daemon, daemon),
}
