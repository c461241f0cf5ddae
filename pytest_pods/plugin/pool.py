"""A warm pool: the next containers of a fixture are started and made ready while tests run.

A test that asks for a fresh container takes one that is already ready; a background thread
starts its replacement at once, so with a pool of N the next N tests wait for nothing. Pooled
containers carry the session's owner label like any other, so the watchdog removes them if
pytest dies; at session end the pool stops filling and removes what nobody took.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_pods.plugin.session import Command, PodsSession, Record, Wrap
    from pytest_pods.wait import Strategy


class Pool:
    """Ready containers of one fixture configuration, kept ``size`` ahead of the tests."""

    FILLERS = 2  # containers started at once: one filler is slower than a quick test

    def __init__(self, session: PodsSession, size: int, scope: str, image: str, command: Command,
                 strategy: Strategy | None, timeout: float | None, opts: dict[str, Any],
                 wrap: Wrap | None = None) -> None:
        self._s = session
        self.size = size
        self._wrap = wrap
        self._make_args = (scope, image, command, strategy, timeout, opts)
        self._ready: queue.Queue[Record | BaseException] = queue.Queue()
        self._wanted = threading.Semaphore(size)  # one permit per container to have ready
        self._closed = threading.Event()
        session.ensure_watchdog()  # before a second thread could race to start it
        self._threads = [threading.Thread(target=self._fill, name="pods-pool", daemon=True)
                         for _ in range(min(size, self.FILLERS))]
        for t in self._threads:
            t.start()

    def _fill(self) -> None:
        scope, image, command, strategy, timeout, opts = self._make_args
        while True:
            self._wanted.acquire()
            if self._closed.is_set():
                return
            try:
                rec = self._s.create("(pool)", scope, image, command, strategy, timeout, dict(opts),
                                      name=None, owner=self._s.owner, hooks=False)
                prime = getattr(self._wrap(rec.container), "prime", None) if self._wrap is not None else None
                if prime is not None:
                    prime()  # e.g. Postgres' first connection, which is slow: paid here, not by the test
            except BaseException as exc:  # handed to the test that takes it
                self._ready.put(exc)
                continue
            if self._closed.is_set():
                self._s.release(rec)
                return
            self._ready.put(rec)

    def take(self, fixture: str) -> Record:
        """A ready container for ``fixture`` (waiting only if the pool has not caught up)."""
        t0 = time.monotonic()
        got = self._ready.get()
        self._wanted.release()  # start its replacement now
        if isinstance(got, BaseException):
            raise got
        rec = got
        rec.fixture = fixture
        rec.times["pool"] = time.monotonic() - t0  # its create/start/ready ran in the background
        s = self._s
        if s.current_item is not None:
            rec.item = s.current_item.nodeid
        if s.hook is not None:
            s.hook.pytest_pods_container_created(container=rec.container, fixture=fixture)
            s.hook.pytest_pods_container_ready(container=rec.container, fixture=fixture, seconds=rec.times["pool"])
        return rec

    def close(self) -> None:
        """Stop filling and remove every container nobody took (the one being made included)."""
        self._closed.set()
        for _ in self._threads:
            self._wanted.release()
        for t in self._threads:
            t.join(timeout=120)
        while True:
            try:
                got = self._ready.get_nowait()
            except queue.Empty:
                return
            if not isinstance(got, BaseException):
                self._s.release(got)
