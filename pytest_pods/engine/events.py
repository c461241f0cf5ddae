"""The engine's event journal: what happened to a root's containers, networks, volumes and images
(``pods events``), in Docker's event shape.

Every process that changes the root (the CLI, a plugin session, the daemon, a container's monitor)
appends one JSON line per event to ``ROOT/events.jsonl`` with a single ``O_APPEND`` write, so
writers never interleave and no lock is taken on the start path. The file is kept small: past
``MAX_BYTES`` the writer that notices moves it to ``events.jsonl.1`` (one generation kept) and
starts a new one. Recording never fails the operation it reports: a journal that cannot be
written loses the event, not the container.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

JOURNAL = "events.jsonl"
MAX_BYTES = 2 * 1024 * 1024


def record(root: Path, kind: str, action: str, actor: str, attrs: Mapping[str, Any] | None = None) -> None:
    """Append one event: ``kind`` container|network|volume|image, docker's ``action`` words."""
    now = time.time_ns()
    ev: dict[str, Any] = {"Type": kind, "Action": action,
                          "Actor": {"ID": actor, "Attributes": {str(k): str(v) for k, v in (attrs or {}).items()}},
                          "scope": "local", "time": now // 10**9, "timeNano": now}
    if kind == "container":  # the old names the docker CLI still reads
        ev.update({"status": action, "id": actor, "from": ev["Actor"]["Attributes"].get("image", "")})
    path = root / JOURNAL
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(fd).st_size > MAX_BYTES:
                os.replace(path, root / f"{JOURNAL}.1")  # this line ends the old file; the next writer starts anew
            os.write(fd, (json.dumps(ev, separators=(",", ":")) + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def container_attrs(state: Mapping[str, Any], **more: Any) -> dict[str, str]:
    """A container event's attributes as dockerd sends them: its labels, name and image."""
    return {**{str(k): str(v) for k, v in (state.get("labels") or {}).items()},
            "image": str(state.get("image_name", "")), "name": str(state.get("name", "")),
            **{k: str(v) for k, v in more.items()}}


def _lines(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole events in ``path`` from ``offset`` on, and the offset after the last whole line."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # a torn line (a writer killed mid-write): skipped
        if isinstance(ev, dict) and isinstance(ev.get("timeNano"), int):
            out.append(ev)
    return out, offset + end


def read(root: Path, since: float | None = None, until: float | None = None, *, follow: bool = False,
         stop: Callable[[], bool] = lambda: False, poll: float = 0.05) -> Iterator[dict[str, Any]]:
    """The events from ``since`` (unix seconds; None: from now when following, else all kept)
    to ``until``, oldest first; with ``follow``, then the new ones as they are written, until
    ``until`` passes or ``stop()`` says so."""
    path = root / JOURNAL
    start_ns = int(since * 1e9) if since is not None else (time.time_ns() if follow else 0)
    end_ns = int(until * 1e9) if until is not None else None
    old, _ = _lines(root / f"{JOURNAL}.1")
    current, offset = _lines(path)
    inode = _inode(path)
    for ev in old + current:
        if end_ns is not None and ev["timeNano"] > end_ns:
            return
        if ev["timeNano"] >= start_ns:
            yield ev
    while follow and not stop() and (end_ns is None or time.time_ns() <= end_ns):
        time.sleep(poll)
        if _inode(path) != inode:  # moved aside: the rest of the old file, then the new one
            rest, _ = _lines(root / f"{JOURNAL}.1", offset)
            inode, offset = _inode(path), 0
        else:
            rest = []
        new, offset = _lines(path, offset)
        for ev in rest + new:
            if end_ns is not None and ev["timeNano"] > end_ns:
                return
            if ev["timeNano"] >= start_ns:
                yield ev


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return 0
