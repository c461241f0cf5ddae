"""``pods``: the command line, with Docker's verbs, flags and exit codes.

The only place that prints and exits. Exit codes as docker gives them: the container's own code,
125 for an engine error (bad flag, unknown image, name in use), 126 when the command cannot be
invoked, 127 when it is not found.

Each resource has a module (containers, images, networks, system) with a table of its verbs: the
function that adds a verb's flags and the one that runs it. A run imports only its verb's module
and builds only its verb's parser.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_pods.client.local import Client
from pytest_pods.errors import ContainerStartError, PodsError

if TYPE_CHECKING:
    from pytest_pods.cli.verb import AnyVerb

# docker's exit code for an error of the engine (bad flag, unknown image, name in use)
ENGINE_ERROR = 125


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 125 (as docker does) with one line naming the problem,
    and no abbreviation of a long option is taken for it (``--nam`` is not ``--name``)."""

    verbs: argparse._SubParsersAction[Parser]  # the top parser's: each verb's own parser, by name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}. See '{self.prog} --help'.\n")
        sys.exit(ENGINE_ERROR)


def unknown_flag(parser: Parser, verb: str, extra: Sequence[str]) -> NoReturn:
    """What a verb did not take: an unknown flag named with the closest one the verb has, and
    that verb's help (docker's ``unknown flag: --x``, ``See 'docker VERB --help'``)."""
    import difflib  # lazy: start latency (only a usage error)

    sub = parser.verbs.choices[verb]
    flags = [a for a in extra if a.startswith("-")]
    if not flags:
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    name = flags[0].partition("=")[0]
    known = [o for action in sub._actions for o in action.option_strings]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    sub.error(f"unknown flag: {name}{hint}")


# verb -> the module of its resource, in the order `pods --help` lists them
VERBS: dict[str, str] = {
    "import": "images", "bootstrap": "images", "images": "images", "tag": "images", "rmi": "images",
    "commit": "containers", "inspect": "system", "save": "images", "load": "images",
    "run": "containers", "create": "containers", "start": "containers", "ps": "containers",
    "logs": "containers", "exec": "containers", "wait": "containers", "stop": "containers",
    "kill": "containers", "rm": "containers", "stats": "containers", "pause": "containers",
    "unpause": "containers", "cp": "containers", "rename": "containers", "update": "containers", "diff": "containers",
    "top": "containers", "export": "containers", "events": "system", "attach": "containers",
    "pull": "images", "push": "images", "login": "images", "logout": "images", "build": "images",
    "daemon": "system", "port": "containers", "network": "networks", "system": "system",
    "info": "system", "volume": "volumes", "image": "images", "resident": "resident",
}

# the verbs that work with --host (a remote engine): their modules list them as Verb, the others
# as LocalVerb or Command
REMOTE_VERBS = ("run", "create", "start", "ps", "logs", "exec", "wait", "stop", "kill", "rm", "pull", "push",
                "build", "tag", "rmi", "images", "image", "volume", "pause", "unpause", "rename", "update", "diff", "cp",
                "stats", "top", "export", "events")


def verbs_of(resource: str) -> Mapping[str, AnyVerb]:
    """The verb table of one resource's module, imported only when one of its verbs runs."""
    if resource == "containers":
        from pytest_pods.cli import containers  # lazy: start latency (one resource's module per run)

        return containers.VERBS
    if resource == "images":
        from pytest_pods.cli import images  # lazy: start latency (one resource's module per run)

        return images.VERBS
    if resource == "networks":
        from pytest_pods.cli import networks  # lazy: start latency (one resource's module per run)

        return networks.VERBS
    if resource == "volumes":
        from pytest_pods.cli import volumes  # lazy: start latency (one resource's module per run)

        return volumes.VERBS
    if resource == "resident":
        from pytest_pods.cli import resident  # lazy: start latency (one resource's module per run)

        return resident.verb_table()
    from pytest_pods.cli import system  # lazy: start latency (one resource's module per run)

    return system.VERBS


def verb_of(argv: Sequence[str]) -> str | None:
    """The verb, when the only things before it are ``--root X``/``--host X``; else None
    (build everything)."""
    args = list(argv)
    while args and args[0] in ("--root", "--host"):
        args = args[2:]
    while args and args[0].startswith(("--root=", "--host=")):
        args = args[1:]
    return args[0] if args and args[0] in VERBS else None


def build_parser(only: str | None = None) -> Parser:
    """The parser; with ``only``, just that verb's (building all of them costs ~3 ms a run)."""
    parser = Parser(prog="pods", description="pytest-pods container engine")
    parser.add_argument("--root", help="state root, the same default as the plugin's --pods-root: $PODS_ROOT, else "
                        "/var/lib/pytest-pods as root, $XDG_DATA_HOME/pytest-pods (~/.local/share/pytest-pods) "
                        "as an ordinary user")
    # no default here: a parser the resident helper built ahead must not keep its own $PODS_HOST
    parser.add_argument("--host",
                        help="a remote engine: unix:///PATH or tcp://HOST:PORT ($PODS_HOST; 'docker' for $DOCKER_HOST)")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=Parser)
    parser.verbs = sub
    for verb, resource in VERBS.items():
        if only in (None, verb):
            verbs_of(resource)[verb].add(sub, verb)
    return parser


def main(argv: Sequence[str] | None = None, parser_for: Callable[[str | None], Parser | None] | None = None) -> NoReturn:
    """``pods ARGV``; ``parser_for(verb)`` may hand a parser built ahead (the resident helper's)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    only = verb_of(argv)
    parser = (parser_for(only) if parser_for else None) or build_parser(only)
    args, extra = parser.parse_known_args(argv)
    if args.host is None:
        args.host = os.environ.get("PODS_HOST") or None
    if extra:
        unknown_flag(parser, args.verb, extra)
    verb = verbs_of(VERBS[args.verb])[args.verb]
    try:
        if verb.kind == "command":
            code = verb.run(args)
        elif verb.kind == "local":
            if args.host:
                print(f"pods: pods --host: {args.verb} needs the local engine (remote: {', '.join(REMOTE_VERBS)})",
                      file=sys.stderr)
                sys.exit(ENGINE_ERROR)
            code = verb.run(Client(args.root, short_lived=True), args)
        elif args.host:
            from pytest_pods.cli import output  # lazy: start latency (one resource's module per run)
            from pytest_pods.client.remote import RemoteClient  # lazy: start latency (http.client, ssl)

            output.REMOTE = True
            code = verb.run(RemoteClient(args.host), args)
        else:
            code = verb.run(Client(args.root, short_lived=True), args)
    except ContainerStartError as exc:
        print(f"pods: {exc}", file=sys.stderr)
        code = exc.exit_code
    except PodsError as exc:  # with --host, the daemon's answer (docker's prefix says so)
        print(f"{'Error response from daemon: ' if args.host else 'pods: '}{exc}", file=sys.stderr)
        code = ENGINE_ERROR
    except PermissionError as exc:
        print(f"pods: {exc.strerror}: {exc.filename}", file=sys.stderr)
        code = ENGINE_ERROR
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.stdout.flush()
    sys.exit(code)
