"""Named volumes: directories under ``ROOT/volumes/<name>/_data`` that containers bind-mount.

``-v data:/var/lib/x`` (a name, not a path) makes the volume on first use, as docker does. A
volume is removed only when no container (running or not) mounts it, unless forced.

Copy-up (issue 16, as moby's ``volume`` copy does): the first time an empty volume is mounted
where the image has a directory, that directory's content (files, dirs, symlinks, hard links,
owners, modes, times, xattrs) and its own owner and mode are copied into the volume before the
container runs, once (``volume.json`` says ``populated``), unless ``nocopy``. The copy runs in the
engine's process: rootless, that is inside the user namespace, where the image's ids are the
store's own, so ``chown`` keeps them right.
"""

from __future__ import annotations

import builtins  # Volumes.list shadows the name in the class
import errno
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from pytest_pods.engine import events
from pytest_pods.engine.files import remove_tree
from pytest_pods.engine.locks import FileLock, lease
from pytest_pods.errors import ConflictError, InvalidArgumentError, NotFoundError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Volumes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "volumes"

    def _check(self, name: str) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 255:
            raise InvalidArgumentError(
                f"create {name!r}: includes invalid characters for a local volume name, only "
                "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        return name

    def path(self, name: str) -> Path:
        return self.dir / self._check(name) / "_data"

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, *,
               anonymous: bool = False) -> dict[str, Any]:
        """Make the volume (or find it); ``anonymous`` ones (``-v /data``) go with ``rm -v``."""
        name = self._check(name or os.urandom(32).hex())
        d = self.dir / name
        meta = d / "volume.json"
        if not meta.exists():
            (d / "_data").mkdir(parents=True, exist_ok=True)
            tmp = d / f".volume.json.{lease()}-"
            tmp.write_text(json.dumps({"name": name, "labels": labels or {}, "created": time.time(),
                                       "anonymous": anonymous}))
            os.replace(tmp, meta)
            events.record(self.root, "volume", "create", name, {"driver": "local"})
        return self.inspect(name)

    def name_of(self, path: str) -> str | None:
        """The volume whose data directory ``path`` is, or None."""
        p = Path(path)
        if p.name == "_data" and p.parent.parent == self.dir:
            return p.parent.name
        return None

    def _record(self, name: str) -> dict[str, Any]:
        rec: dict[str, Any] = json.loads((self.dir / self._check(name) / "volume.json").read_text())
        return rec

    def fillable(self, name: str) -> bool:
        """Never populated and empty: the next mount copies the image's content in (cheap: a read
        of ``volume.json`` and of an empty directory)."""
        try:
            if self._record(name).get("populated"):
                return False
            with os.scandir(self.path(name)) as it:
                return next(it, None) is None
        except (OSError, ValueError, InvalidArgumentError):
            return False

    def fill(self, name: str, srcfd: int) -> bool:
        """Copy the directory open at ``srcfd`` (the image's content at the mount point) into
        the volume if it is still fillable; its owner and mode become the volume root's. Under
        the volume's lock, so two creates on one new volume copy once. A failed copy leaves the
        volume empty. True if it copied."""
        d = self.dir / self._check(name)
        with FileLock(str(d / ".lock")):
            if not self.fillable(name):
                return False
            data = str(d / "_data")
            try:
                copy_tree(srcfd, data)
                st = os.fstat(srcfd)
                os.chown(data, st.st_uid, st.st_gid)
                os.chmod(data, stat.S_IMODE(st.st_mode))
            except BaseException:
                for entry in os.listdir(data):
                    remove_tree(os.path.join(data, entry))
                raise
            rec = self._record(name)
            rec["populated"] = True
            tmp = d / f".volume.json.{lease()}-"
            tmp.write_text(json.dumps(rec))
            os.replace(tmp, d / "volume.json")
        return True

    def anonymous(self, name: str) -> bool:
        try:
            return bool(json.loads((self.dir / self._check(name) / "volume.json").read_text()).get("anonymous"))
        except (OSError, ValueError, InvalidArgumentError):
            return False

    def inspect(self, name: str) -> dict[str, Any]:
        try:
            rec = json.loads((self.dir / self._check(name) / "volume.json").read_text())
        except FileNotFoundError:
            raise NotFoundError(f"get {name}: no such volume") from None
        return {"Name": rec["name"], "Driver": "local", "Mountpoint": str(self.path(name)),
                "Labels": rec.get("labels") or {}, "Scope": "local", "Options": {},
                "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec["created"]))}

    def list(self) -> list[dict[str, Any]]:
        if not self.dir.is_dir():
            return []
        out = []
        for d in sorted(self.dir.iterdir()):
            try:
                out.append(self.inspect(d.name))
            except (NotFoundError, InvalidArgumentError, ValueError):
                continue
        return out

    def size(self, name: str) -> int:
        """The bytes the volume's files hold, as dockerd counts them for ``SpaceReclaimed``: the
        sizes of its regular files, a hard-linked file once."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for top, _dirs, files in os.walk(self.path(name)):
            for f in files:
                try:
                    st = os.lstat(os.path.join(top, f))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
        return total

    def remove(self, name: str, *, in_use_by: builtins.list[str], force: bool = False) -> None:
        self.inspect(name)
        if in_use_by and not force:
            raise ConflictError(f"remove {name}: volume is in use - [{', '.join(c[:12] for c in in_use_by)}]")
        remove_tree(self.dir / name)
        events.record(self.root, "volume", "destroy", name, {"driver": "local"})


def remove_anonymous(root: Path, names: builtins.list[str], *, leaving: str = "") -> builtins.list[str]:
    """``--rm`` (the monitor, or a failed start): remove those of ``names`` that are anonymous
    and that no container under ``ROOT/containers`` but ``leaving`` (the one going) mounts, as
    ``rm -v`` does; the ones removed. Rootless it runs inside the user namespace, where the
    volume's files are ours."""
    vols = Volumes(root)
    gone = [n for n in names if vols.anonymous(n)]
    if not gone:
        return []
    paths = {str(vols.path(n)): n for n in gone}
    try:
        ids = [e.name for e in os.scandir(root / "containers") if len(e.name) == 64 and e.name != leaving]
    except FileNotFoundError:
        ids = []
    for cid in ids:
        try:
            binds = json.loads((root / "containers" / cid / "state.json").read_text()).get("binds") or []
        except (OSError, ValueError):
            continue  # gone meanwhile, or half-written: a create in progress makes its own volumes
        for text in binds:
            paths.pop(str(text).split(":")[0], None)
    done = []
    for name in paths.values():
        try:
            remove_tree(vols.dir / name)
        except OSError:
            continue
        done.append(name)
    return done


# Overlay's own xattrs are the store's bookkeeping (whiteouts, opaque dirs), not the files'.
_SKIP_XATTRS = ("trusted.overlay.", "user.overlay.")


def copy_tree(src: int, dst: str) -> None:
    """Copy the entries of the directory open at ``src`` into the existing directory ``dst``,
    keeping types, owners, modes, times, xattrs and hard links. The source is read only through
    fds opened ``O_NOFOLLOW`` relative to their parent (an image's symlink never leads out)."""
    _copy_entries(src, dst, {})


def _copy_entries(src: int, dst: str, links: dict[tuple[int, int], str]) -> None:
    with os.scandir(src) as it:
        names = [e.name for e in it]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        target = os.path.join(dst, name)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                os.mkdir(target, 0o700)
                _copy_entries(fd, target, links)
                _copy_meta(fd, target, st)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                os.link(links[key], target)
                continue
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            try:
                out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    left = st.st_size
                    while left > 0:
                        n = os.sendfile(out, fd, None, min(left, 1 << 30))
                        if n == 0:
                            break
                        left -= n
                    _copy_meta(fd, out, st)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
            if st.st_nlink > 1:
                links[key] = target
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), target)
            os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        else:  # fifo, socket, device node
            try:
                os.mknod(target, mode, st.st_rdev)
            except PermissionError:
                continue  # rootless: no device nodes in a user namespace (nor in its containers)
            os.chown(target, st.st_uid, st.st_gid)
            os.chmod(target, stat.S_IMODE(mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_meta(src: int, dst: int | str, st: os.stat_result) -> None:
    """Owner, xattrs, then mode (a chown drops setuid bits) and times of ``src`` onto ``dst``."""
    os.chown(dst, st.st_uid, st.st_gid)
    try:
        keys = os.listxattr(src)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENODATA):
            raise
        keys = []
    for key in keys:
        if key.startswith(_SKIP_XATTRS):
            continue
        try:
            os.setxattr(dst, key, os.getxattr(src, key))
        except OSError as exc:  # trusted.* needs CAP_SYS_ADMIN of the host (rootless has none)
            if exc.errno not in (errno.EOPNOTSUPP, errno.EPERM):
                raise
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
