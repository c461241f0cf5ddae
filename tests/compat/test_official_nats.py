"""The official nats image's name through ``pods daemon --image-aliases official`` (issue 17):
testcontainers' own ``NatsContainer`` runs unchanged on the stand-in built from the nats recipe
on first use, and docker-py shows the image's conventions taking effect.

The official image is not reachable here (no Docker Hub), so the expected behaviour is written by
hand from its documentation (hub.docker.com/_/nats: "docker run -p 4222:4222 -p 8222:8222 -p
6222:6222 nats", arguments after the image name go to nats-server ("docker run nats -js",
"--config"), the default configuration nats-server.conf with clients on 4222, monitoring on 8222
and routes on 6222)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
pytest.importorskip("nats")
import test_official_images as official

nats_py: Any = pytest.importorskip("nats")

# the daemon with the preset on a root of its own (one for this module), testcontainers pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
LABEL, name, host_port = official.LABEL, official.name, official.host_port
try:
    NatsContainer: Any = pytest.importorskip("testcontainers.community.nats").NatsContainer
except pytest.skip.Exception:  # before 4.14
    NatsContainer = pytest.importorskip(
        "testcontainers.nats", reason="testcontainers has no nats module here (pip install testcontainers[nats])"
    ).NatsContainer


async def round_trip(uri: str, subject: str, payload: bytes) -> bytes:
    nc = await nats_py.connect(uri)
    try:
        sub = await nc.subscribe(subject)
        await nc.publish(subject, payload)
        data: bytes = (await sub.next_msg(timeout=5)).data
        return data
    finally:
        await nc.close()


def test_testcontainers_nats_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    with NatsContainer() as srv:  # nats:latest, 4222 and 8222 exposed, "Server is ready" awaited
        assert asyncio.run(round_trip(srv.nats_uri(), "tc", b"Test-Containers")) == b"Test-Containers"
        host, port = srv.get_container_host_ip(), srv.get_exposed_port(8222)
        with urllib.request.urlopen(f"http://{host}:{port}/varz", timeout=10) as resp:
            assert json.load(resp)["port"] == 4222  # the official config's monitoring port answers
    log = aliased.log_text()
    assert "image alias: nats:latest -> pytest-pods/nats:2.9 (NATS 2.9 from Debian 12 (bookworm))" in log


def test_testcontainers_nats_with_jetstream(tc: Any) -> None:
    async def stream(uri: str) -> int:
        nc = await nats_py.connect(uri)
        js = nc.jetstream()
        await js.add_stream(name="TC", subjects=["tc.>"])
        seq: int = (await js.publish("tc.1", b"x")).seq
        await nc.close()
        return seq

    with NatsContainer("nats:2.9", jetstream=True) as srv:  # the command "-js": flags go to nats-server
        assert asyncio.run(stream(srv.nats_uri())) == 1


def test_the_official_command_forms_and_root_runs_it_as_nats(dc: Any) -> None:
    # the scratch variant's CMD: a config path relative to its working directory
    ctr = dc.containers.run("nats:2", ["--config", "nats-server.conf", "-DV"], name=name(), labels={LABEL: "1"},
                            ports={"4222/tcp": None}, detach=True, user="root")
    wait_until(lambda: b"Server is ready" in ctr.logs(), 30, f"nats-server in {ctr.name} ready")
    logs = ctr.logs().decode()
    assert "Using configuration file: nats-server.conf" in logs and "[DBG]" in logs  # -DV reached it
    assert "Listening for route connections on 0.0.0.0:6222" in logs
    assert asyncio.run(round_trip(f"nats://127.0.0.1:{host_port(ctr, 4222)}", "a.b", b"c")) == b"c"
    assert ctr.image.attrs["Config"]["ExposedPorts"] == {"4222/tcp": {}, "6222/tcp": {}, "8222/tcp": {}}
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == ctr.exec_run(["id", "-u", "nats"]).output.decode().strip() != "0"
