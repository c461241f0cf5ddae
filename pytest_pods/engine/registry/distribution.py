"""Pull and push images by the OCI distribution spec.

HTTP (auth challenges, TLS rules, redirects) is ``transport.RegistryClient``'s job; this module
speaks the protocol over it:

- pull: manifest (index or list -> the platform's manifest), config, layers in parallel. Every
  document and blob is verified against the digest that names it, so a registry or proxy cannot
  hand us other bytes. Blobs stream into ``Store.blob_writer`` and appear only when complete and
  verified. Layers are stored as the registry serves them (gzip, zstd or plain) and the manifest
  as its original bytes, so digests (image ID, manifest digest, RepoDigests) stay the registry's.
- push: blobs the destination lacks (HEAD), mounted from another repository of the same registry
  when we know one holds them, else uploaded monolithically or in chunks; then the manifest,
  byte for byte as stored.

Transient failures (connection errors, 5xx, truncated bodies, a body that fails verification)
are retried with exponential backoff; an interrupted blob download resumes with ``Range`` where
the registry answers ``206``.

Which repositories hold a blob is remembered in ``root/registry/blobs/<hex>.json`` (a list of
``host/path`` repositories, written on pull and push), so that pushing a pulled image to another
repository of the same registry mounts its blobs instead of uploading them.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform as _platform
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pytest_pods.engine.image.reference import Reference, parse_reference
from pytest_pods.engine.image.store import (
    MEDIA_DOCKER_CONFIG,
    MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST,
    Image,
    Store,
    atomic_write,
    digest_hex,
    sha256_digest,
)
from pytest_pods.engine.locks import FileLock
from pytest_pods.engine.registry.http import RegistryClient
from pytest_pods.errors import InvalidArgumentError, PodsError, RegistryError, StoreError

__all__ = ["PullResult", "RegistryError", "default_platform", "pull", "push"]

MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
MEDIA_DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v1+prettyjws")

ATTEMPTS = 5
BACKOFF_MIN = 0.1
BACKOFF_MAX = 2.0
CHUNKED_THRESHOLD = 64 << 20  # blobs larger than this go up in chunks of DEFAULT_CHUNK
DEFAULT_CHUNK = 16 << 20
MAX_MANIFEST = 4 << 20  # the spec's suggested limit; a larger "manifest" is not one
_READ = 1 << 16  # downloads: small enough that a dropped connection keeps most of what came
_UPLOAD_READ = 1 << 20  # uploads: 64 KiB pieces cost a send per 64 KiB on a 200 MB push

Progress = Callable[[dict[str, Any]], None]
ClientFactory = Callable[..., RegistryClient]


# One error class for the registry layer: transport's (auth and TLS errors are its subclasses).

class PullResult(NamedTuple):
    """What ``pull`` did: the stored image, the manifest digest pulled and the blob counts."""

    image: Image
    digest: str
    layers_fetched: int
    layers_present: int


class _Transient(Exception):
    """Internal: worth another attempt (5xx, a truncated body, bytes that fail verification)."""


_RETRY_ON = (
    _Transient,
    requests.ConnectionError,  # includes refused, reset and read timeouts on connect
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # a body cut short (IncompleteRead)
    requests.exceptions.ContentDecodingError,
)


def _retrying() -> Retrying:
    return Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=BACKOFF_MIN, min=BACKOFF_MIN, max=BACKOFF_MAX),
        retry=retry_if_exception_type(_RETRY_ON),
        reraise=True,
    )


# --------------------------------------------------------------------------------------------
# small helpers


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def _error_text(resp: requests.Response) -> str:
    """The registry's own words (``manifest unknown``) from its JSON errors, else the status."""
    try:
        doc = resp.json()
        errs = doc.get("errors") or []
        msgs = [str(e.get("message") or e.get("code", "")).strip() for e in errs if isinstance(e, dict)]
        msgs = [m for m in msgs if m]
        if msgs:
            return "; ".join(msgs)
    except (ValueError, AttributeError):
        pass
    reason = resp.reason or ""
    return f"{resp.status_code} {reason}".strip()


def _check(resp: requests.Response, op: str, *ok: int) -> None:
    """Raise for an unexpected status: transient for 5xx and 429, RegistryError otherwise."""
    if resp.status_code in ok:
        return
    text = _error_text(resp)
    resp.close()
    if resp.status_code >= 500 or resp.status_code == 429:
        raise _Transient(f"{op}: {text}")
    raise RegistryError(f"{op}: {text}")


def _final_error(op: str, what: str, exc: BaseException) -> RegistryError:
    """After the last attempt: one clear message. Only the exception's type is named for
    connection errors: their text holds URLs, which could carry credentials."""
    if isinstance(exc, _Transient):
        text = str(exc) if str(exc).startswith(f"{op}: ") else f"{op}: {exc}"
        return RegistryError(f"{text} (after {ATTEMPTS} attempts)")
    if isinstance(exc, requests.RequestException):
        kind = type(exc).__name__
        return RegistryError(f"{op}: {what}: {kind} (after {ATTEMPTS} attempts). Is the registry reachable?")
    return RegistryError(f"{op}: {what}: {type(exc).__name__}: {exc}")


def default_platform() -> str:
    """This machine as a registry names platforms: ``linux/amd64``, ``linux/arm64/v8``, ..."""
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
            "riscv64": "riscv64"}.get(machine)
    if arch == "arm64":
        return "linux/arm64/v8"
    if arch is None and machine.startswith("armv"):
        return f"linux/arm/v{machine[4]}" if machine[4:5].isdigit() else "linux/arm"
    return f"linux/{arch or _platform.machine()}"


def _parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgumentError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else None
    if arch == "arm64" and variant is None:
        variant = "v8"  # arm64 means v8 unless said otherwise, as containerd normalizes it
    if arch == "aarch64":
        arch = "arm64"
    if arch == "x86_64":
        arch = "amd64"
    return os_, arch, variant


def _choose_platform(index: dict[str, Any], wanted: str, op: str) -> dict[str, Any]:
    """The index entry for ``wanted``; an entry without a variant matches any wanted variant."""
    os_, arch, variant = _parse_platform(wanted)
    exact: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    seen: list[str] = []
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        d_os, d_arch = str(p.get("os", "")).lower(), str(p.get("architecture", "")).lower()
        d_var = p.get("variant")
        d_var = str(d_var).lower() if d_var else ("v8" if d_arch == "arm64" else None)
        if d_os and d_arch and d_os != "unknown":
            seen.append("/".join(x for x in (d_os, d_arch, d_var) if x))
        if d_os != os_ or d_arch != arch or desc.get("mediaType") not in (*MANIFEST_TYPES, *INDEX_TYPES, None):
            continue
        if d_var == variant:
            exact.append(desc)
        elif d_var is None or variant is None:
            loose.append(desc)
    found = exact or loose
    if not found:
        avail = ", ".join(sorted(set(seen))) or "none"
        raise RegistryError(f"{op}: no manifest for platform {wanted} (the image has: {avail})")
    return found[0]


def _location(resp: requests.Response, op: str) -> str:
    """The upload URL a response gives; a Location may be relative (the spec allows it), so it is
    resolved against the URL that answered."""
    location = resp.headers.get("Location")
    if not location:
        raise RegistryError(f"{op}: the registry gave no upload Location")
    return urllib.parse.urljoin(resp.url, location)


def _with_query(url: str, **params: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + urllib.parse.urlencode(params)


# --------------------------------------------------------------------------------------------
# where blobs came from (for cross-repository mounts)


def _sources_dir(store: Store) -> Path:
    return store.root / "registry" / "blobs"


def known_repositories(store: Store, digest: str) -> list[str]:
    """``host/path`` repositories known to hold ``digest``, most recent first."""
    try:
        data = json.loads((_sources_dir(store) / f"{digest_hex(digest)}.json").read_bytes())
    except (FileNotFoundError, ValueError):
        return []
    return [str(r) for r in data.get("repositories", []) if isinstance(r, str)]


def _remember(store: Store, digests: list[str], repository: str) -> None:
    """Record that ``repository`` holds ``digests`` (best effort: only an optimization)."""
    d = _sources_dir(store)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with store.lock("registry-sources"):
            for digest in digests:
                repos = [r for r in known_repositories(store, digest) if r != repository]
                doc = {"repositories": [repository, *repos][:16]}
                atomic_write(d / f"{digest_hex(digest)}.json", json.dumps(doc).encode(), tmp_dir=store.tmp)
    except OSError:
        pass


def forget(store: Store, digest: str, repository: str) -> None:
    """``repository`` (``host/path``) no longer names ``digest`` (an rmi of its last tag there):
    inspect's RepoDigests drop it, as dockerd's do."""
    path = _sources_dir(store) / f"{digest_hex(digest)}.json"
    try:
        with store.lock("registry-sources"):
            repos = [r for r in known_repositories(store, digest) if r != repository]
            if repos:
                atomic_write(path, json.dumps({"repositories": repos}).encode(), tmp_dir=store.tmp)
            else:
                path.unlink(missing_ok=True)
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# pull


class _Emitter:
    """Serializes progress callbacks: layers download on several threads."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()

    def __call__(self, **event: Any) -> None:
        if self._progress is None:
            return
        with self._lock:
            self._progress(event)

    @property
    def active(self) -> bool:
        return self._progress is not None


class _Download:
    """One blob download across attempts: the partial temp file survives a resumable failure."""

    def __init__(self, store: Store, digest: str) -> None:
        self.store = store
        self.digest = digest
        self._stack: contextlib.ExitStack | None = None
        self.writer: Any = None

    def open(self) -> Any:
        if self.writer is None:
            self._stack = contextlib.ExitStack()
            self.writer = self._stack.enter_context(self.store.blob_writer(expected=self.digest))
        return self.writer

    def discard(self) -> None:
        """Drop what we have (a restart from byte 0): the temp file goes."""
        stack, self._stack, self.writer = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(_Discarded):
                stack.__exit__(_Discarded, _Discarded(), None)

    def commit(self) -> None:
        """Verify and rename into place; a mismatch discards the file and raises StoreError."""
        stack, self._stack, self.writer = self._stack, None, None
        if stack is not None:
            stack.close()


class _Discarded(Exception):
    """Internal: thrown into a blob writer to make it discard its temp file."""


class _Puller:
    def __init__(self, store: Store, ref: Reference, client: RegistryClient, emit: _Emitter, op: str) -> None:
        self.store = store
        self.ref = ref
        self.client = client
        self.emit = emit
        self.op = op
        self.scope = f"repository:{ref.path}:pull"

    # -- manifests -------------------------------------------------------------------------
    def manifest(self, reference: str, expected: str | None) -> tuple[bytes, str, str]:
        """GET a manifest; returns (bytes, media type, digest), verified against ``expected``
        or the registry's ``Docker-Content-Digest``."""
        path = f"/v2/{self.ref.path}/manifests/{reference}"
        try:
            for attempt in _retrying():
                with attempt:
                    resp = self.client.request("GET", path, scope=self.scope, headers={"Accept": ACCEPT})
                    _check(resp, self.op, 200)
                    body = resp.content
                    if len(body) > MAX_MANIFEST:
                        raise RegistryError(f"{self.op}: manifest larger than {MAX_MANIFEST} bytes")
                    digest = sha256_digest(body)
                    claimed = expected or resp.headers.get("Docker-Content-Digest")
                    if claimed and claimed.startswith("sha256:") and claimed != digest:
                        raise _Transient(f"manifest {claimed}: content digest is {digest}")
                    media = str(resp.headers.get("Content-Type", "")).split(";")[0].strip()
        except PodsError:  # ours, or the transport's (auth, TLS): already clear, keep the type
            raise
        except Exception as exc:
            raise _final_error(self.op, "manifest", exc) from exc
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"{self.op}: manifest {digest} is not JSON") from None
        media = doc.get("mediaType") or media
        if media in MEDIA_DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
            raise RegistryError(f"{self.op}: Docker schema 1 manifests are not supported; push the image "
                                "again with a current client. Fix this and try again.")
        if media not in (*MANIFEST_TYPES, *INDEX_TYPES):
            media = MEDIA_OCI_INDEX if "manifests" in doc else MEDIA_OCI_MANIFEST
        return body, media, digest

    # -- blobs -----------------------------------------------------------------------------
    def blob(self, desc: dict[str, Any], *, layer: bool) -> bool:
        """Fetch a blob into the store unless present; True when we downloaded it.

        Under a file lock per blob, so concurrent pulls (other processes too) fetch it once.
        """
        digest = str(desc["digest"])
        hexd = digest_hex(digest)  # refuses a digest that is not sha256 or could be a path
        short = _short(digest)
        if self.store.has_blob(digest):
            if layer:
                self.emit(id=short, status="Already exists")
            return False
        with FileLock(str(self.store.locks / f"blob-{hexd}.lock")):
            if self.store.has_blob(digest):
                if layer:
                    self.emit(id=short, status="Already exists")
                return False
            self._fetch(digest, int(desc.get("size") or 0), short if layer else None)
        if layer:
            self.emit(id=short, status="Download complete")
        return True

    def _fetch(self, digest: str, size: int, short: str | None) -> None:
        path = f"/v2/{self.ref.path}/blobs/{digest}"
        dl = _Download(self.store, digest)
        try:
            for attempt in _retrying():
                with attempt:
                    self._attempt(dl, path, digest, size, short)
        except StoreError as exc:  # _Mismatch after the last attempt
            raise RegistryError(f"{self.op}: blob {digest}: {exc} (after {ATTEMPTS} attempts)") from exc
        except PodsError:  # ours, or the transport's (auth, TLS): already clear, keep the type
            raise
        except Exception as exc:
            raise _final_error(self.op, f"blob {digest}", exc) from exc
        finally:
            dl.discard()  # a no-op after a commit; otherwise no partial file stays

    def _attempt(self, dl: _Download, path: str, digest: str, size: int, short: str | None) -> None:
        writer = dl.open()
        have = writer.size
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self.client.request("GET", path, scope=self.scope, headers=headers, stream=True)
        try:
            if have and resp.status_code == 206:
                if not str(resp.headers.get("Content-Range", "")).startswith(f"bytes {have}-"):
                    dl.discard()  # not the part we asked for: start again from byte 0
                    raise _Transient(f"blob {digest}: the registry resumed at the wrong offset")
            elif resp.status_code == 200:
                if have:  # the registry ignored Range: start again from byte 0
                    dl.discard()
                    writer = dl.open()
            else:
                _check(resp, f"{self.op}: blob {digest}", 200)
            for chunk in resp.iter_content(_READ):
                writer.write(chunk)
                if size and writer.size > size:
                    dl.discard()
                    raise _Transient(f"blob {digest}: more bytes than its descriptor's {size}")
                if short is not None and self.emit.active:
                    self.emit(id=short, status="Downloading",
                              progressDetail={"current": writer.size, "total": size})
        finally:
            resp.close()
        if size and writer.size < size:
            raise _Transient(f"blob {digest}: body ended after {writer.size} of {size} bytes")
        try:
            dl.commit()
        except StoreError as exc:
            # wrong bytes: retry from scratch (a flaky proxy); the last attempt's error names it
            raise _Mismatch(str(exc)) from exc


class _Mismatch(_Transient, StoreError):
    """Internal: a whole body that fails verification; retried, then reported as StoreError."""


def pull(store: Store, ref: str, *, platform: str | None = None, insecure: bool = False,
         progress: Progress | None = None, client_factory: ClientFactory = RegistryClient,
         max_workers: int = 4) -> PullResult:
    """``pods pull``: fetch ``ref`` into ``store`` and tag it; blobs already stored are kept.

    :param platform: ``os/arch[/variant]`` to choose from an index (default: this machine)
    :param progress: called with docker-style JSON progress events (from worker threads,
        one at a time)
    :raises InvalidArgumentError: ``ref`` is malformed
    :raises RegistryError: the registry refused (``manifest unknown``), or a blob kept failing
        verification or transfer
    """
    reference = parse_reference(ref)
    op = f"pull {reference.familiar}"
    emit = _Emitter(progress)
    client = client_factory(reference.domain, insecure=insecure)
    try:
        puller = _Puller(store, reference, client, emit, op)
        body, media, digest = puller.manifest(reference.digest or reference.tag or "latest", reference.digest)
        if media in INDEX_TYPES:
            index = json.loads(body)
            desc = _choose_platform(index, platform or default_platform(), op)
            body, media, digest = puller.manifest(str(desc["digest"]), str(desc["digest"]))
            if media in INDEX_TYPES:
                raise RegistryError(f"{op}: nested image indexes are not supported")
        manifest = json.loads(body)
        config_desc = manifest.get("config") or {}
        layers = list(manifest.get("layers") or [])
        if "digest" not in config_desc or any("digest" not in d for d in layers):
            raise RegistryError(f"{op}: manifest {digest} lacks a config or layer digest")
        puller.blob(config_desc, layer=False)
        config = store.read_json(str(config_desc["digest"]))
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise RegistryError(f"{op}: manifest has {len(layers)} layers but its config {len(diff_ids)} diff_ids")

        for d in layers:
            emit(id=_short(str(d["digest"])), status="Pulling fs layer")
        fetched = 0
        unique = list({str(d["digest"]): d for d in layers}.values())
        diff_id_of = {str(d["digest"]): diff_id for diff_id, d in zip(diff_ids, layers, strict=False)}

        def fetch_and_unpack(d: dict[str, Any]) -> bool:
            # Unpack as soon as the blob is in, as docker does before "Pull complete", while the
            # other layers still download: the unpack validates the layer and the first run does
            # not pay for it. Snapshots are keyed by diff_id; unpack_layer reads the blob as it is.
            got = puller.blob(d, layer=True)
            store.ensure_snapshot(diff_id_of[str(d["digest"])], str(d["digest"]))
            emit(id=_short(str(d["digest"])), status="Pull complete")
            return got

        with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="pods-pull") as pool:
            for got in pool.map(fetch_and_unpack, unique):
                fetched += int(got)

        # a tag pull is named by its tag; a digest pull by the digest the user gave (maybe an
        # index's: get_image then finds it by that name)
        if reference.digest:
            name = str(Reference(reference.domain, reference.path, None, reference.digest))
        else:
            name = str(reference)
        image = store.add_image(body, [name], media)
        _remember(store, [image.manifest_digest, str(config_desc["digest"]), *(str(d["digest"]) for d in unique)],
                  f"{reference.domain}/{reference.path}")  # the manifest too: inspect's RepoDigests
        emit(status=f"Digest: {digest}")
        emit(status=f"Status: Downloaded newer image for {reference.familiar}" if fetched
             else f"Status: Image is up to date for {reference.familiar}")
        return PullResult(image, digest, fetched, len(unique) - fetched)
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# push


class _Pusher:
    def __init__(self, store: Store, ref: Reference, client: RegistryClient, emit: _Emitter, op: str,
                 chunk_size: int | None) -> None:
        self.store = store
        self.ref = ref
        self.client = client
        self.emit = emit
        self.op = op
        self.chunk_size = chunk_size
        self.scope = f"repository:{ref.path}:pull,push"
        self.repository = f"{ref.domain}/{ref.path}"

    def _retry(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            for attempt in _retrying():
                with attempt:
                    return fn()
        except PodsError:
            raise
        except Exception as exc:
            raise _final_error(self.op, what, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def exists(self, digest: str) -> bool:
        def head() -> bool:
            resp = self.client.request("HEAD", f"/v2/{self.ref.path}/blobs/{digest}", scope=self.scope)
            resp.close()
            if resp.status_code == 404:
                return False
            _check(resp, f"{self.op}: blob {digest}", 200)
            return True

        return bool(self._retry(f"blob {digest}", head))

    def blob(self, digest: str, size: int) -> str:
        """Make the destination hold ``digest``: 'exists', 'mounted' or 'pushed'."""
        short = _short(digest)
        self.emit(id=short, status="Preparing")
        if self.exists(digest):
            self.emit(id=short, status="Layer already exists")
            return "exists"
        host = self.ref.domain
        sources = [r for r in known_repositories(self.store, digest)
                   if r.startswith(host + "/") and r != self.repository]

        def send() -> str:
            url: str | None = None
            for src in sources[:1]:  # a 202 answer opens an upload session: use it, try no more
                from_path = src[len(host) + 1:]
                resp = self.client.request(
                    "POST", f"/v2/{self.ref.path}/blobs/uploads/?" + urllib.parse.urlencode({"mount": digest, "from": from_path}),
                    scope=self.scope)
                resp.close()
                if resp.status_code == 201:
                    self.emit(id=short, status=f"Mounted from {from_path}")
                    return "mounted"
                _check(resp, f"{self.op}: blob {digest}", 202)
                url = _location(resp, f"{self.op}: blob {digest}")
            if url is None:
                resp = self.client.request("POST", f"/v2/{self.ref.path}/blobs/uploads/", scope=self.scope)
                resp.close()
                _check(resp, f"{self.op}: blob {digest}", 202)
                url = _location(resp, f"{self.op}: blob {digest}")
            chunk = self.chunk_size or (DEFAULT_CHUNK if size > CHUNKED_THRESHOLD else None)
            final = _with_query(self._patch_chunks(url, digest, size, chunk, short) if chunk else url, digest=digest)
            if chunk:
                resp = self.client.request("PUT", final, scope=self.scope, headers={"Content-Length": "0"})
            else:
                with contextlib.closing(_BlobFile(self.store.blob_path(digest), short, size, self.emit)) as body:
                    resp = self.client.request("PUT", final, scope=self.scope, data=body, headers={
                        "Content-Type": "application/octet-stream", "Content-Length": str(size)})
            resp.close()
            _check(resp, f"{self.op}: blob {digest}", 201, 204)
            self.emit(id=short, status="Pushed")
            return "pushed"

        return str(self._retry(f"blob {digest}", send))

    def _patch_chunks(self, url: str, digest: str, size: int, chunk: int, short: str) -> str:
        offset = 0
        with open(self.store.blob_path(digest), "rb") as f:
            while offset < size:
                data = f.read(chunk)
                if not data:
                    raise StoreError(f"push blob {digest}: the stored file is shorter than {size} bytes")
                end = offset + len(data) - 1
                resp = self.client.request(
                    "PATCH", url, scope=self.scope, data=data,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                             "Content-Range": f"{offset}-{end}"})
                resp.close()
                _check(resp, f"{self.op}: blob {digest}", 202)
                offset = end + 1
                url = _location(resp, f"{self.op}: blob {digest}")
                self.emit(id=short, status="Pushing", progressDetail={"current": offset, "total": size})
        return url

    def manifest(self, body: bytes, media: str, tag: str) -> str:
        digest = sha256_digest(body)

        def put() -> str:
            resp = self.client.request("PUT", f"/v2/{self.ref.path}/manifests/{tag}", scope=self.scope,
                                       headers={"Content-Type": media}, data=body)
            resp.close()
            _check(resp, f"{self.op}: manifest", 201, 200, 202)
            got = resp.headers.get("Docker-Content-Digest")
            if got and got != digest:
                raise RegistryError(f"{self.op}: the registry stored manifest {got}, we sent {digest}")
            return digest

        return str(self._retry("manifest", put))


class _BlobFile:
    """A stored blob as an upload body: a file requests streams, reporting progress as it goes."""

    def __init__(self, path: Path, short: str, size: int, emit: _Emitter) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 (closed when the upload ends)
        self._short = short
        self._size = size
        self._emit = emit
        self._sent = 0
        self.len = size  # requests' super_len reads this: Content-Length, not chunked encoding

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        """Lets the transport send the body again (after an auth challenge or a 307)."""
        self._sent = self._f.seek(pos, whence)
        return self._sent

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n if n and n > 0 else _UPLOAD_READ)
        if data:
            self._sent += len(data)
            if self._emit.active:
                self._emit(id=self._short, status="Pushing", progressDetail={"current": self._sent, "total": self._size})
        return data

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(_UPLOAD_READ):
            yield data

    def close(self) -> None:
        self._f.close()


def _manifest_media(store: Store, image: Image) -> str:
    media = image.manifest.get("mediaType")
    if media in MANIFEST_TYPES:
        return str(media)
    config_media = (image.manifest.get("config") or {}).get("mediaType")
    return MEDIA_DOCKER_MANIFEST if config_media == MEDIA_DOCKER_CONFIG else MEDIA_OCI_MANIFEST


def push(store: Store, image: str, dest: str | None = None, *, insecure: bool = False,
         progress: Progress | None = None, client_factory: ClientFactory = RegistryClient,
         chunk_size: int | None = None) -> str:
    """``pods push``: upload ``image`` (a name or ID in the store) to ``dest`` (default: its name).

    The manifest goes up byte for byte as stored, so a pulled image keeps its digests.

    :param chunk_size: upload in PATCH chunks of this size (default: monolithic up to 64 MiB)
    :returns: the manifest digest the registry now holds
    :raises ImageNotFoundError: ``image`` is not in the store
    :raises RegistryError: the registry refused or kept failing
    """
    if chunk_size is not None and chunk_size <= 0:
        raise InvalidArgumentError(f"push {image}: chunk size must be positive, not {chunk_size}")
    img = store.get_image(image)
    target = parse_reference(dest if dest is not None else image)
    if target.digest:
        raise InvalidArgumentError(f"push {target.familiar}: cannot push to a digest: give a tag")
    if dest is None and str(target) not in img.tags:
        raise InvalidArgumentError(f"push {image}: give the destination repository (a name, not an ID)")
    tag = target.tag or "latest"
    op = f"push {target.familiar}"
    emit = _Emitter(progress)
    body = store.read_blob(img.manifest_digest)
    if sha256_digest(body) != img.manifest_digest:
        raise StoreError(f"{op}: stored manifest {img.manifest_digest} does not match its digest")
    media = _manifest_media(store, img)
    client = client_factory(target.domain, insecure=insecure)
    try:
        pusher = _Pusher(store, target, client, emit, op, chunk_size)
        descs = [*img.layers, img.manifest["config"]]
        seen: set[str] = set()
        todo = []
        for desc in descs:
            digest = str(desc["digest"])
            if digest in seen:
                continue
            seen.add(digest)
            if not store.has_blob(digest):
                raise StoreError(f"{op}: blob {digest} is missing from the store")
            todo.append((digest, store.blob_path(digest).stat().st_size))
        # blobs go up at once, each on a client of its own (a session and token cache per
        # thread), so the registry's hashing and writing use every core; then the manifest
        clients = [client] + [client_factory(target.domain, insecure=insecure) for _ in range(min(3, len(todo) - 1))]
        lanes = [_Pusher(store, target, c, emit, op, chunk_size) for c in clients]
        try:
            with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="pods-push") as pool:
                list(pool.map(lambda i: [lanes[i].blob(d, n) for d, n in todo[i::len(lanes)]], range(len(lanes))))
        finally:
            for c in clients[1:]:
                c.close()
        digest = pusher.manifest(body, media, tag)
        _remember(store, [digest, *sorted(seen)], pusher.repository)
        emit(status=f"{tag}: digest: {digest} size: {len(body)}")
        return digest
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# artifacts: a manifest whose blobs are not an image's (the build cache, BuildKit's type=registry)
def push_artifact(store: Store, dest: str, manifest: bytes, *, insecure: bool = False,
                  progress: Progress | None = None, client_factory: ClientFactory = RegistryClient) -> str:
    """Upload an OCI manifest whose config and layers are blobs of ``store`` to ``dest`` (a
    tag); returns the manifest digest the registry holds.

    :raises StoreError: a blob it names is missing from the store
    :raises RegistryError: the registry refused or kept failing
    """
    target = parse_reference(dest)
    if target.digest:
        raise InvalidArgumentError(f"push {target.familiar}: cannot push to a digest: give a tag")
    op = f"push {target.familiar}"
    doc = json.loads(manifest)
    descs = [doc["config"], *doc.get("layers", [])]
    client = client_factory(target.domain, insecure=insecure)
    try:
        pusher = _Pusher(store, target, client, _Emitter(progress), op, None)
        for digest in dict.fromkeys(str(d["digest"]) for d in descs):
            if not store.has_blob(digest):
                raise StoreError(f"{op}: blob {digest} is missing from the store")
            pusher.blob(digest, store.blob_path(digest).stat().st_size)
        return pusher.manifest(manifest, str(doc.get("mediaType") or MEDIA_OCI_MANIFEST), target.tag or "latest")
    finally:
        client.close()


def pull_artifact(store: Store, ref: str, *, insecure: bool = False, progress: Progress | None = None,
                  client_factory: ClientFactory = RegistryClient) -> dict[str, Any] | None:
    """Fetch the OCI manifest at ``ref`` and every blob it names into ``store`` (verified);
    returns the manifest, or None when the registry has no such manifest (a cache's first run).

    :raises RegistryError: the registry refused otherwise, or a blob kept failing verification
    """
    reference = parse_reference(ref)
    op = f"pull {reference.familiar}"
    client = client_factory(reference.domain, insecure=insecure)
    try:
        puller = _Puller(store, reference, client, _Emitter(progress), op)
        try:
            body, _media, _digest = puller.manifest(reference.digest or reference.tag or "latest", reference.digest)
        except RegistryError as exc:
            if any(w in str(exc).lower() for w in ("manifest unknown", "not known", "not found")):
                return None
            raise
        doc: dict[str, Any] = json.loads(body)
        for desc in [doc.get("config") or {}, *(doc.get("layers") or [])]:
            if "digest" not in desc:
                raise RegistryError(f"{op}: manifest lacks a blob digest")
            puller.blob(desc, layer=False)
        return doc
    finally:
        client.close()
