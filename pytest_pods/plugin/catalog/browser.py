"""A browser for Selenium/WebDriver tests (issue 17): Debian 12's Chromium and chromedriver,
headless, served as selenium/standalone-chrome serves WebDriver (port 4444, ``/`` and ``/wd/hub``).

The fixture ``chromium`` gives each test a fresh WebDriver session (a new Chromium with a new
profile: no cookie, localStorage or cache of another test) on one server per session::

    def test_login(chromium, app):
        driver = chromium.driver()                 # a selenium Remote (pip install selenium)
        driver.get(app.network_url("/login"))      # the app by its name, on a network both are on
        assert driver.title == "Log in"

    # or a client of your own: the URL is what selenium.webdriver.Remote takes, unchanged
    webdriver.Remote(command_executor=chromium.webdriver_url, options=ChromeOptions())

Every session the test opened is ended at its teardown, whoever opened it. (The fixture is not
called ``browser``: pytest-playwright and pytest-splinter have fixtures of that name.)
``chromium_container(isolation="container")`` gives each test a server of its own instead
(``pool=`` keeps some started ahead).

Chromium in a container needs ``--headless=new`` (no display), ``--no-sandbox`` (its sandbox
needs a user namespace) and, with Docker's 64 MiB /dev/shm, ``--disable-dev-shm-usage``: the
server adds them to a new session when the client did not send them, so the capabilities a
selenium user sends by default just work.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Sequence
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import caller_module, container_options, define_fixture, fail_fixture
from pytest_pods.plugin.services import Service, catalogue_service, environment_of, per_database
from pytest_pods.plugin.session import PodsSession

__all__ = ["Browser", "chromium", "chromium_container", "chromium_image"]

chromium_image = catalogue_service("chromium", "pytest-pods/chromium:bookworm")

#: chromedriver's own line as it listens, then the front's once it serves (pods-webdriver in
#: the recipe logs it after chromedriver's /status says ready)
DRIVER_LINE = r"ChromeDriver was started successfully"
READY_LINE = r"pods-webdriver: ready"
ISOLATION_LEVELS = ("session", "container")
#: what the fixtures set where the test does not: a session started ahead (the next test's
#: driver() takes it in milliseconds) and room for a test that opens several drivers
FIXTURE_ENVIRONMENT = {"PODS_WEBDRIVER_SPARE": "1", "SE_NODE_MAX_SESSIONS": "4"}
_BROWSERS = ("chrome", "chromium")


class Browser(Service):
    """A running headless Chromium with WebDriver on ``port`` (4444).

    ``webdriver_url`` (``http://127.0.0.1:PORT``) from the host, ``network_webdriver_url`` from
    another container on its network; ``hub_url`` is the same server at ``/wd/hub``.
    ``driver()`` is a ready ``selenium.webdriver.Remote`` (ended at the test's teardown);
    ``status()`` is the server's ``/status`` value, ``sessions()`` the sessions open on it.
    """

    PORT = 4444

    def __init__(self, container: ContainerAPI, port: int | None = None) -> None:
        super().__init__(container, port)
        self._drivers: list[Any] = []

    @property
    def webdriver_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def hub_url(self) -> str:
        return f"{self.webdriver_url}/wd/hub"

    @property
    def network_webdriver_url(self) -> str:
        return f"http://{self.network_host}:{self.network_port}"

    def _api(self, method: str, path: str, timeout: float = 30) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as exc:
            raise PodsError(f"browser {method} {path} on {self.name}: {exc}") from None
        finally:
            conn.close()
        try:
            value = json.loads(body)["value"]
        except (ValueError, KeyError, TypeError):
            raise PodsError(f"browser {method} {path} on {self.name}: {resp.status} "
                            f"{body[:200].decode(errors='replace')}") from None
        if resp.status != 200:
            raise PodsError(f"browser {method} {path} on {self.name}: {resp.status} {value}")
        return value

    def status(self) -> dict[str, Any]:
        """``GET /status``'s value: ``ready``, ``message``, ``build`` (chromedriver's version),
        ``maxSessions`` and ``sessions`` (how many are open)."""
        value = self._api("GET", "/status")
        assert isinstance(value, dict)
        return value

    def sessions(self) -> list[str]:
        """The ids of the WebDriver sessions open on this server."""
        return [str(s) for s in self._api("GET", "/pods/sessions")]

    def driver(self, options: Any = None, **kwargs: Any) -> Any:
        """A new WebDriver session: ``selenium.webdriver.Remote(command_executor=webdriver_url,
        options=options or ChromeOptions(), **kwargs)``, ended at the test's teardown.

        :raises ModuleNotFoundError: selenium is not installed (``pip install selenium``)
        :raises ValueError: ``options`` are another browser's (``FirefoxOptions``)
        """
        try:
            from selenium import webdriver  # lazy: optional (pip install selenium)
        except ImportError:
            raise ModuleNotFoundError("pytest-pods: Browser.driver() needs the selenium client: pip install selenium "
                                      "(or give a client of your own chromium.webdriver_url)", name="selenium") from None
        if options is None:
            options = webdriver.ChromeOptions()
        name = str((getattr(options, "capabilities", None) or {}).get("browserName") or "chrome")
        if name not in _BROWSERS:
            raise ValueError(f"pytest-pods: Browser.driver(options={type(options).__name__}()): this browser is "
                             f"Chromium, not {name!r}; use selenium.webdriver.ChromeOptions()")
        drv = webdriver.Remote(command_executor=self.webdriver_url, options=options, **kwargs)
        self._drivers.append(drv)
        return drv

    def close(self, end_sessions: bool = True) -> None:
        """End of a test: every session open on the server ended (those of :meth:`driver` and any
        a test opened with a client of its own), and the drivers' connections closed."""
        errors: list[Exception] = []
        if end_sessions:
            try:
                self._api("DELETE", "/pods/sessions")
            except PodsError as exc:
                errors.append(exc)
        for drv in self._drivers:
            executor = getattr(drv, "command_executor", None)
            closer = getattr(executor, "close", None)
            if closer is not None:
                try:
                    closer()
                except Exception as exc:  # a client library's own failure, handed on below
                    errors.append(exc)
        self._drivers.clear()
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup(f"close the browser sessions on {self.name}", errors)

    def __repr__(self) -> str:
        return f"<Browser {self.name} {self.webdriver_url}>"


def _with_fixture_environment(options: dict[str, Any]) -> dict[str, Any]:
    env = FIXTURE_ENVIRONMENT | environment_of(options)
    out = {k: v for k, v in options.items() if k not in ("env", "environment")}
    out["environment"] = env
    return out


def chromium_container(*, scope: str = "function", image: Any = "{chromium_image}", isolation: str = "session",
                       command: Sequence[str] | str | None = None, pool: int = 0, **options: Any) -> Any:
    """Declare a browser fixture (its value is a :class:`Browser`).

    :param isolation: ``"session"``: one server per session (per xdist worker, whose tests run
        one at a time) and each test a fresh WebDriver session, every session it opened ended at
        its teardown; ``"container"``: each test (each scope) a server of its own (``pool``
        servers started ahead)
    :param options: as for :func:`~pytest_pods.container`; ``environment`` takes the official
        image's ``SE_NODE_MAX_SESSIONS`` (here 4), ``SE_SESSION_REQUEST_TIMEOUT`` and
        ``SE_NODE_SESSION_TIMEOUT``, and ``PODS_WEBDRIVER_SPARE`` (here 1: a session started
        ahead; 0 saves its memory); ``shm_size="2g"`` lets Chromium use /dev/shm
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: chromium_container(warm=...): each WebDriver session starts a new Chromium "
                         "profile, which a snapshot would not reach; set cookies or pages up in the test or a fixture")
    options = _with_fixture_environment(options)
    options.setdefault("ports", [Browser.PORT])
    ready = options.pop("wait", None) or wait.all_of(wait.log(READY_LINE), wait.http(Browser.PORT, "/status"))
    if isolation == "container":
        return _per_container(scope, image, command, pool, ready, options)
    if pool:
        raise ValueError("pytest-pods: chromium_container(pool=...) needs isolation='container'")
    return per_database("browser", scope, image, options | {"wait": ready},
                        lambda s, name, img, opts: _SharedServer(s, name, img, command, opts))


def _per_container(scope: str, image: Any, command: Sequence[str] | str | None, pool: int, ready: Any,
                   options: dict[str, Any]) -> Any:
    """A server per test (per scope), its drivers' connections closed before it is removed."""
    g, _ = caller_module()
    module = str(g.get("__name__", ""))

    def body(fixture: str, s: PodsSession, v: dict[str, Any]) -> Iterator[Any]:
        opts = container_options(fixture, v["options"])
        try:
            rec = s.start(fixture, scope, str(v["image"]), command, wait=ready, share=True, options=opts,
                          identity=f"{module}::{fixture}", wrap=Browser, pool=pool)
        except PodsError as exc:
            fail_fixture(fixture, exc)
        value = Browser(rec.container)
        try:
            yield value
        finally:
            try:
                value.close(end_sessions=False)  # the container goes, and its Chromiums with it
            finally:
                s.release(rec)

    return define_fixture("browser", scope, {"image": image, "options": options}, body)


class _SharedServer:
    """The shared server of session isolation: each test a Browser of its own on it, whose
    sessions (and any other open on the server) are ended at the test's teardown."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any]) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)

    def fresh(self) -> Browser:
        return Browser(self.rec.container)

    def done(self, value: Browser) -> None:
        value.close()

    def close(self) -> None:
        self._s.release(self.rec)


chromium = chromium_container()
