"""The Docker Engine API (a documented subset, v1.24 to v1.47) over the local engine.

Thin over the Client API: each handler turns a request into Client calls and their results into
Docker's JSON. Errors are Docker's texts and codes (docker-py picks its exception class from
"No such image: ..."); nothing a client sends can end the daemon (see http.py).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import json
import os
import re
import select
import shutil
import socket
import struct
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_pods.client.local import Client, Container, container_inspect, image_inspect
from pytest_pods.daemon.http import Request
from pytest_pods.errors import (
    ConflictError,
    ContainerNotFoundError,
    ContainerStartError,
    HTTPError,
    ImageNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PodsError,
)

API_VERSION = "1.47"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "28.0.0-pods"
RYUK_IMAGE = re.compile(r"(^|/)testcontainers/ryuk(:|@|$)")
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
STDOUT, STDERR = 1, 2


def _bool(value: str | None, default: bool = False) -> bool:
    """docker-py sends ``True``/``False``, the CLI ``1``/``0`` or ``true``."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _int(value: str | None, default: int | None = None, name: str = "value") -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise HTTPError(400, f"invalid {name}: {value!r}") from None


def _filters(req: Request) -> dict[str, list[str]]:
    raw = req.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise HTTPError(400, "invalid filter: bad JSON") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, "invalid filter: not an object")
    out: dict[str, list[str]] = {}
    for k, v in doc.items():  # {"label": ["a=b"]} or the old {"label": {"a=b": true}}
        out[str(k)] = [str(x) for x in (v if isinstance(v, list) else list(v) if isinstance(v, dict) else [v])]
    return out


def _frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def _go_mode(st: os.stat_result) -> int:
    """A Go os.FileMode, as docker cp's path-stat header carries it."""
    import stat as _stat

    mode = _stat.S_IMODE(st.st_mode) & 0o777
    if _stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif _stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return mode


def _expect(doc: Any, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = doc.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise HTTPError(400, f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


class Exec:
    """One exec instance (``POST /containers/ID/exec``), until it is inspected after its end."""

    def __init__(self, cid: str, config: dict[str, Any]) -> None:
        self.id = os.urandom(32).hex()
        self.cid = cid
        self.config = config
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.master: int | None = None


class Events:
    """Container lifecycle events for ``GET /events`` (what this daemon did or saw).

    The last ``keep`` events are kept, as dockerd keeps its last 256 (more here: a test session
    asks for ``--since`` after the fact), so a subscriber can start in the past."""

    def __init__(self, keep: int = 1024) -> None:
        self._subs: list[tuple[threading.Condition, list[dict[str, Any]]]] = []
        self._history: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def publish(self, action: str, cid: str, attrs: dict[str, str], kind: str = "container") -> None:
        now = time.time_ns()
        ev = {"status": action, "id": cid, "from": attrs.get("image", ""), "Type": kind, "Action": action,
              "Actor": {"ID": cid, "Attributes": attrs}, "scope": "local", "time": now // 10**9,
              "timeNano": now}
        with self._lock:
            self._history.append(ev)
            for cond, queue in self._subs:
                with cond:
                    queue.append(ev)
                    cond.notify()

    @contextlib.contextmanager
    def subscribe(self, since: float | None = None) -> Iterator[tuple[threading.Condition, list[dict[str, Any]]]]:
        """A queue of the events from now on, and first the kept ones from ``since`` (seconds)."""
        sub: tuple[threading.Condition, list[dict[str, Any]]] = (threading.Condition(), [])
        with self._lock:
            if since is not None:
                sub[1].extend(ev for ev in self._history if ev["timeNano"] >= since * 1e9)
            self._subs.append(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subs.remove(sub)


class Api:
    """Routes and handlers. ``dispatch(request)`` is the HTTP server's entry point."""

    def __init__(self, client: Client, log: Callable[[str], None] = lambda m: None) -> None:
        self.client = client
        self.log = log
        self.trace = bool(os.environ.get("PODS_DAEMON_TRACE"))
        self.execs: dict[str, Exec] = {}
        self.tty: set[str] = set()  # containers created with Tty: their streams are raw, not framed
        self.attach_waiting: dict[str, list[tuple[Any, dict[str, bool]]]] = {}
        self.attach_lock = threading.Lock()
        self.started = threading.Condition()
        self.events = Events()
        from pytest_pods.daemon.ryuk import Ryuk

        self.ryuk = Ryuk(self)
        R = self._route
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., None]]] = []
        R("GET|HEAD", r"/_ping", self.ping)
        R("GET", r"/version", self.version)
        R("GET", r"/info", self.info)
        R("GET", r"/events", self.events_stream)
        R("POST", r"/auth", self.auth)
        R("GET", r"/system/df", self.system_df)
        # containers
        R("POST", r"/containers/create", self.container_create)
        R("GET", r"/containers/json", self.container_list)
        R("POST", r"/containers/prune", self.container_prune)
        R("GET", r"/containers/(?P<ref>[^/]+)/json", self.container_inspect)
        R("POST", r"/containers/(?P<ref>[^/]+)/start", self.container_start)
        R("POST", r"/containers/(?P<ref>[^/]+)/wait", self.container_wait)
        R("GET", r"/containers/(?P<ref>[^/]+)/logs", self.container_logs)
        R("POST", r"/containers/(?P<ref>[^/]+)/attach", self.container_attach)
        R("POST", r"/containers/(?P<ref>[^/]+)/stop", self.container_stop)
        R("POST", r"/containers/(?P<ref>[^/]+)/kill", self.container_kill)
        R("POST", r"/containers/(?P<ref>[^/]+)/restart", self.container_restart)
        R("DELETE", r"/containers/(?P<ref>[^/]+)", self.container_remove)
        R("GET", r"/containers/(?P<ref>[^/]+)/top", self.container_top)
        R("GET", r"/containers/(?P<ref>[^/]+)/stats", self.container_stats)
        R("GET|HEAD|PUT", r"/containers/(?P<ref>[^/]+)/archive", self.container_archive)
        R("POST", r"/containers/(?P<ref>[^/]+)/exec", self.exec_create)
        R("POST", r"/containers/(?P<ref>[^/]+)/resize", self.container_resize)
        R("POST", r"/commit", self.commit)
        R("POST", r"/exec/(?P<eid>[^/]+)/start", self.exec_start)
        R("POST", r"/exec/(?P<eid>[^/]+)/resize", self.exec_resize)
        R("GET", r"/exec/(?P<eid>[^/]+)/json", self.exec_inspect)
        # images (names contain / and :, so the verbs are matched at the end)
        R("GET", r"/images/json", self.image_list)
        R("POST", r"/images/create", self.image_create)
        R("POST", r"/images/load", self.image_load)
        R("GET", r"/images/get", self.image_save)
        R("POST", r"/images/prune", self.image_prune)
        R("POST", r"/build", self.build)
        R("POST", r"/build/prune", self.build_prune)
        R("GET", r"/images/(?P<name>.+)/json", self.image_inspect)
        R("GET", r"/images/(?P<name>.+)/history", self.image_history)
        R("GET", r"/images/(?P<name>.+)/get", self.image_save)
        R("POST", r"/images/(?P<name>.+)/tag", self.image_tag)
        R("POST", r"/images/(?P<name>.+)/push", self.image_push)
        R("DELETE", r"/images/(?P<name>.+)", self.image_remove)
        # networks
        R("GET", r"/networks", self.network_list)
        R("POST", r"/networks/create", self.network_create)
        R("POST", r"/networks/prune", self.network_prune)
        R("GET", r"/networks/(?P<ref>[^/]+)", self.network_inspect)
        R("POST", r"/networks/(?P<ref>[^/]+)/connect", self.network_connect)
        R("POST", r"/networks/(?P<ref>[^/]+)/disconnect", self.network_disconnect)
        R("DELETE", r"/networks/(?P<ref>[^/]+)", self.network_remove)
        # volumes
        R("GET", r"/volumes", self.volume_list)
        R("POST", r"/volumes/create", self.volume_create)
        R("POST", r"/volumes/prune", self.volume_prune)
        R("GET", r"/volumes/(?P<name>[^/]+)", self.volume_inspect)
        R("DELETE", r"/volumes/(?P<name>[^/]+)", self.volume_remove)

    def _route(self, methods: str, pattern: str, handler: Callable[..., None]) -> None:
        self.routes.append((methods, re.compile(f"^{pattern}/?$"), handler))

    # -- dispatch ------------------------------------------------------------------------
    def dispatch(self, req: Request) -> None:
        path = req.path
        if self.trace:
            self.log(f"{req.method} {req.path} {req.query}")
        m = _VERSIONED.match(path)
        if m:
            version = (int(m.group(1)), int(m.group(2)))
            path = m.group(3)
            if version < (1, 24):
                raise HTTPError(400, f"client version {m.group(1)}.{m.group(2)} is too old. Minimum supported "
                                     f"API version is {MIN_API_VERSION}, please upgrade your client to a newer version")
            if version > tuple(int(x) for x in API_VERSION.split(".")):
                raise HTTPError(400, f"client version {m.group(1)}.{m.group(2)} is too new. Maximum supported "
                                     f"API version is {API_VERSION}")
        allowed = False
        for methods, regex, handler in self.routes:
            match = regex.match(path)
            if not match:
                continue
            if req.method not in methods.split("|"):
                allowed = True
                continue
            try:
                handler(req, **match.groupdict())
            except HTTPError:
                raise
            except (ContainerNotFoundError, ImageNotFoundError, NotFoundError) as exc:
                raise HTTPError(404, str(exc)) from None
            except ConflictError as exc:
                raise HTTPError(409, str(exc)) from None
            except (InvalidArgumentError, ValueError, TypeError) as exc:
                raise HTTPError(400, str(exc)) from None
            except PodsError as exc:
                raise HTTPError(500, str(exc)) from None
            return
        if allowed:
            raise HTTPError(405, f"method {req.method} not allowed for {path}")
        raise HTTPError(404, "page not found")

    # -- system --------------------------------------------------------------------------
    def ping(self, req: Request) -> None:
        req.send(200, b"OK", "text/plain; charset=utf-8", {"Cache-Control": "no-cache, no-store, must-revalidate",
                                                         "Pragma": "no-cache"})

    def version(self, req: Request) -> None:
        u = os.uname()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(u.machine, u.machine)
        req.send_json({
            "Platform": {"Name": "pytest-pods"}, "Version": ENGINE_VERSION, "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION, "GitCommit": "pods", "GoVersion": "n/a (Python)", "Os": "linux",
            "Arch": arch, "KernelVersion": u.release, "BuildTime": "",
            # the docker CLI prints the Engine component's Details, not the top-level fields
            "Components": [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": {
                "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch,
                "KernelVersion": u.release, "GitCommit": "pods", "GoVersion": "n/a (Python)", "BuildTime": "",
                "Experimental": "false"}}],
        })

    def info(self, req: Request) -> None:
        rt = self.client.runtime
        states = [st["status"] for st in rt.list(all=True)]
        from pytest_pods.engine.runtime.cgroups.manager import cgroup_version

        u = os.uname()
        mem = 0
        with contextlib.suppress(OSError, ValueError):
            mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
        req.send_json({
            "ID": "pods-" + str(self.client.root).replace("/", "-").strip("-"), "Name": u.nodename,
            "Containers": len(states), "ContainersRunning": states.count("running"), "ContainersPaused": 0,
            "ContainersStopped": len(states) - states.count("running"), "Images": len(self.client.images.list()),
            "Driver": "overlay2", "DriverStatus": [], "DockerRootDir": str(self.client.root),
            "OperatingSystem": "pytest-pods", "OSType": "linux", "Architecture": u.machine, "KernelVersion": u.release,
            "NCPU": os.cpu_count(), "MemTotal": mem, "ServerVersion": ENGINE_VERSION, "CgroupDriver": "cgroupfs",
            "CgroupVersion": str(cgroup_version()), "DefaultRuntime": "pods", "Runtimes": {"pods": {"path": "pods"}},
            "SecurityOptions": ["name=no-new-privileges"], "Swarm": {"LocalNodeState": "inactive"},
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
            "Labels": [], "ExperimentalBuild": False, "LiveRestoreEnabled": True, "Debug": False,
            "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
            "IPv4Forwarding": True, "LoggingDriver": "json-file", "Warnings": [],
        })

    def system_df(self, req: Request) -> None:
        images = [{"Id": i.id, "RepoTags": i.familiar_tags, "Size": i.size, "SharedSize": 0, "Containers": 0,
                   "Created": 0, "ParentId": "", "RepoDigests": [], "Labels": {}} for i in self.client.images.list()]
        req.send_json({"LayersSize": sum(i["Size"] for i in images), "Images": images, "Containers": [],
                       "Volumes": [], "BuildCache": []})

    def events_stream(self, req: Request) -> None:
        # the CLI turns --since/--until (10m, RFC 3339) into unix seconds ("1733000000.000000000")
        since = _float(req.query.get("since")) if req.query.get("since") else None
        deadline = _float(req.query.get("until")) if req.query.get("until") else None
        filters = _filters(req)
        with self.events.subscribe(since) as (cond, queue):
            def lines() -> Iterator[bytes]:
                while True:
                    with cond:
                        if not queue:
                            timeout = None if deadline is None else deadline - time.time()
                            if timeout is not None and timeout <= 0:
                                return
                            cond.wait(timeout=min(timeout, 1.0) if timeout is not None else 1.0)
                        batch, queue[:] = list(queue), []
                    for ev in batch:
                        if deadline is not None and ev["timeNano"] > deadline * 1e9:
                            return
                        if _event_matches(ev, filters):
                            yield json.dumps(ev).encode() + b"\n"
                    if deadline is not None and time.time() >= deadline:
                        return
                    if batch == [] and _peer_closed(req.conn):
                        return

            req.stream(lines())

    def auth(self, req: Request) -> None:
        doc = req.json_object()
        from urllib.parse import urlsplit

        address = str(doc.get("serveraddress") or "https://index.docker.io/v1/")
        host = urlsplit(address).netloc if "://" in address else address.split("/", 1)[0]
        try:
            from pytest_pods.engine.registry import http as transport

            transport.login(host, str(doc.get("username", "")), str(doc.get("password", "")),
                            insecure=host.startswith(("127.", "localhost")))
        except PodsError as exc:
            raise HTTPError(401, str(exc)) from None
        except OSError as exc:
            raise HTTPError(500, f"login {host}: {exc}") from None
        req.send_json({"Status": "Login Succeeded", "IdentityToken": ""})

    # -- containers ----------------------------------------------------------------------
    def _container(self, ref: str) -> Container:
        return self.client.containers.get(ref)

    def container_create(self, req: Request) -> None:
        doc = req.json()
        if not isinstance(doc, dict):
            raise HTTPError(400, "the container config must be a JSON object")
        name = req.query.get("name") or None
        image = _expect(doc, "Image", str, "")
        if not image:
            raise HTTPError(400, "No image specified")
        if RYUK_IMAGE.search(image):
            cid = self.ryuk.create(name, doc)
            req.send_json({"Id": cid, "Warnings": []}, 201)
            return
        kwargs = _create_kwargs(doc)
        for vol in kwargs.pop("anonymous_volumes"):
            self.client.volumes.create(vol, anonymous=True)
        try:
            self.client.images.get(image)
        except ImageNotFoundError:
            raise HTTPError(404, f"No such image: {image}") from None
        tty = bool(doc.get("Tty"))
        ctr = self.client.containers.create(image, kwargs.pop("command"), name=name, **kwargs)
        if tty:
            self.tty.add(ctr.id)
        self.events.publish("create", ctr.id, {**_attrs(ctr.state), "image": image})
        req.send_json({"Id": ctr.id, "Warnings": []}, 201)

    def container_list(self, req: Request) -> None:
        all_ = _bool(req.query.get("all"))
        limit = _int(req.query.get("limit"), -1, "limit")
        filters = _filters(req)
        rows = []
        for st in self.client.runtime.list(all=all_ or bool(filters.get("status"))):
            row = _list_row(self.client, st)
            if _container_matches(st, row, filters):
                rows.append(row)
        rows += [r for r in self.ryuk.list_rows() if _container_matches({}, r, filters) or not filters]
        req.send_json(rows[:limit] if limit and limit > 0 else rows)

    def container_inspect(self, req: Request, ref: str) -> None:
        virtual = self.ryuk.inspect(ref)
        if virtual is not None:
            req.send_json(virtual)
            return
        doc = _inspect_doc(self.client, self._container(ref).id)
        doc["Config"]["Tty"] = doc["Id"] in self.tty
        req.send_json(doc)

    def container_start(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status == "running":
            req.send(304)
            return
        attrs = _attrs(ctr.state)  # now: an --rm container may be gone once started
        with self.attach_lock:
            waiting = self.attach_waiting.pop(ctr.id, [])
        if waiting:
            self._start_attached(ctr, waiting)
        else:
            ctr.start()
        with self.started:
            self.started.notify_all()
        self.events.publish("start", ctr.id, attrs)
        self._watch_exit(ctr.id, attrs)
        req.send(204)

    def _watch_exit(self, cid: str, attrs: dict[str, str]) -> None:
        rt = self.client.runtime

        def watch() -> None:
            with contextlib.suppress(PodsError, OSError):
                try:
                    code = rt.wait(cid)
                except ContainerNotFoundError:  # --rm, and already removed: its exit code stays
                    from pytest_pods.engine.runtime.lifecycle import _tombstone

                    code = _tombstone(rt.dir, cid)
                self.events.publish("die", cid, {**attrs, "exitCode": str(code)})

        threading.Thread(target=watch, name="pods-exit-watch", daemon=True).start()

    def _start_attached(self, ctr: Container, waiting: list[tuple[Any, dict[str, bool]]]) -> None:
        """Start with pipes for the output (and stdin) that attach sessions are waiting on."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin_r = stdin_w = None
        if any(opts.get("stdin") for _, opts in waiting):
            stdin_r, stdin_w = os.pipe()
        try:
            handle = self.client.runtime.start(ctr.id, attach=(out_w, err_w), stdin=stdin_r)
        except BaseException:
            for fd in (out_r, err_r, stdin_w):
                if fd is not None:
                    os.close(fd)
            for sock, _ in waiting:
                sock.close()
            raise
        finally:
            for fd in (out_w, err_w, stdin_r):
                if fd is not None:
                    os.close(fd)
        handle.close()
        tty = ctr.id in self.tty
        threading.Thread(target=_pump_out, args=(out_r, err_r, waiting, tty), daemon=True,
                         name="pods-attach-out").start()
        if stdin_w is not None:
            src = next(sock for sock, opts in waiting if opts.get("stdin"))
            threading.Thread(target=_pump_in, args=(src, stdin_w), daemon=True, name="pods-attach-in").start()

    def container_wait(self, req: Request, ref: str) -> None:
        condition = req.query.get("condition") or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise HTTPError(400, f"invalid condition: {condition!r}")
        if self.ryuk.owns(ref):
            req.stream(iter([json.dumps({"StatusCode": self.ryuk.wait(ref), "Error": None}).encode()]))
            return
        ctr = self._container(ref)
        cid = ctr.id

        def result() -> Iterator[bytes]:
            yield b""
            code = self._wait(cid, condition, req.conn)
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

        req.stream(result())

    def _wait(self, cid: str, condition: str, conn: socket.socket) -> int:
        rt = self.client.runtime
        if condition in ("next-exit", "removed"):
            with self.started:
                while True:
                    try:
                        status = rt.state(cid)["status"]
                    except ContainerNotFoundError:
                        break
                    if status != "created" or _peer_closed(conn):
                        break
                    self.started.wait(timeout=0.5)
        try:
            code = rt.wait(cid)
        except ContainerNotFoundError:
            from pytest_pods.engine.runtime.lifecycle import _tombstone

            code = _tombstone(rt.dir, cid)
        if condition == "removed":
            deadline = time.monotonic() + 30
            while (rt.dir / cid).exists() and time.monotonic() < deadline and not _peer_closed(conn):
                time.sleep(0.01)
        return code

    def container_logs(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.stream(iter([_frame(STDOUT, time.strftime("%Y/%m/%d %H:%M:%S").encode() + b" Started!\n")]),
                       "application/vnd.docker.multiplexed-stream")
            return
        ctr = self._container(ref)
        q = req.query
        want_out, want_err = _bool(q.get("stdout")), _bool(q.get("stderr"))
        follow, stamps = _bool(q.get("follow")), _bool(q.get("timestamps"))
        tail = q.get("tail", "all")
        tail_n = None if tail in ("all", "", None) else _int(tail, None, "tail")
        since = _float(q.get("since"))
        until = _float(q.get("until"))
        tty = ctr.id in self.tty

        def frames() -> Iterator[bytes]:
            for stream, ts, line in self.client.runtime.logs(ctr.id, follow=follow, tail=tail_n):
                if (stream == "stdout" and not want_out) or (stream == "stderr" and not want_err):
                    continue
                if since or until:
                    t = _parse_time(ts)
                    if (since and t < since) or (until and t > until):
                        continue
                data = (ts.encode() + b" " + line) if stamps else line
                yield data if tty else _frame(STDOUT if stream == "stdout" else STDERR, data)
                if follow and _peer_closed(req.conn):
                    return

        req.stream(frames(), "application/vnd.docker.multiplexed-stream")

    def container_attach(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.hijack("application/vnd.docker.multiplexed-stream").close()
            return
        ctr = self._container(ref)
        q = req.query
        opts = {"stdout": _bool(q.get("stdout")), "stderr": _bool(q.get("stderr")), "stdin": _bool(q.get("stdin")),
                "stream": _bool(q.get("stream"), True), "logs": _bool(q.get("logs"))}
        # registered before the 101 goes out, under the lock the start takes: the CLI sends its
        # start as soon as it reads the 101, and a start that found no attach session would run
        # the container unattached and leave this stream open forever (docker run hung)
        with self.attach_lock:
            status = ctr.status
            if status == "created":
                self.attach_waiting.setdefault(ctr.id, []).append((req.conn, opts))
            sock = req.hijack("application/vnd.docker.multiplexed-stream")
        req.keep()
        if status == "created":
            return  # the start feeds it
        # running or exited: what the log holds (and what comes, while it runs)
        threading.Thread(target=self._attach_logs, args=(ctr, sock, opts), daemon=True,
                         name="pods-attach-logs").start()

    def _attach_logs(self, ctr: Container, sock: socket.socket, opts: dict[str, bool]) -> None:
        try:
            follow = opts["stream"] and ctr.status == "running"
            tail = None if opts["logs"] else 0
            for stream, _, line in self.client.runtime.logs(ctr.id, follow=follow, tail=tail):
                if opts["stdout" if stream == "stdout" else "stderr"]:
                    sock.sendall(_frame(STDOUT if stream == "stdout" else STDERR, line))
        except (OSError, PodsError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def container_stop(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status != "running":
            req.send(304)
            return
        t = _int(req.query.get("t"), None, "t")
        sig = req.query.get("signal")
        attrs = _attrs(ctr.state)  # before: an --rm container is gone once stopped
        if sig:
            from pytest_pods.engine.runtime.spec import parse_signal

            self.client.runtime.stop(ctr.id, t, stop_signal=parse_signal(sig))
        else:
            ctr.stop(t)
        self.events.publish("stop", ctr.id, attrs)
        req.send(204)

    def container_kill(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            self.ryuk.remove(ref)
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status != "running":
            raise HTTPError(409, f"Cannot kill container: {ref}: Container {ctr.id} is not running")
        attrs = _attrs(ctr.state)
        ctr.kill(req.query.get("signal") or "SIGKILL")
        self.events.publish("kill", ctr.id, {**attrs, "signal": req.query.get("signal") or "SIGKILL"})
        req.send(204)

    def container_restart(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        attrs = _attrs(ctr.state)
        ctr.restart(_int(req.query.get("t"), None, "t"))
        self._watch_exit(ctr.id, attrs)
        self.events.publish("start", ctr.id, attrs)
        self.events.publish("restart", ctr.id, attrs)
        req.send(204)

    def container_remove(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            self.ryuk.remove(ref)
            req.send(204)
            return
        ctr = self._container(ref)
        force = _bool(req.query.get("force"))
        if ctr.status == "running" and not force:
            raise HTTPError(409, f"cannot remove container \"/{ctr.name}\": container is running: stop the "
                                 "container before removing or force remove")
        st = ctr.state
        attrs = _attrs(st)
        ctr.remove(force=force)
        if _bool(req.query.get("v")):
            self.client.runtime.settle()  # the monitor of a running one still holds its mounts
            self.client.volumes.remove_anonymous_of(st.get("binds") or [])
        self.events.publish("destroy", ctr.id, attrs)
        req.send(204)

    def container_prune(self, req: Request) -> None:
        filters = _filters(req)
        if not filters:
            done = [line.split(": ", 1)[1] for line in self.client.prune() if line.startswith("Deleted container")]
        else:
            done = []
            for st in self.client.runtime.list(all=True):
                if st["status"] in ("running", "starting") or not _labels_match(st.get("labels") or {},
                                                                                 filters.get("label", [])):
                    continue
                with contextlib.suppress(PodsError):
                    self.client.runtime.remove(st["id"])
                    done.append(st["id"])
        req.send_json({"ContainersDeleted": done, "SpaceReclaimed": 0})

    def container_top(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        if ctr.status != "running":
            raise HTTPError(409, f"Container {ctr.id} is not running")
        procs = []
        for pid in self.client.runtime._cgroup(ctr.id).procs():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                fields = stat[stat.rindex(")") + 2:].split()
                uid = Path(f"/proc/{pid}").stat().st_uid
            except (OSError, ValueError):
                continue
            procs.append([str(uid), str(pid), fields[1], "0", "-", "?", "00:00:00", cmd])
        req.send_json({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": procs})

    def container_stats(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        stream = _bool(req.query.get("stream"), True) and not _bool(req.query.get("one-shot"))

        def doc(prev: dict[str, Any] | None) -> dict[str, Any]:
            s = ctr.stats() if ctr.status == "running" else {"memory_usage": 0, "memory_limit": None, "pids": 0,
                                                              "cpu_usage_ns": 0}
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
            cpu = {"cpu_usage": {"total_usage": s["cpu_usage_ns"], "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                   "system_cpu_usage": int(time.monotonic() * 1e9), "online_cpus": os.cpu_count(),
                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
            return {"read": now, "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
                    "id": ctr.id, "name": "/" + ctr.name, "pids_stats": {"current": s["pids"]},
                    "memory_stats": {"usage": s["memory_usage"], "limit": s["memory_limit"] or _mem_total(),
                                     "stats": {}},
                    "cpu_stats": cpu, "precpu_stats": prev["cpu_stats"] if prev else {"cpu_usage": {"total_usage": 0}},
                    "networks": {}, "blkio_stats": {}}

        if not stream:
            req.send_json(doc(None))
            return

        def docs() -> Iterator[bytes]:
            prev = None
            while not _peer_closed(req.conn):
                d = doc(prev)
                yield json.dumps(d).encode() + b"\n"
                prev = d
                time.sleep(1)

        req.stream(docs())

    def container_resize(self, req: Request, ref: str) -> None:
        self._container(ref)
        req.send(200, b"", "text/plain")

    def container_archive(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        path = req.query.get("path")
        if not path:
            raise HTTPError(400, "bad parameter: path cannot be empty")
        if ctr.status != "running":
            raise HTTPError(409, f"copy files of container {ctr.name}: it is not running (pytest-pods copies "
                                 "through a running container's root)")
        rt = self.client.runtime
        if req.method == "PUT":
            st = rt.path_stat(ctr.id, path)
            if st is None:
                raise HTTPError(404, f"Could not find the file {path} in container {ref}")
            import stat as _stat

            if not _stat.S_ISDIR(st.st_mode):
                raise HTTPError(400, f"extraction point is not a directory: {path}")
            with tempfile.TemporaryFile() as buf:
                while chunk := req.read():
                    buf.write(chunk)
                buf.seek(0)
                try:
                    rt.put_archive(ctr.id, path, buf)
                except (tarfile.TarError, EOFError) as exc:
                    raise HTTPError(400, f"copy into {path}: not a tar archive: {exc}") from None
            req.send(200, b"", "text/plain")
            return
        st = rt.path_stat(ctr.id, path)
        if st is None:
            raise HTTPError(404, f"Could not find the file {path} in container {ref}")
        name = os.path.basename(path.rstrip("/")) or "/"
        link = ""
        header = base64.b64encode(json.dumps({
            "name": name, "size": st.st_size, "mode": _go_mode(st),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)), "linkTarget": link,
        }).encode()).decode()
        if req.method == "HEAD":
            req.send(200, b"", "application/x-tar", {"X-Docker-Container-Path-Stat": header})
            return
        buf = tempfile.TemporaryFile()
        rt.get_archive(ctr.id, path, buf)
        buf.seek(0)
        req.stream(iter(lambda: buf.read(65536), b""), "application/x-tar", headers={"X-Docker-Container-Path-Stat": header})
        buf.close()

    def commit(self, req: Request) -> None:
        q = req.query
        ref = q.get("container")
        if not ref:
            raise HTTPError(400, "No container specified")
        conf = req.json()
        if not isinstance(conf, dict):
            raise HTTPError(400, "the container config must be a JSON object")
        repo, tag = q.get("repo") or None, q.get("tag") or None
        changes = [c for c in (q.get("changes") or "").split("\n") if c.strip()]
        run_conf = {k: v for k, v in conf.items() if k in ("Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts",
                                                           "WorkingDir", "User", "StopSignal", "Volumes")}
        img = self._container(ref).commit(repo, tag, message=q.get("comment", ""), author=q.get("author", ""),
                                          changes=changes, conf=run_conf or None, pause=_bool(q.get("pause"), True))
        req.send_json({"Id": img.id}, 201)

    # -- exec ----------------------------------------------------------------------------
    def exec_create(self, req: Request, ref: str) -> None:
        doc = req.json()
        if not isinstance(doc, dict):
            raise HTTPError(400, "the exec config must be a JSON object")
        ctr = self._container(ref)
        if ctr.status != "running":
            raise HTTPError(409, f"Container {ctr.id} is not running")
        cmd = _expect(doc, "Cmd", list)
        if not cmd or not all(isinstance(c, str) for c in cmd):
            raise HTTPError(400, "No exec command specified")
        ex = Exec(ctr.id, doc)
        self.execs[ex.id] = ex
        if len(self.execs) > 1000:  # inspected long ago: forget the oldest finished ones
            for eid in [e for e, x in self.execs.items() if x.exit_code is not None][:500]:
                del self.execs[eid]
        req.send_json({"Id": ex.id}, 201)

    def _exec(self, eid: str) -> Exec:
        ex = self.execs.get(eid)
        if ex is None:
            raise HTTPError(404, f"No such exec instance: {eid}")
        return ex

    def exec_start(self, req: Request, eid: str) -> None:
        ex = self._exec(eid)
        doc = req.json() if req.headers.get("content-length", "0") != "0" or "chunked" in req.headers.get(
            "transfer-encoding", "") else {}
        if ex.running or ex.exit_code is not None:
            raise HTTPError(409, f"exec instance {eid} has already been started")
        cfg = ex.config
        tty = bool(doc.get("Tty", cfg.get("Tty")))
        ex.running = True
        if doc.get("Detach"):
            threading.Thread(target=self._run_exec, args=(ex, None, tty), daemon=True, name="pods-exec").start()
            req.send(200, b"", "text/plain")
            return
        sock = req.hijack("application/vnd.docker.raw-stream" if tty else "application/vnd.docker.multiplexed-stream")
        self._run_exec(ex, sock, tty)

    def _run_exec(self, ex: Exec, sock: socket.socket | None, tty: bool) -> None:
        cfg = ex.config
        rt = self.client.runtime
        env = [e for e in cfg.get("Env") or [] if isinstance(e, str)]
        attach_in = bool(cfg.get("AttachStdin")) and sock is not None
        fds: list[int] = []
        try:
            if tty:
                master, slave = _container_pty(rt.state(ex.cid)["pid"], cfg.get("ConsoleSize"))
                ex.master = master
                stdio = (slave, slave, slave)
                fds = [slave]
                readers = {master: STDOUT}
                stdin_w = master if attach_in else None
            else:
                in_r, in_w = os.pipe() if attach_in else (os.open("/dev/null", os.O_RDONLY), -1)
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                stdio = (in_r, out_w, err_w)
                fds = [in_r, out_w, err_w]
                readers = {out_r: STDOUT, err_r: STDERR}
                stdin_w = in_w if attach_in else None
            result: dict[str, Any] = {}

            def run() -> None:
                try:
                    res = rt.exec(ex.cid, [str(c) for c in cfg["Cmd"]], env=env, user=cfg.get("User") or None,
                                  workdir=cfg.get("WorkingDir") or None, stdio=stdio, tty=tty)
                    result["code"] = res.exit_code
                except ContainerStartError as exc:
                    result["code"], result["error"] = exc.exit_code, str(exc)
                except PodsError as exc:
                    result["code"], result["error"] = 126, str(exc)
                finally:
                    for fd in fds:
                        with contextlib.suppress(OSError):
                            os.close(fd)
                    fds.clear()

            runner = threading.Thread(target=run, name="pods-exec-run", daemon=True)
            runner.start()
            if stdin_w is not None and sock is not None:
                threading.Thread(target=_pump_in, args=(sock, stdin_w, stdin_w == ex.master), daemon=True,
                                 name="pods-exec-in").start()
            _copy_out(readers, sock, tty)
            runner.join()
            if "error" in result and sock is not None:
                with contextlib.suppress(OSError):
                    sock.sendall((result["error"] + "\r\n").encode() if tty else _frame(STDERR, (result["error"] + "\n").encode()))
            ex.exit_code = int(result.get("code", 126))
        finally:
            ex.running = False
            if ex.exit_code is None:
                ex.exit_code = 126
            if ex.master is not None:
                with contextlib.suppress(OSError):
                    os.close(ex.master)
                ex.master = None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def exec_resize(self, req: Request, eid: str) -> None:
        ex = self._exec(eid)
        h, w = _int(req.query.get("h"), 0, "h"), _int(req.query.get("w"), 0, "w")
        if ex.master is not None:
            import fcntl
            import termios

            with contextlib.suppress(OSError):
                fcntl.ioctl(ex.master, termios.TIOCSWINSZ, struct.pack("HHHH", h or 24, w or 80, 0, 0))
        req.send(201, b"", "text/plain")

    def exec_inspect(self, req: Request, eid: str) -> None:
        ex = self._exec(eid)
        cfg = ex.config
        cmd = cfg.get("Cmd") or [""]
        req.send_json({"ID": ex.id, "Running": ex.running, "ExitCode": ex.exit_code, "ContainerID": ex.cid,
                       "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStdout": bool(cfg.get("AttachStdout")),
                       "OpenStderr": bool(cfg.get("AttachStderr")), "Pid": ex.pid, "CanRemove": False,
                       "DetachKeys": "", "ProcessConfig": {"entrypoint": cmd[0], "arguments": cmd[1:],
                                                           "tty": bool(cfg.get("Tty")), "privileged": False,
                                                           "user": cfg.get("User", "")}})

    # -- images --------------------------------------------------------------------------
    def image_list(self, req: Request) -> None:
        filters = _filters(req)
        out = []
        for img in self.client.images.list():
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not _labels_match(labels, filters.get("label", [])):
                continue
            tags = img.familiar_tags
            if filters.get("reference"):
                # dockerd lists only the names that match: `docker images test/x` shows no busybox row
                tags = [t for t in tags if any(_ref_match(t, r) for r in filters["reference"])]
                if not tags:
                    continue
            if filters.get("dangling") and (filters["dangling"][0] in ("true", "1")) != (not img.tags):
                continue
            out.append({"Id": img.id, "ParentId": "", "RepoTags": tags or None, "RepoDigests": [],
                        "Created": int(_parse_time(img.config.get("created", "")) or 0), "Size": img.size,
                        "SharedSize": -1, "VirtualSize": img.size, "Labels": labels or None, "Containers": -1})
        req.send_json(out)

    def image_inspect(self, req: Request, name: str) -> None:
        try:
            img = self.client.images.get(name)
        except ImageNotFoundError:
            if RYUK_IMAGE.search(name):  # the built-in stand-in needs no image: say it is there
                req.send_json({"Id": "sha256:" + "0" * 64, "RepoTags": [name], "RepoDigests": [], "Parent": "",
                               "Created": "0001-01-01T00:00:00Z", "Os": "linux", "Architecture": "amd64",
                               "Size": 0, "Config": {"ExposedPorts": {"8080/tcp": {}}, "Labels": {}},
                               "RootFS": {"Type": "layers", "Layers": []},
                               "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}})
                return
            raise HTTPError(404, f"No such image: {name}") from None
        doc = image_inspect(img, self.client.store)
        doc.pop("_Names", None)
        req.send_json(doc)

    def image_history(self, req: Request, name: str) -> None:
        img = self.client.images.get(name)
        hist = img.config.get("history") or []
        rows: list[dict[str, Any]] = []
        layer = len(img.layers) - 1
        for h in reversed(hist):
            size = 0
            if not h.get("empty_layer") and layer >= 0:
                size = int(img.layers[layer].get("size", 0))
                layer -= 1
            rows.append({"Id": img.id if not rows else "<missing>", "Created": int(_parse_time(h.get("created", "")) or 0),
                         "CreatedBy": h.get("created_by", ""), "Tags": img.familiar_tags if not rows else None,
                         "Size": size, "Comment": h.get("comment", "")})
        req.send_json(rows)

    def image_tag(self, req: Request, name: str) -> None:
        repo = req.query.get("repo")
        if not repo:
            raise HTTPError(400, "repository name must have at least one component")
        tag = req.query.get("tag") or "latest"
        self.client.images.tag(name, f"{repo}:{tag}" if "@" not in repo else repo)
        req.send(201, b"", "text/plain")

    def image_remove(self, req: Request, name: str) -> None:
        lines = self.client.images.remove(name, force=_bool(req.query.get("force")))
        out = []
        for line in lines:
            kind, _, what = line.partition(": ")
            out.append({kind: what})
        req.send_json(out)

    def image_prune(self, req: Request) -> None:
        req.send_json({"ImagesDeleted": [], "SpaceReclaimed": 0})

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
        job = _Job()
        result = job.result
        before = None
        with contextlib.suppress(PodsError):
            before = self.client.images.get(ref).manifest_digest
        from pytest_pods.engine.image.reference import parse_reference

        parsed = parse_reference(ref)

        def say(event: Any) -> None:
            doc = dict(event) if isinstance(event, dict) else {"status": str(event)}
            status = str(doc.get("status", ""))
            if status.startswith("Status: "):
                # docker says "newer" when the tag moved, whatever blobs were present; the engine
                # counts blobs (after `docker rmi` of a tag whose layers another image keeps)
                return
            if status.startswith("Digest: "):
                result["digest"] = status[len("Digest: "):]
            job.emit(doc)

        say({"status": f"Pulling from {parsed.path}", "id": parsed.tag or parsed.digest or "latest"})

        job.start("pods-pull", lambda: self.client.images.pull(ref, insecure=_insecure(ref), progress=say))

        def finish(img: Any) -> list[dict[str, Any]]:
            done = [] if "digest" in result else [{"status": f"Digest: {img.manifest_digest}"}]
            fresh = before != img.manifest_digest
            return done + [{"status": f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
                                      f"for {parsed.familiar}"}]

        req.stream(job.stream(finish))

    def _import(self, req: Request) -> None:
        repo, tag = req.query.get("repo") or None, req.query.get("tag") or None
        ref = f"{repo}:{tag}" if repo and tag else repo
        with tempfile.NamedTemporaryFile(dir=self.client.store.tmp, suffix=".tar") as f:
            if req.query.get("fromSrc") == "-":
                while chunk := req.read():
                    f.write(chunk)
                f.flush()
            else:
                raise HTTPError(400, "import from a URL is not supported; send the tarball in the body")
            img = self.client.images.import_rootfs(f.name, ref)
        req.send_json({"status": img.id})

    def image_push(self, req: Request, name: str) -> None:
        tag = req.query.get("tag")
        ref = f"{name}:{tag}" if tag and ":" not in name.rsplit("/", 1)[-1] else name
        _use_registry_auth(req)
        job = _Job()
        from pytest_pods.engine.image.reference import parse_reference

        parsed = parse_reference(ref)

        def say(event: Any) -> None:
            doc = dict(event) if isinstance(event, dict) else {"status": str(event)}
            job.emit(doc)

        say({"status": f"The push refers to repository [{parsed.domain}/{parsed.path}]"})

        job.start("pods-push", lambda: self.client.images.push(ref, insecure=_insecure(ref), progress=say))

        def finish(digest: str) -> list[dict[str, Any]]:
            size = 0
            with contextlib.suppress(OSError, PodsError):
                size = self.client.store.blob_path(digest).stat().st_size
            return [{"progressDetail": {}, "aux": {"Tag": parsed.tag or "latest", "Digest": digest, "Size": size}}]

        req.stream(job.stream(finish))

    def image_save(self, req: Request, name: str | None = None) -> None:
        names = [name] if name else [v for k, v in _multi(req, "names")]
        if not names:
            raise HTTPError(400, "no image names given")
        with tempfile.TemporaryDirectory(dir=self.client.store.tmp) as tmp:
            out = Path(tmp) / "out.tar"
            self.client.images.save(names, out)
            f = open(out, "rb")
            try:
                req.stream(iter(lambda: f.read(65536), b""), "application/x-tar")
            finally:
                f.close()

    def image_load(self, req: Request) -> None:
        with tempfile.NamedTemporaryFile(dir=self.client.store.tmp, suffix=".tar") as f:
            while chunk := req.read():
                f.write(chunk)
            f.flush()
            loaded = self.client.images.load(f.name)
        lines = [json.dumps({"stream": f"{line}\n"}).encode() + b"\r\n" for line in loaded]
        req.stream(iter(lines))

    def build(self, req: Request) -> None:
        q = req.query
        tags = [v for k, v in _multi(req, "t")]
        try:
            buildargs = json.loads(q.get("buildargs") or "{}")
            labels = json.loads(q.get("labels") or "{}")
        except ValueError:
            raise HTTPError(400, "invalid buildargs or labels: bad JSON") from None
        if not isinstance(buildargs, dict) or not isinstance(labels, dict):
            raise HTTPError(400, "buildargs and labels must be JSON objects")
        quiet = _bool(q.get("q"))
        ctx = Path(tempfile.mkdtemp(dir=self.client.store.tmp, prefix="build-context-"))
        try:
            with tempfile.TemporaryFile() as raw:
                while chunk := req.read():
                    raw.write(chunk)
                raw.seek(0)
                from pytest_pods.engine.image.layers import extract_into

                fd = os.open(ctx, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    extract_into(raw, fd)
                except (PodsError, tarfile.TarError, EOFError) as exc:
                    raise HTTPError(400, f"invalid build context: {exc or 'not a tar archive'}") from None
                finally:
                    os.close(fd)
            job = _Job()
            result = job.result

            def say(line: str) -> None:
                if quiet:
                    return
                if line.startswith("Successfully built"):
                    job.emit({"aux": {"ID": "pending"}})
                job.emit({"stream": line + "\n"})

            job.start("pods-build", lambda: self.client.images.build(
                ctx, tag=tags, dockerfile=q.get("dockerfile") or None,
                buildargs={str(k): str(v) for k, v in buildargs.items() if v is not None},
                target=q.get("target") or None, nocache=_bool(q.get("nocache")),
                labels={str(k): str(v) for k, v in labels.items()},
                network=_build_network(q.get("networkmode")), progress=say))

            def finish(img: Any) -> list[dict[str, Any]]:
                return [{"aux": {"ID": img.id}}] + ([{"stream": img.id + "\n"}] if quiet else [])

            def fix_aux(chunks: Iterator[bytes]) -> Iterator[bytes]:
                for c in chunks:
                    if b'"pending"' in c and "img" not in result:
                        continue  # the real ID comes at the end, once known
                    if b'"pending"' in c:
                        c = json.dumps({"aux": {"ID": result["img"].id}}).encode() + b"\r\n"
                    yield c

            req.stream(fix_aux(job.stream(finish)))
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    # -- networks ------------------------------------------------------------------------
    def network_list(self, req: Request) -> None:
        filters = _filters(req)
        out = []
        for n in self.client.networks.list():
            if filters.get("name") and not any(f in n["Name"] for f in filters["name"]):
                continue
            if filters.get("id") and not any(n["Id"].startswith(f) for f in filters["id"]):
                continue
            if not _labels_match(n.get("Labels") or {}, filters.get("label", [])):
                continue
            out.append(n)
        for name in ("host", "none"):
            if not filters or (filters.get("name") and name in filters["name"]):
                out.append({"Name": name, "Id": name, "Driver": "host" if name == "host" else "null",
                            "Scope": "local", "Internal": False, "IPAM": {"Driver": "default", "Config": []},
                            "Containers": {}, "Options": {}, "Labels": {}})
        req.send_json(out)

    def network_inspect(self, req: Request, ref: str) -> None:
        try:
            req.send_json(self.client.networks.get(ref))
        except NotFoundError:
            raise HTTPError(404, f"network {ref} not found") from None

    def network_create(self, req: Request) -> None:
        doc = req.json()
        if not isinstance(doc, dict):
            raise HTTPError(400, "the network config must be a JSON object")
        name = _expect(doc, "Name", str, "")
        if not name:
            raise HTTPError(400, "network name is required")
        driver = _expect(doc, "Driver", str, "bridge") or "bridge"
        if driver != "bridge":
            raise HTTPError(400, f"network driver {driver!r} is not supported (bridge only)")
        with contextlib.suppress(NotFoundError):
            self.client.networks.get(name)
            raise HTTPError(409, f"network with name {name} already exists")
        ipam = _expect(doc, "IPAM", dict, {}) or {}
        configs = _expect(ipam, "Config", list, []) or []
        if not all(isinstance(c, dict) for c in configs):
            raise HTTPError(400, "json: cannot unmarshal IPAM.Config: want a list of objects")
        subnet = _expect(configs[0], "Subnet", str, None) if configs else None
        rec = self.client.networks.create(name, subnet=subnet, internal=bool(doc.get("Internal")),
                                          labels={str(k): str(v) for k, v in (_expect(doc, "Labels", dict, {}) or {}).items()})
        req.send_json({"Id": rec["id"], "Warning": ""}, 201)

    def network_connect(self, req: Request, ref: str) -> None:
        doc = req.json_object()
        ctr = _expect(doc, "Container", str, "")
        if not ctr:
            raise HTTPError(400, "no container given")
        aliases = _expect(_expect(doc, "EndpointConfig", dict, {}) or {}, "Aliases", list, []) or []
        self.client.networks.connect(ref, ctr, [str(a) for a in aliases])
        req.send(200, b"", "text/plain")

    def network_disconnect(self, req: Request, ref: str) -> None:
        doc = req.json_object()
        ctr = _expect(doc, "Container", str, "")
        if not ctr:
            raise HTTPError(400, "no container given")
        self.client.networks.disconnect(ref, ctr)
        req.send(200, b"", "text/plain")

    def network_remove(self, req: Request, ref: str) -> None:
        if ref in ("host", "none", "bridge"):
            raise HTTPError(403, f"{ref} is a pre-defined network and cannot be removed")
        self.client.networks.remove(ref)
        req.send(204)

    def network_prune(self, req: Request) -> None:
        req.send_json({"NetworksDeleted": []})

    # -- volumes -------------------------------------------------------------------------
    def volume_list(self, req: Request) -> None:
        filters = _filters(req)
        vols = [v for v in self.client.volumes.list()
                if _labels_match(v.get("Labels") or {}, filters.get("label", []))
                and (not filters.get("name") or any(n in v["Name"] for n in filters["name"]))]
        req.send_json({"Volumes": vols, "Warnings": []})

    def volume_create(self, req: Request) -> None:
        doc = req.json()
        name = _expect(doc, "Name", str, "") or None
        labels = {str(k): str(v) for k, v in (_expect(doc, "Labels", dict, {}) or {}).items()}
        req.send_json(self.client.volumes.create(name, labels), 201)

    def volume_inspect(self, req: Request, name: str) -> None:
        req.send_json(self.client.volumes.get(name))

    def volume_remove(self, req: Request, name: str) -> None:
        self.client.volumes.remove(name, force=_bool(req.query.get("force")))
        req.send(204)

    def volume_prune(self, req: Request) -> None:
        req.send_json({"VolumesDeleted": [], "SpaceReclaimed": 0})


# -- helpers ---------------------------------------------------------------------------------
def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        raise HTTPError(400, f"invalid time value {value!r}") from None


def _parse_time(ts: str) -> float:
    import calendar

    if not ts:
        return 0.0
    try:
        base, _, frac = ts.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
    except ValueError:
        return 0.0


def _mem_total() -> int:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0


def _multi(req: Request, key: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in req.query_pairs if k == key and v]


def _insecure(ref: str) -> bool:
    host = ref.split("/", 1)[0] if "/" in ref else ""
    return host.startswith(("127.", "localhost", "[::1]"))


def _build_network(mode: str | None) -> str:
    if mode in (None, "", "default", "bridge"):
        return "bridge"
    if mode in ("host", "none"):
        return mode
    raise HTTPError(400, f"build network mode {mode!r} is not supported")


def _use_registry_auth(req: Request) -> None:
    """``X-Registry-Auth`` (base64 JSON) is honoured through the credentials store the daemon
    uses; a client's inline credentials are not written anywhere."""
    raw = req.headers.get("x-registry-auth")
    if not raw:
        return
    with contextlib.suppress(ValueError):
        json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) or b"{}")


class _Job:
    """Engine work (a pull, push or build) in a thread, whose progress documents a chunked
    response streams as they come; the last lines say how it ended."""

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._cond = threading.Condition()
        self.result: dict[str, Any] = {}

    def emit(self, doc: dict[str, Any]) -> None:
        with self._cond:
            self._lines.append(json.dumps(doc).encode() + b"\r\n")
            self._cond.notify()

    def start(self, name: str, work: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                self.result["img"] = work()
            except Exception as exc:  # reported in the stream, as docker does
                self.result["error"] = str(exc)
            finally:
                with self._cond:
                    self.result["done"] = True
                    self._cond.notify()

        threading.Thread(target=run, name=name, daemon=True).start()

    def stream(self, finish: Callable[[Any], list[dict[str, Any]]]) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._lines and not self.result.get("done"):
                    self._cond.wait(timeout=1.0)
                batch, self._lines[:] = list(self._lines), []
                done = self.result.get("done")
            yield from batch
            if done and not self._lines:
                break
        if "error" in self.result:
            msg = self.result["error"]
            yield json.dumps({"errorDetail": {"message": msg}, "error": msg}).encode() + b"\r\n"
            return
        for doc in finish(self.result.get("img")):
            yield json.dumps(doc).encode() + b"\r\n"


def _peer_closed(conn: socket.socket) -> bool:
    """Whether the client went away (readable with nothing to read)."""
    try:
        r, _, _ = select.select([conn], [], [], 0)
        if not r:
            return False
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (OSError, ValueError):
        return True


def _pump_out(out_r: int, err_r: int, waiting: list[tuple[Any, dict[str, bool]]], tty: bool) -> None:
    readers = {out_r: STDOUT, err_r: STDERR}
    socks = list(waiting)
    try:
        while readers:
            ready, _, _ = select.select(list(readers), [], [])
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    os.close(fd)
                    del readers[fd]
                    continue
                kind = readers[fd]
                for sock, opts in list(socks):
                    if not opts["stdout" if kind == STDOUT else "stderr"]:
                        continue
                    try:
                        sock.sendall(data if tty else _frame(kind, data))
                    except OSError:
                        socks.remove((sock, opts))
    finally:
        for fd in readers:
            os.close(fd)
        for sock, _ in waiting:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump_in(sock: socket.socket, fd: int, is_pty: bool = False) -> None:
    """Client to process: the hijacked socket's bytes into stdin until the client half-closes."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            os.write(fd, data)
    except OSError:
        pass
    finally:
        if not is_pty:
            with contextlib.suppress(OSError):
                os.close(fd)
        else:
            with contextlib.suppress(OSError):
                os.write(fd, b"\x04")  # EOF for a terminal's reader


# asm-generic/ioctls.h (Python's termios lacks them): unlock a pty, and open its slave through
# the master (no path lookup: the slave is in the container's devpts, not ours)
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def _container_pty(pid: int, size: Any = None) -> tuple[int, int]:
    """A pty pair on the container's own devpts (``/dev/pts`` is a new instance there), so that
    ``tty`` in the container names it (``/dev/pts/0``), as under docker; the host's devpts when the
    container's cannot be reached."""
    import fcntl
    import pty
    import termios

    try:
        master = os.open(f"/proc/{pid}/root/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        master, slave = pty.openpty()
    else:
        try:
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            os.close(master)
            master, slave = pty.openpty()
    if isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and n > 0 for n in size):
        with contextlib.suppress(OSError):  # ConsoleSize: [height, width], the CLI's terminal
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    return master, slave


def _copy_out(readers: dict[int, int], sock: socket.socket | None, tty: bool) -> None:
    readers = dict(readers)
    try:
        while readers:
            ready, _, _ = select.select(list(readers), [], [])
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the pty's last slave closed
                    data = b""
                if not data:
                    os.close(fd) if not tty else None
                    del readers[fd]
                    continue
                if sock is not None:
                    try:
                        sock.sendall(data if tty else _frame(readers[fd], data))
                    except OSError:
                        sock = None
    finally:
        if not tty:
            for fd in readers:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _attrs(st: dict[str, Any]) -> dict[str, str]:
    """An event's actor attributes: the container's name, image and labels, as dockerd sends."""
    return {**{str(k): str(v) for k, v in (st.get("labels") or {}).items()},
            "name": st["name"], "image": st.get("image_name", "")}


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for f in wanted:
        k, sep, v = f.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _ref_match(tag: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag, pattern + ":*")


def _event_matches(ev: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    if filters.get("type") and ev["Type"] not in filters["type"]:
        return False
    if filters.get("event") and ev["Action"] not in filters["event"]:
        return False
    if filters.get("container") and not any(ev["id"].startswith(c) or ev["Actor"]["Attributes"].get("name") == c
                                            for c in filters["container"]):
        return False
    return True


def _container_matches(st: dict[str, Any], row: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    if not filters:
        return True
    if not _labels_match(row.get("Labels") or {}, filters.get("label", [])):
        return False
    if filters.get("name") and not any(re.search(n.lstrip("/"), row["Names"][0].lstrip("/")) for n in filters["name"]):
        return False
    if filters.get("id") and not any(row["Id"].startswith(i) for i in filters["id"]):
        return False
    if filters.get("status") and row["State"] not in filters["status"]:
        return False
    if filters.get("ancestor") and not any(a in (row["Image"], row["ImageID"]) or row["ImageID"].startswith("sha256:" + a)
                                           for a in filters["ancestor"]):
        return False
    if filters.get("network") and not any(n in (row.get("NetworkSettings", {}).get("Networks") or {})
                                          for n in filters["network"]):
        return False
    return True


def _status_text(st: dict[str, Any]) -> str:
    status = st["status"]
    if status == "running":
        return f"Up {_ago(st.get('started_at', ''))}"
    if status == "exited":
        return f"Exited ({st.get('exit_code', 0)}) {_ago(st.get('finished_at', ''))} ago"
    return "Created"


def _ago(ts: str) -> str:
    t = _parse_time(ts)
    if not t:
        return "Less than a second"
    d = max(0, time.time() - t)
    if d < 1:
        return "Less than a second"
    if d < 60:
        return f"{int(d)} seconds"
    if d < 3600:
        return f"{int(d // 60)} minutes"
    return f"{int(d // 3600)} hours"


def _list_row(client: Client, st: dict[str, Any]) -> dict[str, Any]:
    ports = []
    if st["status"] == "running":
        for p in st.get("ports") or []:
            ports.append({"IP": p["host_ip"], "PrivatePort": p["container_port"], "PublicPort": int(p["host_port"]),
                          "Type": p["proto"]})
    from pytest_pods.client.local import _network_settings

    created = int(_parse_time(st.get("created", "")))
    cmd = ""
    with contextlib.suppress(OSError, ValueError, KeyError):
        args = json.loads((client.runtime.dir / st["id"] / "config.json").read_text())["process"]["args"]
        cmd = " ".join(args)
    status = st["status"] if st["status"] != "starting" else "created"
    return {"Id": st["id"], "Names": ["/" + st["name"]], "Image": st.get("image_name", ""), "ImageID": st["image"],
            "Command": cmd, "Created": created, "Ports": ports, "Labels": st.get("labels") or {},
            "State": status, "Status": _status_text(st), "HostConfig": {"NetworkMode": st.get("network", "none")},
            "NetworkSettings": {"Networks": _network_settings(st)["Networks"]}, "Mounts": [],
            "SizeRw": 0, "SizeRootFs": 0}


def _inspect_doc(client: Client, cid: str) -> dict[str, Any]:
    doc = container_inspect(client, cid)
    st = client.runtime.state(cid)
    ports = st.get("port_specs") or []
    doc["Config"]["ExposedPorts"] = {f"{p['container_port']}/{p['proto']}": {} for p in ports} or None
    doc["HostConfig"]["PortBindings"] = {
        f"{p['container_port']}/{p['proto']}": [{"HostIp": "" if p.get("host_ip") in (None, "0.0.0.0") else p["host_ip"],
                                                 "HostPort": str(p.get("host_port") or "")}] for p in ports} or {}
    doc["HostConfig"].setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    doc["HostConfig"].setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    doc["Config"].setdefault("AttachStdout", False)
    doc["Config"].setdefault("AttachStderr", False)
    return doc


def _create_kwargs(doc: dict[str, Any]) -> dict[str, Any]:
    """The Client's ``containers.create`` arguments for a Docker create body."""
    hc = _expect(doc, "HostConfig", dict, {}) or {}
    cmd = doc.get("Cmd")
    if isinstance(cmd, str):
        cmd = ["/bin/sh", "-c", cmd]
    if cmd is not None and (not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd)):
        raise HTTPError(400, "json: cannot unmarshal Cmd: want a list of strings")
    entry = doc.get("Entrypoint")
    if isinstance(entry, str):
        entry = [entry]
    if entry is not None and (not isinstance(entry, list) or not all(isinstance(c, str) for c in entry)):
        raise HTTPError(400, "json: cannot unmarshal Entrypoint: want a list of strings")
    env = _expect(doc, "Env", list, []) or []
    if not all(isinstance(e, str) for e in env):
        raise HTTPError(400, "json: cannot unmarshal Env: want a list of strings")
    labels = _expect(doc, "Labels", dict, {}) or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise HTTPError(400, "json: cannot unmarshal Labels: want string values")
    for key in ("User", "WorkingDir", "Hostname", "StopSignal"):
        _expect(doc, key, str)
    if doc.get("StopTimeout") is not None and (not isinstance(doc["StopTimeout"], int)
                                               or isinstance(doc["StopTimeout"], bool)):
        raise HTTPError(400, "json: cannot unmarshal StopTimeout: want an integer")
    ports: list[str] = []
    bindings = _expect(hc, "PortBindings", dict, {}) or {}
    for key, binds in bindings.items():
        num, _, proto = str(key).partition("/")
        if binds is not None and not isinstance(binds, list):
            raise HTTPError(400, f"json: cannot unmarshal PortBindings[{key}]: want a list")
        for b in binds or [{}]:
            b = b or {}
            if not isinstance(b, dict):
                raise HTTPError(400, f"json: cannot unmarshal PortBindings[{key}]: want objects")
            host_ip, host_port = str(b.get("HostIp") or ""), str(b.get("HostPort") or "0")
            ports.append(f"{host_ip + ':' if host_ip else ''}{host_port}:{num}/{proto or 'tcp'}")
    anonymous: list[str] = []  # volumes made for this container only (-v /data): they go with rm -v

    def anon(target: str) -> str:
        name = os.urandom(32).hex()
        anonymous.append(name)
        return f"{name}:{target}"

    binds = [str(b) if ":" in str(b) else anon(str(b)) for b in _expect(hc, "Binds", list, []) or []]
    tmpfs_doc = _expect(hc, "Tmpfs", dict, {}) or {}
    if not all(isinstance(v, str) for v in tmpfs_doc.values()):
        raise HTTPError(400, "json: cannot unmarshal Tmpfs: want string options")
    tmpfs = [f"{k}:{v}" if v else str(k) for k, v in tmpfs_doc.items()]
    for m in _expect(hc, "Mounts", list, []) or []:
        if not isinstance(m, dict):
            raise HTTPError(400, "invalid mount config")
        kind, src, dst = m.get("Type", "volume"), m.get("Source") or "", m.get("Target") or ""
        if kind == "tmpfs":
            tmpfs.append(str(dst))
        elif kind in ("bind", "volume") and dst:
            if kind == "volume" and not src:
                binds.append(anon(str(dst)) + (":ro" if m.get("ReadOnly") else ""))
                continue
            binds.append(f"{src}:{dst}{':ro' if m.get('ReadOnly') else ''}")
        else:
            raise HTTPError(400, f"invalid mount config for type {kind!r}")
    targets = {b.split(":")[1] for b in binds if ":" in b} | {t.split(":")[0] for t in tmpfs}
    for path in _expect(doc, "Volumes", dict, {}) or {}:
        if str(path) not in targets:
            binds.append(anon(str(path)))
    mode = _expect(hc, "NetworkMode", str, "") or "bridge"
    if mode == "default":
        mode = "bridge"
    if mode.startswith("container:"):
        raise HTTPError(400, "network mode container:NAME is not supported")
    aliases: list[str] = []
    eps = ((_expect(doc, "NetworkingConfig", dict, {}) or {}).get("EndpointsConfig")) or {}
    if isinstance(eps, dict):
        for net, ep in eps.items():
            if isinstance(ep, dict) and net == mode:
                aliases += [str(a) for a in ep.get("Aliases") or []]
    cpus = None
    if hc.get("NanoCpus"):
        cpus = int(hc["NanoCpus"]) / 1e9
    elif hc.get("CpuQuota") and hc.get("CpuPeriod"):
        cpus = int(hc["CpuQuota"]) / int(hc["CpuPeriod"])
    nnp = not any(str(o).replace(":", "=") == "no-new-privileges=false" for o in hc.get("SecurityOpt") or [])
    if hc.get("Privileged"):
        raise HTTPError(400, "privileged containers are not supported")
    stop_timeout = doc.get("StopTimeout")
    return {
        "command": cmd, "entrypoint": entry, "environment": env, "working_dir": doc.get("WorkingDir") or None,
        "user": doc.get("User") or None, "hostname": doc.get("Hostname") or None,
        "volumes": binds, "tmpfs": tmpfs, "memory": hc.get("Memory") or None,
        "memory_swap": hc.get("MemorySwap") or None, "pids_limit": hc.get("PidsLimit") or None, "cpus": cpus,
        "network": mode, "network_aliases": aliases, "ports": ports,
        "publish_all_ports": bool(hc.get("PublishAllPorts")), "read_only": bool(hc.get("ReadonlyRootfs")),
        "init": bool(hc.get("Init")), "labels": {str(k): str(v) for k, v in labels.items()},
        "stop_signal": doc.get("StopSignal") or None,
        "stop_timeout": int(stop_timeout) if isinstance(stop_timeout, int) else None,
        "auto_remove": bool(hc.get("AutoRemove")), "no_new_privileges": nnp,
        "cap_add": [str(c) for c in hc.get("CapAdd") or []], "cap_drop": [str(c) for c in hc.get("CapDrop") or []],
        "stdin_open": bool(doc.get("OpenStdin")), "anonymous_volumes": anonymous,
    }
