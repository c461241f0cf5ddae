"""How factory values name their fixture dependencies and are filled in (pure, no engine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_pods import wait
from pytest_pods.errors import InvalidArgumentError
from pytest_pods.plugin.fixtures import _TEMPLATE, _deps, _resolve
from pytest_pods.plugin.session import _published_ports, normalize_ports


def deps_of(value: object) -> set[str]:
    out: set[str] = set()
    _deps(value, {}, out)
    return out


@pytest.mark.parametrize("value, names", [
    ("{db.name}", {"db"}),
    ({"DB": "{db.name}:{db_port}", "X": "plain"}, {"db", "db_port"}),
    (["sh", "-c", "echo ${HOME} $PATH"], set()),          # shell variables are not templates
    (["{tmp_path}/data:/data"], {"tmp_path"}),
    ("{net}", {"net"}),
    ("{{not a template}}", set()),
    ("{x[0]}", {"x"}),
])
def test_templates_name_their_fixtures(value: object, names: set[str]) -> None:
    assert deps_of(value) == names


def test_values_are_filled_in_and_a_whole_template_keeps_the_object() -> None:
    db = SimpleNamespace(name="pods-1", ports=[5432])
    values = {"db": db, "net": "pods-net"}
    assert _resolve({"DB": "{db.name}:{db.ports[0]}"}, {}, values) == {"DB": "pods-1:5432"}
    assert _resolve("{db}", {}, values) is db
    assert _resolve(("a", "{net}"), {}, values) == ("a", "pods-net")
    assert _resolve("echo ${HOME}", {}, values) == "echo ${HOME}"


def test_template_regex_does_not_match_shell_braces() -> None:
    assert not _TEMPLATE.search("${VAR}") and not _TEMPLATE.search("{ echo; }")


@pytest.mark.parametrize("ports, published", [
    ([6379], {6379}), (["8080:80"], {80}), ({"5432/tcp": None}, {5432}), (["127.0.0.1::53/udp"], {53}), (None, set()),
])
def test_published_ports(ports: object, published: set[int]) -> None:
    assert _published_ports(normalize_ports(ports)) == published


def test_shorthands_and_bad_strategies() -> None:
    assert wait.as_strategy("ready").describe() == "log line /ready/"
    assert wait.as_strategy(5432).describe() == "tcp port 5432"
    assert wait.as_strategy(["a", 1]).describe() == "all of (log line /a/; tcp port 1)"
    with pytest.raises(InvalidArgumentError, match="not a readiness strategy"):
        wait.as_strategy(1.5)
    with pytest.raises(InvalidArgumentError, match="out of range"):
        wait.tcp(70000)
    with pytest.raises(InvalidArgumentError, match="bad regular expression"):
        wait.log("(").check_config((), (), "bridge", {})
    with pytest.raises(InvalidArgumentError, match="neither exposes nor publishes port 5433"):
        wait.tcp(5433).check_config({5432}, (), "bridge", {})
    wait.tcp(5433).check_config(set(), (), "bridge", {})  # an image that declares no ports may use any
    with pytest.raises(InvalidArgumentError, match="the image has none"):
        wait.healthcheck().check_config((), (), "bridge", {})
    assert wait.healthcheck_command({"Healthcheck": {"Test": ["CMD-SHELL", "pg_isready"]}}) == ["/bin/sh", "-c", "pg_isready"]
    assert wait.healthcheck_command({"Healthcheck": {"Test": ["NONE"]}}) is None
