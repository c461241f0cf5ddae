"""Pure parts of the RemoteEngine and the daemon's HTTP layer: request bodies, frames, chunks."""

from __future__ import annotations

import io
import struct

import pytest

from pytest_pods.client.docker_docs import create_body
from pytest_pods.client.docker_http import demux, frames, resolve_host
from pytest_pods.daemon.http import Request
from pytest_pods.errors import HTTPError


def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


def test_demux_splits_stdout_and_stderr_frames() -> None:
    raw = frame(1, b"out1\n") + frame(2, b"err\n") + frame(1, b"out2\n")
    assert demux(raw) == (b"out1\nout2\n", b"err\n")
    chunks = iter([raw[:3], raw[3:11], raw[11:]])
    assert list(frames(lambda n: next(chunks, b""))) == [(1, b"out1\n"), (2, b"err\n"), (1, b"out2\n")]


def test_create_body_speaks_dockers_field_names() -> None:
    body = create_body("busybox", "echo hi", {
        "environment": {"A": "1"}, "ports": [8080, "127.0.0.1:9000:90/udp"], "labels": {"k": "v"},
        "network": "backend", "network_aliases": ["db"], "memory": "64m", "auto_remove": True,
        "volumes": ["/src:/dst:ro"], "no_new_privileges": False})
    assert body["Cmd"] == ["/bin/sh", "-c", "echo hi"] and body["Env"] == ["A=1"]
    hc = body["HostConfig"]
    assert hc["PortBindings"] == {"8080/tcp": [{"HostIp": "", "HostPort": ""}],
                                  "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]}
    assert hc["Memory"] == 64 * 1024 * 1024 and hc["AutoRemove"] is True and hc["NetworkMode"] == "backend"
    assert hc["SecurityOpt"] == ["no-new-privileges=false"] and hc["Binds"] == ["/src:/dst:ro"]
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"backend": {"Aliases": ["db"]}}}
    with pytest.raises(TypeError, match="unexpected keyword argument 'imagee'"):
        create_body("busybox", None, {"imagee": "x"})


def test_resolve_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2376")
    assert resolve_host("docker") == "tcp://10.0.0.1:2376"
    assert resolve_host("unix:///x.sock") == "unix:///x.sock"


def request(raw: bytes, headers: dict[str, str]) -> Request:
    return Request(None, io.BufferedReader(io.BytesIO(raw)), "POST", "/v1.41/build?t=a&t=b&q=True",  # type: ignore[arg-type]
                   "HTTP/1.1", headers, {})


def test_chunked_body_and_repeated_query_keys() -> None:
    req = request(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", {"transfer-encoding": "chunked"})
    assert req.body() == b"hello world"
    assert [v for k, v in req.query_pairs if k == "t"] == ["a", "b"] and req.query["q"] == "True"


@pytest.mark.parametrize("raw, headers, status", [
    (b"zz\r\nhello\r\n", {"transfer-encoding": "chunked"}, 400),   # a bad chunk size
    (b"{not json", {"content-length": "9"}, 400),
    (b"x" * 64, {"content-length": "64"}, 413),                     # over the limit asked for
])
def test_bad_bodies_are_http_errors(raw: bytes, headers: dict[str, str], status: int) -> None:
    req = request(raw, headers)
    with pytest.raises(HTTPError) as exc:
        req.json() if status != 413 else req.body(limit=10)
    assert exc.value.status == status


def test_negative_content_length_is_refused() -> None:
    with pytest.raises(HTTPError):
        request(b"", {"content-length": "-5"})
