"""The daemon's event bus: what it did or saw, for ``GET /events`` (and for Ryuk's removals)."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict


class Actor(TypedDict):
    ID: str
    Attributes: dict[str, str]


# Docker's event document ("status", "id" and "from" are the old names the CLI still reads)
Event = TypedDict("Event", {
    "status": str, "id": str, "from": str, "Type": str, "Action": str, "Actor": Actor, "scope": str,
    "time": int, "timeNano": int,
})

#: a subscriber's queue, and the condition notified when it grows
Subscription = tuple[threading.Condition, list[Event]]


class Events:
    """Container lifecycle events for ``GET /events`` (what this daemon did or saw).

    The last ``keep`` events are kept, as dockerd keeps its last 256 (more here: a test session
    asks for ``--since`` after the fact), so a subscriber can start in the past."""

    def __init__(self, keep: int = 1024) -> None:
        self._subs: list[Subscription] = []
        self._history: collections.deque[Event] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def publish(self, action: str, cid: str, attrs: Mapping[str, str], kind: str = "container") -> None:
        now = time.time_ns()
        ev: Event = {"status": action, "id": cid, "from": attrs.get("image", ""), "Type": kind, "Action": action,
                     "Actor": {"ID": cid, "Attributes": dict(attrs)}, "scope": "local", "time": now // 10**9,
                     "timeNano": now}
        with self._lock:
            self._history.append(ev)
            for cond, queue in self._subs:
                with cond:
                    queue.append(ev)
                    cond.notify()

    @contextlib.contextmanager
    def subscribe(self, since: float | None = None) -> Iterator[Subscription]:
        """A queue of the events from now on, and first the kept ones from ``since`` (seconds)."""
        sub: Subscription = (threading.Condition(), [])
        with self._lock:
            if since is not None:
                sub[1].extend(ev for ev in self._history if ev["timeNano"] >= since * 1e9)
            self._subs.append(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subs.remove(sub)


def actor_attributes(state: Mapping[str, Any]) -> dict[str, str]:
    """An event's actor attributes: the container's name, image and labels, as dockerd sends."""
    return {**{str(k): str(v) for k, v in (state.get("labels") or {}).items()},
            "name": state["name"], "image": state.get("image_name", "")}
