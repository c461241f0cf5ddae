"""``pods network create|ls|inspect|rm|connect|disconnect``: user networks."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pytest_pods.cli.output import each, print_docs, table
from pytest_pods.cli.verb import LocalVerb, Subparsers
from pytest_pods.errors import PodsError

if TYPE_CHECKING:
    from pytest_pods.client.local import Client


def add_network(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb)
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
                print(f"Error response from daemon: {exc}", file=sys.stderr)
                code = 1
        print_docs(docs, args.format)
        return code
    elif a == "rm":
        return each(args.names, client.networks.remove)
    elif a == "connect":
        client.networks.connect(args.network, args.container, args.alias or [])
    elif a == "disconnect":
        client.networks.disconnect(args.network, args.container)
    return 0


VERBS: dict[str, LocalVerb] = {"network": LocalVerb(add_network, network)}
