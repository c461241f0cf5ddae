"""Nothing of the rootless suites is left (issue 13): ``make test`` runs this after the suites ran
as ``pods-rootless``, so it checks, as root, what they left: processes (holders, network helpers,
monitors, containers, daemons, watchdogs), and with them every mount, netns and veth inside the
user's namespaces (those live only as long as a process holds them), the session daemons' sockets
and the engine's temp dirs."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import User, wait_gone


def test_no_process_of_the_user_is_left(users: dict[str, User]) -> None:
    u = users["pods-rootless"]
    assert wait_gone(u) == [], "the rootless suites left processes (holders, pasta, monitors, daemons)"


def test_no_user_namespace_or_netns_of_the_user_is_held(users: dict[str, User]) -> None:
    """No process anywhere (the user's or not) is in a namespace the user owns: no netns with
    veths or bridges, no mount namespace with overlays."""
    u = users["pods-rootless"]
    held = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/user").st_ino == os.stat("/proc/1/ns/user").st_ino:
                continue
            uid_map = Path(f"/proc/{entry}/uid_map").read_text().split()
        except OSError:
            continue
        if len(uid_map) >= 2 and uid_map[1] == str(u.uid):
            held.append(entry)
    assert held == []


def test_no_session_socket_holder_pid_or_temp_dir_is_left(users: dict[str, User]) -> None:
    u = users["pods-rootless"]
    base = u.run_dir / "pytest-pods"
    left = []
    if base.is_dir():
        left += [str(p) for p in base.glob("session-*")]
        for pid_file in base.glob("*/*.pid"):
            pid = pid_file.read_text().split()[0]
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                left.append(f"{pid_file} (pid {pid} runs)")
    for tmp in (Path("/tmp"), Path("/var/tmp")):
        for p in tmp.iterdir():
            try:
                if p.stat().st_uid == u.uid and p.name.startswith(("pods-", "tmp")):
                    left.append(str(p))
            except OSError:
                continue
    for root in (u.home / ".cache/pods-test-root", u.home / ".local/share/pytest-pods"):
        tmp_dir = root / "tmp"
        if tmp_dir.is_dir():
            left += [str(p) for p in tmp_dir.iterdir()]
    assert left == []
