"""The official nginx image's name through ``pods daemon --image-aliases official`` (issue 17):
testcontainers' own ``NginxContainer`` runs unchanged on the stand-in built from the nginx
recipe on first use, and docker-py sees the official template contract take effect."""

from __future__ import annotations

import io
import tarfile
import urllib.request
import uuid
from typing import Any

import pytest
from daemon_helper import wait_until

pytest.importorskip("testcontainers.core.config")
import test_official_images as official

# the daemon with the preset on a root of its own (one for this module), testcontainers and
# docker-py pointed at it
AliasedDaemon = official.AliasedDaemon
aliased, tc, dc = official.aliased, official.tc, official.dc
try:
    NginxContainer: Any = pytest.importorskip("testcontainers.community.nginx").NginxContainer
except pytest.skip.Exception:  # before 4.14
    NginxContainer = pytest.importorskip("testcontainers.nginx").NginxContainer


def test_testcontainers_nginx_runs_unchanged_on_the_preset_built_on_first_use(
        tc: Any, aliased: AliasedDaemon) -> None:
    with NginxContainer("nginx:latest") as web:  # the stand-in is built here, from the recipe
        host, port = web.get_container_host_ip(), web.get_exposed_port(80)
        page = urllib.request.urlopen(f"http://{host}:{port}/", timeout=10).read().decode()
        assert "Welcome to nginx!" in page
    log = aliased.log_text()
    assert "image alias: nginx:latest -> pytest-pods/nginx:1.22 (nginx 1.22 from Debian 12 (bookworm))" in log


def test_official_template_contract_through_docker_py(dc: Any) -> None:
    """A template copied into /etc/nginx/templates before the start, NGINX_* set: what the
    official image's documentation shows."""
    ctr = dc.containers.create("nginx:1.25", name=f"pods-official-{uuid.uuid4().hex[:10]}",
                               environment={"NGINX_PORT": "8081", "NGINX_HOST": "example.test"},
                               ports={"8081/tcp": None}, labels={"io.pytest-pods.test.official": "1"})
    template = (b"server {\n    listen ${NGINX_PORT};\n    server_name ${NGINX_HOST};\n"
                b"    location / { default_type text/plain; return 200 \"$server_name $uri\\n\"; }\n}\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("default.conf.template")
        info.size, info.mode = len(template), 0o644
        tar.addfile(info, io.BytesIO(template))
    assert ctr.put_archive("/etc/nginx/templates", buf.getvalue())
    ctr.start()
    ctr.reload()
    port = int(ctr.ports["8081/tcp"][0]["HostPort"])
    wait_until(lambda: b"start worker processes" in ctr.logs(), 20, "nginx started")
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/a", timeout=10).read() == b"example.test /a\n"
    assert ("Running envsubst on /etc/nginx/templates/default.conf.template to /etc/nginx/conf.d/default.conf"
            in ctr.logs().decode())
