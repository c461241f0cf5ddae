"""Hypothesis against ``pods daemon``'s socket, through a raw HTTP client that sends exactly the
bytes it is given: api.py's route shapes with random methods, references, queries and bodies
(wrong JSON types for known fields, invalid JSON), garbage paths (traversal), and garbage framing
(broken chunked encoding, wrong Content-Length, malformed request lines and headers).

After every example:

- the answer is a well-formed HTTP response with a status in ``ALLOWED``, and one >= 400 carries
  Docker's error body ``{"message": str}``;
- the daemon lives: its process runs and ``GET /_ping`` answers ``OK``;
- the engine is as before: once the harness has removed what the example created (a 201 from a
  create route), no container, network, volume or image is more or less than at the start.

What is not fuzzed, and why: the prunes act on the whole engine, other tests' objects too; pulls
and pushes of real names go to registries; the harness's running container gets no verb that
ends it (a stop that waits out a random timeout is Docker's behaviour, not a hang to find).

What this fuzz found (a non-numeric Content-Length that got no answer, negative chunk sizes, deep
JSON, wrong field types answered 500 or accepted) is fixed and pinned by the tests at the end.
Answers that only break Docker's semantics (a 500 where Docker says 400) stay in the fuzz: a
500 is an answer, and the daemon lives on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import string
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, note, settings  # noqa: E402
from hypothesis import configuration as hypothesis_configuration  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALLOWED = {101, 200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 411, 413, 500, 501}
STATUS_TIMEOUT = 20.0  # for the status line: a handler that answers nothing this long hangs
STREAM_GRACE = 0.3  # how long a stream (logs, events, attach) is read before we hang up
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")  # as api.py routes


# -- a raw HTTP client over AF_UNIX ----------------------------------------------------------------
class NoAnswer(AssertionError):
    """The daemon did not give a well-formed HTTP response."""


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    streaming: bool  # still open when we hung up: a stream, cut by us

    def json(self) -> Any:
        return json.loads(self.body)


class RawHTTP:
    """HTTP/1.1 on a unix socket, one connection per request. ``exchange`` sends ``data`` as
    given, then half-closes: whatever the request declared, it ends there (so a short body is
    seen as short, not waited for)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def exchange(self, data: bytes, method: str = "GET", *, grace: float = STREAM_GRACE) -> Answer:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(STATUS_TIMEOUT)
        try:
            sock.connect(self.path)
            sender = threading.Thread(target=_send, args=(sock, data), daemon=True)
            sender.start()  # a 20 MB body is sent while the answer is read (the daemon may stop reading)
            resp = http.client.HTTPResponse(sock, method=method.upper() if method.upper() == "HEAD" else "GET")
            try:
                resp.begin()
            except (TimeoutError, socket.timeout):
                raise NoAnswer(f"no status line within {STATUS_TIMEOUT:g} s") from None
            except (http.client.HTTPException, OSError) as exc:
                raise NoAnswer(f"no well-formed answer: {type(exc).__name__}: {exc}") from None
            if resp.status == 101:  # hijacked: the connection is the stream now
                return Answer(resp.status, resp.headers, b"", True)
            if resp.chunked or resp.length is None:
                sock.settimeout(grace)
            try:
                body = resp.read()
            except (TimeoutError, socket.timeout):
                if not (resp.chunked or resp.length is None):
                    raise NoAnswer(f"{resp.status}: the body of Content-Length {resp.length} did not come") from None
                return Answer(resp.status, resp.headers, b"", True)
            except (http.client.HTTPException, OSError) as exc:
                raise NoAnswer(f"{resp.status}: truncated body: {type(exc).__name__}: {exc}") from None
            sender.join(timeout=STATUS_TIMEOUT)
            return Answer(resp.status, resp.headers, body, False)
        finally:
            sock.close()

    def request(self, method: str, target: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        """A well-formed request; ``body`` bytes as given, anything else as JSON."""
        return self.exchange(render(method, target, _encode(body), headers), method)


def _send(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the daemon may answer and close before it read it all
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)


def _encode(body: Any) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def render(method: str, target: str, body: bytes | None, headers: dict[str, str] | None = None,
           *, chunked: bool = False) -> bytes:
    h = {"Host": "docker", **(headers or {})}
    if body is not None and chunked:
        h["Transfer-Encoding"] = "chunked"
        half = len(body) // 2
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:]) if part) + b"0\r\n\r\n"
    elif body is not None:
        h.setdefault("Content-Type", "application/json")
        h["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode("utf-8", "surrogateescape") + (body or b"")


def routed_path(target: str) -> str:
    """The path api.py routes ``target`` by: unquoted, without its /v1.xx prefix."""
    path = unquote(target.split("?", 1)[0])  # origin-form: no authority, even for "//x"
    m = _VERSIONED.match(path)
    return m.group(3) if m else path


def check_answer(ans: Answer, method: str) -> None:
    assert ans.status in ALLOWED, f"status {ans.status} is not one Docker answers"
    if ans.status >= 400 and method.upper() != "HEAD" and not ans.streaming:
        assert (ans.headers.get("Content-Type") or "").startswith("application/json"), dict(ans.headers)
        try:
            doc = ans.json()
        except ValueError:
            raise AssertionError(f"{ans.status} with a body that is not JSON: {ans.body[:300]!r}") from None
        assert isinstance(doc, dict) and isinstance(doc.get("message"), str), \
            f"{ans.status} without Docker's {{\"message\": str}}: {ans.body[:300]!r}"


# -- the harness: what exists, what the example made, is the daemon alive ------------------------------
@dataclass
class State:
    containers: frozenset[str]
    networks: frozenset[str]
    volumes: frozenset[str]
    images: frozenset[tuple[str, tuple[str, ...]]]

    def diff(self, other: State) -> dict[str, Any]:
        out = {}
        for kind in ("containers", "networks", "volumes", "images"):
            a, b = getattr(self, kind), getattr(other, kind)
            if a != b:
                out[kind] = {"gone": sorted(map(str, a - b)), "new": sorted(map(str, b - a))}
        return out


@dataclass
class Harness:
    """Scope: one fuzz test. A running container (safe verbs only), a spare created one (any verb;
    made again when an example removed it), and the engine's state before either existed."""

    http: RawHTTP
    daemon: Any
    label: str = field(default_factory=lambda: uuid.uuid4().hex)
    running: str = ""
    spare: str = ""
    baseline: State | None = None

    def ok(self, method: str, target: str, body: Any = None, want: tuple[int, ...] = (200,)) -> Answer:
        ans = self.http.request(method, target, body)
        assert ans.status in want, f"harness: {method} {target}: {ans.status} {ans.body[:300]!r}"
        return ans

    def state(self) -> State:
        own = {self.running, self.spare}
        return State(
            frozenset(r["Id"] for r in self.ok("GET", "/containers/json?all=1").json() if r["Id"] not in own),
            frozenset(n["Id"] for n in self.ok("GET", "/networks").json()),
            frozenset(v["Name"] for v in self.ok("GET", "/volumes").json()["Volumes"] or []),
            frozenset((i["Id"], tuple(sorted(i["RepoTags"] or []))) for i in self.ok("GET", "/images/json").json()),
        )

    def start(self) -> None:
        self.baseline = self.state()
        labels = {"io.pytest-pods.fuzz": self.label}
        cmd = ["sh", "-c", "trap 'exit 0' TERM; while :; do echo fuzz; sleep 1; done"]
        self.running = self.ok("POST", f"/containers/create?name=fuzz-run-{self.label[:8]}",
                               {"Image": "busybox", "Cmd": cmd, "Labels": labels, "StopTimeout": 1},
                               (201,)).json()["Id"]
        self.ok("POST", f"/containers/{self.running}/start", want=(204,))
        self.ensure()

    def ensure(self) -> None:
        """The spare exists, the running one runs (nothing the fuzz may send to it ends it)."""
        if not self.spare or self.http.request("GET", f"/containers/{self.spare}/json").status == 404:
            self.spare = self.ok("POST", f"/containers/create?name=fuzz-spare-{uuid.uuid4().hex[:8]}",
                                 {"Image": "busybox", "Cmd": ["true"], "StopTimeout": 1,
                                  "Labels": {"io.pytest-pods.fuzz": self.label}}, (201,)).json()["Id"]
        st_ = self.ok("GET", f"/containers/{self.running}/json").json()["State"]
        assert st_["Running"], f"the harness's running container ended: {st_}"

    def resolve(self, ref: Ref) -> str:
        if ref.kind == "busybox":
            return {"name": "busybox", "id": self.image_id, "short": self.image_id[7:19]}[ref.form]
        cid = self.running if ref.kind == "running" else self.spare
        if ref.form == "name":
            return str(self.ok("GET", f"/containers/{cid}/json").json()["Name"]).lstrip("/")
        return cid if ref.form == "id" else cid[:12]

    @property
    def image_id(self) -> str:
        return str(self.ok("GET", "/images/busybox/json").json()["Id"])

    def reap(self, method: str, target: str, ans: Answer) -> None:
        """Remove what the example made: a 201 from a create route names it; an image made by an
        import (``fromSrc``, an empty tar is one), a load or a build is one not in the baseline."""
        path = routed_path(target).rstrip("/")
        assert self.baseline is not None
        if method.upper() == "POST" and path in ("/images/create", "/images/load", "/build", "/commit"):
            known = {image_id for image_id, _ in self.baseline.images}
            for image_id in {image_id for image_id, _ in self.state().images} - known:
                self.ok("DELETE", f"/images/{image_id}?force=1", want=(200,))
        if method.upper() != "POST" or ans.status != 201:
            return
        doc = ans.json()
        if path == "/containers/create":
            self.ok("DELETE", f"/containers/{doc['Id']}?force=1&v=1", want=(204,))
            # a Binds or Mounts entry makes its named (or anonymous) volume at create, as Docker
            # does, and it outlives the container (anonymous ones should not with v=1:
            # test_docker_py_remove_with_v_removes_anonymous_volumes)
            for name in {v["Name"] for v in self.ok("GET", "/volumes").json()["Volumes"] or []} - self.baseline.volumes:
                self.ok("DELETE", f"/volumes/{quote(name, safe='')}?force=1", want=(204,))
        elif path == "/networks/create":
            self.ok("DELETE", f"/networks/{doc['Id']}", want=(204,))
        elif path == "/volumes/create":
            self.ok("DELETE", f"/volumes/{quote(doc['Name'], safe='')}?force=1", want=(204,))

    def check_alive(self) -> None:
        assert self.daemon.proc is not None and self.daemon.proc.poll() is None, "the daemon process ended"
        ans = self.http.request("GET", "/_ping")
        assert (ans.status, ans.body) == (200, b"OK"), f"/_ping answered {ans.status} {ans.body!r}"

    def check_state(self) -> None:
        assert self.baseline is not None
        now = self.state()
        if now != self.baseline:
            diff = self.baseline.diff(now)
            self.sweep(now)
            raise AssertionError(f"the engine changed: {diff}")

    def sweep(self, now: State) -> None:
        """Remove what a failed example left, so the next example starts clean."""
        assert self.baseline is not None
        for cid in now.containers - self.baseline.containers:
            self.http.request("DELETE", f"/containers/{cid}?force=1&v=1")
        for nid in now.networks - self.baseline.networks:
            self.http.request("DELETE", f"/networks/{nid}")
        for name in now.volumes - self.baseline.volumes:
            self.http.request("DELETE", f"/volumes/{quote(name, safe='')}?force=1")

    def one(self, call: Call) -> None:
        self.ensure()
        target = call.target(self)
        if call.raw is None:
            body = call.body  # connect/disconnect bodies name the harness's containers by placeholder
            if body is not None:
                body = body.replace(b'"@running"', json.dumps(self.running).encode()) \
                    .replace(b'"@spare"', json.dumps(self.spare).encode())
            data = render(call.method, target, body, dict(call.headers), chunked=call.chunked)
        else:
            data = call.raw
        note(f"request: {data[:3000]!r}")
        try:
            ans = self.http.exchange(data, call.method)
        except NoAnswer:
            self.check_alive()
            self.sweep(self.state())  # what it may have made, so the next example starts clean
            raise
        note(f"answer: {ans.status} {ans.body[:500]!r}")
        try:
            check_answer(ans, call.method)
        finally:
            self.reap(call.method, target, ans)
            self.check_alive()
            self.check_state()

    def finish(self) -> None:
        """Remove the harness's own containers; the engine must be as it was at the start."""
        errors = []
        for cid in (self.running, self.spare):
            if cid:
                ans = self.http.request("DELETE", f"/containers/{cid}?force=1&v=1")
                if ans.status not in (204, 404):
                    errors.append(f"remove {cid}: {ans.status} {ans.body[:200]!r}")
        self.running = self.spare = ""
        assert not errors, errors
        self.check_state()


@pytest.fixture(scope="module", autouse=True)
def hypothesis_home() -> Iterator[None]:
    """Scope: module. Hypothesis keeps caches (constants, unicode data) in ./.hypothesis even
    without an example database: here they go to a directory of their own, removed after."""
    with tempfile.TemporaryDirectory(prefix="pods-fuzz-hypothesis-") as home:
        hypothesis_configuration.set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            hypothesis_configuration.set_hypothesis_home_dir(None)


@pytest.fixture
def rawhttp(daemon: Any) -> RawHTTP:
    """Scope: function. Depends on: daemon. A raw HTTP client on the daemon's socket."""
    return RawHTTP(daemon.host.removeprefix("unix://"))


@pytest.fixture
def harness(daemon: Any, rawhttp: RawHTTP) -> Any:
    """Scope: function. Depends on: daemon, rawhttp. The fuzz harness, its containers made; the
    teardown removes them and checks the engine is as before (tests also do, to fail, not error)."""
    h = Harness(rawhttp, daemon)
    h.start()
    yield h
    h.finish()


@pytest.fixture
def reaper(daemon: Any, rawhttp: RawHTTP) -> Any:
    """Scope: function. Depends on: daemon, rawhttp. The harness without containers: a baseline,
    and ``reap`` for what a request made."""
    h = Harness(rawhttp, daemon)
    h.baseline = h.state()
    yield h
    h.finish()


# -- strategies ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    kind: str  # "running", "spare", "busybox": resolved per example (the spare may be new)
    form: str  # "id", "short", "name"


@dataclass(frozen=True)
class Call:
    method: str
    template: str  # a route shape of api.py ("/containers/{ctr}/logs") or a garbage path
    ref: str | Ref | None = None
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    chunked: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    prefix: str = ""  # "/v1.47", ...
    raw: bytes | None = None  # a whole request, as is (the framing fuzz)

    def target(self, h: Harness) -> str:
        if self.raw is not None:
            return self.template
        ref = h.resolve(self.ref) if isinstance(self.ref, Ref) else self.ref
        path = re.sub(r"\{(ctr|img|net|vol|eid)\}", lambda m: ref or "", self.template)
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)
        return self.prefix + path + (f"?{query}" if query else "")


# api.py's routes: (method, shape, parameters). Not here: the prunes (engine-wide), and the pulls
# and pushes of real names (registries); /images/create, /push and /commit get refs that fail
# before any network or write.
ROUTES: list[tuple[str, str, tuple[str, ...]]] = [
    ("GET", "/_ping", ()), ("HEAD", "/_ping", ()), ("GET", "/version", ()), ("GET", "/info", ()),
    ("GET", "/events", ("since", "until", "filters")), ("POST", "/auth", ()), ("GET", "/system/df", ()),
    ("POST", "/containers/create", ("name", "platform")), ("GET", "/containers/json", ("all", "limit", "size", "filters")),
    ("GET", "/containers/{ctr}/json", ("size",)), ("POST", "/containers/{ctr}/start", ("detachKeys",)),
    ("POST", "/containers/{ctr}/wait", ("condition",)),
    ("GET", "/containers/{ctr}/logs", ("stdout", "stderr", "follow", "timestamps", "tail", "since", "until")),
    ("POST", "/containers/{ctr}/attach", ("stdout", "stderr", "stdin", "stream", "logs")),
    ("POST", "/containers/{ctr}/stop", ("t", "signal")), ("POST", "/containers/{ctr}/kill", ("signal",)),
    ("POST", "/containers/{ctr}/restart", ("t",)), ("DELETE", "/containers/{ctr}", ("force", "v", "link")),
    ("GET", "/containers/{ctr}/top", ("ps_args",)), ("GET", "/containers/{ctr}/stats", ("stream", "one-shot")),
    ("GET", "/containers/{ctr}/archive", ("path",)), ("HEAD", "/containers/{ctr}/archive", ("path",)),
    ("PUT", "/containers/{ctr}/archive", ("path", "noOverwriteDirNonDir")),
    ("POST", "/containers/{ctr}/exec", ()), ("POST", "/containers/{ctr}/resize", ("h", "w")),
    ("POST", "/commit", ("container", "repo", "tag", "comment", "author", "pause", "changes")),
    ("POST", "/exec/{eid}/start", ()), ("POST", "/exec/{eid}/resize", ("h", "w")), ("GET", "/exec/{eid}/json", ()),
    ("GET", "/images/json", ("all", "filters", "digests")),
    ("POST", "/images/create", ("fromImage", "fromSrc", "tag", "repo")),
    ("POST", "/images/load", ("quiet",)), ("GET", "/images/get", ("names",)),
    ("POST", "/build", ("t", "dockerfile", "q", "nocache", "buildargs", "labels", "target", "networkmode")),
    ("GET", "/images/{img}/json", ()), ("GET", "/images/{img}/history", ()), ("GET", "/images/{img}/get", ()),
    ("POST", "/images/{img}/tag", ("repo", "tag")), ("POST", "/images/{img}/push", ("tag",)),
    ("DELETE", "/images/{img}", ("force", "noprune")),
    ("GET", "/networks", ("filters",)), ("POST", "/networks/create", ()), ("GET", "/networks/{net}", ("verbose",)),
    ("POST", "/networks/{net}/connect", ()), ("POST", "/networks/{net}/disconnect", ()), ("DELETE", "/networks/{net}", ()),
    ("GET", "/volumes", ("filters",)), ("POST", "/volumes/create", ()), ("GET", "/volumes/{vol}", ()),
    ("DELETE", "/volumes/{vol}", ("force",)),
]
#: what the running container may be sent: nothing that ends it, or waits on its end to answer
SAFE_ON_RUNNING = {"/containers/{ctr}/json", "/containers/{ctr}/logs", "/containers/{ctr}/top",
                   "/containers/{ctr}/stats", "/containers/{ctr}/archive", "/containers/{ctr}/exec",
                   "/containers/{ctr}/resize", "/containers/{ctr}/start", "/containers/{ctr}/attach"}
#: what busybox may be sent: reads only
SAFE_ON_IMAGE = {"/images/{img}/json", "/images/{img}/history", "/images/{img}/get"}
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "BREW"]
TRAVERSAL = ["..", "../..", "../../etc", "..%2F..%2Fetc", "%2e%2e", "%2e%2e%2f%2e%2e%2fetc", ".", "%00", "%ff",
             "a%2Fb", "..;", "%", "%zz", "\u00e9", "\U0001f600", "~root", "$(id)", "fz%0d%0aX-Injected:%201"]
QUERY_VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "2", "true", "false", "True", "False", "yes", "no", "abc", "1.5", "-0",
                     "1e309", "nan", "inf", "99999999999999999999", "\x00", "..", "../../etc", "{}", "[]", "null",
                     "\u00e9", "SIGKILL", "SIGTERM", "HUP", "9", "BOGUS", "all", "next-exit", "removed", "not-running"]),
    st.text(max_size=8))
FILTERS = st.one_of(st.sampled_from([
    '{"label":["a=b"]}', '{"label":{"a=b":true}}', '{"label":5}', '{"name":["fz"]}', '{"id":["00"]}',
    '{"status":["running","exited"]}', '{"dangling":["true"]}', '{"dangling":true}', '{"until":["abc"]}',
    '{"type":["custom"]}', '{"reference":["busy*"]}', '[1]', 'x', '{', 'null', '{"label":[null]}']), QUERY_VALUES)
# archive paths stay out of /, /proc and /sys: a tar of the kernel's files has no end
# (test_docker_py_gets_an_archive_of_the_root_directory pins what / does)
ARCHIVE_PATHS = st.sampled_from(["", "/etc", "/etc/passwd", "/tmp", "/nope", "../../etc", "/tmp/../etc", "etc",
                                 "/etc/", "\x00", "/bin/busybox", "/tmp/fz"])
# fail before any registry is asked: invalid references, or sources that are not supported
FAST_FAIL_IMAGES = st.sampled_from(["", "../../x", "UPPER", "a b", "\x00", "fz@sha256:zz", ":", "/"])


def names(prefix: str = "fz") -> st.SearchStrategy[str]:
    """Names nothing has: the prefix is no hex id's start and no test's name."""
    return st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=12).map(lambda s: prefix + s)


GARBAGE_REF = st.one_of(st.sampled_from(TRAVERSAL), names(),
                        st.text(min_size=1, max_size=16).map(lambda s: "fz" + quote(s, safe="")))

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=16))
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=10)


def field_of(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A known field's value: valid, or any JSON (the wrong types)."""
    return st.one_of(valid, valid, json_values)


def known_bodies(f: Any) -> dict[str, st.SearchStrategy[Any]]:
    """The bodies of the routes that take an object, each field's value through ``f``: valid only
    (objects get made, and must be removed), or ``field_of`` (wrong types too)."""
    strs = st.lists(st.text(max_size=10), max_size=3)
    labels = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
    host_config = st.fixed_dictionaries({}, optional={
        "Binds": f(st.lists(st.sampled_from(["/tmp:/x", "/tmp:/x:ro", "fzvol:/v", "relative", "/etc:rel", "::"]),
                            max_size=2)),
        "PortBindings": f(st.dictionaries(st.sampled_from(["80/tcp", "80", "abc/tcp", "53/udp", "0/tcp"]),
                                          st.lists(st.fixed_dictionaries({}, optional={
                                              "HostIp": st.sampled_from(["", "127.0.0.1", "x"]),
                                              "HostPort": st.sampled_from(["", "0", "abc", "70000"])}), max_size=2),
                                          max_size=2)),
        "Memory": f(st.integers(0, 2**40)), "NanoCpus": f(st.integers(0, 10**10)),
        "NetworkMode": f(st.sampled_from(["bridge", "default", "host", "none", "fz-none", "container:fz"])),
        "Privileged": f(st.booleans()), "AutoRemove": f(st.booleans()), "Init": f(st.booleans()),
        "Tmpfs": f(st.dictionaries(st.sampled_from(["/t", "rel", ""]), st.sampled_from(["", "size=1m"]), max_size=2)),
        "Mounts": f(st.lists(st.fixed_dictionaries({}, optional={
            "Type": st.sampled_from(["bind", "volume", "tmpfs", "npipe"]), "Source": st.sampled_from(["", "/tmp", "fzm"]),
            "Target": st.sampled_from(["", "/m", "rel"]), "ReadOnly": st.booleans()}), max_size=2)),
        "CapAdd": f(st.lists(st.sampled_from(["NET_ADMIN", "ALL", "BOGUS"]), max_size=2)),
        "SecurityOpt": f(st.lists(st.sampled_from(["no-new-privileges=false", "seccomp=unconfined"]), max_size=2)),
        "PidsLimit": f(st.integers(-1, 100)), "ReadonlyRootfs": f(st.booleans()),
        "RestartPolicy": f(st.fixed_dictionaries({"Name": st.sampled_from(["no", "always", "bogus"])})),
    })
    create = st.fixed_dictionaries({"Image": f(st.sampled_from(
        ["busybox", "busybox", "busybox:latest", "fz-none:1", "testcontainers/ryuk:0.8.1", "../../etc", "UPPER", ""]))},
        optional={
        "Cmd": f(st.one_of(strs, st.sampled_from([["true"], "true"]))), "Entrypoint": f(strs),
        "Env": f(st.lists(st.sampled_from(["A=1", "A", "=", "PATH="]), max_size=3)), "Labels": f(labels),
        "Tty": f(st.booleans()), "OpenStdin": f(st.booleans()),
        "StopSignal": f(st.sampled_from(["SIGTERM", "9", "BOGUS"])), "StopTimeout": f(st.integers(-1, 30)),
        "ExposedPorts": f(st.dictionaries(st.sampled_from(["80/tcp", "x"]), st.just({}), max_size=2)),
        "Volumes": f(st.dictionaries(st.sampled_from(["/data", "rel"]), st.just({}), max_size=1)),
        "HostConfig": f(host_config),
        "NetworkingConfig": f(st.fixed_dictionaries({"EndpointsConfig": f(st.dictionaries(
            st.sampled_from(["bridge", "fz"]), st.fixed_dictionaries({}, optional={"Aliases": f(strs)}), max_size=2))})),
    })
    exec_ = st.fixed_dictionaries({}, optional={
        "Cmd": f(st.one_of(strs, st.sampled_from([["true"], ["sh", "-c", "exit 3"], ["/nope"]]))),
        "AttachStdout": f(st.booleans()), "AttachStderr": f(st.booleans()),
        "AttachStdin": f(st.booleans()), "Tty": f(st.booleans()), "Env": f(strs),
        "User": f(st.sampled_from(["", "nobody", "0:0", "fz"])), "WorkingDir": f(st.sampled_from(["/", "/tmp", "rel"])),
        "Detach": f(st.booleans())})
    network = st.fixed_dictionaries({}, optional={
        "Name": f(names()), "Driver": f(st.sampled_from(["bridge", "overlay", ""])),
        "Internal": f(st.booleans()), "Labels": f(labels),
        "IPAM": f(st.fixed_dictionaries({}, optional={"Config": f(st.lists(st.fixed_dictionaries({}, optional={
            "Subnet": st.sampled_from(["10.250.0.0/24", "bogus", "10.250.0.0/33", ""])}), max_size=1))}))})
    volume = st.fixed_dictionaries({}, optional={"Name": f(names()), "Labels": f(labels),
                                                 "Driver": f(st.sampled_from(["local", "fz"]))})
    connect = st.fixed_dictionaries({}, optional={
        "Container": f(st.one_of(names(), st.just("@running"), st.just("@spare"))),
        "Force": f(st.booleans()),
        "EndpointConfig": f(st.fixed_dictionaries({}, optional={"Aliases": f(strs)}))})
    return {"/containers/create": create, "/containers/{ctr}/exec": exec_, "/exec/{eid}/start": exec_,
            "/networks/create": network, "/volumes/create": volume, "/commit": create,
            "/networks/{net}/connect": connect, "/networks/{net}/disconnect": connect}


VALID_BODIES = known_bodies(lambda s: s)
MIXED_BODIES = known_bodies(field_of)
GARBAGE_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"{", b'{"Image":', b"[", b"nul", b'{"a":1}}', b"\xff\xfe", b'"str"', b"5", b"[]", b"{}",
                     b'{"Image": "busybox", "Image": 5}', b"\x00" * 1024, b"[" * 5000 + b"]" * 5000]),
    json_values.map(lambda v: json.dumps(v).encode()))


def _auth_body(body: bytes | None) -> bytes:
    """A login never reaches Docker Hub (the default server): an object names 127.0.0.1:1, refused
    at once; anything else the daemon must refuse before it logs in."""
    try:
        doc = json.loads(body) if body is not None else {}
    except ValueError:
        return body or b""
    if isinstance(doc, dict):
        doc["serveraddress"] = "127.0.0.1:1"
        return json.dumps(doc).encode()
    return body or b""


@st.composite
def calls(draw: st.DrawFn) -> Call:
    if draw(st.integers(0, 9)) == 0:  # a garbage path
        parts = draw(st.lists(st.sampled_from(["containers", "images", "networks", "volumes", "exec", "json", "..",
                                               ".", "%2e%2e", "%2F", "etc", "passwd", "start", "stop", "logs",
                                               "archive", "v1.47", "v0.9", "", "fz", "\u00e9", "%00", "a:b", "..;",
                                               "create", "_ping", "version"]), max_size=6))
        return Call(draw(st.sampled_from(METHODS)), "/" + "/".join(parts),
                    body=draw(st.one_of(st.none(), GARBAGE_BODIES)))
    method, template, params = draw(st.sampled_from(ROUTES))
    ref: str | Ref | None = None
    own_method = False  # a random method on a real object could be a verb it must not get
    if "{ctr}" in template:
        kinds = ["garbage", "spare"] + (["running"] if template in SAFE_ON_RUNNING else [])
        kind = draw(st.sampled_from(kinds))
        ref = draw(GARBAGE_REF) if kind == "garbage" else Ref(kind, draw(st.sampled_from(["id", "short", "name"])))
        own_method = kind == "running"
    elif "{img}" in template:
        if template in SAFE_ON_IMAGE and draw(st.booleans()):
            ref, own_method = Ref("busybox", draw(st.sampled_from(["id", "short", "name"]))), True
        else:
            ref = draw(GARBAGE_REF)
    elif "{net}" in template:
        ref = draw(st.one_of(GARBAGE_REF, st.sampled_from(["bridge", "host", "none"])))
    elif "{vol}" in template:
        ref = draw(GARBAGE_REF)
    elif "{eid}" in template:
        ref = draw(st.one_of(GARBAGE_REF, st.text(alphabet="0123456789abcdef", min_size=1, max_size=64)))
    if not own_method and draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(METHODS))
    query = []
    for name in params:
        if not draw(st.booleans()):
            continue
        if name == "filters":
            value = draw(FILTERS)
        elif name == "path":
            value = draw(ARCHIVE_PATHS)
        elif name == "until" and template == "/events":  # mostly past: the stream ends at once
            value = draw(st.one_of(st.sampled_from(["0", "1", "1.5", str(int(time.time()) - 5)]), QUERY_VALUES))
        elif name == "fromImage":
            value = draw(FAST_FAIL_IMAGES)
        elif name == "fromSrc":
            value = draw(st.sampled_from(["-", "http://127.0.0.1:1/x.tar", ""]))
        elif name in ("container", "names"):
            value = draw(GARBAGE_REF)
        else:
            value = draw(QUERY_VALUES)
        query.append((name, value))
    if template == "/events" and "until" not in dict(query):
        query.append(("until", "0"))
    # unknown parameters, never a known one's name ("x" starts none)
    query += draw(st.lists(st.tuples(st.text(alphabet=string.ascii_letters, max_size=6).map(lambda s: "x" + s),
                                     QUERY_VALUES), max_size=2))
    body: bytes | None = None
    if method in ("POST", "PUT") or draw(st.integers(0, 9)) == 0:
        shape = draw(st.sampled_from(["none", "garbage", "mixed", "valid"]))
        if shape == "garbage":
            body = draw(GARBAGE_BODIES)
        elif shape != "none":
            known = (VALID_BODIES if shape == "valid" else MIXED_BODIES).get(template, json_values)
            body = json.dumps(draw(known)).encode()
    if template == "/auth":
        body = _auth_body(body)
    return Call(method, template, ref, tuple(query), body, chunked=draw(st.integers(0, 4)) == 0,
                headers=tuple(draw(st.lists(st.sampled_from([
                    ("Content-Type", "text/plain"), ("Content-Type", "application/x-tar"), ("Connection", "close"),
                    ("Connection", "Upgrade"), ("Upgrade", "tcp"), ("X-Registry-Auth", "!!notbase64"),
                    ("X-Registry-Auth", "e30"), ("Expect", "100-continue"), ("User-Agent", "\u00e9")]), max_size=2))),
                prefix=draw(st.sampled_from(["", "", "/v1.47", "/v1.24", "/v1.41", "/v0.9", "/v9.99", "/v1.abc"])))


@st.composite
def framings(draw: st.DrawFn) -> Call:
    """A whole request, its framing broken: request line, headers, Content-Length, chunks."""
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "BREW", "get", ""]))
    target = draw(st.one_of(st.sampled_from([
        "/_ping", "/v1.47/_ping", "/containers/json", "/v1.47/containers/create", "/volumes/create",
        "/networks/create", "/exec/fz/start", "/build", "/images/load", "/containers/fz/wait",
        "/containers/fz/archive?path=/tmp", "*", "http://docker/_ping", "/_ping?" + "a" * 5000]),
        st.text(max_size=20).map(lambda s: "/" + s)))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "http/1.1", "",
                                    "HTTP/1.1 extra"]))
    line = " ".join(p for p in (method, target, version) if p).encode("utf-8", "surrogateescape")
    headers: list[bytes] = []
    if draw(st.booleans()):
        headers.append(b"Host: docker")
    # integers only: a non-numeric Content-Length is pinned by test_non_numeric_content_length_*
    for _ in range(draw(st.integers(0, 2))):
        headers.append(b"Content-Length: %d" % draw(st.one_of(st.integers(-5, 64), st.integers(0, 2**70))))
    te = draw(st.sampled_from([None, None, "chunked", "Chunked", "gzip", "chunked, gzip", "identity", "x"]))
    if te:
        headers.append(f"Transfer-Encoding: {te}".encode())
    headers += draw(st.lists(st.sampled_from([
        b"Connection: close", b"Connection: keep-alive", b"Connection: Upgrade", b"Upgrade: tcp",
        b"Content-Type: application/json", b"nocolon", b" folded continuation", b": empty-name",
        b"X-Long: " + b"a" * 70000, b"X-Bin: \x00\xff", b"Expect: 100-continue"]), max_size=3))
    payload = draw(st.sampled_from([b"", b"{}", b'{"Image": 5}', b'{"Image": "busybox"}', b"garbage\x00\xff",
                                    b"[" * 3000]))
    if te and "chunked" in te.lower():
        body = b""
        for part in (payload[: len(payload) // 2], payload[len(payload) // 2:]):
            # no negative sizes: test_negative_chunk_size_is_a_bad_chunk_size pins them
            size = draw(st.sampled_from(["ok", "ok", "big", "small", "hex-junk", "empty", "huge", "ext"]))
            declared = {"ok": b"%x" % len(part), "big": b"%x" % (len(part) + 7), "small": b"%x" % max(0, len(part) - 1),
                        "hex-junk": b"zz", "empty": b"", "huge": b"f" * 24, "ext": b"%x;a=b" % len(part)}[size]
            body += declared + eol + part + eol
        if draw(st.booleans()):
            body += b"0" + eol + draw(st.sampled_from([b"", b"X-Trailer: 1" + eol])) + eol
    else:
        body = payload
    data = line + eol + b"".join(h + eol for h in headers) + eol + body
    if draw(st.integers(0, 4)) == 0:
        data += b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"  # pipelined
    return Call(method or "GET", target, raw=data)


FUZZ_SETTINGS = settings(max_examples=300, deadline=None, database=None, print_blob=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture,
                                                HealthCheck.large_base_example])


# -- the fuzz --------------------------------------------------------------------------------------
def test_random_routes_get_docker_answers_and_change_nothing_left_behind(harness: Harness) -> None:
    @FUZZ_SETTINGS
    @given(calls())
    def one(call: Call) -> None:
        harness.one(call)

    one()
    harness.finish()


def test_broken_framing_gets_an_answer_and_never_ends_the_daemon(harness: Harness) -> None:
    @settings(FUZZ_SETTINGS, max_examples=200)
    @given(framings())
    # found by CI: a target that urlsplit takes for a broken IPv6 authority ended the connection
    @example(Call("GET", "//[", raw=b"GET //[ HTTP/1.1\r\n\r\nGET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"))
    @example(Call("GET", "//\r[", raw=b"GET //\r[ HTTP/1.1\r\n\r\nGET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"))
    def one(call: Call) -> None:
        harness.one(call)

    one()
    harness.finish()


TWENTY_MB = 20 * 1024 * 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_20_mb_create_body_is_refused_with_413(harness: Harness, chunked: bool) -> None:
    body = json.dumps({"Image": "busybox", "Env": ["A=" + "x" * TWENTY_MB]}).encode()
    ans = harness.http.exchange(render("POST", "/containers/create", body, chunked=chunked), "POST")
    check_answer(ans, "POST")
    assert ans.status == 413, ans.body[:300]
    harness.reap("POST", "/containers/create", ans)
    harness.check_alive()
    harness.check_state()
    harness.finish()


def test_a_20_mb_body_is_drained_or_read_and_answered(harness: Harness) -> None:
    ans = harness.http.exchange(render("GET", "/_ping", b"x" * TWENTY_MB), "GET")
    assert (ans.status, ans.body) == (200, b"OK")
    ans = harness.http.exchange(render("PUT", f"/containers/{harness.running}/archive?path=/tmp",
                                       b"\x01" * TWENTY_MB, {"Content-Type": "application/x-tar"}), "PUT")
    check_answer(ans, "PUT")
    assert 400 <= ans.status < 600, "20 MB of 0x01 is no tar"
    harness.check_alive()
    harness.finish()


# -- what the fuzz found: pinned, with the handler to fix --------------------------------------------
@pytest.mark.parametrize("value", ["abc", "3, 4"])
def test_non_numeric_content_length_is_answered_400(rawhttp: RawHTTP, value: str) -> None:
    ans = rawhttp.exchange(b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: %s\r\n\r\n{}" % value.encode())
    assert ans.status == 400
    check_answer(ans, "POST")


def test_negative_chunk_size_is_a_bad_chunk_size(rawhttp: RawHTTP) -> None:
    ans = rawhttp.exchange(b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"-5\r\n{}\r\n0\r\n\r\n", "POST")
    assert ans.status == 400
    assert ans.json()["message"] == "bad chunk size"


@pytest.mark.parametrize("route", ["/containers/create", "/networks/create", "/volumes/create"])
def test_deeply_nested_json_is_answered_400(reaper: Harness, route: str) -> None:
    ans = reaper.http.request("POST", route, b"[" * 5000 + b"]" * 5000)
    reaper.reap("POST", route, ans)
    check_answer(ans, "POST")
    assert ans.status == 400, f"{ans.status} {ans.body[:300]!r}"


def test_events_until_that_is_not_a_time_is_answered_400(rawhttp: RawHTTP) -> None:
    """Found by this fuzz (a 200 head, then the chunked body cut), fixed in Api.events_stream."""
    ans = rawhttp.request("GET", "/events?until=abc")
    assert ans.status == 400
    check_answer(ans, "GET")


# (route, body, the handler): Docker answers each 400 (its JSON decoder refuses the type); the
# daemon answers 500 with a Python exception's text, from http.py's "a bug of ours" path.
WRONG_TYPES_500 = [
    ("/containers/create", {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": "x"}}},
     "_create_kwargs (PortBindings value)"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [5]}}},
     "_create_kwargs (PortBindings entry)"),
    ("/containers/create", {"Image": "busybox", "User": 5}, "_create_kwargs (User)"),
    ("/containers/create", {"Image": "busybox", "WorkingDir": 5}, "_create_kwargs (WorkingDir)"),
    ("/auth", [1], "Api.auth (no object check)"),
    ("/networks/bridge/connect", [1], "Api.network_connect (no object check)"),
    ("/networks/bridge/connect", {"Container": "fz", "EndpointConfig": "y"}, "Api.network_connect (EndpointConfig)"),
    ("/networks/bridge/disconnect", [1], "Api.network_disconnect (no object check)"),
    # the daemon means 400 'invalid build context: ...' (its PodsError catch) but tarfile.ReadError escapes
    ("/build", b"", "Api.build (empty body: tarfile.ReadError from extract_into is no PodsError)"),
    ("/build", b"garbage", "Api.build (no tar: tarfile.ReadError from extract_into is no PodsError)"),
]
# Docker answers 400; the daemon creates the object (and ignores or stringifies the value)
WRONG_TYPES_ACCEPTED = [
    ("/containers/create", {"Image": "busybox", "Labels": {"a": {"b": 1}}}, "_create_kwargs (Labels values)"),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"Tmpfs": {"/x": 5}}}, "_create_kwargs (Tmpfs values)"),
    ("/containers/create", {"Image": "busybox", "StopTimeout": "x"}, "_create_kwargs (StopTimeout)"),
    ("/networks/create", {"Name": "fz-ipam-str", "IPAM": {"Config": "x"}}, "Api.network_create (IPAM.Config)"),
    ("/networks/create", {"Name": "fz-ipam-int", "IPAM": {"Config": [5]}}, "Api.network_create (IPAM.Config[0])"),
]
WRONG_TYPES_400 = [  # what the daemon gets right: kept right
    ("/containers/create", {"Image": "busybox", "Cmd": 5}), ("/containers/create", {"Image": "busybox", "Env": {"a": 1}}),
    ("/containers/create", {"Image": "busybox", "HostConfig": "x"}), ("/containers/create", {"Image": 5}),
    ("/containers/create", {"Image": "busybox", "Labels": ["a"]}),
    ("/containers/create", {"Image": "busybox", "Entrypoint": 5}),
    ("/containers/create", [1, 2]), ("/containers/create", b"{not json"), ("/containers/create", b'"str"'),
    ("/networks/create", {"Name": 5}), ("/volumes/create", {"Name": 5}), ("/volumes/create", {"Labels": "x"}),
    ("/containers/create", {"Image": "busybox", "HostConfig": {"Binds": ["/etc:relative"]}}),
]


@pytest.mark.parametrize(("route", "body"), [
    *WRONG_TYPES_400,
    *(pytest.param(r, b, id=f"was-500-{where}") for r, b, where in WRONG_TYPES_500),
    *(pytest.param(r, b, id=f"was-201-{where}") for r, b, where in WRONG_TYPES_ACCEPTED),
])
def test_a_wrong_json_type_is_answered_400(reaper: Harness, route: str, body: Any) -> None:
    ans = reaper.http.request("POST", route, body)
    reaper.reap("POST", route, ans)
    check_answer(ans, "POST")
    assert ans.status == 400, f"{ans.status} {ans.body[:300]!r}"
