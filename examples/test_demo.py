"""A tour of the engine in a pytest run: services, exec, limits, a real Debian userland."""

from __future__ import annotations

import urllib.request

import pytest

from pytest_pods import Client, PodsError, Container


def test_http_service_in_a_container(web: Container) -> None:
    # `web` is ready (its readiness check got the page), so there is nothing to retry here.
    body = urllib.request.urlopen(web.url(80, "/index.html"), timeout=5).read()
    assert b"pytest-pods container" in body
    assert web.exec(["sh", "-c", "ps | grep -c httpd"]).exit_code == 0
    assert web.exec(["touch", "/www/x"]).exit_code != 0  # read-only mount and root


def test_each_container_starts_fresh(client: Client) -> None:
    first = client.containers.run("busybox", ["sh", "-c", "echo 1 > /state; cat /state"], remove=True)
    second = client.containers.run("busybox", ["cat", "/state"], remove=True)
    assert first.output == b"1\n"
    assert second.exit_code == 1


def test_memory_limit_is_enforced(client: Client) -> None:
    try:
        c = client.containers.create("busybox", ["sh", "-c", 'x=$(head -c 100000000 /dev/zero | tr "\\0" a)'],
                                     memory="32m")
    except PodsError as exc:  # rootless with no delegated cgroup v2: refused, saying how to get one
        pytest.skip(str(exc))
    try:
        if "io.pytest-pods.limits-dropped" in c.labels:
            pytest.skip("rootless, PODS_IGNORE_LIMITS: the engine dropped the limit, so nothing enforces it")
        c.start()
        assert c.wait(timeout=30) == 137
        assert c.inspect()["State"]["OOMKilled"]
    finally:
        c.remove(force=True)


def test_debian_userland(client: Client) -> None:
    r = client.containers.run("debian:bookworm", ["bash", "-c", "source /etc/os-release; echo $VERSION_CODENAME"],
                              remove=True)
    assert r.output == b"bookworm\n"
