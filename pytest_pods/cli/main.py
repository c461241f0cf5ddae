"""``pods``: the command line, with Docker's verbs, flags and exit codes.

The only place that prints and exits. Exit codes as docker gives them: the container's own code,
125 for an engine error (bad flag, unknown image, name in use), 126 when the command cannot be
invoked, 127 when it is not found.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any, NoReturn

from pytest_pods.client.local import Client, container_inspect, image_inspect
from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.engine.runtime.spec import Bind, parse_bytes, parse_signal
from pytest_pods.errors import (
    ContainerNotFoundError,
    ContainerStartError,
    ImageNotFoundError,
    InvalidArgumentError,
    PodsError,
)

ENGINE_ERROR = 125


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 125 (as docker does) with one line naming the problem."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}. See '{self.prog} --help'.\n")
        sys.exit(ENGINE_ERROR)


def _ago(iso: str) -> str:
    from datetime import datetime

    try:
        t = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return ""
    d = max(0, time.time() - t)
    for unit, secs in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if d >= secs * (2 if unit != "days" else 1):
            return f"{int(d // secs)} {unit} ago"
    return "Less than a second ago" if d < 1 else f"{int(d)} seconds ago"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.3g}TB"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _format(template: str, doc: Any) -> str:
    """A small subset of Go templates: ``{{.A.B}}`` and ``{{json .A}}``."""

    def value(path: str) -> Any:
        cur = doc
        for part in [p for p in path.strip().lstrip(".").split(".") if p]:
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur

    def repl(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(value(expr[5:]))
        v = value(expr)
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "<no value>"
        return v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)

    return re.sub(r"\{\{(.*?)\}\}", repl, template)


def _env(args: argparse.Namespace) -> list[str]:
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


def _create_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if args.memory is not None:
        parse_bytes(args.memory)
    return dict(
        entrypoint=([args.entrypoint] if args.entrypoint else [""]) if args.entrypoint is not None else None,
        name=args.name, environment=_env(args), working_dir=args.workdir, user=args.user,
        hostname=args.hostname, volumes=[Bind.parse(v) for v in args.volume or []], tmpfs=args.tmpfs or [],
        memory=args.memory, memory_swap=args.memory_swap, pids_limit=args.pids_limit, cpus=args.cpus,
        network=args.network, read_only=args.read_only, init=args.init,
        network_aliases=args.network_alias or [], ports=args.publish or [], publish_all_ports=args.publish_all,
        labels=dict(lbl.partition("=")[::2] for lbl in args.label or []), stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout, no_new_privileges=_no_new_privs(args.security_opt or []),
        cap_add=args.cap_add or [], cap_drop=args.cap_drop or [], stdin_open=args.interactive,
    )


def _no_new_privs(opts: list[str]) -> bool:
    value = True
    for o in opts:
        key, _, v = o.replace(":", "=", 1).partition("=")
        if key != "no-new-privileges":
            raise PodsError(f"invalid --security-opt {o!r}: only no-new-privileges[=true|false] is supported")
        value = v.lower() not in ("false", "0")
    return value


def _cpus(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid argument {text!r} for --cpus: expected a number such as 0.5") from None


def _memory(text: str) -> str:
    try:
        parse_bytes(text)
    except PodsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append")
    p.add_argument("--env-file", action="append")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument("-v", "--volume", action="append")
    p.add_argument("--tmpfs", action="append")
    p.add_argument("-m", "--memory", type=_memory)
    p.add_argument("--memory-swap", type=str)
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--cpus", type=_cpus)
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
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


class _Skipped:
    """Stands for the parser of a verb not being built: takes any call, does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


_SKIP = _Skipped()
VERBS = ("pull", "push", "login", "logout", "build", "import", "bootstrap", "images", "tag", "rmi", "commit", "inspect", "save", "load", "run", "create", "start",
         "ps", "logs", "exec", "wait", "stop", "kill", "rm", "stats", "system", "network", "port", "daemon")


REMOTE_VERBS = ("run", "create", "start", "ps", "logs", "exec", "wait", "stop", "kill", "rm", "pull", "push",
                "build", "tag", "rmi", "images")


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb, when the only things before it are ``--root X``/``--host X``; else None
    (build everything)."""
    args = list(argv)
    while args and args[0] in ("--root", "--host"):
        args = args[2:]
    while args and args[0].startswith(("--root=", "--host=")):
        args = args[1:]
    return args[0] if args and args[0] in VERBS else None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that verb's (building all of them costs ~3 ms a run)."""
    parser = _Parser(prog="pods", description="pytest-pods container engine")
    parser.add_argument("--root", help="state root (default: $PODS_ROOT or /var/lib/pytest-pods)")
    parser.add_argument("--host", default=os.environ.get("PODS_HOST") or None,
                        help="a remote engine: unix:///PATH or tcp://HOST:PORT ($PODS_HOST; 'docker' for $DOCKER_HOST)")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def add(name: str, **kw: Any) -> Any:
        return sub.add_parser(name, **kw) if only in (None, name) else _SKIP

    p = add("import", help="make a one-layer image from a rootfs tarball")
    p.add_argument("tarball")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append", help="ENV/CMD/ENTRYPOINT/WORKDIR/USER in Dockerfile syntax")
    p = add("bootstrap", help="make busybox or debian:SUITE locally")
    p.add_argument("what", help="busybox | debian[:SUITE]")
    p.add_argument("-t", "--tag")
    add("images", help="list images").add_argument("-q", "--quiet", action="store_true")
    p = add("tag")
    p.add_argument("source")
    p.add_argument("target")
    p = add("rmi")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")
    p = add("commit", help="make an image of a container's changes")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-c", "--change", action="append", default=[], help="CMD/ENTRYPOINT/ENV/EXPOSE/LABEL/... to set")
    p.add_argument("-p", "--pause", default="true", choices=["true", "false"],
                   help="freeze a running container while its changes are read (default true)")
    p.add_argument("--stop", action="store_true", help="stop the container cleanly first (consistent data files)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    p = add("inspect")
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=["container", "image", "network"])
    p.add_argument("names", nargs="+")
    p = add("save")
    p.add_argument("-o", "--output", help="default: standard output (not a terminal)")
    p.add_argument("--format", default="docker-archive", choices=["docker-archive", "oci-archive", "oci-dir"])
    p.add_argument("images", nargs="+")
    p = add("load")
    p.add_argument("-i", "--input", help="default: standard input")
    p.add_argument("-q", "--quiet", action="store_true")

    for verb in ("run", "create"):
        p = add(verb, add_help=False)
        p.add_argument("--help", action="help")
        if verb == "run":
            p.add_argument("-d", "--detach", action="store_true")
        _add_create_flags(p)
    p = add("start")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")
    p = add("ps")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p = add("logs")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("container")
    p = add("exec")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = add("wait")
    p.add_argument("containers", nargs="+")
    p = add("stop")
    p.add_argument("-t", "--time", "--timeout", dest="time", type=int)
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+")
    p = add("kill")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")
    p = add("rm")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="+")
    p = add("stats")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("containers", nargs="+")
    p = add("pull")
    p.add_argument("--platform")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("reference")
    p = add("push")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")
    p.add_argument("destination", nargs="?")
    p = add("login")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("server")
    p = add("logout")
    p.add_argument("server")
    p = add("build")
    p.add_argument("-t", "--tag", action="append")
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append")
    p.add_argument("--target")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--label", action="append")
    p.add_argument("--network", default="bridge")
    p.add_argument("--progress", choices=["plain", "auto", "tty", "quiet"], default="auto")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("context")
    p = add("daemon", help="serve the Docker Engine API on a unix socket (or TCP with TLS)")
    p.add_argument("--socket", help="unix socket path (default /run/pytest-pods/pods.sock)")
    p.add_argument("--tcp", metavar="ADDR", help="HOST:PORT, only with --tlscert/--tlskey/--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--tlscacert", help="CA that signs the client certificates (they are required)")
    p.add_argument("--log-file")
    p = add("port")
    p.add_argument("container")
    p.add_argument("private", nargs="?", help="PORT[/PROTO]")
    p = add("network")
    ns = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
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
    p = add("system")
    ss = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q = ss.add_parser("prune")
    q.add_argument("-f", "--force", action="store_true")
    q.add_argument("-a", "--all", action="store_true")
    ss.add_parser("reap")
    ss.add_parser("info")
    return parser


def _changes(changes: list[str]) -> dict[str, Any]:
    """``import -c``: the Dockerfile instructions docker import accepts."""
    from pytest_pods.engine.runtime.commit import apply_changes

    base = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    return apply_changes(base, changes, verb="import")


def _run(client: Client, args: argparse.Namespace) -> int:
    kwargs = _create_kwargs(args)
    container = client.containers.create(args.image, args.command or None, auto_remove=args.rm, **kwargs)
    if args.verb == "create":
        print(container.id)
        return 0
    stdin = 0 if args.interactive else None
    try:
        handle = client.runtime.start(container.id, attach=None if args.detach else (1, 2),
                                      stdin=None if args.detach else stdin)
    except ContainerStartError:
        # docker keeps a "Created" container after a failed start; a run that failed leaves
        # nothing here (one clear error, nothing half-made), as `pods create` + `start` would not
        with contextlib.suppress(PodsError):
            client.runtime.remove(container.id, force=True)
        raise
    if args.detach:
        handle.close()
        print(container.id)
        return 0

    def forward(sig: int, _frame: object) -> None:
        try:
            client.runtime.kill(container.id, sig)
        except PodsError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    return handle.wait()


def _print_logs(client: Client, args: argparse.Namespace) -> int:
    tail = None if args.tail == "all" else int(args.tail)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, ts, line in client.runtime.logs(args.container, follow=args.follow, tail=tail):
        target = out if stream == "stdout" else err
        if args.timestamps:
            target.write(ts.encode() + b" ")
        target.write(line)
        if args.follow:
            target.flush()
    return 0


def _inspect(client: Client, args: argparse.Namespace) -> int:
    docs, code = [], 0
    for name in args.names:
        doc = None
        if args.type in (None, "container"):
            try:
                doc = container_inspect(client, name)
            except ContainerNotFoundError:
                pass
        if doc is None and args.type in (None, "image"):
            try:
                doc = image_inspect(client.images.get(name), client.store)
                doc.pop("_Names", None)
            except (ImageNotFoundError, InvalidArgumentError):
                pass
        if doc is None and args.type in (None, "network") and (client.root / "networks").is_dir():
            from pytest_pods.client.local import network_inspect
            from pytest_pods.errors import NetworkNotFoundError

            try:
                doc = network_inspect(client, name)
            except NetworkNotFoundError:
                pass
        if doc is None:
            print(f"Error: No such object: {name}", file=sys.stderr)
            code = 1
            continue
        docs.append(doc)
    _print_docs(docs, args.format)
    return code


def _print_docs(docs: list[dict[str, Any]], template: str | None) -> None:
    """``inspect`` output: a JSON array, or one line per document through ``--format``."""
    if template:
        for d in docs:
            print(_format(template, d))
    else:
        print(json.dumps(docs, indent=4))


def _each(names: Sequence[str], action: Any) -> int:
    """Apply ``action`` to every name, as docker does: report each failure, go on, exit 1."""
    code = 0
    for name in names:
        try:
            out = action(name)
            for line in out if isinstance(out, list) else [out]:
                print(line)
        except PodsError as exc:
            print(f"Error response from daemon: {exc}", file=sys.stderr)
            code = 1
    return code


class _Progress:
    """Per-layer and total progress of a pull or push, redrawn in place on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.layers: dict[str, tuple[str, int, int]] = {}
        self.drawn = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled or "id" not in event:
            return
        detail = event.get("progressDetail") or {}
        self.layers[event["id"]] = (event.get("status", ""), int(detail.get("current") or 0),
                                    int(detail.get("total") or 0))
        self._draw()

    def _draw(self) -> None:
        out = sys.stdout
        if self.drawn:
            out.write(f"\x1b[{self.drawn}F")
        lines = []
        for ident, (status, cur, tot) in self.layers.items():
            bar = f" {_size(cur)}/{_size(tot)}" if tot else ""
            lines.append(f"{ident}: {status}{bar}")
        done = sum(c for _, c, _ in self.layers.values())
        total = sum(t for _, _, t in self.layers.values())
        lines.append(f"total: {_size(done)}/{_size(total)}" if total else "")
        for line in lines:
            out.write("\x1b[2K" + line + "\n")
        self.drawn = len(lines)
        out.flush()

    def done(self) -> None:
        self.drawn = 0


def _network(client: Client, args: argparse.Namespace) -> int:
    from pytest_pods.client.local import network_inspect

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
        _table(rows)
    elif a == "inspect":
        docs, code = [], 0
        for name in args.names:
            try:
                docs.append(network_inspect(client, name))
            except PodsError as exc:
                print(f"Error response from daemon: {exc}", file=sys.stderr)
                code = 1
        _print_docs(docs, args.format)
        return code
    elif a == "rm":
        return _each(args.names, client.networks.remove)
    elif a == "connect":
        client.networks.connect(args.network, args.container, args.alias or [])
    elif a == "disconnect":
        client.networks.disconnect(args.network, args.container)
    return 0


def dispatch(client: Client, args: argparse.Namespace) -> int:
    v = args.verb
    if v == "import":
        tarball = args.tarball
        if tarball == "-":  # docker reads the rootfs from standard input
            import tempfile

            with tempfile.NamedTemporaryFile(dir=client.store.tmp, prefix="import-", delete=False) as tmp:
                while chunk := sys.stdin.buffer.read(1 << 20):
                    tmp.write(chunk)
            tarball = tmp.name
        try:
            img = client.images.import_rootfs(tarball, args.reference, _changes(args.change or []))
        finally:
            if args.tarball == "-":
                os.unlink(tarball)
        print(img.id)
    elif v == "bootstrap":
        what, _, suite = args.what.partition(":")
        if what == "busybox":
            img = client.images.bootstrap_busybox(args.tag or "busybox:latest")
        elif what == "debian":
            img = client.images.bootstrap_debian(suite or "bookworm", args.tag)
        else:
            raise PodsError(f"bootstrap {args.what}: unknown base: use busybox or debian[:SUITE]")
        print(img.id)
    elif v == "images":
        images = client.images.list()
        if args.quiet:
            for i in images:
                print(i.short_id)
            return 0
        rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
        for i in images:
            refs = [parse_reference(t) for t in i.tags if "@" not in t] or [None]
            for r in refs:
                rows.append([r.familiar_repository if r else "<none>", (r.tag or "<none>") if r else "<none>",
                             i.short_id, _ago(i.config.get("created", "")), _size(i.size)])
        _table(rows)
    elif v == "tag":
        client.images.tag(args.source, args.target)
    elif v == "rmi":
        return _each(args.images, lambda name: client.images.remove(name, force=args.force))
    elif v == "commit":
        if args.repository:
            from pytest_pods.engine.image.reference import parse_reference as check_reference

            check_reference(args.repository)  # a bad name fails before any work
        img = client.containers.get(args.container).commit(
            args.repository, message=args.message, author=args.author, changes=args.change,
            pause=args.pause == "true", stop=args.stop)
        print(img.id)
    elif v == "inspect":
        return _inspect(client, args)
    elif v == "save":
        if args.output in (None, "-"):
            if sys.stdout.isatty():
                raise PodsError("save: cowardly refusing to write an archive to a terminal: give -o FILE")
            from pytest_pods.engine.image import archive

            archive.save(client.store, list(args.images), sys.stdout.buffer, format=args.format)
        else:
            client.images.save(args.images, args.output, format=args.format)
    elif v == "load":
        source: Any = sys.stdin.buffer if args.input in (None, "-") else args.input
        from pytest_pods.engine.image import archive

        for line in archive.load(client.store, source):
            if not args.quiet:
                print(line)
    elif v in ("run", "create"):
        return _run(client, args)
    elif v == "start":
        for ref in args.containers:
            handle = client.runtime.start(ref, attach=(1, 2) if args.attach else None)
            if args.attach:
                return handle.wait()
            handle.close()
            print(ref)
    elif v == "ps":
        items = client.runtime.list(all=args.all)
        if args.quiet:
            for st in items:
                print(st["id"] if args.no_trunc else st["id"][:12])
            return 0
        rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]]
        for st in items:
            doc = (container_inspect(client, st["id"]) if isinstance(client, Client)
                   else client.containers.get(st["id"]).inspect())
            cmd = " ".join([doc["Path"], *doc["Args"]])
            if not args.no_trunc and len(cmd) > 20:
                cmd = cmd[:19] + "…"
            status = {"running": f"Up {_ago(st['started_at']).removesuffix(' ago')}",
                      "created": "Created"}.get(st["status"], f"Exited ({st['exit_code']}) {_ago(st['finished_at'])}")
            ports = ", ".join(f"{p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['proto']}"
                              for p in (st.get("ports") or []) if st["status"] == "running")
            rows.append([st["id"] if args.no_trunc else st["id"][:12], st["image_name"],
                         f'"{cmd}"'.replace("\n", " "), _ago(st["created"]), status, ports, st["name"]])
        _table(rows)
    elif v == "logs":
        return _print_logs(client, args)
    elif v == "exec":
        if not args.command:
            raise PodsError("exec: no command given: pods exec CONTAINER COMMAND [ARG...]")
        null = os.open("/dev/null", os.O_RDONLY)
        stdio = (0 if args.interactive else null, 1, 2)
        result = client.runtime.exec(args.container, args.command, env=args.env, user=args.user,
                                     workdir=args.workdir, stdio=stdio)
        return result.exit_code
    elif v == "wait":
        return _each(args.containers, client.runtime.wait)
    elif v == "stop":
        sig = parse_signal(args.signal) if args.signal else None
        return _each(args.containers, lambda ref: (client.runtime.stop(ref, args.time, stop_signal=sig), ref)[1])
    elif v == "kill":
        return _each(args.containers, lambda ref: (client.runtime.kill(ref, args.signal), ref)[1])
    elif v == "rm":
        return _each(args.containers, lambda ref: (client.runtime.remove(ref, force=args.force), ref)[1])
    elif v == "stats":
        rows = [["CONTAINER ID", "NAME", "MEM USAGE / LIMIT", "PIDS", "CPU TIME"]]
        for ref in args.containers:
            st = client.runtime.state(ref)
            s = client.runtime.stats(ref)
            limit = _size(s["memory_limit"]) if s["memory_limit"] else "unlimited"
            rows.append([st["id"][:12], st["name"], f"{_size(s['memory_usage'])} / {limit}", str(s["pids"]),
                         f"{s['cpu_usage_ns'] / 1e9:.2f}s"])
        _table(rows)
    elif v in ("pull", "push"):
        show = _Progress(enabled=not args.quiet and sys.stdout.isatty())
        if v == "pull":
            image = client.images.pull(args.reference, platform=args.platform, insecure=args.insecure,
                                       progress=show)
            show.done()
            print(f"Digest: {image.manifest_digest}")
            print(f"Status: Downloaded image for {args.reference}")
        else:
            digest = client.images.push(args.image, args.destination, insecure=args.insecure, progress=show)
            show.done()
            print(f"{args.destination or args.image}: digest: {digest}")
    elif v == "login":
        if args.password_stdin:
            password = sys.stdin.read().rstrip("\n")
        elif args.password is not None:
            password = args.password
        else:
            import getpass

            password = getpass.getpass("Password: ")
        if args.username:
            username = args.username
        elif sys.stdin.isatty():
            username = input("Username: ")
        else:
            raise PodsError(f"login {args.server}: give the user name with -u (standard input is not a terminal)")
        client.login(args.server, username, password, insecure=args.insecure)
        print("Login Succeeded")
    elif v == "logout":
        client.logout(args.server)
        print(f"Removing login credentials for {args.server}")
    elif v == "build":
        build_args = {}
        for a in args.build_arg or []:
            k, sep, val = a.partition("=")
            if not sep:
                val = os.environ.get(k, "")  # docker: --build-arg NAME takes the host's value
            build_args[k] = val
        quiet = args.quiet or args.progress == "quiet"

        def progress(line: str) -> None:
            if not quiet:
                print(line, flush=True)

        # docker resolves -f against the working directory (the API's dockerfile= is in the context)
        dockerfile = os.path.abspath(args.file) if args.file else None
        image = client.images.build(args.context, tag=args.tag or [], dockerfile=dockerfile,
                                    buildargs=build_args, target=args.target, nocache=args.no_cache,
                                    labels=dict(lbl.partition("=")[::2] for lbl in args.label or []),
                                    network=args.network, progress=progress)
        if quiet:
            print(image.id)
    elif v == "port":
        st = client.runtime.state(args.container)
        shown = 0
        for p in st.get("ports") or [] if st["status"] == "running" else []:
            key = f"{p['container_port']}/{p['proto']}"
            if args.private and args.private not in (key, str(p["container_port"])):
                continue
            print(f"{key} -> {p['host_ip']}:{p['host_port']}" if not args.private else f"{p['host_ip']}:{p['host_port']}")
            shown += 1
        if args.private and not shown:
            raise PodsError(f"No public port '{args.private}' published for {st['name']}")
    elif v == "network":
        return _network(client, args)
    elif v == "system":
        if args.action == "prune":
            if not args.force:
                print("WARNING! This will remove all stopped containers and unused blobs. Use -f to do so.", file=sys.stderr)
                return 1
            # stopped containers, unused blobs, then what cleanup() releases (idle networks)
            for line in client.prune() + client.cleanup():  # and idle networks, as docker prunes
                print(line)
        elif args.action == "reap":
            for line in client.reap():
                print(line)
        elif args.action == "info":
            from pytest_pods.engine.runtime.cgroups.manager import cgroup_version

            print(json.dumps({"Root": str(client.root), "CgroupVersion": cgroup_version(),
                              "Images": len(client.images.list()),
                              "Containers": len(client.runtime.list(all=True))}, indent=2))
    return 0


def _daemon(args: argparse.Namespace) -> int:
    from pytest_pods.daemon.server import serve
    from pytest_pods.errors import DaemonError

    tls = None
    if any((args.tlscert, args.tlskey, args.tlscacert)):
        if not all((args.tlscert, args.tlskey, args.tlscacert)):
            print("pods: daemon: --tlscert, --tlskey and --tlscacert go together", file=sys.stderr)
            return ENGINE_ERROR
        tls = (args.tlscert, args.tlskey, args.tlscacert)
    try:
        serve(args.root, args.socket, args.tcp, tls, log_file=args.log_file)
    except (DaemonError, PodsError) as exc:
        print(f"pods: daemon: {exc}", file=sys.stderr)
        return ENGINE_ERROR
    return 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_verb_of(argv)).parse_args(argv)
    if args.verb == "daemon":
        sys.exit(_daemon(args))
    try:
        if args.host:
            if args.verb not in REMOTE_VERBS:
                raise PodsError(f"pods --host: {args.verb} needs the local engine (remote: {', '.join(REMOTE_VERBS)})")
            from pytest_pods.client.remote import RemoteClient

            client = RemoteClient(args.host)  # type: ignore[assignment]
        else:
            client = Client(args.root)
        code = dispatch(client, args)
    except ContainerStartError as exc:
        print(f"pods: {exc}", file=sys.stderr)
        code = exc.exit_code
    except PodsError as exc:
        print(f"pods: {exc}", file=sys.stderr)
        code = ENGINE_ERROR
    except PermissionError as exc:
        print(f"pods: {exc.strerror}: {exc.filename} (the engine needs root)", file=sys.stderr)
        code = ENGINE_ERROR
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    sys.stdout.flush()
    sys.exit(code)

