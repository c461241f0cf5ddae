"""The plugin removes only what it made, and a function-scoped container is gone, its host ports
free, before the next test starts (issue 15)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

SESSION_TESTS = '''
from pytest_pods import container, network

net = network(scope="session")
box = container(image="busybox", command=["sleep", "60"], network=net)

def test_one(box):
    assert box.exec(["true"]).exit_code == 0

def test_two(box, pods):
    pods.run("busybox", ["true"], network="none")
'''

KILLED_TESTS = '''
import time
from pytest_pods import container, network

net = network(scope="session")
box = container(image="busybox", command=["sleep", "600"], network=net, scope="session")

def test_waits(box):
    print("READY", flush=True)
    time.sleep(600)
'''


class UserObjects:
    """A network, a stopped container on it and a volume it mounts, made with the Client API as
    a user would, with nothing of the plugin's labels."""

    def __init__(self, client: Client) -> None:
        token = uuid.uuid4().hex[:10]
        self.client = client
        self.net_name, self.ctr_name, self.vol_name = f"user-net-{token}", f"user-ctr-{token}", f"user-vol-{token}"
        self.net_id = client.networks.create(self.net_name, labels={"made-by": "the user"})["id"]
        client.volumes.create(self.vol_name)
        ctr = client.containers.run("busybox", ["sh", "-c", "echo kept > /data/file"], name=self.ctr_name,
                                    network=self.net_name, volumes=[f"{self.vol_name}:/data"], detach=True)
        assert ctr.wait(timeout=30) == 0
        self.ctr_id = ctr.id

    def missing(self) -> list[str]:
        """What of the user's objects is gone (nothing, if the plugin kept its hands off)."""
        out = []
        if not any(n["Id"] == self.net_id for n in self.client.networks.list(create_default=False)):
            out.append(f"network {self.net_name}")
        if not any(c.id == self.ctr_id for c in self.client.containers.list(all=True)):
            out.append(f"container {self.ctr_name}")
        if not any(v["Name"] == self.vol_name for v in self.client.volumes.list()):
            out.append(f"volume {self.vol_name}")
        return out

    def still_work(self) -> None:
        """The network still carries traffic and the volume still holds the file."""
        res = self.client.containers.run("busybox", ["cat", "/data/file"], network=self.net_name,
                                         volumes=[f"{self.vol_name}:/data"], remove=True)
        assert (res.exit_code, res.output) == (0, b"kept\n")

    def remove(self) -> None:
        for step in (lambda: self.client.containers.remove(self.ctr_id, force=True),
                     lambda: self.client.networks.remove(self.net_id),
                     lambda: self.client.volumes.remove(self.vol_name, force=True)):
            try:
                step()
            except Exception:  # already gone: the assertion above said so
                pass


@pytest.fixture
def user_objects(client: Client) -> Iterator[UserObjects]:
    """Scope: function. Depends on: client. The user's own network, container and volume."""
    made = UserObjects(client)
    try:
        yield made
    finally:
        made.remove()


def test_a_users_network_container_and_volume_survive_sessions_a_kill_and_sweeps(
        inner: Inner, user_objects: UserObjects, client: Client, pods_root: Path) -> None:
    inner.pytester.makepyfile(test_session=SESSION_TESTS, test_killed=KILLED_TESTS)

    result, sid = inner.run("test_session.py")
    result.assert_outcomes(passed=2)
    assert inner.left(sid) == []
    assert user_objects.missing() == []

    proc, killed = inner.start_until_ready("test_killed.py")
    assert len(inner.left(killed)) == 2  # its container and its network
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while inner.left(killed) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert inner.left(killed) == []  # the watchdog removed the killed session's own network too
    assert user_objects.missing() == []
    # at once: rootless, the killed session's daemon may still be stopping; the next session waits
    # for it instead of borrowing it

    result, sid = inner.run("test_session.py")  # its start-up sweep, then its end
    result.assert_outcomes(passed=2)
    assert inner.left(sid) == []
    assert user_objects.missing() == []

    # the automatic paths themselves, whatever else runs on the shared root: a sweep of dead
    # owners, and the session end's release of idle host state
    # the sweep in a process of its own, as the watchdog and a next session run it (rootless, a
    # short-lived sweeper releases the engine's namespace holder when it is the last user; this
    # test process, inside the namespace, goes on)
    subprocess.run([sys.executable, "-c", f"from pytest_pods.watchdog import sweep; sweep({str(pods_root)!r})"],
                   check=True, timeout=120)
    client.cleanup()
    assert user_objects.missing() == []
    assert client.networks.get(user_objects.net_name)["Id"] == user_objects.net_id
    user_objects.still_work()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT_TESTS = '''
import socket
import urllib.request

import pytest
from pytest_pods import container, wait

PORT = {port}
web = container(image="busybox", network="bridge", ports={{"80/tcp": PORT}},
                command=["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"],
                wait=wait.http(80, "/"))

@pytest.mark.parametrize("n", range(20))
def test_each_gets_its_own_container_on_the_same_port(web, n):
    body = urllib.request.urlopen(f"http://127.0.0.1:{{PORT}}/", timeout=10).read()
    assert body == web.exec(["hostname"]).output
'''


def test_twenty_function_scoped_containers_one_after_another_bind_the_same_fixed_host_port(inner: Inner) -> None:
    port = _free_port()
    inner.pytester.makepyfile(test_port=PORT_TESTS.format(port=port))
    result, sid = inner.run("test_port.py")
    result.assert_outcomes(passed=20)
    assert inner.left(sid) == []
    for ip in ("127.0.0.1", "0.0.0.0"):  # and free once the session ended
        with socket.socket() as s:
            # as a server binds (Docker's proxy too): rootless, the forwarder closed the test's
            # connections first, and they wait out TIME_WAIT on the port (as under Docker's proxy)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            s.listen(1)


def test_a_users_idle_network_on_a_root_of_its_own_survives_the_plugins_sweeps(
        pytester: pytest.Pytester, tmp_path: Path, release_root: Any) -> None:
    """The report's case: the user's network is the only thing on the root besides the plugin's,
    so nothing else holds it; three sessions (one killed) sweep and end around it."""
    root = tmp_path / "root"
    client = Client(root)
    client.images.bootstrap_busybox()
    try:
        client.networks.create("mine")
        client.volumes.create("mine")
        pytester.makepyfile(test_session=SESSION_TESTS, test_killed=KILLED_TESTS)
        argv = (f"--pods-root={root}", "-p", "no:cacheprovider")
        pytester.runpytest_subprocess(*argv, "test_session.py", timeout=120).assert_outcomes(passed=2)
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-s", *argv, "test_killed.py"],
                                cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "READY" in line:
                break
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 15
        while len(client.networks.list(create_default=False)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        pytester.runpytest_subprocess(*argv, "test_session.py", timeout=120).assert_outcomes(passed=2)
        assert [n["Name"] for n in client.networks.list(create_default=False)] == ["mine"]
        assert [v["Name"] for v in client.volumes.list()] == ["mine"]
        assert client.containers.list(all=True) == []
    finally:
        client.cleanup(prune_networks=True)
        release_root(client)
