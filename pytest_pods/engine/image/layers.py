"""Image layers: unpack tars into snapshot directories safely, and write directories back as tars.

Unpacking trusts the kernel, not string checks, to keep members inside the snapshot: every member's
parent directory is opened with ``openat2(RESOLVE_IN_ROOT)`` relative to the snapshot root, and the
final component is created relative to that directory fd without following symlinks. A symlink in
the layer may point anywhere; anything written "through" it still resolves inside the root.
``tarfile`` is only used to read headers and member data, never to extract (its filters are not a
security boundary).

OCI whiteouts are converted to the overlayfs form on unpack (``.wh.NAME`` -> char device 0/0,
``.wh..wh..opq`` -> ``trusted.overlay.opaque=y``) and back on write with ``overlay_upper=True``.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import errno
import gzip
import hashlib
import io
import os
import pathlib
import secrets
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, Protocol, Self, cast

from pytest_pods.engine import linux, rootless
from pytest_pods.errors import LayerError, UnsafeLayerError

__all__ = ["unpack_layer", "write_layer"]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_OVERLAY_XATTR_PREFIX = "trusted.overlay."
# Rootless: overlayfs in a user namespace is mounted with ``userxattr`` and keeps its state in
# ``user.overlay.*`` (trusted.* needs CAP_SYS_ADMIN in the initial namespace).
USER_OPAQUE_XATTR = "user.overlay.opaque"
_USER_OVERLAY_PREFIX = "user.overlay."
_OVERLAY_PREFIXES = (_OVERLAY_XATTR_PREFIX, _USER_OVERLAY_PREFIX)
_PAX_XATTR_PREFIX = "SCHILY.xattr."
_GNU_VOLUME_LABEL = b"V"

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20

# Parents are resolved as if the snapshot were "/": ".." and absolute symlinks stay inside it.
# Magic links (/proc/self/...) and mount crossings have no business in a layer either.
_RESOLVE = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS | linux.RESOLVE_NO_XDEV
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY

# xattrs the filesystem may refuse without the layer being wrong (e.g. user.* on tmpfs, or
# trusted.* without CAP_SYS_ADMIN); security.capability is never skipped: a binary without its
# file capabilities is broken (ping), so that failure must surface.
_XATTR_SKIP_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM})
_XATTR_REQUIRED = frozenset({"security.capability"})


class _MemberError(Exception):
    """Internal: a per-member failure, turned into LayerError with the member name attached."""

    def __init__(self, reason: str, unsafe: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unsafe = unsafe


# --------------------------------------------------------------------------------------------
# small private syscall helpers


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _rename_noreplace(src: str, dst: str) -> bool:
    """renameat2(RENAME_NOREPLACE): move ``src`` to ``dst`` unless ``dst`` exists.

    Plain rename(2) silently replaces an empty directory, which would let two racing unpackers
    both "win"; with NOREPLACE exactly one does. Returns False when ``dst`` already exists.
    """
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        ret = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if ret == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            return False
        if err not in (errno.EINVAL, errno.ENOSYS):  # fs without NOREPLACE: fall back below
            raise OSError(err, os.strerror(err), dst)
    if os.path.lexists(dst):
        return False
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
            return False
        raise
    return True


# --------------------------------------------------------------------------------------------
# reading: decompression


class _Prefixed(io.RawIOBase):
    """A read-only stream that replays already-sniffed magic bytes before the rest of ``inner``.

    Lets us detect the compression of a non-seekable stream (a pipe, an HTTP body) without
    buffering it whole.
    """

    def __init__(self, head: bytes, inner: IO[bytes]) -> None:
        self._head = head
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._inner.read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


def _zstandard() -> Any:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]  # lazy: optional (zstd layers only); no stubs
    except ImportError:
        return None
    return zstandard


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """Wrap ``raw`` in a streaming decompressor chosen by its magic bytes."""
    head = b""
    while len(head) < 4:
        chunk = raw.read(4 - len(head))
        if not chunk:
            break
        head += chunk
    stream: IO[bytes] = io.BufferedReader(_Prefixed(head, raw), _CHUNK)
    if head.startswith(_GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    if head.startswith(_ZSTD_MAGIC):
        zstd = _zstandard()
        if zstd is None:
            raise LayerError(
                "unpack layer: zstd-compressed layer needs the zstandard package: "
                "pip install zstandard. Fix this and try again."
            )
        reader: IO[bytes] = zstd.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
        return reader
    return stream


def _decode_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, ValueError, tarfile.TarError, zlib.error]
    zstd = _zstandard()
    if zstd is not None:
        errors.append(zstd.ZstdError)
    return tuple(errors)


# --------------------------------------------------------------------------------------------
# reading: names and resolution


def _clean(name: str) -> list[str]:
    """Lexically clean a member name into components, as Go's ``filepath.Clean`` would.

    A leading ``/`` is dropped (the name is kept inside the snapshot); a ``..`` that climbs above
    the root is refused, as moby's pkg/archive does.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise _MemberError("path escapes the snapshot", unsafe=True)
            parts.pop()
            continue
        parts.append(comp)
    return parts


def _open_parent(rootfd: int, parts: list[str], create: bool) -> int:
    """Open the directory holding ``parts[-1]`` as an O_PATH fd, resolved inside the root.

    With ``create`` the missing directories are made (0755, root-owned, as moby does for
    parents a layer does not list), each one relative to an fd already resolved in the root.
    """
    parent = parts[:-1]
    if not parent:
        return os.dup(rootfd)
    try:
        return linux.openat2(rootfd, "/".join(parent), _O_PATH_DIR, resolve=_RESOLVE)
    except OSError as exc:
        if exc.errno != errno.ENOENT or not create:
            raise _MemberError(f"parent directory: {exc.strerror}") from exc
    fd = os.dup(rootfd)
    try:
        for i, comp in enumerate(parent):
            sub = "/".join(parent[: i + 1])
            try:
                nfd = linux.openat2(rootfd, sub, _O_PATH_DIR, resolve=_RESOLVE)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise _MemberError(f"parent directory {sub!r}: {exc.strerror}") from exc
                try:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    # 0755 despite umask; below a setgid directory the kernel passes on its group
                    # and the setgid bit, as for moby's MkdirAll and GNU tar: keep that bit
                    inherited = os.stat(comp, dir_fd=fd, follow_symlinks=False).st_mode & stat.S_ISGID
                    os.chmod(comp, 0o755 | inherited, dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    # the name exists but resolved to nothing: a dangling symlink
                    raise _MemberError(
                        f"parent directory {sub!r}: is a symlink to a missing directory"
                    ) from None
                nfd = linux.openat2(rootfd, sub, _O_PATH_DIR, resolve=_RESOLVE)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _lstat(name: str, dirfd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(name: str, dirfd: int, st: os.stat_result) -> None:
    """Remove an existing entry so a later member can replace it; never follows symlinks."""
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by fds (_rmtree_safe_fd) and does not follow symlinks
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)


def _pax_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    """The SCHILY.xattr.* records of a member, as raw bytes.

    tarfile decodes PAX values as UTF-8 and falls back to surrogateescape, so encoding back with
    surrogateescape restores binary values such as security.capability exactly.
    """
    out: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith(_PAX_XATTR_PREFIX):
            out[key[len(_PAX_XATTR_PREFIX) :]] = value.encode("utf-8", "surrogateescape")
    return out


def _set_xattrs(name: str, dirfd: int, xattrs: dict[str, bytes]) -> None:
    """Apply xattrs to ``name`` in ``dirfd`` without following a final symlink.

    ``/proc/self/fd/N/name`` walks through the pinned directory fd, and ``follow_symlinks=False``
    (lsetxattr) stops at the final component: race-free without an fd for every node type.
    """
    path = f"/proc/self/fd/{dirfd}/{name}"
    for key, value in xattrs.items():
        if key.startswith(_OVERLAY_PREFIXES):
            # overlayfs' private state (opaque, redirect, metacopy) comes only from OCI whiteouts:
            # an image must not steer the overlay through raw xattrs.
            continue
        try:
            os.setxattr(path, key, value, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _XATTR_SKIP_ERRNOS and key not in _XATTR_REQUIRED:
                continue
            raise _MemberError(f"set xattr {key}: {exc.strerror}") from exc


def opaque_xattr() -> str:
    """The xattr that marks an opaque directory for this engine's overlay mounts."""
    return USER_OPAQUE_XATTR if rootless.active() else OVERLAY_OPAQUE_XATTR


def _chown(fn: Any, *args: Any, uid: int, gid: int, **kwargs: Any) -> None:
    """A chown that names the id when the user namespace does not map it (rootless: EINVAL)."""
    try:
        fn(*args, uid, gid, **kwargs)
    except OSError as exc:
        if exc.errno != errno.EINVAL or not rootless.inside():
            raise
        raise _MemberError(rootless.unmapped(uid, gid) or f"chown to {uid}:{gid}: {exc.strerror}") from exc


def _sparse_map(m: tarfile.TarInfo) -> list[tuple[int, int]] | None:
    """The (offset, length) data segments of a GNU sparse member (old 'S' or PAX 0.0/0.1/1.0),
    checked as Go's archive/tar checks them: in order, not overlapping, inside the file."""
    raw = getattr(m, "sparse", None)
    if raw is None:
        return None
    segments: list[tuple[int, int]] = []
    end = 0
    for offset, numbytes in raw:
        if numbytes == 0 and 0 <= offset <= m.size:
            continue  # an unused slot of the old GNU header, or GNU tar's closing (size, 0) entry
        if offset < end or numbytes < 0 or offset + numbytes > m.size:
            raise _MemberError(f"corrupt sparse map: segment ({offset}, {numbytes}) of a {m.size}-byte file")
        end = offset + numbytes
        if numbytes:
            segments.append((offset, numbytes))
    return segments


def _copy_to(data: IO[bytes], fd: int, size: int, offset: int) -> None:
    """Copy ``size`` bytes of member data to ``fd`` at ``offset``; short data is a corrupt archive."""
    while size > 0:
        chunk = data.read(min(size, _CHUNK))
        if not chunk:
            raise _MemberError("corrupt archive: member data cut short")
        view = memoryview(chunk)
        while view:
            n = os.pwrite(fd, view, offset)
            view = view[n:]
            offset += n
        size -= len(chunk)


def _ns(m: tarfile.TarInfo) -> int:
    """A member's mtime in ns; a PAX ``mtime`` read from its decimal text, as a float loses ns."""
    text = m.pax_headers.get("mtime", "")
    whole, _, frac = text.partition(".")
    digits = whole.removeprefix("-")
    if digits.isdigit() and (not frac or frac.isdigit()) and text.isascii():
        ns = int(digits) * 1_000_000_000 + int(frac[:9].ljust(9, "0"))
        return -ns if whole.startswith("-") else ns
    return round(m.mtime * 1_000_000_000)


def _apply_meta(name: str, dirfd: int, member: tarfile.TarInfo, *, symlink: bool) -> None:
    """Owner, mode, xattrs, in the order the kernel needs: chown clears setuid and capabilities."""
    _chown(os.chown, name, uid=member.uid, gid=member.gid, dir_fd=dirfd, follow_symlinks=False)
    if not symlink:  # Linux has no symlink modes; lchmod would fail with EOPNOTSUPP
        os.chmod(name, member.mode & 0o7777, dir_fd=dirfd, follow_symlinks=False)
    _set_xattrs(name, dirfd, _pax_xattrs(member))


class _Unpacker:
    """One unpack run: a root fd plus the directory mtimes deferred to the end."""

    def __init__(self, rootfd: int) -> None:
        self.rootfd = rootfd
        # creating children changes a directory's mtime, so directories get theirs last
        self.dir_mtimes: dict[tuple[str, ...], int] = {}
        self.skipped: set[tuple[str, ...]] = set()  # device nodes not made (rootless)

    def member(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        if m.type == _GNU_VOLUME_LABEL:
            return  # a GNU tar --label: names the archive, not a file (GNU tar skips it too)
        parts = _clean(m.name)
        if not parts:
            if not m.isdir():
                raise _MemberError("empty name")
            self._root_dir(m)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(m, parts)
            return
        pfd = _open_parent(self.rootfd, parts, create=True)
        try:
            self._create(tf, m, parts, pfd)
        finally:
            os.close(pfd)

    def _root_dir(self, m: tarfile.TarInfo) -> None:
        _chown(os.chown, self.rootfd, uid=m.uid, gid=m.gid)
        os.chmod(self.rootfd, m.mode & 0o7777)
        _set_xattrs(".", self.rootfd, _pax_xattrs(m))
        self.dir_mtimes[()] = _ns(m)

    def _whiteout(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        if base == WHITEOUT_OPAQUE:
            dirparts = parts[:-1]
            if dirparts:
                pfd = _open_parent(self.rootfd, dirparts, create=True)
                try:
                    if _lstat(dirparts[-1], pfd) is None:
                        os.mkdir(dirparts[-1], 0o755, dir_fd=pfd)
                        os.chmod(dirparts[-1], 0o755, dir_fd=pfd, follow_symlinks=False)
                    st = _lstat(dirparts[-1], pfd)
                    if st is None or not stat.S_ISDIR(st.st_mode):
                        raise _MemberError("opaque whiteout in something that is not a directory")
                    os.setxattr(
                        f"/proc/self/fd/{pfd}/{dirparts[-1]}",
                        opaque_xattr(), b"y", follow_symlinks=False,
                    )
                finally:
                    os.close(pfd)
            else:
                os.setxattr(self.rootfd, opaque_xattr(), b"y")
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
        name = base[len(WHITEOUT_PREFIX) :]
        if name in ("", ".", ".."):
            # ".wh.." would otherwise name the parent directory itself (and rmtree it)
            if name == "..":
                raise _MemberError("whiteout path escapes the snapshot", unsafe=True)
            raise _MemberError("whiteout without a name")
        target = [*parts[:-1], name]
        pfd = _open_parent(self.rootfd, target, create=True)
        try:
            st = _lstat(name, pfd)
            if st is not None:
                _remove(name, pfd, st)
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)  # allowed in a user ns (5.8)
            _chown(os.chown, name, uid=m.uid, gid=m.gid, dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(pfd)

    def _create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parts: list[str], pfd: int) -> None:
        name = parts[-1]
        self.skipped.discard(tuple(parts))
        existing = _lstat(name, pfd)
        if m.islnk():
            self._hardlink(m, parts, pfd, existing)
            return
        if existing is not None and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(name, pfd, existing)
            existing = None

        if m.isreg():
            self._regular(tf, m, name, pfd)
        elif m.isdir():
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            _apply_meta(name, pfd, m, symlink=False)
            self.dir_mtimes[tuple(parts)] = _ns(m)
        elif m.issym():
            if not m.linkname:
                raise _MemberError("symlink with an empty target")
            os.symlink(m.linkname, name, dir_fd=pfd)
            _apply_meta(name, pfd, m, symlink=True)
            ns = _ns(m)
            os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
        elif (m.ischr() or m.isblk()) and rootless.inside() and (m.devmajor, m.devminor) != (0, 0):
            # no mknod in a user namespace: skipped, as moby and containers/storage do there,
            # and so are hard links to it
            self.skipped.add(tuple(parts))
            return
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            dev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
            os.mknod(name, kind | 0o600, dev, dir_fd=pfd)
            _apply_meta(name, pfd, m, symlink=False)
            ns = _ns(m)
            os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
        else:
            raise _MemberError(f"unsupported tar entry type {m.type!r}")

    def _regular(self, tf: tarfile.TarFile, m: tarfile.TarInfo, name: str, pfd: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        sparse = _sparse_map(m)
        fd = os.open(name, flags, 0o600, dir_fd=pfd)
        try:
            if sparse is None:
                data = tf.extractfile(m)
                if data is not None:
                    _copy_to(data, fd, m.size, 0)
            else:
                self._sparse(tf, m, sparse, fd)
            _chown(os.fchown, fd, uid=m.uid, gid=m.gid)
            os.fchmod(fd, m.mode & 0o7777)
            _set_xattrs(name, pfd, _pax_xattrs(m))
            ns = _ns(m)
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    @staticmethod
    def _sparse(tf: tarfile.TarFile, m: tarfile.TarInfo, sparse: list[tuple[int, int]], fd: int) -> None:
        """A GNU sparse member: its data segments written at their offsets, the holes left holes.

        The archive stores only the segments, back to back; reading the member through tarfile
        would expand every hole into zeros (a 1 TB hole is a 1 TB write).
        """
        stored = copy.copy(m)
        stored.size = sum(n for _, n in sparse)
        stored.sparse = None
        data = tf.extractfile(stored)
        if data is not None:
            for offset, numbytes in sparse:
                _copy_to(data, fd, numbytes, offset)
        os.ftruncate(fd, m.size)

    def _hardlink(
        self, m: tarfile.TarInfo, parts: list[str], pfd: int, existing: os.stat_result | None
    ) -> None:
        try:
            tparts = _clean(m.linkname)
        except _MemberError:
            raise _MemberError(f"hard link target {m.linkname!r} escapes the snapshot", unsafe=True) from None
        if not tparts:
            raise _MemberError("hard link with an empty target")
        if tuple(tparts) in self.skipped:
            self.skipped.add(tuple(parts))
            return
        name = parts[-1]
        try:
            tfd = _open_parent(self.rootfd, tparts, create=False)
        except _MemberError:
            raise _MemberError(f"hard link target {m.linkname!r} does not exist") from None
        try:
            tst = _lstat(tparts[-1], tfd)
            if tst is None:
                raise _MemberError(f"hard link target {m.linkname!r} does not exist")
            if existing is not None and (existing.st_dev, existing.st_ino) == (tst.st_dev, tst.st_ino):
                return  # already that entry (a link to itself, or repeated): nothing to do, as in GNU tar
            if stat.S_ISDIR(tst.st_mode):  # any other node may have more names (GNU tar, Go, moby)
                raise _MemberError(f"hard link target {m.linkname!r} is a directory")
            if existing is not None:
                _remove(name, pfd, existing)
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def finish(self) -> None:
        """Set directory mtimes, now that no more children will be created."""
        for parts, ns in self.dir_mtimes.items():
            if not parts:
                os.utime(self.rootfd, ns=(ns, ns))
                continue
            try:
                pfd = _open_parent(self.rootfd, list(parts), create=False)
            except _MemberError:
                continue  # replaced by a later member
            try:
                st = _lstat(parts[-1], pfd)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    os.utime(parts[-1], ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            finally:
                os.close(pfd)


# a header that is not one, or cut short (typeshed does not list these tarfile classes); the
# end-of-archive ones (EOFHeaderError, EmptyHeaderError) are not in it
_BAD_HEADER: tuple[type[Exception], ...] = tuple(
    getattr(tarfile, n) for n in ("InvalidHeaderError", "TruncatedHeaderError")
)


class _LayerTarInfo(tarfile.TarInfo):
    """tarfile's header reader with the rules a layer needs (issue 14).

    tarfile documents ``_proc_member`` as the hook a subclass overrides to process member types
    itself. PAX global headers ('g') are skipped, as Go's archive/tar leaves them to the caller
    and moby and containerd ignore them: tarfile would otherwise merge them into every later
    member (a global ``path`` renames them all) and fail on one that ends the archive. A header
    that is not a header (bad checksum, cut short) is an error where tarfile would silently take
    it for the end of the archive and unpack half a layer.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _BAD_HEADER as exc:
            # not a HeaderError: tarfile.next() re-raises it instead of ending quietly
            raise tarfile.ReadError(f"corrupt tar header: {exc}") from None

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        member: _LayerTarInfo = self
        while member.type == tarfile.XGLTYPE:  # a loop: any number of them in a row
            size = member._block(member.size)  # type: ignore[attr-defined]  # tarfile's helper, untyped
            fileobj: Any = tarfile_.fileobj
            if len(fileobj.read(size)) != size:
                raise tarfile.ReadError("corrupt tar header: a PAX global header is cut short")
            try:
                # an EOFHeaderError here is the end of the archive, as after any member
                member = self.frombuf(fileobj.read(tarfile.BLOCKSIZE), tarfile_.encoding, tarfile_.errors)
            except _BAD_HEADER as exc:
                raise tarfile.ReadError(f"corrupt tar header: {exc}") from None
            member.offset = fileobj.tell() - tarfile.BLOCKSIZE
        return super(_LayerTarInfo, member)._proc_member(tarfile_)  # type: ignore[misc, no-any-return]  # tarfile's hook, untyped


def _unpack_stream(raw: IO[bytes], root: str) -> None:
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        extract_into(raw, rootfd)
    finally:
        os.close(rootfd)


def extract_into(raw: IO[bytes], rootfd: int) -> None:
    """Unpack a tar stream into the directory ``rootfd`` with the layer rules (nothing lands
    outside it); for ``docker cp`` style copies as well as layers."""
    try:
        _extract(raw, rootfd)
    except RecursionError:
        # tarfile reads a chain of extended headers recursively: thousands of them in a row
        raise LayerError("unpack layer: corrupt archive: too many extended headers in a row") from None


def _extract(raw: IO[bytes], rootfd: int) -> None:
    unpacker = _Unpacker(rootfd)
    stream = _decompressed(raw)
    with tarfile.open(
        fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape", tarinfo=_LayerTarInfo,
    ) as tf:
        for m in tf:
            try:
                unpacker.member(tf, m)
            except _MemberError as exc:
                cls = UnsafeLayerError if exc.unsafe else LayerError
                raise cls(f"unpack layer: member {m.name!r}: {exc.reason}") from exc
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise LayerError(f"unpack layer: member {m.name!r}: {reason}") from exc
    unpacker.finish()


def unpack_layer(src: str | os.PathLike[str] | BinaryIO, dest: pathlib.Path) -> None:
    """Unpack a layer tar (plain, gzip or zstd) into the new snapshot directory ``dest``.

    The tar is streamed into a temp directory beside ``dest`` that is renamed into place only when
    complete, so readers never see half a snapshot. If ``dest`` already exists (another process
    won the race) ours is discarded. On any error nothing is left behind.

    :param src: a path to the layer blob or a binary stream of it (need not be seekable)
    :param dest: the snapshot directory to create; its parent is created if missing
    :raises UnsafeLayerError: a member would land outside the snapshot
    :raises LayerError: the archive is corrupt, or a member cannot be created
    """
    dest = pathlib.Path(dest)
    if os.path.lexists(dest):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".unpack-{dest.name}-{secrets.token_hex(8)}"
    os.mkdir(tmp, 0o700)
    try:
        os.chmod(tmp, 0o755)  # a layer without a "./" entry gets the usual root mode
        if isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                _unpack_stream(f, str(tmp))
        else:
            _unpack_stream(src, str(tmp))
        if not _rename_noreplace(str(tmp), str(dest)):
            shutil.rmtree(tmp, ignore_errors=True)
    except LayerError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        exc.add_note(f"while unpacking into {dest}")
        raise
    except _decode_errors() as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LayerError(f"unpack layer {dest.name}: corrupt or unreadable archive: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------------
# writing


class ByteSink(Protocol):
    """Where a layer is written: a binary file, or the store's blob writer."""

    def write(self, data: bytes | memoryview, /) -> int: ...


class _HashingWriter(io.RawIOBase):
    """Passes writes through to ``out`` while hashing and counting them, so nothing is re-read."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._out.write(view)
        self.sha256.update(view)
        self.size += len(view)
        return len(view)


def _list_xattrs(path: str) -> dict[str, bytes]:
    try:
        keys = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return {}
        raise
    out: dict[str, bytes] = {}
    for key in sorted(keys):
        try:
            out[key] = os.getxattr(path, key, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:  # removed meanwhile
                continue
            raise
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    """overlayfs marks a deleted name with a char device 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _walk(top: str, overlay_upper: bool, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """Yield (relative name, path, lstat) depth-first, each directory's entries sorted by name.

    Never follows symlinks: entries are lstat'ed and only real directories are descended into.
    The order (like Go's filepath.Walk) puts parents before children and is the same every run.
    Whiteouts sort under the ``.wh.`` name they are written as, so the tar is sorted as written.
    """
    with os.scandir(top) as it:
        entries = [(e, e.stat(follow_symlinks=False)) for e in it]

    def key(item: tuple[os.DirEntry[str], os.stat_result]) -> bytes:
        entry, st = item
        name = os.fsencode(entry.name)
        if overlay_upper and _is_whiteout(st):
            return WHITEOUT_PREFIX.encode() + name
        return name

    for entry, st in sorted(entries, key=key):
        name = f"{rel}{entry.name}"
        yield name, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(entry.path, overlay_upper, name + "/")


def write_layer(
    src_dir: pathlib.Path,
    out: ByteSink,
    *,
    source_date_epoch: int | None = None,
    overlay_upper: bool = False,
) -> tuple[str, int]:
    """Write ``src_dir``'s tree to ``out`` as an uncompressed, reproducible PAX layer tar.

    Entries are in a fixed order with numeric ids, no user/group names and no atime/ctime, so the
    same tree always gives the same digest; ``source_date_epoch`` clamps mtimes for reproducible
    builds. With ``overlay_upper`` the tree is an overlayfs upper dir and its whiteouts (char
    device 0/0) and opaque directories are written as OCI whiteouts.

    :returns: (``"sha256:<hex>"`` of the bytes written, their count)
    :raises LayerError: the tree cannot be read, or holds overlay state a layer cannot express
    """
    writer = _HashingWriter(out)
    try:
        with tarfile.open(
            fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT,
            encoding="utf-8", errors="surrogateescape",
        ) as tf:
            _write_tree(tf, str(src_dir), source_date_epoch, overlay_upper)
    except LayerError:
        raise
    except (OSError, ValueError, tarfile.TarError) as exc:
        raise LayerError(f"write layer {src_dir}: {exc}") from exc
    return f"sha256:{writer.sha256.hexdigest()}", writer.size


def _tarinfo(name: str, st: os.stat_result, epoch: int | None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    mtime = int(st.st_mtime)
    ti.mtime = min(mtime, epoch) if epoch is not None else mtime
    return ti


def _marker(name: str, st: os.stat_result, epoch: int | None) -> tarfile.TarInfo:
    """An empty regular entry for an OCI whiteout, mode 0600 as moby writes them."""
    ti = _tarinfo(name, st, epoch)
    ti.type = tarfile.REGTYPE
    ti.mode = 0o600
    ti.size = 0
    return ti


def _write_tree(tf: tarfile.TarFile, top: str, epoch: int | None, overlay_upper: bool) -> None:
    first_name: dict[tuple[int, int], str] = {}
    for name, path, st in _walk(top, overlay_upper):
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            continue  # sockets cannot live in a tar; docker skips them too
        xattrs = _list_xattrs(path)
        if overlay_upper:
            bad = [k for k in xattrs if k.startswith(_OVERLAY_PREFIXES) and k.endswith((".redirect", ".metacopy"))]
            if bad:
                raise LayerError(
                    f"write layer {top}: {name!r} has {bad[0]}, which a layer cannot express; "
                    "mount the overlay with redirect_dir=off,metacopy=off. Fix this and try again."
                )
            if _is_whiteout(st):
                head, _, base = name.rpartition("/")
                prefix = f"{head}/" if head else ""
                tf.addfile(_marker(f"{prefix}{WHITEOUT_PREFIX}{base}", st, epoch))
                continue
        ti = _tarinfo(name, st, epoch)
        pax = {
            _PAX_XATTR_PREFIX + k: v.decode("utf-8", "surrogateescape")
            for k, v in xattrs.items()
            if not k.startswith(_OVERLAY_PREFIXES)
        }
        ti.pax_headers = pax
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in first_name:
                ti.type = tarfile.LNKTYPE
                ti.linkname = first_name[key]
                tf.addfile(ti)
                continue
            if st.st_nlink > 1:
                first_name[key] = name
            ti.type = tarfile.REGTYPE
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                fst = os.fstat(f.fileno())
                if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                    raise LayerError(f"write layer {top}: {name!r} changed while being written")
                ti.size = fst.st_size
                tf.addfile(ti, f)
        elif stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
            tf.addfile(ti)
            if overlay_upper and xattrs.get(opaque_xattr()) == b"y":
                tf.addfile(_marker(f"{name}/{WHITEOUT_OPAQUE}", st, epoch))
        elif stat.S_ISLNK(mode):
            ti.type = tarfile.SYMTYPE
            ti.linkname = os.readlink(path)
            tf.addfile(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            tf.addfile(ti)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
            tf.addfile(ti)
