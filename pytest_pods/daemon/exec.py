"""Exec routes: create an exec instance in a running container, start it (attached over a hijacked
connection, or detached), resize its tty, and inspect it."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

from pytest_pods.client.docker_docs import optional_body_field
from pytest_pods.client.local import Client
from pytest_pods.daemon.http import Request
from pytest_pods.daemon.router import Route, json_object, query_int, route
from pytest_pods.daemon.streams import (
    MULTIPLEXED,
    RAW,
    STDERR,
    STDOUT,
    close_socket,
    container_pty,
    copy_out,
    frame,
    parse_detach_keys,
    pump_in,
    resize_pty,
)
from pytest_pods.errors import ContainerStartError, HTTPError, PodsError


class Exec:
    """One exec instance (``POST /containers/ID/exec``), until it is inspected after its end."""

    def __init__(self, cid: str, config: dict[str, Any], detach_keys: bytes) -> None:
        self.id = os.urandom(32).hex()
        self.cid = cid
        self.config = config
        self.detach_keys = detach_keys  # with a tty, typed into stdin they end the attach, not the process
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.master: int | None = None


class ExecRouter:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.execs: dict[str, Exec] = {}

    def routes(self) -> list[Route]:
        return [
            route("POST", r"/containers/(?P<ref>[^/]+)/exec", self.exec_create),
            route("POST", r"/exec/(?P<eid>[^/]+)/start", self.exec_start),
            route("POST", r"/exec/(?P<eid>[^/]+)/resize", self.exec_resize),
            route("GET", r"/exec/(?P<eid>[^/]+)/json", self.exec_inspect),
        ]

    def exec_create(self, req: Request, ref: str) -> None:
        doc = json_object(req, "exec")
        ctr = self.client.containers.get(ref)
        if ctr.status != "running":
            raise HTTPError(409, f"Container {ctr.id} is not running")
        if ctr.state.get("paused"):
            raise HTTPError(409, f"Container {ref} is paused, unpause the container before exec")
        cmd = optional_body_field(doc, "Cmd", list)
        if not cmd or not all(isinstance(c, str) for c in cmd):
            raise HTTPError(400, "No exec command specified")
        keys = next((v for k, v in doc.items() if k.lower() == "detachkeys"), None)  # docker-py: detachKeys
        if keys is not None and not isinstance(keys, str):
            raise HTTPError(400, "json: cannot unmarshal DetachKeys: want a string")
        try:
            detach_keys = parse_detach_keys(keys or None)
        except ValueError as exc:
            raise HTTPError(400, str(exc)) from None
        ex = Exec(ctr.id, doc, detach_keys)
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
        # as dockerd: the exec's own Tty gives it a pty; the start's Tty (false when not sent) says
        # whether the stream is raw (docker-py's exec_start(tty=False) of a tty exec reads frames)
        tty = bool(cfg.get("Tty"))
        raw = isinstance(doc, dict) and bool(doc.get("Tty"))
        ex.running = True
        if doc.get("Detach"):
            threading.Thread(target=self._run, args=(ex, None, tty), daemon=True, name="pods-exec").start()
            req.send(200, b"", "text/plain")
            return
        sock = req.hijack(RAW if raw else MULTIPLEXED)
        self._run(ex, sock, tty, raw)

    def _run(self, ex: Exec, sock: socket.socket | None, tty: bool, raw: bool = False) -> None:
        cfg = ex.config
        containers = self.client.containers
        env = [e for e in cfg.get("Env") or [] if isinstance(e, str)]
        attach_in = bool(cfg.get("AttachStdin")) and sock is not None
        fds: list[int] = []
        try:
            if tty:
                master, slave = container_pty(containers.state(ex.cid)["pid"], cfg.get("ConsoleSize"))
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
                    res = containers.exec(ex.cid, [str(c) for c in cfg["Cmd"]], env=env, user=cfg.get("User") or None,
                                  workdir=cfg.get("WorkingDir") or None, stdio=stdio, tty=tty,
                                  privileged=bool(cfg.get("Privileged")))
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
                threading.Thread(target=self._pump_stdin, args=(sock, stdin_w, ex, raw), daemon=True,
                                 name="pods-exec-in").start()
            copy_out(readers, sock, tty, framed=not raw)
            runner.join()
            if "error" in result and sock is not None:
                with contextlib.suppress(OSError):
                    # dockerd's words go where it writes them: the stream's stdout, with "\r\n"
                    message = (result["error"] + "\r\n").encode()
                    sock.sendall(message if raw else frame(STDOUT, message))
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
                close_socket(sock)

    @staticmethod
    def _pump_stdin(sock: socket.socket, fd: int, ex: Exec, raw: bool) -> None:
        """The client's stdin into the exec's. On a pty, its detach keys end the attach as dockerd
        ends it: the process's stdin ends (EOF), the client is told so and its connection closed."""
        is_pty = fd == ex.master
        if pump_in(sock, fd, is_pty, ex.detach_keys if is_pty else b""):
            with contextlib.suppress(OSError):
                if ex.master == fd:  # still its pty (closed and forgotten once the process ended)
                    os.write(fd, b"\x04")
                message = b"exec attach failed: error on attach stdin: read escape sequence\r\n"
                sock.sendall(message if raw else frame(STDOUT, message))
            close_socket(sock)

    def exec_resize(self, req: Request, eid: str) -> None:
        ex = self._exec(eid)
        h, w = query_int(req.query.get("h"), 0, "h"), query_int(req.query.get("w"), 0, "w")
        if ex.master is not None:
            with contextlib.suppress(OSError):
                resize_pty(ex.master, h or 24, w or 80)
        req.send(201, b"", "text/plain")

    def exec_inspect(self, req: Request, eid: str) -> None:
        ex = self._exec(eid)
        cfg = ex.config
        cmd = cfg.get("Cmd") or [""]
        req.send_json({"ID": ex.id, "Running": ex.running, "ExitCode": ex.exit_code, "ContainerID": ex.cid,
                       "OpenStdin": bool(cfg.get("AttachStdin")), "OpenStdout": bool(cfg.get("AttachStdout")),
                       "OpenStderr": bool(cfg.get("AttachStderr")), "Pid": ex.pid, "CanRemove": False,
                       "DetachKeys": next((v for k, v in cfg.items() if k.lower() == "detachkeys"), "") or "",
                       "ProcessConfig": {"entrypoint": cmd[0], "arguments": cmd[1:],
                                                           "tty": bool(cfg.get("Tty")),
                                                           "privileged": bool(cfg.get("Privileged")),
                                                           "user": cfg.get("User", "")}})
