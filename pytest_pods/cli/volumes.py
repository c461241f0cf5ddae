"""``pods volume create|ls|inspect|rm|prune``: named and anonymous volumes, as ``docker volume``.

Works on either engine: the daemon serves the same verbs, so ``pods --host`` manages a remote
engine's volumes too. Prune removes anonymous volumes that no container mounts; ``--all`` named ones
too (docker 23's rule).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from pytest_pods.cli.output import each, print_docs, size, table
from pytest_pods.cli.verb import Subparsers, Verb
from pytest_pods.errors import ConflictError, NotFoundError, PodsError

if TYPE_CHECKING:
    from pytest_pods.client.contract import ClientAPI

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def add_volume(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="manage volumes (create, ls, inspect, rm, prune)")
    vs = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    q = vs.add_parser("create", help="create a volume")
    q.add_argument("-d", "--driver", default="local")
    q.add_argument("--label", action="append", default=[])
    q.add_argument("-o", "--opt", action="append", default=[])
    q.add_argument("name", nargs="?")
    q = vs.add_parser("ls", help="list volumes")
    q.add_argument("-q", "--quiet", action="store_true")
    q.add_argument("-f", "--filter", action="append", default=[])
    q.add_argument("--format")
    q = vs.add_parser("inspect", help="show volumes' details")
    q.add_argument("-f", "--format")
    q.add_argument("names", nargs="+")
    q = vs.add_parser("rm", help="remove volumes")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("names", nargs="+")
    q = vs.add_parser("prune", help="remove unused volumes")
    q.add_argument("-a", "--all", action="store_true", help="named volumes too, not only anonymous ones")
    q.add_argument("-f", "--force", action="store_true")  # docker asks first; we never ask
    q.add_argument("--filter", action="append", default=[])


def volume(client: ClientAPI, args: argparse.Namespace) -> int:
    a = args.action
    if a == "create":
        if args.driver != "local":
            raise PodsError(f'create {args.name or ""}: error looking up volume plugin {args.driver}: plugin '
                            f'"{args.driver}" not found (only the "local" driver is built in)')
        if args.opt:
            raise PodsError(f"create: --opt {args.opt[0]}: the local driver here takes no options "
                            "(a volume is a directory of the engine; use a bind mount for a device)")
        labels = dict(lbl.partition("=")[::2] for lbl in args.label)
        print(client.volumes.create(args.name, labels)["Name"])
        return 0
    if a == "inspect":
        docs, code = [], 0
        for name in args.names:
            try:
                docs.append(client.volumes.get(name))
            except NotFoundError:
                print(f"Error: No such volume: {name}", file=sys.stderr)
                code = 1
        print_docs(docs, args.format)
        return code
    if a == "rm":
        return each(args.names, lambda name: _remove(client, name, args.force))
    wanted = _filters(args.filter)
    if a == "ls":
        vols = [v for v in client.volumes.list() if _matches(client, v, wanted)]
        if args.quiet:
            for v in vols:
                print(v["Name"])
        elif args.format:
            from pytest_pods.cli.output import format_template  # lazy: start latency (only --format)

            for v in vols:
                print(format_template(args.format, v))
        else:
            table([["DRIVER", "VOLUME NAME"]] + [[v.get("Driver", "local"), v["Name"]] for v in vols])
        return 0
    deleted, reclaimed = prune_volumes(client, wanted, everything=args.all)
    if deleted:
        print("Deleted Volumes:\n" + "".join(f"{name}\n" for name in deleted))
    print(f"Total reclaimed space: {size(reclaimed)}")
    return 0


def _remove(client: ClientAPI, name: str, force: bool) -> str:
    client.volumes.remove(name, force=force)
    return name


def _filters(given: list[str]) -> dict[str, list[str]]:
    """``-f KEY=VALUE``: dangling, name, label, driver (docker's volume filters)."""
    out: dict[str, list[str]] = {}
    for f in given:
        key, sep, value = f.partition("=")
        if not sep or key not in ("dangling", "name", "label", "driver"):
            raise PodsError(f"invalid filter '{f}': use dangling=true|false, name=NAME, label=KEY[=VALUE] "
                            "or driver=local")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise PodsError(f"invalid filter 'dangling={value}': use true or false")
        out.setdefault(key, []).append(value)
    return out


def _in_use(client: ClientAPI) -> set[str]:
    """The names of the volumes some container (running or not) mounts."""
    names = set()
    for c in client.containers.list(all=True):
        for m in c.inspect().get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                names.add(m["Name"])
    return names


def _matches(client: ClientAPI, vol: dict[str, Any], wanted: dict[str, list[str]], used: set[str] | None = None) -> bool:
    labels = vol.get("Labels") or {}
    for value in wanted.get("label", []):
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    if wanted.get("name") and not any(n in vol["Name"] for n in wanted["name"]):
        return False
    if wanted.get("driver") and vol.get("Driver", "local") not in wanted["driver"]:
        return False
    if wanted.get("dangling"):
        dangling = vol["Name"] not in (used if used is not None else _in_use(client))
        if dangling != (wanted["dangling"][-1] in ("true", "1")):
            return False
    return True


def prune_volumes(client: ClientAPI, wanted: dict[str, list[str]], *, everything: bool) -> tuple[list[str], int]:
    """Remove the anonymous volumes no container mounts (``everything``: named ones too); their
    names and the bytes freed."""
    used = _in_use(client)
    deleted, reclaimed = [], 0
    for v in client.volumes.list():
        anonymous = (v.get("Labels") or {}).get(ANONYMOUS_LABEL) is not None or _looks_anonymous(v)
        if v["Name"] in used or not (everything or anonymous) or not _matches(client, v, wanted, used):
            continue
        grown = disk_usage(v.get("Mountpoint", ""))
        try:
            client.volumes.remove(v["Name"])
        except (ConflictError, NotFoundError):
            continue  # mounted meanwhile, or removed by someone else
        deleted.append(v["Name"])
        reclaimed += grown
    return deleted, reclaimed


def _looks_anonymous(vol: dict[str, Any]) -> bool:
    """Anonymous volumes are named by 64 hex digits, as docker names them."""
    name = str(vol["Name"])
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def disk_usage(path: str) -> int:
    """Bytes under ``path`` (0 where it cannot be read: a remote engine's mountpoint)."""
    total = 0
    for top, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(top, f)).st_blocks * 512
            except OSError:
                pass
    return total


VERBS: dict[str, Verb] = {"volume": Verb(add_volume, volume)}
