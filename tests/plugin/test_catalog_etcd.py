"""The etcd service of the catalogue (issue 17): Debian 12's etcd-server 3.4 with the official
images' conventions, a server per test or one shared with a key prefix per test, reached by
name, pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import base64, json
import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.etcd import etcd_container

net = network(scope="module")
named = etcd_container(command=["--name", "n1", "--auto-compaction-retention", "1"],
                       environment={"ETCD_ADVERTISE_CLIENT_URLS": "http://etcd.example:2379"}, network=net)
prefixed = etcd_container(isolation="prefix")
pooled = etcd_container(pool=1)

def test_plain_server_put_get_and_the_gateway(etcd):
    assert etcd.url.startswith("http://127.0.0.1:") and etcd.prefix == ""
    etcd.put("feature/x", "on")
    etcd.put(b"bin", bytes([0, 255]))
    assert etcd.get("feature/x") == b"on" and etcd.get(b"bin") == bytes([0, 255])
    assert etcd.get("missing") is None
    assert etcd.keys() == ["bin", "feature/x"] and etcd.keys("feature/") == ["feature/x"]
    assert etcd.delete("feature/x") == 1 and etcd.get("feature/x") is None
    res = etcd.container.exec(["etcdctl", "get", "bin", "--print-value-only", "--hex"])
    assert res.exit_code == 0, res
    assert etcd.container.exec(["id", "-un"]).output.strip() == b"etcd"
    with pytest.raises(PodsError, match="etcd /v3/kv/range"):
        etcd.api("kv/range", {"key": "not base64!"})
    with pytest.raises(ValueError, match="empty key"):
        etcd.put("", "v")

def test_arguments_and_variables_reach_etcd_and_reached_by_name(named, pods, net):
    members = named.api("cluster/member/list", {})["members"]
    assert [m["name"] for m in members] == ["n1"]
    assert members[0]["clientURLs"] == ["http://etcd.example:2379"]
    named.put("k", "by-name")
    assert named.network_url == f"http://{named.name}:2379"
    box = pods.run("busybox", ["sleep", "60"], network=net)
    body = json.dumps({"key": base64.b64encode(b"k").decode()})
    res = box.exec(["wget", "-qO-", "--header", "Content-Type: application/json", "--post-data", body,
                    f"{named.network_url}/v3/kv/range"])
    assert res.exit_code == 0, res
    assert base64.b64decode(json.loads(res.output)["kvs"][0]["value"]) == b"by-name"

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_a_prefix_of_its_own(prefixed, n):
    assert prefixed.prefix.startswith("test-") and prefixed.prefix.endswith("/")
    assert prefixed.get("same") is None and prefixed.keys() == []  # the other test's keys are gone
    prefixed.put("same", str(n))
    assert prefixed.get("same") == str(n).encode()
    kvs = prefixed.api("kv/range", {"key": base64.b64encode(prefixed.key("same").encode()).decode()})["kvs"]
    assert len(kvs) == 1
    # the whole server holds this test's key only: the last test's prefix was deleted
    everything = prefixed.api("kv/range", {"key": "AA==", "range_end": "AA==", "keys_only": True})
    assert [base64.b64decode(kv["key"]).decode() for kv in everything["kvs"]] == [prefixed.key("same")]

def test_pooled(pooled):
    pooled.put("k", "v")
    assert pooled.get("k") == b"v"
'''


def test_etcd_arguments_prefix_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_etcd=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=5)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "namespace"}, "isolation='namespace': use one of container, prefix"),
    ({"isolation": "prefix", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "not taken consistently"),
])
def test_etcd_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.etcd import etcd_container

    with pytest.raises(ValueError, match=message):
        etcd_container(**kwargs)


def test_range_end_of_a_prefix() -> None:
    from pytest_pods.plugin.catalog.etcd import _range_end

    assert _range_end(b"test-1/") == b"test-10"
    assert _range_end(b"a\xff") == b"b"
    assert _range_end(b"\xff\xff") == b"\0"
