"""Captured mail (issue 17): an SMTP server that accepts every message and keeps it for the test
to read back, pytest-pods' own small server on Debian 12's aiosmtpd 1.4.

The fixture ``smtp`` gives each test a server of its own::

    def test_welcome_mail(smtp):
        app.send_welcome("ann@example.org", smtp_host=smtp.host, smtp_port=smtp.port)
        (mail,) = smtp.messages(to="ann@example.org")
        assert mail.subject == "Welcome" and "ann" in mail.body

``smtp_container(isolation="clear")`` shares one server per session (per xdist worker, whose
tests run one at a time) and deletes every message before each test: the next test's mailbox
starts empty, whatever the last one's addresses were. A message the application sends after its
test ended (a background job) would land in the next test's mailbox: where that can happen, keep
the default, a server per test (or filter with ``messages(to=...)`` on addresses of the test's
own).
"""

from __future__ import annotations

import email.policy
import http.client
import json
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    environment_of,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["Mail", "Smtp", "smtp", "smtp_container", "smtp_image"]

smtp_image = catalogue_service("smtp", "pytest-pods/smtp:1.4")

#: The server's line once both ports listen (pods-smtp.py in the recipe).
READY_LINE = r"pods-smtp: ready"
ISOLATION_LEVELS = ("container", "clear")


@dataclass(frozen=True)
class Mail:
    """One captured message, parsed by the server.

    ``subject``, ``sender`` (the ``From`` header), ``to``/``cc`` (those headers' addresses as
    written), ``recipients`` and ``mail_from`` (the SMTP envelope: with Bcc, who really got it),
    ``body`` (the text/plain part), ``html``, ``headers`` (first value of each name;
    ``all_headers`` keeps every one in order), ``attachments`` (filename, content type, size),
    ``raw`` (the message as received). ``message()`` is the stdlib's ``EmailMessage``.
    """

    id: str
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    recipients: tuple[str, ...]
    mail_from: str
    body: str | None
    html: str | None
    headers: dict[str, str] = field(repr=False)
    all_headers: tuple[tuple[str, str], ...] = field(repr=False)
    attachments: tuple[dict[str, Any], ...] = field(repr=False)
    raw: str = field(repr=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Mail:
        pairs = tuple((str(k), str(v)) for k, v in doc.get("headers") or [])
        headers: dict[str, str] = {}
        for k, v in pairs:
            headers.setdefault(k, v)
        return cls(id=str(doc["id"]), subject=doc.get("subject") or "", sender=doc.get("from") or "",
                   to=tuple(doc.get("to") or ()), cc=tuple(doc.get("cc") or ()),
                   recipients=tuple(doc.get("rcpt_to") or ()), mail_from=doc.get("mail_from") or "",
                   body=doc.get("text"), html=doc.get("html"), headers=headers, all_headers=pairs,
                   attachments=tuple(doc.get("attachments") or ()), raw=doc.get("raw") or "")

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        return next((v for k, v in self.all_headers if k.lower() == name.lower()), None)

    def message(self) -> EmailMessage:
        """The raw message parsed by the standard library (``email.policy.default``)."""
        parsed = BytesParser(policy=email.policy.default).parsebytes(
            self.raw.encode("utf-8", "surrogateescape"))
        assert isinstance(parsed, EmailMessage)
        return parsed


class Smtp(Service):
    """A running captured-mail server: SMTP on ``port``, its JSON API on ``api_port``.

    ``host``/``port`` are what the application under test sends to (no TLS, any or no login);
    ``network_host``/``network_port`` from another container on its network. ``messages(to=)``,
    ``message(id)``, ``wait_for(n, to=)`` and ``clear(to=)`` read and forget what it captured
    (no client library needed).
    """

    PORT = 1025
    API_PORT = 8025

    def __init__(self, container: ContainerAPI, port: int | None = None, api_port: int | None = None) -> None:
        super().__init__(container, port)
        self.api_container_port = api_port or self.API_PORT
        self.api_host, self.api_port = container.address(self.api_container_port)

    @property
    def url(self) -> str:
        """``smtp://host:port`` from the host."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def network_url(self) -> str:
        return f"smtp://{self.network_host}:{self.network_port}"

    @property
    def api_url(self) -> str:
        """The captured-mail API from the host (``GET /messages``, ``DELETE /messages``, ...)."""
        return f"http://{self.api_host}:{self.api_port}"

    def api(self, method: str, path: str, timeout: float = 10) -> Any:
        """One request to the captured-mail API; its JSON.

        :raises PodsError: the API's answer was not 200 (its message), or it did not answer
        """
        conn = http.client.HTTPConnection(self.api_host, self.api_port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as exc:
            raise PodsError(f"smtp {method} {path} on {self.name}: {exc}") from None
        finally:
            conn.close()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"message": body.decode(errors="replace")}
        if resp.status != 200:
            raise PodsError(f"smtp {method} {path} on {self.name}: {resp.status} {doc.get('message', doc)}")
        return doc

    @staticmethod
    def _query(to: str | None) -> str:
        if to is None:
            return ""
        if not isinstance(to, str) or not to.strip() or "@" not in to:
            raise ValueError(f"pytest-pods: smtp messages(to={to!r}): give an address (ann@example.org) "
                             "or a domain (@example.org)")
        return "?" + urllib.parse.urlencode({"to": to.strip()})

    def messages(self, to: str | None = None) -> list[Mail]:
        """The captured messages, oldest first; with ``to``, those whose envelope names that
        recipient (any case; ``"@example.org"``: anyone at that domain, Bcc included)."""
        return [Mail.from_json(doc) for doc in self.api("GET", "/messages" + self._query(to))]

    def message(self, id: str) -> Mail:
        """One captured message by its ``id``.

        :raises PodsError: no such message
        """
        return Mail.from_json(self.api("GET", f"/messages/{urllib.parse.quote(str(id), safe='')}"))

    def wait_for(self, count: int = 1, to: str | None = None, timeout: float = 10) -> list[Mail]:
        """The messages (to ``to``) once there are at least ``count``, for mail that an
        application sends in the background.

        :raises TimeoutError: fewer than ``count`` within ``timeout`` seconds (the note says what
            did arrive)
        """
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            got = self.messages(to)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                err = TimeoutError(f"smtp wait for {count} message(s){f' to {to}' if to else ''} on {self.name}: "
                                   f"{len(got)} within {timeout:g} s")
                seen = self.messages()
                err.add_note(f"captured: {len(seen)} message(s)" + "".join(
                    f"\n  {m.id}: to {', '.join(m.recipients)}: {m.subject!r}" for m in seen[-10:]))
                raise err
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def clear(self, to: str | None = None) -> int:
        """Forget the captured messages (those to ``to``); how many there were."""
        return int(self.api("DELETE", "/messages" + self._query(to))["deleted"])

    def __repr__(self) -> str:
        return f"<Smtp {self.name} {self.host}:{self.port} api {self.api_url}>"


def _ports(options: dict[str, Any]) -> tuple[int, int]:
    env = environment_of(options)
    return int(env.get("SMTP_PORT") or Smtp.PORT), int(env.get("HTTP_PORT") or Smtp.API_PORT)


def smtp_container(*, scope: str = "function", image: Any = "{smtp_image}", isolation: str = "container",
                   command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a captured-mail fixture (its value is a :class:`Smtp`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"clear"``: one server per session (per xdist worker) and every
        message deleted before each test
    :param options: as for :func:`~pytest_pods.container`; ``environment`` takes the server's
        ``SMTP_PORT``/``HTTP_PORT`` and Mailpit's ``MP_SMTP_AUTH``, ``MP_SMTP_TLS_CERT``/``_KEY``
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: smtp_container(warm=...): the server keeps its messages in memory only, "
                         "which a snapshot does not hold; send them in the test or in a fixture")
    smtp_port, api_port = _ports(options)
    options.setdefault("ports", [smtp_port, api_port])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(smtp_port)))
    if isolation == "container":
        return container(image=image, command=command, scope=scope, pool=pool,
                         wrap=lambda c: Smtp(c, smtp_port, api_port), **options)
    if pool:
        raise ValueError("pytest-pods: smtp_container(pool=...) needs isolation='container'")
    return per_database("smtp", scope, image, options,
                        lambda s, name, img, opts: _ClearedServer(s, name, img, command, opts, smtp_port, api_port))


class _ClearedServer:
    """The shared server of clear isolation: every message deleted before each test (a test of
    this worker ran to its end before: they run one at a time)."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any], smtp_port: int, api_port: int) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)
        self.server = Smtp(self.rec.container, smtp_port, api_port)

    def fresh(self) -> Smtp:
        self.server.clear()
        return self.server

    def done(self, value: Smtp) -> None:
        pass  # cleared when handed out next

    def close(self) -> None:
        self._s.release(self.rec)


smtp = smtp_container()
