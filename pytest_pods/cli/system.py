"""``pods system prune|reap|info``, ``pods inspect`` (containers, images and networks) and
``pods daemon``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from pytest_pods.cli.output import print_docs
from pytest_pods.cli.verb import Command, LocalVerb, Subparsers
from pytest_pods.errors import (
    ContainerNotFoundError,
    DaemonError,
    ImageNotFoundError,
    InvalidArgumentError,
    NetworkNotFoundError,
    PodsError,
)

if TYPE_CHECKING:
    from pytest_pods.client.local import Client


def add_system(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb)
    ss = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    q = ss.add_parser("prune")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("-a", "--all", action="store_true")
    ss.add_parser("reap")
    ss.add_parser("info")


def system(client: Client, args: argparse.Namespace) -> int:
    if args.action == "prune":
        if not args.force:
            print("WARNING! This will remove all stopped containers, all networks not used by a container and "
                  "unused blobs. Use -f to do so.", file=sys.stderr)
            return 1
        # stopped containers, unused blobs, then the networks no container uses (as docker prunes)
        for line in client.prune() + client.cleanup(prune_networks=True):
            print(line)
    elif args.action == "reap":
        for line in client.reap():
            print(line)
    elif args.action == "info":
        print_info(client)
    return 0


def add_info(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb)


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
    p = sub.add_parser(verb)
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
    from pytest_pods.client.aliases import ENV as ALIASES_ENV
    from pytest_pods.client.aliases import parse_or_raise
    from pytest_pods.daemon.server import serve

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


VERBS: dict[str, LocalVerb | Command] = {
    "inspect": LocalVerb(add_inspect, inspect),
    "system": LocalVerb(add_system, system),
    "info": LocalVerb(add_info, info),
    "daemon": Command(add_daemon, daemon),
}
