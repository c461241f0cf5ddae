"""Image references parsed as Docker does: ``busybox`` is ``docker.io/library/busybox:latest``.

Grammar (distribution/reference): ``[domain/]path[:tag][@digest]``. A first component is a domain
when it contains ``.`` or ``:`` or is ``localhost``; otherwise the reference is on Docker Hub, and a
single path component lives under ``library/``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pytest_pods.errors import InvalidArgumentError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = {"index.docker.io", "registry-1.docker.io"}
DEFAULT_TAG = "latest"

# Patterns, not compiled objects: re compiles (and caches) each on first use, so a plain
# ``busybox`` never pays for the domain pattern. fullmatch: ``$`` would accept a final newline.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's ASCII \w
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}"
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?"
)


class Reference(NamedTuple):
    """A fully normalized reference: ``domain``, ``path``, and a ``tag`` and/or ``digest``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: what a registry calls the repository, with its host."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The repository as ``docker images`` shows it: ``busybox``, ``localhost:5000/a/b``."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.repository

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def familiar(self) -> str:
        """Short form for display: ``busybox:latest``."""
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize ``text``; raise InvalidArgumentError naming what is malformed."""
    if not text or text != text.strip():
        raise InvalidArgumentError(f"invalid reference format: {text!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not re.fullmatch(_DIGEST, digest):
            raise InvalidArgumentError(f"invalid reference format: bad digest {digest!r} in {text!r}")
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not re.fullmatch(_TAG, tag):
            raise InvalidArgumentError(f"invalid reference format: bad tag {tag!r} in {text!r}")
    parts = rest.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0] != parts[0].lower()):
        domain, path_parts = parts[0], parts[1:]
        if not re.fullmatch(_DOMAIN, domain):
            raise InvalidArgumentError(f"invalid reference format: bad registry host {domain!r} in {text!r}")
    else:
        domain, path_parts = DEFAULT_DOMAIN, parts
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    for comp in path_parts:
        if not re.fullmatch(_COMPONENT, comp):
            if comp != comp.lower():
                raise InvalidArgumentError(f"invalid reference format: repository name must be lowercase: {text!r}")
            raise InvalidArgumentError(f"invalid reference format: bad name component {comp!r} in {text!r}")
    if domain == DEFAULT_DOMAIN and len(path_parts) == 1:
        path_parts = ["library", *path_parts]
    path = "/".join(path_parts)
    if len(domain) + 1 + len(path) > 255:
        raise InvalidArgumentError(f"invalid reference format: repository name too long: {text!r}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
