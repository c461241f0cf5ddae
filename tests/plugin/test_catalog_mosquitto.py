"""The Mosquitto (MQTT) service of the catalogue (issue 17): Debian 12's mosquitto 2.0 with the
official eclipse-mosquitto image's conventions, a broker per test or a topic prefix per test on
a shared one, reached with paho-mqtt and by name from another container, pooled, leaving
nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import os
import queue
import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.mosquitto import mosquitto_container

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "auth.conf"), "w") as f:  # a config of the user's: no anonymous access
    f.write("listener 1883\\nallow_anonymous false\\nlog_dest stdout\\n")

net = network(scope="module")
named = mosquitto_container(network=net)
own_config = mosquitto_container(
    volumes={os.path.join(HERE, "auth.conf"): {"bind": "/mosquitto/config/mosquitto.conf", "mode": "ro"}})
prefixed = mosquitto_container(isolation="prefix")
pooled = mosquitto_container(pool=1)

def test_round_trip_with_paho_and_without_a_library(mosquitto):
    assert mosquitto.url.startswith("mqtt://127.0.0.1:") and mosquitto.prefix == ""
    got = queue.Queue()
    c = mosquitto.client()
    c.on_message = lambda client, userdata, msg: got.put((msg.topic, msg.payload))
    c.subscribe(mosquitto.topic("sensors/#"), qos=1)
    c.publish(mosquitto.topic("sensors/1"), b"21.5", qos=1)  # after the SUBSCRIBE, on one connection
    assert got.get(timeout=10) == ("sensors/1", b"21.5")
    mosquitto.pub("sensors/2", "19", retain=True)
    assert got.get(timeout=10) == ("sensors/2", b"19")
    assert mosquitto.sub("sensors/2") == [("sensors/2", "19")]  # the retained message
    assert mosquitto.sub("nothing/here", timeout=1) == []
    assert "mosquitto version 2.0." in mosquitto.logs()
    # the broker as the mosquitto user, as the official image runs it
    uid = mosquitto.container.exec(["sh", "-c", "stat -c %u /proc/1"]).output.decode().strip()
    assert uid == mosquitto.container.exec(["id", "-u", "mosquitto"]).output.decode().strip() != "0"

def test_bad_topics_are_refused_by_name(mosquitto):
    with pytest.raises(PodsError, match=r"mosquitto_pub in .*Invalid publish topic 'a/#'"):
        mosquitto.pub("a/#", "x")
    with pytest.raises(ValueError, match=r"mosquitto topic '\\$SYS/broker': give a topic"):
        mosquitto.topic("$SYS/broker")

def test_a_mounted_config_wins(own_config):
    assert "Config loaded from /mosquitto/config/mosquitto.conf" in own_config.logs()
    with pytest.raises(PodsError, match="not authori[sz]ed"):
        own_config.pub("t", "x")

def test_reached_by_name_from_another_container(named, pods, net, mosquitto_image):
    box = pods.run(str(mosquitto_image), ["sleep", "60"], network=net)
    assert named.network_url == f"mqtt://{named.name}:1883"
    res = box.exec(["mosquitto_pub", "-h", named.network_host, "-t", "from/box", "-m", "hi", "-r"])
    assert res.exit_code == 0, res
    assert named.sub("from/box") == [("from/box", "hi")]

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_its_own_prefix(prefixed, n):
    assert prefixed.prefix.startswith("test-") and prefixed.topic("same") == prefixed.prefix + "same"
    assert prefixed.sub("same", timeout=1) == []  # the other test's retained message is not under this prefix
    prefixed.pub("same", str(n), retain=True)
    assert prefixed.sub("same") == [("same", str(n))]
    prefixed.client()  # disconnected after the test

def test_pooled(pooled):
    pooled.pub("t", "x", retain=True)
    assert pooled.sub("t") == [("t", "x")]
'''


def test_mosquitto_round_trip_config_prefix_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the broker's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_mqtt=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=7)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "vhost"}, "isolation='vhost': use one of container, prefix"),
    ({"isolation": "prefix", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "the recipe keeps no state between starts"),
])
def test_mosquitto_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.mosquitto import mosquitto_container

    with pytest.raises(ValueError, match=message):
        mosquitto_container(**kwargs)
