#!/usr/bin/python3
"""pods-webdriver: chromedriver served the way selenium/standalone-chrome serves WebDriver (issue 17).

pytest-pods' own small front, written for this recipe on Python's standard library. It starts
Debian's chromedriver on 127.0.0.1:9515 (local connections only) and serves it on 0.0.0.0:4444:

- at ``/`` and at ``/wd/hub`` (Selenium 3 clients and testcontainers use the prefix);
- ``GET /status``: ``{"value": {"ready": true, "message": ..., ...}}``, ready while chromedriver is;
- ``POST /session``: the Chromium arguments a container needs are added when the client did not
  send them: ``--headless=new`` (no display here), ``--no-sandbox`` (Chromium's sandbox needs a
  user namespace the container does not give it), ``--disable-dev-shm-usage`` (when /dev/shm is
  smaller than 1 GiB: Chromium would run out of shared memory on large pages), and the binary
  ``/usr/bin/chromium``. Each session is a new Chromium with a new temporary profile.
- ``SE_NODE_MAX_SESSIONS`` sessions at once (default 1, the official image's); a new-session
  request beyond that waits in a queue up to ``SE_SESSION_REQUEST_TIMEOUT`` seconds (300), then
  fails with "session not created"; a session idle for ``SE_NODE_SESSION_TIMEOUT`` seconds (300)
  is ended.
- ``PODS_WEBDRIVER_SPARE=1``: one session with the default capabilities (those of selenium's
  ``ChromeOptions()``) is kept started ahead; a request for those capabilities takes it at once
  and the next one starts in the background (a Chromium start is the slow part of a new session).
- ``GET /pods/sessions``: the open sessions; ``DELETE /pods/sessions``: end them all, answered at
  once while they end in the background (what the test fixture does between tests).

Logs to stdout: chromedriver's own lines, then "pods-webdriver: ready ..." once it serves.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any

PORT = 4444
DRIVER_PORT = 9515
CHROMIUM = "/usr/bin/chromium"
SHM_ENOUGH = 1 << 30
PREFIX = "/wd/hub"


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"pods-webdriver: {name}={raw!r}: not a whole number. Fix this and try again.")
    if value < 0:
        sys.exit(f"pods-webdriver: {name}={raw!r}: must not be negative. Fix this and try again.")
    return value


MAX_SESSIONS = max(1, env_int("SE_NODE_MAX_SESSIONS", 1))
REQUEST_TIMEOUT = env_int("SE_SESSION_REQUEST_TIMEOUT", 300)
IDLE_TIMEOUT = env_int("SE_NODE_SESSION_TIMEOUT", 300)
SPARE = env_int("PODS_WEBDRIVER_SPARE", 0) > 0


def log(line: str) -> None:
    sys.stdout.write(f"pods-webdriver: {line}\n")


def shm_small() -> bool:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return True
    return st.f_frsize * st.f_blocks < SHM_ENOUGH


NEEDED_ARGS: list[str] = ["--headless=new", "--no-sandbox"] + (["--disable-dev-shm-usage"] if shm_small() else [])


def add_needed(chrome: dict[str, Any]) -> None:
    """The arguments and binary a container needs, where the client did not say otherwise."""
    args = [str(a) for a in chrome.get("args") or []]
    flags = {a.split("=", 1)[0] for a in args}
    for needed in NEEDED_ARGS:
        if needed.split("=", 1)[0] not in flags:
            args.append(needed)
    chrome["args"] = args
    chrome.setdefault("binary", CHROMIUM)


def inject(doc: dict[str, Any]) -> dict[str, Any]:
    """A new-session request with :func:`add_needed` applied: in each firstMatch entry that has
    chrome options (a key may not be in both alwaysMatch and firstMatch), else in alwaysMatch."""
    caps = doc.get("capabilities")
    if isinstance(caps, dict):
        always = caps.setdefault("alwaysMatch", {})
        first = caps.get("firstMatch") or [{}]
        if any(isinstance(f, dict) and "goog:chromeOptions" in f for f in first):
            for f in first:
                if isinstance(f, dict):
                    add_needed(f.setdefault("goog:chromeOptions", {}))
        elif isinstance(always, dict):
            add_needed(always.setdefault("goog:chromeOptions", {}))
    desired = doc.get("desiredCapabilities")  # a JSON-wire client (Selenium 3)
    if isinstance(desired, dict):
        add_needed(desired.setdefault("goog:chromeOptions", {}))
    return doc


def canonical(doc: dict[str, Any]) -> str | None:
    """What a request asks for, in one form (or None: it cannot take the spare): alwaysMatch and
    its one firstMatch merged, defaults, empty lists and ``se:`` capabilities left out."""
    caps = doc.get("capabilities")
    if not isinstance(caps, dict) or "desiredCapabilities" in doc:
        return None
    first = caps.get("firstMatch") or [{}]
    if len(first) != 1 or not isinstance(first[0], dict) or not isinstance(caps.get("alwaysMatch", {}), dict):
        return None
    merged = {**caps.get("alwaysMatch", {}), **first[0]}
    # Selenium Grid's own capabilities (Selenium 4 sends se:remoteUrl) do not reach the browser
    merged = {k: v for k, v in merged.items() if not k.startswith("se:")}
    if merged.get("pageLoadStrategy") == "normal":
        del merged["pageLoadStrategy"]
    chrome = dict(merged.get("goog:chromeOptions") or {})
    chrome = {k: v for k, v in chrome.items() if v not in ([], {}, None)}
    chrome["args"] = sorted(chrome.get("args") or [])
    merged["goog:chromeOptions"] = chrome
    return json.dumps(merged, sort_keys=True)


SPARE_REQUEST: dict[str, Any] = inject({"capabilities": {"alwaysMatch": {"browserName": "chrome"}}})
SPARE_KEY = canonical(SPARE_REQUEST)


class Upstream:
    """One keep-alive connection to chromedriver per thread."""

    local = threading.local()

    @classmethod
    def request(cls, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, str]:
        for attempt in (1, 2):
            conn = getattr(cls.local, "conn", None)
            if conn is None:
                conn = cls.local.conn = http.client.HTTPConnection("127.0.0.1", DRIVER_PORT)
            try:
                headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, data, resp.getheader("Content-Type") or "application/json; charset=utf-8"
            except (OSError, http.client.HTTPException):
                conn.close()
                cls.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def error(status: int, code: str, message: str) -> tuple[int, bytes, str]:
    body = json.dumps({"value": {"error": code, "message": message, "stacktrace": ""}}).encode()
    return status, body, "application/json; charset=utf-8"


class Sessions:
    """The open sessions (id -> last activity), the queue for slots, and the spare."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.open: dict[str, float] = {}
        self.pending = 0
        self.spare: tuple[str, bytes] | None = None
        self.spare_starting = False

    # -- slots
    def acquire(self) -> bool:
        deadline = time.monotonic() + REQUEST_TIMEOUT
        with self.cond:
            while len(self.open) + self.pending >= MAX_SESSIONS:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            self.pending += 1
            return True

    def opened(self, sid: str | None) -> None:
        with self.cond:
            self.pending -= 1
            if sid:
                self.open[sid] = time.monotonic()
            self.cond.notify_all()

    def closed(self, sid: str) -> None:
        with self.cond:
            if self.open.pop(sid, None) is not None:
                self.cond.notify_all()

    def touch(self, sid: str) -> None:
        with self.cond:
            if sid in self.open:
                self.open[sid] = time.monotonic()

    # -- the spare
    def start_spare(self) -> None:
        with self.cond:
            if not SPARE or self.spare is not None or self.spare_starting:
                return
            self.spare_starting = True
        threading.Thread(target=self._make_spare, name="spare", daemon=True).start()

    def _make_spare(self) -> None:
        made: tuple[str, bytes] | None = None
        try:
            status, body, _ = Upstream.request("POST", "/session", json.dumps(SPARE_REQUEST).encode())
            if status == 200:
                made = (json.loads(body)["value"]["sessionId"], body)
            else:
                log(f"spare session not started: {status} {body[:300].decode(errors='replace')}")
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            log(f"spare session not started: {exc}")
        with self.cond:
            self.spare, self.spare_starting = made, False
            self.cond.notify_all()

    def take_spare(self) -> tuple[str, bytes] | None:
        """The spare session (waiting for the one being started), or None."""
        with self.cond:
            while self.spare is None and self.spare_starting:
                self.cond.wait(60)
            got, self.spare = self.spare, None
        return got


SESSIONS = Sessions()
SESSION_PATH = re.compile(r"^/session/([^/]+)(/.*)?$")


def new_session(body: bytes) -> tuple[int, bytes, str]:
    try:
        doc = json.loads(body or b"{}")
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return error(400, "invalid argument", f"new session: the body is not a JSON object: {exc}")
    doc = inject(doc)
    if not SESSIONS.acquire():
        return error(500, "session not created",
                     f"Could not start a new session. New session request timed out after {REQUEST_TIMEOUT} s "
                     f"waiting for one of SE_NODE_MAX_SESSIONS={MAX_SESSIONS} to be free")
    sid = None
    try:
        if SPARE and canonical(doc) == SPARE_KEY and (spare := SESSIONS.take_spare()) is not None:
            sid, data = spare
            SESSIONS.start_spare()
            return 200, data, "application/json; charset=utf-8"
        status, data, ctype = Upstream.request("POST", "/session", json.dumps(doc).encode())
        if status == 200:
            try:
                sid = json.loads(data)["value"]["sessionId"]
            except (ValueError, KeyError, TypeError):
                pass
        return status, data, ctype
    finally:
        SESSIONS.opened(sid)


def end_session(sid: str) -> tuple[int, bytes, str]:
    result = Upstream.request("DELETE", f"/session/{sid}")
    SESSIONS.closed(sid)
    return result


def end_all(ids: list[str]) -> None:
    for sid in ids:
        try:
            end_session(sid)
        except (OSError, http.client.HTTPException) as exc:
            SESSIONS.closed(sid)
            log(f"session {sid} not ended: {exc}")


def status() -> tuple[int, bytes, str]:
    try:
        code, body, _ = Upstream.request("GET", "/status")
        value = json.loads(body).get("value") or {}
    except (OSError, http.client.HTTPException, ValueError):
        code, value = 0, {}
    ready = code == 200 and bool(value.get("ready"))
    with SESSIONS.cond:
        used = len(SESSIONS.open)
    doc = {"value": {"ready": ready,
                     "message": "Selenium Grid ready." if ready else "chromedriver is not ready",
                     "build": value.get("build") or {}, "os": value.get("os") or {},
                     "maxSessions": MAX_SESSIONS, "sessions": used}}
    return 200, json.dumps(doc).encode(), "application/json; charset=utf-8"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pods-webdriver"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per WebDriver command would drown the log

    def handle_any(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path
        if path == PREFIX or path.startswith(PREFIX + "/"):
            path = path[len(PREFIX):] or "/"
        try:
            result = self.route(method, path, body)
        except (OSError, http.client.HTTPException) as exc:
            result = error(500, "unknown error", f"pods-webdriver: chromedriver did not answer: {exc}")
        code, data, ctype = result
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)

    def route(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, str]:
        bare = path.split("?", 1)[0].rstrip("/") or "/"
        if bare == "/status" and method == "GET":
            return status()
        if bare == "/session" and method == "POST":
            return new_session(body or b"")
        if bare == "/pods/sessions":
            with SESSIONS.cond:
                ids = sorted(SESSIONS.open)
            if method == "DELETE":
                # answered at once: the Chromiums end in the background (about 100 ms each), and
                # their slots are free once they have; the spare is not among them
                threading.Thread(target=end_all, args=(ids,), name="end", daemon=True).start()
                return 200, json.dumps({"value": {"ending": ids}}).encode(), "application/json"
            return 200, json.dumps({"value": ids}).encode(), "application/json"
        m = SESSION_PATH.match(bare)
        if m and method == "DELETE" and not m.group(2):
            return end_session(m.group(1))
        if m:
            SESSIONS.touch(m.group(1))
        return Upstream.request(method, path, body)

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


def reap(driver: subprocess.Popen[bytes]) -> None:
    """Pid 1's duty: wait for every child (Chromium's helpers end up here); chromedriver's end is
    the container's."""
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        except InterruptedError:
            continue
        if pid == driver.pid:
            code = os.waitstatus_to_exitcode(st)
            log(f"chromedriver exited ({code})")
            os._exit(code if code > 0 else 1)


def end_idle() -> None:
    while True:
        time.sleep(max(1.0, min(10.0, IDLE_TIMEOUT / 4)))
        now = time.monotonic()
        with SESSIONS.cond:
            idle = [sid for sid, t in SESSIONS.open.items() if now - t > IDLE_TIMEOUT]
        for sid in idle:
            log(f"session {sid} idle for more than {IDLE_TIMEOUT} s (SE_NODE_SESSION_TIMEOUT): ending it")
            try:
                end_session(sid)
            except (OSError, http.client.HTTPException):
                pass


def main() -> None:
    driver = subprocess.Popen(["chromedriver", f"--port={DRIVER_PORT}"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)

    def stop(signum: int, frame: Any) -> None:
        driver.terminate()  # its Chromiums end with it (their pipe closes); pid 1's end ends the rest
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=reap, args=(driver,), name="reap", daemon=True).start()
    assert driver.stdout is not None
    started = threading.Event()

    def relay() -> None:
        assert driver.stdout is not None
        for raw in driver.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            sys.stdout.write(line + "\n")
            if "was started successfully" in line:
                started.set()

    threading.Thread(target=relay, name="relay", daemon=True).start()
    if not started.wait(60):
        sys.exit("pods-webdriver: chromedriver did not log 'ChromeDriver was started successfully' within 60 s")
    deadline = time.monotonic() + 30
    while True:  # it logs that line as it listens; /status says ready from then on
        try:
            code, body, _ = Upstream.request("GET", "/status")
            value = json.loads(body)["value"]
            if code == 200 and value["ready"]:
                break
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            sys.exit("pods-webdriver: chromedriver's /status was not ready within 30 s")
        time.sleep(0.01)
    server = Server(("0.0.0.0", PORT), Handler)
    threading.Thread(target=end_idle, name="idle", daemon=True).start()
    SESSIONS.start_spare()
    version = str((value.get("build") or {}).get("version", "?")).split(" ", 1)[0]
    log(f"ready: WebDriver on http://0.0.0.0:{PORT} and {PREFIX} (ChromeDriver and Chromium {version}; "
        f"SE_NODE_MAX_SESSIONS={MAX_SESSIONS}; "
        f"added when not sent: {' '.join(NEEDED_ARGS)})")
    server.serve_forever()


if __name__ == "__main__":
    main()
