"""nginx from the catalogue (issue 17): the official image's layout and template contract, a
server per test, a directory served, a proxy to another fixture by its name on a user network."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)


def test_nginx_serves_proxies_renders_templates_and_is_fresh_per_test(inner: Inner) -> None:
    site = inner.pytester.path / "site"
    site.mkdir()
    (site / "index.html").write_text("from the site dir\n")
    templates = inner.pytester.path / "tpl"
    templates.mkdir()
    (templates / "hello.conf.template").write_text(
        "server {\n    listen 8080;\n    location / {\n        default_type text/plain;\n"
        "        return 200 \"${NGINX_GREETING} $uri ${host}\\n\";\n    }\n}\n")
    inner.pytester.makepyfile(test_nginx='''
        from pytest_pods import network, nginx_container

        net = network()
        site = nginx_container(html="site", network="{net}")
        front = nginx_container(proxy_to="http://{site.network_host}:{site.network_port}", network="{net}")
        tpl = nginx_container(templates="tpl", environment={"NGINX_GREETING": "hi"}, ports=[80, 8080])

        def test_welcome_page_and_a_file_written_here(nginx):
            assert "Welcome to nginx!" in nginx.get("/").text
            nginx.container.exec(["sh", "-c", "echo mine > /usr/share/nginx/html/k.txt"])
            assert nginx.get("/k.txt").text == "mine\\n"
            assert nginx.url.startswith("http://127.0.0.1:")

        def test_the_next_test_has_its_own_server(nginx):
            assert nginx.get("/k.txt").status == 404

        def test_a_directory_served(site):
            r = site.get("/")
            assert (r.status, r.text) == (200, "from the site dir\\n")

        def test_a_proxy_to_another_fixture_by_name(front, site):
            assert site.network_host == site.name  # a user network: its DNS name
            assert front.get("/index.html").text == "from the site dir\\n"
            assert "Connection refused" not in front.logs()

        def test_templates_rendered_with_the_set_variables_only(tpl):
            host, port = tpl.address(8080)
            import urllib.request
            body = urllib.request.urlopen(f"http://{host}:{port}/x").read().decode()
            assert body == "hi /x 127.0.0.1\\n"  # ${host} is not set: nginx's own, kept
            assert "Running envsubst on /etc/nginx/templates/hello.conf.template" in tpl.logs()
    ''')
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=5)
    assert inner.left(sid) == []


@pytest.mark.local_only("a declaration mistake fails the same on every engine")
def test_nginx_mistakes_are_one_line_errors(inner: Inner) -> None:
    inner.pytester.makepyfile(test_bad='''
        from pytest_pods import nginx_container

        def test_nothing():
            pass

        bad = nginx_container(html="no-such-dir")
    ''')
    result, _ = inner.run()
    assert "nginx_container: " in result.stdout.str() and "no-such-dir" in result.stdout.str()
    assert "is not a directory" in result.stdout.str()
