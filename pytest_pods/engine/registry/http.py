"""HTTP to OCI registries: base URLs, TLS rules, auth challenges, credentials, redirects.

One ``RegistryClient`` per registry host. ``request`` sends a request for a repository scope and
answers the registry's 401 challenge (Basic, or the Bearer token flow with scopes), caching
tokens per scope. Credentials and tokens are only ever sent to the host they belong to: redirects
are followed here, not by requests, and a hop to another host:port (blob storage often redirects)
carries no Authorization header; no cookies are kept at all (docker's Go client keeps none).

Endpoints, as docker tries them:

- a host elsewhere: ``https`` verified with the system CAs plus the registry's own CAs from
  ``/etc/docker/certs.d/HOST:PORT/*.crt`` (``PODS_CERTS_D`` overrides the directory), and the
  client certificate ``*.cert`` + ``*.key`` there when present;
- localhost, 127.0.0.0/8, ``[::1]``: the same ``https`` first, then plain ``http`` when the server
  does not speak TLS. A certificate that fails verification is an error, not a reason to fall back;
- ``insecure=True``: ``https`` unverified, then plain ``http`` (docker's insecure-registries).

Nothing here logs or raises a password or token: messages name the host, the path and the scope.
"""

from __future__ import annotations

import base64
import http.cookiejar
import logging
import os
import re
import ssl
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from pytest_pods.engine.registry import credentials as _credentials
from pytest_pods.errors import RegistryAuthError, RegistryError, RegistryTLSError

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
CERTS_D = "/etc/docker/certs.d"
MAX_REDIRECTS = 10
#: The distribution token spec's default lifetime, and docker's minimum.
DEFAULT_TOKEN_TTL = 60.0
CLIENT_ID = "pytest-pods"


def api_host(domain: str) -> str:
    """The host that serves the distribution API for a reference's domain."""
    return DOCKER_HUB_API if domain in (DOCKER_HUB, "index.docker.io") else domain


def is_local(host: str) -> bool:
    """Loopback names, where docker allows plain HTTP without being told."""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")


def base_url(host: str, insecure: bool = False) -> str:
    """The base URL of last resort: ``http`` where plain HTTP is allowed, else ``https``.

    ``RegistryClient`` tries ``https`` first even where this says ``http`` (see ``endpoints``).
    """
    return ("http://" if insecure or is_local(host) else "https://") + host


def endpoints(host: str, insecure: bool = False) -> list[tuple[str, bool]]:
    """``(base URL, verify TLS)`` in the order tried; plain HTTP only where ``base_url`` allows it."""
    if insecure:
        return [("https://" + host, False), ("http://" + host, False)]
    if is_local(host):
        return [("https://" + host, True), ("http://" + host, False)]
    return [("https://" + host, True)]


def certs_dir() -> Path:
    """Where per-registry CAs and client certs live (docker's layout); ``PODS_CERTS_D`` for tests."""
    return Path(os.environ.get("PODS_CERTS_D") or CERTS_D)


def _netloc(url: str) -> str:
    """``host:port`` with the default port spelled out, lower case: the unit credentials belong to."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def _safe(url: str) -> str:
    """A URL for messages: no query (presigned blob URLs carry signatures there), no userinfo."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- WWW-Authenticate ------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME_RE = re.compile(rf"[\s,]*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^\s,]*)\s*,?")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse RFC 7235 challenges; several may share one header (requests joins repeated headers)."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(header):
        m = _SCHEME_RE.match(header, pos)
        if m is None:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        while True:
            p = _PARAM_RE.match(header, pos)
            if p is None:
                break
            value = p.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[p.group(1).lower()] = value
            pos = p.end()
        out.append(Challenge(scheme, params))
        if not params and pos < len(header) and header[pos] not in " ,":
            break  # token68 or garbage: nothing more we understand
    return out


# --- scopes ----------------------------------------------------------------------------------

def merge_scopes(*scopes: str) -> list[str]:
    """Union of space-separated ``type:name:actions`` scopes, one entry per resource.

    ``repository:x:pull,push`` already covers a challenge's ``repository:x:pull``: asking for both
    separately would work too, but one entry per resource is what docker sends.
    """
    merged: dict[tuple[str, str], list[str]] = {}
    for group in scopes:
        for s in group.split():
            kind, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if not name:
                name, actions = rest, ""
            acts = merged.setdefault((kind, name), [])
            for a in actions.split(","):
                if a and a not in acts:
                    acts.append(a)
    return [f"{k}:{n}:{','.join(a)}" for (k, n), a in merged.items()]


# --- request bodies --------------------------------------------------------------------------

class _Body:
    """A request body that can be sent again (after a challenge, a 307, a fallback to http)."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.pos: int | None = None
        self.replayable = data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple))
        if not self.replayable and hasattr(data, "seek") and hasattr(data, "tell"):
            try:
                self.pos = data.tell()
                self.replayable = True
            except OSError:
                pass

    def rewind(self, what: str) -> None:
        if not self.replayable:
            raise RegistryError(f"{what}: cannot send a streamed body twice. Send a request for this "
                                "scope first (HEAD or the upload POST) so the auth is known, then stream.")
        if self.pos is not None:
            self.data.seek(self.pos)


# --- TLS material ----------------------------------------------------------------------------

def _system_cafile() -> str | None:
    """The CA bundle that ``verify=True`` would use, so that certs.d adds to it rather than replace."""
    env = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if env and os.path.isfile(env):
        return env
    paths = ssl.get_default_verify_paths()
    for p in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if p and os.path.isfile(p):
            return p
    return None


def _host_certs(netloc: str) -> tuple[list[Path], tuple[str, str] | None]:
    """(CA files, client cert and key) from ``certs.d/<netloc>``, as docker reads that directory."""
    d = certs_dir() / netloc
    if not d.is_dir():
        return [], None
    cas = sorted(d.glob("*.crt"))
    client: tuple[str, str] | None = None
    for cert in sorted(d.glob("*.cert")):
        key = cert.with_suffix(".key")
        if not key.is_file():
            raise RegistryTLSError(f"read client certificate {cert}: {key.name} is missing. "
                                   "Add the key next to it and try again.")
        client = client or (str(cert), str(key))
    for key in sorted(d.glob("*.key")):
        if not key.with_suffix(".cert").is_file():
            raise RegistryTLSError(f"read client key {key}: {key.with_suffix('.cert').name} is missing. "
                                   "Add the certificate next to it and try again.")
    return cas, client


def _is_verify_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            return True
        todo.extend([e.__cause__, e.__context__, getattr(e, "reason", None), *e.args])
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


# --- the client ------------------------------------------------------------------------------

class _NoNetrc(requests.auth.AuthBase):
    """Set as the session's auth so that requests never adds ``~/.netrc`` credentials on its own."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


@dataclass
class _Token:
    value: str
    expires: float


class RegistryClient:
    """Requests to one registry host, with its auth challenges answered and tokens cached."""

    def __init__(self, host: str, *, insecure: bool = False, credentials: tuple[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        self.domain = host  # as the user wrote it: the key for stored credentials
        self.host = api_host(host)
        self.insecure = insecure
        self.credentials = credentials
        self._resolved = credentials is not None
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = _NoNetrc()
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._base: str | None = None
        self._verify = not insecure
        self._challenge: Challenge | None = None  # the registry's last challenge: lets us pre-authorize
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self._bundles: dict[tuple[str, ...], str] = {}
        self._finalizer = weakref.finalize(self, _remove_files, self._bundles)

    # -- endpoint --------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The base URL in use (``https://host`` or ``http://host``); probes ``/v2/`` on first use."""
        if self._base is None:
            try:
                self.request("GET", "/v2/", scope="").close()
            except RegistryAuthError:
                pass  # the endpoint answered: that is all we asked
        assert self._base is not None
        return self._base

    @base.setter
    def base(self, value: str) -> None:
        self._base = value.rstrip("/")

    def _is_registry(self, url: str) -> bool:
        return _netloc(url) == _netloc("https://" + self.host) or _netloc(url) == _netloc("http://" + self.host)

    def _tls(self, url: str, verify: bool) -> tuple[bool | str, tuple[str, str] | None]:
        """``verify`` and ``cert`` for requests: system CAs plus certs.d of the host (and the registry's)."""
        if not url.startswith("https://"):
            return True, None
        netloc = urlsplit(url).netloc
        cas, client = _host_certs(netloc)
        if not self._is_registry(url):
            # A redirect target: its own certs.d, plus the registry's CAs (one transport, as docker's).
            reg_cas, _ = _host_certs(self.host)
            cas = sorted(set(cas) | set(reg_cas))
        if not verify:
            return False, client
        if not cas:
            return True, client
        return self._bundle(cas), client

    def _bundle(self, cas: list[Path]) -> str:
        key = tuple(str(c) for c in cas)
        with self._lock:
            path = self._bundles.get(key)
            if path and os.path.exists(path):
                return path
            parts = []
            system = _system_cafile()
            if system:
                parts.append(Path(system).read_text(errors="replace"))
            for c in cas:
                try:
                    parts.append(c.read_text())
                except OSError as exc:
                    raise RegistryTLSError(f"read CA {c}: {exc.strerror}") from None
            fd, path = tempfile.mkstemp(prefix="pods-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(parts))
            self._bundles[key] = path
            return path

    # -- sending ---------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], body: _Body, stream: bool,
              verify: bool | None = None) -> requests.Response:
        v, cert = self._tls(url, self._verify if verify is None else verify)
        resp = self.session.request(method, url, headers=headers, data=body.data, stream=stream,
                                    allow_redirects=False, timeout=self.timeout, verify=v, cert=cert)
        log.debug("%s %s -> %s", method, _safe(url), resp.status_code)
        return resp

    def _send_path(self, method: str, path: str, headers: dict[str, str], body: _Body,
                   stream: bool) -> requests.Response:
        """Send to our base URL, finding it first: https, then http where that is allowed."""
        if self._base is not None:
            return self._send(method, self._base + path, headers, body, stream)
        candidates = endpoints(self.host, self.insecure)
        for i, (base, verify) in enumerate(candidates):
            try:
                resp = self._send(method, base + path, headers, body, stream, verify)
            except requests.exceptions.SSLError as exc:
                if verify and _is_verify_error(exc):
                    raise RegistryTLSError(
                        f"{method} {base}{path}: certificate verify failed. Put the registry's CA in "
                        f"{certs_dir() / self.host}/ca.crt (or use insecure) and try again.") from None
                if i == len(candidates) - 1:
                    raise
                log.debug("%s does not speak TLS: trying %s", self.host, candidates[i + 1][0])
                body.rewind(f"{method} {self.host}{path}")
                continue
            self._base, self._verify = base, verify
            return resp
        raise AssertionError("unreachable")

    def _send_any(self, method: str, path_or_url: str, headers: dict[str, str], body: _Body,
                  stream: bool) -> requests.Response:
        if "://" in path_or_url:
            return self._send(method, path_or_url, headers, body, stream)
        return self._send_path(method, path_or_url, headers, body, stream)

    def request(self, method: str, path_or_url: str, *, scope: str, headers: dict[str, str] | None = None,
                data: Any = None, stream: bool = False, allow_redirects: bool = True) -> requests.Response:
        """``path_or_url``: ``/v2/...`` on this host, or an absolute URL the registry gave
        (a Location header). ``scope``: e.g. ``repository:library/busybox:pull`` (``""`` for none).

        Answers a 401 once (Basic, or a Bearer token for the scope); follows up to 10 redirects
        unless ``allow_redirects=False``, dropping Authorization on a hop to another host.

        :raises RegistryAuthError: still 401 after authenticating, or no way to authenticate.
        :raises RegistryTLSError: the certificate did not verify.
        :raises RegistryError: too many redirects, a body that cannot be re-sent, a broken token service.
        """
        method = method.upper()
        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        body = _Body(data)
        what = f"{method} {self.host}{urlsplit(path_or_url).path}"
        ours = "://" not in path_or_url or self._is_registry(path_or_url)

        auth = self._preauth(scope) if ours else None
        resp = self._send_any(method, path_or_url, self._with(hdrs, auth), body, stream)
        if ours and resp.status_code == 401:
            header = resp.headers.get("WWW-Authenticate", "")
            errors = _error_codes(resp)
            resp.close()
            self._forget(scope)
            auth = self._authorize(header, scope, what, errors)
            body.rewind(what)
            resp = self._send_any(method, path_or_url, self._with(hdrs, auth), body, stream)
            if resp.status_code == 401:
                errors = _error_codes(resp)
                resp.close()
                self._forget(scope)
                raise self._refused(what, scope, errors)
        if allow_redirects:
            resp = self._follow(resp, method, hdrs, body, stream, auth, what)
        return resp

    @staticmethod
    def _with(headers: dict[str, str], auth: str | None) -> dict[str, str]:
        return {**headers, "Authorization": auth} if auth else dict(headers)

    def _follow(self, resp: requests.Response, method: str, headers: dict[str, str], body: _Body,
                stream: bool, auth: str | None, what: str) -> requests.Response:
        """Redirects by hand, so that credentials never leave the registry's host:port."""
        hops = 0
        while resp.status_code in (301, 302, 303, 307, 308) and "Location" in resp.headers:
            hops += 1
            if hops > MAX_REDIRECTS:
                resp.close()
                raise RegistryError(f"{what}: more than {MAX_REDIRECTS} redirects")
            url = urljoin(resp.url, resp.headers["Location"])
            status = resp.status_code
            resp.close()
            if status in (307, 308):
                body.rewind(what)
            elif method not in ("GET", "HEAD"):
                # As Go's client (and browsers) do: 301/302/303 of anything else becomes a GET.
                method, body = "GET", _Body(None)
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in ("content-type", "content-length", "content-encoding")}
            same = self._is_registry(url)
            log.debug("redirect %s -> %s%s", what, _safe(url), "" if same else " (no credentials)")
            resp = self._send(method, url, self._with(headers, auth if same else None), body, stream)
        return resp

    # -- auth ------------------------------------------------------------------------------

    def _creds(self) -> tuple[str, str] | None:
        """Our credentials, looked up only when a challenge needs them (anonymous pulls stay quiet)."""
        if not self._resolved:
            self.credentials = _credentials.resolve(self.domain)
            self._resolved = True
        return self.credentials

    def _preauth(self, scope: str) -> str | None:
        """The Authorization we already know works for ``scope``, to skip a 401 round trip."""
        ch = self._challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            creds = self.credentials if self._resolved else None
            return _basic(*creds) if creds else None
        with self._lock:
            tok = self._tokens.get(scope)
            if tok and tok.expires > time.monotonic():
                return "Bearer " + tok.value
        return None

    def _forget(self, scope: str) -> None:
        with self._lock:
            self._tokens.pop(scope, None)

    def _authorize(self, header: str, scope: str, what: str, errors: str) -> str:
        challenges = parse_challenges(header)
        by = {c.scheme: c for c in challenges}
        if "bearer" in by:
            ch = by["bearer"]
            self._challenge = ch
            return "Bearer " + self._token(ch, scope, what)
        if "basic" in by:
            self._challenge = by["basic"]
            creds = self._creds()
            if creds is None:
                raise RegistryAuthError(f"{what}: authentication required and no credentials for {self.domain}. "
                                        f"Run `pods login {self.domain}` and try again.", self.domain)
            return _basic(*creds)
        schemes = ", ".join(c.scheme for c in challenges) or "none"
        raise RegistryAuthError(f"{what}: authentication required{errors}, by a scheme we do not speak "
                                f"({schemes})", self.domain)

    def _token(self, ch: Challenge, scope: str, what: str) -> str:
        """A Bearer token for ``scope`` (plus what the challenge asks), fetched once and cached."""
        realm = ch.params.get("realm")
        if not realm:
            raise RegistryAuthError(f"{what}: the registry's Bearer challenge names no realm", self.domain)
        scopes = merge_scopes(scope, ch.params.get("scope", ""))
        with self._lock:
            tok = self._tokens.get(scope)
            if tok and tok.expires > time.monotonic():
                return tok.value
        creds = self._creds()
        realm_host = urlsplit(realm).hostname or ""
        if creds and realm.startswith("http://") and not (self.insecure or is_local(realm_host)):
            raise RegistryAuthError(f"{what}: the token realm {_safe(realm)} is plain HTTP; not sending "
                                    "credentials there. Use insecure to allow it.", self.domain)
        params: list[tuple[str, str]] = []
        if ch.params.get("service"):
            params.append(("service", ch.params["service"]))
        params += [("scope", s) for s in scopes]
        v, cert = self._tls(realm, self._verify if self._is_registry(realm) else True)
        try:
            if creds and creds[0] == _credentials.TOKEN_USER:
                form = dict(params, grant_type="refresh_token", refresh_token=creds[1], client_id=CLIENT_ID)
                form["scope"] = " ".join(scopes)
                r = self.session.post(realm, data=form, timeout=self.timeout, verify=v, cert=cert)
            else:
                hdrs = {"Authorization": _basic(*creds)} if creds else {}
                r = self.session.get(realm, params=params, headers=hdrs, timeout=self.timeout, verify=v,
                                     cert=cert)
        except requests.exceptions.SSLError as exc:
            if _is_verify_error(exc):
                raise RegistryTLSError(f"fetch token from {_safe(realm)}: certificate verify failed") from None
            raise
        log.debug("token %s scope=%s -> %s", _safe(realm), " ".join(scopes), r.status_code)
        if r.status_code in (401, 403):
            r.close()
            if creds:
                raise RegistryAuthError(f"{what}: unauthorized: incorrect username or password for "
                                        f"{self.domain}. Check them (`pods login {self.domain}`) and try again.",
                                        self.domain)
            raise RegistryAuthError(f"{what}: authentication required: the token service of {self.domain} "
                                    f"refused anonymous access. Run `pods login {self.domain}` and try again.",
                                    self.domain)
        if r.status_code != 200:
            r.close()
            raise RegistryError(f"fetch token from {_safe(realm)}: status {r.status_code}")
        try:
            doc = r.json()
            value = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            value, doc = None, {}
        if not isinstance(value, str) or not value:
            raise RegistryError(f"fetch token from {_safe(realm)}: the answer holds no token")
        try:
            ttl = max(float(doc.get("expires_in") or DEFAULT_TOKEN_TTL), DEFAULT_TOKEN_TTL)
        except (TypeError, ValueError):
            ttl = DEFAULT_TOKEN_TTL
        refresh = doc.get("refresh_token")
        if creds and creds[0] == _credentials.TOKEN_USER and isinstance(refresh, str) and refresh:
            self.credentials = (creds[0], refresh)
        with self._lock:
            # A little early, so that a token never expires between our check and the registry's.
            self._tokens[scope] = _Token(value, time.monotonic() + ttl - min(10.0, ttl / 10))
        return value

    def _refused(self, what: str, scope: str, errors: str) -> RegistryAuthError:
        ch = self._challenge
        if ch is not None and ch.scheme == "basic":
            return RegistryAuthError(f"{what}: unauthorized: incorrect username or password for {self.domain}. "
                                     f"Check them (`pods login {self.domain}`) and try again.", self.domain)
        who = "" if self.credentials else f" Run `pods login {self.domain}` and try again."
        access = f" to {scope}" if scope else ""
        return RegistryAuthError(f"{what}: authentication required: access{access} denied by "
                                 f"{self.domain}{errors}.{who}", self.domain)

    def close(self) -> None:
        self.session.close()
        self._finalizer()


def _error_codes(resp: requests.Response) -> str:
    """`` (UNAUTHORIZED)``: the registry's error codes only; its messages may quote what we sent."""
    try:
        doc = resp.json()
        codes = [e["code"] for e in doc.get("errors", []) if isinstance(e.get("code"), str)]
    except Exception:
        return ""
    return f" ({', '.join(codes)})" if codes else ""


def _remove_files(paths: dict[Any, str]) -> None:
    for p in list(paths.values()):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    paths.clear()


def login(host: str, user: str, password: str, *, insecure: bool = False) -> None:
    """Check ``user``/``password`` with ``GET /v2/`` through the challenge flow, then store them
    as ``docker login`` would (helper, else config.json auths).

    :raises RegistryAuthError: the registry (or its token service) refused them.
    """
    client = RegistryClient(host, insecure=insecure, credentials=(user, password))
    try:
        resp = client.request("GET", "/v2/", scope="")
        status = resp.status_code
        resp.close()
    finally:
        client.close()
    if status != 200:
        raise RegistryError(f"login {host}: GET /v2/ answered {status}, not 200: is this a registry?")
    _credentials.store(host, user, password)
