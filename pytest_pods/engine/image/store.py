"""The image store: an OCI image layout plus unpacked layer snapshots, under one root.

Disk layout (``root`` is ``PODS_ROOT``, default ``/var/lib/pytest-pods``)::

    root/oci/                  an OCI image layout (oci-layout, index.json, blobs/sha256/<hex>)
                               index.json lists one manifest per image; a tag is the annotation
                               org.opencontainers.image.ref.name holding the normalized reference
    root/snapshots/<hex>/      a layer unpacked once, keyed by its diff_id, in overlayfs form
                               (whiteouts as 0/0 char devices): an overlay lower dir
    root/containers/<id>/      container state (owned by engine.runtime)
    root/tmp/                  temp files, on the same file system so that rename is atomic
    root/locks/                file locks shared by every process using this root

Every write is a temp file, fsync, rename. ``index.json`` changes under one file lock, a snapshot
unpack under a lock of its own, so concurrent processes (xdist workers, the CLI, the daemon) share
one store safely.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from pytest_pods.engine import events, linux, rootless
from pytest_pods.engine.files import mkstemp, remove_tree
from pytest_pods.engine.image.reference import Reference, parse_reference
from pytest_pods.engine.locks import FileLock, held, lease, lease_alive, lease_of, remove_dead_leased
from pytest_pods.errors import ConflictError, ImageNotFoundError, InvalidArgumentError, StoreError

if TYPE_CHECKING:
    from hashlib import sha256 as _sha256  # the same interface, with types
else:  # lazy: start latency: the small builtin sha256 imports in a millisecond; hashlib (OpenSSL) in several
    try:
        from _sha256 import sha256 as _sha256  # lazy: as above
    except ImportError:  # pragma: no cover - a Python without it (3.12 renamed it _sha2)
        from hashlib import sha256 as _sha256  # lazy: as above

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CREATED_ANNOTATION = "io.pytest-pods.created"

DEFAULT_ROOT = "/var/lib/pytest-pods"


def default_root() -> Path:
    """``PODS_ROOT``, else ``/var/lib/pytest-pods`` for root and ``$XDG_DATA_HOME/pytest-pods`` (else
    ``~/.local/share/pytest-pods``) for an ordinary user, also after joining its user namespace
    (where euid is 0)."""
    env = os.environ.get("PODS_ROOT")
    if env:
        return Path(env)
    if not rootless.active():
        return Path(DEFAULT_ROOT)
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "pytest-pods"
    return Path(os.path.expanduser(f"~{rootless.user_name()}") if "HOME" not in os.environ else Path.home()) \
        / ".local/share/pytest-pods"


PRIVATE_MODE = 0o700


def make_private(root: Path) -> None:
    """Make the engine root reachable only by its owner, and fix an older, open one in place.

    Everything the engine keeps lives below it: unpacked layers (with the setuid binaries and device
    nodes images carry), container roots, logs. Docker's data root is 0710 root:root for the same
    reason; 0700 gives every other user the same nothing. One stat when the root is already private.
    """
    try:
        root.mkdir(mode=PRIVATE_MODE, parents=True)
        return
    except FileExistsError:
        pass
    st = root.stat()
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(root, PRIVATE_MODE)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + _sha256(data).hexdigest()


def digest_hex(digest: str) -> str:
    """The hex part of ``sha256:<hex>``, refusing anything that could be a path."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgumentError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return hexpart


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON for documents we create, so equal content gives equal digests."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, tmp_dir: Path | None = None, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` all-or-nothing: temp file in the same fs, fsync, rename."""
    tmp_dir = tmp_dir or path.parent
    fd, tmp = mkstemp(tmp_dir, f".{path.name}.{lease()}-")  # the lease: the reaper knows a killed writer's
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Image(NamedTuple):
    """An image in the store: its manifest, its config, and the tags that name it."""

    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    tags: tuple[str, ...] = ()
    created_in_store: float = 0.0

    @property
    def id(self) -> str:
        """Docker's image ID: the digest of the config."""
        return str(self.manifest["config"]["digest"])

    @property
    def short_id(self) -> str:
        return digest_hex(self.id)[:12]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    @property
    def size(self) -> int:
        return sum(int(layer.get("size", 0)) for layer in self.layers)

    @property
    def run_config(self) -> dict[str, Any]:
        """The ``config`` member of the image config: Env, Cmd, Entrypoint, WorkingDir, User..."""
        return dict(self.config.get("config") or {})

    @property
    def familiar_tags(self) -> list[str]:
        """``RepoTags``: the names with a tag (a pull by digest names the image by digest too)."""
        return [parse_reference(t).familiar for t in self.tags if "@" not in t]


class _IndexEntry:
    """One manifest of index.json with its names (mutable: the index is edited through these)."""

    __slots__ = ("created", "digest", "media_type", "names", "size")

    def __init__(self, digest: str, size: int, media_type: str, names: list[str] | None = None,
                 created: float = 0.0) -> None:
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.names = names if names is not None else []
        self.created = created


class Store:
    """Blobs, images, tags and snapshots under ``root``; safe for concurrent processes."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.oci = self.root / "oci"
        self.blobs = self.oci / "blobs" / "sha256"
        self.snapshots = self.root / "snapshots"
        self.containers = self.root / "containers"
        self.tmp = self.root / "tmp"
        self.locks = self.root / "locks"
        make_private(self.root)
        for d in (self.blobs, self.snapshots, self.containers, self.tmp, self.locks):
            d.mkdir(parents=True, exist_ok=True)
        layout = self.oci / "oci-layout"
        if not layout.exists():
            atomic_write(layout, b'{"imageLayoutVersion":"1.0.0"}', tmp_dir=self.tmp)
        if not (self.oci / "index.json").exists():
            with self._index_lock():
                if not (self.oci / "index.json").exists():
                    self._write_index([])

    # -- locks -----------------------------------------------------------------------------
    def lock(self, name: str) -> FileLock:
        """A named lock shared by every process using this root."""
        return FileLock(str(self.locks / f"{name}.lock"))

    def _index_lock(self) -> FileLock:
        return self.lock("index")

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def read_blob(self, digest: str) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"read blob {digest}: missing from the store") from None
        return data

    def read_json(self, digest: str) -> dict[str, Any]:
        data = self.read_blob(digest)
        if sha256_digest(data) != digest:
            raise StoreError(f"read blob {digest}: content does not match its digest")
        result: dict[str, Any] = json.loads(data)
        return result

    def put_bytes(self, data: bytes, expected: str | None = None) -> tuple[str, int]:
        """Store ``data``; return (digest, size). A mismatch with ``expected`` stores nothing."""
        digest = sha256_digest(data)
        if expected is not None and expected != digest:
            raise StoreError(f"store blob {expected}: content digest is {digest}")
        path = self.blob_path(digest)
        if not path.exists():
            atomic_write(path, data, tmp_dir=self.tmp)
        return digest, len(data)

    @contextlib.contextmanager
    def blob_writer(self, expected: str | None = None) -> Iterator[_BlobWriter]:
        """Stream a blob in; it appears under its digest only when complete and verified."""
        writer = _BlobWriter(self, expected)
        try:
            yield writer
            writer._commit()
        finally:
            writer._discard()

    def put_file(self, src: IO[bytes], expected: str | None = None) -> tuple[str, int]:
        with self.blob_writer(expected) as w:
            while chunk := src.read(1 << 20):
                w.write(chunk)
        return w.digest, w.size

    # -- index -----------------------------------------------------------------------------
    def _read_index(self) -> list[_IndexEntry]:
        try:
            doc = json.loads((self.oci / "index.json").read_bytes())
        except FileNotFoundError:
            return []
        entries: dict[str, _IndexEntry] = {}
        for m in doc.get("manifests", []):
            ann = m.get("annotations") or {}
            entry = entries.get(m["digest"])
            if entry is None:
                entry = entries[m["digest"]] = _IndexEntry(
                    m["digest"], int(m.get("size", 0)), m.get("mediaType", MEDIA_OCI_MANIFEST),
                    created=float(ann.get(CREATED_ANNOTATION, 0) or 0),
                )
            if REF_NAME in ann:
                entry.names.append(ann[REF_NAME])
        return list(entries.values())

    def _write_index(self, entries: list[_IndexEntry]) -> None:
        manifests = []
        for e in entries:
            base = {"mediaType": e.media_type, "digest": e.digest, "size": e.size}
            created = {CREATED_ANNOTATION: f"{e.created:.6f}"}
            if not e.names:
                manifests.append({**base, "annotations": created})
            for name in e.names:
                manifests.append({**base, "annotations": {REF_NAME: name, **created}})
        doc = {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests}
        atomic_write(self.oci / "index.json", json.dumps(doc, indent=1).encode(), tmp_dir=self.tmp)

    def _image_from_entry(self, e: _IndexEntry) -> Image:
        manifest = self.read_json(e.digest)
        config = self.read_json(manifest["config"]["digest"])
        return Image(e.digest, manifest, config, tuple(e.names), e.created)

    # -- images ----------------------------------------------------------------------------
    def add_image(
        self, manifest_bytes: bytes, tags: list[str] | tuple[str, ...] = (), media_type: str = MEDIA_OCI_MANIFEST
    ) -> Image:
        """Record a manifest whose config and layers are already stored; move ``tags`` to it."""
        manifest = json.loads(manifest_bytes)
        config_digest = manifest["config"]["digest"]
        for desc in [manifest["config"], *manifest.get("layers", [])]:
            if not self.has_blob(desc["digest"]):
                raise StoreError(f"add image: blob {desc['digest']} is not in the store")
        self.read_json(config_digest)
        names = [str(parse_reference(t)) for t in tags]
        digest, size = self.put_bytes(manifest_bytes)
        with self._index_lock():
            entries = self._read_index()
            existing = next((e for e in entries if e.digest == digest), None)
            if existing is not None and all(n in existing.names for n in names) and not any(
                    n in e.names for e in entries if e is not existing for n in names):
                return self._image_from_entry(existing)  # already so (a cached rebuild): no write
            for e in entries:
                e.names = [n for n in e.names if n not in names]
            if existing is None:
                existing = _IndexEntry(digest, size, media_type, created=time.time())
                entries.append(existing)
            existing.names.extend(n for n in names if n not in existing.names)
            self._write_index(entries)
        return self._image_from_entry(existing)

    def _config_of(self, e: _IndexEntry) -> str | None:
        try:
            return str(self.read_json(e.digest)["config"]["digest"])
        except (StoreError, KeyError, ValueError):
            return None

    def create_image(
        self,
        config: dict[str, Any],
        layers: list[dict[str, Any]],
        tags: list[str] | tuple[str, ...] = (),
    ) -> Image:
        """Write ``config`` and an OCI manifest over already-stored ``layers`` descriptors."""
        config_digest, config_size = self.put_bytes(canonical_json(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers,
        }
        return self.add_image(canonical_json(manifest), tags)

    def images(self) -> list[Image]:
        out = []
        for e in self._read_index():
            try:
                out.append(self._image_from_entry(e))
            except StoreError:
                continue  # a manifest whose blobs a concurrent rmi just removed
        return sorted(out, key=lambda i: -i.created_in_store)

    def get_image(self, name: str) -> Image:
        """Find by reference (``busybox``, ``busybox:1``), image ID, short ID or manifest digest.

        :raises ImageNotFoundError: nothing in the store has that name
        :raises InvalidArgumentError: ``name`` is not a valid reference (``bad::ref``)
        """
        entries = self._read_index()  # names are in the index: read no blob until one matches
        plain = name.removeprefix("sha256:")
        if plain and all(c in "0123456789abcdef" for c in plain) and len(plain) >= 4:
            by_id: dict[str, _IndexEntry] = {}
            for e in entries:
                config = self._config_of(e)
                if config and digest_hex(config).startswith(plain):
                    by_id.setdefault(config, e)
            if not by_id and len(plain) == 64:
                by_id = {e.digest: e for e in entries if e.digest == f"sha256:{plain}"}
            if len(by_id) == 1:
                return self._image_from_entry(next(iter(by_id.values())))
            if len(by_id) > 1:
                raise InvalidArgumentError(f"image ID {name!r} is ambiguous: give more of it")
        ref = parse_reference(name)  # a malformed name is an error of its own, as docker says
        full = str(ref)
        for e in entries:
            if full in e.names or (ref.digest and e.digest == ref.digest):
                try:
                    return self._image_from_entry(e)
                except StoreError:
                    break  # removed by a concurrent rmi between our reads
        raise ImageNotFoundError(f"No such image: {name}")

    def tag(self, source: str, target: str) -> Image:
        image = self.get_image(source)
        ref = parse_reference(target)
        if ref.digest:
            raise InvalidArgumentError(f"tag {target}: a tag cannot contain a digest")
        media = image.manifest.get("mediaType", MEDIA_OCI_MANIFEST)
        tagged = self.add_image(self.read_blob(image.manifest_digest), [str(ref)], media)
        events.record(self.root, "image", "tag", image.id, {"name": ref.familiar})
        return tagged

    def untag(self, name: str) -> tuple[Image, bool]:
        """Remove one name; returns (image, whether the image now has no name at all).

        An image left without a name leaves the index in the same locked write (as ``docker
        rmi`` deletes it), so that ``gc`` no longer counts its blobs as used.
        """
        image = self.get_image(name)
        ref_name: str | None = None
        with contextlib.suppress(InvalidArgumentError):
            ref_name = str(parse_reference(name))
        with self._index_lock():
            entries = self._read_index()
            entry = next(e for e in entries if e.digest == image.manifest_digest)
            if ref_name in entry.names:
                entry.names.remove(ref_name)
            else:
                entry.names.clear()  # removed by ID: every name goes
            empty = not entry.names
            if empty:
                entries.remove(entry)
            self._write_index(entries)
        return image, empty

    def remove_image(self, name: str, *, in_use: AbstractSet[str] = frozenset(), force: bool = False,
                     in_use_snapshots: AbstractSet[str] = frozenset()) -> list[str]:
        """``rmi``: untag, and delete the image when no name is left. Returns what was done.

        ``in_use`` are image IDs containers still use; removing one of those needs ``force``,
        and even then the snapshots in ``in_use_snapshots`` (diff_ids containers stack on) stay
        until the containers are gone and a later ``gc`` finds them unused.
        """
        image = self.get_image(name)
        by_id = name.removeprefix("sha256:") and image.id.removeprefix("sha256:").startswith(name.removeprefix("sha256:"))
        if by_id and len(image.tags) > 1 and not force:
            raise ConflictError(
                f"conflict: unable to delete {image.short_id} (must be forced) - image is referenced in multiple repositories"
            )
        if image.id in in_use and not force and (by_id or len(image.tags) <= 1):
            raise ConflictError(
                f"conflict: unable to remove repository reference {name!r} (must force) - "
                f"container is using its referenced image {image.short_id}"
            )
        done = []
        if by_id:
            with self._index_lock():
                entries = [e for e in self._read_index() if self._config_of(e) != image.id]
                self._write_index(entries)
            done += [f"Untagged: {parse_reference(t).familiar}" for t in image.tags]
            empty = True
        else:
            _, empty = self.untag(name)
            done.append(f"Untagged: {parse_reference(name).familiar}")
        for line in done:
            events.record(self.root, "image", "untag", image.id, {"name": line.removeprefix("Untagged: ")})
        if empty:
            events.record(self.root, "image", "delete", image.id, {"name": image.id})
            done.append(f"Deleted: {image.id}")
            own = {image.manifest_digest, image.id, *image.diff_ids, *(layer["digest"] for layer in image.layers)}
            self.gc(candidates={digest_hex(d) for d in own}, in_use_snapshots=in_use_snapshots)
        return done

    # -- snapshots -------------------------------------------------------------------------
    def snapshot_path(self, diff_id: str) -> Path:
        return self.snapshots / digest_hex(diff_id)

    def ensure_snapshot(self, diff_id: str, layer_digest: str) -> Path:
        """Unpack a layer once (under a lock: concurrent starts unpack it once)."""
        path = self.snapshot_path(diff_id)
        if path.exists():
            return path
        from pytest_pods.engine.image.layers import (
            unpack_layer,  # lazy: start latency (tarfile): only when there is work
        )

        with self.lock(f"snapshot-{digest_hex(diff_id)}"):
            if not path.exists():
                unpack_layer(self.blob_path(layer_digest), path)
        return path

    def lower_dirs(self, image: Image) -> list[Path]:
        """The image's snapshots, top layer first, as overlayfs ``lowerdir`` wants them."""
        diff_ids = image.diff_ids
        layers = image.layers
        if len(diff_ids) != len(layers):
            raise StoreError(f"image {image.short_id}: {len(layers)} layers but {len(diff_ids)} diff_ids")
        paths = [self.ensure_snapshot(d, layer["digest"]) for d, layer in zip(diff_ids, layers, strict=True)]
        # a layer present twice (two no-op RUNs give the same empty diff) may appear only once
        # in an overlay's lowerdir (ELOOP otherwise): its topmost place wins, which gives the
        # same tree, since the lower copy's changes are all made again above
        return list(dict.fromkeys(reversed(paths)))

    # -- crash hygiene -----------------------------------------------------------------------
    TEMP_GRACE = 3600.0
    """Age after which a temp entry that names no lease (an older version's) is taken for garbage."""

    def reap_temp(self) -> list[str]:
        """Release what killed writers left (issue 14): entries of ``tmp/`` whose lease names a
        process that is gone (build and commit views are unmounted first, deepest first, so that
        no removal reaches through a mount into a snapshot), half-written files beside the index,
        in the build cache and in volumes, and half-unpacked snapshots nobody is unpacking."""
        done = []
        now = time.time()
        for p in self.tmp.iterdir():
            owner = lease_of(p.name)
            try:
                if owner is not None and lease_alive(owner):
                    continue
                if owner is None and now - p.lstat().st_mtime < self.TEMP_GRACE:
                    continue
            except OSError:
                continue
            for point in _mount_points_under(p):
                with contextlib.suppress(OSError):
                    linux.umount(point, linux.MNT_DETACH)
            if _mount_points_under(p):
                continue  # still mounted (not ours to unmount): never remove through a mount
            remove_tree(p)
            done.append(f"removed temp {p.name}")
        for p in self.snapshots.iterdir():
            if not p.name.startswith(".unpack-"):
                continue
            hexpart = p.name.removeprefix(".unpack-").partition("-")[0]
            if len(hexpart) == 64 and not held(str(self.locks / f"snapshot-{hexpart}.lock")):
                remove_tree(p)  # its unpacker held that lock until it was killed
                done.append(f"removed half-unpacked snapshot {hexpart[:12]}")
        dirs = [self.oci, self.root / "build-cache", self.root / "build-cache" / "content"]
        with contextlib.suppress(OSError):
            dirs += [d for d in (self.root / "volumes").iterdir() if d.is_dir()]
        for d in dirs:
            done += remove_dead_leased(d)
        return done

    # -- garbage collection ----------------------------------------------------------------
    def gc(self, *, candidates: AbstractSet[str] = frozenset(), in_use_snapshots: AbstractSet[str] = frozenset(),
           grace: float = 3600.0, keep: AbstractSet[str] = frozenset()) -> int:
        """Delete blobs and snapshots no image references.

        ``candidates`` (hex digests of a just-removed image) go at once when unreferenced; other
        unreferenced blobs only when older than ``grace``, because a concurrent pull or build
        writes its blobs before it records the image that references them.
        ``in_use_snapshots`` are diff_ids that containers still stack on.
        """
        with self._index_lock():
            keep_blobs: set[str] = {digest_hex(d) for d in keep}  # e.g. the build cache's layers
            keep_snaps = {digest_hex(d) for d in in_use_snapshots} | keep_blobs
            for img in self.images():
                keep_blobs.add(digest_hex(img.manifest_digest))
                keep_blobs.add(digest_hex(img.id))
                keep_blobs.update(digest_hex(layer["digest"]) for layer in img.layers)
                keep_snaps.update(digest_hex(d) for d in img.diff_ids)
            removed = 0
            cutoff = time.time() - grace
            for p in self.blobs.iterdir():
                if p.name in keep_blobs or p.name.startswith("."):
                    continue
                if p.name in candidates or p.stat().st_mtime < cutoff:
                    p.unlink(missing_ok=True)
                    removed += 1
            for p in self.snapshots.iterdir():
                if p.name in keep_snaps or p.name.startswith("."):
                    continue
                if p.name in candidates or p.stat().st_mtime < cutoff or grace == 0:
                    remove_tree(p)
                    removed += 1
        return removed


def _mount_points_under(top: Path) -> list[str]:
    """Mount points at or below ``top`` in our mount namespace, deepest first."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    prefix = os.fsencode(top)
    out = []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), fields[4])
        if point == prefix or point.startswith(prefix + b"/"):
            out.append(os.fsdecode(point))
    return sorted(out, key=len, reverse=True)


class _BlobWriter:
    """A file-like sink that hashes while it writes and renames into place on success."""

    def __init__(self, store: Store, expected: str | None) -> None:
        self._store = store
        self._expected = expected
        fd, self._tmp = mkstemp(store.tmp, f"blob-{lease()}-")  # released by reap_temp once we are gone
        self._file = os.fdopen(fd, "wb")
        import hashlib  # lazy: start latency (OpenSSL's sha256, fastest for layers; only where blobs are written)

        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def write(self, data: bytes | memoryview, /) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._file.write(data)

    def _commit(self) -> None:
        self.digest = "sha256:" + self._hash.hexdigest()
        if self._expected is not None and self._expected != self.digest:
            raise StoreError(f"store blob {self._expected}: content digest is {self.digest}")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.rename(self._tmp, self._store.blob_path(self.digest))

    def _discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def image_reference_names(image: Image) -> list[Reference]:
    return [parse_reference(t) for t in image.tags]
