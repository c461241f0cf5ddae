"""The official rabbitmq image's name through ``pods daemon --image-aliases official`` (issue 17):
testcontainers' own ``RabbitMqContainer`` runs unchanged on the stand-in built from the rabbitmq
recipe on first use, its RABBITMQ_DEFAULT_* variables taking effect."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("testcontainers.core.config")
import test_official_images as official

pika = pytest.importorskip("pika")

# the daemon with the preset on a root of its own (one for this module), testcontainers pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc = official.aliased, official.tc
try:
    RabbitMqContainer: Any = pytest.importorskip("testcontainers.community.rabbitmq").RabbitMqContainer
except pytest.skip.Exception:  # before 4.14
    RabbitMqContainer = pytest.importorskip("testcontainers.rabbitmq").RabbitMqContainer


def test_testcontainers_rabbitmq_3_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    with RabbitMqContainer("rabbitmq:3", username="tc", password="tc-secret", vhost="tcv") as mq:
        with pika.BlockingConnection(mq.get_connection_params()) as conn:
            ch = conn.channel()
            ch.queue_declare("q")
            ch.basic_publish("", "q", b"hello")
            assert ch.basic_get("q", auto_ack=True)[2] == b"hello"
        wrong = pika.ConnectionParameters(mq.get_container_host_ip(), int(mq.get_exposed_port(5672)),
                                          virtual_host="tcv", credentials=pika.PlainCredentials("tc", "wrong"))
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(wrong)
        # the broker takes connections a moment before it logs that line (under load, after our
        # connections above): it comes, as the official image's does
        deadline = time.monotonic() + 30
        while b"Server startup complete" not in mq.get_wrapped_container().logs():
            assert time.monotonic() < deadline, mq.get_wrapped_container().logs()[-3000:]
            time.sleep(0.2)
    log = aliased.log_text()
    assert "image alias: rabbitmq:3 -> pytest-pods/rabbitmq:3.10 (RabbitMQ 3.10 from Debian 12 (bookworm))" in log
