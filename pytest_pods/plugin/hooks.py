"""The pytest11 entry point: options, hooks, the report sections and the timeline.

Every option is also an ini key and an environment variable; the command line wins, then the
environment, then the ini file::

    --pods-root DIR          pods_root            PODS_ROOT            engine state root
    --pods-host URL          pods_host            PODS_HOST            a remote engine (pods or Docker daemon)
    --pods-timeout SECONDS   pods_timeout         PODS_TIMEOUT         readiness deadline (60)
    --pods-keep-on-failure   pods_keep_on_failure PODS_KEEP_ON_FAILURE keep a failing test's containers
    --pods-reuse             pods_reuse           PODS_REUSE           keep wider-scoped containers between runs
    --pods-required          pods_required        PODS_REQUIRED        fail, not skip, where the engine cannot run
    --pods-registry HOST/NS  pods_registry        PODS_REGISTRY        where service images are pulled from
    --pods-ignore-limits     pods_ignore_limits   PODS_IGNORE_LIMITS   drop cgroup limits the engine cannot apply

As an ordinary user (the rootless engine) without ``--pods-host``, the session drives a ``pods
daemon`` of its own (see :mod:`pytest_pods.plugin.session_daemon`); the default root is then
``$XDG_DATA_HOME/pytest-pods`` (else ``~/.local/share/pytest-pods``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Generator
from typing import Any

import pytest

from pytest_pods.plugin import hookspec
from pytest_pods.plugin.fixtures import pods, session_of, set_session
from pytest_pods.plugin.services import postgres, postgres_image, redis, redis_image
from pytest_pods.plugin.session import DEFAULT_ROOT, PodsSession, Record, containers_in
from pytest_pods.plugin.session_daemon import rootless, rootless_default_root

__all__ = ["pods", "postgres", "postgres_image", "redis", "redis_image"]

REPORT_LOG_LINES = 50
_OPTIONS = {
    # name: (help, default, is_flag)
    "root": ("engine state root", DEFAULT_ROOT, False),
    "host": ("drive a remote engine instead of the local one: unix:///PATH, tcp://HOST:PORT (TLS with "
             "PODS_CERT_PATH), or 'docker' for $DOCKER_HOST", None, False),
    "timeout": ("seconds a container may take to become ready", "60", False),
    "keep_on_failure": ("keep the containers of a failing test running, and say how to reach them", False, True),
    "reuse": ("keep session/module-scoped containers between runs; pick them up when their config is the same",
              False, True),
    "required": ("fail (not skip) tests that need the engine where it cannot run", False, True),
    "registry": ("registry/namespace to pull the ready-made service images from (else they are built)",
                 None, False),
    "ignore_limits": ("drop memory/pids/cpu limits where the engine cannot apply them (rootless without a "
                      "delegated cgroup v2), with a warning, instead of refusing the container", False, True),
}
IGNORE_LIMITS_ENV = "PODS_IGNORE_LIMITS"
LIMITS_WARNING = ("cgroup limits (memory, pids, cpu) are dropped where the engine cannot apply them "
                  "(--pods-ignore-limits / PODS_IGNORE_LIMITS): containers run unlimited there")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pods", "pytest-pods: containers for tests")
    for name, (help_text, default, flag) in _OPTIONS.items():
        opt = "--pods-" + name.replace("_", "-")
        env = "PODS_" + name.upper()
        if flag:
            group.addoption(opt, action="store_true", default=None, dest=f"pods_{name}",
                            help=f"{help_text} (ini pods_{name}, env {env})")
            parser.addini(f"pods_{name}", help_text, type="bool", default=False)
        else:
            group.addoption(opt, default=None, dest=f"pods_{name}", metavar=name.upper(),
                            help=f"{help_text} (ini pods_{name}, env {env}; default {default})")
            parser.addini(f"pods_{name}", help_text, default=None)


def _setting(config: pytest.Config, name: str) -> Any:
    _help, default, flag = _OPTIONS[name]
    value = config.getoption(f"pods_{name}")
    if value is not None:
        return value
    env = os.environ.get("PODS_" + name.upper())
    if env is not None and env != "":
        if flag:
            return env.lower() in ("1", "true", "yes", "on")
        return env
    ini = config.getini(f"pods_{name}")
    if ini not in (None, "", []):
        return ini
    return default


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    timeout_text = _setting(config, "timeout")
    try:
        timeout = float(timeout_text)
        if timeout <= 0:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"pytest-pods: --pods-timeout: {timeout_text!r} is not a positive number of seconds") from None
    host = _setting(config, "host") or None
    root = _setting(config, "root")
    ignore_limits = bool(_setting(config, "ignore_limits"))
    if ignore_limits:
        os.environ[IGNORE_LIMITS_ENV] = "1"  # the engine in this process and the ones it starts
    if not host and root == DEFAULT_ROOT and rootless():
        root = rootless_default_root()
    elif host and root == DEFAULT_ROOT:
        # a remote engine keeps its own state; ours (locks, kept markers) lives in a local cache
        root = os.path.join(os.path.expanduser("~/.cache/pytest-pods"),
                            "remote-" + hashlib.sha256(str(host).encode()).hexdigest()[:12])
    session = PodsSession(
        root=os.path.abspath(str(root)),
        host=host,
        timeout=timeout,
        keep_on_failure=bool(_setting(config, "keep_on_failure")),
        reuse=bool(_setting(config, "reuse")),
        required=bool(_setting(config, "required")),
        registry=_setting(config, "registry"),
        run_id=workerinput["testrunuid"] if workerinput else None,
        worker=workerinput["workerid"] if workerinput else "main",
        controller_pid=os.getppid() if workerinput else None,
        hook=config.hook,
        ignore_limits=ignore_limits,
    )
    set_session(config, session)


def _is_xdist_controller(config: pytest.Config) -> bool:
    return (not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))
            and config.pluginmanager.hasplugin("dsession"))


@pytest.hookimpl(tryfirst=True)  # before xdist's: its workers are spawned with our environment
def pytest_sessionstart(session: pytest.Session) -> None:
    s = session_of(session.config)
    if not _is_xdist_controller(session.config) or s.unavailable() is not None:
        return
    if s.rootless:
        # the workers drive the controller's session daemon (PODS_SESSION_HOST)
        s.is_controller = True
        os.makedirs(s.root, exist_ok=True)
        s.start_daemon()
        s.ensure_watchdog()
    elif os.path.isdir(s.root):
        s.is_controller = True
        s.ensure_watchdog()  # shared session containers of the workers are owned by this process


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = session_of(config)
    reason = s.unavailable()
    if reason:
        state = f"engine unavailable: {reason}"
    elif s.host:
        state = f"remote engine {s.host}"
    elif s.rootless:
        state = "rootless engine (through the session's pods daemon)"
    else:
        state = "local engine"
    lines = [f"pods: root {s.root}, session {s.run_id}, {state}"]
    if s.ignore_limits:
        lines.append(f"pods: WARNING: {LIMITS_WARNING}")
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any],
                         request: pytest.FixtureRequest) -> Generator[None, None, None]:
    s = session_of(request.config)
    s.setting_up.append(request)
    try:
        yield
    finally:
        s.setting_up.pop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    s = session_of(item.config)
    s.current_item = item
    try:
        yield
    finally:
        s.current_item = None


def _records_of(item: pytest.Item) -> list[Record]:
    """The containers a test used: its fixtures' values (direct and indirect) and what it made."""
    s = session_of(item.config)
    ids: set[str] = set()
    for value in getattr(item, "funcargs", {}).values():
        ids.update(c.id for c in containers_in(value))
    return [r for r in s.records if r.container.id in ids or r.item == item.nodeid]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    s = session_of(item.config)
    for rec in _records_of(item):
        if s.keep_on_failure and not rec.released:
            s.keep(rec)
        try:
            logs = rec.container.logs(tail=REPORT_LOG_LINES).decode("utf-8", "replace")
        except Exception:  # removed already
            continue
        report.sections.append((f"pods: {rec.fixture} ({rec.name}) last {REPORT_LOG_LINES} log lines",
                                logs or "(no output)"))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    session_of(session.config).finish()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    s = session_of(config)
    if s.records and config.option.verbose >= 0:
        _timeline(terminalreporter, s.records)
    kept = s.kept_records()
    if kept:
        tr = terminalreporter
        tr.section("pods: kept containers", sep="-", yellow=True)
        for rec in kept:
            c = rec.container
            try:
                ports = [f"{p['container_port']}/{p['proto']} -> {p['host_ip']}:{p['host_port']}"
                         for p in c.state.get("ports") or []]
            except Exception:
                continue
            tr.write_line(f"{rec.fixture}: {c.name} ({c.short_id}) ip {c.ip or '-'}"
                          + (f"; ports {', '.join(ports)}" if ports else ""))
            tr.write_line(f"    pods --root {s.root} exec -it {c.name} sh     pods --root {s.root} logs {c.name}")
        tr.write_line(f"remove them with `pods --root {s.root} rm -f NAME`, or let the next pytest-pods "
                      "session on this root do it")


_TIMELINE_ROWS = 20


def _timeline(tr: pytest.TerminalReporter, records: list[Record]) -> None:
    cols = ("build", "pull", "snapshot", "create", "start", "ready", "pool")
    # a pooled container's create/start/ready ran in the background: its test waited "pool" only
    tr.section("pods timeline (seconds)", sep="-")
    def total(r: Record) -> float:
        return r.times["pool"] if "pool" in r.times else sum(r.times.get(c, 0.0) for c in cols)

    rows = sorted(records, key=lambda r: -total(r))
    shown = rows[:_TIMELINE_ROWS]
    width = max([len(r.fixture) for r in shown] + [7])
    tr.write_line(f"{'fixture':<{width}}  {'container':<26}" + "".join(f"{c:>8}" for c in cols) + f"{'total':>8}")
    for r in shown:
        cells = "".join(f"{r.times[c]:8.3f}" if c in r.times else f"{'-':>8}" for c in cols)
        tag = " (reused)" if r.reused else " (shared)" if r.shared else ""
        tr.write_line(f"{r.fixture:<{width}}  {r.name[:26]:<26}{cells}{total(r):8.3f}{tag}")
    if len(rows) > len(shown):
        rest = rows[len(shown):]
        slowest = max(total(r) for r in rest)
        tr.write_line(f"... and {len(rest)} more containers, each at most {slowest:.3f} s")
