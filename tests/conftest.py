"""Shared test set-up: one engine root per run, base images built once (see the Makefile).

``PODS_TEST_ROOT`` names the root; the Makefile points it at a cache directory where busybox and
Debian images are bootstrapped once and kept between runs. Without it, a fresh root under /tmp
is made and busybox bootstrapped into it (Debian tests then build Debian, slowly, once).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pods import Client
from pytest_pods.client import contract
from pytest_pods.engine import rootless

pytest_plugins = ["pytester"]


def engine_unavailable() -> str | None:
    """The engine's own preflight: None where containers run here (as root, or rootless), else why
    not (the sysctl, the Debian package, the kernel feature it lacks)."""
    return contract.engine_unavailable()


ROOTLESS = rootless.active()
NO_CGROUPS = ("cgroup limits and stats need a delegated cgroup v2 subtree, which an ordinary user has not here "
              "(a v1 hybrid: no delegation)")
HOST_NETNS = ("checks links, rules or netlink in the host's network namespace, which only root may change and "
              "a rootless engine never touches (tests/integration/test_rootless_network.py checks its netns)")
UNPACK_AS_ROOT = ("asserts what root's unpacker makes on the host (device nodes, trusted.overlay xattrs, "
                  "owners any id): in the user namespace devices are skipped and xattrs are user.* "
                  "(tests/integration's image and archive tests run the rootless unpack)")
ROOT_ONLY = "checks of root's engine (as root it acts as other users; tests/rootless runs its rootless side)"
# What cannot apply to the rootless engine, and the limit that says why: (path part, test name or "", reason).
# Everything else runs the same test functions in both modes.
ROOTLESS_LIMITS: list[tuple[str, str, str]] = [
    ("integration/test_cgroups.py", "", NO_CGROUPS),
    ("integration/test_rootless_core.py", "", ROOT_ONLY),
    ("integration/test_private_store.py", "", ROOT_ONLY),
    ("integration/test_rootless_network.py", "", ROOT_ONLY),
    *[("integration/test_containers.py", t, NO_CGROUPS) for t in (
        "test_memory_limit_oom_kill_is_reported", "test_pids_limit_contains_a_fork_bomb",
        "test_cpus_and_memory_limits_reach_the_cgroup", "test_fifty_containers_in_a_loop_leave_nothing_behind",
        "test_oci_config_is_run_by_runc", "test_reap_releases_what_a_killed_monitor_left")],
    ("integration/test_netlink.py", "", HOST_NETNS),
    *[("integration/test_network.py", t, HOST_NETNS) for t in (
        "test_fixed_host_port_in_use_fails_with_125_naming_the_port_and_keeps_nothing",
        "test_thirty_containers_on_three_networks_leave_no_link_rule_lease_or_netns",
        "test_reap_after_a_killed_monitor_releases_processes_lease_endpoint_rules_and_port",
        "test_sigkill_of_pods_run_mid_start_leaves_nothing_after_rm_and_reap",
        "test_network_rm_of_a_network_in_use_is_refused_naming_the_container",
        "test_networks_made_one_after_another_add_our_base_rule_once")],
    *[("unit/test_layers.py", t, UNPACK_AS_ROOT) for t in (
        "test_unpack_creates_tree_with_metadata", "test_unpack_converts_whiteouts_to_overlay_form",
        "test_unpacked_whiteouts_hide_lower_files_in_a_real_overlay",
        "test_write_layer_is_deterministic_and_hashes_what_it_wrote",
        "test_write_layer_entries_are_ordered_and_normalised", "test_write_layer_converts_overlay_upper_whiteouts",
        "test_write_then_unpack_round_trips", "test_unpack_hardlink_to_device_or_fifo_links_it")],
    ("unit/test_unpack_fuzz.py", "test_corpus_unpacks_as_gnu_tar_extracts[big ids and times in base-256]",
     "ids above the user's 65536 subordinate ids are not mapped in the user namespace: GNU tar run as the same "
     "user fails alike (and rootless podman refuses such a layer)"),
    ("integration/test_confinement.py", "test_probes_give_what_docker_gives[cap_add_sys_admin]",
     "Docker's outcomes were recorded as root: with CAP_SYS_ADMIN in a user namespace the kernel still "
     "refuses perf_event_open (EACCES: perf_event_paranoid counts only the initial namespace's caps)"),
    ("integration/test_confinement.py", "test_privileged_lifts_seccomp_and_makes_sys_and_cgroupfs_writable",
     NO_CGROUPS + "; privileged cgroupfs writes need a cgroup of the container's own"),
    ("integration/test_confinement.py", "test_runc_runs_the_bundle_with_our_seccomp_section", NO_CGROUPS),
    *[("compat/test_security_flags.py", f"test_each_flag_reaches_the_container[{face}-device-read-only]",
       "no device cgroup rootless (an unprivileged user cannot have one), and this host's /dev/fuse is 0600 "
       "root's, so the user cannot open it at all") for face in (
        "docker-cli", "docker-py", "pods-cli", "pods-cli-remote", "client-local", "client-remote")],
    ("integration/test_registry.py", "test_skopeo_reads_what_we_push",
     "skopeo started from a process inside the user namespace takes itself for root (/var/lib/containers)"),
]


def rootless_limit(item: pytest.Item) -> str | None:
    path = str(item.fspath)
    for part, test, reason in ROOTLESS_LIMITS:
        if part in path and (not test or item.name == test or item.name.startswith(test + "[")):
            return f"rootless: {reason}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = engine_unavailable()
    for item in items:
        if not any(part in str(item.fspath) for part in ("integration", "compat", "plugin")):
            if ROOTLESS and (limit := rootless_limit(item)) is not None:  # unit tests of root's paths
                item.add_marker(pytest.mark.skip(reason=limit))
            continue
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif ROOTLESS and (limit := rootless_limit(item)) is not None:
            item.add_marker(pytest.mark.skip(reason=limit))


_ROOT: list[Path] = []


def test_root() -> Path:
    if not _ROOT:
        root = os.environ.get("PODS_TEST_ROOT")
        _ROOT.append(Path(root) if root else Path(tempfile.mkdtemp(prefix="pods-test-root-", dir="/var/tmp")))
    return _ROOT[0]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Rootless, this process joins the test root's user namespace first, while it has one thread
    (a joined process stays in that namespace: the test root's client must be the first)."""
    if ROOTLESS and not rootless.inside() and engine_unavailable() is None and not hasattr(session.config, "workerinput"):
        _CLIENTS.append(Client(test_root()))


_CLIENTS: list[Client] = []


@pytest.fixture(scope="session")
def pods_root() -> Path:
    return test_root()


def release(c: Client) -> None:
    """Leave nothing of a root behind on the host: containers, networks (bridges, rules), cgroups."""
    for st in c.runtime.list(all=True):
        c.runtime.remove(st["id"], force=True)
    c.cleanup(prune_networks=True)  # the user networks too: the root is being thrown away


@pytest.fixture(scope="session")
def release_root() -> Callable[[Client], None]:
    """Scope: session. The function that leaves nothing of a root behind (for private roots)."""
    return release


@contextlib.contextmanager
def _own_root(prefix: str) -> Iterator[Client]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    c = Client(path / "root")
    try:
        c.images.bootstrap_busybox()
        yield c
    finally:
        try:
            release(c)
        finally:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def own_root() -> Callable[[str], contextlib.AbstractContextManager[Client]]:
    """Scope: session. ``with own_root("pods-x-") as client:`` an engine on a root of its own
    (under /var/tmp), with busybox, released and deleted at the end: for tests whose listings
    must see only their own things, whatever else runs on the shared test root."""
    return _own_root


@pytest.fixture(scope="session")
def client(pods_root: Path) -> Iterator[Client]:
    c = _CLIENTS[0] if _CLIENTS else Client(pods_root)
    try:
        c.images.get("busybox")
    except Exception:
        c.images.bootstrap_busybox()
    yield c
    release(c)


@pytest.fixture(scope="session")
def debian(client: Client) -> str:
    """Scope: session. The Debian image's name (bootstrapped by the Makefile, else here)."""
    try:
        client.images.get("debian:bookworm")
    except Exception:
        client.images.bootstrap_debian("bookworm")
    return "debian:bookworm"


@pytest.fixture
def name() -> str:
    """A container name no other test (or xdist worker) uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pods_cli(pods_root: Path, client: Client):  # type: ignore[no-untyped-def]
    """Run the real `pods` CLI in a subprocess against the test root."""

    def run(*args: str, check: bool = False, timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_pods.cli", "--root", str(pods_root), *args],
            capture_output=True, text=True, timeout=timeout, input=input.decode() if input else None,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"pods {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def daemon(pods_root: Path, client: Client) -> Iterator[Any]:
    """Scope: session. Depends on: pods_root, client. A running ``pods daemon`` on the test root
    (one per root: the compat tests and the plugin's remote-engine runs share it)."""
    import shutil

    from daemon_helper import Daemon, run_dir_base

    d = Path(tempfile.mkdtemp(prefix="pods-daemon-", dir=run_dir_base()))
    daemon = Daemon(pods_root, d / "pods.sock", d / "daemon.log")
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_docker() -> Iterator[Any]:
    """Scope: session. A real dockerd (Debian's docker.io) of this session, to compare with: see
    tests/dockerd_helper.py. Skips, with the reason, where it cannot run (not root, not installed)."""
    from dockerd_helper import reference_dockerd, unavailable

    if (reason := unavailable()) is not None:
        pytest.skip(reason)
    with reference_dockerd() as ref:
        yield ref
