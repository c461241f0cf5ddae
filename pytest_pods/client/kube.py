"""The Client contract on Kubernetes, designed (issue 20): the pure mapping from a
``containers.create`` call to the objects a ``KubeClient`` would send, golden-tested, with no API
server behind it yet (README: "Kubernetes, designed").

A container is a Pod with one container (``restartPolicy: Never``: a Pod cannot exist unstarted,
so ``create`` only plans and ``start`` sends). A network fixture is a label; each aliased
container gets a headless Service so that its aliases resolve, and the network's pods may talk
only to each other (a NetworkPolicy). Every object a session makes names the session's owner (a
ConfigMap renewed as a heartbeat) in ``ownerReferences``, so deleting the owner deletes them all.
What Kubernetes cannot carry (snapshots, pid limits, host binds, ...) is refused by name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_pods.errors import InvalidArgumentError

SESSION_LABEL = "pytest-pods.session"
NETWORK_LABEL = "pytest-pods.network"
POD_LABEL = "pytest-pods.pod"  # what a container's Services select
HEARTBEAT_ANNOTATION = "pytest-pods/heartbeat"
MAX_NAME = 63  # a DNS-1123 label

#: create() arguments a Pod cannot carry, and why (the README's "cannot carry over")
UNSUPPORTED = {
    "pids_limit": "a Pod has no per-container pid limit",
    "shm_size": "a Pod's /dev/shm is the node's (an emptyDir with medium Memory can stand in)",
    "devices": "a Pod gets host devices only through device plugins",
    "volumes_from": "a Pod shares volumes by name, not from another Pod",
    "ulimits": "a Pod's limits are the node's",
    "links": "legacy links have no Kubernetes object",
}


def dns_name(name: str) -> str:
    """A container name as a DNS-1123 label: lower case, ``_`` and ``.`` as ``-``, at most 63
    characters (a long one keeps its start and gets 8 hex digits of its hash)."""
    out = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "pod"
    if len(out) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        out = out[:MAX_NAME - 9].rstrip("-") + "-" + digest
    return out


def quantity_bytes(n: int) -> str:
    """Bytes as a Kubernetes quantity (``64Mi`` when it divides, else the plain number)."""
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The reference every object of a session carries to the session's owner ConfigMap."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "blockOwnerDeletion": True}


def session_owner(run: str, heartbeat: str, ttl_seconds: int) -> dict[str, Any]:
    """The per-session owner: deleting it deletes every Pod and Service of the session; its
    heartbeat annotation is renewed every few seconds, and a controller (or a CronJob) deletes
    owners whose heartbeat is older than the TTL."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": dns_name(f"pods-session-{run}"), "labels": {SESSION_LABEL: run},
                         "annotations": {HEARTBEAT_ANNOTATION: heartbeat,
                                         "pytest-pods/ttl-seconds": str(ttl_seconds)}},
            "data": {"run": run}}


def pod_manifest(name: str, image: str, command: Sequence[str] | str | None = None, *,
                 owner: Mapping[str, Any], entrypoint: Sequence[str] | None = None,
                 environment: Mapping[str, str] | Sequence[str] | None = None, working_dir: str | None = None,
                 user: str | None = None, memory: int | None = None, cpus: float | None = None,
                 labels: Mapping[str, str] | None = None, network: str = "bridge", privileged: bool = False,
                 read_only: bool = False, cap_add: Sequence[str] = (), cap_drop: Sequence[str] = (),
                 ports: Sequence[int] = (), deadline_seconds: int | None = None,
                 **unsupported: Any) -> dict[str, Any]:
    """The Pod for ``containers.create(image, command, name=name, ...)``.

    :raises InvalidArgumentError: an argument a Pod cannot carry (named, with why), a user that
        is not numeric (a Pod runs as a uid), ``network="host"``
    """
    given = {k: v for k, v in unsupported.items() if v not in (None, (), [], {}, "", 0, False)}
    for key in sorted(given):
        why = UNSUPPORTED.get(key, "it has no Kubernetes equivalent here")
        raise InvalidArgumentError(f"{key}: not on Kubernetes: {why}")
    if network == "host":
        raise InvalidArgumentError("network='host': not on Kubernetes: a test Pod does not share the node's network")
    if isinstance(command, str):
        command = ["/bin/sh", "-c", command]
    env = (list(environment.items()) if isinstance(environment, Mapping)
           else [tuple(e.split("=", 1)) if "=" in e else (e, "") for e in environment or []])
    container: dict[str, Any] = {"name": "main", "image": image}
    if entrypoint is not None:
        container["command"] = list(entrypoint)
    if command is not None:
        container["args"] = list(command)
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env]
    if working_dir:
        container["workingDir"] = working_dir
    security: dict[str, Any] = {}
    if user is not None:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise InvalidArgumentError(f"user={user!r}: on Kubernetes a Pod runs as a numeric uid[:gid]")
        security["runAsUser"] = int(uid)
        if gid:
            security["runAsGroup"] = int(gid)
    if privileged:
        security["privileged"] = True
    if read_only:
        security["readOnlyRootFilesystem"] = True
    if cap_add or cap_drop:
        security["capabilities"] = {k: [c.removeprefix("CAP_") for c in v]
                                    for k, v in (("add", cap_add), ("drop", cap_drop)) if v}
    if security:
        container["securityContext"] = security
    limits = {**({"memory": quantity_bytes(memory)} if memory else {}),
              **({"cpu": f"{round(cpus * 1000)}m"} if cpus else {})}
    if limits:
        container["resources"] = {"limits": limits}
    if ports:
        container["ports"] = [{"containerPort": int(p)} for p in ports]
    pod_labels = {**dict(labels or {}), SESSION_LABEL: owner["metadata"]["labels"][SESSION_LABEL],
                  POD_LABEL: dns_name(name),
                  **({NETWORK_LABEL: dns_name(network)} if network not in ("bridge", "none") else {})}
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                            "enableServiceLinks": False}
    if deadline_seconds:
        spec["activeDeadlineSeconds"] = deadline_seconds
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": dns_name(name), "labels": pod_labels,
                         "annotations": {"pytest-pods/name": name},
                         "ownerReferences": [owner_reference(owner)]},
            "spec": spec}


def alias_services(pod: Mapping[str, Any], aliases: Sequence[str], ports: Sequence[int],
                   owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One headless Service per alias (and the Pod's own name), selecting that Pod, so that
    ``{db.name}`` and the network aliases resolve from the network's other Pods."""
    name = pod["metadata"]["name"]
    out = []
    for alias in dict.fromkeys([name, *(dns_name(a) for a in aliases)]):
        out.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": alias, "labels": dict(pod["metadata"]["labels"]),
                                 "ownerReferences": [owner_reference(owner)]},
                    "spec": {"clusterIP": "None", "selector": {POD_LABEL: name},
                             "ports": [{"name": f"p{p}", "port": int(p), "targetPort": int(p)} for p in ports]}})
    return out


def network_policy(network: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    """A network fixture: its Pods take traffic only from each other (and DNS goes out)."""
    label = dns_name(network)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"pods-net-{label}", "ownerReferences": [owner_reference(owner)]},
            "spec": {"podSelector": {"matchLabels": {NETWORK_LABEL: label}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {NETWORK_LABEL: label}}}]}]}}
