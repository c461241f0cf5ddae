"""``pods save`` and ``pods load``: images as a docker-archive, an OCI archive or an OCI layout dir.

A docker-archive is what ``docker save`` writes and ``docker load`` and skopeo read: a tar whose
``manifest.json`` lists, per image, its config file, its ``RepoTags`` and its layers as plain tars.
We write it the way docker 25+ does: every file is a blob of an OCI image layout in the same tar
(``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``), ``manifest.json`` points into
``blobs/``, and the legacy ``repositories`` file is kept for old readers. So one file is both a
docker-archive and an OCI layout, and no layer is in it twice.

Loading trusts nothing in the archive: member paths may not climb out of it, every layer is hashed
while it is stored (uncompressed, under its diff_id) and must match the config's
``rootfs.diff_ids``, every OCI blob must match its digest, and each layer is unpacked once so that a
malicious one is refused (LayerError). The original config bytes are stored, so an image keeps its
ID (the digest of its config) across save and load. Nothing is tagged unless every image in the
archive was verified; what a failed load stored and nothing references is removed again.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from pytest_pods.engine.image.bootstrap import go_arch
from pytest_pods.engine.image.reference import Reference, parse_reference
from pytest_pods.engine.image.store import (
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER,
    MEDIA_OCI_MANIFEST,
    REF_NAME,
    Image,
    Store,
    canonical_json,
    digest_hex,
    fsync_dir,
)
from pytest_pods.errors import InvalidArgumentError, LayerError, StoreError

__all__ = ["FORMATS", "load", "save"]

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
CONTAINERD_NAME = "io.containerd.image.name"  # the full name docker 25+ and containerd read

_CHUNK = 1 << 20
_MAX_JSON = 32 << 20  # manifests and configs are small; a huge one is an attack, not an image
_MAX_LINKS = 16
_OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_INDEX_TYPES = frozenset({MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST})
_MANIFEST_TYPES = frozenset({MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST})


# --------------------------------------------------------------------------------------------
# streams


class _HashingReader(io.RawIOBase):
    """Hashes and counts what is read through it, so a blob is verified in the pass that copies it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self._sha256.update(data)
        self.size += n
        return n

    @property
    def digest(self) -> str:
        return "sha256:" + self._sha256.hexdigest()


def _zstandard() -> Any:
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]  # lazy: optional (zstd layers only); no stubs
    except ImportError:
        return None
    return zstandard


def _decompressing(buf: io.BufferedReader[Any], what: str) -> IO[bytes]:
    """The plain tar inside ``buf``, chosen by magic bytes: tools disagree on media types."""
    head = buf.peek(4)[:4]
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buf, mode="rb")  # type: ignore[return-value]
    if head.startswith(_ZSTD_MAGIC):
        zstd = _zstandard()
        if zstd is None:
            raise LayerError(
                f"{what}: the layer is zstd-compressed, which needs the zstandard package: "
                "pip install zstandard. Fix this and try again."
            )
        reader: IO[bytes] = zstd.ZstdDecompressor().stream_reader(buf, read_across_frames=True)
        return reader
    return buf


def _decode_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, zlib.error]
    zstd = _zstandard()
    if zstd is not None:
        errors.append(zstd.ZstdError)
    return tuple(errors)


# --------------------------------------------------------------------------------------------
# save


class _Sink(Protocol):
    """Where ``save`` puts files: a tar stream or a directory. Each name is written once."""

    def size_of(self, name: str) -> int | None: ...

    def add_dir(self, name: str) -> None: ...

    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_stream(self, name: str, f: IO[bytes], size: int) -> None: ...


class _TarSink:
    """Tar members with fixed owner, mode and mtime, so equal images give equal archives."""

    def __init__(self, f: IO[bytes]) -> None:
        # "w|" writes strictly forward: the output may be a pipe (pods save | ssh host pods load).
        self._tf = tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 (closed in __exit__)
        self._sizes: dict[str, int] = {}

    def __enter__(self) -> _TarSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self._tf.close()  # writes the end-of-archive blocks
            return
        # On error no end-of-archive: a reader of the stream must see a truncated tar, not a
        # shorter valid one. Mark it closed so that tarfile does not flush it at exit either.
        # typeshed lacks these attributes (tarfile sets closed in __init__ and tests it in close())
        self._tf.closed = True  # type: ignore[attr-defined]
        self._tf.fileobj.closed = True  # type: ignore[attr-defined]  # tarfile's _Stream: its close() would flush

    def size_of(self, name: str) -> int | None:
        return self._sizes.get(name)

    @staticmethod
    def _info(name: str, size: int, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.size = size
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def add_dir(self, name: str) -> None:
        if name not in self._sizes:
            self._tf.addfile(self._info(name, 0, tarfile.DIRTYPE))
            self._sizes[name] = 0

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, io.BytesIO(data), len(data))

    def add_stream(self, name: str, f: IO[bytes], size: int) -> None:
        if name not in self._sizes:
            self._tf.addfile(self._info(name, size, tarfile.REGTYPE), f)
            self._sizes[name] = size


class _DirSink:
    """Files under ``root``, each fsynced: the directory is renamed into place when complete."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._sizes: dict[str, int] = {}

    def size_of(self, name: str) -> int | None:
        return self._sizes.get(name)

    def add_dir(self, name: str) -> None:
        (self._root / name).mkdir(parents=True, exist_ok=True)
        self._sizes.setdefault(name, 0)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, io.BytesIO(data), len(data))

    def add_stream(self, name: str, f: IO[bytes], size: int) -> None:
        if name in self._sizes:
            return
        path = self._root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as out:
            shutil.copyfileobj(f, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        self._sizes[name] = size


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _copy_blob(store: Store, sink: _Sink, digest: str) -> int:
    """Copy a store blob as is, checking its digest on the way: never export a corrupt store."""
    name = _blob_name(digest)
    known = sink.size_of(name)
    if known is not None:
        return known
    try:
        f = open(store.blob_path(digest), "rb")  # noqa: SIM115 (closed below, after the copy)
    except FileNotFoundError:
        raise StoreError(f"save: blob {digest} is missing from the store. Pull or build the image again.") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        reader = _HashingReader(f)
        sink.add_stream(name, reader, size)  # type: ignore[arg-type]
    if reader.digest != digest:
        raise StoreError(
            f"save: blob {digest} in the store is corrupt (its content is {reader.digest}). "
            "Remove the image and pull or build it again."
        )
    return size


def _plain_layer(store: Store, sink: _Sink, layer: dict[str, Any], diff_id: str) -> dict[str, Any]:
    """Put a layer into the archive uncompressed (docker-archive layers are plain tars)."""
    if layer["digest"] == diff_id:
        size = _copy_blob(store, sink, diff_id)
        return {"mediaType": MEDIA_OCI_LAYER, "digest": diff_id, "size": size}
    name = _blob_name(diff_id)
    known = sink.size_of(name)
    if known is not None:
        return {"mediaType": MEDIA_OCI_LAYER, "digest": diff_id, "size": known}
    what = f"save: layer {layer['digest']}"
    # A tar header needs the size before the data: decompress to a temp file first (streamed).
    with tempfile.TemporaryFile(dir=store.tmp) as tmp:
        try:
            raw_file = open(store.blob_path(layer["digest"]), "rb")  # noqa: SIM115 (closed with the stream)
        except FileNotFoundError:
            raise StoreError(f"{what} is missing from the store. Pull or build the image again.") from None
        with raw_file:
            raw = _HashingReader(raw_file)
            buf = io.BufferedReader(raw, _CHUNK)
            try:
                plain = _HashingReader(_decompressing(buf, what))
                shutil.copyfileobj(plain, tmp, _CHUNK)
                while buf.read(_CHUNK):
                    pass
            except _decode_errors() as exc:
                raise StoreError(f"{what}: corrupt compressed data in the store: {exc}") from exc
        if raw.digest != layer["digest"] or plain.digest != diff_id:
            raise StoreError(
                f"{what}: the store's blob does not match its digest or diff_id {diff_id}. "
                "Remove the image and pull or build it again."
            )
        tmp.seek(0)
        sink.add_stream(name, tmp, plain.size)
    return {"mediaType": MEDIA_OCI_LAYER, "digest": diff_id, "size": plain.size}


def _tag_of(name: str, image: Image) -> Reference | None:
    """The tag ``name`` gives the image in the archive: none when it names the image by ID."""
    plain = name.removeprefix("sha256:")
    if plain and all(c in "0123456789abcdef" for c in plain) and (
        digest_hex(image.id).startswith(plain) or image.manifest_digest == f"sha256:{plain}"
    ):
        return None
    ref = parse_reference(name)
    return Reference(ref.domain, ref.path, ref.tag) if ref.tag else None


def _select(store: Store, names: list[str]) -> list[tuple[Image, list[Reference]]]:
    """Resolve every name before writing anything; several names of one image are one entry."""
    chosen: dict[str, tuple[Image, list[Reference]]] = {}
    for name in names:
        image = store.get_image(name)
        _, refs = chosen.setdefault(image.id, (image, []))
        ref = _tag_of(name, image)
        if ref is not None and ref not in refs:
            refs.append(ref)
    return list(chosen.values())


def _docker_manifest(store: Store, image: Image, layers: list[dict[str, Any]]) -> bytes:
    """The stored manifest when it already is OCI with plain layers (keeps its digest), else a new one."""
    m = image.manifest
    if (
        m.get("mediaType") == MEDIA_OCI_MANIFEST
        and m.get("config", {}).get("mediaType") == MEDIA_OCI_CONFIG
        and [(x.get("mediaType"), x.get("digest")) for x in image.layers]
        == [(MEDIA_OCI_LAYER, x["digest"]) for x in layers]
    ):
        return store.read_blob(image.manifest_digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": image.id, "size": int(m["config"]["size"])},
        "layers": layers,
    }
    return canonical_json(manifest)


def _index(manifests: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": manifests}).encode()


def _write_docker(store: Store, selected: list[tuple[Image, list[Reference]]], sink: _Sink) -> None:
    sink.add_dir("blobs/")
    sink.add_dir("blobs/sha256/")
    items: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image, refs in selected:
        if len(image.diff_ids) != len(image.layers):
            raise StoreError(f"save {image.short_id}: {len(image.layers)} layers but {len(image.diff_ids)} diff_ids")
        _copy_blob(store, sink, image.id)
        layers = [_plain_layer(store, sink, layer, d) for layer, d in zip(image.layers, image.diff_ids, strict=False)]
        manifest = _docker_manifest(store, image, layers)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        sink.add_bytes(_blob_name(digest), manifest)
        items.append({
            "Config": _blob_name(image.id),
            "RepoTags": [r.familiar for r in refs] or None,  # docker writes null for an ID
            "Layers": [_blob_name(x["digest"]) for x in layers],
        })
        desc = {"mediaType": MEDIA_OCI_MANIFEST, "digest": digest, "size": len(manifest)}
        # docker 25+: the full name for containerd, the bare tag as ref.name
        index += [{**desc, "annotations": {CONTAINERD_NAME: str(r), REF_NAME: r.tag}} for r in refs] or [desc]
        for r in refs:
            repositories.setdefault(r.familiar_repository, {})[str(r.tag)] = digest_hex(image.id)
    sink.add_bytes("index.json", _index(index))
    sink.add_bytes("manifest.json", json.dumps(items).encode())
    sink.add_bytes("oci-layout", _OCI_LAYOUT)
    if repositories:
        sink.add_bytes("repositories", json.dumps(repositories).encode())


def _write_oci(store: Store, selected: list[tuple[Image, list[Reference]]], sink: _Sink) -> None:
    """An OCI layout holding the stored blobs as they are (layers may stay compressed)."""
    sink.add_bytes("oci-layout", _OCI_LAYOUT)
    sink.add_dir("blobs/")
    sink.add_dir("blobs/sha256/")
    index: list[dict[str, Any]] = []
    for image, refs in selected:
        _copy_blob(store, sink, image.id)
        for layer in image.layers:
            _copy_blob(store, sink, layer["digest"])
        size = _copy_blob(store, sink, image.manifest_digest)
        desc = {
            "mediaType": image.manifest.get("mediaType", MEDIA_OCI_MANIFEST),
            "digest": image.manifest_digest,
            "size": size,
        }
        # the full reference, as podman writes it and as our own store keeps it
        index += [{**desc, "annotations": {REF_NAME: str(r), CONTAINERD_NAME: str(r)}} for r in refs] or [desc]
    sink.add_bytes("index.json", _index(index))


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[IO[bytes]]:
    """A temp file beside ``dest``, renamed over it only when complete: no half archives."""
    if dest.is_dir():
        raise InvalidArgumentError(f"save {dest}: is a directory: give a file name")
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    except OSError as exc:
        raise InvalidArgumentError(f"save {dest}: cannot create the file: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _atomic_dir(dest: Path) -> Iterator[Path]:
    """A temp directory beside ``dest``, renamed onto it (absent or empty) when complete."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidArgumentError(f"save {dest}: exists and is not an empty directory: give a new directory")
    try:
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    except OSError as exc:
        raise InvalidArgumentError(f"save {dest}: cannot create the directory: {exc.strerror}") from exc
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)  # rename(2) replaces an empty directory atomically
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save(
    store: Store,
    names: list[str],
    out: str | os.PathLike[str] | BinaryIO,
    *,
    format: str = "docker-archive",
) -> None:
    """``pods save``: write images as a docker-archive (default), an OCI archive or an OCI dir.

    :param names: image references or IDs; a reference becomes a tag in the archive, an ID none
    :param out: a file path (written atomically), a binary stream (tar formats only), or for
        ``oci-dir`` a directory that does not exist yet or is empty
    :raises ImageNotFoundError: a name is not in the store (nothing is written)
    :raises StoreError: a blob is missing or corrupt in the store (nothing is left behind)
    """
    if format not in FORMATS:
        raise InvalidArgumentError(f"save: unknown format {format!r}: use one of {', '.join(FORMATS)}")
    if not names:
        raise InvalidArgumentError("save: no images given: name at least one")
    selected = _select(store, names)
    if format == "oci-dir":
        if not isinstance(out, (str, os.PathLike)):
            raise InvalidArgumentError("save: format oci-dir writes a directory: give its path")
        with _atomic_dir(Path(out)) as root:
            _write_oci(store, selected, _DirSink(root))
        return
    write = _write_docker if format == "docker-archive" else _write_oci
    if isinstance(out, (str, os.PathLike)):
        with _atomic_file(Path(out)) as f, _TarSink(f) as sink:
            write(store, selected, sink)
    else:
        with _TarSink(out) as sink:
            write(store, selected, sink)


# --------------------------------------------------------------------------------------------
# load: sources


def _clean(name: str) -> str | None:
    """A relative member path without ``.``/empty parts; None if absolute or holding ``..``."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/".join(parts)


class _Source(Protocol):
    label: str

    def has(self, name: str) -> bool: ...

    def open(self, name: str, what: str) -> IO[bytes]: ...


class _TarSource:
    """A seekable tar: the member table is read once, then members are read at random."""

    def __init__(self, f: IO[bytes], label: str) -> None:
        self.label = label
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            self._tf = tarfile.open(fileobj=f, mode="r:")  # noqa: SIM115 (closed with the reader)
            for m in self._tf:
                name = _clean(m.name.lstrip("/"))
                if name:  # members named with ".." can never be asked for
                    self._members[name] = m
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise StoreError(
                f"load {label}: not a tar archive ({exc}). Give a file written by pods save or docker save."
            ) from exc

    def _resolve(self, name: str, what: str) -> tarfile.TarInfo | None:
        """Follow symlinks inside the archive (old docker save links shared layers)."""
        m = self._members.get(name)
        for _ in range(_MAX_LINKS):
            if m is None or not m.issym():
                return m
            # resolved in the archive's scope, like docker's loader: ".." stops at its root
            target = posixpath.normpath(posixpath.join("/", posixpath.dirname(name), m.linkname)).lstrip("/")
            name, m = target, self._members.get(target)
        raise StoreError(f"load {self.label}: {what}: too many symlinks at {name!r}")

    def has(self, name: str) -> bool:
        return self._resolve(name, name) is not None

    def open(self, name: str, what: str) -> IO[bytes]:
        m = self._resolve(name, what)
        if m is None:
            raise StoreError(f"load {self.label}: {what}: member {name!r} is missing from the archive")
        f = self._tf.extractfile(m) if (m.isreg() or m.islnk()) else None
        if f is None:
            raise StoreError(f"load {self.label}: {what}: member {name!r} is not a regular file")
        return f


class _DirSource:
    """An OCI layout (or an unpacked docker-archive) directory; paths may not leave it."""

    def __init__(self, root: Path) -> None:
        self.label = str(root)
        self._real = os.path.realpath(root)

    def _path(self, name: str, what: str) -> str:
        path = os.path.realpath(os.path.join(self._real, name))
        if not path.startswith(self._real + os.sep):
            raise StoreError(f"load {self.label}: {what}: {name!r} leads outside the directory")
        return path

    def has(self, name: str) -> bool:
        return os.path.isfile(self._path(name, name))

    def open(self, name: str, what: str) -> IO[bytes]:
        path = self._path(name, what)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise StoreError(f"load {self.label}: {what}: {name!r} is missing from the directory") from None
        except IsADirectoryError:
            raise StoreError(f"load {self.label}: {what}: {name!r} is not a regular file") from None


def _seekable(f: IO[bytes]) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def _open_source(store: Store, src: str | os.PathLike[str] | BinaryIO) -> Iterator[_Source]:
    """A directory, a tar file, or a stream (spooled to ``store.tmp`` when it cannot seek)."""
    with contextlib.ExitStack() as stack:
        if isinstance(src, (str, os.PathLike)):
            path = Path(src)
            if path.is_dir():
                yield _DirSource(path)
                return
            label = str(path)
            try:
                f: IO[bytes] = stack.enter_context(open(path, "rb"))
            except FileNotFoundError:
                raise InvalidArgumentError(f"load {label}: no such file") from None
        else:
            f = src
            name = getattr(src, "name", None)
            label = name if isinstance(name, str) else "<stream>"
        if not _seekable(f):
            spool = stack.enter_context(tempfile.TemporaryFile(dir=store.tmp))
            shutil.copyfileobj(f, spool, _CHUNK)
            spool.seek(0)
            f = spool
        start = f.tell()
        magic = f.read(2)
        f.seek(start)
        if magic == _GZIP_MAGIC:  # docker save | gzip: random access needs it plain
            spool = stack.enter_context(tempfile.TemporaryFile(dir=store.tmp))
            try:
                shutil.copyfileobj(gzip.GzipFile(fileobj=f, mode="rb"), spool, _CHUNK)
            except (OSError, EOFError, zlib.error) as exc:
                raise StoreError(f"load {label}: corrupt gzip data: {exc}") from exc
            spool.seek(0)
            f = spool
        yield _TarSource(f, label)


# --------------------------------------------------------------------------------------------
# load: verify and store


@dataclass
class _Pending:
    """An image whose blobs are stored and verified, to be recorded once all of them are."""

    config: bytes
    layers: list[dict[str, Any]]
    tags: list[str]


@dataclass
class _Undo:
    """What this load added to the store, removed again on failure unless an image uses it."""

    blobs: set[str] = field(default_factory=set)
    snapshots: set[str] = field(default_factory=set)

    def run(self, store: Store) -> None:
        if not (self.blobs or self.snapshots):
            return
        keep: set[str] = set()
        for image in store.images():  # a concurrent load may have recorded the same layer
            keep.update(image.diff_ids)
            keep.update(layer["digest"] for layer in image.layers)
        for digest in self.blobs - keep:
            store.blob_path(digest).unlink(missing_ok=True)
        for diff_id in self.snapshots - keep:
            shutil.rmtree(store.snapshot_path(diff_id), ignore_errors=True)


def _read_small(source: _Source, name: str, what: str) -> bytes:
    with source.open(name, what) as f:
        data = f.read(_MAX_JSON + 1)
    if len(data) > _MAX_JSON:
        raise StoreError(f"load {source.label}: {what}: {name!r} is larger than {_MAX_JSON} bytes")
    return data


def _parse_json(source: _Source, data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StoreError(f"load {source.label}: {what}: not valid JSON: {exc}") from exc


def _archive_path(source: _Source, value: Any, what: str) -> str:
    name = _clean(value) if isinstance(value, str) else None
    if not name:
        raise StoreError(f"load {source.label}: {what}: path {value!r} escapes the archive or is empty")
    return name


def _diff_ids(source: _Source, config_bytes: bytes, what: str) -> list[str]:
    config = _parse_json(source, config_bytes, what)
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise StoreError(f"load {source.label}: {what}: not an image config (no rootfs.diff_ids)")
    for d in diff_ids:
        try:
            digest_hex(d if isinstance(d, str) else "")
        except InvalidArgumentError:
            raise StoreError(f"load {source.label}: {what}: bad diff_id {d!r}") from None
    return diff_ids


def _repo_tag(source: _Source, value: Any, what: str) -> str:
    try:
        ref = parse_reference(value) if isinstance(value, str) else None
    except InvalidArgumentError as exc:
        raise StoreError(f"load {source.label}: {what}: {exc}") from None
    if ref is None or ref.digest:
        raise StoreError(f"load {source.label}: {what}: bad RepoTags entry {value!r}: expected name:tag")
    return str(ref)


def _import_layer(
    store: Store, source: _Source, name: str, diff_id: str, undo: _Undo, *,
    blob_digest: str | None = None, blob_size: int | None = None,
) -> dict[str, Any]:
    """Store one layer uncompressed under its diff_id, verifying both digests in one pass, and unpack it.

    Unpacking now, not at first run, is what refuses a malicious layer before any tag points at it.
    """
    what = f"load {source.label}: layer {name!r}"
    existed = store.has_blob(diff_id)
    with source.open(name, f"layer {name!r}") as raw_file:
        raw = _HashingReader(raw_file)
        buf = io.BufferedReader(raw, _CHUNK)
        w: Any = None
        try:
            with store.blob_writer(diff_id) as w:
                shutil.copyfileobj(_decompressing(buf, what), w, _CHUNK)
                while buf.read(_CHUNK):  # trailing bytes still count for the blob's digest
                    pass
                if blob_digest is not None and raw.digest != blob_digest:
                    raise StoreError(f"{what}: content digest is {raw.digest}, but the manifest says {blob_digest}")
                if blob_size is not None and raw.size != blob_size:
                    raise StoreError(f"{what}: {raw.size} bytes, but the manifest says {blob_size}")
        except StoreError:
            if w is not None and w.digest and w.digest != diff_id:  # the writer's own check
                raise StoreError(
                    f"{what}: its uncompressed content is {w.digest}, but the config's rootfs.diff_ids "
                    f"says {diff_id}: the archive is corrupt or was altered"
                ) from None
            raise
        except (LayerError, InvalidArgumentError):
            raise
        except _decode_errors() as exc:
            raise LayerError(f"{what}: corrupt or truncated data: {exc}") from exc
    size = int(w.size)
    if not existed:
        undo.blobs.add(diff_id)
    snapshot_existed = store.snapshot_path(diff_id).exists()
    try:
        store.ensure_snapshot(diff_id, diff_id)
    except LayerError as exc:
        exc.add_note(f"while loading {what}")
        raise
    if not snapshot_existed:
        undo.snapshots.add(diff_id)
    return {"mediaType": MEDIA_OCI_LAYER, "digest": diff_id, "size": size}


def _load_docker(store: Store, source: _Source, undo: _Undo) -> list[_Pending]:
    """Read manifest.json and check every entry before the first layer is stored."""
    doc = _parse_json(source, _read_small(source, "manifest.json", "manifest.json"), "manifest.json")
    if not isinstance(doc, list) or not doc:
        raise StoreError(f"load {source.label}: manifest.json: expected a non-empty list of images")
    plans: list[tuple[bytes, list[tuple[str, str]], list[str]]] = []
    for i, item in enumerate(doc):
        where = f"manifest.json entry {i}"
        if not isinstance(item, dict):
            raise StoreError(f"load {source.label}: {where}: expected an object with Config and Layers")
        tags = [_repo_tag(source, t, where) for t in item.get("RepoTags") or []]
        config_name = _archive_path(source, item.get("Config"), f"{where}: Config")
        layer_values = item.get("Layers") or []
        if not isinstance(layer_values, list):
            raise StoreError(f"load {source.label}: {where}: Layers is not a list")
        layer_names = [_archive_path(source, p, f"{where}: Layers") for p in layer_values]
        config = _read_small(source, config_name, f"{where}: Config")
        diff_ids = _diff_ids(source, config, f"config {config_name!r}")
        if len(diff_ids) != len(layer_names):
            raise StoreError(
                f"load {source.label}: {where}: {len(layer_names)} layers but the config "
                f"{config_name!r} has {len(diff_ids)} diff_ids"
            )
        for name in layer_names:
            if not source.has(name):
                raise StoreError(f"load {source.label}: {where}: layer {name!r} is missing from the archive")
        plans.append((config, list(zip(layer_names, diff_ids, strict=False)), list(dict.fromkeys(tags))))
    done: dict[tuple[str, str], dict[str, Any]] = {}
    pending = []
    for config, layers, tags in plans:
        for key in layers:
            if key not in done:  # a base layer shared by several images is read once
                done[key] = _import_layer(store, source, key[0], key[1], undo)
        pending.append(_Pending(config, [done[key] for key in layers], tags))
    return pending


def _read_blob(source: _Source, desc: Any, what: str) -> tuple[str, bytes]:
    """A small OCI blob (index, manifest, config), checked against its descriptor."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
        raise StoreError(f"load {source.label}: {what}: not a descriptor with a digest")
    digest = desc["digest"]
    try:
        name = _blob_name(digest)
    except InvalidArgumentError:
        raise StoreError(f"load {source.label}: {what}: unsupported digest {digest!r} (only sha256)") from None
    data = _read_small(source, name, what)
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise StoreError(f"load {source.label}: {what}: blob {name!r} has content digest {actual}, not {digest}")
    if "size" in desc and desc["size"] != len(data):
        raise StoreError(f"load {source.label}: {what}: blob {name!r} is {len(data)} bytes, not {desc['size']}")
    return name, data


def _oci_tag(annotations: Any) -> str | None:
    """containerd's full name if present, else ref.name when it is a reference (skopeo's ``oci:DIR:name``)."""
    if not isinstance(annotations, dict):
        return None
    value = annotations.get(CONTAINERD_NAME) or annotations.get(REF_NAME)
    if not isinstance(value, str):
        return None
    try:
        ref = parse_reference(value)
    except InvalidArgumentError:
        return None  # a ref.name that is no image name: load the image untagged
    return str(ref) if ref.tag and not ref.digest else None


def _image_manifest(source: _Source, desc: Any, what: str, depth: int = 0) -> tuple[str, dict[str, Any]]:
    """The image manifest a descriptor leads to; from an index, the one for this host's platform."""
    name, data = _read_blob(source, desc, what)
    doc = _parse_json(source, data, what)
    if not isinstance(doc, dict):
        raise StoreError(f"load {source.label}: {what}: {name!r} is not a manifest")
    media = desc.get("mediaType") or doc.get("mediaType")
    if media in _INDEX_TYPES or ("manifests" in doc and "layers" not in doc):
        children = [c for c in doc.get("manifests") or [] if isinstance(c, dict)]
        real = [c for c in children if (c.get("platform") or {}).get("os") != "unknown"]  # attestations
        ours = [c for c in real if (c.get("platform") or {}).get("architecture") == go_arch()]
        pick = ours or (real if len(real) == 1 else [])
        if not pick or depth > 3:
            raise StoreError(f"load {source.label}: {what}: index {name!r} has no image for linux/{go_arch()}")
        return _image_manifest(source, pick[0], f"{what} -> {pick[0].get('digest')}", depth + 1)
    if media not in _MANIFEST_TYPES and not isinstance(doc.get("layers"), list):
        raise StoreError(f"load {source.label}: {what}: {name!r} has unsupported media type {media!r}")
    return desc["digest"], doc


def _load_oci(store: Store, source: _Source, undo: _Undo) -> list[_Pending]:
    """Read index.json, resolve and check every manifest before the first layer is stored."""
    if source.has("oci-layout"):
        layout = _parse_json(source, _read_small(source, "oci-layout", "oci-layout"), "oci-layout")
        if not isinstance(layout, dict) or not str(layout.get("imageLayoutVersion", "")).startswith("1."):
            raise StoreError(f"load {source.label}: oci-layout: unsupported image layout version")
    index = _parse_json(source, _read_small(source, "index.json", "index.json"), "index.json")
    descs = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(descs, list) or not descs:
        raise StoreError(f"load {source.label}: index.json: no manifests in it")
    images: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for i, desc in enumerate(descs):
        digest, manifest = _image_manifest(source, desc, f"index.json manifest {i}")
        _, tags = images.setdefault(digest, (manifest, []))
        tag = _oci_tag(desc.get("annotations"))
        if tag and tag not in tags:
            tags.append(tag)
    plans = []
    for digest, (manifest, tags) in images.items():
        what = f"manifest {digest}"
        _, config = _read_blob(source, manifest.get("config"), f"{what}: config")
        diff_ids = _diff_ids(source, config, f"{what}: config")
        layers = manifest.get("layers")
        if not isinstance(layers, list) or len(layers) != len(diff_ids):
            raise StoreError(f"load {source.label}: {what}: its layers do not match the config's diff_ids")
        names = []
        for layer in layers:
            try:
                name = _blob_name(layer["digest"])
            except (TypeError, KeyError, InvalidArgumentError):
                raise StoreError(f"load {source.label}: {what}: bad layer descriptor {layer!r}") from None
            if not source.has(name):
                raise StoreError(f"load {source.label}: {what}: layer blob {name!r} is missing")
            names.append(name)
        plans.append((config, list(zip(names, layers, diff_ids, strict=False)), tags))
    pending = []
    for config, layer_plan, tags in plans:
        descs_out = []
        for name, layer, diff_id in layer_plan:
            size = layer.get("size")
            descs_out.append(_import_layer(
                store, source, name, diff_id, undo,
                blob_digest=layer["digest"] if layer["digest"] != diff_id else None,  # the writer checks that one
                blob_size=size if isinstance(size, int) else None,
            ))
        pending.append(_Pending(config, descs_out, tags))
    return pending


def _commit(store: Store, pending: list[_Pending]) -> list[str]:
    """Record the images over their original config bytes, so each keeps its image ID."""
    lines = []
    for p in pending:
        config_digest, config_size = store.put_bytes(p.config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": p.layers,
        }
        image = store.add_image(canonical_json(manifest), p.tags)
        tagged = [f"Loaded image: {parse_reference(t).familiar}" for t in p.tags]
        lines += tagged or [f"Loaded image ID: {image.id}"]
    return lines


def load(store: Store, src: str | os.PathLike[str] | BinaryIO) -> list[str]:
    """``pods load``: images from a docker-archive, an OCI archive or an OCI layout directory.

    :param src: a tar file (gzip-compressed is fine), a directory, or a binary stream
    :returns: what docker prints: ``Loaded image: busybox:latest`` or ``Loaded image ID: sha256:...``
    :raises StoreError: not an archive, a member missing or escaping, a digest mismatch
    :raises LayerError: a layer is corrupt or unsafe
    Nothing is tagged unless every image verified; blobs and snapshots the failed load added
    and no image uses are removed again.
    """
    undo = _Undo()
    try:
        with _open_source(store, src) as source:
            if source.has("manifest.json"):
                pending = _load_docker(store, source, undo)
            elif source.has("index.json"):
                pending = _load_oci(store, source, undo)
            else:
                raise StoreError(
                    f"load {source.label}: no manifest.json or index.json in it: not a docker-archive "
                    "or an OCI layout. Give a file written by pods save or docker save."
                )
        return _commit(store, pending)
    except BaseException:
        undo.run(store)
        raise
