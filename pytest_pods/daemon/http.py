"""A small HTTP/1.1 server for the Docker Engine API: keep-alive, chunked bodies both ways, and
connection hijacking (``Upgrade: tcp``) for attach and exec.

One thread per connection (docker clients keep few connections and hold streams open for long);
a handler gets a :class:`Request` and answers through it. Nothing a client sends can end the
server: a malformed request gets a 400 and the connection is closed.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from pytest_pods.errors import HTTPError

MAX_HEADER = 64 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024  # a create or exec config; archives and build contexts stream


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 101: "UPGRADED", 304: "Not Modified",
            400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
            500: "Internal Server Error", 501: "Not Implemented"}


def split_target(target: str) -> tuple[str, str]:
    """A request target's path and query. An origin-form target (``/path?query``) has no authority,
    whatever it looks like: ``//[`` is a path, as Go's server takes it, not a broken IPv6 host."""
    if not target.startswith("/") and "://" in target:  # absolute-form, as a proxy would send
        try:
            parts = urlsplit(target)
        except ValueError:
            raise HTTPError(400, f"malformed request target {target!r}") from None
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


class Request:
    """One request: method, path, query, headers, a body reader, and the ways to answer."""

    def __init__(self, conn: socket.socket, rfile: Any, method: str, target: str, version: str,
                 headers: dict[str, str], extra_headers: dict[str, str],
                 keep: Callable[[socket.socket], None] = lambda s: None) -> None:
        self.conn, self.rfile = conn, rfile
        self._keep = keep
        self.method, self.version, self.headers = method, version, headers
        self.raw_path, query = split_target(target)
        self.path = unquote(self.raw_path)
        # a repeated key's first value, as Go's FormValue reads it in dockerd (docker-py sends a
        # Dockerfile from outside the context as dockerfile=NAME&dockerfile=CONTENT)
        self.query = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.query_pairs = parse_qsl(query, keep_blank_values=True)  # repeated keys (build -t)
        self.extra_headers = extra_headers
        self.answered = False
        self.keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        self.hijacked = False
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        try:
            self._left = int(headers.get("content-length") or 0) if not self._chunked else -1
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
        if self._left < -1:
            raise HTTPError(400, "bad Content-Length")
        self._chunk_left = 0
        self._body_done = not self._chunked and self._left == 0

    # -- the body ------------------------------------------------------------------------
    def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes of the body; b"" at its end (chunked or by length)."""
        if self._body_done:
            return b""
        if not self._chunked:
            data: bytes = self.rfile.read(min(n, self._left)) if self._left > 0 else b""
            self._left -= len(data)
            if not data or self._left <= 0:
                self._body_done = True
            return data
        if self._chunk_left == 0:
            line = self.rfile.readline(1024)
            try:
                self._chunk_left = int(line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise HTTPError(400, "bad chunk size") from None
            if self._chunk_left < 0:
                raise HTTPError(400, "bad chunk size")
            if self._chunk_left == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._body_done = True
                return b""
        data = self.rfile.read(min(n, self._chunk_left))
        if not data:
            self._body_done = True
            return b""
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self.rfile.readline(16)  # the CRLF after the chunk
        return data

    def body(self, limit: int = MAX_JSON_BODY) -> bytes:
        out = bytearray()
        while chunk := self.read():
            out += chunk
            if len(out) > limit:
                raise HTTPError(413, f"request body larger than {limit} bytes")
        return bytes(out)

    def json(self) -> Any:
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise HTTPError(400, f"invalid JSON: {exc}") from None
        except RecursionError:
            raise HTTPError(400, "invalid JSON: nested too deeply") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (what every create/connect/auth body must be)."""
        doc = self.json()
        if not isinstance(doc, dict):
            raise HTTPError(400, "json: cannot unmarshal the body: want a JSON object")
        return doc

    def drain(self) -> None:
        while self.read():
            pass

    # -- answers -------------------------------------------------------------------------
    def _head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        for k, v in {**self.extra_headers, **headers}.items():
            lines.append(f"{k}: {v}")
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.answered = True

    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        h = dict(headers or {})
        if status not in (204, 304):
            h.setdefault("Content-Type", content_type)
            h["Content-Length"] = str(len(body))
        if not self.keep_alive:
            h["Connection"] = "close"
        self._head(status, h)
        if body and self.method != "HEAD" and status not in (204, 304):
            self.conn.sendall(body)

    def send_json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(value).encode(), headers=headers)

    def error(self, status: int, message: str) -> None:
        self.send_json({"message": message}, status)

    def stream(self, chunks: Iterable[bytes], content_type: str = "application/json",
               status: int = 200, headers: dict[str, str] | None = None) -> None:
        """A chunked response fed by ``chunks`` (progress lines, logs, a tar)."""
        self._head(status, {"Content-Type": content_type, "Transfer-Encoding": "chunked", **(headers or {})})
        try:
            for data in chunks:
                if data:
                    self.conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            self.conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.keep_alive = False

    def hijack(self, content_type: str = "application/vnd.docker.raw-stream") -> socket.socket:
        """Answer 101 (or 200 without an Upgrade header, as old clients expect) and hand over
        the raw connection: it carries the streams from now on."""
        upgrade = "upgrade" in self.headers.get("connection", "").lower()
        if upgrade:
            self._head(101, {"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
        else:
            self._head(200, {"Content-Type": content_type})
        self.hijacked = True
        self.keep_alive = False
        wait_until_read(self.conn)
        return self.conn

    def keep(self) -> None:
        """The handler hands the hijacked connection to another thread: do not close it when
        the handler returns (whoever took it closes it)."""
        self._keep(self.conn)


def wait_until_read(conn: socket.socket, timeout: float = 0.5) -> None:
    """Wait (up to ``timeout``) until the peer of a unix socket has read what was sent: the
    stream's first bytes then reach it in a read of their own. docker-py reads a hijacked
    response's head through a buffered file and then the raw socket, so bytes that came with the
    head were lost (``attach(logs=True, stream=False)`` of an exited container answered b"" one
    time in four; dockerd's latency hides the same race). TCP (TLS) cannot tell: not waited on."""
    if conn.family != socket.AF_UNIX or isinstance(conn, ssl.SSLSocket):
        return
    import fcntl  # lazy: only a hijack
    import struct  # lazy: only a hijack
    import termios  # lazy: only a hijack

    deadline = time.monotonic() + timeout
    buf = bytearray(4)
    while time.monotonic() < deadline:
        try:
            fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, buf)  # SIOCOUTQ: sent, not yet read by the peer
        except OSError:
            return
        if struct.unpack("i", buf)[0] == 0:
            return
        time.sleep(0.001)


Handler = Callable[[Request], None]


class _Connection(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        rfile = conn.makefile("rb", buffering=65536)
        try:
            while self._one(conn, rfile):
                pass
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            try:
                rfile.close()
            except OSError:
                pass

    def _one(self, conn: socket.socket, rfile: Any) -> bool:
        line = rfile.readline(MAX_HEADER)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            _bad(conn, "malformed request line")
            return False
        headers: dict[str, str] = {}
        size = len(line)
        while True:
            h = rfile.readline(MAX_HEADER)
            size += len(h)
            if size > MAX_HEADER:
                _bad(conn, "request headers too large")
                return False
            if h in (b"\r\n", b"\n", b""):
                break
            k, sep, v = h.decode("latin-1").partition(":")
            if not sep:
                _bad(conn, "malformed header")
                return False
            headers[k.strip().lower()] = v.strip()
        try:
            req = Request(conn, rfile, method.upper(), target, version, headers, self.server.extra_headers,
                          self.server.kept.add)
        except HTTPError as exc:
            _bad(conn, exc.message)
            return False
        try:
            self.server.dispatch(req)
        except HTTPError as exc:
            if req.answered:
                return False
            req.error(exc.status, exc.message)
        except (ConnectionError, BrokenPipeError):
            return False
        except Exception as exc:  # a bug of ours: a 500, and the daemon lives on
            self.server.log_exception(req, exc)
            if req.answered:
                return False
            req.error(500, f"{type(exc).__name__}: {exc}")
        if req.hijacked or not req.keep_alive:
            return False
        try:
            req.drain()  # what the handler did not read
        except HTTPError:
            return False
        return True


def _bad(conn: socket.socket, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    try:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass


class Server(socketserver.ThreadingMixIn, socketserver.BaseServer):
    """Listens on a unix socket or TCP (with TLS); ``dispatch`` routes each request."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, sock: socket.socket, dispatch: Handler, extra_headers: dict[str, str],
                 tls: ssl.SSLContext | None = None, log: Callable[[str], None] | None = None) -> None:
        socketserver.BaseServer.__init__(self, sock.getsockname(), _Connection)
        self.socket = sock
        self.dispatch = dispatch
        self.extra_headers = extra_headers
        self.tls = tls
        self._log = log or (lambda msg: None)
        self.kept: set[socket.socket] = set()  # hijacked connections other threads now own

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            if request in self.kept:
                self.kept.discard(request)
            else:
                self.shutdown_request(request)

    def fileno(self) -> int:
        return self.socket.fileno()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = self.socket.accept()
        if self.tls is not None:
            conn.settimeout(30)
            conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(None)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        self._log("connection error:\n" + traceback.format_exc())

    def log_exception(self, req: Request, exc: BaseException) -> None:
        self._log(f"{req.method} {req.path}: {type(exc).__name__}: {exc}\n"
                  + "".join(traceback.format_exception(exc)))

    def shutdown_request(self, request: Any) -> None:
        try:
            request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        request.close()

    def server_close(self) -> None:
        self.socket.close()


def unix_listener(path: str, mode: int = 0o660) -> socket.socket:
    """A unix socket at ``path``, root-only (``mode``, owner root), replacing a stale one."""
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(path)
            raise OSError(f"{path} is in use by a running daemon")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
        finally:
            probe.close()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, mode)
    sock.listen(128)
    return sock


def tcp_listener(addr: str) -> socket.socket:
    host, _, port = addr.rpartition(":")
    sock = socket.create_server((host.strip("[]") or "127.0.0.1", int(port)), backlog=128, reuse_port=False)
    return sock


def tls_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Server TLS that requires a client certificate signed by ``ca`` (docker's --tlsverify)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def serve_in_thread(server: Server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="pods-daemon", daemon=True)
    t.start()
    return t
