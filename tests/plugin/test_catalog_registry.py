"""The registry from the catalogue (issue 17): an empty registry per test, push and pull with
our client, htpasswd auth as the official registry:2 image's, reached by name on a user network."""

from __future__ import annotations

from typing import Any

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)


def test_registry_push_pull_auth_and_fresh_per_test(inner: Inner) -> None:
    inner.pytester.makepyfile(test_registry='''
        import pytest
        from pytest_pods import PodsError, container, network
        from pytest_pods.plugin.catalog.registry import registry_container

        net = network()
        private = registry_container(users={"alice": "s3cret"})
        named = registry_container(network="{net}")
        probe = container("busybox:latest", ["sleep", "300"], network="{net}")

        def test_push_and_pull(registry, pods):
            ref = registry.ref("tools/bb:1")
            pods.client.images.tag("busybox:latest", ref)
            pods.client.images.push(ref, insecure=True)
            assert registry.catalog() == ["tools/bb"]
            assert registry.tags("tools/bb") == ["1"]
            pods.client.images.remove(ref)
            pulled = pods.client.images.pull(ref, insecure=True)
            assert pulled.id == pods.client.images.get("busybox:latest").id
            pods.client.images.remove(ref)

        def test_the_next_test_has_an_empty_registry(registry):
            assert registry.catalog() == []
            assert registry.tags("tools/bb") == []

        def test_htpasswd_auth(private):
            assert private.catalog() == []  # as alice
            private.username = None
            with pytest.raises(PodsError, match="401"):
                private.catalog()

        def test_reached_by_name_on_a_user_network(named, probe):
            res = probe.exec(["wget", "-q", "-O", "-", f"{named.network_url}/v2/"])
            assert (res.exit_code, res.output.strip()) == (0, b"{}")
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=4)
    assert inner.left(sid) == []
