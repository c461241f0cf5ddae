"""The SFTP service of the catalogue (issue 17): Debian 12's OpenSSH 9.2 with atmoz/sftp's
conventions, files up and down with paramiko and without it, the chroot holding, a server per
test or a user per test, reached by name, pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import time
import paramiko
import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.sftp import sftp_container

net = network(scope="module")
named = sftp_container(command=["ann:secret:::in,out/deep", "bob:$1$x$Gx9Jz1qf2bVu3VnkLr1Ub/:e:2001:2001:drop"],
                       network=net)
per_user = sftp_container(isolation="user", dirs=("upload", "reports"))
pooled = sftp_container(pool=1)

def test_upload_and_download_with_paramiko_and_without(sftp):
    assert (sftp.host, sftp.user, sftp.password) == ("127.0.0.1", "pods", "pods")
    assert sftp.url == f"sftp://pods@127.0.0.1:{sftp.port}"
    c = sftp.client()
    assert c.listdir("/") == ["upload"]
    with c.open("/upload/a.txt", "wb") as f:
        f.write(b"written over sftp")
    assert sftp.get("/upload/a.txt") == b"written over sftp"  # read back by exec, no library
    big = bytes(range(256)) * 1024  # 256 KiB: several exec arguments
    sftp.put("upload/b.bin", big)
    with c.open("/upload/b.bin", "rb") as f:
        assert f.read() == big
    assert sftp.listdir("/upload") == ["a.txt", "b.bin"]
    assert sftp.container.exec(["stat", "-c", "%U", "/home/pods/upload/b.bin"]).output.strip() == b"pods"

def test_the_chroot_holds(sftp):
    c = sftp.client()
    assert c.normalize("..") == "/"
    assert sorted(c.listdir("/..")) == ["upload"]  # / is the home, nothing above it
    with pytest.raises(PermissionError):
        c.open("/top.txt", "wb")  # the chroot itself is root's
    with pytest.raises(OSError):
        c.stat("/etc/passwd")
    with pytest.raises(PodsError, match="Permission denied"):
        sftp.put("/top.txt", b"x")
    with pytest.raises(ValueError, match="no '..'"):
        sftp.get("../../etc/passwd")
    # SFTP only: no shell, no command
    t = paramiko.Transport((sftp.host, sftp.port))
    t.connect(username="pods", password="pods")
    ch = t.open_session()
    ch.exec_command("id")
    assert b"uid=" not in ch.makefile().read()
    t.close()
    bad = paramiko.Transport((sftp.host, sftp.port))
    with pytest.raises(paramiko.AuthenticationException):
        bad.connect(username="pods", password="wrong")
    bad.close()

def test_users_as_arguments_and_reached_by_name(named, pods, net):
    assert (named.user, named.password, named.dirs) == ("ann", "secret", ("in", "out/deep"))
    named.put("/in/x", "from the host")
    assert sorted(named.client().listdir("/")) == ["in", "out"]
    with named.client().open("/out/deep/y", "w") as f:
        f.write("ok")
    out = named.container.exec(["sh", "-c", "id -u bob; id -g bob; stat -c %u /home/bob/drop; ls /etc/ssh"])
    lines = out.output.decode().split()
    assert lines[:3] == ["2001", "2001", "2001"] and "ssh_host_ed25519_key" in lines
    assert named.network_url == f"sftp://ann@{named.name}:22"
    box = pods.run("busybox", ["sleep", "60"], network=net)
    res = box.exec(["sh", "-c", f"nc -w 2 {named.network_host} 22 </dev/null | head -c 8"])
    assert res.output == b"SSH-2.0-", res
    # the entrypoint refuses a bad user in its own words
    bad = named.container.exec(["docker-entrypoint.sh", "add-user", "ann:pw", "nocolon", "x:y:z"])
    assert bad.exit_code == 3 and b"user 'ann' exists already" in bad.stderr + bad.output, bad

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_a_user_of_its_own(per_user, n):
    assert per_user.user.startswith("pods-t") and per_user.home == f"/home/{per_user.user}"
    c = per_user.client()
    assert sorted(c.listdir("/")) == ["reports", "upload"]
    assert c.listdir("/upload") == []  # the other test's file is not here
    with c.open("/upload/mine.txt", "w") as f:
        f.write(str(n))
    assert per_user.get("/upload/mine.txt") == str(n).encode()
    if n == 2:  # the first test's user and its files are removed (by the fixture's thread)
        deadline = time.monotonic() + 10
        while "pods-t1" in (homes := per_user.container.exec(["ls", "/home"]).output.decode().split()):
            assert time.monotonic() < deadline, homes
            time.sleep(0.05)
        assert per_user.user in homes and b"pods-t1" not in per_user.container.exec(["cat", "/etc/passwd"]).output

def test_pooled(pooled):
    pooled.put("/upload/p", b"1")
    assert pooled.client().open("/upload/p").read() == b"1"
'''


def test_sftp_paramiko_exec_chroot_user_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    pytest.importorskip("paramiko")
    inner.pytester.makepyfile(test_sftp=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=6)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "database"}, "isolation='database': use one of container, user"),
    ({"isolation": "user", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "users and host keys are made when the server starts"),
    ({"user": "Root!"}, "sftp user name 'Root!'"),
    ({"user": "root"}, "not root"),
    ({"password": "a:b"}, "without ':' or blanks"),
    ({"dirs": ("../etc",)}, "must be relative to its home"),
    ({"command": ["ann"]}, r"give user:pass\[:e\]"),
    ({"command": ["ann:pw:x"]}, "uid 'x' is not a number"),
    ({"command": ["ann:$1$x$y:e"], "isolation": "user"}, "not encrypted"),
])
def test_sftp_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.sftp import sftp_container

    with pytest.raises(ValueError, match=message):
        sftp_container(**kwargs)

