"""Captured mail through ``pods daemon`` (issue 17). There is no official SMTP image, so the
``official`` preset names none; Mailpit (``axllent/mailpit``), the test mail server that
testcontainers has a module for, is served by an explicit alias to the smtp recipe
(``--image-alias axllent/mailpit=pytest-pods/smtp:1.4``): testcontainers' own
``MailpitContainer`` runs unchanged on it (its log line, its mounted certificate for STARTTLS,
any login), and docker-py shows the server dropping root once its key is read.

Mailpit is not reachable here (no Docker Hub): its behaviour is written from its documentation
(mailpit.axllent.org: SMTP on 1025, the web UI and API on 8025, ``MP_SMTP_AUTH``,
``MP_SMTP_TLS_CERT``/``_KEY``, ``MP_SMTP_REQUIRE_TLS``). Its web UI and ``/api/v1`` are not
served: the recipe's API is its own."""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import run_dir_base, wait_until
from tc_helper import pointed_testcontainers

from pytest_pods import Client
from pytest_pods.client.aliases import RECIPE_IMAGES, RECIPES

docker = pytest.importorskip("docker")
pytest.importorskip("testcontainers.core.config")
pytest.importorskip("cryptography")
MailpitContainer: Any = pytest.importorskip("testcontainers.community.mailpit").MailpitContainer

SMTP_IMAGE = RECIPE_IMAGES["smtp"]
ALIAS = f"axllent/mailpit={SMTP_IMAGE}"


class MailDaemon:
    """``pods daemon --image-aliases official --image-alias ALIAS ...`` on a root of its own
    (default: ``axllent/mailpit=pytest-pods/smtp:1.4``)."""

    def __init__(self, root: Path, run: Path, aliases: tuple[str, ...] = (ALIAS,)) -> None:
        self.sock, self.log = run / "pods.sock", run / "daemon.log"
        self.host = f"unix://{self.sock}"
        env = {k: v for k, v in os.environ.items() if k != "PODS_IMAGE_ALIASES"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(root), "daemon", "--socket", str(self.sock),
             "--log-file", str(self.log), "--image-aliases", "official",
             *(arg for alias in aliases for arg in ("--image-alias", alias))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pods daemon exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(self.sock))
                    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                    return s.recv(64).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

        try:
            wait_until(answers, 20, "pods daemon --image-alias answering /_ping")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def mail_daemon(client: Client, debian: str, own_root: Callable[[str], Any]) -> Iterator[MailDaemon]:
    """Scope: module. Depends on: client, debian, own_root. The daemon with the Mailpit alias on a
    root of its own, holding debian:bookworm (the stand-in is built from the recipe on first use)."""
    with own_root("pods-mail-") as own, tempfile.NamedTemporaryFile(suffix=".tar", dir="/var/tmp") as tar:
        client.images.save([debian], tar.name)
        own.images.load(tar.name)
        run = Path(tempfile.mkdtemp(prefix="pods-mail-", dir=run_dir_base()))
        try:
            d = MailDaemon(own.root, run)
            try:
                yield d
            finally:
                d.stop()
        finally:
            shutil.rmtree(run, ignore_errors=True)


@pytest.fixture
def tc(mail_daemon: MailDaemon, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with pointed_testcontainers(mail_daemon.host, monkeypatch, ryuk=False) as c:
        yield c


def test_testcontainers_mailpit_runs_unchanged_on_the_explicit_alias(tc: Any, mail_daemon: MailDaemon) -> None:
    with MailpitContainer() as mp:  # axllent/mailpit, its certificate mounted, any login accepted
        with smtplib.SMTP(mp.get_container_host_ip(), mp.get_exposed_smtp_port(), timeout=10) as s:
            s.ehlo()
            assert s.has_extn("starttls")  # MP_SMTP_TLS_CERT/_KEY: its mounted, root-only key was read
            s.starttls(context=ssl._create_unverified_context())
            assert s.login("any", "auth")[0] == 235
            s.sendmail("app@example.com", ["ann@example.org"], b"Subject: via mailpit's name\r\n\r\nhi\r\n")
        with urllib.request.urlopen(f"{mp.get_base_api_url()}/messages?to=ann@example.org", timeout=10) as r:
            (msg,) = json.load(r)
        assert msg["subject"] == "via mailpit's name" and msg["text"] == "hi\n"
        pid1 = mp.get_wrapped_container().exec_run(["cat", "/proc/1/status"]).output.decode()
        uid = next(line.split()[1] for line in pid1.splitlines() if line.startswith("Uid:"))
        assert uid != "0"  # started as root, it dropped to smtp
    log = mail_daemon.log.read_text()
    assert f"image alias: axllent/mailpit:latest -> {SMTP_IMAGE}" in log, log


def test_the_official_preset_names_no_smtp_image() -> None:
    from pytest_pods.client.aliases import ImageAliases

    for name in ("mailpit", "axllent/mailpit", "mailhog/mailhog", "smtp"):
        assert ImageAliases.parse(["official"]).target(name) is None
    assert (RECIPES / "smtp" / "Dockerfile").is_file()
