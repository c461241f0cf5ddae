"""The image a ``FROM`` names, when the store lacks it: pulled, bootstrapped here, or a clear error.

The rule (issue 15), for a base image that is not in the store:

1. A name the engine can make itself: ``busybox`` (``busybox:latest``), from the host's static
   busybox, and ``debian:SUITE`` for a Debian suite (``bookworm``, ``trixie``, ``stable``, ...), by
   mmdebstrap from the host's Debian mirror; ``docker.io/library/`` spelled out or not.
   It is pulled, as Docker would, when a source for it (its registry, or a mirror or rewrite from
   the registry config) accepts a TCP connection within :data:`PROBE_SECONDS`; when none does
   (a machine without the internet, as this project's CI), or when that pull fails, it is
   bootstrapped here with one line of progress. Either happens once per root: concurrent builds
   (xdist workers, other processes) wait on one file lock and find the image made.
2. Any other name is pulled; when that fails, the build fails with a message that names the
   Dockerfile, the line, the image, and what to run to provide it.

The probe keeps an unreachable registry from costing minutes of connection timeouts before the
bootstrap (a refused connection fails fast anyway; a dropped one would not).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable

from pytest_pods.engine.image import bootstrap
from pytest_pods.engine.image.reference import parse_reference
from pytest_pods.engine.image.store import Image, Store
from pytest_pods.engine.registry import mirrors
from pytest_pods.errors import BuildError, ImageNotFoundError, PodsError

PROBE_SECONDS = 2.0
DEBIAN_SUITES = frozenset({"buster", "bullseye", "bookworm", "trixie", "forky", "sid",
                           "oldstable", "stable", "testing", "unstable"})
HUB_HOST = "registry-1.docker.io"  # what docker.io means to a client
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")

Progress = Callable[[str], None]


def bootstrappable(name: str) -> str | None:
    """The ``pods bootstrap`` argument that makes ``name`` (``busybox``, ``debian:SUITE``), or None.

    Only ``busybox:latest``: another busybox tag promises a version the host's binary may not be."""
    try:
        ref = parse_reference(name)
    except PodsError:
        return None
    if ref.domain != "docker.io" or ref.digest:
        return None
    if ref.path == "library/busybox" and ref.tag == "latest":
        return "busybox"
    if ref.path == "library/debian" and ref.tag in DEBIAN_SUITES:
        return f"debian:{ref.tag}"
    return None


def _reachable(ref: str) -> bool:
    """Whether some source of ``ref`` accepts a TCP connection quickly (a proxy counts as one)."""
    if any(os.environ.get(v) for v in PROXY_VARS):
        return True  # the pull goes through the proxy: let it decide
    try:
        refs = mirrors.candidates(ref)
    except PodsError:
        return False
    for candidate in refs:
        domain = parse_reference(candidate).domain
        host, _, port = domain.rpartition(":") if re.search(r":\d+$", domain) else (domain, "", "")
        host = HUB_HOST if host == "docker.io" else host
        try:
            with socket.create_connection((host.strip("[]"), int(port or 443)), timeout=PROBE_SECONDS):
                return True
        except OSError:
            continue
    return False


def fix_hint(name: str) -> str:
    """What to run so that the store has ``name``: a clause (``run ...``) to end a message with."""
    ways = [f"`pods pull {name}` from a registry this machine reaches (or through a mirror in "
            "~/.config/pytest-pods/registries.json)",
            "`pods load -i FILE` with an image saved elsewhere (`pods save` or `docker save`)"]
    what = bootstrappable(name)
    if what:
        ways.insert(0, f"`pods bootstrap {what}`")
    return "run " + ", or ".join(ways) + " (with the same --root or PODS_ROOT), then build again"


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def missing_base(store: Store, name: str, where: str, say: Progress, step: str = "") -> Image:
    """The image ``name`` (not in ``store``) for ``FROM`` at ``where`` (``Dockerfile:LINE``), by the
    rule of this module; ``step`` names the instruction in messages (default ``FROM NAME``).

    :raises BuildError: naming ``where``, the image and the fix, when it can be neither pulled nor
        bootstrapped; nothing of the attempt is left in the store.
    """
    step = step or f"FROM {name}"
    what = bootstrappable(name)
    if what is None:
        try:
            return mirrors.pull(store, name)
        except PodsError as exc:
            raise BuildError(f"{where}: {step}: image {name} not found: it is not in the store {store.root}, "
                             f"and the pull failed: {_sentence(exc)} To fix it, {fix_hint(name)}.") from None
    tag = parse_reference(name).familiar
    with store.lock(f"bootstrap-{what.replace(':', '-')}"):
        try:
            return store.get_image(name)  # another build made it while this one waited
        except ImageNotFoundError:
            pass
        pulled = None
        if _reachable(name):
            try:
                return mirrors.pull(store, name)
            except PodsError as exc:
                pulled = exc
        how = ("with mmdebstrap (once per root, about a minute)" if what.startswith("debian:")
               else "from the host's busybox (once per root)")
        say(f" ---> bootstrapping {tag} {how}" + (f"; the pull failed: {pulled}" if pulled else
                                                   ": no registry reachable"))
        try:
            if what == "busybox":
                return bootstrap.bootstrap_busybox(store, tag)
            return bootstrap.bootstrap_debian(store, what.partition(":")[2], tag)
        except PodsError as exc:
            raise BuildError(f"{where}: {step}: image {name} is not in the store, and bootstrapping it failed: {_sentence(exc)} "
                             f"Fix that and try again, or {fix_hint(name)}.") from None
