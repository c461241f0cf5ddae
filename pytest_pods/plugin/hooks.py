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
    --pods-pool-registry R   pods_pool_registry   PODS_POOL_REGISTRY   where an engine pool's image() builds go
    --pods-ignore-limits     pods_ignore_limits   PODS_IGNORE_LIMITS   drop cgroup limits the engine cannot apply
    --pods-logs test|all     pods_logs            PODS_LOGS            a failing test's container logs: since the
                                                                       test started (test), or the whole log (all)

A failing test's report has a section per container it used: its last 50 log lines, each with
the time it was logged (local time of day, milliseconds). By default only the lines logged since
the test started (its setup included), so a container shared by many tests shows what it did
during this one; see :func:`log_section` for the rule that also drops the boot lines of the
shipped services. Under pytest-xdist the workers hand their timeline rows to the controller
(``config.workeroutput``), which prints one timeline with a worker column.

As an ordinary user (the rootless engine) without ``--pods-host``, the session drives a ``pods
daemon`` of its own (see :mod:`pytest_pods.plugin.session_daemon`); the default root is then
``$XDG_DATA_HOME/pytest-pods`` (else ``~/.local/share/pytest-pods``).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Generator, Sequence
from datetime import datetime
from typing import Any, TypedDict

import pytest

from pytest_pods.client.contract import LogLine
from pytest_pods.errors import PodsError
from pytest_pods.plugin import hookspec
from pytest_pods.plugin.fixtures import pods, session_of, set_session
from pytest_pods.plugin.heartbeat import ryuk_note
from pytest_pods.plugin.services import postgres, postgres_image, redis, redis_image
from pytest_pods.plugin.session import DEFAULT_ROOT, PodsSession, Record, containers_in
from pytest_pods.plugin.session_daemon import rootless, rootless_default_root

__all__ = ["pods", "postgres", "postgres_image", "redis", "redis_image"]

REPORT_LOG_LINES = 50
_OPTIONS = {
    # name: (help, default, is_flag)
    "root": ("engine state root", DEFAULT_ROOT, False),
    "host": ("drive a remote engine instead of the local one: unix:///PATH, tcp://HOST:PORT (TLS with "
             "PODS_CERT_PATH), or 'docker' for $DOCKER_HOST; several (comma-separated or repeated) make a pool: "
             "xdist worker gwN drives the Nth (modulo), shared session containers live on the first", None, False),
    "timeout": ("seconds a container may take to become ready", "60", False),
    "keep_on_failure": ("keep the containers of a failing test running, and say how to reach them", False, True),
    "reuse": ("keep session/module-scoped containers between runs; pick them up when their config is the same",
              False, True),
    "required": ("fail (not skip) tests that need the engine where it cannot run", False, True),
    "registry": ("registry/namespace to pull the ready-made service images from (else they are built)",
                 None, False),
    "pool_registry": ("with several engines (--pods-host A,B): a registry (HOST[:PORT][/NAMESPACE]) they all "
                      "reach: an image() is built once on the first engine, pushed there and pulled by digest on "
                      "the others", None, False),
    "ignore_limits": ("drop memory/pids/cpu limits where the engine cannot apply them (rootless without a "
                      "delegated cgroup v2), with a warning, instead of refusing the container", False, True),
    "logs": ("which log lines of its containers a failing test's report shows: 'test' (those since the test "
             "started, without the boot lines of the shipped services) or 'all' (the whole log); the last "
             f"{REPORT_LOG_LINES} either way", "test", False),
}
LOG_MODES = ("test", "all")
SERVICE_LABEL = "org.pytest-pods.service"
"""The image label of the shipped services (``plugin/recipes/*/Dockerfile``), inherited by their
containers and warm snapshots."""
SERVICE_READY_LINES = {
    "postgres": re.compile(rb"database system is ready to accept connections"),
    "redis": re.compile(rb"Ready to accept connections"),
}
"""The line each shipped service's readiness check waits for (``services._PG_READY``,
``services._REDIS_READY``): what its log holds up to that line is boot chatter."""
_LOG_MODE = pytest.StashKey[str]()
_TEST_STARTED = pytest.StashKey[float]()
_WORKER_ROWS = pytest.StashKey[list["TimelineRow"]]()
WORKEROUTPUT_KEY = "pods_timeline"
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
        elif name == "host":  # repeatable: an engine pool
            group.addoption(opt, action="append", default=None, dest=f"pods_{name}", metavar="URL",
                            help=f"{help_text} (ini pods_{name}, env {env})")
            parser.addini(f"pods_{name}", help_text, default=None)
        else:
            group.addoption(opt, default=None, dest=f"pods_{name}", metavar=name.upper(),
                            help=f"{help_text} (ini pods_{name}, env {env}; default {default})")
            parser.addini(f"pods_{name}", help_text, default=None)


def _setting(config: pytest.Config, name: str) -> Any:
    _help, default, flag = _OPTIONS[name]
    value = config.getoption(f"pods_{name}")
    if isinstance(value, list):  # a repeated option (--pods-host)
        return ",".join(value)
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
    log_mode = str(_setting(config, "logs")).strip().lower()
    if log_mode not in LOG_MODES:
        raise pytest.UsageError(f"pytest-pods: --pods-logs: {log_mode!r} is not one of {', '.join(LOG_MODES)} "
                                "(test: the lines since the failing test started; all: the whole log)")
    config.stash[_LOG_MODE] = log_mode
    config.stash[_WORKER_ROWS] = []
    if workerinput is None and not config.pluginmanager.has_plugin("pods-worker-timelines"):
        config.pluginmanager.register(WorkerTimelines(config), "pods-worker-timelines")
    pool = engine_pool(_setting(config, "host"))
    if workerinput is None and hasattr(config.option, "testrunuid") and not config.option.testrunuid:
        # xdist's controller: its run id is the one xdist hands the workers, so that the
        # controller's session (its heartbeat, its header) and the workers' are one
        config.option.testrunuid = uuid.uuid4().hex
    worker_id = str(workerinput["workerid"]) if workerinput else "main"
    host = engine_for(pool, worker_id)
    # the home engine of the run's shared session containers: the controller says which (it
    # also knows the engines --tx env:PODS_HOST= gave the workers), else the pool's first
    home = (workerinput.get("pods_home") if workerinput else None) or (pool[0] if pool else None)
    if workerinput is None and not pool:
        home = next(iter(tx_engines(config)), None)
    controller_owner = workerinput.get("pods_owner") if workerinput else None
    if workerinput is not None and host and "pods_home" not in workerinput:
        # the controller cannot reach the engines (``--tx ssh=`` with workers' own sockets): the
        # workers share through their machine's files, and what they share is theirs to remove
        home = controller_owner = None
    root = _setting(config, "root")
    ignore_limits = bool(_setting(config, "ignore_limits"))
    if ignore_limits:
        os.environ[IGNORE_LIMITS_ENV] = "1"  # the engine in this process and the ones it starts
    if not host and root == DEFAULT_ROOT and rootless():
        root = rootless_default_root()
    elif (host or home) and root == DEFAULT_ROOT:
        # a remote engine keeps its own state; ours (locks, kept markers) lives in a local cache
        # (also for an xdist controller whose workers' engines come from --tx specs)
        root = os.path.join(os.path.expanduser("~/.cache/pytest-pods"),
                            "remote-" + hashlib.sha256(str(host or home).encode()).hexdigest()[:12])
    session = PodsSession(
        root=os.path.abspath(str(root)),
        host=host,
        timeout=timeout,
        keep_on_failure=bool(_setting(config, "keep_on_failure")),
        reuse=bool(_setting(config, "reuse")),
        required=bool(_setting(config, "required")),
        registry=_setting(config, "registry"),
        run_id=workerinput["testrunuid"] if workerinput else getattr(config.option, "testrunuid", None),
        worker=worker_id,
        controller_pid=os.getppid() if workerinput else None,
        controller_owner=controller_owner,
        hook=config.hook,
        ignore_limits=ignore_limits,
        home=home,
        pool_registry=_setting(config, "pool_registry"),
    )
    session.pool = pool
    set_session(config, session)


_SCHEMES = ("tcp", "unix", "http", "https", "ssh")


def engine_pool(text: Any) -> list[str]:
    """The engines of ``--pods-host`` (comma-separated, or the option repeated), in order.

    ``tcp:HOST:PORT`` and ``unix:/PATH`` are taken for ``tcp://HOST:PORT`` and ``unix:///PATH``:
    execnet cuts a ``--tx`` spec at every ``//``, so ``popen//env:PODS_HOST=tcp://h:2376`` reaches
    the worker as ``tcp:``; that cut form is refused, naming the one to write."""
    out = []
    for h in (h.strip() for h in str(text or "").split(",")):
        if not h:
            continue
        scheme, colon, rest = h.partition(":")
        if colon and scheme in _SCHEMES and not rest.startswith("//"):
            if not rest:
                raise pytest.UsageError(
                    f"pytest-pods: --pods-host/PODS_HOST {h!r}: no address (a --tx spec is cut at '//': write "
                    "env:PODS_HOST=tcp:HOST:PORT or unix:/PATH there, without the slashes)")
            h = f"{scheme}://{rest}" if scheme != "unix" else f"unix://{rest}"
        out.append(h)
    return out


def engine_for(pool: Sequence[str], worker: str) -> str | None:
    """The engine of one process: xdist worker ``gwN`` gets the Nth (modulo the pool's size),
    the controller or a single process the first."""
    if not pool:
        return None
    m = re.fullmatch(r"gw(\d+)", worker)
    return pool[int(m.group(1)) % len(pool) if m else 0]


def tx_engines(config: pytest.Config) -> list[str]:
    """The engines the ``--tx`` specs give their workers (``popen//env:PODS_HOST=URL``), in order."""
    out = []
    for spec in getattr(config.option, "tx", None) or []:
        for part in str(spec).split("//"):
            if part.startswith("env:PODS_HOST="):
                out += engine_pool(part[len("env:PODS_HOST="):])[:1]
    return list(dict.fromkeys(out))


def _answers(host: str) -> bool:
    from pytest_pods.client.remote import RemoteClient  # lazy: only with remote engines
    from pytest_pods.errors import PodsError

    try:
        return RemoteClient(host).ping()
    except PodsError:
        return False


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The xdist controller, however its workers were asked for (``-n``, ``--tx`` specs)."""
    asked = bool(getattr(config.option, "numprocesses", None)) or bool(getattr(config.option, "tx", None))
    return not hasattr(config, "workerinput") and asked and config.pluginmanager.hasplugin("dsession")


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
    elif os.path.isdir(s.root) or s.home:
        if s.home and not _answers(s.home):
            s.home = None  # not reachable from here: the workers share without this process
        s.is_controller = True
        os.makedirs(s.root, exist_ok=True)
        s.ensure_watchdog()  # shared session containers of the workers are owned by this process


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = session_of(config)
    reason = s.unavailable()
    if reason:
        state = f"engine unavailable: {reason}"
    elif s.host:
        state = f"remote engine {s.host}"
        if len(s.pool) > 1:
            state = f"engine pool {', '.join(s.pool)} (xdist worker gwN on the Nth)"
    elif s.rootless:
        state = "rootless engine (through the session's pods daemon)"
    else:
        state = "local engine"
    lines = [f"pods: root {s.root}, session {s.run_id}, {state}"]
    if s.ignore_limits:
        lines.append(f"pods: WARNING: {LIMITS_WARNING}")
    if not reason:
        for host in dict.fromkeys([*s.pool, *([s.home] if s.home else [])]):
            note = s.heartbeat_notes.get(host) or (None if host in s.heartbeats else ryuk_note(host))
            if note:
                lines.append(f"pods: {note}")
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
    item.stash[_TEST_STARTED] = time.time()  # wall clock: compared with the engine's log times
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
    since = None if item.config.stash[_LOG_MODE] == "all" else item.stash.get(_TEST_STARTED, None)
    for rec in _records_of(item):
        if s.keep_on_failure and not rec.released:
            s.keep(rec)
        try:
            lines = list(rec.container.stream_logs(follow=False))
            service = rec.container.labels.get(SERVICE_LABEL, "")
        except (PodsError, OSError):  # removed already
            continue
        title, text = log_section(lines, since=since, service=service)
        report.sections.append((f"pods: {rec.fixture} ({rec.name}) {title}", text))


def log_section(lines: Sequence[LogLine], *, since: float | None, service: str = "",
                limit: int = REPORT_LOG_LINES) -> tuple[str, str]:
    """The title and the text of a container's report section: its last ``limit`` log lines,
    each with the local time of day it was logged.

    With ``since`` (the wall-clock start of the failing test, ``--pods-logs=test``), only the
    lines logged from then on; and for a shipped service (``service``: its image's
    ``org.pytest-pods.service`` label), also none up to and including the first line its
    readiness check waits for (``SERVICE_READY_LINES``) among those: a server started for this
    test (function scope, or a pooled or warm one) shows what it logged after it became ready,
    not its boot banner. A server that never printed that line keeps every line: its boot is
    then what went wrong. ``since=None`` (``--pods-logs=all``) shows the whole log, unfiltered.
    """
    shown = list(lines)
    notes = []
    if since is not None:
        shown = [ln for ln in shown if (_epoch(ln[1]) or since) >= since]  # a time we cannot read: kept
        pattern = SERVICE_READY_LINES.get(service)
        ready = next((i for i, ln in enumerate(shown) if pattern is not None and pattern.search(ln[2])), None)
        if ready is not None:
            shown = shown[ready + 1:]
            notes.append("boot lines up to the ready line left out")
    left_out = len(lines) - len(shown)
    what = "since the test started" if since is not None else "of the whole log"
    if len(shown) > limit:
        notes.insert(0, f"{len(shown) - limit} earlier ones cut")
        title = f"last {limit} log lines {what}"
        shown = shown[-limit:]
    else:
        title = f"{len(shown)} log line{'' if len(shown) == 1 else 's'} {what}"
    if left_out:
        notes.append("--pods-logs=all shows the whole log")
    if notes:
        title += f" ({'; '.join(notes)})"
    day = time.strftime("%Y-%m-%d", time.localtime(since if since is not None else time.time()))
    text = "\n".join(f"{_clock(ts, day)} {line.decode('utf-8', 'replace').rstrip()}" for _, ts, line in shown)
    return title, text or f"(no log lines {what})"


def _epoch(ts: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 log time (``2024-05-01T12:00:00.123456789Z``, as
    Docker and our engine write them), or None where it is not one."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", ts.strip())
    if m is None:
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        whole = datetime.fromisoformat(m.group(1) + zone).timestamp()
    except ValueError:
        return None
    return whole + (float("0." + m.group(2)) if m.group(2) else 0.0)


def _clock(ts: str, day: str) -> str:
    """``HH:MM:SS.mmm`` in local time, with the date in front where it is not ``day``."""
    t = _epoch(ts)
    if t is None:
        return ts
    local = datetime.fromtimestamp(t)
    out = local.strftime("%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
    date = local.strftime("%Y-%m-%d")
    return out if date == day else f"{date} {out}"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    s = session_of(config)
    try:
        s.finish()
    finally:
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: xdist sends this to the controller after us
            workeroutput[WORKEROUTPUT_KEY] = timeline_rows(s.records, s.worker)


class WorkerTimelines:
    """The xdist controller's part of the timeline: each worker's rows as it finishes.

    A plugin object of its own (registered by ``pytest_configure``), because the ``pytest11``
    entry point re-exports only the hooks it names and this one is xdist's (``optionalhook``:
    without xdist it is never called).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """A worker is about to start: it learns the controller's owner key (the owner of the
        run's shared containers, wherever the worker runs: ``--tx ssh=``) and the home engine."""
        s = session_of(self.config)
        node.workerinput["pods_owner"] = s.owner
        if s.home:
            node.workerinput["pods_home"] = s.home

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker finished (``error``: it crashed, and sent no rows)."""
        rows = (getattr(node, "workeroutput", None) or {}).get(WORKEROUTPUT_KEY) or []
        self.config.stash[_WORKER_ROWS].extend(rows)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    s = session_of(config)
    rows = timeline_rows(s.records, "") + config.stash.get(_WORKER_ROWS, [])
    if rows and config.option.verbose >= 0:
        _timeline(terminalreporter, rows)
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
TIMELINE_COLUMNS = ("build", "pull", "snapshot", "create", "start", "ready", "pool")


class TimelineRow(TypedDict):
    """One container of the timeline; plain data, so that xdist can carry it from a worker."""

    fixture: str
    container: str
    worker: str  # "" outside xdist
    times: dict[str, float]
    tag: str  # "reused", "shared" or ""


def timeline_rows(records: Sequence[Record], worker: str) -> list[TimelineRow]:
    return [TimelineRow(fixture=r.fixture, container=r.name, worker=worker,
                        times={c: r.times[c] for c in TIMELINE_COLUMNS if c in r.times},
                        tag="reused" if r.reused else "shared" if r.shared else "")
            for r in records]


def _timeline(tr: pytest.TerminalReporter, rows: list[TimelineRow]) -> None:
    """The slowest containers, one line each: every column right of ``container`` is seconds,
    right-aligned under its header, two spaces apart."""
    cols = TIMELINE_COLUMNS
    # a pooled container's create/start/ready ran in the background: its test waited "pool" only
    tr.section("pods timeline (seconds)", sep="-")

    def total(r: TimelineRow) -> float:
        t = r["times"]
        return t["pool"] if "pool" in t else sum(t.get(c, 0.0) for c in cols)

    ordered = sorted(rows, key=lambda r: -total(r))
    shown = ordered[:_TIMELINE_ROWS]
    workers = any(r["worker"] for r in shown)
    fw = max([len(r["fixture"]) for r in shown] + [len("fixture")])
    cw = max([len(r["container"]) for r in shown] + [len("container")])
    ww = max([len(r["worker"]) for r in shown] + [len("worker")])
    nw = {c: max(len(c), 7) for c in (*cols, "total")}  # 7: "999.999"

    def line(fixture: str, worker: str, container: str, cells: dict[str, str], tag: str) -> str:
        head = [f"{fixture:<{fw}}"] + ([f"{worker:<{ww}}"] if workers else []) + [f"{container:<{cw}}"]
        return "  ".join(head + [f"{cells[c]:>{nw[c]}}" for c in nw]) + (f"  ({tag})" if tag else "")

    tr.write_line(line("fixture", "worker", "container", {c: c for c in nw}, "").rstrip())
    for r in shown:
        cells = {c: f"{r['times'][c]:.3f}" if c in r["times"] else "-" for c in cols}
        cells["total"] = f"{total(r):.3f}"
        tr.write_line(line(r["fixture"], r["worker"], r["container"], cells, r["tag"]))
    if len(ordered) > len(shown):
        rest = ordered[len(shown):]
        slowest = max(total(r) for r in rest)
        tr.write_line(f"... and {len(rest)} more containers, each at most {slowest:.3f} s")
