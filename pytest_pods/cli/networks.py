"""``pods network create|ls|inspect|rm|prune|connect|disconnect``: user networks. ``ls`` and
``inspect`` make nothing (issue 14): ``bridge`` is listed from its definition until a container
needs it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pytest_pods.cli.output import each, print_docs, table
from pytest_pods.cli.verb import LocalVerb, Subparsers
from pytest_pods.errors import ConflictError, NotFoundError, PodsError

if TYPE_CHECKING:
    from pytest_pods.client.local import Client


def add_network(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="manage networks (create, ls, inspect, rm, prune, connect, disconnect)")
    ns = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    q = ns.add_parser("create")
    q.add_argument("--subnet")
    q.add_argument("--internal", action="store_true")
    q.add_argument("-d", "--driver", default="bridge", choices=["bridge"])
    q.add_argument("--label", action="append")
    q.add_argument("name")
    q = ns.add_parser("ls")
    q.add_argument("-q", "--quiet", action="store_true")
    q = ns.add_parser("inspect")
    q.add_argument("-f", "--format")
    q.add_argument("names", nargs="+")
    q = ns.add_parser("rm")
    q.add_argument("names", nargs="+")
    q = ns.add_parser("prune")
    q.add_argument("-f", "--force", action="store_true")  # docker asks first; we never ask
    q.add_argument("--filter", action="append", default=[])
    q = ns.add_parser("connect")
    q.add_argument("--alias", action="append")
    q.add_argument("network")
    q.add_argument("container")
    q = ns.add_parser("disconnect")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("network")
    q.add_argument("container")


def network(client: Client, args: argparse.Namespace) -> int:
    a = args.action
    if a == "create":
        labels = dict(lbl.partition("=")[::2] for lbl in args.label or [])
        print(client.networks.create(args.name, subnet=args.subnet, internal=args.internal, labels=labels)["id"])
    elif a == "ls":
        nets = client.networks.list()
        if args.quiet:
            for n in nets:
                print(n["Id"][:12])
            return 0
        rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE"]]
        rows += [[n["Id"][:12], n["Name"], n["Driver"], n["Scope"]] for n in nets]
        table(rows)
    elif a == "inspect":
        docs, code = [], 0
        for name in args.names:
            try:
                docs.append(client.networks.get(name))
            except PodsError as exc:
                print(f"pods: {exc}", file=sys.stderr)
                code = 1
        print_docs(docs, args.format)
        return code
    elif a == "rm":
        return each(args.names, client.networks.remove)
    elif a == "prune":
        return prune(client, args.filter)
    elif a == "connect":
        client.networks.connect(args.network, args.container, args.alias or [])
    elif a == "disconnect":
        client.networks.disconnect(args.network, args.container)
    return 0


def prune(client: Client, filters: list[str]) -> int:
    """Remove the user networks no running container uses, as ``docker network prune``; only
    ``label=KEY[=VALUE]`` filters are understood."""
    wanted = []
    for f in filters:
        key, _, value = f.partition("=")
        if key != "label" or not value:
            print(f"pods: invalid filter {f!r} (only label=KEY[=VALUE])", file=sys.stderr)
            return 1
        wanted.append(value.partition("="))
    deleted = []
    for n in client.networks.list():
        labels = n.get("Labels") or {}
        if n["Name"] in ("bridge", "host", "none") or not all(
                k in labels and (not sep or labels[k] == v) for k, sep, v in wanted):
            continue
        try:
            client.networks.remove(n["Id"])
        except (ConflictError, NotFoundError):
            continue  # in use (or removed meanwhile)
        deleted.append(n["Name"])
    if deleted:
        print("Deleted Networks:\n" + "".join(f"{name}\n" for name in deleted), end="")
    return 0


VERBS: dict[str, LocalVerb] = {"network": LocalVerb(add_network, network)}
