"""S3 through ``pods daemon`` (issue 17). The recipe is moto's server, so the name it stands in
for is moto's own image, ``motoserver/moto``: not an official (library) image, so the
``official`` preset names none; an explicit alias (``--image-alias
motoserver/moto=pytest-pods/s3:5.1``) serves it, and docker-py and boto3 show its contract
(``moto_server`` arguments after the image, ``MOTO_PORT``, port 5000, any key, the reset API)
taking effect.

``minio/minio`` is not aliased to the recipe: testcontainers' ``MinioContainer`` runs the
command ``server /data --address :9000`` (MinIO's own CLI), waits for ``GET
/minio/health/live`` (MinIO's health API, which moto does not have) and talks to it with the
``minio`` client and MinIO's credentials; it would wait out its timeout on moto, so it does not
run unchanged and the alias would only mislead. moto's image is not reachable here (no Docker
Hub): its behaviour is written from its documentation (docs.getmoto.org, "Server mode")."""

from __future__ import annotations

import shutil
import tempfile
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
boto3 = pytest.importorskip("boto3")

S3_IMAGE = RECIPE_IMAGES["s3"]
LABEL = "io.pytest-pods.test.official-s3"


@pytest.fixture(scope="module")
def moto_daemon(client: Client, debian: str, own_root: Callable[[str], Any]) -> Iterator[mail.MailDaemon]:
    """Scope: module. Depends on: client, debian, own_root. The daemon with
    ``motoserver/moto[:5.1.22]=pytest-pods/s3:5.1`` on a root of its own, holding the recipe's image
    (built on the test root: a cache hit once built there) and debian:bookworm."""
    from pytest_pods.client.aliases import RECIPES

    client.images.build(RECIPES / "s3", tag=S3_IMAGE)
    with own_root("pods-moto-") as own, tempfile.NamedTemporaryFile(suffix=".tar", dir="/var/tmp") as tar:
        client.images.save([S3_IMAGE, debian], tar.name)
        own.images.load(tar.name)
        run = Path(tempfile.mkdtemp(prefix="pods-moto-", dir=run_dir_base()))
        try:
            # an explicit alias names one tag: latest, and the version the recipe ships
            d = mail.MailDaemon(own.root, run, (f"motoserver/moto={S3_IMAGE}", f"motoserver/moto:5.1.22={S3_IMAGE}"))
            try:
                yield d
            finally:
                d.stop()
        finally:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def dc(moto_daemon: mail.MailDaemon) -> Iterator[Any]:
    c = docker.DockerClient(base_url=moto_daemon.host)
    try:
        yield c
    finally:
        for ctr in c.containers.list(all=True, filters={"label": LABEL}):
            ctr.remove(force=True)
        c.close()


def started(dc: Any, image: str, port: int, command: Any = None, env: dict[str, str] | None = None) -> tuple[Any, Any]:
    """A container of ``image`` answering S3 on ``port``, and boto3's S3 client on it."""
    ctr = dc.containers.run(image, command, name=f"pods-moto-{uuid.uuid4().hex[:10]}", labels={LABEL: "1"},
                            environment=env or {}, ports={f"{port}/tcp": None}, detach=True)
    ctr.reload()
    host_port = int(ctr.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{host_port}", region_name="us-east-1",
                      aws_access_key_id="anything", aws_secret_access_key="at-all")

    def answers() -> bool:
        try:
            s3.list_buckets()
            return True
        except Exception:
            ctr.reload()
            assert ctr.status == "running", ctr.logs().decode(errors="replace")
            return False

    wait_until(answers, 60, f"moto in {ctr.name} answering on {port}")
    return ctr, s3


def test_motoserver_moto_by_explicit_alias_serves_s3_on_5000(dc: Any, moto_daemon: mail.MailDaemon) -> None:
    ctr, s3 = started(dc, "motoserver/moto:5.1.22", 5000)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="cat.jpg", Body=b"meow")
    assert s3.get_object(Bucket="photos", Key="cat.jpg")["Body"].read() == b"meow"
    assert b"Running on" in ctr.logs()
    status = ctr.exec_run(["cat", "/proc/1/status"]).output.decode()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == ctr.exec_run(["id", "-u", "moto"]).output.decode().strip() != "0"
    log = moto_daemon.log.read_text()
    assert f"image alias: motoserver/moto:5.1.22 -> {S3_IMAGE}" in log, log


def test_moto_server_arguments_and_moto_port_take_effect(dc: Any) -> None:
    _, s3 = started(dc, "motoserver/moto", 5001, ["-p", "5001"])
    assert s3.list_buckets()["Buckets"] == []
    _, s3 = started(dc, "motoserver/moto", 5002, env={"MOTO_PORT": "5002"})
    s3.create_bucket(Bucket="env-port")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["env-port"]


def test_the_official_preset_names_no_s3_image() -> None:
    for name in ("minio/minio", "motoserver/moto", "localstack/localstack", "minio"):
        assert ImageAliases.parse(["official"]).target(name) is None


def test_testcontainers_minio_container_is_not_served_by_the_recipe() -> None:
    pytest.skip("minio/minio is not aliased to the moto recipe: MinioContainer runs MinIO's "
                "'server /data --address :9000' and waits for GET /minio/health/live, which moto has not")
