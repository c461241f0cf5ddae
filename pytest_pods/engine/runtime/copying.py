"""Copying files into and out of a container, as ``docker cp`` does.

Both directions go through a tar stream and through directory fds: the container's side is
reached by ``/proc/PID/root`` (a running container) or by an fd on its overlay mounted for the
copy (a created or stopped one, ``Runtime._root``), and every path in it is resolved with ``openat2(RESOLVE_IN_ROOT)``
and opened ``O_NOFOLLOW`` relative to its parent fd, so a container that swaps a directory for a
symlink mid-copy cannot make us read or write a host file. Writing uses the layer unpacker's
member rules (no ``..`` escapes, links resolved inside the target).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import IO

from pytest_pods.engine import linux
from pytest_pods.engine.image.layers import extract_into
from pytest_pods.errors import InvalidArgumentError, NotFoundError

_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS


def resolve(rootfd: int, path: str) -> tuple[int, str, os.stat_result | None]:
    """(fd of the parent directory, final name, lstat of it or None) for ``path`` inside the root."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or parts[-1] == "..":
        fd = linux.openat2(rootfd, "/".join(parts) or ".", os.O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
        return fd, ".", os.stat(fd)
    try:
        pfd = linux.openat2(rootfd, "/".join(parts[:-1]) or ".", os.O_PATH | os.O_DIRECTORY, resolve=_RESOLVE)
    except FileNotFoundError:
        raise NotFoundError(f"Could not find the file {path} in container") from None
    except NotADirectoryError:
        raise InvalidArgumentError(f"copy {path}: a parent is not a directory") from None
    try:
        st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    return pfd, parts[-1], st


def write_tar(rootfd: int, path: str, out: IO[bytes], arcname: str | None = None) -> None:
    """Write ``path`` (a file, link or whole directory tree inside the root) to ``out`` as a tar
    whose top entry is named ``arcname`` (default: the path's last component)."""
    pfd, name, st = resolve(rootfd, path)
    try:
        if st is None:
            raise NotFoundError(f"Could not find the file {path} in container")
        top = arcname or (name if name != "." else os.path.basename(path.rstrip("/")) or ".")
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _add(tf, pfd, name, top, st, st.st_dev, links={})
    finally:
        os.close(pfd)


_KERNEL_MOUNTS = frozenset({"proc", "sys", "dev", "pts", "shm", "mqueue"})


def write_root_tar(rootfd: int, out: IO[bytes]) -> None:
    """The whole root as a tar, names relative to it (``docker export``). What is mounted in it
    (volumes, bind mounts, /proc, /sys, /dev) is left out but for the mount point."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=rootfd)  # rootfd may be O_PATH
    try:
        top_dev = os.fstat(fd).st_dev
        links: dict[tuple[int, int], str] = {}
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            for entry in sorted(os.listdir(fd)):
                try:
                    st = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                _add(tf, fd, entry, entry, st, top_dev, into_mounts=False, links=links)
    finally:
        os.close(fd)


def _add(tf: tarfile.TarFile, dirfd: int, name: str, arcname: str, st: os.stat_result, top_dev: int,
         into_mounts: bool = True, links: dict[tuple[int, int], str] | None = None) -> None:
    """One entry, and a directory's tree under it; a file met again through another hard link
    (``links``: inode -> the name written first) becomes a link entry, as docker's archives have."""
    links = {} if links is None else links
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
        info.type, info.linkname = tarfile.LNKTYPE, links[(st.st_dev, st.st_ino)]
        tf.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        if st.st_nlink > 1:
            links[(st.st_dev, st.st_ino)] = arcname
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        with os.fdopen(fd, "rb") as f:
            info.size = os.fstat(f.fileno()).st_size
            tf.addfile(info, f)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dirfd)
        tf.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tf.addfile(info)
        if st.st_dev != top_dev and (name in _KERNEL_MOUNTS or not into_mounts):
            return  # /proc, /sys, /dev of the container (or any mount): the mount point, not its files
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, dir_fd=dirfd) if name != "." else os.open(".", flags, dir_fd=dirfd)
        try:
            for entry in sorted(os.listdir(fd)):
                try:
                    est = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone while we copied
                _add(tf, fd, entry, f"{arcname}/{entry}", est, top_dev, into_mounts, links)
        finally:
            os.close(fd)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tf.addfile(info)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(info)
    # sockets are skipped, as tar does


def extract_tar(rootfd: int, path: str, src: IO[bytes]) -> None:
    """Unpack the tar ``src`` into the directory ``path`` inside the root (it must exist)."""
    try:
        fd = linux.openat2(rootfd, path.strip("/") or ".", os.O_RDONLY | os.O_DIRECTORY, resolve=_RESOLVE)
    except FileNotFoundError:
        raise NotFoundError(f"Could not find the file {path} in container") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise InvalidArgumentError(f"copy to {path}: not a directory") from None
        raise
    try:
        extract_into(src, fd)
    finally:
        os.close(fd)
