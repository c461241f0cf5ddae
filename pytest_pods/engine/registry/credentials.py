"""Registry credentials where docker keeps them, so ``docker login`` and ``pods login`` share them.

Lookup order (docker's, plus testcontainers' ``DOCKER_AUTH_CONFIG``):

1. ``DOCKER_AUTH_CONFIG``: the JSON text of a config.json, as CI systems and testcontainers users set it;
2. ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

In each config: ``credHelpers[host]`` names a helper, else ``credsStore`` does, else
``auths[host]`` holds ``auth = base64(user:password)`` (or ``identitytoken``). A helper is the
program ``docker-credential-<name>`` on PATH, spoken to by the credential-helper protocol:
``get``/``erase`` read the server URL on stdin, ``store`` reads ``{"ServerURL","Username","Secret"}``.

An identity token comes back as the pair ``("<token>", token)``, docker's own convention for
helpers; the transport then uses it as an OAuth2 refresh token.

Secrets never appear in an error message: helper output is scrubbed of them and cut short.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pytest_pods.errors import CredentialsError

#: Docker's key for Docker Hub in config.json and towards helpers.
HUB_KEY = "https://index.docker.io/v1/"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
#: The user name a helper returns for an identity (refresh) token, by docker's convention.
TOKEN_USER = "<token>"
HELPER_TIMEOUT = 60.0


def normalize(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``; every Docker Hub alias -> ``docker.io``.

    config.json keys come in several spellings (docker writes ``https://index.docker.io/v1/`` for
    Docker Hub, old clients wrote URLs for everything); compare hosts, not strings.
    """
    k = key.strip()
    if "://" in k:
        k = k.split("://", 1)[1]
    k = k.split("/", 1)[0].lower()
    return "docker.io" if k in HUB_ALIASES else k


def server_url(host: str) -> str:
    """What docker hands a helper and writes as the auths key for ``host``."""
    return HUB_KEY if normalize(host) == "docker.io" else host


def config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    d = os.environ.get("DOCKER_CONFIG")
    return Path(d) / "config.json" if d else Path.home() / ".docker" / "config.json"


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CredentialsError(f"read {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        # The position only: the text may hold secrets.
        raise CredentialsError(f"read {path}: not valid JSON (line {exc.lineno}). Fix it and try again.") from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"read {path}: not a JSON object. Fix it and try again.")
    return doc


def _env_config() -> dict[str, Any] | None:
    text = os.environ.get("DOCKER_AUTH_CONFIG")
    if not text:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise CredentialsError("read DOCKER_AUTH_CONFIG: not valid JSON. Fix it and try again.") from None
    if not isinstance(doc, dict):
        raise CredentialsError("read DOCKER_AUTH_CONFIG: not a JSON object. Fix it and try again.")
    return doc


def _find(mapping: Any, host: str) -> tuple[str, Any] | None:
    """The (key, value) of ``mapping`` whose key names ``host`` in any spelling."""
    if not isinstance(mapping, dict):
        return None
    want = normalize(host)
    if host in mapping:
        return host, mapping[host]
    for key, value in mapping.items():
        if isinstance(key, str) and normalize(key) == want:
            return key, value
    return None


def _helper_for(config: dict[str, Any], host: str) -> str | None:
    found = _find(config.get("credHelpers"), host)
    if found and isinstance(found[1], str) and found[1]:
        return found[1]
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]


def _run_helper(name: str, action: str, stdin: str, secrets: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Run ``docker-credential-<name> <action>``; (ok, stdout). "not found" answers are ok=False."""
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        raise CredentialsError(f"{action} credentials with {program}: not found on PATH. "
                               f"Install it or remove it from {config_path()} and try again.")
    try:
        proc = subprocess.run([path, action], input=stdin, capture_output=True, text=True,
                              timeout=HELPER_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"{action} credentials with {program}: no answer in {HELPER_TIMEOUT:g}s") from None
    except OSError as exc:
        raise CredentialsError(f"{action} credentials with {program}: {exc.strerror}") from None
    if proc.returncode == 0:
        return True, proc.stdout
    said = proc.stdout + "\n" + proc.stderr
    if "credentials not found" in said.lower():
        return False, ""
    reason = _scrub(proc.stdout or proc.stderr, secrets) or f"exit status {proc.returncode}"
    raise CredentialsError(f"{action} credentials with {program}: {reason}")


def _from_helper(name: str, host: str) -> tuple[str, str] | None:
    ok, out = _run_helper(name, "get", server_url(host))
    if not ok:
        return None
    try:
        doc = json.loads(out)
        user, secret = doc["Username"], doc["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CredentialsError(f"get credentials with docker-credential-{name}: "
                               "its answer is not {\"Username\", \"Secret\"} JSON") from None
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return None
    return user, secret


def _from_auths(config: dict[str, Any], host: str, where: str) -> tuple[str, str] | None:
    found = _find(config.get("auths"), host)
    if found is None or not isinstance(found[1], dict):
        return None
    entry = found[1]
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return TOKEN_USER, token
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=False).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"read {where}: auths[{found[0]}].auth is not base64 of user:password. "
                                   "Log in again.") from None
        if not sep:
            raise CredentialsError(f"read {where}: auths[{found[0]}].auth is not base64 of user:password. "
                                   "Log in again.")
        return user, password
    name, pw = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(pw, str) and pw:
        return name, pw
    return None


def _resolve_in(config: dict[str, Any], host: str, where: str) -> tuple[str, str] | None:
    helper = _helper_for(config, host)
    if helper is not None:
        return _from_helper(helper, host)
    return _from_auths(config, host, where)


def resolve(host: str) -> tuple[str, str] | None:
    """Credentials for ``host`` (``host:port`` or a Docker Hub alias), or None for anonymous.

    :raises CredentialsError: a helper failed or a config cannot be read.
    """
    env = _env_config()
    if env is not None:
        found = _resolve_in(env, host, "DOCKER_AUTH_CONFIG")
        if found is not None:
            return found
    path = config_path()
    return _resolve_in(_load(path), host, str(path))


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Atomically, mode 0600: a crash leaves the old file or the new, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(doc, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _auths(doc: dict[str, Any]) -> dict[str, Any]:
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    return auths


def store(host: str, user: str, password: str) -> None:
    """Keep credentials for ``host`` as ``docker login`` does: in the configured helper, else as
    ``auths[host].auth`` in config.json (other keys kept)."""
    path = config_path()
    doc = _load(path)
    helper = _helper_for(doc, host)
    key = server_url(host)
    if helper is not None:
        payload = json.dumps({"ServerURL": key, "Username": user, "Secret": password})
        _run_helper(helper, "store", payload, secrets=(password, payload))
        entry: dict[str, Any] = {}  # docker leaves an empty entry: "logged in, see the helper"
    else:
        entry = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    auths = _auths(doc)
    found = _find(auths, host)
    if found is not None:
        old = found[1] if isinstance(found[1], dict) else {}
        keep = {k: v for k, v in old.items() if k not in ("auth", "username", "password", "identitytoken")}
        entry = {**keep, **entry}
        key = found[0]
    auths[key] = entry
    _write(path, doc)


def erase(host: str) -> None:
    """Forget credentials for ``host`` (``pods logout``): in its helper and in config.json."""
    path = config_path()
    doc = _load(path)
    helper = _helper_for(doc, host)
    if helper is not None:
        _run_helper(helper, "erase", server_url(host))
    auths = doc.get("auths")
    if isinstance(auths, dict):
        want = normalize(host)
        gone = [k for k in auths if isinstance(k, str) and normalize(k) == want]
        for k in gone:
            del auths[k]
        if gone:
            _write(path, doc)
