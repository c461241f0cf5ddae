"""The browser of the catalogue (issue 17): Debian 12's Chromium and chromedriver behind the
recipe's WebDriver front, driven with selenium as a user drives selenium/standalone-chrome: a page
served by another container by name on a user network (title, a form, JavaScript), a fresh
session per test (a cookie and localStorage of one test absent in the next), a server per test,
pool=, nothing left (the per-test cost is measured by bench/catalogue.py); and testcontainers' BrowserWebDriverContainer
unchanged against ``pods daemon --image-aliases official``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helper import run_dir_base, wait_until

from pytest_pods import Client
from pytest_pods.client.aliases import RECIPE_IMAGES, RECIPES

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

pytest.importorskip("selenium", reason="the browser tests drive Chromium with selenium (pip install selenium)")

INDEX = """<!doctype html>
<html><head><title>Orders - Shop</title></head>
<body>
<h1 id="heading">Orders</h1>
<form id="order" action="/thanks.html" method="get">
  <input name="item" id="item"> <input name="qty" id="qty" type="number">
  <button id="send" type="submit">Order</button>
</form>
<p id="computed"></p>
<script>document.getElementById("computed").textContent = [1, 2, 3].map(x => x * x).join("+");</script>
</body></html>
"""
THANKS = """<!doctype html>
<html><head><title>Thanks</title></head>
<body><p id="said"></p>
<script>
const q = new URLSearchParams(location.search);
document.getElementById("said").textContent = `${q.get("qty")} x ${q.get("item")} ordered`;
</script></body></html>
"""

TESTS = '''
import os
import time
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver import ChromeOptions
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from pytest_pods import container, network, wait
from pytest_pods.plugin.catalog.browser import chromium_container

HERE = os.path.dirname(os.path.abspath(__file__))
net = network(scope="module")
# the application: busybox httpd serving ./www, reached by the browser by its name on `net`
site = container("busybox", ["httpd", "-f", "-p", "8080", "-h", "/www"], volumes=[f"{HERE}/www:/www:ro"],
                 network="{net}", ports=[8080], wait=wait.tcp(8080), scope="module")
browser = chromium_container(network="{net}")
own = chromium_container(isolation="container", network="{net}")
pooled = chromium_container(isolation="container", pool=1)
single = chromium_container(isolation="container", shm_size="1g", environment={
    "SE_NODE_MAX_SESSIONS": "1", "SE_SESSION_REQUEST_TIMEOUT": "1", "PODS_WEBDRIVER_SPARE": "0"})
bad = chromium_container(isolation="container", environment={"SE_NODE_MAX_SESSIONS": "many"})

def url(site, path):
    return f"http://{site.name}:8080/{path}"

def test_title_form_and_javascript_of_a_page_served_by_name(browser, site):
    assert browser.webdriver_url.startswith("http://127.0.0.1:")
    assert browser.network_webdriver_url == f"http://{browser.name}:4444"
    status = browser.status()
    assert status["ready"] is True and status["build"]["version"].split(".")[0].isdigit()
    d = browser.driver()
    d.get(url(site, "index.html"))
    assert d.title == "Orders - Shop"
    assert d.find_element(By.ID, "computed").text == "1+4+9"  # the page's own script ran
    assert d.execute_script("return navigator.userAgent.includes('HeadlessChrome')") is True
    assert d.execute_async_script("const done = arguments[0]; setTimeout(() => done(6 * 7), 10);") == 42
    d.find_element(By.ID, "item").send_keys("tea")
    d.find_element(By.ID, "qty").send_keys("3")
    d.find_element(By.ID, "send").click()
    WebDriverWait(d, 10).until(EC.title_is("Thanks"))
    assert d.find_element(By.ID, "said").text == "3 x tea ordered"
    assert d.current_url == url(site, "thanks.html?item=tea&qty=3")

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_a_fresh_profile(browser, site, n):
    d = browser.driver()
    d.get(url(site, "index.html"))
    assert d.get_cookies() == []  # the other test's cookie is not here
    assert d.execute_script("return localStorage.getItem('seen')") is None
    d.add_cookie({"name": "seen", "value": str(n)})
    d.execute_script("localStorage.setItem('seen', arguments[0])", str(n))
    assert d.get_cookie("seen")["value"] == str(n)

def test_a_client_of_its_own_at_wd_hub_is_ended_at_teardown_too(browser):
    wait_until_no_sessions(browser)  # those of the tests before ended at their teardown
    mine = webdriver.Remote(command_executor=browser.hub_url, options=ChromeOptions())  # never quit here
    mine.get("data:text/html,<title>by hand</title>")
    assert mine.title == "by hand"
    assert browser.sessions() == [mine.session_id]
    with urllib.request.urlopen(browser.hub_url + "/status", timeout=10) as r:
        assert b'"ready": true' in r.read()

def test_the_next_test_finds_no_session_open(browser):
    wait_until_no_sessions(browser)

def wait_until_no_sessions(browser):
    import time
    deadline = time.monotonic() + 10
    while browser.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert browser.sessions() == []

def test_a_server_of_its_own_reached_by_name_from_another_container(own, site, pods, net):
    d = own.driver()
    d.get(url(site, "index.html"))
    assert d.title == "Orders - Shop"
    box = pods.run("busybox", ["sleep", "60"], network=net)
    res = box.exec(["wget", "-q", "-O", "-", own.network_webdriver_url + "/status"])
    assert b'"ready": true' in res.output, res
    assert own.status()["maxSessions"] == 4  # the fixtures' SE_NODE_MAX_SESSIONS

def test_pooled(pooled):
    d = pooled.driver()
    d.get("data:text/html,<title>pooled</title>")
    assert d.title == "pooled"

def test_the_ready_made_fixture_and_other_browsers_options_refused_by_name(chromium):
    from selenium.webdriver import FirefoxOptions
    with pytest.raises(ValueError, match="this browser is Chromium, not 'firefox'"):
        chromium.driver(FirefoxOptions())
    assert chromium.driver().execute_script("return 1 + 1") == 2
    assert "added when not sent: --headless=new --no-sandbox --disable-dev-shm-usage" in chromium.logs()

def test_the_official_session_settings_take_effect(single):
    from selenium.common.exceptions import SessionNotCreatedException
    first = single.driver()
    with pytest.raises(SessionNotCreatedException, match="timed out after 1 s .* SE_NODE_MAX_SESSIONS=1"):
        single.driver()  # the one slot is taken: queued, then refused after SE_SESSION_REQUEST_TIMEOUT
    first.quit()
    assert single.driver().execute_script("return 2 + 2") == 4  # the slot is free again
    # /dev/shm of 1 GiB: Chromium may use it, so --disable-dev-shm-usage is not added
    assert "added when not sent: --headless=new --no-sandbox)" in single.logs()

def test_a_bad_setting_is_named(bad):
    pass

# the per-test cost: back to back (tests shorter than a Chromium start, which the session started
# ahead cannot hide), and tests that work a second in the browser as real ones do (page loads)
'''


def test_chromium_drives_a_page_by_name_fresh_per_test_pooled_and_leaves_nothing(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the browser's own behaviour (the image build is the slow part)")
    www = inner.pytester.path / "www"
    www.mkdir()
    (www / "index.html").write_text(INDEX)
    (www / "thanks.html").write_text(THANKS)
    inner.pytester.makepyfile(test_browser=TESTS)
    result, sid = inner.run("-v", "-s", subprocess=True, timeout=900)
    result.assert_outcomes(passed=9, errors=1)
    result.stdout.fnmatch_lines(["*pods-webdriver: SE_NODE_MAX_SESSIONS='many': not a whole number. Fix this and try again.*"])
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "database"}, "isolation='database': use one of session, container"),
    ({"isolation": "session", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "each WebDriver session starts a new Chromium profile"),
])
def test_chromium_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.browser import chromium_container

    with pytest.raises(ValueError, match=message):
        chromium_container(**kwargs)


# -- testcontainers' own module, unchanged, through the daemon with the official preset -----------

@pytest.fixture
def aliased_daemon(client: Client, debian: str, own_root: Callable[[str], Any]) -> Iterator[str]:
    """Scope: function. Depends on: client, debian, own_root. ``pods daemon --image-aliases
    official`` on a root of its own (one daemon per root) holding debian:bookworm and the chromium
    recipe image, built there from the test root's build cache (``--cache-to``/``--cache-from``
    type=local): the preset remakes its stand-in from the recipe once, and that is a cache hit
    (without it, apt would run again under docker-py's 60 s timeout); its host."""
    tag = RECIPE_IMAGES["chromium"]
    with own_root("pods-browser-") as own, tempfile.NamedTemporaryFile(suffix=".tar", dir="/var/tmp") as tar, \
            tempfile.TemporaryDirectory(prefix="pods-browser-cache-", dir="/var/tmp") as cache:
        # a cache hit on the test root once the tests above built it; its steps exported
        client.images.build(RECIPES / "chromium", tag=tag, cache_export=cache)
        client.images.save([debian], tar.name)
        own.images.load(tar.name)
        own.images.build(RECIPES / "chromium", tag=tag, cache_import=[cache])
        run = Path(tempfile.mkdtemp(prefix="pods-browser-", dir=run_dir_base()))
        sock, log = run / "pods.sock", run / "daemon.log"
        env = {k: v for k, v in os.environ.items() if k != "PODS_IMAGE_ALIASES"}
        proc = subprocess.Popen([sys.executable, "-m", "pytest_pods.cli", "--root", str(own.root), "daemon",
                                 "--socket", str(sock), "--log-file", str(log), "--image-aliases", "official"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            def answers() -> bool:
                assert proc.poll() is None, f"pods daemon exited {proc.returncode}: {log.read_text()}"
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(str(sock))
                        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                        return s.recv(64).startswith(b"HTTP/1.1 200")
                except OSError:
                    return False

            wait_until(answers, 20, "pods daemon --image-aliases official answering /_ping")
            yield f"unix://{sock}"
            assert f"image alias: selenium/standalone-chrome:latest -> {tag}" in log.read_text()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            shutil.rmtree(run, ignore_errors=True)


def test_testcontainers_browser_webdriver_container_runs_unchanged_on_the_preset(
        aliased_daemon: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("testcontainers.core.config")
    selenium_tc = pytest.importorskip("testcontainers.selenium")
    from selenium.webdriver import DesiredCapabilities
    from tc_helper import pointed_testcontainers

    docker = pytest.importorskip("docker")
    with pointed_testcontainers(aliased_daemon, monkeypatch, ryuk=False), \
            selenium_tc.BrowserWebDriverContainer(DesiredCapabilities.CHROME) as chrome:
        assert chrome.image == "selenium/standalone-chrome:latest"
        assert chrome.get_connection_url().endswith("/wd/hub")
        started = time.perf_counter()
        driver = chrome.get_driver()
        try:
            first = time.perf_counter() - started
            driver.get("data:text/html,<title>from testcontainers</title><p id=p>hi</p>")
            assert driver.title == "from testcontainers"
            assert driver.execute_script("return document.getElementById('p').textContent") == "hi"
        finally:
            driver.quit()
        print(f"\ntestcontainers' BrowserWebDriverContainer: first driver {first * 1000:.0f} ms after start()")
        name = chrome.get_wrapped_container().name
    dc = docker.DockerClient(base_url=aliased_daemon)
    try:
        assert [c.name for c in dc.containers.list(all=True) if c.name == name] == []
    finally:
        dc.close()
