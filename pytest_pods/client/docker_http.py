"""The Docker Engine API's wire: a connection (``unix://PATH``, ``tcp://HOST:PORT``, TLS with
client certificates), one JSON request, a hijacked stream, and the two stream formats the API
answers with: multiplexed stdout/stderr frames and chunked JSON progress lines.

The remote client (:mod:`.remote`) speaks the API through this module only.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from pytest_pods.errors import (
    ConflictError,
    ContainerNotFoundError,
    ImageNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    PodsError,
)

__all__ = ["API", "STDERR", "STDOUT", "DockerHTTP", "Progress", "StreamResponse", "UnixConnection", "api_error",
           "demux", "frames", "read_progress", "resolve_host"]

API = "/v1.41"
STDOUT, STDERR = 1, 2
FRAME = struct.Struct(">BxxxL")  # stream kind, 3 bytes padding, payload size (big endian)

Progress = Callable[[str], object]
"""Called with each progress line of a pull, push or build."""


def resolve_host(host: str) -> str:
    """``docker`` or ``env``: whatever ``DOCKER_HOST`` names (the default socket without it)."""
    if host in ("docker", "env"):
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return host


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the Host header says ``localhost``, as docker's clients send)."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def api_error(status: int, body: bytes, what: str) -> PodsError:
    """The error for an API answer >= 400: Docker's ``message``, as our error classes."""
    try:
        msg = json.loads(body).get("message") or body.decode(errors="replace")
    except (ValueError, AttributeError):
        msg = body.decode(errors="replace").strip() or f"HTTP {status}"
    if status == 404:
        if "image" in msg.lower():
            return ImageNotFoundError(msg)
        if "container" in msg.lower():
            return ContainerNotFoundError(msg)
        return NotFoundError(msg)
    if status == 409:
        return ConflictError(msg)
    if status == 400:
        return InvalidArgumentError(msg)
    return PodsError(f"{what}: {msg}")


class StreamResponse:
    """An open streaming answer (logs, progress, archives); ``close()`` closes its connection too."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self.resp = resp
        self.conn = conn

    def read(self, n: int | None = None) -> bytes:
        return self.resp.read(n)

    def read1(self, n: int = -1) -> bytes:
        """What has arrived, at most ``n`` bytes (waits only for the first)."""
        return self.resp.read1(n)

    def getheader(self, name: str, default: str = "") -> str:
        return self.resp.getheader(name, default)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.resp)

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


class DockerHTTP:
    """Requests to one Docker Engine API endpoint (``unix://PATH`` or ``tcp://HOST:PORT``).

    TLS is used for ``https://``, or when ``PODS_CERT_PATH`` / ``DOCKER_CERT_PATH`` (ca.pem,
    cert.pem, key.pem) or ``DOCKER_TLS_VERIFY`` is set.
    """

    def __init__(self, host: str) -> None:
        self.host = resolve_host(host)
        u = urlsplit(self.host)
        self.scheme = u.scheme
        self.path = ""
        self.netloc = ""
        self.tls: ssl.SSLContext | None = None
        if u.scheme == "unix":
            self.path = u.path
            self.address_host = "127.0.0.1"
        elif u.scheme in ("tcp", "https", "http"):
            self.netloc = u.netloc
            self.address_host = u.hostname or "127.0.0.1"
            certs = os.environ.get("PODS_CERT_PATH") or os.environ.get("DOCKER_CERT_PATH")
            if certs or u.scheme == "https" or os.environ.get("DOCKER_TLS_VERIFY"):
                ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem") if certs else None)
                if certs:
                    ctx.load_cert_chain(os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
                ctx.check_hostname = False
                self.tls = ctx
        else:
            raise InvalidArgumentError(f"engine host {host!r}: use unix:///path or tcp://host:port")

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        if self.scheme == "unix":
            return UnixConnection(self.path, timeout)
        if self.tls is not None:
            return http.client.HTTPSConnection(self.netloc, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.netloc, timeout=timeout)

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """``/v1.41/PATH?QUERY``; booleans as 1/0, None values left out, lists repeated."""
        q = {k: (("1" if v else "0") if isinstance(v, bool) else v) for k, v in (query or {}).items() if v is not None}
        return API + path + (("?" + urlencode(q, doseq=True)) if q else "")

    def open(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None,
             headers: Mapping[str, str] | None = None, what: str = "",
             timeout: float | None = 300) -> StreamResponse:
        """Send one request; the open answer (raises for a status >= 400)."""
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = self.connection(timeout)
        try:
            conn.request(method, self.url(path, query), body=body, headers=h)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            raise PodsError(f"{what or method + ' ' + path}: cannot reach the engine at {self.host}: {exc}") from None
        if resp.status >= 400:
            data = resp.read()
            conn.close()
            raise api_error(resp.status, data, what or f"{method} {path}")
        return StreamResponse(resp, conn)

    def request(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None,
                headers: Mapping[str, str] | None = None, what: str = "", timeout: float | None = 300) -> Any:
        """One API call: the decoded JSON, or the bytes of a non-JSON answer."""
        resp = self.open(method, path, query, body, headers, what, timeout)
        try:
            data = resp.read()
        finally:
            resp.close()
        if resp.getheader("Content-Type", "").startswith("application/json") and data:
            return json.loads(data)
        return data

    def hijack(self, path: str, body: Mapping[str, Any], what: str) -> socket.socket:
        """POST with ``Upgrade: tcp``; the raw socket carrying the streams afterwards."""
        conn = self.connection(None)
        conn.connect()
        sock = conn.sock
        data = json.dumps(body).encode()
        sock.sendall((f"POST {API}{path} HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise PodsError(f"{what}: the engine closed the connection")
            head += chunk
        status = int(head.split(b" ", 2)[1])
        if status >= 400:
            rest = sock.recv(65536)
            sock.close()
            raise api_error(status, rest.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in rest else rest, what)
        return sock


# -- stream formats ---------------------------------------------------------------------------
def demux(data: bytes) -> tuple[bytes, bytes]:
    """A whole multiplexed stream as (stdout, stderr)."""
    out, err = bytearray(), bytearray()
    off = 0
    while off + FRAME.size <= len(data):
        kind, size = FRAME.unpack_from(data, off)
        chunk = data[off + FRAME.size: off + FRAME.size + size]
        (err if kind == STDERR else out).extend(chunk)
        off += FRAME.size + size
    return bytes(out), bytes(err)


def frames(read: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream, bytes) frames from a multiplexed stream's ``read``, as they arrive."""
    buf = b""
    while True:
        while len(buf) < FRAME.size:
            chunk = read(65536)
            if not chunk:
                return
            buf += chunk
        kind, size = FRAME.unpack_from(buf, 0)
        while len(buf) < FRAME.size + size:
            chunk = read(65536)
            if not chunk:
                return
            buf += chunk
        yield kind, buf[FRAME.size:FRAME.size + size]
        buf = buf[FRAME.size + size:]


def read_progress(resp: StreamResponse, progress: Progress | None, what: str) -> dict[str, Any]:
    """Follow a pull, push or build answer (one JSON document a line) to its end: each
    ``stream``/``status`` text goes to ``progress``; the ``aux`` documents merged are returned.

    :raises PodsError: the engine reported an ``error``
    """
    last: dict[str, Any] = {}
    tail: list[str] = []  # a build's last lines of output: the error says what the step printed
    try:
        for raw in resp:
            line = raw.strip()
            if not line:
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if "error" in doc:
                shown = "".join(f"\n{t}" for t in tail)
                raise PodsError(f"{what}: {doc['error']}" +
                                (f"\n------ the step's last {len(tail)} lines of output:{shown}" if tail else ""))
            if "aux" in doc:
                last.update(doc["aux"])
            text = doc.get("stream") or doc.get("status")
            if doc.get("stream"):
                for out in re.sub(r"\x1b\[[0-9;]*m", "", str(doc["stream"])).splitlines():
                    if out.strip() and not out.startswith(("Step ", " ---> ", "Removing intermediate")):
                        tail[:] = [*tail[-29:], out]
            if text and progress is not None:
                progress(str(text).rstrip("\n"))
    finally:
        resp.close()
    return last
