"""The RabbitMQ service of the catalogue (issue 17): Debian 12's broker with the official image's
contract, a broker per test or a vhost per test that the broker enforces, reached by name."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import pika, pytest
from pytest_pods import network
from pytest_pods.plugin.catalog.rabbitmq import rabbitmq_container

net = network(scope="module")
own = rabbitmq_container(environment={"RABBITMQ_DEFAULT_USER": "app", "RABBITMQ_DEFAULT_PASS": "s3cret",
                                      "RABBITMQ_DEFAULT_VHOST": "shop"}, network=net)
per_vhost = rabbitmq_container(isolation="vhost")

def test_contract_variables_and_reached_by_name(own, pods, net):
    assert own.url.startswith("amqp://app:s3cret@127.0.0.1:") and own.url.endswith("/shop")
    with own.client() as conn:
        conn.channel().queue_declare("orders")
    assert "orders" in own.ctl("list_queues", "-p", "shop", "name")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.ConnectionParameters(own.host, own.port, credentials=pika.PlainCredentials("guest", "guest")))
    # another container on the network reaches the broker by its name
    # (a wrong protocol header: the broker answers with the AMQP 0-9-1 header and closes)
    box = pods.run("busybox", ["sleep", "60"], network=net)
    res = box.exec(["sh", "-c", f"echo hello-amqp | nc -w 5 {own.network_host} 5672"])
    assert own.network_host == own.name
    assert res.output.startswith(b"AMQP"), res

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_its_own_vhost(per_vhost, n):
    with per_vhost.client() as conn:
        ch = conn.channel()
        ch.queue_declare("same")
        assert ch.queue_declare("same", passive=True).method.message_count == 0
        ch.basic_publish("", "same", f"from {n}".encode())
    with per_vhost.client() as conn:
        assert conn.channel().basic_get("same", auto_ack=True)[2] == f"from {n}".encode()
    # the broker refuses this test's user any other vhost
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(pika.ConnectionParameters(per_vhost.host, per_vhost.port, virtual_host="/",
                                credentials=pika.PlainCredentials(per_vhost.user, per_vhost.password)))
'''


def test_rabbitmq_contract_vhost_isolation_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the broker's own behaviour (the image build is the slow part)")
    inner.pytester.makepyfile(test_rmq=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=3)
    assert inner.left(sid) == []
