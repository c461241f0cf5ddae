"""Image routes: list, inspect, history, tag, remove, prune, pull (and import), push, save, load,
and build. Pull, push and build run as a :class:`~pytest_pods.daemon.streams.Job`, their progress
streamed as docker streams it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_pods.client.contract import apply_changes, extract_tar, parse_reference
from pytest_pods.client.docker_docs import image_history, image_row, parse_time
from pytest_pods.client.local import Client
from pytest_pods.daemon.filters import labels_match, parse_filters, ref_matches
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.networks import prune_labels_match, prune_until
from pytest_pods.daemon.router import Route, query_all, query_bool, route
from pytest_pods.daemon.ryuk import RYUK_IMAGE
from pytest_pods.daemon.streams import Job
from pytest_pods.errors import HTTPError, ImageNotFoundError, PodsError

#: the instructions ``docker import -c`` takes (those the engine applies)
IMPORT_CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "STOPSIGNAL", "VOLUME")


FAILED_STEP = object()
"""A build's result when a RUN step failed and the stream said so already."""


class ImagesRouter:
    def __init__(self, client: Client) -> None:
        self.client = client

    def routes(self) -> list[Route]:
        # names contain / and :, so the verbs are matched at the end
        return [
            route("GET", r"/images/json", self.image_list),
            route("POST", r"/images/create", self.image_create),
            route("POST", r"/images/load", self.image_load),
            route("GET", r"/images/get", self.image_save),
            route("POST", r"/images/prune", self.image_prune),
            route("POST", r"/build", self.build),
            route("POST", r"/build/prune", self.build_prune),
            route("GET", r"/images/(?P<name>.+)/json", self.image_inspect),
            route("GET", r"/images/(?P<name>.+)/history", self.image_history),
            route("GET", r"/images/(?P<name>.+)/get", self.image_save),
            route("POST", r"/images/(?P<name>.+)/tag", self.image_tag),
            route("POST", r"/images/(?P<name>.+)/push", self.image_push),
            route("DELETE", r"/images/(?P<name>.+)", self.image_remove),
        ]

    def image_list(self, req: Request) -> None:
        filters = parse_filters(req)
        out = []
        for img in self.client.images.list():
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not labels_match(labels, filters.get("label", [])):
                continue
            tags = img.familiar_tags
            if filters.get("reference"):
                # dockerd lists only the names that match: `docker images test/x` shows no busybox row
                tags = [t for t in tags if any(ref_matches(t, r) for r in filters["reference"])]
                if not tags:
                    continue
            if filters.get("dangling") and (filters["dangling"][0] in ("true", "1")) != (not img.tags):
                continue
            out.append(image_row(img, tags, labels))
        req.send_json(out)

    def image_inspect(self, req: Request, name: str) -> None:
        try:
            doc = self.client.images.inspect(name)
        except ImageNotFoundError:
            if RYUK_IMAGE.search(name):  # the built-in stand-in needs no image: say it is there
                req.send_json({"Id": "sha256:" + "0" * 64, "RepoTags": [name], "RepoDigests": [], "Parent": "",
                               "Created": "0001-01-01T00:00:00Z", "Os": "linux", "Architecture": "amd64",
                               "Size": 0, "Config": {"ExposedPorts": {"8080/tcp": {}}, "Labels": {}},
                               "RootFS": {"Type": "layers", "Layers": []},
                               "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}})
                return
            raise HTTPError(404, f"No such image: {name}") from None
        doc.pop("_Names", None)
        req.send_json(doc)

    def image_history(self, req: Request, name: str) -> None:
        img = self.client.images.get(name)
        req.send_json(image_history(img))

    def image_tag(self, req: Request, name: str) -> None:
        repo = req.query.get("repo")
        if not repo:
            raise HTTPError(400, "repository name must have at least one component")
        tag = req.query.get("tag") or "latest"
        self.client.images.tag(name, f"{repo}:{tag}" if "@" not in repo else repo)
        req.send(201, b"", "text/plain")

    def image_remove(self, req: Request, name: str) -> None:
        lines = self.client.images.remove(name, force=query_bool(req.query.get("force")))
        out = []
        for line in lines:
            kind, _, what = line.partition(": ")
            out.append({kind: what})
        req.send_json(out)

    def image_prune(self, req: Request) -> None:
        """dockerd's prune: the dangling images (untagged), or with ``dangling=false`` every
        image no container uses; filters ``until``, ``label``, ``label!``. ``SpaceReclaimed``:
        the bytes of the blobs that went with them (a layer another image keeps stays, and
        is not counted)."""
        filters = parse_filters(req)
        unknown = set(filters) - {"dangling", "until", "label", "label!"}
        if unknown:
            raise HTTPError(400, f"Invalid filter '{sorted(unknown)[0]}'")
        dangling = True
        if filters.get("dangling"):
            value = filters["dangling"][-1].lower()
            if value not in ("1", "true", "0", "false"):
                raise HTTPError(400, f"Invalid filter 'dangling={filters['dangling'][-1]}'")
            dangling = value in ("1", "true")
        until = prune_until(filters)
        in_use = self.client.runtime.in_use_images()
        deleted: list[dict[str, str]] = []
        space = 0
        for img in self.client.images.list():
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if (dangling and img.tags) or img.id in in_use or not prune_labels_match(labels, filters):
                continue
            if until is not None and parse_time(str(img.config.get("created") or "")) >= until:
                continue
            sizes = {}
            for digest in {img.manifest_digest, img.id, *(layer["digest"] for layer in img.layers)}:
                with contextlib.suppress(OSError, PodsError):
                    sizes[digest] = self.client.images.blob_path(digest).stat().st_size
            try:
                lines = self.client.images.remove(img.id, force=True)  # force: every tag of it (not in use)
            except (PodsError, OSError):
                continue  # removed meanwhile, or taken into use
            for line in lines:
                kind, _, what = line.partition(": ")
                deleted.append({kind: what})
            for digest, size in sizes.items():
                with contextlib.suppress(PodsError):
                    if not self.client.images.blob_path(digest).exists():
                        space += size
        req.send_json({"ImagesDeleted": deleted or None, "SpaceReclaimed": space})

    def build_prune(self, req: Request) -> None:
        req.send_json({"CachesDeleted": [], "SpaceReclaimed": 0})

    def image_create(self, req: Request) -> None:
        q = req.query
        if q.get("fromSrc"):
            self._import(req)
            return
        image = q.get("fromImage")
        if not image:
            raise HTTPError(400, "fromImage or fromSrc is required")
        if RYUK_IMAGE.search(image):  # answered by the built-in stand-in: nothing to pull
            req.stream(iter([json.dumps({"status": f"Status: Image is up to date for {image}"}).encode() + b"\r\n"]))
            return
        tag = q.get("tag") or ""
        ref = image if not tag else (f"{image}@{tag}" if tag.startswith("sha256:") else f"{image}:{tag}")
        if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
            ref += ":latest"
        job: Job[Any] = Job()
        said_digest = False
        before = None
        with contextlib.suppress(PodsError):
            before = self.client.images.get(ref).manifest_digest
        parsed = parse_reference(ref)

        def say(event: Any) -> None:
            nonlocal said_digest
            doc = dict(event) if isinstance(event, dict) else {"status": str(event)}
            status = str(doc.get("status", ""))
            if status.startswith("Status: "):
                # docker says "newer" when the tag moved, whatever blobs were present; the engine
                # counts blobs (after `docker rmi` of a tag whose layers another image keeps)
                return
            if status.startswith("Digest: "):
                said_digest = True
            job.emit(doc)

        say({"status": f"Pulling from {parsed.path}", "id": parsed.tag or parsed.digest or "latest"})

        job.start("pods-pull", lambda: self.client.images.pull(ref, insecure=local_registry(ref), progress=say))

        def finish(img: Any) -> list[dict[str, Any]]:
            done = [] if said_digest else [{"status": f"Digest: {img.manifest_digest}"}]
            fresh = before != img.manifest_digest
            return [*done, {"status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
                                      f"for {parsed.familiar}"}]

        req.stream(job.stream(finish))

    def _import(self, req: Request) -> None:
        """``docker import``: a rootfs tarball in the body; ``changes`` (repeated, or one per
        line) are the Dockerfile instructions ``docker import -c`` takes, applied to the new
        image's config (dockerd's error for another instruction)."""
        repo, tag = req.query.get("repo") or None, req.query.get("tag") or None
        ref = f"{repo}:{tag}" if repo and tag else repo
        changes = [line for value in query_all(req, "changes") for line in value.split("\n") if line.strip()]
        for change in changes:
            word = change.strip().split(None, 1)[0]
            if word.upper() not in IMPORT_CHANGES:
                raise HTTPError(400, f"{word.lower()} is not a valid change command")
        config = apply_changes({}, changes, verb="import") if changes else None
        with tempfile.NamedTemporaryFile(dir=self.client.temp_dir, prefix=self.client.temp_prefix("import"),
                                         suffix=".tar") as f:
            if req.query.get("fromSrc") == "-":
                while chunk := req.read():
                    f.write(chunk)
                f.flush()
            else:
                raise HTTPError(400, "import from a URL is not supported; send the tarball in the body")
            img = self.client.images.import_rootfs(f.name, ref, config)
        req.send_json({"status": img.id})

    def image_push(self, req: Request, name: str) -> None:
        """As dockerd: ``tag`` names one tag; without it (docker-py's ``push("repo")``, ``docker
        push --all-tags``) every local tag of the repository is pushed, one ``aux`` line each."""
        tag = req.query.get("tag")
        last = name.rsplit("/", 1)[-1]
        if tag or ":" in last or "@" in name:
            refs = [f"{name}:{tag}" if tag and ":" not in last else name]
        else:
            refs = self._repository_tags(name)
            if not refs:
                raise HTTPError(404, f"An image does not exist locally with the tag: {name}")
        use_registry_auth(req)
        job: Job[list[tuple[str, str]]] = Job()
        parsed = parse_reference(refs[0])

        def say(event: Any) -> None:
            doc = dict(event) if isinstance(event, dict) else {"status": str(event)}
            job.emit(doc)

        say({"status": f"The push refers to repository [{parsed.domain}/{parsed.path}]"})

        def push_all() -> list[tuple[str, str]]:
            pushed = []
            for ref in refs:
                digest = self.client.images.push(ref, insecure=local_registry(ref), progress=say)
                pushed.append((parse_reference(ref).tag or "latest", digest))
            return pushed

        job.start("pods-push", push_all)

        def finish(pushed: list[tuple[str, str]]) -> list[dict[str, Any]]:
            lines = []
            for tag_name, digest in pushed:
                size = 0
                with contextlib.suppress(OSError, PodsError):
                    size = self.client.images.blob_path(digest).stat().st_size
                lines.append({"progressDetail": {}, "aux": {"Tag": tag_name, "Digest": digest, "Size": size}})
            return lines

        req.stream(job.stream(finish))

    def _repository_tags(self, name: str) -> list[str]:
        """Every local tag of the repository ``name`` (sorted), as references."""
        repo = parse_reference(name).repository
        return sorted(t for img in self.client.images.list() for t in img.tags
                      if "@" not in t and parse_reference(t).repository == repo)

    def image_save(self, req: Request, name: str | None = None) -> None:
        names = [name] if name else query_all(req, "names")
        if not names:
            raise HTTPError(400, "no image names given")
        with tempfile.TemporaryDirectory(dir=self.client.temp_dir, prefix=self.client.temp_prefix("save")) as tmp:
            out = Path(tmp) / "out.tar"
            self.client.images.save(names, out)
            with open(out, "rb") as f:
                req.stream(iter(lambda: f.read(65536), b""), "application/x-tar")

    def image_load(self, req: Request) -> None:
        """As dockerd: 200 and a JSON stream; an archive that cannot be loaded is an error line
        in it (``errorDetail``), which names no path of the daemon's."""
        with tempfile.TemporaryFile(dir=self.client.temp_dir) as f:  # no name: messages say <stream>
            while chunk := req.read():
                f.write(chunk)
            f.seek(0)
            try:
                loaded = self.client.images.load(f)
            except PodsError as exc:
                message = str(exc).replace("load <stream>: ", "", 1).replace(str(self.client.root), "<root>")
                req.stream(iter([json.dumps({"errorDetail": {"message": message}, "error": message}).encode()
                                 + b"\r\n"]))
                return
        lines = [json.dumps({"stream": f"{line}\n"}).encode() + b"\r\n" for line in loaded]
        req.stream(iter(lines))

    def build(self, req: Request) -> None:
        """The classic builder's stream, as dockerd's: ``{"stream": ...}`` lines, RUN's standard
        error in red (``ESC[91m`` ... ``ESC[0m``), ``{"aux": {"ID": ...}}`` just before
        "Successfully built" and nothing after "Successfully tagged" (clients read the last
        lines as stream lines); a failing RUN as "The command '...' returned a non-zero code: N"
        with its code. ``extrahosts``, ``networkmode`` (a user network too: RUN steps join it and
        resolve its names) and ``cachefrom`` are honoured."""
        q = req.query
        tags = query_all(req, "t")
        try:
            buildargs = json.loads(q.get("buildargs") or "{}")
            labels = json.loads(q.get("labels") or "{}")
            cache_from = json.loads(q["cachefrom"]) if q.get("cachefrom") else None
        except ValueError:
            raise HTTPError(400, "invalid buildargs, labels or cachefrom: bad JSON") from None
        if not isinstance(buildargs, dict) or not isinstance(labels, dict):
            raise HTTPError(400, "buildargs and labels must be JSON objects")
        if cache_from is not None and not (isinstance(cache_from, list) and all(isinstance(c, str) for c in cache_from)):
            raise HTTPError(400, "cachefrom must be a JSON array of image names")
        extra_hosts = [h for value in query_all(req, "extrahosts") for h in value.split(",") if h]
        quiet = query_bool(q.get("q"))
        network = build_network(q.get("networkmode"))
        ctx = Path(tempfile.mkdtemp(dir=self.client.temp_dir, prefix=self.client.temp_prefix("build-context")))
        try:
            with tempfile.TemporaryFile() as raw:
                while chunk := req.read():
                    raw.write(chunk)
                raw.seek(0)
                fd = os.open(ctx, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    extract_tar(raw, fd)
                except (PodsError, tarfile.TarError, EOFError) as exc:
                    raise HTTPError(400, f"invalid build context: {exc or 'not a tar archive'}") from None
                finally:
                    os.close(fd)
            job: Job[Any] = Job()

            def say(line: str) -> None:
                if quiet:
                    return
                if line.startswith("Successfully built"):
                    job.emit({"aux": {"ID": "pending"}})
                elif line.startswith("Successfully tagged "):  # dockerd names the tag in full: app:latest
                    with contextlib.suppress(PodsError):
                        line = "Successfully tagged " + parse_reference(line.split(" ", 2)[2]).familiar
                job.emit({"stream": line + "\n"})

            def say_err(line: str) -> None:
                if not quiet:
                    job.emit({"stream": f"\x1b[91m{line}\n\x1b[0m"})

            def work() -> Any:
                try:
                    return self.client.images.build(
                        ctx, tag=tags, dockerfile=q.get("dockerfile") or None,
                        buildargs={str(k): str(v) for k, v in buildargs.items() if v is not None},
                        target=q.get("target") or None, nocache=query_bool(q.get("nocache")),
                        labels={str(k): str(v) for k, v in labels.items()}, network=network, progress=say,
                        stderr_progress=say_err, extra_hosts=extra_hosts, cache_from=cache_from)
                except PodsError as exc:
                    code, argv = getattr(exc, "exit_code", None), getattr(exc, "argv", None)
                    if not isinstance(code, int) or not isinstance(argv, list):
                        raise
                    # a RUN step that failed (the builder's StepFailedError): dockerd's words
                    msg = f"The command '{' '.join(map(str, argv))}' returned a non-zero code: {code}"
                    job.emit({"errorDetail": {"code": code, "message": msg}, "error": msg})
                    return FAILED_STEP  # said: the stream ends there

            job.start("pods-build", work)

            def finish(img: Any) -> list[dict[str, Any]]:
                return [{"stream": img.id + "\n"}] if quiet else []

            def fix_aux(chunks: Iterator[bytes]) -> Iterator[bytes]:
                for c in chunks:
                    if b'"pending"' in c:
                        if job.value is None or job.value is FAILED_STEP:
                            continue  # the real ID comes at the end, once known
                        c = json.dumps({"aux": {"ID": job.value.id}}).encode() + b"\r\n"
                    yield c

            req.stream(fix_aux(job.stream(lambda img: [] if img is FAILED_STEP else finish(img))))
        finally:
            shutil.rmtree(ctx, ignore_errors=True)


def local_registry(ref: str) -> bool:
    """Plain HTTP for a registry on this host, as docker allows (127.0.0.0/8, localhost)."""
    host = ref.split("/", 1)[0] if "/" in ref else ""
    return host.startswith(("127.", "localhost", "[::1]"))


def build_network(mode: str | None) -> str:
    """``networkmode``: bridge (``default``), host, none, or a user network's name or ID."""
    if mode in (None, "", "default", "bridge"):
        return "bridge"
    if mode.startswith("container:"):
        raise HTTPError(400, f"build network mode {mode!r} is not supported (bridge, host, none or a network)")
    return mode


def use_registry_auth(req: Request) -> None:
    """``X-Registry-Auth`` (base64 JSON) is honoured through the credentials store the daemon
    uses; a client's inline credentials are not written anywhere."""
    raw = req.headers.get("x-registry-auth")
    if not raw:
        return
    with contextlib.suppress(ValueError):
        json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) or b"{}")
