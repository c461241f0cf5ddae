"""The registry transport against the real thing: Debian's ``docker-registry`` (distribution 2.8).

Three registries per module, each on 127.0.0.1 with a free port and its own storage:

- open: plain HTTP, no auth;
- basic: TLS with a CA made here (trusted through a ``PODS_CERTS_D`` dir), htpasswd auth, and the
  storage ``redirect`` middleware pointing blob GETs at a small recording server on another port;
- token: plain HTTP, token auth, tokens signed (RS256, ``x5c``) by an issuer running in a thread.

Every test checks, through caplog, that no password or token reached a log record.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pytest_pods.engine.registry import credentials, http as transport
from pytest_pods.engine.registry.http import RegistryClient
from pytest_pods.errors import RegistryAuthError, RegistryTLSError

REGISTRY_BIN = "/usr/bin/docker-registry"
USER = "pods-user"
PASSWORD = "s3cret-Pa55-7f1c"
WRONG = "wr0ng-Pa55-c0de"
SERVICE = "pods-test-registry"
ISSUER = "pods-test-issuer"
REFRESH = "refresh-9d2e41"


# --- infrastructure -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry_bin() -> str:
    """Scope: module. The registry binary; apt may still be installing it when the run starts."""
    deadline = time.monotonic() + 180
    while not os.access(REGISTRY_BIN, os.X_OK):
        if time.monotonic() > deadline:
            pytest.skip(f"{REGISTRY_BIN} did not appear within 3 minutes (apt install docker-registry)")
        time.sleep(1)
    return REGISTRY_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str
    root: Path
    proc: subprocess.Popen[bytes]
    log: Path


def start_registry(binary: str, tmp: Path, extra: str, port: int | None = None) -> Registry:
    port = port or free_port()
    root = tmp / "storage"
    root.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "config.yml"
    cfg.write_text(f"""version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
  secret: {uuid.uuid4().hex}
{extra}""")
    log = tmp / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([binary, "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"docker-registry not listening on {port}: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    return Registry(f"127.0.0.1:{port}", root, proc, log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """By PID, as every process this module starts."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Recorder:
    """What a small server saw: one dict per request."""

    requests: list[dict[str, Any]] = field(default_factory=list)


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_tls(d: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: (ca.crt, server.crt, server.key)."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=pods test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d / "ca.crt", d / "server.crt", d / "server.key"


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DOCKER_CONFIG and certs.d per test: the host's own logins never leak in."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    monkeypatch.delenv("DOCKER_AUTH_CONFIG", raising=False)
    monkeypatch.setenv("PODS_CERTS_D", str(tmp_path / "certs.d-empty"))
    return cfg


@pytest.fixture(autouse=True)
def no_secrets_logged(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no password or issued token in any log record, from us or from urllib3."""
    caplog.set_level(logging.DEBUG)
    yield
    secrets = [PASSWORD, WRONG, REFRESH, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()]
    if "token_registry" in request.fixturenames:
        secrets += request.getfixturevalue("token_registry").issued
    for rec in caplog.records:
        text = rec.getMessage() + (rec.exc_text or "")
        for s in secrets:
            assert s not in text, f"a secret reached the log: {rec.name}: {text[:200]}"


@pytest.fixture(scope="module")
def open_registry(registry_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Scope: module. Plain HTTP, anonymous."""
    reg = start_registry(registry_bin, tmp_path_factory.mktemp("open"), "")
    yield reg
    stop(reg.proc)


@dataclass
class BasicRegistry:
    reg: Registry
    ca: Path
    blobs: Recorder


@pytest.fixture(scope="module")
def basic_registry(registry_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BasicRegistry]:
    """Scope: module. TLS + htpasswd; blob GETs redirected (307) to a recording server elsewhere."""
    tmp = tmp_path_factory.mktemp("basic")
    ca, cert, key = make_tls(tmp / "tls")
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True,
                              text=True).stdout
    (tmp / "htpasswd").write_text(htpasswd)
    storage = tmp / "storage"
    blobs = Recorder()

    class Blobs(QuietHandler):
        def do_GET(self) -> None:
            blobs.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
            f = storage / urlsplit(self.path).path.lstrip("/")
            if not f.is_file():
                self.send_error(404)
                return
            data = f.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Set-Cookie", "blobsession=abc; Path=/")
            self.end_headers()
            self.wfile.write(data)

    server, bport = serve(Blobs)
    reg = start_registry(registry_bin, tmp, f"""  tls:
    certificate: {cert}
    key: {key}
auth:
  htpasswd:
    realm: pods-basic
    path: {tmp / 'htpasswd'}
middleware:
  storage:
    - name: redirect
      options:
        baseurl: http://127.0.0.1:{bport}/
""")
    yield BasicRegistry(reg, ca, blobs)
    stop(reg.proc)
    server.shutdown()
    server.server_close()


@pytest.fixture
def trust_ca(basic_registry: BasicRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test CA as ``certs.d/127.0.0.1:PORT/ca.crt``, docker's layout."""
    d = tmp_path / "certs.d" / basic_registry.reg.host
    d.mkdir(parents=True)
    shutil.copy(basic_registry.ca, d / "ca.crt")
    monkeypatch.setenv("PODS_CERTS_D", str(tmp_path / "certs.d"))
    return d


@dataclass
class TokenRegistry:
    reg: Registry
    seen: list[dict[str, Any]]
    issued: list[str]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def token_registry(registry_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """Scope: module. Token auth; the issuer grants the asked scopes to USER/PASSWORD, none to anonymous."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.skip("the cryptography package is needed to sign tokens (pip install cryptography)")
    import datetime

    tmp = tmp_path_factory.mktemp("token")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "issuer.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    seen: list[dict[str, Any]] = []
    issued: list[str] = []

    def sign(sub: str, access: list[dict[str, Any]]) -> str:
        t = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
        claims = {"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": t + 300, "nbf": t - 10, "iat": t,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"

    class Issuer(QuietHandler):
        def do_GET(self) -> None:
            q = parse_qs(urlsplit(self.path).query)
            auth = self.headers.get("Authorization", "")
            seen.append({"service": q.get("service", []), "scope": q.get("scope", []), "authorization": auth})
            sub = ""
            if auth:
                user, _, pw = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                if (user, pw) != (USER, PASSWORD):
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"details":"incorrect username or password"}')
                    return
                sub = user
            access = []
            for s in q.get("scope", []) if sub else []:
                kind, rest = s.split(":", 1)
                rname, actions = rest.rsplit(":", 1)
                access.append({"type": kind, "name": rname, "actions": actions.split(",")})
            token = sign(sub, access)
            issued.append(token)
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            # OAuth2 refresh-token grant: docker's path for an identity token.
            form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode())
            seen.append({"service": form.get("service", []), "scope": form.get("scope", []),
                         "grant_type": form.get("grant_type", []), "authorization": ""})
            if form.get("refresh_token") != [REFRESH]:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            for s in " ".join(form.get("scope", [])).split():
                kind, rest = s.split(":", 1)
                rname, actions = rest.rsplit(":", 1)
                access.append({"type": kind, "name": rname, "actions": actions.split(",")})
            token = sign(USER, access)
            issued.append(token)
            body = json.dumps({"access_token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server, iport = serve(Issuer)
    reg = start_registry(registry_bin, tmp, f"""auth:
  token:
    realm: http://127.0.0.1:{iport}/token
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {tmp / 'issuer.crt'}
""")
    yield TokenRegistry(reg, seen, issued)
    stop(reg.proc)
    server.shutdown()
    server.server_close()


def push_blob(c: RegistryClient, repo: str, data: bytes) -> str:
    """The monolithic upload of the distribution spec: POST, then PUT with the digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    scope = f"repository:{repo}:pull,push"
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope)
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    r = c.request("PUT", loc + ("&" if "?" in loc else "?") + f"digest={digest}", scope=scope, data=data,
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def push_image(c: RegistryClient, repo: str, tag: str) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {}}).encode()
    digest = push_blob(c, repo, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest, "size": len(config)},
                           "layers": []}).encode()
    r = c.request("PUT", f"/v2/{repo}/manifests/{tag}", scope=f"repository:{repo}:pull,push", data=manifest,
                  headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text


def repo_name() -> str:
    return f"pods/t-{uuid.uuid4().hex[:8]}"


def write_config(cfg_dir: Path, doc: dict[str, Any]) -> None:
    (cfg_dir / "config.json").write_text(json.dumps(doc))


# --- tests: URLs ----------------------------------------------------------------------------

def test_base_url_allows_plain_http_only_for_loopback_or_insecure() -> None:
    assert transport.base_url("registry.example.com") == "https://registry.example.com"
    assert transport.base_url("registry.example.com:5000") == "https://registry.example.com:5000"
    assert transport.base_url("registry.example.com", insecure=True) == "http://registry.example.com"
    for local in ("localhost:5000", "127.0.0.1:5000", "127.8.9.10", "[::1]:5000"):
        assert transport.base_url(local) == f"http://{local}"
    assert transport.endpoints("registry.example.com") == [("https://registry.example.com", True)]
    assert transport.endpoints("registry.example.com", insecure=True) == [
        ("https://registry.example.com", False), ("http://registry.example.com", False)]
    assert transport.api_host("docker.io") == "registry-1.docker.io"


# --- tests: open registry -------------------------------------------------------------------

def test_anonymous_get_v2_on_open_registry(open_registry: Registry, isolated_env: Path) -> None:
    write_config(isolated_env, {"credsStore": "does-not-exist"})  # anonymous: no helper is run
    c = RegistryClient(open_registry.host)
    try:
        r = c.request("GET", "/v2/", scope="")
        assert r.status_code == 200
        assert c.base == f"http://{open_registry.host}"  # https tried first, then plain HTTP
        assert "Authorization" not in r.request.headers
    finally:
        c.close()


# --- tests: basic auth over TLS -------------------------------------------------------------

def test_login_stores_auth_and_later_requests_use_it(basic_registry: BasicRegistry, trust_ca: Path,
                                                     isolated_env: Path) -> None:
    host = basic_registry.reg.host
    write_config(isolated_env, {"auths": {"other.example.com": {"auth": "eDp5"}}, "psFormat": "x"})
    transport.login(host, USER, PASSWORD)
    path = isolated_env / "config.json"
    doc = json.loads(path.read_text())
    assert doc["auths"][host]["auth"] == base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert doc["auths"]["other.example.com"] == {"auth": "eDp5"} and doc["psFormat"] == "x"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    c = RegistryClient(host)
    try:
        r = c.request("GET", "/v2/_catalog", scope="registry:catalog:*")
        assert r.status_code == 200 and "repositories" in r.json()
        assert c.base == f"https://{host}"
    finally:
        c.close()
    credentials.erase(host)
    assert host not in json.loads(path.read_text())["auths"]


def test_wrong_password_raises_without_the_password(basic_registry: BasicRegistry, trust_ca: Path,
                                                    isolated_env: Path) -> None:
    host = basic_registry.reg.host
    with pytest.raises(RegistryAuthError) as info:
        transport.login(host, USER, WRONG)
    text = str(info.value)
    assert "incorrect username or password" in text and host in text
    assert WRONG not in text and base64.b64encode(f"{USER}:{WRONG}".encode()).decode() not in text
    assert not (isolated_env / "config.json").exists()


def test_no_credentials_for_basic_challenge_says_so(basic_registry: BasicRegistry, trust_ca: Path) -> None:
    c = RegistryClient(basic_registry.reg.host)
    try:
        with pytest.raises(RegistryAuthError, match="authentication required"):
            c.request("GET", "/v2/_catalog", scope="registry:catalog:*")
    finally:
        c.close()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_untrusted_certificate_is_an_error_not_a_fallback(basic_registry: BasicRegistry) -> None:
    c = RegistryClient(basic_registry.reg.host, credentials=(USER, PASSWORD))
    try:
        with pytest.raises(RegistryTLSError, match="ca.crt"):
            c.request("GET", "/v2/", scope="")
    finally:
        c.close()
    c = RegistryClient(basic_registry.reg.host, credentials=(USER, PASSWORD), insecure=True)
    try:
        assert c.request("GET", "/v2/", scope="").status_code == 200  # insecure: unverified https
        assert c.base == f"https://{basic_registry.reg.host}"
    finally:
        c.close()


def test_redirect_to_another_host_carries_no_credentials(basic_registry: BasicRegistry, trust_ca: Path) -> None:
    repo = repo_name()
    data = uuid.uuid4().bytes * 8
    c = RegistryClient(basic_registry.reg.host, credentials=(USER, PASSWORD))
    try:
        digest = push_blob(c, repo, data)
        r = c.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull",
                      allow_redirects=False)
        assert r.status_code == 307 and "Location" in r.headers
        before = len(basic_registry.blobs.requests)
        r = c.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        assert r.status_code == 200 and r.content == data
        r = c.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        assert r.status_code == 200
    finally:
        c.close()
    hops = basic_registry.blobs.requests[before:]
    assert len(hops) == 2
    for hop in hops:
        names = {k.lower() for k in hop["headers"]}
        assert "authorization" not in names and "cookie" not in names, hop["headers"]


def test_docker_auth_config_is_honoured(basic_registry: BasicRegistry, trust_ca: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    host = basic_registry.reg.host
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps({"auths": {f"https://{host}/v1/": {"auth": auth}}}))
    assert credentials.resolve(host) == (USER, PASSWORD)
    c = RegistryClient(host)
    try:
        assert c.request("GET", "/v2/_catalog", scope="registry:catalog:*").status_code == 200
    finally:
        c.close()


def make_helper(bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-test"
    script.write_text(f"""#!/bin/sh
input=$(cat)
printf '%s %s\\n' "$1" "$input" >> {log}
case "$1:$input" in
  get:127.0.0.1:*) printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\\n' "$input" ;;
  get:broken*) echo "keychain locked: $input" >&2; exit 3 ;;
  get:*) echo "credentials not found in native keychain"; exit 1 ;;
esac
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_cred_helper_is_asked_with_the_host(basic_registry: BasicRegistry, trust_ca: Path, tmp_path: Path,
                                            isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = basic_registry.reg.host
    log = tmp_path / "helper.log"
    make_helper(tmp_path / "bin", log, monkeypatch)
    write_config(isolated_env, {"credHelpers": {host: "test", "elsewhere.example.com": "test",
                                                "broken.example.com": "test"}})
    c = RegistryClient(host)
    try:
        assert c.request("GET", "/v2/_catalog", scope="registry:catalog:*").status_code == 200
    finally:
        c.close()
    assert log.read_text().splitlines() == [f"get {host}"]
    assert credentials.resolve("elsewhere.example.com") is None
    with pytest.raises(credentials.CredentialsError, match="docker-credential-test: keychain locked"):
        credentials.resolve("broken.example.com")

    credentials.store(host, USER, PASSWORD)
    line = log.read_text().splitlines()[-1]
    assert line.startswith("store ") and json.loads(line[6:]) == {"ServerURL": host, "Username": USER,
                                                                  "Secret": PASSWORD}
    assert json.loads((isolated_env / "config.json").read_text())["auths"][host] == {}


def test_missing_helper_is_named(isolated_env: Path) -> None:
    write_config(isolated_env, {"credsStore": "pods-missing"})
    with pytest.raises(credentials.CredentialsError, match="docker-credential-pods-missing: not found on PATH"):
        credentials.resolve("registry.example.com")


def test_auths_keys_in_any_spelling(isolated_env: Path) -> None:
    auth = base64.b64encode(b"hub:pw:with:colons").decode()
    write_config(isolated_env, {"auths": {"https://index.docker.io/v1/": {"auth": auth},
                                          "http://reg.example.com:5000/v2/": {"auth": auth}}})
    assert credentials.resolve("docker.io") == ("hub", "pw:with:colons")
    assert credentials.resolve("registry-1.docker.io") == ("hub", "pw:with:colons")
    assert credentials.resolve("reg.example.com:5000") == ("hub", "pw:with:colons")
    assert credentials.resolve("reg.example.com") is None


# --- tests: token auth ----------------------------------------------------------------------

def test_token_flow_fetches_scoped_token_once(token_registry: TokenRegistry) -> None:
    repo = repo_name()
    pusher = RegistryClient(token_registry.reg.host, credentials=(USER, PASSWORD))
    try:
        push_image(pusher, repo, "v1")
    finally:
        pusher.close()
    assert any(s["scope"] == [f"repository:{repo}:pull,push"] for s in token_registry.seen)

    start = len(token_registry.seen)
    c = RegistryClient(token_registry.reg.host, credentials=(USER, PASSWORD))
    try:
        for _ in range(2):
            r = c.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
            assert r.status_code == 200 and r.json()["tags"] == ["v1"]
    finally:
        c.close()
    seen = token_registry.seen[start:]
    assert len(seen) == 1, seen  # cached for the second request
    assert seen[0]["scope"] == [f"repository:{repo}:pull"] and seen[0]["service"] == [SERVICE]
    assert seen[0]["authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_token_flow_anonymous_and_wrong_password(token_registry: TokenRegistry) -> None:
    repo = repo_name()
    c = RegistryClient(token_registry.reg.host)
    try:
        with pytest.raises(RegistryAuthError, match="authentication required") as info:
            c.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        assert token_registry.seen[-1]["authorization"] == ""
        assert not any(t in str(info.value) for t in token_registry.issued)
    finally:
        c.close()
    c = RegistryClient(token_registry.reg.host, credentials=(USER, WRONG))
    try:
        with pytest.raises(RegistryAuthError, match="incorrect username or password") as info:
            c.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        assert WRONG not in str(info.value)
    finally:
        c.close()


def test_login_through_token_flow(token_registry: TokenRegistry, isolated_env: Path) -> None:
    transport.login(token_registry.reg.host, USER, PASSWORD)
    assert credentials.resolve(token_registry.reg.host) == (USER, PASSWORD)
    with pytest.raises(RegistryAuthError):
        transport.login(token_registry.reg.host, USER, WRONG)


def test_identity_token_is_used_as_refresh_token(token_registry: TokenRegistry, isolated_env: Path) -> None:
    host = token_registry.reg.host
    write_config(isolated_env, {"auths": {host: {"auth": "", "identitytoken": REFRESH}}})
    repo = repo_name()
    c = RegistryClient(host)
    try:
        r = c.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        assert r.status_code == 404  # authorized; the repository just does not exist
    finally:
        c.close()
    assert token_registry.seen[-1]["grant_type"] == ["refresh_token"]
    assert token_registry.seen[-1]["scope"] == [f"repository:{repo}:pull"]


def _busybox_store(tmp: Path) -> tuple[Any, Any]:
    from pytest_pods.engine.image.bootstrap import bootstrap_busybox
    from pytest_pods.engine.image.store import Store

    store = Store(tmp / "store")
    return store, bootstrap_busybox(store)


def test_login_push_pull_over_tls_with_basic_auth(basic_registry: BasicRegistry, trust_ca: Path,
                                                  isolated_env: Path, tmp_path: Path) -> None:
    """The acceptance path: login, push, pull back into an empty store, same digests."""
    from pytest_pods.engine.registry import distribution as registry
    from pytest_pods.engine.image.store import Store

    host = basic_registry.reg.host
    store, image = _busybox_store(tmp_path)
    name = f"{host}/{repo_name()}:1"
    with pytest.raises(RegistryAuthError):
        registry.push(store, image.id, name)  # not logged in yet
    transport.login(host, USER, PASSWORD)
    digest = registry.push(store, image.id, name)
    fresh = Store(tmp_path / "fresh")
    pulled = registry.pull(fresh, name)
    assert pulled.digest == digest and pulled.image.id == image.id
    credentials.erase(host)
    with pytest.raises(RegistryAuthError) as err:
        registry.pull(Store(tmp_path / "third"), name)
    assert PASSWORD not in str(err.value)


def test_push_and_pull_through_the_token_flow(token_registry: TokenRegistry, isolated_env: Path,
                                              tmp_path: Path) -> None:
    from pytest_pods.engine.registry import distribution as registry
    from pytest_pods.engine.image.store import Store

    host = token_registry.reg.host
    write_config(isolated_env, {"auths": {host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}})
    store, image = _busybox_store(tmp_path)
    name = f"{host}/{repo_name()}:1"
    digest = registry.push(store, image.id, name, insecure=True)
    pulled = registry.pull(Store(tmp_path / "fresh"), name, insecure=True)
    assert pulled.digest == digest
    assert any("push" in json.dumps(s) for s in token_registry.seen)  # the issuer granted a push scope
