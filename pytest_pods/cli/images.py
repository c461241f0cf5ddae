"""``pods images|import|bootstrap|tag|rmi|save|load|pull|push|build|login|logout``: images and
the registries they come from."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from pytest_pods.cli.output import Progress, ago, each, size, table
from pytest_pods.cli.verb import Command, LocalVerb, Subparsers, Verb
from pytest_pods.client.contract import apply_changes, parse_reference
from pytest_pods.errors import PodsError

if TYPE_CHECKING:
    from pytest_pods.client.contract import ClientAPI
    from pytest_pods.client.local import Client


# -- the local store ------------------------------------------------------------------------------
def add_images(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="list images")
    _add_list_flags(p)


def _add_list_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-a", "--all", action="store_true")  # no hidden intermediate images here: as plain
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="dangling=true|false, label=KEY[=VALUE], reference=PATTERN")
    p.add_argument("--format")
    p.add_argument("reference", nargs="?")


def images(client: ClientAPI, args: argparse.Namespace) -> int:
    wanted = _image_filters(args.filter + ([f"reference={args.reference}"] if args.reference else []))
    found = [i for i in client.images.list() if _image_matches(i, wanted)]
    if args.quiet:
        for i in found:
            print(i.short_id)
        return 0
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    for i in found:
        refs = [parse_reference(t) for t in i.tags if "@" not in t]
        created, shown = ago(i.config.get("created", "")), size(i.size)
        if not refs:
            rows.append(["<none>", "<none>", i.short_id, created, shown])
        for r in refs:
            rows.append([r.familiar_repository, r.tag or "<none>", i.short_id, created, shown])
    if args.format:
        from pytest_pods.cli.output import format_template  # lazy: start latency (only --format)

        keys = ["Repository", "Tag", "ID", "CreatedSince", "Size"]
        for row in rows[1:]:
            print(format_template(args.format, dict(zip(keys, row, strict=True))))
        return 0
    table(rows)
    return 0


def _image_filters(given: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in given:
        key, sep, value = f.partition("=")
        if not sep or key not in ("dangling", "label", "reference", "until", "before", "since"):
            raise PodsError(f"invalid filter '{f}': use dangling=true|false, label=KEY[=VALUE] or reference=PATTERN")
        if key == "dangling" and value not in ("true", "false", "1", "0"):
            raise PodsError(f"invalid filter 'dangling={value}': use true or false")
        if key in ("until", "before", "since"):
            raise PodsError(f"invalid filter '{f}': {key} is not supported by pods; use dangling, label or reference")
        out.setdefault(key, []).append(value)
    return out


def _image_matches(img: Any, wanted: dict[str, list[str]]) -> bool:
    """docker's image filters: ``dangling`` (no name), ``label``, ``reference`` (a glob on the
    familiar ``repository[:tag]``)."""
    import fnmatch  # lazy: start latency (only listings with filters)

    if wanted.get("dangling") and (not img.tags) != (wanted["dangling"][-1] in ("true", "1")):
        return False
    labels = (img.config.get("config") or {}).get("Labels") or {}
    for value in wanted.get("label", []):
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    if wanted.get("reference"):
        names = []
        for t in img.tags:
            if "@" in t:
                continue
            r = parse_reference(t)
            names += [r.familiar_repository, f"{r.familiar_repository}:{r.tag}"]
        if not any(fnmatch.fnmatchcase(n, pat) for pat in wanted["reference"] for n in names):
            return False
    return True


def add_image(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="manage images (ls, prune)")
    ps = p.add_subparsers(dest="action", required=True, parser_class=type(p))
    _add_list_flags(ps.add_parser("ls", help="list images"))
    q = ps.add_parser("prune", help="remove dangling images (-a: every image no container uses)")
    q.add_argument("-a", "--all", action="store_true")
    q.add_argument("-f", "--force", action="store_true")  # docker asks first; we never ask
    q.add_argument("--filter", action="append", default=[])


def image(client: ClientAPI, args: argparse.Namespace) -> int:
    if args.action == "ls":
        return images(client, args)
    lines, reclaimed = prune_images(client, everything=args.all, filters=args.filter)
    if lines:
        print("Deleted Images:\n" + "".join(f"{line}\n" for line in lines))
    print(f"Total reclaimed space: {size(reclaimed)}")
    return 0


def prune_images(client: ClientAPI, *, everything: bool, filters: Sequence[str] = ()) -> tuple[list[str], int]:
    """Remove the images no name points to (``everything``: also named ones no container uses),
    as ``docker image prune``; the lines docker prints and the bytes freed."""
    wanted = _image_filters(list(filters))
    if "dangling" in wanted or "reference" in wanted:
        raise PodsError("image prune: filter by label=KEY[=VALUE] only (dangling follows from -a)")
    used = {c.inspect().get("Image") for c in client.containers.list(all=True)}
    lines, reclaimed = [], 0
    for img in client.images.list():
        if img.id in used or (img.tags and not everything) or not _image_matches(img, wanted):
            continue
        try:
            done = client.images.remove(img.id if not img.tags else img.tags[0], force=False)
            for ref in img.tags[1:]:
                done += client.images.remove(ref, force=False)
        except PodsError:
            continue  # a child image or a container holds it
        lines += done
        reclaimed += img.size
    return lines, reclaimed


def add_import(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="make a one-layer image from a rootfs tarball")
    p.add_argument("tarball")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append", help="ENV/CMD/ENTRYPOINT/WORKDIR/USER in Dockerfile syntax")


def import_changes(changes: list[str]) -> dict[str, Any]:
    """``import -c``: the Dockerfile instructions docker import accepts."""
    base = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    return apply_changes(base, changes, verb="import")


def import_(client: Client, args: argparse.Namespace) -> int:
    tarball = args.tarball
    if tarball == "-":  # docker reads the rootfs from standard input
        import tempfile  # lazy: start latency (only for a tarball on standard input)

        with tempfile.NamedTemporaryFile(dir=client.temp_dir, prefix=client.temp_prefix("import"), delete=False) as tmp:
            while chunk := sys.stdin.buffer.read(1 << 20):
                tmp.write(chunk)
        tarball = tmp.name
    try:
        img = client.images.import_rootfs(tarball, args.reference, import_changes(args.change or []))
    finally:
        if args.tarball == "-":
            os.unlink(tarball)
    print(img.id)
    return 0


def add_bootstrap(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="make busybox or debian:SUITE locally")
    p.add_argument("what", help="busybox | debian[:SUITE]")
    p.add_argument("-t", "--tag")


def bootstrap(args: argparse.Namespace) -> int:
    """A command, not a local verb: rootless, mmdebstrap (unshare mode) runs before the client
    joins the engine's user namespace, and the client imports its tar."""
    from pytest_pods.client.local import Client, bootstrap_debian  # lazy: start latency (only for bootstrap)

    if args.host:
        raise PodsError("pods --host: bootstrap needs the local engine")
    what, _, suite = args.what.partition(":")
    if what == "busybox":
        img = Client(args.root).images.bootstrap_busybox(args.tag or "busybox:latest")
    elif what == "debian":
        img = bootstrap_debian(args.root, suite or "bookworm", args.tag)
    else:
        raise PodsError(f"bootstrap {args.what}: unknown base: use busybox or debian[:SUITE]")
    print(img.id)
    return 0


def add_tag(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="name an image (SOURCE TARGET)")
    p.add_argument("source")
    p.add_argument("target")


def tag(client: ClientAPI, args: argparse.Namespace) -> int:
    client.images.tag(args.source, args.target)
    return 0


def add_rmi(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="remove images")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")


def rmi(client: ClientAPI, args: argparse.Namespace) -> int:
    return each(args.images, lambda name: client.images.remove(name, force=args.force))


def add_save(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="write images to a tar archive (docker or OCI)")
    p.add_argument("-o", "--output", help="default: standard output (not a terminal)")
    p.add_argument("--format", default="docker-archive", choices=["docker-archive", "oci-archive", "oci-dir"])
    p.add_argument("images", nargs="+")


def save(client: Client, args: argparse.Namespace) -> int:
    if args.output in (None, "-"):
        if sys.stdout.isatty():
            raise PodsError("save: cowardly refusing to write an archive to a terminal: give -o FILE")
        client.images.save(args.images, sys.stdout.buffer, format=args.format)
    else:
        client.images.save(args.images, args.output, format=args.format)
    return 0


def add_load(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="read images from a tar archive")
    p.add_argument("-i", "--input", help="default: standard input")
    p.add_argument("-q", "--quiet", action="store_true")


def load(client: Client, args: argparse.Namespace) -> int:
    source: str | BinaryIO = sys.stdin.buffer if args.input in (None, "-") else args.input
    for line in client.images.load(source):
        if not args.quiet:
            print(line)
    return 0


# -- registries -----------------------------------------------------------------------------------
def add_pull(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="pull an image from a registry")
    p.add_argument("--platform")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("reference")


def pull(client: ClientAPI, args: argparse.Namespace) -> int:
    show = Progress(enabled=not args.quiet and sys.stdout.isatty())
    image = client.images.pull(args.reference, platform=args.platform, insecure=args.insecure, progress=show)
    show.done()
    print(f"Digest: {image.manifest_digest}")
    print(f"Status: Downloaded image for {args.reference}")
    return 0


def add_push(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="push an image to a registry (SRC [DEST]: DEST is tagged first)")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")
    p.add_argument("destination", nargs="?")


def push(client: ClientAPI, args: argparse.Namespace) -> int:
    if args.destination:  # docker pushes a local name: SRC DEST tags DEST first, so it stays listed
        client.images.tag(args.image, args.destination)
    show = Progress(enabled=not args.quiet and sys.stdout.isatty())
    digest = client.images.push(args.image, args.destination, insecure=args.insecure, progress=show)
    show.done()
    print(f"{args.destination or args.image}: digest: {digest}")
    return 0


def add_login(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="store credentials for a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("server")


def login(client: Client, args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\n")
    elif args.password is not None:
        password = args.password
    else:
        import getpass  # lazy: start latency (only when the password is typed)

        password = getpass.getpass("Password: ")
    if args.username:
        username = args.username
    elif sys.stdin.isatty():
        username = input("Username: ")
    else:
        raise PodsError(f"login {args.server}: give the user name with -u (standard input is not a terminal)")
    client.login(args.server, username, password, insecure=args.insecure)
    print("Login Succeeded")
    return 0


def add_logout(sub: Subparsers, verb: str) -> None:
    sub.add_parser(verb, help="remove the credentials of a registry").add_argument("server")


def logout(client: Client, args: argparse.Namespace) -> int:
    client.logout(args.server)
    print(f"Removing login credentials for {args.server}")
    return 0


# -- build ----------------------------------------------------------------------------------------
def add_build(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="build an image from a Dockerfile")
    p.add_argument("-t", "--tag", action="append")
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append")
    p.add_argument("--target")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--label", action="append")
    p.add_argument("--network", default="bridge")
    p.add_argument("--progress", choices=["plain", "auto", "tty", "quiet"], default="auto")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--secret", action="append", metavar="id=ID[,src=FILE|env=VAR]",
                   help="a secret for RUN --mount=type=secret (from a file, or a variable; default: $ID)")
    p.add_argument("--ssh", action="append", metavar="ID[=SOCKET]",
                   help="an SSH agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)")
    p.add_argument("--cache-from", action="append", metavar="type=local,src=DIR|type=registry,ref=REF|IMAGE",
                   help="a build cache to read first (a directory or a registry tag), or an image whose steps "
                        "may be reused")
    p.add_argument("--cache-to", metavar="type=local,dest=DIR|type=registry,ref=REF",
                   help="write this build's cache (every step, as mode=max) to a directory or a registry tag")
    p.add_argument("context")


def _cache_place(spec: str, key: str, flag: str) -> tuple[str, str] | None:
    """``type=local,src=DIR`` (``key`` src or dest) as ("local", DIR), ``type=registry,ref=REF``
    as ("registry", REF); None for a plain image name (docker's classic ``--cache-from IMAGE``)."""
    from pytest_pods.errors import InvalidArgumentError  # lazy: loaded already; not this verb's header

    if "=" not in spec:
        return None
    kv = dict(part.partition("=")[::2] for part in spec.split(","))
    kind = kv.get("type", "local")
    if kind == "registry":
        if not kv.get("ref"):
            raise InvalidArgumentError(f"{flag} {spec}: ref=REGISTRY/REPO:TAG is required")
        return "registry", kv["ref"]
    if kind != "local":
        raise InvalidArgumentError(f"{flag} {spec}: type=local (a directory) or type=registry (a tag) is supported")
    path = kv.get(key) or (kv.get("src") if key == "src" else kv.get("dest"))
    if not path:
        raise InvalidArgumentError(f"{flag} {spec}: {key}=DIR is required")
    return "local", os.path.abspath(path)


def _secrets(specs: list[str]) -> dict[str, bytes]:
    """``--secret id=ID[,src=FILE|source=FILE|env=VAR][,type=file|env]`` as docker build takes it."""
    from pathlib import Path  # lazy: only --secret reads a file; not this verb's header

    from pytest_pods.errors import InvalidArgumentError  # lazy: loaded already; not this verb's header

    out: dict[str, bytes] = {}
    for spec in specs:
        kv = dict(part.partition("=")[::2] for part in spec.split(","))
        sid = kv.get("id", "")
        if not sid:
            raise InvalidArgumentError(f"--secret {spec}: id= is required")
        src = kv.get("src") or kv.get("source") or ""
        if kv.get("type") == "env" and src and not kv.get("env"):
            kv["env"] = src
            src = ""
        if src:
            try:
                out[sid] = Path(src).read_bytes()
            except OSError as exc:
                raise InvalidArgumentError(f"--secret {spec}: read {src}: {exc.strerror}") from None
            continue
        var = kv.get("env") or sid
        if var not in os.environ:
            raise InvalidArgumentError(f"--secret {spec}: no src= given and ${var} is not set")
        out[sid] = os.environ[var].encode()
    return out


def build(client: ClientAPI, args: argparse.Namespace) -> int:
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
    extra: dict[str, Any] = {}
    if args.secret:
        extra["secrets"] = _secrets(args.secret)
    for spec in args.ssh or []:
        sid, sep, sock = spec.partition("=")
        sock = sock if sep else os.environ.get("SSH_AUTH_SOCK", "")
        if not sock or "," in sock:
            from pytest_pods.errors import InvalidArgumentError  # lazy: loaded already; not this verb's header

            raise InvalidArgumentError(f"--ssh {spec}: name an agent socket (ID=SOCKET) or set SSH_AUTH_SOCK"
                                       if not sock else f"--ssh {spec}: one agent socket per id (keys are not read)")
        extra.setdefault("ssh", {})[sid or "default"] = os.path.abspath(sock)
    for spec in args.cache_from or []:
        place = _cache_place(spec, "src", "--cache-from")
        if place is None:
            extra.setdefault("cache_from", []).append(spec)  # an image: docker's classic --cache-from
        else:
            extra.setdefault("cache_import" if place[0] == "local" else "cache_import_refs", []).append(place[1])
    if args.cache_to:
        place = _cache_place(args.cache_to, "dest", "--cache-to")
        if place is None:
            from pytest_pods.errors import InvalidArgumentError  # lazy: loaded already; not this verb's header

            raise InvalidArgumentError(f"--cache-to {args.cache_to}: expected type=local,dest=DIR or "
                                       "type=registry,ref=REF")
        extra["cache_export" if place[0] == "local" else "cache_export_ref"] = place[1]
    if extra:
        import inspect  # lazy: only with these flags, to refuse a client that cannot carry them

        from pytest_pods.errors import InvalidArgumentError  # lazy: loaded already; not this verb's header

        flags = {"secrets": "--secret", "ssh": "--ssh", "cache_from": "--cache-from", "cache_import": "--cache-from",
                 "cache_export": "--cache-to", "cache_import_refs": "--cache-from", "cache_export_ref": "--cache-to"}
        for name in extra:
            if name not in inspect.signature(client.images.build).parameters:
                raise InvalidArgumentError(f"{flags[name]} needs the local engine (pods does not send it over "
                                           "the Docker API)")
    image = client.images.build(args.context, tag=args.tag or [], dockerfile=dockerfile,
                                buildargs=build_args, target=args.target, nocache=args.no_cache,
                                labels=dict(lbl.partition("=")[::2] for lbl in args.label or []),
                                network=args.network, progress=progress, **extra)
    if quiet:
        print(image.id)
    return 0


VERBS: dict[str, Verb | LocalVerb | Command] = {
    "import": LocalVerb(add_import, import_),
    "bootstrap": Command(add_bootstrap, bootstrap),
    "images": Verb(add_images, images),
    "image": Verb(add_image, image),
    "tag": Verb(add_tag, tag),
    "rmi": Verb(add_rmi, rmi),
    "save": LocalVerb(add_save, save),
    "load": LocalVerb(add_load, load),
    "pull": Verb(add_pull, pull),
    "push": Verb(add_push, push),
    "login": LocalVerb(add_login, login),
    "logout": LocalVerb(add_logout, logout),
    "build": Verb(add_build, build),
}
