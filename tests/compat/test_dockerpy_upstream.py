"""What docker-py's own integration suite (tests/integration of docker/docker-py 7.1) found where
``pods daemon`` answered otherwise than dockerd, each checked here in our own words with docker-py
on ``pods daemon`` and on the reference dockerd (``@both_engines``), so the expected outcome is
Docker's.

Volumes of a stopped container in ``docker cp``'s archive routes; an exec's pty and its stream's
framing (the exec's Tty and the start's are two things); an exec's detach keys. A repeated query
parameter (Go reads the first: docker-py's Dockerfile from outside the context; commit's changes,
each). Endpoints: a MAC address, link-local addresses, an IPv6 address on a network without IPv6,
what a created container's endpoint shows, the aliases of API < 1.45. An update's CPU shares in
inspect; a bind's propagation. A volume created without a name is anonymous (a default prune takes it). A hijacked stream's first
bytes reach docker-py apart from the response's head (it loses what it reads along with the head).
"""

from __future__ import annotations

import io
import socket
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from daemon_helper import wait_until
from dockerd_helper import both_engines

from pytest_pods.engine import rootless

dockerpy = pytest.importorskip("docker")


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar(chunks: Iterator[bytes]) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture
def made(docker_client: Any) -> Iterator[list[str]]:
    """Scope: function. Depends on: docker_client. Containers the test made: removed at the end
    with their anonymous volumes (``rm -fv``), which carry no label to find them by."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        try:
            docker_client.api.remove_container(cid, force=True, v=True)
        except dockerpy.errors.NotFound:
            pass


# -- docker cp and a stopped container's volumes ---------------------------------------------------
@both_engines
def test_archive_of_an_exited_container_reaches_into_its_anonymous_volume(docker_client: Any, made: list[str],
                                                                          labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", ["sh", "-c", "printf kept > /data/note"], volumes=["/data"],
                               labels=labels)
    made.append(ctr["Id"])
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    stream, stat = api.get_archive(ctr, "/data/note")
    assert (stat["name"], stat["size"]) == ("note", 4)
    assert untar(stream) == {"note": b"kept"}
    stream, _ = api.get_archive(ctr, "/data")
    assert untar(stream) == {"data/note": b"kept"}


@both_engines
def test_files_put_into_a_created_containers_volume_are_there_when_it_runs(docker_client: Any, made: list[str],
                                                                          labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", ["sh", "-c", "cat /data/in /data/sub/deeper"], volumes=["/data"],
                               labels=labels)
    made.append(ctr["Id"])
    assert api.put_archive(ctr, "/data", tar_of({"in": b"one\n", "sub/deeper": b"two\n"})) is True
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    assert api.logs(ctr) == b"one\ntwo\n"
    # the volume, not the image's directory under it, holds them: a container that mounts it sees them
    vol = next(m["Name"] for m in api.inspect_container(ctr)["Mounts"] if m["Destination"] == "/data")
    other = api.create_container("busybox", ["cat", "/v/in"], labels=labels,
                                 host_config=api.create_host_config(binds=[f"{vol}:/v:ro"]))
    made.insert(0, other["Id"])  # removed before the container whose volume it mounts
    api.start(other)
    assert api.wait(other)["StatusCode"] == 0
    assert api.logs(other) == b"one\n"


# -- exec: the pty, the stream's framing, detach keys ----------------------------------------------
@pytest.fixture
def sleeper(docker_client: Any, made: list[str], labels: dict[str, str]) -> str:
    """Scope: function. A running busybox container (``cat`` on an open stdin): its ID."""
    ctr = docker_client.api.create_container("busybox", "cat", stdin_open=True, labels=labels)
    made.append(ctr["Id"])
    docker_client.api.start(ctr)
    return str(ctr["Id"])


@pytest.fixture
def sleeper_factory(docker_client: Any, made: list[str], labels: dict[str, str]) -> Any:
    """Scope: function. ``sleeper_factory(**create_kwargs)``: a started busybox ``sleep 300``: its ID."""
    def make(**kwargs: Any) -> str:
        ctr = docker_client.api.create_container("busybox", ["sleep", "300"], labels=labels, **kwargs)
        made.append(ctr["Id"])
        docker_client.api.start(ctr)
        return str(ctr["Id"])
    return make


TWO_LINES = ["sh", "-c", "echo out; sleep 0.3; echo err >&2"]


@both_engines
def test_a_tty_exec_started_without_tty_sends_the_ptys_output_in_stdout_frames(docker_client: Any,
                                                                               sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, TWO_LINES, tty=True)
    assert api.exec_start(ex, demux=True) == (b"out\r\nerr\r\n", None)  # a pty's line ends, all on stdout
    # a start with no body at all (Tty false) frames it too
    ex = api.exec_create(sleeper, ["echo", "hi"], tty=True)
    resp = api._post_json(api._url("/exec/{0}/start", ex["Id"]), data={})
    assert resp.status_code == 200
    assert resp.content == b"\x01\x00\x00\x00\x00\x00\x00\x04hi\r\n"


@both_engines
def test_a_tty_exec_started_with_tty_streams_raw(docker_client: Any, sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, TWO_LINES, tty=True)
    assert api.exec_start(ex, tty=True) == b"out\r\nerr\r\n"
    ex = api.exec_create(sleeper, TWO_LINES)  # no pty: the stream's two, framed apart
    assert api.exec_start(ex, demux=True) == (b"out\n", b"err\n")


@both_engines
@pytest.mark.parametrize("keys", [None, "ctrl-x,y"])
def test_detach_keys_typed_into_a_tty_exec_end_the_attach_and_its_stdin(docker_client: Any, sleeper: str,
                                                                        keys: str | None) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, "cat", stdin=True, tty=True, detach_keys=keys)
    sock = api.exec_start(ex, tty=True, socket=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    try:
        raw.settimeout(10)
        raw.sendall(b"echo me\n")
        seen = b""
        while seen.count(b"echo me\r\n") < 2:  # the pty's echo, then cat's
            seen += raw.recv(4096)
        raw.sendall(b"\x10\x11" if keys is None else b"\x18y")  # ctrl-p ctrl-q, or ctrl-x y
        rest = b""
        while chunk := raw.recv(4096):  # the daemon says why and closes the stream
            rest += chunk
        assert rest == b"exec attach failed: error on attach stdin: read escape sequence\r\n"
    finally:
        raw.close()
    # its stdin ended with the attach: cat reads its end and exits
    wait_until(lambda: not api.exec_inspect(ex)["Running"], 10, "the detached exec's end")


@both_engines
def test_an_exec_that_cannot_start_says_why_on_its_stdout(docker_client: Any, sleeper: str) -> None:
    api = docker_client.api
    ex = api.exec_create(sleeper, ["no-such-command"])
    out, err = api.exec_start(ex, demux=True)
    assert err is None
    assert b"no-such-command" in out and b"executable file not found in $PATH" in out and out.endswith(b"\r\n")
    # Docker since API 1.42 gives exec start errors the container start's codes: 127; 20.10 answered 126
    api_version = tuple(int(x) for x in docker_client.version()["ApiVersion"].split("."))
    assert api.exec_inspect(ex)["ExitCode"] == (127 if api_version > (1, 41) else 126)


@both_engines
def test_invalid_detach_keys_are_refused_at_exec_create(docker_client: Any, sleeper: str) -> None:
    with pytest.raises(dockerpy.errors.APIError) as info:
        docker_client.api.exec_create(sleeper, "cat", stdin=True, tty=True, detach_keys="ctrl-1")
    assert info.value.status_code in (400, 500)
    assert "Invalid escape keys (ctrl-1) provided" in str(info.value)


# -- repeated query parameters: build's dockerfile, commit's changes --------------------------------
@pytest.fixture
def image_names(docker_client: Any) -> Iterator[list[str]]:
    """Scope: function. Depends on: docker_client. Images the test tagged: removed at the end."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            docker_client.api.remove_image(n, force=True)
        except dockerpy.errors.NotFound:
            pass


@both_engines
def test_a_dockerfile_from_outside_the_context_builds(docker_client: Any, image_names: list[str],
                                                      made: list[str], labels: dict[str, str], tmp_path: Any) -> None:
    # docker-py sends it inside the context under a random name: dockerfile=NAME&dockerfile=CONTENT
    ctx, elsewhere = tmp_path / "ctx", tmp_path / "elsewhere"
    ctx.mkdir()
    elsewhere.mkdir()
    (ctx / "data.txt").write_text("from the context\n")
    (elsewhere / "Dockerfile").write_text("FROM busybox\nCOPY data.txt /srv/\nCMD [\"cat\", \"/srv/data.txt\"]\n")
    tag = f"pods-dpy-outside-{uuid.uuid4().hex[:8]}"
    image_names.append(tag)
    lines = list(docker_client.api.build(path=str(ctx), dockerfile=str(elsewhere / "Dockerfile"), tag=tag,
                                         decode=True, rm=True))
    assert not [ln for ln in lines if "error" in ln], lines
    assert lines[-1] == {"stream": f"Successfully tagged {tag}:latest\n"}  # the tag in full
    ctr = docker_client.api.create_container(tag, labels=labels)
    made.append(ctr["Id"])
    docker_client.api.start(ctr)
    docker_client.api.wait(ctr)
    assert docker_client.api.logs(ctr) == b"from the context\n"


@both_engines
def test_commit_applies_each_change_it_is_given(docker_client: Any, image_names: list[str], made: list[str],
                                                labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", ["touch", "/made"], labels=labels)
    made.append(ctr["Id"])
    api.start(ctr)
    api.wait(ctr)
    tag = f"pods-dpy-commit-{uuid.uuid4().hex[:8]}"
    image_names.append(tag)
    api.commit(ctr["Id"], repository=tag, changes=["EXPOSE 8000", 'CMD ["sh"]', "ENV A=1\nENV B=2"])
    cfg = api.inspect_image(tag)["Config"]
    assert "8000/tcp" in cfg["ExposedPorts"]
    assert cfg["Cmd"] == ["sh"]
    assert {"A=1", "B=2"} <= set(cfg["Env"])


# -- endpoints --------------------------------------------------------------------------------------
@pytest.fixture
def network(docker_client: Any, labels: dict[str, str]) -> str:
    """Scope: function. A user network of the test's own (teardown: ``labels``): its name."""
    name = f"pods-dpy-{uuid.uuid4().hex[:8]}"
    docker_client.networks.create(name, labels=labels)
    return name


def ip_addr(api: Any, ctr: Any) -> str:
    ex = api.exec_create(ctr, ["ip", "addr", "show", "eth0"])
    return str(api.exec_start(ex).decode())


@both_engines
def test_a_mac_address_given_at_create_is_the_interfaces(docker_client: Any, sleeper_factory: Any) -> None:
    api = docker_client.api
    ctr = sleeper_factory(mac_address="02:42:ac:11:00:0a")
    assert api.inspect_container(ctr)["NetworkSettings"]["MacAddress"] == "02:42:ac:11:00:0a"
    assert "link/ether 02:42:ac:11:00:0a " in ip_addr(api, ctr)


def test_a_mac_address_that_is_not_one_is_refused_at_create(daemon: Any, docker_client: Any,
                                                            labels: dict[str, str]) -> None:
    """Ours only: current dockerd checks an endpoint's MAC address when the container is created
    (its validateEndpointSettings); the reference dockerd (20.10) still takes this create."""
    with pytest.raises(dockerpy.errors.APIError) as info:
        docker_client.api.create_container("busybox", "true", mac_address="02:42:zz", labels=labels)
    assert info.value.status_code == 400
    assert "invalid MAC address" in str(info.value) and "02:42:zz" in str(info.value)


@both_engines
def test_link_local_ips_are_shown_as_a_list_and_put_on_the_interface(docker_client: Any,
                                                                     sleeper_factory: Any) -> None:
    api = docker_client.api
    ctr = sleeper_factory(networking_config=api.create_networking_config(
        {"bridge": api.create_endpoint_config(link_local_ips=["169.254.8.8"])}),
        host_config=api.create_host_config(network_mode="bridge"))
    ep = api.inspect_container(ctr)["NetworkSettings"]["Networks"]["bridge"]
    assert ep["IPAMConfig"] == {"LinkLocalIPs": ["169.254.8.8"]}
    assert "inet 169.254.8.8/16 " in ip_addr(api, ctr)


@both_engines
def test_an_ipv6_address_on_a_network_without_ipv6_is_kept_and_not_assigned(docker_client: Any,
                                                                            labels: dict[str, str],
                                                                            sleeper_factory: Any) -> None:
    api = docker_client.api
    net = f"pods-dpy-v6-{uuid.uuid4().hex[:8]}"
    api.create_network(net, labels=labels, ipam=dockerpy.types.IPAMConfig(
        pool_configs=[dockerpy.types.IPAMPool(subnet="2001:db8:77::/64")]))
    assert api.inspect_network(net)["EnableIPv6"] is False
    ctr = sleeper_factory(host_config=api.create_host_config(network_mode=net),
                          networking_config=api.create_networking_config(
                              {net: api.create_endpoint_config(ipv6_address="2001:db8:77::f00d")}))
    ep = api.inspect_container(ctr)["NetworkSettings"]["Networks"][net]
    assert ep["IPAMConfig"] == {"IPv6Address": "2001:db8:77::f00d"}
    assert ep["GlobalIPv6Address"] == ""
    assert "2001:db8:77::f00d" not in ip_addr(api, ctr)


@both_engines
def test_a_created_containers_endpoint_shows_what_it_was_given(docker_client: Any, network: str,
                                                              made: list[str], labels: dict[str, str]) -> None:
    api = docker_client.api
    ctr = api.create_container("busybox", "sleep 60", labels=labels, host_config=api.create_host_config(
        network_mode=network), networking_config=api.create_networking_config(
        {network: api.create_endpoint_config(aliases=["web"], driver_opt={"opt.one": "1"})}))
    made.append(ctr["Id"])
    ep = api.inspect_container(ctr)["NetworkSettings"]["Networks"][network]
    assert (ep["DriverOpts"], ep["EndpointID"], ep["IPAddress"]) == ({"opt.one": "1"}, "", "")
    assert "web" in ep["Aliases"]
    api.start(ctr)
    ep = api.inspect_container(ctr)["NetworkSettings"]["Networks"][network]
    assert ep["DriverOpts"] == {"opt.one": "1"} and ep["IPAddress"]


@both_engines
def test_api_before_1_45_lists_the_short_id_among_a_running_containers_aliases(
        docker_engine: Any, docker_client: Any, network: str, made: list[str], labels: dict[str, str]) -> None:
    old = dockerpy.APIClient(base_url=docker_engine.host, version="1.41")
    try:
        ctr = old.create_container("busybox", "sleep 60", labels=labels, host_config=old.create_host_config(
            network_mode=network), networking_config=old.create_networking_config(
            {network: old.create_endpoint_config(aliases=["web"])}))
        made.append(ctr["Id"])
        old.start(ctr)
        assert old.inspect_container(ctr)["NetworkSettings"]["Networks"][network]["Aliases"] == ["web", ctr["Id"][:12]]
    finally:
        old.close()


def test_api_before_1_45_lists_the_short_id_and_host_name_among_any_containers_aliases(
        daemon: Any, docker_client: Any, network: str, made: list[str], labels: dict[str, str]) -> None:
    """dockerd from 26 adds them in its inspect for API < 1.45 whatever the state (its inspect
    route); the reference dockerd (20.10) predates that, so this one runs on ours only."""
    for version, want in (("1.44", ["web", "SHORT", "box"]), ("1.45", ["web"])):
        api = dockerpy.APIClient(base_url=daemon.host, version=version)
        try:
            ctr = api.create_container("busybox", "sleep 60", hostname="box", labels=labels,
                                       host_config=api.create_host_config(network_mode=network),
                                       networking_config=api.create_networking_config(
                                           {network: api.create_endpoint_config(aliases=["web"])}))
            made.append(ctr["Id"])
            want = [ctr["Id"][:12] if w == "SHORT" else w for w in want]
            assert api.inspect_container(ctr)["NetworkSettings"]["Networks"][network]["Aliases"] == want
            api.start(ctr)
            assert api.inspect_container(ctr)["NetworkSettings"]["Networks"][network]["Aliases"] == want
        finally:
            api.close()


# -- update's CPU shares; bind propagation ----------------------------------------------------------
@both_engines
def test_an_update_of_cpu_shares_shows_in_inspect(docker_client: Any, sleeper_factory: Any) -> None:
    if rootless.active() and rootless.delegated_cgroup() is None:
        pytest.skip("rootless without a delegated cgroup: CPU shares are refused")
    api = docker_client.api
    ctr = sleeper_factory(host_config=api.create_host_config(cpu_shares=512))
    assert api.inspect_container(ctr)["HostConfig"]["CpuShares"] == 512
    api.update_container(ctr, cpu_shares=768)
    assert api.inspect_container(ctr)["HostConfig"]["CpuShares"] == 768


@both_engines
def test_a_bind_asked_rprivate_is_made_so(docker_client: Any, made: list[str], labels: dict[str, str],
                                          tmp_path: Any) -> None:
    api = docker_client.api
    (tmp_path / "seen").write_text("here\n")
    ctr = api.create_container("busybox", ["cat", "/mnt/seen"], labels=labels, host_config=api.create_host_config(
        binds={str(tmp_path): {"bind": "/mnt", "mode": "rw,rprivate"}}))
    made.append(ctr["Id"])
    api.start(ctr)
    assert api.wait(ctr)["StatusCode"] == 0
    assert api.logs(ctr) == b"here\n"
    mount = next(m for m in api.inspect_container(ctr)["Mounts"] if m["Destination"] == "/mnt")
    assert (mount["RW"], mount["Propagation"]) == (True, "rprivate")


def test_a_shared_or_slave_bind_is_refused_by_name(daemon: Any, docker_client: Any, labels: dict[str, str],
                                                   tmp_path: Any) -> None:
    """Ours only: dockerd makes it (this engine's binds are always rprivate)."""
    api = docker_client.api
    with pytest.raises(dockerpy.errors.APIError) as info:
        api.create_container("busybox", "true", labels=labels, host_config=api.create_host_config(
            binds={str(tmp_path): {"bind": "/mnt", "mode": "rw", "propagation": "rshared"}}))
    assert info.value.status_code == 400
    assert "mount propagation 'rshared' is not supported by this engine" in str(info.value)


# -- a volume made without a name -------------------------------------------------------------------
@both_engines
def test_a_default_prune_removes_a_volume_created_without_a_name(docker_client: Any, labels: dict[str, str]) -> None:
    api = docker_client.api
    vol = api.create_volume(labels=labels)
    try:  # only this test's (other tests' unused volumes are theirs)
        deleted = api.prune_volumes(filters={"label": [f"{k}={v}" for k, v in labels.items()]})["VolumesDeleted"]
        assert deleted == [vol["Name"]]
    finally:
        try:
            api.remove_volume(vol["Name"])
        except dockerpy.errors.NotFound:
            pass


def test_a_volume_created_without_a_name_carries_dockerds_anonymous_label(daemon: Any, labels: dict[str, str]) -> None:
    """Ours only: dockerd from 23 labels it; the reference dockerd (20.10) predates that."""
    api = dockerpy.APIClient(base_url=daemon.host, version="1.44")
    named = api.create_volume(f"pods-dpy-named-{uuid.uuid4().hex[:8]}", labels=labels)
    anonymous = api.create_volume(labels=labels)
    try:
        assert api.inspect_volume(anonymous["Name"])["Labels"] == {**labels, "com.docker.volume.anonymous": ""}
        assert "com.docker.volume.anonymous" not in api.inspect_volume(named["Name"])["Labels"]
        deleted = api.prune_volumes(filters={"label": [f"{k}={v}" for k, v in labels.items()]})["VolumesDeleted"]
        assert deleted == [anonymous["Name"]]  # API 1.42+: the named one stays without all=true
    finally:
        for v in (named, anonymous):
            try:
                api.remove_volume(v["Name"])
            except dockerpy.errors.NotFound:
                pass
        api.close()


# -- a hijacked stream's first bytes ---------------------------------------------------------------
def test_attach_without_stream_returns_an_exited_containers_output_every_time(docker_client: Any, made: list[str],
                                                                               labels: dict[str, str]) -> None:
    """Ours only: docker-py reads the 101's head through a buffered file, then the raw socket, so
    output that came in the same read as the head is lost. The reference dockerd loses it too
    (b"" several times in 25 here: docker-py's own test_attach_no_stream is flaky on it); ours
    waits until the head is read before the stream's first byte."""
    api = docker_client.api
    got = []
    for _ in range(25):
        ctr = api.create_container("busybox", ["echo", "hello"], labels=labels)
        made.append(ctr["Id"])
        api.start(ctr)
        api.wait(ctr)
        got.append(api.attach(ctr, stream=False, logs=True))
    assert got == [b"hello\n"] * 25
