"""``pods cp``: files between a container (running, created or stopped) and the host, both ways,
with docker's rules for what lands where, ``-a``, ``-L`` and ``-`` for a tar on stdin/stdout."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tarfile
import tempfile
from typing import IO, TYPE_CHECKING, Any, Protocol

from pytest_pods.errors import InvalidArgumentError, NotFoundError, PodsError

if TYPE_CHECKING:
    from pytest_pods.cli.verb import Subparsers


class Archives(Protocol):
    """What ``cp`` needs of a client's containers (the local engine's and a remote one's)."""

    def path_stat(self, ref: str, path: str) -> os.stat_result | None: ...
    def get_archive(self, ref: str, path: str, out: IO[bytes], arcname: str | None = None) -> None: ...
    def put_archive(self, ref: str, path: str, src: IO[bytes]) -> None: ...


def add_cp(sub: Subparsers, verb: str) -> None:
    p = sub.add_parser(verb, help="copy files between a container and the host",
                       usage="pods cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-\n       "
                             "pods cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH",
                       description="Copy files/folders between a container and the local filesystem. "
                       "'-' as SRC_PATH reads a tar archive from stdin and extracts it to a directory "
                       "destination in the container; '-' as DEST_PATH streams a tar archive of the "
                       "container's source to stdout.")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output during copy")
    p.add_argument("source")
    p.add_argument("destination")


def split(arg: str) -> tuple[str | None, str]:
    """``CTR:PATH`` -> (CTR, PATH); a local path (absolute, ``.``-relative or no colon before a
    slash) -> (None, path), as docker splits them."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    ref, _, path = arg.partition(":")
    if "/" in ref:
        return None, arg
    return ref, path


def cp(client: Any, args: argparse.Namespace) -> int:
    (sref, spath), (dref, dpath) = split(args.source), split(args.destination)
    if sref and dref:
        raise PodsError("copying between containers is not supported")
    if not sref and not dref:
        raise PodsError("must specify at least one container source")
    containers: Archives = client.containers
    if sref:
        ref = client.containers.get(sref).id  # a missing container's error first, as docker's
        copy_out(containers, ref, sref, spath, dpath, keep_owner=args.archive, follow=args.follow_link)
    else:
        assert dref is not None
        ref = client.containers.get(dref).id
        copy_in(containers, ref, dref, spath, dpath, keep_owner=args.archive, follow=args.follow_link)
    return 0


def _abs(path: str) -> str:
    return path if path.startswith("/") else "/" + path  # docker: relative to the container's /


def copy_in(containers: Archives, ref: str, name: str, src: str, dest: str, *, keep_owner: bool,
            follow: bool) -> None:
    dest = _abs(dest)
    dst = containers.path_stat(ref, dest)
    if src == "-":
        if dst is None or not stat.S_ISDIR(dst.st_mode):
            raise InvalidArgumentError(f'destination "{name}:{dest}" must be a directory')
        try:
            containers.put_archive(ref, dest, sys.stdin.buffer)
        except tarfile.TarError as exc:
            raise InvalidArgumentError(f"copy into {dest}: not a tar archive: {exc}") from None
        return
    try:
        st = os.stat(src) if follow else os.lstat(src)
    except OSError as exc:
        raise NotFoundError(f"lstat {os.path.abspath(src)}: {(exc.strerror or '').lower()}") from None
    contents = src.endswith(("/.", "/./")) or src == "."
    if dst is not None and stat.S_ISDIR(dst.st_mode):
        target, arcname = dest, "." if contents and stat.S_ISDIR(st.st_mode) else \
            os.path.basename(os.path.normpath(os.path.abspath(src)))
    elif dst is not None and stat.S_ISDIR(st.st_mode):
        raise InvalidArgumentError(f'cannot copy a directory to a file: "{name}:{dest}"')
    elif dest.endswith("/") and dst is None:
        raise NotFoundError(f'no such directory: "{name}:{dest}"')
    else:
        target, arcname = os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/"))
        parent = containers.path_stat(ref, target)
        if parent is None or not stat.S_ISDIR(parent.st_mode):
            raise NotFoundError(f'no such directory: "{name}:{target}"')

    def owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if not keep_owner:  # docker: root's in the container unless -a
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
        return info

    path = os.path.realpath(src) if follow else src
    with tempfile.TemporaryFile() as buf:
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            tf.add(path, arcname=arcname, filter=owner)
        buf.seek(0)
        containers.put_archive(ref, target, buf)


def copy_out(containers: Archives, ref: str, name: str, src: str, dest: str, *, keep_owner: bool,
             follow: bool) -> None:
    src = _abs(src)
    st = containers.path_stat(ref, src)
    if st is None:
        raise NotFoundError(f"Could not find the file {src} in container {name}")
    if follow and not stat.S_ISDIR(st.st_mode):  # the local engine's stat follows links: ask the archive
        src = _resolve(containers, ref, src)
        st = containers.path_stat(ref, src)
        if st is None:
            raise NotFoundError(f"Could not find the file {src} in container {name}")
    if dest == "-":
        if sys.stdout.isatty():
            raise PodsError("cp: cowardly refusing to write an archive to a terminal: give a DEST_PATH")
        containers.get_archive(ref, src, sys.stdout.buffer)
        sys.stdout.flush()
        return
    contents = src.endswith(("/.", "/./"))
    is_dir = stat.S_ISDIR(st.st_mode)
    if os.path.isdir(dest):
        target, rename = dest, None
        if contents and is_dir:
            rename = "."
    elif os.path.lexists(dest) and is_dir:
        raise InvalidArgumentError(f'cannot copy a directory to a file: "{dest}"')
    elif dest.endswith("/"):
        raise NotFoundError(f'no such directory: "{dest}"')
    else:
        target, rename = os.path.dirname(os.path.abspath(dest)), os.path.basename(os.path.abspath(dest))
        if not os.path.isdir(target):
            raise NotFoundError(f'no such directory: "{target}"')
    from pytest_pods.client.contract import extract_tar  # lazy: only cp out unpacks (tarfile, layers)

    uid, gid = os.getuid(), os.getgid()
    with tempfile.TemporaryFile() as raw, tempfile.TemporaryFile() as buf:
        containers.get_archive(ref, os.path.normpath(src), raw)
        raw.seek(0)
        with tarfile.open(fileobj=raw) as tin, tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tout:
            for m in tin:
                f = tin.extractfile(m) if m.isfile() else None
                if rename is not None:
                    rest = m.name.partition("/")[2]
                    if rename == ".":
                        if not rest:
                            continue  # the directory itself: its contents go into dest
                        m.name = rest
                    else:
                        m.name = rename + ("/" + rest if rest else "")
                if not keep_owner:  # docker: the invoking user's unless -a
                    m.uid, m.gid, m.uname, m.gname = uid, gid, "", ""
                tout.addfile(m, f)
        buf.seek(0)
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            extract_tar(buf, fd)
        finally:
            os.close(fd)


def _resolve(containers: Archives, ref: str, path: str) -> str:
    """``-L``: the target of the link ``path`` in the container (links followed up to 40 deep)."""
    for _ in range(40):
        with tempfile.TemporaryFile() as raw:
            containers.get_archive(ref, path, raw)
            raw.seek(0)
            with tarfile.open(fileobj=raw) as tf:
                m = tf.next()
        if m is None or not m.issym():
            return path
        path = os.path.normpath(m.linkname if m.linkname.startswith("/") else
                                os.path.join(os.path.dirname(path), m.linkname))
    raise InvalidArgumentError(f"{path}: too many levels of symbolic links")
