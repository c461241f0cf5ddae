"""Image aliases in the pytest face (issue 17): ``--pods-image-aliases SPEC`` (ini
``pods_image_aliases``, env ``PODS_IMAGE_ALIASES``) and ``--pods-image-alias NAME=IMAGE``.

The aliases themselves live in :mod:`pytest_pods.client.aliases` (shared with ``pods daemon``);
here they are read from the options, installed on the session's client, and shown: the report
header names them, and the terminal summary lists each substitution the session made.
A stand-in the plugin ships (``pytest-pods/postgres:15``, ``pytest-pods/redis:7``) is made as its
own fixture would make it: pulled from ``--pods-registry`` or built from the recipe.
"""

from __future__ import annotations

import os

import pytest

from pytest_pods.client.aliases import ENV, ImageAliases, Resolver
from pytest_pods.errors import InvalidArgumentError
from pytest_pods.plugin.fixtures import session_of
from pytest_pods.plugin.session import IMAGE_PROVIDERS

_ALIASES = pytest.StashKey[ImageAliases]()
_RESOLVER = pytest.StashKey[Resolver]()
_HELP = ("official image names served by local images: 'official' (the preset: postgres[:N], redis[:N] -> "
         "the shipped recipes' images, made on first use), NAME=IMAGE words, or 'none'")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pods")
    group.addoption("--pods-image-aliases", default=None, dest="pods_image_aliases", metavar="SPEC",
                    help=f"{_HELP} (ini pods_image_aliases, env {ENV})")
    group.addoption("--pods-image-alias", action="append", default=[], dest="pods_image_alias",
                    metavar="NAME=IMAGE", help="one image alias (repeatable), e.g. postgres:16=pytest-pods/postgres:15")
    parser.addini("pods_image_aliases", _HELP, type="linelist", default=[])


def _specs(config: pytest.Config) -> list[str]:
    """The first of --pods-image-aliases, PODS_IMAGE_ALIASES and the ini key, then every
    --pods-image-alias."""
    base: list[str] = []
    cli = config.getoption("pods_image_aliases")
    env = os.environ.get(ENV)
    if cli is not None:
        base = [cli]
    elif env:
        base = [env]
    else:
        base = list(config.getini("pods_image_aliases") or [])
    return [*base, *config.getoption("pods_image_alias")]


@pytest.hookimpl(trylast=True)  # after the plugin's own pytest_configure made the session
def pytest_configure(config: pytest.Config) -> None:
    try:
        aliases = ImageAliases.parse(_specs(config))
    except InvalidArgumentError as exc:
        raise pytest.UsageError(f"pytest-pods: {exc}") from None
    config.stash[_ALIASES] = aliases
    if not aliases:
        return
    s = session_of(config)

    def make(image: str) -> bool:
        provider = IMAGE_PROVIDERS.get(image)
        if provider is None:
            return False
        provider(s, "image alias")
        return True

    resolver = Resolver(aliases, lambda line: None, make)
    config.stash[_RESOLVER] = resolver
    s.image_aliases = resolver  # installed on the session's client when it is made


def pytest_report_header(config: pytest.Config) -> list[str]:
    aliases = config.stash.get(_ALIASES, None)
    if not aliases:
        return []
    return [f"pods: image alias {name} -> {image}" for name, image in aliases.table()]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    resolver = config.stash.get(_RESOLVER, None)
    if resolver is None or not resolver.used:
        return
    terminalreporter.section("pods: image aliases used", sep="-")
    for line in resolver.used.values():
        terminalreporter.write_line(line)


__all__ = ["pytest_addoption", "pytest_configure", "pytest_report_header", "pytest_terminal_summary"]
