"""Health checks (issue 16): a container's merged HEALTHCHECK and the prober its monitor runs.

Docker's semantics (moby ``daemon/health.go``), our own code: the first probe runs one interval
after the start (``StartInterval`` while the container is still ``starting`` inside its
``StartPeriod``, ``Interval`` after), each probe is an exec in the container with ``Timeout``
(then killed, exit code -1), and the next one is due an interval after the last one ended.
``Retries`` consecutive failures make it ``unhealthy``; a success makes it ``healthy`` and resets
the streak; a failure inside the start period while still ``starting`` does not count. The last
five results are kept, each output cut at 4096 bytes (then ``...``). When the container stops
the status becomes ``unhealthy``, as dockerd leaves it.

Only a container with a health check loads this module (the monitor imports it lazily): the
start path of every other container pays nothing.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from pytest_pods.engine import events
from pytest_pods.engine.runtime import nsinit
from pytest_pods.engine.runtime.state import ContainerState, now_iso, update_state
from pytest_pods.errors import InvalidArgumentError

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
MIN_DURATION = 1_000_000  # 1 ms: dockerd refuses shorter non-zero durations


class HealthConfig(TypedDict, total=False):
    """``Config.Healthcheck`` of the Engine API (durations in nanoseconds; 0: the default)."""

    Test: list[str]
    Interval: int
    Timeout: int
    Retries: int
    StartPeriod: int
    StartInterval: int


class HealthResult(TypedDict):
    Start: str
    End: str
    ExitCode: int
    Output: str


class HealthState(TypedDict):
    """``State.Health`` as dockerd reports it."""

    Status: str            # starting | healthy | unhealthy
    FailingStreak: int
    Log: list[HealthResult]


_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


def check_config(hc: Mapping[str, Any], what: str = "Healthcheck") -> HealthConfig:
    """A ``Config.Healthcheck`` document checked as dockerd checks it, in its own shape.

    :raises InvalidArgumentError: a field of the wrong type, a negative value or a duration under 1 ms
    """
    out: HealthConfig = {}
    test = hc.get("Test")
    if test is not None:
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
            raise InvalidArgumentError(f"json: cannot unmarshal {what}.Test: want a list of strings")
        if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise InvalidArgumentError(f"{what}: unknown test type {test[0]!r} (NONE, CMD or CMD-SHELL)")
        out["Test"] = list(test)
    for key in _DURATIONS:
        value = hc.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgumentError(f"json: cannot unmarshal {what}.{key}: want an integer (nanoseconds)")
        if value != 0 and value < MIN_DURATION:
            raise InvalidArgumentError(f"{key} in Healthcheck cannot be less than 1ms")
        out[key] = value  # type: ignore[literal-required]
    retries = hc.get("Retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise InvalidArgumentError(f"json: cannot unmarshal {what}.Retries: want an integer")
        if retries < 0:
            raise InvalidArgumentError("Retries in Healthcheck cannot be negative")
        out["Retries"] = retries
    return out


def merge(image: Mapping[str, Any] | None, container: Mapping[str, Any] | None) -> HealthConfig | None:
    """The container's health check: its own fields, the image's where its own are unset (as
    dockerd merges them at create); None if neither has one."""
    if container is None:
        return check_config(image, "image Healthcheck") if image else None
    merged = check_config(container)
    if image:
        base = check_config(image, "image Healthcheck")
        if not merged.get("Test") and base.get("Test"):
            merged["Test"] = base["Test"]
        for key in (*_DURATIONS, "Retries"):
            if not merged.get(key) and base.get(key):
                merged[key] = base[key]  # type: ignore[literal-required]
    return merged


def enabled(hc: Mapping[str, Any] | None) -> bool:
    """Whether ``hc`` runs a probe (a test that is not ``NONE``)."""
    test = (hc or {}).get("Test") or []
    return bool(test) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def probe_args(hc: Mapping[str, Any]) -> list[str]:
    test = list(hc["Test"])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return test[1:]


def go_duration(ns: int) -> str:
    """A duration as Go prints it (``500ms``, ``1.5s``, ``1m30s``): dockerd's timeout message."""
    if ns == 0:
        return "0s"
    if ns < 1000:
        return f"{ns}ns"
    for unit, size in (("µs", 1000), ("ms", 1_000_000)):
        if ns < size * 1000:
            return f"{ns / size:.9f}".rstrip("0").rstrip(".") + unit
    h, rest = divmod(ns, 3600 * SECOND)
    m, s = divmod(rest, 60 * SECOND)
    secs = f"{s / SECOND:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{secs}"
    if m:
        return f"{m}m{secs}"
    return secs


def starting() -> HealthState:
    return {"Status": "starting", "FailingStreak": 0, "Log": []}


class Prober:
    """The monitor's side of a health check: one probe at a time, driven by the monitor's select
    loop (:meth:`fds`, :meth:`timeout`, :meth:`ready`, :meth:`tick`); it never blocks."""

    def __init__(self, cdir: Path, hc: Mapping[str, Any], pid: int, config: Mapping[str, Any],
                 cgroup_join: list[tuple[str, str]], seccomp_key: str) -> None:
        self.cdir = cdir
        self.pid = pid  # the container's pid 1
        self.interval = (hc.get("Interval") or DEFAULT_INTERVAL) / SECOND
        self.timeout_ns = hc.get("Timeout") or DEFAULT_TIMEOUT
        self.start_period = (hc.get("StartPeriod") or DEFAULT_START_PERIOD) / SECOND
        self.start_interval = (hc.get("StartInterval") or DEFAULT_START_INTERVAL) / SECOND
        self.retries = hc.get("Retries") or DEFAULT_RETRIES
        proc = dict(config["process"])
        proc["args"] = probe_args(hc)
        proc["terminal"] = False
        filter_path = (config.get("annotations") or {}).get(seccomp_key)
        if filter_path:  # the probe runs under the container's seccomp filter, as an exec does
            proc[seccomp_key] = filter_path
        self.proc = proc
        self.cgroup_join = cgroup_join
        self.started = time.monotonic()
        self.status = "starting"
        self.reported = "starting"  # the last status told as an event
        self.streak = 0
        self.log: list[HealthResult] = []
        self.due = self.started + self._interval()
        # the running probe: its pid (a process group leader), pidfd, output pipe, error pipe
        self.child = 0
        self.pidfd = -1
        self.out = -1
        self.err = -1
        self.output = b""
        self.truncated = False
        self.probe_start = 0.0
        self.probe_start_iso = ""
        self.deadline = 0.0
        self.timed_out = False
        self.watched: set[int] = set()  # what the last select watched: a ready fd closed meanwhile is still ours

    def _interval(self) -> float:
        if time.monotonic() - self.started >= self.start_period or self.status != "starting":
            return self.interval
        return self.start_interval

    # -- the select loop's hooks -------------------------------------------------------------
    def fds(self) -> list[int]:
        self.watched = {fd for fd in (self.pidfd, self.out) if fd >= 0}
        return list(self.watched)

    def timeout(self) -> float:
        """Seconds until the next thing to do (a probe to start, or one to kill)."""
        now = time.monotonic()
        if self.child:
            return 0.0 if self.timed_out else max(0.0, self.deadline - now)
        return max(0.0, self.due - now)

    def tick(self) -> None:
        """Start a probe that is due; kill one past its timeout."""
        now = time.monotonic()
        if self.child:
            if not self.timed_out and now >= self.deadline:
                self.timed_out = True
                self._kill()
            return
        if now >= self.due:
            self._spawn()

    def ready(self, fd: int) -> bool:
        """Handle a readable fd of ours; False if it is not ours."""
        if fd not in self.watched:
            return False
        if fd == self.out:
            self._read()
        elif fd == self.pidfd:
            self._finish()
        return True  # else closed since the select (the probe ended): nothing to do

    def stop(self) -> None:
        """The container stopped: kill a running probe, and leave the status ``unhealthy``."""
        if self.child:
            self._kill()
            try:
                os.waitpid(self.child, 0)
            except ChildProcessError:
                pass
            self._reap_group(self.child)
            self._close()
        self.status = "unhealthy"
        self._write()

    # -- one probe --------------------------------------------------------------------------
    def _spawn(self) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        self.probe_start = time.monotonic()
        self.probe_start_iso = now_iso()
        child = os.fork()
        if child == 0:
            try:
                os.setsid()  # a process group of its own: a timeout kills the probe and all it started
                os.close(out_r)
                os.close(err_r)
                null = os.open("/dev/null", os.O_RDONLY)
                nsinit.enter_and_exec(self.pid, self.cgroup_join, self.proc, err_w, (null, out_w, out_w))
            finally:
                os._exit(126)
        os.close(out_w)
        os.close(err_w)
        os.set_blocking(out_r, False)
        self.child, self.out, self.err = child, out_r, err_r
        self.pidfd = os.pidfd_open(child)
        self.output, self.truncated, self.timed_out = b"", False, False
        self.deadline = self.probe_start + self.timeout_ns / SECOND

    def _read(self) -> None:
        try:
            data = os.read(self.out, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            os.close(self.out)
            self.out = -1
            return
        room = MAX_OUTPUT - len(self.output)
        if len(data) > room:
            self.truncated = True
        self.output += data[:max(0, room)]

    def _kill(self) -> None:
        try:
            os.killpg(self.child, signal.SIGKILL)
        except OSError:
            pass

    @staticmethod
    def _reap_group(pgid: int) -> None:
        """After a kill, the rest of the probe's process group: the process the exec path forked
        into the container's pid namespace becomes our child once its parent is gone (the monitor
        is a subreaper). Unreaped, it stays a member of that namespace, and the container's pid 1
        can then never finish exiting (the kernel waits for every process of its namespace): the
        container could not be stopped or removed. Every member got SIGKILL, so this is short."""
        while True:
            try:
                os.waitpid(-pgid, 0)
            except ChildProcessError:
                return

    def _close(self) -> None:
        for fd in (self.pidfd, self.out, self.err):
            if fd >= 0:
                os.close(fd)
        self.child, self.pidfd, self.out, self.err = 0, -1, -1, -1

    def _finish(self) -> None:
        _, status = os.waitpid(self.child, 0)
        if self.timed_out:
            self._reap_group(self.child)
        code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        if self.out >= 0:  # what is buffered; a process the probe left behind may hold the pipe open
            self._read()
        fcntl.fcntl(self.err, fcntl.F_SETFL, os.O_NONBLOCK)
        try:
            failure = os.read(self.err, 65536)
        except OSError:
            failure = b""
        text = self.output.decode("utf-8", "replace") + ("..." if self.truncated else "")
        if failure:  # the exec itself failed (no such command): its error is the output
            import json  # lazy: only on a failed exec

            try:
                text = str(json.loads(failure).get("error", ""))
            except ValueError:
                text = failure.decode("utf-8", "replace")
        if self.timed_out:
            code = -1
            limit = go_duration(self.timeout_ns)
            text = f"Health check exceeded timeout ({limit})" + (f": {text}" if text else "")
        self._close()
        self._record({"Start": self.probe_start_iso, "End": now_iso(), "ExitCode": code, "Output": text},
                     self.probe_start)
        self.due = time.monotonic() + self._interval()

    def _record(self, result: HealthResult, started: float) -> None:
        self.log = [*self.log, result][-MAX_LOG_ENTRIES:]
        if result["ExitCode"] == 0:
            self.streak = 0
            self.status = "healthy"
        elif not (self.status == "starting" and started - self.started < self.start_period):
            self.streak += 1
            if self.streak >= self.retries:
                self.status = "unhealthy"
        self._write()

    def _write(self) -> None:
        health: HealthState = {"Status": self.status, "FailingStreak": self.streak, "Log": list(self.log)}

        def change(s: ContainerState) -> None:
            s["health"] = health

        try:
            st = update_state(self.cdir, change)
        except (OSError, ValueError):
            return  # removed meanwhile (rm -f): nobody to tell
        # a verdict that changed: dockerd's health_status event (not the "unhealthy" a stopping
        # container is left with, which no probe gave)
        if self.status != self.reported and (self.status != "unhealthy" or self.streak):
            self.reported = self.status
            events.record(self.cdir.parent.parent, "container", f"health_status: {self.status}", self.cdir.name,
                          events.container_attrs(st))
