"""``pods run|create -v``, ``--volumes-from`` and ``pods rm -v`` as the docker CLI has them (issue 16):
a ``-v`` source that is an absolute path is a bind mount, any other a named volume (made on first
use, filled from the image), ``-v /PATH`` alone an anonymous volume that ``rm -v`` removes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from pytest_pods import Client
from pytest_pods.errors import PodsError

PodsCLI = Callable[..., CompletedProcess[str]]


@pytest.fixture(scope="module")
def seeded(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Scope: module. Depends: client. busybox with ``/data/seed``."""
    ctx = tmp_path_factory.mktemp("cliseed")
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN mkdir /data && echo seed > /data/seed\n")
    tag = f"test/cliseed-{uuid.uuid4().hex[:8]}:1"
    client.images.build(ctx, tag=tag)
    yield tag
    client.images.remove(tag, force=True)


@pytest.fixture
def vols(client: Client) -> Iterator[list[str]]:
    """Scope: function. Depends: client. Volume names the test makes, removed at the end."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            client.volumes.remove(n, force=True)
        except PodsError:
            pass


def new_volume(vols: list[str]) -> str:
    vols.append(f"tcv-{uuid.uuid4().hex[:10]}")
    return vols[-1]


def volume_names(client: Client) -> set[str]:
    return {v["Name"] for v in client.volumes.list()}


def anonymous_of(client: Client, cid: str) -> str:
    """The name of the volume mounted at /data (its data directory is ROOT/volumes/NAME/_data)."""
    (source,) = [b.split(":")[0] for b in client.containers.get(cid).state.get("binds") or []
                 if b.split(":")[1] == "/data"]
    return Path(source).parent.name


def test_named_volume_persists_across_runs_and_is_listed(pods_cli: PodsCLI, client: Client,
                                                         vols: list[str]) -> None:
    vol = new_volume(vols)
    pods_cli("run", "--rm", "--network", "none", "-v", f"{vol}:/data", "busybox", "sh", "-c",
             "echo kept > /data/f", check=True)
    assert vol in volume_names(client)
    out = pods_cli("run", "--rm", "--network", "none", "-v", f"{vol}:/data", "busybox", "cat", "/data/f", check=True)
    assert out.stdout == "kept\n"
    assert vol in volume_names(client)  # --rm keeps a named volume


def test_named_volume_gets_the_image_content_on_first_mount(pods_cli: PodsCLI, seeded: str, vols: list[str]) -> None:
    vol, bare = new_volume(vols), new_volume(vols)
    out = pods_cli("run", "--rm", "--network", "none", "-v", f"{vol}:/data", seeded, "cat", "/data/seed", check=True)
    assert out.stdout == "seed\n"
    out = pods_cli("run", "--rm", "--network", "none", "-v", f"{bare}:/data:nocopy", seeded, "ls", "-A", "/data",
                   check=True)
    assert out.stdout == ""


def test_rm_v_removes_the_anonymous_volume_and_rm_keeps_it(pods_cli: PodsCLI, client: Client,
                                                            vols: list[str]) -> None:
    kept = pods_cli("create", "-v", "/data", "busybox", "true", check=True).stdout.strip()
    gone = pods_cli("create", "-v", "/data", "busybox", "true", check=True).stdout.strip()
    kept_vol, gone_vol = anonymous_of(client, kept), anonymous_of(client, gone)
    vols += [kept_vol, gone_vol]
    assert kept_vol != gone_vol and {kept_vol, gone_vol} <= volume_names(client)
    pods_cli("rm", kept, check=True)
    pods_cli("rm", "-v", gone, check=True)
    names = volume_names(client)
    assert kept_vol in names
    assert gone_vol not in names


def test_run_rm_removes_the_anonymous_volume(pods_cli: PodsCLI, client: Client) -> None:
    before = volume_names(client)
    out = pods_cli("run", "--rm", "--network", "none", "-v", "/data", "busybox", "sh", "-c",
                   "echo x > /data/f && cat /data/f", check=True)
    assert out.stdout == "x\n"
    assert volume_names(client) - before == set()


def test_volumes_from_sees_the_volume_and_ro_refuses_writes(pods_cli: PodsCLI, name: str, vols: list[str]) -> None:
    vol = new_volume(vols)
    pods_cli("create", "--name", name, "-v", f"{vol}:/data", "busybox", "true", check=True)
    try:
        pods_cli("run", "--rm", "--network", "none", "--volumes-from", name, "busybox", "sh", "-c",
                 "echo shared > /data/f", check=True)
        out = pods_cli("run", "--rm", "--network", "none", "--volumes-from", f"{name}:ro", "busybox",
                       "cat", "/data/f", check=True)
        assert out.stdout == "shared\n"
        refused = pods_cli("run", "--rm", "--network", "none", "--volumes-from", f"{name}:ro", "busybox", "sh", "-c",
                           "echo no > /data/f")
        assert refused.returncode != 0
        assert "Read-only file system" in refused.stderr
    finally:
        pods_cli("rm", "-f", name)


@pytest.mark.parametrize("spec", [":x", "data:", "/a:/b:ro:rw", "vol:relative", "bad name:/x", "vol:/x:bogus",
                                  "/a:/b:ro,rw", "/data:ro", "relative"])
@pytest.mark.parametrize("verb", ["run", "create"])
def test_bad_volume_spec_exits_125_naming_it_and_makes_nothing(pods_cli: PodsCLI, client: Client, verb: str,
                                                                spec: str, vols: list[str]) -> None:
    vol = new_volume(vols)
    before = ({c["id"] for c in client.containers.states(all=True)}, volume_names(client))
    proc = pods_cli(verb, "-v", f"{vol}:/ok", "-v", spec, "busybox", "true")
    assert proc.returncode == 125, proc
    assert f"invalid volume specification {spec!r}" in proc.stderr
    assert "-v" in proc.stderr and "NAME:/PATH" in proc.stderr
    assert ({c["id"] for c in client.containers.states(all=True)}, volume_names(client)) == before


@pytest.mark.parametrize("value", ["", ":ro", "ctr:bogus", "ctr:ro:rw"])
def test_bad_volumes_from_exits_125_naming_the_flag(pods_cli: PodsCLI, value: str) -> None:
    proc = pods_cli("run", "--volumes-from", value, "busybox", "true")
    assert proc.returncode == 125, proc
    assert f"--volumes-from: invalid value {value!r}" in proc.stderr
    assert "CONTAINER[:ro|rw]" in proc.stderr


def test_volumes_from_a_missing_container_leaves_no_new_volume(pods_cli: PodsCLI, client: Client,
                                                                vols: list[str]) -> None:
    vol = new_volume(vols)
    before = volume_names(client)
    proc = pods_cli("run", "-v", f"{vol}:/data", "-v", "/anon", "--volumes-from", f"nosuch-{uuid.uuid4().hex[:8]}",
                    "busybox", "true")
    assert proc.returncode == 125, proc
    assert "nosuch" in proc.stderr
    assert volume_names(client) == before
