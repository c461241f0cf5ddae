"""Volumes as Docker has them (issue 16): a new volume's first mount copies the image's content
there (owner and mode too), once; ``nocopy`` and bind mounts are not filled; image ``VOLUME``s
make anonymous volumes that ``rm -v`` removes; ``volumes_from`` mounts another container's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_pods import Client
from pytest_pods.errors import PodsError

DOCKERFILE = """FROM busybox
RUN mkdir -p /data/sub && echo seed > /data/seed && echo deep > /data/sub/deep && ln -s seed /data/link \\
 && chown -R 1000:1000 /data && chmod 0750 /data && chmod 0604 /data/seed
"""


@pytest.fixture(scope="module")
def seeded(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. Depends: client. An image with /data/seed owned by 1000 in a 0750 dir."""
    ctx = tmp_path_factory.mktemp("seeded")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    tag = f"test/volseed-{uuid.uuid4().hex[:8]}:1"
    client.images.build(ctx, tag=tag)
    yield tag
    client.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def with_volume(client: Client, tmp_path_factory: pytest.TempPathFactory, seeded: str) -> Iterator[str]:
    """Scope: module. Depends: seeded. The seeded image with ``VOLUME /data``."""
    ctx = tmp_path_factory.mktemp("withvol")
    (ctx / "Dockerfile").write_text(f"FROM {seeded}\nVOLUME /data\n")
    tag = f"test/volimg-{uuid.uuid4().hex[:8]}:1"
    client.images.build(ctx, tag=tag)
    yield tag
    client.images.remove(tag, force=True)


@pytest.fixture
def vol(client: Client) -> Iterator[str]:
    """Scope: function. Depends: client. A volume name, removed at the end."""
    name = f"tv-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        client.volumes.remove(name, force=True)
    except PodsError:
        pass


def run(client: Client, image: str, cmd: str, **kw: object) -> bytes:
    res = client.containers.run(image, ["sh", "-c", cmd], remove=True, network="none", **kw)  # type: ignore[arg-type]
    assert res.exit_code == 0, res.output
    return res.output


def test_a_new_named_volume_gets_the_images_content_owner_and_mode(client: Client, seeded: str, vol: str) -> None:
    out = run(client, seeded, "cat /data/seed /data/sub/deep; readlink /data/link; stat -c '%u %a' /data /data/seed",
              volumes=[f"{vol}:/data"])
    assert out == b"seed\ndeep\nseed\n1000 750\n1000 604\n"
    data = Path(client.volumes.get(vol)["Mountpoint"])
    assert (data / "seed").stat().st_uid != 0 or client.info().get("rootless")  # copied with its owner


def test_a_volume_with_content_is_not_filled_again(client: Client, seeded: str, vol: str) -> None:
    run(client, seeded, "echo mine > /data/seed; rm /data/sub/deep", volumes=[f"{vol}:/data"])
    out = run(client, seeded, "cat /data/seed; ls /data/sub | wc -l", volumes=[f"{vol}:/data"])
    assert out == b"mine\n0\n"
    run(client, seeded, "rm -rf /data/* /data/.[!.]* 2>/dev/null; true", volumes=[f"{vol}:/data"])
    assert run(client, seeded, "ls -A /data | wc -l", volumes=[f"{vol}:/data"]) == b"0\n"  # once, even emptied


def test_nocopy_gives_an_empty_volume(client: Client, seeded: str, vol: str) -> None:
    assert run(client, seeded, "ls -A /data | wc -l", volumes=[f"{vol}:/data:nocopy"]) == b"0\n"


def test_a_bind_mount_is_not_filled(client: Client, seeded: str, tmp_path: Path) -> None:
    assert run(client, seeded, "ls -A /data | wc -l", volumes=[f"{tmp_path}:/data"]) == b"0\n"
    assert list(tmp_path.iterdir()) == []


def test_a_bad_volume_mode_names_the_option(client: Client, seeded: str, vol: str) -> None:
    with pytest.raises(PodsError, match="invalid volume specification"):
        client.containers.create(seeded, ["true"], volumes=[f"{vol}:/data:bogus"], network="none")


def test_image_volume_is_an_anonymous_volume_that_rm_v_removes(client: Client, with_volume: str) -> None:
    before = {v["Name"] for v in client.volumes.list()}
    ctr = client.containers.create(with_volume, ["cat", "/data/seed"], network="none")
    try:
        new = [v for v in client.volumes.list() if v["Name"] not in before]
        assert len(new) == 1 and len(new[0]["Name"]) == 64
        assert (Path(new[0]["Mountpoint"]) / "seed").read_text() == "seed\n"
        ctr.start()
        assert ctr.wait() == 0 and ctr.logs() == b"seed\n"
    finally:
        ctr.remove(force=True, v=True)
    assert new[0]["Name"] not in {v["Name"] for v in client.volumes.list()}


def test_rm_without_v_keeps_the_anonymous_volume(client: Client, with_volume: str) -> None:
    before = {v["Name"] for v in client.volumes.list()}
    ctr = client.containers.create(with_volume, ["true"], network="none")
    ctr.remove(force=True, v=False)
    new = [v["Name"] for v in client.volumes.list() if v["Name"] not in before]
    assert len(new) == 1
    client.volumes.remove(new[0])


def test_a_named_volume_covers_an_image_volume(client: Client, with_volume: str, vol: str) -> None:
    before = {v["Name"] for v in client.volumes.list()}
    assert run(client, with_volume, "cat /data/seed", volumes=[f"{vol}:/data"]) == b"seed\n"
    assert {v["Name"] for v in client.volumes.list()} - before == {vol}


def test_volumes_from_sees_the_others_volume_and_ro_refuses_writes(client: Client, seeded: str, vol: str,
                                                                   tmp_path: Path) -> None:
    src = client.containers.create(seeded, ["true"], network="none", volumes=[f"{vol}:/data", f"{tmp_path}:/host"])
    try:
        (tmp_path / "h").write_text("bound\n")
        assert run(client, "busybox", "cat /data/seed /host/h; echo new > /data/new",
                   volumes_from=[src.id]) == b"seed\nbound\n"
        res = client.containers.run("busybox", ["sh", "-c", "cat /data/new && touch /data/x"], remove=True,
                                    network="none", volumes_from=[f"{src.name}:ro"])
        assert res.exit_code != 0 and res.output.startswith(b"new\n")
        assert b"Read-only file system" in res.stderr
        with pytest.raises(PodsError, match="volumes-from"):
            client.containers.create("busybox", ["true"], network="none", volumes_from=[f"{src.id}:bogus"])
    finally:
        src.remove(force=True)
