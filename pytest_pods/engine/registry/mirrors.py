"""Registry mirrors and rewrites: where a reference is really pulled from.

Docker Hub's rate limits and unreachable registries (as on this machine) are common pains, so a
reference can be rewritten to another registry, or tried on mirrors first. Configuration, JSON,
from ``$PODS_REGISTRY_CONFIG`` or ``~/.config/pytest-pods/registries.json``::

    {"mirrors":  {"docker.io": ["127.0.0.1:5000"]},
     "rewrites": {"docker.io/library/": "127.0.0.1:5000/hub/"},
     "insecure": ["registry.test:5000"]}

A rewrite replaces the longest matching prefix of the normalized reference; mirrors of a
reference's registry are tried in order (same repository path), then the registry itself. The
image is always recorded under the name the user asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.errors import InvalidArgumentError, PodsError

if TYPE_CHECKING:
    from pytest_pods.engine.image.store import Image, Store


def load_config() -> dict[str, Any]:
    path = os.environ.get("PODS_REGISTRY_CONFIG") or str(Path.home() / ".config/pytest-pods/registries.json")
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"registry config {path}: not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise InvalidArgumentError(f"registry config {path}: expected a JSON object")
    return cfg


def candidates(ref: str, config: dict[str, Any] | None = None) -> list[str]:
    """The references to try for ``ref``, in order (normalized, with tag or digest)."""
    cfg = load_config() if config is None else config
    full = str(parse_reference(ref))
    rewrites: dict[str, str] = cfg.get("rewrites") or {}
    for prefix in sorted(rewrites, key=len, reverse=True):
        if full.startswith(prefix):
            return [str(parse_reference(rewrites[prefix] + full[len(prefix):]))]
    parsed = parse_reference(ref)
    out = []
    for mirror in (cfg.get("mirrors") or {}).get(parsed.domain, []):
        out.append(str(parse_reference(f"{mirror}/{parsed.path}" + (f":{parsed.tag}" if parsed.tag else "")
                                       + (f"@{parsed.digest}" if parsed.digest else ""))))
    return [*out, full]


def is_insecure(host: str, config: dict[str, Any] | None = None) -> bool:
    cfg = load_config() if config is None else config
    return host in (cfg.get("insecure") or [])


def pull(store: Store, ref: str, *, platform: str | None = None, insecure: bool = False,
         progress: Any = None) -> Image:
    """Pull ``ref`` from its rewrite, its mirrors or its registry, in that order; record it
    under ``ref`` whichever source served it. Every source's failure is in the error."""
    from pytest_pods.engine.registry import distribution as registry  # lazy: start latency (http.client, ssl)

    cfg = load_config()
    errors = []
    for candidate in candidates(ref, cfg):
        host = parse_reference(candidate).domain
        try:
            result = registry.pull(store, candidate, platform=platform, progress=progress,
                                   insecure=insecure or is_insecure(host, cfg))
        except PodsError as exc:
            errors.append((candidate, exc))
            continue
        wanted = parse_reference(ref)
        if not wanted.digest and str(wanted) not in result.image.tags:
            return store.tag(result.image.manifest_digest, str(wanted))
        return result.image
    if len(errors) == 1:
        raise errors[0][1]
    raise registry.RegistryError(f"pull {ref}: every source failed: " + "; ".join(f"{c}: {e}" for c, e in errors))
