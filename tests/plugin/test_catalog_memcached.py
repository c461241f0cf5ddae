"""The memcached service of the catalogue (issue 17): Debian 12's memcached 1.6 with the official
image's contract, a server per test or one flushed before each test, reached by name, pooled,
leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import pytest
from pytest_pods import network
from pytest_pods.plugin.catalog.memcached import memcached_container

net = network(scope="module")
big = memcached_container(command=["-m", "96", "-I", "2m"], network=net)
flushed = memcached_container(isolation="flush")
pooled = memcached_container(pool=1)

def test_plain_server_with_pymemcache_and_the_text_protocol(memcached):
    assert memcached.server.startswith("127.0.0.1:")
    c = memcached.client()
    c.set("k", b"v")
    assert c.get("k") == b"v"
    assert memcached.command("get k") == "VALUE k 0 1\\r\\nv\\r\\nEND"
    assert memcached.command("set n 5 0 2", b"41") == "STORED"
    assert memcached.command("incr n 1") == "42"
    assert memcached.command("version").startswith("VERSION 1.6.")
    assert memcached.stats()["limit_maxbytes"] == str(64 * 1024 * 1024)  # the official image's default
    with pytest.raises(Exception, match="ERROR"):
        memcached.command("bogus")

def test_arguments_reach_memcached_and_reached_by_name(big, pods, net):
    stats = big.command("stats settings")
    assert "STAT maxbytes 100663296" in stats and "STAT item_size_max 2097152" in stats
    box = pods.run("busybox", ["sleep", "60"], network=net)
    res = box.exec(["sh", "-c", f"printf 'version\\\\r\\\\n' | nc -w 2 {big.network_host} 11211"])
    assert big.network_server == f"{big.name}:11211"
    assert res.output.startswith(b"VERSION 1.6."), res

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_an_empty_server(flushed, n):
    c = flushed.client()
    assert c.get("same") is None  # the other test's item is gone
    c.set("same", str(n).encode())
    assert c.get("same") == str(n).encode()

def test_pooled(pooled):
    assert pooled.command("version").startswith("VERSION ")
'''


def test_memcached_arguments_flush_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_mc=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=5)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "database"}, "isolation='database': use one of container, flush"),
    ({"isolation": "flush", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "memcached keeps its items in memory only"),
])
def test_memcached_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.memcached import memcached_container

    with pytest.raises(ValueError, match=message):
        memcached_container(**kwargs)
