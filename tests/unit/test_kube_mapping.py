"""The Client contract's mapping onto Kubernetes objects (issue 20: designed, not built): golden
manifests for the calls the plugin makes, and the refusals of what a Pod cannot carry. No API
server here (none runs on this machine, and a fake one would test nothing real)."""

from __future__ import annotations

import pytest

from pytest_pods.client import kube
from pytest_pods.errors import InvalidArgumentError

OWNER = kube.session_owner("r1a2b3", heartbeat="2026-12-06T20:00:00Z", ttl_seconds=60)
REF = {"apiVersion": "v1", "kind": "ConfigMap", "name": "pods-session-r1a2b3", "uid": "", "blockOwnerDeletion": True}


def test_the_session_owner_is_a_configmap_with_a_heartbeat() -> None:
    assert OWNER == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "pods-session-r1a2b3", "labels": {"pytest-pods.session": "r1a2b3"},
                     "annotations": {"pytest-pods/heartbeat": "2026-12-06T20:00:00Z",
                                     "pytest-pods/ttl-seconds": "60"}},
        "data": {"run": "r1a2b3"}}


def test_a_postgres_fixture_container_is_one_pod() -> None:
    pod = kube.pod_manifest("pods-r1a2b3_main_1.pg", "registry.example/pytest-pods/postgres:15",
                            ["postgres", "-c", "fsync=off"], owner=OWNER, environment={"POSTGRES_DB": "app"},
                            user="999:999", memory=256 << 20, cpus=0.5, labels={"pytest-pods.owner": "me"},
                            network="pods-net-1", ports=[5432], deadline_seconds=3600)
    assert pod == {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pods-r1a2b3-main-1-pg",
                     "labels": {"pytest-pods.owner": "me", "pytest-pods.session": "r1a2b3",
                                "pytest-pods.pod": "pods-r1a2b3-main-1-pg", "pytest-pods.network": "pods-net-1"},
                     "annotations": {"pytest-pods/name": "pods-r1a2b3_main_1.pg"},
                     "ownerReferences": [REF]},
        "spec": {"restartPolicy": "Never", "enableServiceLinks": False, "activeDeadlineSeconds": 3600,
                 "containers": [{"name": "main", "image": "registry.example/pytest-pods/postgres:15",
                                 "args": ["postgres", "-c", "fsync=off"],
                                 "env": [{"name": "POSTGRES_DB", "value": "app"}],
                                 "securityContext": {"runAsUser": 999, "runAsGroup": 999},
                                 "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
                                 "ports": [{"containerPort": 5432}]}]}}


def test_a_shell_command_entrypoint_and_capabilities() -> None:
    pod = kube.pod_manifest("w", "busybox", "echo hi", owner=OWNER, entrypoint=[], working_dir="/srv",
                            environment=["A=1", "B"], privileged=True, read_only=True,
                            cap_add=["CAP_NET_ADMIN"], cap_drop=["ALL"])
    (c,) = pod["spec"]["containers"]
    assert c == {"name": "main", "image": "busybox", "command": [], "args": ["/bin/sh", "-c", "echo hi"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": ""}], "workingDir": "/srv",
                 "securityContext": {"privileged": True, "readOnlyRootFilesystem": True,
                                     "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}
    assert "pytest-pods.network" not in pod["metadata"]["labels"]  # the default bridge is no fixture


def test_aliases_are_headless_services_and_a_network_is_a_policy() -> None:
    pod = kube.pod_manifest("db", "pg", owner=OWNER, network="backend", ports=[5432])
    services = kube.alias_services(pod, ["Postgres.Main", "db"], [5432], OWNER)
    assert [s["metadata"]["name"] for s in services] == ["db", "postgres-main"]
    assert all(s["spec"] == {"clusterIP": "None", "selector": {"pytest-pods.pod": "db"},
                             "ports": [{"name": "p5432", "port": 5432, "targetPort": 5432}]} for s in services)
    assert all(s["metadata"]["ownerReferences"] == [REF] for s in services)
    assert kube.network_policy("backend", OWNER)["spec"] == {
        "podSelector": {"matchLabels": {"pytest-pods.network": "backend"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pytest-pods.network": "backend"}}}]}]}


def test_names_become_dns_labels() -> None:
    assert kube.dns_name("My_App.1") == "my-app-1"
    long = kube.dns_name("x" * 100)
    assert len(long) == 63 and long.startswith("x" * 54 + "-") and long == kube.dns_name("x" * 100)
    assert kube.dns_name("x" * 100) != kube.dns_name("x" * 101)
    assert kube.quantity_bytes(64 << 20) == "64Mi" and kube.quantity_bytes(1000) == "1000"


@pytest.mark.parametrize("kwargs, words", [
    ({"pids_limit": 100}, "pids_limit: not on Kubernetes: a Pod has no per-container pid limit"),
    ({"shm_size": 1 << 27}, "shm_size: not on Kubernetes"),
    ({"devices": ["/dev/fuse"]}, "devices: not on Kubernetes"),
    ({"network": "host"}, "network='host': not on Kubernetes"),
    ({"user": "postgres"}, "user='postgres': on Kubernetes a Pod runs as a numeric uid"),
    ({"snapshot": "warm"}, "snapshot: not on Kubernetes: it has no Kubernetes equivalent here"),
])
def test_what_a_pod_cannot_carry_is_refused_by_name(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words.replace("(", r"\(").replace(")", r"\)")):
        kube.pod_manifest("c", "busybox", owner=OWNER, **kwargs)  # type: ignore[arg-type]
