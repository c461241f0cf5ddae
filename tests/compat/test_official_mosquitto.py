"""The official eclipse-mosquitto image's name through ``pods daemon --image-aliases official``
(issue 17): testcontainers' own ``MosquittoContainer`` runs unchanged on the stand-in built from
the mosquitto recipe on first use, and docker-py shows the image's conventions taking effect.

The official image is not reachable here (no Docker Hub), so the expected behaviour is written by
hand from its documentation (hub.docker.com/_/eclipse-mosquitto: directories /mosquitto/config,
/mosquitto/data and /mosquitto/log; "docker run -it -p 1883:1883 -v mosquitto.conf:/mosquitto/
config/mosquitto.conf eclipse-mosquitto"; for a basic configuration without authentication
"docker run -it -p 1883:1883 eclipse-mosquitto mosquitto -c /mosquitto-no-auth.conf"; port 1883).
One difference is by design and tested as such: without a config of the user's, the official 2.x
image listens on the container's loopback only; the stand-in listens on all interfaces with
anonymous access, the configuration testcontainers mounts."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
pytest.importorskip("paho.mqtt.client")
import test_official_images as official

# the daemon with the preset on a root of its own (one for this module), testcontainers pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
LABEL, name, host_port = official.LABEL, official.name, official.host_port
try:
    MosquittoContainer: Any = pytest.importorskip("testcontainers.community.mqtt").MosquittoContainer
except pytest.skip.Exception:  # before 4.14
    MosquittoContainer = pytest.importorskip("testcontainers.mqtt").MosquittoContainer

#: MQTT 3.1.1 CONNECT (clean session, keepalive 60, client id "p") and the CONNACK that accepts it
CONNECT = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01p"
CONNACK_OK = b"\x20\x02\x00\x00"


def connack(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(CONNECT)
        return s.recv(4)


def test_testcontainers_mosquitto_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    import queue

    with MosquittoContainer() as broker:  # eclipse-mosquitto:latest, its config mounted, /data a tmpfs
        got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        client = broker.get_client()
        client.on_message = lambda c, userdata, msg: got.put((msg.topic, msg.payload))
        client.subscribe("tc/#", qos=1)
        broker.publish_message("tc/hello", "from testcontainers")
        assert got.get(timeout=10) == ("tc/hello", b"from testcontainers")
        logs = broker.get_logs()[0].decode()
        assert "Config loaded from /mosquitto/config/mosquitto.conf" in logs
    log = aliased.log_text()
    assert ("image alias: eclipse-mosquitto:latest -> pytest-pods/mosquitto:2.0 "
            "(Mosquitto 2.0 from Debian 12 (bookworm))") in log


def test_no_auth_config_of_the_docs_volumes_and_root_runs_it_as_mosquitto(dc: Any) -> None:
    ctr = dc.containers.run("eclipse-mosquitto:2", ["mosquitto", "-c", "/mosquitto-no-auth.conf"], name=name(),
                            labels={LABEL: "1"}, ports={"1883/tcp": None}, detach=True, user="root")

    def accepts() -> bool:
        try:
            return connack(host_port(ctr, 1883)) == CONNACK_OK
        except OSError:
            return False

    wait_until(accepts, 30, f"mosquitto in {ctr.name} accepting an anonymous CONNECT")
    assert "Config loaded from /mosquitto-no-auth.conf." in ctr.logs().decode()
    assert set(ctr.image.attrs["Config"]["Volumes"]) == {"/mosquitto/data", "/mosquitto/log"}
    assert ctr.image.attrs["Config"]["ExposedPorts"] == {"1883/tcp": {}}
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == ctr.exec_run(["id", "-u", "mosquitto"]).output.decode().strip() != "0"
    owner = ctr.exec_run(["stat", "-c", "%U", "/mosquitto/data", "/mosquitto/log"]).output.decode().split()
    assert owner == ["mosquitto", "mosquitto"]


def test_the_default_listens_on_all_interfaces_with_anonymous_access(dc: Any) -> None:
    # the official 2.x image would log "Starting in local only mode" here (no listener configured)
    ctr = dc.containers.run("eclipse-mosquitto:2.0.18", name=name(), labels={LABEL: "1"},
                            ports={"1883/tcp": None}, detach=True)
    wait_until(lambda: b" running" in ctr.logs(), 30, f"mosquitto in {ctr.name} running")
    assert connack(host_port(ctr, 1883)) == CONNACK_OK
    assert "local only mode" not in ctr.logs().decode()
