"""The RemoteEngine: the Client API over the Docker Engine API.

Pointed at ``pods daemon`` on this or another machine, or at a real Docker daemon, the plugin and
the CLI work unchanged: ``PODS_HOST=unix:///run/pytest-pods/pods.sock``, ``tcp://host:2376`` (TLS
with ``PODS_CERT_PATH`` or ``DOCKER_CERT_PATH`` holding ca.pem, cert.pem, key.pem), or
``PODS_HOST=docker`` for whatever ``DOCKER_HOST`` says.

What the local engine reads from the kernel is asked of the API instead: the exit of a container
through ``/wait``, logs through ``/logs?follow``, listening ports by reading the container's
``/proc/net/tcp`` through an exec (when the image has ``cat``).
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import io
import json
import os
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload
from urllib.parse import quote

from pytest_pods.client.contract import (
    ContainerHandle,
    ContainerSummary,
    ExecResult,
    LogLine,
    NetworkCreated,
    PortBinding,
    ProcessList,
    RunResult,
    Stats,
    extract_tar,
    parse_bytes,
    parse_container_port,
)
from pytest_pods.client.docker_docs import create_body
from pytest_pods.client.docker_http import DockerHTTP, StreamResponse, demux, frames, read_progress, resolve_host
from pytest_pods.errors import ConflictError, InvalidArgumentError, NotFoundError, PodsError

if TYPE_CHECKING:
    import http.client

__all__ = ["RemoteClient", "RemoteContainer", "RemoteContainers", "RemoteImage", "RemoteImages", "RemoteNetworks",
           "RemoteProbe", "RemoteStarted", "RemoteVolumes", "resolve_host"]

class RemoteClient:
    """The engine behind a Docker Engine API endpoint (``unix://PATH`` or ``tcp://HOST:PORT``)."""

    def __init__(self, host: str) -> None:
        self.http = DockerHTTP(host)
        self.host = self.http.host
        self.address_host = self.http.address_host
        self.images = RemoteImages(self)
        self.containers = RemoteContainers(self)
        self.networks = RemoteNetworks(self)
        self.volumes = RemoteVolumes(self)
        self.root = None
        self._version: dict[str, Any] | None = None

    def request(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None,
                headers: Mapping[str, str] | None = None, what: str = "", timeout: float | None = 300) -> Any:
        """One API call: the decoded JSON (or the bytes of another answer)."""
        return self.http.request(method, path, query, body, headers, what, timeout)

    def version(self) -> dict[str, Any]:
        """The engine's ``GET /version`` document (asked once)."""
        if self._version is None:
            self._version = dict(self.request("GET", "/version", what="version", timeout=30))
        return self._version

    def api_version(self) -> tuple[int, ...]:
        """The newest API version the engine speaks, e.g. ``(1, 41)`` for Docker 20.10."""
        return tuple(int(p) for p in str(self.version().get("ApiVersion") or "1.24").split("."))

    def is_docker(self) -> bool:
        """Whether the engine is a Docker daemon, not ``pods daemon``: its ``/build`` is Docker's
        classic builder (no ``COPY --chmod``; before API 1.44 no ``HEALTHCHECK --start-interval``)."""
        return (self.version().get("Platform") or {}).get("Name") != "pytest-pods"

    # -- the Client API's own verbs --------------------------------------------------------
    def ping(self) -> bool:
        return bool(self.request("GET", "/_ping", timeout=10) == b"OK")

    def reap(self) -> list[str]:
        return []  # the engine's own business

    def cleanup(self) -> list[str]:
        return []

    def events(self, since: float | None = None, until: float | None = None, *, follow: bool = True,
               stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
        """``GET /events``: the daemon's events from ``since`` to ``until`` (without ``follow``,
        ``until`` defaults to now, so the stream ends); ``stop`` is looked at between events."""
        if not follow and until is None:
            until = time.time()
        resp = self.http.open("GET", "/events", {"since": f"{since:.9f}" if since is not None else None,
                                                 "until": f"{until:.9f}" if until is not None else None},
                              timeout=None, what="events")
        try:
            pending = b""
            while chunk := resp.read1(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
                if stop is not None and stop():
                    return
        finally:
            resp.close()

    def prune(self) -> list[str]:
        doc = self.request("POST", "/containers/prune")
        return [f"Deleted container: {c}" for c in doc.get("ContainersDeleted") or []]




class RemoteImage:
    """An image as the remote engine describes it (``id``, ``config``, ``tags``)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.id = str(doc["Id"])
        self.tags = tuple(doc.get("RepoTags") or ())
        self.familiar_tags = list(self.tags)
        self.config = {"config": doc.get("Config") or {}, "created": doc.get("Created", "")}
        self.size = int(doc.get("Size") or 0)
        # ours says it in Descriptor; docker in RepoDigests (NAME@DIGEST), once pulled or pushed
        digests = [d.partition("@")[2] for d in doc.get("RepoDigests") or []]
        self.manifest_digest = str((doc.get("Descriptor") or {}).get("digest") or next(iter(digests), ""))

    @property
    def short_id(self) -> str:
        return self.id.split(":")[-1][:12]

    @property
    def run_config(self) -> dict[str, Any]:
        """The image's ``Config`` (Env, Cmd, Entrypoint, WorkingDir, User...), as the local Image has it."""
        return dict(self.doc.get("Config") or {})

    @property
    def layers(self) -> builtins.list[dict[str, Any]]:
        """One entry per layer (``{"digest": diff_id}``: an engine's API tells layers by diff ID)."""
        return [{"digest": d} for d in (self.doc.get("RootFS") or {}).get("Layers") or []]


class RemoteImages:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def get(self, name: str) -> RemoteImage:
        return RemoteImage(self._c.request("GET", f"/images/{quote(name, safe='/:@')}/json", what=f"image {name}"))

    def list(self) -> builtins.list[RemoteImage]:
        return [self.get(i["Id"]) for i in self._c.request("GET", "/images/json")]

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).doc

    def tag(self, source: str, target: str) -> RemoteImage:
        repo, _, tag = target.rpartition(":") if ":" in target.rsplit("/", 1)[-1] else (target, "", "latest")
        self._c.request("POST", f"/images/{quote(source, safe='/:@')}/tag", {"repo": repo, "tag": tag})
        return self.get(target)

    def remove(self, name: str, *, force: bool = False) -> builtins.list[str]:
        doc = self._c.request("DELETE", f"/images/{quote(name, safe='/:@')}", {"force": force})
        return [f"{k}: {v}" for d in doc for k, v in d.items()]

    def pull(self, ref: str, *, platform: str | None = None, insecure: bool = False, progress: Any = None) -> RemoteImage:
        name, _, tag = ref.partition("@") if "@" in ref else (ref.rpartition(":")[0] or ref, "", ref.rpartition(":")[2]
                                                              if ":" in ref.rsplit("/", 1)[-1] else "latest")
        if ":" not in ref.rsplit("/", 1)[-1] and "@" not in ref:
            name, tag = ref, "latest"
        resp = self._c.http.open("POST", "/images/create", {"fromImage": name, "tag": tag, "platform": platform},
                                 timeout=None, what=f"pull {ref}")
        read_progress(resp, progress, f"pull {ref}")
        return self.get(ref)

    def push(self, name: str, dest: str | None = None, *, insecure: bool = False, progress: Any = None) -> str:
        if dest:
            self.tag(name, dest)
            name = dest
        repo, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        auth = base64.urlsafe_b64encode(b"{}").decode()
        resp = self._c.http.open("POST", f"/images/{quote(repo, safe='/:@')}/push", {"tag": tag},
                                 headers={"X-Registry-Auth": auth}, timeout=None, what=f"push {name}")
        aux = read_progress(resp, progress, f"push {name}")
        return str(aux.get("Digest", ""))

    def build(self, path: str | os.PathLike[str] = ".", *, tag: str | Sequence[str] | None = None,
              dockerfile: str | os.PathLike[str] | None = None, buildargs: Mapping[str, str] | None = None,
              target: str | None = None, nocache: bool = False, labels: Mapping[str, str] | None = None,
              network: str = "bridge", progress: Any = None) -> RemoteImage:
        """Send the context as a tar (honouring .dockerignore) to ``/build``."""
        from pytest_pods.builders.context import IgnoreMatcher, walk  # lazy: only builds send a context (~18 ms)

        ctx = Path(path)
        tags = [tag] if isinstance(tag, str) else list(tag or [])
        df_rel = os.path.relpath(dockerfile, ctx) if dockerfile and os.path.isabs(os.fspath(dockerfile)) else dockerfile
        included = walk(ctx, IgnoreMatcher.from_file(ctx / ".dockerignore"))
        for must in ("Dockerfile", os.fspath(df_rel) if df_rel else None):
            if must and must not in included and (ctx / must).exists():
                included.append(must)  # sent even when .dockerignore names it, as docker does
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w") as tf:
                for rel in included:
                    tf.add(ctx / rel, arcname=rel, recursive=False)
            size = buf.tell()
            buf.seek(0)
            query: dict[str, Any] = {"t": tags, "dockerfile": os.fspath(df_rel) if df_rel else None,
                                     "buildargs": json.dumps(dict(buildargs or {})), "target": target,
                                     "nocache": nocache, "labels": json.dumps(dict(labels or {})),
                                     "networkmode": network, "rm": True}
            resp = self._c.http.open("POST", "/build", query, body=buf, timeout=None,
                                     headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
                                     what=f"build {ctx}")
            aux = read_progress(resp, progress, f"build {ctx}")
        if "ID" not in aux:
            raise PodsError(f"build {ctx}: the engine reported no image ID")
        return self.get(aux["ID"])

    def bootstrap_debian(self, suite: str = "bookworm", tag: str | None = None) -> Any:
        raise PodsError(f"bootstrap debian:{suite}: needs the local engine (mmdebstrap on this host); "
                        f"build or load debian:{suite} on {self._c.host} first")

    def bootstrap_busybox(self, tag: str = "busybox:latest") -> Any:
        raise PodsError(f"bootstrap busybox: needs the local engine; load it on {self._c.host} first")




class RemoteContainers:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def create(self, image: str, command: Sequence[str] | str | None = None, **kw: Any) -> RemoteContainer:
        name = kw.pop("name", None)
        body = create_body(image, command, kw)
        doc = self._c.request("POST", "/containers/create", {"name": name}, body=body, what=f"create {image}")
        return RemoteContainer(self._c, doc["Id"])

    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[True],
            remove: bool = False, **kw: Any) -> RemoteContainer: ...
    @overload
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: Literal[False] = False,
            remove: bool = False, **kw: Any) -> RunResult: ...
    def run(self, image: str, command: Sequence[str] | str | None = None, *, detach: bool = False,
            remove: bool = False, **kw: Any) -> RemoteContainer | RunResult:
        c = self.create(image, command, auto_remove=remove and detach, **kw)
        try:
            c.start()
        except BaseException:
            c.remove(force=True)
            raise
        if detach:
            return c
        code = c.wait()
        out, err = c.logs(stdout=True, stderr=False), c.logs(stdout=False, stderr=True)
        if remove:
            c.remove(force=True)
        return RunResult(code, out, err, c.id)

    def get(self, ref: str) -> RemoteContainer:
        doc = self._c.request("GET", f"/containers/{quote(ref, safe='')}/json", what=f"container {ref}")
        return RemoteContainer(self._c, doc["Id"], doc)

    def list(self, *, all: bool = False) -> builtins.list[RemoteContainer]:
        return [RemoteContainer(self._c, r["Id"]) for r in self._c.request("GET", "/containers/json", {"all": all})]

    # -- verbs by reference (the CLI's, with ``pods --host``) -------------------------------------
    def path_stat(self, ref: str, path: str) -> os.stat_result | None:
        """``stat`` of ``path`` in the container from the archive's path-stat header (None: it does
        not exist); the Go file mode made a Unix one (type and permissions)."""
        try:
            resp = self._c.http.open("HEAD", f"/containers/{quote(ref, safe='')}/archive", {"path": path},
                                     what=f"stat {path} in {ref}")
        except NotFoundError:
            return None
        doc = json.loads(base64.b64decode(resp.getheader("X-Docker-Container-Path-Stat") or "e30="))
        resp.close()
        mode = int(doc.get("mode", 0))
        kind = 0o040000 if mode & (1 << 31) else 0o120000 if mode & (1 << 27) else 0o100000
        return os.stat_result((kind | (mode & 0o7777), 0, 0, 1, 0, 0, int(doc.get("size", 0)), 0, 0, 0))

    def get_archive(self, ref: str, path: str, out: IO[bytes], arcname: str | None = None) -> None:
        """``path`` in the container as a tar written to ``out`` (``arcname``: the local engine's only)."""
        resp = self._c.http.open("GET", f"/containers/{quote(ref, safe='')}/archive", {"path": path},
                                 timeout=None, what=f"copy {path} out of {ref}")
        try:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
        finally:
            resp.close()

    def put_archive(self, ref: str, path: str, src: IO[bytes]) -> None:
        """Unpack the tar ``src`` into the directory ``path`` of the container."""
        self._c.request("PUT", f"/containers/{quote(ref, safe='')}/archive", {"path": path}, body=src.read(),
                        headers={"Content-Type": "application/x-tar"}, what=f"copy into {ref}")

    def state(self, ref: str) -> ContainerSummary:
        """The fields both engines keep, from the inspect document."""
        return self.get(ref).state

    def states(self, all: bool = False) -> builtins.list[ContainerSummary]:
        out = []
        for c in self.list(all=all):
            with contextlib.suppress(NotFoundError):
                out.append(self.state(c.id))
        return out

    def start(self, ref: str, attach: tuple[int, int] | None = None, stdin: int | None = None) -> RemoteStarted:
        ctr = self.get(ref)
        sock = None
        if attach is not None:
            sock = self._c.http.hijack(f"/containers/{ctr.id}/attach?stream=1&stdout=1&stderr=1"
                                  + ("&stdin=1" if stdin is not None else ""), {}, f"attach {ref}")
        # the wait is open before the start, as the docker CLI does: an auto-removed container may
        # be gone (404) by the time a wait sent after its start arrives
        exited = self._c.http.open("POST", f"/containers/{ctr.id}/wait", {"condition": "next-exit"},
                                   what=f"wait {ref}", timeout=None)
        try:
            ctr.start()
        except BaseException:
            exited.close()
            raise
        return RemoteStarted(ctr, sock, attach, stdin, exited)

    def wait(self, ref: str, timeout: float | None = None) -> int:
        return self.get(ref).wait(timeout)

    def stop(self, ref: str, timeout: float | None = None, stop_signal: int | None = None) -> None:
        self.get(ref).stop(timeout)

    def kill(self, ref: str, signal: int | str = "SIGKILL") -> None:
        self.get(ref).kill(signal)

    def remove(self, ref: str, force: bool = False) -> str:
        ctr = self.get(ref)
        ctr.remove(force=force)
        return ctr.id

    def logs(self, ref: str, follow: bool = False, tail: int | None = None,
             partial: bool = False) -> Iterator[LogLine]:
        return self.get(ref).log_lines(follow, tail, None)  # a daemon's log endpoint: whole lines

    def pause(self, ref: str) -> None:
        self._c.request("POST", f"/containers/{quote(ref, safe='')}/pause", what=f"pause {ref}")

    def unpause(self, ref: str) -> None:
        self._c.request("POST", f"/containers/{quote(ref, safe='')}/unpause", what=f"unpause {ref}")

    def rename(self, ref: str, name: str) -> str:
        old = self.get(ref).name
        self._c.request("POST", f"/containers/{quote(ref, safe='')}/rename", {"name": name}, what=f"rename {ref}")
        return old

    def update(self, ref: str, *, memory: str | int | None = None, memory_swap: str | int | None = None,
               pids_limit: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               restart_policy: Mapping[str, Any] | None = None) -> None:
        body: dict[str, Any] = {}
        if memory is not None:
            body["Memory"] = parse_bytes(memory)
        if memory_swap is not None:
            body["MemorySwap"] = -1 if memory_swap in (-1, "-1") else parse_bytes(memory_swap, "--memory-swap")
        if pids_limit is not None:
            body["PidsLimit"] = pids_limit
        if cpus is not None:
            body["NanoCpus"] = int(cpus * 1e9)
        if cpu_shares is not None:
            body["CpuShares"] = cpu_shares
        if restart_policy is not None:
            body["RestartPolicy"] = dict(restart_policy)
        self._c.request("POST", f"/containers/{quote(ref, safe='')}/update", body=body, what=f"update {ref}")

    def changes(self, ref: str) -> builtins.list[tuple[str, int]]:
        doc = self._c.request("GET", f"/containers/{quote(ref, safe='')}/changes", what=f"diff {ref}")
        return [(str(c["Path"]), int(c["Kind"])) for c in doc or []]

    def stats(self, ref: str) -> Stats:
        return self.get(ref).stats()

    def processes(self, ref: str, ps_args: str = "") -> ProcessList:
        doc = self._c.request("GET", f"/containers/{quote(ref, safe='')}/top", {"ps_args": ps_args or None},
                              what=f"top {ref}")
        return ProcessList([str(t) for t in doc.get("Titles") or []],
                           [[str(f) for f in row] for row in doc.get("Processes") or []])

    def export(self, ref: str, out: IO[bytes]) -> None:
        resp = self._c.http.open("GET", f"/containers/{quote(ref, safe='')}/export", timeout=None,
                                 what=f"export {ref}")
        try:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
        finally:
            resp.close()

    def exec(self, ref: str, cmd: Sequence[str], *, env: Sequence[str] | None = None, user: str | None = None,
             workdir: str | None = None, stdio: tuple[int, int, int] | None = None,
             privileged: bool = False) -> ExecResult:
        """Run ``cmd`` with its streams copied to ``stdio`` (stdin 0: interactive) or to fds 1, 2."""
        ctr = self.get(ref)
        interactive = stdio is not None and stdio[0] == 0
        doc = self._c.request("POST", f"/containers/{ctr.id}/exec", body={
            "AttachStdin": interactive, "AttachStdout": True, "AttachStderr": True, "Cmd": builtins.list(cmd),
            "Env": builtins.list(env or []), "User": user or "", "WorkingDir": workdir or "", "Privileged": privileged})
        sock = self._c.http.hijack(f"/exec/{doc['Id']}/start", {"Detach": False, "Tty": False}, f"exec in {ref}")
        handle = RemoteStarted(ctr, sock, (stdio[1], stdio[2]) if stdio else (1, 2), 0 if interactive else None)
        handle.join_output()
        handle.close()
        info = self._c.request("GET", f"/exec/{doc['Id']}/json")
        return ExecResult(int(info.get("ExitCode") or 0), b"", b"")


class RemoteContainer(ContainerHandle):
    """A container of a remote engine; the same methods as the local :class:`Container`."""

    def __init__(self, client: RemoteClient, cid: str, doc: dict[str, Any] | None = None) -> None:
        self._c = client
        self.id = cid
        self.doc = doc

    def inspect(self) -> dict[str, Any]:
        self.doc = self._c.request("GET", f"/containers/{self.id}/json", what=f"container {self.id[:12]}")
        return self.doc

    @property
    def state(self) -> ContainerSummary:
        """The fields both engines keep (:class:`ContainerSummary`), from the inspect document."""
        doc = self.inspect()
        published = {k: v for k, v in ((doc.get("NetworkSettings") or {}).get("Ports") or {}).items() if v}
        st = doc.get("State") or {}
        config = doc.get("Config") or {}
        summary: ContainerSummary = {
            "id": doc["Id"], "name": doc.get("Name", "").lstrip("/"), "status": st.get("Status", ""),
            "pid": st.get("Pid", 0), "exit_code": st.get("ExitCode", 0),
            "ports": [b.to_record() for b in PortBinding.from_api(published)],  # null: exposed, not published
            "network": (doc.get("HostConfig") or {}).get("NetworkMode", ""),
            "labels": config.get("Labels") or {}, "image": doc.get("Image", ""),
            "image_name": config.get("Image", ""), "created": doc.get("Created", ""),
            "started_at": st.get("StartedAt", ""), "finished_at": st.get("FinishedAt", "")}
        if st.get("Health"):  # the engine's health checks (ours or dockerd's), issue 16
            summary["health"] = st["Health"]
        return summary

    @property
    def name(self) -> str:
        return str(self.state["name"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.state["labels"])

    @property
    def ip(self) -> str:
        nets = (self.inspect().get("NetworkSettings") or {}).get("Networks") or {}
        return next((n.get("IPAddress", "") for n in nets.values() if n.get("IPAddress")), "")

    @property
    def pid(self) -> int:
        return int(self.state["pid"] or 0)

    def start(self) -> None:
        self._c.request("POST", f"/containers/{self.id}/start", what=f"start {self.id[:12]}")

    def wait(self, timeout: float | None = None) -> int:
        doc = self._c.request("POST", f"/containers/{self.id}/wait", timeout=timeout, what=f"wait {self.id[:12]}")
        if isinstance(doc, bytes):
            doc = json.loads(doc.strip().splitlines()[-1])
        return int(doc.get("StatusCode", 0))

    def stop(self, timeout: float | None = None) -> None:
        self._c.request("POST", f"/containers/{self.id}/stop", {"t": int(timeout) if timeout is not None else None},
                        what=f"stop {self.id[:12]}")

    def kill(self, signal: str | int = "SIGKILL") -> None:
        self._c.request("POST", f"/containers/{self.id}/kill", {"signal": str(signal)}, what=f"kill {self.id[:12]}")

    def remove(self, *, force: bool = False, v: bool = True) -> None:
        self._c.request("DELETE", f"/containers/{self.id}", {"force": force, "v": v}, what=f"remove {self.id[:12]}")

    def restart(self, timeout: float | None = None) -> None:
        self._c.request("POST", f"/containers/{self.id}/restart", {"t": int(timeout) if timeout is not None else None})

    def stats(self) -> Stats:
        # one-shot: this sample only (a plain stream=false waits a second for a second sample)
        doc = self._c.request("GET", f"/containers/{self.id}/stats", {"stream": False, "one-shot": True})
        blkio = (doc.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
        return {"memory_usage": doc["memory_stats"].get("usage", 0), "memory_limit": doc["memory_stats"].get("limit"),
                "pids": doc["pids_stats"].get("current", 0),
                "cpu_usage_ns": doc["cpu_stats"]["cpu_usage"].get("total_usage", 0),
                "net": {name: (int(n.get("rx_bytes", 0)), int(n.get("tx_bytes", 0)))
                        for name, n in (doc.get("networks") or {}).items()},
                "block_read": sum(int(e.get("value", 0)) for e in blkio if str(e.get("op", "")).lower() == "read"),
                "block_written": sum(int(e.get("value", 0)) for e in blkio if str(e.get("op", "")).lower() == "write")}

    def log_lines(self, follow: bool, tail: int | None, timeout: float | None) -> Iterator[LogLine]:
        resp = self._c.http.open("GET", f"/containers/{self.id}/logs",
                                 {"stdout": True, "stderr": True, "follow": follow, "timestamps": True,
                                  "tail": "all" if tail is None else tail}, timeout=timeout)
        try:
            pending = {1: b"", 2: b""}
            for kind, data in frames(resp.read1):
                pending[kind] = pending.get(kind, b"") + data
                *lines, pending[kind] = pending[kind].split(b"\n")
                for line in lines:
                    ts, _, text = line.partition(b" ")
                    yield ("stderr" if kind == 2 else "stdout"), ts.decode(), text + b"\n"
        except TimeoutError:
            return
        finally:
            resp.close()

    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None) -> bytes:
        return b"".join(line for s, _, line in self.log_lines(False, tail, 60)
                        if (s == "stdout" and stdout) or (s == "stderr" and stderr))

    def stream_logs(self, *, follow: bool = True) -> Iterator[LogLine]:
        return self.log_lines(follow, None, None)

    def follow_logs(self, until: float | None = None) -> Iterator[LogLine]:
        timeout = None if until is None else max(0.05, until - time.monotonic())
        return self.log_lines(True, None, timeout)

    def exec(self, cmd: Sequence[str] | str, *, environment: Sequence[str] | None = None,
             user: str | None = None, workdir: str | None = None, privileged: bool = False) -> ExecResult:
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        doc = self._c.request("POST", f"/containers/{self.id}/exec", body={
            "AttachStdout": True, "AttachStderr": True, "Cmd": list(cmd), "Env": list(environment or []),
            "User": user or "", "WorkingDir": workdir or "", "Privileged": privileged},
            what=f"exec in {self.id[:12]}")
        sock = self._c.http.hijack(f"/exec/{doc['Id']}/start", {"Detach": False, "Tty": False}, f"exec in {self.id[:12]}")
        with sock:
            data = bytearray()
            while chunk := sock.recv(65536):
                data += chunk
        out, err = demux(bytes(data))
        info = self._c.request("GET", f"/exec/{doc['Id']}/json")
        return ExecResult(int(info.get("ExitCode") or 0), out, err)

    def address(self, port: int | str) -> tuple[str, int]:
        num, proto = parse_container_port(port)
        for p in self.state.get("ports") or []:
            if p["container_port"] == num and p["proto"] == proto:
                host = self._c.address_host if p["host_ip"] in ("0.0.0.0", "", "::") else p["host_ip"]
                return host, int(p["host_port"])
        raise NotFoundError(f"No public port '{num}/{proto}' published for {self.name}")

    def copy_in(self, src: str | os.PathLike[str], dest: str) -> None:
        src = os.fspath(src)
        if not os.path.lexists(src):
            raise NotFoundError(f"copy {src} into {self.name}: no such file or directory")
        is_dir = False
        with contextlib.suppress(PodsError):
            resp = self._c.http.open("HEAD", f"/containers/{self.id}/archive", {"path": dest})
            stat = json.loads(base64.b64decode(resp.getheader("X-Docker-Container-Path-Stat") or "e30="))
            resp.close()
            is_dir = bool(int(stat.get("mode", 0)) & (1 << 31))
        target, arcname = (dest, os.path.basename(os.path.normpath(src))) if is_dir else (
            os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest.rstrip("/")))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(src, arcname=arcname)
        self._c.request("PUT", f"/containers/{self.id}/archive", {"path": target}, body=buf.getvalue(),
                        headers={"Content-Type": "application/x-tar"}, what=f"copy into {self.id[:12]}")

    def _get_archive(self, path: str) -> bytes:
        return bytes(self._c.request("GET", f"/containers/{self.id}/archive", {"path": path},
                                     what=f"copy {path} out of {self.id[:12]}"))

    def copy_out(self, src: str, dest: str | os.PathLike[str]) -> None:
        data = self._get_archive(src)
        dest = Path(dest)
        target, rename = (dest, None) if dest.is_dir() else (dest.parent, dest.name)
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=io.BytesIO(data)) as tin, tarfile.open(fileobj=buf, mode="w") as tout:
                for m in tin:
                    f = tin.extractfile(m) if m.isfile() else None
                    if rename is not None:
                        rest = m.name.partition("/")[2]
                        m.name = rename + ("/" + rest if rest else "")
                    tout.addfile(m, f)
            buf.seek(0)
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
            try:
                extract_tar(buf, fd)
            finally:
                os.close(fd)

    def read_file(self, path: str) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(self._get_archive(path))) as tf:
            m = tf.next()
            f = tf.extractfile(m) if m is not None else None
            if f is None:
                raise InvalidArgumentError(f"read {path} in {self.name}: not a regular file")
            return f.read()

    def commit(self, repository: str | None = None, tag: str | None = None, *, message: str = "",
               author: str = "", changes: Sequence[str] | str = (), conf: Mapping[str, Any] | None = None,
               pause: bool = True, stop: bool = False) -> RemoteImage:
        if stop and self.status == "running":
            self.stop()
        changes = [changes] if isinstance(changes, str) else list(changes)
        doc = self._c.request("POST", "/commit", {"container": self.id, "repo": repository, "tag": tag,
                                                  "comment": message, "author": author, "pause": pause,
                                                  "changes": "\n".join(changes) or None}, body=dict(conf or {}))
        return self._c.images.get(doc["Id"])

    def probe(self, st: Mapping[str, Any] | None = None) -> RemoteProbe:
        return RemoteProbe(self)


class RemoteProbe:
    """Readiness through the API: the exit by a ``/wait`` in a thread, listening ports by an exec
    that reads ``/proc/net/tcp`` (None when the image cannot run ``cat``)."""

    def __init__(self, container: RemoteContainer) -> None:
        self.container = container
        self._exited = threading.Event()
        self._can_read_proc = True

        def watch() -> None:
            with contextlib.suppress(Exception):
                container.wait()
            self._exited.set()

        threading.Thread(target=watch, name="pods-remote-wait", daemon=True).start()

    def exited(self) -> bool:
        return self._exited.is_set()

    def wait_exit(self, seconds: float) -> bool:
        return self._exited.wait(seconds)

    def listening(self) -> set[int] | None:
        if not self._can_read_proc:
            return None
        try:
            res = self.container.exec(["cat", "/proc/net/tcp", "/proc/net/tcp6"])
        except ConflictError:  # not running: it exited, whatever /wait has said so far
            self._exited.set()
            return set()
        except PodsError:
            self._can_read_proc = False
            return None
        if res.exit_code != 0 and not res.output:
            self._can_read_proc = False
            return None
        ports = set()
        for line in res.output.decode(errors="replace").splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    def connection(self, port: int, timeout: float) -> http.client.HTTPConnection:
        raise InvalidArgumentError(f"wait for http on port {port}: with a remote engine the port must be published")

    def close(self) -> None:
        pass


class RemoteNetworks:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def create(self, name: str, *, subnet: str | None = None, internal: bool = False,
               labels: Mapping[str, str] | None = None) -> NetworkCreated:
        body: dict[str, Any] = {"Name": name, "Driver": "bridge", "Internal": internal, "Labels": dict(labels or {}),
                                "CheckDuplicate": True}
        if subnet:
            body["IPAM"] = {"Driver": "default", "Config": [{"Subnet": subnet}]}
        doc = self._c.request("POST", "/networks/create", body=body, what=f"network create {name}")
        return {"id": str(doc["Id"]), "name": name}

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._c.request("GET", f"/networks/{quote(name, safe='')}", what=f"network {name}"))

    def list(self, *, create_default: bool = True) -> builtins.list[dict[str, Any]]:
        return [n for n in self._c.request("GET", "/networks") if n.get("Name") not in ("host", "none")]

    def remove(self, name: str) -> str:
        self._c.request("DELETE", f"/networks/{quote(name, safe='')}", what=f"network rm {name}")
        return name

    def connect(self, network: str, container: str, aliases: Sequence[str] = ()) -> None:
        self._c.request("POST", f"/networks/{quote(network, safe='')}/connect",
                        body={"Container": container, "EndpointConfig": {"Aliases": list(aliases)}})

    def disconnect(self, network: str, container: str) -> None:
        self._c.request("POST", f"/networks/{quote(network, safe='')}/disconnect", body={"Container": container})


class RemoteVolumes:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def create(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        return dict(self._c.request("POST", "/volumes/create", body={"Name": name or "", "Labels": dict(labels or {})}))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self._c.request("GET", f"/volumes/{quote(name, safe='')}"))

    def list(self) -> builtins.list[dict[str, Any]]:
        return list(self._c.request("GET", "/volumes").get("Volumes") or [])

    def remove(self, name: str, *, force: bool = False) -> None:
        self._c.request("DELETE", f"/volumes/{quote(name, safe='')}", {"force": force})


class RemoteStarted:
    """A started container whose streams a thread copies to local fds; ``wait()`` its exit code."""

    def __init__(self, ctr: RemoteContainer, sock: socket.socket | None, out: tuple[int, int] | None,
                 stdin: int | None, exited: StreamResponse | None = None) -> None:
        self.ctr, self._sock, self._exited = ctr, sock, exited
        self._copier: threading.Thread | None = None
        if sock is not None and out is not None:
            def copy() -> None:
                for kind, data in frames(sock.recv):
                    os.write(out[1] if kind == 2 else out[0], data)

            self._copier = threading.Thread(target=copy, daemon=True, name="pods-remote-attach")
            self._copier.start()
        if sock is not None and stdin is not None:
            def feed() -> None:
                with contextlib.suppress(OSError):
                    while data := os.read(stdin, 65536):
                        sock.sendall(data)
                    sock.shutdown(socket.SHUT_WR)

            threading.Thread(target=feed, daemon=True, name="pods-remote-stdin").start()

    def join_output(self) -> None:
        """Until the engine closes the streams (the process and its children ended)."""
        if self._copier is not None:
            self._copier.join()

    def wait(self) -> int:
        lines = []
        if self._exited is not None:
            try:
                lines = self._exited.read().strip().splitlines()
            finally:
                self._exited.close()
        code = int(json.loads(lines[-1]).get("StatusCode", 0)) if lines else self.ctr.wait()
        if self._copier is not None:
            self._copier.join(timeout=10)
        self.close()
        return code

    def close(self) -> None:
        if self._exited is not None:
            self._exited.close()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
