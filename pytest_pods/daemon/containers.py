"""Container routes: create, list, inspect, start, wait, logs, attach, stop, kill, restart,
remove, prune, top, stats, resize, archive (``docker cp``) and commit.

Testcontainers' Ryuk is answered by the built-in stand-in (:mod:`.ryuk`) wherever a route names it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import stat
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_pods.client.contract import parse_signal
from pytest_pods.client.docker_docs import (
    api_container_inspect,
    body_field,
    container_row,
    create_arguments,
    endpoints_for_version,
    parse_time,
    split_endpoints,
)
from pytest_pods.client.local import Client, Container
from pytest_pods.daemon.filters import container_matches, labels_match, parse_filters
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import (
    Route,
    api_version,
    json_object,
    query_all,
    query_bool,
    query_float,
    query_int,
    query_optional_int,
    route,
)
from pytest_pods.daemon.ryuk import RYUK_IMAGE, Ryuk
from pytest_pods.daemon.streams import (
    MULTIPLEXED,
    RAW,
    STDERR,
    STDOUT,
    AttachSession,
    close_socket,
    frame,
    parse_detach_keys,
    peer_closed,
    pump_in,
    pump_out,
)
from pytest_pods.errors import ContainerNotFoundError, HTTPError, ImageNotFoundError, PodsError


class ContainersRouter:
    """``/containers/...`` and ``/commit``, over the Client (the engine records their events)."""

    def __init__(self, client: Client, ryuk: Ryuk) -> None:
        self.client = client
        self.ryuk = ryuk
        self.ttys: dict[str, bool] = {}  # Tty of each container seen (its bundle says): raw streams, not framed
        self.attach_waiting: dict[str, list[AttachSession]] = {}
        self.attach_lock = threading.Lock()
        self.started = threading.Condition()

    def routes(self) -> list[Route]:
        return [
            route("POST", r"/containers/create", self.container_create),
            route("GET", r"/containers/json", self.container_list),
            route("POST", r"/containers/prune", self.container_prune),
            route("GET", r"/containers/(?P<ref>[^/]+)/json", self.container_inspect),
            route("POST", r"/containers/(?P<ref>[^/]+)/start", self.container_start),
            route("POST", r"/containers/(?P<ref>[^/]+)/wait", self.container_wait),
            route("GET", r"/containers/(?P<ref>[^/]+)/logs", self.container_logs),
            route("POST", r"/containers/(?P<ref>[^/]+)/attach", self.container_attach),
            route("POST", r"/containers/(?P<ref>[^/]+)/stop", self.container_stop),
            route("POST", r"/containers/(?P<ref>[^/]+)/kill", self.container_kill),
            route("POST", r"/containers/(?P<ref>[^/]+)/restart", self.container_restart),
            route("DELETE", r"/containers/(?P<ref>[^/]+)", self.container_remove),
            route("DELETE", r"/containers/(?P<ref>/?[^/]+/[^/]+)", self.container_remove),  # ?link=1 of /WEB/ALIAS
            route("GET", r"/containers/(?P<ref>[^/]+)/top", self.container_top),
            route("GET", r"/containers/(?P<ref>[^/]+)/stats", self.container_stats),
            route("GET", r"/containers/(?P<ref>[^/]+)/export", self.container_export),
            route("GET|HEAD|PUT", r"/containers/(?P<ref>[^/]+)/archive", self.container_archive),
            route("POST", r"/containers/(?P<ref>[^/]+)/resize", self.container_resize),
            route("POST", r"/containers/(?P<ref>[^/]+)/update", self.container_update),
            route("GET", r"/containers/(?P<ref>[^/]+)/changes", self.container_changes),
            route("POST", r"/containers/(?P<ref>[^/]+)/pause", self.container_pause),
            route("POST", r"/containers/(?P<ref>[^/]+)/unpause", self.container_unpause),
            route("POST", r"/containers/(?P<ref>[^/]+)/rename", self.container_rename),
            route("POST", r"/commit", self.commit),
        ]

    def _container(self, ref: str) -> Container:
        return self.client.containers.get(ref)

    def container_create(self, req: Request) -> None:
        doc = json_object(req, "container")
        name = req.query.get("name") or None
        image = body_field(doc, "Image", str, "")
        if not image:
            raise HTTPError(400, "No image specified")
        if RYUK_IMAGE.search(image):
            cid = self.ryuk.create(name, doc)
            req.send_json({"Id": cid, "Warnings": []}, 201)
            return
        doc, more_networks = split_endpoints(doc, api_version(req))  # API 1.44+: joined after the create
        args = create_arguments(doc)
        mac = endpoint_mac(doc, args.options["network"])
        if mac:  # the joined network's endpoint gets it (Config.MacAddress before API 1.44)
            args.options["network_endpoint"] = {**(args.options["network_endpoint"] or {}), "MacAddress": mac}
        tty = bool(doc.get("Tty"))
        try:
            for vol in args.anonymous_volumes:
                self.client.volumes.create(vol, anonymous=True)
            try:
                self.client.images.get(image)
            except ImageNotFoundError:
                raise HTTPError(404, f"No such image: {image}") from None
            ctr = self.client.containers.create(image, args.command, name=name, **args.options)
            try:
                for net, ep in more_networks:
                    endpoint = {k: ep[k] for k in ("IPAMConfig", "Links", "DriverOpts", "MacAddress") if ep.get(k)}
                    self.client.networks.connect(net, ctr.id, [str(a) for a in ep.get("Aliases") or []],
                                                 endpoint or None)
            except BaseException:  # a network that is not there: no container either
                with contextlib.suppress(PodsError, OSError):
                    self.client.containers.remove(ctr.id, force=True)
                raise
        except BaseException:  # a refused create leaves no anonymous volume behind (made for it alone)
            for vol in args.anonymous_volumes:
                with contextlib.suppress(PodsError, OSError):
                    self.client.volumes.remove(vol, force=True)
            raise
        if tty:
            try:
                self.client.containers.use_terminal(ctr.id)
            except (OSError, ValueError, KeyError) as exc:
                with contextlib.suppress(PodsError, OSError):
                    self.client.containers.remove(ctr.id, force=True)
                raise PodsError(f"create container {ctr.id[:12]}: give it a tty: {exc}") from exc
        self.ttys[ctr.id] = tty
        req.send_json({"Id": ctr.id, "Warnings": []}, 201)

    def has_tty(self, cid: str) -> bool:
        """Whether the container runs on a pty (Tty): its streams go raw, not in frames."""
        tty = self.ttys.get(cid)
        if tty is None:
            try:
                tty = self.client.containers.has_terminal(cid)
            except (PodsError, OSError):
                return False
            self.ttys[cid] = tty
        return tty

    def container_list(self, req: Request) -> None:
        all_ = query_bool(req.query.get("all"))
        limit = query_int(req.query.get("limit"), -1, "limit")
        filters = parse_filters(req)
        rows = []
        for st in self.client.containers.states(all=all_ or bool(filters.get("status"))):
            row = container_row(self.client, st)
            if container_matches(row, filters):
                rows.append(row)
        rows += [r for r in self.ryuk.list_rows() if container_matches(r, filters) or not filters]
        req.send_json(rows[:limit] if limit and limit > 0 else rows)

    def container_inspect(self, req: Request, ref: str) -> None:
        virtual = self.ryuk.inspect(ref)
        if virtual is not None:
            req.send_json(virtual)
            return
        ctr = self._container(ref)
        doc = api_container_inspect(self.client, ctr.id)
        doc["Config"]["Tty"] = self.has_tty(doc["Id"])
        networks = doc["NetworkSettings"]["Networks"]
        hostname = doc["Config"].get("Hostname") or ""
        st = ctr.state
        configured_endpoints(networks, st)
        shares = (st.get("limits") or {}).get("cpu_shares")
        if shares:  # what the engine applies, an update's too (not the create body's value kept for show)
            doc["HostConfig"]["CpuShares"] = shares
        endpoints_for_version(networks, api_version(req), cid=doc["Id"], name=doc["Name"].lstrip("/"),
                              hostname=hostname)
        if api_version(req) < (1, 45):  # dockerd adds the short ID and host name to a user network's aliases
            for net, ep in networks.items():
                if ep and "NetworkID" in ep and net not in ("bridge", "host", "none", "default"):
                    ep["Aliases"] = list(dict.fromkeys([*(ep.get("Aliases") or []), doc["Id"][:12],
                                                        *([hostname] if hostname else [])]))
        if api_version(req) >= (1, 44):
            doc["Config"].pop("MacAddress", None)  # deprecated in Config from API 1.44 on (the endpoint's now)
        req.send_json(doc)

    def container_start(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status in ("running", "restarting"):  # restarting: its monitor starts it (dockerd: 304)
            req.send(304)
            return
        with self.attach_lock:
            waiting = self.attach_waiting.pop(ctr.id, [])
        if waiting:
            self._start_attached(ctr, waiting)
        else:
            ctr.start()
        with self.started:
            self.started.notify_all()
        req.send(204)

    def _start_attached(self, ctr: Container, waiting: list[AttachSession]) -> None:
        """Start with pipes for the output (and stdin) that attach sessions are waiting on."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdin_r = stdin_w = None
        if any(opts.get("stdin") for _, opts in waiting):
            stdin_r, stdin_w = os.pipe()
        try:
            handle = self.client.containers.start(ctr.id, attach=(out_w, err_w), stdin=stdin_r)
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
        tty = self.has_tty(ctr.id)
        threading.Thread(target=pump_out, args=(out_r, err_r, waiting, tty), daemon=True,
                         name="pods-attach-out").start()
        if stdin_w is not None:
            src, opts = next((sock, opts) for sock, opts in waiting if opts.get("stdin"))
            threading.Thread(target=self._pump_stdin, args=(src, stdin_w, opts if tty else None), daemon=True,
                             name="pods-attach-in").start()

    @staticmethod
    def _pump_stdin(sock: socket.socket, fd: int, opts: dict[str, Any] | None) -> None:
        """The client's stdin into the container's. With a tty (``opts``), its detach keys let the
        client go (its connection closed) while the container runs on, as docker does."""
        if opts is None:
            pump_in(sock, fd)
        elif pump_in(sock, fd, detach_keys=opts["detach_keys"]):
            close_socket(sock)

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
        containers = self.client.containers
        if condition in ("next-exit", "removed"):
            with contextlib.suppress(ContainerNotFoundError):
                first = containers.state(cid).get("started_at")
            with self.started:
                while True:
                    try:
                        st = containers.state(cid)
                    except ContainerNotFoundError:
                        break
                    status = st["status"]
                    with self.attach_lock:  # an exited one an attach waits on: docker start -a, its next run
                        waits = status == "created" or (status == "exited" and cid in self.attach_waiting)
                    # next-exit of one that is not running: its next run's exit, as dockerd waits
                    waits = waits or (condition == "next-exit" and status == "exited"
                                      and st.get("started_at") == first)
                    if not waits or peer_closed(conn):
                        break
                    self.started.wait(timeout=0.5)
        code = containers.wait(cid)  # removed already (--rm): the exit code recorded for it
        if condition == "removed":
            deadline = time.monotonic() + 30
            while not containers.gone(cid) and time.monotonic() < deadline and not peer_closed(conn):
                time.sleep(0.01)
        return code

    def container_logs(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.stream(iter([frame(STDOUT, time.strftime("%Y/%m/%d %H:%M:%S").encode() + b" Started!\n")]),
                       MULTIPLEXED)
            return
        ctr = self._container(ref)
        if (ctr.state.get("log_config") or {}).get("Type") == "none":
            raise HTTPError(501, "configured logging driver does not support reading")
        q = req.query
        want_out, want_err = query_bool(q.get("stdout")), query_bool(q.get("stderr"))
        follow, stamps = query_bool(q.get("follow")), query_bool(q.get("timestamps"))
        tail = q.get("tail", "all")
        tail_n = None if tail in ("all", "", None) else query_optional_int(tail, "tail")
        since = query_float(q.get("since"))
        until = query_float(q.get("until"))
        tty = self.has_tty(ctr.id)

        def frames() -> Iterator[bytes]:
            for stream, ts, line in self.client.containers.logs(ctr.id, follow=follow, tail=tail_n):
                if (stream == "stdout" and not want_out) or (stream == "stderr" and not want_err):
                    continue
                if since or until:
                    t = parse_time(ts)
                    if (since and t < since) or (until and t > until):
                        continue
                data = (ts.encode() + b" " + line) if stamps else line
                yield data if tty else frame(STDOUT if stream == "stdout" else STDERR, data)
                if follow and peer_closed(req.conn):
                    return

        req.stream(frames(), RAW if tty else MULTIPLEXED)

    def container_attach(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.hijack(MULTIPLEXED).close()
            return
        ctr = self._container(ref)
        q = req.query
        opts: dict[str, Any] = {"stdout": query_bool(q.get("stdout")), "stderr": query_bool(q.get("stderr")),
                "stdin": query_bool(q.get("stdin")), "stream": query_bool(q.get("stream"), True),
                "logs": query_bool(q.get("logs"))}
        tty = self.has_tty(ctr.id)
        if tty:
            try:
                opts["detach_keys"] = parse_detach_keys(q.get("detachKeys"))
            except ValueError as exc:
                raise HTTPError(400, str(exc)) from None
        # registered before the 101 goes out, under the lock the start takes: the CLI sends its
        # start as soon as it reads the 101, and a start that found no attach session would run
        # the container unattached and leave this stream open forever (docker run hung)
        # (an exited one too, with ``stream``: docker start -a attaches, then starts it again and
        # shows that run, as dockerd's attach waits for the next start; ``logs`` replays the old
        # run first, under the lock, so the new run's output follows it)
        with self.attach_lock:
            status = ctr.status
            waits = status == "created" or (status == "exited" and opts["stream"])
            if waits:
                self.attach_waiting.setdefault(ctr.id, []).append((req.conn, opts))
            sock = req.hijack(RAW if tty else MULTIPLEXED)
            if waits and status == "exited" and opts["logs"]:
                self._replay_logs(ctr, sock, opts, tty)
        req.keep()
        if waits:
            return  # the start feeds it
        # running, or exited without stream: what the log holds (and what comes, while it runs)
        threading.Thread(target=self._attach_logs, args=(ctr, sock, opts, tty), daemon=True,
                         name="pods-attach-logs").start()
        if tty and opts["stdin"] and status == "running":
            # typing into a running tty container (docker attach): into its pty, through its monitor
            fd = self.client.containers.terminal_input(ctr.id)
            if fd is not None:
                threading.Thread(target=self._pump_stdin, args=(sock, fd, opts), daemon=True,
                                 name="pods-attach-in").start()

    def _replay_logs(self, ctr: Container, sock: socket.socket, opts: dict[str, Any], tty: bool) -> None:
        with contextlib.suppress(OSError, PodsError):
            for stream, _, line in self.client.containers.logs(ctr.id, follow=False):
                if opts["stdout" if stream == "stdout" else "stderr"]:
                    sock.sendall(line if tty else frame(STDOUT if stream == "stdout" else STDERR, line))

    def _attach_logs(self, ctr: Container, sock: socket.socket, opts: dict[str, Any], tty: bool) -> None:
        try:
            follow = opts["stream"] and ctr.status == "running"
            tail = None if opts["logs"] else 0
            for stream, _, line in self.client.containers.logs(ctr.id, follow=follow, tail=tail, partial=True):
                if opts["stdout" if stream == "stdout" else "stderr"]:
                    sock.sendall(line if tty else frame(STDOUT if stream == "stdout" else STDERR, line))
        except (OSError, PodsError):
            pass
        finally:
            close_socket(sock)

    def container_stop(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status not in ("running", "restarting"):  # restarting: it stays exited, as dockerd's stop
            req.send(304)
            return
        t = query_optional_int(req.query.get("t"), "t")
        sig = req.query.get("signal")
        if sig:
            self.client.containers.stop(ctr.id, t, stop_signal=parse_signal(sig))
        else:
            ctr.stop(t)
        req.send(204)

    def container_kill(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            self.ryuk.remove(ref)
            req.send(204)
            return
        ctr = self._container(ref)
        if ctr.status not in ("running", "restarting"):  # restarting: no next run, as dockerd's kill
            raise HTTPError(409, f"Cannot kill container: {ref}: Container {ctr.id} is not running")
        ctr.kill(req.query.get("signal") or "SIGKILL")
        req.send(204)

    def container_restart(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        ctr.restart(query_optional_int(req.query.get("t"), "t"))
        req.send(204)

    def container_remove(self, req: Request, ref: str) -> None:
        if self.ryuk.owns(ref):
            self.ryuk.remove(ref)
            req.send(204)
            return
        if query_bool(req.query.get("link")):
            parent, _, alias = ref.strip("/").rpartition("/")
            if parent:  # /WEB/ALIAS: WEB's link of that name goes (WEB keeps running; its next start has no link)
                self.client.containers.remove_link(parent, alias)
                req.send(204)
                return
            self._container(ref)  # a container's own name is no link (dockerd's words and status)
            raise HTTPError(500, "Conflict, cannot remove the default link name of the container")
        ctr = self._container(ref)
        force = query_bool(req.query.get("force"))
        if ctr.status == "running" and not force:
            raise HTTPError(409, f"cannot remove container \"/{ctr.name}\": container is running: stop the "
                                 "container before removing or force remove")
        st = ctr.state
        ctr.remove(force=force, v=False)  # ?v=1 below, once the monitor has let go of the mounts
        if query_bool(req.query.get("v")):
            self.client.containers.settle()  # the monitor of a running one still holds its mounts
            self.client.volumes.remove_anonymous_of(st.get("binds") or [])
        req.send(204)

    UPDATABLE = ("Memory", "MemorySwap", "PidsLimit", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares",
                 "RestartPolicy")

    def container_update(self, req: Request, ref: str) -> None:
        """``docker update``: memory, memory+swap, pids, cpus (NanoCpus, or CpuQuota/CpuPeriod),
        cpu shares (at once for a running container) and the restart policy; other resources
        are refused (the engine does not apply them), not ignored."""
        doc = json_object(req, "update")
        ctr = self._container(ref)
        unsupported = sorted(k for k, v in doc.items() if k not in self.UPDATABLE and v not in (None, 0, "", [], {}))
        if unsupported:
            raise HTTPError(400, f"Cannot update container {ctr.id}: {', '.join(unsupported)} cannot be updated "
                                 "by this engine (it updates Memory, MemorySwap, PidsLimit, NanoCpus, CpuQuota/"
                                 "CpuPeriod, CpuShares and RestartPolicy)")
        cpus = None
        if doc.get("NanoCpus"):
            cpus = int(doc["NanoCpus"]) / 1e9
        elif doc.get("CpuQuota") and doc.get("CpuPeriod"):
            cpus = int(doc["CpuQuota"]) / int(doc["CpuPeriod"])
        policy = doc.get("RestartPolicy")
        if policy is not None and not isinstance(policy, dict):
            raise HTTPError(400, "json: cannot unmarshal RestartPolicy: want an object")
        for key in ("Memory", "MemorySwap", "PidsLimit", "CpuShares"):
            if doc.get(key) is not None and (not isinstance(doc[key], int) or isinstance(doc[key], bool)):
                raise HTTPError(400, f"json: cannot unmarshal {type(doc[key]).__name__} into field {key}")
        self.client.containers.update(
            ctr.id, memory=doc.get("Memory") or None, memory_swap=doc.get("MemorySwap") or None,
            pids_limit=doc.get("PidsLimit") or None, cpus=cpus, cpu_shares=doc.get("CpuShares") or None,
            restart_policy=policy if policy and policy.get("Name") else None)  # Name "": unchanged (the CLI sends it)
        req.send_json({"Warnings": None})

    def container_changes(self, req: Request, ref: str) -> None:
        """``docker diff``: the container's changes, null when none (as dockerd answers)."""
        changes = self.client.containers.changes(self._container(ref).id)
        req.send_json([{"Path": path, "Kind": kind} for path, kind in changes] or None)

    def container_pause(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        self.client.containers.pause(ctr.id)
        req.send(204)

    def container_unpause(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        self.client.containers.unpause(ctr.id)
        req.send(204)

    def container_rename(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        self.client.containers.rename(ctr.id, req.query.get("name") or "")
        req.send(204)

    def container_prune(self, req: Request) -> None:
        filters = parse_filters(req)
        sizes = {st["id"]: self.client.containers.size_rw(st["id"]) for st in self.client.containers.states(all=True)
                 if st["status"] not in ("running", "starting", "restarting")}
        if not filters:
            done = [line.split(": ", 1)[1] for line in self.client.prune() if line.startswith("Deleted container")]
        else:
            done = []
            for st in self.client.containers.states(all=True):
                if st["status"] in ("running", "starting", "restarting") or not labels_match(
                        st.get("labels") or {}, filters.get("label", [])):
                    continue
                with contextlib.suppress(PodsError):
                    self.client.containers.remove(st["id"])
                    done.append(st["id"])
        # what the removed ones' writable layers held, as dockerd counts it
        req.send_json({"ContainersDeleted": done, "SpaceReclaimed": sum(sizes.get(c, 0) for c in done)})

    def container_top(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        if ctr.status != "running":
            raise HTTPError(409, f"Container {ctr.id} is not running")
        table = self.client.containers.processes(ctr.id, req.query.get("ps_args") or "")
        req.send_json({"Titles": table.titles, "Processes": table.processes})

    def container_export(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        with tempfile.TemporaryFile() as out:
            self.client.containers.export(ctr.id, out)
            out.seek(0)
            req.stream(iter(lambda: out.read(65536), b""), "application/x-tar")

    def container_stats(self, req: Request, ref: str) -> None:
        """Docker's stats documents, one a second when streaming. ``stream=false`` answers the
        second sample (so ``precpu_stats`` makes a CPU % as dockerd's does), ``one-shot`` the first."""
        ctr = self._container(ref)
        one_shot = query_bool(req.query.get("one-shot"))
        stream = query_bool(req.query.get("stream"), True) and not one_shot

        def doc(prev: dict[str, Any] | None) -> dict[str, Any]:
            s: Mapping[str, Any] = ctr.stats() if ctr.status == "running" else {
                "memory_usage": 0, "memory_limit": None, "pids": 0, "cpu_usage_ns": 0, "net": {},
                "block_read": 0, "block_written": 0}
            now = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime()) + f"{time.time_ns() % 10**9:09d}Z"
            cpu = {"cpu_usage": {"total_usage": s["cpu_usage_ns"], "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                   "system_cpu_usage": host_cpu_ns(), "online_cpus": os.cpu_count(),
                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
            nets = {name: {"rx_bytes": rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                           "tx_bytes": tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}
                    for name, (rx, tx) in s["net"].items()}
            blkio = [{"major": 0, "minor": 0, "op": "read", "value": s["block_read"]},
                     {"major": 0, "minor": 0, "op": "write", "value": s["block_written"]}]
            return {"read": now, "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
                    "id": ctr.id, "name": "/" + ctr.name,
                    "pids_stats": {"current": s["pids"], **({"limit": s["pids_limit"]} if s.get("pids_limit") else {})},
                    "memory_stats": {"usage": s["memory_usage"], "limit": s["memory_limit"] or mem_total(),
                                     "stats": {}},
                    "cpu_stats": cpu, "precpu_stats": prev["cpu_stats"] if prev else {
                        "cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                    "networks": nets, "blkio_stats": {"io_service_bytes_recursive": blkio}}

        if not stream:
            first = doc(None)
            if one_shot or ctr.status != "running":
                req.send_json(first)
                return
            time.sleep(1)
            req.send_json(doc(first))
            return

        def docs() -> Iterator[bytes]:
            prev = None
            while not peer_closed(req.conn):
                d = doc(prev)
                yield json.dumps(d).encode() + b"\n"
                prev = d
                time.sleep(1)

        req.stream(docs())

    def container_resize(self, req: Request, ref: str) -> None:
        """The pty's window size (TIOCSWINSZ by its monitor, which holds the master); a container
        without a tty has none to set, as under docker."""
        ctr = self._container(ref)
        height = query_int(req.query.get("h"), 0, "h")
        width = query_int(req.query.get("w"), 0, "w")
        if self.has_tty(ctr.id):
            if ctr.status != "running":
                raise HTTPError(409, f"Container {ctr.id} is not running")
            if height > 0 and width > 0:
                self.client.containers.resize(ctr.id, height, width)
        req.send(200, b"", "text/plain")

    def container_archive(self, req: Request, ref: str) -> None:
        ctr = self._container(ref)
        path = req.query.get("path")
        if not path:
            raise HTTPError(400, "bad parameter: path cannot be empty")
        containers = self.client.containers
        if req.method == "PUT":
            st = containers.path_stat(ctr.id, path)
            if st is None:
                raise HTTPError(404, f"Could not find the file {path} in container {ref}")
            if not stat.S_ISDIR(st.st_mode):
                raise HTTPError(400, f"extraction point is not a directory: {path}")
            with tempfile.TemporaryFile() as buf:
                while chunk := req.read():
                    buf.write(chunk)
                buf.seek(0)
                try:
                    containers.put_archive(ctr.id, path, buf)
                except (tarfile.TarError, EOFError) as exc:
                    raise HTTPError(400, f"copy into {path}: not a tar archive: {exc}") from None
            req.send(200, b"", "text/plain")
            return
        st = containers.path_stat(ctr.id, path)
        if st is None:
            raise HTTPError(404, f"Could not find the file {path} in container {ref}")
        name = os.path.basename(path.rstrip("/")) or "/"
        link = ""
        header = base64.b64encode(json.dumps({
            "name": name, "size": st.st_size, "mode": go_file_mode(st),
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime)), "linkTarget": link,
        }).encode()).decode()
        if req.method == "HEAD":
            req.send(200, b"", "application/x-tar", {"X-Docker-Container-Path-Stat": header})
            return
        # "DIR/." is the directory's content: dockerd roots that archive at "." (docker cp c:/d/. out)
        arcname = "." if path == "." or path.rstrip("/").endswith("/.") else None
        with tempfile.TemporaryFile() as out:
            containers.get_archive(ctr.id, path, out, arcname)
            out.seek(0)
            req.stream(iter(lambda: out.read(65536), b""), "application/x-tar",
                       headers={"X-Docker-Container-Path-Stat": header})

    def commit(self, req: Request) -> None:
        q = req.query
        ref = q.get("container")
        if not ref:
            raise HTTPError(400, "No container specified")
        conf = json_object(req, "container")
        repo, tag = q.get("repo") or None, q.get("tag") or None
        # each repeated ``changes`` (docker-py and the CLI send one a change), each maybe of lines
        changes = [c for v in query_all(req, "changes") for c in v.split("\n") if c.strip()]
        run_conf = {k: v for k, v in conf.items() if k in ("Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts",
                                                           "WorkingDir", "User", "StopSignal", "Volumes")}
        img = self._container(ref).commit(repo, tag, message=q.get("comment", ""), author=q.get("author", ""),
                                          changes=changes, conf=run_conf or None,
                                          pause=query_bool(q.get("pause"), True))
        req.send_json({"Id": img.id}, 201)


def configured_endpoints(networks: dict[str, Any], st: Mapping[str, Any]) -> None:
    """A container that is not running shows each network's endpoint as it was configured
    (``IPAMConfig``, ``Links``, ``DriverOpts``, ``MacAddress`` given at create or connect), as
    dockerd does; a running one's come from its live endpoints. In place."""
    for n in st.get("networks") or []:
        ep = networks.get(n.get("name"))
        config = n.get("endpoint_config") or {}
        if not ep or ep.get("EndpointID") or not isinstance(config, dict):
            continue
        for key in ("IPAMConfig", "Links", "DriverOpts", "MacAddress"):
            if config.get(key):
                ep[key] = config[key]


def endpoint_mac(doc: Mapping[str, Any], network: str) -> str:
    """The MAC address a create body asks for on the network it joins: its endpoint's
    ``MacAddress`` (API 1.44+), else ``Config.MacAddress`` (which dockerd moves there); "" for
    none, and none on the host's network or none (no interface of the container's own)."""
    if network in ("host", "none"):
        return ""
    networking = doc.get("NetworkingConfig")
    eps = networking.get("EndpointsConfig") if isinstance(networking, dict) else None
    for net, ep in (eps or {}).items() if isinstance(eps, dict) else ():
        if isinstance(ep, dict) and net in (network, "default") and ep.get("MacAddress"):
            return str(ep["MacAddress"])
    mac = doc.get("MacAddress")
    return mac if isinstance(mac, str) else ""


def go_file_mode(st: os.stat_result) -> int:
    """A Go os.FileMode, as docker cp's path-stat header carries it."""
    mode = stat.S_IMODE(st.st_mode) & 0o777
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return mode


def host_cpu_ns() -> int:
    """The host's CPU time over all CPUs since boot, in ns (``/proc/stat``): the ``system_cpu_usage``
    a client's CPU % divides by, as dockerd reports it."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:9]  # user nice system idle iowait irq softirq steal
        return sum(int(x) for x in fields) * 10**9 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 0


def mem_total() -> int:
    """The host's memory in bytes: the limit docker shows for a container without one."""
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
