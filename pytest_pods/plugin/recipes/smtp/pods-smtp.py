#!/usr/bin/python3
"""pytest-pods' captured-mail server (issue 17): accepts every message by SMTP and serves what it
captured as JSON over HTTP. Written for this recipe on Debian's aiosmtpd; not a mail relay: no
message leaves the container.

SMTP on $SMTP_PORT (1025, as MailHog and Mailpit: an unprivileged port, so the server runs as a
user without capabilities, and apps set up for those servers work unchanged), the HTTP API on
$HTTP_PORT (8025, as theirs):

    GET    /messages[?to=ADDR]   the captured messages, oldest first, parsed and raw (to: an
                                 envelope recipient, any case; "@example.org": a whole domain)
    GET    /messages/ID          one message
    DELETE /messages[?to=ADDR]   forget all messages (or those to ADDR); answers {"deleted": N}
    GET    /health               {"status": "ok", "messages": N}

AUTH PLAIN/LOGIN accepts any user and password unless $MP_SMTP_AUTH lists users ("user:pass
..."), as Mailpit's --smtp-auth-accept-any. $MP_SMTP_TLS_CERT and $MP_SMTP_TLS_KEY (PEM files)
turn on STARTTLS, and with $MP_SMTP_REQUIRE_TLS=1 the port speaks TLS from the first byte
(SMTPS), as Mailpit's. Started as root (the image's default, as Mailpit's, so that a mounted
key only root may read is read), it drops to the user smtp once the ports are bound.
$SMTP_MAX_MESSAGES (default 10000) bounds the memory: the oldest go first.
Ready when it logs "pods-smtp: ready" (and Mailpit's "accessible via").
"""

from __future__ import annotations

import asyncio
import email.policy
import itertools
import json
import os
import pwd
import ssl
import sys
import threading
import time
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword  # type: ignore[import-not-found]  # in the image only

LOCK = threading.Lock()
MESSAGES: list[dict[str, Any]] = []
IDS = itertools.count(1)
MAX = int(os.environ.get("SMTP_MAX_MESSAGES") or 10000)


def log(text: str) -> None:
    print(text, flush=True)


def parse(raw: bytes, mail_from: str, rcpt_tos: list[str], peer: Any) -> dict[str, Any]:
    # the parts' text with the host's line ends: SMTP's CRLF stays in "raw"
    msg = BytesParser(policy=email.policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
    text = html = None
    try:
        part = msg.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else None
        part = msg.get_body(preferencelist=("html",))
        html = part.get_content() if part is not None else None
    except (LookupError, KeyError, ValueError):  # an undecodable part: the raw text still has it
        pass
    attachments = []
    for att in msg.iter_attachments():
        payload = att.get_payload(decode=True) or b""
        attachments.append({"filename": att.get_filename(), "content_type": att.get_content_type(),
                            "size": len(payload)})
    return {"id": str(next(IDS)), "mail_from": mail_from, "rcpt_to": list(rcpt_tos),
            "subject": str(msg.get("Subject", "")), "from": str(msg.get("From", "")),
            "to": [str(a) for a in (msg.get_all("To") or [])], "cc": [str(a) for a in (msg.get_all("Cc") or [])],
            "headers": [[k, str(v)] for k, v in msg.items()], "text": text, "html": html,
            "attachments": attachments, "size": len(raw), "received": time.time(),
            "peer": str(peer[0]) if peer else "", "raw": raw.decode("utf-8", "surrogateescape")}


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        raw = raw if isinstance(raw, bytes) else raw.encode()
        msg = parse(raw, envelope.mail_from, envelope.rcpt_tos, session.peer)
        with LOCK:
            MESSAGES.append(msg)
            del MESSAGES[:-MAX]
        return f"250 Message accepted (id {msg['id']})"


def authenticator(users: dict[str, str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not users:
            return AuthResult(success=True)
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            return AuthResult(success=users.get(login) == password, handled=False)
        return AuthResult(success=False, handled=False)
    return check


def matches(msg: dict[str, Any], to: str | None) -> bool:
    if not to:
        return True
    to = to.lower()
    rcpts = [r.lower() for r in msg["rcpt_to"]]
    return any(r.endswith(to) for r in rcpts) if to.startswith("@") else to in rcpts


class Api(BaseHTTPRequestHandler):
    server_version = "pods-smtp/1"

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[list[str], str | None]:
        url = urlsplit(self.path)
        to = parse_qs(url.query).get("to")
        return [p for p in url.path.split("/") if p], to[0] if to else None

    def do_GET(self) -> None:
        parts, to = self._route()
        with LOCK:
            found = [m for m in MESSAGES if matches(m, to)]
        if parts == ["health"]:
            self._send(200, {"status": "ok", "messages": len(MESSAGES)})
        elif parts == ["messages"]:
            self._send(200, found)
        elif len(parts) == 2 and parts[0] == "messages":
            one = next((m for m in found if m["id"] == parts[1]), None)
            self._send(200, one) if one else self._send(404, {"message": f"No such message: {parts[1]}"})
        else:
            self._send(404, {"message": f"page not found: {self.path}"})

    def do_DELETE(self) -> None:
        parts, to = self._route()
        if parts != ["messages"]:
            self._send(404, {"message": f"page not found: {self.path}"})
            return
        with LOCK:
            kept = [m for m in MESSAGES if not matches(m, to)]
            deleted = len(MESSAGES) - len(kept)
            MESSAGES[:] = kept
        self._send(200, {"deleted": deleted})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a test asks often: the log keeps what was sent


def main() -> None:
    smtp_port = int(os.environ.get("SMTP_PORT") or 1025)
    http_port = int(os.environ.get("HTTP_PORT") or 8025)
    users = dict(u.partition(":")[::2] for u in (os.environ.get("MP_SMTP_AUTH") or "").split())
    cert, key = os.environ.get("MP_SMTP_TLS_CERT"), os.environ.get("MP_SMTP_TLS_KEY")
    tls = None
    if cert and key:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
    implicit = tls is not None and os.environ.get("MP_SMTP_REQUIRE_TLS") in ("1", "true")

    api = ThreadingHTTPServer(("0.0.0.0", http_port), Api)
    api.daemon_threads = True

    loop = asyncio.new_event_loop()
    factory = lambda: SMTP(Handler(), hostname="pods-smtp", ident="pods-smtp (aiosmtpd)",  # noqa: E731
                           decode_data=False, enable_SMTPUTF8=True, auth_require_tls=False,
                           authenticator=authenticator(users), tls_context=None if implicit else tls,
                           require_starttls=False, data_size_limit=64 * 1024 * 1024)
    server = loop.run_until_complete(loop.create_server(factory, "0.0.0.0", smtp_port,
                                                        ssl=tls if implicit else None))
    if os.getuid() == 0:  # root (the image's default): the TLS key is read and the ports bound, drop to smtp
        user = pwd.getpwnam("smtp")
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    threading.Thread(target=api.serve_forever, daemon=True, name="api").start()
    log(f"[smtpd] starting on 0.0.0.0:{smtp_port}" + (" (SMTPS)" if implicit else " (STARTTLS)" if tls else ""))
    log(f"[http] accessible via http://0.0.0.0:{http_port}/")
    log(f"pods-smtp: ready: SMTP on {smtp_port}, HTTP API on {http_port}")
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
