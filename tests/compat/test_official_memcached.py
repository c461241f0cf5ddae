"""The official memcached image's name through ``pods daemon --image-aliases official`` (issue 17):
testcontainers' own ``MemcachedContainer`` runs unchanged on the stand-in built from the memcached
recipe on first use, and docker-py shows the contract taking effect.

The official image is not reachable here (no Docker Hub), so the expected behaviour is written by
hand from its documentation (hub.docker.com/_/memcached: "docker run --name my-memcache -d
memcached memcached -m 64", arguments after the image name go to memcached, port 11211)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
import test_official_images as official

# the daemon with the preset on a root of its own (one for this module), testcontainers pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
LABEL, name, host_port = official.LABEL, official.name, official.host_port
try:
    MemcachedContainer: Any = pytest.importorskip("testcontainers.community.memcached").MemcachedContainer
except pytest.skip.Exception:  # before 4.14
    MemcachedContainer = pytest.importorskip("testcontainers.memcached").MemcachedContainer


def ask(port: int, command: bytes, until: bytes = b"\r\n") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(command)
        reply = b""
        while not reply.endswith(until):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def test_testcontainers_memcached_1_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    with MemcachedContainer("memcached:1") as mc:
        host, port = mc.get_host_and_port()
        assert host in ("localhost", "127.0.0.1")
        assert ask(port, b"set k 0 0 5\r\nhello\r\n") == b"STORED\r\n"
        assert ask(port, b"get k\r\n", b"END\r\n") == b"VALUE k 0 5\r\nhello\r\nEND\r\n"
    log = aliased.log_text()
    assert "image alias: memcached:1 -> pytest-pods/memcached:1.6 (memcached 1.6 from Debian 12 (bookworm))" in log


def test_arguments_after_the_image_go_to_memcached_and_root_runs_it_as_memcache(dc: Any) -> None:
    # the docs: "docker run ... memcached memcached -m 64"; "-m 64" alone works as well
    ctr = dc.containers.run("memcached:1.6", ["-m", "128", "-c", "321"], name=name(), labels={LABEL: "1"},
                            ports={"11211/tcp": None}, detach=True, user="root")

    def answers() -> bool:
        try:
            return ask(host_port(ctr, 11211), b"version\r\n").startswith(b"VERSION")
        except OSError:
            return False

    wait_until(answers, 30, f"memcached in {ctr.name} answering")
    settings = ask(host_port(ctr, 11211), b"stats settings\r\n", b"END\r\n").decode()
    assert "STAT maxbytes 134217728\r\n" in settings and "STAT maxconns 321\r\n" in settings
    assert "STAT udpport 0\r\n" in settings  # no UDP, memcached's default since 1.5.6
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == ctr.exec_run(["id", "-u", "memcache"]).output.decode().strip() != "0"
