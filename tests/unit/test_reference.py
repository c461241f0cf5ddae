"""References normalize as Docker's do."""

from __future__ import annotations

import pytest

from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("me/app:v2", "docker.io/me/app:v2", "me/app:v2"),
        ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("ghcr.io/org/x", "ghcr.io/org/x:latest", "ghcr.io/org/x:latest"),
        ("index.docker.io/library/redis:7", "docker.io/library/redis:7", "redis:7"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1", "127.0.0.1:5000/x:1"),
    ],
)
def test_normalizes_like_docker(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar == familiar


def test_digest_reference_has_no_default_tag() -> None:
    d = "sha256:" + "a" * 64
    ref = parse_reference(f"busybox@{d}")
    assert ref.tag is None and ref.digest == d
    assert str(ref) == f"docker.io/library/busybox@{d}"


@pytest.mark.parametrize("bad", ["", "UPPER", "bad::ref", "a\n/b", "x:tag\n", "x:täg", "a/../b", "x:tag with space", "busybox@sha256:short", " x", "a//b", "-lead"])
def test_malformed_references_are_refused_with_the_text_named(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid reference format"):
        parse_reference(bad)
