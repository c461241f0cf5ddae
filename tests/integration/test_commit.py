"""Snapshots (``pods commit``): a container's changes as an image, started again without a copy."""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client, wait
from pytest_pods.errors import ContainerNotFoundError, InvalidArgumentError

Pods = Callable[..., Any]


def layer_names(client: Client, ref: str) -> list[str]:
    img = client.images.get(ref)
    with tarfile.open(client.store.blob_path(img.layers[-1]["digest"])) as tf:
        return tf.getnames()


def test_commit_captures_changes_and_deletions_but_not_the_engines_mount_stubs(
        client: Client, name: str, tmp_path: Path) -> None:
    tag = f"test/snap-{uuid.uuid4().hex[:8]}:1"
    ctr = client.containers.run("busybox", ["sh", "-c", "echo data > /data.txt; rm /bin/vi; mkdir /srv; sleep 60"],
                                detach=True, network="none", name=name, volumes=[f"{tmp_path}/vol:/mnt/vol"])
    try:
        ctr.wait_ready(wait.command("test -d /srv"), timeout=5)
        img = ctr.commit(tag.split(":")[0], "1", message="after setup", changes=['CMD ["cat", "/data.txt"]'])
        assert ctr.status == "running"  # paused while read, then thawed
        names = layer_names(client, tag)
        assert "data.txt" in names and "bin/.wh.vi" in names and "srv" in names
        assert not any(n.startswith(("mnt", "proc", "sys", "dev")) for n in names), names
        out = client.containers.run(tag, remove=True, network="none")
        assert (out.exit_code, out.output) == (0, b"data\n")
        gone = client.containers.run(tag, ["sh", "-c", "test -e /bin/vi || echo gone"], remove=True, network="none")
        assert gone.output == b"gone\n"
        hist = client.images.inspect(tag)
        assert hist["Config"]["Cmd"] == ["cat", "/data.txt"]
        assert img.config["history"][-1]["comment"] == "after setup"
    finally:
        ctr.remove(force=True)
        client.images.remove(tag, force=True)


def test_a_container_from_a_snapshot_stacks_on_it_without_copying(client: Client) -> None:
    tag = f"test/snap-{uuid.uuid4().hex[:8]}:1"
    src = client.containers.run("busybox", ["sh", "-c", "head -c 4000000 /dev/zero > /big; sleep 60"], detach=True,
                                network="none")
    try:
        src.wait_ready(wait.command("test $(wc -c < /big) = 4000000"), timeout=10)
        img = src.commit(tag, stop=True)
        assert src.status == "exited"
        child = client.containers.create(tag, ["sleep", "60"], network="none")
        try:
            st = child.state
            assert st["lower_dirs"][0].endswith(img.diff_ids[-1].split(":")[1])  # the snapshot is a lower dir
            child.start()
            assert child.exec("wc -c < /big").output.strip() == b"4000000"
            upper = client.runtime.dir / child.id / "upper"
            assert not (upper / "big").exists()  # read through the overlay: nothing copied up
        finally:
            child.remove(force=True)
    finally:
        src.remove(force=True)
        client.images.remove(tag, force=True)


@pytest.mark.parametrize("args, needle", [
    (["commit", "no-such-container", "x:1"], "No such container: no-such-container"),
    (["commit", "-c", "RUN true", "{cid}", "x:1"], "RUN is not a valid change command"),
    (["commit", "-c", "CMD [bad", "{cid}", "x:1"], "bad JSON array"),
    (["commit", "{cid}", "Bad::Name"], "invalid reference format"),
])
def test_bad_commits_fail_cleanly_and_make_no_image(client: Client, pods_cli: Pods, args: list[str], needle: str) -> None:
    ctr = client.containers.run("busybox", ["sleep", "60"], detach=True, network="none")
    try:
        before = {i.id for i in client.images.list()}
        proc = pods_cli(*[a.format(cid=ctr.id) for a in args])
        assert proc.returncode == 125 and needle in proc.stderr, proc.stderr
        assert {i.id for i in client.images.list()} == before
        assert ctr.status == "running"
    finally:
        ctr.remove(force=True)


def test_commit_cli_prints_the_image_id(client: Client, pods_cli: Pods) -> None:
    tag = f"test/snap-{uuid.uuid4().hex[:8]}:cli"
    ctr = client.containers.run("busybox", ["sleep", "60"], detach=True, network="none")
    try:
        proc = pods_cli("commit", "-m", "msg", "-a", "me", ctr.name, tag, check=True)
        assert proc.stdout.strip() == client.images.get(tag).id
    finally:
        ctr.remove(force=True)
        client.images.remove(tag, force=True)


def test_commit_api_errors(client: Client) -> None:
    with pytest.raises(ContainerNotFoundError):
        client.containers.get("nope-" + uuid.uuid4().hex).commit("x")
    ctr = client.containers.run("busybox", ["sleep", "60"], detach=True, network="none")
    try:
        with pytest.raises(InvalidArgumentError):
            ctr.commit("x", changes=["FROM busybox"])
    finally:
        ctr.remove(force=True)
