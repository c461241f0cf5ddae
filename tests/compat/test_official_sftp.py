"""The atmoz/sftp image's names through ``pods daemon --image-aliases official`` (issue 17):
testcontainers' own ``SFTPContainer`` (which runs ``atmoz/sftp:alpine``, a password user and a
key user whose public key it mounts) runs unchanged on the stand-in built from the sftp recipe on
first use, and docker-py shows atmoz/sftp's conventions taking effect.

atmoz/sftp is a Docker Hub user's image, not an official one; the preset serves its
``latest``/``alpine``/``debian`` tags. It is not reachable here (no Docker Hub), so the expected
behaviour is written by hand from its documentation (github.com/atmoz/sftp: "docker run -p 22:22
-d atmoz/sftp foo:pass:::upload", users `user:pass[:e][:uid[:gid[:dir1[,dir2]...]]]`, each
chrooted to /home/USER)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
paramiko = pytest.importorskip("paramiko")
import test_official_images as official

AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
LABEL, name, host_port = official.LABEL, official.name, official.host_port
try:
    sftp_module: Any = pytest.importorskip("testcontainers.community.sftp")
except pytest.skip.Exception:  # before 4.14
    sftp_module = pytest.importorskip("testcontainers.sftp")


def connect(port: int, user: str, **auth: Any) -> Any:
    transport = paramiko.Transport(("127.0.0.1", port))
    transport.connect(username=user, **auth)
    return transport, paramiko.SFTPClient.from_transport(transport)


def test_testcontainers_sftp_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    with sftp_module.SFTPContainer() as box:  # atmoz/sftp:alpine, users basic (password) and keypair (key)
        port = box.get_exposed_sftp_port()
        t, c = connect(port, "basic", password="password")
        with c.open("/upload/a.txt", "w") as f:
            f.write("hello")
        assert c.open("/upload/a.txt").read() == b"hello" and c.listdir("/") == ["upload"]
        t.close()
        keypair = next(u for u in box.users if u.name == "keypair")
        pkey = paramiko.RSAKey.from_private_key(io.StringIO(keypair.private_key.decode()))
        t, c = connect(port, "keypair", pkey=pkey)
        assert sorted(c.listdir("/")) == [".ssh", "upload"]  # its mounted key is in its home, as on atmoz/sftp
        t.close()
    log = aliased.log_text()
    assert "image alias: atmoz/sftp:alpine -> pytest-pods/sftp:9.2 (OpenSSH 9.2 SFTP from Debian 12 (bookworm))" in log


def test_users_as_arguments_uid_gid_dirs_and_the_chroot(dc: Any) -> None:
    ctr = dc.containers.run("atmoz/sftp", ["foo:pass:1001:100:upload,in/deep", "bar:pw:::drop"], name=name(),
                            labels={LABEL: "1"}, ports={"22/tcp": None}, detach=True)
    wait_until(lambda: b"Server listening on" in ctr.logs(), 30, f"sshd in {ctr.name} listening")
    out = ctr.exec_run(["sh", "-c", "id -u foo; id -g foo; stat -c '%U %a' /home/foo /home/foo/upload"]).output
    assert out.decode().split("\n")[:4] == ["1001", "100", "root 755", "foo 755"]
    t, c = connect(host_port(ctr, 22), "foo", password="pass")
    assert sorted(c.listdir("/")) == ["in", "upload"] and c.normalize("/..") == "/"
    with pytest.raises(PermissionError):
        c.open("/not-here", "w")
    t.close()
    with pytest.raises(paramiko.AuthenticationException):
        connect(host_port(ctr, 22), "bar", password="wrong")
