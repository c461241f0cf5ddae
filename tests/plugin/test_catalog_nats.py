"""The NATS service of the catalogue (issue 17): Debian 12's nats-server 2.9 with the official nats
image's conventions, a server per test or an account per test on a shared one (added by a
configuration reload), reached with nats-py and by name from another container, pooled, leaving
nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import asyncio
import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.nats import _AccountServer, nats_container

_AccountServer.AHEAD = 2  # the third test's account comes from a configuration reload

net = network(scope="module")
named = nats_container(network=net)
streams = nats_container(command=["-js"])
accounts = nats_container(isolation="account")
pooled = nats_container(pool=1)
SEEN = []

async def round_trip(srv, subject, payload):
    nc = await srv.client()
    try:
        sub = await nc.subscribe(subject)
        # nats-py's flush() writes its PING ahead of the queued SUB: only a message of its own,
        # queued after the SUB, proves the subscription is on the server
        await nc.publish(subject, b"py")
        got = [(await sub.next_msg(timeout=5)).data]
        srv.publish(subject, payload)  # by the text protocol, no library
        return got + [(await sub.next_msg(timeout=5)).data]
    finally:
        await nc.close()

def test_round_trip_with_nats_py_and_without_a_library(nats):
    assert nats.url.startswith("nats://127.0.0.1:") and nats.user is None
    assert asyncio.run(round_trip(nats, "orders.new", b"1")) == [b"py", b"1"]
    varz = nats.varz()
    assert varz["version"].startswith("2.9.") and varz["port"] == 4222 and varz["http_port"] == 8222
    assert "Using configuration file: /etc/nats/nats-server.conf" in nats.logs()
    uid = nats.container.exec(["sh", "-c", "stat -c %u /proc/1"]).output.decode().strip()
    assert uid == nats.container.exec(["id", "-u", "nats"]).output.decode().strip() != "0"

def test_bad_subjects_are_refused_by_name(nats):
    for bad in ["", "orders.*", "orders.>", "a b", "a..b"]:
        with pytest.raises(ValueError, match="nats subject .*: publish to tokens separated by dots"):
            nats.publish(bad, b"x")

def test_arguments_reach_the_server(streams):
    async def go():
        nc = await streams.client()
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        ack = await js.publish("s.1", b"x")
        await nc.close()
        return ack.seq
    assert asyncio.run(go()) == 1

def test_reached_by_name_from_another_container(named, pods, net):
    box = pods.run("busybox", ["sleep", "60"], network=net)
    assert named.network_url == f"nats://{named.name}:4222"
    res = box.exec(["sh", "-c", f"printf 'CONNECT {{}}\\\\r\\\\nPING\\\\r\\\\n' | nc -w 2 {named.network_host} 4222"])
    assert res.output.startswith(b"INFO {") and b"PONG" in res.output, res

@pytest.mark.parametrize("n", [1, 2, 3])
def test_each_test_an_account_of_its_own(accounts, n):
    SEEN.append(accounts.account)
    assert accounts.user == accounts.account and accounts.url.startswith(f"nats://{accounts.user}:")
    assert asyncio.run(round_trip(accounts, "same", str(n).encode())) == [b"py", str(n).encode()]

    async def streams_of_its_own():
        nc = await accounts.client()
        js = nc.jetstream()
        names = [s.config.name for s in await js.streams_info()]
        await js.add_stream(name="SAME", subjects=["same.>"])  # the other test's SAME is not here
        await nc.close()
        return names
    assert asyncio.run(streams_of_its_own()) == []
    assert len(set(SEEN)) == n
    if n == 3:  # made by a reload, which removed the first test's account
        gone = type(accounts)(accounts.container, user=SEEN[0], password=SEEN[0], account=SEEN[0])
        with pytest.raises(PodsError, match="Authorization Violation"):
            gone.publish("same", b"x")

def test_outside_an_account_the_shared_server_refuses_by_name(accounts):
    anonymous = type(accounts)(accounts.container)
    with pytest.raises(PodsError, match="Authorization Violation"):
        anonymous.publish("same", b"x")

def test_pooled(pooled):
    assert asyncio.run(round_trip(pooled, "p", b"x")) == [b"py", b"x"]
'''


def test_nats_round_trip_arguments_account_isolation_pool_and_network(inner: Inner) -> None:
    pytest.importorskip("nats")
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_nats_service=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=9)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "subject"}, "isolation='subject': use one of container, account"),
    ({"isolation": "account", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"isolation": "account", "command": ["-js"]}, "runs a configuration of its own"),
    ({"warm": print}, "core NATS keeps no messages"),
])
def test_nats_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.nats import nats_container

    with pytest.raises(ValueError, match=message):
        nats_container(**kwargs)
