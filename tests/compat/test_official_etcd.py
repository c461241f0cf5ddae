"""etcd through ``pods daemon`` (issue 17). The official etcd images are another registry's
(``quay.io/coreos/etcd``, also ``gcr.io/etcd-development/etcd``) or a vendor's
(``bitnami/etcd``), never a Docker Hub library image, and the ``official`` preset aliases only
those ("Digests and other registries' names are never aliased"), so it names none; an explicit
alias (``--image-alias quay.io/coreos/etcd:v3.5.0=pytest-pods/etcd:3.4``) serves one, and
docker-py shows the conventions taking effect: quay.io's documented command
(``/usr/local/bin/etcd --name s1 --data-dir /etcd-data --listen-client-urls ...``), etcd's own
``ETCD_*`` variables (bitnami's way), ports 2379 and 2380, a user that is not root.

testcontainers-python has no etcd module (4.15), so there is no container class to run
unchanged. The images are not reachable here: their behaviour is written from their
documentation (etcd.io "Running etcd in containers", the bitnami/etcd README)."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_official_smtp as mail  # the daemon with explicit aliases
from daemon_helper import run_dir_base, wait_until

from pytest_pods import Client
from pytest_pods.client.aliases import RECIPE_IMAGES, ImageAliases

docker = pytest.importorskip("docker")

ETCD_IMAGE = RECIPE_IMAGES["etcd"]
QUAY = "quay.io/coreos/etcd:v3.5.0"
LABEL = "io.pytest-pods.test.official-etcd"


@pytest.fixture(scope="module")
def etcd_daemon(client: Client, debian: str, own_root: Callable[[str], Any]) -> Iterator[mail.MailDaemon]:
    """Scope: module. Depends on: client, debian, own_root. The daemon with
    ``quay.io/coreos/etcd:v3.5.0=pytest-pods/etcd:3.4`` on a root of its own, holding the
    recipe's image (built on the test root: a cache hit once built there) and debian:bookworm."""
    from pytest_pods.client.aliases import RECIPES

    client.images.build(RECIPES / "etcd", tag=ETCD_IMAGE)
    with own_root("pods-etcd-") as own, tempfile.NamedTemporaryFile(suffix=".tar", dir="/var/tmp") as tar:
        client.images.save([ETCD_IMAGE, debian], tar.name)
        own.images.load(tar.name)
        run = Path(tempfile.mkdtemp(prefix="pods-etcd-", dir=run_dir_base()))
        try:
            d = mail.MailDaemon(own.root, run, (f"{QUAY}={ETCD_IMAGE}", f"bitnami/etcd:3.4={ETCD_IMAGE}"))
            try:
                yield d
            finally:
                d.stop()
        finally:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def dc(etcd_daemon: mail.MailDaemon) -> Iterator[Any]:
    c = docker.DockerClient(base_url=etcd_daemon.host)
    try:
        yield c
    finally:
        for ctr in c.containers.list(all=True, filters={"label": LABEL}):
            ctr.remove(force=True)
        c.close()


def gateway(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, Any] = json.load(resp)
    return doc


def started(dc: Any, image: str, command: Any = None, env: dict[str, str] | None = None) -> tuple[Any, int]:
    """A container of ``image`` serving clients on 2379, and its host port."""
    ctr = dc.containers.run(image, command, name=f"pods-etcd-{uuid.uuid4().hex[:10]}", labels={LABEL: "1"},
                            environment=env or {}, ports={"2379/tcp": None}, detach=True)
    ctr.reload()
    port = int(ctr.attrs["NetworkSettings"]["Ports"]["2379/tcp"][0]["HostPort"])

    def answers() -> bool:
        try:
            gateway(port, "maintenance/status", {})
            return True
        except OSError:
            ctr.reload()
            assert ctr.status == "running", ctr.logs().decode(errors="replace")
            return False

    wait_until(answers, 60, f"etcd in {ctr.name} answering on 2379")
    return ctr, port


def put_get(port: int) -> bytes:
    key = base64.b64encode(b"k").decode()
    gateway(port, "kv/put", {"key": key, "value": base64.b64encode(b"v").decode()})
    return base64.b64decode(gateway(port, "kv/range", {"key": key})["kvs"][0]["value"])


def test_quay_coreos_etcd_by_explicit_alias_runs_its_documented_command(dc: Any, etcd_daemon: mail.MailDaemon) -> None:
    # etcd.io, "Running etcd in containers" (one member; NODE1 the container's own address)
    ctr, port = started(dc, QUAY, [
        "/usr/local/bin/etcd", "--data-dir", "/etcd-data", "--name", "node1",
        "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--listen-peer-urls", "http://0.0.0.0:2380",
        "--advertise-client-urls", "http://127.0.0.1:2379", "--listen-client-urls", "http://0.0.0.0:2379",
        "--initial-cluster", "node1=http://127.0.0.1:2380"])
    assert put_get(port) == b"v"
    assert [m["name"] for m in gateway(port, "cluster/member/list", {})["members"]] == ["node1"]
    assert b"ready to serve client requests" in ctr.logs()
    res = ctr.exec_run(["/usr/local/bin/etcdctl", "get", "k", "--print-value-only"])
    assert (res.exit_code, res.output.strip()) == (0, b"v"), res
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == ctr.exec_run(["id", "-u", "etcd"]).output.decode().strip() != "0"
    log = etcd_daemon.log.read_text()
    assert f"image alias: {QUAY} -> {ETCD_IMAGE}" in log, log


def test_etcd_variables_take_effect_as_on_bitnami(dc: Any) -> None:
    _, port = started(dc, "bitnami/etcd:3.4", env={
        "ALLOW_NONE_AUTHENTICATION": "yes", "ETCD_NAME": "etcd-a",
        "ETCD_ADVERTISE_CLIENT_URLS": "http://etcd-server:2379", "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379"})
    members = gateway(port, "cluster/member/list", {})["members"]
    assert [(m["name"], m["clientURLs"]) for m in members] == [("etcd-a", ["http://etcd-server:2379"])]
    assert put_get(port) == b"v"


def test_the_official_preset_names_no_etcd_image() -> None:
    for name in (QUAY, "quay.io/coreos/etcd", "gcr.io/etcd-development/etcd:v3.5.0", "bitnami/etcd:3.4", "etcd"):
        assert ImageAliases.parse(["official"]).target(name) is None


def test_testcontainers_has_no_etcd_container() -> None:
    pytest.skip("testcontainers-python has no etcd module (4.15: no testcontainers.etcd or "
                "testcontainers.community.etcd), so there is no container class to run unchanged")
