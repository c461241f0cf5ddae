"""Readiness: when is a started container ready for a test?

A strategy is one condition: a log line, a TCP port, an HTTP answer, a command that exits 0, the
image's HEALTHCHECK, or all of several. :func:`wait_ready` drives one against a single deadline::

    from pytest_pods import wait

    ctr.wait_ready(wait.log(r"ready to accept connections", times=2))
    ctr.wait_ready(wait.all_of(wait.tcp(5432), wait.command(["pg_isready"])), timeout=30)

Events are used where the engine has them: log lines arrive through inotify on the container's
log, and the exit of the container's process through a pidfd, so a container that dies while we
wait fails at once with its exit code and logs, not at the deadline. What must be polled (a port,
an HTTP probe, a command) is polled with exponential backoff from 1 ms (tenacity), and every
pause between attempts is also a wait on that pidfd.

A TCP port is ready when something listens on it inside the container's network namespace (read
from the kernel's socket table) *and*, when published, a connect through the published address
succeeds: a host-side connect alone says yes too early behind a userland proxy.
"""

from __future__ import annotations

import http.client as httpclient
import re
import socket
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, Protocol

from pytest_pods.errors import (
    ContainerExitedError,
    ContainerUnhealthyError,
    InvalidArgumentError,
    PodsError,
    ReadinessTimeoutError,
)

__all__ = ["ContainerUnhealthyError", "Probe", "Strategy", "Watched", "all_of", "as_strategy", "command", "healthcheck", "http", "log", "tcp",
           "wait_ready"]

LOG_LINES_SHOWN = 30
EXIT_REPORT_GRACE = 3.0  # seconds an exec's refusal waits for the exit it may stem from


class Probe(Protocol):
    """How an engine watches one container while a strategy waits (``container.probe(state)``):
    the local engine through a pidfd and the kernel's socket table, a remote one through the API."""

    def exited(self) -> bool:
        """Whether the container's process has ended."""
    def wait_exit(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the container exits meanwhile."""
    def listening(self) -> set[int] | None:
        """The TCP ports listening in the container's network namespace (None: cannot tell)."""
    def connection(self, port: int, timeout: float) -> httpclient.HTTPConnection:
        """An HTTP connection to ``port`` inside the container (one that is not published)."""
    def close(self) -> None: ...


class ExecOutcome(Protocol):
    @property
    def exit_code(self) -> int: ...
    @property
    def output(self) -> bytes: ...
    @property
    def stderr(self) -> bytes: ...


class Watched(Protocol):
    """What readiness needs of a container, local or remote (``Container``, ``RemoteContainer``)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> Mapping[str, Any]: ...
    def probe(self, st: Mapping[str, Any] | None = None) -> Probe: ...
    def follow_logs(self, until: float | None = None) -> Iterator[tuple[str, str, bytes]]: ...
    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | None = None) -> bytes: ...
    def address(self, port: int | str) -> tuple[str, int]: ...
    def exec(self, cmd: Sequence[str] | str, *, environment: Sequence[str] | None = None,
             user: str | None = None, workdir: str | None = None) -> ExecOutcome: ...
    def inspect(self) -> dict[str, Any]: ...
    def wait(self, timeout: float | None = None) -> int: ...


class Target:
    """What a strategy waits on: the container, a probe of it (local or remote engine), and
    the one deadline."""

    def __init__(self, container: Watched, deadline: float) -> None:
        self.container = container
        self.deadline = deadline
        st = container.state
        self.ports = {(p["container_port"], p["proto"]): p for p in st.get("ports") or []}
        self.network = str(st.get("network") or "")
        self.probe = container.probe(st)
        self.last = ""  # the last thing a polling attempt saw, for the timeout message

    def listening(self) -> set[int] | None:
        """The TCP ports listening in the container's network namespace (None: cannot tell)."""
        return self.probe.listening()

    def close(self) -> None:
        self.probe.close()

    @property
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def exited(self) -> bool:
        return bool(self.probe.exited())

    def sleep(self, seconds: float) -> None:
        """Pause between attempts; wakes at once (and raises) if the container exits."""
        if self.probe.wait_exit(max(0.0, min(seconds, self.remaining))) or self.exited():
            raise _Exited()

    def poll(self, attempt: Callable[[], bool], max_pause: float = 0.1) -> None:
        """Retry ``attempt`` with exponential backoff (1 ms, doubling, at most ``max_pause``)
        until it returns True; raises _Deadline or _Exited."""
        import tenacity  # lazy: only polling strategies need it (not log lines, not the CLI)

        retrying = tenacity.Retrying(
            stop=lambda _state: self.remaining <= 0,
            wait=tenacity.wait_exponential(multiplier=0.001, min=0.001, max=max_pause),
            retry=tenacity.retry_if_result(lambda ok: not ok),
            sleep=self.sleep,
            retry_error_callback=lambda _state: False,
        )
        if not retrying(self._checked, attempt):
            raise _Deadline()

    def _checked(self, attempt: Callable[[], bool]) -> bool:
        if self.exited():
            raise _Exited()
        try:
            return attempt()
        except OSError:
            # its namespaces go a moment before the exit is reported: give that moment
            if self.exited() or self.probe.wait_exit(0.5):
                raise _Exited() from None
            raise


class _Exited(Exception):
    """The container's process ended while we waited."""


class _Deadline(Exception):
    """The deadline passed."""


class _Unhealthy(Exception):
    """The engine's health checks declared the container unhealthy (the message says why)."""


class Strategy:
    """A readiness condition. Subclasses implement :meth:`wait` and :meth:`describe`."""

    def describe(self) -> str:
        raise NotImplementedError

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        """Refuse a condition that can never hold for this container, before it is started."""

    def wait(self, t: Target) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<wait {self.describe()}>"


class LogLine(Strategy):
    def __init__(self, pattern: str | re.Pattern[str], times: int = 1, stream: str | None = None) -> None:
        self.pattern = pattern
        if times < 1:
            raise InvalidArgumentError(f"wait for log line {pattern!r}: times must be at least 1, not {times}")
        if stream not in (None, "stdout", "stderr"):
            raise InvalidArgumentError(f"wait for log line: stream must be 'stdout' or 'stderr', not {stream!r}")
        self.times, self.stream = times, stream

    @property
    def regex(self) -> re.Pattern[str]:
        """Compiled on first use, so that a bad pattern is reported at fixture setup, by name."""
        if isinstance(self.pattern, re.Pattern):
            return self.pattern
        try:
            return re.compile(self.pattern)
        except re.error as exc:
            raise InvalidArgumentError(f"wait for log line {self.pattern!r}: bad regular expression: {exc}") from None

    def describe(self) -> str:
        nth = f" {self.times} times" if self.times > 1 else ""
        shown = self.pattern.pattern if isinstance(self.pattern, re.Pattern) else self.pattern
        return f"log line /{shown}/{nth}"

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        self.regex  # noqa: B018 - compiles, or raises naming the pattern

    def wait(self, t: Target) -> None:
        seen, regex = 0, self.regex
        for stream, _, line in t.container.follow_logs(until=t.deadline):
            if self.stream and stream != self.stream:
                continue
            if regex.search(line.decode("utf-8", "replace")):
                seen += 1
                if seen >= self.times:
                    return
        t.last = f"seen {seen} of {self.times}" if self.times > 1 else "not seen"
        if t.remaining <= 0 and not t.exited():
            raise _Deadline()
        raise _Exited()


def _port(value: int | str) -> int:
    try:
        num = int(str(value).split("/")[0])
    except ValueError:
        raise InvalidArgumentError(f"wait: bad port {value!r}") from None
    if not 0 < num < 65536:
        raise InvalidArgumentError(f"wait: port {value!r} is out of range")
    return num


def _check_port(port: int, what: str, exposed: Collection[int], published: Collection[int], network: str) -> None:
    """An image that declares its ports (EXPOSE) and a wait on another one that is not published
    either: a typo (5433 for 5432) that would otherwise only show as a timeout. An image that
    declares none (busybox) may listen anywhere."""
    if network == "host" or not exposed or port in exposed or port in published:
        return
    raise InvalidArgumentError(
        f"wait for {what}: the container neither exposes nor publishes port {port} "
        f"(exposed: {sorted(exposed)}; published: {sorted(published) or 'none'})")


class TcpPort(Strategy):
    def __init__(self, port: int | str) -> None:
        self.port = _port(port)

    def describe(self) -> str:
        return f"tcp port {self.port}"

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        _check_port(self.port, self.describe(), exposed, published, network)

    def wait(self, t: Target) -> None:
        published = t.ports.get((self.port, "tcp"))

        def attempt() -> bool:
            listening = t.listening()
            if listening is not None and self.port not in listening:
                t.last = f"nothing listens on port {self.port} in the container"
                return False
            if published is None or t.network == "host":
                # nothing to connect to: ready on the listening check alone, and where that cannot
                # tell (a remote engine whose exec failed), only while the container still runs
                if listening is None and t.container.state.get("status") != "running":
                    raise _Exited()
                return True
            host, hport = t.container.address(self.port)
            try:
                with socket.create_connection((host, hport), timeout=max(0.05, min(1.0, t.remaining))):
                    return True
            except OSError as exc:
                t.last = f"listening, but {host}:{hport} (published) refuses: {exc.strerror or exc}"
                return False

        t.poll(attempt)


class Http(Strategy):
    def __init__(self, port: int | str, path: str = "/", status: int | Collection[int] | Callable[[int], bool] = 200,
                 body: str | bytes | None = None, method: str = "GET", headers: Mapping[str, str] | None = None) -> None:
        self.port, self.path, self.method = _port(port), "/" + path.lstrip("/"), method
        self.status, self.headers = status, dict(headers or {})
        try:
            self.body = None if body is None else re.compile(body.encode() if isinstance(body, str) else body)
        except re.error as exc:
            raise InvalidArgumentError(f"wait for http body {body!r}: bad regular expression: {exc}") from None

    def describe(self) -> str:
        want = self.status if isinstance(self.status, int) else "accepted status"
        return f"http {self.method} :{self.port}{self.path} -> {want}" + (
            f" with body /{self.body.pattern.decode(errors='replace')}/" if self.body else "")

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        _check_port(self.port, self.describe(), exposed, published, network)

    def _status_ok(self, code: int) -> bool:
        if callable(self.status):
            return bool(self.status(code))
        if isinstance(self.status, int):
            return code == self.status
        return code in self.status

    def wait(self, t: Target) -> None:
        published = t.ports.get((self.port, "tcp"))

        def attempt() -> bool:
            timeout = max(0.05, min(2.0, t.remaining))
            if published is not None and t.network != "host":
                host, hport = t.container.address(self.port)
                conn: httpclient.HTTPConnection = httpclient.HTTPConnection(host, hport, timeout=timeout)
            else:
                conn = t.probe.connection(self.port, timeout)
            try:
                conn.request(self.method, self.path, headers=self.headers)
                resp = conn.getresponse()
                data = resp.read(1 << 20)
            except (OSError, httpclient.HTTPException) as exc:
                t.last = f"no answer: {exc}"
                return False
            finally:
                conn.close()
            if not self._status_ok(resp.status):
                t.last = f"status {resp.status}: {data[:200]!r}"
                return False
            if self.body is not None and not self.body.search(data):
                t.last = f"status {resp.status}, body does not match: {data[:200]!r}"
                return False
            return True

        t.poll(attempt, max_pause=0.1)


class Command(Strategy):
    def __init__(self, cmd: Sequence[str] | str, user: str | None = None) -> None:
        if not cmd:
            raise InvalidArgumentError("wait for command: no command given")
        self.cmd = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        self.user = user

    def describe(self) -> str:
        shown = self.cmd[2] if self.cmd[:2] == ["/bin/sh", "-c"] else " ".join(self.cmd)
        return f"command `{shown}` exits 0"

    def wait(self, t: Target) -> None:
        _poll_exec(t, self.cmd, self.user, max_pause=0.25)


def _poll_exec(t: Target, cmd: list[str], user: str | None, max_pause: float,
               first: Callable[[], bool] | None = None) -> None:
    def attempt() -> bool:
        if first is not None and first():
            return True
        try:
            res = t.container.exec(cmd, user=user)
        except PodsError:
            # it may have stopped between the check and the exec ("not running", or its
            # namespaces already gone), and the exit report can trail that refusal (a remote
            # engine's 409 comes before its /wait answers): give the report a moment
            if t.exited() or t.probe.wait_exit(max(0.0, min(EXIT_REPORT_GRACE, t.remaining))):
                raise _Exited() from None
            raise
        if res.exit_code == 0:
            return True
        out = (res.output + res.stderr).decode(errors="replace").strip().splitlines()
        t.last = f"exit code {res.exit_code}" + (f": {out[-1][:200]}" if out else "")
        return False

    t.poll(attempt, max_pause=max_pause)


class HealthCheck(Strategy):
    """The image's (or container's) HEALTHCHECK, run as an exec until it passes once. Docker
    would wait ``Interval`` (30 s by default) before the first try; readiness tries at once."""

    def describe(self) -> str:
        return "the image's HEALTHCHECK"

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        if healthcheck_command(image_config) is None:
            raise InvalidArgumentError("wait for the image's HEALTHCHECK: the image has none")

    def wait(self, t: Target) -> None:
        cfg = t.container.inspect()["Config"]
        cmd = healthcheck_command(cfg)
        if cmd is None:
            raise InvalidArgumentError(f"wait for container {t.container.name}: its image has no HEALTHCHECK")
        interval = (cfg.get("Healthcheck") or {}).get("Interval") or 0
        _poll_exec(t, cmd, None, max_pause=min(1.0, interval / 1e9) if interval else 0.25,
                   first=lambda: engine_healthy(t.container))


def engine_healthy(container: Watched) -> bool:
    """What the engine's own health checks found (``State.Health``, ours or a remote dockerd's,
    issue 16): True once ``healthy``; False while ``starting`` or without one.

    :raises _Unhealthy: the engine declared it ``unhealthy`` (its last probe's output attached)
    """
    health = container.state.get("health")
    if not health:
        return False
    if health.get("Status") == "healthy":
        return True
    # FailingStreak 0: the "unhealthy" a stopped container is left with, not a probe's verdict
    if health.get("Status") == "unhealthy" and health.get("FailingStreak"):
        last = (health.get("Log") or [{}])[-1]
        out = str(last.get("Output") or "").strip()
        raise _Unhealthy(f"the engine's health check failed {health['FailingStreak']} times in a row; the last "
                         f"exited {last.get('ExitCode')}" + (f": {out[-500:]}" if out else " with no output"))
    return False


def healthcheck_command(config: Mapping[str, Any]) -> list[str] | None:
    test = list((config.get("Healthcheck") or {}).get("Test") or [])
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return test[1:] or None
    return test


class AllOf(Strategy):
    def __init__(self, *strategies: Any) -> None:
        if not strategies:
            raise InvalidArgumentError("wait for all of: no strategy given")
        self.strategies = [as_strategy(s) for s in strategies]

    def describe(self) -> str:
        return "all of (" + "; ".join(s.describe() for s in self.strategies) + ")"

    def check_config(self, exposed: Collection[int], published: Collection[int], network: str,
                     image_config: Mapping[str, Any]) -> None:
        for s in self.strategies:
            s.check_config(exposed, published, network, image_config)

    def wait(self, t: Target) -> None:
        for s in self.strategies:
            s.wait(t)


def log(pattern: str | re.Pattern[str], times: int = 1, stream: str | None = None) -> Strategy:
    """Ready when a log line matches ``pattern`` (a regex, searched) for the ``times``-th time."""
    return LogLine(pattern, times, stream)


def tcp(port: int | str) -> Strategy:
    """Ready when ``port`` listens in the container and answers through its published port."""
    return TcpPort(port)


def http(port: int | str, path: str = "/", status: int | Collection[int] | Callable[[int], bool] = 200,
         body: str | bytes | None = None, method: str = "GET", headers: Mapping[str, str] | None = None) -> Strategy:
    """Ready when ``method path`` on ``port`` answers ``status`` (and a body matching ``body``)."""
    return Http(port, path, status, body, method, headers)


def command(cmd: Sequence[str] | str, user: str | None = None) -> Strategy:
    """Ready when ``cmd`` run in the container exits 0 (a string runs with /bin/sh -c)."""
    return Command(cmd, user)


def healthcheck() -> Strategy:
    """Ready when the image's HEALTHCHECK command passes."""
    return HealthCheck()


def all_of(*strategies: Any) -> Strategy:
    """Ready when every one holds (checked in order, against the one deadline)."""
    return AllOf(*strategies)


def as_strategy(value: Any) -> Strategy:
    """Shorthands: a str is a log regex, an int a TCP port, a list or tuple all of them."""
    if isinstance(value, Strategy):
        return value
    if isinstance(value, str):
        return LogLine(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return TcpPort(value)
    if isinstance(value, (list, tuple)):
        return AllOf(*value)
    raise InvalidArgumentError(f"wait: {value!r} is not a readiness strategy (use pytest_pods.wait.log/tcp/http/...)")


def last_log_lines(container: Watched, n: int = LOG_LINES_SHOWN) -> str:
    try:
        lines = container.logs(tail=n).decode("utf-8", "replace").splitlines()
    except Exception:  # the container is gone: nothing to show
        return "(no logs: the container is gone)"
    return "\n".join(lines) if lines else "(the container printed nothing)"


def wait_ready(container: Watched, strategy: Any, timeout: float = 60.0, *, label: str = "") -> float:
    """Block until ``strategy`` holds for the running ``container``; the seconds it took.

    :param label: who asked, for messages (the plugin passes ``fixture 'redis'``)
    :raises ReadinessTimeoutError: not ready by the deadline (the last 30 log lines attached)
    :raises ContainerExitedError: the container exited first (exit code and logs attached)
    :raises ContainerUnhealthyError: waiting for the HEALTHCHECK, the engine declared it unhealthy
    """
    strategy = as_strategy(strategy)
    start = time.monotonic()
    t = Target(container, start + timeout)
    who = f"container {container.name}" + (f" ({label})" if label else "")
    err: ContainerExitedError | ReadinessTimeoutError | ContainerUnhealthyError
    try:
        strategy.wait(t)
        return time.monotonic() - start
    except _Unhealthy as exc:
        err = ContainerUnhealthyError(f"wait for {who}: it is unhealthy after {time.monotonic() - start:.2f} s: {exc}")
    except _Exited:
        code = container.wait(timeout=5)
        err = ContainerExitedError(
            f"wait for {who}: it exited with code {code} after {time.monotonic() - start:.2f} s "
            f"while waiting for {strategy.describe()}", code)
    except _Deadline:
        err = ReadinessTimeoutError(
            f"wait for {who}: not ready after {timeout:.1f} s: {strategy.describe()}"
            + (f" ({t.last})" if t.last else ""))
    finally:
        t.close()
    err.add_note(f"last {LOG_LINES_SHOWN} log lines of {container.name}:\n{last_log_lines(container)}")
    raise err
